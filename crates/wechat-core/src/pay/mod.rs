//! WeChat Pay for JSAPI (pages opened in WeChat): create an order, have the page pay it with
//! `getBrandWCPayRequest`, receive WeChat's notifications, query, close and refund.
//!
//! One submodule per API version; an application usually does not call them directly but
//! mounts the payment routes ([`routes::PayRoutes`](crate::routes::PayRoutes)), which do the
//! WeChat side and the money-safety checks over the application's
//! [`OrderBackend`](crate::routes::OrderBackend).
//!
//! - [`v2`]: API v2, XML signed with the merchant's API key (MD5 or HMAC-SHA256), for merchants
//!   who have v2 credentials.
//! - [`v3`]: API v3, JSON signed with RSA, what merchants who sign up today get: the client
//!   ([`v3::PayClient`]: prepay, query, close, refund, refund query), notifications, the WeChat
//!   Pay public key and platform certificates (the payment routes serve v2 for now).
//!
//! ```
//! use wechat_core::BaseUrls;
//! use wechat_core::pay::v2::{PayConfig, SignType};
//!
//! let pay = PayConfig::builder(
//!     "1900000109",
//!     "wx1234567890abcdef",
//!     "192006250b4c09247ec02edce69f6a2d",
//!     "https://shop.example.com/wechat/pay/notify",
//! )
//! .sign_type(SignType::HmacSha256)
//! .base_urls(&BaseUrls::all("http://127.0.0.1:9000"))
//! .build()?;
//! assert_eq!(pay.mch_id().as_str(), "1900000109");
//! # Ok::<(), wechat_core::ConfigError>(())
//! ```

mod reply;
pub mod v2;
pub mod v3;

pub use reply::{ApiVersion, NotificationReply};
