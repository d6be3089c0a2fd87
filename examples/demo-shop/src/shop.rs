//! Everything both demos build the same way from [`Settings`], before any web framework: the
//! WeChat clients, the login flow, the payment routes over the SQLite store, the page, and the
//! embedded simulator.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use wechat_core::login::{LoginConfig, LoginFlow};
use wechat_core::oauth::{OAuthClient, Scope};
use wechat_core::pay::v2::ClientCertificate;
use wechat_core::pay::{v2, v3};
use wechat_core::routes::{PayApi, PayRoutes, WeChatRoutes};
use wechat_core::session::SessionKeys;
use wechat_core::token::{MemoryStore, RedisStore, TokenStore, Tokens};
use wechat_core::{BaseUrls, Config, MchId, build_http_client};
use wechat_sim::RunningSim;

use crate::page::{ASSETS_PREFIX, Page};
use crate::prometheus::{METRICS_PATH, MetricsServer};
use crate::settings::{PaySettings, PayVersion, Settings, WeChatSettings};
use crate::sim::{SIM_APIV3_KEY, SIM_APPID, SIM_MCH_ID, SIM_PAY_KEY, SIM_SECRET, start_sim};
use crate::store::OrderStore;
use crate::{DemoError, Result};

/// Where the demos mount the routes of `wechat-tower`/`wechat-actix`.
pub const WECHAT_PREFIX: &str = "/wechat";
/// The OAuth callback path.
pub const CALLBACK_PATH: &str = "/wechat/oauth/callback";
/// The payment notification path (excluded from login).
pub const NOTIFY_PATH: &str = "/wechat/pay/notify";
/// The refund notification path (excluded from login).
pub const REFUND_NOTIFY_PATH: &str = "/wechat/pay/refund-notify";
/// The health check (excluded from login): answers `ok`.
pub const HEALTH_PATH: &str = "/health";
/// Every path prefix the login layer lets through without a session.
pub const EXCLUDED_PATHS: [&str; 5] = [
    NOTIFY_PATH,
    REFUND_NOTIFY_PATH,
    HEALTH_PATH,
    ASSETS_PREFIX,
    METRICS_PATH,
];

/// Binds the demo's listener on `addr` (port 0: a free port), non-blocking, so that the public
/// URL can use the real port before anything else starts. Both `tokio::net::TcpListener::from_std`
/// and actix-web's `HttpServer::listen` take it.
///
/// # Errors
/// [`DemoError::Io`] naming the address (e.g. already in use: set `LISTEN`).
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr).map_err(|e| {
        DemoError::io(
            format!("cannot listen on {addr} (set LISTEN to another address, e.g. 127.0.0.1:3001)"),
            e,
        )
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| DemoError::io(format!("cannot configure the listener on {addr}"), e))?;
    Ok(listener)
}

/// The framework-independent parts of a running demo.
///
/// Adapters wire [`login_flow`](Self::login_flow) into their login middleware (scope
/// `snsapi_userinfo`, callback [`CALLBACK_PATH`], [`EXCLUDED_PATHS`] excluded), mount their
/// routes over [`routes`](Self::routes) under [`WECHAT_PREFIX`], serve [`page`](Self::page) at
/// `/` and [`crate::asset`] under [`ASSETS_PREFIX`], and answer `ok` at [`HEALTH_PATH`].
pub struct Shop {
    public_url: String,
    sim: Option<RunningSim>,
    config: Config,
    http: reqwest::Client,
    tokens: Tokens,
    login: LoginFlow,
    routes: WeChatRoutes,
    store: OrderStore,
    page: Page,
    metrics: Option<MetricsServer>,
}

impl std::fmt::Debug for Shop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shop")
            .field("public_url", &self.public_url)
            .field("sim", &self.sim.as_ref().map(RunningSim::base_url))
            .field("config", &self.config)
            .field("store", &self.store)
            .field("metrics", &self.metrics_addr())
            .finish_non_exhaustive()
    }
}

