//! Making a [`RedisStore`](super::RedisStore): the builder, TLS, and the server and cluster
//! URLs.

use super::*;

/// Builds a [`RedisStore`] with non-default settings; made by [`RedisStore::builder`] (one
/// server) or [`RedisStore::cluster_builder`] (a Redis Cluster).
#[must_use]
pub struct RedisStoreBuilder {
    target: Target,
    prefix: String,
    connect_timeout: Duration,
    response_timeout: Duration,
    retry_after_failure: Duration,
    /// A CA certificate (PEM) for `rediss://` instead of the Mozilla roots.
    tls_root: Option<Vec<u8>>,
    /// A client certificate chain and its private key (PEM) for servers that ask for one.
    tls_client: Option<ClientIdentity>,
}

/// Where the store connects.
pub(super) enum Target {
    Server(String),
    Cluster(Vec<String>),
}

/// A client certificate and its key; the key never reaches `Debug` or an error.
struct ClientIdentity {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl std::fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<String> = match &self.target {
            Target::Server(url) => vec![redact_url(url)],
            Target::Cluster(nodes) => nodes.iter().map(|url| redact_url(url)).collect(),
        };
        f.debug_struct("RedisStoreBuilder")
            .field("urls", &urls)
            .field("cluster", &matches!(self.target, Target::Cluster(_)))
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("retry_after_failure", &self.retry_after_failure)
            .field("tls_root_certificates", &self.tls_root.is_some())
            .field("tls_client_certificate", &self.tls_client.is_some())
            .finish()
    }
}

