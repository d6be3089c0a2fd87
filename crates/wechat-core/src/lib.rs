//! Framework-agnostic WeChat protocols for Rust web services: web OAuth and website QR-code
//! login, the access token and jsapi_ticket cache, the JS-SDK signature and WeChat Pay (JSAPI,
//! Native, H5).
//!
//! The library in layers, each a module:
//!
//! | module | what it is for |
//! | --- | --- |
//! | [`oauth`] | Web page OAuth (`snsapi_base`, `snsapi_userinfo`) and website QR-code login (`snsapi_login`): authorize URLs, code exchange, profile |
//! | [`token`] | The basic `access_token` and the `jsapi_ticket`, shared by every process through a [`TokenStore`](token::TokenStore) |
//! | [`jssdk`] | The `wx.config` signature |
//! | [`session`] | The signed session cookie, its keys, and the OAuth `state` |
//! | [`login`] | The whole "log in with WeChat" middleware behaviour, as decisions over `http` types |
//! | [`routes`] | The JS-SDK and payment routes' logic, over an [`OrderBackend`](routes::OrderBackend) the app implements |
//! | [`pay`] | WeChat Pay, JSAPI, Native and H5 orders ([`pay::Order`]): [`pay::v2`] (XML, MD5/HMAC-SHA256) and [`pay::v3`] (JSON, RSA) |
//! | [`visitor`] | Who is visiting (WeChat on a phone or a desktop, WeCom, another browser) and which login and payment work for them |
//! | [`qr`] | QR codes as inline SVG: a Native payment's `code_url`, or "open this page in WeChat" |
//! | [`clock`] | The one clock everything reads, so tests move time instead of sleeping |
//! | [`adapter`] | The interface for framework adapters (`wechat-tower`, `wechat-actix`) |
//!
//! The crate root holds what every user needs: [`Config`] and [`BaseUrls`] (the app's
//! credentials, and where WeChat or a `wechat-sim` is), [`build_http_client`], [`Error`] (one
//! error type; WeChat's well-known codes are variants whose messages say what to do),
//! the identifier newtypes and the secret
//! types, whose `Debug` is redacted. [`ConfigError`] is what a builder's `build()` refuses,
//! naming the setting. [`prelude`] imports the common names of an app at once.
//!
//! ```
//! use wechat_core::prelude::*;
//!
//! let config = Config::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef")
//!     .with_base_urls(BaseUrls::all("http://127.0.0.1:9000"));
//! let http = build_http_client(&config)?;
//! let login = LoginConfig::builder("https://shop.example.com", SessionKeys::generate())
//!     .scope(Scope::UserInfo)
//!     .exclude_notifications("/wechat")
//!     .build()?;
//! let flow = LoginFlow::new(OAuthClient::new(&config, http), login);
//! # let _ = flow;
//! # Ok::<(), wechat_core::Error>(())
//! ```
//!
//! This crate knows no web framework; `wechat-tower` (axum/tower) and `wechat-actix` adapt it.
//!
//! # Features
//! - `pay` (default): WeChat Pay ([`pay`], and the payment routes of [`routes`]).
//! - `redis`: `token::RedisStore`, a token store shared by several processes (one Redis server or
//!   a Redis Cluster, over TCP or TLS).
//! - `testing`: `testing`, fixtures for an app's tests (an in-memory order backend, the test
//!   merchant).

pub mod adapter;
pub mod clock;
mod config;
mod error;
mod ids;
pub mod jssdk;
pub mod login;
mod metrics;
pub mod oauth;
#[cfg(feature = "pay")]
pub mod pay;
pub mod prelude;
pub mod qr;
mod response;
pub mod routes;
mod secret;
pub mod session;
#[cfg(all(feature = "pay", any(test, feature = "testing")))]
pub mod testing;
pub mod token;
mod transport;
pub mod visitor;

pub use config::{BaseUrls, Config, TokenEndpoint};
pub use error::{ApiError, ApiErrorKind, ConfigError, Error, Result};
pub use ids::{AppId, MchId, OpenId, OutRefundNo, OutTradeNo, TransactionId, UnionId};
#[cfg(feature = "pay")]
pub use pay::PayError;
pub use secret::{
    AccessToken, ApiV3Key, AppSecret, JsapiTicket, OAuthAccessToken, PayApiKey, RefreshToken,
};
pub use transport::build_http_client;

/// Registers the help text and unit of every metric wechat-core records (`wechat_*`, see the
/// README's table) with the installed `metrics` recorder; call it once after installing one.
pub use crate::metrics::describe as describe_metrics;

/// The README's examples, compiled as doc tests so that they stay true.
#[cfg(all(doctest, feature = "pay"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
