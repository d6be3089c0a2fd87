//! The refresh machinery shared by the access token and the jsapi_ticket: an in-process copy
//! in front of a [`TokenStore`], single flight, refresh ahead of expiry, compare-and-expire,
//! negative caching of upstream failures and survival of store outages.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tracing::Instrument;

use super::Clock;
use super::store::{StoredToken, TokenStore};
use crate::{Error, Result};

/// Refresh at most this long before expiry...
const REFRESH_AHEAD_MAX_SECS: u64 = 300;
/// ...or within the last 1/6 of the lifetime, whichever is shorter.
const REFRESH_AHEAD_FRACTION: u64 = 6;
/// A credential is no longer handed out this close to its expiry (at most 1/10 of its lifetime),
/// so that it does not expire on its way to WeChat.
const EXPIRY_MARGIN_SECS: u64 = 5;
/// The first wait after a failed upstream fetch; doubled per further failure.
const FAILURE_BACKOFF: Duration = Duration::from_secs(5);
/// The longest wait after failed upstream fetches.
const FAILURE_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// First and longest interval between store reads while another process refreshes.
const POLL_FIRST: Duration = Duration::from_millis(25);
const POLL_MAX: Duration = Duration::from_millis(500);
/// How many leases of other processes are waited out before fetching regardless.
const LOCK_ROUNDS: u32 = 3;

/// What an upstream fetch returned.
pub(crate) struct Fetched {
    /// The credential.
    pub(crate) value: String,
    /// Its lifetime in seconds, from the reply's `expires_in`.
    pub(crate) expires_in: u64,
}

/// Fetches a new credential from WeChat.
pub(crate) trait Fetch: Send + Sync + 'static {
    /// Fetches a credential. `rejected` is the credential WeChat just rejected when the refresh
    /// follows such a rejection: a fetcher that may return the same value again
    /// (`cgi-bin/stable_token`) must then return a different one (`force_refresh`).
    fn fetch<'a>(&'a self, rejected: Option<&'a str>) -> BoxFuture<'a, Result<Fetched>>;
}

/// A credential held in process, with the instants derived from its expiry.
pub(crate) struct Cached {
    value: String,
    expires_at: u64,
    /// From here on, one caller starts a background refresh.
    refresh_at: u64,
    /// From here on, the credential is not handed out.
    stale_at: u64,
}

impl Cached {
    fn new(value: String, expires_at: u64, now: u64) -> Self {
        let remaining = expires_at.saturating_sub(now);
        Self {
            value,
            expires_at,
            refresh_at: expires_at
                .saturating_sub(REFRESH_AHEAD_MAX_SECS.min(remaining / REFRESH_AHEAD_FRACTION)),
            stale_at: expires_at.saturating_sub(EXPIRY_MARGIN_SECS.min(remaining / 10)),
        }
    }

    /// The credential.
    pub(crate) fn value(&self) -> &str {
        &self.value
    }

    /// Its expiry (unix seconds).
    #[cfg(test)]
    pub(crate) fn expires_at(&self) -> u64 {
        self.expires_at
    }

    fn usable(&self, now: u64) -> bool {
        now < self.stale_at
    }

    fn fresh(&self, now: u64) -> bool {
        now < self.refresh_at
    }
}

/// Why a refresh runs.
#[derive(Clone, Copy)]
enum Reason<'a> {
    /// No usable credential: callers wait for this one.
    Needed,
    /// The credential expiring at this instant is usable but due for refresh: runs in the
    /// background, and only a newer credential (a later expiry) satisfies it.
    Ahead(u64),
    /// WeChat rejected this credential: any other usable one will do, else fetch anew.
    Rejected(&'a str),
}

impl Reason<'_> {
    /// Whether `cached` satisfies this refresh.
    fn accepts(self, cached: &Cached, now: u64) -> bool {
        match self {
            Reason::Needed => cached.usable(now),
            Reason::Ahead(current_expiry) => {
                cached.usable(now) && cached.expires_at > current_expiry
            }
            Reason::Rejected(failed) => cached.usable(now) && cached.value != failed,
        }
    }
}

/// A failed upstream fetch, remembered so that callers do not refresh on every call.
struct Failure {
    until: tokio::time::Instant,
    error: Error,
    streak: u32,
}

