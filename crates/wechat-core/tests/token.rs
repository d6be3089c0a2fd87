//! The access token and jsapi_ticket managers against wechat-sim over 127.0.0.1.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;
use wechat_core::clock::OffsetClock;
use wechat_core::token::{LockLease, StoredToken, TokenStore, Tokens};
use wechat_core::{
    AccessToken, ApiError, ApiErrorKind, BaseUrls, Config, Error, TokenEndpoint, build_http_client,
};
use wechat_sim::{RunningSim, Simulator};

const APPID: &str = "wx1234567890abcdef";
const SECRET: &str = "0123456789abcdef0123456789abcdef";
const LOCKED_APPID: &str = "wxlocked0000000001";
const LOCKED_SECRET: &str = "fedcba9876543210fedcba9876543210";

const SIM_CONFIG: &str = r#"
token_ttl_secs = 7200
[[apps]]
appid = "wx1234567890abcdef"
secret = "0123456789abcdef0123456789abcdef"
ip_whitelist = []
oauth_domains = ["127.0.0.1:3000"]
js_domains = ["127.0.0.1:3000"]

[[apps]]
appid = "wxlocked0000000001"
secret = "fedcba9876543210fedcba9876543210"
ip_whitelist = ["10.0.0.1"]
"#;

struct Harness {
    sim: RunningSim,
    clock: Arc<OffsetClock>,
    http: reqwest::Client,
}

impl Harness {
    async fn start() -> Self {
        let sim = Simulator::from_toml_str(SIM_CONFIG)
            .expect("valid sim config")
            .start()
            .await
            .expect("sim starts");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Self {
            sim,
            clock: Arc::default(),
            http,
        }
    }

    fn config(&self, appid: &str, secret: &str) -> Config {
        // These tests are about cgi-bin/token (which retires tokens); stable_token has its own.
        Config::new(appid, secret)
            .with_token_endpoint(TokenEndpoint::Token)
            .with_base_urls(BaseUrls::all(&self.sim.base_url()))
            .with_timeout(Duration::from_secs(10))
    }

    /// A client with its own in-memory store (like a separate process without a shared store).
    fn tokens_for(&self, config: &Config) -> Tokens {
        Tokens::builder(config, build_http_client(config).unwrap())
            .clock(self.clock.clone())
            .build()
            .unwrap()
    }

    fn tokens(&self) -> Tokens {
        self.tokens_for(&self.config(APPID, SECRET))
    }

    /// Moves the simulator's clock and the clients' clock forward together.
    fn advance(&self, secs: u64) {
        self.sim.advance_clock(secs);
        self.clock.advance(secs);
    }

    fn calls(&self, path: &str) -> u64 {
        self.sim.stats().calls_to(path)
    }

