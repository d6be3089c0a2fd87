//! Orders: `unifiedorder` for [`Order`](crate::pay::Order)s of each trade type (JSAPI, NATIVE,
//! MWEB), the page's `getBrandWCPayRequest` parameters, `orderquery` and `closeorder` (protocol
//! reference §4.2, §4.3, §4.5, §4.6).
//!
//! See <https://pay.weixin.qq.com/wiki/doc/api/jsapi.php?chapter=9_1>.

use crate::pay::PayError;

use super::{
    PayClient, PayConfig, PayFields, PayRequest, SignType, sign_pay_fields, verify_pay_fields,
};
use crate::pay::order::{nonce_str, validate_out_trade_no};
use crate::pay::{
    BrandWcPayParams, CloseOrder, H5Info, H5Kind, H5Order, H5Prepay, JsapiOrder, NativeOrder,
    NativePrepay, Order, OrderRef, QueryOrder, TradeState,
};
use crate::{AppId, Error, OpenId, OutTradeNo, PayApiKey, Result, TransactionId};

/// Checks what every v2 order says, by API v2's rules, and returns its `unifiedorder` fields
/// with `trade_type` (the trade type adds its own).
fn order_fields<T>(order: &Order<T>, config: &PayConfig, trade_type: &str) -> Result<PayFields> {
    validate_out_trade_no(&order.out_trade_no)?;
    if order.description.is_empty() || order.description.len() > 128 {
        return Err(Error::Pay(PayError::InvalidRequest(
            "body (the description) must be 1 to 128 bytes".into(),
        )));
    }
    if order.total == 0 {
        return Err(Error::Pay(PayError::InvalidRequest(
            "total_fee must be a positive number of fen".into(),
        )));
    }
    if order.attach.as_ref().is_some_and(|a| a.len() > 127) {
        return Err(Error::Pay(PayError::InvalidRequest(
            "attach must be at most 127 bytes".into(),
        )));
    }
    let Some(client_ip) = order.client_ip() else {
        return Err(Error::Pay(PayError::InvalidRequest(format!(
            "spbill_create_ip is required for trade_type {trade_type}: set payer_client_ip (the buyer's IP; for NATIVE, this server's will do)"
        ))));
    };
    let mut fields = PayFields::new();
    fields.insert("body", order.description.as_str());
    fields.insert("out_trade_no", order.out_trade_no.as_str());
    fields.insert("total_fee", order.total.to_string());
    fields.insert("spbill_create_ip", client_ip.to_string());
    fields.insert(
        "notify_url",
        order.notify_url.as_deref().unwrap_or(config.notify_url()),
    );
    fields.insert("trade_type", trade_type);
    if let Some(attach) = &order.attach {
        fields.insert("attach", attach.as_str());
    }
    if let Some([year, month, day, hour, minute, second]) = order.time_expire_beijing() {
        fields.insert(
            "time_expire",
            format!("{year:04}{month:02}{day:02}{hour:02}{minute:02}{second:02}"),
        );
    }
    Ok(fields)
}

/// `unifiedorder` with `trade_type=JSAPI`: the prepay id the page pays with.
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use wechat_core::pay::v2::{JsapiOrder, PayConfig, PayRequest};
///
/// let config = PayConfig::builder("1900000109", "wx1234567890abcdef", "192006250b4c09247ec02edce69f6a2d", "https://shop.example.com/pay/notify").build()?;
/// let order = JsapiOrder::new("T20240101001", "Coffee", 1, "oUser")
///     .with_payer_client_ip(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)))
///     .with_attach("table=7");
/// let request = order.to_request(&config, "5K8264ILTKCH16CQ2502SI8ZNMTM67VS")?;
/// assert_eq!(request.endpoint(), "/pay/unifiedorder");
/// assert_eq!(request.fields().get("trade_type"), Some("JSAPI"));
/// assert_eq!(request.fields().get("total_fee"), Some("1"));
/// # Ok::<(), wechat_core::Error>(())
/// ```
impl PayRequest for JsapiOrder {
    type Output = PrepayResponse;
    const ENDPOINT: &'static str = "/pay/unifiedorder";

