//! The payment routes' logic, framework-agnostic: create an order, receive payment and refund
//! notifications, report an order's status. `wechat-tower` and `wechat-actix` only translate
//! HTTP to and from these methods.
//!
//! The application implements [`OrderBackend`] (pricing, storage); [`PayRoutes`] does the
//! WeChat side and the money-safety checks:
//!
//! - the browser never sets the amount: [`OrderBackend::price`] does, from the request and the
//!   buyer;
//! - API v3 or v2 by configuration ([`PayApi`]), with the same JSON and the same
//!   [`OrderBackend`]: the application never branches on the version;
//! - a notification reaches [`OrderBackend::on_paid`] only after its signature, merchant and app
//!   were verified, and only when its amount equals the backend's own order amount; WeChat Pay
//!   is acknowledged only after `on_paid` returned `Ok`;
//! - an order's status is shown to its owner only (404 for anyone else); an unpaid order is
//!   checked with `orderquery`, and a `SUCCESS` there goes through `on_paid` exactly as a
//!   notification would. The page's `get_brand_wcpay_request:ok` is never trusted.
//!
//! ```
//! use std::sync::Arc;
//! use wechat_core::routes::{BoxFuture, OrderBackend, OrderDraft, OrderRecord, Payment, RefundUpdate, ShopError};
//! use wechat_core::{OpenId, OutTradeNo};
//!
//! struct Shop; // a database handle in a real application
//!
//! impl OrderBackend for Shop {
//!     fn price<'a>(&'a self, _buyer: &'a OpenId, _request: &'a serde_json::Value) -> BoxFuture<'a, Result<OrderDraft, ShopError>> {
//!         Box::pin(async { Ok(OrderDraft::new("T20240101001", "Coffee", 1)) })
//!     }
//!     fn record_created<'a>(&'a self, _buyer: &'a OpenId, _draft: &'a OrderDraft, _prepay_id: &'a str) -> BoxFuture<'a, Result<(), ShopError>> {
//!         Box::pin(async { Ok(()) }) // INSERT … status 'unpaid'
//!     }
//!     fn on_paid<'a>(&'a self, _payment: &'a Payment) -> BoxFuture<'a, Result<(), ShopError>> {
//!         Box::pin(async { Ok(()) }) // UPDATE … SET status='paid' WHERE out_trade_no=? AND total_fee=?
//!     }
//!     fn on_refund<'a>(&'a self, _refund: &'a RefundUpdate) -> BoxFuture<'a, Result<(), ShopError>> {
//!         Box::pin(async { Ok(()) })
//!     }
//!     fn order<'a>(&'a self, _out_trade_no: &'a OutTradeNo) -> BoxFuture<'a, Result<Option<OrderRecord>, ShopError>> {
//!         Box::pin(async { Ok(None) })
//!     }
//! }
//! let backend: Arc<dyn OrderBackend> = Arc::new(Shop);
//! # let _ = backend;
//! ```

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use super::limits::OrderLimits;
use super::limits::{Guards, ItemKey, Placed};
use crate::metrics::Delivery;
use crate::pay::order::validate_out_trade_no;
use crate::pay::{ApiVersion, NotificationReply};
use crate::pay::{JsapiOrder, OrderRef, TradeState, TradeType};
use crate::pay::{v2, v3};
use crate::response::{Audience, error_answer, json, json_error};
use crate::{AppId, Error, OpenId, OutRefundNo, OutTradeNo, TransactionId};

pub use crate::pay::v3::RefundStatus;

/// The boxed, `Send` future the [`OrderBackend`] methods return (re-exported so that
/// applications need no `futures-util` dependency): write `Box::pin(async move { … })`.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// An order as the application prices it: the browser's request never sets these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderDraft {
    /// A new merchant order number: 6 to 32 of `[0-9A-Za-z_-|*]` (API v3 needs at least 6,
    /// v2 at least 1).
    pub out_trade_no: OutTradeNo,
    /// The description shown to the payer (at most 128 bytes).
    pub description: String,
    /// The amount in fen (positive).
    pub total_fee: u64,
    /// Optional data echoed in the notification (at most 127 bytes).
    pub attach: Option<String>,
    /// What makes two requests of one buyer "the same order", so that the second is handed the
    /// first's unpaid order (see [`OrderLimits::reuse_window`]) instead of a new one. `None`
    /// (the default): the request's JSON body, canonical (object keys sorted), together with
    /// [`total_fee`](Self::total_fee). Set it when requests that differ in form mean the same
    /// order (e.g. the SKU and quantity, `"sku=blue;qty=1"`), never to something two different
    /// items share: a buyer handed another item's order pays for that item.
    pub reuse_key: Option<String>,
}

impl OrderDraft {
    /// A draft of `total_fee` fen.
    pub fn new(
        out_trade_no: impl Into<OutTradeNo>,
        description: impl Into<String>,
        total_fee: u64,
    ) -> Self {
        Self {
            out_trade_no: out_trade_no.into(),
            description: description.into(),
            total_fee,
            attach: None,
            reuse_key: None,
        }
    }

