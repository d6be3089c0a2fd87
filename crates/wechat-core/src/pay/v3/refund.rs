//! API v3 refunds: the request to `POST /v3/refund/domestic/refunds` and the refund object that
//! it and the refund query answer.

use crate::pay::PayError;
use serde::{Deserialize, Deserializer, Serialize};

use http::Method;

use super::client::{parse, path_segment};
use super::order::check_text;
use super::{PayConfig, PayRequest};
use crate::pay::OrderRef;
use crate::{Error, OutRefundNo, OutTradeNo, Result, TransactionId};

/// A refund of (part of) a paid order.
///
/// The same `out_refund_no` is the same refund: repeating a request (after a timeout, a 5xx)
/// never refunds twice, and that is the only safe way to retry a refund.
///
/// ```
/// use wechat_core::OutTradeNo;
/// use wechat_core::pay::v3::RefundRequest;
///
/// let refund = RefundRequest::new(OutTradeNo::from("T2024010100"), "R2024010100", 100, 30)
///     .with_reason("out of stock");
/// assert!(refund.validate().is_ok());
/// assert!(RefundRequest::new(OutTradeNo::from("T2024010100"), "R1", 100, 101).validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// The order refunded.
    pub order: OrderRef,
    /// The merchant's refund number: at most 64 of `[0-9A-Za-z_-|*@]`, unique per merchant.
    pub out_refund_no: OutRefundNo,
    /// The order total in fen (WeChat Pay checks it against the order).
    pub total: u64,
    /// The amount to refund in fen: positive, at most `total`.
    pub refund: u64,
    /// The reason shown to the payer (at most 80 characters).
    pub reason: Option<String>,
    /// Where the refund notification goes, instead of the configured one.
    pub notify_url: Option<String>,
}

impl RefundRequest {
    /// A refund of `refund` fen of an order of `total` fen.
    pub fn new(
        order: impl Into<OrderRef>,
        out_refund_no: impl Into<OutRefundNo>,
        total: u64,
        refund: u64,
    ) -> Self {
        Self {
            order: order.into(),
            out_refund_no: out_refund_no.into(),
            total,
            refund,
            reason: None,
            notify_url: None,
        }
    }

    /// Sets the reason shown to the payer.
    #[must_use]
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Sets the refund notification URL for this refund.
    #[must_use]
    pub fn with_notify_url(mut self, url: impl Into<String>) -> Self {
        self.notify_url = Some(url.into());
        self
    }

    /// Checks the fields WeChat Pay would refuse.
    ///
    /// # Errors
    /// [`PayError::InvalidRequest`](crate::pay::PayError::InvalidRequest) naming the field.
    pub fn validate(&self) -> Result<()> {
        let no = self.out_refund_no.as_str();
        if no.is_empty()
            || no.len() > 64
            || !no
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'|' | b'*' | b'@'))
        {
            return Err(Error::Pay(PayError::InvalidRequest(format!(
                "out_refund_no {no:?} must be 1 to 64 characters of 0-9 A-Z a-z _ - | * @"
            ))));
        }
        if self.total == 0 || self.total > i64::MAX as u64 {
            return Err(Error::Pay(PayError::InvalidRequest(
                "amount.total must be the order's positive amount in fen".into(),
            )));
        }
        if self.refund == 0 || self.refund > self.total {
            return Err(Error::Pay(PayError::InvalidRequest(format!(
                "amount.refund must be 1 to {} fen (the order total); it is {}",
                self.total, self.refund
            ))));
        }
        if let Some(reason) = &self.reason {
            check_text("reason", reason, 0, 80)?;
        }
        Ok(())
    }
}

impl PayRequest for RefundRequest {
    type Output = RefundRecord;
    const ENDPOINT: &'static str = "/v3/refund/domestic/refunds";
    const METHOD: Method = Method::POST;

    /// The JSON body of the refund request, after [`RefundRequest::validate`].
    fn to_body(&self, config: &PayConfig) -> Result<Option<Vec<u8>>> {
        self.validate()?;
        let (transaction_id, out_trade_no) = match &self.order {
            OrderRef::TransactionId(id) => (Some(id.as_str()), None),
            OrderRef::OutTradeNo(no) => (None, Some(no.as_str())),
        };
        let body = RefundBody {
            transaction_id,
            out_trade_no,
            out_refund_no: self.out_refund_no.as_str(),
            reason: self.reason.as_deref(),
            notify_url: self
                .notify_url
                .as_deref()
                .or_else(|| config.refund_notify_url()),
            amount: RefundBodyAmount {
                refund: self.refund,
                total: self.total,
                currency: "CNY",
            },
        };
        serde_json::to_vec(&body).map(Some).map_err(|e| {
            Error::Pay(PayError::InvalidRequest(format!(
                "cannot encode the refund: {e}"
            )))
        })
    }

    fn read_reply(&self, _config: &PayConfig, reply: &[u8]) -> Result<RefundRecord> {
        parse(Self::ENDPOINT, reply)
    }
}

/// Queries a refund by its `out_refund_no`: `GET /v3/refund/domestic/refunds/{out_refund_no}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryRefund(pub OutRefundNo);

