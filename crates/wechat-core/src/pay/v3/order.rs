//! API v3 orders: the prepay requests of [`Order`](crate::pay::Order) (JSAPI, Native, H5), the
//! page's `getBrandWCPayRequest` parameters, and the transaction object that queries and
//! payment notifications carry.

use crate::pay::PayError;
use serde::{Deserialize, Deserializer, Serialize};

use http::Method;

use super::client::{parse, path_segment};
use super::{MerchantKey, PayConfig, PayRequest, pay_sign};
use crate::pay::order::validate_out_trade_no;
use crate::pay::{
    BrandWcPayParams, CloseOrder, H5Info, H5Kind, H5Order, H5Prepay, JsapiOrder, NativeOrder,
    NativePrepay, Order, OrderRef, QueryOrder, TradeState, TradeType,
};
use crate::{AppId, Error, MchId, OpenId, OutTradeNo, Result, TransactionId};

/// Checks what every v3 order says, by API v3's rules, before anything is sent.
fn validate<T>(order: &Order<T>) -> Result<()> {
    validate_out_trade_no(&order.out_trade_no)?;
    if order.out_trade_no.as_str().len() < 6 {
        return Err(Error::Pay(PayError::InvalidRequest(format!(
            "out_trade_no {:?} must be at least 6 characters in API v3",
            order.out_trade_no.as_str()
        ))));
    }
    check_text("description", &order.description, 1, 127)?;
    if order.total == 0 {
        return Err(Error::Pay(PayError::InvalidRequest(
            "amount.total must be a positive number of fen".into(),
        )));
    }
    if order.total > i64::MAX as u64 {
        return Err(Error::Pay(PayError::InvalidRequest(
            "amount.total is too large".into(),
        )));
    }
    if let Some(attach) = &order.attach {
        check_text("attach", attach, 0, 128)?;
    }
    Ok(())
}

/// The prepay body of `order` (checked), with the trade type's `payer` and `h5_info`.
fn prepay_body<T>(
    order: &Order<T>,
    config: &PayConfig,
    payer: Option<&OpenId>,
    h5_info: Option<&H5Info>,
) -> Result<Option<Vec<u8>>> {
    validate(order)?;
    let time_expire =
        order
            .time_expire_beijing()
            .map(|[year, month, day, hour, minute, second]| {
                format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}+08:00")
            });
    let body = PrepayBody {
        appid: config.appid().as_str(),
        mchid: config.mch_id().as_str(),
        description: &order.description,
        out_trade_no: order.out_trade_no.as_str(),
        time_expire,
        attach: order.attach.as_deref(),
        notify_url: order.notify_url.as_deref().unwrap_or(config.notify_url()),
        amount: PrepayAmount {
            total: order.total,
            currency: "CNY",
        },
        payer: payer.map(|openid| PrepayPayer {
            openid: openid.as_str(),
        }),
        scene_info: order.client_ip().map(|ip| SceneInfo {
            payer_client_ip: ip.to_string(),
            h5_info: h5_info.map(H5InfoBody::from),
        }),
    };
    serde_json::to_vec(&body).map(Some).map_err(|e| {
        Error::Pay(PayError::InvalidRequest(format!(
            "cannot encode the order: {e}"
        )))
    })
}

/// `POST /v3/pay/transactions/jsapi`: the prepay id the page pays with.
impl PayRequest for JsapiOrder {
    type Output = PrepayResponse;
    const ENDPOINT: &'static str = "/v3/pay/transactions/jsapi";
    const METHOD: Method = Method::POST;

    /// The JSON body, checked: the order's fields and `payer.openid` (1 to 128 characters).
    fn to_body(&self, config: &PayConfig) -> Result<Option<Vec<u8>>> {
        let openid = &self.trade.openid;
        if openid.as_str().is_empty() || openid.as_str().len() > 128 {
            return Err(Error::Pay(PayError::InvalidRequest(
                "payer.openid is required (1 to 128 characters) for a JSAPI order".into(),
            )));
        }
        prepay_body(self, config, Some(openid), None)
    }

    fn read_reply(&self, _config: &PayConfig, reply: &[u8]) -> Result<PrepayResponse> {
        parse(Self::ENDPOINT, reply)
    }
}

/// `POST /v3/pay/transactions/native`: the `code_url` to show as a QR code.
impl PayRequest for NativeOrder {
    type Output = NativePrepay;
    const ENDPOINT: &'static str = "/v3/pay/transactions/native";
    const METHOD: Method = Method::POST;

    /// The JSON body, checked: the order's fields, no `payer`.
    fn to_body(&self, config: &PayConfig) -> Result<Option<Vec<u8>>> {
        prepay_body(self, config, None, None)
    }

