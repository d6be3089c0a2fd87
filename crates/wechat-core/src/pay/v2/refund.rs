//! Refunds: `/secapi/pay/refund` over mutual TLS and `/pay/refundquery` (protocol reference
//! §4.7, §4.8).
//!
//! A successful refund call means WeChat *accepted* the refund; the result comes later in a
//! refund notification (see [`verify_refund_notification`](super::verify_refund_notification))
//! or from [`PayClient::query_refund`].
//!
//! See <https://pay.weixin.qq.com/wiki/doc/api/jsapi.php?chapter=9_4>.

use super::order::{optional_fen, required, required_fen};
use super::{PayClient, PayConfig, PayFields, PayRequest};
use crate::pay::OrderRef;
use crate::pay::PayError;
use crate::{Error, OutRefundNo, OutTradeNo, Result, TransactionId};

/// A refund of (part of) a paid order.
///
/// ```
/// use wechat_core::pay::v2::{OrderRef, PayConfig, PayRequest, RefundRequest};
/// use wechat_core::OutTradeNo;
///
/// let config = PayConfig::builder("1900000109", "wx1234567890abcdef", "192006250b4c09247ec02edce69f6a2d", "https://shop.example.com/pay/notify").build()?;
/// let refund = RefundRequest::new(OrderRef::OutTradeNo(OutTradeNo::new("T1")), "R1", 100, 40).with_description("one item out of stock");
/// let request = refund.to_request(&config, "nonce")?;
/// assert_eq!(request.endpoint(), "/secapi/pay/refund");
/// assert!(request.requires_client_certificate());
/// # Ok::<(), wechat_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// The paid order.
    pub order: OrderRef,
    /// The merchant's refund number (at most 64 characters): sending the same number again is
    /// the same refund, never a second one.
    pub out_refund_no: OutRefundNo,
    /// The order's total amount in fen.
    pub total_fee: u64,
    /// The amount to refund in fen (positive, at most `total_fee`).
    pub refund_fee: u64,
    /// The reason shown to the payer (`refund_desc`).
    pub description: Option<String>,
    /// A notify URL for this refund instead of the configured refund notify URL.
    pub notify_url: Option<String>,
}

/// The former name of [`RefundRequest`].
#[deprecated(since = "0.2.0", note = "renamed RefundRequest, as in v3")]
pub type Refund = RefundRequest;

impl RefundRequest {
    /// Refunds `refund_fee` fen of an order of `total_fee` fen.
    pub fn new(
        order: OrderRef,
        out_refund_no: impl Into<OutRefundNo>,
        total_fee: u64,
        refund_fee: u64,
    ) -> Self {
        Self {
            order,
            out_refund_no: out_refund_no.into(),
            total_fee,
            refund_fee,
            description: None,
            notify_url: None,
        }
    }

    /// Sets `refund_desc`.
    #[must_use]
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets this refund's `notify_url`.
    #[must_use]
    pub fn with_notify_url(mut self, url: impl Into<String>) -> Self {
        self.notify_url = Some(url.into());
        self
    }
}

impl PayRequest for RefundRequest {
    type Output = RefundRecord;
    const ENDPOINT: &'static str = "/secapi/pay/refund";
    const CLIENT_CERTIFICATE: bool = true;

    /// The refund's fields.
    ///
    /// # Errors
    /// [`PayError::InvalidRequest`](crate::pay::PayError::InvalidRequest) for a zero amount, a refund above the total, or an empty
    /// or too long `out_refund_no`.
    fn to_fields(&self, config: &PayConfig) -> Result<PayFields> {
        let no = self.out_refund_no.as_str();
        if no.is_empty() || no.len() > 64 {
            return Err(Error::Pay(PayError::InvalidRequest(
                "out_refund_no must be 1 to 64 characters".into(),
            )));
        }
        if self.total_fee == 0 || self.refund_fee == 0 {
            return Err(Error::Pay(PayError::InvalidRequest(
                "total_fee and refund_fee must be positive numbers of fen".into(),
            )));
        }
        if self.refund_fee > self.total_fee {
            return Err(Error::Pay(PayError::InvalidRequest(format!(
                "refund_fee {} is larger than the order's total_fee {}",
                self.refund_fee, self.total_fee
            ))));
        }
        let mut fields = PayFields::new();
        self.order.insert_fields(&mut fields);
        fields.insert("out_refund_no", no);
        fields.insert("total_fee", self.total_fee.to_string());
        fields.insert("refund_fee", self.refund_fee.to_string());
        if let Some(desc) = &self.description {
            fields.insert("refund_desc", desc.as_str());
        }
        if let Some(url) = self.notify_url.as_deref().or(config.refund_notify_url()) {
            fields.insert("notify_url", url);
        }
        Ok(fields)
    }

