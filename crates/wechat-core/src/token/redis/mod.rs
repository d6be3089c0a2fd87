//! [`RedisStore`]: a [`TokenStore`] in Redis, shared by every instance of an app.
//!
//! WeChat issues one basic access token per app, and each `cgi-bin/token` call retires the
//! previous token five minutes later: instances that each fetch their own token end up rejecting
//! each other's (errcode 40001). With a `RedisStore` every instance reads the same token and
//! jsapi_ticket, and one instance at a time refreshes them.
//!
//! Switching from the default in-process store is one line:
//!
//! ```no_run
//! use std::sync::Arc;
//! use wechat_core::{Config, build_http_client};
//! use wechat_core::token::{RedisStore, Tokens};
//!
//! # async fn run() -> wechat_core::Result<()> {
//! let config = Config::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef");
//! let http = build_http_client(&config)?;
//! let tokens = Tokens::new(&config, http, Arc::new(RedisStore::connect("redis://127.0.0.1:6379/").await?));
//!
//! let ticket = tokens.jsapi_ticket().await?;
//! # let _ = ticket;
//! # Ok(())
//! # }
//! ```
//!
//! The key layout, the refresh lock and the behaviour when Redis is unreachable are described on
//! [`RedisStore`].

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{
    ClientTlsConfig, Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, Pipeline, RedisError,
    RedisFuture, Script, TlsCertificates, Value,
};
use serde::{Deserialize, Serialize};

use super::store::{LockLease, StoredToken, TokenStore};
use crate::{Error, Result};

/// Default bound on establishing a connection.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
/// Default bound on one command's answer.
const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
/// Default pause after a failure during which Redis is not asked.
const DEFAULT_RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// Keys expire at most this far ahead (a guard against absurd `expires_at` values).
const MAX_KEY_LIFETIME_MS: u64 = 30 * 24 * 3600 * 1000;

/// Deletes `KEYS[1]` if it holds a credential whose `value` is `ARGV[1]`; returns 1 if it did.
const EXPIRE_IF_SCRIPT: &str = r"
local raw = redis.pcall('GET', KEYS[1])
if type(raw) ~= 'string' then return 0 end
local ok, stored = pcall(cjson.decode, raw)
if ok and type(stored) == 'table' and stored.value == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
";

/// The fenced write: sets `KEYS[1]` to `ARGV[1]` for `ARGV[3]` ms when the lock `KEYS[2]` holds
/// the lease id `ARGV[4]` (empty: no lease), or when the stored credential expires before
/// `ARGV[2]` (unix seconds); returns 1 if it wrote.
const SET_FENCED_SCRIPT: &str = r"
local function write()
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  return 1
end
if ARGV[4] ~= '' and redis.call('GET', KEYS[2]) == ARGV[4] then return write() end
local raw = redis.pcall('GET', KEYS[1])
if type(raw) == 'string' then
  local ok, stored = pcall(cjson.decode, raw)
  if ok and type(stored) == 'table' and type(stored.expires_at) == 'number'
     and type(stored.value) == 'string' and stored.value ~= ''
     and stored.expires_at >= tonumber(ARGV[2]) then
    return 0
  end
end
return write()
";

