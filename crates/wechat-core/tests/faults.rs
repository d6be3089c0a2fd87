//! Every retry path of the clients, against faults the simulator injects over real HTTP on
//! 127.0.0.1 (`POST /_sim/fail`): busy errors, 5xx, dropped connections, malformed bodies and
//! answers whose signature does not verify, on the token endpoint, the OAuth code exchange, Pay
//! v2 and Pay v3. What may be repeated is sent again (3 attempts in all, the same request);
//! what may not (a code exchange, a forged answer, a malformed one) fails at once with a clear
//! error.

use std::sync::Arc;
use std::time::Duration;
use wechat_core::PayError;

use wechat_core::oauth::OAuthClient;
use wechat_core::pay::{v2, v3};
use wechat_core::token::{MemoryStore, Tokens};
use wechat_core::{ApiError, ApiErrorKind};
use wechat_core::{BaseUrls, Config, Error, OpenId, OutTradeNo, build_http_client};
use wechat_sim::fixtures::{self, ALICE, APPID, MCH_ID, MerchantKeyPair};
use wechat_sim::{RunningSim, Simulator};

const WAIT: Duration = Duration::from_secs(10);

async fn start() -> RunningSim {
    let toml = format!(
        r#"[[apps]]
appid = "{APPID}"
secret = "{secret}"

[[users]]
appid = "{APPID}"
openid = "{ALICE}"
nickname = "Alice"

{merchant}"#,
        secret = fixtures::SECRET,
        merchant = fixtures::v3_merchant_toml(MerchantKeyPair::shared(), false),
    );
    Simulator::from_toml_str(&toml)
        .unwrap()
        .start()
        .await
        .unwrap()
}

/// Queues a fault: `POST /_sim/fail?path=…&times=…&<fault>`.
async fn fail(sim: &RunningSim, path: &str, times: u32, fault: &[(&str, &str)]) {
    let times = times.to_string();
    let mut query = vec![("path", path), ("times", times.as_str())];
    query.extend_from_slice(fault);
    let response = reqwest::Client::new()
        .post(format!("{}/_sim/fail", sim.base_url()))
        .query(&query)
        .timeout(WAIT)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path} {fault:?}: {}",
        response.text().await.unwrap()
    );
}

fn config(sim: &RunningSim) -> Config {
    Config::new(APPID, fixtures::SECRET)
        .with_base_urls(BaseUrls::all(&sim.base_url()))
        .with_timeout(Duration::from_secs(5))
}

/// The query parameters of one `/_sim/fail` fault.
type Fault = &'static [(&'static str, &'static str)];

/// A fault that must not be retried, and the error it must give.
type Refusal = (Fault, fn(&Error) -> bool);

/// The faults that may clear up on their own: each is retried.
const TRANSIENT: [Fault; 3] = [
    &[("status", "502")],
    &[("status", "503")],
    &[("fault", "drop")],
];

#[tokio::test]
async fn token_fetches_ride_out_busy_5xx_and_dropped_connections() {
    let sim = start().await;
    let config = config(&sim);
    let path = "/cgi-bin/stable_token";
    let busy: &[(&str, &str)] = &[("errcode", "-1")];
    for fault in std::iter::once(busy).chain(TRANSIENT) {
        let before = sim.stats().calls_to(path);
        fail(&sim, path, 2, fault).await;
        let tokens = Tokens::new(
            &config,
            build_http_client(&config).unwrap(),
            Arc::new(MemoryStore::new()),
        );
        tokens
            .access_token()
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        assert_eq!(sim.stats().calls_to(path) - before, 3, "{fault:?}");
    }
    // Three in a row: the caller gets the error, after three attempts.
    let before = sim.stats().calls_to(path);
    fail(&sim, path, 3, &[("fault", "drop")]).await;
    let tokens = Tokens::new(
        &config,
        build_http_client(&config).unwrap(),
        Arc::new(MemoryStore::new()),
    );
    let error = tokens.access_token().await.unwrap_err();
    assert!(error.to_string().contains("stable_token"), "{error}");
    assert_eq!(sim.stats().calls_to(path) - before, 3);
    // A malformed body is not WeChat being busy: one attempt, a clear error.
    let before = sim.stats().calls_to(path);
    fail(&sim, path, 1, &[("fault", "malformed")]).await;
    let tokens = Tokens::new(
        &config,
        build_http_client(&config).unwrap(),
        Arc::new(MemoryStore::new()),
    );
    let error = tokens.access_token().await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::TokenUnavailable { .. } | Error::UnexpectedResponse { .. }
        ),
        "{error:?}"
    );
    assert_eq!(sim.stats().calls_to(path) - before, 1);
}

#[tokio::test]
async fn a_code_exchange_is_never_sent_twice() {
    // Repeating a code exchange that reached WeChat would be refused (40163, code used): the
    // user restarts the login instead.
    let sim = start().await;
    let config = config(&sim);
    let client = OAuthClient::new(&config, build_http_client(&config).unwrap());
    let path = "/sns/oauth2/access_token";
    for fault in [
        &[("errcode", "-1")][..],
        &[("status", "502")],
        &[("fault", "drop")],
    ] {
        let before = sim.stats().calls_to(path);
        fail(&sim, path, 1, fault).await;
        let error = client.exchange_code("CODE").await.unwrap_err();
        assert!(
            matches!(
                error,
                Error::WeChat(ApiError {
                    kind: ApiErrorKind::SystemBusy,
                    ..
                })
            ) || error.to_string().contains(path),
            "{fault:?}: {error}"
        );
        assert_eq!(sim.stats().calls_to(path) - before, 1, "{fault:?}");
    }
}

