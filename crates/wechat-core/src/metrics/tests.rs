//! The metrics as an app's recorder sees them: a `DebuggingRecorder` installed for one thread
//! (`with_local_recorder`), the calls made against wechat-sim or the payment routes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ::metrics::with_local_recorder;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

use super::{outcome_of, pay_code};
use crate::pay::v2::{self, PayFields, SignType, sign_pay_fields};
use crate::routes::PayRoutes;
use crate::testing::{self, MemoryOrders, TEST_API_KEY};
use crate::token::Tokens;
use crate::{ApiError, ApiErrorKind};
use crate::{BaseUrls, Config, PayApiKey, TokenEndpoint, build_http_client};

const APPID: &str = "wxlocked0000000001";
const SECRET: &str = "fedcba9876543210fedcba9876543210";
const BUYER: &str = "oBuyerOpenid0001";
const ORDER: &str = "T20240101000123";

/// One recorded series: name, labels, and the counter's value (or the histogram's sample count).
#[derive(Debug)]
struct Series {
    name: String,
    labels: HashMap<String, String>,
    value: u64,
}

fn series(snapshotter: &Snapshotter) -> Vec<Series> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            Series {
                name: key.name().to_owned(),
                labels: key
                    .labels()
                    .map(|l| (l.key().to_owned(), l.value().to_owned()))
                    .collect(),
                value: match value {
                    DebugValue::Counter(n) => n,
                    DebugValue::Histogram(samples) => samples.len() as u64,
                    DebugValue::Gauge(_) => 0,
                },
            }
        })
        .collect()
}

/// The value of the series `name` whose labels include `labels`.
fn value(all: &[Series], name: &str, labels: &[(&str, &str)]) -> u64 {
    all.iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

/// Runs `test` on a current-thread runtime with a fresh recorder for this thread.
fn recorded<F: std::future::Future<Output = ()>>(test: impl FnOnce() -> F) -> Vec<Series> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    with_local_recorder(&recorder, || runtime.block_on(test()));
    series(&snapshotter)
}

fn assert_no_secret_in_labels(all: &[Series], secrets: &[&str]) {
    for s in all {
        for (key, value) in &s.labels {
            for secret in secrets {
                assert!(
                    !value.contains(secret),
                    "{}{{{key}={value:?}}} carries {secret:?}",
                    s.name
                );
            }
        }
    }
}

#[test]
fn a_refused_token_call_counts_its_errcode() {
    let all = recorded(|| async {
        let sim = wechat_sim::Simulator::from_toml_str(&format!(
            "[[apps]]\nappid = \"{APPID}\"\nsecret = \"{SECRET}\"\nip_whitelist = [\"10.0.0.1\"]\n"
        ))
        .unwrap()
        .start()
        .await
        .unwrap();
        let config = Config::new(APPID, SECRET)
            .with_token_endpoint(TokenEndpoint::Token)
            .with_base_urls(BaseUrls::all(&sim.base_url()))
            .with_timeout(Duration::from_secs(10));
        let tokens = Tokens::builder(&config, build_http_client(&config).unwrap())
            .build()
            .unwrap();
        let err = tokens.access_token().await.unwrap_err();
        assert!(
            matches!(
                err,
                crate::Error::WeChat(ApiError {
                    kind: ApiErrorKind::IpNotWhitelisted { .. },
                    errcode: 40164,
                    ..
                })
            ),
            "{err:?}"
        );
        // During the failure backoff the error is replayed, not asked again.
        assert!(tokens.access_token().await.is_err());
    });
    let calls = [("endpoint", "cgi-bin/token"), ("outcome", "40164")];
    assert_eq!(
        value(&all, "wechat_api_requests_total", &calls),
        1,
        "{all:#?}"
    );
    assert_eq!(
        value(
            &all,
            "wechat_api_request_duration_seconds",
            &[("endpoint", "cgi-bin/token")]
        ),
        1
    );
    assert_eq!(
        value(
            &all,
            "wechat_token_refreshes_total",
            &[("kind", "access_token"), ("reason", "missing")]
        ),
        1,
        "{all:#?}"
    );
    assert_no_secret_in_labels(&all, &[SECRET, APPID, "secret=", "?"]);
}

