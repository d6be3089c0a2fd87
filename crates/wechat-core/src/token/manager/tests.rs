//! Tests of the token manager: single flight, refresh ahead, the store lock, outages.

use std::sync::atomic::AtomicU32;

use futures_util::FutureExt;
use futures_util::future::join_all;

use super::*;
use crate::token::MemoryStore;
use crate::token::store::LockLease;
use crate::{AccessToken, ApiError, ApiErrorKind};

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
                return Err(Error::from_errcode(
                    "/cgi-bin/ticket/getticket",
                    45009,
                    "test",
                ));
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
    assert!(results.iter().all(|r| matches!(
        r,
        Err(Error::WeChat(ApiError {
            kind: ApiErrorKind::QuotaExceeded,
            ..
        }))
    )));
    assert_eq!(fake.calls(), 1, "one fetch for 100 callers");
    // Within the backoff: the error again, no new request.
    tokio::time::advance(Duration::from_secs(4)).await;
    assert!(matches!(
        manager.get().await,
        Err(Error::WeChat(ApiError {
            kind: ApiErrorKind::QuotaExceeded,
            ..
        }))
    ));
    assert_eq!(fake.calls(), 1);
    // After it: one retry, which fails and doubles the backoff.
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(matches!(
        manager.get().await,
        Err(Error::WeChat(ApiError {
            kind: ApiErrorKind::QuotaExceeded,
            ..
        }))
    ));
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
                Err(Error::from_errcode(
                    "/cgi-bin/ticket/getticket",
                    40001,
                    "test",
                ))
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
            Err(Error::from_errcode(
                "/cgi-bin/ticket/getticket",
                42001,
                "test",
            ))
        }
    })
    .await;
    assert!(matches!(
        result,
        Err(Error::WeChat(ApiError {
            kind: ApiErrorKind::AccessTokenInvalid,
            errcode: 42001,
            ..
        }))
    ));
    assert_eq!(*seen.lock().unwrap(), ["T2", "T3"]);

    // Other errors are not retried.
    let runs = AtomicU32::new(0);
    let result: Result<()> = crate::token::call_with_token(&manager, |_| {
        runs.fetch_add(1, Ordering::SeqCst);
        async {
            Err(Error::from_errcode(
                "/cgi-bin/ticket/getticket",
                45009,
                "test",
            ))
        }
    })
    .await;
    assert!(matches!(
        result,
        Err(Error::WeChat(ApiError {
            kind: ApiErrorKind::QuotaExceeded,
            ..
        }))
    ));
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
                Err(Error::from_errcode(
                    "/cgi-bin/ticket/getticket",
                    40001,
                    "test",
                ))
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

#[tokio::test(start_paused = true)]
async fn waiting_for_another_lock_holder_is_bounded() {
    let fake = Fake::new();
    let store = MemoryStore::new();
    // A holder with a long lease that neither writes nor unlocks (stuck, or died).
    let _stuck = store
        .try_lock(KEY, Duration::from_secs(20))
        .await
        .unwrap()
        .unwrap();
    let manager = manager_on(Arc::new(store.clone()), &fake);
    let started = tokio::time::Instant::now();
    let error = error_of(manager.get().await);
    let waited = started.elapsed();
    assert!(
        (LOCK_WAIT..LOCK_WAIT + Duration::from_secs(1)).contains(&waited),
        "{waited:?}"
    );
    let text = error.to_string();
    assert!(
        matches!(error, Error::TokenUnavailable { .. }) && text.contains("refresh lock"),
        "{text}"
    );
    assert_eq!(fake.calls(), 0);
    // Once the lease has run out, the next caller takes over and fetches.
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(value(&manager).await, "T1");
}

#[tokio::test(start_paused = true)]
async fn a_slow_fetch_whose_lease_ran_out_does_not_overwrite_a_newer_value() {
    let mut fake = Fake::new();
    fake.delay = Duration::from_secs(5); // longer than the 2 s lease
    let store = MemoryStore::new();
    let manager = manager_on(Arc::new(store.clone()), &fake);
    let slow = tokio::spawn({
        let manager = manager.clone();
        async move { value(&manager).await }
    });
    // After the lease ran out, another process takes the lock and stores a newer token.
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    let other = store
        .try_lock(KEY, Duration::from_secs(2))
        .await
        .unwrap()
        .expect("the slow holder's lease ran out");
    let newer = StoredToken::new(
        "NEWER",
        crate::clock::SystemClock.now_unix_secs() + 3 + 7200,
    );
    assert!(store.set_fenced(KEY, &newer, Some(&other)).await.unwrap());
    store.unlock(KEY, &other).await.unwrap();

    assert_eq!(
        slow.await.unwrap(),
        "NEWER",
        "the slow process adopts the newer token"
    );
    assert_eq!(store.get(KEY).await.unwrap().unwrap().value(), "NEWER");
    assert_eq!(fake.calls(), 1);
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
    let ip = Error::from_errcode(
        "/cgi-bin/token",
        40164,
        "invalid ip 127.0.0.1 ipv6 ::ffff:127.0.0.1, not in whitelist rid: 5fab84d2-09424a07-00bd7fe3",
    );
    assert!(
        matches!(replay(&ip, "access_token"), Error::WeChat(ApiError { kind: ApiErrorKind::IpNotWhitelisted { ref ip }, errcode: 40164, .. }) if ip == "127.0.0.1")
    );
    assert!(matches!(
        replay(
            &Error::from_errcode("/cgi-bin/ticket/getticket", 40125, "test"),
            "access_token"
        ),
        Error::WeChat(ApiError {
            kind: ApiErrorKind::InvalidAppSecret,
            errcode: 40125,
            ..
        })
    ));
    // Every WeChat error code is replayed as it is, with its rid.
    let used = replay(
        &Error::from_errcode("/cgi-bin/ticket/getticket", 40163, "used rid: 1-2-3"),
        "jsapi_ticket",
    );
    assert_eq!(used.api_kind(), Some(&ApiErrorKind::CodeAlreadyUsed));
    assert_eq!(used.request_id(), Some("1-2-3"));
    // What cannot be copied becomes TokenUnavailable with its message.
    let other = replay(&Error::InvalidPageUrl("no fragment".into()), "jsapi_ticket");
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
    assert!(other.to_string().contains("no fragment"), "{other}");
}

#[tokio::test(start_paused = true)]
async fn a_stored_expiry_beyond_the_lifetime_is_clamped() {
    let fake = Fake::new();
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let clock = TokioClock::new();
    // Another process (or a tampered entry) claims the token lives a year.
    store
        .set(
            KEY,
            &StoredToken::new("FOREVER", clock.now_unix_secs() + 365 * 86_400),
        )
        .await
        .unwrap();
    let manager = manager_on(store.clone(), &fake);
    assert_eq!(value(&manager).await, "FOREVER");
    assert!(manager.get().await.unwrap().expires_at() <= clock.now_unix_secs() + 7200);
    assert_eq!(fake.calls(), 0);
    // Two hours later it is refreshed like any token of WeChat's lifetime.
    tokio::time::advance(Duration::from_secs(7201)).await;
    assert_eq!(value(&manager).await, "T1");
    assert_eq!(fake.calls(), 1);
}
