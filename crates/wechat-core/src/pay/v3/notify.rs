//! API v3 notifications: verify the `Wechatpay-*` signature over the raw body, decrypt the
//! resource with the APIv3 key, check it is ours, hand it to the application, and answer
//! WeChat Pay (2xx only once the application accepted it).

use crate::pay::PayError;
use crate::pay::v2::MAX_NOTIFICATION_BODY;

use http::HeaderMap;
use serde::Deserialize;

use super::refund::refund_status;
use super::{
    PayClient, PayConfig, RefundStatus, SignatureHeaders, Transaction, WechatPayKeys,
    decrypt_resource, verify_signature,
};
use crate::pay::notify::Opened;
use crate::pay::{TradeState, TradeType};
use crate::{AppId, Error, MchId, OpenId, OutRefundNo, OutTradeNo, Result, TransactionId};

/// A verified payment notification (`TRANSACTION.SUCCESS`): the money was received for
/// `out_trade_no`.
///
/// # Security
/// Verified means "WeChat Pay sent this for our merchant and app, and the order is paid".
/// Whether it pays *your* order is for you to check: find the order by `out_trade_no`, compare
/// `total` (integer fen) with its amount, and record the payment idempotently (a duplicate must
/// only be acknowledged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentNotification {
    /// The notification's id (the same for a re-sent notification).
    pub id: String,
    /// The app id (checked equal to the configuration's).
    pub appid: AppId,
    /// The merchant id (checked equal to the configuration's).
    pub mchid: MchId,
    /// The merchant's order number.
    pub out_trade_no: OutTradeNo,
    /// WeChat Pay's transaction id.
    pub transaction_id: TransactionId,
    /// How it was paid: `JSAPI`, `NATIVE`, or `MWEB` for H5.
    pub trade_type: Option<TradeType>,
    /// The payer's openid under the order's app id. Always there for JSAPI; for Native and H5
    /// it may be absent, or be another WeChat user than the buyer who placed the order (anyone
    /// can scan a QR code): the order is the buyer's, not the payer's.
    pub openid: Option<OpenId>,
    /// The order amount in fen.
    pub total: u64,
    /// What the payer paid in fen (after coupons), when sent.
    pub payer_total: Option<u64>,
    /// When payment completed, RFC 3339.
    pub success_time: Option<String>,
    /// The order's `attach`.
    pub attach: Option<String>,
    /// The whole decrypted transaction.
    pub transaction: Transaction,
}

impl PaymentNotification {
    /// The same value from a verified order query whose `trade_state` is `SUCCESS`, so that a
    /// payment found by polling is recorded exactly as a notification would be (`id` is empty).
    ///
    /// # Errors
    /// [`PayError::NotificationMismatch`](crate::pay::PayError::NotificationMismatch) when the order is not paid or is another merchant's or
    /// app's; [`Error::UnexpectedResponse`] when a field is missing.
    pub fn from_transaction(
        config: &PayConfig,
        id: impl Into<String>,
        transaction: Transaction,
    ) -> Result<Self> {
        if transaction.trade_state != TradeState::Success {
            return Err(Error::Pay(PayError::NotificationMismatch(format!(
                "the order's trade_state is {}, not SUCCESS",
                transaction.trade_state
            ))));
        }
        check_merchant(config, &transaction.mchid, Some(&transaction.appid))?;
        let missing = |field: &str| Error::UnexpectedResponse {
            endpoint: "payment notification",
            detail: format!("a paid transaction without {field}"),
        };
        Ok(Self {
            id: id.into(),
            appid: transaction.appid.clone(),
            mchid: transaction.mchid.clone(),
            out_trade_no: transaction.out_trade_no.clone(),
            transaction_id: transaction
                .transaction_id
                .clone()
                .ok_or_else(|| missing("transaction_id"))?,
            trade_type: transaction.trade_type.clone(),
            openid: match (transaction.openid(), &transaction.trade_type) {
                (None, Some(TradeType::Jsapi)) => return Err(missing("payer.openid")),
                (openid, _) => openid.cloned(),
            },
            total: transaction.total().ok_or_else(|| missing("amount.total"))?,
            payer_total: transaction.amount.as_ref().and_then(|a| a.payer_total),
            success_time: transaction.success_time.clone(),
            attach: transaction.attach.clone().filter(|a| !a.is_empty()),
            transaction,
        })
    }
}

