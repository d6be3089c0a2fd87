//! WeChat Pay JSAPI, API v2 (XML): orders, the page's pay parameters, notifications, queries,
//! closing and refunds.
//!
//! The flow, and where money safety comes from:
//!
//! 1. The server prices the order itself (the browser never sets the amount) and calls
//!    `unifiedorder` ([`PayClient::unified_order`]) with the buyer's openid.
//! 2. The page receives [`BrandWcPayParams`] and calls
//!    `WeixinJSBridge.invoke('getBrandWCPayRequest', params, cb)`. The page's
//!    `get_brand_wcpay_request:ok` is **not** proof of payment.
//! 3. WeChat posts a payment notification: [`handle_payment_notification`] verifies it (sign
//!    over every field, merchant, app) before the application sees it, and acknowledges only
//!    after the application recorded it; WeChat re-sends until then, and duplicates are normal.
//! 4. When no notification arrives, [`PayClient::query_order`] asks WeChat.
//!
//! Every reply from WeChat Pay is checked the same way ([`check_pay_reply`]): `return_code`, then
//! the reply's `sign` (a SUCCESS without a valid sign is refused), then `result_code`/`err_code`
//! as [`Error::Pay`](crate::Error::Pay). `SYSTEMERROR` and `BIZERR_NEED_RETRY` are retried with
//! the same parameters.
//!
//! ```no_run
//! # async fn demo() -> wechat_core::Result<()> {
//! use std::net::{IpAddr, Ipv4Addr};
//! use wechat_core::{JsapiOrder, PayClient, PayConfig};
//!
//! let pay = PayClient::new(PayConfig::new(
//!     "1900000109",
//!     "wx1234567890abcdef",
//!     "192006250b4c09247ec02edce69f6a2d",
//!     "https://shop.example.com/wechat/pay/notify",
//! ))?;
//! let order = JsapiOrder::new("T20240101001", "Coffee", 1, "oUser", IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)));
//! let (_prepay, params) = pay.create_jsapi_order(&order).await?;
//! let page_json = serde_json::to_string(&params).unwrap(); // for getBrandWCPayRequest
//! # let _ = page_json; Ok(()) }
//! ```
//!
//! WeChat's documentation: <https://pay.weixin.qq.com/wiki/doc/api/jsapi.php?chapter=9_1>.

mod client;
mod config;
mod crypto;
mod notify;
mod order;
mod refund;
mod shop;
mod sign;
mod xml;

pub use client::{PayClient, PayRequest, check_pay_reply};
pub use config::{ClientCertificate, PayConfig};
pub use crypto::{decrypt_refund_req_info, encrypt_refund_req_info};
pub use notify::{
    NOTIFICATION_SUCCESS_XML, NotificationReply, PaymentNotification, RefundNotification,
    handle_payment_notification, handle_refund_notification, notification_fail_xml,
    verify_payment_notification, verify_refund_notification,
};
pub use order::{
    BrandWcPayParams, JsapiOrder, OrderQueryResponse, OrderRef, TradeState, UnifiedOrderResponse,
    close_order_request,
};
pub use refund::{
    Refund, RefundItem, RefundQueryResponse, RefundRef, RefundResponse, RefundStatus,
};
pub use shop::{
    BoxFuture, CreatedOrder, OrderBackend, OrderDraft, OrderRecord, OrderStatus, PayRoutes,
    ShopError,
};
pub use sign::{SignType, sign_pay_fields, verify_pay_fields};
pub use xml::{MAX_NOTIFICATION_BODY, PayFields};