    fn read_reply(&self, _config: &PayConfig, reply: PayFields) -> Result<RefundRecord> {
        RefundRecord::from_fields(reply)
    }
}

/// A verified refund reply: WeChat accepted the refund (its outcome comes in the refund
/// notification or from [`QueryRefund`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRecord {
    /// WeChat's refund id.
    pub refund_id: String,
    /// The merchant's refund number.
    pub out_refund_no: OutRefundNo,
    /// The order number.
    pub out_trade_no: Option<OutTradeNo>,
    /// The transaction id.
    pub transaction_id: Option<TransactionId>,
    /// The refunded amount in fen.
    pub refund_fee: u64,
    /// The order's total in fen.
    pub total_fee: Option<u64>,
    /// Every verified field of the reply.
    pub fields: PayFields,
}

/// The former name of [`RefundRecord`].
#[deprecated(since = "0.2.0", note = "renamed RefundRecord, as in v3")]
pub type RefundResponse = RefundRecord;

impl RefundRecord {
    /// Reads a verified reply.
    ///
    /// # Errors
    /// [`Error::UnexpectedResponse`] when `refund_id`, `out_refund_no` or `refund_fee` is
    /// missing or malformed.
    pub fn from_fields(fields: PayFields) -> Result<Self> {
        const ENDPOINT: &str = "/secapi/pay/refund";
        Ok(Self {
            refund_id: required(&fields, "refund_id", ENDPOINT)?.to_owned(),
            out_refund_no: OutRefundNo::from(required(&fields, "out_refund_no", ENDPOINT)?),
            out_trade_no: fields.get_non_empty("out_trade_no").map(OutTradeNo::from),
            transaction_id: fields
                .get_non_empty("transaction_id")
                .map(TransactionId::from),
            refund_fee: required_fen(&fields, "refund_fee", ENDPOINT)?,
            total_fee: optional_fen(&fields, "total_fee", ENDPOINT)?,
            fields,
        })
    }
}

/// Which refunds a `refundquery` asks about (WeChat's precedence: refund id, refund number,
/// transaction id, order number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundRef {
    /// WeChat's refund id.
    RefundId(String),
    /// The merchant's refund number.
    OutRefundNo(OutRefundNo),
    /// Every refund of a transaction.
    TransactionId(TransactionId),
    /// Every refund of an order.
    OutTradeNo(OutTradeNo),
}

/// The `refundquery` request: the refunds of an order, a transaction, or one refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRefund(pub RefundRef);

impl From<RefundRef> for QueryRefund {
    fn from(refund: RefundRef) -> Self {
        Self(refund)
    }
}

impl From<OutRefundNo> for QueryRefund {
    fn from(out_refund_no: OutRefundNo) -> Self {
        Self(RefundRef::OutRefundNo(out_refund_no))
    }
}

impl PayRequest for QueryRefund {
    type Output = RefundQueryResponse;
    const ENDPOINT: &'static str = "/pay/refundquery";

    fn to_fields(&self, _config: &PayConfig) -> Result<PayFields> {
        let mut fields = PayFields::new();
        match &self.0 {
            RefundRef::RefundId(id) => fields.insert("refund_id", id.as_str()),
            RefundRef::OutRefundNo(no) => fields.insert("out_refund_no", no.as_str()),
            RefundRef::TransactionId(id) => fields.insert("transaction_id", id.as_str()),
            RefundRef::OutTradeNo(no) => fields.insert("out_trade_no", no.as_str()),
        }
        Ok(fields)
    }