    /// The `unifiedorder` fields, checked, with `openid`.
    fn to_fields(&self, config: &PayConfig) -> Result<PayFields> {
        let mut fields = order_fields(self, config, "JSAPI")?;
        if self.trade.openid.as_str().is_empty() {
            return Err(Error::Pay(PayError::InvalidRequest(
                "openid is required for trade_type JSAPI".into(),
            )));
        }
        fields.insert("openid", self.trade.openid.as_str());
        Ok(fields)
    }

    fn read_reply(&self, _config: &PayConfig, reply: PayFields) -> Result<PrepayResponse> {
        PrepayResponse::from_fields(reply)
    }
}

/// `unifiedorder` with `trade_type=NATIVE` and `product_id` (the order number unless set):
/// the `code_url` to show as a QR code.
impl PayRequest for NativeOrder {
    type Output = NativePrepay;
    const ENDPOINT: &'static str = "/pay/unifiedorder";

    /// The `unifiedorder` fields, checked, with `product_id` (at most 32 characters).
    fn to_fields(&self, config: &PayConfig) -> Result<PayFields> {
        let mut fields = order_fields(self, config, "NATIVE")?;
        let product_id = self
            .trade
            .product_id
            .as_deref()
            .unwrap_or(self.out_trade_no.as_str());
        if product_id.is_empty() || product_id.len() > 32 {
            return Err(Error::Pay(PayError::InvalidRequest(
                "product_id must be 1 to 32 characters for trade_type NATIVE".into(),
            )));
        }
        fields.insert("product_id", product_id);
        Ok(fields)
    }

    fn read_reply(&self, _config: &PayConfig, reply: PayFields) -> Result<NativePrepay> {
        let code_url = required(&reply, "code_url", Self::ENDPOINT)?;
        Ok(NativePrepay {
            code_url: code_url.to_owned(),
        })
    }
}

/// `unifiedorder` with `trade_type=MWEB` and `scene_info` (WeChat's JSON string): the cashier
/// page (`mweb_url`) to send the phone browser to.
impl PayRequest for H5Order {
    type Output = H5Prepay;
    const ENDPOINT: &'static str = "/pay/unifiedorder";

    /// The `unifiedorder` fields, checked, with `scene_info` (at most 256 bytes).
    fn to_fields(&self, config: &PayConfig) -> Result<PayFields> {
        let mut fields = order_fields(self, config, "MWEB")?;
        let scene_info = h5_scene_info(&self.trade.info);
        if scene_info.len() > 256 {
            return Err(Error::Pay(PayError::InvalidRequest(
                "scene_info (the H5 site's or app's name, URL and id) must be at most 256 bytes"
                    .into(),
            )));
        }
        fields.insert("scene_info", scene_info);
        Ok(fields)
    }

    fn read_reply(&self, _config: &PayConfig, reply: PayFields) -> Result<H5Prepay> {
        let h5_url = required(&reply, "mweb_url", Self::ENDPOINT)?;
        Ok(H5Prepay {
            h5_url: h5_url.to_owned(),
        })
    }
}

/// v2's `scene_info` for MWEB, a JSON string: `{"h5_info":{"type":"Wap","wap_url":…,"wap_name":…}}`,
/// or `IOS` with `app_name` and `bundle_id`, or `Android` with `app_name` and `package_name`.
fn h5_scene_info(info: &H5Info) -> String {
    let mut h5 = serde_json::Map::new();
    let mut put = |name: &str, value: &Option<String>| {
        if let Some(value) = value {
            h5.insert(name.into(), value.as_str().into());
        }
    };
    let kind = match info.kind {
        H5Kind::Wap => {
            put("wap_url", &info.app_url);
            put("wap_name", &info.app_name);
            "Wap"
        }
        H5Kind::Ios => {
            put("app_name", &info.app_name);
            put("bundle_id", &info.bundle_id);
            "IOS"
        }
        H5Kind::Android => {
            put("app_name", &info.app_name);
            put("package_name", &info.package_name);
            "Android"
        }
    };
    h5.insert("type".into(), kind.into());
    serde_json::json!({ "h5_info": h5 }).to_string()
}

