//! WeChat Pay API v3 (JSON) simulation for JSAPI merchants: signed requests and answers,
//! prepay, query, close, refund, notifications and the platform certificate.
//!
//! Implements the v3 protocol reference (§3–§12). A merchant uses v3 when it has an
//! `apiv3_key` (exactly 32 bytes) and a `merchant_public_key` (SPKI, PKCS#1 or its X.509
//! certificate); see [`crate::MerchantConfig`].
//!
//! # Requests (§3)
//!
//! Every `/v3/…` request must carry `Authorization: WECHATPAY2-SHA256-RSA2048
//! mchid="…",nonce_str="…",signature="…",timestamp="…",serial_no="…"` (fields in any order),
//! the signature being base64 SHA256-RSA (PKCS#1 v1.5) over
//! `METHOD\nPATH[?QUERY]\nTIMESTAMP\nNONCE\nBODY\n` (the path and query exactly as received,
//! the exact body bytes), verified with the merchant's public key. `serial_no` must equal
//! `merchant_serial` (ignoring case), and the timestamp be less than 5 minutes away from the
//! **wall** clock (the simulated clock only governs business expiry). Otherwise: 401
//! `{"code":"SIGN_ERROR","message":"…"}` saying what was wrong (missing or malformed header,
//! unknown `mchid`, serial mismatch, stale timestamp, bad signature); a bad signature also
//! gets `detail.sign_information` with the message the simulator verified (truncated). A known
//! merchant without `apiv3_key` gets 403 `NO_AUTH`. Bodies are limited to 64 KiB (400
//! `PARAM_ERROR` beyond); malformed JSON is 400 `PARAM_ERROR`.
//!
//! # Answers (§4)
//!
//! Every answer to a request naming a v3 merchant, success or error, carries
//! `Wechatpay-Timestamp` (wall clock), `Wechatpay-Nonce`, `Wechatpay-Signature` (base64
//! SHA256-RSA over `TIMESTAMP\nNONCE\nBODY\n` with the merchant's WeChat Pay key),
//! `Wechatpay-Serial`, `Wechatpay-Signature-Type: WECHATPAY2-SHA256-RSA2048` and `Request-ID`.
//! The serial is the one the request's `Wechatpay-Serial` header names (the public-key id or
//! the platform certificate's serial); without it (or with an unknown one) the platform
//! certificate when the merchant has one, else the public key. The platform certificate is a
//! self-signed certificate over the same WeChat Pay key. Answers that cannot be attributed
//! to a v3 merchant (no or unparsable `Authorization`, unknown `mchid`) carry only
//! `Request-ID`: there is no key to sign them with.
//!
//! # Endpoints (§7, errors §10)
//!
//! | call | answer |
//! | --- | --- |
//! | `POST /v3/pay/transactions/jsapi` | 200 `{"prepay_id":"wx…"}` (valid 2 h on the simulated clock) |
//! | `GET /v3/pay/transactions/out-trade-no/{no}?mchid=…` | 200 transaction object (§8.2) |
//! | `GET /v3/pay/transactions/id/{transaction_id}?mchid=…` | 200 transaction object |
//! | `POST /v3/pay/transactions/out-trade-no/{no}/close` `{"mchid"}` | 204, empty body (signed) |
//! | `POST /v3/refund/domestic/refunds` | 200 refund object, `status` `PROCESSING` |
//! | `GET /v3/refund/domestic/refunds/{out_refund_no}` | 200 refund object |
//! | `GET /v3/certificates` | 200 the platform certificate, encrypted with the APIv3 key |
//!
//! Prepay checks: `appid`, `mchid` (that of the `Authorization`), `description` (≤ 127
//! characters), `out_trade_no` (6–32 of `[0-9A-Za-z_-|*]`), `notify_url` (http(s), no query,
//! ≤ 255; `http://` is accepted only on a loopback host, with a log line, as WeChat requires
//! https), `amount.total` (integer > 0), `amount.currency` (`CNY` when present), `attach`
//! (≤ 128), `time_expire` (RFC 3339) and `payer.openid`: a missing or malformed field is 400
//! `PARAM_ERROR` with `detail.field`; an appid not bound to the merchant is 400
//! `APPID_MCHID_NOT_MATCH`; an openid that is not a user of the appid is 500
//! `OPENID_MISMATCH` (the status of the reference's prepay table). Re-submitting an unpaid
//! order with the same parameters (all but `time_expire`) answers its current prepay_id
//! (renewed when expired); different parameters (or an order made through v2) are 403
//! `OUT_TRADE_NO_USED`; a closed order is 400 `ORDER_CLOSED`; a paid order is 403
//! `OUT_TRADE_NO_USED` with the message `该订单已支付` (v3 has no `ORDERPAID`; the reference
//! says to learn "paid" from the query).
//!
//! Query: missing `mchid` is 400 `PARAM_ERROR`, another merchant's `mchid` 400
//! `PARAM_ERROR`, an unknown order 404 `ORDER_NOT_EXIST`. Close: a paid order is 403
//! `TRADE_ERROR` (the reference lists it for close; v3 has no `ORDERPAID`); closing a closed
//! order again is 204.
//!
//! Refund: `out_refund_no` (≤ 64 of `[0-9A-Za-z_-|*@]`), `transaction_id` or `out_trade_no`,
//! `amount.refund` > 0, `amount.total` equal to the order's total (else 400 `PARAM_ERROR`),
//! `amount.currency` `CNY`, optional `notify_url` and `reason` (≤ 80). An unknown order is 404
//! `RESOURCE_NOT_EXISTS`; an unpaid or closed order 400 `INVALID_REQUEST`; a refund above
//! what remains refundable 400 `INVALID_REQUEST` (`NOT_ENOUGH` is the merchant's balance,
//! never short in the simulator). The same `out_refund_no` answers the same refund (400
//! `INVALID_REQUEST` when it names another order or amount). A refund is `PROCESSING` when
//! accepted and becomes `SUCCESS` one second later (times `notify_retry_scale`, wall time),
//! then its `REFUND.SUCCESS` notification goes to the request's `notify_url`, else the
//! merchant's `refund_notify_url`, if any. Its trade then reads `REFUND`.
//!
//! `/v3/certificates` exists only for merchants with `platform_certificate = true`; others get
//! 404 `RESOURCE_NOT_EXISTS` (`无可用的平台证书…`).
//!
//! One order book serves v2 and v3: an `out_trade_no` is one order whichever version made it,
//! marked `"api":"v2"` or `"v3"`; its notifications and the pay sheet use that version.
//!
//! # Notifications (§8)
//!
//! A paid v3 order's `TRANSACTION.SUCCESS` (and a v3 refund's `REFUND.SUCCESS`) is POSTed as
//! `application/json`: `{"id","create_time","resource_type":"encrypt-resource","event_type",
//! "summary","resource":{"original_type","algorithm":"AEAD_AES_256_GCM","ciphertext",
//! "associated_data","nonce"}}`, the resource being the transaction (§8.2) or refund (§8.3)
//! object encrypted with the APIv3 key; signed like an answer (platform certificate when the
//! merchant has one, else the public key), re-signed at each attempt. It is retried on WeChat's
//! schedule times `notify_retry_scale` until the receiver answers any 2xx; attempts count in
//! `/_sim/stats` as for v2.
//!
//! # The pay sheet (§9)
//!
//! For a v3 order, `getBrandWCPayRequest` takes `signType` `RSA` and `paySign` = base64
//! SHA256-RSA by the merchant's private key over `appId\ntimeStamp\nnonceStr\npackage\n`,
//! verified with its public key (else `支付验证签名失败`); the other checks are v2's.

