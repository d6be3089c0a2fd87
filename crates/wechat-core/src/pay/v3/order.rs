//! API v3 JSAPI orders: the prepay request, the page's `getBrandWCPayRequest` parameters, and
//! the transaction object that queries and payment notifications carry.

use crate::pay::PayError;
use std::net::IpAddr;

use serde::{Deserialize, Deserializer, Serialize};

use http::Method;

use super::client::{parse, path_segment};
use super::{MerchantKey, PayConfig, PayRequest, pay_sign};
use crate::pay::order::validate_out_trade_no;
use crate::pay::{BrandWcPayParams, CloseOrder, OrderRef, QueryOrder, TradeState};
use crate::{AppId, Error, MchId, OpenId, OutTradeNo, Result, TransactionId};

/// A JSAPI order to place with `POST /v3/pay/transactions/jsapi`.
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use wechat_core::pay::v3::JsapiOrder;
///
/// let order = JsapiOrder::new("T20240101001", "Coffee", 1, "oUser")
///     .with_payer_client_ip(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)))
///     .with_attach("table=7");
/// assert!(order.validate().is_ok());
/// assert!(JsapiOrder::new("T1", "Coffee", 1, "oUser").validate().is_err()); // 6 characters at least
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsapiOrder {
    /// The merchant's order number: 6 to 32 of `[0-9A-Za-z_-|*]`, unique per merchant.
    pub out_trade_no: OutTradeNo,
    /// The description shown in the payer's bill: 1 to 127 characters.
    pub description: String,
    /// The amount in fen (1 = 0.01 yuan); must be positive.
    pub total: u64,
    /// The payer, who must belong to the configured app id.
    pub openid: OpenId,
    /// The payer's client IP (`scene_info.payer_client_ip`).
    pub payer_client_ip: Option<IpAddr>,
    /// Merchant data echoed in queries and the notification: at most 128 characters.
    pub attach: Option<String>,
    /// The last moment the payer can pay, RFC 3339 (`2025-12-01T10:34:56+08:00`).
    pub time_expire: Option<String>,
    /// A notify URL for this order instead of the configured one.
    pub notify_url: Option<String>,
}

impl JsapiOrder {
    /// An order of `total` fen for `openid`.
    pub fn new(
        out_trade_no: impl Into<OutTradeNo>,
        description: impl Into<String>,
        total: u64,
        openid: impl Into<OpenId>,
    ) -> Self {
        Self {
            out_trade_no: out_trade_no.into(),
            description: description.into(),
            total,
            openid: openid.into(),
            payer_client_ip: None,
            attach: None,
            time_expire: None,
            notify_url: None,
        }
    }

    /// Sets the payer's client IP.
    #[must_use]
    pub fn with_payer_client_ip(mut self, ip: IpAddr) -> Self {
        self.payer_client_ip = Some(ip);
        self
    }

    /// Sets `attach`, echoed back in the notification.
    #[must_use]
    pub fn with_attach(mut self, attach: impl Into<String>) -> Self {
        self.attach = Some(attach.into());
        self
    }

    /// Sets `time_expire` (RFC 3339 with offset).
    #[must_use]
    pub fn with_time_expire(mut self, time_expire: impl Into<String>) -> Self {
        self.time_expire = Some(time_expire.into());
        self
    }

    /// Sets a notify URL for this order.
    #[must_use]
    pub fn with_notify_url(mut self, url: impl Into<String>) -> Self {
        self.notify_url = Some(url.into());
        self
    }

    /// Checks the fields WeChat Pay would refuse, before anything is sent.
    ///
    /// # Errors
    /// [`PayError::InvalidRequest`](crate::pay::PayError::InvalidRequest) naming the field.
    pub fn validate(&self) -> Result<()> {
        validate_out_trade_no(&self.out_trade_no)?;
        if self.out_trade_no.as_str().len() < 6 {
            return Err(Error::Pay(PayError::InvalidRequest(format!(
                "out_trade_no {:?} must be at least 6 characters in API v3",
                self.out_trade_no.as_str()
            ))));
        }
        check_text("description", &self.description, 1, 127)?;
        if self.total == 0 {
            return Err(Error::Pay(PayError::InvalidRequest(
                "amount.total must be a positive number of fen".into(),
            )));
        }
        if self.total > i64::MAX as u64 {
            return Err(Error::Pay(PayError::InvalidRequest(
                "amount.total is too large".into(),
            )));
        }
        if self.openid.as_str().is_empty() || self.openid.as_str().len() > 128 {
            return Err(Error::Pay(PayError::InvalidRequest(
                "payer.openid is required (1 to 128 characters) for a JSAPI order".into(),
            )));
        }
        if let Some(attach) = &self.attach {
            check_text("attach", attach, 0, 128)?;
        }
        if let Some(t) = &self.time_expire {
            if !looks_like_rfc3339(t) {
                return Err(Error::Pay(PayError::InvalidRequest(format!(
                    "time_expire {t:?} must be RFC 3339 with an offset, e.g. 2025-12-01T10:34:56+08:00"
                ))));
            }
        }
        Ok(())
    }
}

