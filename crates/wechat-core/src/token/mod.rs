//! The basic access token and the jsapi_ticket, cached in a shared [`TokenStore`].
//!
//! [`Tokens`] implements WeChat's
//! [access token](https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Get_access_token.html)
//! (`cgi-bin/token`, or the
//! [stable token](https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/getStableAccessToken.html),
//! `cgi-bin/stable_token`) and the JS-SDK
//! [jsapi_ticket](https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/JS-SDK.html#62)
//! (`cgi-bin/ticket/getticket`) rules with one mechanism for both (see its docs for the
//! guarantees). Processes share them through a [`TokenStore`]: [`MemoryStore`] in one process,
//! `RedisStore` (feature `redis`) across several.
//!
//! ```no_run
//! use std::sync::Arc;
//! use wechat_core::{Config, build_http_client};
//! use wechat_core::token::{MemoryStore, Tokens};
//!
//! # async fn run() -> wechat_core::Result<()> {
//! let config = Config::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef");
//! let http = build_http_client(&config)?;
//! // One handle per app, shared by the whole process (it is cheap to clone).
//! let tokens = Tokens::new(&config, http, Arc::new(MemoryStore::new()));
//!
//! let token = tokens.access_token().await?;
//! let ticket = tokens.jsapi_ticket().await?;
//!
//! // The object a page passes to wx.config, for the URL the page reports (location.href).
//! let wx_config = tokens
//!     .jssdk_config("https://example.com/shop?item=1#top", &["chooseWXPay"], &[])
//!     .await?;
//! assert_eq!(wx_config.signed_url(), "https://example.com/shop?item=1");
//! # let _ = (token, ticket);
//! # Ok(())
//! # }
//! ```

mod manager;
mod memory;
#[cfg(feature = "redis")]
mod redis;
mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use self::manager::{Fetch, Fetched, ManagerSettings, StoreHealth, TokenManager};
pub use self::memory::MemoryStore;
#[cfg(feature = "redis")]
pub use self::redis::{RedisStore, RedisStoreBuilder};
pub use self::store::{LockLease, StoredToken, TokenStore};
use crate::clock::Clock;
use crate::jssdk::JsSdkConfig;
use crate::transport::{JsonCall, OnBusy, call_json};
use crate::{
    AccessToken, AppId, AppSecret, Config, ConfigError, JsapiTicket, Result, TokenEndpoint,
};

/// The default prefix of store keys.
const DEFAULT_KEY_PREFIX: &str = "wechat:";
/// How long a read-only process waits for the central service by default.
const DEFAULT_READ_ONLY_WAIT: Duration = Duration::from_secs(2);

