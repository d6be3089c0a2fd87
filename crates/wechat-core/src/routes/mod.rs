//! The mountable routes' logic, for the adapters to serve: the JS-SDK config route and the
//! payment routes, over an [`OrderBackend`] the application implements.
//!
//! [`WeChatRoutes`] answers every route with a complete `http::Response<Bytes>` from plain
//! values (query string, body bytes, the buyer); `wechat-tower` mounts it as an axum `Router`,
//! `wechat-actix` as an actix-web scope. The paths below are relative to where the routes are
//! mounted (e.g. `/wechat`). It implements the server side of the
//! [JS-SDK `wx.config`](https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/JS-SDK.html)
//! and of the [JSAPI payment flow](https://pay.weixin.qq.com/wiki/doc/api/jsapi.php?chapter=7_4).
//!
//! ```
//! use std::sync::Arc;
//! use wechat_core::routes::WeChatRoutes;
//! use wechat_core::token::{MemoryStore, Tokens};
//! use wechat_core::{BaseUrls, Config};
//!
//! let config = Config::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef")
//!     .with_base_urls(BaseUrls::all("http://127.0.0.1:9000"));
//! let tokens = Tokens::new(&config, reqwest::Client::new(), Arc::new(MemoryStore::new()));
//! let routes = WeChatRoutes::builder(tokens)
//!     .jssdk_domain("https://shop.example.com")
//!     .js_api_list(["chooseWXPay"])
//!     .build()?;
//! assert_eq!(routes.jssdk_domains(), ["shop.example.com"]);
//! # Ok::<(), wechat_core::Error>(())
//! ```

#[cfg(feature = "pay")]
mod limits;
#[cfg(feature = "pay")]
mod pay;
mod wechat;

#[cfg(feature = "pay")]
pub use pay::{
    BoxFuture, CreatedOrder, OrderBackend, OrderDraft, OrderLimits, OrderRecord, OrderStatus,
    PayApi, PayRoutes, Payment, RefundStatus, RefundUpdate, ShopError,
};
pub use wechat::{WeChatRoutes, WeChatRoutesBuilder};

/// `GET {prefix}/jssdk/config?url=…`: the `wx.config` object for a page.
pub const JSSDK_CONFIG_PATH: &str = "/jssdk/config";
/// `POST {prefix}/pay/orders`: creates an order for the session's user.
pub const PAY_ORDERS_PATH: &str = "/pay/orders";
/// `GET {prefix}/pay/orders/{out_trade_no}`: an order's status, for its owner (the `{…}`
/// placeholder syntax of axum 0.8 and actix-web 4).
pub const PAY_ORDER_STATUS_PATH: &str = "/pay/orders/{out_trade_no}";
/// `POST {prefix}/pay/notify`: WeChat's payment notifications (exclude it from login).
pub const PAY_NOTIFY_PATH: &str = "/pay/notify";
/// `POST {prefix}/pay/refund-notify`: WeChat's refund notifications (exclude it from login).
pub const REFUND_NOTIFY_PATH: &str = "/pay/refund-notify";

/// The full paths of the two notification routes when the routes are mounted under `prefix`
/// (e.g. `/wechat`, or `""` / `/` at the root): `[{prefix}/pay/notify, {prefix}/pay/refund-notify]`.
///
/// WeChat's servers post notifications without a session, so these paths must be excluded from
/// login ([`LoginConfigBuilder::exclude_notifications`](crate::login::LoginConfigBuilder::exclude_notifications) does it), and the `notify_url` given to
/// WeChat Pay is `{public_url}{prefix}/pay/notify`.
///
/// ```
/// assert_eq!(
///     wechat_core::routes::notification_paths("/wechat/"),
///     ["/wechat/pay/notify", "/wechat/pay/refund-notify"]
/// );
/// assert_eq!(wechat_core::routes::notification_paths(""), ["/pay/notify", "/pay/refund-notify"]);
/// ```
pub fn notification_paths(prefix: &str) -> [String; 2] {
    let prefix = prefix.trim().trim_end_matches('/');
    [
        format!("{prefix}{PAY_NOTIFY_PATH}"),
        format!("{prefix}{REFUND_NOTIFY_PATH}"),
    ]
}
