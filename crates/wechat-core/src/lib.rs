//! Framework-agnostic WeChat protocols for Rust web services.
//!
//! Where to start:
//!
//! - [`Config`] and [`BaseUrls`]: the app's credentials, and where WeChat (or a `wechat-sim`) is.
//! - Web OAuth login (`snsapi_base`, `snsapi_userinfo`): [`OAuthClient`] (authorize URL, code
//!   exchange, refresh, userinfo, `sns/auth`), with a signed [`OAuthState`] that protects against
//!   CSRF and open redirects, and a stateless [`SessionCookie`].
//! - [`LoginFlow`]: the whole "log in with WeChat" middleware behaviour as decisions over `http`
//!   types, which `wechat-tower` and `wechat-actix` translate.
//! - [`Tokens`]: the basic `access_token` (`cgi-bin/token` or `cgi-bin/stable_token`) and the
//!   `jsapi_ticket`, cached in a shared [`TokenStore`] ([`MemoryStore`], or `RedisStore` with the
//!   `redis` feature) with single flight and refresh ahead of expiry;
//!   [`Tokens::jssdk_config`] signs `wx.config` ([`JsSdkConfig`]).
//! - WeChat Pay JSAPI (API v2, XML): [`PayClient`], [`BrandWcPayParams`] for
//!   `getBrandWCPayRequest`, [`handle_payment_notification`] and [`handle_refund_notification`].
//! - [`WeChatRoutes`] and [`PayRoutes`]: the JS-SDK and payment routes' logic, over an
//!   [`OrderBackend`] the application implements.
//! - [`Error`]: one error type; WeChat's well-known codes are variants whose messages say what
//!   to do.
//!
//! This crate knows no web framework; `wechat-tower` (axum/tower) and `wechat-actix` adapt it.

mod config;
mod error;
mod http;
mod ids;
mod jssdk;
mod login;
mod oauth;
mod pay;
mod secret;
mod session;
mod state;
mod token;
mod web;

pub use config::{BaseUrls, Config, TokenEndpoint};
pub use error::{Error, PayErrorCode, Result};
pub use http::build_http_client;
pub use ids::{AppId, MchId, OpenId, OutRefundNo, OutTradeNo, TransactionId, UnionId};
pub use jssdk::{JsSdkConfig, jssdk_page_url, sign_jssdk};
pub use login::{
    Decision, LOGIN_FLOW_HEADERS, LoginConfig, LoginConfigBuilder, LoginFlow, is_page_load,
    request_parts,
};
pub use oauth::{Lang, OAuthClient, OAuthToken, Scope, Sex, UserInfo, authorize_url};
pub use pay::{
    BoxFuture, BrandWcPayParams, ClientCertificate, CreatedOrder, JsapiOrder,
    MAX_NOTIFICATION_BODY, NOTIFICATION_SUCCESS_XML, NotificationReply, OrderBackend, OrderDraft,
    OrderQueryResponse, OrderRecord, OrderRef, OrderStatus, PayClient, PayConfig, PayFields,
    PayRequest, PayRoutes, PaymentNotification, Refund, RefundItem, RefundNotification,
    RefundQueryResponse, RefundRef, RefundResponse, RefundStatus, ShopError, SignType, TradeState,
    UnifiedOrderResponse, check_pay_reply, close_order_request, decrypt_refund_req_info,
    encrypt_refund_req_info, handle_payment_notification, handle_refund_notification,
    notification_fail_xml, sign_pay_fields, verify_pay_fields, verify_payment_notification,
    verify_refund_notification,
};
pub use secret::{AccessToken, AppSecret, JsapiTicket, OAuthAccessToken, PayApiKey, RefreshToken};
pub use session::{
    MAX_COOKIE_VALUE_LEN, MIN_KEY_LEN, Profile, SessionCookie, SessionKeys, SessionUser,
};
pub use state::{MAX_RETURN_PATH_LEN, OAuthState, RETURN_PARAM, STATE_MAX_LEN, safe_return_path};
pub use token::{
    Clock, LockLease, MemoryStore, StoredToken, SystemClock, TokenStore, Tokens, TokensBuilder,
};
#[cfg(feature = "redis")]
pub use token::{RedisStore, RedisStoreBuilder};
pub use web::{
    JSSDK_CONFIG_PATH, PAY_NOTIFY_PATH, PAY_ORDER_STATUS_PATH, PAY_ORDERS_PATH, REFUND_NOTIFY_PATH,
    WeChatRoutes, WeChatRoutesBuilder, json_error_response, missing_middleware_response,
    notification_paths, require_user,
};