#[tokio::test]
async fn pay_v2_calls_ride_out_system_errors_5xx_and_drops_but_not_forgeries() {
    let sim = start().await;
    let pay = v2::PayClient::new(
        v2::PayConfig::builder(
            MCH_ID,
            APPID,
            fixtures::API_KEY,
            "http://127.0.0.1:9/notify",
        )
        .base_urls(&BaseUrls::all(&sim.base_url()))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap(),
    )
    .unwrap();
    let no = OutTradeNo::new("FAULTSV2000001");
    let order = v2::JsapiOrder::new(no.clone(), "Coffee", 101, OpenId::new(ALICE))
        .with_payer_client_ip("127.0.0.1".parse().unwrap());
    let path = "/pay/unifiedorder";
    fail(&sim, path, 2, &[("err_code", "SYSTEMERROR")]).await;
    pay.prepay(&order).await.unwrap();
    assert_eq!(sim.stats().calls_to(path), 3);

    let query = v2::OrderRef::OutTradeNo(no.clone());
    let path = "/pay/orderquery";
    let busy: &[(&str, &str)] = &[("err_code", "SYSTEMERROR")];
    for fault in std::iter::once(busy).chain(TRANSIENT) {
        let before = sim.stats().calls_to(path);
        fail(&sim, path, 2, fault).await;
        let answer = pay
            .query_order(&query)
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        assert_eq!(answer.out_trade_no.as_ref(), Some(&no));
        assert_eq!(sim.stats().calls_to(path) - before, 3, "{fault:?}");
    }
    // Never retried: an answer that does not verify, one without a sign, a malformed one, a
    // communication failure WeChat reports itself.
    let refused: [Refusal; 4] = [
        (&[("fault", "bad_signature")], |e| {
            matches!(e, Error::Pay(PayError::BadSignature(_)))
        }),
        (&[("fault", "unsigned")], |e| {
            matches!(e, Error::Pay(PayError::BadSignature(_)))
        }),
        (&[("fault", "malformed")], |e| {
            matches!(
                e,
                Error::Pay(PayError::Xml(_)) | Error::UnexpectedResponse { .. }
            )
        }),
        (
            &[("return_code", "FAIL"), ("return_msg", "参数格式校验错误")],
            |e| matches!(e, Error::Pay(PayError::Return { .. })),
        ),
    ];
    for (fault, expected) in refused {
        let before = sim.stats().calls_to(path);
        fail(&sim, path, 1, fault).await;
        let error = pay.query_order(&query).await.unwrap_err();
        assert!(expected(&error), "{fault:?}: {error:?}");
        assert_eq!(sim.stats().calls_to(path) - before, 1, "{fault:?}");
    }
}

#[tokio::test]
async fn pay_v3_calls_ride_out_system_errors_5xx_and_drops_but_not_forgeries() {
    let sim = start().await;
    let keys = MerchantKeyPair::shared();
    let (key_id, key_pem) = sim.pay_public_key(MCH_ID).unwrap();
    let pay = v3::PayClient::new(
        v3::PayConfig::builder(
            MCH_ID,
            APPID,
            v3::MerchantKey::from_pem(keys.private_key_pem.as_bytes(), keys.serial.as_str())
                .unwrap(),
            fixtures::APIV3_KEY,
            "http://127.0.0.1:9/notify",
        )
        .base_url(sim.base_url())
        .wechat_pay_public_key(
            v3::WechatPayPublicKey::from_pem(key_id, key_pem.as_bytes()).unwrap(),
        )
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap(),
    )
    .unwrap();
    let no = OutTradeNo::new("FAULTSV3000001");
    let path = "/v3/pay/transactions/jsapi";
    fail(
        &sim,
        path,
        2,
        &[("status", "500"), ("code", "SYSTEM_ERROR")],
    )
    .await;
    pay.prepay(&v3::JsapiOrder::new(
        no.clone(),
        "Coffee",
        101,
        OpenId::new(ALICE),
    ))
    .await
    .unwrap();
    assert_eq!(sim.stats().calls_to(path), 3);

    let query = v3::OrderRef::OutTradeNo(no.clone());
    let path = format!("/v3/pay/transactions/out-trade-no/{no}");
    let busy: &[(&str, &str)] = &[("status", "500"), ("code", "SYSTEM_ERROR")];
    for fault in std::iter::once(busy).chain(TRANSIENT) {
        let before = sim.stats().calls_to(&path);
        fail(&sim, &path, 2, fault).await;
        let answer = pay
            .query_order(&query)
            .await
            .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        assert_eq!(answer.out_trade_no, no);
        assert_eq!(sim.stats().calls_to(&path) - before, 3, "{fault:?}");
    }
    // Never retried: an answer that does not verify, an unsigned one, and a correctly signed
    // one that cannot be read (the simulator signs the cut body).
    let refused: [Refusal; 3] = [
        (&[("fault", "bad_signature")], |e| {
            matches!(e, Error::Pay(PayError::ForgedReply { .. }))
        }),
        (&[("fault", "unsigned")], |e| {
            matches!(e, Error::Pay(PayError::ForgedReply { .. }))
        }),
        (&[("fault", "malformed")], |e| {
            matches!(e, Error::UnexpectedResponse { .. })
        }),
    ];
    for (fault, expected) in refused {
        let before = sim.stats().calls_to(&path);
        fail(&sim, &path, 1, fault).await;
        let error = pay.query_order(&query).await.unwrap_err();
        assert!(expected(&error), "{fault:?}: {error:?}");
        assert_eq!(sim.stats().calls_to(&path) - before, 1, "{fault:?}");
    }
}