impl PayRequest for JsapiOrder {
    type Output = PrepayResponse;
    const ENDPOINT: &'static str = "/v3/pay/transactions/jsapi";
    const METHOD: Method = Method::POST;

    fn to_path(&self, _config: &PayConfig) -> Result<String> {
        Ok(Self::ENDPOINT.to_owned())
    }

    /// The JSON body of the prepay request, after [`JsapiOrder::validate`].
    fn to_body(&self, config: &PayConfig) -> Result<Option<Vec<u8>>> {
        self.validate()?;
        let body = PrepayBody {
            appid: config.appid().as_str(),
            mchid: config.mch_id().as_str(),
            description: &self.description,
            out_trade_no: self.out_trade_no.as_str(),
            time_expire: self.time_expire.as_deref(),
            attach: self.attach.as_deref(),
            notify_url: self.notify_url.as_deref().unwrap_or(config.notify_url()),
            amount: PrepayAmount {
                total: self.total,
                currency: "CNY",
            },
            payer: PrepayPayer {
                openid: self.openid.as_str(),
            },
            scene_info: self.payer_client_ip.map(|ip| SceneInfo {
                payer_client_ip: ip.to_string(),
            }),
        };
        serde_json::to_vec(&body).map(Some).map_err(|e| {
            Error::Pay(PayError::InvalidRequest(format!(
                "cannot encode the order: {e}"
            )))
        })
    }

    fn read_reply(&self, _config: &PayConfig, reply: &[u8]) -> Result<PrepayResponse> {
        parse(Self::ENDPOINT, reply)
    }
}

/// `GET /v3/pay/transactions/out-trade-no/{out_trade_no}` or
/// `GET /v3/pay/transactions/id/{transaction_id}`; the answer must be about this merchant's and
/// app's order.
impl PayRequest for QueryOrder {
    type Output = Transaction;
    /// By order number; [`endpoint`](PayRequest::endpoint) names the one used.
    const ENDPOINT: &'static str = "/v3/pay/transactions/out-trade-no/{out_trade_no}";
    const METHOD: Method = Method::GET;

    fn endpoint(&self) -> &'static str {
        match self.0 {
            OrderRef::OutTradeNo(_) => Self::ENDPOINT,
            OrderRef::TransactionId(_) => "/v3/pay/transactions/id/{transaction_id}",
        }
    }

    fn to_path(&self, config: &PayConfig) -> Result<String> {
        let mchid = config.mch_id().as_str();
        Ok(match &self.0 {
            OrderRef::OutTradeNo(no) => format!(
                "/v3/pay/transactions/out-trade-no/{}?mchid={mchid}",
                path_segment(no.as_str())?
            ),
            OrderRef::TransactionId(id) => format!(
                "/v3/pay/transactions/id/{}?mchid={mchid}",
                path_segment(id.as_str())?
            ),
        })
    }

    fn to_body(&self, _config: &PayConfig) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }

    /// The transaction, refused unless it is of this merchant and app (an answer is signed by
    /// WeChat Pay, but must also be about our order).
    fn read_reply(&self, config: &PayConfig, reply: &[u8]) -> Result<Transaction> {
        let endpoint = self.endpoint();
        let transaction: Transaction = parse(endpoint, reply)?;
        if transaction.mchid != *config.mch_id() || transaction.appid != *config.appid() {
            return Err(Error::UnexpectedResponse {
                endpoint,
                detail: format!(
                    "the transaction is for merchant {} and app {}, not this merchant's",
                    transaction.mchid, transaction.appid
                ),
            });
        }
        Ok(transaction)
    }
}

/// `POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close` (WeChat Pay answers 204).
impl PayRequest for CloseOrder {
    type Output = ();
    const ENDPOINT: &'static str = "/v3/pay/transactions/out-trade-no/{out_trade_no}/close";
    const METHOD: Method = Method::POST;

    fn to_path(&self, _config: &PayConfig) -> Result<String> {
        Ok(format!(
            "/v3/pay/transactions/out-trade-no/{}/close",
            path_segment(self.0.as_str())?
        ))
    }

    fn to_body(&self, config: &PayConfig) -> Result<Option<Vec<u8>>> {
        serde_json::to_vec(&serde_json::json!({ "mchid": config.mch_id().as_str() }))
            .map(Some)
            .map_err(|e| {
                Error::Pay(PayError::InvalidRequest(format!(
                    "cannot encode the close request: {e}"
                )))
            })
    }

