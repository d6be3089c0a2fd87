//! The API v3 client: signed requests over reqwest, every success answer verified, typed calls.

use crate::pay::PayError;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde::Deserialize;
use tracing::Instrument as _;

use super::certificates::Verifier;
use super::{
    BrandWcPayParams, JsapiOrder, PayConfig, PaymentNotification, PrepayResponse, QueryRefund,
    RefundNotification, RefundRecord, RefundRequest, SignatureHeaders, Transaction, WechatPayKeys,
    authorization, verify_signature,
};
use crate::pay::OrderRef;
use crate::pay::client::{pay_client_methods, with_retries};
use crate::pay::config::USER_AGENT;
use crate::pay::order::nonce_str;
use crate::pay::{ApiVersion, PayApiError, PayApiErrorCode};
use crate::token::TokenStore;
use crate::transport::read_capped;
use crate::{Error, OutRefundNo, Result};

/// The largest answer read; WeChat Pay's are a few KiB.
const MAX_REPLY_BODY: usize = 256 * 1024;

/// A WeChat Pay API v3 request as a value: it knows its method, endpoint, path and body and
/// what WeChat Pay answers; [`PayClient::send`] signs it, sends it, verifies the answer and
/// reads it. Each call is one type ([`JsapiOrder`], [`QueryOrder`](super::QueryOrder),
/// [`CloseOrder`](super::CloseOrder), [`RefundRequest`], [`QueryRefund`](super::QueryRefund)),
/// as in [`v2::PayRequest`](crate::pay::v2::PayRequest).
///
/// ```
/// use wechat_core::OutTradeNo;
/// use wechat_core::pay::v3::{MerchantKey, PayConfig, PayRequest, QueryOrder, WechatPayPublicKey};
///
/// let key = MerchantKey::from_pem(&std::fs::read("tests/vectors/v3/rsa_test_private_key.pem")?, "F5765756002FDD77")?;
/// let public = WechatPayPublicKey::from_pem("PUB_KEY_ID_01", &std::fs::read("tests/vectors/v3/rsa_test_public_key.pem")?)?;
/// let config = PayConfig::builder("1900000109", "wx1234567890abcdef", key, "0123456789abcdefghijABCDEFGHIJ01", "https://shop.example.com/pay/notify")
///     .wechat_pay_public_key(public)
///     .build()?;
/// let query = QueryOrder::from(OutTradeNo::new("T20240101001"));
/// assert_eq!(query.to_path(&config)?, "/v3/pay/transactions/out-trade-no/T20240101001?mchid=1900000109");
/// assert_eq!(query.to_body(&config)?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait PayRequest {
    /// What the verified answer is read into.
    type Output;
    /// The endpoint, as logs and metrics name it, e.g. `/v3/pay/transactions/jsapi` or
    /// `/v3/pay/transactions/out-trade-no/{out_trade_no}`.
    const ENDPOINT: &'static str;
    /// The HTTP method.
    const METHOD: Method;

    /// The endpoint of this request, as logs and metrics name it: [`ENDPOINT`](Self::ENDPOINT)
    /// unless the request picks one of several.
    fn endpoint(&self) -> &'static str {
        Self::ENDPOINT
    }

    /// The path and query sent and signed (a pure function; identifiers are checked so that
    /// nothing in them needs encoding): [`ENDPOINT`](Self::ENDPOINT) unless the request puts
    /// identifiers in it.
    ///
    /// # Errors
    /// [`PayError::InvalidRequest`](crate::pay::PayError::InvalidRequest) for an identifier WeChat Pay would refuse.
    fn to_path(&self, config: &PayConfig) -> Result<String> {
        let _ = config;
        Ok(Self::ENDPOINT.to_owned())
    }

    /// The JSON body, checked, if the request has one (a pure function).
    ///
    /// # Errors
    /// [`PayError::InvalidRequest`](crate::pay::PayError::InvalidRequest) naming a field WeChat Pay would refuse.
    fn to_body(&self, config: &PayConfig) -> Result<Option<Vec<u8>>>;

    /// Reads WeChat Pay's verified success answer.
    ///
    /// # Errors
    /// [`Error::UnexpectedResponse`] when it cannot be read or is not about this merchant.
    fn read_reply(&self, config: &PayConfig, reply: &[u8]) -> Result<Self::Output>;
}

