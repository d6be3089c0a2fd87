//! The demos' settings, read from the environment or built in code.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use wechat_core::pay::v2::SignType;
use wechat_core::pay::v3::{MerchantKey, WechatPayPublicKey};
use wechat_core::session::SessionKeys;
use wechat_core::{ApiV3Key, AppId, AppSecret, BaseUrls, MchId, PayApiKey};

use crate::{DemoError, Result};

/// The address the demos listen on when `LISTEN` is unset.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 3000);

/// The database file name under `.demo-data/` when `DEMO_DB` is unset.
pub const DEFAULT_DB_FILE: &str = "demo-shop.sqlite3";

/// The git-ignored folder that holds the default database.
pub const DATA_DIR: &str = ".demo-data";

/// Every environment variable the demos read, with what it is for (the README's table).
pub const ENV_VARS: [(&str, &str); 24] = [
    (
        "WECHAT_APPID",
        "the Official Account's AppID; unset: an embedded wechat-sim is started",
    ),
    (
        "WECHAT_SECRET",
        "its AppSecret (required with WECHAT_APPID)",
    ),
    (
        "WECHAT_MCH_ID",
        "the WeChat Pay merchant id (required with WECHAT_APPID)",
    ),
    (
        "WECHAT_PAY_VERSION",
        "v3 (default) or v2: the WeChat Pay API the demo uses (also with the embedded wechat-sim)",
    ),
    (
        "WECHAT_PAY_V3_KEY",
        "v3: the APIv3 key, 32 characters (required with WECHAT_APPID)",
    ),
    (
        "WECHAT_PAY_MCH_KEY",
        "v3: the path of apiclient_key.pem, the merchant API private key (required with WECHAT_APPID)",
    ),
    (
        "WECHAT_PAY_MCH_SERIAL",
        "v3: the serial number of the merchant API certificate (optional when WECHAT_PAY_CERT points at apiclient_cert.pem)",
    ),
    (
        "WECHAT_PAY_PUBLIC_KEY",
        "v3: the path of pub_key.pem, the WeChat Pay public key; unset: platform certificates from /v3/certificates",
    ),
    (
        "WECHAT_PAY_PUBLIC_KEY_ID",
        "v3: its id, PUB_KEY_ID_… (required with WECHAT_PAY_PUBLIC_KEY)",
    ),
    (
        "WECHAT_PAY_KEY",
        "v2: the merchant's API v2 key, 32 characters (required with WECHAT_APPID)",
    ),
    (
        "WECHAT_PAY_SIGN_TYPE",
        "v2: MD5 (default) or HMAC-SHA256, the merchant's signature algorithm; notifications signed otherwise are refused",
    ),
    (
        "WECHAT_PAY_CERT",
        "v3: apiclient_cert.pem, to read the serial from; v2: the merchant API certificate with its key, for refunds (optional)",
    ),
    (
        "WECHAT_API_BASE",
        "default https://api.weixin.qq.com (tokens, tickets, sns/*)",
    ),
    (
        "WECHAT_OPEN_BASE",
        "default https://open.weixin.qq.com (the OAuth authorize page)",
    ),
    (
        "WECHAT_PAY_BASE",
        "default https://api.mch.weixin.qq.com (WeChat Pay)",
    ),
    (
        "WECHAT_RES_BASE",
        "default https://res.wx.qq.com (where the page loads the JS-SDK script)",
    ),
    (
        "WECHAT_PUBLIC_URL",
        "the demo's external origin, for redirect_uri and notify_url; default http:// + LISTEN",
    ),
    (
        "WECHAT_SESSION_KEY",
        "hex, at least 32 bytes (openssl rand -hex 32); unset: random, sessions end at restart",
    ),
    (
        "WECHAT_REDIS_URL",
        "redis://host:port/db (rediss:// for TLS) to share access_token and jsapi_ticket between instances (optional); with WECHAT_REDIS_CLUSTER=1, the cluster's node URLs, comma-separated",
    ),
    (
        "WECHAT_REDIS_CLUSTER",
        "1: WECHAT_REDIS_URL names the nodes of a Redis Cluster (default 0: one server)",
    ),
    (
        "WECHAT_REDIS_CA",
        "a PEM file of the CA that signed the rediss:// server's certificate (default: the Mozilla roots)",
    ),
    (
        "DEMO_DB",
        "the SQLite order database; default .demo-data/demo-shop.sqlite3",
    ),
    ("LISTEN", "the address to listen on; default 127.0.0.1:3000"),
    (
        "METRICS_LISTEN",
        "host:port of a separate listener for GET /metrics (Prometheus text); unset: /metrics is served on LISTEN, without login",
    ),
];

