//! The simulator's configuration file (TOML).

use serde::Deserialize;

pub use crate::pay::MerchantConfig;

/// The whole configuration: apps, users, merchants, token lifetime and the server's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    /// Lifetime of basic access tokens, OAuth tokens and jsapi tickets, in seconds.
    #[serde(default = "default_token_ttl")]
    pub token_ttl_secs: u64,
    /// Official Accounts known to the simulator.
    #[serde(default)]
    pub apps: Vec<AppConfig>,
    /// WeChat users, each bound to one app.
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// WeChat Pay merchants.
    #[serde(default)]
    pub merchants: Vec<MerchantConfig>,
    /// The simulator's own HTTP server (`[server]`; optional).
    #[serde(default)]
    pub server: ServerConfig,
}

/// The simulator's own HTTP server: the `[server]` table.
///
/// ```toml
/// [server]
/// hosts = ["wechat-sim", "sim.internal"]
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// More host names (or IP addresses) under which the `/_sim/` control routes and the
    /// console answer, besides loopback addresses, `localhost` and `*.localhost` (compared with
    /// the request's `Host` without its port, ignoring case; no port, scheme or wildcard here).
    /// Empty by default. The WeChat endpoints and the JS-SDK's bridge routes answer any `Host`.
    ///
    /// # Security
    /// Every name listed here must resolve only to the simulator for the browsers that use it:
    /// a web page served under a listed name could drive the controls (DNS rebinding).
    #[serde(default)]
    pub hosts: Vec<String>,
}

fn default_token_ttl() -> u64 {
    7200
}

/// One Official Account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// The app id, e.g. `wx1234567890abcdef`.
    pub appid: String,
    /// The AppSecret.
    pub secret: String,
    /// Caller IPs allowed on `cgi-bin/token` and `cgi-bin/stable_token`; empty allows all.
    #[serde(default)]
    pub ip_whitelist: Vec<String>,
    /// Hosts (with port when not 80/443) that OAuth `redirect_uri` may point to.
    #[serde(default)]
    pub oauth_domains: Vec<String>,
    /// JS-SDK safe domains (host, with port when not 80/443).
    #[serde(default)]
    pub js_domains: Vec<String>,
    /// How many `cgi-bin/token` calls a day (on the simulator's clock) succeed before 45009.
    #[serde(default = "default_token_daily_quota")]
    pub token_daily_quota: u32,
    /// An Official Account (`"official_account"`, the default: web OAuth inside WeChat) or an
    /// Open Platform website application (`"website"`: QR-code login with `/connect/qrconnect`
    /// and `snsapi_login`; `oauth_domains` are then its authorization callback domains).
    #[serde(default)]
    pub kind: AppKind,
}

/// What kind of WeChat app an `[[apps]]` entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppKind {
    /// An Official Account (公众号): web OAuth (`snsapi_base`, `snsapi_userinfo`) inside
    /// WeChat, the basic access token, the JS-SDK, JSAPI payment.
    #[default]
    OfficialAccount,
    /// An Open Platform website application (网站应用): website QR-code login (`snsapi_login`)
    /// only. Its users are `[[users]]` entries with its appid; the same `unionid` under two apps
    /// is one person.
    Website,
}

fn default_token_daily_quota() -> u32 {
    2000
}

/// One WeChat user of one app.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The app this user belongs to.
    pub appid: String,
    /// The user's openid for that app; derived from the appid and nickname when absent.
    #[serde(default)]
    pub openid: Option<String>,
    /// The user's unionid, when the app is bound to an Open Platform account.
    #[serde(default)]
    pub unionid: Option<String>,
    /// Nickname shown by `sns/userinfo`.
    pub nickname: String,
    /// 1 male, 2 female, 0 unknown.
    #[serde(default)]
    pub sex: u8,
    /// Province.
    #[serde(default)]
    pub province: String,
    /// City.
    #[serde(default)]
    pub city: String,
    /// Country.
    #[serde(default)]
    pub country: String,
    /// Avatar URL.
    #[serde(default)]
    pub headimgurl: String,
    /// A "snapshot page" virtual user: the code exchange says `is_snapshotuser: 1` and
    /// `sns/userinfo` fails with 48001.
    #[serde(default)]
    pub is_snapshotuser: bool,
}