    /// The same draft with [`attach`](Self::attach) set.
    #[must_use]
    pub fn with_attach(mut self, attach: impl Into<String>) -> Self {
        self.attach = Some(attach.into());
        self
    }

    /// The same draft with [`reuse_key`](Self::reuse_key) set.
    #[must_use]
    pub fn with_reuse_key(mut self, key: impl Into<String>) -> Self {
        self.reuse_key = Some(key.into());
        self
    }
}

/// An order's status as the application records it, serialised in lowercase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Created, not (yet) known as paid.
    Unpaid,
    /// Paid (a verified notification or query said so).
    Paid,
    /// Closed without payment.
    Closed,
    /// Paid, then refunded.
    Refunded,
}

/// What the application knows about one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    /// The merchant order number.
    pub out_trade_no: OutTradeNo,
    /// The buyer: the only user who may see it.
    pub owner: OpenId,
    /// The amount in fen.
    pub total_fee: u64,
    /// The status.
    pub status: OrderStatus,
}

/// A verified payment, as the payment routes hand it to [`OrderBackend::on_paid`]: the same
/// value whichever API version WeChat Pay used (a notification, or a query that found the order
/// paid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// The app the order was placed with (already checked equal to the configuration's).
    pub appid: AppId,
    /// The merchant order number.
    pub out_trade_no: OutTradeNo,
    /// WeChat Pay's transaction id.
    pub transaction_id: TransactionId,
    /// How it was paid: `JSAPI`, `NATIVE`, or `MWEB` for H5.
    pub trade_type: Option<TradeType>,
    /// The payer's openid under the order's app id, when WeChat Pay reports it: always for
    /// JSAPI; a Native or H5 payment's payer may be absent or another WeChat user than the
    /// buyer (the order is the buyer's, not the payer's).
    pub openid: Option<OpenId>,
    /// The order amount in fen (already checked equal to the order's).
    pub total_fee: u64,
    /// The currency when WeChat Pay named one (`CNY`).
    pub currency: Option<String>,
    /// When payment completed, as WeChat Pay wrote it (v2 `yyyyMMddHHmmss`, v3 RFC 3339).
    pub paid_at: Option<String>,
    /// The order's `attach`.
    pub attach: Option<String>,
}

impl From<&v2::PaymentNotification> for Payment {
    fn from(n: &v2::PaymentNotification) -> Self {
        Self {
            appid: n.appid.clone(),
            out_trade_no: n.out_trade_no.clone(),
            transaction_id: n.transaction_id.clone(),
            trade_type: Some(n.trade_type.clone()),
            openid: Some(n.openid.clone()),
            total_fee: n.total_fee,
            currency: n.fee_type.clone(),
            paid_at: Some(n.time_end.clone()).filter(|t| !t.is_empty()),
            attach: n.attach.clone(),
        }
    }
}

impl From<&v3::PaymentNotification> for Payment {
    fn from(n: &v3::PaymentNotification) -> Self {
        Self {
            appid: n.appid.clone(),
            out_trade_no: n.out_trade_no.clone(),
            transaction_id: n.transaction_id.clone(),
            trade_type: n.trade_type.clone(),
            openid: n.openid.clone(),
            total_fee: n.total,
            currency: n
                .transaction
                .amount
                .as_ref()
                .and_then(|a| a.currency.clone()),
            paid_at: n.success_time.clone(),
            attach: n.attach.clone(),
        }
    }
}

/// A verified refund outcome, as the payment routes hand it to [`OrderBackend::on_refund`],
/// whichever API version WeChat Pay used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundUpdate {
    /// The order refunded.
    pub out_trade_no: OutTradeNo,
    /// The order's transaction id.
    pub transaction_id: TransactionId,
    /// The merchant's refund number.
    pub out_refund_no: OutRefundNo,
    /// WeChat Pay's refund id.
    pub refund_id: String,
    /// The order total in fen.
    pub total_fee: u64,
    /// The refunded amount in fen.
    pub refund_fee: u64,
    /// The outcome (v2's `REFUNDCLOSE` reads [`RefundStatus::Closed`], `CHANGE`
    /// [`RefundStatus::Abnormal`]).
    pub status: RefundStatus,
}

impl From<&v2::RefundNotification> for RefundUpdate {
    fn from(n: &v2::RefundNotification) -> Self {
        Self {
            out_trade_no: n.out_trade_no.clone(),
            transaction_id: n.transaction_id.clone(),
            out_refund_no: n.out_refund_no.clone(),
            refund_id: n.refund_id.clone(),
            total_fee: n.total_fee,
            refund_fee: n.refund_fee,
            status: match &n.refund_status {
                v2::RefundStatus::Success => RefundStatus::Success,
                v2::RefundStatus::RefundClose => RefundStatus::Closed,
                v2::RefundStatus::Processing => RefundStatus::Processing,
                v2::RefundStatus::Change => RefundStatus::Abnormal,
                other => RefundStatus::Other(other.as_str().to_owned()),
            },
        }
    }
}

