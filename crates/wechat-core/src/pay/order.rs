//! What both versions' orders share: the order to place ([`Order`] of a trade type: JSAPI,
//! Native, H5), which order a call is about, the query and close requests (each version sends
//! them its own way, through its `PayRequest`), the order states and trade types, the page's
//! `getBrandWCPayRequest` parameters, and the Native and H5 answers.

use std::net::IpAddr;

use rand::Rng as _;
use serde::{Deserialize, Serialize};

use crate::pay::PayError;
use crate::{Error, OpenId, OutTradeNo, Result, TransactionId};

/// An order to place with WeChat Pay: what is sold, for how much, and the part of its trade
/// type `T` ([`Jsapi`]: who pays inside WeChat; [`Native`]: a QR code; [`H5`]: a phone
/// browser). The same value is placed with either API version (`v2::PayClient::send` or
/// `v3::PayClient::send`, or their `prepay`), which checks it by its own rules before anything
/// is sent. The server prices the order: never take the amount from the browser.
///
/// ```
/// use std::net::{IpAddr, Ipv4Addr};
/// use wechat_core::pay::{H5Info, H5Order, JsapiOrder, NativeOrder};
///
/// let ip = IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4));
/// // Inside WeChat: the buyer's openid under the order's app id.
/// let jsapi = JsapiOrder::new("T20240101001", "Coffee", 1, "oUser").with_payer_client_ip(ip);
/// // On a desktop: a QR code to scan; no openid.
/// let native = NativeOrder::new("T20240101002", "Coffee", 1).with_attach("table=7");
/// // In a phone browser: WeChat Pay's cashier page; the buyer's IP is checked when it opens.
/// let h5 = H5Order::new("T20240101003", "Coffee", 1, ip, H5Info::wap("Shop", "https://shop.example.com"));
/// assert_eq!((jsapi.total, native.total, h5.total), (1, 1, 1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order<T> {
    /// The merchant's order number, unique per merchant: `[0-9A-Za-z_-|*]`, 6 to 32 characters
    /// (v2 accepts 1 to 32).
    pub out_trade_no: OutTradeNo,
    /// What the buyer sees in the bill (v2 `body`: at most 128 bytes; v3 `description`: 1 to
    /// 127 characters, no emoji).
    pub description: String,
    /// The amount in fen (1 = 0.01 yuan); must be positive. v2 `total_fee`, v3 `amount.total`.
    pub total: u64,
    /// The buyer's IP as this server sees it (v2 `spbill_create_ip`, required; v3
    /// `scene_info.payer_client_ip`, required for H5, where WeChat Pay compares it with the IP
    /// that opens the cashier page). For a v2 Native order, the IP of the server calling WeChat
    /// Pay will do. An IPv4-mapped IPv6 address is sent as IPv4.
    pub payer_client_ip: Option<IpAddr>,
    /// Merchant data echoed in queries and the notification (v2 at most 127 bytes, v3 at most
    /// 128 characters).
    pub attach: Option<String>,
    /// When the order stops being payable, in unix seconds (sent as Beijing time in the
    /// version's format: v2 `yyyyMMddHHmmss`, v3 RFC 3339 with `+08:00`).
    pub time_expire: Option<u64>,
    /// A notify URL for this order instead of the configured one.
    pub notify_url: Option<String>,
    /// The trade type's own part.
    pub trade: T,
}

/// JSAPI: paid inside WeChat's browser with `getBrandWCPayRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jsapi {
    /// The payer, whose openid must be under the order's app id (an openid of a website
    /// application or another app is refused: v2 `appid和openid不匹配`, v3 `OPENID_MISMATCH`).
    pub openid: OpenId,
}

/// Native: the page shows the answer's `code_url` as a QR code that the buyer scans with
/// WeChat (desktop browsers, WeChat for Windows and Mac).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Native {
    /// v2 `product_id` (the merchant's product id in the code, at most 32 characters; required
    /// by v2 for NATIVE): the order number when not set. v3 has no such field.
    pub product_id: Option<String>,
}

/// H5: a phone browser outside WeChat is sent to WeChat Pay's cashier page, which opens the
/// WeChat app. Needs the H5 product and the page's domain configured on the merchant platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H5 {
    /// What the buyer is paying on (`scene_info.h5_info`).
    pub info: H5Info,
}

