//! The common imports of an app: `use wechat_core::prelude::*;`.
//!
//! The configuration and the error, the OAuth client, the tokens, the login flow and its
//! session, the routes, and (with the `pay` feature) what an [`OrderBackend`] implementation
//! names.
//!
//! ```
//! use wechat_core::prelude::*;
//!
//! let config = Config::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef");
//! let tokens = Tokens::new(&config, build_http_client(&config)?, std::sync::Arc::new(MemoryStore::new()));
//! let routes = WeChatRoutes::builder(tokens).jssdk_domain("shop.example.com").build()?;
//! # let _ = routes;
//! # Ok::<(), Error>(())
//! ```

pub use crate::login::{LoginConfig, LoginFlow};
pub use crate::oauth::{OAuthClient, Scope};
pub use crate::routes::WeChatRoutes;
#[cfg(feature = "pay")]
pub use crate::routes::{
    BoxFuture, OrderBackend, OrderDraft, OrderRecord, OrderStatus, PayRoutes, Payment,
    RefundUpdate, ShopError,
};
pub use crate::session::{SessionKeys, SessionUser};
pub use crate::token::{MemoryStore, Tokens};
pub use crate::{
    ApiError, ApiErrorKind, BaseUrls, Config, Error, OpenId, OutTradeNo, Result, TokenEndpoint,
    build_http_client,
};