#[test]
fn a_stable_token_is_counted_as_such_and_ok() {
    let all = recorded(|| async {
        let sim = wechat_sim::Simulator::from_toml_str(&format!(
            "[[apps]]\nappid = \"{APPID}\"\nsecret = \"{SECRET}\"\nip_whitelist = []\n"
        ))
        .unwrap()
        .start()
        .await
        .unwrap();
        let config = Config::new(APPID, SECRET)
            .with_token_endpoint(TokenEndpoint::StableToken)
            .with_base_urls(BaseUrls::all(&sim.base_url()));
        let tokens = Tokens::builder(&config, build_http_client(&config).unwrap())
            .build()
            .unwrap();
        let token = tokens.access_token().await.unwrap();
        tokens.jsapi_ticket().await.unwrap();
        // A rejected token is invalidated and fetched anew.
        tokens.invalidate_access_token(&token).await;
        tokens.access_token().await.unwrap();
    });
    let ok = |endpoint| {
        value(
            &all,
            "wechat_api_requests_total",
            &[("endpoint", endpoint), ("outcome", "ok")],
        )
    };
    // The first fetch, then after the rejection one normal ask (the same token back) and one
    // with force_refresh.
    assert_eq!(ok("cgi-bin/stable_token"), 3, "{all:#?}");
    assert_eq!(ok("cgi-bin/ticket/getticket"), 1, "{all:#?}");
    let refreshes = |kind, reason| {
        value(
            &all,
            "wechat_token_refreshes_total",
            &[("kind", kind), ("reason", reason)],
        )
    };
    assert_eq!(refreshes("stable_token", "missing"), 1, "{all:#?}");
    assert_eq!(refreshes("stable_token", "invalidated"), 1, "{all:#?}");
    assert_eq!(refreshes("jsapi_ticket", "missing"), 1, "{all:#?}");
}

fn routes(shop: Arc<MemoryOrders>) -> PayRoutes {
    // Nothing listens on port 9 of 127.0.0.1: no WeChat call is needed here.
    let config = testing::pay_config("http://127.0.0.1:9", "https://shop.example/pay/notify")
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    PayRoutes::new(v2::PayClient::new(config).unwrap(), shop)
}

fn notification(sign_with: &str) -> Vec<u8> {
    let mut fields: PayFields = [
        ("return_code", "SUCCESS"),
        ("result_code", "SUCCESS"),
        ("appid", testing::TEST_APPID),
        ("mch_id", testing::TEST_MCH_ID),
        ("out_trade_no", ORDER),
        ("transaction_id", "4200000123456789"),
        ("openid", BUYER),
        ("total_fee", "100"),
        ("nonce_str", "n"),
    ]
    .into_iter()
    .collect();
    let sign = sign_pay_fields(&fields, &PayApiKey::new(sign_with), SignType::Md5);
    fields.insert("sign", sign);
    fields.to_xml().unwrap().into_bytes()
}

#[test]
fn notifications_count_accepted_duplicate_and_refused() {
    let all = recorded(|| async {
        let shop = Arc::new(MemoryOrders::new(100));
        shop.insert_unpaid(ORDER, BUYER, 100);
        let routes = routes(shop.clone());
        let headers = http::HeaderMap::new();
        let forged = notification("00000000000000000000000000000000");
        let reply = routes.payment_notify(&headers, &forged).await;
        assert_eq!(reply.status(), http::StatusCode::BAD_REQUEST);
        let genuine = notification(TEST_API_KEY);
        for _ in 0..2 {
            let reply = routes.payment_notify(&headers, &genuine).await;
            assert_eq!(reply.status(), http::StatusCode::OK);
        }
        assert_eq!(shop.status(ORDER), Some(crate::routes::OrderStatus::Paid));
        routes.notification_unreadable(true);
    });
    let notifications = |outcome, reason| {
        value(
            &all,
            "wechat_pay_notifications_total",
            &[("version", "v2"), ("outcome", outcome), ("reason", reason)],
        )
    };
    assert_eq!(notifications("refused", "bad_signature"), 1, "{all:#?}");
    assert_eq!(notifications("accepted", ""), 1, "{all:#?}");
    assert_eq!(notifications("duplicate", ""), 1, "{all:#?}");
    assert_eq!(notifications("refused", "too_large"), 1, "{all:#?}");
    assert_eq!(
        value(
            &all,
            "wechat_signature_failures_total",
            &[("kind", "pay_notification")]
        ),
        1
    );
    assert_no_secret_in_labels(&all, &[BUYER, ORDER, "4200000123456789", TEST_API_KEY]);
}

#[test]
fn pay_codes_are_bounded_labels() {
    assert_eq!(pay_code("ORDERNOTEXIST"), "ORDERNOTEXIST");
    assert_eq!(pay_code("SIGN_ERROR"), "SIGN_ERROR");
    assert_eq!(pay_code(""), "other");
    assert_eq!(pay_code("签名错误"), "other");
    assert_eq!(pay_code("order T1 for oBuyer"), "other");
    let busy: crate::Result<()> = Err(crate::Error::from_errcode(
        "/cgi-bin/ticket/getticket",
        -1,
        "test",
    ));
    assert_eq!(outcome_of(&busy), "-1");
    let api: crate::Result<()> = Err(crate::Error::from_errcode(
        "/cgi-bin/token",
        40164,
        "invalid ip 1.2.3.4",
    ));
    assert_eq!(outcome_of(&api), "40164");
}
