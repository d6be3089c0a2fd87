#![doc = include_str!("../README.md")]
//!
//! ## Public API
//!
//! - [`WeChatLoginMiddleware`] / [`WeChatLogin`] / [`ResponseFuture`]: the login
//!   middleware (an actix `Transform` and its service).
//! - [`WeChatUser`] / [`Error`]: the extractor and why it can fail.
//! - [`scope`] / [`configure`]: the mountable routes over
//!   [`WeChatRoutes`](wechat_core::routes::WeChatRoutes).
//! - [`notification_paths`]: the paths to exclude from login for a mount prefix.
//! - [`wechat_core`]: the framework-agnostic crate, re-exported.

mod convert;
mod error;
mod extract;
mod middleware;
mod routes;

pub use error::Error;
pub use extract::WeChatUser;
pub use middleware::{ResponseFuture, WeChatLogin, WeChatLoginMiddleware};

/// The former name of [`WeChatLogin`].
#[deprecated(note = "renamed to WeChatLogin")]
pub type WeChatLoginService<S> = WeChatLogin<S>;

/// The former name of [`ResponseFuture`].
#[deprecated(note = "renamed to ResponseFuture")]
pub type WeChatLoginFuture<F, B> = ResponseFuture<F, B>;
pub use routes::{configure, scope};
pub use wechat_core;
pub use wechat_core::routes::notification_paths;
