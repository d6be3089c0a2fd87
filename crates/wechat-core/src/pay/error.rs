//! WeChat Pay's errors, in one [`PayError`] (inside [`Error::Pay`](crate::Error::Pay)): what
//! WeChat Pay refused or answered (v2 `return_code`/`err_code`, v3 `code`), and what this crate
//! refused before believing it (signatures, keys, certificates, notifications, XML).

use crate::error::utc;

/// What went wrong with WeChat Pay; inside [`Error::Pay`](crate::Error::Pay), compiled with the
/// `pay` feature only. Branch on the variant (and, for WeChat Pay's own answers, on
/// [`PayErrorCode`] or [`PayApiErrorCode`]); the message says what happened and what to do,
/// never a key.
///
/// ```
/// use wechat_core::Error;
/// use wechat_core::pay::PayError;
///
/// let err = Error::from(PayError::BadSignature("a SUCCESS reply from WeChat Pay has no sign"));
/// assert!(matches!(err, Error::Pay(PayError::BadSignature(_))));
/// assert_eq!(err.to_string(), "signature verification failed: a SUCCESS reply from WeChat Pay has no sign");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayError {
    // ---- API v2 ----
    /// `return_code` was `FAIL`: the request itself was refused (communication level).
    #[error("WeChat Pay refused the request to {endpoint}: {return_msg}")]
    Return {
        /// WeChat's `return_msg`, e.g. `签名错误`.
        return_msg: String,
        /// The endpoint called, e.g. `/pay/unifiedorder`.
        endpoint: &'static str,
    },
    /// `result_code` was `FAIL`: a business error with its `err_code`.
    #[error("WeChat Pay error {code} from {endpoint}: {description}")]
    Business {
        /// The `err_code`, typed.
        code: PayErrorCode,
        /// WeChat's `err_code_des`.
        description: String,
        /// The endpoint called, e.g. `/pay/orderquery`.
        endpoint: &'static str,
    },
    /// A signature did not verify: a reply, a notification or a parameter set was altered,
    /// forged, or signed with another key.
    #[error("signature verification failed: {0}")]
    BadSignature(&'static str),
    /// An XML body was refused (too large, a DOCTYPE or entity, malformed).
    #[error("XML refused: {0}")]
    Xml(String),
    /// A notification was well signed but is not for this merchant, app or order.
    #[error("notification rejected: {0}")]
    NotificationMismatch(String),
    /// A WeChat Pay request was not sent because a field is invalid (a zero amount, an
    /// `out_trade_no` WeChat would refuse, a missing openid…); the message names the field.
    #[error("invalid WeChat Pay request: {0}")]
    InvalidRequest(String),

    // ---- API v3 ----
    /// A reply or notification is signed with a WeChat Pay key this merchant does not have
    /// (`Wechatpay-Serial`): refused. A new platform certificate is downloaded on its own; a
    /// serial `PUB_KEY_ID_…` means WeChat Pay signs with a public key that is not configured.
    #[error(
        "signature verification failed: the signature names WeChat Pay key {serial:?} \
         (Wechatpay-Serial), which is not configured: configure that WeChat Pay public key \
         (PUB_KEY_ID_…) or platform certificate, or this was not sent by WeChat Pay"
    )]
    UnknownSerial {
        /// The `Wechatpay-Serial` received.
        serial: String,
    },
    /// A reply or notification is signed with a configured WeChat Pay platform certificate that
    /// has expired, or is not valid yet, on the configured clock: refused, as WeChat Pay signs
    /// nothing with an expired certificate. The message says which and when.
    #[error("{}", certificate_validity_message(serial, *not_before, *not_after, *now))]
    CertificateNotValid {
        /// The `Wechatpay-Serial` received: the certificate's serial number.
        serial: String,
        /// When the certificate becomes valid, unix seconds.
        not_before: u64,
        /// When it expires, unix seconds.
        not_after: u64,
        /// The time of the verification, unix seconds, on the configured clock.
        now: u64,
    },
    /// WeChat Pay API v3 answered an error: `{code, message, detail}` with an HTTP status. See
    /// [`PayApiError`]; its `request_id` is what WeChat Pay's support asks for.
    #[error(transparent)]
    Api(Box<PayApiError>),
    /// A WeChat Pay API v3 success answer was not signed by WeChat Pay (no `Wechatpay-*` headers,
    /// an unknown key, a signature that does not verify, a stale timestamp): it was refused
    /// unread, because a forged "paid" or "refunded" would move money.
    #[error(
        "WeChat Pay's answer to {endpoint} is refused: {reason} (Request-ID {})",
        .request_id.as_deref().unwrap_or("none")
    )]
    ForgedReply {
        /// The endpoint, e.g. `/v3/pay/transactions/jsapi`.
        endpoint: &'static str,
        /// Which check failed.
        reason: String,
        /// The answer's `Request-ID`, when it had one.
        request_id: Option<String>,
    },
}

