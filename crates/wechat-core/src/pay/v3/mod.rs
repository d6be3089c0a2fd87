//! WeChat Pay JSAPI, API v3: JSON requests signed with the merchant's RSA key
//! (`WECHATPAY2-SHA256-RSA2048`), replies and notifications signed by WeChat Pay, and
//! notification resources encrypted with AES-256-GCM to the APIv3 key.
//!
//! Implements the signature rules of
//! [API v3](https://pay.weixin.qq.com/docs/merchant/development/interface-rules/signature-generation.html)
//! ([verification](https://pay.weixin.qq.com/docs/merchant/development/interface-rules/signature-verification.html),
//! [decryption](https://pay.weixin.qq.com/docs/merchant/development/interface-rules/certificate-callback-decryption.html)),
//! with both ways of verifying WeChat Pay: the WeChat Pay public key (`PUB_KEY_ID_…`, what new
//! merchants get) and platform certificates. These are the pure parts, tested against the
//! official vectors of wechatpay-go and wechatpay-java; RSA is ring's (constant time), AES-GCM
//! ring's.
//!
//! ```
//! use wechat_core::clock::ManualClock;
//! use wechat_core::pay::v3::{MerchantKey, SignatureHeaders, WechatPayKeys, WechatPayPublicKey, verify_signature};
//!
//! // What WeChat Pay does: sign the body of a notification.
//! let wechat = MerchantKey::from_pem(&std::fs::read("tests/vectors/v3/rsa_test_private_key.pem")?, "F5765756002FDD77")?;
//! let body = br#"{"id":"EV-1"}"#;
//! let signature = wechat.sign(b"1700000000\nn0nce\n{\"id\":\"EV-1\"}\n")?;
//!
//! // What the merchant does: verify it with the WeChat Pay public key.
//! let public = WechatPayPublicKey::from_pem("PUB_KEY_ID_01", &std::fs::read("tests/vectors/v3/rsa_test_public_key.pem")?)?;
//! let keys = WechatPayKeys::from(public);
//! let headers = SignatureHeaders {
//!     timestamp: "1700000000",
//!     nonce: "n0nce",
//!     signature: &signature,
//!     serial: "PUB_KEY_ID_01",
//!     signature_type: Some("WECHATPAY2-SHA256-RSA2048"),
//! };
//! assert!(verify_signature(&keys, &headers, body, &ManualClock::at(1_700_000_100)).is_ok());
//! // Five minutes later it is refused as a replay.
//! assert!(verify_signature(&keys, &headers, body, &ManualClock::at(1_700_000_300)).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod aead;
mod certificates;
mod client;
mod config;
mod keys;
mod notify;
mod order;
mod refund;
mod sign;

pub use crate::pay::RETRY_ATTEMPTS;
pub use crate::pay::v2::MAX_NOTIFICATION_BODY;
pub use crate::pay::{
    BrandWcPayParams, CloseOrder, H5Info, H5Order, H5Prepay, JsapiOrder, NativeOrder, NativePrepay,
    OrderRef, QueryOrder, TradeState, TradeType,
};
pub use crate::pay::{PayApiError, PayApiErrorCode};
#[cfg(any(test, feature = "testing"))]
pub(crate) use aead::encrypt_resource;
pub use aead::{RESOURCE_ALGORITHM, decrypt_resource};
pub use client::{PayClient, PayRequest};
pub use config::{Credentials, DEFAULT_CERTIFICATE_REFRESH, PayConfig, PayConfigBuilder};
pub use keys::{MerchantKey, PlatformCertificate, WechatPayKeys, WechatPayPublicKey};
pub use notify::{
    PaymentNotification, RefundNotice, RefundNoticeAmount, RefundNotification,
    verify_payment_notification, verify_refund_notification,
};
pub use order::{PrepayResponse, Transaction, TransactionAmount, TransactionPayer};
pub use refund::{QueryRefund, RefundAmount, RefundRecord, RefundRequest, RefundStatus};
pub use sign::{
    MAX_CLOCK_SKEW_SECS, SIGNATURE_SCHEME, SignatureHeaders, authorization, pay_sign,
    request_message, verify_signature,
};