/// The basic access token and the jsapi_ticket of one Official Account, cached in a shared
/// [`TokenStore`].
///
/// Build one per app and share it (clones share everything). It implements WeChat's
/// [access token](https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Get_access_token.html)
/// (`cgi-bin/token`, or `cgi-bin/stable_token` per [`Config::with_token_endpoint`]) and
/// [jsapi_ticket](https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/JS-SDK.html)
/// (`cgi-bin/ticket/getticket`) rules with one mechanism for both:
///
/// - **One upstream request per refresh.** Any number of concurrent callers on a cold or expired
///   entry cause one request per process (single flight); processes sharing a store take its lock
///   so that one of them refreshes while the others wait for its value or keep the current one.
///   The wait is at most 3 s: then a caller gets the current credential, or
///   [`Error::TokenUnavailable`](crate::Error::TokenUnavailable) naming the lock. The store write
///   is fenced ([`TokenStore::set_fenced`]): a process whose lease ran out during a slow fetch
///   does not overwrite a newer credential, and adopts it instead.
/// - **Callers never wait in steady state.** The in-process copy is refreshed in the background
///   ahead of its expiry (in the last 5 minutes, or the last sixth of its lifetime if shorter);
///   the expiry comes from `expires_in`.
/// - **Rejected tokens.** [`call_with_token`](Self::call_with_token) retries a call once after
///   40001, 40014 or 42001, having invalidated the failed token only where it is still current
///   (compare-and-expire: a token another caller already replaced survives). `-1` is retried by
///   the HTTP layer with bounded backoff; 45009 and 40164 are never retried.
/// - **Failures never cost a refresh per call.** A failed refresh is remembered for 5 s (doubling
///   up to 60 s while it keeps failing): callers get the still-valid token, or the error. A
///   failing store logs one warning per outage (for both credentials) and the process falls
///   back to its own single flight until the store answers again.
/// - **Store outages on `cgi-bin/token`.** Every `cgi-bin/token` call retires the tokens other
///   processes hold, which a shared store normally hides. While the store is down, a process on
///   [`TokenEndpoint::Token`] fetches at most once every 10 minutes (callers in between get
///   [`Error::TokenUnavailable`](crate::Error::TokenUnavailable), which says so), so that a fleet
///   of 10 spends at most 1,440 of its 2,000 daily calls in a day-long outage.
///   [`TokenEndpoint::StableToken`], the default, has no such problem: every process gets the
///   same token.
/// - **stable_token.** After a rejection the token is first fetched normally; `force_refresh`
///   (which revokes the token for every process, 20 times a day) is sent only when WeChat hands
///   back the token it just rejected.
/// - **Unchanged credentials.** When WeChat, asked ahead of expiry, returns the current credential
///   again (`getticket` and `cgi-bin/stable_token` may), neither this process nor those sharing
///   its store ask again before it expires.
/// - **Read-only mode.** Where a central service owns the token,
///   [`TokensBuilder::read_only`] makes a process read both credentials from the shared store
///   only, never calling WeChat for them, with an error naming the key when the store holds no
///   usable value.
///
/// ```no_run
/// use std::sync::Arc;
/// use wechat_core::{Config, build_http_client};
/// use wechat_core::token::{MemoryStore, Tokens};
///
/// # async fn run() -> wechat_core::Result<()> {
/// let config = Config::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef");
/// let http = build_http_client(&config)?;
/// // One handle per app, shared by the whole process (it is cheap to clone). Several
/// // instances of an app share a store (Redis) instead of a MemoryStore each.
/// let tokens = Tokens::new(&config, http, Arc::new(MemoryStore::new()));
///
/// let token = tokens.access_token().await?;
/// let ticket = tokens.jsapi_ticket().await?;
///
/// // The object a page passes to wx.config, for the URL the page reports (location.href).
/// let wx_config = tokens
///     .jssdk_config("https://example.com/shop?item=1#top", &["chooseWXPay"], &[])
///     .await?;
/// assert_eq!(wx_config.signed_url(), "https://example.com/shop?item=1");
/// # let _ = (token, ticket);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Tokens {
    inner: Arc<TokensInner>,
}

struct TokensInner {
    appid: AppId,
    clock: Arc<dyn Clock>,
    access: TokenManager<AccessTokenFetcher>,
    ticket: TokenManager<TicketFetcher>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("appid", &self.inner.appid)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// Tokens for `config`'s app, fetched with `http` (see
    /// [`build_http_client`](crate::build_http_client)) and shared through `store`.
    pub fn new(config: &Config, http: reqwest::Client, store: Arc<dyn TokenStore>) -> Self {
        Self::builder(config, http).store(store).finish()
    }

    /// A builder for the less common settings: key prefix, clock, lock lease, read-only mode.
    pub fn builder(config: &Config, http: reqwest::Client) -> TokensBuilder {
        TokensBuilder {
            config: config.clone(),
            http,
            store: None,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            clock: crate::clock::system(),
            lock_lease: None,
            read_only: None,
        }
    }

    /// The app these tokens belong to.
    pub fn appid(&self) -> &AppId {
        &self.inner.appid
    }

