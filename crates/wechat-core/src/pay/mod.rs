//! WeChat Pay JSAPI, API v2 (XML): orders, the page's pay parameters, notifications, queries,
//! closing and refunds.
//!
//! The details (the flow, where money safety comes from, an example) are on [`PayClient`],
//! where rustdoc shows them (this module is private).

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