/// Deletes the lock `KEYS[1]` if it still holds the lease id `ARGV[1]`.
const UNLOCK_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// A [`TokenStore`] in Redis, for several instances of an app sharing one access token and
/// jsapi_ticket: `Tokens::new(&config, http, Arc::new(RedisStore::connect(url).await?))`.
///
/// Less common settings (a key prefix, timeouts) go through [`RedisStore::builder`]:
///
/// ```no_run
/// use std::time::Duration;
/// use wechat_core::token::RedisStore;
///
/// # async fn run() -> wechat_core::Result<()> {
/// let store = RedisStore::builder("redis://:password@redis.internal:6379/2")
///     .prefix("shop:")
///     .response_timeout(Duration::from_millis(300))
///     .connect()
///     .await?;
/// # let _ = store;
/// # Ok(())
/// # }
/// ```
///
/// # What is stored
///
/// Each credential is one string key, `{store prefix}{Tokens key prefix}{kind}:{appid}`; with the
/// defaults (no store prefix, [`Tokens`](crate::token::Tokens) prefix `wechat:`) these are
/// `wechat:access_token:{appid}` and `wechat:jsapi_ticket:{appid}`. The value is JSON,
/// `{"value":"<credential>","expires_at":<unix seconds>}`, and the key carries a Redis expiry at
/// `expires_at`, so Redis drops it on its own. A central service written in another language can
/// fill these keys for processes in read-only mode. A value that is not such JSON is ignored with
/// a warning (and replaced by the next refresh), never handed out.
///
/// The refresh lock of a key `K` is `{K}:lock` (the key in braces, so that in a Redis Cluster the
/// lock is in the key's hash slot), taken with `SET {K}:lock {lease id} NX PX {lease}`
/// and released by a script that deletes it only while it still holds the caller's lease id. A
/// holder that dies leaves the lock to expire after its lease; another process then refreshes.
/// The refreshed credential is written by a script that writes only while the writer's lease
/// still holds the lock, or when the stored credential expires earlier, so that a process whose
/// lease ran out during a slow fetch cannot overwrite the newer credential of the process that
/// took over.
/// Compare-and-expire ([`TokenStore::expire_if`]) is a script too, so that a credential another
/// process has just replaced survives.
/// `K:unchanged` notes that WeChat, asked for a new credential ahead of expiry, returned the
/// current one again (the ticket endpoint and `cgi-bin/stable_token` may), so that the other
/// processes do not ask again before it expires.
///
/// # When Redis is unreachable
///
/// Every command is bounded (by default a 300 ms connect timeout and a 500 ms response timeout),
/// and after a failure the store skips Redis for a short pause (1 s by default) and answers
/// [`Error::Store`] at once, so that a Redis outage never makes callers wait for timeouts one after
/// another. [`Tokens`](crate::token::Tokens) survives that: it keeps serving its in-process copy, falls
/// back to its in-process single flight, logs one warning per outage, and uses Redis again as soon
/// as it answers. The connection is re-established in the background.
///
/// # Connection strings
///
/// | URL | what it reaches |
/// | --- | --- |
/// | `redis://host:6379/0`, `redis://:password@host:6379/2`, `redis://user:password@host/` | one server over TCP (database 0 by default) |
/// | `rediss://host:6380/0` | one server over TLS, its certificate checked against the Mozilla roots (webpki-roots) or, with [`RedisStoreBuilder::tls_root_certificates`], your own CA |
/// | `redis+unix:///run/redis.sock?db=1`, `unix:///run/redis.sock` | one server on a Unix socket |
/// | [`RedisStore::cluster_builder`]`(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"])` | a Redis Cluster, from one or more of its nodes (`rediss://` for TLS); database 0 only |
///
/// TLS is rustls with ring; the server's name must match its certificate (there is no switch
/// that turns verification off, and a `#insecure` URL is refused). A server that asks for client
/// certificates gets the ones given to [`RedisStoreBuilder::tls_client_certificate`].
///
/// # In a Redis Cluster
///
/// Each credential key and its lock live in one hash slot (the lock's name is the key in braces,
/// a hash tag), so the scripts above run on one node; different credentials spread over the
/// cluster. A [store prefix](RedisStoreBuilder::prefix) or `Tokens` key prefix may contain a hash
/// tag of its own (e.g. `{shop}:`), which then puts all of an app's keys on one slot; any other
/// brace in a prefix is refused when the store connects (or the `Tokens` are built), since the
/// cluster would refuse every locked write (`CROSSSLOT`). The cluster
/// client follows `MOVED`/`ASK` redirections and re-reads the slot map when a node fails over.
///
/// Cheap to clone: clones share the connection (and its health), and may use different prefixes
/// ([`with_prefix`](Self::with_prefix)).
#[derive(Clone)]
pub struct RedisStore {
    conn: Connection,
    prefix: String,
    shared: Arc<Shared>,
}

/// What the clones of one store share.
struct Shared {
    /// `redis://host:port/db` (or the cluster's nodes), without credentials, for errors and logs.
    server: String,
    /// Bound on one command, connection re-establishment included.
    op_timeout: Duration,
    retry_after_failure: Duration,
    health: Mutex<Health>,
    expire_if: Script,
    set_fenced: Script,
    unlock: Script,
}

