//! WeChat Pay: place an order ([`Order`]: [`JsapiOrder`] paid inside WeChat with
//! `getBrandWCPayRequest`, [`NativeOrder`] paid by scanning a QR code, [`H5Order`] paid from a
//! phone browser through WeChat Pay's cashier page), receive WeChat's notifications, query,
//! close and refund. [`visitor`](crate::visitor) says which trade type a visitor can use.
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
//!   Pay public key and platform certificates.
//!
//! The payment routes serve either version: [`routes::PayRoutes::new`](crate::routes::PayRoutes::new)
//! takes a v3 or a v2 client. Both versions answer notifications with one
//! [`NotificationReply`], written for the merchant's [`ApiVersion`].
//!
//! ```
//! use wechat_core::pay::v3::{MerchantKey, PayClient, PayConfig, WechatPayPublicKey};
//!
//! // The merchant's private key (apiclient_key.pem) and its certificate's serial number, and the
//! // WeChat Pay public key with its id, as the merchant platform hands them out.
//! let key = MerchantKey::from_pem(
//!     &std::fs::read("tests/vectors/v3/rsa_test_private_key.pem")?,
//!     "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
//! )?;
//! let wechat_pay = WechatPayPublicKey::from_pem(
//!     "PUB_KEY_ID_0119000001092025120100000001",
//!     &std::fs::read("tests/vectors/v3/rsa_test_public_key.pem")?,
//! )?;
//! let config = PayConfig::builder(
//!     "1900000109",
//!     "wx1234567890abcdef",
//!     key,
//!     "0123456789abcdefghijABCDEFGHIJ01", // the APIv3 key
//!     "https://shop.example.com/wechat/pay/notify",
//! )
//! .wechat_pay_public_key(wechat_pay)
//! .build()?;
//! let pay = PayClient::new(config)?;
//! assert_eq!(pay.config().mch_id().as_str(), "1900000109");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub(crate) mod client;
mod config;
mod error;
mod notify;
pub(crate) mod order;
mod reply;
pub mod v2;
pub mod v3;

pub use client::RETRY_ATTEMPTS;
pub use config::{Credentials, PayConfig, PayConfigBuilder};
pub use error::{PayApiError, PayApiErrorCode, PayError, PayErrorCode};
pub use order::{
    BrandWcPayParams, CloseOrder, H5, H5Info, H5Kind, H5Order, H5Prepay, Jsapi, JsapiOrder, Native,
    NativeOrder, NativePrepay, Order, OrderRef, QueryOrder, TradeState, TradeType,
};
pub use reply::{ApiVersion, NotificationReply};
