//! The refresh machinery shared by the access token and the jsapi_ticket: an in-process copy
//! in front of a [`TokenStore`], single flight, refresh ahead of expiry, compare-and-expire,
//! negative caching of upstream failures and survival of store outages.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tracing::Instrument;

use super::store::{StoredToken, TokenStore};
use crate::clock::Clock;
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
/// Read-only mode: the wait after a failed read before callers wait for the store again (a
/// store read still happens meanwhile: the central service may fill the key at any time).
const READ_ONLY_BACKOFF: Duration = Duration::from_secs(1);
/// Read-only mode: how often a credential due for refresh is looked for in the store.
const READ_ONLY_RECHECK: Duration = Duration::from_secs(1);

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

    /// The same credential, not refreshed ahead of its expiry any more (used when no newer one
    /// can be had before it expires).
    fn without_refresh_ahead(&self) -> Self {
        Self {
            value: self.value.clone(),
            expires_at: self.expires_at,
            refresh_at: self.stale_at,
            stale_at: self.stale_at,
        }
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
    /// Whether the store is down, shared by the managers of one `Tokens` so that an outage is
    /// logged once.
    pub(crate) store_health: Arc<StoreHealth>,
    /// Read-only mode: never fetch upstream nor write the store; wait this long for a usable
    /// value in the store (filled by a central service) before failing.
    pub(crate) read_only: Option<Duration>,
}