pub(crate) mod api;
pub(crate) mod auth;
pub(crate) mod keys;
pub(crate) mod notify;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use super::MerchantConfig;
use crate::state::Sim;
use keys::{PublicKey, SignKey};

pub(crate) use auth::V3Fault;

/// The `Wechatpay-Signature-Type` of RSA signatures.
pub(crate) const SIGNATURE_TYPE: &str = "WECHATPAY2-SHA256-RSA2048";

/// A merchant's platform certificate (`platform_certificate = true`).
#[derive(Debug, Clone)]
pub(crate) struct Platform {
    /// Upper-case hex serial, 40 digits.
    pub(crate) serial: String,
    /// The certificate, PEM.
    pub(crate) pem: String,
    /// Start of validity, unix time.
    pub(crate) not_before: u64,
    /// End of validity, unix time.
    pub(crate) not_after: u64,
}

/// A v3 merchant's keys, loaded (and generated) at start.
pub(crate) struct V3Merchant {
    /// The 32-byte APIv3 key.
    apiv3_key: Vec<u8>,
    /// Verifies the merchant's signatures.
    pub(crate) merchant_key: PublicKey,
    /// Its certificate serial (upper case).
    pub(crate) merchant_serial: String,
    /// The simulator's WeChat Pay key for this merchant.
    pub(crate) pay_key: Arc<SignKey>,
    /// The id of that key's public half.
    pub(crate) pay_public_key_id: String,
    /// The platform certificate over the same key, if the merchant has one.
    pub(crate) platform: Option<Platform>,
}