impl Shop {
    /// Builds everything for a demo whose listener is bound to `bound`: the public URL
    /// ([`Settings::public_url_for`]), the embedded simulator when `settings.wechat` is `None`,
    /// the token store (Redis or memory), the login flow, the Pay client and routes over the
    /// SQLite store.
    ///
    /// # Errors
    /// [`DemoError`] naming what is misconfigured or unavailable (the database, Redis, the
    /// merchant certificate, a base URL…).
    pub async fn start(settings: &Settings, bound: SocketAddr) -> Result<Self> {
        // Installed before anything records (once per process: demos started later share it).
        crate::prometheus::prometheus();
        let metrics = match settings.metrics_listen {
            Some(addr) => Some(MetricsServer::start(addr).await?),
            None => None,
        };
        let public_url = settings.public_url_for(bound);
        let (sim, wechat) = match &settings.wechat {
            Some(wechat) => (None, wechat.clone()),
            None => {
                let sim = start_sim(&public_url).await?;
                let wechat = WeChatSettings {
                    appid: SIM_APPID.into(),
                    secret: SIM_SECRET.into(),
                    mch_id: SIM_MCH_ID.into(),
                    pay: sim_pay_settings(&sim, settings.pay_version)?,
                    base_urls: BaseUrls::all(&sim.base_url()),
                };
                (Some(sim), wechat)
            }
        };
        let base_urls = wechat.base_urls.clone().validated()?;
        let config = Config::new(wechat.appid.clone(), wechat.secret.clone())
            .with_base_urls(base_urls.clone());
        let http = build_http_client(&config)?;

        let token_store: Arc<dyn TokenStore> = match &settings.redis_url {
            Some(url) => Arc::new(connect_redis(url, settings).await?),
            None => Arc::new(MemoryStore::new()),
        };
        let tokens = Tokens::new(&config, http.clone(), token_store.clone());

        let keys = match &settings.session_key {
            Some(keys) => keys.clone(),
            None => {
                tracing::warn!(
                    "WECHAT_SESSION_KEY is unset: using a random session key, so sessions will not survive a restart (set it to the output of `openssl rand -hex 32`)"
                );
                SessionKeys::generate()
            }
        };
        let mut login = LoginConfig::builder(&public_url, keys)
            .scope(Scope::UserInfo)
            .callback_path(CALLBACK_PATH)
            .exclude_notifications(WECHAT_PREFIX);
        for path in EXCLUDED_PATHS {
            login = login.exclude(path);
        }
        let login = LoginFlow::new(OAuthClient::new(&config, http.clone()), login.build()?);

        let notify_url = settings
            .notify_url
            .clone()
            .unwrap_or_else(|| format!("{public_url}{NOTIFY_PATH}"));
        let refund_notify_url = format!("{public_url}{REFUND_NOTIFY_PATH}");
        let pay_client: PayApi = match &wechat.pay {
            PaySettings::V2 {
                key,
                sign_type,
                cert,
            } => {
                let mut pay_config = v2::PayConfig::builder(
                    wechat.mch_id.clone(),
                    wechat.appid.clone(),
                    key.clone(),
                    notify_url,
                )
                .sign_type(*sign_type)
                .base_urls(&base_urls)
                .refund_notify_url(refund_notify_url);
                if let Some(path) = cert {
                    pay_config = pay_config
                        .client_certificate(read_client_certificate(path, &wechat.mch_id)?);
                }
                v2::PayClient::new(pay_config.build()?)?.into()
            }
            PaySettings::V3 {
                api_v3_key,
                merchant_key,
                public_key,
            } => {
                let pay_config = v3::PayConfig::builder(
                    wechat.mch_id.clone(),
                    wechat.appid.clone(),
                    merchant_key.clone(),
                    api_v3_key.clone(),
                    notify_url,
                )
                .base_urls(&base_urls)
                .refund_notify_url(refund_notify_url);
                let pay_config = match public_key {
                    Some(key) => pay_config.wechat_pay_public_key(key.clone()),
                    None => pay_config.platform_certificates(),
                };
                let client = v3::PayClient::with_http_client(pay_config.build()?, http.clone())?
                    .with_certificate_store(token_store.clone(), "wechat:");
                // Platform certificates are downloaded now: a merchant without them (404) or a
                // wrong key stops the demo here, not at the first payment.
                client.wechat_pay_keys().await.map_err(|e| {
                    DemoError::Config(format!(
                        "WeChat Pay v3: cannot load the keys that verify WeChat Pay: {e}"
                    ))
                })?;
                client.into()
            }
        };

        let store = OrderStore::open(&settings.db_path, wechat.appid.clone()).await?;
        let pay = PayRoutes::new(pay_client, Arc::new(store.clone()));
        let page = Page::new(
            &base_urls.res,
            login.config().logout_path(),
            sim.as_ref().map(RunningSim::base_url),
        );
        let routes = WeChatRoutes::builder(tokens.clone())
            .jssdk_domain(&public_url)
            .js_api_list(["chooseWXPay"])
            .pay(pay)
            .build()?;
        Ok(Self {
            public_url,
            sim,
            config,
            http,
            tokens,
            login,
            routes,
            store,
            page,
            metrics,
        })
    }