    /// A valid basic access token.
    ///
    /// In steady state this returns the in-process copy without waiting.
    ///
    /// # Errors
    /// The fetch's error when no valid token is cached and fetching fails, e.g.
    /// [`ApiErrorKind::IpNotWhitelisted`](crate::ApiErrorKind::IpNotWhitelisted) (names the IP to whitelist),
    /// [`ApiErrorKind::InvalidAppSecret`](crate::ApiErrorKind::InvalidAppSecret),
    /// [`ApiErrorKind::QuotaExceeded`](crate::ApiErrorKind::QuotaExceeded). After a failure, callers get the same
    /// error for a few seconds without a new request (transport failures as
    /// [`Error::TokenUnavailable`](crate::Error::TokenUnavailable)).
    /// In [read-only mode](TokensBuilder::read_only),
    /// [`Error::TokenNotInStore`](crate::Error::TokenNotInStore) when the shared store holds no
    /// usable token.
    ///
    /// # Security
    /// The token grants API access to the account: never log it or send it to a browser.
    pub async fn access_token(&self) -> Result<AccessToken> {
        let cached = self.inner.access.get().await?;
        Ok(AccessToken::new(cached.value()))
    }

    /// A valid jsapi_ticket, fetched with the access token (refreshed and retried once when
    /// WeChat rejects it).
    ///
    /// # Errors
    /// As [`access_token`](Self::access_token), plus the ticket endpoint's errors.
    ///
    /// # Security
    /// Sign pages with it server-side; never send it to a browser.
    pub async fn jsapi_ticket(&self) -> Result<JsapiTicket> {
        let cached = self.inner.ticket.get().await?;
        Ok(JsapiTicket::new(cached.value()))
    }

    /// Runs `call` with a valid access token; when it fails with a rejected or expired token
    /// ([`Error::is_access_token_invalid`](crate::Error::is_access_token_invalid): 40001, 40014,
    /// 42001), invalidates exactly that token (compare-and-expire), gets a fresh one and runs
    /// `call` once more. `call` runs at most twice.
    ///
    /// ```no_run
    /// # async fn run(tokens: wechat_core::token::Tokens) -> wechat_core::Result<()> {
    /// let quota_left: u64 = tokens
    ///     .call_with_token(|token| async move {
    ///         // Send the request with `token.expose_secret()`; map a WeChat errcode with
    ///         // `wechat_core::Error::from_errcode("/cgi-bin/ticket/getticket", errcode, errmsg)`.
    ///         # let _ = token;
    ///         Ok(42)
    ///     })
    ///     .await?;
    /// # let _ = quota_left; Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// The error of getting a token, or of the last run of `call` (a second rejection comes back
    /// as [`ApiErrorKind::AccessTokenInvalid`](crate::ApiErrorKind::AccessTokenInvalid)).
    pub async fn call_with_token<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: FnMut(AccessToken) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        call_with_token(&self.inner.access, call).await
    }

    /// Forgets `failed` (a token WeChat rejected in a call made without
    /// [`call_with_token`](Self::call_with_token)) where it is still the current token, so that
    /// the next [`access_token`](Self::access_token) fetches a new one. A token another caller
    /// already replaced is kept. Returns whether `failed` was still current.
    pub async fn invalidate_access_token(&self, failed: &AccessToken) -> bool {
        self.inner.access.invalidate(failed.expose_secret()).await
    }

    /// The `wx.config` object for the page at `page_url` (the page's `location.href`; the
    /// fragment is dropped), signed with the jsapi_ticket, a random 16-character nonce and the
    /// current time.
    ///
    /// # Errors
    /// [`Error::InvalidPageUrl`](crate::Error::InvalidPageUrl) for a URL that cannot be signed
    /// (not http(s), HTML-escaped `&amp;`), or the ticket's errors.
    pub async fn jssdk_config(
        &self,
        page_url: &str,
        js_api_list: &[&str],
        open_tag_list: &[&str],
    ) -> Result<JsSdkConfig> {
        let url = crate::jssdk::jssdk_page_url(page_url)?;
        let ticket = self.jsapi_ticket().await?;
        let timestamp = self.inner.clock.now_unix_secs();
        Ok(JsSdkConfig::sign(
            self.inner.appid.clone(),
            &ticket,
            &url,
            &crate::jssdk::random_nonce(),
            timestamp,
        )?
        .with_js_api_list(js_api_list.iter().copied())
        .with_open_tag_list(open_tag_list.iter().copied()))
    }
}

