//! WeChat Pay JSAPI, API v2: XML requests signed with the merchant's API key (MD5 or
//! HMAC-SHA256): orders, the page's pay parameters, notifications, queries, closing and refunds.
//!
//! Implements the [JSAPI payment API v2](https://pay.weixin.qq.com/wiki/doc/api/jsapi.php?chapter=9_1)
//! (unified order, `orderquery`, `closeorder`, `refund`, `refundquery`, and the payment and
//! refund notifications). The flow, where money safety comes from, and an example are on
//! [`PayClient`]. Requests are values, signed by pure functions tested against the official
//! vectors:
//!
//! ```
//! use wechat_core::PayApiKey;
//! use wechat_core::pay::v2::{SignType, sign_pay_fields, verify_pay_fields};
//!
//! let key = PayApiKey::new("192006250b4c09247ec02edce69f6a2d");
//! let fields = [("appid", "wx1234567890abcdef"), ("nonce_str", "ibuaiVcKdpRxkhJA")];
//! let sign = sign_pay_fields(fields, &key, SignType::Md5);
//! assert!(verify_pay_fields(fields, &key, SignType::Md5, &sign).is_ok());
//! assert!(verify_pay_fields(fields, &key, SignType::HmacSha256, &sign).is_err());
//! ```

pub(crate) mod client;
pub(crate) mod config;
mod crypto;
mod notify;
pub(crate) mod order;
mod refund;
mod sign;
mod xml;

pub use crate::pay::{
    BrandWcPayParams, CloseOrder, H5Info, H5Order, H5Prepay, JsapiOrder, NativeOrder, NativePrepay,
    OrderRef, PayErrorCode, QueryOrder, TradeState, TradeType,
};
pub use client::{PayClient, PayRequest, SignedRequest, check_pay_reply};
pub use config::{ClientCertificate, Credentials, PayConfig, PayConfigBuilder};
pub use crypto::decrypt_refund_req_info;
#[cfg(any(test, feature = "testing"))]
pub(crate) use crypto::encrypt_refund_req_info;
pub use notify::{
    NOTIFICATION_SUCCESS_XML, PaymentNotification, RefundNotification, notification_fail_xml,
    verify_payment_notification, verify_refund_notification,
};
#[allow(deprecated)]
pub use notify::{handle_payment_notification, handle_refund_notification};
#[allow(deprecated)]
pub use order::{OrderQueryResponse, UnifiedOrderResponse};
pub use order::{PrepayResponse, Transaction};
pub use refund::{
    QueryRefund, RefundItem, RefundQueryResponse, RefundRecord, RefundRef, RefundRequest,
    RefundStatus,
};
#[allow(deprecated)]
pub use refund::{Refund, RefundResponse};
pub use sign::{SignType, sign_pay_fields, verify_pay_fields};
pub use xml::{Fields, MAX_NOTIFICATION_BODY, MAX_NOTIFICATION_FIELDS, PayFields};
