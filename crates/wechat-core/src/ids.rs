//! Newtypes for WeChat identifiers, so that an openid is never passed where an appid belongs.

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an identifier.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The identifier as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_owned())
            }
        }
    };
}

id_type!(
    /// An Official Account's app id (`wx…`).
    AppId
);
id_type!(
    /// A user's openid: unique per user and per app.
    OpenId
);
id_type!(
    /// A user's unionid: the same for one user across the apps of one Open Platform account.
    UnionId
);
id_type!(
    /// A WeChat Pay merchant id.
    MchId
);
id_type!(
    /// The merchant's order number (`out_trade_no`): at most 32 of `[0-9A-Za-z_-|*]`, unique per
    /// merchant.
    OutTradeNo
);
id_type!(
    /// The merchant's refund number (`out_refund_no`): at most 64 characters, unique per merchant.
    OutRefundNo
);
id_type!(
    /// WeChat Pay's own transaction id.
    TransactionId
);
