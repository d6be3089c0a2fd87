//! Secret values whose `Debug` output never shows them.
//!
//! AppSecrets, API keys and tokens end up in structs that get logged. Every secret here prints
//! as `Name([redacted])`, has no `Display`, and compares in constant time.

use subtle::ConstantTimeEq;

macro_rules! secret_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name(String);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret itself. Call this only where the value is sent to WeChat or used as a
            /// key; never log what it returns.
            pub fn expose_secret(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
            }
        }

        impl Eq for $name {}

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

secret_type!(
    /// The Official Account's AppSecret (developer ID secret), used only by
    /// `cgi-bin/token`, `cgi-bin/stable_token` and the OAuth code exchange.
    AppSecret
);
secret_type!(
    /// A basic (global) access token from `cgi-bin/token` or `cgi-bin/stable_token`.
    AccessToken
);
secret_type!(
    /// A JS-SDK `jsapi_ticket` from `cgi-bin/ticket/getticket`.
    JsapiTicket
);
secret_type!(
    /// A per-user OAuth access token from `sns/oauth2/access_token` (not the basic token).
    OAuthAccessToken
);
secret_type!(
    /// A per-user OAuth refresh token, valid for 30 days.
    RefreshToken
);
secret_type!(
    /// The 32-character WeChat Pay API key (v2) from the merchant platform, not the AppSecret.
    PayApiKey
);

secret_type!(
    /// The merchant's APIv3 key (32 characters, set under Account center > API security): it
    /// decrypts API v3 notification resources and platform certificates.
    ApiV3Key
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        assert_eq!(
            format!("{:?}", AppSecret::new("s3cr3t")),
            "AppSecret([redacted])"
        );
        assert_eq!(
            format!("{:?}", PayApiKey::new("k")),
            "PayApiKey([redacted])"
        );
        assert_eq!(
            format!("{:?}", ApiV3Key::new("a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb")),
            "ApiV3Key([redacted])"
        );
        assert_eq!(
            format!("{:?}", AccessToken::new("t")),
            "AccessToken([redacted])"
        );
        assert_eq!(
            format!("{:?}", JsapiTicket::new("t")),
            "JsapiTicket([redacted])"
        );
        assert_eq!(
            format!("{:?}", RefreshToken::new("t")),
            "RefreshToken([redacted])"
        );
        assert_eq!(
            format!("{:?}", OAuthAccessToken::new("t")),
            "OAuthAccessToken([redacted])"
        );
    }

    #[test]
    fn equality_compares_values() {
        assert_eq!(AccessToken::new("a"), AccessToken::new("a"));
        assert_ne!(AccessToken::new("a"), AccessToken::new("b"));
        assert_eq!(AccessToken::new("a").expose_secret(), "a");
    }
}