/// The credentials and hosts of a real Official Account and merchant (or of a separately
/// started wechat-sim).
#[derive(Debug, Clone)]
pub struct WeChatSettings {
    /// `WECHAT_APPID`.
    pub appid: AppId,
    /// `WECHAT_SECRET`.
    pub secret: AppSecret,
    /// `WECHAT_MCH_ID`.
    pub mch_id: MchId,
    /// The WeChat Pay credentials of the configured version.
    pub pay: PaySettings,
    /// `WECHAT_API_BASE`, `WECHAT_OPEN_BASE`, `WECHAT_PAY_BASE`, `WECHAT_RES_BASE` (default:
    /// WeChat's hosts).
    pub base_urls: BaseUrls,
}

/// Which WeChat Pay API the demo uses (`WECHAT_PAY_VERSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PayVersion {
    /// API v3 (the default): what merchants who sign up today get.
    #[default]
    V3,
    /// API v2, for merchants who still have v2 credentials.
    V2,
}

impl PayVersion {
    /// `v3` or `v2`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V3 => "v3",
            Self::V2 => "v2",
        }
    }
}

/// A real merchant's WeChat Pay credentials, loaded and checked when the settings are read (so
/// that a bad one stops the demo at start, naming its variable).
#[derive(Debug, Clone)]
pub enum PaySettings {
    /// API v3.
    V3 {
        /// `WECHAT_PAY_V3_KEY`.
        api_v3_key: ApiV3Key,
        /// `WECHAT_PAY_MCH_KEY` with `WECHAT_PAY_MCH_SERIAL` or `WECHAT_PAY_CERT`.
        merchant_key: MerchantKey,
        /// `WECHAT_PAY_PUBLIC_KEY` and `WECHAT_PAY_PUBLIC_KEY_ID`; `None`: platform certificates.
        public_key: Option<WechatPayPublicKey>,
    },
    /// API v2.
    V2 {
        /// `WECHAT_PAY_KEY` (the merchant's API v2 key, not the AppSecret).
        key: PayApiKey,
        /// `WECHAT_PAY_SIGN_TYPE`: MD5 (default) or HMAC-SHA256.
        sign_type: SignType,
        /// `WECHAT_PAY_CERT`: the merchant API certificate, needed only for refunds: WeChat's
        /// `apiclient_cert.p12` (password: the merchant id), or one PEM file holding the
        /// certificate and its private key (`cat apiclient_cert.pem apiclient_key.pem`).
        cert: Option<PathBuf>,
    },
}

impl PaySettings {
    /// The version these credentials are for.
    pub fn version(&self) -> PayVersion {
        match self {
            Self::V3 { .. } => PayVersion::V3,
            Self::V2 { .. } => PayVersion::V2,
        }
    }
}