/// A verified success answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) body: Bytes,
}

/// An answer as received, before verification.
pub(crate) struct RawReply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) request_id: Option<String>,
}

/// A WeChat Pay API v3 client for one merchant: signs each request with the merchant key,
/// verifies each success answer with WeChat Pay's key before reading it, and retries what is
/// safe to retry.
///
/// Every call is idempotent by WeChat Pay's rules (a prepay with the same parameters, a refund
/// with the same `out_refund_no`, queries, close), so a call that gets a 5xx, a `SYSTEM_ERROR`
/// or no answer at all is sent again with the same body, [`RETRY_ATTEMPTS`](crate::pay::RETRY_ATTEMPTS) times in all, 200 ms
/// then 400 ms apart. A success answer without a valid WeChat Pay signature is refused
/// ([`PayError::ForgedReply`](crate::pay::PayError::ForgedReply)) and never retried into acceptance.
///
/// ```no_run
/// use wechat_core::pay::v3::{JsapiOrder, MerchantKey, PayClient, PayConfig, WechatPayPublicKey};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = PayConfig::builder(
///     "1900000109",
///     "wx1234567890abcdef",
///     MerchantKey::from_pem_with_certificate(&std::fs::read("apiclient_key.pem")?, &std::fs::read("apiclient_cert.pem")?)?,
///     std::env::var("WECHAT_PAY_V3_KEY")?,
///     "https://shop.example.com/wechat/pay/notify",
/// )
/// .wechat_pay_public_key(WechatPayPublicKey::from_pem(
///     std::env::var("WECHAT_PAY_PUBLIC_KEY_ID")?,
///     &std::fs::read("pub_key.pem")?,
/// )?)
/// .build()?;
/// let pay = PayClient::new(config)?;
/// let order = JsapiOrder::new("T20240101001", "Coffee", 1, "oUser");
/// let (_prepay, params) = pay.create_jsapi_order(&order).await?;
/// // `params` serialises to exactly what WeixinJSBridge.invoke('getBrandWCPayRequest', …) takes.
/// println!("{}", serde_json::to_string(&params)?);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PayClient {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: PayConfig,
    http: reqwest::Client,
    pub(crate) verifier: Verifier,
}

impl PayClient {
    pay_client_methods!(version: ApiVersion::V3);