/// Whether Redis is being skipped after a failure.
#[derive(Default)]
struct Health {
    /// While set and in the future, commands fail at once with `last_error`.
    skip_until: Option<tokio::time::Instant>,
    last_error: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("server", &self.shared.server)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the Redis server at `url` (e.g. `redis://127.0.0.1:6379/`,
    /// `redis://:password@host:6379/2`) with the default settings: no key prefix, a 300 ms
    /// connect timeout, a 500 ms response timeout.
    ///
    /// # Errors
    /// [`Error::Config`] for a URL that is not a Redis URL (or a `rediss://` one);
    /// [`Error::Store`] when the server cannot be reached within the connect timeout or refuses
    /// the credentials. Neither message contains the password.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder(url).connect().await
    }

    /// A builder for a store on one server with non-default settings (key prefix, timeouts,
    /// TLS certificates).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder::new(Target::Server(url.into()))
    }

    /// Connects to a Redis Cluster through one or more of its nodes (`redis://host:port` or
    /// `rediss://host:port`, all with the same scheme and credentials), with the default settings.
    ///
    /// ```no_run
    /// use wechat_core::token::RedisStore;
    ///
    /// # async fn run() -> wechat_core::Result<()> {
    /// let store = RedisStore::connect_cluster(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"]).await?;
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`RedisStore::connect`]; [`Error::Config`] also for no node, mixed schemes, or a
    /// database other than 0 (a cluster has only database 0).
    pub async fn connect_cluster<I, S>(nodes: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::cluster_builder(nodes).connect().await
    }

    /// A builder for a store on a Redis Cluster (from one or more of its nodes) with
    /// non-default settings.
    pub fn cluster_builder<I, S>(nodes: I) -> RedisStoreBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RedisStoreBuilder::new(Target::Cluster(nodes.into_iter().map(Into::into).collect()))
    }

    /// The same store (same connection) with every key prefixed by `prefix`, e.g. `shop:`, so
    /// that several apps or environments can share one Redis database.
    ///
    /// # Errors
    /// [`Error::Config`] for a prefix with a brace that forms no Redis Cluster hash tag (see
    /// [`RedisStoreBuilder::prefix`]).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Result<Self> {
        let prefix = prefix.into();
        if let Some(problem) = super::store::key_prefix_problem(&prefix) {
            return Err(Error::config("RedisStore::with_prefix", problem));
        }
        self.prefix = prefix;
        Ok(self)
    }

    /// The prefix in front of every key (empty by default).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The server, as `redis://host:port/db` (`rediss://` over TLS; `redis cluster [host:port,
    /// …]` for a cluster), without credentials.
    pub fn server(&self) -> &str {
        &self.shared.server
    }

    fn redis_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Runs one Redis command (made by `command` on a connection) under the store's bounds and
    /// failure pause. A command that finds the connection dead (Redis restarted since the last
    /// command: broken pipe, reset, or a reconnection that failed while it was down) is sent
    /// once more, on the connection the manager re-establishes, so that the first command after
    /// a restart does not fail for nothing.
    async fn run<T, Fut>(&self, op: &'static str, command: impl Fn(Connection) -> Fut) -> Result<T>
    where
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        self.admit()?;
        let attempts = async {
            match command(self.conn.clone()).await {
                // The manager answers the first command after a dead connection (or after a
                // reconnection that failed while Redis was down) with that error, and
                // reconnects: one more attempt reaches a Redis that is back.
                Err(error)
                    if error.is_connection_dropped()
                        || error.is_connection_refusal()
                        || error.is_io_error()
                        || error.is_unrecoverable_error() =>
                {
                    tracing::debug!(server = %self.shared.server, op, error = %error, "Redis connection dropped; sending the command again on a new one");
                    command(self.conn.clone()).await
                }
                other => other,
            }
        };
        match tokio::time::timeout(self.shared.op_timeout.saturating_mul(2), attempts).await {
            Ok(Ok(answer)) => {
                self.answered();
                Ok(answer)
            }
            Ok(Err(error)) => {
                let message = format!("Redis at {}: {op} failed: {error}", self.shared.server);
                if is_outage(&error) {
                    self.failed(&message);
                } else {
                    // Redis answered (with an error): the connection is fine.
                    self.answered();
                }
                Err(Error::Store(message))
            }
            Err(_elapsed) => {
                let message = format!(
                    "Redis at {}: {op} got no answer within {:?}",
                    self.shared.server,
                    self.shared.op_timeout.saturating_mul(2)
                );
                self.failed(&message);
                Err(Error::Store(message))
            }
        }
    }

    /// Fails at once during the pause after a failure; the first caller after the pause probes
    /// Redis (the others keep skipping it until that probe's outcome is known).
    fn admit(&self) -> Result<()> {
        let mut health = self
            .shared
            .health
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(until) = health.skip_until else {
            return Ok(());
        };
        let now = tokio::time::Instant::now();
        if now < until {
            return Err(Error::Store(format!(
                "{} (Redis is skipped for up to {:?} after a failure)",
                health.last_error, self.shared.retry_after_failure
            )));
        }
        health.skip_until = Some(now + self.shared.op_timeout + self.shared.retry_after_failure);
        Ok(())
    }

    fn answered(&self) {
        let mut health = self
            .shared
            .health
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if health.skip_until.take().is_some() {
            tracing::debug!(server = %self.shared.server, "Redis answers again");
        }
    }

    fn failed(&self, message: &str) {
        let mut health = self
            .shared
            .health
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if health.skip_until.is_none() {
            // The token managers log one warning per outage; this is the detail.
            tracing::debug!(server = %self.shared.server, error = message, "Redis failed; skipping it briefly");
        }
        health.skip_until = Some(tokio::time::Instant::now() + self.shared.retry_after_failure);
        message.clone_into(&mut health.last_error);
    }
}