impl From<OutRefundNo> for QueryRefund {
    fn from(out_refund_no: OutRefundNo) -> Self {
        Self(out_refund_no)
    }
}

impl PayRequest for QueryRefund {
    type Output = RefundRecord;
    const ENDPOINT: &'static str = "/v3/refund/domestic/refunds/{out_refund_no}";
    const METHOD: Method = Method::GET;

    fn to_path(&self, _config: &PayConfig) -> Result<String> {
        Ok(format!(
            "/v3/refund/domestic/refunds/{}",
            path_segment(self.0.as_str())?
        ))
    }

    fn to_body(&self, _config: &PayConfig) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }

    fn read_reply(&self, _config: &PayConfig, reply: &[u8]) -> Result<RefundRecord> {
        parse(Self::ENDPOINT, reply)
    }
}

#[derive(Serialize)]
struct RefundBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    transaction_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    out_trade_no: Option<&'a str>,
    out_refund_no: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    notify_url: Option<&'a str>,
    amount: RefundBodyAmount,
}

#[derive(Serialize)]
struct RefundBodyAmount {
    refund: u64,
    total: u64,
    currency: &'static str,
}

/// The state of an API v3 refund.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefundStatus {
    /// `SUCCESS`: the money went back.
    Success,
    /// `CLOSED`: the refund failed and is closed (final).
    Closed,
    /// `PROCESSING`: accepted, not done yet; the notification or a query tells the outcome.
    Processing,
    /// `ABNORMAL`: the money could not go back to the payer's account; handle it on the
    /// merchant platform (not final).
    Abnormal,
    /// Any other status, as WeChat Pay sent it.
    Other(String),
}

impl RefundStatus {
    /// Reads WeChat Pay's spelling.
    pub fn from_wire(value: &str) -> Self {
        match value {
            "SUCCESS" => Self::Success,
            "CLOSED" => Self::Closed,
            "PROCESSING" => Self::Processing,
            "ABNORMAL" => Self::Abnormal,
            other => Self::Other(other.to_owned()),
        }
    }

    /// WeChat Pay's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Success => "SUCCESS",
            Self::Closed => "CLOSED",
            Self::Processing => "PROCESSING",
            Self::Abnormal => "ABNORMAL",
            Self::Other(s) => s,
        }
    }
}

impl std::fmt::Display for RefundStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

pub(crate) fn refund_status<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<RefundStatus, D::Error> {
    let wire = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    Ok(RefundStatus::from_wire(&wire))
}

/// A refund as WeChat Pay reports it (the answer to a refund request and to a refund query).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RefundRecord {
    /// WeChat Pay's refund id.
    pub refund_id: String,
    /// The merchant's refund number.
    pub out_refund_no: OutRefundNo,
    /// The order's transaction id.
    pub transaction_id: TransactionId,
    /// The order number.
    pub out_trade_no: OutTradeNo,
    /// Where the money goes: `ORIGINAL`, `BALANCE`, …
    #[serde(default)]
    pub channel: Option<String>,
    /// The account that receives the money, as text for people.
    #[serde(default)]
    pub user_received_account: Option<String>,
    /// When it succeeded (RFC 3339), once `SUCCESS`.
    #[serde(default)]
    pub success_time: Option<String>,
    /// When it was created (RFC 3339).
    #[serde(default)]
    pub create_time: Option<String>,
    /// The state.
    #[serde(deserialize_with = "refund_status")]
    pub status: RefundStatus,
    /// The amounts.
    pub amount: RefundAmount,
}

/// The amounts of a refund, in fen.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RefundAmount {
    /// The order total.
    pub total: u64,
    /// The amount refunded.
    pub refund: u64,
    /// What the payer paid.
    #[serde(default)]
    pub payer_total: Option<u64>,
    /// What goes back to the payer.
    #[serde(default)]
    pub payer_refund: Option<u64>,
    /// The currency, `CNY`.
    #[serde(default)]
    pub currency: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refund_checks_and_body() {
        let r = RefundRequest::new(OutTradeNo::from("T2024010100"), "R@2024", 100, 100);
        assert!(r.validate().is_ok());
        for (bad, field) in [
            (
                RefundRequest::new(OutTradeNo::from("T1"), "R 1", 100, 1),
                "out_refund_no",
            ),
            (
                RefundRequest::new(OutTradeNo::from("T1"), "R1", 100, 0),
                "amount.refund",
            ),
            (
                RefundRequest::new(OutTradeNo::from("T1"), "R1", 0, 0),
                "amount.total",
            ),
            (
                RefundRequest::new(OutTradeNo::from("T1"), "R1", 100, 1)
                    .with_reason("r".repeat(81)),
                "reason",
            ),
        ] {
            let err = bad.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
        let record: RefundRecord = serde_json::from_str(
            r#"{"refund_id":"50","out_refund_no":"R1","transaction_id":"42","out_trade_no":"T1","status":"PROCESSING",
               "amount":{"total":100,"refund":30,"payer_total":100,"payer_refund":30,"currency":"CNY","from":[]},"promotion_detail":[]}"#,
        )
        .unwrap();
        assert_eq!(record.status, RefundStatus::Processing);
        assert_eq!(record.amount.refund, 30);
    }
}