impl UserConfig {
    /// The user's openid: the configured one, or one derived from the appid and nickname
    /// (see [`derive_openid`]).
    pub fn effective_openid(&self) -> String {
        match &self.openid {
            Some(openid) if !openid.is_empty() => openid.clone(),
            _ => derive_openid(&self.appid, &self.nickname),
        }
    }
}

/// The openid the simulator gives a configured user that has none: `o` followed by 27 characters
/// of the base64url SHA-256 of `appid:nickname` (28 characters, like WeChat's), stable across runs.
pub fn derive_openid(appid: &str, nickname: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("{appid}:{nickname}").as_bytes());
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    format!("o{}", &encoded[..27])
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file's path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown fields.
    #[error("invalid simulator config: {0}")]
    Toml(#[from] toml::de::Error),
    /// The TOML parses but is inconsistent (duplicate appid, user of an unknown app, ...).
    #[error("invalid simulator config: {0}")]
    Invalid(String),
}

impl SimConfig {
    /// Makes the merchants' relative `_file` paths relative to `dir` (the configuration
    /// file's directory).
    pub fn resolve_paths(&mut self, dir: &std::path::Path) {
        for m in &mut self.merchants {
            crate::pay::v3::resolve_paths(m, dir);
        }
    }

    /// Parses a TOML configuration and checks it (see [`SimConfig::validate`]).
    ///
    /// # Errors
    /// [`ConfigError::Toml`] for malformed TOML, [`ConfigError::Invalid`] for inconsistencies.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let config: SimConfig = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what TOML cannot: unique appids, users of known apps, unique openids per app,
    /// a non-zero token lifetime, unique merchants each with v2 or v3 keys, every v3
    /// merchant's fields (the APIv3 key's length, readable PEMs, the serial, the key id), and
    /// that `[server] hosts` are host names or IP addresses.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: String| Err(ConfigError::Invalid(msg));
        if self.token_ttl_secs == 0 {
            return invalid("token_ttl_secs must be positive".into());
        }
        for host in &self.server.hosts {
            if let Err(e) = crate::host::listed(host) {
                return invalid(format!("[server] hosts: {host:?} {e}"));
            }
        }
        let mut appids = std::collections::HashSet::new();
        for app in &self.apps {
            if app.appid.is_empty() {
                return invalid("an app has an empty appid".into());
            }
            if !appids.insert(app.appid.as_str()) {
                return invalid(format!("appid {} is declared twice", app.appid));
            }
        }
        let mut mch_ids = std::collections::HashSet::new();
        for m in &self.merchants {
            if m.mch_id.is_empty() {
                return invalid("a merchant has an empty mch_id".into());
            }
            if !mch_ids.insert(m.mch_id.as_str()) {
                return invalid(format!("mch_id {} is declared twice", m.mch_id));
            }
            if !m.has_v2() && !m.has_v3() {
                return invalid(format!(
                    "merchant {}: give api_key (API v2), apiv3_key (API v3) or both",
                    m.mch_id
                ));
            }
            if let Err(e) = crate::pay::v3::check(m) {
                return invalid(format!("merchant {}: {e}", m.mch_id));
            }
        }
        let mut openids = std::collections::HashSet::new();
        for user in &self.users {
            if !appids.contains(user.appid.as_str()) {
                return invalid(format!(
                    "user {:?} belongs to appid {}, which is not among [[apps]]",
                    user.nickname, user.appid
                ));
            }
            let openid = user.effective_openid();
            if !openids.insert((user.appid.clone(), openid.clone())) {
                return invalid(format!(
                    "openid {openid} appears twice for appid {}",
                    user.appid
                ));
            }
        }
        Ok(())
    }
}