/// A successful `unifiedorder` reply: the prepay id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrepayResponse {
    /// The prepay id (valid for 2 hours) that goes into the page's `package`.
    pub prepay_id: String,
    /// `JSAPI`.
    pub trade_type: String,
    /// Every verified field of the reply.
    pub fields: PayFields,
}

/// The former name of [`PrepayResponse`].
#[deprecated(since = "0.2.0", note = "renamed PrepayResponse, as in v3")]
pub type UnifiedOrderResponse = PrepayResponse;

impl PrepayResponse {
    /// Reads a verified reply.
    ///
    /// # Errors
    /// [`Error::UnexpectedResponse`] without a `prepay_id`.
    pub fn from_fields(fields: PayFields) -> Result<Self> {
        let prepay_id = required(&fields, "prepay_id", "/pay/unifiedorder")?.to_owned();
        let trade_type = fields.get("trade_type").unwrap_or("JSAPI").to_owned();
        Ok(Self {
            prepay_id,
            trade_type,
            fields,
        })
    }
}

impl BrandWcPayParams {
    /// Computes the parameters and their `paySign` (a pure function: pass the current unix time
    /// and a fresh nonce). `sign_type` must be the one the order was placed with.
    pub fn new(
        appid: &AppId,
        prepay_id: &str,
        sign_type: SignType,
        api_key: &PayApiKey,
        time_stamp: u64,
        nonce_str: &str,
    ) -> Self {
        let mut params = Self {
            app_id: appid.as_str().to_owned(),
            time_stamp: time_stamp.to_string(),
            nonce_str: nonce_str.to_owned(),
            package: format!("prepay_id={prepay_id}"),
            sign_type: sign_type.as_str().to_owned(),
            pay_sign: String::new(),
        };
        params.pay_sign = sign_pay_fields(params.signed_fields(), api_key, sign_type);
        params
    }

    fn signed_fields(&self) -> [(&str, &str); 5] {
        [
            ("appId", self.app_id.as_str()),
            ("nonceStr", self.nonce_str.as_str()),
            ("package", self.package.as_str()),
            ("signType", self.sign_type.as_str()),
            ("timeStamp", self.time_stamp.as_str()),
        ]
    }

    /// Verifies a v2 `paySign` as the WeChat client does (useful in tests and simulators).
    ///
    /// # Errors
    /// [`PayError::BadSignature`](crate::pay::PayError::BadSignature) for a `signType` that is not v2's (`RSA` included) or a wrong
    /// `paySign`.
    pub fn verify(&self, api_key: &PayApiKey) -> Result<()> {
        let sign_type = SignType::from_wire(&self.sign_type)
            .ok_or(Error::Pay(PayError::BadSignature("unknown signType")))?;
        verify_pay_fields(self.signed_fields(), api_key, sign_type, &self.pay_sign)
    }
}

impl OrderRef {
    pub(crate) fn insert_fields(&self, fields: &mut PayFields) {
        match self {
            Self::OutTradeNo(no) => fields.insert("out_trade_no", no.as_str()),
            Self::TransactionId(id) => fields.insert("transaction_id", id.as_str()),
        }
    }
}

/// `orderquery`.
impl PayRequest for QueryOrder {
    type Output = Transaction;
    const ENDPOINT: &'static str = "/pay/orderquery";