    fn read_reply(&self, _config: &PayConfig, reply: PayFields) -> Result<RefundQueryResponse> {
        RefundQueryResponse::from_fields(reply)
    }
}

/// A refund's state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefundStatus {
    /// `SUCCESS`: the money was returned.
    Success,
    /// `REFUNDCLOSE`: the refund was closed.
    RefundClose,
    /// `PROCESSING`: in progress.
    Processing,
    /// `CHANGE`: abnormal, needs manual handling on the merchant platform.
    Change,
    /// Any other status, as WeChat sent it.
    Other(String),
}

impl RefundStatus {
    /// Reads WeChat's spelling.
    pub fn from_wire(value: &str) -> Self {
        match value {
            "SUCCESS" => Self::Success,
            "REFUNDCLOSE" => Self::RefundClose,
            "PROCESSING" => Self::Processing,
            "CHANGE" => Self::Change,
            other => Self::Other(other.to_owned()),
        }
    }

    /// WeChat's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Success => "SUCCESS",
            Self::RefundClose => "REFUNDCLOSE",
            Self::Processing => "PROCESSING",
            Self::Change => "CHANGE",
            Self::Other(s) => s,
        }
    }
}

impl std::fmt::Display for RefundStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One refund in a `refundquery` reply (the `_$n` fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundItem {
    /// The merchant's refund number.
    pub out_refund_no: OutRefundNo,
    /// WeChat's refund id.
    pub refund_id: String,
    /// The refunded amount in fen.
    pub refund_fee: u64,
    /// Its state.
    pub refund_status: RefundStatus,
    /// When it succeeded (`yyyy-MM-dd HH:mm:ss`).
    pub success_time: Option<String>,
    /// Where the money went (`refund_recv_accout_$n`, WeChat's spelling).
    pub recv_account: Option<String>,
}

/// A verified `refundquery` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundQueryResponse {
    /// The order number.
    pub out_trade_no: Option<OutTradeNo>,
    /// The transaction id.
    pub transaction_id: Option<TransactionId>,
    /// The order's total in fen.
    pub total_fee: Option<u64>,
    /// The refunds listed in this reply.
    pub refunds: Vec<RefundItem>,
    /// Every verified field of the reply.
    pub fields: PayFields,
}

impl RefundQueryResponse {
    /// Reads a verified reply.
    ///
    /// # Errors
    /// [`Error::UnexpectedResponse`] when `refund_count` or a listed refund is malformed.
    pub fn from_fields(fields: PayFields) -> Result<Self> {
        const ENDPOINT: &str = "/pay/refundquery";
        let count = optional_fen(&fields, "refund_count", ENDPOINT)?.unwrap_or(0);
        // A reply lists at most a page of refunds; a larger count is malformed, not a reason to
        // loop for long.
        if count > 1000 {
            return Err(Error::UnexpectedResponse {
                endpoint: ENDPOINT,
                detail: format!("refund_count {count} is implausible"),
            });
        }
        let mut refunds = Vec::new();
        for n in 0..count {
            let name = |base: &str| format!("{base}_{n}");
            refunds.push(RefundItem {
                out_refund_no: OutRefundNo::from(required(
                    &fields,
                    &name("out_refund_no"),
                    ENDPOINT,
                )?),
                refund_id: required(&fields, &name("refund_id"), ENDPOINT)?.to_owned(),
                refund_fee: required_fen(&fields, &name("refund_fee"), ENDPOINT)?,
                refund_status: RefundStatus::from_wire(required(
                    &fields,
                    &name("refund_status"),
                    ENDPOINT,
                )?),
                success_time: fields
                    .get_non_empty(&name("refund_success_time"))
                    .map(str::to_owned),
                recv_account: fields
                    .get_non_empty(&name("refund_recv_accout"))
                    .map(str::to_owned),
            });
        }
        Ok(Self {
            out_trade_no: fields.get_non_empty("out_trade_no").map(OutTradeNo::from),
            transaction_id: fields
                .get_non_empty("transaction_id")
                .map(TransactionId::from),
            total_fee: optional_fen(&fields, "total_fee", ENDPOINT)?,
            refunds,
            fields,
        })
    }
}