/// Whether a store is down, shared by the managers that use it.
#[derive(Default)]
pub(crate) struct StoreHealth {
    /// The store failed and that was logged; cleared (and logged) when it answers again.
    down: AtomicBool,
    /// How many store outages began (each logged once).
    outages: AtomicU64,
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
        // A read-only process never writes the store: the central service owns its content.
        if inner.settings.read_only.is_none() {
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
        self.inner
            .settings
            .store_health
            .outages
            .load(Ordering::Relaxed)
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
            match inner.refresh(Reason::Ahead(current_expiry)).await {
                Err(_) => {
                    // Keep the flag set until the backoff ends, so callers do not spawn
                    // refreshes that would return at once.
                    let until = inner.backoff_until();
                    if let Some(until) = until {
                        tokio::time::sleep_until(until).await;
                    }
                }
                // Read-only: the central service has not stored a newer credential yet; look
                // again in a while rather than on every call.
                Ok(cached)
                    if inner.settings.read_only.is_some()
                        && cached.expires_at <= current_expiry =>
                {
                    tokio::time::sleep(READ_ONLY_RECHECK).await;
                }
                Ok(_) => {}
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
            // A read-only process still reads the store: the central service may have filled it.
            if self.settings.read_only.is_some() {
                if let Ok(stored) = self.settings.store.get(&self.settings.key).await {
                    if let Some(cached) = self.adopt(stored, reason, now) {
                        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = None;
                        return Ok(cached);
                    }
                }
            }
            return Err(error);
        }
        let result = match self.settings.read_only {
            Some(wait) => self.read_from_store(reason, wait).await,
            None => self.refresh_via_store(reason, now).await,
        };
        match result {
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
                if let Some(cached) = self.found_unchanged(reason).await {
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
                    let adopted =
                        match self.adopt(stored, reason, self.settings.clock.now_unix_secs()) {
                            Some(cached) => Some(cached),
                            None => self.found_unchanged(reason).await,
                        };
                    if let Some(cached) = adopted {
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
                        Ok(None) => {
                            // The lease ran out without a newer credential (the refresher died,
                            // or WeChat returned the current one again). Ahead of expiry, keep
                            // the current credential until it expires rather than fetching.
                            if let Reason::Ahead(current_expiry) = reason {
                                if let Some(cached) = self.stop_refreshing_ahead(current_expiry) {
                                    return Ok(cached);
                                }
                            }
                            // Else try to take over.
                        }
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

    /// The key of the note that WeChat, asked ahead of expiry, returned the current credential
    /// unchanged (as the ticket endpoint and `cgi-bin/stable_token` do until it expires).
    fn unchanged_key(&self) -> String {
        format!("{}:unchanged", self.settings.key)
    }

    /// Ahead of expiry: whether another process already asked WeChat and got the current
    /// credential back unchanged; then this one stops refreshing it ahead too.
    async fn found_unchanged(&self, reason: Reason<'_>) -> Option<Arc<Cached>> {
        let Reason::Ahead(current_expiry) = reason else {
            return None;
        };
        let note = self
            .settings
            .store
            .get(&self.unchanged_key())
            .await
            .ok()??;
        let current = self.local_copy()?;
        if note.value() != current.value {
            return None;
        }
        self.stop_refreshing_ahead(current_expiry)
    }

    /// Keeps the in-process copy that expires at `current_expiry` (if it is still the current
    /// one and usable) without refreshing it ahead of its expiry any more, and returns it.
    fn stop_refreshing_ahead(&self, current_expiry: u64) -> Option<Arc<Cached>> {
        let now = self.settings.clock.now_unix_secs();
        let mut local = self.local.write().unwrap_or_else(PoisonError::into_inner);
        let current = local
            .as_ref()
            .filter(|c| c.expires_at == current_expiry && c.usable(now))?;
        let kept = Arc::new(current.without_refresh_ahead());
        *local = Some(Arc::clone(&kept));
        tracing::debug!(
            kind = self.settings.kind,
            "no newer credential before expiry; refreshing when it expires instead"
        );
        Some(kept)
    }

    /// Read-only mode: the store's value when it satisfies `reason`, waiting up to `wait` for
    /// the central service to store one. Ahead of expiry, one read, and the current copy when the
    /// store has nothing newer.
    async fn read_from_store(&self, reason: Reason<'_>, wait: Duration) -> Result<Arc<Cached>> {
        let store = &*self.settings.store;
        let key = &self.settings.key;
        let deadline = tokio::time::Instant::now() + wait;
        let mut interval = POLL_FIRST;
        loop {
            let now = self.settings.clock.now_unix_secs();
            let why = match store.get(key).await {
                Ok(stored) => {
                    self.store_answered();
                    let why = unusable_because(stored.as_ref(), reason, now);
                    if let Some(cached) = self.adopt(stored, reason, now) {
                        return Ok(cached);
                    }
                    why
                }
                Err(e) => {
                    self.store_failed(&e);
                    format!("the store failed: {e}")
                }
            };
            if let Reason::Ahead(current_expiry) = reason {
                if let Some(current) = self
                    .local_copy()
                    .filter(|c| c.expires_at == current_expiry && c.usable(now))
                {
                    return Ok(current);
                }
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(Error::TokenNotInStore {
                    what: self.settings.kind,
                    key: store.describe_key(key),
                    reason: why,
                });
            }
            tokio::time::sleep(interval.min(left)).await;
            interval = (interval * 2).min(POLL_MAX);
        }
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
        let mut cached = Cached::new(stored.value().to_owned(), expires_at, started);
        if let Reason::Ahead(current_expiry) = reason {
            if expires_at <= current_expiry {
                // WeChat returned the current credential again: refreshing it ahead again, here
                // or in another process, would only repeat this request. Leave a note for them.
                cached = cached.without_refresh_ahead();
                if let Err(e) = self
                    .settings
                    .store
                    .set(&self.unchanged_key(), &stored)
                    .await
                {
                    self.store_failed(&e);
                }
            }
        }
        let cached = Arc::new(cached);
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
        let backoff = if self.settings.read_only.is_some() {
            READ_ONLY_BACKOFF
        } else {
            FAILURE_BACKOFF
                .saturating_mul(2u32.saturating_pow(streak.saturating_sub(1).min(16)))
                .min(FAILURE_BACKOFF_MAX)
        };
        if self.settings.read_only.is_some() && streak > 1 {
            // Read-only: warned at the first failure; the next ones follow every second.
            tracing::debug!(kind = self.settings.kind, error = %error, "still no usable credential in the store");
        } else {
            tracing::warn!(
                kind = self.settings.kind,
                error = %error,
                retry_in = ?backoff,
                "refresh failed; callers get this error (or the still-valid credential) until the retry"
            );
        }
        *failure = Some(Failure {
            until: tokio::time::Instant::now() + backoff,
            error: replay(error, self.settings.kind),
            streak,
        });
    }

    fn store_failed(&self, error: &Error) {
        let health = &self.settings.store_health;
        if !health.down.swap(true, Ordering::AcqRel) {
            health.outages.fetch_add(1, Ordering::Relaxed);
            if self.settings.read_only.is_some() {
                tracing::warn!(
                    error = %error,
                    "token store unavailable: this read-only process cannot get tokens until it recovers"
                );
            } else {
                tracing::warn!(
                    error = %error,
                    "token store unavailable: using the in-process cache and single flight until it recovers"
                );
            }
        }
    }

    fn store_answered(&self) {
        if self
            .settings
            .store_health
            .down
            .swap(false, Ordering::AcqRel)
        {
            tracing::info!("token store available again");
        }
    }
}

/// Why a stored value does not satisfy `reason`, for [`Error::TokenNotInStore`].
fn unusable_because(stored: Option<&StoredToken>, reason: Reason<'_>, now: u64) -> String {
    let Some(stored) = stored else {
        return "the key is empty".to_owned();
    };
    let expires_at = stored.expires_at();
    if let Reason::Rejected(failed) = reason {
        if stored.value() == failed {
            return "it holds the credential WeChat just rejected".to_owned();
        }
    }
    if expires_at <= now {
        format!(
            "it holds a credential that expired {} s ago",
            now - expires_at
        )
    } else {
        format!(
            "it holds a credential that expires in {} s, too soon to use",
            expires_at - now
        )
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
        Error::TokenNotInStore { what, key, reason } => Error::TokenNotInStore {
            what,
            key: key.clone(),
            reason: reason.clone(),
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
    use crate::AccessToken;
    use crate::token::MemoryStore;
    use crate::token::store::LockLease;

    /// Unix time that starts at the system's and moves with tokio's (paused) clock.
    #[derive(Debug)]
    struct TokioClock {
        base: u64,
        start: tokio::time::Instant,
    }

    impl TokioClock {
        fn new() -> Self {
            Self {
                base: crate::clock::SystemClock.now_unix_secs(),
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
                store_health: Arc::default(),
                read_only: None,
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
                .abs_diff(crate::clock::SystemClock.now_unix_secs() + 7200)
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
                let token = StoredToken::new(
                    "FROM-OTHER",
                    crate::clock::SystemClock.now_unix_secs() + 7200,
                );
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

    fn read_only_manager(
        store: Arc<dyn TokenStore>,
        clock: Arc<TokioClock>,
        fake: &Fake,
    ) -> TokenManager<Fake> {
        TokenManager::new(
            ManagerSettings {
                kind: "access_token",
                key: KEY.to_owned(),
                store,
                clock,
                lock_lease: Duration::from_secs(2),
                store_health: Arc::default(),
                read_only: Some(Duration::from_secs(2)),
            },
            fake.clone(),
        )
    }

    fn error_of(result: Result<Arc<Cached>>) -> Error {
        match result {
            Err(error) => error,
            Ok(cached) => panic!(
                "expected an error, got a credential expiring at {}",
                cached.expires_at()
            ),
        }
    }

    fn in_two_hours(value: &str, clock: &TokioClock) -> StoredToken {
        StoredToken::new(value, clock.now_unix_secs() + 7200)
    }

    #[tokio::test(start_paused = true)]
    async fn read_only_never_fetches_and_names_the_key_to_fill() {
        let fake = Fake::new();
        let store = MemoryStore::new();
        let clock = Arc::new(TokioClock::new());
        let manager = read_only_manager(Arc::new(store.clone()), clock.clone(), &fake);

        // Empty: callers wait for the central service, then get an error naming the key.
        let started = tokio::time::Instant::now();
        let err = error_of(manager.get().await);
        assert!(started.elapsed() >= Duration::from_secs(2));
        let msg = err.to_string();
        assert!(
            matches!(err, Error::TokenNotInStore { what: "access_token", ref key, .. } if key == KEY),
            "{err:?}"
        );
        assert!(
            msg.contains(KEY) && msg.contains("the key is empty"),
            "{msg}"
        );
        assert!(msg.contains("central service"), "{msg}");
        // The next callers get it at once...
        let started = tokio::time::Instant::now();
        assert!(matches!(
            manager.get().await,
            Err(Error::TokenNotInStore { .. })
        ));
        assert!(started.elapsed() < Duration::from_millis(10));
        // ...unless the central service has filled the key meanwhile.
        store
            .set(KEY, &in_two_hours("CENTRAL1", &clock))
            .await
            .unwrap();
        assert_eq!(value(&manager).await, "CENTRAL1");

        // A rejected credential is dropped in process only; the store keeps the central one.
        assert!(manager.invalidate("CENTRAL1").await);
        assert_eq!(store.get(KEY).await.unwrap().unwrap().value(), "CENTRAL1");
        let err = error_of(manager.get_replacing("CENTRAL1").await);
        assert!(err.to_string().contains("rejected"), "{err}");
        // The central service stores a new one while callers wait: they get it.
        let writer = {
            let (store, clock) = (store.clone(), clock.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                store
                    .set(KEY, &in_two_hours("CENTRAL2", &clock))
                    .await
                    .unwrap();
            })
        };
        tokio::task::yield_now().await;
        // After the second of backoff that follows the error.
        tokio::time::advance(Duration::from_secs(1)).await;
        let started = tokio::time::Instant::now();
        assert_eq!(
            manager.get_replacing("CENTRAL1").await.unwrap().value(),
            "CENTRAL2"
        );
        assert!(started.elapsed() < Duration::from_secs(1));
        writer.await.unwrap();

        // Expired in the store: the error says so.
        tokio::time::advance(Duration::from_secs(7201)).await;
        let err = error_of(manager.get().await);
        assert!(err.to_string().contains("expired"), "{err}");
        assert_eq!(fake.calls(), 0, "a read-only process never fetches");
    }

    #[tokio::test(start_paused = true)]
    async fn read_only_picks_up_the_central_refresh_ahead_of_expiry() {
        let fake = Fake::new();
        let store = MemoryStore::new();
        let clock = Arc::new(TokioClock::new());
        store.set(KEY, &in_two_hours("OLD", &clock)).await.unwrap();
        let manager = read_only_manager(Arc::new(store.clone()), clock.clone(), &fake);
        assert_eq!(value(&manager).await, "OLD");
        tokio::time::advance(Duration::from_secs(7200 - 200)).await;
        // Due for refresh, nothing newer yet: the current one, without waiting.
        for _ in 0..10 {
            let got = manager.get().now_or_never().expect("no wait").unwrap();
            assert_eq!(got.value(), "OLD");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        store.set(KEY, &in_two_hours("NEW", &clock)).await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(value(&manager).await, "OLD");
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(value(&manager).await, "NEW");
        assert_eq!(fake.calls(), 0);
    }

    /// Like WeChat's ticket endpoint: the same value until it expires, with its remaining life.
    #[derive(Clone)]
    struct SameUntilExpiry {
        calls: Arc<AtomicU32>,
        clock: Arc<TokioClock>,
        current: Arc<Mutex<(String, u64)>>,
    }

    impl Fetch for SameUntilExpiry {
        fn fetch<'a>(&'a self, _rejected: Option<&'a str>) -> BoxFuture<'a, Result<Fetched>> {
            Box::pin(async move {
                let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                let now = self.clock.now_unix_secs();
                let mut current = self.current.lock().unwrap();
                if now >= current.1 {
                    *current = (format!("S{n}"), now + 7200);
                }
                Ok(Fetched {
                    value: current.0.clone(),
                    expires_in: current.1 - now,
                })
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_unchanged_credential_ahead_of_expiry_is_not_requested_again() {
        let clock = Arc::new(TokioClock::new());
        let fetcher = SameUntilExpiry {
            calls: Arc::default(),
            clock: Arc::clone(&clock),
            current: Arc::new(Mutex::new((String::new(), 0))),
        };
        let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
        let health = Arc::new(StoreHealth::default());
        let on_store = || {
            TokenManager::new(
                ManagerSettings {
                    kind: "jsapi_ticket",
                    key: KEY.to_owned(),
                    store: Arc::clone(&store),
                    clock: clock.clone(),
                    lock_lease: Duration::from_secs(2),
                    store_health: Arc::clone(&health),
                    read_only: None,
                },
                fetcher.clone(),
            )
        };
        // Two processes sharing a store.
        let (a, b) = (on_store(), on_store());
        let value = |m: &TokenManager<SameUntilExpiry>| {
            let m = m.clone();
            async move { m.get().await.unwrap().value().to_owned() }
        };
        assert_eq!(value(&a).await, "S1");
        assert_eq!(value(&b).await, "S1");
        tokio::time::advance(Duration::from_secs(7200 - 200)).await;
        // a is due first, asks again and gets the same ticket.
        assert_eq!(value(&a).await, "S1");
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 2);
        // b is due later, and finds a's note: it does not ask again; nor does a, in the rest of
        // the ticket's life, though callers keep coming.
        for _ in 0..100 {
            assert_eq!(value(&a).await, "S1");
            assert_eq!(value(&b).await, "S1");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 2);
        tokio::time::advance(Duration::from_secs(200)).await;
        assert_eq!(value(&a).await, "S3");
        assert_eq!(value(&b).await, "S3");
        assert_eq!(fetcher.calls.load(Ordering::SeqCst), 3);
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
