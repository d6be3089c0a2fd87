//! Payment and refund notifications (protocol reference §4.4, §4.8), verified before anything
//! reads them, and the replies WeChat expects.
//!
//! The easy path is the safe one: [`PayClient::handle_payment_notification`] parses safely,
//! verifies the
//! `sign` over every received field, checks the merchant and app, and only then calls the
//! application's handler; it answers `SUCCESS` only after the handler returned `Ok`, so WeChat
//! re-sends (15 s, 15 s, 30 s, 3 min, … for about 24 hours) until the payment is durably
//! recorded. Duplicates are normal: the handler must be idempotent.
//!
//! ```
//! use wechat_core::pay::v2::{PayClient, PaymentNotification};
//!
//! # async fn demo(pay: PayClient, headers: http::HeaderMap, body: &[u8]) -> http::Response<bytes::Bytes> {
//! let reply = pay.handle_payment_notification(&headers, body, |paid: PaymentNotification| async move {
//!     // Look the order up by paid.out_trade_no, check paid.total_fee == its amount, mark it
//!     // paid (idempotently) in the database, and only then return Ok.
//!     Ok::<(), std::io::Error>(())
//! })
//! .await;
//! reply.into_response()
//! # }
//! ```
//!
//! See <https://pay.weixin.qq.com/wiki/doc/api/jsapi.php?chapter=9_7> and
//! <https://pay.weixin.qq.com/wiki/doc/api/jsapi.php?chapter=9_16>.

use crate::pay::PayError;
use std::future::Future;

use http::HeaderMap;

use super::order::{
    Transaction, fen_value, non_empty, optional_fen, required, required_fen, required_value,
};
use super::xml::{Limits, parse_flat};
use super::{
    PayClient, PayConfig, PayFields, RefundRef, RefundStatus, SignType, decrypt_refund_req_info,
    verify_pay_fields,
};
use crate::pay::TradeType;
use crate::pay::notify::{self, Kind, Opened};
use crate::pay::v2::PayErrorCode;
use crate::pay::{ApiVersion, NotificationReply};
use crate::{AppId, Error, MchId, OpenId, OutRefundNo, OutTradeNo, Result, TransactionId};

const PAYMENT: &str = "payment notification";
const REFUND: &str = "refund notification";

/// WeChat's acknowledgement: `<xml><return_code>SUCCESS</return_code><return_msg>OK</return_msg></xml>`.
pub const NOTIFICATION_SUCCESS_XML: &str = "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>";

/// WeChat's refusal, which makes WeChat send the notification again later.
pub fn notification_fail_xml(message: &str) -> String {
    format!(
        "<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[{}]]></return_msg></xml>",
        message.replace("]]>", "]]]]><![CDATA[>")
    )
}

/// A verified payment notification (or an `orderquery` that says `SUCCESS`): the money was
/// received for `out_trade_no`.
///
/// # Security
/// Verified means "WeChat sent this for our merchant and app". Whether it pays *your* order is
/// for you to check: find the order by `out_trade_no`, compare `total_fee` (integer fen) with its
/// amount, and record the payment idempotently (a duplicate must only be acknowledged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentNotification {
    /// The app id (checked equal to the configuration's).
    pub appid: AppId,
    /// The merchant id (checked equal to the configuration's).
    pub mch_id: MchId,
    /// The merchant's order number.
    pub out_trade_no: OutTradeNo,
    /// WeChat Pay's transaction id.
    pub transaction_id: TransactionId,
    /// The payer.
    pub openid: OpenId,
    /// The order amount in fen.
    pub total_fee: u64,
    /// The amount paid in cash (fen), when sent.
    pub cash_fee: Option<u64>,
    /// The currency (`CNY` when absent).
    pub fee_type: Option<String>,
    /// When payment completed, `yyyyMMddHHmmss` Beijing time.
    pub time_end: String,
    /// The order's `attach`.
    pub attach: Option<String>,
    /// How it was paid: `JSAPI`, `NATIVE`, or `MWEB` for H5.
    pub trade_type: TradeType,
    /// The payer's bank or `OTHERS`.
    pub bank_type: Option<String>,
    /// Every received field, verified.
    pub fields: PayFields,
}

