//! Shared simulator state and the server's life cycle.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::TokenStore;
use crate::clock::Clock;
use crate::config::{AppConfig, ConfigError, SimConfig, UserConfig};
use crate::fault::Faults;
use crate::host::AllowedHosts;
use crate::journal::Journal;
use crate::oauth::OAuthStore;
use crate::pay::PayState;
use crate::stats::{Stats, StatsSnapshot};

/// Everything the handlers share, behind an `Arc`.
pub(crate) struct Sim {
    /// The configuration, with every user's openid filled in.
    pub(crate) config: SimConfig,
    /// The simulated clock; every expiry is measured on it.
    pub(crate) clock: Clock,
    /// Request and notification counters.
    pub(crate) stats: Stats,
    /// OAuth codes, user access tokens and refresh tokens.
    pub(crate) oauth: Mutex<OAuthStore>,
    /// Basic and stable access tokens, jsapi tickets, quotas.
    pub(crate) tokens: Mutex<TokenStore>,
    /// Faults registered by `POST /_sim/fail`.
    pub(crate) faults: Mutex<Faults>,
    /// WeChat Pay state.
    pub(crate) pay: PayState,
    /// The recent requests and the notification deliveries, for the console.
    pub(crate) journal: Journal,
    /// The `Host`s the control routes answer besides the loopback ones (`[server] hosts`).
    pub(crate) hosts: AllowedHosts,
}

impl Sim {
    /// Builds the state; users without an openid get their derived one.
    pub(crate) fn new(mut config: SimConfig) -> Self {
        for user in &mut config.users {
            user.openid = Some(user.effective_openid());
        }
        let pay = PayState::new(&config);
        let hosts = AllowedHosts::new(&config.server);
        Self {
            config,
            clock: Clock::default(),
            stats: Stats::default(),
            oauth: Mutex::default(),
            tokens: Mutex::default(),
            faults: Mutex::default(),
            pay,
            journal: Journal::default(),
            hosts,
        }
    }

    /// The simulated unix time in seconds (shorthand for `self.clock.now_secs()`).
    pub(crate) fn now_secs(&self) -> u64 {
        self.clock.now_secs()
    }

    /// The app with this appid.
    pub(crate) fn app(&self, appid: &str) -> Option<&AppConfig> {
        self.config.apps.iter().find(|a| a.appid == appid)
    }

    /// The app's users, in configuration order.
    pub(crate) fn users_of<'a>(
        &'a self,
        appid: &'a str,
    ) -> impl Iterator<Item = &'a UserConfig> + 'a {
        self.config.users.iter().filter(move |u| u.appid == appid)
    }

    /// The app's user with this openid.
    pub(crate) fn user(&self, appid: &str, openid: &str) -> Option<&UserConfig> {
        self.config
            .users
            .iter()
            .find(|u| u.appid == appid && u.openid.as_deref() == Some(openid))
    }
}

/// Locks a mutex, ignoring poisoning (a panicked handler leaves consistent maps behind).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A configured simulator, not yet listening.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// let sim = wechat_sim::Simulator::from_toml_str(r#"
///     [[apps]]
///     appid = "wx1234567890abcdef"
///     secret = "0123456789abcdef0123456789abcdef"
///     oauth_domains = ["127.0.0.1:3000"]
///     [[users]]
///     appid = "wx1234567890abcdef"
///     nickname = "Alice"
/// "#).expect("valid config")
/// .start()
/// .await?;
/// println!("point the WeChat base URLs at {}", sim.base_url());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Simulator {
    config: SimConfig,
}

impl Simulator {
    /// A simulator for this configuration (not validated; see [`SimConfig::validate`]).
    pub fn new(config: SimConfig) -> Self {
        Self { config }
    }