/// Whether a Redis error means the server could not be reached (rather than that it answered
/// with an error).
fn is_outage(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_unrecoverable_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
}

impl TokenStore for RedisStore {
    fn describe_key(&self, key: &str) -> String {
        format!(
            "Redis key {} at {}",
            self.redis_key(key),
            self.shared.server
        )
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>>> {
        Box::pin(async move {
            let redis_key = self.redis_key(key);
            let command = |mut conn: Connection| {
                let redis_key = redis_key.as_str();
                async move {
                    match redis::cmd("GET")
                        .arg(redis_key)
                        .query_async::<Option<Vec<u8>>>(&mut conn)
                        .await
                    {
                        // Another type of value (a hash...) is just as untrustworthy as bad JSON.
                        Err(e) if e.code() == Some("WRONGTYPE") => Ok(Some(Vec::new())),
                        other => other,
                    }
                }
            };
            let Some(raw) = self.run("GET", command).await? else {
                return Ok(None);
            };
            match decode(&raw) {
                Ok(token) => Ok(Some(token)),
                Err(reason) => {
                    tracing::warn!(
                        key = %redis_key,
                        reason,
                        "ignoring a value in Redis that is not a credential stored by this crate; the next refresh replaces it"
                    );
                    Ok(None)
                }
            }
        })
    }

    fn set<'a>(&'a self, key: &'a str, token: &'a StoredToken) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let redis_key = self.redis_key(key);
            let (op, command) = match ttl_millis(token.expires_at(), unix_millis_now()) {
                Some(ttl) => {
                    let mut command = redis::cmd("SET");
                    command
                        .arg(&redis_key)
                        .arg(encode(token))
                        .arg("PX")
                        .arg(ttl);
                    ("SET", command)
                }
                // Already expired: storing it would only hide that the key needs a refresh.
                None => {
                    let mut command = redis::cmd("DEL");
                    command.arg(&redis_key);
                    ("DEL", command)
                }
            };
            self.run(op, |mut conn| {
                let command = &command;
                async move { command.query_async::<()>(&mut conn).await }
            })
            .await
        })
    }

    fn set_fenced<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
        lease: Option<&'a LockLease>,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            // Already expired: nothing worth writing.
            let Some(ttl) = ttl_millis(token.expires_at(), unix_millis_now()) else {
                return Ok(false);
            };
            let redis_key = self.redis_key(key);
            let mut invocation = self.shared.set_fenced.key(&redis_key);
            invocation
                .key(lock_key(&redis_key))
                .arg(encode(token))
                .arg(token.expires_at())
                .arg(ttl)
                .arg(lease.map_or("", LockLease::id));
            let written: i64 = self
                .run("fenced SET", |mut conn| {
                    let invocation = &invocation;
                    async move { invocation.invoke_async(&mut conn).await }
                })
                .await?;
            Ok(written == 1)
        })
    }

    fn expire_if<'a>(&'a self, key: &'a str, value: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let redis_key = self.redis_key(key);
            let mut invocation = self.shared.expire_if.key(&redis_key);
            invocation.arg(value);
            let deleted: i64 = self
                .run("compare-and-expire", |mut conn| {
                    let invocation = &invocation;
                    async move { invocation.invoke_async(&mut conn).await }
                })
                .await?;
            Ok(deleted == 1)
        })
    }

    fn try_lock<'a>(
        &'a self,
        key: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Option<LockLease>>> {
        Box::pin(async move {
            let lock_key = lock_key(&self.redis_key(key));
            let candidate = LockLease::random();
            let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1);
            let mut command = redis::cmd("SET");
            command
                .arg(&lock_key)
                .arg(candidate.id())
                .arg("NX")
                .arg("PX")
                .arg(lease_ms);
            let granted = self
                .run("SET NX (lock)", |mut conn| {
                    let command = &command;
                    async move { command.query_async::<Option<String>>(&mut conn).await }
                })
                .await?;
            Ok(granted.map(|_| candidate))
        })
    }

    fn unlock<'a>(&'a self, key: &'a str, lease: &'a LockLease) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let lock_key = lock_key(&self.redis_key(key));
            let mut invocation = self.shared.unlock.key(&lock_key);
            invocation.arg(lease.id());
            let _released: i64 = self
                .run("unlock", |mut conn| {
                    let invocation = &invocation;
                    async move { invocation.invoke_async(&mut conn).await }
                })
                .await?;
            Ok(())
        })
    }
}