impl PaymentNotification {
    /// The typed value of the verified fields `picked` was taken from, with [`fields`](Self::fields)
    /// left empty for the caller to move them in (`picked` borrows them).
    fn from_picked(picked: &PaymentFields<'_>, source: &'static str) -> Result<Self> {
        Ok(Self {
            appid: AppId::from(required_value(picked.appid, "appid", source)?),
            mch_id: MchId::from(required_value(picked.mch_id, "mch_id", source)?),
            out_trade_no: OutTradeNo::from(required_value(
                picked.out_trade_no,
                "out_trade_no",
                source,
            )?),
            transaction_id: TransactionId::from(required_value(
                picked.transaction_id,
                "transaction_id",
                source,
            )?),
            openid: OpenId::from(required_value(picked.openid, "openid", source)?),
            total_fee: fen_value(picked.total_fee, "total_fee", source)?.ok_or_else(|| {
                Error::UnexpectedResponse {
                    endpoint: source,
                    detail: "missing total_fee".into(),
                }
            })?,
            cash_fee: fen_value(picked.cash_fee, "cash_fee", source)?,
            fee_type: non_empty(picked.fee_type).map(str::to_owned),
            time_end: picked.time_end.unwrap_or("").to_owned(),
            attach: non_empty(picked.attach).map(str::to_owned),
            trade_type: TradeType::from_wire(picked.trade_type.unwrap_or("")),
            bank_type: non_empty(picked.bank_type).map(str::to_owned),
            fields: PayFields::new(),
        })
    }

    /// The same value from a verified `orderquery` reply whose `trade_state` is `SUCCESS`, so
    /// that a payment found by polling is recorded exactly as a notification would be.
    ///
    /// # Errors
    /// [`PayError::NotificationMismatch`](crate::pay::PayError::NotificationMismatch) when the order is not paid (`trade_state` other than
    /// `SUCCESS`) or is for another app or merchant; [`Error::UnexpectedResponse`] when a field
    /// is missing.
    pub fn from_order_query(config: &PayConfig, query: &Transaction) -> Result<Self> {
        if query.trade_state != super::TradeState::Success {
            return Err(Error::Pay(PayError::NotificationMismatch(format!(
                "the order's trade_state is {}, not SUCCESS",
                query.trade_state
            ))));
        }
        let picked = PaymentFields::pick(&query.fields);
        check_merchant_ids(config, picked.appid, picked.mch_id)?;
        let mut paid = Self::from_picked(&picked, "/pay/orderquery")?;
        paid.fields = query.fields.clone();
        Ok(paid)
    }
}

/// The fields a payment notification is checked and typed with, found in one pass over the
/// fields (rather than one search per name).
#[derive(Default)]
struct PaymentFields<'a> {
    return_code: Option<&'a str>,
    return_msg: Option<&'a str>,
    sign: Option<&'a str>,
    sign_type: Option<&'a str>,
    appid: Option<&'a str>,
    mch_id: Option<&'a str>,
    result_code: Option<&'a str>,
    err_code: Option<&'a str>,
    err_code_des: Option<&'a str>,
    out_trade_no: Option<&'a str>,
    transaction_id: Option<&'a str>,
    openid: Option<&'a str>,
    total_fee: Option<&'a str>,
    cash_fee: Option<&'a str>,
    fee_type: Option<&'a str>,
    time_end: Option<&'a str>,
    attach: Option<&'a str>,
    trade_type: Option<&'a str>,
    bank_type: Option<&'a str>,
}

impl<'a> PaymentFields<'a> {
    fn pick(fields: &'a PayFields) -> Self {
        let mut picked = Self::default();
        for (name, value) in fields {
            let slot = match name {
                "return_code" => &mut picked.return_code,
                "return_msg" => &mut picked.return_msg,
                "sign" => &mut picked.sign,
                "sign_type" => &mut picked.sign_type,
                "appid" => &mut picked.appid,
                "mch_id" => &mut picked.mch_id,
                "result_code" => &mut picked.result_code,
                "err_code" => &mut picked.err_code,
                "err_code_des" => &mut picked.err_code_des,
                "out_trade_no" => &mut picked.out_trade_no,
                "transaction_id" => &mut picked.transaction_id,
                "openid" => &mut picked.openid,
                "total_fee" => &mut picked.total_fee,
                "cash_fee" => &mut picked.cash_fee,
                "fee_type" => &mut picked.fee_type,
                "time_end" => &mut picked.time_end,
                "attach" => &mut picked.attach,
                "trade_type" => &mut picked.trade_type,
                "bank_type" => &mut picked.bank_type,
                _ => continue,
            };
            // As `PayFields::get`: the first of a name (parsed fields have no duplicates).
            slot.get_or_insert(value);
        }
        picked
    }
}

fn check_merchant(config: &PayConfig, fields: &PayFields) -> Result<()> {
    check_merchant_ids(config, fields.get("appid"), fields.get("mch_id"))
}

fn check_merchant_ids(config: &PayConfig, appid: Option<&str>, mch_id: Option<&str>) -> Result<()> {
    let appid = appid.unwrap_or("");
    if appid != config.appid().as_str() {
        return Err(Error::Pay(PayError::NotificationMismatch(format!(
            "appid {appid:?} is not the configured {}",
            config.appid()
        ))));
    }
    let mch_id = mch_id.unwrap_or("");
    if mch_id != config.mch_id().as_str() {
        return Err(Error::Pay(PayError::NotificationMismatch(format!(
            "mch_id {mch_id:?} is not the configured {}",
            config.mch_id()
        ))));
    }
    Ok(())
}