    fn to_fields(&self, _config: &PayConfig) -> Result<PayFields> {
        let mut fields = PayFields::new();
        self.0.insert_fields(&mut fields);
        Ok(fields)
    }

    fn read_reply(&self, _config: &PayConfig, reply: PayFields) -> Result<Transaction> {
        Transaction::from_fields(reply)
    }
}

/// `closeorder`.
impl PayRequest for CloseOrder {
    type Output = ();
    const ENDPOINT: &'static str = "/pay/closeorder";

    /// # Errors
    /// [`PayError::InvalidRequest`](crate::pay::PayError::InvalidRequest) for an `out_trade_no` WeChat would refuse.
    fn to_fields(&self, _config: &PayConfig) -> Result<PayFields> {
        validate_out_trade_no(&self.0)?;
        let mut fields = PayFields::new();
        fields.insert("out_trade_no", self.0.as_str());
        Ok(fields)
    }

    fn read_reply(&self, _config: &PayConfig, _reply: PayFields) -> Result<()> {
        Ok(())
    }
}

/// A verified `orderquery` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// The order's state.
    pub trade_state: TradeState,
    /// WeChat's description of the state.
    pub trade_state_desc: String,
    /// The merchant's order number.
    pub out_trade_no: Option<OutTradeNo>,
    /// WeChat Pay's transaction id (once paid).
    pub transaction_id: Option<TransactionId>,
    /// The payer.
    pub openid: Option<OpenId>,
    /// The order amount in fen.
    pub total_fee: Option<u64>,
    /// The amount paid in cash (fen).
    pub cash_fee: Option<u64>,
    /// When payment completed, `yyyyMMddHHmmss`.
    pub time_end: Option<String>,
    /// The order's `attach`.
    pub attach: Option<String>,
    /// Every verified field of the reply.
    pub fields: PayFields,
}

/// The former name of [`Transaction`].
#[deprecated(since = "0.2.0", note = "renamed Transaction, as in v3")]
pub type OrderQueryResponse = Transaction;

impl Transaction {
    /// Reads a verified reply.
    ///
    /// # Errors
    /// [`Error::UnexpectedResponse`] without a `trade_state` or with a malformed amount.
    pub fn from_fields(fields: PayFields) -> Result<Self> {
        const ENDPOINT: &str = "/pay/orderquery";
        Ok(Self {
            trade_state: TradeState::from_wire(required(&fields, "trade_state", ENDPOINT)?),
            trade_state_desc: fields.get("trade_state_desc").unwrap_or("").to_owned(),
            out_trade_no: fields.get_non_empty("out_trade_no").map(OutTradeNo::from),
            transaction_id: fields
                .get_non_empty("transaction_id")
                .map(TransactionId::from),
            openid: fields.get_non_empty("openid").map(OpenId::from),
            total_fee: optional_fen(&fields, "total_fee", ENDPOINT)?,
            cash_fee: optional_fen(&fields, "cash_fee", ENDPOINT)?,
            time_end: fields.get_non_empty("time_end").map(str::to_owned),
            attach: fields.get_non_empty("attach").map(str::to_owned),
            fields,
        })
    }
}

pub(crate) fn required<'f>(
    fields: &'f PayFields,
    name: &str,
    endpoint: &'static str,
) -> Result<&'f str> {
    required_value(fields.get(name), name, endpoint)
}

/// A field's value when present and not empty.
pub(crate) fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

/// The value of the field `name`, which must be present and not empty.
pub(crate) fn required_value<'a>(
    value: Option<&'a str>,
    name: &str,
    endpoint: &'static str,
) -> Result<&'a str> {
    non_empty(value).ok_or_else(|| Error::UnexpectedResponse {
        endpoint,
        detail: format!("missing {name}"),
    })
}

pub(crate) fn optional_fen(
    fields: &PayFields,
    name: &str,
    endpoint: &'static str,
) -> Result<Option<u64>> {
    fen_value(fields.get(name), name, endpoint)
}

