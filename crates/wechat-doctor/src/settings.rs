//! What the doctor checks, read from the demos' environment variables.
//!
//! Only what cannot be checked at all is refused here (exit code 2): no `WECHAT_APPID` or
//! `WECHAT_SECRET`, a value that is not one of its choices, a base URL that is not a URL.
//! Everything else (a missing or malformed WeChat Pay credential) is left to the checks, which
//! say what is wrong with it and how to fix it.

use std::path::PathBuf;

use wechat_core::pay::v2::SignType;
use wechat_core::{ApiV3Key, AppId, AppSecret, BaseUrls, MchId, PayApiKey};

/// Every environment variable the doctor reads, with what it is for (the README's table). The
/// names and meanings are the demos' (`examples/demo-shop`).
pub const ENV_VARS: [(&str, &str); 16] = [
    ("WECHAT_APPID", "the Official Account's AppID (required)"),
    ("WECHAT_SECRET", "its AppSecret (required)"),
    (
        "WECHAT_PUBLIC_URL",
        "the app's external origin (redirect_uri, notify_url, JS-SDK pages), e.g. https://shop.example.com",
    ),
    (
        "WECHAT_MCH_ID",
        "the WeChat Pay merchant id; unset: the WeChat Pay checks are skipped",
    ),
    (
        "WECHAT_PAY_VERSION",
        "v3 (default) or v2: the WeChat Pay API whose credentials are checked",
    ),
    (
        "WECHAT_PAY_KEY",
        "v2: the merchant's API v2 key, 32 characters",
    ),
    ("WECHAT_PAY_SIGN_TYPE", "v2: MD5 (default) or HMAC-SHA256"),
    ("WECHAT_PAY_V3_KEY", "v3: the APIv3 key, 32 bytes"),
    (
        "WECHAT_PAY_MCH_KEY",
        "v3: the path of apiclient_key.pem, the merchant API private key",
    ),
    (
        "WECHAT_PAY_MCH_SERIAL",
        "v3: the serial number of the merchant API certificate (optional with WECHAT_PAY_CERT)",
    ),
    (
        "WECHAT_PAY_CERT",
        "v3: the path of apiclient_cert.pem, checked against the private key and the serial (optional)",
    ),
    (
        "WECHAT_PAY_PUBLIC_KEY",
        "v3: the path of pub_key.pem, the WeChat Pay public key; unset: platform certificates",
    ),
    (
        "WECHAT_PAY_PUBLIC_KEY_ID",
        "v3: its id, PUB_KEY_ID_ followed by digits (required with WECHAT_PAY_PUBLIC_KEY)",
    ),
    (
        "WECHAT_API_BASE",
        "default https://api.weixin.qq.com (tokens, tickets; its Date header is the clock check's)",
    ),
    (
        "WECHAT_PAY_BASE",
        "default https://api.mch.weixin.qq.com (WeChat Pay)",
    ),
    (
        "WECHAT_OPEN_BASE, WECHAT_RES_BASE",
        "read as the demos do (checked to be URLs); no check calls them",
    ),
];

/// A setting the doctor cannot work with: which variable, and what is wrong (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    /// The variable, e.g. `WECHAT_APPID`.
    pub variable: &'static str,
    /// What is wrong with it (never its value when it is a secret).
    pub problem: String,
}

impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.variable, self.problem)
    }
}

impl std::error::Error for SettingsError {}

/// The WeChat Pay API version whose credentials are checked (`WECHAT_PAY_VERSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PayVersion {
    /// API v3 (the default).
    #[default]
    V3,
    /// API v2.
    V2,
}

/// The WeChat Pay credentials as configured, unchecked: the checks load and judge them.
///
/// # Security
/// `Debug` prints no key.
#[derive(Debug, Clone)]
pub enum PaySettings {
    /// API v2.
    V2 {
        /// `WECHAT_PAY_KEY`, when set.
        key: Option<PayApiKey>,
        /// `WECHAT_PAY_SIGN_TYPE` (default MD5).
        sign_type: SignType,
    },
    /// API v3.
    V3 {
        /// `WECHAT_PAY_V3_KEY`, when set.
        api_v3_key: Option<ApiV3Key>,
        /// `WECHAT_PAY_MCH_KEY`: the path of `apiclient_key.pem`.
        merchant_key: Option<PathBuf>,
        /// `WECHAT_PAY_MCH_SERIAL`.
        merchant_serial: Option<String>,
        /// `WECHAT_PAY_CERT`: the path of `apiclient_cert.pem`.
        merchant_certificate: Option<PathBuf>,
        /// `WECHAT_PAY_PUBLIC_KEY`: the path of `pub_key.pem`.
        public_key: Option<PathBuf>,
        /// `WECHAT_PAY_PUBLIC_KEY_ID`.
        public_key_id: Option<String>,
    },
}