fn check_return_code(fields: &PayFields, source: &'static str) -> Result<()> {
    check_return_code_of(fields.get("return_code"), fields.get("return_msg"), source)
}

fn check_return_code_of(
    return_code: Option<&str>,
    return_msg: Option<&str>,
    source: &'static str,
) -> Result<()> {
    match return_code {
        Some("SUCCESS") => Ok(()),
        Some("FAIL") => Err(Error::Pay(PayError::Return {
            return_msg: return_msg.unwrap_or("").to_owned(),
            endpoint: source,
        })),
        other => Err(Error::UnexpectedResponse {
            endpoint: source,
            detail: format!("return_code is {other:?}"),
        }),
    }
}

/// Verifies a payment notification body and returns its typed value.
///
/// Steps (protocol reference §4.4): safe parse (size limit, no DTD/entities); `return_code`
/// `SUCCESS`; a `sign` must be present (a SUCCESS without one is forged); the sign is verified
/// over **all** received fields with the notification's `sign_type` (MD5 when absent), which
/// must be the configured one (or the one also accepted while migrating: a notification naming
/// another is refused, so that nobody can downgrade HMAC-SHA256 to MD5); `appid` and `mch_id`
/// must be the configured ones; `result_code` must be `SUCCESS`.
///
/// # Errors
/// [`PayError::Xml`](crate::pay::PayError::Xml), [`PayError::BadSignature`](crate::pay::PayError::BadSignature), [`PayError::NotificationMismatch`](crate::pay::PayError::NotificationMismatch),
/// [`PayError::Return`](crate::pay::PayError::Return) (a FAIL notification), [`PayError::Business`](crate::pay::PayError::Business) (a verified `result_code` FAIL:
/// the payment did not succeed), [`Error::UnexpectedResponse`] (a required field is missing).
///
/// # Security
/// The amount is not compared with anything here: the caller must compare `total_fee` with
/// its own order's amount.
pub fn verify_payment_notification(config: &PayConfig, body: &[u8]) -> Result<PaymentNotification> {
    let fields = parse_flat(body, "xml", Limits::NOTIFICATION)?;
    let picked = PaymentFields::pick(&fields);
    check_return_code_of(picked.return_code, picked.return_msg, PAYMENT)?;
    let sign = non_empty(picked.sign).ok_or(Error::Pay(PayError::BadSignature(
        "a SUCCESS payment notification without sign is forged",
    )))?;
    // WeChat names HMAC-SHA256 in `sign_type` and leaves it out for MD5.
    let sign_type = match non_empty(picked.sign_type) {
        None => SignType::Md5,
        Some(name) => SignType::from_wire(name).ok_or(Error::Pay(PayError::BadSignature(
            "unknown sign_type in the notification",
        )))?,
    };
    if !config.accepts_notification_sign_type(sign_type) {
        return Err(Error::Pay(PayError::BadSignature(
            "the notification is signed with another sign_type than the configured one \
             (a downgrade is refused; see PayConfigBuilder::also_accept_notification_sign_type)",
        )));
    }
    verify_pay_fields(&fields, config.api_key(), sign_type, sign)?;
    check_merchant_ids(config, picked.appid, picked.mch_id)?;
    match picked.result_code {
        Some("SUCCESS") => {}
        Some("FAIL") => {
            return Err(Error::Pay(PayError::Business {
                code: PayErrorCode::from_code(picked.err_code.unwrap_or("")),
                description: picked.err_code_des.unwrap_or("").to_owned(),
                endpoint: PAYMENT,
            }));
        }
        other => {
            return Err(Error::UnexpectedResponse {
                endpoint: PAYMENT,
                detail: format!("result_code is {other:?}"),
            });
        }
    }
    let mut paid = PaymentNotification::from_picked(&picked, PAYMENT)?;
    paid.fields = fields;
    Ok(paid)
}

/// A decrypted refund notification.
///
/// # Security
/// `req_info` is encrypted with a key derived from the API key (AES-256-ECB), which proves it
/// comes from WeChat but does not authenticate it the way a MAC would: match `out_refund_no`
/// with a refund you requested and compare `refund_fee` with its amount before recording it
/// (or confirm with `refundquery`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundNotification {
    /// The app id (checked).
    pub appid: AppId,
    /// The merchant id (checked).
    pub mch_id: MchId,
    /// The merchant's refund number.
    pub out_refund_no: OutRefundNo,
    /// WeChat's refund id.
    pub refund_id: String,
    /// The order number.
    pub out_trade_no: OutTradeNo,
    /// The transaction id.
    pub transaction_id: TransactionId,
    /// The order total in fen.
    pub total_fee: u64,
    /// The refund amount in fen.
    pub refund_fee: u64,
    /// The order total after coupons, in fen.
    pub settlement_total_fee: Option<u64>,
    /// The refunded amount after coupons, in fen.
    pub settlement_refund_fee: Option<u64>,
    /// `SUCCESS`, `CHANGE` or `REFUNDCLOSE`.
    pub refund_status: RefundStatus,
    /// When it succeeded, `yyyy-MM-dd HH:mm:ss`.
    pub success_time: Option<String>,
    /// Where the money went (`refund_recv_accout`, WeChat's spelling).
    pub refund_recv_accout: Option<String>,
    /// Which funds paid for it.
    pub refund_account: Option<String>,
    /// `API` or `VENDOR_PLATFORM`.
    pub refund_request_source: Option<String>,
    /// The decrypted `req_info` fields.
    pub fields: PayFields,
}

