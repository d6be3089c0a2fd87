//! "Log in with WeChat" as middleware behaviour over `http` types: which requests have a
//! session, where a browser without one goes, how the OAuth callback is checked, which cookies
//! are set.
//!
//! [`LoginFlow`] decides; the adapters (`wechat-tower`, `wechat-actix`) only translate its
//! [`Decision`] into their framework. [`LoginConfig`] holds the paths, the scope and the cookie
//! settings. The flow implements WeChat's
//! [web page authorization](https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html)
//! (网页授权) with a signed [`OAuthState`](crate::session::OAuthState) and a stateless
//! [`SessionCookie`](crate::session::SessionCookie).
//!
//! ```
//! use wechat_core::login::{Decision, LoginConfig, LoginFlow};
//! use wechat_core::oauth::OAuthClient;
//! use wechat_core::session::SessionKeys;
//! use wechat_core::Config;
//!
//! let config = Config::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef");
//! let login = LoginConfig::builder("https://shop.example.com", SessionKeys::generate())
//!     .exclude("/health")
//!     .build()?;
//! let flow = LoginFlow::new(OAuthClient::new(&config, reqwest::Client::new()), login);
//!
//! let (parts, ()) = http::Request::get("/health").body(()).unwrap().into_parts();
//! assert!(matches!(flow.decide(&parts), Decision::Proceed(p) if p.session_user().is_none()));
//! # Ok::<(), wechat_core::Error>(())
//! ```

mod config;
mod flow;
pub(crate) mod request;
#[cfg(test)]
mod tests;

pub use config::{LoginConfig, LoginConfigBuilder};
pub use flow::{Decision, LoginFlow, Proceed};