/// The amount in fen of the field `name`, when present and not empty.
pub(crate) fn fen_value(
    value: Option<&str>,
    name: &str,
    endpoint: &'static str,
) -> Result<Option<u64>> {
    non_empty(value)
        .map(|v| {
            v.parse::<u64>().map_err(|_| Error::UnexpectedResponse {
                endpoint,
                detail: format!("{name} {v:?} is not an integer amount in fen"),
            })
        })
        .transpose()
}

pub(crate) fn required_fen(fields: &PayFields, name: &str, endpoint: &'static str) -> Result<u64> {
    optional_fen(fields, name, endpoint)?.ok_or_else(|| Error::UnexpectedResponse {
        endpoint,
        detail: format!("missing {name}"),
    })
}

impl PayClient {
    /// The former name of [`prepay`](Self::prepay).
    ///
    /// # Errors
    /// As [`prepay`](Self::prepay).
    #[deprecated(since = "0.2.0", note = "renamed prepay, as in v3")]
    pub async fn unified_order(&self, order: &JsapiOrder) -> Result<PrepayResponse> {
        self.prepay(order).await
    }

    /// The `getBrandWCPayRequest` parameters for a prepay id, signed now with the configured
    /// sign type (the one orders are placed with).
    ///
    /// # Errors
    /// None in v2 (an HMAC cannot fail); a `Result` as v3's RSA signature is.
    pub fn brand_wcpay_params(&self, prepay_id: &str) -> Result<BrandWcPayParams> {
        let config = self.config();
        Ok(BrandWcPayParams::new(
            config.appid(),
            prepay_id,
            config.sign_type(),
            config.api_key(),
            config.clock().now_unix_secs(),
            &nonce_str(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    use crate::testing::TEST_API_KEY as KEY;

    fn config() -> PayConfig {
        crate::testing::pay_config(
            "https://api.mch.weixin.qq.com",
            "https://shop.example/pay/notify",
        )
        .build()
        .unwrap()
    }

    #[test]
    fn pay_sign_vectors_md5_and_hmac() {
        // Derived per protocol reference §4.3 with the §4.3 sample values and the V2 key;
        // recomputed with md5sum, openssl dgst -hmac and Python's hashlib/hmac.
        let appid = AppId::new("wxd930ea5d5a258f4f");
        let key = PayApiKey::new(KEY);
        let prepay = "wx201410272009395522657a690389285100";
        let nonce = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS";
        let md5 = BrandWcPayParams::new(&appid, prepay, SignType::Md5, &key, 1_414_561_699, nonce);
        assert_eq!(md5.pay_sign, "FD19D752A746E5F238A6E53BD99EEBD0");
        assert_eq!(md5.sign_type, "MD5");
        let hmac = BrandWcPayParams::new(
            &appid,
            prepay,
            SignType::HmacSha256,
            &key,
            1_414_561_699,
            nonce,
        );
        assert_eq!(
            hmac.pay_sign,
            "FC7A79E4918B4FFA96E836F5AD4A510F31241FB46C14C971D6D7B4F8E15AF262"
        );
        assert!(md5.verify(&key).is_ok());
        assert!(hmac.verify(&key).is_ok());
        let mut altered = md5.clone();
        altered.package = "prepay_id=wx2".into();
        assert!(altered.verify(&key).is_err());
        assert_eq!(md5.prepay_id(), Some(prepay));
    }

    #[test]
    fn pay_params_json_names_are_exact() {
        let params = BrandWcPayParams::new(
            &AppId::new("wx1"),
            "p",
            SignType::Md5,
            &PayApiKey::new(KEY),
            1,
            "n",
        );
        let json = serde_json::to_value(&params).unwrap();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "appId",
                "nonceStr",
                "package",
                "paySign",
                "signType",
                "timeStamp"
            ]
        );
        assert!(
            json.as_object()
                .unwrap()
                .values()
                .all(serde_json::Value::is_string)
        );
        let back: BrandWcPayParams = serde_json::from_value(json).unwrap();
        assert_eq!(back, params);
    }

    #[test]
    fn unified_order_request_is_a_pure_signed_value() {
        let order = JsapiOrder::new("T-1|a*b_c", "咖啡 <大杯>", 101, "oUser")
            .with_payer_client_ip(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)))
            .with_attach("x");
        let a = order.to_request(&config(), "nonce").unwrap();
        let b = order.to_request(&config(), "nonce").unwrap();
        assert_eq!(a, b);
        let f = a.fields();
        assert_eq!(f.get("appid"), Some("wx1234567890abcdef"));
        assert_eq!(f.get("mch_id"), Some("1900000109"));
        assert_eq!(f.get("trade_type"), Some("JSAPI"));
        assert_eq!(f.get("openid"), Some("oUser"));
        assert_eq!(f.get("total_fee"), Some("101"));
        assert_eq!(f.get("spbill_create_ip"), Some("10.0.0.1"));
        assert_eq!(f.get("notify_url"), Some("https://shop.example/pay/notify"));
        assert_eq!(f.get("sign_type"), Some("MD5"));
        assert!(
            verify_pay_fields(
                f,
                &PayApiKey::new(KEY),
                SignType::Md5,
                f.get("sign").unwrap()
            )
            .is_ok()
        );
        let xml = a.to_xml().unwrap();
        assert!(
            xml.contains("<body><![CDATA[咖啡 <大杯>]]></body>"),
            "{xml}"
        );
        assert_eq!(PayFields::parse(xml.as_bytes()).unwrap(), *f);
    }