/// The connection: to one server through the connection manager (which reconnects after a
/// failure), or to a cluster (which reconnects to its nodes and follows the slot map).
#[derive(Clone)]
enum Connection {
    Server(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Server(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Server(conn) => conn.req_packed_commands(cmd, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Server(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

/// The JSON form of a stored credential.
#[derive(Serialize, Deserialize)]
struct Wire<'a> {
    #[serde(borrow)]
    value: std::borrow::Cow<'a, str>,
    expires_at: u64,
}

fn encode(token: &StoredToken) -> String {
    let wire = Wire {
        value: token.value().into(),
        expires_at: token.expires_at(),
    };
    // Serialising a string and an integer cannot fail; an empty object would be ignored on read.
    serde_json::to_string(&wire).unwrap_or_default()
}

/// Parses a stored credential; the error says why it is not one (without its content).
fn decode(raw: &[u8]) -> std::result::Result<StoredToken, &'static str> {
    let wire: Wire<'_> = serde_json::from_slice(raw).map_err(|_| "not the expected JSON")?;
    if wire.value.is_empty() {
        return Err("empty credential");
    }
    Ok(StoredToken::new(wire.value.into_owned(), wire.expires_at))
}

/// The Redis expiry of a credential that expires at `expires_at` (unix seconds), or `None` when
/// it has already expired.
fn ttl_millis(expires_at: u64, now_millis: u64) -> Option<u64> {
    let remaining = expires_at.saturating_mul(1000).checked_sub(now_millis)?;
    (remaining > 0).then(|| remaining.min(MAX_KEY_LIFETIME_MS))
}

fn unix_millis_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The name of `redis_key`'s refresh lock: `{K}:lock`, in the key's hash slot. A key that
/// already has a hash tag (`…{tag}…`) keeps it: `K:lock` is then in the same slot.
fn lock_key(redis_key: &str) -> String {
    if has_hash_tag(redis_key) || redis_key.contains('}') {
        format!("{redis_key}:lock")
    } else {
        format!("{{{redis_key}}}:lock")
    }
}

/// Whether Redis Cluster hashes only a part of `key`: a `{` followed, later, by a `}` with at
/// least one character between them.
fn has_hash_tag(key: &str) -> bool {
    key.find('{')
        .and_then(|open| key[open + 1..].find('}'))
        .is_some_and(|len| len > 0)
}

mod connect;
#[cfg(test)]
mod tests;

pub use connect::RedisStoreBuilder;
use connect::Target;