/// Everything the demos can be configured with.
///
/// [`Settings::from_env`] reads the environment variables listed in [`ENV_VARS`];
/// [`Settings::embedded`] builds the zero-configuration settings in code (tests use it with
/// `listen` = `127.0.0.1:0` and a temporary database).
///
/// # Security
/// `Debug` prints neither the session key, the AppSecret, the Pay key nor the Redis URL (which
/// may hold a password).
#[derive(Clone)]
pub struct Settings {
    /// `LISTEN` (default `127.0.0.1:3000`); port 0 picks a free port.
    pub listen: SocketAddr,
    /// `WECHAT_PUBLIC_URL`: the origin browsers and WeChat use to reach the demo, e.g.
    /// `https://shop.example.com`; `None`: `http://` + the address actually bound (with
    /// `127.0.0.1` for an unspecified address such as `0.0.0.0`).
    pub public_url: Option<String>,
    /// The real account; `None` (no `WECHAT_APPID`): an embedded wechat-sim is started on an
    /// ephemeral port of 127.0.0.1 with a generated configuration (see [`crate::sim`]).
    pub wechat: Option<WeChatSettings>,
    /// `WECHAT_PAY_VERSION` (default v3). With a real account it is the version of
    /// [`WeChatSettings::pay`]; with the embedded simulator it picks the API the demo uses.
    pub pay_version: PayVersion,
    /// `WECHAT_SESSION_KEY`; `None`: a random key (sessions do not survive a restart).
    pub session_key: Option<SessionKeys>,
    /// `DEMO_DB`: the SQLite order database (created with its folder when missing).
    pub db_path: PathBuf,
    /// `WECHAT_REDIS_URL`: a Redis server shared by several instances for the access_token and
    /// jsapi_ticket; `None`: kept in memory.
    pub redis_url: Option<String>,
    /// `WECHAT_REDIS_CLUSTER=1`: `redis_url` is a comma-separated list of a Redis Cluster's
    /// nodes (one is enough); `false`: one server.
    pub redis_cluster: bool,
    /// `WECHAT_REDIS_CA`: the CA certificate (PEM file) for a `rediss://` server whose
    /// certificate no public CA signed; `None`: the Mozilla roots.
    pub redis_ca: Option<PathBuf>,
    /// Where WeChat posts payment notifications; `None` (the default, and the only choice from
    /// the environment): `{public_url}/wechat/pay/notify`. Tests set an unreachable URL to
    /// simulate a lost notification.
    pub notify_url: Option<String>,
    /// `METRICS_LISTEN`: the address of a listener of its own for `GET /metrics` (a deployment
    /// keeps it internal); `None`: `/metrics` is served by the app on `listen`, without login.
    /// Port 0 picks a free port.
    pub metrics_listen: Option<SocketAddr>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("wechat", &self.wechat)
            .field("pay_version", &self.pay_version)
            .field("session_key", &self.session_key)
            .field("db_path", &self.db_path)
            .field(
                "redis_url",
                &self.redis_url.as_ref().map(|_| format_args!("[redacted]")),
            )
            .field("redis_cluster", &self.redis_cluster)
            .field("redis_ca", &self.redis_ca)
            .field("notify_url", &self.notify_url)
            .field("metrics_listen", &self.metrics_listen)
            .finish()
    }
}

impl Settings {
    /// Zero-configuration settings: listen on `listen`, an embedded simulator, a random session
    /// key, the order database at `db_path`, tokens in memory.
    pub fn embedded(listen: SocketAddr, db_path: impl Into<PathBuf>) -> Self {
        Self {
            listen,
            public_url: None,
            wechat: None,
            pay_version: PayVersion::V3,
            session_key: None,
            db_path: db_path.into(),
            redis_url: None,
            redis_cluster: false,
            redis_ca: None,
            notify_url: None,
            metrics_listen: None,
        }
    }