impl std::fmt::Debug for V3Merchant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V3Merchant")
            .field("apiv3_key", &"[redacted]")
            .field("merchant_serial", &self.merchant_serial)
            .field("pay_public_key_id", &self.pay_public_key_id)
            .field("platform", &self.platform.as_ref().map(|p| &p.serial))
            .finish_non_exhaustive()
    }
}

impl V3Merchant {
    /// The 32-byte APIv3 key.
    pub(crate) fn apiv3_key(&self) -> &[u8] {
        &self.apiv3_key
    }

    /// The serial to sign with: the one `requested` names when the merchant has it, else the
    /// platform certificate's when it has one, else the public-key id.
    pub(crate) fn serial_for(&self, requested: Option<&str>) -> &str {
        if let Some(req) = requested {
            if req == self.pay_public_key_id {
                return &self.pay_public_key_id;
            }
            if let Some(p) = self
                .platform
                .as_ref()
                .filter(|p| p.serial.eq_ignore_ascii_case(req))
            {
                return &p.serial;
            }
        }
        match &self.platform {
            Some(p) => &p.serial,
            None => &self.pay_public_key_id,
        }
    }
}

/// A PEM given inline or as a file; `None` when neither.
fn pem_field(inline: &str, file: &str, name: &str) -> Result<Option<String>, String> {
    match (inline.trim().is_empty(), file.is_empty()) {
        (true, true) => Ok(None),
        (false, false) => Err(format!("give {name} or {name}_file, not both")),
        (false, true) => Ok(Some(inline.to_owned())),
        (true, false) => std::fs::read_to_string(file)
            .map(Some)
            .map_err(|e| format!("{name}_file: cannot read {file}: {e}")),
    }
}

/// What [`check`] finds in a v3 merchant's configuration.
pub(crate) struct Checked {
    merchant_key: PublicKey,
    merchant_serial: String,
    pay_key: Option<SignKey>,
}

/// Checks a merchant's v3 fields (reading its PEMs, not generating anything); `None` for a
/// merchant without v3. The error names the field.
pub(crate) fn check(m: &MerchantConfig) -> Result<Option<Checked>, String> {
    if !m.has_v3() {
        for (name, set) in [
            ("merchant_public_key", !m.merchant_public_key.is_empty()),
            (
                "merchant_public_key_file",
                !m.merchant_public_key_file.is_empty(),
            ),
            ("pay_private_key", !m.pay_private_key.is_empty()),
            ("pay_private_key_file", !m.pay_private_key_file.is_empty()),
            ("platform_certificate", m.platform_certificate),
        ] {
            if set {
                return Err(format!(
                    "{name} is set but apiv3_key is not (v3 needs apiv3_key)"
                ));
            }
        }
        return Ok(None);
    }
    if m.apiv3_key.len() != 32 {
        return Err(format!(
            "apiv3_key must be exactly 32 bytes, it has {}",
            m.apiv3_key.len()
        ));
    }
    let pem = pem_field(
        &m.merchant_public_key,
        &m.merchant_public_key_file,
        "merchant_public_key",
    )?
    .ok_or("a v3 merchant needs merchant_public_key or merchant_public_key_file")?;
    let (merchant_key, cert_serial) =
        PublicKey::from_pem(&pem).map_err(|e| format!("merchant_public_key: {e}"))?;
    let merchant_serial = match (m.merchant_serial.is_empty(), cert_serial) {
        (false, _) => m.merchant_serial.to_ascii_uppercase(),
        (true, Some(serial)) => serial,
        (true, None) => {
            return Err(
                "merchant_serial is required unless merchant_public_key is the certificate".into(),
            );
        }
    };
    if !merchant_serial.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("merchant_serial must be hex digits".into());
    }
    let id = &m.pay_public_key_id;
    if id.is_empty() && !m.platform_certificate {
        return Err(
            "pay_public_key_id is required (PUB_KEY_ID_ + digits) unless platform_certificate = true"
                .into(),
        );
    }
    if !id.is_empty()
        && !id
            .strip_prefix("PUB_KEY_ID_")
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!(
            "pay_public_key_id must be PUB_KEY_ID_ + digits, not {id:?}"
        ));
    }
    let pay_key = pem_field(
        &m.pay_private_key,
        &m.pay_private_key_file,
        "pay_private_key",
    )?
    .map(|pem| SignKey::from_pem(&pem).map_err(|e| format!("pay_private_key: {e}")))
    .transpose()?;
    Ok(Some(Checked {
        merchant_key,
        merchant_serial,
        pay_key,
    }))
}