/// A JSAPI order. See [`Order`].
pub type JsapiOrder = Order<Jsapi>;
/// A Native (QR code) order. See [`Order`].
pub type NativeOrder = Order<Native>;
/// An H5 (phone browser) order. See [`Order`].
pub type H5Order = Order<H5>;

/// Where an H5 payment starts (`scene_info.h5_info`): a mobile web site, or an iOS or Android
/// app's web view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H5Info {
    /// The kind of page.
    pub kind: H5Kind,
    /// The site's or app's name (v3 `app_name`, at most 64 characters; v2 `wap_name` or
    /// `app_name`).
    pub app_name: Option<String>,
    /// The site's URL (v3 `app_url`, at most 128 characters; v2 `wap_url`).
    pub app_url: Option<String>,
    /// The iOS app's bundle id (`bundle_id`).
    pub bundle_id: Option<String>,
    /// The Android app's package name (`package_name`).
    pub package_name: Option<String>,
}

/// The kind of page an H5 payment starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum H5Kind {
    /// A mobile web site (`Wap`).
    Wap,
    /// An iOS app (v3 `iOS`, v2 `IOS`).
    Ios,
    /// An Android app (`Android`).
    Android,
}

impl H5Info {
    /// A mobile web site with its name and URL, what a shop's pages are.
    pub fn wap(name: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            kind: H5Kind::Wap,
            app_name: Some(name.into()),
            app_url: Some(url.into()),
            bundle_id: None,
            package_name: None,
        }
    }

    /// An iOS app's web view.
    pub fn ios(app_name: impl Into<String>, bundle_id: impl Into<String>) -> Self {
        Self {
            kind: H5Kind::Ios,
            app_name: Some(app_name.into()),
            app_url: None,
            bundle_id: Some(bundle_id.into()),
            package_name: None,
        }
    }

    /// An Android app's web view.
    pub fn android(app_name: impl Into<String>, package_name: impl Into<String>) -> Self {
        Self {
            kind: H5Kind::Android,
            app_name: Some(app_name.into()),
            app_url: None,
            bundle_id: None,
            package_name: Some(package_name.into()),
        }
    }
}

impl<T> Order<T> {
    fn of(out_trade_no: OutTradeNo, description: String, total: u64, trade: T) -> Self {
        Self {
            out_trade_no,
            description,
            total,
            payer_client_ip: None,
            attach: None,
            time_expire: None,
            notify_url: None,
            trade,
        }
    }

    /// Sets the buyer's IP (see [`payer_client_ip`](Self::payer_client_ip)).
    #[must_use]
    pub fn with_payer_client_ip(mut self, ip: IpAddr) -> Self {
        self.payer_client_ip = Some(ip);
        self
    }

    /// Sets `attach`, echoed back in queries and the payment notification.
    #[must_use]
    pub fn with_attach(mut self, attach: impl Into<String>) -> Self {
        self.attach = Some(attach.into());
        self
    }

    /// Sets when the order stops being payable, in unix seconds (at least a minute ahead).
    #[must_use]
    pub fn with_time_expire(mut self, unix_secs: u64) -> Self {
        self.time_expire = Some(unix_secs);
        self
    }

    /// Sets a notify URL for this order.
    #[must_use]
    pub fn with_notify_url(mut self, url: impl Into<String>) -> Self {
        self.notify_url = Some(url.into());
        self
    }

    /// The buyer's IP as sent: an IPv4-mapped IPv6 address as IPv4 (WeChat Pay refuses
    /// `::ffff:a.b.c.d`).
    pub(crate) fn client_ip(&self) -> Option<IpAddr> {
        self.payer_client_ip.map(|ip| ip.to_canonical())
    }

    /// [`time_expire`](Self::time_expire) in Beijing time (UTC+8), as `[year, month, day,
    /// hour, minute, second]`.
    pub(crate) fn time_expire_beijing(&self) -> Option<[u64; 6]> {
        self.time_expire
            .map(|unix| crate::error::civil(unix.saturating_add(8 * 3_600)))
    }
}

