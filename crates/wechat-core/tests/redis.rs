//! The Redis token store against a real Redis server, with wechat-sim over 127.0.0.1.
//!
//! The server's URL comes from `WECHAT_TEST_REDIS_URL` (e.g. `redis://127.0.0.1:6379/`). Without
//! it the tests print one line and pass, except under `CI=true`, where they fail. The outage test
//! and the TLS and cluster tests start their own `redis-server`s (from `PATH`) on free ports: one
//! plain, one TLS-only with a CA and certificate the test makes (rcgen), or a three-node Redis
//! Cluster, so that they can stop and restart them. Without `redis-server` on `PATH` those print
//! one line and pass, except under `CI=true`, where they fail.
//! Each test uses its own key prefix, so the tests share one server without colliding.
#![cfg(feature = "redis")]

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wechat_core::clock::Clock;
use wechat_core::token::{LockLease, RedisStore, StoredToken, TokenStore, Tokens};
use wechat_core::{BaseUrls, Config, TokenEndpoint, build_http_client};
use wechat_sim::{RunningSim, Simulator};

const APPID: &str = "wx1234567890abcdef";
const SECRET: &str = "0123456789abcdef0123456789abcdef";
const TTL: u64 = 7200;
const SIM_CONFIG: &str = r#"
token_ttl_secs = 7200
[[apps]]
appid = "wx1234567890abcdef"
secret = "0123456789abcdef0123456789abcdef"
"#;
/// The keys [`Tokens`] uses with its default key prefix (the store adds its own prefix).
const TOKEN_KEY: &str = "wechat:access_token:wx1234567890abcdef";
const TICKET_KEY: &str = "wechat:jsapi_ticket:wx1234567890abcdef";
const TOKEN_PATH: &str = "/cgi-bin/token";
const TICKET_PATH: &str = "/cgi-bin/ticket/getticket";

/// The Redis server to test against, or `None` (after one line on stderr) to skip.
fn redis_url() -> Option<String> {
    wechat_core::testing::test_redis_url()
}

/// A key prefix no other test (or run) uses.
fn unique_prefix(test: &str) -> String {
    format!("wechat-core-test:{test}:{:016x}:", rand::random::<u64>())
}

/// The simulator's clock, so that tokens expire on both sides when the test moves it.
struct SimClock(Arc<RunningSim>);

impl std::fmt::Debug for SimClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimClock")
    }
}

impl Clock for SimClock {
    fn now_unix_secs(&self) -> u64 {
        self.0.now_secs()
    }
}

async fn start_sim() -> Arc<RunningSim> {
    let sim = Simulator::from_toml_str(SIM_CONFIG)
        .expect("valid sim config")
        .start()
        .await
        .expect("sim starts");
    Arc::new(sim)
}

/// One application process: its own HTTP client, Redis connection and in-process copies.
struct Process {
    tokens: Tokens,
    store: Arc<RedisStore>,
}

async fn process(sim: &Arc<RunningSim>, store: RedisStore, lock_lease: Duration) -> Process {
    // cgi-bin/token: the endpoint where processes sharing no store retire each other's tokens.
    let config = Config::new(APPID, SECRET)
        .with_token_endpoint(TokenEndpoint::Token)
        .with_base_urls(BaseUrls::all(&sim.base_url()))
        .with_timeout(Duration::from_secs(5));
    let store = Arc::new(store);
    let tokens = Tokens::builder(&config, build_http_client(&config).expect("http client"))
        .store(store.clone())
        .clock(Arc::new(SimClock(Arc::clone(sim))))
        .lock_lease(lock_lease)
        .build()
        .unwrap();
    Process { tokens, store }
}

async fn processes(
    n: usize,
    sim: &Arc<RunningSim>,
    url: &str,
    prefix: &str,
    lock_lease: Duration,
) -> Vec<Process> {
    let mut all = Vec::with_capacity(n);
    for _ in 0..n {
        let store = RedisStore::builder(url)
            .prefix(prefix)
            .connect()
            .await
            .expect("Redis at WECHAT_TEST_REDIS_URL answers");
        all.push(process(sim, store, lock_lease).await);
    }
    all
}

/// `per_process` concurrent jsapi_ticket requests on each process; every one must succeed, and
/// all must get the same ticket. Returns the ticket.
async fn tickets_from_all(processes: &[Process], per_process: usize) -> String {
    let mut tasks = Vec::with_capacity(processes.len() * per_process);
    for p in processes {
        for _ in 0..per_process {
            let tokens = p.tokens.clone();
            tasks.push(tokio::spawn(async move { tokens.jsapi_ticket().await }));
        }
    }
    let mut tickets = std::collections::HashSet::new();
    for task in tasks {
        let ticket = task
            .await
            .expect("task")
            .expect("every request gets a ticket");
        tickets.insert(ticket.expose_secret().to_owned());
    }
    assert_eq!(tickets.len(), 1, "all processes hand out the same ticket");
    tickets.into_iter().next().unwrap_or_default()
}

