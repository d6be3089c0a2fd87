//! Sending WeChat Pay v2 requests: [`PayRequest`] values, signed as a [`SignedRequest`], one
//! [`PayClient`] that posts
//! it, checks `return_code`, verifies the reply's `sign`, maps `result_code`/`err_code`, and
//! retries `SYSTEMERROR`/`BIZERR_NEED_RETRY` with the same body.

use crate::pay::PayError;
use std::sync::Arc;

use crate::pay::order::nonce_str;
use tracing::Instrument as _;

use super::xml::{Limits, MAX_REPLY_BODY, parse_flat, write_xml};
use http::HeaderMap;

use super::{
    BrandWcPayParams, JsapiOrder, OrderRef, PayConfig, PayFields, PaymentNotification,
    PrepayResponse, RefundNotification, RefundRecord, RefundRequest, SignType, Transaction,
    sign_pay_fields, verify_pay_fields, verify_payment_notification, verify_refund_notification,
};
use crate::pay::ApiVersion;
use crate::pay::client::{pay_client_methods, with_retries};
use crate::pay::v2::PayErrorCode;
use crate::transport::read_capped;
use crate::{Error, Result};

/// A WeChat Pay v2 request as a value: it knows its endpoint, its fields and what WeChat Pay
/// answers; [`PayClient::send`] signs, posts and reads it. Each call WeChat Pay has is one type
/// ([`JsapiOrder`](super::JsapiOrder), [`QueryOrder`](super::QueryOrder),
/// [`CloseOrder`](super::CloseOrder), [`RefundRequest`](super::RefundRequest),
/// [`QueryRefund`](super::QueryRefund)), as in [`v3::PayRequest`](crate::pay::v3::PayRequest).
///
/// ```
/// use wechat_core::OutTradeNo;
/// use wechat_core::pay::v2::{PayConfig, PayRequest, QueryOrder};
///
/// let config = PayConfig::builder("1900000109", "wx1234567890abcdef", "192006250b4c09247ec02edce69f6a2d", "https://shop.example.com/pay/notify").build()?;
/// let query = QueryOrder::from(OutTradeNo::new("T20240101001"));
/// let request = query.to_request(&config, "5K8264ILTKCH16CQ2502SI8ZNMTM67VS")?;
/// assert_eq!(request.endpoint(), "/pay/orderquery");
/// assert_eq!(request.fields().get("out_trade_no"), Some("T20240101001"));
/// assert!(request.fields().get("sign").is_some());
/// # Ok::<(), wechat_core::Error>(())
/// ```
pub trait PayRequest {
    /// What the verified reply is read into.
    type Output;
    /// The endpoint path, e.g. `/pay/unifiedorder`.
    const ENDPOINT: &'static str;
    /// Whether the endpoint needs the merchant client certificate (`/secapi/…`, refunds).
    const CLIENT_CERTIFICATE: bool = false;

    /// The request's own fields, checked (a pure function): everything but `appid`, `mch_id`,
    /// `nonce_str`, `sign_type` and `sign`, which [`to_request`](Self::to_request) adds.
    ///
    /// # Errors
    /// [`PayError::InvalidRequest`](crate::pay::PayError::InvalidRequest) naming a field WeChat Pay would refuse.
    fn to_fields(&self, config: &PayConfig) -> Result<PayFields>;

    /// Reads WeChat Pay's verified, successful reply.
    ///
    /// # Errors
    /// [`Error::UnexpectedResponse`] when a field the answer must have is missing or malformed.
    fn read_reply(&self, config: &PayConfig, reply: PayFields) -> Result<Self::Output>;