    fn read_reply(&self, _config: &PayConfig, _reply: &[u8]) -> Result<()> {
        Ok(())
    }
}

/// Checks a text field: its length in characters and no 4-byte UTF-8 (WeChat Pay refuses
/// characters outside the Basic Multilingual Plane, such as most emoji).
pub(crate) fn check_text(field: &str, value: &str, min: usize, max: usize) -> Result<()> {
    let chars = value.chars().count();
    if chars < min || chars > max {
        return Err(Error::Pay(PayError::InvalidRequest(format!(
            "{field} must be {min} to {max} characters (it has {chars})"
        ))));
    }
    if value.chars().any(|c| c.len_utf8() == 4) {
        return Err(Error::Pay(PayError::InvalidRequest(format!(
            "{field} holds a character WeChat Pay refuses (4-byte UTF-8, such as an emoji)"
        ))));
    }
    Ok(())
}

/// `yyyy-MM-ddTHH:mm:ss` followed by `Z` or `±HH:MM` (WeChat Pay wants an offset).
fn looks_like_rfc3339(t: &str) -> bool {
    let b = t.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() == 25
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && matches!(b[19], b'+' | b'-')
        && digits(20..22)
        && b[22] == b':'
        && digits(23..25)
}

#[derive(Serialize)]
struct PrepayBody<'a> {
    appid: &'a str,
    mchid: &'a str,
    description: &'a str,
    out_trade_no: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_expire: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attach: Option<&'a str>,
    notify_url: &'a str,
    amount: PrepayAmount,
    payer: PrepayPayer<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scene_info: Option<SceneInfo>,
}

#[derive(Serialize)]
struct PrepayAmount {
    total: u64,
    currency: &'static str,
}

#[derive(Serialize)]
struct PrepayPayer<'a> {
    openid: &'a str,
}

#[derive(Serialize)]
struct SceneInfo {
    payer_client_ip: String,
}

/// The answer to a prepay request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PrepayResponse {
    /// The prepay id the page pays with (usable for about 2 hours).
    pub prepay_id: String,
}

impl BrandWcPayParams {
    /// The parameters for an API v3 order (`signType` `RSA`, `paySign` = base64 SHA256-RSA over
    /// `appId\ntimeStamp\nnonceStr\npackage\n` by the merchant key); pass the current unix time
    /// and a fresh nonce.
    ///
    /// ```
    /// use wechat_core::pay::v3::{BrandWcPayParams, MerchantKey};
    /// use wechat_core::AppId;
    ///
    /// let key = MerchantKey::from_pem(&std::fs::read("tests/vectors/v3/rsa_test_private_key.pem")?, "F5765756002FDD77")?;
    /// let params = BrandWcPayParams::rsa(&AppId::from("wx8888888888888888"), "wx201410272009395522657a690389285100", &key, 1414561699, "5K8264ILTKCH16CQ2502SI8ZNMTM67VS")?;
    /// let json = serde_json::to_value(&params)?;
    /// assert_eq!(json["signType"], "RSA");
    /// assert_eq!(json["package"], "prepay_id=wx201410272009395522657a690389285100");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] when the key cannot sign (not expected with a key that loaded).
    pub fn rsa(
        appid: &AppId,
        prepay_id: &str,
        key: &MerchantKey,
        time_stamp: u64,
        nonce_str: &str,
    ) -> Result<Self> {
        let time_stamp = time_stamp.to_string();
        let package = format!("prepay_id={prepay_id}");
        let pay_sign = pay_sign(key, appid.as_str(), &time_stamp, nonce_str, &package)?;
        Ok(Self {
            app_id: appid.as_str().to_owned(),
            time_stamp,
            nonce_str: nonce_str.to_owned(),
            package,
            sign_type: "RSA".to_owned(),
            pay_sign,
        })
    }
}

/// A transaction (order) as WeChat Pay reports it: the answer of an order query, and the
/// decrypted resource of a payment notification.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Transaction {
    /// The app id.
    pub appid: AppId,
    /// The merchant id.
    pub mchid: MchId,
    /// The merchant's order number.
    pub out_trade_no: OutTradeNo,
    /// WeChat Pay's transaction id (absent while unpaid).
    #[serde(default)]
    pub transaction_id: Option<TransactionId>,
    /// `JSAPI`, `NATIVE`, … (absent while unpaid).
    #[serde(default)]
    pub trade_type: Option<String>,
    /// The state: `SUCCESS`, `REFUND`, `NOTPAY`, `CLOSED`, …
    #[serde(deserialize_with = "trade_state")]
    pub trade_state: TradeState,
    /// WeChat Pay's description of the state.
    #[serde(default)]
    pub trade_state_desc: Option<String>,
    /// The payer's bank or `OTHERS`.
    #[serde(default)]
    pub bank_type: Option<String>,
    /// The order's `attach`.
    #[serde(default)]
    pub attach: Option<String>,
    /// When payment completed, RFC 3339.
    #[serde(default)]
    pub success_time: Option<String>,
    /// The payer.
    #[serde(default)]
    pub payer: Option<TransactionPayer>,
    /// The amounts (absent for some unpaid orders).
    #[serde(default)]
    pub amount: Option<TransactionAmount>,
}