    fn read_reply(&self, _config: &PayConfig, reply: &[u8]) -> Result<NativePrepay> {
        let answer: NativePrepay = parse(Self::ENDPOINT, reply)?;
        if answer.code_url.is_empty() {
            return Err(Error::UnexpectedResponse {
                endpoint: Self::ENDPOINT,
                detail: "the answer has an empty code_url".into(),
            });
        }
        Ok(answer)
    }
}

/// `POST /v3/pay/transactions/h5`: the cashier page to send the phone browser to.
impl PayRequest for H5Order {
    type Output = H5Prepay;
    const ENDPOINT: &'static str = "/v3/pay/transactions/h5";
    const METHOD: Method = Method::POST;

    /// The JSON body, checked: the order's fields and `scene_info` with `payer_client_ip` and
    /// `h5_info` (both required for H5).
    fn to_body(&self, config: &PayConfig) -> Result<Option<Vec<u8>>> {
        if self.payer_client_ip.is_none() {
            return Err(Error::Pay(PayError::InvalidRequest(
                "scene_info.payer_client_ip is required for an H5 order: the buyer's IP, which WeChat Pay compares with the one that opens the cashier page".into(),
            )));
        }
        let info = &self.trade.info;
        for (field, value, max) in [
            ("h5_info.app_name", &info.app_name, 64),
            ("h5_info.app_url", &info.app_url, 128),
            ("h5_info.bundle_id", &info.bundle_id, 128),
            ("h5_info.package_name", &info.package_name, 128),
        ] {
            if let Some(value) = value {
                check_text(field, value, 1, max)?;
            }
        }
        prepay_body(self, config, None, Some(info))
    }

    fn read_reply(&self, _config: &PayConfig, reply: &[u8]) -> Result<H5Prepay> {
        #[derive(Deserialize)]
        struct Answer {
            h5_url: String,
        }
        let answer: Answer = parse(Self::ENDPOINT, reply)?;
        if !answer.h5_url.starts_with("https://") && !answer.h5_url.starts_with("http://") {
            return Err(Error::UnexpectedResponse {
                endpoint: Self::ENDPOINT,
                detail: "the answer's h5_url is not a web address".into(),
            });
        }
        Ok(H5Prepay {
            h5_url: answer.h5_url,
        })
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

#[derive(Serialize)]
struct PrepayBody<'a> {
    appid: &'a str,
    mchid: &'a str,
    description: &'a str,
    out_trade_no: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    time_expire: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attach: Option<&'a str>,
    notify_url: &'a str,
    amount: PrepayAmount,
    #[serde(skip_serializing_if = "Option::is_none")]
    payer: Option<PrepayPayer<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scene_info: Option<SceneInfo<'a>>,
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
struct SceneInfo<'a> {
    payer_client_ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    h5_info: Option<H5InfoBody<'a>>,
}

#[derive(Serialize)]
struct H5InfoBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bundle_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    package_name: Option<&'a str>,
}