/// A verified refund notification (`REFUND.SUCCESS`, `REFUND.ABNORMAL` or `REFUND.CLOSED`).
///
/// # Security
/// Match `out_refund_no` with a refund you requested and compare `refund` with its amount
/// before recording it; statuses only move forward (a late `CLOSED` never undoes a `SUCCESS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundNotification {
    /// The notification's id.
    pub id: String,
    /// `REFUND.SUCCESS`, `REFUND.ABNORMAL` or `REFUND.CLOSED`.
    pub event_type: String,
    /// The decrypted refund.
    pub refund: RefundNotice,
}

/// The decrypted resource of a refund notification.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RefundNotice {
    /// The merchant id (checked equal to the configuration's).
    pub mchid: MchId,
    /// The order's transaction id.
    pub transaction_id: TransactionId,
    /// The order number.
    pub out_trade_no: OutTradeNo,
    /// WeChat Pay's refund id.
    pub refund_id: String,
    /// The merchant's refund number.
    pub out_refund_no: OutRefundNo,
    /// `SUCCESS`, `CLOSED` or `ABNORMAL` (WeChat Pay names it `refund_status` here).
    #[serde(deserialize_with = "refund_status")]
    pub refund_status: RefundStatus,
    /// When it succeeded, RFC 3339.
    #[serde(default)]
    pub success_time: Option<String>,
    /// The account that received the money, as text for people.
    #[serde(default)]
    pub user_received_account: Option<String>,
    /// The amounts in fen.
    pub amount: RefundNoticeAmount,
}

/// The amounts of a [`RefundNotice`], in fen.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RefundNoticeAmount {
    /// The order total.
    pub total: u64,
    /// The amount refunded.
    pub refund: u64,
    /// What the payer paid.
    #[serde(default)]
    pub payer_total: Option<u64>,
    /// What went back to the payer.
    #[serde(default)]
    pub payer_refund: Option<u64>,
}

#[derive(Deserialize)]
struct Envelope {
    id: String,
    event_type: String,
    #[serde(default)]
    resource_type: Option<String>,
    resource: Resource,
}

#[derive(Deserialize)]
struct Resource {
    algorithm: String,
    ciphertext: String,
    #[serde(default)]
    associated_data: String,
    nonce: String,
    #[serde(default)]
    original_type: Option<String>,
}