    /// Reads the settings from the process environment (see [`ENV_VARS`]). Empty variables count
    /// as unset.
    ///
    /// # Errors
    /// [`DemoError::Config`] naming the variable that is invalid or missing.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `lookup` (a variable name to its value), as
    /// [`from_env`](Self::from_env) does with the process environment.
    ///
    /// # Errors
    /// [`DemoError::Config`] naming the variable that is invalid or missing.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let listen = match get("LISTEN") {
            Some(text) => text.parse::<SocketAddr>().map_err(|e| {
                DemoError::Config(format!(
                    "LISTEN={text:?} is not an IP address and port such as 127.0.0.1:3000 ({e})"
                ))
            })?,
            None => DEFAULT_LISTEN,
        };
        let metrics_listen = get("METRICS_LISTEN")
            .map(|text| {
                text.parse::<SocketAddr>().map_err(|e| {
                    DemoError::Config(format!(
                        "METRICS_LISTEN={text:?} is not an IP address and port such as 127.0.0.1:9100 ({e})"
                    ))
                })
            })
            .transpose()?;
        let redis_cluster = match get("WECHAT_REDIS_CLUSTER").as_deref() {
            None | Some("0" | "false") => false,
            Some("1" | "true") => true,
            Some(other) => {
                return Err(DemoError::Config(format!(
                    "WECHAT_REDIS_CLUSTER={other:?}: expected 1 (a Redis Cluster) or 0 (one server)"
                )));
            }
        };
        let public_url = get("WECHAT_PUBLIC_URL")
            .map(|url| check_origin("WECHAT_PUBLIC_URL", &url))
            .transpose()?;
        let session_key = get("WECHAT_SESSION_KEY")
            .map(|hex| {
                SessionKeys::from_hex(&hex).map_err(|e| {
                    DemoError::Config(format!(
                        "WECHAT_SESSION_KEY: {e} (generate one with `openssl rand -hex 32`)"
                    ))
                })
            })
            .transpose()?;
        let pay_version = match get("WECHAT_PAY_VERSION").as_deref() {
            None | Some("v3") => PayVersion::V3,
            Some("v2") => PayVersion::V2,
            Some(other) => {
                return Err(DemoError::Config(format!(
                    "WECHAT_PAY_VERSION={other:?} must be v3 (the default) or v2"
                )));
            }
        };
        let wechat = match get("WECHAT_APPID") {
            Some(appid) => Some(wechat_from_lookup(appid, pay_version, &get)?),
            None => {
                let ignored: Vec<&str> = [
                    "WECHAT_SECRET",
                    "WECHAT_MCH_ID",
                    "WECHAT_PAY_KEY",
                    "WECHAT_PAY_SIGN_TYPE",
                    "WECHAT_PAY_CERT",
                    "WECHAT_PAY_V3_KEY",
                    "WECHAT_PAY_MCH_KEY",
                    "WECHAT_PAY_MCH_SERIAL",
                    "WECHAT_PAY_PUBLIC_KEY",
                    "WECHAT_PAY_PUBLIC_KEY_ID",
                    "WECHAT_API_BASE",
                    "WECHAT_OPEN_BASE",
                    "WECHAT_PAY_BASE",
                    "WECHAT_RES_BASE",
                ]
                .into_iter()
                .filter(|name| get(name).is_some())
                .collect();
                if !ignored.is_empty() {
                    tracing::warn!(
                        "WECHAT_APPID is unset, so the embedded wechat-sim is used and {} ignored; set WECHAT_APPID to use them",
                        ignored.join(", ")
                    );
                }
                None
            }
        };
        let db_path = match get("DEMO_DB") {
            Some(path) => PathBuf::from(path),
            None => default_db_path(),
        };
        Ok(Self {
            listen,
            public_url,
            wechat,
            pay_version,
            session_key,
            db_path,
            redis_url: get("WECHAT_REDIS_URL"),
            redis_cluster,
            redis_ca: get("WECHAT_REDIS_CA").map(PathBuf::from),
            notify_url: None,
            metrics_listen,
        })
    }

    /// The public origin for a listener bound to `bound`: [`public_url`](Self::public_url) when
    /// set, otherwise `http://` + `bound` (an unspecified IP becomes the loopback address).
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        if let Some(url) = &self.public_url {
            return url.trim_end_matches('/').to_owned();
        }
        let ip = match bound.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(ip, bound.port()))
    }
}

/// The real account's settings, once `WECHAT_APPID` is known.
fn wechat_from_lookup(
    appid: String,
    version: PayVersion,
    get: &impl Fn(&str) -> Option<String>,
) -> Result<WeChatSettings> {
    let required = |name: &str| {
        get(name).ok_or_else(|| {
            DemoError::Config(format!(
                "{name} is required when WECHAT_APPID is set (unset WECHAT_APPID to run against the embedded wechat-sim)"
            ))
        })
    };
    let secret = required("WECHAT_SECRET")?;
    let mch_id = required("WECHAT_MCH_ID")?;
    let pay = match version {
        PayVersion::V2 => {
            let key = required("WECHAT_PAY_KEY")?;
            if key.len() != 32 {
                return Err(DemoError::Config(format!(
                    "WECHAT_PAY_KEY must be the merchant's 32-character API v2 key (it has {} characters)",
                    key.len()
                )));
            }
            let sign_type = match get("WECHAT_PAY_SIGN_TYPE").as_deref() {
                None => SignType::Md5,
                Some(name) => SignType::from_wire(name).ok_or_else(|| {
                    DemoError::Config(format!(
                        "WECHAT_PAY_SIGN_TYPE={name:?} must be MD5 (the default) or HMAC-SHA256"
                    ))
                })?,
            };
            PaySettings::V2 {
                key: PayApiKey::new(key),
                sign_type,
                cert: get("WECHAT_PAY_CERT").map(PathBuf::from),
            }
        }
        PayVersion::V3 => v3_from_lookup(get, &required)?,
    };
    let defaults = BaseUrls::wechat();
    let base = |name: &str, default: String| -> Result<String> {
        match get(name) {
            Some(url) => check_origin(name, &url),
            None => Ok(default),
        }
    };
    let base_urls = BaseUrls {
        api: base("WECHAT_API_BASE", defaults.api)?,
        open: base("WECHAT_OPEN_BASE", defaults.open)?,
        pay: base("WECHAT_PAY_BASE", defaults.pay)?,
        res: base("WECHAT_RES_BASE", defaults.res)?,
    };
    Ok(WeChatSettings {
        appid: AppId::new(appid),
        secret: AppSecret::new(secret),
        mch_id: MchId::new(mch_id),
        pay,
        base_urls,
    })
}