/// Settings of one [`TokenManager`].
pub(crate) struct ManagerSettings {
    /// `access_token` or `jsapi_ticket`, for logs.
    pub(crate) kind: &'static str,
    /// The complete store key.
    pub(crate) key: String,
    pub(crate) store: Arc<dyn TokenStore>,
    pub(crate) clock: Arc<dyn Clock>,
    /// How long the store's refresh lock is held at most.
    pub(crate) lock_lease: Duration,
}

/// Keeps one credential fresh. Cheap to clone.
pub(crate) struct TokenManager<F> {
    inner: Arc<Inner<F>>,
}

impl<F> Clone for TokenManager<F> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<F> {
    settings: ManagerSettings,
    fetcher: F,
    /// The in-process copy: the fast path reads it and clones an `Arc`.
    local: RwLock<Option<Arc<Cached>>>,
    /// In-process single flight.
    flight: tokio::sync::Mutex<()>,
    /// A background refresh is running (or waiting out a failure backoff).
    ahead_running: AtomicBool,
    failure: Mutex<Option<Failure>>,
    /// The store failed and that was logged; cleared (and logged) when it answers again.
    store_down: AtomicBool,
    /// How many store outages began (each logged once).
    outages: AtomicU64,
    /// The credential WeChat rejected and that was invalidated; the next fetch must not return it.
    rejected: Mutex<Option<String>>,
}

impl<F: Fetch> TokenManager<F> {
    pub(crate) fn new(settings: ManagerSettings, fetcher: F) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings,
                fetcher,
                local: RwLock::new(None),
                flight: tokio::sync::Mutex::new(()),
                ahead_running: AtomicBool::new(false),
                failure: Mutex::new(None),
                store_down: AtomicBool::new(false),
                outages: AtomicU64::new(0),
                rejected: Mutex::new(None),
            }),
        }
    }

    /// A usable credential: the in-process copy when it is usable (starting a background refresh
    /// when it is due), else the result of the single-flight refresh.
    pub(crate) async fn get(&self) -> Result<Arc<Cached>> {
        let now = self.inner.settings.clock.now_unix_secs();
        if let Some(cached) = self.inner.local_copy() {
            if cached.fresh(now) {
                return Ok(cached);
            }
            if cached.usable(now) {
                self.refresh_ahead_in_background(cached.expires_at);
                return Ok(cached);
            }
        }
        self.inner.refresh(Reason::Needed).await
    }

    /// A usable credential other than `failed`, which WeChat just rejected (call
    /// [`invalidate`](Self::invalidate) first).
    pub(crate) async fn get_replacing(&self, failed: &str) -> Result<Arc<Cached>> {
        let now = self.inner.settings.clock.now_unix_secs();
        if let Some(cached) = self
            .inner
            .local_copy()
            .filter(|c| Reason::Rejected(failed).accepts(c, now))
        {
            return Ok(cached);
        }
        self.inner.refresh(Reason::Rejected(failed)).await
    }

    /// Compare-and-expire: forgets `failed` in process and in the store, but only where it is
    /// still the current value (a credential another caller already fetched survives). Returns
    /// whether `failed` was still current anywhere.
    pub(crate) async fn invalidate(&self, failed: &str) -> bool {
        let inner = &self.inner;
        let mut hit = false;
        {
            let mut local = inner.local.write().unwrap_or_else(PoisonError::into_inner);
            if local.as_ref().is_some_and(|c| c.value == failed) {
                *local = None;
                hit = true;
            }
        }
        match inner
            .settings
            .store
            .expire_if(&inner.settings.key, failed)
            .await
        {
            Ok(expired) => {
                inner.store_answered();
                hit |= expired;
            }
            Err(e) => inner.store_failed(&e),
        }
        if hit {
            *inner
                .rejected
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(failed.to_owned());
            tracing::info!(
                kind = inner.settings.kind,
                "rejected credential invalidated"
            );
        }
        hit
    }

    /// How many store outages began since creation (each was logged once).
    #[cfg(test)]
    pub(crate) fn store_outages(&self) -> u64 {
        self.inner.outages.load(Ordering::Relaxed)
    }

    fn refresh_ahead_in_background(&self, current_expiry: u64) {
        let inner = &self.inner;
        if inner.ahead_running.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // Not inside tokio: the credential is refreshed when it expires instead.
            inner.ahead_running.store(false, Ordering::Release);
            return;
        };
        let inner = Arc::clone(inner);
        runtime.spawn(async move {
            // Cleared however the task ends (also when its runtime shuts down mid-refresh).
            let running = ClearOnDrop(&inner.ahead_running);
            if inner.refresh(Reason::Ahead(current_expiry)).await.is_err() {
                // Keep the flag set until the backoff ends, so callers do not spawn refreshes
                // that would return at once.
                let until = inner.backoff_until();
                if let Some(until) = until {
                    tokio::time::sleep_until(until).await;
                }
            }
            drop(running);
        });
    }
}