/// The payer of a [`Transaction`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TransactionPayer {
    /// The payer's openid under the order's app id.
    #[serde(default)]
    pub openid: Option<OpenId>,
}

/// The amounts of a [`Transaction`], in fen.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TransactionAmount {
    /// The order amount.
    #[serde(default)]
    pub total: Option<u64>,
    /// What the payer paid (after coupons).
    #[serde(default)]
    pub payer_total: Option<u64>,
    /// The currency, `CNY`.
    #[serde(default)]
    pub currency: Option<String>,
    /// The payer's currency, `CNY`.
    #[serde(default)]
    pub payer_currency: Option<String>,
}

impl Transaction {
    /// The order amount in fen, when reported.
    pub fn total(&self) -> Option<u64> {
        self.amount.as_ref().and_then(|a| a.total)
    }

    /// The payer's openid, when reported.
    pub fn openid(&self) -> Option<&OpenId> {
        self.payer.as_ref().and_then(|p| p.openid.as_ref())
    }
}

fn trade_state<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<TradeState, D::Error> {
    let wire = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    Ok(TradeState::from_wire(&wire))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_checks_name_the_field() {
        let ok = JsapiOrder::new("T2024010100", "Coffee", 1, "oUser");
        assert!(ok.validate().is_ok());
        let cases = [
            (JsapiOrder::new("T2024", "Coffee", 1, "oUser"), "at least 6"),
            (
                JsapiOrder::new("T2024 0101", "Coffee", 1, "oUser"),
                "out_trade_no",
            ),
            (
                JsapiOrder::new("T2024010100", "", 1, "oUser"),
                "description",
            ),
            (
                JsapiOrder::new("T2024010100", "x".repeat(128), 1, "oUser"),
                "description",
            ),
            (
                JsapiOrder::new("T2024010100", "Coffee ☕️🍰", 1, "oUser"),
                "4-byte",
            ),
            (
                JsapiOrder::new("T2024010100", "Coffee", 0, "oUser"),
                "amount.total",
            ),
            (
                JsapiOrder::new("T2024010100", "Coffee", 1, ""),
                "payer.openid",
            ),
            (ok.clone().with_attach("a".repeat(129)), "attach"),
            (ok.clone().with_time_expire("20251201103456"), "time_expire"),
        ];
        for (order, field) in cases {
            let err = order.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{err} should name {field}");
        }
        // 127 characters of Chinese are fine: the limit counts characters, not bytes.
        assert!(
            JsapiOrder::new("T2024010100", "咖".repeat(127), 1, "oUser")
                .validate()
                .is_ok()
        );
        assert!(
            ok.with_time_expire("2025-12-01T10:34:56+08:00")
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn transaction_reads_wechat_pay_json_and_tolerates_new_fields() {
        let paid: Transaction = serde_json::from_str(
            r#"{"appid":"wx1","mchid":"19","out_trade_no":"T2024010100","transaction_id":"4200","trade_type":"JSAPI",
               "trade_state":"SUCCESS","trade_state_desc":"支付成功","bank_type":"OTHERS","attach":"",
               "success_time":"2025-12-01T10:34:56+08:00","payer":{"openid":"oUser"},
               "amount":{"total":100,"payer_total":90,"currency":"CNY","payer_currency":"CNY"},"new_field":[1]}"#,
        )
        .unwrap();
        assert_eq!(paid.trade_state, TradeState::Success);
        assert_eq!(paid.total(), Some(100));
        assert_eq!(paid.openid().map(OpenId::as_str), Some("oUser"));
        let unpaid: Transaction = serde_json::from_str(
            r#"{"appid":"wx1","mchid":"19","out_trade_no":"T2024010100","trade_state":"NOTPAY","amount":{"total":100}}"#,
        )
        .unwrap();
        assert_eq!(unpaid.trade_state, TradeState::NotPay);
        assert_eq!(unpaid.transaction_id, None);
        let odd: Transaction = serde_json::from_str(
            r#"{"appid":"wx1","mchid":"19","out_trade_no":"T2024010100","trade_state":"SOMETHING_NEW"}"#,
        )
        .unwrap();
        assert_eq!(odd.trade_state, TradeState::Other("SOMETHING_NEW".into()));
    }
}
