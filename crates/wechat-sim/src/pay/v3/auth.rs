//! Request verification (§3) and signed answers (§4): the `Authorization` header, the
//! `Wechatpay-*` answer headers, v3 JSON errors and the faults `/_sim/fail` queues.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::keys::SignKey;
use super::{SIGNATURE_TYPE, V3Merchant};
use crate::pay::MerchantConfig;
use crate::pay::book;
use crate::state::Sim;

/// The largest request body read (64 KiB).
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// How far a request timestamp may be from the wall clock (5 minutes, exclusive).
pub(crate) const MAX_SKEW_SECS: u64 = 300;

/// The authorization scheme token.
const SCHEME: &str = "WECHATPAY2-SHA256-RSA2048";

/// The wall-clock unix time (signature timestamps never use the simulated clock).
pub(crate) fn wall_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A v3 error answer: `status` with `{"code","message"[,"detail"]}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct V3Error {
    /// The HTTP status.
    pub(crate) status: StatusCode,
    /// WeChat's `code`, e.g. `PARAM_ERROR`.
    pub(crate) code: String,
    /// The human-readable `message`.
    pub(crate) message: String,
    /// The optional `detail` object.
    pub(crate) detail: Option<Value>,
}

impl V3Error {
    /// An error without detail.
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            detail: None,
        }
    }

    /// 400 `PARAM_ERROR` about the body field at JSON pointer `field`.
    pub(crate) fn param(field: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, "PARAM_ERROR", message);
        e.detail = Some(json!({ "field": field, "location": "body" }));
        e
    }

    /// 401 `SIGN_ERROR`.
    pub(crate) fn sign(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "SIGN_ERROR", message)
    }

    /// The JSON body.
    pub(crate) fn body(&self) -> Vec<u8> {
        let mut body = json!({ "code": self.code, "message": self.message });
        if let Some(detail) = &self.detail {
            body["detail"] = detail.clone();
        }
        body.to_string().into_bytes()
    }
}

/// What `POST /_sim/fail` queues for a `/v3/…` path.
#[derive(Debug, Clone)]
pub(crate) enum V3Fault {
    /// Answer this error (signed) instead of the handler.
    Error(V3Error),
    /// Let the handler answer, with a wrong `Wechatpay-Signature`.
    BadSignature,
    /// Let the handler answer, without the `Wechatpay-*` headers.
    Unsigned,
    /// Answer 200 with the handler's body cut in half (JSON that does not parse), signed over
    /// those bytes, so that the client's parser rather than its verifier meets it.
    Malformed,
}

/// The `Request-ID` of an answer, shaped like WeChat Pay's
/// (`08F78BB5AF0610D302189F99DD5C20BA56F89845-0`): 40 random upper-case hex digits, a dash and
/// a decimal number (always `0` here).
fn request_id() -> String {
    let hex: String = (0..20)
        .map(|_| format!("{:02X}", rand::random::<u8>()))
        .collect();
    format!("{hex}-0")
}

/// How an answer is signed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Signer<'a> {
    /// Whose WeChat Pay key signs.
    pub(crate) merchant: &'a V3Merchant,
    /// The serial (public-key id or platform-certificate serial) to sign under.
    pub(crate) serial: &'a str,
}

/// The `Wechatpay-*` headers of `body` signed by `key` under `serial` at wall time
/// `timestamp`.
pub(crate) fn signature_headers(
    key: &SignKey,
    serial: &str,
    timestamp: u64,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let nonce = book::nonce();
    let mut message = format!("{timestamp}\n{nonce}\n").into_bytes();
    message.extend_from_slice(body);
    message.push(b'\n');
    vec![
        ("Wechatpay-Timestamp", timestamp.to_string()),
        ("Wechatpay-Nonce", nonce),
        ("Wechatpay-Signature", key.sign(&message)),
        ("Wechatpay-Serial", serial.to_owned()),
        ("Wechatpay-Signature-Type", SIGNATURE_TYPE.to_owned()),
    ]
}

/// Builds an answer: `status`, `body` (JSON, or empty), `Request-ID`, and the signature
/// headers when `signer` is given, altered as `fault` says.
pub(crate) fn answer(
    status: StatusCode,
    body: Vec<u8>,
    signer: Option<Signer<'_>>,
    fault: Option<&V3Fault>,
) -> Response {
    let (status, body) = if matches!(fault, Some(V3Fault::Malformed)) {
        (
            StatusCode::OK,
            crate::fault::truncated(&body, crate::fault::JSON_FRAGMENT),
        )
    } else {
        (status, body)
    };
    let mut headers = HeaderMap::new();
    if !body.is_empty() {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    if let Ok(v) = HeaderValue::from_str(&request_id()) {
        headers.insert("Request-ID", v);
    }
    if let Some(signer) = signer {
        if !matches!(fault, Some(V3Fault::Unsigned)) {
            let signed = if matches!(fault, Some(V3Fault::BadSignature)) {
                // A well-formed signature over other bytes.
                let mut other = body.clone();
                other.extend_from_slice(b" ");
                other
            } else {
                body.clone()
            };
            let key = &signer.merchant.pay_key;
            for (name, value) in signature_headers(key, signer.serial, wall_secs(), &signed) {
                if let Ok(v) = HeaderValue::from_str(&value) {
                    headers.insert(name, v);
                }
            }
        }
    }
    (status, headers, body).into_response()
}

/// A checked v3 request.
pub(crate) struct Call<'a> {
    /// The merchant's configuration.
    pub(crate) config: &'a MerchantConfig,
    /// Its v3 keys.
    pub(crate) merchant: &'a V3Merchant,
    /// The query string, `""` when none.
    pub(crate) query: String,
    /// The request's `Host` (the simulator as the caller reaches it; H5 links point there).
    pub(crate) host: String,
    /// The exact body bytes (at most [`MAX_BODY`]).
    pub(crate) body: Bytes,
    /// The request's `Wechatpay-Serial`.
    requested_serial: Option<String>,
    fault: Option<V3Fault>,
}

impl<'a> Call<'a> {
    /// The signer the request asks for.
    pub(crate) fn signer(&self) -> Signer<'a> {
        Signer {
            merchant: self.merchant,
            serial: self.merchant.serial_for(self.requested_serial.as_deref()),
        }
    }

    /// A signed answer: `Ok((status, body))` or the error.
    pub(crate) fn respond(&self, result: Result<(StatusCode, Vec<u8>), V3Error>) -> Response {
        let (status, body) = match result {
            Ok(ok) => ok,
            Err(e) => (e.status, e.body()),
        };
        answer(status, body, Some(self.signer()), self.fault.as_ref())
    }

    /// A signed answer under another `signer` (the certificate list signs with the certificate).
    pub(crate) fn respond_with(
        &self,
        signer: Signer<'_>,
        result: Result<(StatusCode, Vec<u8>), V3Error>,
    ) -> Response {
        let (status, body) = match result {
            Ok(ok) => ok,
            Err(e) => (e.status, e.body()),
        };
        answer(status, body, Some(signer), self.fault.as_ref())
    }

    /// A query parameter.
    pub(crate) fn query_param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The body as a JSON object, or 400 `PARAM_ERROR`.
    pub(crate) fn json(&self) -> Result<serde_json::Map<String, Value>, V3Error> {
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(V3Error::new(
                StatusCode::BAD_REQUEST,
                "PARAM_ERROR",
                "请求体应为JSON对象",
            )),
            Err(e) => Err(V3Error::new(
                StatusCode::BAD_REQUEST,
                "PARAM_ERROR",
                format!("请求体不是合法的JSON：{e}"),
            )),
        }
    }
}

/// The fields of an `Authorization` header.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Authorization {
    /// The merchant id.
    pub(crate) mchid: String,
    /// Line 4 of the signed message.
    pub(crate) nonce_str: String,
    /// Base64 SHA256-RSA signature.
    pub(crate) signature: String,
    /// Line 3 of the signed message, unix seconds.
    pub(crate) timestamp: String,
    /// The merchant certificate's serial.
    pub(crate) serial_no: String,
}

/// Parses `WECHATPAY2-SHA256-RSA2048 k="v",…` (fields in any order).
pub(crate) fn parse_authorization(header: &str) -> Result<Authorization, String> {
    let rest = header
        .strip_prefix(SCHEME)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or_else(|| format!("the Authorization scheme must be {SCHEME}"))?;
    let mut auth = Authorization::default();
    for part in rest.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or_else(|| format!("malformed Authorization field {part:?}"))?;
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .ok_or_else(|| format!("Authorization field {key} must be quoted"))?
            .to_owned();
        let slot = match key {
            "mchid" => &mut auth.mchid,
            "nonce_str" => &mut auth.nonce_str,
            "signature" => &mut auth.signature,
            "timestamp" => &mut auth.timestamp,
            "serial_no" => &mut auth.serial_no,
            _ => continue,
        };
        *slot = value;
    }
    for (name, value) in [
        ("mchid", &auth.mchid),
        ("nonce_str", &auth.nonce_str),
        ("signature", &auth.signature),
        ("timestamp", &auth.timestamp),
        ("serial_no", &auth.serial_no),
    ] {
        if value.is_empty() {
            return Err(format!("the Authorization header has no {name}"));
        }
    }
    Ok(auth)
}

/// Reads and verifies a v3 request (§3); on failure, the (signed when possible) answer.
pub(crate) async fn authenticate(sim: &Sim, req: Request) -> Result<Call<'_>, Response> {
    let (mut parts, body) = req.into_parts();
    let fault = parts.extensions.remove::<V3Fault>();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let unsigned = |e: V3Error| answer(e.status, e.body(), None, None);
    let Some(auth) = header(AUTHORIZATION.as_str()) else {
        return Err(unsigned(V3Error::sign(
            "缺少Authorization请求头 (missing Authorization header)",
        )));
    };
    let auth = parse_authorization(&auth)
        .map_err(|e| unsigned(V3Error::sign(format!("Authorization请求头格式错误: {e}"))))?;
    let Some(config) = sim.config.merchants.iter().find(|m| m.mch_id == auth.mchid) else {
        return Err(unsigned(V3Error::sign(format!(
            "商户号{}不存在 (mchid is not a known merchant)",
            auth.mchid
        ))));
    };
    let Some(merchant) = super::merchant(sim, &config.mch_id) else {
        return Err(unsigned(V3Error::new(
            StatusCode::FORBIDDEN,
            "NO_AUTH",
            "商户未开通APIv3 (the merchant has no apiv3_key)",
        )));
    };
    let requested_serial = header("wechatpay-serial");
    let signer = Signer {
        merchant,
        serial: merchant.serial_for(requested_serial.as_deref()),
    };
    let signed_error = |e: V3Error| answer(e.status, e.body(), Some(signer), None);
    if let Some(V3Fault::Error(e)) = &fault {
        return Err(signed_error(e.clone()));
    }
    let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        signed_error(V3Error::new(
            StatusCode::BAD_REQUEST,
            "PARAM_ERROR",
            "请求体超过64KB (body larger than 64 KiB)",
        ))
    })?;
    if !auth
        .serial_no
        .eq_ignore_ascii_case(&merchant.merchant_serial)
    {
        return Err(signed_error(V3Error::sign(format!(
            "商户证书序列号有误 (serial_no {} is not the merchant certificate's serial)",
            auth.serial_no
        ))));
    }
    let Some(timestamp) = auth
        .timestamp
        .parse::<u64>()
        .ok()
        .filter(|_| auth.timestamp.bytes().all(|b| b.is_ascii_digit()))
    else {
        return Err(signed_error(V3Error::sign(
            "timestamp must be unix seconds",
        )));
    };
    if timestamp.abs_diff(wall_secs()) >= MAX_SKEW_SECS {
        return Err(signed_error(V3Error::sign(format!(
            "请求时间戳与服务器时间相差超过5分钟 (stale timestamp {timestamp})"
        ))));
    }
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut message = format!(
        "{}\n{}\n{}\n{}\n",
        parts.method, path_and_query, auth.timestamp, auth.nonce_str
    )
    .into_bytes();
    message.extend_from_slice(&body);
    message.push(b'\n');
    if !merchant.merchant_key.verify(&message, &auth.signature) {
        let text = String::from_utf8_lossy(&message);
        let truncated: String = text.chars().take(200).collect();
        let mut e = V3Error::sign("签名错误，请检查后再试 (bad signature)");
        e.detail = Some(json!({
            "detail": { "issue": "sign not match" },
            "field": "signature",
            "location": "authorization",
            "sign_information": {
                "method": parts.method.as_str(),
                "url": path_and_query,
                "sign_message_length": message.len(),
                "truncated_sign_message": truncated,
            },
        }));
        return Err(signed_error(e));
    }
    Ok(Call {
        config,
        merchant,
        query: parts.uri.query().unwrap_or("").to_owned(),
        host: header("host").unwrap_or_else(|| "127.0.0.1".to_owned()),
        body,
        requested_serial,
        fault,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_fields_in_any_order() {
        let a = parse_authorization(
            r#"WECHATPAY2-SHA256-RSA2048 signature="c2ln",mchid="1900009191",timestamp="1624523846",serial_no="F5765756002FDD77",nonce_str="A1B2""#,
        )
        .unwrap();
        assert_eq!(a.mchid, "1900009191");
        assert_eq!(a.signature, "c2ln");
        assert_eq!(a.serial_no, "F5765756002FDD77");
        assert!(parse_authorization("Bearer x").is_err());
        assert!(parse_authorization(r#"WECHATPAY2-SHA256-RSA2048 mchid="1""#).is_err());
        assert!(parse_authorization(r#"WECHATPAY2-SHA256-RSA2048 mchid=1"#).is_err());
        assert!(parse_authorization("WECHATPAY2-SHA256-RSA2048 ").is_err());
    }
}