impl PayError {
    /// The WeChat Pay endpoint of the failed call, for the errors that name one.
    pub fn endpoint(&self) -> Option<&'static str> {
        match self {
            Self::Return { endpoint, .. }
            | Self::Business { endpoint, .. }
            | Self::ForgedReply { endpoint, .. } => Some(endpoint),
            Self::Api(error) => Some(error.endpoint),
            _ => None,
        }
    }

    /// The `Request-ID` of a v3 answer, which WeChat Pay's support asks for, when sent.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Api(error) => error.request_id.as_deref(),
            Self::ForgedReply { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// Whether the same request may succeed later (v2 `SYSTEMERROR`; see
    /// [`PayApiError::is_transient`] for v3).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Business { code, .. } => *code == PayErrorCode::SystemError,
            Self::Api(error) => error.is_transient(),
            _ => false,
        }
    }
}

impl From<PayError> for crate::Error {
    fn from(error: PayError) -> Self {
        Self::Pay(error)
    }
}

/// A WeChat Pay API v3 error answer.
///
/// Branch on [`code`](Self::code) (and the HTTP status), never on `message`; log `request_id`,
/// which WeChat Pay's support asks for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "WeChat Pay error {code} (HTTP {status}) from {endpoint}: {message}{} (Request-ID {})",
    .detail.as_deref().map(|d| format!(" [{d}]")).unwrap_or_default(),
    .request_id.as_deref().unwrap_or("none")
)]
pub struct PayApiError {
    /// The endpoint, e.g. `/v3/pay/transactions/jsapi` (ids in the path are not repeated).
    pub endpoint: &'static str,
    /// The HTTP status, e.g. 400.
    pub status: u16,
    /// The `code`, typed.
    pub code: PayApiErrorCode,
    /// WeChat Pay's `message` (Chinese text for people, not for branching).
    pub message: String,
    /// The `detail` object as JSON text (for a bad parameter: `field`, `value`, `issue`,
    /// `location`), when sent.
    pub detail: Option<String>,
    /// The answer's `Request-ID` header.
    pub request_id: Option<String>,
}

impl PayApiError {
    /// Whether the same request may succeed later: `SYSTEM_ERROR`, `SERVICE_UNAVAILABLE`,
    /// `BANK_ERROR`, `FREQUENCY_LIMITED` and any 5xx or 429. Retrying must repeat the same
    /// parameters (the same `out_trade_no` or `out_refund_no`).
    pub fn is_transient(&self) -> bool {
        self.status >= 500
            || self.status == 429
            || matches!(
                self.code,
                PayApiErrorCode::SystemError
                    | PayApiErrorCode::ServiceUnavailable
                    | PayApiErrorCode::BankError
                    | PayApiErrorCode::FrequencyLimited
            )
    }
}