/// Everything the doctor checks.
///
/// # Security
/// `Debug` prints neither the AppSecret nor a WeChat Pay key.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `WECHAT_APPID`.
    pub appid: AppId,
    /// `WECHAT_SECRET`.
    pub secret: AppSecret,
    /// `WECHAT_PUBLIC_URL`, as given.
    pub public_url: Option<String>,
    /// `WECHAT_MCH_ID`; `None`: no WeChat Pay.
    pub mch_id: Option<MchId>,
    /// The WeChat Pay credentials of `WECHAT_PAY_VERSION` (`None` without `WECHAT_MCH_ID`).
    pub pay: Option<PaySettings>,
    /// `WECHAT_API_BASE`, `WECHAT_OPEN_BASE`, `WECHAT_PAY_BASE`, `WECHAT_RES_BASE` (default:
    /// WeChat's hosts).
    pub base_urls: BaseUrls,
}

impl Settings {
    /// Reads the process environment (see [`ENV_VARS`]). Empty variables count as unset.
    ///
    /// # Errors
    /// [`SettingsError`] naming the variable that is missing or cannot be read.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (a variable name to its value), as
    /// [`from_env`](Self::from_env) does with the process environment.
    ///
    /// # Errors
    /// [`SettingsError`] naming the variable that is missing or cannot be read.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let required = |variable: &'static str, what: &str| {
            get(variable).ok_or_else(|| SettingsError {
                variable,
                problem: format!("is not set: {what}"),
            })
        };
        let appid = required(
            "WECHAT_APPID",
            "the Official Account's AppID (设置与开发 → 基本配置), the same as the app's",
        )?;
        let secret = required(
            "WECHAT_SECRET",
            "the Official Account's AppSecret (设置与开发 → 基本配置), the same as the app's",
        )?;
        let version = match get("WECHAT_PAY_VERSION").as_deref() {
            None | Some("v3") => PayVersion::V3,
            Some("v2") => PayVersion::V2,
            Some(other) => {
                return Err(SettingsError {
                    variable: "WECHAT_PAY_VERSION",
                    problem: format!("{other:?} must be v3 (the default) or v2"),
                });
            }
        };
        let mch_id = get("WECHAT_MCH_ID").map(MchId::new);
        let pay = match (&mch_id, version) {
            (None, _) => None,
            (Some(_), PayVersion::V2) => Some(PaySettings::V2 {
                key: get("WECHAT_PAY_KEY").map(PayApiKey::new),
                sign_type: match get("WECHAT_PAY_SIGN_TYPE") {
                    None => SignType::Md5,
                    Some(name) => SignType::from_wire(&name).ok_or_else(|| SettingsError {
                        variable: "WECHAT_PAY_SIGN_TYPE",
                        problem: format!("{name:?} must be MD5 (the default) or HMAC-SHA256"),
                    })?,
                },
            }),
            (Some(_), PayVersion::V3) => Some(PaySettings::V3 {
                api_v3_key: get("WECHAT_PAY_V3_KEY").map(ApiV3Key::new),
                merchant_key: get("WECHAT_PAY_MCH_KEY").map(PathBuf::from),
                merchant_serial: get("WECHAT_PAY_MCH_SERIAL"),
                merchant_certificate: get("WECHAT_PAY_CERT").map(PathBuf::from),
                public_key: get("WECHAT_PAY_PUBLIC_KEY").map(PathBuf::from),
                public_key_id: get("WECHAT_PAY_PUBLIC_KEY_ID"),
            }),
        };
        let defaults = BaseUrls::wechat();
        let base = |variable: &'static str, default: String| -> Result<String, SettingsError> {
            let Some(value) = get(variable) else {
                return Ok(default);
            };
            let trimmed = value.trim_end_matches('/');
            match url::Url::parse(trimmed) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
                    Ok(trimmed.to_owned())
                }
                _ => Err(SettingsError {
                    variable,
                    problem: format!(
                        "{value:?} is not an absolute http(s) URL such as {default} (or a \
                         wechat-sim at http://127.0.0.1:9000)"
                    ),
                }),
            }
        };
        let base_urls = BaseUrls {
            api: base("WECHAT_API_BASE", defaults.api)?,
            open: base("WECHAT_OPEN_BASE", defaults.open)?,
            pay: base("WECHAT_PAY_BASE", defaults.pay)?,
            res: base("WECHAT_RES_BASE", defaults.res)?,
        };
        Ok(Self {
            appid: AppId::new(appid),
            secret: AppSecret::new(secret),
            public_url: get("WECHAT_PUBLIC_URL"),
            mch_id,
            pay,
            base_urls,
        })
    }

    /// The secrets configured (AppSecret, WeChat Pay keys), which no output may contain.
    pub(crate) fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![self.secret.expose_secret().to_owned()];
        match &self.pay {
            Some(PaySettings::V2 { key: Some(key), .. }) => {
                secrets.push(key.expose_secret().to_owned());
            }
            Some(PaySettings::V3 {
                api_v3_key: Some(key),
                ..
            }) => secrets.push(key.expose_secret().to_owned()),
            _ => {}
        }
        secrets
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    const BASE: [(&str, &str); 2] = [
        ("WECHAT_APPID", "wx1234567890abcdef"),
        ("WECHAT_SECRET", "0123456789abcdef0123456789abcdef"),
    ];

    #[test]
    fn the_app_is_required_and_pay_is_optional() {
        assert_eq!(settings(&[]).unwrap_err().variable, "WECHAT_APPID");
        assert_eq!(settings(&BASE[..1]).unwrap_err().variable, "WECHAT_SECRET");
        let s = settings(&BASE).unwrap();
        assert!(s.pay.is_none() && s.mch_id.is_none());
        assert_eq!(s.base_urls, BaseUrls::wechat());
        assert!(!format!("{s:?}").contains("0123456789abcdef0123"));
    }

    #[test]
    fn pay_follows_the_version() {
        let mut v2 = BASE.to_vec();
        v2.extend([
            ("WECHAT_MCH_ID", "1900000109"),
            ("WECHAT_PAY_VERSION", "v2"),
            ("WECHAT_PAY_KEY", "192006250b4c09247ec02edce69f6a2d"),
            ("WECHAT_PAY_SIGN_TYPE", "HMAC-SHA256"),
        ]);
        let s = settings(&v2).unwrap();
        assert!(matches!(
            s.pay,
            Some(PaySettings::V2 {
                key: Some(_),
                sign_type: SignType::HmacSha256
            })
        ));
        assert_eq!(s.secrets().len(), 2);
        assert!(!format!("{s:?}").contains("192006250b4c"));
        let mut v3 = BASE.to_vec();
        v3.extend([("WECHAT_MCH_ID", "1900000109"), ("WECHAT_PAY_V3_KEY", "x")]);
        assert!(matches!(
            settings(&v3).unwrap().pay,
            Some(PaySettings::V3 {
                api_v3_key: Some(_),
                merchant_key: None,
                ..
            })
        ));
    }

    #[test]
    fn unreadable_values_name_their_variable() {
        for (name, value) in [
            ("WECHAT_PAY_VERSION", "v4"),
            ("WECHAT_API_BASE", "api.weixin.qq.com"),
            ("WECHAT_PAY_BASE", "ftp://x"),
        ] {
            let mut vars = BASE.to_vec();
            vars.push((name, value));
            assert_eq!(settings(&vars).unwrap_err().variable, name);
        }
        let mut vars = BASE.to_vec();
        vars.extend([
            ("WECHAT_MCH_ID", "1"),
            ("WECHAT_PAY_VERSION", "v2"),
            ("WECHAT_PAY_SIGN_TYPE", "SHA1"),
        ]);
        assert_eq!(
            settings(&vars).unwrap_err().variable,
            "WECHAT_PAY_SIGN_TYPE"
        );
    }
}