/// Builds [`Tokens`] with non-default settings. Every setter takes its value;
/// [`build`](Self::build) checks them all.
#[must_use = "a builder does nothing until build() is called"]
pub struct TokensBuilder {
    config: Config,
    http: reqwest::Client,
    store: Option<Arc<dyn TokenStore>>,
    key_prefix: String,
    clock: Arc<dyn Clock>,
    lock_lease: Option<Duration>,
    read_only: Option<Duration>,
}

impl std::fmt::Debug for TokensBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokensBuilder")
            .field("appid", self.config.appid())
            .field("key_prefix", &self.key_prefix)
            .field("lock_lease", &self.lock_lease)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

impl TokensBuilder {
    /// The store shared with other processes (default: a new [`MemoryStore`]).
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The prefix of store keys (default `wechat:`); keys are `{prefix}access_token:{appid}`
    /// and `{prefix}jsapi_ticket:{appid}`. Braces may only form one Redis Cluster hash tag
    /// (`{shop}:`).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// The clock that decides expiry (default [`SystemClock`](crate::clock::SystemClock)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How long one process may hold the store's refresh lock before another takes over
    /// (default: three times the HTTP timeout plus 5 s, 35 s with the default timeout: a fetch
    /// makes up to three attempts). A holder whose lease runs out mid-fetch cannot overwrite a
    /// newer credential ([`TokenStore::set_fenced`]).
    pub fn lock_lease(mut self, lease: Duration) -> Self {
        self.lock_lease = Some(lease);
        self
    }

    /// Read-only mode, for setups where a central service owns the access token: this process
    /// reads the access token and the jsapi_ticket from the shared [`store`](Self::store) and
    /// never requests them from WeChat (`cgi-bin/token`, `cgi-bin/stable_token`,
    /// `cgi-bin/ticket/getticket`), nor writes the store. A credential WeChat rejects is dropped
    /// in process only, and the store is read again for the central service's next one.
    ///
    /// When the store holds no usable value, callers wait up to
    /// [`read_only_wait`](Self::read_only_wait) for the central service to store one, then get
    /// [`Error::TokenNotInStore`](crate::Error::TokenNotInStore), which names the key to fill; the
    /// next callers within a second get that error at once, unless the value has appeared.
    ///
    /// The central service keeps `{prefix}access_token:{appid}` and
    /// `{prefix}jsapi_ticket:{appid}` filled ahead of their expiry, e.g. with [`Tokens`] in the
    /// normal mode on the same store, or in the store's documented format (see the Redis store).
    ///
    /// ```no_run
    /// # #[cfg(feature = "redis")]
    /// # async fn run() -> wechat_core::Result<()> {
    /// use std::sync::Arc;
    /// use wechat_core::{Config, build_http_client};
    /// use wechat_core::token::{RedisStore, Tokens};
    ///
    /// let config = Config::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef");
    /// let tokens = Tokens::builder(&config, build_http_client(&config)?)
    ///     .store(Arc::new(RedisStore::connect("redis://127.0.0.1:6379/").await?))
    ///     .read_only()
    ///     .build()?;
    /// # let _ = tokens;
    /// # Ok(())
    /// # }
    /// ```
    pub fn read_only(mut self) -> Self {
        self.read_only.get_or_insert(DEFAULT_READ_ONLY_WAIT);
        self
    }

    /// Read-only mode (see [`read_only`](Self::read_only)), waiting up to `wait` (default 2 s)
    /// for the central service when the store holds no usable credential.
    pub fn read_only_wait(mut self, wait: Duration) -> Self {
        self.read_only = Some(wait);
        self
    }