/// The v3 credentials: every file read and parsed now, every error naming its variable.
fn v3_from_lookup(
    get: &impl Fn(&str) -> Option<String>,
    required: &impl Fn(&str) -> Result<String>,
) -> Result<PaySettings> {
    let read = |name: &str, path: &str| {
        std::fs::read(path).map_err(|e| DemoError::io(format!("cannot read {name}={path}"), e))
    };
    let api_v3_key = required("WECHAT_PAY_V3_KEY")?;
    if api_v3_key.len() != 32 {
        return Err(DemoError::Config(format!(
            "WECHAT_PAY_V3_KEY must be the 32-character APIv3 key set under Account center > API \
             security on pay.weixin.qq.com (it has {} characters; the API v2 key is WECHAT_PAY_KEY)",
            api_v3_key.len()
        )));
    }
    let key_path = required("WECHAT_PAY_MCH_KEY")?;
    let key_pem = read("WECHAT_PAY_MCH_KEY", &key_path)?;
    let merchant_key = match (get("WECHAT_PAY_MCH_SERIAL"), get("WECHAT_PAY_CERT")) {
        (Some(serial), _) => MerchantKey::from_pem(&key_pem, serial),
        (None, Some(cert_path)) => {
            let cert_pem = read("WECHAT_PAY_CERT", &cert_path)?;
            MerchantKey::from_pem_with_certificate(&key_pem, &cert_pem)
        }
        (None, None) => {
            return Err(DemoError::Config(
                "WECHAT_PAY_MCH_SERIAL (the merchant API certificate's serial number, shown under \
                 Account center > API security) is required, or WECHAT_PAY_CERT pointing at \
                 apiclient_cert.pem, from which it is read"
                    .into(),
            ));
        }
    }
    .map_err(|e| {
        DemoError::Config(format!(
            "WECHAT_PAY_MCH_KEY={key_path} must be apiclient_key.pem, the merchant API private key \
             (with WECHAT_PAY_MCH_SERIAL or WECHAT_PAY_CERT=apiclient_cert.pem): {e}"
        ))
    })?;
    let public_key = match (
        get("WECHAT_PAY_PUBLIC_KEY"),
        get("WECHAT_PAY_PUBLIC_KEY_ID"),
    ) {
        (Some(path), Some(id)) => {
            let pem = read("WECHAT_PAY_PUBLIC_KEY", &path)?;
            Some(WechatPayPublicKey::from_pem(id, &pem).map_err(|e| {
                DemoError::Config(format!(
                    "WECHAT_PAY_PUBLIC_KEY={path} must be pub_key.pem, the WeChat Pay public key, \
                     with WECHAT_PAY_PUBLIC_KEY_ID=PUB_KEY_ID_…: {e}"
                ))
            })?)
        }
        (None, None) => None,
        (Some(_), None) => {
            return Err(DemoError::Config(
                "WECHAT_PAY_PUBLIC_KEY_ID (PUB_KEY_ID_…, shown beside the WeChat Pay public key) is \
                 required with WECHAT_PAY_PUBLIC_KEY"
                    .into(),
            ));
        }
        (None, Some(_)) => {
            return Err(DemoError::Config(
                "WECHAT_PAY_PUBLIC_KEY (the path of pub_key.pem) is required with \
                 WECHAT_PAY_PUBLIC_KEY_ID"
                    .into(),
            ));
        }
    };
    Ok(PaySettings::V3 {
        api_v3_key: ApiV3Key::new(api_v3_key),
        merchant_key,
        public_key,
    })
}

/// Checks that `value` is an absolute http(s) URL with no query or fragment, and removes a
/// trailing `/`.
fn check_origin(name: &str, value: &str) -> Result<String> {
    let trimmed = value.trim_end_matches('/');
    let parsed = url::Url::parse(trimmed).map_err(|e| {
        DemoError::Config(format!(
            "{name}={value:?} is not a URL ({e}); expected e.g. http://127.0.0.1:9000"
        ))
    })?;
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.host_str().is_none()
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        return Err(DemoError::Config(format!(
            "{name}={value:?} must be an absolute http(s) URL with no query, e.g. http://127.0.0.1:9000"
        )));
    }
    Ok(trimmed.to_owned())
}

/// `.demo-data/demo-shop.sqlite3` in the Cargo workspace that contains the current directory,
/// or in the current directory when there is none.
fn default_db_path() -> PathBuf {
    let base = std::env::current_dir()
        .ok()
        .and_then(|dir| workspace_root(&dir))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join(DATA_DIR).join(DEFAULT_DB_FILE)
}