/// The access token of every process, which must be the same.
async fn shared_access_token(processes: &[Process]) -> String {
    let mut tokens = Vec::new();
    for p in processes {
        tokens.push(
            p.tokens
                .access_token()
                .await
                .expect("access token")
                .expose_secret()
                .to_owned(),
        );
    }
    assert!(
        tokens.windows(2).all(|w| w[0] == w[1]),
        "every process uses the same access token"
    );
    tokens.swap_remove(0)
}

/// Removes the test's keys (best effort).
async fn cleanup(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
    }
}

async fn raw_connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("Redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_processes_times_a_thousand_cold_requests_make_one_token_and_one_ticket_call() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("cold");
    let sim = start_sim().await;
    let processes = processes(4, &sim, &url, &prefix, Duration::from_secs(5)).await;

    let started = Instant::now();
    let ticket = tickets_from_all(&processes, 1000).await;
    let elapsed = started.elapsed();

    let stats = sim.stats();
    assert_eq!(
        stats.calls_to(TOKEN_PATH),
        1,
        "one upstream token request for 4 processes: {stats:?}"
    );
    assert_eq!(
        stats.calls_to(TICKET_PATH),
        1,
        "one upstream ticket request for 4 processes: {stats:?}"
    );
    let token = shared_access_token(&processes).await;
    // Both are in Redis, with their expiry.
    let stored = processes[0]
        .store
        .get(TICKET_KEY)
        .await
        .unwrap()
        .expect("ticket stored");
    assert_eq!(stored.value(), ticket);
    assert!(stored.expires_at() > sim.now_secs() + TTL - 60);
    let stored = processes[0]
        .store
        .get(TOKEN_KEY)
        .await
        .unwrap()
        .expect("token stored");
    assert_eq!(stored.value(), token);
    let _ = writeln!(
        std::io::stderr(),
        "redis figures: 4 processes x 1000 concurrent jsapi_ticket requests on a cold cache: \
         {} token + {} ticket upstream calls in {elapsed:?}",
        stats.calls_to(TOKEN_PATH),
        stats.calls_to(TICKET_PATH)
    );
    cleanup(&url, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expiry_on_the_simulator_clock_makes_one_refresh_for_all_four() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("expiry");
    let sim = start_sim().await;
    let processes = processes(4, &sim, &url, &prefix, Duration::from_secs(5)).await;
    let first_ticket = tickets_from_all(&processes, 100).await;
    let first_token = shared_access_token(&processes).await;
    assert_eq!(
        (
            sim.stats().calls_to(TOKEN_PATH),
            sim.stats().calls_to(TICKET_PATH)
        ),
        (1, 1)
    );

    // Past the expiry of both, on the simulator's clock (which the processes use too).
    sim.advance_clock(TTL + 1);
    let started = Instant::now();
    let second_ticket = tickets_from_all(&processes, 250).await;
    let elapsed = started.elapsed();
    let second_token = shared_access_token(&processes).await;

    let stats = sim.stats();
    assert_eq!(
        stats.calls_to(TOKEN_PATH),
        2,
        "one token refresh for the 4: {stats:?}"
    );
    assert_eq!(
        stats.calls_to(TICKET_PATH),
        2,
        "one ticket refresh for the 4: {stats:?}"
    );
    assert_ne!(first_token, second_token);
    assert_ne!(
        first_ticket, second_ticket,
        "the simulator issued a new ticket after expiry"
    );
    let _ = writeln!(
        std::io::stderr(),
        "redis figures: refresh after expiry, 4 processes x 250 requests: 1 token + 1 ticket call in {elapsed:?}"
    );
    cleanup(&url, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refresh_ahead_of_expiry_is_done_once_while_everyone_keeps_the_current_ticket() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("ahead");
    let sim = start_sim().await;
    let processes = processes(4, &sim, &url, &prefix, Duration::from_secs(1)).await;
    let ticket = tickets_from_all(&processes, 50).await;
    let token = shared_access_token(&processes).await;

    // Into the last minutes before expiry: still valid, due for refresh.
    sim.advance_clock(TTL - 120);
    let started = Instant::now();
    assert_eq!(
        tickets_from_all(&processes, 250).await,
        ticket,
        "the current ticket is served meanwhile"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "callers did not wait: {:?}",
        started.elapsed()
    );
    // The background refreshes finish (meanwhile a process may still use the current token, which
    // stays valid); the 4 processes made one token request.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut current = Vec::new();
        for p in &processes {
            current.push(
                p.tokens
                    .access_token()
                    .await
                    .expect("token")
                    .expose_secret()
                    .to_owned(),
            );
        }
        if current.iter().all(|t| *t != token && *t == current[0]) {
            break;
        }
        assert!(Instant::now() < deadline, "no refresh ahead of expiry");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Past the lease of the others' waits: the simulator returned the current ticket again (it
    // issues a new one only at expiry), and nobody asked for it a third time.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(tickets_from_all(&processes, 50).await, ticket);
    let stats = sim.stats();
    assert_eq!(stats.calls_to(TOKEN_PATH), 2, "{stats:?}");
    assert_eq!(stats.calls_to(TICKET_PATH), 2, "{stats:?}");
    cleanup(&url, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lock_holder_that_died_mid_refresh_is_taken_over_after_its_lease() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("dead-holder");
    let sim = start_sim().await;
    let lease = Duration::from_secs(1);

    // A process takes the ticket's refresh lock and dies before storing anything.
    {
        let dying = RedisStore::builder(&url)
            .prefix(&prefix)
            .connect()
            .await
            .expect("Redis");
        let held = dying
            .try_lock(TICKET_KEY, lease)
            .await
            .expect("Redis answers");
        assert!(held.is_some(), "the lock was free");
    }
    let processes = processes(4, &sim, &url, &prefix, lease).await;
    let started = Instant::now();
    tickets_from_all(&processes, 250).await;
    let elapsed = started.elapsed();

    // They waited for the dead holder's lease (not ignoring the lock), then one took over.
    assert!(
        elapsed >= Duration::from_millis(800),
        "took over after {elapsed:?}, before the lease ran out"
    );
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    let stats = sim.stats();
    assert_eq!(stats.calls_to(TOKEN_PATH), 1, "{stats:?}");
    assert_eq!(stats.calls_to(TICKET_PATH), 1, "{stats:?}");
    shared_access_token(&processes).await;
    cleanup(&url, &prefix).await;
}

#[tokio::test]
async fn fenced_writes_against_redis_go_to_the_lease_holder_or_a_newer_expiry() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("fenced");
    let store = RedisStore::builder(&url)
        .prefix(&prefix)
        .connect()
        .await
        .expect("Redis");
    let mut raw = raw_connection(&url).await;
    let now = wechat_core::clock::SystemClock.now_unix_secs();
    let at = |value: &str, expires_at: u64| StoredToken::new(value, expires_at);

    // Empty, or holding something that is not a credential: anyone writes.
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}k"))
        .arg("garbage")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(
        store
            .set_fenced("k", &at("A", now + 100), None)
            .await
            .unwrap()
    );
    let pttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}k"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!((98_000..=100_000).contains(&pttl), "PTTL {pttl}");
    // A slower process with an older token and no (or a lapsed) lease: refused.
    assert!(
        !store
            .set_fenced("k", &at("OLD", now + 50), None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_fenced("k", &at("SAME", now + 100), None)
            .await
            .unwrap()
    );
    let lapsed = LockLease::random();
    assert!(
        !store
            .set_fenced("k", &at("OLD", now + 50), Some(&lapsed))
            .await
            .unwrap()
    );
    assert_eq!(store.get("k").await.unwrap().unwrap().value(), "A");
    // A newer expiry is written.
    assert!(
        store
            .set_fenced("k", &at("B", now + 200), None)
            .await
            .unwrap()
    );
    // The lease holder writes.
    let lease = store
        .try_lock("k", Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .set_fenced("k", &at("C", now + 150), Some(&lease))
            .await
            .unwrap()
    );
    assert_eq!(store.get("k").await.unwrap().unwrap().value(), "C");
    // An expired credential is never written.
    assert!(
        !store
            .set_fenced("k", &at("D", now.saturating_sub(1)), Some(&lease))
            .await
            .unwrap()
    );
    assert_eq!(store.get("k").await.unwrap().unwrap().value(), "C");
    cleanup(&url, &prefix).await;
}

#[tokio::test]
async fn store_operations_against_redis() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("store");
    let store = RedisStore::builder(&url)
        .prefix(&prefix)
        .connect()
        .await
        .expect("Redis");
    let mut raw = raw_connection(&url).await;
    let now = wechat_core::clock::SystemClock.now_unix_secs();

    // set/get, with a Redis expiry at expires_at.
    assert_eq!(store.get("k").await.unwrap(), None);
    let token = StoredToken::new("A", now + 100);
    store.set("k", &token).await.unwrap();
    assert_eq!(store.get("k").await.unwrap(), Some(token.clone()));
    let pttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}k"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!((98_000..=100_000).contains(&pttl), "PTTL {pttl}");
    let json: String = redis::cmd("GET")
        .arg(format!("{prefix}k"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(
        json,
        format!(r#"{{"value":"A","expires_at":{}}}"#, now + 100)
    );

    // Compare-and-expire only removes the current value.
    store
        .set("k", &StoredToken::new("B", now + 100))
        .await
        .unwrap();
    assert!(!store.expire_if("k", "A").await.unwrap());
    assert_eq!(store.get("k").await.unwrap().unwrap().value(), "B");
    assert!(store.expire_if("k", "B").await.unwrap());
    assert_eq!(store.get("k").await.unwrap(), None);
    assert!(!store.expire_if("k", "B").await.unwrap());

    // An already expired credential is not stored (and removes what was there).
    store
        .set("k", &StoredToken::new("C", now + 100))
        .await
        .unwrap();
    store
        .set("k", &StoredToken::new("D", now.saturating_sub(1)))
        .await
        .unwrap();
    assert_eq!(store.get("k").await.unwrap(), None);

    // A value stored by someone else that is not ours is ignored, then replaced.
    for garbage in [
        "plain-token",
        "{\"value\":\"\",\"expires_at\":1}",
        "{\"value\":\"x\"}",
    ] {
        let _: () = redis::cmd("SET")
            .arg(format!("{prefix}k"))
            .arg(garbage)
            .query_async(&mut raw)
            .await
            .unwrap();
        assert_eq!(store.get("k").await.unwrap(), None, "{garbage}");
        assert!(!store.expire_if("k", "another-value").await.unwrap());
    }
    let _: () = redis::cmd("DEL")
        .arg(format!("{prefix}k"))
        .query_async(&mut raw)
        .await
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(format!("{prefix}k"))
        .arg("f")
        .arg("v")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(
        store.get("k").await.unwrap(),
        None,
        "a hash is not a credential"
    );
    assert!(!store.expire_if("k", "v").await.unwrap());
    store.set("k", &token).await.unwrap();
    assert_eq!(store.get("k").await.unwrap(), Some(token.clone()));

    // Prefixes separate stores on one server; clones share the connection.
    let other = store
        .clone()
        .with_prefix(format!("{prefix}other:"))
        .expect("a prefix without braces");
    assert_eq!(other.prefix(), format!("{prefix}other:"));
    assert_eq!(other.get("k").await.unwrap(), None);

    // The lock: exclusive, released only by its holder, gone after its lease.
    let lease = Duration::from_millis(300);
    let held = store.try_lock("k", lease).await.unwrap().expect("free");
    assert_eq!(store.try_lock("k", lease).await.unwrap(), None);
    assert!(
        other.try_lock("k", lease).await.unwrap().is_some(),
        "another prefix, another lock"
    );
    store
        .unlock("k", &wechat_core::token::LockLease::random())
        .await
        .unwrap();
    assert_eq!(
        store.try_lock("k", lease).await.unwrap(),
        None,
        "a stranger cannot unlock"
    );
    let id: String = redis::cmd("GET")
        .arg(format!("{{{prefix}k}}:lock"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(id, held.id());
    store.unlock("k", &held).await.unwrap();
    let again = store.try_lock("k", lease).await.unwrap().expect("released");
    tokio::time::sleep(lease + Duration::from_millis(100)).await;
    let taken_over = store
        .try_lock("k", lease)
        .await
        .unwrap()
        .expect("the lease ran out");
    store.unlock("k", &again).await.unwrap();
    assert_eq!(
        store.try_lock("k", lease).await.unwrap(),
        None,
        "the old holder cannot release the new lock"
    );
    store.unlock("k", &taken_over).await.unwrap();
    assert!(store.try_lock("k", lease).await.unwrap().is_some());

    // Debug output names the server, never a password.
    assert!(format!("{store:?}").contains("RedisStore"));
    cleanup(&url, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_value_in_redis_is_replaced_not_trusted() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("garbage");
    let sim = start_sim().await;
    let mut raw = raw_connection(&url).await;
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}{TOKEN_KEY}"))
        .arg("not-json-but-looks-like-a-token")
        .query_async(&mut raw)
        .await
        .unwrap();
    let processes = processes(2, &sim, &url, &prefix, Duration::from_secs(5)).await;
    let token = shared_access_token(&processes).await;
    assert_ne!(token, "not-json-but-looks-like-a-token");
    assert_eq!(sim.stats().calls_to(TOKEN_PATH), 1);
    let stored = processes[1]
        .store
        .get(TOKEN_KEY)
        .await
        .unwrap()
        .expect("replaced");
    assert_eq!(stored.value(), token);
    cleanup(&url, &prefix).await;
}

async fn read_only_process(
    sim: &Arc<RunningSim>,
    url: &str,
    prefix: &str,
    wait: Duration,
) -> Process {
    // cgi-bin/token: the endpoint where processes sharing no store retire each other's tokens.
    let config = Config::new(APPID, SECRET)
        .with_token_endpoint(TokenEndpoint::Token)
        .with_base_urls(BaseUrls::all(&sim.base_url()))
        .with_timeout(Duration::from_secs(5));
    let store = Arc::new(
        RedisStore::builder(url)
            .prefix(prefix)
            .connect()
            .await
            .expect("Redis"),
    );
    let tokens = Tokens::builder(&config, build_http_client(&config).expect("http client"))
        .store(store.clone())
        .clock(Arc::new(SimClock(Arc::clone(sim))))
        .read_only_wait(wait)
        .build()
        .unwrap();
    Process { tokens, store }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_only_processes_use_the_central_services_tokens_and_never_fetch() {
    let Some(url) = redis_url() else { return };
    let prefix = unique_prefix("read-only");
    let sim = start_sim().await;
    let mut readers = Vec::new();
    for _ in 0..3 {
        readers.push(read_only_process(&sim, &url, &prefix, Duration::from_millis(500)).await);
    }

    // Nothing in Redis: a clear error naming the key, after a short wait; no request to WeChat.
    let started = Instant::now();
    let err = readers[0].tokens.jsapi_ticket().await.unwrap_err();
    assert!(
        started.elapsed() >= Duration::from_millis(450),
        "{:?}",
        started.elapsed()
    );
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            wechat_core::Error::TokenNotInStore {
                what: "jsapi_ticket",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        msg.contains(&format!("Redis key {prefix}{TICKET_KEY} at redis://")),
        "{msg}"
    );
    assert!(
        msg.contains("empty") && msg.contains("central service"),
        "{msg}"
    );
    let err = readers[1].tokens.access_token().await.unwrap_err();
    assert!(
        err.to_string().contains(&format!("{prefix}{TOKEN_KEY}")),
        "{err}"
    );

    // The central service (here: Tokens in the normal mode on the same Redis) fills both keys
    // while a reader waits for them.
    let waiting = {
        let reader = read_only_process(&sim, &url, &prefix, Duration::from_secs(5)).await;
        tokio::spawn(async move { reader.tokens.jsapi_ticket().await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let central = processes(1, &sim, &url, &prefix, Duration::from_secs(5))
        .await
        .remove(0);
    let ticket = central
        .tokens
        .jsapi_ticket()
        .await
        .expect("central fetches");
    let waited = waiting
        .await
        .expect("task")
        .expect("the waiting reader gets the central ticket");
    assert_eq!(waited.expose_secret(), ticket.expose_secret());
    // The readers that failed a moment ago get it at once now.
    readers.push(central);
    let shared = tickets_from_all(&readers, 300).await;
    assert_eq!(shared, ticket.expose_secret());
    shared_access_token(&readers).await;
    let central = readers.pop().expect("central");
    assert_eq!(
        (
            sim.stats().calls_to(TOKEN_PATH),
            sim.stats().calls_to(TICKET_PATH)
        ),
        (1, 1)
    );

    // Everything expires and the central service is late: the error says the value expired.
    sim.advance_clock(TTL + 1);
    let err = readers[2].tokens.access_token().await.unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    // The central service refreshes; the readers follow.
    let new_ticket = central
        .tokens
        .jsapi_ticket()
        .await
        .expect("central refreshes");
    assert_ne!(new_ticket.expose_secret(), ticket.expose_secret());
    readers.push(central);
    assert_eq!(
        tickets_from_all(&readers, 100).await,
        new_ticket.expose_secret()
    );
    shared_access_token(&readers).await;
    assert_eq!(
        (
            sim.stats().calls_to(TOKEN_PATH),
            sim.stats().calls_to(TICKET_PATH)
        ),
        (2, 2)
    );
    cleanup(&url, &prefix).await;
}

#[tokio::test]
async fn the_first_command_after_a_redis_restart_succeeds() {
    first_command_after_a_restart(Kind::Plain).await;
}

#[tokio::test]
async fn the_first_command_after_a_restart_succeeds_over_tls() {
    first_command_after_a_restart(Kind::Tls).await;
}

#[tokio::test]
async fn the_first_command_after_a_cluster_restart_succeeds() {
    first_command_after_a_restart(Kind::Cluster).await;
}

async fn first_command_after_a_restart(kind: Kind) {
    // The connection of an idle process dies with the server; its next command must not fail
    // (and make the process refresh on its own) once Redis answers again.
    let Some(mut server) = RedisServer::start_kind(kind).await else {
        return;
    };
    let store = server
        .builder()
        .retry_after_failure(Duration::from_millis(50))
        .connect()
        .await
        .expect("Redis");
    let now = wechat_core::clock::SystemClock.now_unix_secs();
    store
        .set("k", &StoredToken::new("BEFORE", now + 100))
        .await
        .expect("Redis answers");
    server.kill();
    server.restart().await;
    for round in 0..3 {
        assert_eq!(
            store
                .get("k")
                .await
                .expect("the first command after the restart"),
            None,
            "round {round}: the restarted server is empty"
        );
        store
            .set("k", &StoredToken::new("AFTER", now + 100))
            .await
            .expect("Redis answers");
        server.kill();
        if round == 1 {
            // Commands while Redis is down fail (and the reconnection with them) ...
            assert!(store.get("k").await.is_err());
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(store.get("k").await.is_err());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // ... and the first one once it is back succeeds.
        server.restart().await;
    }
}

/// How a test's own Redis is deployed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// One server, plain TCP.
    Plain,
    /// One server, TLS only, with a certificate signed by a CA the test makes.
    Tls,
    /// A Redis Cluster of three primaries, the slots split between them.
    Cluster,
}

/// `redis-server` child processes (one, or three cluster nodes) on free ports, which the test can
/// stop and restart, in a directory of their own (certificates, cluster configuration).
struct RedisServer {
    kind: Kind,
    ports: Vec<u16>,
    dir: std::path::PathBuf,
    /// The test CA's certificate, for `Kind::Tls`.
    ca_pem: String,
    children: Vec<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl RedisServer {
    /// Starts a deployment of `kind`, or `None` (after one line on stderr, outside CI) when
    /// `redis-server` is not on `PATH`.
    async fn start_kind(kind: Kind) -> Option<Self> {
        wechat_core::testing::test_program(
            "redis-server",
            "the tests that start their own Redis (restarts, outages, TLS, cluster)",
            "install it with `apt-get install redis-server`",
        )?;
        let nodes = if kind == Kind::Cluster { 3 } else { 1 };
        let dir = std::env::temp_dir().join(format!(
            "wechat-core-redis-{:?}-{:016x}",
            kind,
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).expect("a directory for redis-server");
        let ca_pem = if kind == Kind::Tls {
            write_test_certificates(&dir)
        } else {
            String::new()
        };
        let mut server = Self {
            kind,
            ports: (0..nodes).map(|_| free_port()).collect(),
            dir,
            ca_pem,
            children: Vec::new(),
        };
        server.restart().await;
        if kind == Kind::Cluster {
            server.create_cluster().await;
        }
        Some(server)
    }

    /// The URL of the (first) node.
    fn url(&self) -> String {
        let scheme = if self.kind == Kind::Tls {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}/", self.ports[0])
    }

    /// A store builder that reaches this server as an application would.
    fn builder(&self) -> wechat_core::token::RedisStoreBuilder {
        match self.kind {
            Kind::Plain => RedisStore::builder(self.url()),
            Kind::Tls => RedisStore::builder(self.url()).tls_root_certificates(self.ca_pem.clone()),
            Kind::Cluster => RedisStore::cluster_builder(
                self.ports
                    .iter()
                    .map(|port| format!("redis://127.0.0.1:{port}")),
            ),
        }
    }

    /// Starts the processes (again, after `kill`), with the same ports, files and cluster
    /// configuration, and waits until they answer (a cluster: until its state is ok again).
    async fn restart(&mut self) {
        for &port in &self.ports {
            let dir = self.dir.display().to_string();
            let mut args: Vec<String> = [
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                &dir,
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
            match self.kind {
                Kind::Plain => args.extend(["--port".to_owned(), port.to_string()]),
                Kind::Tls => args.extend(
                    [
                        "--port",
                        "0",
                        "--tls-port",
                        &port.to_string(),
                        "--tls-cert-file",
                        "server.crt",
                        "--tls-key-file",
                        "server.key",
                        "--tls-ca-cert-file",
                        "ca.crt",
                        "--tls-auth-clients",
                        "no",
                    ]
                    .map(str::to_owned),
                ),
                Kind::Cluster => args.extend(
                    [
                        "--port",
                        &port.to_string(),
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        &format!("nodes-{port}.conf"),
                        "--cluster-node-timeout",
                        "2000",
                    ]
                    .map(str::to_owned),
                ),
            }
            let child = Command::new("redis-server")
                .args(&args)
                .current_dir(&self.dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server runs (it is on PATH: start_kind checked)");
            self.children.push(child);
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.answers().await {
            assert!(
                Instant::now() < deadline,
                "redis-server ({:?}) did not start on ports {:?}",
                self.kind,
                self.ports
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether every node answers a `PING` (a cluster: reports `cluster_state:ok`, once made).
    async fn answers(&self) -> bool {
        for &port in &self.ports {
            let client = match self.kind {
                Kind::Tls => redis::Client::build_with_tls(
                    self.url(),
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(self.ca_pem.clone().into_bytes()),
                    },
                ),
                _ => redis::Client::open(format!("redis://127.0.0.1:{port}/")),
            };
            let Ok(client) = client else { return false };
            let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
                return false;
            };
            let answer = if self.kind == Kind::Cluster {
                redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async::<String>(&mut conn)
                    .await
            } else {
                redis::cmd("PING").query_async::<String>(&mut conn).await
            };
            match answer {
                Ok(info) if self.kind != Kind::Cluster => drop(info),
                // A new cluster has no slots yet: it is made by `create_cluster`.
                Ok(info) if info.contains("cluster_state:ok") || self.unassigned(&info) => {}
                _ => return false,
            }
        }
        true
    }

    /// Whether a cluster node's `CLUSTER INFO` shows a node that was never given slots.
    fn unassigned(&self, info: &str) -> bool {
        !self.dir.join("created").exists() && info.contains("cluster_slots_assigned:0")
    }

    /// Splits the 16384 slots between the three nodes and makes them meet.
    async fn create_cluster(&mut self) {
        let per_node = 16384 / self.ports.len();
        for (i, &port) in self.ports.iter().enumerate() {
            let mut conn = raw_connection(&format!("redis://127.0.0.1:{port}/")).await;
            let first = i * per_node;
            let last = if i + 1 == self.ports.len() {
                16383
            } else {
                first + per_node - 1
            };
            let () = redis::cmd("CLUSTER")
                .arg("ADDSLOTSRANGE")
                .arg(first)
                .arg(last)
                .query_async(&mut conn)
                .await
                .expect("CLUSTER ADDSLOTSRANGE");
            if i > 0 {
                let () = redis::cmd("CLUSTER")
                    .arg("MEET")
                    .arg("127.0.0.1")
                    .arg(self.ports[0])
                    .query_async(&mut conn)
                    .await
                    .expect("CLUSTER MEET");
            }
        }
        std::fs::write(self.dir.join("created"), b"").expect("a marker file");
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.answers().await {
            assert!(
                Instant::now() < deadline,
                "the cluster on {:?} did not form",
                self.ports
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill(&mut self) {
        for mut child in self.children.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Makes a CA and a certificate for 127.0.0.1 signed by it, writes `ca.crt`, `server.crt` and
/// `server.key` into `dir`, and returns the CA's PEM.
fn write_test_certificates(dir: &std::path::Path) -> String {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().expect("a CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "wechat-core test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let key = KeyPair::generate().expect("a server key");
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("server parameters");
    let leaf_cert = leaf
        .signed_by(&key, &ca_cert, &ca_key)
        .expect("server certificate");
    std::fs::write(dir.join("ca.crt"), ca_cert.pem()).expect("ca.crt");
    std::fs::write(dir.join("server.crt"), leaf_cert.pem()).expect("server.crt");
    std::fs::write(dir.join("server.key"), key.serialize_pem()).expect("server.key");
    ca_cert.pem()
}

/// Counts the warnings logged on this thread.
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<String>>>);

impl Warnings {
    fn containing(&self, text: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|w| w.contains(text))
            .count()
    }
}

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl tracing::Subscriber for Warnings {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::WARN
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        self.0.lock().unwrap().push(message.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Requests jsapi_tickets in a loop on every process until stopped, counting outcomes.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    first_error: Arc<Mutex<Option<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(processes: &[Process], workers_per_process: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let first_error = Arc::new(Mutex::new(None));
        let mut tasks = Vec::new();
        for p in processes {
            for _ in 0..workers_per_process {
                let (tokens, stop, ok, failed, first_error) = (
                    p.tokens.clone(),
                    stop.clone(),
                    ok.clone(),
                    failed.clone(),
                    first_error.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        match tokens.jsapi_ticket().await {
                            Ok(_) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                first_error
                                    .lock()
                                    .unwrap()
                                    .get_or_insert_with(|| e.to_string());
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }));
            }
        }
        Self {
            stop,
            ok,
            failed,
            first_error,
            tasks,
        }
    }

    fn assert_no_failure(&self, phase: &str) {
        assert_eq!(
            self.failed.load(Ordering::Relaxed),
            0,
            "{phase}: a request failed: {:?}",
            self.first_error.lock().unwrap()
        );
    }

    async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("load task");
        }
        self.ok.load(Ordering::Relaxed)
    }
}

/// Waits until every process's store answers again.
async fn wait_until_redis_answers(processes: &[Process]) -> Duration {
    let started = Instant::now();
    for p in processes {
        while p.store.get(TOKEN_KEY).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the stores did not reconnect to Redis"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    started.elapsed()
}

// One thread, so that the warnings subscriber sees every task's events.
#[tokio::test]
async fn redis_stopped_during_load_fails_no_request_and_is_shared_again_after_restart() {
    outage_during_load(Kind::Plain).await;
}

#[tokio::test]
async fn redis_over_tls_stopped_during_load_fails_no_request() {
    outage_during_load(Kind::Tls).await;
}

#[tokio::test]
async fn a_redis_cluster_stopped_during_load_fails_no_request() {
    outage_during_load(Kind::Cluster).await;
}

async fn outage_during_load(kind: Kind) {
    let Some(mut server) = RedisServer::start_kind(kind).await else {
        return;
    };
    let warnings = Warnings::default();
    let _subscriber = tracing::subscriber::set_default(warnings.clone());
    let prefix = unique_prefix("outage");
    let sim = start_sim().await;
    let mut processes = Vec::new();
    for _ in 0..4 {
        let store = server
            .builder()
            .prefix(&prefix)
            .retry_after_failure(Duration::from_millis(200))
            .connect()
            .await
            .expect("own redis-server");
        processes.push(process(&sim, store, Duration::from_secs(2)).await);
    }
    let load = Load::start(&processes, 10);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        (
            sim.stats().calls_to(TOKEN_PATH),
            sim.stats().calls_to(TICKET_PATH)
        ),
        (1, 1)
    );
    load.assert_no_failure("before the outage");

    // Redis goes away; then everything expires, so that every process must refresh without it.
    server.kill();
    sim.advance_clock(TTL + 1);
    tokio::time::sleep(Duration::from_millis(700)).await;
    load.assert_no_failure("Redis down");
    let during = sim.stats().calls_to(TOKEN_PATH) - 1;
    assert!(
        (1..=8).contains(&during),
        "each process refreshed on its own: {during} token calls"
    );
    // A down Redis answers at once (within the pause after a failure), not after a timeout.
    let started = Instant::now();
    for _ in 0..100 {
        assert!(processes[0].store.get(TOKEN_KEY).await.is_err());
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "100 reads of a down Redis took {:?}",
        started.elapsed()
    );
    // ...and a second expiry during the same outage is survived too.
    sim.advance_clock(TTL + 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    load.assert_no_failure("Redis still down");

    // Redis comes back (empty): the processes use it again.
    server.restart().await;
    let reconnect = wait_until_redis_answers(&processes).await;
    load.assert_no_failure("Redis restarted");
    let (tokens_before, tickets_before) = (
        sim.stats().calls_to(TOKEN_PATH),
        sim.stats().calls_to(TICKET_PATH),
    );
    sim.advance_clock(TTL + 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let shared = shared_access_token(&processes).await;
    let stats = sim.stats();
    assert_eq!(
        stats.calls_to(TOKEN_PATH) - tokens_before,
        1,
        "shared again: one token refresh for the 4"
    );
    assert_eq!(
        stats.calls_to(TICKET_PATH) - tickets_before,
        1,
        "shared again: one ticket refresh for the 4"
    );
    let stored = processes[3]
        .store
        .get(TOKEN_KEY)
        .await
        .unwrap()
        .expect("the new token is in Redis");
    assert_eq!(stored.value(), shared);

    let served = load.finish().await;
    assert!(served > 1000, "only {served} requests were made");
    let outage_warnings = warnings.containing("token store unavailable");
    assert_eq!(
        outage_warnings, 4,
        "one warning per process per outage, not per request or per credential"
    );
    assert_eq!(
        warnings.containing("refresh failed"),
        0,
        "no refresh failed"
    );
    let _ = writeln!(
        std::io::stderr(),
        "redis figures ({kind:?}): outage test served {served} requests, 0 failed; {during} token calls while Redis was \
         down; reconnected {reconnect:?} after restart; {outage_warnings} outage warnings"
    );
}

/// Four processes on a Redis over TLS or in a cluster share one token and one ticket, cold and
/// after an expiry, and the store's scripts (the fenced write, compare-and-expire, the lock) run
/// there: in a cluster each key and its lock are in one hash slot.
async fn shared_through(kind: Kind) {
    let Some(server) = RedisServer::start_kind(kind).await else {
        return;
    };
    let prefix = unique_prefix("topology");
    let sim = start_sim().await;
    let mut processes = Vec::new();
    for _ in 0..4 {
        let store = server
            .builder()
            .prefix(&prefix)
            .connect()
            .await
            .expect("Redis answers");
        processes.push(process(&sim, store, Duration::from_secs(5)).await);
    }
    let first = tickets_from_all(&processes, 250).await;
    assert_eq!(
        (
            sim.stats().calls_to(TOKEN_PATH),
            sim.stats().calls_to(TICKET_PATH)
        ),
        (1, 1),
        "{kind:?}: one token and one ticket call for four processes"
    );
    sim.advance_clock(TTL + 1);
    let second = tickets_from_all(&processes, 250).await;
    assert_ne!(first, second);
    assert_eq!(
        (
            sim.stats().calls_to(TOKEN_PATH),
            sim.stats().calls_to(TICKET_PATH)
        ),
        (2, 2),
        "{kind:?}: one refresh of each for four processes"
    );
    shared_access_token(&processes).await;

    let store = &processes[0].store;
    let now = wechat_core::clock::SystemClock.now_unix_secs();
    let lease = store
        .try_lock("k", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("the lock is free");
    assert!(
        store
            .try_lock("k", Duration::from_secs(5))
            .await
            .unwrap()
            .is_none(),
        "{kind:?}: held"
    );
    let token = StoredToken::new("NEW", now + 100);
    assert!(
        store.set_fenced("k", &token, Some(&lease)).await.unwrap(),
        "{kind:?}: fenced write"
    );
    assert!(!store.expire_if("k", "OTHER").await.unwrap());
    assert!(
        store.expire_if("k", "NEW").await.unwrap(),
        "{kind:?}: compare-and-expire"
    );
    store.unlock("k", &lease).await.unwrap();
    assert!(
        store
            .try_lock("k", Duration::from_secs(5))
            .await
            .unwrap()
            .is_some(),
        "{kind:?}: released"
    );
    let description = store.describe_key("k");
    let expected = if kind == Kind::Tls {
        "rediss://127.0.0.1"
    } else {
        "127.0.0.1"
    };
    assert!(description.contains(expected), "{description}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_processes_share_tokens_through_redis_over_tls() {
    shared_through(Kind::Tls).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_processes_share_tokens_through_a_redis_cluster() {
    shared_through(Kind::Cluster).await;
}

#[tokio::test]
async fn a_tls_server_with_an_unknown_certificate_is_refused() {
    let Some(server) = RedisServer::start_kind(Kind::Tls).await else {
        return;
    };
    // Without the test CA, the Mozilla roots do not vouch for the server's certificate.
    let err = RedisStore::connect(&server.url()).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("rediss://127.0.0.1"), "{msg}");
    assert!(msg.to_ascii_lowercase().contains("certificate"), "{msg}");
    // A plain-TCP client of a TLS-only port gets no answer it can use either.
    let plain = server.url().replacen("rediss://", "redis://", 1);
    assert!(RedisStore::connect(&plain).await.is_err());
}
