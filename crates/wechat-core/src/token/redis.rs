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

use futures_util::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisError, Script};
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
/// The refresh lock of a key is `{key}:lock`, taken with `SET {key}:lock {lease id} NX PX {lease}`
/// and released by a script that deletes it only while it still holds the caller's lease id. A
/// holder that dies leaves the lock to expire after its lease; another process then refreshes.
/// The refreshed credential is written by a script that writes only while the writer's lease
/// still holds the lock, or when the stored credential expires earlier, so that a process whose
/// lease ran out during a slow fetch cannot overwrite the newer credential of the process that
/// took over.
/// Compare-and-expire ([`TokenStore::expire_if`]) is a script too, so that a credential another
/// process has just replaced survives.
/// `{key}:unchanged` notes that WeChat, asked for a new credential ahead of expiry, returned the
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
/// Plain `redis://` (TCP) and `redis+unix://`/`unix://` URLs are supported; `rediss://` (TLS) is
/// not (the Redis client is built without TLS): reach Redis over a private network or a tunnel.
///
/// Cheap to clone: clones share the connection (and its health), and may use different prefixes
/// ([`with_prefix`](Self::with_prefix)).
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    shared: Arc<Shared>,
}

/// What the clones of one store share.
struct Shared {
    /// `redis://host:port/db`, without credentials, for errors and logs.
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

    /// A builder for a store with non-default settings (key prefix, timeouts).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            prefix: String::new(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            retry_after_failure: DEFAULT_RETRY_AFTER_FAILURE,
        }
    }

    /// The same store (same connection) with every key prefixed by `prefix`, e.g. `shop:`, so
    /// that several apps or environments can share one Redis database.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The prefix in front of every key (empty by default).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The server, as `redis://host:port/db` without credentials.
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
    async fn run<T, Fut>(
        &self,
        op: &'static str,
        command: impl Fn(ConnectionManager) -> Fut,
    ) -> Result<T>
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
            let command = |mut conn: ConnectionManager| {
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

/// Builds a [`RedisStore`] with non-default settings; made by [`RedisStore::builder`].
#[must_use]
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    connect_timeout: Duration,
    response_timeout: Duration,
    retry_after_failure: Duration,
}

impl std::fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("url", &redact_url(&self.url))
            .field("prefix", &self.prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("retry_after_failure", &self.retry_after_failure)
            .finish()
    }
}

impl RedisStoreBuilder {
    /// A prefix in front of every key (default: none), e.g. `shop:`, so that several apps or
    /// environments can share one Redis database.
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

    /// Connects.
    ///
    /// # Errors
    /// As [`RedisStore::connect`].
    pub async fn connect(self) -> Result<RedisStore> {
        let info = parse_url(&self.url)?;
        let server = describe(&info);
        let client = redis::Client::open(info).map_err(|e| {
            Error::config(
                "RedisStoreBuilder",
                format!("invalid Redis URL for {server}: {e}"),
            )
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.connect_timeout)
            .set_response_timeout(self.response_timeout)
            // One attempt per (re)connection: the store's own pause paces the next ones.
            .set_number_of_retries(0);
        let op_timeout = self.connect_timeout.saturating_add(self.response_timeout);
        let conn = tokio::time::timeout(
            op_timeout,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        .map_err(|_| {
            Error::Store(format!(
                "cannot connect to Redis at {server}: no answer within {op_timeout:?}"
            ))
        })?
        .map_err(|e| Error::Store(format!("cannot connect to Redis at {server}: {e}")))?;
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

fn lock_key(redis_key: &str) -> String {
    format!("{redis_key}:lock")
}

/// Parses a Redis URL, refusing TLS ones (the client is built without TLS).
fn parse_url(url: &str) -> Result<ConnectionInfo> {
    let scheme = url
        .split_once("://")
        .map(|(scheme, _)| scheme.to_ascii_lowercase());
    if matches!(scheme.as_deref(), Some("rediss" | "valkeys")) {
        return Err(Error::config(
            "RedisStore::connect",
            "rediss:// (Redis over TLS) is not supported: use redis:// on a private network or through a TLS tunnel",
        ));
    }
    url.into_connection_info().map_err(|e| {
        Error::config(
            "RedisStore::connect",
            format!("invalid Redis URL {}: {e}", redact_url(url)),
        )
    })
}

/// `redis://host:port/db` (or `unix:path?db=N`), never the credentials.
fn describe(info: &ConnectionInfo) -> String {
    match &info.addr {
        ConnectionAddr::Unix(path) => format!("unix:{}?db={}", path.display(), info.redis.db),
        addr => format!("redis://{addr}/{}", info.redis.db),
    }
}

/// The URL with any password replaced, for `Debug` and errors.
fn redact_url(url: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_round_trip_as_json() {
        let token = StoredToken::new("tok\"en", 1_700_000_000);
        let raw = encode(&token);
        assert_eq!(raw, r#"{"value":"tok\"en","expires_at":1700000000}"#);
        assert_eq!(decode(raw.as_bytes()), Ok(token));
    }

    #[test]
    fn unparsable_values_are_refused() {
        for raw in [
            &b"plain-token"[..],
            b"",
            b"{}",
            br#"{"value":"","expires_at":1}"#,
            br#"{"value":"x","expires_at":-1}"#,
            br#"{"value":"x"}"#,
            b"\xff\xfe",
        ] {
            assert!(decode(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn ttl_follows_the_expiry() {
        assert_eq!(ttl_millis(100, 40_000), Some(60_000));
        assert_eq!(ttl_millis(100, 99_999), Some(1));
        assert_eq!(ttl_millis(100, 100_000), None);
        assert_eq!(ttl_millis(100, 200_000), None);
        assert_eq!(ttl_millis(u64::MAX, 0), Some(MAX_KEY_LIFETIME_MS));
    }

    #[test]
    fn urls_are_described_without_passwords() {
        let info = parse_url("redis://user:hunter2@redis.internal:6380/3").unwrap();
        assert_eq!(describe(&info), "redis://redis.internal:6380/3");
        assert_eq!(
            describe(&parse_url("redis://127.0.0.1/").unwrap()),
            "redis://127.0.0.1:6379/0"
        );
        let redacted = redact_url("redis://user:hunter2@redis.internal:6380/3");
        assert!(!redacted.contains("hunter2"), "{redacted}");
        let redacted = redact_url("unix:///run/redis.sock?db=1&pass=hunter2");
        assert!(!redacted.contains("hunter2"), "{redacted}");
        let builder = RedisStore::builder("redis://:hunter2@redis.internal/").prefix("p:");
        assert!(!format!("{builder:?}").contains("hunter2"));
    }

    #[test]
    fn bad_urls_are_configuration_errors() {
        let err = parse_url("rediss://:hunter2@redis.internal/").unwrap_err();
        assert!(
            matches!(err, Error::Config(ref m) if m.problem().contains("TLS")),
            "{err}"
        );
        let err = parse_url("http://:hunter2@redis.internal/").unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(parse_url("redis://host/notanumber").is_err());
    }

    #[tokio::test]
    async fn an_unreachable_server_fails_fast() {
        // Nothing listens on port 1 of localhost: the connection is refused at once.
        let started = std::time::Instant::now();
        let err = RedisStore::connect("redis://:hunter2@127.0.0.1:1/")
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let msg = err.to_string();
        assert!(matches!(err, Error::Store(_)), "{msg}");
        assert!(msg.contains("redis://127.0.0.1:1/0"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }
}