    #[test]
    fn invalid_orders_are_refused_before_sending() {
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let order = |no: &str, body: &str, fee: u64, openid: &str| {
            JsapiOrder::new(no, body, fee, openid).with_payer_client_ip(ip)
        };
        let cases = [
            order("T1", "x", 0, "o"),
            order("", "x", 1, "o"),
            order("T 1", "x", 1, "o"),
            order(&"T".repeat(33), "x", 1, "o"),
            order("T1", "", 1, "o"),
            order("T1", &"x".repeat(129), 1, "o"),
            order("T1", "x", 1, ""),
            order("T1", "x", 1, "o").with_attach("a".repeat(128)),
            JsapiOrder::new("T1", "x", 1, "o"), // no spbill_create_ip
        ];
        for order in cases {
            assert!(
                matches!(
                    order.to_request(&config(), "n"),
                    Err(Error::Pay(PayError::InvalidRequest(_)))
                ),
                "{order:?}"
            );
        }
    }

    #[test]
    fn native_and_h5_orders_are_unifiedorder_with_their_trade_type() {
        let ip: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        // 2025-12-01T02:34:56Z is 10:34:56 in Beijing.
        let native = NativeOrder::new("T2", "Coffee", 100)
            .with_payer_client_ip(ip)
            .with_time_expire(1_764_556_496);
        let request = native.to_request(&config(), "n").unwrap();
        let f = request.fields();
        assert_eq!(request.endpoint(), "/pay/unifiedorder");
        assert_eq!(f.get("trade_type"), Some("NATIVE"));
        assert_eq!(
            f.get("product_id"),
            Some("T2"),
            "the order number by default"
        );
        assert_eq!(f.get("openid"), None);
        assert_eq!(
            f.get("spbill_create_ip"),
            Some("10.0.0.1"),
            "IPv4-mapped sent as IPv4"
        );
        assert_eq!(f.get("time_expire"), Some("20251201103456"));
        let sku = native.clone().with_product_id("SKU-9");
        assert_eq!(
            sku.to_request(&config(), "n")
                .unwrap()
                .fields()
                .get("product_id"),
            Some("SKU-9")
        );
        assert!(
            native
                .clone()
                .with_product_id("p".repeat(33))
                .to_request(&config(), "n")
                .is_err()
        );

        let h5 = H5Order::new(
            "T3",
            "Coffee",
            100,
            ip,
            H5Info::wap("腾讯充值", "https://pay.qq.com"),
        );
        let request = h5.to_request(&config(), "n").unwrap();
        let f = request.fields();
        assert_eq!(f.get("trade_type"), Some("MWEB"));
        let scene: serde_json::Value = serde_json::from_str(f.get("scene_info").unwrap()).unwrap();
        assert_eq!(
            scene,
            serde_json::json!({"h5_info": {"type": "Wap", "wap_url": "https://pay.qq.com", "wap_name": "腾讯充值"}})
        );
        let ios = H5Order::new(
            "T4",
            "Coffee",
            100,
            ip,
            H5Info::ios("Shop", "com.example.shop"),
        );
        let scene: serde_json::Value = serde_json::from_str(
            ios.to_request(&config(), "n")
                .unwrap()
                .fields()
                .get("scene_info")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            scene["h5_info"],
            serde_json::json!({"type": "IOS", "app_name": "Shop", "bundle_id": "com.example.shop"})
        );
        let huge = H5Order::new(
            "T5",
            "Coffee",
            100,
            ip,
            H5Info::wap("n".repeat(300), "https://x"),
        );
        assert!(huge.to_request(&config(), "n").is_err());

        // The answers: code_url and mweb_url, required.
        let reply = |pairs: &[(&str, &str)]| pairs.iter().copied().collect::<PayFields>();
        let code = native
            .read_reply(
                &config(),
                reply(&[("code_url", "weixin://wxpay/bizpayurl?pr=abc")]),
            )
            .unwrap();
        assert_eq!(code.code_url, "weixin://wxpay/bizpayurl?pr=abc");
        assert!(
            native
                .read_reply(&config(), reply(&[("prepay_id", "wx1")]))
                .is_err()
        );
        let page = h5
            .read_reply(
                &config(),
                reply(&[(
                    "mweb_url",
                    "https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=wx1&package=1",
                )]),
            )
            .unwrap();
        assert!(page.h5_url.starts_with("https://wx.tenpay.com/"));
        assert!(h5.read_reply(&config(), reply(&[])).is_err());
    }