impl JsapiOrder {
    /// A JSAPI order of `total` fen, paid by `openid` inside WeChat.
    pub fn new(
        out_trade_no: impl Into<OutTradeNo>,
        description: impl Into<String>,
        total: u64,
        openid: impl Into<OpenId>,
    ) -> Self {
        let trade = Jsapi {
            openid: openid.into(),
        };
        Self::of(out_trade_no.into(), description.into(), total, trade)
    }
}

impl NativeOrder {
    /// A Native order of `total` fen: the answer's `code_url` is shown as a QR code.
    pub fn new(
        out_trade_no: impl Into<OutTradeNo>,
        description: impl Into<String>,
        total: u64,
    ) -> Self {
        Self::of(
            out_trade_no.into(),
            description.into(),
            total,
            Native::default(),
        )
    }

    /// Sets v2's `product_id` (the order number otherwise).
    #[must_use]
    pub fn with_product_id(mut self, product_id: impl Into<String>) -> Self {
        self.trade.product_id = Some(product_id.into());
        self
    }
}

impl H5Order {
    /// An H5 order of `total` fen for a buyer at `payer_client_ip` (the IP that will open the
    /// cashier page, as this server sees it), paying on `info`'s page.
    pub fn new(
        out_trade_no: impl Into<OutTradeNo>,
        description: impl Into<String>,
        total: u64,
        payer_client_ip: IpAddr,
        info: H5Info,
    ) -> Self {
        Self::of(out_trade_no.into(), description.into(), total, H5 { info })
            .with_payer_client_ip(payer_client_ip)
    }
}

/// WeChat Pay's answer to a Native order: the link to show as a QR code.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NativePrepay {
    /// `weixin://wxpay/bizpayurl?pr=…`: opaque, put into the QR code byte for byte
    /// ([`qr::svg`](crate::qr::svg)); valid for 2 hours, and no longer than the order's
    /// `time_expire`.
    pub code_url: String,
}

/// WeChat Pay's answer to an H5 order: the cashier page to send the phone browser to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct H5Prepay {
    /// The cashier page (v3 `h5_url`, v2 `mweb_url`): valid for 5 minutes; it checks the
    /// browser's Referer and IP. Send the browser to
    /// [`url_with_redirect`](Self::url_with_redirect) instead to choose where it comes back.
    pub h5_url: String,
}

impl H5Prepay {
    /// The cashier page with `&redirect_url=` and `redirect_url` URL-encoded, as WeChat Pay
    /// documents: the browser comes back there whether or not the buyer paid (after paying,
    /// cancelling, or 5 seconds after WeChat opened), so that page must ask the server, which
    /// trusts only the notification or a query. Its domain must be one of the merchant's H5
    /// domains.
    pub fn url_with_redirect(&self, redirect_url: &str) -> String {
        let encoded: String =
            url::form_urlencoded::byte_serialize(redirect_url.as_bytes()).collect();
        let separator = if self.h5_url.contains('?') { '&' } else { '?' };
        format!("{}{separator}redirect_url={encoded}", self.h5_url)
    }
}

/// How an order was paid (`trade_type`), as queries and payment notifications report it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TradeType {
    /// `JSAPI`: inside WeChat's browser (or a mini-program).
    Jsapi,
    /// `NATIVE`: a scanned QR code.
    Native,
    /// `MWEB`: H5, from a phone browser (WeChat names it so in v2 and v3 alike).
    Mweb,
    /// `APP`: a mobile app.
    App,
    /// `MICROPAY`: the buyer's payment code scanned by the merchant.
    Micropay,
    /// `FACEPAY`: face payment.
    Facepay,
    /// Any other type, as WeChat sent it.
    Other(String),
}

impl TradeType {
    /// Reads WeChat's spelling.
    pub fn from_wire(value: &str) -> Self {
        match value {
            "JSAPI" => Self::Jsapi,
            "NATIVE" => Self::Native,
            "MWEB" => Self::Mweb,
            "APP" => Self::App,
            "MICROPAY" => Self::Micropay,
            "FACEPAY" => Self::Facepay,
            other => Self::Other(other.to_owned()),
        }
    }