/// Loads a v3 merchant: [`check`], then the generated WeChat Pay key (when none is
/// configured), the public-key id and the platform certificate.
pub(crate) fn load(m: &MerchantConfig, now: u64) -> Result<Option<V3Merchant>, String> {
    let Some(checked) = check(m)? else {
        return Ok(None);
    };
    let pay_key = match checked.pay_key {
        Some(key) => Arc::new(key),
        None => keys::generated_pay_key().map_err(|e| e.to_string())?,
    };
    let pay_public_key_id = if m.pay_public_key_id.is_empty() {
        format!(
            "PUB_KEY_ID_0{}{}",
            m.mch_id
                .chars()
                .filter(char::is_ascii_digit)
                .collect::<String>(),
            super::book::random_digits(20)
        )
    } else {
        m.pay_public_key_id.clone()
    };
    let platform = if m.platform_certificate {
        let serial = keys::certificate_serial();
        let (pem, not_before, not_after) = pay_key
            .certificate(&serial, now)
            .map_err(|e| format!("platform certificate: {e}"))?;
        Some(Platform {
            serial,
            pem,
            not_before,
            not_after,
        })
    } else {
        None
    };
    Ok(Some(V3Merchant {
        apiv3_key: m.apiv3_key.as_bytes().to_vec(),
        merchant_key: checked.merchant_key,
        merchant_serial: checked.merchant_serial,
        pay_key,
        pay_public_key_id,
        platform,
    }))
}

/// Rewrites a merchant's relative `_file` paths against `dir` (the configuration file's).
pub(crate) fn resolve_paths(m: &mut MerchantConfig, dir: &Path) {
    for file in [&mut m.merchant_public_key_file, &mut m.pay_private_key_file] {
        if !file.is_empty() && Path::new(file.as_str()).is_relative() {
            *file = dir.join(file.as_str()).display().to_string();
        }
    }
}

/// The v3 merchant with this `mch_id`.
pub(crate) fn merchant<'a>(sim: &'a Sim, mch_id: &str) -> Option<&'a V3Merchant> {
    sim.pay.v3.get(mch_id)
}

/// Every `/v3/` route.
pub(crate) fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/v3/pay/transactions/jsapi", post(api::prepay))
        .route("/v3/pay/transactions/native", post(api::prepay_native))
        .route("/v3/pay/transactions/h5", post(api::prepay_h5))
        .route(
            "/v3/pay/transactions/out-trade-no/{out_trade_no}",
            get(api::query_by_out_trade_no),
        )
        .route(
            "/v3/pay/transactions/id/{transaction_id}",
            get(api::query_by_id),
        )
        .route(
            "/v3/pay/transactions/out-trade-no/{out_trade_no}/close",
            post(api::close),
        )
        .route("/v3/refund/domestic/refunds", post(api::refund))
        .route(
            "/v3/refund/domestic/refunds/{out_refund_no}",
            get(api::refund_query),
        )
        .route("/v3/certificates", get(api::certificates))
}