/// Verifies a refund notification: safe parse, `return_code` `SUCCESS`, `appid` and `mch_id`
/// ours, then `req_info` decrypted with the API key and parsed (root `<root>`).
///
/// # Errors
/// [`PayError::Xml`](crate::pay::PayError::Xml), [`PayError::BadSignature`](crate::pay::PayError::BadSignature) (`req_info` does not decrypt with our key),
/// [`PayError::NotificationMismatch`](crate::pay::PayError::NotificationMismatch), [`PayError::Return`](crate::pay::PayError::Return), [`Error::UnexpectedResponse`].
///
/// # Security
/// See [`RefundNotification`]: match the refund number and amount with your own refund.
pub fn verify_refund_notification(config: &PayConfig, body: &[u8]) -> Result<RefundNotification> {
    let outer = parse_flat(body, "xml", Limits::NOTIFICATION)?;
    check_return_code(&outer, REFUND)?;
    check_merchant(config, &outer)?;
    let req_info = required(&outer, "req_info", REFUND)?;
    let plaintext = decrypt_refund_req_info(req_info, config.api_key())?;
    let fields = parse_flat(&plaintext, "root", Limits::NOTIFICATION)?;
    Ok(RefundNotification {
        appid: config.appid().clone(),
        mch_id: config.mch_id().clone(),
        out_refund_no: OutRefundNo::from(required(&fields, "out_refund_no", REFUND)?),
        refund_id: required(&fields, "refund_id", REFUND)?.to_owned(),
        out_trade_no: OutTradeNo::from(required(&fields, "out_trade_no", REFUND)?),
        transaction_id: TransactionId::from(required(&fields, "transaction_id", REFUND)?),
        total_fee: required_fen(&fields, "total_fee", REFUND)?,
        refund_fee: required_fen(&fields, "refund_fee", REFUND)?,
        settlement_total_fee: optional_fen(&fields, "settlement_total_fee", REFUND)?,
        settlement_refund_fee: optional_fen(&fields, "settlement_refund_fee", REFUND)?,
        refund_status: RefundStatus::from_wire(required(&fields, "refund_status", REFUND)?),
        success_time: fields.get_non_empty("success_time").map(str::to_owned),
        refund_recv_accout: fields
            .get_non_empty("refund_recv_accout")
            .map(str::to_owned),
        refund_account: fields.get_non_empty("refund_account").map(str::to_owned),
        refund_request_source: fields
            .get_non_empty("refund_request_source")
            .map(str::to_owned),
        fields,
    })
}

/// Verifies a payment notification, hands it to `handler`, and says what to answer WeChat.
///
/// - Not verifiable (forged, altered, another merchant, malformed, too large): the handler is
///   not called; FAIL, and a `tracing::warn!` without secrets.
/// - Verified, but `result_code` FAIL (the payment did not succeed): nothing to record; the
///   handler is not called; SUCCESS (so WeChat stops re-sending it).
/// - Verified and paid: `handler` is called; SUCCESS only if it returned `Ok`, FAIL (500)
///   otherwise, so WeChat re-sends until the payment is recorded.
///
/// # Security
/// The handler must compare `total_fee` with its own order's amount and record idempotently.
#[deprecated(
    since = "0.2.0",
    note = "use PayClient::handle_payment_notification, as in v3"
)]
pub async fn handle_payment_notification<F, Fut, E>(
    config: &PayConfig,
    body: &[u8],
    handler: F,
) -> NotificationReply
where
    F: FnOnce(PaymentNotification) -> Fut,
    Fut: Future<Output = std::result::Result<(), E>>,
    E: std::fmt::Display,
{
    let open = open_payment(config, body);
    notify::deliver(ApiVersion::V2, Kind::Payment, body.len(), open, |n| {
        notify::first(handler(n))
    })
    .await
}