    /// The signed request (a pure function of its inputs: pass a fresh `nonce_str`).
    ///
    /// # Errors
    /// As [`to_fields`](Self::to_fields).
    fn to_request(&self, config: &PayConfig, nonce_str: &str) -> Result<SignedRequest> {
        let mut fields = PayFields::new();
        fields.insert("appid", config.appid().as_str());
        fields.insert("mch_id", config.mch_id().as_str());
        fields.insert("nonce_str", nonce_str);
        for (name, value) in self.to_fields(config)?.iter() {
            fields.insert(name, value);
        }
        Ok(SignedRequest::signed(
            Self::ENDPOINT,
            fields,
            config,
            Self::CLIENT_CERTIFICATE,
        ))
    }
}

/// A signed WeChat Pay v2 request: the endpoint and its fields (with `sign`), ready to post.
///
/// Made by [`PayRequest::to_request`]; sent by [`PayClient::send_signed`]. Resending the same
/// value is resending the same parameters, which is what WeChat asks for after `SYSTEMERROR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    endpoint: &'static str,
    fields: PayFields,
    sign_type: SignType,
    mutual_tls: bool,
}

impl SignedRequest {
    /// Signs `fields` (which must not contain `sign`) for `endpoint`; `sign_type` is added to the
    /// fields before signing.
    pub(crate) fn signed(
        endpoint: &'static str,
        mut fields: PayFields,
        config: &PayConfig,
        mutual_tls: bool,
    ) -> Self {
        let sign_type = config.sign_type();
        fields.insert("sign_type", sign_type.as_str());
        let sign = sign_pay_fields(&fields, config.api_key(), sign_type);
        fields.insert("sign", sign);
        Self {
            endpoint,
            fields,
            sign_type,
            mutual_tls,
        }
    }

    /// The endpoint path, e.g. `/pay/unifiedorder`.
    pub fn endpoint(&self) -> &'static str {
        self.endpoint
    }

    /// The signed fields.
    pub fn fields(&self) -> &PayFields {
        &self.fields
    }

    /// The signature algorithm used (and expected on the reply).
    pub fn sign_type(&self) -> SignType {
        self.sign_type
    }

    /// Whether the endpoint needs the merchant client certificate (`/secapi/…`).
    pub fn requires_client_certificate(&self) -> bool {
        self.mutual_tls
    }

    /// The XML body.
    ///
    /// # Errors
    /// [`PayError::Xml`](crate::pay::PayError::Xml) only if a field name is not a plain XML name (never for the built-in
    /// requests).
    pub fn to_xml(&self) -> Result<String> {
        write_xml(self.fields.iter())
    }
}

/// Checks a reply from WeChat Pay and returns its fields when it is trustworthy and successful.
///
/// In order: strict XML parse; `return_code` `FAIL` → [`PayError::Return`](crate::pay::PayError::Return); the `sign` must be
/// present and valid (with the request's sign type) → else [`PayError::BadSignature`](crate::pay::PayError::BadSignature); `appid` and
/// `mch_id`, when present, must be ours; `result_code` `FAIL` → [`PayError::Business`](crate::pay::PayError::Business).
///
/// # Errors
/// As listed above, plus [`PayError::Xml`](crate::pay::PayError::Xml) and [`Error::UnexpectedResponse`].
pub fn check_pay_reply(
    config: &PayConfig,
    endpoint: &'static str,
    sign_type: SignType,
    body: &[u8],
) -> Result<PayFields> {
    let fields = parse_flat(body, "xml", Limits::REPLY)?;
    match fields.get("return_code") {
        Some("SUCCESS") => {}
        Some("FAIL") => {
            return Err(Error::Pay(PayError::Return {
                return_msg: fields.get("return_msg").unwrap_or("").to_owned(),
                endpoint,
            }));
        }
        other => {
            return Err(Error::UnexpectedResponse {
                endpoint,
                detail: format!("return_code is {other:?}"),
            });
        }
    }
    let Some(sign) = fields.get_non_empty("sign") else {
        return Err(Error::Pay(PayError::BadSignature(
            "a SUCCESS reply from WeChat Pay has no sign",
        )));
    };
    verify_pay_fields(&fields, config.api_key(), sign_type, sign)?;
    if fields
        .get_non_empty("appid")
        .is_some_and(|a| a != config.appid().as_str())
        || fields
            .get_non_empty("mch_id")
            .is_some_and(|m| m != config.mch_id().as_str())
    {
        return Err(Error::UnexpectedResponse {
            endpoint,
            detail: "the reply is for another appid or mch_id".into(),
        });
    }
    match fields.get("result_code") {
        Some("SUCCESS") => Ok(fields),
        Some("FAIL") => Err(Error::Pay(PayError::Business {
            code: PayErrorCode::from_code(fields.get("err_code").unwrap_or("")),
            description: fields.get("err_code_des").unwrap_or("").to_owned(),
            endpoint,
        })),
        other => Err(Error::UnexpectedResponse {
            endpoint,
            detail: format!("result_code is {other:?}"),
        }),
    }
}

