//! The refresh machinery shared by the access token and the jsapi_ticket: an in-process copy
//! in front of a [`TokenStore`], single flight, refresh ahead of expiry, compare-and-expire,
//! negative caching of upstream failures and survival of store outages.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tracing::Instrument;

use super::store::{LockLease, StoredToken, TokenStore};
use crate::clock::Clock;
use crate::metrics::{RefreshLock, RefreshReason};
use crate::{Error, Result};

/// Refresh at most this long before expiry...
const REFRESH_AHEAD_MAX_SECS: u64 = 300;
/// ...or within the last 1/6 of the lifetime, whichever is shorter.
const REFRESH_AHEAD_FRACTION: u64 = 6;
/// A credential is no longer handed out this close to its expiry (at most 1/10 of its lifetime),
/// so that it does not expire on its way to WeChat.
const EXPIRY_MARGIN_SECS: u64 = 5;
/// The longest lifetime WeChat gives an access_token or a jsapi_ticket (`expires_in` 7200): a
/// stored value that claims to live longer is adopted as if it expired then, so that a bad or
/// tampered store entry cannot pin a credential forever.
const MAX_LIFETIME_SECS: u64 = 7200;
/// The first wait after a failed upstream fetch; doubled per further failure.
const FAILURE_BACKOFF: Duration = Duration::from_secs(5);
/// The longest wait after failed upstream fetches.
const FAILURE_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// First and longest interval between store reads while another process refreshes.
const POLL_FIRST: Duration = Duration::from_millis(25);
const POLL_MAX: Duration = Duration::from_millis(500);
/// How long a caller waits at most for another process that holds the store's refresh lock;
/// then it gets the current credential or an error, never a wait as long as the lease.
pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(3);
/// Read-only mode: the wait after a failed read before callers wait for the store again (a
/// store read still happens meanwhile: the central service may fill the key at any time).
const READ_ONLY_BACKOFF: Duration = Duration::from_secs(1);
/// Read-only mode: how often a credential due for refresh is looked for in the store.
const READ_ONLY_RECHECK: Duration = Duration::from_secs(1);
/// While the shared store is down, a fetcher whose every fetch retires the other processes'
/// credentials (`cgi-bin/token`) fetches at most once per this many seconds per process: a fleet
/// of 10 then spends at most 1,440 of the 2,000 daily `cgi-bin/token` calls in a day-long outage.
pub(crate) const OUTAGE_REFETCH_SPACING_SECS: u64 = 600;

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

    /// Whether every fetch retires the credentials other processes hold (`cgi-bin/token`), so
    /// that processes which cannot share them through the store must not fetch often.
    fn retires_others(&self) -> bool {
        false
    }

    /// The `kind` label of `wechat_token_refreshes_total` when it is not the manager's kind
    /// (`stable_token` for the access token fetched from `cgi-bin/stable_token`).
    fn metric_kind(&self) -> Option<&'static str> {
        None
    }
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
    /// When (unix seconds, by the manager's clock) the last successful upstream fetch started;
    /// 0 before the first.
    last_fetch: AtomicU64,
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
                last_fetch: AtomicU64::new(0),
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
        let _flight = match self.flight.try_lock() {
            Ok(flight) => flight,
            Err(_) => {
                // Another caller is refreshing: only these waits are recorded.
                let started = tokio::time::Instant::now();
                let flight = self.flight.lock().await;
                crate::metrics::record_lock_wait(
                    self.settings.kind,
                    RefreshLock::Process,
                    started.elapsed(),
                );
                flight
            }
        };
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
            // Refused without asking WeChat: nothing to back off from, and the spacing is
            // re-checked (cheaply) by the next caller.
            Err(error) if self.outage_spacing(now).is_some() => Err(error),
            Err(error) => {
                self.note_failure(&error);
                Err(error)
            }
        }
    }

    /// While the store is down and fetching retires the other processes' credentials: how many
    /// seconds are left before this process may fetch again.
    fn outage_spacing(&self, now: u64) -> Option<u64> {
        if !self.fetcher.retires_others()
            || !self.settings.store_health.down.load(Ordering::Acquire)
        {
            return None;
        }
        let last = self.last_fetch.load(Ordering::Acquire);
        let next = last.saturating_add(OUTAGE_REFETCH_SPACING_SECS);
        (last != 0 && now < next).then(|| next - now)
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
                return self.fetch(reason, None).await;
            }
        }
        let started = tokio::time::Instant::now();
        let deadline = started + LOCK_WAIT;
        // Whether the store's lock was found held: then the wait is recorded once it ends.
        let mut waited = false;
        let record_wait = |waited: bool| {
            if waited {
                crate::metrics::record_lock_wait(
                    self.settings.kind,
                    RefreshLock::Store,
                    started.elapsed(),
                );
            }
        };
        loop {
            let attempt = store.try_lock(key, self.settings.lock_lease).await;
            if !matches!(attempt, Ok(None)) {
                record_wait(waited);
            }
            match attempt {
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
                    let result = self.fetch(reason, Some(&lease)).await;
                    self.unlock(&lease).await;
                    return result;
                }
                Ok(None) if tokio::time::Instant::now() >= deadline => {
                    record_wait(true);
                    break;
                }
                Ok(None) => {
                    waited = true;
                    tracing::debug!(
                        kind = self.settings.kind,
                        "another process is refreshing; waiting for its value"
                    );
                    match self.poll_store(reason, deadline).await {
                        Ok(Some(cached)) => {
                            record_wait(true);
                            return Ok(cached);
                        }
                        // The wait is over, or the lock may be free again: try to take it.
                        Ok(None) => {}
                        Err(()) => {
                            record_wait(true);
                            return self.fetch(reason, None).await;
                        }
                    }
                }
                Err(e) => {
                    self.store_failed(&e);
                    return self.fetch(reason, None).await;
                }
            }
        }
        // Another process has held the lock for the whole wait (a slow fetch, or a holder that
        // died and whose lease has yet to run out). Ahead of expiry, the current credential
        // serves on; otherwise the caller gets an error rather than a wait as long as the lease.
        let now = self.settings.clock.now_unix_secs();
        if let Reason::Ahead(current_expiry) = reason {
            if let Some(current) = self
                .local_copy()
                .filter(|c| c.expires_at == current_expiry && c.usable(now))
            {
                return Ok(current);
            }
        }
        Err(Error::TokenUnavailable {
            what: self.settings.kind,
            cause: format!(
                "another instance has held the refresh lock of {} for more than {} s without \
                 storing a new value (a slow WeChat, or an instance that stopped: its lease of \
                 {} s then runs out and another instance refreshes)",
                store.describe_key(key),
                LOCK_WAIT.as_secs(),
                self.settings.lock_lease.as_secs()
            ),
        })
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
        // A stored expiry never exceeds WeChat's lifetime from when this process first saw the
        // value: the same credential's expiry can only shrink (WeChat never extends one).
        let mut expires_at = stored
            .expires_at()
            .min(now.saturating_add(MAX_LIFETIME_SECS));
        if let Some(local) = self.local_copy().filter(|l| l.value == stored.value()) {
            expires_at = expires_at.min(local.expires_at);
        }
        let cached = Cached::new(stored.into_value(), expires_at, now);
        if !reason.accepts(&cached, now) {
            return None;
        }
        let cached = Arc::new(cached);
        self.set_local(Arc::clone(&cached));
        Some(cached)
    }

    /// Reads the store until another process's value appears (`Ok(Some)`), `deadline` or the
    /// lease passes (`Ok(None)`) or the store fails (`Err`).
    async fn poll_store(
        &self,
        reason: Reason<'_>,
        deadline: tokio::time::Instant,
    ) -> Result<Option<Arc<Cached>>, ()> {
        let deadline = deadline.min(tokio::time::Instant::now() + self.settings.lock_lease);
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

    async fn unlock(&self, lease: &LockLease) {
        if let Err(e) = self.settings.store.unlock(&self.settings.key, lease).await {
            self.store_failed(&e);
        }
    }

    /// Fetches upstream, then writes the in-process copy and the store; the store write is
    /// fenced by `lease` (see [`TokenStore::set_fenced`]).
    async fn fetch(&self, reason: Reason<'_>, lease: Option<&LockLease>) -> Result<Arc<Cached>> {
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
        if let Some(wait) = self.outage_spacing(started) {
            tracing::debug!(
                kind = self.settings.kind,
                wait,
                "store down: not refetching yet"
            );
            return Err(Error::TokenUnavailable {
                what: self.settings.kind,
                cause: format!(
                    "the token store is down, and this process fetched one from cgi-bin/token \
                     less than {} minutes ago: fetching again would retire the other instances' \
                     tokens and spend the daily quota, so it waits {wait} s more (use \
                     TokenEndpoint::StableToken, which every instance shares, to avoid this)",
                    OUTAGE_REFETCH_SPACING_SECS / 60
                ),
            });
        }
        let why = if rejected.is_some() {
            RefreshReason::Invalidated
        } else if matches!(reason, Reason::Ahead(_)) {
            RefreshReason::Ahead
        } else if self.local_copy().is_some() {
            RefreshReason::Expired
        } else {
            RefreshReason::Missing
        };
        crate::metrics::record_token_refresh(
            self.fetcher.metric_kind().unwrap_or(self.settings.kind),
            why,
        );
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
        self.last_fetch.store(started.max(1), Ordering::Release);
        let expires_at = started.saturating_add(fetched.expires_in);
        tracing::info!(
            kind = self.settings.kind,
            expires_in = fetched.expires_in,
            "credential refreshed"
        );
        let stored = StoredToken::new(fetched.value, expires_at);
        match self
            .settings
            .store
            .set_fenced(&self.settings.key, &stored, lease)
            .await
        {
            Ok(true) => self.store_answered(),
            Ok(false) => {
                // Our lease ran out during the fetch and another process stored a newer
                // credential: everyone uses that one.
                self.store_answered();
                if let Ok(newer) = self.settings.store.get(&self.settings.key).await {
                    let now = self.settings.clock.now_unix_secs();
                    if let Some(cached) = self.adopt(newer, reason, now) {
                        tracing::info!(
                            kind = self.settings.kind,
                            "a newer credential was stored while this one was fetched; using it"
                        );
                        return Ok(cached);
                    }
                }
            }
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
        Error::WeChat(api) => Error::WeChat(api.clone()),
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
mod tests;