/// WeChat Pay API v3 error `code` values a caller branches on.
///
/// The v3 spellings (with underscores); the v2-style spellings some WeChat pages show
/// (`NOAUTH`, `RULELIMIT`, `SYSTEMERROR`) are read as the same codes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PayApiErrorCode {
    /// 400 `PARAM_ERROR`: a parameter is invalid (see `detail`).
    ParamError,
    /// 400 `INVALID_REQUEST`: well formed, but against a business rule.
    InvalidRequest,
    /// 400 `APPID_MCHID_NOT_MATCH`: the app id is not bound to the merchant.
    AppidMchidNotMatch,
    /// `MCH_NOT_EXISTS`: unknown merchant id.
    MchNotExists,
    /// 400 `ORDER_CLOSED`: the order is closed; order again with a new `out_trade_no`.
    OrderClosed,
    /// 401 `SIGN_ERROR`: WeChat Pay could not verify the request's signature (wrong private key,
    /// serial, or clock).
    SignError,
    /// 403 `NO_AUTH`: the product or permission is not enabled for this merchant.
    NoAuth,
    /// 403 `OUT_TRADE_NO_USED`: the `out_trade_no` was used with other parameters.
    OutTradeNoUsed,
    /// 403 `RULE_LIMIT`: a business rule limits this request.
    RuleLimit,
    /// 403 `TRADE_ERROR`: the trade cannot be processed in its state.
    TradeError,
    /// 403 `ACCOUNT_ERROR`: an account is abnormal.
    AccountError,
    /// 403 `NOT_ENOUGH`: not enough balance for a refund.
    NotEnough,
    /// 403 `USER_ACCOUNT_ABNORMAL`: the payer's account is closed or abnormal; refund another way.
    UserAccountAbnormal,
    /// 404 `ORDER_NOT_EXIST`: no such order.
    OrderNotExist,
    /// 404 `RESOURCE_NOT_EXISTS`: no such refund, or (on `/v3/certificates`) no platform
    /// certificate: the merchant has the WeChat Pay public key instead.
    ResourceNotExists,
    /// 429 `FREQUENCY_LIMITED`: too many requests; back off and repeat the same request.
    FrequencyLimited,
    /// 500 `SYSTEM_ERROR`: WeChat Pay failed; retried with the same parameters before this is
    /// returned.
    SystemError,
    /// 500 `BANK_ERROR`: the bank failed; retry with the same parameters.
    BankError,
    /// 500 `OPENID_MISMATCH`: the openid does not belong to the app id.
    OpenidMismatch,
    /// 500 `INVALID_TRANSACTIONID`: no such transaction id.
    InvalidTransactionId,
    /// 502/503 `SERVICE_UNAVAILABLE`.
    ServiceUnavailable,
    /// Any other code, as WeChat Pay sent it.
    Other(String),
}

impl PayApiErrorCode {
    /// Maps WeChat Pay's `code` string.
    pub fn from_code(code: &str) -> Self {
        match code {
            "PARAM_ERROR" => Self::ParamError,
            "INVALID_REQUEST" => Self::InvalidRequest,
            "APPID_MCHID_NOT_MATCH" => Self::AppidMchidNotMatch,
            "MCH_NOT_EXISTS" => Self::MchNotExists,
            "ORDER_CLOSED" => Self::OrderClosed,
            "SIGN_ERROR" => Self::SignError,
            "NO_AUTH" | "NOAUTH" => Self::NoAuth,
            "OUT_TRADE_NO_USED" => Self::OutTradeNoUsed,
            "RULE_LIMIT" | "RULELIMIT" => Self::RuleLimit,
            "TRADE_ERROR" => Self::TradeError,
            "ACCOUNT_ERROR" => Self::AccountError,
            "NOT_ENOUGH" => Self::NotEnough,
            "USER_ACCOUNT_ABNORMAL" => Self::UserAccountAbnormal,
            "ORDER_NOT_EXIST" => Self::OrderNotExist,
            "RESOURCE_NOT_EXISTS" => Self::ResourceNotExists,
            "FREQUENCY_LIMITED" => Self::FrequencyLimited,
            "SYSTEM_ERROR" | "SYSTEMERROR" => Self::SystemError,
            "BANK_ERROR" => Self::BankError,
            "OPENID_MISMATCH" => Self::OpenidMismatch,
            "INVALID_TRANSACTIONID" => Self::InvalidTransactionId,
            "SERVICE_UNAVAILABLE" => Self::ServiceUnavailable,
            other => Self::Other(other.to_owned()),
        }
    }

    /// WeChat Pay's v3 spelling of the code.
    pub fn as_str(&self) -> &str {
        match self {
            Self::ParamError => "PARAM_ERROR",
            Self::InvalidRequest => "INVALID_REQUEST",
            Self::AppidMchidNotMatch => "APPID_MCHID_NOT_MATCH",
            Self::MchNotExists => "MCH_NOT_EXISTS",
            Self::OrderClosed => "ORDER_CLOSED",
            Self::SignError => "SIGN_ERROR",
            Self::NoAuth => "NO_AUTH",
            Self::OutTradeNoUsed => "OUT_TRADE_NO_USED",
            Self::RuleLimit => "RULE_LIMIT",
            Self::TradeError => "TRADE_ERROR",
            Self::AccountError => "ACCOUNT_ERROR",
            Self::NotEnough => "NOT_ENOUGH",
            Self::UserAccountAbnormal => "USER_ACCOUNT_ABNORMAL",
            Self::OrderNotExist => "ORDER_NOT_EXIST",
            Self::ResourceNotExists => "RESOURCE_NOT_EXISTS",
            Self::FrequencyLimited => "FREQUENCY_LIMITED",
            Self::SystemError => "SYSTEM_ERROR",
            Self::BankError => "BANK_ERROR",
            Self::OpenidMismatch => "OPENID_MISMATCH",
            Self::InvalidTransactionId => "INVALID_TRANSACTIONID",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Self::Other(code) => code,
        }
    }
}