/// The client for WeChat Pay API v2: cheap to clone (the HTTP clients are shared).
///
/// The flow, and where money safety comes from:
///
/// 1. The server prices the order itself (the browser never sets the amount) and calls
///    `unifiedorder` ([`PayClient::prepay`]) with the buyer's openid.
/// 2. The page receives [`BrandWcPayParams`](crate::pay::v2::BrandWcPayParams) and calls
///    `WeixinJSBridge.invoke('getBrandWCPayRequest', params, cb)`. The page's
///    `get_brand_wcpay_request:ok` is **not** proof of payment.
/// 3. WeChat posts a payment notification:
///    [`PayClient::handle_payment_notification`] verifies it (sign over
///    every field, merchant, app) before the application sees it, and acknowledges only after
///    the application recorded it; WeChat re-sends until then, and duplicates are normal.
/// 4. When no notification arrives, [`PayClient::query_order`] asks WeChat.
///
/// Every reply from WeChat Pay is checked the same way ([`check_pay_reply`]): `return_code`, then
/// the reply's `sign` (a SUCCESS without a valid sign is refused), then `result_code`/`err_code`
/// as [`PayError::Business`](PayError::Business). `SYSTEMERROR` and `BIZERR_NEED_RETRY` are retried with
/// the same parameters. WeChat's documentation:
/// <https://pay.weixin.qq.com/wiki/doc/api/jsapi.php?chapter=9_1>.
///
/// ```no_run
/// # async fn demo() -> wechat_core::Result<()> {
/// use std::net::{IpAddr, Ipv4Addr};
/// use wechat_core::pay::v2::{JsapiOrder, PayClient, PayConfig};
///
/// let pay = PayClient::new(PayConfig::builder(
///     "1900000109",
///     "wx1234567890abcdef",
///     "192006250b4c09247ec02edce69f6a2d",
///     "https://shop.example.com/wechat/pay/notify",
/// ).build()?)?;
/// let order = JsapiOrder::new("T20240101001", "Coffee", 1, "oUser").with_payer_client_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
/// let (prepay, params) = pay.create_jsapi_order(&order).await?;
/// // `params` serialises to exactly what WeixinJSBridge.invoke('getBrandWCPayRequest', …) takes.
/// println!("{} {}", prepay.prepay_id, serde_json::to_string(&params).unwrap());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PayClient {
    config: Arc<PayConfig>,
    http: reqwest::Client,
    secapi: Option<reqwest::Client>,
}

impl PayClient {
    pay_client_methods!(version: ApiVersion::V2);

    /// The payment notification verified ([`verify_payment_notification`]; v2's signature is
    /// in the body, the headers are not read).
    async fn verify_payment(&self, _: &HeaderMap, body: &[u8]) -> Result<PaymentNotification> {
        verify_payment_notification(self.config(), body)
    }

    /// The refund notification verified ([`verify_refund_notification`]); its content is not
    /// authenticated (AES-ECB): [`open_refund`](Self::open_refund) also confirms it.
    async fn verify_refund(&self, _: &HeaderMap, body: &[u8]) -> Result<RefundNotification> {
        verify_refund_notification(self.config(), body)
    }