/// Verifies a payment notification with `keys`: body size, the `Wechatpay-*` signature over
/// the raw bytes (type, 5-minute freshness, known serial, no probe), the envelope
/// (`TRANSACTION.SUCCESS`, `encrypt-resource`), the AES-256-GCM resource, and that it is a
/// paid transaction of the configured merchant and app.
///
/// # Errors
/// [`PayError::BadSignature`](crate::pay::PayError::BadSignature) (unsigned, forged, stale, probe, undecryptable),
/// [`PayError::UnknownSerial`](crate::pay::PayError::UnknownSerial) (a key this merchant does not have, named),
/// [`PayError::NotificationMismatch`](crate::pay::PayError::NotificationMismatch) (another merchant or app, another event, not paid),
/// [`Error::UnexpectedResponse`] (too large, malformed).
pub fn verify_payment_notification(
    config: &PayConfig,
    keys: &WechatPayKeys,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<PaymentNotification> {
    let (id, transaction) = open_payment(config, keys, headers, body)?;
    PaymentNotification::from_transaction(config, id, transaction)
}

/// The verified, decrypted transaction of a payment notification, before the paid check.
fn open_payment(
    config: &PayConfig,
    keys: &WechatPayKeys,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(String, Transaction)> {
    let (envelope, plain) = open(config, keys, headers, body, "transaction")?;
    if envelope.event_type != "TRANSACTION.SUCCESS" {
        return Err(Error::Pay(PayError::NotificationMismatch(format!(
            "event_type {:?} is not a payment (TRANSACTION.SUCCESS)",
            envelope.event_type
        ))));
    }
    let transaction: Transaction = serde_json::from_slice(&plain).map_err(|e| malformed(&e))?;
    check_merchant(config, &transaction.mchid, Some(&transaction.appid))?;
    Ok((envelope.id, transaction))
}

/// Verifies a refund notification with `keys`, as
/// [`verify_payment_notification`] does; the event is `REFUND.*`.
///
/// # Errors
/// As [`verify_payment_notification`].
pub fn verify_refund_notification(
    config: &PayConfig,
    keys: &WechatPayKeys,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<RefundNotification> {
    let (envelope, plain) = open(config, keys, headers, body, "refund")?;
    if !envelope.event_type.starts_with("REFUND.") {
        return Err(Error::Pay(PayError::NotificationMismatch(format!(
            "event_type {:?} is not a refund (REFUND.*)",
            envelope.event_type
        ))));
    }
    let refund: RefundNotice = serde_json::from_slice(&plain).map_err(|e| malformed(&e))?;
    check_merchant(config, &refund.mchid, None)?;
    Ok(RefundNotification {
        id: envelope.id,
        event_type: envelope.event_type,
        refund,
    })
}

fn malformed(e: &serde_json::Error) -> Error {
    Error::UnexpectedResponse {
        endpoint: "notification",
        detail: format!("the notification cannot be read: {e}"),
    }
}

/// Signature, envelope and decryption, common to both kinds.
fn open(
    config: &PayConfig,
    keys: &WechatPayKeys,
    headers: &HeaderMap,
    body: &[u8],
    original_type: &str,
) -> Result<(Envelope, Vec<u8>)> {
    if body.len() > MAX_NOTIFICATION_BODY {
        return Err(Error::UnexpectedResponse {
            endpoint: "notification",
            detail: format!("body larger than {MAX_NOTIFICATION_BODY} bytes"),
        });
    }
    let signature = SignatureHeaders::from_headers(headers).ok_or(Error::Pay(PayError::BadSignature(
        "the notification carries no Wechatpay-Timestamp, -Nonce, -Signature and -Serial headers",
    )))?;
    verify_signature(keys, &signature, body, config.clock().as_ref())?;
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| malformed(&e))?;
    if envelope
        .resource_type
        .as_deref()
        .is_some_and(|t| t != "encrypt-resource")
    {
        return Err(Error::Pay(PayError::NotificationMismatch(
            "resource_type is not encrypt-resource".into(),
        )));
    }
    if envelope
        .resource
        .original_type
        .as_deref()
        .is_some_and(|t| t != original_type)
    {
        return Err(Error::Pay(PayError::NotificationMismatch(format!(
            "the resource is not a {original_type}"
        ))));
    }
    let r = &envelope.resource;
    let plain = decrypt_resource(
        config.api_v3_key(),
        &r.algorithm,
        &r.nonce,
        &r.associated_data,
        &r.ciphertext,
    )?;
    Ok((envelope, plain))
}

fn check_merchant(config: &PayConfig, mchid: &MchId, appid: Option<&AppId>) -> Result<()> {
    if mchid != config.mch_id() {
        return Err(Error::Pay(PayError::NotificationMismatch(format!(
            "mchid {mchid} is not the configured {}",
            config.mch_id()
        ))));
    }
    if let Some(appid) = appid.filter(|a| *a != config.appid()) {
        return Err(Error::Pay(PayError::NotificationMismatch(format!(
            "appid {appid} is not the configured {}",
            config.appid()
        ))));
    }
    Ok(())
}

impl PayClient {
    /// The payment notification verified with the client's current keys (downloading platform
    /// certificates again first if it names an unknown serial).
    pub(super) async fn verify_payment(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<PaymentNotification> {
        let keys = self.notification_keys(headers).await?;
        verify_payment_notification(self.config(), &keys, headers, body)
    }

    /// The refund notification verified, as [`verify_payment`](Self::verify_payment) does.
    pub(super) async fn verify_refund(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<RefundNotification> {
        let keys = self.notification_keys(headers).await?;
        verify_refund_notification(self.config(), &keys, headers, body)
    }

    async fn notification_keys(
        &self,
        headers: &HeaderMap,
    ) -> Result<std::sync::Arc<WechatPayKeys>> {
        match headers
            .get("wechatpay-serial")
            .and_then(|v| v.to_str().ok())
        {
            Some(serial) => self.inner.verifier.keys_knowing(self, serial).await,
            None => self.wechat_pay_keys().await,
        }
    }

    /// The payment notification opened for [`notify::deliver`]: verified; a transaction that
    /// is not paid is opened as nothing to record.
    pub(super) async fn open_payment(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Opened<PaymentNotification>> {
        let keys = self.notification_keys(headers).await?;
        let (id, transaction) = open_payment(self.config(), &keys, headers, body)?;
        if transaction.trade_state != TradeState::Success {
            tracing::info!(out_trade_no = %transaction.out_trade_no, trade_state = %transaction.trade_state, "verified payment notification of an unpaid order: nothing to record");
            return Ok(Opened::Unpaid);
        }
        let subject = transaction.out_trade_no.to_string();
        PaymentNotification::from_transaction(self.config(), id, transaction)
            .map(|n| Opened::Deliver(n, subject))
    }

    /// The refund notification opened for [`notify::deliver`]: verified (v3's is signed and
    /// authenticated, nothing to confirm).
    pub(super) async fn open_refund(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Opened<RefundNotification>> {
        let notification = self.verify_refund(headers, body).await?;
        let subject = notification.refund.out_refund_no.to_string();
        Ok(Opened::Deliver(notification, subject))
    }
}