    /// Checks the settings and returns the [`Tokens`] handle.
    ///
    /// # Errors
    /// [`ConfigError`] naming the setter: a key prefix longer than 64 bytes, holding spaces
    /// or control characters, or a brace that forms no hash tag, a lock lease under 1 second or over 10 minutes, a read-only wait
    /// over 1 minute.
    pub fn build(self) -> Result<Tokens, ConfigError> {
        if self.key_prefix.len() > 64 || !self.key_prefix.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::new(
                "TokensBuilder::key_prefix",
                format!(
                    "key prefix {:?} must be at most 64 printable ASCII characters without spaces",
                    self.key_prefix
                ),
            ));
        }
        if let Some(problem) = store::key_prefix_problem(&self.key_prefix) {
            return Err(ConfigError::new("TokensBuilder::key_prefix", problem));
        }
        if let Some(lease) = self.lock_lease {
            if !(Duration::from_secs(1)..=Duration::from_secs(600)).contains(&lease) {
                return Err(ConfigError::new(
                    "TokensBuilder::lock_lease",
                    format!("lock lease {lease:?} must be between 1 second and 10 minutes"),
                ));
            }
        }
        if let Some(wait) = self.read_only {
            if wait > Duration::from_secs(60) {
                return Err(ConfigError::new(
                    "TokensBuilder::read_only_wait",
                    format!("read-only wait {wait:?} must be at most 1 minute"),
                ));
            }
        }
        Ok(self.finish())
    }

    fn finish(self) -> Tokens {
        let Self {
            config,
            http,
            store,
            key_prefix,
            clock,
            lock_lease,
            read_only,
        } = self;
        let store = store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let lock_lease = lock_lease.unwrap_or_else(|| {
            config
                .timeout()
                .saturating_mul(3)
                .saturating_add(Duration::from_secs(5))
        });
        let appid = config.appid().clone();
        let api = config.base_urls().api.trim_end_matches('/').to_owned();
        let store_health = Arc::new(StoreHealth::default());
        let settings = |kind: &'static str| ManagerSettings {
            kind,
            key: format!("{key_prefix}{kind}:{appid}"),
            store: Arc::clone(&store),
            clock: Arc::clone(&clock),
            lock_lease,
            store_health: Arc::clone(&store_health),
            read_only,
        };
        let access = TokenManager::new(
            settings("access_token"),
            AccessTokenFetcher {
                http: http.clone(),
                api: api.clone(),
                appid: appid.clone(),
                secret: config.secret().clone(),
                endpoint: config.token_endpoint(),
            },
        );
        let ticket = TokenManager::new(
            settings("jsapi_ticket"),
            TicketFetcher {
                http,
                api,
                access: access.clone(),
            },
        );
        Tokens {
            inner: Arc::new(TokensInner {
                appid,
                clock,
                access,
                ticket,
            }),
        }
    }
}

/// Runs `call` with a token from `manager`; after a rejection, invalidates that token and runs
/// `call` once more with a fresh one.
async fn call_with_token<A, T, F, Fut>(manager: &TokenManager<A>, mut call: F) -> Result<T>
where
    A: Fetch,
    F: FnMut(AccessToken) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let token = manager.get().await?;
    match call(AccessToken::new(token.value())).await {
        Err(error) if error.is_access_token_invalid() => {
            tracing::info!(error = %error, "access token rejected; refreshing it and retrying once");
            manager.invalidate(token.value()).await;
            let fresh = manager.get_replacing(token.value()).await?;
            call(AccessToken::new(fresh.value())).await
        }
        other => other,
    }
}

/// `{"access_token": "...", "expires_in": 7200}` (both endpoints).
#[derive(Deserialize)]
struct AccessTokenReply {
    access_token: String,
    expires_in: u64,
}

/// The JSON body of `cgi-bin/stable_token`.
#[derive(Serialize)]
struct StableTokenRequest<'a> {
    grant_type: &'static str,
    appid: &'a str,
    secret: &'a str,
    force_refresh: bool,
}