impl std::fmt::Display for PayApiErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// WeChat Pay v2 `err_code` values a caller branches on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PayErrorCode {
    /// The order is already paid: mark it paid instead of retrying.
    OrderPaid,
    /// The order is closed: use a new `out_trade_no`.
    OrderClosed,
    /// The same `out_trade_no` was used with different parameters.
    OutTradeNoUsed,
    /// Not enough balance (the payer's on payment, the merchant's on refund).
    NotEnough,
    /// WeChat-side error; retried with the same parameters before this is returned.
    SystemError,
    /// The request signature was wrong (wrong API key or sign type).
    SignError,
    /// A parameter is invalid.
    ParamError,
    /// A required parameter is missing.
    LackParams,
    /// The app id is not bound to the merchant id.
    AppidMchidNotMatch,
    /// The order does not exist.
    OrderNotExist,
    /// The refund does not exist.
    RefundNotExist,
    /// The merchant has no permission for this API.
    NoAuth,
    /// Any other code, as WeChat sent it.
    Other(String),
}

impl PayErrorCode {
    /// Maps WeChat's `err_code` string.
    pub fn from_code(code: &str) -> Self {
        match code {
            "ORDERPAID" => Self::OrderPaid,
            "ORDERCLOSED" => Self::OrderClosed,
            "OUT_TRADE_NO_USED" => Self::OutTradeNoUsed,
            "NOTENOUGH" => Self::NotEnough,
            "SYSTEMERROR" | "BIZERR_NEED_RETRY" => Self::SystemError,
            "SIGNERROR" => Self::SignError,
            "PARAM_ERROR" | "INVALID_REQUEST" => Self::ParamError,
            "LACK_PARAMS" => Self::LackParams,
            "APPID_MCHID_NOT_MATCH" => Self::AppidMchidNotMatch,
            "ORDERNOTEXIST" => Self::OrderNotExist,
            "REFUNDNOTEXIST" => Self::RefundNotExist,
            "NOAUTH" => Self::NoAuth,
            other => Self::Other(other.to_owned()),
        }
    }

    /// WeChat's spelling of the code.
    pub fn as_str(&self) -> &str {
        match self {
            Self::OrderPaid => "ORDERPAID",
            Self::OrderClosed => "ORDERCLOSED",
            Self::OutTradeNoUsed => "OUT_TRADE_NO_USED",
            Self::NotEnough => "NOTENOUGH",
            Self::SystemError => "SYSTEMERROR",
            Self::SignError => "SIGNERROR",
            Self::ParamError => "PARAM_ERROR",
            Self::LackParams => "LACK_PARAMS",
            Self::AppidMchidNotMatch => "APPID_MCHID_NOT_MATCH",
            Self::OrderNotExist => "ORDERNOTEXIST",
            Self::RefundNotExist => "REFUNDNOTEXIST",
            Self::NoAuth => "NOAUTH",
            Self::Other(code) => code,
        }
    }
}

impl std::fmt::Display for PayErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The message of [`PayError::CertificateNotValid`]: expired, or not valid yet, and when.
fn certificate_validity_message(serial: &str, not_before: u64, not_after: u64, now: u64) -> String {
    if now < not_before {
        format!(
            "signature verification failed: WeChat Pay platform certificate {serial:?} \
             (Wechatpay-Serial) is not valid before {} and this server's clock says {}: check the \
             clock",
            utc(not_before),
            utc(now)
        )
    } else {
        format!(
            "signature verification failed: WeChat Pay platform certificate {serial:?} \
             (Wechatpay-Serial) expired at {} (now {}), and WeChat Pay signs nothing with an \
             expired certificate: download the current ones (GET /v3/certificates), or configure \
             the WeChat Pay public key (PUB_KEY_ID_…) shown under 账户中心 → API安全",
            utc(not_after),
            utc(now)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pay_codes_round_trip() {
        for code in [
            "ORDERPAID",
            "ORDERCLOSED",
            "OUT_TRADE_NO_USED",
            "NOTENOUGH",
            "SYSTEMERROR",
            "SIGNERROR",
            "PARAM_ERROR",
            "NEWCODE",
        ] {
            assert_eq!(PayErrorCode::from_code(code).as_str(), code);
        }
    }
}