    /// `GET /_sim/stats` over HTTP.
    async fn calls_over_http(&self, path: &str) -> u64 {
        let stats: serde_json::Value = self
            .http
            .get(format!("{}/_sim/stats", self.sim.base_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        stats["calls"][path].as_u64().unwrap_or(0)
    }

    /// Queues `times` WeChat errors for the next requests to `path`.
    async fn inject(&self, path: &str, errcode: i64, times: u32) {
        let response = self
            .http
            .post(format!(
                "{}/_sim/fail?path={path}&errcode={errcode}&times={times}",
                self.sim.base_url()
            ))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_on_a_cold_cache_make_one_upstream_call() {
    let h = Harness::start().await;
    let tokens = h.tokens();
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let tokens = tokens.clone();
            tokio::spawn(async move { tokens.access_token().await })
        })
        .collect();
    let mut values = Vec::new();
    for task in tasks {
        values.push(task.await.unwrap().expect("token"));
    }
    assert!(values.iter().all(|v| *v == values[0]));
    assert_eq!(h.calls_over_http("/cgi-bin/token").await, 1);
    // And it is cached afterwards.
    assert_eq!(tokens.access_token().await.unwrap(), values[0]);
    assert_eq!(h.calls("/cgi-bin/token"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_ticket_callers_make_one_token_and_one_ticket_call() {
    let h = Harness::start().await;
    let tokens = h.tokens();
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let tokens = tokens.clone();
            tokio::spawn(async move { tokens.jsapi_ticket().await })
        })
        .collect();
    let mut values = Vec::new();
    for task in tasks {
        values.push(task.await.unwrap().expect("ticket"));
    }
    assert!(values.iter().all(|v| *v == values[0]));
    assert_eq!(h.calls_over_http("/cgi-bin/token").await, 1);
    assert_eq!(h.calls_over_http("/cgi-bin/ticket/getticket").await, 1);
}

#[tokio::test]
async fn an_expired_token_is_refreshed() {
    let h = Harness::start().await;
    let tokens = h.tokens();
    let first = tokens.access_token().await.unwrap();
    assert_eq!(tokens.access_token().await.unwrap(), first);
    assert_eq!(h.calls("/cgi-bin/token"), 1);

    h.advance(7201);
    let second = tokens.access_token().await.unwrap();
    assert_ne!(second, first);
    assert_eq!(h.calls("/cgi-bin/token"), 2);
    // The new token works, and the old one stays replaced.
    tokens
        .jsapi_ticket()
        .await
        .expect("ticket with the new token");
    assert_eq!(h.calls("/cgi-bin/token"), 2);
    assert_eq!(h.calls("/cgi-bin/ticket/getticket"), 1);
}

#[tokio::test]
async fn a_token_retired_by_another_client_gets_40001_and_is_refreshed_once() {
    let h = Harness::start().await;
    let first_client = h.tokens();
    let other_client = h.tokens(); // its own MemoryStore: a second process without a shared store
    let retired = first_client.access_token().await.unwrap();
    let newer = other_client.access_token().await.unwrap();
    assert_ne!(retired, newer);
    assert_eq!(h.calls("/cgi-bin/token"), 2);

    // WeChat keeps a replaced token working for 5 minutes.
    h.advance(5 * 60 + 1);
    assert_eq!(
        first_client.access_token().await.unwrap(),
        retired,
        "still valid by its expiry"
    );

    let ticket = first_client
        .jsapi_ticket()
        .await
        .expect("refreshed and retried");
    assert!(!ticket.expose_secret().is_empty());
    assert_eq!(h.calls("/cgi-bin/token"), 3, "exactly one extra token call");
    assert_eq!(
        h.calls("/cgi-bin/ticket/getticket"),
        2,
        "one 40001, one success"
    );
    let replacement = first_client.access_token().await.unwrap();
    assert_ne!(replacement, retired);
    assert_eq!(h.calls("/cgi-bin/token"), 3);
}

#[tokio::test]
async fn call_with_token_retries_a_rejected_token_once() {
    let h = Harness::start().await;
    let tokens = h.tokens();
    let retired = tokens.access_token().await.unwrap();
    h.tokens().access_token().await.unwrap(); // retires `retired` after 5 minutes
    h.advance(301);

    let url = format!("{}/cgi-bin/ticket/getticket", h.sim.base_url());
    let seen = std::sync::Mutex::new(Vec::<AccessToken>::new());
    let ticket: String = tokens
        .call_with_token(|token| {
            seen.lock().unwrap().push(token.clone());
            use_token(h.http.clone(), url.clone(), token)
        })
        .await
        .expect("second attempt succeeds");
    assert!(!ticket.is_empty());
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], retired);
    assert_ne!(seen[1], retired);
    assert_eq!(h.calls("/cgi-bin/token"), 3);
}

/// Uses `token` the way an application does: a `getticket` call, which WeChat answers with
/// 40001 or 42001 for a retired or expired token.
async fn use_token(
    http: reqwest::Client,
    url: String,
    token: AccessToken,
) -> Result<String, Error> {
    let http_error = |e: reqwest::Error| Error::Http {
        endpoint: "/cgi-bin/ticket/getticket",
        source: e.without_url(),
    };
    let reply: serde_json::Value = http
        .get(url)
        .query(&[("access_token", token.expose_secret()), ("type", "jsapi")])
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(http_error)?
        .json()
        .await
        .map_err(http_error)?;
    match reply["errcode"].as_i64() {
        Some(code) if code != 0 => Err(Error::from_errcode(
            "/cgi-bin/ticket/getticket",
            code,
            reply["errmsg"].as_str().unwrap_or(""),
        )),
        _ => Ok(reply["ticket"].as_str().unwrap_or_default().to_owned()),
    }
}

/// A shared store that is down for good (Redis unreachable).
struct DownStore;

impl TokenStore for DownStore {
    fn get<'a>(&'a self, _: &'a str) -> BoxFuture<'a, wechat_core::Result<Option<StoredToken>>> {
        Box::pin(async { Err(Error::Store("connection refused".into())) })
    }
    fn set<'a>(&'a self, _: &'a str, _: &'a StoredToken) -> BoxFuture<'a, wechat_core::Result<()>> {
        Box::pin(async { Err(Error::Store("connection refused".into())) })
    }
    fn expire_if<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, wechat_core::Result<bool>> {
        Box::pin(async { Err(Error::Store("connection refused".into())) })
    }
    fn try_lock<'a>(
        &'a self,
        _: &'a str,
        _: Duration,
    ) -> BoxFuture<'a, wechat_core::Result<Option<LockLease>>> {
        Box::pin(async { Err(Error::Store("connection refused".into())) })
    }
    fn unlock<'a>(
        &'a self,
        _: &'a str,
        _: &'a LockLease,
    ) -> BoxFuture<'a, wechat_core::Result<()>> {
        Box::pin(async { Err(Error::Store("connection refused".into())) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_on_cgi_bin_token_survives_a_day_long_store_outage_within_its_quota() {
    // Ten instances whose shared store is down: each cgi-bin/token call retires the other
    // instances' tokens 5 minutes later, so without a limit they would refetch every few
    // minutes each and exhaust the 2,000 daily calls in hours.
    const INSTANCES: usize = 10;
    const STEP_SECS: u64 = 60;
    let h = Harness::start().await;
    let config = h.config(APPID, SECRET);
    let fleet: Vec<Tokens> = (0..INSTANCES)
        .map(|_| {
            Tokens::builder(&config, build_http_client(&config).unwrap())
                .clock(h.clock.clone())
                .store(Arc::new(DownStore))
                .build()
                .unwrap()
        })
        .collect();
    let url = format!("{}/cgi-bin/ticket/getticket", h.sim.base_url());
    let (mut served, mut refused) = (0u64, 0u64);
    for _minute in 0..(86_400 / STEP_SECS) {
        for tokens in &fleet {
            let result = tokens
                .call_with_token(|token| use_token(h.http.clone(), url.clone(), token))
                .await;
            match result {
                Ok(_) => served += 1,
                Err(Error::WeChat(ApiError {
                    kind: ApiErrorKind::QuotaExceeded,
                    ..
                })) => {
                    panic!("the daily quota ran out after {served} calls")
                }
                Err(Error::TokenUnavailable { cause, .. }) => {
                    assert!(cause.contains("StableToken"), "{cause}");
                    refused += 1;
                }
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        h.advance(STEP_SECS);
    }
    let fetched = h.calls("/cgi-bin/token");
    eprintln!("fetched {fetched}, served {served}, refused {refused}");
    assert!(fetched <= 1_500, "{fetched} cgi-bin/token calls in a day");
    // Most calls are still served: each instance waits out at most 10 minutes per cycle.
    assert!(served > refused, "served {served}, refused {refused}");
}

#[tokio::test]
async fn ip_not_whitelisted_names_the_ip_and_is_not_retried() {
    let h = Harness::start().await;
    let tokens = h.tokens_for(&h.config(LOCKED_APPID, LOCKED_SECRET));
    let err = tokens.access_token().await.unwrap_err();
    match &err {
        Error::WeChat(ApiError {
            kind: ApiErrorKind::IpNotWhitelisted { ip },
            errcode,
            ..
        }) => {
            assert_eq!(ip, "127.0.0.1");
            assert_eq!(*errcode, 40164);
        }
        other => panic!("expected IpNotWhitelisted, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("127.0.0.1") && message.contains("IP whitelist"),
        "{message}"
    );
    // Callers right after get the same error without another request.
    for _ in 0..20 {
        assert!(matches!(
            tokens.access_token().await,
            Err(Error::WeChat(ApiError {
                kind: ApiErrorKind::IpNotWhitelisted { .. },
                ..
            }))
        ));
    }
    assert!(matches!(
        tokens.jsapi_ticket().await,
        Err(Error::WeChat(ApiError {
            kind: ApiErrorKind::IpNotWhitelisted { .. },
            ..
        }))
    ));
    assert_eq!(h.calls("/cgi-bin/token"), 1);
    assert_eq!(h.calls("/cgi-bin/ticket/getticket"), 0);
}

#[tokio::test]
async fn a_bad_secret_is_reported_as_such() {
    let h = Harness::start().await;
    let tokens = h.tokens_for(&h.config(APPID, "not-the-secret"));
    let err = tokens.access_token().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::WeChat(ApiError {
                kind: ApiErrorKind::InvalidAppSecret,
                errcode: 40125,
                ..
            })
        ),
        "{err:?}"
    );
    assert!(!err.to_string().contains("not-the-secret"));
    let unknown = h.tokens_for(&h.config("wxunknown000000000", SECRET));
    assert!(matches!(
        unknown.access_token().await,
        Err(Error::WeChat(ApiError {
            kind: ApiErrorKind::InvalidAppId,
            ..
        }))
    ));
}

#[tokio::test]
async fn quota_exceeded_is_not_retried_and_busy_is() {
    let h = Harness::start().await;
    h.inject("/cgi-bin/token", 45009, 1).await;
    let tokens = h.tokens();
    assert!(matches!(
        tokens.access_token().await,
        Err(Error::WeChat(ApiError {
            kind: ApiErrorKind::QuotaExceeded,
            ..
        }))
    ));
    assert_eq!(h.calls("/cgi-bin/token"), 1);

    h.inject("/cgi-bin/token", -1, 2).await;
    let busy_then_ok = h.tokens();
    busy_then_ok
        .access_token()
        .await
        .expect("-1 is retried with backoff");
    assert_eq!(h.calls("/cgi-bin/token"), 4);
}

#[tokio::test]
async fn stable_token_mode_works_and_recovers_from_a_revoked_token() {
    let h = Harness::start().await;
    let config = h
        .config(APPID, SECRET)
        .with_token_endpoint(TokenEndpoint::StableToken);
    let tokens = h.tokens_for(&config);
    let stable = tokens.access_token().await.unwrap();
    // Another process on stable_token gets the same token and does not retire ours.
    let other = h.tokens_for(&config);
    assert_eq!(other.access_token().await.unwrap(), stable);
    assert_eq!(h.calls("/cgi-bin/stable_token"), 2);
    assert_eq!(h.calls("/cgi-bin/token"), 0);
    tokens
        .jsapi_ticket()
        .await
        .expect("ticket with a stable token");

    // Someone forces a refresh (a leaked token): ours is revoked at once.
    let reply: serde_json::Value = h
        .http
        .post(format!("{}/cgi-bin/stable_token", h.sim.base_url()))
        .json(&serde_json::json!({"grant_type": "client_credential", "appid": APPID, "secret": SECRET, "force_refresh": true}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let forced = reply["access_token"].as_str().unwrap().to_owned();
    assert_ne!(forced, stable.expose_secret());

    let ran = AtomicU64::new(0);
    let used = tokens
        .call_with_token(|token| {
            ran.fetch_add(1, Ordering::SeqCst);
            let revoked = token == stable;
            async move {
                if revoked {
                    Err(Error::from_errcode(
                        "/cgi-bin/ticket/getticket",
                        40001,
                        "test",
                    ))
                } else {
                    Ok(token)
                }
            }
        })
        .await
        .unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 2);
    assert_eq!(
        used.expose_secret(),
        forced,
        "the replacement is adopted without forcing again"
    );
    assert_eq!(h.calls("/cgi-bin/stable_token"), 4);

    // A rejected token that stable_token still hands out: only then is a refresh forced.
    h.advance(31);
    let rejected = tokens.access_token().await.unwrap();
    let used = tokens
        .call_with_token(|token| {
            let bad = token == rejected;
            async move {
                if bad {
                    Err(Error::from_errcode(
                        "/cgi-bin/ticket/getticket",
                        42001,
                        "test",
                    ))
                } else {
                    Ok(token)
                }
            }
        })
        .await
        .unwrap();
    assert_ne!(used, rejected);
    assert_eq!(
        h.calls("/cgi-bin/stable_token"),
        6,
        "a normal call returning the same token, then a forced one"
    );
    // The forced refresh revoked the rejected token on the simulator too.
    let reply: serde_json::Value = h
        .http
        .get(format!("{}/cgi-bin/ticket/getticket", h.sim.base_url()))
        .query(&[
            ("access_token", rejected.expose_secret()),
            ("type", "jsapi"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["errcode"], 40001, "{reply}");
}