/// The nearest ancestor of `dir` (itself included) whose `Cargo.toml` declares `[workspace]`.
fn workspace_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| {
            std::fs::read_to_string(d.join("Cargo.toml"))
                .is_ok_and(|text| text.lines().any(|l| l.trim() == "[workspace]"))
        })
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    fn error(vars: &[(&str, &str)]) -> String {
        settings(vars).unwrap_err().to_string()
    }

    const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn no_configuration_means_the_embedded_simulator() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.listen, DEFAULT_LISTEN);
        assert!(s.wechat.is_none());
        assert!(s.public_url.is_none());
        assert!(s.session_key.is_none());
        assert!(s.redis_url.is_none());
        assert!(
            s.db_path
                .ends_with(Path::new(".demo-data/demo-shop.sqlite3"))
        );
        assert_eq!(
            s.public_url_for("127.0.0.1:3000".parse().unwrap()),
            "http://127.0.0.1:3000"
        );
        assert_eq!(
            s.public_url_for("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            s.public_url_for("[::]:8080".parse().unwrap()),
            "http://[::1]:8080"
        );
        // Empty values count as unset.
        assert!(settings(&[("WECHAT_APPID", " ")]).unwrap().wechat.is_none());
    }

    #[test]
    fn redis_cluster_and_ca_are_read() {
        let s = settings(&[
            ("WECHAT_REDIS_URL", "rediss://a:7000, rediss://b:7000"),
            ("WECHAT_REDIS_CLUSTER", "1"),
            ("WECHAT_REDIS_CA", "/etc/redis/ca.pem"),
        ])
        .unwrap();
        assert!(s.redis_cluster);
        assert_eq!(s.redis_ca, Some(PathBuf::from("/etc/redis/ca.pem")));
        let err = settings(&[("WECHAT_REDIS_CLUSTER", "yes")]).unwrap_err();
        assert!(err.to_string().contains("WECHAT_REDIS_CLUSTER"), "{err}");
    }

    #[test]
    fn a_real_account_needs_its_secrets() {
        let full = [
            ("WECHAT_APPID", "wx1234567890abcdef"),
            ("WECHAT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("WECHAT_MCH_ID", "1900000109"),
            ("WECHAT_PAY_VERSION", "v2"),
            ("WECHAT_PAY_KEY", "192006250b4c09247ec02edce69f6a2d"),
            ("WECHAT_API_BASE", "http://127.0.0.1:9000/"),
            ("WECHAT_RES_BASE", "http://127.0.0.1:9001"),
            ("WECHAT_PUBLIC_URL", "https://shop.example.com/"),
            ("WECHAT_SESSION_KEY", KEY),
            ("WECHAT_REDIS_URL", "redis://:hunter2@127.0.0.1:6379/"),
            ("DEMO_DB", "/tmp/x.sqlite3"),
            ("LISTEN", "0.0.0.0:8080"),
            ("METRICS_LISTEN", "127.0.0.1:9100"),
        ];
        let s = settings(&full).unwrap();
        assert_eq!(s.metrics_listen, Some("127.0.0.1:9100".parse().unwrap()));
        assert!(!s.redis_cluster);
        assert_eq!(s.redis_ca, None);
        let w = s.wechat.as_ref().unwrap();
        assert_eq!(w.appid.as_str(), "wx1234567890abcdef");
        assert_eq!(w.base_urls.api, "http://127.0.0.1:9000");
        assert_eq!(w.base_urls.open, "https://open.weixin.qq.com");
        assert_eq!(w.base_urls.pay, "https://api.mch.weixin.qq.com");
        assert_eq!(w.base_urls.res, "http://127.0.0.1:9001");
        assert_eq!(s.public_url.as_deref(), Some("https://shop.example.com"));
        assert_eq!(
            s.public_url_for("0.0.0.0:8080".parse().unwrap()),
            "https://shop.example.com"
        );
        assert_eq!(s.db_path, PathBuf::from("/tmp/x.sqlite3"));
        assert_eq!(s.listen.port(), 8080);
        let debug = format!("{s:?}");
        for secret in [
            "0123456789abcdef0123",
            "192006250b4c",
            "hunter2",
            &KEY[..16],
        ] {
            assert!(!debug.contains(secret), "{secret} leaked into {debug}");
        }

        for missing in ["WECHAT_SECRET", "WECHAT_MCH_ID", "WECHAT_PAY_KEY"] {
            let vars: Vec<_> = full
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            let message = error(&vars);
            assert!(message.contains(missing), "{message}");
            assert!(message.contains("required"), "{message}");
        }
    }

    #[test]
    fn invalid_values_name_their_variable() {
        assert!(error(&[("LISTEN", "localhost")]).contains("LISTEN"));
        assert!(error(&[("METRICS_LISTEN", ":9100")]).contains("METRICS_LISTEN"));
        assert!(error(&[("WECHAT_PUBLIC_URL", "shop.example.com")]).contains("WECHAT_PUBLIC_URL"));
        assert!(error(&[("WECHAT_PUBLIC_URL", "ftp://x")]).contains("http(s)"));
        let short = error(&[("WECHAT_SESSION_KEY", "abcd")]);
        assert!(short.contains("WECHAT_SESSION_KEY"), "{short}");
        assert!(
            !short.contains("abcd"),
            "the key must not be echoed: {short}"
        );
        let pay_key = error(&[
            ("WECHAT_APPID", "wx1234567890abcdef"),
            ("WECHAT_SECRET", "s"),
            ("WECHAT_MCH_ID", "1"),
            ("WECHAT_PAY_VERSION", "v2"),
            ("WECHAT_PAY_KEY", "short"),
        ]);
        assert!(pay_key.contains("32-character"), "{pay_key}");
        let v2 = [
            ("WECHAT_APPID", "wx1234567890abcdef"),
            ("WECHAT_SECRET", "s"),
            ("WECHAT_MCH_ID", "1"),
            ("WECHAT_PAY_VERSION", "v2"),
            ("WECHAT_PAY_KEY", "192006250b4c09247ec02edce69f6a2d"),
        ];
        let sign_type = |value: &'static str| {
            let mut vars = v2.to_vec();
            vars.push(("WECHAT_PAY_SIGN_TYPE", value));
            settings(&vars)
        };
        for (value, expected) in [
            ("MD5", SignType::Md5),
            ("HMAC-SHA256", SignType::HmacSha256),
        ] {
            let s = sign_type(value).unwrap();
            assert!(matches!(
                s.wechat.unwrap().pay,
                PaySettings::V2 { sign_type, .. } if sign_type == expected
            ));
        }
        assert!(matches!(
            settings(&v2).unwrap().wechat.unwrap().pay,
            PaySettings::V2 {
                sign_type: SignType::Md5,
                ..
            }
        ));
        let bad = sign_type("SHA1").unwrap_err().to_string();
        assert!(bad.contains("WECHAT_PAY_SIGN_TYPE"), "{bad}");
        let base = error(&[
            ("WECHAT_APPID", "wx1234567890abcdef"),
            ("WECHAT_SECRET", "s"),
            ("WECHAT_MCH_ID", "1"),
            ("WECHAT_PAY_VERSION", "v2"),
            ("WECHAT_PAY_KEY", "192006250b4c09247ec02edce69f6a2d"),
            ("WECHAT_PAY_BASE", "api.mch.weixin.qq.com"),
        ]);
        assert!(base.contains("WECHAT_PAY_BASE"), "{base}");
    }

    /// A folder with the merchant's v3 files, removed at the end of the test.
    struct KeyFiles(PathBuf);

    impl KeyFiles {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("demo-v3-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let keys = wechat_sim::fixtures::MerchantKeyPair::shared();
            std::fs::write(dir.join("apiclient_key.pem"), &keys.private_key_pem).unwrap();
            std::fs::write(dir.join("pub_key.pem"), &keys.public_key_pem).unwrap();
            Self(dir)
        }

        fn path(&self, name: &str) -> String {
            self.0.join(name).display().to_string()
        }
    }

    impl Drop for KeyFiles {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn v3_is_the_default_and_its_credentials_are_loaded_at_start() {
        let files = KeyFiles::new("ok");
        let (key, public) = (files.path("apiclient_key.pem"), files.path("pub_key.pem"));
        let base = vec![
            ("WECHAT_APPID", "wx1234567890abcdef"),
            ("WECHAT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("WECHAT_MCH_ID", "1900000109"),
            ("WECHAT_PAY_V3_KEY", "0123456789abcdefghijABCDEFGHIJ01"),
            ("WECHAT_PAY_MCH_KEY", key.as_str()),
            ("WECHAT_PAY_MCH_SERIAL", "5157F09EFDC096DE15EBE81A47057A72"),
        ];
        // Without the public key: platform certificates.
        let s = settings(&base).unwrap();
        assert_eq!(s.pay_version, PayVersion::V3);
        let Some(WeChatSettings {
            pay:
                PaySettings::V3 {
                    public_key,
                    merchant_key,
                    ..
                },
            ..
        }) = &s.wechat
        else {
            panic!("{s:?}")
        };
        assert!(public_key.is_none());
        assert_eq!(merchant_key.serial_no(), "5157F09EFDC096DE15EBE81A47057A72");
        let debug = format!("{s:?}");
        assert!(!debug.contains("0123456789abcdefghij"), "{debug}");
        assert!(!debug.contains("PRIVATE"), "{debug}");

        let mut with_public = base.clone();
        with_public.push(("WECHAT_PAY_PUBLIC_KEY", public.as_str()));
        with_public.push((
            "WECHAT_PAY_PUBLIC_KEY_ID",
            "PUB_KEY_ID_0119000001092025120100000001",
        ));
        let s = settings(&with_public).unwrap();
        assert!(matches!(
            &s.wechat.unwrap().pay,
            PaySettings::V3 { public_key: Some(k), .. } if k.id() == "PUB_KEY_ID_0119000001092025120100000001"
        ));
    }

    #[test]
    fn a_missing_or_malformed_v3_credential_names_its_variable() {
        let files = KeyFiles::new("bad");
        let (key, public) = (files.path("apiclient_key.pem"), files.path("pub_key.pem"));
        let base = [
            ("WECHAT_APPID", "wx1234567890abcdef"),
            ("WECHAT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("WECHAT_MCH_ID", "1900000109"),
            ("WECHAT_PAY_V3_KEY", "0123456789abcdefghijABCDEFGHIJ01"),
            ("WECHAT_PAY_MCH_KEY", key.as_str()),
            ("WECHAT_PAY_MCH_SERIAL", "5157F09EFDC096DE15EBE81A47057A72"),
        ];
        let with = |changes: &[(&'static str, &str)]| {
            let mut vars: Vec<(&str, String)> =
                base.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
            for (name, value) in changes {
                vars.retain(|(k, _)| k != name);
                if !value.is_empty() {
                    vars.push((name, (*value).to_owned()));
                }
            }
            let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
            error(&vars)
        };
        for (changes, names) in [
            (vec![("WECHAT_PAY_V3_KEY", "")], "WECHAT_PAY_V3_KEY"),
            (vec![("WECHAT_PAY_V3_KEY", "short")], "WECHAT_PAY_V3_KEY"),
            (vec![("WECHAT_PAY_MCH_KEY", "")], "WECHAT_PAY_MCH_KEY"),
            (
                vec![("WECHAT_PAY_MCH_KEY", "no/such/apiclient_key.pem")],
                "WECHAT_PAY_MCH_KEY",
            ),
            // The classic: the public key where the private key belongs.
            (vec![("WECHAT_PAY_MCH_KEY", public.as_str())], "public key"),
            (vec![("WECHAT_PAY_MCH_SERIAL", "")], "WECHAT_PAY_MCH_SERIAL"),
            (
                vec![("WECHAT_PAY_PUBLIC_KEY", public.as_str())],
                "WECHAT_PAY_PUBLIC_KEY_ID",
            ),
            (
                vec![("WECHAT_PAY_PUBLIC_KEY_ID", "PUB_KEY_ID_1")],
                "WECHAT_PAY_PUBLIC_KEY",
            ),
            (
                vec![
                    ("WECHAT_PAY_PUBLIC_KEY", key.as_str()),
                    ("WECHAT_PAY_PUBLIC_KEY_ID", "PUB_KEY_ID_1"),
                ],
                "WECHAT_PAY_PUBLIC_KEY",
            ),
            (vec![("WECHAT_PAY_VERSION", "v4")], "WECHAT_PAY_VERSION"),
        ] {
            let message = with(&changes);
            assert!(message.contains(names), "{changes:?}: {message}");
            assert!(!message.contains("0123456789abcdefghij"), "{message}");
        }
    }

    #[test]
    fn the_default_database_lives_in_the_workspace() {
        // Tests run in the package directory, inside this workspace.
        let root = workspace_root(&std::env::current_dir().unwrap()).unwrap();
        assert!(root.join("Cargo.toml").is_file());
        assert_eq!(
            default_db_path(),
            root.join(".demo-data").join("demo-shop.sqlite3")
        );
    }
}