    /// Like [`PayClient::new`] but sends through `http`, shared with the rest of the
    /// application (it should not follow redirects).
    ///
    /// # Errors
    /// None today; it returns a `Result` as v2's does, which builds its refund client here.
    pub fn with_http_client(config: PayConfig, http: reqwest::Client) -> Result<Self> {
        let verifier = Verifier::new(&config, None);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                http,
                verifier,
            }),
        })
    }

    /// Shares downloaded platform certificates with other processes through `store` (the
    /// token store: Redis for several instances), under `key_prefix` + `wechatpay_certificates:`
    /// + mch_id. What is stored is WeChat Pay's encrypted list as downloaded, so a process
    ///   adopts only certificates that decrypt with its own APIv3 key. Without platform
    ///   certificates configured this changes nothing.
    #[must_use]
    pub fn with_certificate_store(
        self,
        store: Arc<dyn TokenStore>,
        key_prefix: impl Into<String>,
    ) -> Self {
        let config = self.inner.config.clone();
        let http = self.inner.http.clone();
        let verifier = Verifier::new(&config, Some((store, key_prefix.into())));
        Self {
            inner: Arc::new(Inner {
                config,
                http,
                verifier,
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PayConfig {
        &self.inner.config
    }

    /// The keys that verify WeChat Pay right now (in platform-certificate mode, downloading
    /// them first if none is loaded yet).
    ///
    /// # Errors
    /// As [`download_certificates`](Self::download_certificates), when they must be fetched.
    pub async fn wechat_pay_keys(&self) -> Result<Arc<WechatPayKeys>> {
        self.inner.verifier.keys(self).await
    }

    /// Downloads the platform certificates now (`GET /v3/certificates`), puts them in use and
    /// shares them through the certificate store; the client also does this by itself when
    /// none is loaded, every [`certificate_refresh`](super::PayConfigBuilder::certificate_refresh)
    /// (in the background) and when a signature names an unknown serial.
    ///
    /// # Errors
    /// [`Error::Config`] when platform certificates are not configured, or WeChat Pay has none
    /// for this merchant (404 `RESOURCE_NOT_EXISTS`: it uses the WeChat Pay public key);
    /// [`PayError::ForgedReply`](crate::pay::PayError::ForgedReply) when the list is not signed by one of its certificates; as
    /// [`prepay`](Self::prepay).
    pub async fn download_certificates(&self) -> Result<Vec<super::PlatformCertificate>> {
        self.inner.verifier.download(self).await
    }

    /// Sends a request value: signs it, sends it (retrying what is safe to retry), verifies
    /// the answer with WeChat Pay's key and reads it ([`PayRequest::read_reply`]).
    ///
    /// # Errors
    /// [`PayError::InvalidRequest`](crate::pay::PayError::InvalidRequest) before sending; [`PayError::Api`](crate::pay::PayError::Api) (WeChat Pay's `code`),
    /// [`PayError::ForgedReply`](crate::pay::PayError::ForgedReply), [`Error::Http`], [`Error::UnexpectedResponse`].
    pub async fn send<R: PayRequest>(&self, request: &R) -> Result<R::Output> {
        let config = &self.inner.config;
        let path = request.to_path(config)?;
        let body = request.to_body(config)?;
        let reply = self.call(R::METHOD, request.endpoint(), path, body).await?;
        request.read_reply(config, &reply.body)
    }

    /// The page's `getBrandWCPayRequest` parameters for `prepay_id`, signed with the merchant
    /// key, with the configured clock's time and a fresh nonce.
    ///
    /// # Errors
    /// [`Error::Config`] when the key cannot sign.
    pub fn brand_wcpay_params(&self, prepay_id: &str) -> Result<BrandWcPayParams> {
        let config = &self.inner.config;
        BrandWcPayParams::rsa(
            config.appid(),
            prepay_id,
            config.merchant_key(),
            config.clock().now_unix_secs(),
            &nonce_str(),
        )
    }

    /// Queries a refund by its `out_refund_no` ([`QueryRefund`],
    /// `GET /v3/refund/domestic/refunds/{…}`).
    ///
    /// # Errors
    /// [`PayError::Api`](crate::pay::PayError::Api) with `RESOURCE_NOT_EXISTS` for an unknown refund; as
    /// [`prepay`](Self::prepay).
    pub async fn query_refund(&self, out_refund_no: &OutRefundNo) -> Result<RefundRecord> {
        self.send(&QueryRefund(out_refund_no.clone())).await
    }

    /// Sends a signed request, retrying transient failures, and verifies the success answer.
    pub(crate) async fn call(
        &self,
        method: Method,
        endpoint: &'static str,
        path_and_query: String,
        body: Option<Vec<u8>>,
    ) -> Result<Reply> {
        let span = tracing::info_span!(
            "wechat_pay_v3_call",
            endpoint,
            status = tracing::field::Empty,
            code = tracing::field::Empty,
            request_id = tracing::field::Empty,
        );
        async {
            let keys = self.inner.verifier.keys(self).await?;
            let raw = self
                .send_with_retries(
                    &method,
                    endpoint,
                    &path_and_query,
                    body.as_deref(),
                    keys.serial(),
                )
                .await?;
            self.inner
                .verifier
                .verify_reply(self, endpoint, &raw)
                .await?;
            Ok(Reply { body: raw.body })
        }
        .instrument(span)
        .await
    }

    /// Sends a signed request; 2xx answers are returned unverified, errors are typed, transient
    /// failures are retried.
    pub(crate) async fn send_with_retries(
        &self,
        method: &Method,
        endpoint: &'static str,
        path_and_query: &str,
        body: Option<&[u8]>,
        wechatpay_serial: Option<&str>,
    ) -> Result<RawReply> {
        let result = with_retries(endpoint, || async move {
            let result = self
                .send_once(method, endpoint, path_and_query, body, wechatpay_serial)
                .await;
            let span = tracing::Span::current();
            let transient = match &result {
                Ok(raw) => {
                    span.record("status", raw.status.as_u16());
                    if let Some(id) = &raw.request_id {
                        span.record("request_id", id.as_str());
                    }
                    false
                }
                Err(Error::Pay(PayError::Api(e))) => {
                    span.record("status", e.status);
                    span.record("code", e.code.as_str());
                    if let Some(id) = &e.request_id {
                        span.record("request_id", id.as_str());
                    }
                    e.status >= 500
                        || matches!(
                            e.code,
                            PayApiErrorCode::SystemError | PayApiErrorCode::ServiceUnavailable
                        )
                }
                Err(Error::Http { .. }) => true,
                Err(_) => false,
            };
            (result, transient)
        })
        .await;
        match &result {
            Err(Error::Pay(PayError::Api(e))) if e.status >= 500 => {
                tracing::warn!(endpoint, error = %e, "WeChat Pay error")
            }
            Err(Error::Pay(PayError::Api(e))) => {
                tracing::info!(endpoint, error = %e, "WeChat Pay error")
            }
            Err(e) => tracing::warn!(endpoint, error = %e, "WeChat Pay call failed"),
            Ok(_) => {}
        }
        result
    }

    async fn send_once(
        &self,
        method: &Method,
        endpoint: &'static str,
        path_and_query: &str,
        body: Option<&[u8]>,
        wechatpay_serial: Option<&str>,
    ) -> Result<RawReply> {
        let config = &self.inner.config;
        let url = reqwest::Url::parse(&format!("{}{path_and_query}", config.base_url()))
            .map_err(|e| Error::config("PayConfigBuilder::base_url", format!("{e}")))?;
        // The signed URL is the one sent, as encoded.
        let canonical = &url[url::Position::BeforePath..];
        let timestamp = config.clock().now_unix_secs();
        let nonce = nonce_str();
        let body_bytes = body.unwrap_or_default();
        let authorization = authorization(
            config.mch_id().as_str(),
            config.merchant_key(),
            method.as_str(),
            canonical,
            timestamp,
            &nonce,
            body_bytes,
        )?;
        let mut request = self
            .inner
            .http
            .request(method.clone(), url.clone())
            .header(http::header::AUTHORIZATION, authorization)
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, USER_AGENT);
        if let Some(serial) = wechatpay_serial {
            request = request.header("Wechatpay-Serial", serial);
        }
        if let Some(body) = body {
            request = request
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        let started = tokio::time::Instant::now();
        let result = exchange(request, endpoint).await;
        crate::metrics::record_api_call(
            endpoint,
            crate::metrics::outcome_of(&result),
            started.elapsed(),
        );
        result
    }
}

/// Sends a built request and reads the answer: 2xx raw (unverified), otherwise the typed error.
async fn exchange(request: reqwest::RequestBuilder, endpoint: &'static str) -> Result<RawReply> {
    {
        let http_err = |source: reqwest::Error| Error::Http {
            endpoint,
            source: source.without_url(),
        };
        let mut response = request.send().await.map_err(http_err)?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let request_id = headers
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = read_capped(&mut response, MAX_REPLY_BODY, endpoint).await?;
        if status.is_success() {
            return Ok(RawReply {
                status,
                headers,
                body: Bytes::from(bytes),
                request_id,
            });
        }
        Err(api_error(endpoint, status, &bytes, request_id))
    }
}

/// Verifies a raw answer with `keys` (used by the certificate download, which bootstraps with
/// the certificates it received).
pub(crate) fn verify_raw(
    keys: &WechatPayKeys,
    config: &PayConfig,
    endpoint: &'static str,
    raw: &RawReply,
) -> Result<()> {
    let forged = |reason: String| {
        Error::Pay(PayError::ForgedReply {
            endpoint,
            reason,
            request_id: raw.request_id.clone(),
        })
    };
    let Some(headers) = SignatureHeaders::from_headers(&raw.headers) else {
        crate::metrics::record_signature_failure(crate::metrics::SignatureKind::PayReply);
        return Err(forged(
            "it carries no Wechatpay-Timestamp, -Nonce, -Signature and -Serial headers".into(),
        ));
    };
    verify_signature(keys, &headers, &raw.body, config.clock().as_ref())
        .map_err(|e| match e {
            Error::Pay(PayError::BadSignature(reason)) => {
                forged(format!("{reason} (Wechatpay-Serial {:?})", headers.serial))
            }
            unknown @ (Error::Pay(PayError::UnknownSerial { .. })
            | Error::Pay(PayError::CertificateNotValid { .. })) => forged(unknown.to_string()),
            other => other,
        })
        .inspect_err(|e| {
            if matches!(e, Error::Pay(PayError::ForgedReply { .. })) {
                crate::metrics::record_signature_failure(crate::metrics::SignatureKind::PayReply);
            }
        })
}

/// The typed error of a non-2xx answer.
fn api_error(
    endpoint: &'static str,
    status: StatusCode,
    body: &[u8],
    request_id: Option<String>,
) -> Error {
    #[derive(Deserialize)]
    struct ErrorBody {
        code: String,
        #[serde(default)]
        message: String,
        #[serde(default)]
        detail: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => Error::Pay(PayError::Api(Box::new(PayApiError {
            endpoint,
            status: status.as_u16(),
            code: PayApiErrorCode::from_code(&e.code),
            message: e.message,
            detail: e.detail.filter(|d| !d.is_null()).map(|d| d.to_string()),
            request_id,
        }))),
        Err(_) if status.is_server_error() => Error::Pay(PayError::Api(Box::new(PayApiError {
            endpoint,
            status: status.as_u16(),
            code: PayApiErrorCode::Other(String::new()),
            message: format!("HTTP {status} without a WeChat Pay error body"),
            detail: None,
            request_id,
        }))),
        Err(_) => Error::UnexpectedResponse {
            endpoint,
            detail: format!(
                "HTTP {status}, not a WeChat Pay error body (Request-ID {})",
                request_id.as_deref().unwrap_or("none")
            ),
        },
    }
}

pub(super) fn parse<T: serde::de::DeserializeOwned>(
    endpoint: &'static str,
    body: &[u8],
) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| Error::UnexpectedResponse {
        endpoint,
        detail: format!("the answer cannot be read: {e}"),
    })
}

/// An identifier placed in a path: only the characters WeChat Pay allows in order and refund
/// numbers and ids, so that nothing needs encoding and the signed URL is the one sent.
pub(super) fn path_segment(value: &str) -> Result<&str> {
    if value.is_empty()
        || value.len() > 64
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|' | b'*' | b'@'))
    {
        return Err(Error::Pay(PayError::InvalidRequest(format!(
            "{value:?} is not an order or refund number WeChat Pay accepts (1 to 64 of 0-9 A-Z a-z _ - | * @)"
        ))));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_typed_with_status_and_request_id() {
        let e = api_error(
            "/v3/pay/transactions/jsapi",
            StatusCode::BAD_REQUEST,
            r#"{"code":"PARAM_ERROR","message":"参数错误","detail":{"field":"/amount/currency","value":"XYZ","issue":"Currency code is invalid","location":"body"}}"#.as_bytes(),
            Some("08F4A5B2-1".into()),
        );
        let Error::Pay(PayError::Api(api)) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(api.code, PayApiErrorCode::ParamError);
        assert_eq!(api.status, 400);
        assert!(api.detail.as_deref().unwrap().contains("/amount/currency"));
        let text = e.to_string();
        assert!(
            text.contains("PARAM_ERROR") && text.contains("08F4A5B2-1"),
            "{text}"
        );
        assert!(!e.is_transient());

        let busy = api_error(
            "/x",
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"code":"SYSTEMERROR","message":"系统错误"}"#.as_bytes(),
            None,
        );
        assert!(
            matches!(&busy, Error::Pay(PayError::Api(a)) if a.code == PayApiErrorCode::SystemError)
        );
        assert!(busy.is_transient());
        // A gateway's HTML 502 is still a retryable WeChat Pay failure.
        let gateway = api_error("/x", StatusCode::BAD_GATEWAY, b"<html>", None);
        assert!(gateway.is_transient(), "{gateway:?}");
        let odd = api_error("/x", StatusCode::FORBIDDEN, b"<html>", Some("R".into()));
        assert!(matches!(odd, Error::UnexpectedResponse { .. }));
    }

    #[test]
    fn path_segments_never_need_encoding() {
        assert!(path_segment("T2024|01*_-@").is_ok());
        for bad in ["", "a/b", "a?b", "a b", "a%2F", "é"] {
            assert!(path_segment(bad).is_err(), "{bad}");
        }
    }
}