/// Clears a flag when dropped.
struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl<F: Fetch> Inner<F> {
    fn local_copy(&self) -> Option<Arc<Cached>> {
        self.local
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_local(&self, cached: Arc<Cached>) {
        *self.local.write().unwrap_or_else(PoisonError::into_inner) = Some(cached);
    }

    /// The single-flight refresh.
    async fn refresh(&self, reason: Reason<'_>) -> Result<Arc<Cached>> {
        let _flight = self.flight.lock().await;
        let now = self.settings.clock.now_unix_secs();
        if let Some(cached) = self.local_copy().filter(|c| reason.accepts(c, now)) {
            // Refreshed by whoever held the flight before us.
            return Ok(cached);
        }
        if let Some(error) = self.backoff_error() {
            return Err(error);
        }
        match self.refresh_via_store(reason, now).await {
            Ok(cached) => {
                *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = None;
                Ok(cached)
            }
            Err(error) => {
                self.note_failure(&error);
                Err(error)
            }
        }
    }

    /// Adopts a value from the store, or becomes the store's refresher, or waits for another one.
    async fn refresh_via_store(&self, reason: Reason<'_>, now: u64) -> Result<Arc<Cached>> {
        let store = &*self.settings.store;
        let key = &self.settings.key;
        match store.get(key).await {
            Ok(stored) => {
                self.store_answered();
                if let Some(cached) = self.adopt(stored, reason, now) {
                    return Ok(cached);
                }
            }
            Err(e) => {
                self.store_failed(&e);
                return self.fetch(reason).await;
            }
        }
        for _ in 0..LOCK_ROUNDS {
            match store.try_lock(key, self.settings.lock_lease).await {
                Ok(Some(lease)) => {
                    // Someone may have finished a refresh between our read and our lock.
                    let stored = store.get(key).await.unwrap_or_default();
                    if let Some(cached) =
                        self.adopt(stored, reason, self.settings.clock.now_unix_secs())
                    {
                        self.unlock(&lease).await;
                        return Ok(cached);
                    }
                    let result = self.fetch(reason).await;
                    self.unlock(&lease).await;
                    return result;
                }
                Ok(None) => {
                    tracing::debug!(
                        kind = self.settings.kind,
                        "another process is refreshing; waiting for its value"
                    );
                    match self.poll_store(reason).await {
                        Ok(Some(cached)) => return Ok(cached),
                        Ok(None) => {} // the lease ran out: try to take over
                        Err(()) => return self.fetch(reason).await,
                    }
                }
                Err(e) => {
                    self.store_failed(&e);
                    return self.fetch(reason).await;
                }
            }
        }
        tracing::warn!(
            kind = self.settings.kind,
            "the store's refresh lock stayed taken for {LOCK_ROUNDS} leases without a new value; fetching anyway"
        );
        self.fetch(reason).await
    }

    /// Turns a stored value into the in-process copy when it satisfies `reason`.
    fn adopt(
        &self,
        stored: Option<StoredToken>,
        reason: Reason<'_>,
        now: u64,
    ) -> Option<Arc<Cached>> {
        let stored = stored?;
        let expires_at = stored.expires_at();
        let cached = Cached::new(stored.into_value(), expires_at, now);
        if !reason.accepts(&cached, now) {
            return None;
        }
        let cached = Arc::new(cached);
        self.set_local(Arc::clone(&cached));
        Some(cached)
    }

    /// Reads the store until another process's value appears (`Ok(Some)`), the lease runs out
    /// (`Ok(None)`) or the store fails (`Err`).
    async fn poll_store(&self, reason: Reason<'_>) -> Result<Option<Arc<Cached>>, ()> {
        let deadline = tokio::time::Instant::now() + self.settings.lock_lease;
        let mut interval = POLL_FIRST;
        loop {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(interval.min(deadline - now)).await;
            interval = (interval * 2).min(POLL_MAX);
            match self.settings.store.get(&self.settings.key).await {
                Ok(stored) => {
                    let now = self.settings.clock.now_unix_secs();
                    if let Some(cached) = self.adopt(stored, reason, now) {
                        return Ok(Some(cached));
                    }
                }
                Err(e) => {
                    self.store_failed(&e);
                    return Err(());
                }
            }
        }
    }

    async fn unlock(&self, lease: &super::store::LockLease) {
        if let Err(e) = self.settings.store.unlock(&self.settings.key, lease).await {
            self.store_failed(&e);
        }
    }

    /// Fetches upstream, then writes the in-process copy and the store.
    async fn fetch(&self, reason: Reason<'_>) -> Result<Arc<Cached>> {
        let pending = self
            .rejected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let rejected = match reason {
            Reason::Rejected(failed) => Some(failed),
            _ => pending.as_deref(),
        };
        let started = self.settings.clock.now_unix_secs();
        let span = tracing::info_span!(
            "wechat_token_refresh",
            kind = self.settings.kind,
            after_rejection = rejected.is_some()
        );
        let fetched = self.fetcher.fetch(rejected).instrument(span).await?;
        if fetched.value.is_empty() || fetched.expires_in == 0 {
            return Err(Error::UnexpectedResponse {
                endpoint: endpoint_of(self.settings.kind),
                detail: "empty credential or expires_in".to_owned(),
            });
        }
        *self.rejected.lock().unwrap_or_else(PoisonError::into_inner) = None;
        let expires_at = started.saturating_add(fetched.expires_in);
        tracing::info!(
            kind = self.settings.kind,
            expires_in = fetched.expires_in,
            "credential refreshed"
        );
        let stored = StoredToken::new(fetched.value, expires_at);
        match self.settings.store.set(&self.settings.key, &stored).await {
            Ok(()) => self.store_answered(),
            Err(e) => self.store_failed(&e),
        }
        let cached = Arc::new(Cached::new(stored.into_value(), expires_at, started));
        self.set_local(Arc::clone(&cached));
        Ok(cached)
    }

    fn backoff_until(&self) -> Option<tokio::time::Instant> {
        let failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        failure
            .as_ref()
            .map(|f| f.until)
            .filter(|until| *until > tokio::time::Instant::now())
    }

    /// The remembered error while the backoff after a failed fetch runs.
    fn backoff_error(&self) -> Option<Error> {
        let failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        let failure = failure.as_ref()?;
        (tokio::time::Instant::now() < failure.until)
            .then(|| replay(&failure.error, self.settings.kind))
    }

    fn note_failure(&self, error: &Error) {
        let mut failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        let streak = failure.as_ref().map_or(1, |f| f.streak.saturating_add(1));
        let backoff = FAILURE_BACKOFF
            .saturating_mul(2u32.saturating_pow(streak.saturating_sub(1).min(16)))
            .min(FAILURE_BACKOFF_MAX);
        tracing::warn!(
            kind = self.settings.kind,
            error = %error,
            retry_in = ?backoff,
            "refresh failed; callers get this error (or the still-valid credential) until the retry"
        );
        *failure = Some(Failure {
            until: tokio::time::Instant::now() + backoff,
            error: replay(error, self.settings.kind),
            streak,
        });
    }

    fn store_failed(&self, error: &Error) {
        if !self.store_down.swap(true, Ordering::AcqRel) {
            self.outages.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                kind = self.settings.kind,
                error = %error,
                "token store unavailable: using the in-process cache and single flight until it recovers"
            );
        }
    }

    fn store_answered(&self) {
        if self.store_down.swap(false, Ordering::AcqRel) {
            tracing::info!(kind = self.settings.kind, "token store available again");
        }
    }
}