impl PayClient {
    /// Queries refunds ([`QueryRefund`], `refundquery`).
    ///
    /// # Errors
    /// [`PayError::Business`](crate::pay::PayError::Business) with `REFUNDNOTEXIST`, and the errors of [`PayClient::send`].
    pub async fn query_refund(&self, refund: &RefundRef) -> Result<RefundQueryResponse> {
        self.send(&QueryRefund(refund.clone())).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PayConfig {
        crate::testing::pay_config(
            "https://api.mch.weixin.qq.com",
            "https://shop.example/pay/notify",
        )
        .refund_notify_url("https://shop.example/pay/refund-notify")
        .build()
        .unwrap()
    }

    #[test]
    fn refund_request_fields() {
        let r = RefundRequest::new(
            OrderRef::TransactionId(TransactionId::new("4200")),
            "R1",
            100,
            40,
        )
        .to_request(&config(), "n")
        .unwrap();
        let f = r.fields();
        assert_eq!(f.get("transaction_id"), Some("4200"));
        assert_eq!(f.get("out_refund_no"), Some("R1"));
        assert_eq!(f.get("total_fee"), Some("100"));
        assert_eq!(f.get("refund_fee"), Some("40"));
        assert_eq!(
            f.get("notify_url"),
            Some("https://shop.example/pay/refund-notify")
        );
        let own = RefundRequest::new(OrderRef::OutTradeNo(OutTradeNo::new("T1")), "R1", 1, 1)
            .with_notify_url("https://other.example/n")
            .to_request(&config(), "n")
            .unwrap();
        assert_eq!(
            own.fields().get("notify_url"),
            Some("https://other.example/n")
        );
    }

    #[test]
    fn refund_amounts_are_checked() {
        let order = OrderRef::OutTradeNo(OutTradeNo::new("T1"));
        for (total, fee) in [(100, 101), (0, 0), (100, 0)] {
            assert!(matches!(
                RefundRequest::new(order.clone(), "R1", total, fee).to_request(&config(), "n"),
                Err(Error::Pay(PayError::InvalidRequest(_)))
            ));
        }
        assert!(
            RefundRequest::new(order, "", 1, 1)
                .to_request(&config(), "n")
                .is_err()
        );
    }

    #[test]
    fn refund_query_reply_lists_refunds() {
        let fields: PayFields = [
            ("out_trade_no", "T1"),
            ("total_fee", "100"),
            ("refund_count", "2"),
            ("out_refund_no_0", "R1"),
            ("refund_id_0", "5000"),
            ("refund_fee_0", "40"),
            ("refund_status_0", "SUCCESS"),
            ("refund_success_time_0", "2024-01-01 12:00:00"),
            ("out_refund_no_1", "R2"),
            ("refund_id_1", "5001"),
            ("refund_fee_1", "60"),
            ("refund_status_1", "PROCESSING"),
        ]
        .into_iter()
        .collect();
        let r = RefundQueryResponse::from_fields(fields).unwrap();
        assert_eq!(r.refunds.len(), 2);
        assert_eq!(r.refunds[0].refund_status, RefundStatus::Success);
        assert_eq!(r.refunds[1].refund_fee, 60);
        assert_eq!(r.refunds[1].refund_status, RefundStatus::Processing);
        let broken: PayFields = [("refund_count", "1")].into_iter().collect();
        assert!(RefundQueryResponse::from_fields(broken).is_err());
        let q = QueryRefund::from(OutRefundNo::new("R1"))
            .to_request(&config(), "n")
            .unwrap();
        assert_eq!(q.endpoint(), "/pay/refundquery");
        assert_eq!(q.fields().get("out_refund_no"), Some("R1"));
    }
}