    /// Like [`PayClient::new`] but sends ordinary calls through `http` (shared with the rest of
    /// the application; it should not follow redirects). The refund client is still built here
    /// because it carries the certificate.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid configuration or certificate.
    pub fn with_http_client(config: PayConfig, http: reqwest::Client) -> Result<Self> {
        let secapi = match config.client_certificate() {
            Some(certificate) => Some(
                config
                    .http_client_builder()?
                    .identity(certificate.identity()?)
                    .build()
                    .map_err(|e| {
                        Error::config(
                            "PayConfigBuilder::client_certificate",
                            format!("cannot build the refund HTTP client: {}", e.without_url()),
                        )
                    })?,
            ),
            None => None,
        };
        Ok(Self {
            config: Arc::new(config),
            http,
            secapi,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PayConfig {
        &self.config
    }

    /// Sends a request value: signs it with a fresh nonce, posts it, verifies the reply and
    /// reads it ([`PayRequest::read_reply`]).
    ///
    /// # Errors
    /// [`PayError::InvalidRequest`](crate::pay::PayError::InvalidRequest) before sending; then as [`send_signed`](Self::send_signed).
    pub async fn send<R: PayRequest>(&self, request: &R) -> Result<R::Output> {
        let signed = request.to_request(&self.config, &nonce_str())?;
        let reply = self.send_signed(&signed).await?;
        request.read_reply(&self.config, reply)
    }

    /// Posts a signed request and returns the verified reply fields.
    ///
    /// `SYSTEMERROR` and `BIZERR_NEED_RETRY`, a 5xx answer, a dropped connection and a timeout
    /// are retried with the same body (3 attempts, 200 ms then 400 ms apart): every v2 call is
    /// idempotent by WeChat's rules (the same `out_trade_no` with the same parameters, the same
    /// `out_refund_no`).
    ///
    /// # Errors
    /// [`PayError::Return`](crate::pay::PayError::Return), [`PayError::Business`](crate::pay::PayError::Business), [`PayError::BadSignature`](crate::pay::PayError::BadSignature), [`PayError::Xml`](crate::pay::PayError::Xml),
    /// [`Error::Http`], [`Error::UnexpectedResponse`]; [`Error::Config`] for a `/secapi/`
    /// request without a client certificate.
    pub async fn send_signed(&self, request: &SignedRequest) -> Result<PayFields> {
        let endpoint = request.endpoint();
        let (client, base) = if request.requires_client_certificate() {
            let client = self.secapi.as_ref().ok_or_else(|| {
                Error::config(
                    "PayConfigBuilder::client_certificate",
                    format!(
                        "{endpoint} needs the merchant API client certificate: configure it with \
                         PayConfigBuilder::client_certificate (apiclient_cert.pem + apiclient_key.pem)"
                    ),
                )
            })?;
            (client, self.config.secapi_base_url())
        } else {
            (&self.http, self.config.base_url())
        };
        let body = request.to_xml()?;
        let url = format!("{base}{endpoint}");
        let span = tracing::info_span!(
            "wechat_pay_call",
            endpoint,
            return_code = tracing::field::Empty,
            err_code = tracing::field::Empty
        );
        async {
            let sign_type = request.sign_type();
            let (url, body) = (&url, &body);
            let result = with_retries(endpoint, || async move {
                let (result, transient) = self
                    .post_once(client, endpoint, url, body, sign_type)
                    .await;
                let system_error = matches!(
                    &result,
                    Err(Error::Pay(PayError::Business {
                        code: PayErrorCode::SystemError,
                        ..
                    }))
                );
                (result, transient || system_error)
            })
            .await;
            let span = tracing::Span::current();
            match &result {
                Ok(_) => {
                    span.record("return_code", "SUCCESS");
                }
                Err(Error::Pay(PayError::Return { return_msg, .. })) => {
                    span.record("return_code", "FAIL");
                    tracing::warn!(endpoint, return_msg = %return_msg, "WeChat Pay refused the request");
                }
                Err(Error::Pay(PayError::Business {
                    code, description, ..
                })) => {
                    span.record("return_code", "SUCCESS");
                    span.record("err_code", code.as_str());
                    tracing::info!(endpoint, err_code = %code, description = %description, "WeChat Pay business error");
                }
                Err(e) => tracing::warn!(endpoint, error = %e, "WeChat Pay call failed"),
            }
            result
        }
        .instrument(span)
        .await
    }

    /// One attempt, and whether its failure is worth sending the same request again: a
    /// gateway's 5xx page, a dropped connection, a timeout may mean the request never reached
    /// WeChat Pay, and every v2 call is idempotent (same order number, same refund number).
    async fn post_once(
        &self,
        client: &reqwest::Client,
        endpoint: &'static str,
        url: &str,
        body: &str,
        sign_type: SignType,
    ) -> (Result<PayFields>, bool) {
        let started = tokio::time::Instant::now();
        let (result, transient) = self.exchange(client, endpoint, url, body, sign_type).await;
        crate::metrics::record_api_call(
            endpoint,
            crate::metrics::outcome_of(&result),
            started.elapsed(),
        );
        if matches!(result, Err(Error::Pay(PayError::BadSignature(_)))) {
            crate::metrics::record_signature_failure(crate::metrics::SignatureKind::PayReply);
        }
        (result, transient)
    }

    /// The HTTP exchange of [`post_once`](Self::post_once).
    async fn exchange(
        &self,
        client: &reqwest::Client,
        endpoint: &'static str,
        url: &str,
        body: &str,
        sign_type: SignType,
    ) -> (Result<PayFields>, bool) {
        let sent = client
            .post(url)
            .header(http::header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .body(body.to_owned())
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(source) => {
                let error = Error::Http {
                    endpoint,
                    source: source.without_url(),
                };
                return (Err(error), true);
            }
        };
        let status = response.status();
        let bytes = match read_capped(&mut response, MAX_REPLY_BODY, endpoint).await {
            Ok(bytes) => bytes,
            Err(e) => {
                let transient = matches!(e, Error::Http { .. }) || status.is_server_error();
                return (Err(e), transient);
            }
        };
        let result = match check_pay_reply(&self.config, endpoint, sign_type, &bytes) {
            Err(Error::Pay(PayError::Xml(detail))) if !status.is_success() => {
                Err(Error::UnexpectedResponse {
                    endpoint,
                    detail: format!("HTTP {status}, not a WeChat Pay reply ({detail})"),
                })
            }
            other => other,
        };
        let transient = result.is_err() && status.is_server_error();
        (result, transient)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pay::v2::PayConfigBuilder;

    fn builder() -> PayConfigBuilder {
        crate::testing::pay_config("https://api.mch.weixin.qq.com", "https://x.example/notify")
    }

    fn config() -> PayConfig {
        builder().build().unwrap()
    }

    fn signed_reply(pairs: &[(&str, &str)], sign_type: SignType) -> Vec<u8> {
        let mut fields: PayFields = pairs.iter().copied().collect();
        let sign = sign_pay_fields(&fields, &config().api_key().clone(), sign_type);
        fields.insert("sign", sign);
        fields.to_xml().unwrap().into_bytes()
    }

    #[test]
    fn reply_success_fail_and_errors() {
        let c = config();
        let ok = signed_reply(
            &[
                ("return_code", "SUCCESS"),
                ("appid", "wx1234567890abcdef"),
                ("mch_id", "1900000109"),
                ("result_code", "SUCCESS"),
                ("prepay_id", "wx1"),
            ],
            SignType::Md5,
        );
        assert_eq!(
            check_pay_reply(&c, "/x", SignType::Md5, &ok)
                .unwrap()
                .get("prepay_id"),
            Some("wx1")
        );
        // Verified with the request's sign type only.
        assert!(matches!(
            check_pay_reply(&c, "/x", SignType::HmacSha256, &ok),
            Err(Error::Pay(PayError::BadSignature(_)))
        ));

        let fail = b"<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[\xe7\xad\xbe\xe5\x90\x8d\xe9\x94\x99\xe8\xaf\xaf]]></return_msg></xml>";
        match check_pay_reply(&c, "/x", SignType::Md5, fail) {
            Err(Error::Pay(PayError::Return { return_msg, .. })) => {
                assert_eq!(return_msg, "签名错误")
            }
            other => panic!("{other:?}"),
        }

        let business = signed_reply(
            &[
                ("return_code", "SUCCESS"),
                ("result_code", "FAIL"),
                ("err_code", "ORDERPAID"),
                ("err_code_des", "该订单已支付"),
            ],
            SignType::HmacSha256,
        );
        match check_pay_reply(&c, "/x", SignType::HmacSha256, &business) {
            Err(Error::Pay(PayError::Business {
                code, description, ..
            })) => {
                assert_eq!(code, PayErrorCode::OrderPaid);
                assert_eq!(description, "该订单已支付");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unsigned_or_tampered_success_is_refused() {
        let c = config();
        let unsigned = b"<xml><return_code>SUCCESS</return_code><result_code>SUCCESS</result_code><prepay_id>wx1</prepay_id></xml>";
        assert!(matches!(
            check_pay_reply(&c, "/x", SignType::Md5, unsigned),
            Err(Error::Pay(PayError::BadSignature(_)))
        ));
        let good = String::from_utf8(signed_reply(
            &[
                ("return_code", "SUCCESS"),
                ("result_code", "SUCCESS"),
                ("prepay_id", "wx1"),
            ],
            SignType::Md5,
        ))
        .unwrap();
        let tampered = good.replace("wx1", "wx2");
        assert!(matches!(
            check_pay_reply(&c, "/x", SignType::Md5, tampered.as_bytes()),
            Err(Error::Pay(PayError::BadSignature(_)))
        ));
        // A signed business failure is also verified before it is believed.
        let forged_fail = b"<xml><return_code>SUCCESS</return_code><result_code>FAIL</result_code><err_code>ORDERPAID</err_code><sign>00</sign></xml>";
        assert!(matches!(
            check_pay_reply(&c, "/x", SignType::Md5, forged_fail),
            Err(Error::Pay(PayError::BadSignature(_)))
        ));
        let other_mch = signed_reply(
            &[
                ("return_code", "SUCCESS"),
                ("mch_id", "1"),
                ("result_code", "SUCCESS"),
            ],
            SignType::Md5,
        );
        assert!(matches!(
            check_pay_reply(&c, "/x", SignType::Md5, &other_mch),
            Err(Error::UnexpectedResponse { .. })
        ));
        assert!(matches!(
            check_pay_reply(&c, "/x", SignType::Md5, b"<html>"),
            Err(Error::Pay(PayError::Xml(_)))
        ));
    }

    #[test]
    fn requests_are_signed_with_sign_type_included() {
        let c = builder().sign_type(SignType::HmacSha256).build().unwrap();
        let fields: PayFields = [("appid", "wx1234567890abcdef"), ("nonce_str", "n")]
            .into_iter()
            .collect();
        let request = SignedRequest::signed("/pay/orderquery", fields, &c, false);
        assert_eq!(request.fields().get("sign_type"), Some("HMAC-SHA256"));
        let sign = request.fields().get("sign").unwrap();
        assert!(
            verify_pay_fields(request.fields(), c.api_key(), SignType::HmacSha256, sign).is_ok()
        );
        let xml = request.to_xml().unwrap();
        assert!(
            xml.contains("<sign_type><![CDATA[HMAC-SHA256]]></sign_type>")
                || xml.contains("<sign_type>HMAC-SHA256</sign_type>"),
            "{xml}"
        );
    }

    #[test]
    fn nonce_is_32_alphanumeric() {
        let a = nonce_str();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, nonce_str());
    }
}