fn endpoint_of(kind: &'static str) -> &'static str {
    match kind {
        "jsapi_ticket" => "/cgi-bin/ticket/getticket",
        _ => "/cgi-bin/token",
    }
}

/// A copy of `error` for callers during a failure backoff (`Error` is not `Clone`, because of
/// `reqwest::Error`). Variants that carry only data are reproduced; transport errors become
/// [`Error::TokenUnavailable`] with their message.
fn replay(error: &Error, kind: &'static str) -> Error {
    match error {
        Error::IpNotWhitelisted { ip, errcode } => Error::IpNotWhitelisted {
            ip: ip.clone(),
            errcode: *errcode,
        },
        Error::InvalidAppSecret { errcode } => Error::InvalidAppSecret { errcode: *errcode },
        Error::InvalidAppId => Error::InvalidAppId,
        Error::AccessTokenInvalid { errcode } => Error::AccessTokenInvalid { errcode: *errcode },
        Error::SystemBusy => Error::SystemBusy,
        Error::QuotaExceeded => Error::QuotaExceeded,
        Error::ScopeUnauthorized => Error::ScopeUnauthorized,
        Error::Api { errcode, errmsg } => Error::Api {
            errcode: *errcode,
            errmsg: errmsg.clone(),
        },
        Error::UnexpectedResponse { endpoint, detail } => Error::UnexpectedResponse {
            endpoint,
            detail: detail.clone(),
        },
        Error::Store(detail) => Error::Store(detail.clone()),
        Error::Config(detail) => Error::Config(detail.clone()),
        Error::TokenUnavailable { what, cause } => Error::TokenUnavailable {
            what,
            cause: cause.clone(),
        },
        other => Error::TokenUnavailable {
            what: kind,
            cause: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use futures_util::FutureExt;
    use futures_util::future::join_all;

    use super::*;
    use crate::token::store::LockLease;
    use crate::{AccessToken, MemoryStore};

    /// Unix time that starts at the system's and moves with tokio's (paused) clock.
    struct TokioClock {
        base: u64,
        start: tokio::time::Instant,
    }

    impl TokioClock {
        fn new() -> Self {
            Self {
                base: crate::SystemClock.now_unix_secs(),
                start: tokio::time::Instant::now(),
            }
        }
    }

    impl Clock for TokioClock {
        fn now_unix_secs(&self) -> u64 {
            self.base + self.start.elapsed().as_secs()
        }
    }

    /// A fetcher that mints `T1`, `T2`, … after `delay`, or fails while `fail` is set.
    #[derive(Clone)]
    struct Fake {
        calls: Arc<AtomicU32>,
        forced: Arc<Mutex<Vec<Option<String>>>>,
        fail: Arc<AtomicBool>,
        delay: Duration,
        expires_in: u64,
    }

    impl Fake {
        fn new() -> Self {
            Self {
                calls: Arc::default(),
                forced: Arc::default(),
                fail: Arc::default(),
                delay: Duration::from_millis(100),
                expires_in: 7200,
            }
        }

        fn calls(&self) -> u32 {
            self.calls.load(Ordering::SeqCst)
        }
    }

    impl Fetch for Fake {
        fn fetch<'a>(&'a self, rejected: Option<&'a str>) -> BoxFuture<'a, Result<Fetched>> {
            Box::pin(async move {
                let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
                self.forced
                    .lock()
                    .unwrap()
                    .push(rejected.map(str::to_owned));
                tokio::time::sleep(self.delay).await;
                if self.fail.load(Ordering::SeqCst) {
                    return Err(Error::QuotaExceeded);
                }
                Ok(Fetched {
                    value: format!("T{n}"),
                    expires_in: self.expires_in,
                })
            })
        }
    }

    /// A store whose every method fails while `down` is set, else delegates to a `MemoryStore`.
    #[derive(Clone)]
    struct FlakyStore {
        inner: MemoryStore,
        down: Arc<AtomicBool>,
    }

    impl FlakyStore {
        fn new(down: bool) -> Self {
            Self {
                inner: MemoryStore::new(),
                down: Arc::new(AtomicBool::new(down)),
            }
        }

        fn check(&self) -> Result<()> {
            if self.down.load(Ordering::SeqCst) {
                Err(Error::Store("connection refused".to_owned()))
            } else {
                Ok(())
            }
        }
    }

    impl TokenStore for FlakyStore {
        fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>>> {
            Box::pin(async move {
                self.check()?;
                self.inner.get(key).await
            })
        }
        fn set<'a>(&'a self, key: &'a str, token: &'a StoredToken) -> BoxFuture<'a, Result<()>> {
            Box::pin(async move {
                self.check()?;
                self.inner.set(key, token).await
            })
        }
        fn expire_if<'a>(&'a self, key: &'a str, value: &'a str) -> BoxFuture<'a, Result<bool>> {
            Box::pin(async move {
                self.check()?;
                self.inner.expire_if(key, value).await
            })
        }
        fn try_lock<'a>(
            &'a self,
            key: &'a str,
            lease: Duration,
        ) -> BoxFuture<'a, Result<Option<LockLease>>> {
            Box::pin(async move {
                self.check()?;
                self.inner.try_lock(key, lease).await
            })
        }
        fn unlock<'a>(&'a self, key: &'a str, lease: &'a LockLease) -> BoxFuture<'a, Result<()>> {
            Box::pin(async move {
                self.check()?;
                self.inner.unlock(key, lease).await
            })
        }
    }

    const KEY: &str = "wechat:access_token:wx1";

    fn manager_on(store: Arc<dyn TokenStore>, fake: &Fake) -> TokenManager<Fake> {
        TokenManager::new(
            ManagerSettings {
                kind: "access_token",
                key: KEY.to_owned(),
                store,
                clock: Arc::new(TokioClock::new()),
                lock_lease: Duration::from_secs(2),
            },
            fake.clone(),
        )
    }

    fn manager(fake: &Fake) -> TokenManager<Fake> {
        manager_on(Arc::new(MemoryStore::new()), fake)
    }

    async fn value(manager: &TokenManager<Fake>) -> String {
        manager.get().await.unwrap().value().to_owned()
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_on_a_cold_cache_cause_one_fetch() {
        let fake = Fake::new();
        let manager = manager(&fake);
        let values = join_all((0..1000).map(|_| value(&manager))).await;
        assert_eq!(fake.calls(), 1);
        assert!(values.iter().all(|v| v == "T1"));
        let cached = manager.get().await.unwrap();
        assert!(
            cached
                .expires_at()
                .abs_diff(crate::SystemClock.now_unix_secs() + 7200)
                <= 1
        );
        assert_eq!(fake.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn refresh_ahead_never_makes_callers_wait() {
        let fake = Fake::new();
        let manager = manager(&fake);
        assert_eq!(value(&manager).await, "T1");
        // Inside the last 5 minutes: every caller gets T1 at once while one refresh runs.
        tokio::time::advance(Duration::from_secs(7200 - 299)).await;
        for _ in 0..100 {
            let got = manager
                .get()
                .now_or_never()
                .expect("steady state must not wait")
                .unwrap();
            assert_eq!(got.value(), "T1");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(fake.calls(), 2, "one background refresh");
        let got = manager.get().now_or_never().expect("no wait").unwrap();
        assert_eq!(got.value(), "T2");
        assert_eq!(*fake.forced.lock().unwrap(), [None, None]);
    }

    #[tokio::test(start_paused = true)]
    async fn processes_sharing_a_store_refresh_ahead_once() {
        let fake = Fake::new();
        let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
        let a = manager_on(store.clone(), &fake);
        let b = manager_on(store.clone(), &fake);
        assert_eq!(value(&a).await, "T1");
        assert_eq!(value(&b).await, "T1");
        tokio::time::advance(Duration::from_secs(7200 - 299)).await;
        // Both are due; a starts first, b finds a's lock taken and then a's newer value.
        assert_eq!(value(&a).await, "T1");
        assert_eq!(value(&b).await, "T1");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(value(&a).await, "T2");
        assert_eq!(value(&b).await, "T2");
        assert_eq!(fake.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn refresh_ahead_window_is_a_sixth_of_short_lifetimes() {
        let fake = Fake {
            expires_in: 600,
            ..Fake::new()
        };
        let manager = manager(&fake);
        assert_eq!(value(&manager).await, "T1");
        // 600 s lifetime: the window is the last 100 s, not 300 s.
        tokio::time::advance(Duration::from_secs(450)).await;
        assert_eq!(value(&manager).await, "T1");
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(fake.calls(), 1);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(value(&manager).await, "T1");
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(fake.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_credential_is_refreshed() {
        let fake = Fake::new();
        let manager = manager(&fake);
        assert_eq!(value(&manager).await, "T1");
        tokio::time::advance(Duration::from_secs(7201)).await;
        let values = join_all((0..50).map(|_| value(&manager))).await;
        assert!(values.iter().all(|v| v == "T2"));
        assert_eq!(fake.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_fetches_are_negative_cached() {
        let fake = Fake::new();
        fake.fail.store(true, Ordering::SeqCst);
        let manager = manager(&fake);
        let results = join_all((0..100).map(|_| manager.get())).await;
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Err(Error::QuotaExceeded)))
        );
        assert_eq!(fake.calls(), 1, "one fetch for 100 callers");
        // Within the backoff: the error again, no new request.
        tokio::time::advance(Duration::from_secs(4)).await;
        assert!(matches!(manager.get().await, Err(Error::QuotaExceeded)));
        assert_eq!(fake.calls(), 1);
        // After it: one retry, which fails and doubles the backoff.
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(matches!(manager.get().await, Err(Error::QuotaExceeded)));
        assert_eq!(fake.calls(), 2);
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(manager.get().await.is_err());
        assert_eq!(fake.calls(), 2);
        fake.fail.store(false, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(value(&manager).await, "T3");
        assert_eq!(fake.calls(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_refresh_ahead_keeps_serving_the_valid_credential() {
        let fake = Fake::new();
        let manager = manager(&fake);
        assert_eq!(value(&manager).await, "T1");
        fake.fail.store(true, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(7200 - 200)).await;
        for _ in 0..20 {
            assert_eq!(value(&manager).await, "T1");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // 4 s of calls: the first background refresh failed, and no other started in its backoff.
        assert_eq!(fake.calls(), 2);
        fake.fail.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(value(&manager).await, "T1");
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(value(&manager).await, "T3");
    }

    #[tokio::test(start_paused = true)]
    async fn compare_and_expire_keeps_a_replaced_credential() {
        let fake = Fake::new();
        let store = Arc::new(MemoryStore::new());
        // Two managers on one store behave like two processes sharing Redis.
        let a = manager_on(store.clone(), &fake);
        let b = manager_on(store.clone(), &fake);
        assert_eq!(value(&a).await, "T1");
        assert_eq!(value(&b).await, "T1");
        assert_eq!(fake.calls(), 1, "b adopted a's value from the store");

        // A credential that is not current is not expired anywhere.
        assert!(!a.invalidate("T0").await);
        assert_eq!(value(&a).await, "T1");

        // a sees T1 rejected and replaces it (forcing the refresh).
        assert!(a.invalidate("T1").await);
        assert_eq!(a.get_replacing("T1").await.unwrap().value(), "T2");
        assert_eq!(*fake.forced.lock().unwrap(), [None, Some("T1".to_owned())]);

        // b sees T1 rejected too: its own copy goes, but T2 in the store survives and is adopted.
        b.invalidate("T1").await;
        assert_eq!(store.get(KEY).await.unwrap().unwrap().value(), "T2");
        assert_eq!(b.get_replacing("T1").await.unwrap().value(), "T2");
        assert_eq!(fake.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn call_with_token_retries_exactly_once_after_a_rejection() {
        let fake = Fake::new();
        let manager = manager(&fake);
        let seen = Arc::new(Mutex::new(Vec::new()));

        // Rejected once: invalidated, refreshed, retried, succeeds.
        let attempts = seen.clone();
        let result = crate::token::call_with_token(&manager, |token: AccessToken| {
            let attempts = attempts.clone();
            async move {
                attempts
                    .lock()
                    .unwrap()
                    .push(token.expose_secret().to_owned());
                if token.expose_secret() == "T1" {
                    Err(Error::AccessTokenInvalid { errcode: 40001 })
                } else {
                    Ok(7)
                }
            }
        })
        .await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(*seen.lock().unwrap(), ["T1", "T2"]);

        // Always rejected: two runs, then the error; never a third.
        seen.lock().unwrap().clear();
        let attempts = seen.clone();
        let result: Result<()> = crate::token::call_with_token(&manager, |token: AccessToken| {
            let attempts = attempts.clone();
            async move {
                attempts
                    .lock()
                    .unwrap()
                    .push(token.expose_secret().to_owned());
                Err(Error::AccessTokenInvalid { errcode: 42001 })
            }
        })
        .await;
        assert!(matches!(
            result,
            Err(Error::AccessTokenInvalid { errcode: 42001 })
        ));
        assert_eq!(*seen.lock().unwrap(), ["T2", "T3"]);

        // Other errors are not retried.
        let runs = AtomicU32::new(0);
        let result: Result<()> = crate::token::call_with_token(&manager, |_| {
            runs.fetch_add(1, Ordering::SeqCst);
            async { Err(Error::QuotaExceeded) }
        })
        .await;
        assert!(matches!(result, Err(Error::QuotaExceeded)));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(fake.calls(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_rejections_cause_one_refresh() {
        let fake = Fake::new();
        let manager = manager(&fake);
        assert_eq!(value(&manager).await, "T1");
        let results = join_all((0..200).map(|_| {
            crate::token::call_with_token(&manager, |token: AccessToken| async move {
                if token.expose_secret() == "T1" {
                    Err(Error::AccessTokenInvalid { errcode: 40001 })
                } else {
                    Ok(())
                }
            })
        }))
        .await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(fake.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_store_still_gives_one_fetch_and_one_warning() {
        let fake = Fake::new();
        let store = FlakyStore::new(true);
        let manager = manager_on(Arc::new(store.clone()), &fake);
        let values = join_all((0..100).map(|_| value(&manager))).await;
        assert!(values.iter().all(|v| v == "T1"));
        assert_eq!(fake.calls(), 1);
        for _ in 0..100 {
            assert_eq!(value(&manager).await, "T1");
        }
        assert!(!manager.invalidate("T0").await);
        assert_eq!(fake.calls(), 1);
        assert_eq!(manager.store_outages(), 1, "one warning per outage");

        // The store comes back: the next refresh uses and fills it again.
        store.down.store(false, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(7201)).await;
        assert_eq!(value(&manager).await, "T2");
        assert_eq!(store.inner.get(KEY).await.unwrap().unwrap().value(), "T2");
        // A second outage is a second warning.
        store.down.store(true, Ordering::SeqCst);
        tokio::time::advance(Duration::from_secs(7201)).await;
        assert_eq!(value(&manager).await, "T3");
        assert_eq!(manager.store_outages(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn waits_for_the_value_of_another_process_holding_the_lock() {
        let fake = Fake::new();
        let store = MemoryStore::new();
        let other = store
            .try_lock(KEY, Duration::from_secs(2))
            .await
            .unwrap()
            .unwrap();
        let manager = manager_on(Arc::new(store.clone()), &fake);
        let writer = {
            let store = store.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(700)).await;
                let token =
                    StoredToken::new("FROM-OTHER", crate::SystemClock.now_unix_secs() + 7200);
                store.set(KEY, &token).await.unwrap();
                store.unlock(KEY, &other).await.unwrap();
            })
        };
        let started = tokio::time::Instant::now();
        let values = join_all((0..100).map(|_| value(&manager))).await;
        assert!(values.iter().all(|v| v == "FROM-OTHER"));
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(fake.calls(), 0);
        writer.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn takes_over_after_a_dead_holders_lease() {
        let fake = Fake::new();
        let store = MemoryStore::new();
        // A holder that dies without writing or unlocking.
        let _dead = store
            .try_lock(KEY, Duration::from_secs(2))
            .await
            .unwrap()
            .unwrap();
        let manager = manager_on(Arc::new(store.clone()), &fake);
        let started = tokio::time::Instant::now();
        assert_eq!(value(&manager).await, "T1");
        assert!(started.elapsed() >= Duration::from_secs(2));
        assert_eq!(fake.calls(), 1);
        assert_eq!(store.get(KEY).await.unwrap().unwrap().value(), "T1");
        // The lock was released by its new holder.
        assert!(
            store
                .try_lock(KEY, Duration::from_secs(2))
                .await
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn replayed_errors_keep_their_variant() {
        let ip = Error::IpNotWhitelisted {
            ip: "127.0.0.1".into(),
            errcode: 40164,
        };
        assert!(
            matches!(replay(&ip, "access_token"), Error::IpNotWhitelisted { ref ip, errcode: 40164 } if ip == "127.0.0.1")
        );
        assert!(matches!(
            replay(&Error::InvalidAppSecret { errcode: 40125 }, "access_token"),
            Error::InvalidAppSecret { errcode: 40125 }
        ));
        let other = replay(&Error::CodeAlreadyUsed, "jsapi_ticket");
        assert!(
            matches!(
                other,
                Error::TokenUnavailable {
                    what: "jsapi_ticket",
                    ..
                }
            ),
            "{other:?}"
        );
        assert!(other.to_string().contains("40163"), "{other}");
    }
}