    /// Whether the app serves `GET /metrics` ([`crate::METRICS_PATH`], outside the login) on its
    /// own listener: `false` when `METRICS_LISTEN` moved it to a listener of its own.
    pub fn serves_metrics(&self) -> bool {
        self.metrics.is_none()
    }

    /// The address of the separate metrics listener (`METRICS_LISTEN`), if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsServer::local_addr)
    }

    /// The demo's public origin (no trailing slash): what to open in the browser.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The embedded simulator, when no `WECHAT_APPID` was configured.
    pub fn sim(&self) -> Option<&RunningSim> {
        self.sim.as_ref()
    }

    /// The Official Account's configuration (credentials, base URLs).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The HTTP client for WeChat (redirects off, timeouts on).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The access_token and jsapi_ticket cache (for the JS-SDK config route).
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// The login flow for the login middleware.
    pub fn login_flow(&self) -> &LoginFlow {
        &self.login
    }

    /// The state of the routes mounted under [`WECHAT_PREFIX`]: the JS-SDK config (for pages on
    /// the public URL's `host[:port]`, `jsApiList` = `chooseWXPay`) and the payment routes over
    /// the order store.
    pub fn routes(&self) -> &WeChatRoutes {
        &self.routes
    }

    /// The payment routes' logic over the order store.
    pub fn pay_routes(&self) -> Option<&PayRoutes> {
        self.routes.pay()
    }

    /// The SQLite order store.
    pub fn store(&self) -> &OrderStore {
        &self.store
    }

    /// The page renderer.
    pub fn page(&self) -> &Page {
        &self.page
    }

    /// What `main` prints once the server accepts connections.
    pub fn startup_message(&self, framework: &str) -> String {
        let mut message = format!(
            "{framework} demo shop listening; open {}/ in your browser",
            self.public_url
        );
        match &self.sim {
            Some(sim) => message.push_str(&format!(
                "\n(no WECHAT_APPID: WeChat is simulated by the embedded wechat-sim at {}; orders are stored in {})",
                sim.base_url(),
                self.store.path().display()
            )),
            None => message.push_str(&format!(
                "\n(app {}, WeChat at {}; orders are stored in {})",
                self.config.appid(),
                self.config.base_urls().api,
                self.store.path().display()
            )),
        }
        message
    }

    /// Stops the embedded simulator (pending notifications included), if any.
    pub async fn shutdown(self) {
        if let Some(metrics) = self.metrics {
            metrics.shutdown().await;
        }
        if let Some(sim) = self.sim {
            sim.shutdown().await;
        }
    }
}

