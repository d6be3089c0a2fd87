#![doc = include_str!("../README.md")]
//!
//! ## Public API
//!
//! - [`WeChatLoginLayer`] / [`WeChatLogin`] / [`ResponseFuture`]: the login middleware (tower).
//! - [`WeChatUser`] / [`WeChatUserRejection`]: the axum extractor (feature `axum`, default).
//! - [`router`]: the mountable axum routes over [`WeChatRoutes`](wechat_core::routes::WeChatRoutes)
//!   (feature `axum`).
//! - [`notification_paths`]: the paths to exclude from login for a mount prefix.
//! - [`wechat_core`]: the framework-agnostic crate, re-exported.

#[cfg(feature = "axum")]
mod extract;
mod layer;
#[cfg(feature = "axum")]
mod routes;

#[cfg(feature = "axum")]
pub use extract::{WeChatUser, WeChatUserRejection};
pub use layer::{ResponseFuture, WeChatLogin, WeChatLoginLayer};

/// The former name of [`WeChatLoginLayer`].
#[deprecated(note = "renamed to WeChatLoginLayer")]
pub type WeChatLayer = WeChatLoginLayer;

/// The former name of [`WeChatLogin`].
#[deprecated(note = "renamed to WeChatLogin")]
pub type WeChatService<S> = WeChatLogin<S>;
#[cfg(feature = "axum")]
pub use routes::router;
pub use wechat_core;
pub use wechat_core::routes::notification_paths;