impl RedisStoreBuilder {
    pub(super) fn new(target: Target) -> Self {
        Self {
            target,
            prefix: String::new(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            retry_after_failure: DEFAULT_RETRY_AFTER_FAILURE,
            tls_root: None,
            tls_client: None,
        }
    }

    /// A prefix in front of every key (default: none), e.g. `shop:`, so that several apps or
    /// environments can share one Redis database. Braces may only form one Redis Cluster hash
    /// tag (`{shop}:`, which puts all of the app's keys in one slot); [`connect`](Self::connect)
    /// refuses any other brace, which would make a credential and its lock hash to different
    /// slots (`CROSSSLOT` on every refresh).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long establishing a connection may take (default 300 ms).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one command may wait for its answer (default 500 ms).
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// How long Redis is skipped after a failure, every command failing at once in the meantime
    /// (default 1 s). The first command after the pause tries Redis again.
    pub fn retry_after_failure(mut self, pause: Duration) -> Self {
        self.retry_after_failure = pause;
        self
    }

    /// For `rediss://`: trust the CA certificate(s) in `pem` (PEM text, e.g. the contents of the
    /// `ca.crt` a managed Redis provides) instead of the Mozilla roots built in.
    pub fn tls_root_certificates(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_root = Some(pem.into());
        self
    }

    /// For `rediss://` servers that ask for a client certificate (`tls-auth-clients yes`): the
    /// certificate chain and its private key, both PEM. The key is kept out of `Debug` output
    /// and error messages.
    pub fn tls_client_certificate(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.tls_client = Some(ClientIdentity {
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
        });
        self
    }

    /// Connects.
    ///
    /// # Errors
    /// As [`RedisStore::connect`] (and [`RedisStore::connect_cluster`] for a cluster);
    /// [`Error::Config`] for TLS certificates given with a `redis://` URL, or that are not PEM,
    /// and for a [prefix](Self::prefix) with a brace that forms no hash tag.
    pub async fn connect(self) -> Result<RedisStore> {
        if let Some(problem) = super::super::store::key_prefix_problem(&self.prefix) {
            return Err(Error::config("RedisStoreBuilder::prefix", problem));
        }
        let op_timeout = self.connect_timeout.saturating_add(self.response_timeout);
        let (server, connecting) = match &self.target {
            Target::Server(url) => {
                let info = parse_url(url)?;
                let server = describe(&info);
                let connecting = self.connect_server(info, server.clone()).boxed();
                (server, connecting)
            }
            Target::Cluster(nodes) => {
                let infos = parse_cluster_urls(nodes)?;
                let server = format!(
                    "redis cluster [{}]",
                    infos
                        .iter()
                        .map(|info| describe_addr(&info.addr))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                let connecting = self.connect_cluster(infos, server.clone()).boxed();
                (server, connecting)
            }
        };
        let conn = tokio::time::timeout(op_timeout, connecting)
            .await
            .map_err(|_| {
                Error::Store(format!(
                    "cannot connect to Redis at {server}: no answer within {op_timeout:?}"
                ))
            })??;
        tracing::debug!(server = %server, "connected to Redis");
        Ok(RedisStore {
            conn,
            prefix: self.prefix,
            shared: Arc::new(Shared {
                server,
                op_timeout,
                retry_after_failure: self.retry_after_failure,
                health: Mutex::new(Health::default()),
                expire_if: Script::new(EXPIRE_IF_SCRIPT),
                set_fenced: Script::new(SET_FENCED_SCRIPT),
                unlock: Script::new(UNLOCK_SCRIPT),
            }),
        })
    }

    /// The certificates for `rediss://`, when any were given; refuses them for `redis://`.
    fn certificates(&self, tls: bool) -> Result<Option<TlsCertificates>> {
        if self.tls_root.is_none() && self.tls_client.is_none() {
            return Ok(None);
        }
        if !tls {
            return Err(Error::config(
                "RedisStoreBuilder",
                "TLS certificates were given for a redis:// URL: use rediss:// to connect over TLS",
            ));
        }
        if let Some(pem) = &self.tls_root {
            check_pem("tls_root_certificates", pem, "CERTIFICATE")?;
        }
        if let Some(identity) = &self.tls_client {
            check_pem("tls_client_certificate", &identity.cert_pem, "CERTIFICATE")?;
            check_pem("tls_client_certificate", &identity.key_pem, "PRIVATE KEY")?;
        }
        Ok(Some(TlsCertificates {
            client_tls: self.tls_client.as_ref().map(|identity| ClientTlsConfig {
                client_cert: identity.cert_pem.clone(),
                client_key: identity.key_pem.clone(),
            }),
            root_cert: self.tls_root.clone(),
        }))
    }

    async fn connect_server(&self, info: ConnectionInfo, server: String) -> Result<Connection> {
        let tls = matches!(info.addr, ConnectionAddr::TcpTls { .. });
        if tls {
            install_crypto_provider();
        }
        let client = match self.certificates(tls)? {
            Some(certificates) => redis::Client::build_with_tls(info, certificates),
            None => redis::Client::open(info),
        }
        .map_err(|e| Error::config("RedisStoreBuilder", format!("invalid Redis settings: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.connect_timeout)
            .set_response_timeout(self.response_timeout)
            // One attempt per (re)connection: the store's own pause paces the next ones.
            .set_number_of_retries(0);
        let manager = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| Error::Store(format!("cannot connect to Redis at {server}: {e}")))?;
        Ok(Connection::Server(manager))
    }

    async fn connect_cluster(
        &self,
        nodes: Vec<ConnectionInfo>,
        server: String,
    ) -> Result<Connection> {
        let tls = matches!(nodes[0].addr, ConnectionAddr::TcpTls { .. });
        if tls {
            install_crypto_provider();
        }
        let certificates = self.certificates(tls)?;
        let mut builder = ClusterClientBuilder::new(nodes)
            .connection_timeout(self.connect_timeout)
            .response_timeout(self.response_timeout)
            // Enough to follow a redirection or a failover; the store's pause paces the rest.
            .retries(2)
            .min_retry_wait(10)
            .max_retry_wait(100);
        if let Some(certificates) = certificates {
            builder = builder.certs(certificates);
        }
        let client = builder.build().map_err(|e| {
            Error::config(
                "RedisStoreBuilder",
                format!("invalid Redis Cluster settings: {e}"),
            )
        })?;
        let conn = client
            .get_async_connection()
            .await
            .map_err(|e| Error::Store(format!("cannot connect to Redis at {server}: {e}")))?;
        Ok(Connection::Cluster(conn))
    }
}

/// Makes ring rustls's process-wide provider when none is set, so that the Redis client's
/// `rustls::ClientConfig::builder()` finds one even when another crate of the application has
/// enabled a second provider (rustls then picks none by itself). An application that installs
/// its own provider first keeps it.
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing the race to another thread installing one is fine: a provider is set.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Refuses a certificate or key that is not PEM with at least one `-----BEGIN …{label}-----`
/// block (without quoting its content).
fn check_pem(setting: &'static str, pem: &[u8], label: &str) -> Result<()> {
    let text = String::from_utf8_lossy(pem);
    let has_block = text.lines().any(|line| {
        line.starts_with("-----BEGIN ") && line.trim_end().ends_with(&format!("{label}-----"))
    });
    if has_block {
        Ok(())
    } else {
        Err(Error::config(
            "RedisStoreBuilder",
            format!("{setting}: expected PEM with a -----BEGIN …{label}----- block"),
        ))
    }
}

/// Parses a Redis URL; refuses `#insecure` (TLS without verification).
pub(super) fn parse_url(url: &str) -> Result<ConnectionInfo> {
    let info = url.into_connection_info().map_err(|e| {
        Error::config(
            "RedisStore::connect",
            format!("invalid Redis URL {}: {e}", redact_url(url)),
        )
    })?;
    if let ConnectionAddr::TcpTls { insecure: true, .. } = info.addr {
        return Err(Error::config(
            "RedisStore::connect",
            format!(
                "{}: TLS without certificate verification is not supported; give your CA with \
                 RedisStoreBuilder::tls_root_certificates instead of #insecure",
                redact_url(url)
            ),
        ));
    }
    Ok(info)
}

/// Parses the nodes of a cluster: at least one, TCP, all TLS or none, database 0.
pub(super) fn parse_cluster_urls(nodes: &[String]) -> Result<Vec<ConnectionInfo>> {
    const SETTING: &str = "RedisStore::cluster_builder";
    if nodes.is_empty() {
        return Err(Error::config(SETTING, "no cluster node given"));
    }
    let infos = nodes
        .iter()
        .map(|url| parse_url(url))
        .collect::<Result<Vec<_>>>()?;
    let tls = |info: &ConnectionInfo| matches!(info.addr, ConnectionAddr::TcpTls { .. });
    for (info, url) in infos.iter().zip(nodes) {
        if matches!(info.addr, ConnectionAddr::Unix(_)) {
            return Err(Error::config(
                SETTING,
                format!(
                    "{}: a cluster node is reached over TCP, not a Unix socket",
                    redact_url(url)
                ),
            ));
        }
        if tls(info) != tls(&infos[0]) {
            return Err(Error::config(
                SETTING,
                "the cluster nodes mix redis:// and rediss://: use one scheme for all",
            ));
        }
        if info.redis.db != 0 {
            return Err(Error::config(
                SETTING,
                format!(
                    "{}: a Redis Cluster has only database 0; use a key prefix to separate apps",
                    redact_url(url)
                ),
            ));
        }
    }
    Ok(infos)
}

/// `redis://host:port/db` (`rediss://` over TLS, or `unix:path?db=N`), never the credentials.
pub(super) fn describe(info: &ConnectionInfo) -> String {
    match &info.addr {
        ConnectionAddr::Unix(path) => format!("unix:{}?db={}", path.display(), info.redis.db),
        addr => format!("{}/{}", describe_addr(addr), info.redis.db),
    }
}

/// `redis://host:port` or `rediss://host:port`.
pub(super) fn describe_addr(addr: &ConnectionAddr) -> String {
    match addr {
        ConnectionAddr::TcpTls { .. } => format!("rediss://{addr}"),
        ConnectionAddr::Unix(path) => format!("unix:{}", path.display()),
        ConnectionAddr::Tcp(..) => format!("redis://{addr}"),
    }
}

/// The URL with any password replaced, for `Debug` and errors.
pub(super) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("redacted"));
            }
            let has_pass_param = parsed.query_pairs().any(|(k, _)| k == "pass");
            if has_pass_param {
                parsed.set_query(None);
            }
            parsed.to_string()
        }
        Err(_) => "(not a URL)".to_owned(),
    }
}