/// The embedded simulator's merchant, in the version the demo runs: its generated merchant key
/// and the simulator's WeChat Pay public key for v3, the API key for v2.
fn sim_pay_settings(sim: &RunningSim, version: PayVersion) -> Result<PaySettings> {
    Ok(match version {
        PayVersion::V2 => PaySettings::V2 {
            key: SIM_PAY_KEY.into(),
            sign_type: v2::SignType::Md5,
            cert: None,
        },
        PayVersion::V3 => {
            let keys = wechat_sim::fixtures::MerchantKeyPair::shared();
            let (id, pem) = sim.pay_public_key(SIM_MCH_ID).ok_or_else(|| {
                DemoError::Config("the embedded wechat-sim has no v3 key for its merchant".into())
            })?;
            PaySettings::V3 {
                api_v3_key: SIM_APIV3_KEY.into(),
                merchant_key: v3::MerchantKey::from_pem(
                    keys.private_key_pem.as_bytes(),
                    keys.serial.as_str(),
                )?,
                public_key: Some(v3::WechatPayPublicKey::from_pem(id, pem.as_bytes())?),
            }
        }
    })
}

/// Reads `WECHAT_PAY_CERT`: WeChat's `apiclient_cert.p12` (password: the merchant id), or one
/// PEM file with the certificate(s) and the private key.
fn read_client_certificate(path: &Path, mch_id: &MchId) -> Result<ClientCertificate> {
    let bytes = std::fs::read(path)
        .map_err(|e| DemoError::io(format!("cannot read WECHAT_PAY_CERT {}", path.display()), e))?;
    let loaded = match std::str::from_utf8(&bytes) {
        Ok(pem) if pem.contains("-----BEGIN ") => {
            let (cert, key) = split_pem(pem);
            ClientCertificate::from_pem(cert.as_bytes(), key.as_bytes())
        }
        _ => ClientCertificate::from_pkcs12(&bytes, mch_id.as_str()),
    };
    loaded.map_err(|e| {
        DemoError::Config(format!(
            "WECHAT_PAY_CERT {}: {e}; it must be apiclient_cert.p12, or apiclient_cert.pem \
             followed by apiclient_key.pem",
            path.display()
        ))
    })
}

/// Splits PEM text into (every non-key block, the private key blocks).
fn split_pem(pem: &str) -> (String, String) {
    let (mut cert, mut key) = (String::new(), String::new());
    let mut in_key = false;
    for line in pem.lines() {
        if line.starts_with("-----BEGIN ") {
            in_key = line.contains("PRIVATE KEY");
        }
        let target = if in_key { &mut key } else { &mut cert };
        target.push_str(line);
        target.push('\n');
        if line.starts_with("-----END ") {
            in_key = false;
        }
    }
    (cert, key)
}

/// The Redis token store `WECHAT_REDIS_URL`, `WECHAT_REDIS_CLUSTER` and `WECHAT_REDIS_CA` name.
async fn connect_redis(url: &str, settings: &Settings) -> Result<RedisStore> {
    let builder = if settings.redis_cluster {
        RedisStore::cluster_builder(
            url.split(',')
                .map(str::trim)
                .filter(|node| !node.is_empty()),
        )
    } else {
        RedisStore::builder(url)
    };
    let builder = match &settings.redis_ca {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                DemoError::io(
                    format!("WECHAT_REDIS_CA: cannot read {}", path.display()),
                    e,
                )
            })?;
            builder.tls_root_certificates(pem)
        }
        None => builder,
    };
    Ok(builder.connect().await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_files_split_into_certificate_and_key() {
        let pem = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nBBB\n-----END PRIVATE KEY-----\n";
        let (cert, key) = split_pem(pem);
        assert_eq!(
            cert,
            "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n"
        );
        assert_eq!(
            key,
            "-----BEGIN PRIVATE KEY-----\nBBB\n-----END PRIVATE KEY-----\n"
        );
    }

    #[test]
    fn a_bad_certificate_file_is_named() {
        let missing = read_client_certificate(
            Path::new("no/such/apiclient.pem"),
            &MchId::new("1900000109"),
        )
        .unwrap_err();
        assert!(missing.to_string().contains("WECHAT_PAY_CERT"), "{missing}");
    }

    #[test]
    fn binding_twice_names_the_address() {
        let first = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let taken = first.local_addr().unwrap();
        let e = bind(taken).unwrap_err().to_string();
        assert!(
            e.contains(&taken.to_string()) && e.contains("LISTEN"),
            "{e}"
        );
    }
}
