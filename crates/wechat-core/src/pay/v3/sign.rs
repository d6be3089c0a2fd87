//! API v3 signatures: the request's `Authorization`, the page's `paySign`, and the check of
//! WeChat Pay's `Wechatpay-*` headers on replies and notifications.

use super::{MerchantKey, WechatPayKeys};
use crate::clock::Clock;
use crate::pay::PayError;
use crate::{Error, Result};

/// The scheme of the `Authorization` header, and the only `Wechatpay-Signature-Type` accepted.
pub const SIGNATURE_SCHEME: &str = "WECHATPAY2-SHA256-RSA2048";

/// How far WeChat Pay's `Wechatpay-Timestamp` may be from now: a difference of 300 seconds or
/// more is refused (as the official SDKs do).
pub const MAX_CLOCK_SKEW_SECS: u64 = 300;

/// The prefix of the signatures WeChat Pay sends to check that merchants verify: never valid.
const PROBE_PREFIX: &str = "WECHATPAY/SIGNTEST/";

/// The signed message of a request: method, canonical URL (path and query, as sent),
/// timestamp, nonce and the exact body bytes, each followed by `\n`.
pub fn request_message(
    method: &str,
    canonical_url: &str,
    timestamp: u64,
    nonce: &str,
    body: &[u8],
) -> Vec<u8> {
    let timestamp = timestamp.to_string();
    let mut message = Vec::with_capacity(
        method.len() + canonical_url.len() + timestamp.len() + nonce.len() + body.len() + 5,
    );
    for part in [
        method.as_bytes(),
        canonical_url.as_bytes(),
        timestamp.as_bytes(),
        nonce.as_bytes(),
        body,
    ] {
        message.extend_from_slice(part);
        message.push(b'\n');
    }
    message
}

/// The `Authorization` header of a request (`WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",
/// timestamp="…",serial_no="…",signature="…"`), signing [`request_message`] with the merchant
/// key. `body` must be the bytes sent, unchanged.
///
/// ```
/// use wechat_core::pay::v3::{MerchantKey, authorization};
///
/// let key = MerchantKey::from_pem(&std::fs::read("tests/vectors/v3/rsa_test_private_key.pem")?, "F5765756002FDD77")?;
/// let header = authorization("1900009191", &key, "GET", "/v3/certificates", 1624523846, "A1B2C3D4E5F6G7", b"")?;
/// assert!(header.starts_with(r#"WECHATPAY2-SHA256-RSA2048 mchid="1900009191",nonce_str="A1B2C3D4E5F6G7",timestamp="1624523846",serial_no="F5765756002FDD77",signature=""#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`PayError::InvalidRequest`](crate::pay::PayError::InvalidRequest) when the nonce or the URL holds a `"` or a line break, which
/// would make the header ambiguous.
#[allow(clippy::too_many_arguments)]
pub fn authorization(
    mchid: &str,
    key: &MerchantKey,
    method: &str,
    canonical_url: &str,
    timestamp: u64,
    nonce: &str,
    body: &[u8],
) -> Result<String> {
    let plain = |s: &str| s.bytes().all(|b| b.is_ascii_graphic() && b != b'"');
    if !plain(nonce) || !plain(mchid) || !plain(canonical_url) || !plain(method) {
        return Err(Error::Pay(PayError::InvalidRequest(
            "the mchid, method, URL and nonce of a v3 request must be printable ASCII without quotes"
                .to_owned(),
        )));
    }
    let signature = key.sign(&request_message(
        method,
        canonical_url,
        timestamp,
        nonce,
        body,
    ))?;
    Ok(format!(
        "{SIGNATURE_SCHEME} mchid=\"{mchid}\",nonce_str=\"{nonce}\",timestamp=\"{timestamp}\",serial_no=\"{}\",signature=\"{signature}\"",
        key.serial_no()
    ))
}

/// The JSAPI `paySign` (`signType` `RSA`): the merchant key's signature of
/// `appId\ntimeStamp\nnonceStr\npackage\n`, for `getBrandWCPayRequest`.
///
/// # Errors
/// As [`MerchantKey::sign`].
pub fn pay_sign(
    key: &MerchantKey,
    appid: &str,
    timestamp: &str,
    nonce: &str,
    package: &str,
) -> Result<String> {
    let message = format!("{appid}\n{timestamp}\n{nonce}\n{package}\n");
    key.sign(message.as_bytes())
}