/// Verifies a refund notification, hands it to `handler`, and says what to answer WeChat
/// (SUCCESS only after `Ok`; FAIL when it cannot be verified or the handler failed).
///
/// # Security
/// `req_info` is not authenticated (AES-ECB): the handler must match `out_refund_no` and
/// `refund_fee` with a refund it requested. [`PayClient::handle_refund_notification`] also
/// confirms the refund with a signed `refundquery` first; prefer it.
#[deprecated(
    since = "0.2.0",
    note = "use PayClient::handle_refund_notification, which also confirms the refund"
)]
pub async fn handle_refund_notification<F, Fut, E>(
    config: &PayConfig,
    body: &[u8],
    handler: F,
) -> NotificationReply
where
    F: FnOnce(RefundNotification) -> Fut,
    Fut: Future<Output = std::result::Result<(), E>>,
    E: std::fmt::Display,
{
    let open = open_refund(config, None, body);
    notify::deliver(ApiVersion::V2, Kind::Refund, body.len(), open, |n| {
        notify::first(handler(n))
    })
    .await
}

/// A payment notification verified; a verified `result_code` FAIL (the payment did not
/// succeed) is opened as nothing to record.
async fn open_payment(config: &PayConfig, body: &[u8]) -> Result<Opened<PaymentNotification>> {
    match verify_payment_notification(config, body) {
        Ok(notification) => {
            let subject = notification.out_trade_no.to_string();
            Ok(Opened::Deliver(notification, subject))
        }
        Err(Error::Pay(PayError::Business {
            code, description, ..
        })) => {
            tracing::info!(err_code = %code, description = %description, "verified payment notification reports a failed payment");
            Ok(Opened::Unpaid)
        }
        Err(e) => Err(e),
    }
}

/// A refund notification verified, and confirmed with a signed `refundquery` when `confirm` is
/// the client to ask (a failed query opens it as not confirmed: WeChat sends it again).
async fn open_refund(
    config: &PayConfig,
    confirm: Option<&PayClient>,
    body: &[u8],
) -> Result<Opened<RefundNotification>> {
    let notification = verify_refund_notification(config, body)?;
    if let Some(client) = confirm {
        match client.confirm_refund(&notification).await {
            Ok(()) => {}
            Err(e @ Error::Pay(PayError::NotificationMismatch(_))) => return Err(e),
            Err(e) => {
                tracing::warn!(out_refund_no = %notification.out_refund_no, error = %e, "refund notification not confirmed (refundquery failed); WeChat will re-send");
                return Ok(Opened::NotConfirmed);
            }
        }
    }
    let subject = notification.out_refund_no.to_string();
    Ok(Opened::Deliver(notification, subject))
}