    /// WeChat's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Jsapi => "JSAPI",
            Self::Native => "NATIVE",
            Self::Mweb => "MWEB",
            Self::App => "APP",
            Self::Micropay => "MICROPAY",
            Self::Facepay => "FACEPAY",
            Self::Other(s) => s,
        }
    }
}

impl std::fmt::Display for TradeType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TradeType {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TradeType {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let value = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(Self::from_wire(&value))
    }
}

/// A fresh `nonce_str`: 32 random alphanumeric characters.
pub(crate) fn nonce_str() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// Checks an `out_trade_no` as WeChat Pay does (both versions): 1 to 32 of
/// `[0-9A-Za-z_-|*]`.
pub(crate) fn validate_out_trade_no(out_trade_no: &OutTradeNo) -> Result<()> {
    let s = out_trade_no.as_str();
    if s.is_empty()
        || s.len() > 32
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|' | b'*'))
    {
        return Err(Error::Pay(PayError::InvalidRequest(format!(
            "out_trade_no {s:?} must be 1 to 32 characters of 0-9 A-Z a-z _ - | *"
        ))));
    }
    Ok(())
}

/// The parameters of `WeixinJSBridge.invoke('getBrandWCPayRequest', params, cb)`, serialised with
/// exactly WeChat's JSON names (`appId`, `timeStamp`, `nonceStr`, `package`, `signType`,
/// `paySign`; all strings).
///
/// ```
/// use wechat_core::{AppId, PayApiKey};
/// use wechat_core::pay::v2::{BrandWcPayParams, SignType};
///
/// let params = BrandWcPayParams::new(
///     &AppId::new("wxd930ea5d5a258f4f"),
///     "wx201410272009395522657a690389285100",
///     SignType::Md5,
///     &PayApiKey::new("192006250b4c09247ec02edce69f6a2d"),
///     1414561699,
///     "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
/// );
/// assert_eq!(params.package, "prepay_id=wx201410272009395522657a690389285100");
/// assert_eq!(params.pay_sign, "FD19D752A746E5F238A6E53BD99EEBD0");
/// let json = serde_json::to_value(&params).unwrap();
/// assert_eq!(json["timeStamp"], "1414561699");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrandWcPayParams {
    /// `appId`: the app id the order was placed with.
    #[serde(rename = "appId")]
    pub app_id: String,
    /// `timeStamp`: unix seconds, as a string.
    #[serde(rename = "timeStamp")]
    pub time_stamp: String,
    /// `nonceStr`.
    #[serde(rename = "nonceStr")]
    pub nonce_str: String,
    /// `package`: `prepay_id=…`.
    pub package: String,
    /// `signType`: the order's sign type: `MD5` or `HMAC-SHA256` (API v2), `RSA` (API v3, see
    /// [`BrandWcPayParams::rsa`]).
    #[serde(rename = "signType")]
    pub sign_type: String,
    /// `paySign`: the signature (v2: over the five fields above; v3: RSA over `appId`,
    /// `timeStamp`, `nonceStr` and `package`).
    #[serde(rename = "paySign")]
    pub pay_sign: String,
}

impl BrandWcPayParams {
    /// The prepay id inside `package`.
    pub fn prepay_id(&self) -> Option<&str> {
        self.package.strip_prefix("prepay_id=")
    }
}

/// Which order a query or a refund refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderRef {
    /// The merchant's order number.
    OutTradeNo(OutTradeNo),
    /// WeChat Pay's transaction id (wins when WeChat gets both).
    TransactionId(TransactionId),
}

impl From<OutTradeNo> for OrderRef {
    fn from(value: OutTradeNo) -> Self {
        Self::OutTradeNo(value)
    }
}

impl From<TransactionId> for OrderRef {
    fn from(value: TransactionId) -> Self {
        Self::TransactionId(value)
    }
}

/// Asks WeChat Pay for an order's state (v2 `orderquery`, v3
/// `GET /v3/pay/transactions/…`). This, not the page's
/// `get_brand_wcpay_request:ok`, is proof of payment when no notification arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryOrder(pub OrderRef);

impl From<OrderRef> for QueryOrder {
    fn from(order: OrderRef) -> Self {
        Self(order)
    }
}

impl From<OutTradeNo> for QueryOrder {
    fn from(out_trade_no: OutTradeNo) -> Self {
        Self(OrderRef::OutTradeNo(out_trade_no))
    }
}

