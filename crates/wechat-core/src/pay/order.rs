//! What both versions' orders share: which order a call is about, the query and close requests
//! (each version sends them its own way, through its `PayRequest`), the order states, and the
//! page's `getBrandWCPayRequest` parameters.

use rand::Rng as _;
use serde::{Deserialize, Serialize};

use crate::pay::PayError;
use crate::{Error, OutTradeNo, Result, TransactionId};

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