impl PayClient {
    /// The payment notification opened for [`notify::deliver`] (`headers` are not read in v2).
    pub(super) async fn open_payment(
        &self,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Opened<PaymentNotification>> {
        open_payment(self.config(), body).await
    }

    /// The refund notification opened for [`notify::deliver`]: verified and confirmed.
    pub(super) async fn open_refund(
        &self,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Opened<RefundNotification>> {
        open_refund(self.config(), Some(self), body).await
    }

    /// Whether a signed `refundquery` agrees with a refund notification.
    async fn confirm_refund(&self, notification: &RefundNotification) -> Result<()> {
        let query = self
            .query_refund(&RefundRef::OutRefundNo(notification.out_refund_no.clone()))
            .await?;
        let mismatch = |what: String| {
            Err(Error::Pay(PayError::NotificationMismatch(format!(
                "refundquery of {} disagrees with the notification: {what}",
                notification.out_refund_no
            ))))
        };
        if query
            .out_trade_no
            .as_ref()
            .is_some_and(|no| *no != notification.out_trade_no)
        {
            return mismatch("another order".into());
        }
        let Some(item) = query
            .refunds
            .iter()
            .find(|r| r.out_refund_no == notification.out_refund_no)
        else {
            return mismatch("WeChat lists no such refund".into());
        };
        if item.refund_fee != notification.refund_fee {
            return mismatch(format!(
                "refund_fee {} there, {} here",
                item.refund_fee, notification.refund_fee
            ));
        }
        if item.refund_status != notification.refund_status {
            return mismatch(format!(
                "status {} there, {} here",
                item.refund_status, notification.refund_status
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{encrypt_refund_req_info, sign_pay_fields};
    use super::*;
    use crate::PayApiKey;
    use crate::pay::v2::PayConfigBuilder;

    use crate::testing::TEST_API_KEY as KEY;

    fn body(reply: &NotificationReply) -> &str {
        std::str::from_utf8(reply.body()).unwrap()
    }

    fn builder() -> PayConfigBuilder {
        crate::testing::pay_config(
            "https://api.mch.weixin.qq.com",
            "https://shop.example/pay/notify",
        )
    }

    fn config() -> PayConfig {
        builder().build().unwrap()
    }

    fn paid_fields() -> PayFields {
        [
            ("appid", "wx1234567890abcdef"),
            ("bank_type", "OTHERS"),
            ("cash_fee", "101"),
            ("fee_type", "CNY"),
            ("is_subscribe", "N"),
            ("mch_id", "1900000109"),
            ("nonce_str", "5d2b6c2a8db53831f7eda20af46e531c"),
            ("openid", "oUpF8uMEb4qRXf22hE3X68TekukE"),
            ("out_trade_no", "T20240101001"),
            ("result_code", "SUCCESS"),
            ("return_code", "SUCCESS"),
            ("time_end", "20240101120005"),
            ("total_fee", "101"),
            ("trade_type", "JSAPI"),
            ("transaction_id", "4200000000202401010000000001"),
            ("attach", "table=7"),
        ]
        .into_iter()
        .collect()
    }

    fn signed(mut fields: PayFields, sign_type: SignType) -> Vec<u8> {
        fields.remove("sign");
        let sign = sign_pay_fields(&fields, &PayApiKey::new(KEY), sign_type);
        fields.insert("sign", sign);
        fields.to_xml().unwrap().into_bytes()
    }

    #[test]
    fn verifies_a_genuine_notification() {
        let n =
            verify_payment_notification(&config(), &signed(paid_fields(), SignType::Md5)).unwrap();
        assert_eq!(n.out_trade_no.as_str(), "T20240101001");
        assert_eq!(n.total_fee, 101);
        assert_eq!(n.cash_fee, Some(101));
        assert_eq!(n.attach.as_deref(), Some("table=7"));
        assert_eq!(n.trade_type, TradeType::Jsapi);
        assert_eq!(n.fields.get("is_subscribe"), Some("N"));
    }

    #[test]
    fn only_the_configured_sign_type_is_accepted() {
        let hmac = |mut fields: PayFields| {
            fields.insert("sign_type", "HMAC-SHA256");
            signed(fields, SignType::HmacSha256)
        };
        let md5_config = config();
        let hmac_config = builder().sign_type(SignType::HmacSha256).build().unwrap();
        // Each merchant accepts its own algorithm (MD5 notifications carry no sign_type).
        assert!(
            verify_payment_notification(&md5_config, &signed(paid_fields(), SignType::Md5)).is_ok()
        );
        assert!(verify_payment_notification(&hmac_config, &hmac(paid_fields())).is_ok());
        // A downgrade to MD5, correctly signed with the key, is refused by an HMAC merchant…
        let downgrade =
            verify_payment_notification(&hmac_config, &signed(paid_fields(), SignType::Md5));
        assert!(
            matches!(&downgrade, Err(Error::Pay(PayError::BadSignature(m))) if m.contains("downgrade")),
            "{downgrade:?}"
        );
        // The same with sign_type=MD5 named explicitly (what verified before this check).
        let mut named = paid_fields();
        named.insert("sign_type", "MD5");
        assert!(matches!(
            verify_payment_notification(&hmac_config, &signed(named, SignType::Md5)),
            Err(Error::Pay(PayError::BadSignature(_)))
        ));
        // …and the other way round, an HMAC notification to an MD5 merchant.
        assert!(matches!(
            verify_payment_notification(&md5_config, &hmac(paid_fields())),
            Err(Error::Pay(PayError::BadSignature(_)))
        ));
        // An HMAC signature without sign_type reads as MD5: refused.
        assert!(
            verify_payment_notification(&hmac_config, &signed(paid_fields(), SignType::HmacSha256))
                .is_err()
        );
        // While migrating, both are accepted when configured so.
        let migrating = builder()
            .sign_type(SignType::HmacSha256)
            .also_accept_notification_sign_type(SignType::Md5)
            .build()
            .unwrap();
        assert!(
            verify_payment_notification(&migrating, &signed(paid_fields(), SignType::Md5)).is_ok()
        );
        assert!(verify_payment_notification(&migrating, &hmac(paid_fields())).is_ok());
        let mut weird = paid_fields();
        weird.insert("sign_type", "SHA1");
        assert!(matches!(
            verify_payment_notification(&md5_config, &signed(weird, SignType::Md5)),
            Err(Error::Pay(PayError::BadSignature(_)))
        ));
    }

    #[test]
    fn unknown_fields_are_signed_too() {
        let mut fields = paid_fields();
        fields.insert("brand_new_field", "x");
        let body = signed(fields, SignType::Md5);
        assert!(verify_payment_notification(&config(), &body).is_ok());
        // Removing the unknown field after signing breaks the signature.
        let text = String::from_utf8(body)
            .unwrap()
            .replace("<brand_new_field>x</brand_new_field>", "");
        assert!(matches!(
            verify_payment_notification(&config(), text.as_bytes()),
            Err(Error::Pay(PayError::BadSignature(_)))
        ));
    }

    #[test]
    fn forged_and_altered_notifications_are_refused() {
        // No sign at all.
        let unsigned = paid_fields().to_xml().unwrap();
        assert!(matches!(
            verify_payment_notification(&config(), unsigned.as_bytes()),
            Err(Error::Pay(PayError::BadSignature(_)))
        ));
        // Altered amount after signing.
        let body = String::from_utf8(signed(paid_fields(), SignType::Md5)).unwrap();
        let altered = body.replace("<total_fee>101</total_fee>", "<total_fee>1</total_fee>");
        assert_ne!(altered, body);
        assert!(matches!(
            verify_payment_notification(&config(), altered.as_bytes()),
            Err(Error::Pay(PayError::BadSignature(_)))
        ));
        // Signed with another key.
        let mut fields = paid_fields();
        fields.insert(
            "sign",
            sign_pay_fields(
                &paid_fields(),
                &PayApiKey::new("0".repeat(32)),
                SignType::Md5,
            ),
        );
        assert!(matches!(
            verify_payment_notification(&config(), fields.to_xml().unwrap().as_bytes()),
            Err(Error::Pay(PayError::BadSignature(_)))
        ));
        // Well signed for another app.
        let mut other = paid_fields();
        other.insert("appid", "wxanother");
        assert!(matches!(
            verify_payment_notification(&config(), &signed(other, SignType::Md5)),
            Err(Error::Pay(PayError::NotificationMismatch(_)))
        ));
        let mut other_mch = paid_fields();
        other_mch.insert("mch_id", "1");
        assert!(matches!(
            verify_payment_notification(&config(), &signed(other_mch, SignType::Md5)),
            Err(Error::Pay(PayError::NotificationMismatch(_)))
        ));
    }

    #[test]
    fn failed_payments_are_reported_not_paid() {
        let mut fields = paid_fields();
        fields.insert("result_code", "FAIL");
        fields.insert("err_code", "NOTENOUGH");
        assert!(matches!(
            verify_payment_notification(&config(), &signed(fields, SignType::Md5)),
            Err(Error::Pay(PayError::Business {
                code: PayErrorCode::NotEnough,
                ..
            }))
        ));
        let fail = b"<xml><return_code>FAIL</return_code><return_msg>x</return_msg></xml>";
        assert!(matches!(
            verify_payment_notification(&config(), fail),
            Err(Error::Pay(PayError::Return { .. }))
        ));
    }

    #[tokio::test]
    async fn handler_sees_only_verified_notifications_and_controls_the_reply() {
        let pay = PayClient::new(config()).unwrap();
        let headers = HeaderMap::new();
        let good = signed(paid_fields(), SignType::Md5);
        let reply = pay
            .handle_payment_notification(&headers, &good, |n| async move {
                assert_eq!(n.total_fee, 101);
                Ok::<(), String>(())
            })
            .await;
        assert!(reply.is_success());
        assert_eq!(reply.body(), NOTIFICATION_SUCCESS_XML.as_bytes());

        let reply = pay
            .handle_payment_notification(&headers, &good, |_| async {
                Err::<(), _>("database down")
            })
            .await;
        assert!(!reply.is_success());
        assert_eq!(reply.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            body(&reply).contains("FAIL") && !body(&reply).contains("database"),
            "{}",
            body(&reply)
        );

        let altered = String::from_utf8(good.clone())
            .unwrap()
            .replace("<total_fee>101", "<total_fee>1");
        let mut called = false;
        let reply = pay
            .handle_payment_notification(&headers, altered.as_bytes(), |_| {
                called = true;
                async { Ok::<(), String>(()) }
            })
            .await;
        assert!(!called);
        assert_eq!(reply.status(), http::StatusCode::BAD_REQUEST);
        assert!(body(&reply).contains("FAIL"));

        let big = vec![b'x'; 1 << 20];
        let reply = pay
            .handle_payment_notification(&headers, &big, |_| async { Ok::<(), String>(()) })
            .await;
        assert_eq!(reply.status(), http::StatusCode::PAYLOAD_TOO_LARGE);

        let response = NotificationReply::success(ApiVersion::V2).into_response();
        assert_eq!(
            response.headers()[http::header::CONTENT_TYPE],
            "text/xml; charset=utf-8"
        );
    }

    /// The refund `req_info` vector, derived per protocol reference §4.8 and cross-checked with
    /// `openssl enc -aes-256-ecb` and Python's `cryptography` (key = md5 hex of the V2 key).
    const REQ_INFO_VECTOR: &str = "WBzGpzQuNpcFxIlFjUUD9BfnwwNUlVAs7bwvgHME4/Tv+vFNRpKVQoAa8XuDBwiUWJFvA43Z2XF/A2VOj3J/4E6/v5S7bpp8C5l2T+QMoVwGmdbwLy8Ffy1Le/oQh1Si6NTNo8J68Rlma1meV/He6xF4/fCDpzlPjWey9DOKiabJ6/rmu9S/YN1/5wuo1vOkjWYuySTv1Vqvy/Dr45eTH4FMQYx4A+aeamp9Q4AHvF6dTrvBG9s1976YD0VhWJqTapM0NWl8jgWNnuw6WYURJzEcDquU1POg5lk7Ci0ye5eZax4hQcUU9vAOi3/6tCecKQL4FUWqY/aNxbJKQk91hqgrzJGLE1VBMyWRwJn2xyrs3VsfYB10ogIt63PYgIj5yG6yu6kHksGHbhDASGyOhhRvkzLUzdoOI7wu6BQFQHQ77zCcG1wTJigCOeA1fXDbuIP9BVNqaW8P4zd32lwDlax26GfFq4cVyXUs3Fn8LqylyBLYMqM148lqbAHxTThlaAyPQ/HrlHVdKUbSnB4G6NBURQINeZSENfhdlZpKQjnmZaGlsbjyMxBbOUcp+mpu7a2sspMbC8Oh66JoOTEbk3cjX3GANWjHo5/DdE8OHYgXjZQ2Rx5CYNCVfOr4vTrtGVSWmvdPqVMmHLNAodAaE5FUsbpl8j/0PGNoAV3mCiAekdigrThdol/epbR95Aa1n9J2FVnLMYjBWdazJ7yry8iGoWCugGMPjyUMv8ZOhqf81z4dXNqOw8FQqBhPvk7DtDEOEr08P6Az1G7m4csm762n1DE+l5m0vWrQdy+h4eWSZeB+LH4opk+g8RRXEFdMo6e2ncjqi9IqbTMIS9wQMtHfqkH5IDAev2MXLMk/u9rZYu8ZR/kONZrKQUQ2u7exHsw0xncOtrZjwSFLZFKEp3t1EkrChlM1p+7Wdn4+TILhzYlaspln94nbND54uG5QKoEUKf+NijaDpgiLtfyygAyk9En+1LYzkAvfEP+WvGfpQa5ZDB4qteA5rfwzLS6i";

    fn refund_body(appid: &str, req_info: &str) -> String {
        format!(
            "<xml><return_code>SUCCESS</return_code><appid><![CDATA[{appid}]]></appid><mch_id><![CDATA[1900000109]]></mch_id><nonce_str><![CDATA[abc]]></nonce_str><req_info><![CDATA[{req_info}]]></req_info></xml>"
        )
    }

    #[test]
    fn refund_notification_vector_decrypts() {
        let n = verify_refund_notification(
            &config(),
            refund_body("wx1234567890abcdef", REQ_INFO_VECTOR).as_bytes(),
        )
        .unwrap();
        assert_eq!(n.out_refund_no.as_str(), "R20240101");
        assert_eq!(n.out_trade_no.as_str(), "T20240101");
        assert_eq!(n.refund_id, "50000000382019052709732678859");
        assert_eq!(n.transaction_id.as_str(), "4200000000202401010000000001");
        assert_eq!(n.total_fee, 1);
        assert_eq!(n.refund_fee, 1);
        assert_eq!(n.refund_status, RefundStatus::Success);
        assert_eq!(n.success_time.as_deref(), Some("2024-01-01 12:00:05"));
        assert_eq!(n.refund_recv_accout.as_deref(), Some("支付用户零钱"));
        assert_eq!(n.refund_request_source.as_deref(), Some("API"));
    }

    #[test]
    fn refund_notifications_are_checked() {
        assert!(matches!(
            verify_refund_notification(
                &config(),
                refund_body("wxother", REQ_INFO_VECTOR).as_bytes()
            ),
            Err(Error::Pay(PayError::NotificationMismatch(_)))
        ));
        let other_key = encrypt_refund_req_info(
            b"<root><out_refund_no>R</out_refund_no></root>",
            &PayApiKey::new("0".repeat(32)),
        );
        assert!(matches!(
            verify_refund_notification(
                &config(),
                refund_body("wx1234567890abcdef", &other_key).as_bytes()
            ),
            Err(Error::Pay(PayError::BadSignature(_)))
        ));
        let xxe = encrypt_refund_req_info(
            b"<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><root><a>&x;</a></root>",
            &PayApiKey::new(KEY),
        );
        assert!(matches!(
            verify_refund_notification(
                &config(),
                refund_body("wx1234567890abcdef", &xxe).as_bytes()
            ),
            Err(Error::Pay(PayError::Xml(_)))
        ));
    }

    #[test]
    fn fail_reply_escapes_cdata() {
        let xml = notification_fail_xml("a]]>b");
        assert_eq!(
            PayFields::parse(xml.as_bytes()).unwrap().get("return_msg"),
            Some("a]]>b")
        );
        assert_eq!(
            PayFields::parse(NOTIFICATION_SUCCESS_XML.as_bytes())
                .unwrap()
                .get("return_code"),
            Some("SUCCESS")
        );
    }
}