impl From<&v3::RefundNotification> for RefundUpdate {
    fn from(n: &v3::RefundNotification) -> Self {
        let r = &n.refund;
        Self {
            out_trade_no: r.out_trade_no.clone(),
            transaction_id: r.transaction_id.clone(),
            out_refund_no: r.out_refund_no.clone(),
            refund_id: r.refund_id.clone(),
            total_fee: r.amount.total,
            refund_fee: r.amount.refund,
            status: r.refund_status.clone(),
        }
    }
}

/// The WeChat Pay client behind the payment routes: API v3 or API v2, chosen by configuration;
/// the routes' JSON and [`OrderBackend`] are the same for both.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PayApi {
    /// API v2 (XML, MD5 / HMAC-SHA256).
    V2(v2::PayClient),
    /// API v3 (JSON, RSA).
    V3(v3::PayClient),
}

impl PayApi {
    /// `"v2"` or `"v3"`.
    pub fn version(&self) -> &'static str {
        self.api_version().as_str()
    }

    /// The API version of the client.
    pub fn api_version(&self) -> ApiVersion {
        match self {
            Self::V2(_) => ApiVersion::V2,
            Self::V3(_) => ApiVersion::V3,
        }
    }
}

impl From<v2::PayClient> for PayApi {
    fn from(client: v2::PayClient) -> Self {
        Self::V2(client)
    }
}

impl From<v3::PayClient> for PayApi {
    fn from(client: v3::PayClient) -> Self {
        Self::V3(client)
    }
}

/// A failure the application reports from its [`OrderBackend`], with the HTTP status and a
/// message that is safe to show to the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopError {
    status: http::StatusCode,
    message: String,
}

impl ShopError {
    /// A failure with a status and a public message.
    pub fn new(status: http::StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 400: the request cannot be priced (unknown product, bad quantity…).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(http::StatusCode::BAD_REQUEST, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(http::StatusCode::NOT_FOUND, message)
    }

    /// 409: e.g. already paid.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(http::StatusCode::CONFLICT, message)
    }

    /// 500 with the public message "internal error"; `detail` is logged (`tracing::error!`),
    /// never sent to the browser.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(detail = %detail, "order backend failed");
        Self::new(http::StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }

    /// The HTTP status.
    pub fn status(&self) -> http::StatusCode {
        self.status
    }

    /// The public message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for ShopError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl std::error::Error for ShopError {}

/// The application's side of the payment routes: pricing and order storage.
///
/// Methods return boxed futures so that adapters can hold `Arc<dyn OrderBackend>`; write
/// `Box::pin(async move { … })`.
pub trait OrderBackend: Send + Sync + 'static {
    /// Prices what `buyer` asked for (the JSON body of `POST …/pay/orders`, `{}` when empty):
    /// a fresh `out_trade_no`, a description and the amount. The browser never sets the amount.
    ///
    /// It is called for every request, also those then answered with the buyer's recent unpaid
    /// order of the same [`reuse_key`](OrderDraft::reuse_key): reserve nothing here (stock, a
    /// coupon); do it in [`record_created`](Self::record_created), which runs only for an order
    /// that is placed.
    ///
    /// # Errors
    /// A [`ShopError`] whose status and message go to the browser (e.g. 400 unknown product).
    fn price<'a>(
        &'a self,
        buyer: &'a OpenId,
        request: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<OrderDraft, ShopError>>;

    /// Records the order as unpaid, after WeChat accepted it (`prepay_id` valid for 2 hours):
    /// the place to reserve what the order holds. Called once per placed order, never for a
    /// request answered with a reused one.
    ///
    /// # Errors
    /// A [`ShopError`]; the browser then gets no pay parameters.
    fn record_created<'a>(
        &'a self,
        buyer: &'a OpenId,
        draft: &'a OrderDraft,
        prepay_id: &'a str,
    ) -> BoxFuture<'a, Result<(), ShopError>>;

    /// Records a verified payment. Called only when `payment.total_fee` equals the amount of the
    /// order returned by [`OrderBackend::order`]; must still check it against the stored order
    /// in the same transaction, be idempotent (duplicates are normal: already paid ⇒ `Ok`), and
    /// return `Ok` only once the payment is durably stored (WeChat re-sends until then).
    ///
    /// # Errors
    /// Any [`ShopError`]: WeChat is answered FAIL and will re-send.
    fn on_paid<'a>(&'a self, payment: &'a Payment) -> BoxFuture<'a, Result<(), ShopError>>;

    /// Records a verified refund outcome: match `out_refund_no` and `refund_fee` with a refund
    /// you requested; idempotent; statuses only move forward (a late `CLOSED` never undoes a
    /// `SUCCESS`); `Ok` only once stored.
    ///
    /// # Errors
    /// Any [`ShopError`]: WeChat is answered FAIL and will re-send.
    fn on_refund<'a>(&'a self, refund: &'a RefundUpdate) -> BoxFuture<'a, Result<(), ShopError>>;

    /// Looks an order up.
    ///
    /// # Errors
    /// A [`ShopError`] when the store fails (not for an unknown order: that is `Ok(None)`).
    fn order<'a>(
        &'a self,
        out_trade_no: &'a OutTradeNo,
    ) -> BoxFuture<'a, Result<Option<OrderRecord>, ShopError>>;
}