/// Fetches the basic access token.
struct AccessTokenFetcher {
    http: reqwest::Client,
    api: String,
    appid: AppId,
    secret: AppSecret,
    endpoint: TokenEndpoint,
}

impl AccessTokenFetcher {
    /// `GET cgi-bin/token`: a new token on every call.
    async fn token(&self) -> Result<AccessTokenReply> {
        let query = [
            ("grant_type", "client_credential"),
            ("appid", self.appid.as_str()),
            ("secret", self.secret.expose_secret()),
        ];
        call_json(
            &self.http,
            JsonCall::<()> {
                base: &self.api,
                endpoint: "/cgi-bin/token",
                query: &query,
                body: None,
                on_busy: OnBusy::Retry,
            },
        )
        .await
    }

    /// `POST cgi-bin/stable_token`: the current stable token, or with `force_refresh` a new one
    /// (which revokes the old one for every process at once: 20 a day, 30 s apart).
    async fn stable_token(&self, force_refresh: bool) -> Result<AccessTokenReply> {
        let body = StableTokenRequest {
            grant_type: "client_credential",
            appid: self.appid.as_str(),
            secret: self.secret.expose_secret(),
            force_refresh,
        };
        call_json(
            &self.http,
            JsonCall {
                base: &self.api,
                endpoint: "/cgi-bin/stable_token",
                query: &[],
                body: Some(&body),
                on_busy: OnBusy::Retry,
            },
        )
        .await
    }
}

impl Fetch for AccessTokenFetcher {
    fn fetch<'a>(&'a self, rejected: Option<&'a str>) -> BoxFuture<'a, Result<Fetched>> {
        Box::pin(async move {
            let reply = match self.endpoint {
                TokenEndpoint::Token => self.token().await?,
                TokenEndpoint::StableToken => {
                    // After a rejection, first ask normally: the token may already have been
                    // replaced (another process forced a refresh), and forcing again would revoke
                    // that process's token in turn. Force only when WeChat hands back the
                    // rejected token.
                    let reply = self.stable_token(false).await?;
                    if rejected.is_some_and(|failed| failed == reply.access_token) {
                        tracing::info!(
                            "stable token rejected but still current; forcing a refresh"
                        );
                        self.stable_token(true).await?
                    } else {
                        reply
                    }
                }
            };
            Ok(Fetched {
                value: reply.access_token,
                expires_in: reply.expires_in,
            })
        })
    }
    fn retires_others(&self) -> bool {
        self.endpoint == TokenEndpoint::Token
    }
    fn metric_kind(&self) -> Option<&'static str> {
        (self.endpoint == TokenEndpoint::StableToken).then_some("stable_token")
    }
}

/// `{"errcode": 0, "errmsg": "ok", "ticket": "...", "expires_in": 7200}`.
#[derive(Deserialize)]
struct TicketReply {
    ticket: String,
    expires_in: u64,
}

/// Fetches the jsapi_ticket with the access token.
struct TicketFetcher {
    http: reqwest::Client,
    api: String,
    access: TokenManager<AccessTokenFetcher>,
}

impl Fetch for TicketFetcher {
    fn fetch<'a>(&'a self, _rejected: Option<&'a str>) -> BoxFuture<'a, Result<Fetched>> {
        Box::pin(async move {
            let reply: TicketReply = call_with_token(&self.access, |token| async move {
                let query = [("access_token", token.expose_secret()), ("type", "jsapi")];
                call_json(
                    &self.http,
                    JsonCall::<()> {
                        base: &self.api,
                        endpoint: "/cgi-bin/ticket/getticket",
                        query: &query,
                        body: None,
                        on_busy: OnBusy::Retry,
                    },
                )
                .await
            })
            .await?;
            Ok(Fetched {
                value: reply.ticket,
                expires_in: reply.expires_in,
            })
        })
    }
}