/// The `Wechatpay-*` headers that sign a reply or a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeaders<'a> {
    /// `Wechatpay-Timestamp`: unix seconds.
    pub timestamp: &'a str,
    /// `Wechatpay-Nonce`.
    pub nonce: &'a str,
    /// `Wechatpay-Signature`: base64.
    pub signature: &'a str,
    /// `Wechatpay-Serial`: the key that signed, `PUB_KEY_ID_…` or a certificate serial.
    pub serial: &'a str,
    /// `Wechatpay-Signature-Type`, when sent.
    pub signature_type: Option<&'a str>,
}

impl<'a> SignatureHeaders<'a> {
    /// Reads the headers; `None` when one of timestamp, nonce, signature and serial is missing,
    /// repeated or not text.
    pub fn from_headers(headers: &'a http::HeaderMap) -> Option<Self> {
        let one = |name: &str| {
            let mut values = headers.get_all(name).iter();
            let value = values.next()?;
            if values.next().is_some() {
                return None;
            }
            value.to_str().ok()
        };
        Some(Self {
            timestamp: one("wechatpay-timestamp")?,
            nonce: one("wechatpay-nonce")?,
            signature: one("wechatpay-signature")?,
            serial: one("wechatpay-serial")?,
            signature_type: match headers.get("wechatpay-signature-type") {
                Some(value) => Some(value.to_str().ok()?),
                None => None,
            },
        })
    }
}

/// Verifies that WeChat Pay signed `body` (the raw bytes received) with `headers`: the
/// signature type is RSA (or absent), the timestamp is within [`MAX_CLOCK_SKEW_SECS`] of
/// `clock`'s time, the key named by `Wechatpay-Serial` is one of `keys`, and the signature of
/// `timestamp\nnonce\nbody\n` verifies. WeChat Pay's probe signatures (`WECHATPAY/SIGNTEST/…`)
/// never verify.
///
/// # Errors
/// [`PayError::UnknownSerial`](crate::pay::PayError::UnknownSerial) naming a serial none of `keys` has;
/// [`PayError::CertificateNotValid`](crate::pay::PayError::CertificateNotValid) when it names a platform certificate that has expired
/// (or is not valid yet) on `clock`;
/// [`PayError::BadSignature`](crate::pay::PayError::BadSignature) saying which other check failed.
pub fn verify_signature(
    keys: &WechatPayKeys,
    headers: &SignatureHeaders<'_>,
    body: &[u8],
    clock: &dyn Clock,
) -> Result<()> {
    if headers
        .signature_type
        .is_some_and(|t| t != SIGNATURE_SCHEME)
    {
        return Err(Error::Pay(PayError::BadSignature(
            "the Wechatpay-Signature-Type is not WECHATPAY2-SHA256-RSA2048",
        )));
    }
    let timestamp: u64 = match headers.timestamp.parse() {
        Ok(t) if headers.timestamp.len() <= 12 => t,
        _ => {
            return Err(Error::Pay(PayError::BadSignature(
                "the Wechatpay-Timestamp is not unix seconds",
            )));
        }
    };
    let now = clock.now_unix_secs();
    if now.abs_diff(timestamp) >= MAX_CLOCK_SKEW_SECS {
        return Err(Error::Pay(PayError::BadSignature(
            "the Wechatpay-Timestamp is 5 minutes or more from this server's clock (replayed, \
             or the server's clock is wrong)",
        )));
    }
    if headers.signature.starts_with(PROBE_PREFIX) {
        return Err(Error::Pay(PayError::BadSignature(
            "a WeChat Pay signature probe (WECHATPAY/SIGNTEST/), which never verifies",
        )));
    }
    if !keys.knows(headers.serial) {
        return Err(Error::Pay(PayError::UnknownSerial {
            serial: headers.serial.chars().take(64).collect(),
        }));
    }
    let mut message =
        Vec::with_capacity(headers.timestamp.len() + headers.nonce.len() + body.len() + 3);
    for part in [headers.timestamp.as_bytes(), headers.nonce.as_bytes(), body] {
        message.extend_from_slice(part);
        message.push(b'\n');
    }
    keys.verify(headers.serial, &message, headers.signature, now)
}