/// The body of a successful `POST …/pay/orders`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedOrder {
    /// The merchant order number, for polling the status.
    pub out_trade_no: String,
    /// Exactly the `getBrandWCPayRequest` parameters of the configured API version.
    pub params: v2::BrandWcPayParams,
}

#[derive(Serialize)]
struct StatusBody<'a> {
    out_trade_no: &'a str,
    status: OrderStatus,
    total_fee: u64,
}

/// The payment routes' logic over a WeChat Pay client ([`PayApi`]: v3 or v2) and the
/// application's [`OrderBackend`]. Every method returns a complete HTTP response (JSON for the
/// browser; for WeChat Pay, v2 XML or a v3 status with JSON) and never panics.
#[derive(Clone)]
pub struct PayRoutes {
    client: PayApi,
    backend: Arc<dyn OrderBackend>,
    guards: Guards,
}

impl std::fmt::Debug for PayRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayRoutes")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl PayRoutes {
    /// The largest request body any route accepts (64 KiB); adapters should stop reading there.
    pub const MAX_BODY: usize = crate::pay::v2::MAX_NOTIFICATION_BODY;

    /// Routes over a client (a [`v3::PayClient`] or a [`v2::PayClient`]) and the application's
    /// backend, with the default [`OrderLimits`].
    pub fn new(client: impl Into<PayApi>, backend: Arc<dyn OrderBackend>) -> Self {
        Self {
            client: client.into(),
            backend,
            guards: Guards::new(OrderLimits::default()),
        }
    }

    /// The same routes with other [`OrderLimits`] (a reuse window over 1 hour is cut to 1
    /// hour, well within a `prepay_id`'s 2 hours).
    #[must_use]
    pub fn with_limits(mut self, mut limits: OrderLimits) -> Self {
        limits.reuse_window = limits
            .reuse_window
            .min(std::time::Duration::from_secs(3600));
        self.guards = Guards::new(limits);
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> OrderLimits {
        self.guards.limits
    }

    /// The Pay client.
    pub fn client(&self) -> &PayApi {
        &self.client
    }

    /// The application's backend.
    pub fn backend(&self) -> &Arc<dyn OrderBackend> {
        &self.backend
    }

    /// `POST …/pay/orders` by `buyer` (the session's openid) from `client_ip`, with the request's
    /// headers and JSON body: prices it through the backend, places the order with WeChat Pay
    /// (v3 `prepay`, v2 `unifiedorder`), records it, and answers `{"out_trade_no": "…",
    /// "params": {appId, timeStamp, nonceStr, package, signType, paySign}}`.
    ///
    /// The same buyer asking again for the same order while it is unpaid (a double click, a
    /// page reload: the same [`OrderDraft::reuse_key`], by default the same body and amount)
    /// gets that order again, with fresh `params`, for [`OrderLimits::reuse_window`]; concurrent
    /// requests for it wait for one placement.
    ///
    /// Statuses: 200; 400 for a body that is not JSON (or the backend's own 4xx); 409 when
    /// WeChat says the order is already paid, closed, or its number was used with other
    /// parameters; 413 over [`PayRoutes::MAX_BODY`]; 415 without `Content-Type:
    /// application/json` (which a cross-site form cannot send); 429 with `Retry-After` above
    /// [`OrderLimits::orders_per_minute`]; 502 for any other WeChat error; 500 when the backend's
    /// draft is invalid or the backend fails.
    pub async fn create_order(
        &self,
        buyer: &OpenId,
        client_ip: IpAddr,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> http::Response<Bytes> {
        if body.len() > Self::MAX_BODY {
            return json_error(
                http::StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large",
            );
        }
        if !is_json(headers) {
            return json_error(
                http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the order as JSON, with Content-Type: application/json",
            );
        }
        let request: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
            serde_json::Value::Object(serde_json::Map::new())
        } else {
            match serde_json::from_slice(body) {
                Ok(value) => value,
                Err(e) => {
                    return json_error(
                        http::StatusCode::BAD_REQUEST,
                        &format!("the request body is not JSON: {e}"),
                    );
                }
            }
        };
        let draft = match self.backend.price(buyer, &request).await {
            Ok(draft) => draft,
            Err(e) => return json_error(e.status(), e.message()),
        };
        let placed = match self
            .place_or_reuse(buyer, client_ip, &request, &draft)
            .await
        {
            Ok(placed) => placed,
            Err(refused) => return refused.response(),
        };
        let signed = match &self.client {
            PayApi::V2(client) => client.brand_wcpay_params(&placed.prepay_id),
            PayApi::V3(client) => client.brand_wcpay_params(&placed.prepay_id),
        };
        let params = match signed {
            Ok(params) => params,
            Err(e) => {
                tracing::error!(error = %e, "cannot sign the pay parameters");
                return json_error(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "cannot sign the payment",
                );
            }
        };
        let body = CreatedOrder {
            out_trade_no: placed.out_trade_no.as_str().to_owned(),
            params,
        };
        json(http::StatusCode::OK, &body)
    }

    /// The buyer's recent unpaid order of the same item, or a new one.
    async fn place_or_reuse(
        &self,
        buyer: &OpenId,
        client_ip: IpAddr,
        request: &serde_json::Value,
        draft: &OrderDraft,
    ) -> Result<Arc<Placed>, Arc<Refused>> {
        let Some(recent) = &self.guards.recent else {
            return self.place(buyer, client_ip, draft).await.map_err(Arc::new);
        };
        let key = ItemKey::new(buyer, request, draft);
        let placed_here = std::sync::atomic::AtomicBool::new(false);
        let placed = recent
            .try_get_with(key.clone(), async {
                placed_here.store(true, std::sync::atomic::Ordering::Relaxed);
                self.place(buyer, client_ip, draft).await
            })
            .await?;
        if placed_here.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(placed);
        }
        // Handed out before: only while the backend still has it unpaid.
        match self.backend.order(&placed.out_trade_no).await {
            Ok(Some(record))
                if record.status == OrderStatus::Unpaid
                    && record.owner == *buyer
                    && record.total_fee == draft.total_fee =>
            {
                tracing::debug!(out_trade_no = %placed.out_trade_no, "reusing the buyer's recent unpaid order");
                Ok(placed)
            }
            Ok(_) => {
                self.guards.forget(&key).await;
                let placed = self
                    .place(buyer, client_ip, draft)
                    .await
                    .map_err(Arc::new)?;
                recent.insert(key, Arc::clone(&placed)).await;
                Ok(placed)
            }
            Err(e) => Err(Arc::new(Refused::Shop(e))),
        }
    }

    /// Places a new order: counts it against the buyer's limit, asks WeChat Pay, records it.
    async fn place(
        &self,
        buyer: &OpenId,
        client_ip: IpAddr,
        draft: &OrderDraft,
    ) -> Result<Arc<Placed>, Refused> {
        self.guards.admit(buyer).await.map_err(Refused::TooMany)?;
        let mut order = JsapiOrder::new(
            draft.out_trade_no.clone(),
            draft.description.clone(),
            draft.total_fee,
            buyer.clone(),
        )
        .with_payer_client_ip(client_ip);
        order.attach = draft.attach.clone();
        let placed = match &self.client {
            PayApi::V2(client) => client.prepay(&order).await.map(|created| created.prepay_id),
            PayApi::V3(client) => client.prepay(&order).await.map(|created| created.prepay_id),
        };
        let prepay_id = placed.map_err(|e| Refused::Prepay(prepay_error(&e)))?;
        self.backend
            .record_created(buyer, draft, &prepay_id)
            .await
            .map_err(Refused::Shop)?;
        Ok(Arc::new(Placed {
            out_trade_no: draft.out_trade_no.clone(),
            prepay_id,
        }))
    }

    /// `POST …/pay/notify` with the request's headers and raw body: verifies the payment
    /// notification (v3 needs the `Wechatpay-*` headers and the unmodified bytes), checks its
    /// amount against the backend's order, hands it to [`OrderBackend::on_paid`], and
    /// acknowledges (v2 `SUCCESS` XML, v3 204) only after `Ok`.
    pub async fn payment_notify(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> http::Response<Bytes> {
        let backend = &self.backend;
        let accept = |payment: Payment| async move {
            let known = check_against_order(backend.as_ref(), &payment).await?;
            backend.on_paid(&payment).await?;
            // Already paid before this delivery: WeChat re-sent it (counted as a duplicate).
            Ok::<_, ShopError>(match known {
                OrderStatus::Paid | OrderStatus::Refunded => Delivery::Duplicate,
                OrderStatus::Unpaid | OrderStatus::Closed => Delivery::First,
            })
        };
        match &self.client {
            PayApi::V2(client) => client
                .handle_payment(headers, body, |n| accept(Payment::from(&n)))
                .await
                .into_response(),
            PayApi::V3(client) => client
                .handle_payment(headers, body, |n| accept(Payment::from(&n)))
                .await
                .into_response(),
        }
    }

    /// `POST …/pay/refund-notify` with the request's headers and raw body: verifies the refund
    /// notification, hands it to [`OrderBackend::on_refund`], and acknowledges only after `Ok`.
    pub async fn refund_notify(
        &self,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> http::Response<Bytes> {
        let backend = &self.backend;
        match &self.client {
            // v2's req_info has no MAC: the client confirms it with a signed refundquery.
            PayApi::V2(client) => client
                .handle_refund_notification(headers, body, |n| async move {
                    backend.on_refund(&RefundUpdate::from(&n)).await
                })
                .await
                .into_response(),
            PayApi::V3(client) => client
                .handle_refund_notification(headers, body, |n| async move {
                    backend.on_refund(&RefundUpdate::from(&n)).await
                })
                .await
                .into_response(),
        }
    }

    /// The answer to WeChat Pay, in the configured version's format, for a notification whose
    /// body could not be read (it broke off, or exceeded [`PayRoutes::MAX_BODY`]); WeChat Pay
    /// sends it again.
    pub fn notification_unreadable(&self, too_large: bool) -> http::Response<Bytes> {
        let status = if too_large {
            http::StatusCode::PAYLOAD_TOO_LARGE
        } else {
            http::StatusCode::BAD_REQUEST
        };
        let message = if too_large {
            "body too large"
        } else {
            "body not readable"
        };
        let reason = if too_large { "too_large" } else { "unreadable" };
        crate::metrics::record_notification(
            self.client.version(),
            "unknown",
            crate::metrics::NotificationOutcome::Refused(reason),
        );
        NotificationReply::fail(self.client.api_version(), status, message).into_response()
    }

    /// `GET …/pay/orders/{out_trade_no}` by `viewer`: `{"out_trade_no", "status", "total_fee"}`
    /// for the order's owner; 404 for an unknown order and for anyone else alike.
    ///
    /// When the backend has the order as unpaid, WeChat is asked (`orderquery`); a verified
    /// `SUCCESS` with the right amount is handed to [`OrderBackend::on_paid`] exactly as a
    /// notification would be, and the order is then reported paid. When WeChat cannot be asked
    /// (network, WeChat error), the backend's status is reported and a warning logged.
    pub async fn order_status(&self, viewer: &OpenId, out_trade_no: &str) -> http::Response<Bytes> {
        const NOT_FOUND: &str = "order not found";
        let out_trade_no = OutTradeNo::new(out_trade_no);
        if validate_out_trade_no(&out_trade_no).is_err() {
            return json_error(http::StatusCode::NOT_FOUND, NOT_FOUND);
        }
        let record = match self.backend.order(&out_trade_no).await {
            Ok(Some(record)) if record.owner == *viewer => record,
            Ok(_) => return json_error(http::StatusCode::NOT_FOUND, NOT_FOUND),
            Err(e) => return json_error(e.status(), e.message()),
        };
        let mut status = record.status;
        // However fast the page polls, WeChat is asked at most once per query interval.
        if status == OrderStatus::Unpaid && self.guards.may_query(&out_trade_no).await {
            match self.confirm_with_wechat(&record).await {
                Ok(true) => status = OrderStatus::Paid,
                Ok(false) => {}
                Err(e) => return json_error(e.status(), e.message()),
            }
        }
        json(
            http::StatusCode::OK,
            &StatusBody {
                out_trade_no: record.out_trade_no.as_str(),
                status,
                total_fee: record.total_fee,
            },
        )
    }

    /// Asks WeChat whether an unpaid order was paid; records it through `on_paid` when so.
    async fn confirm_with_wechat(&self, record: &OrderRecord) -> Result<bool, ShopError> {
        let no = &record.out_trade_no;
        let query = OrderRef::OutTradeNo(no.clone());
        let payment = match &self.client {
            PayApi::V2(client) => match client.query_order(&query).await {
                Ok(q) if q.trade_state == TradeState::Success => {
                    v2::PaymentNotification::from_order_query(client.config(), &q)
                        .map(|n| Payment::from(&n))
                }
                Ok(_) => return Ok(false),
                Err(e) => Err(e),
            },
            PayApi::V3(client) => match client.query_order(&query).await {
                Ok(t) if t.trade_state == TradeState::Success => {
                    v3::PaymentNotification::from_transaction(client.config(), "", t)
                        .map(|n| Payment::from(&n))
                }
                Ok(_) => return Ok(false),
                Err(e) => Err(e),
            },
        };
        let payment = match payment {
            Ok(payment) => payment,
            Err(e) => {
                tracing::warn!(out_trade_no = %no, error = %e, "the order query failed or is unusable; reporting the stored status");
                return Ok(false);
            }
        };
        if let Err(e) = check_amount(record, &payment) {
            tracing::error!(out_trade_no = %no, error = %e, "the order query reports a payment that does not match the order");
            return Ok(false);
        }
        self.backend.on_paid(&payment).await?;
        Ok(true)
    }
}

/// Why an order was not placed.
#[derive(Debug)]
enum Refused {
    /// The buyer's limit: retry after this many seconds.
    TooMany(u64),
    /// The backend refused or failed.
    Shop(ShopError),
    /// WeChat Pay refused or failed: the answer (already logged with its error id).
    Prepay(http::Response<Bytes>),
}

impl Refused {
    fn response(&self) -> http::Response<Bytes> {
        match self {
            Refused::TooMany(retry_after) => {
                let mut response = json_error(
                    http::StatusCode::TOO_MANY_REQUESTS,
                    "too many orders in a minute: wait a moment, then try again",
                );
                response.headers_mut().insert(
                    http::header::RETRY_AFTER,
                    http::HeaderValue::from(*retry_after),
                );
                response
            }
            Refused::Shop(e) => json_error(e.status(), e.message()),
            Refused::Prepay(answer) => {
                // Requests that waited for the same placement get the same answer.
                let mut copy = http::Response::new(answer.body().clone());
                *copy.status_mut() = answer.status();
                *copy.headers_mut() = answer.headers().clone();
                copy
            }
        }
    }
}

/// Whether the request says its body is JSON (`application/json`, parameters allowed).
fn is_json(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// The amount (and currency) of a verified payment must equal the backend's order.
///
/// Returns the order's status before this payment.
async fn check_against_order(
    backend: &dyn OrderBackend,
    payment: &Payment,
) -> Result<OrderStatus, ShopError> {
    let Some(record) = backend.order(&payment.out_trade_no).await? else {
        tracing::error!(out_trade_no = %payment.out_trade_no, "payment notification for an order the backend does not know");
        return Err(ShopError::not_found("unknown order"));
    };
    check_amount(&record, payment).inspect_err(|e| {
        tracing::error!(out_trade_no = %payment.out_trade_no, error = %e, "payment notification refused");
    })?;
    Ok(record.status)
}

fn check_amount(record: &OrderRecord, payment: &Payment) -> Result<(), ShopError> {
    if payment.currency.as_deref().is_some_and(|c| c != "CNY") {
        return Err(ShopError::conflict(format!(
            "paid in {:?}, the order is in CNY",
            payment.currency.as_deref().unwrap_or("")
        )));
    }
    if payment.total_fee != record.total_fee {
        return Err(ShopError::conflict(format!(
            "paid total_fee {} differs from the order's {}",
            payment.total_fee, record.total_fee
        )));
    }
    Ok(())
}

/// The answer to a prepay that failed: a short message and an error id for the buyer, the
/// details (WeChat's message, the request id) in the log under that id.
fn prepay_error(error: &Error) -> http::Response<Bytes> {
    error_answer(error, Audience::OrderScript)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::PayApiKey;
    use crate::pay::v2::{PayFields, SignType, sign_pay_fields};
    use crate::response::captured_logs::{Logs, error_id_in};
    use crate::testing::json_request_headers as json_headers;
    use crate::testing::{self, MemoryOrders, TEST_API_KEY as KEY};

    fn routes(shop: Arc<MemoryOrders>) -> PayRoutes {
        // Nothing listens on port 9 of 127.0.0.1: every WeChat call fails fast.
        let config = testing::pay_config("http://127.0.0.1:9", "https://shop.example/pay/notify")
            .timeout(std::time::Duration::from_secs(2))
            .build()
            .unwrap();
        PayRoutes::new(v2::PayClient::new(config).unwrap(), shop)
    }

    fn unpaid(shop: &MemoryOrders, owner: &str, fee: u64) {
        shop.insert_unpaid("T1", owner, fee);
    }

    fn notification(total_fee: &str) -> Vec<u8> {
        let mut fields: PayFields = [
            ("return_code", "SUCCESS"),
            ("result_code", "SUCCESS"),
            ("appid", "wx1234567890abcdef"),
            ("mch_id", "1900000109"),
            ("out_trade_no", "T1"),
            ("transaction_id", "4200"),
            ("openid", "oBuyer"),
            ("total_fee", total_fee),
            ("nonce_str", "n"),
        ]
        .into_iter()
        .collect();
        let sign = sign_pay_fields(&fields, &PayApiKey::new(KEY), SignType::Md5);
        fields.insert("sign", sign);
        fields.to_xml().unwrap().into_bytes()
    }

    fn json(response: &http::Response<Bytes>) -> serde_json::Value {
        assert_eq!(
            response.headers()[http::header::CONTENT_TYPE],
            "application/json"
        );
        serde_json::from_slice(response.body()).unwrap()
    }

    #[tokio::test]
    async fn notify_pays_only_matching_amounts_and_acks_after_ok() {
        let shop = Arc::new(MemoryOrders::new(101));
        unpaid(&shop, "oBuyer", 101);
        let routes = routes(shop.clone());

        let wrong = routes
            .payment_notify(&http::HeaderMap::new(), &notification("1"))
            .await;
        assert_eq!(wrong.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        assert!(std::str::from_utf8(wrong.body()).unwrap().contains("FAIL"));
        assert_eq!(
            shop.payment_count(),
            0,
            "on_paid must not see a mismatched amount"
        );

        let ok = routes
            .payment_notify(&http::HeaderMap::new(), &notification("101"))
            .await;
        assert_eq!(ok.status(), http::StatusCode::OK);
        assert!(std::str::from_utf8(ok.body()).unwrap().contains("SUCCESS"));
        let again = routes
            .payment_notify(&http::HeaderMap::new(), &notification("101"))
            .await;
        assert_eq!(again.status(), http::StatusCode::OK);
        assert_eq!(shop.payment_count(), 2);

        let unknown_shop = Arc::new(MemoryOrders::new(101));
        let reply = super::PayRoutes::new(routes.client().clone(), unknown_shop.clone())
            .payment_notify(&http::HeaderMap::new(), &notification("101"))
            .await;
        assert_eq!(reply.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(unknown_shop.payment_count(), 0);

        let big = routes
            .payment_notify(
                &http::HeaderMap::new(),
                &vec![b' '; PayRoutes::MAX_BODY + 1],
            )
            .await;
        assert_eq!(big.status(), http::StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn handler_failure_is_fail() {
        let shop = Arc::new(MemoryOrders::new(101));
        shop.fail_next_payments(1);
        unpaid(&shop, "oBuyer", 101);
        let reply = routes(shop)
            .payment_notify(&http::HeaderMap::new(), &notification("101"))
            .await;
        assert_eq!(reply.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            !std::str::from_utf8(reply.body())
                .unwrap()
                .contains("outage")
        );
    }

    #[tokio::test]
    async fn status_is_for_the_owner_only() {
        let shop = Arc::new(MemoryOrders::new(101));
        unpaid(&shop, "oBuyer", 101);
        assert!(shop.set_status("T1", OrderStatus::Paid));
        let routes = routes(shop);
        let mine = routes.order_status(&OpenId::new("oBuyer"), "T1").await;
        assert_eq!(mine.status(), http::StatusCode::OK);
        assert_eq!(
            json(&mine),
            serde_json::json!({"out_trade_no": "T1", "status": "paid", "total_fee": 101})
        );
        let theirs = routes.order_status(&OpenId::new("oOther"), "T1").await;
        let unknown = routes.order_status(&OpenId::new("oBuyer"), "T2").await;
        let invalid = routes.order_status(&OpenId::new("oBuyer"), "../etc").await;
        for response in [theirs, unknown, invalid] {
            assert_eq!(response.status(), http::StatusCode::NOT_FOUND);
            assert_eq!(
                json(&response),
                serde_json::json!({"error": "order not found"})
            );
        }
    }

    #[tokio::test]
    async fn unpaid_status_survives_an_unreachable_wechat() {
        let shop = Arc::new(MemoryOrders::new(101));
        unpaid(&shop, "oBuyer", 101);
        let response = routes(shop)
            .order_status(&OpenId::new("oBuyer"), "T1")
            .await;
        assert_eq!(response.status(), http::StatusCode::OK);
        assert_eq!(json(&response)["status"], "unpaid");
    }

    #[tokio::test]
    async fn create_order_errors_are_json() {
        let routes = routes(Arc::new(MemoryOrders::new(101)));
        let buyer = OpenId::new("oBuyer");
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let bad_json = routes
            .create_order(&buyer, ip, &json_headers(), b"{not json")
            .await;
        assert_eq!(bad_json.status(), http::StatusCode::BAD_REQUEST);
        assert!(json(&bad_json)["error"].as_str().unwrap().contains("JSON"));
        let unknown = routes
            .create_order(&buyer, ip, &json_headers(), br#"{"product":"tea"}"#)
            .await;
        assert_eq!(unknown.status(), http::StatusCode::BAD_REQUEST);
        assert_eq!(json(&unknown)["error"], "unknown product");
        // WeChat unreachable: 502 with an error id; the log names the endpoint under that id.
        let (logs, _guard) = Logs::capture();
        let down = routes.create_order(&buyer, ip, &json_headers(), b"").await;
        assert_eq!(down.status(), http::StatusCode::BAD_GATEWAY);
        let shown = json(&down);
        let error = shown["error"].as_str().unwrap();
        assert!(!error.contains("/pay/unifiedorder"), "{error}");
        let id = error_id_in(error);
        assert_eq!(shown["error_id"], id.as_str());
        assert!(
            logs.text()
                .lines()
                .any(|l| l.contains(&id) && l.contains("/pay/unifiedorder")),
            "{}",
            logs.text()
        );
        let huge = routes
            .create_order(
                &buyer,
                ip,
                &json_headers(),
                &vec![b' '; PayRoutes::MAX_BODY + 1],
            )
            .await;
        assert_eq!(huge.status(), http::StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn status_serialises_lowercase() {
        for (status, name) in [
            (OrderStatus::Unpaid, "unpaid"),
            (OrderStatus::Paid, "paid"),
            (OrderStatus::Closed, "closed"),
            (OrderStatus::Refunded, "refunded"),
        ] {
            assert_eq!(serde_json::to_value(status).unwrap(), name);
        }
    }
}