    /// A simulator for a TOML configuration, checked with [`SimConfig::validate`].
    ///
    /// # Errors
    /// When the TOML is malformed or inconsistent.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        SimConfig::from_toml_str(text).map(Self::new)
    }

    /// A simulator for a TOML configuration file. Relative `_file` paths of merchants (PEM
    /// keys) are read from the file's directory.
    ///
    /// # Errors
    /// When the file cannot be read, or its TOML is malformed or inconsistent.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut config: SimConfig = toml::from_str(&text)?;
        if let Some(dir) = path.parent() {
            config.resolve_paths(dir);
        }
        config.validate()?;
        Ok(Self::new(config))
    }

    /// The configuration it will serve.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Starts serving on an ephemeral port of 127.0.0.1 (no TLS listener).
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn start(self) -> io::Result<RunningSim> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        self.start_on(listener, None).await
    }

    /// Starts serving on `listener`; `/secapi` routes are also served over TLS (with client
    /// certificates, see the merchants' `client_ca`) on `tls` when given.
    ///
    /// # Errors
    /// When a listener's address cannot be read.
    pub async fn start_on(
        self,
        listener: TcpListener,
        tls: Option<TcpListener>,
    ) -> io::Result<RunningSim> {
        let addr = listener.local_addr()?;
        let tls_addr = tls.as_ref().map(TcpListener::local_addr).transpose()?;
        let sim = Arc::new(Sim::new(self.config));
        let app = crate::serve::with_simulated_date(
            crate::router::router(Arc::clone(&sim)),
            Arc::clone(&sim),
        );
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let server = tokio::spawn(crate::serve::serve(listener, app, shutdown_rx.clone()));
        let tls_server = tls.map(|tls| {
            let sim = Arc::clone(&sim);
            tokio::spawn(async move {
                if let Err(e) = crate::pay::spawn_tls(sim, tls, shutdown_rx).await {
                    tracing::error!(error = %e, "wechat-sim TLS server stopped");
                }
            })
        });
        tracing::info!(%addr, tls = ?tls_addr, "wechat-sim listening");
        Ok(RunningSim {
            addr,
            tls_addr,
            sim,
            shutdown: Some(shutdown_tx),
            server: Some(server),
            tls_server,
        })
    }
}

/// A simulator that is serving. Dropping it stops the server and pending notification deliveries.
#[derive(Debug)]
pub struct RunningSim {
    addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    sim: Arc<Sim>,
    shutdown: Option<watch::Sender<bool>>,
    server: Option<JoinHandle<()>>,
    tls_server: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("apps", &self.config.apps.len())
            .field("users", &self.config.users.len())
            .finish_non_exhaustive()
    }
}

impl RunningSim {
    /// The plain-HTTP base URL for every WeChat host, like `http://127.0.0.1:PORT` (no trailing
    /// slash).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address of the plain-HTTP listener.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The TLS base URL for `/secapi` (mutual TLS), like `https://127.0.0.1:PORT`, when a TLS
    /// listener was given.
    pub fn tls_base_url(&self) -> Option<String> {
        self.tls_addr.map(|a| format!("https://{a}"))
    }

    /// The request and notification counters (what `GET /_sim/stats` returns).
    pub fn stats(&self) -> StatsSnapshot {
        self.sim.stats.snapshot()
    }

    /// Moves the simulator's clock forward (like `POST /_sim/clock/advance?seconds=N`) and
    /// returns the new simulated unix time.
    pub fn advance_clock(&self, secs: u64) -> u64 {
        self.sim.clock.advance(secs)
    }

    /// The simulator's current unix time, in seconds.
    pub fn now_secs(&self) -> u64 {
        self.sim.now_secs()
    }

    /// The WeChat Pay public key of a v3 merchant: `(id, SPKI PEM)`, the id being
    /// `pay_public_key_id` (`PUB_KEY_ID_…`); `None` for an unknown merchant or one without v3.
    /// The same as `GET /_sim/pay/v3/public-key?mch_id=…`.
    pub fn pay_public_key(&self, mch_id: &str) -> Option<(String, String)> {
        crate::pay::pay_public_key(&self.sim, mch_id)
    }

    /// Stops accepting connections, waits (at most 5 s) for open requests to finish, and stops
    /// pending notification deliveries.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        if let Some(mut server) = self.server.take() {
            if tokio::time::timeout(Duration::from_secs(5), &mut server)
                .await
                .is_err()
            {
                server.abort();
            }
        }
        if let Some(tls) = self.tls_server.take() {
            tls.abort();
        }
        self.sim.pay.shutdown();
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
        if let Some(tls) = self.tls_server.take() {
            tls.abort();
        }
        self.sim.pay.shutdown();
    }
}