    #[test]
    fn query_and_close_requests() {
        let q = QueryOrder::from(TransactionId::new("4200"))
            .to_request(&config(), "n")
            .unwrap();
        assert_eq!(q.endpoint(), "/pay/orderquery");
        assert_eq!(q.fields().get("transaction_id"), Some("4200"));
        assert_eq!(q.fields().get("out_trade_no"), None);
        let c = CloseOrder(OutTradeNo::new("T1"))
            .to_request(&config(), "n")
            .unwrap();
        assert_eq!(c.endpoint(), "/pay/closeorder");
        assert_eq!(c.fields().get("out_trade_no"), Some("T1"));
    }

    #[test]
    fn order_query_reply_is_typed() {
        let fields: PayFields = [
            ("trade_state", "SUCCESS"),
            ("out_trade_no", "T1"),
            ("transaction_id", "4200"),
            ("total_fee", "101"),
            ("cash_fee", "101"),
            ("openid", "oUser"),
        ]
        .into_iter()
        .collect();
        let r = Transaction::from_fields(fields).unwrap();
        assert_eq!(r.trade_state, TradeState::Success);
        assert!(r.trade_state.is_paid());
        assert_eq!(r.total_fee, Some(101));
        let bad: PayFields = [("trade_state", "NOTPAY"), ("total_fee", "1.00")]
            .into_iter()
            .collect();
        assert!(Transaction::from_fields(bad).is_err());
        assert_eq!(
            TradeState::from_wire("NEWSTATE"),
            TradeState::Other("NEWSTATE".into())
        );
    }
}