impl<'a> From<&'a H5Info> for H5InfoBody<'a> {
    fn from(info: &'a H5Info) -> Self {
        Self {
            kind: match info.kind {
                H5Kind::Wap => "Wap",
                H5Kind::Ios => "iOS",
                H5Kind::Android => "Android",
            },
            app_name: info.app_name.as_deref(),
            app_url: info.app_url.as_deref(),
            bundle_id: info.bundle_id.as_deref(),
            package_name: info.package_name.as_deref(),
        }
    }
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
    pub trade_type: Option<TradeType>,
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

    fn config() -> PayConfig {
        let vector = |name: &str| {
            std::fs::read(format!(
                "{}/tests/vectors/v3/{name}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap()
        };
        let key =
            MerchantKey::from_pem(&vector("rsa_test_private_key.pem"), "F5765756002FDD77").unwrap();
        let public = super::super::WechatPayPublicKey::from_pem(
            "PUB_KEY_ID_01",
            &vector("rsa_test_public_key.pem"),
        )
        .unwrap();
        PayConfig::builder(
            "1900000109",
            "wx1234567890abcdef",
            key,
            "0123456789abcdefghijABCDEFGHIJ01",
            "https://shop.example.com/pay/notify",
        )
        .wechat_pay_public_key(public)
        .build()
        .unwrap()
    }

    fn body<R: PayRequest>(request: &R) -> serde_json::Value {
        serde_json::from_slice(&request.to_body(&config()).unwrap().unwrap()).unwrap()
    }

    #[test]
    fn order_checks_name_the_field() {
        let ok = JsapiOrder::new("T2024010100", "Coffee", 1, "oUser");
        assert!(ok.to_body(&config()).is_ok());
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
        ];
        for (order, field) in cases {
            let err = order.to_body(&config()).unwrap_err().to_string();
            assert!(err.contains(field), "{err} should name {field}");
        }
        // 127 characters of Chinese are fine: the limit counts characters, not bytes.
        assert!(
            JsapiOrder::new("T2024010100", "咖".repeat(127), 1, "oUser")
                .to_body(&config())
                .is_ok()
        );
    }

    #[test]
    fn the_three_trade_types_send_wechat_pays_bodies() {
        let ip: std::net::IpAddr = "::ffff:1.2.3.4".parse().unwrap();
        // 2025-12-01T02:34:56Z is 10:34:56 in Beijing.
        let jsapi = JsapiOrder::new("T2024010100", "Coffee", 100, "oUser")
            .with_payer_client_ip(ip)
            .with_time_expire(1_764_556_496);
        let json = body(&jsapi);
        assert_eq!(json["payer"]["openid"], "oUser");
        assert_eq!(json["scene_info"]["payer_client_ip"], "1.2.3.4");
        assert_eq!(json["time_expire"], "2025-12-01T10:34:56+08:00");
        assert_eq!(
            json["amount"],
            serde_json::json!({"total": 100, "currency": "CNY"})
        );
        assert_eq!(JsapiOrder::ENDPOINT, "/v3/pay/transactions/jsapi");

        let native = NativeOrder::new("T2024010101", "Coffee", 100).with_product_id("SKU-1");
        let json = body(&native);
        assert_eq!(NativeOrder::ENDPOINT, "/v3/pay/transactions/native");
        assert!(
            json.get("payer").is_none() && json.get("scene_info").is_none(),
            "{json}"
        );
        assert!(
            json.get("product_id").is_none(),
            "v3 has no product_id: {json}"
        );
        assert_eq!(json["appid"], "wx1234567890abcdef");
        assert_eq!(json["notify_url"], "https://shop.example.com/pay/notify");

        let h5 = H5Order::new(
            "T2024010102",
            "Coffee",
            100,
            "1.2.3.4".parse().unwrap(),
            H5Info::wap("Shop", "https://shop.example.com"),
        );
        let json = body(&h5);
        assert_eq!(H5Order::ENDPOINT, "/v3/pay/transactions/h5");
        assert!(json.get("payer").is_none(), "{json}");
        assert_eq!(
            json["scene_info"],
            serde_json::json!({"payer_client_ip": "1.2.3.4", "h5_info": {"type": "Wap", "app_name": "Shop", "app_url": "https://shop.example.com"}})
        );
        let ios = H5Order::new(
            "T2024010103",
            "Coffee",
            100,
            ip,
            H5Info::ios("Shop", "com.example.shop"),
        );
        assert_eq!(
            body(&ios)["scene_info"]["h5_info"],
            serde_json::json!({"type": "iOS", "app_name": "Shop", "bundle_id": "com.example.shop"})
        );
        // H5 needs the buyer's IP: WeChat Pay compares it with the one that opens the page.
        let mut no_ip = h5.clone();
        no_ip.payer_client_ip = None;
        let err = no_ip.to_body(&config()).unwrap_err().to_string();
        assert!(err.contains("payer_client_ip"), "{err}");
        let long_name = H5Order::new(
            "T2024010104",
            "Coffee",
            1,
            ip,
            H5Info::wap("n".repeat(65), "https://x"),
        );
        assert!(
            long_name
                .to_body(&config())
                .unwrap_err()
                .to_string()
                .contains("app_name")
        );
    }

    #[test]
    fn native_and_h5_answers_are_read_and_checked() {
        let native = NativeOrder::new("T2024010101", "Coffee", 100);
        let answer = native
            .read_reply(
                &config(),
                br#"{"code_url":"weixin://wxpay/bizpayurl?pr=p4lpSuKzz"}"#,
            )
            .unwrap();
        assert_eq!(answer.code_url, "weixin://wxpay/bizpayurl?pr=p4lpSuKzz");
        assert!(native.read_reply(&config(), br#"{"code_url":""}"#).is_err());
        assert!(
            native
                .read_reply(&config(), br#"{"prepay_id":"wx1"}"#)
                .is_err()
        );

        let h5 = H5Order::new(
            "T2024010102",
            "Coffee",
            100,
            "1.2.3.4".parse().unwrap(),
            H5Info::wap("Shop", "https://shop.example.com"),
        );
        let answer = h5
            .read_reply(
                &config(),
                br#"{"h5_url":"https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx2016121516420242444321ca0631331346&package=1405458241"}"#,
            )
            .unwrap();
        assert_eq!(
            answer.url_with_redirect("https://shop.example.com/orders/T1?x=1&y=2"),
            "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx2016121516420242444321ca0631331346&package=1405458241&redirect_url=https%3A%2F%2Fshop.example.com%2Forders%2FT1%3Fx%3D1%26y%3D2"
        );
        assert!(
            h5.read_reply(&config(), br#"{"h5_url":"javascript:alert(1)"}"#)
                .is_err()
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
        assert_eq!(paid.trade_type, Some(TradeType::Jsapi));
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