impl From<TransactionId> for QueryOrder {
    fn from(transaction_id: TransactionId) -> Self {
        Self(OrderRef::TransactionId(transaction_id))
    }
}

/// Closes an unpaid order so it can no longer be paid (v2 `closeorder`, v3
/// `POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseOrder(pub OutTradeNo);

impl From<OutTradeNo> for CloseOrder {
    fn from(out_trade_no: OutTradeNo) -> Self {
        Self(out_trade_no)
    }
}

/// An order's `trade_state` as an order query and a payment notification report it (v2
/// and v3 spell the states alike).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TradeState {
    /// `SUCCESS`: paid.
    Success,
    /// `REFUND`: paid, then (partly) refunded.
    Refund,
    /// `NOTPAY`: not paid yet.
    NotPay,
    /// `CLOSED`: closed (never paid).
    Closed,
    /// `REVOKED`: revoked (payment code orders).
    Revoked,
    /// `USERPAYING`: the payer is entering the password.
    UserPaying,
    /// `PAYERROR`: payment failed (e.g. bank declined).
    PayError,
    /// `ACCEPT`: accepted, waiting for debit.
    Accept,
    /// Any other state, as WeChat sent it.
    Other(String),
}

impl TradeState {
    /// Reads WeChat's spelling.
    pub fn from_wire(value: &str) -> Self {
        match value {
            "SUCCESS" => Self::Success,
            "REFUND" => Self::Refund,
            "NOTPAY" => Self::NotPay,
            "CLOSED" => Self::Closed,
            "REVOKED" => Self::Revoked,
            "USERPAYING" => Self::UserPaying,
            "PAYERROR" => Self::PayError,
            "ACCEPT" => Self::Accept,
            other => Self::Other(other.to_owned()),
        }
    }

    /// WeChat's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Success => "SUCCESS",
            Self::Refund => "REFUND",
            Self::NotPay => "NOTPAY",
            Self::Closed => "CLOSED",
            Self::Revoked => "REVOKED",
            Self::UserPaying => "USERPAYING",
            Self::PayError => "PAYERROR",
            Self::Accept => "ACCEPT",
            Self::Other(s) => s,
        }
    }

    /// Whether the money was received (`SUCCESS` or `REFUND`).
    pub fn is_paid(&self) -> bool {
        matches!(self, Self::Success | Self::Refund)
    }
}

impl std::fmt::Display for TradeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trade_types_read_and_write_wechats_spelling() {
        for wire in [
            "JSAPI", "NATIVE", "MWEB", "APP", "MICROPAY", "FACEPAY", "NEW_KIND",
        ] {
            let kind = TradeType::from_wire(wire);
            assert_eq!(kind.as_str(), wire);
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{wire}\""));
            assert_eq!(serde_json::from_str::<TradeType>(&json).unwrap(), kind);
        }
        assert_eq!(TradeType::from_wire("MWEB"), TradeType::Mweb);
        assert_eq!(TradeType::from_wire("x"), TradeType::Other("x".into()));
    }

    #[test]
    fn the_redirect_is_appended_encoded() {
        let page = H5Prepay {
            h5_url: "https://wx.tenpay.com/checkmweb".into(),
        };
        assert_eq!(
            page.url_with_redirect("https://shop.example.com/o?id=1 2"),
            "https://wx.tenpay.com/checkmweb?redirect_url=https%3A%2F%2Fshop.example.com%2Fo%3Fid%3D1+2"
        );
    }

    #[test]
    fn expiry_is_beijing_time_and_ip_is_canonical() {
        // The last second of 2025 in Beijing is 15:59:59 UTC.
        let order = NativeOrder::new("T1", "x", 1)
            .with_time_expire(1_767_196_799)
            .with_payer_client_ip("::ffff:192.0.2.7".parse().unwrap());
        assert_eq!(
            order.time_expire_beijing(),
            Some([2025, 12, 31, 23, 59, 59])
        );
        assert_eq!(order.client_ip(), Some("192.0.2.7".parse().unwrap()));
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(order.with_payer_client_ip(v6).client_ip(), Some(v6));
    }
}
