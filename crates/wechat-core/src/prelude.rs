//! The common imports of an app: `use wechat_core::prelude::*;`.
//!
//! The configuration and the error, the OAuth client, the tokens, the login flow and its
//! session, the routes, and (with the `pay` feature) what an [`OrderBackend`] implementation
//! names.

pub use crate::login::{LoginConfig, LoginFlow};
pub use crate::oauth::{OAuthClient, Scope};
#[cfg(feature = "pay")]
pub use crate::pay::v2::{PaymentNotification, RefundNotification};
pub use crate::routes::WeChatRoutes;
#[cfg(feature = "pay")]
pub use crate::routes::{
    BoxFuture, OrderBackend, OrderDraft, OrderRecord, OrderStatus, PayRoutes, ShopError,
};
pub use crate::session::{SessionKeys, SessionUser};
pub use crate::token::{MemoryStore, Tokens};
pub use crate::{
    BaseUrls, Config, Error, OpenId, OutTradeNo, Result, TokenEndpoint, build_http_client,
};
