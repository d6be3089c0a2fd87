//! WeChat Pay API v3 against wechat-sim over real HTTP on 127.0.0.1, in each way of verifying
//! WeChat Pay (its public key, platform certificates, both): prepay, the page's parameters
//! checked by the simulated WeChat client, payment, the notification verified and recorded once
//! despite duplicates, queries, close, refund and its notification; then every refusal: forged,
//! tampered, stale, unknown-serial and probe notifications, answers whose signature does not
//! verify, a wrong merchant key, and 5xx / SYSTEM_ERROR retried within bounds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wechat_core::PayError;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use wechat_core::pay::v3::{
    BrandWcPayParams, JsapiOrder, MAX_NOTIFICATION_BODY, MerchantKey, OrderRef, PayApiErrorCode,
    PayClient, PayConfig, RefundRequest, RefundStatus, TradeState, WechatPayPublicKey,
};
use wechat_core::pay::{ApiVersion, NotificationReply};
use wechat_core::testing::json_request_headers as json_headers;
use wechat_core::token::MemoryStore;
use wechat_core::{Error, OutRefundNo, OutTradeNo};
use wechat_sim::fixtures::{self, ALICE, APPID, BOB, MCH_ID, MerchantKeyPair};
use wechat_sim::{RunningSim, Simulator};

mod common;

const PRICE: u64 = 101;
const WAIT: Duration = Duration::from_secs(10);

/// How the merchant verifies WeChat Pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    PublicKey,
    Certificates,
    Combined,
}

/// What the shop recorded, as an application would: each payment and refund once.
#[derive(Default)]
struct Shop {
    paid: HashMap<String, u64>,
    refunded: HashMap<String, (u64, RefundStatus)>,
    handler_calls: u32,
}

struct World {
    sim: RunningSim,
    pay: PayClient,
    shop: Arc<Mutex<Shop>>,
    notify_base: String,
    http: reqwest::Client,
}

fn sim_toml(platform_certificate: bool) -> String {
    format!(
        r#"[[apps]]
appid = "{APPID}"
secret = "{secret}"

[[users]]
appid = "{APPID}"
openid = "{ALICE}"
nickname = "Alice"

[[users]]
appid = "{APPID}"
openid = "{BOB}"
nickname = "Bob"

{merchant}"#,
        secret = fixtures::SECRET,
        merchant = fixtures::v3_merchant_toml(MerchantKeyPair::shared(), platform_certificate),
    )
}

fn merchant_key() -> MerchantKey {
    let keys = MerchantKeyPair::shared();
    MerchantKey::from_pem(keys.private_key_pem.as_bytes(), keys.serial.as_str()).unwrap()
}

fn config(sim: &RunningSim, mode: Mode, notify_base: &str, key: MerchantKey) -> PayConfig {
    let mut builder = PayConfig::builder(
        MCH_ID,
        APPID,
        key,
        fixtures::APIV3_KEY,
        format!("{notify_base}/pay/notify"),
    )
    .base_url(sim.base_url())
    .refund_notify_url(format!("{notify_base}/pay/refund-notify"))
    .timeout(Duration::from_secs(5));
    if mode != Mode::Certificates {
        let (id, pem) = sim.pay_public_key(MCH_ID).unwrap();
        builder = builder
            .wechat_pay_public_key(WechatPayPublicKey::from_pem(id, pem.as_bytes()).unwrap());
    }
    if mode != Mode::PublicKey {
        builder = builder.platform_certificates();
    }
    builder.build().unwrap()
}

impl World {
    async fn start(mode: Mode) -> Self {
        let sim = Simulator::from_toml_str(&sim_toml(mode != Mode::PublicKey))
            .unwrap()
            .start()
            .await
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let notify_base = format!("http://{}", listener.local_addr().unwrap());
        let pay = PayClient::new(config(&sim, mode, &notify_base, merchant_key())).unwrap();
        let shop = Arc::new(Mutex::new(Shop::default()));
        serve(listener, pay.clone(), Arc::clone(&shop));
        Self {
            sim,
            pay,
            shop,
            notify_base,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }

    async fn control(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.sim.base_url()))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn fail(&self, query: &str) {
        let response = self
            .http
            .post(format!("{}/_sim/fail?{query}", self.sim.base_url()))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{query}: {}",
            response.text().await.unwrap()
        );
    }

    /// Places an order and pays it through the simulated WeChat client.
    async fn paid_order(&self, out_trade_no: &str) -> BrandWcPayParams {
        let order = JsapiOrder::new(out_trade_no, "Coffee", PRICE, ALICE);
        let (_, params) = self.pay.create_jsapi_order(&order).await.unwrap();
        let (_, confirmed) = self
            .control("/_sim/pay/confirm", serde_json::to_value(&params).unwrap())
            .await;
        assert_eq!(
            confirmed["err_msg"], "get_brand_wcpay_request:ok",
            "{confirmed}"
        );
        self.wait_for(|shop| shop.paid.contains_key(out_trade_no))
            .await;
        params
    }

    async fn wait_for(&self, done: impl Fn(&Shop) -> bool) {
        let start = Instant::now();
        while !done(&self.shop.lock().unwrap()) {
            assert!(
                start.elapsed() < WAIT,
                "timed out waiting for a notification"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The shop's notification endpoints: a tiny hyper server in front of the client's handlers.
fn serve(listener: TcpListener, pay: PayClient, shop: Arc<Mutex<Shop>>) {
    common::serve(listener, move |request: hyper::Request<Incoming>| {
        let (pay, shop) = (pay.clone(), Arc::clone(&shop));
        async move { route(&pay, &shop, request).await }
    });
}

async fn route(
    pay: &PayClient,
    shop: &Arc<Mutex<Shop>>,
    request: hyper::Request<Incoming>,
) -> http::Response<Bytes> {
    let (parts, body) = request.into_parts();
    let Ok(body) = Limited::new(body, MAX_NOTIFICATION_BODY).collect().await else {
        return NotificationReply::too_large(ApiVersion::V3).into_response();
    };
    let body = body.to_bytes();
    let reply = match parts.uri.path() {
        "/pay/notify" => {
            pay.handle_payment_notification(&parts.headers, &body, |n| async move {
                let mut shop = shop.lock().unwrap();
                shop.handler_calls += 1;
                // Idempotent: a duplicate is acknowledged, never recorded twice.
                shop.paid
                    .entry(n.out_trade_no.into_string())
                    .or_insert(n.total);
                Ok::<(), String>(())
            })
            .await
        }
        "/pay/refund-notify" => {
            pay.handle_refund_notification(&parts.headers, &body, |n| async move {
                let mut shop = shop.lock().unwrap();
                shop.handler_calls += 1;
                let refund = n.refund;
                shop.refunded
                    .entry(refund.out_refund_no.into_string())
                    .or_insert((refund.amount.refund, refund.refund_status));
                Ok::<(), String>(())
            })
            .await
        }
        _ => NotificationReply::fail(ApiVersion::V3, http::StatusCode::NOT_FOUND, "no such route"),
    };
    reply.into_response()
}

/// The whole flow, in one mode.
async fn full_flow(mode: Mode) {
    let world = World::start(mode).await;

    // The verifier's keys: the public key, the downloaded certificate, or both.
    let keys = world.pay.wechat_pay_keys().await.unwrap();
    match mode {
        Mode::PublicKey => {
            assert_eq!(keys.serial(), Some(fixtures::PAY_PUBLIC_KEY_ID));
            assert!(keys.certificates().is_empty());
        }
        Mode::Certificates => {
            assert!(keys.public_key().is_none());
            assert_eq!(keys.certificates().len(), 1);
        }
        Mode::Combined => {
            assert!(keys.public_key().is_some());
            assert_eq!(keys.certificates().len(), 1);
        }
    }

    // Prepay and the page's parameters, checked as the WeChat client checks them.
    let order = JsapiOrder::new("T3FLOW000001", "Coffee", PRICE, ALICE).with_attach("table=7");
    let (prepay, params) = world.pay.create_jsapi_order(&order).await.unwrap();
    assert_eq!(params.sign_type, "RSA");
    assert_eq!(params.prepay_id(), Some(prepay.prepay_id.as_str()));
    let (_, checked) = world
        .control("/_sim/pay/check", serde_json::to_value(&params).unwrap())
        .await;
    assert_eq!(checked["ok"], true, "{checked}");
    assert_eq!(checked["total_fee"], PRICE);
    // A paySign by another key is refused by the WeChat client.
    let mut forged = params.clone();
    forged.nonce_str.push('x');
    let (_, checked) = world
        .control("/_sim/pay/check", serde_json::to_value(&forged).unwrap())
        .await;
    assert_eq!(checked["ok"], false, "{checked}");
    // The same order again with the same parameters: the same prepay id.
    let again = world.pay.prepay(&order).await.unwrap();
    assert_eq!(again.prepay_id, prepay.prepay_id);

    // Unpaid: found by out_trade_no only.
    let unpaid = world
        .pay
        .query_order(&OrderRef::OutTradeNo(OutTradeNo::from("T3FLOW000001")))
        .await
        .unwrap();
    assert_eq!(unpaid.trade_state, TradeState::NotPay);

    // Pay; the notification is verified, handed over and recorded.
    let (_, confirmed) = world
        .control("/_sim/pay/confirm", serde_json::to_value(&params).unwrap())
        .await;
    assert_eq!(
        confirmed["err_msg"], "get_brand_wcpay_request:ok",
        "{confirmed}"
    );
    world
        .wait_for(|shop| shop.paid.contains_key("T3FLOW000001"))
        .await;
    assert_eq!(world.shop.lock().unwrap().paid["T3FLOW000001"], PRICE);

    // Sent again byte for byte: acknowledged again, recorded once.
    let (status, resent) = world
        .control(
            "/_sim/pay/notify",
            json!({"out_trade_no": "T3FLOW000001", "mode": "duplicate"}),
        )
        .await;
    assert_eq!(status, 200, "{resent}");
    assert_eq!(resent["acknowledged"], true, "{resent}");
    {
        let shop = world.shop.lock().unwrap();
        assert_eq!(shop.paid.len(), 1);
        assert_eq!(
            shop.handler_calls, 2,
            "the handler saw the duplicate, and kept one record"
        );
    }

    // Every forged or replayed notification is refused before the handler.
    let calls = world.shop.lock().unwrap().handler_calls;
    for mode in [
        "tampered_body",
        "stale_timestamp",
        "unknown_serial",
        "signtest",
    ] {
        let (status, resent) = world
            .control(
                "/_sim/pay/notify",
                json!({"out_trade_no": "T3FLOW000001", "mode": mode}),
            )
            .await;
        assert_eq!(status, 200, "{mode}: {resent}");
        assert_eq!(resent["acknowledged"], false, "{mode}: {resent}");
        let code = resent["status"].as_u64().unwrap();
        assert!((400..500).contains(&code), "{mode}: {resent}");
    }
    assert_eq!(world.shop.lock().unwrap().handler_calls, calls);

    // Queries, both ways.
    let paid = world
        .pay
        .query_order(&OrderRef::OutTradeNo(OutTradeNo::from("T3FLOW000001")))
        .await
        .unwrap();
    assert_eq!(paid.trade_state, TradeState::Success);
    assert_eq!(paid.total(), Some(PRICE));
    assert_eq!(paid.attach.as_deref(), Some("table=7"));
    let transaction_id = paid.transaction_id.clone().unwrap();
    let by_id = world
        .pay
        .query_order(&OrderRef::TransactionId(transaction_id))
        .await
        .unwrap();
    assert_eq!(by_id.out_trade_no.as_str(), "T3FLOW000001");
    let missing = world
        .pay
        .query_order(&OrderRef::OutTradeNo(OutTradeNo::from("T3NOSUCHORDER")))
        .await
        .unwrap_err();
    assert!(
        matches!(&missing, Error::Pay(PayError::Api(e)) if e.code == PayApiErrorCode::OrderNotExist && e.status == 404 && e.request_id.is_some()),
        "{missing:?}"
    );

    // Refund: accepted as PROCESSING, then notified and queried as SUCCESS; idempotent.
    let refund = RefundRequest::new(OutTradeNo::from("T3FLOW000001"), "R3FLOW000001", PRICE, 30);
    let accepted = world.pay.refund(&refund).await.unwrap();
    assert_eq!(accepted.amount.refund, 30);
    let same = world.pay.refund(&refund).await.unwrap();
    assert_eq!(
        same.refund_id, accepted.refund_id,
        "the same out_refund_no is the same refund"
    );
    world
        .wait_for(|shop| shop.refunded.contains_key("R3FLOW000001"))
        .await;
    assert_eq!(
        world.shop.lock().unwrap().refunded["R3FLOW000001"],
        (30, RefundStatus::Success)
    );
    let queried = world
        .pay
        .query_refund(&OutRefundNo::from("R3FLOW000001"))
        .await
        .unwrap();
    assert_eq!(queried.status, RefundStatus::Success);
    let (_, resent) = world
        .control(
            "/_sim/pay/notify",
            json!({"out_refund_no": "R3FLOW000001", "mode": "tampered_body"}),
        )
        .await;
    assert_eq!(resent["acknowledged"], false, "{resent}");
    let (_, resent) = world
        .control(
            "/_sim/pay/notify",
            json!({"out_refund_no": "R3FLOW000001", "mode": "duplicate"}),
        )
        .await;
    assert_eq!(resent["acknowledged"], true, "{resent}");
    let too_much = RefundRequest::new(
        OutTradeNo::from("T3FLOW000001"),
        "R3FLOW000002",
        PRICE,
        PRICE,
    );
    assert!(matches!(
        world.pay.refund(&too_much).await,
        Err(Error::Pay(PayError::Api(_)))
    ));

    // Close an unpaid order; it cannot be ordered again.
    let other = JsapiOrder::new("T3FLOW000002", "Tea", 50, BOB);
    world.pay.prepay(&other).await.unwrap();
    world
        .pay
        .close_order(&OutTradeNo::from("T3FLOW000002"))
        .await
        .unwrap();
    let closed = world
        .pay
        .query_order(&OrderRef::OutTradeNo(OutTradeNo::from("T3FLOW000002")))
        .await
        .unwrap();
    assert_eq!(closed.trade_state, TradeState::Closed);
    let err = world.pay.prepay(&other).await.unwrap_err();
    assert!(
        matches!(&err, Error::Pay(PayError::Api(e)) if e.code == PayApiErrorCode::OrderClosed),
        "{err:?}"
    );

    world.sim.shutdown().await;
}

#[tokio::test]
async fn v3_flow_with_the_wechat_pay_public_key() {
    full_flow(Mode::PublicKey).await;
}

#[tokio::test]
async fn v3_flow_with_platform_certificates() {
    full_flow(Mode::Certificates).await;
}

#[tokio::test]
async fn v3_flow_with_both_while_switching() {
    full_flow(Mode::Combined).await;
}

#[tokio::test]
async fn answers_that_do_not_verify_are_refused_not_returned() {
    let world = World::start(Mode::PublicKey).await;
    world.paid_order("T3FORGED0001").await;
    let path = "/v3/pay/transactions/out-trade-no/T3FORGED0001";
    let query = OrderRef::OutTradeNo(OutTradeNo::from("T3FORGED0001"));
    for fault in ["bad_signature", "unsigned"] {
        world.fail(&format!("path={path}&fault={fault}")).await;
        let err = world.pay.query_order(&query).await.unwrap_err();
        let Error::Pay(PayError::ForgedReply { request_id, .. }) = &err else {
            panic!("{fault}: {err:?}");
        };
        assert!(request_id.is_some(), "{err}");
    }
    // Nothing queued any more: the genuine answer is accepted.
    assert!(world.pay.query_order(&query).await.is_ok());

    // A client that trusts another WeChat Pay key refuses the simulator's genuine answers.
    let other = PayConfig::builder(
        MCH_ID,
        APPID,
        merchant_key(),
        fixtures::APIV3_KEY,
        format!("{}/pay/notify", world.notify_base),
    )
    .base_url(world.sim.base_url())
    .wechat_pay_public_key(
        WechatPayPublicKey::from_pem(
            fixtures::PAY_PUBLIC_KEY_ID,
            MerchantKeyPair::shared().public_key_pem.as_bytes(),
        )
        .unwrap(),
    )
    .build()
    .unwrap();
    let stranger = PayClient::new(other).unwrap();
    assert!(matches!(
        stranger.query_order(&query).await,
        Err(Error::Pay(PayError::ForgedReply { .. }))
    ));
    world.sim.shutdown().await;
}

#[tokio::test]
async fn a_wrong_merchant_key_is_a_sign_error_and_not_retried() {
    let world = World::start(Mode::PublicKey).await;
    let other_key = std::fs::read(format!(
        "{}/tests/data/other_rsa_private_key.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let key = MerchantKey::from_pem(&other_key, MerchantKeyPair::shared().serial.as_str()).unwrap();
    let pay = PayClient::new(config(&world.sim, Mode::PublicKey, &world.notify_base, key)).unwrap();
    let before = world.sim.stats().calls_to("/v3/pay/transactions/jsapi");
    let err = pay
        .prepay(&JsapiOrder::new("T3SIGNERR001", "Coffee", PRICE, ALICE))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Pay(PayError::Api(e)) if e.code == PayApiErrorCode::SignError && e.status == 401),
        "{err:?}"
    );
    assert_eq!(
        world.sim.stats().calls_to("/v3/pay/transactions/jsapi") - before,
        1
    );
    world.sim.shutdown().await;
}

#[tokio::test]
async fn system_errors_and_5xx_are_retried_within_bounds() {
    let world = World::start(Mode::PublicKey).await;
    let path = "/v3/pay/transactions/jsapi";
    let calls = || world.sim.stats().calls_to(path);

    // Two failures, then success: three attempts with the same body.
    world
        .fail(&format!("path={path}&status=500&code=SYSTEM_ERROR&times=1"))
        .await;
    world
        .fail(&format!(
            "path={path}&status=503&code=SERVICE_UNAVAILABLE&times=1"
        ))
        .await;
    let before = calls();
    let order = JsapiOrder::new("T3RETRY00001", "Coffee", PRICE, ALICE);
    world.pay.prepay(&order).await.unwrap();
    assert_eq!(calls() - before, 3);

    // Failing every time: given up after three attempts, with the last error.
    world
        .fail(&format!("path={path}&status=500&code=SYSTEM_ERROR&times=3"))
        .await;
    let before = calls();
    let err = world
        .pay
        .prepay(&JsapiOrder::new("T3RETRY00002", "Coffee", PRICE, ALICE))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Pay(PayError::Api(e)) if e.code == PayApiErrorCode::SystemError),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(calls() - before, 3);

    // A business error is answered at once.
    world
        .fail(&format!("path={path}&status=403&code=NO_AUTH&times=1"))
        .await;
    let before = calls();
    let err = world.pay.prepay(&order).await.unwrap_err();
    assert!(
        matches!(&err, Error::Pay(PayError::Api(e)) if e.code == PayApiErrorCode::NoAuth),
        "{err:?}"
    );
    assert_eq!(calls() - before, 1);
    world.sim.shutdown().await;
}

#[tokio::test]
async fn a_public_key_merchant_has_no_platform_certificates() {
    let sim = Simulator::from_toml_str(&sim_toml(false))
        .unwrap()
        .start()
        .await
        .unwrap();
    let pay = PayClient::new(config(
        &sim,
        Mode::Certificates,
        "http://127.0.0.1:9",
        merchant_key(),
    ))
    .unwrap();
    let err = pay.download_certificates().await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert!(
        text.contains("RESOURCE_NOT_EXISTS") && text.contains("public key"),
        "{text}"
    );

    // Combined: the public key alone is used from then on, and calls work.
    let pay = PayClient::new(config(
        &sim,
        Mode::Combined,
        "http://127.0.0.1:9",
        merchant_key(),
    ))
    .unwrap();
    let keys = pay.wechat_pay_keys().await.unwrap();
    assert!(keys.certificates().is_empty());
    pay.prepay(&JsapiOrder::new("T3COMBINED01", "Coffee", PRICE, ALICE))
        .await
        .unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn platform_certificates_are_shared_through_the_store() {
    let sim = Simulator::from_toml_str(&sim_toml(true))
        .unwrap()
        .start()
        .await
        .unwrap();
    let store = Arc::new(MemoryStore::default());
    let clients: Vec<PayClient> = (0..3)
        .map(|_| {
            PayClient::new(config(
                &sim,
                Mode::Certificates,
                "http://127.0.0.1:9",
                merchant_key(),
            ))
            .unwrap()
            .with_certificate_store(store.clone(), "wechat:")
        })
        .collect();
    for pay in &clients {
        let keys = pay.wechat_pay_keys().await.unwrap();
        assert_eq!(keys.certificates().len(), 1);
    }
    assert_eq!(
        sim.stats().calls_to("/v3/certificates"),
        1,
        "one download for three processes"
    );
    let serial = clients[2].wechat_pay_keys().await.unwrap().certificates()[0]
        .serial_no()
        .to_owned();
    assert_eq!(serial.len() % 2, 0);
    // The stored value is WeChat Pay's encrypted list, not usable key material by itself.
    let stored = wechat_core::token::TokenStore::get(
        store.as_ref(),
        &format!("wechat:wechatpay_certificates:{MCH_ID}"),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        stored.value().contains("AEAD_AES_256_GCM")
            && !stored.value().contains("BEGIN CERTIFICATE")
    );
    sim.shutdown().await;
}

/// The payment routes serve v3 with the same JSON and the same backend as v2.
#[tokio::test]
async fn the_payment_routes_serve_v3() {
    use wechat_core::OpenId;
    use wechat_core::routes::{CreatedOrder, OrderLimits, OrderStatus};

    let (sim, shop, routes) = routes_world(OrderLimits::default()).await;
    assert_eq!(routes.client().version(), "v3");
    let alice = OpenId::new(ALICE);
    let response = routes
        .create_order(&alice, "127.0.0.1".parse().unwrap(), &json_headers(), b"{}")
        .await;
    assert_eq!(response.status(), http::StatusCode::OK);
    let created: CreatedOrder = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(created.params.sign_type, "RSA");
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        let request = http.post(format!("{}{path}", sim.base_url())).json(&body);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let status = |no: String| {
        let routes = routes.clone();
        let alice = alice.clone();
        async move {
            let response = routes.order_status(&alice, &no).await;
            serde_json::from_slice::<Value>(response.body()).unwrap()["status"].clone()
        }
    };
    assert_eq!(status(created.out_trade_no.clone()).await, "unpaid");
    let confirmed = post(
        "/_sim/pay/confirm",
        serde_json::to_value(&created.params).unwrap(),
    )
    .await;
    assert_eq!(
        confirmed["err_msg"], "get_brand_wcpay_request:ok",
        "{confirmed}"
    );
    let start = Instant::now();
    while shop.status(&created.out_trade_no) != Some(OrderStatus::Paid) {
        assert!(start.elapsed() < WAIT, "the v3 notification did not arrive");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status(created.out_trade_no.clone()).await, "paid");
    assert_eq!(shop.payments()[0].total_fee, PRICE);

    // A re-sent notification is acknowledged again; forged ones change nothing.
    let resent = post(
        "/_sim/pay/notify",
        json!({"out_trade_no": created.out_trade_no, "mode": "duplicate"}),
    )
    .await;
    assert_eq!(resent["acknowledged"], true, "{resent}");
    let count = shop.payment_count();
    for mode in [
        "tampered_body",
        "stale_timestamp",
        "unknown_serial",
        "signtest",
    ] {
        let resent = post(
            "/_sim/pay/notify",
            json!({"out_trade_no": created.out_trade_no, "mode": mode}),
        )
        .await;
        assert_eq!(resent["acknowledged"], false, "{mode}: {resent}");
        let body = resent.to_string();
        assert!(!body.contains(fixtures::APIV3_KEY), "{body}");
    }
    assert_eq!(shop.payment_count(), count);
    assert_eq!(shop.status(&created.out_trade_no), Some(OrderStatus::Paid));

    // An unreadable notification is answered in v3's format.
    let unreadable = routes.notification_unreadable(false);
    assert_eq!(unreadable.status(), http::StatusCode::BAD_REQUEST);
    let json: Value = serde_json::from_slice(unreadable.body()).unwrap();
    assert_eq!(json["code"], "FAIL");
    sim.shutdown().await;
}

/// The simulator, an in-memory shop, and the payment routes over them with `limits`, their
/// notification routes served on 127.0.0.1.
async fn routes_world(
    limits: wechat_core::routes::OrderLimits,
) -> (
    RunningSim,
    Arc<wechat_core::testing::MemoryOrders>,
    wechat_core::routes::PayRoutes,
) {
    let sim = Simulator::from_toml_str(&sim_toml(false))
        .unwrap()
        .start()
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let notify_base = format!("http://{}", listener.local_addr().unwrap());
    let shop = Arc::new(wechat_core::testing::MemoryOrders::new(PRICE));
    let pay = PayClient::new(config(&sim, Mode::PublicKey, &notify_base, merchant_key())).unwrap();
    let routes = wechat_core::routes::PayRoutes::new(pay, shop.clone()).with_limits(limits);
    serve_pay_routes(listener, routes.clone());
    (sim, shop, routes)
}

/// Serves the notification routes of `routes` on `listener`, as an application does.
fn serve_pay_routes(listener: TcpListener, routes: wechat_core::routes::PayRoutes) {
    use wechat_core::routes::PayRoutes;
    common::serve(listener, move |request: hyper::Request<Incoming>| {
        let routes = routes.clone();
        async move {
            let (parts, body) = request.into_parts();
            match Limited::new(body, PayRoutes::MAX_BODY).collect().await {
                Err(_) => routes.notification_unreadable(true),
                Ok(body) if parts.uri.path() == "/pay/notify" => {
                    routes
                        .payment_notify(&parts.headers, &body.to_bytes())
                        .await
                }
                Ok(body) => routes.refund_notify(&parts.headers, &body.to_bytes()).await,
            }
        }
    });
}

#[tokio::test]
async fn an_unpaid_order_is_reused_only_for_the_same_order() {
    use wechat_core::OpenId;
    use wechat_core::routes::{CreatedOrder, OrderLimits};

    let (sim, shop, routes) = routes_world(OrderLimits::default()).await;
    let ip = "127.0.0.1".parse().unwrap();
    let alice = OpenId::new(ALICE);
    let create = |body: &'static str| {
        let routes = routes.clone();
        let alice = alice.clone();
        async move {
            let response = routes
                .create_order(&alice, ip, &json_headers(), body.as_bytes())
                .await;
            assert_eq!(response.status(), http::StatusCode::OK, "{body}");
            serde_json::from_slice::<CreatedOrder>(response.body())
                .unwrap()
                .out_trade_no
        }
    };
    let prepays = || sim.stats().calls_to("/v3/pay/transactions/jsapi");

    // Two concurrent identical requests (a double click): one order.
    let (a, b) = tokio::join!(create(r#"{"item":"red"}"#), create(r#"{"item":"red"}"#));
    assert_eq!(a, b);
    assert_eq!(prepays(), 1);
    // The same request written otherwise is the same order.
    let spaced = create(r#"{ "item" : "red" }"#).await;
    assert_eq!(spaced, a);
    // Another item at the same price, with the same description: another order, which the
    // buyer pays for that item.
    let blue = create(r#"{"item":"blue"}"#).await;
    assert_ne!(
        blue, a,
        "the blue item must not be handed the red item's order"
    );
    assert_eq!(prepays(), 2);
    assert_eq!(shop.order_count(), 2);
    // And each again gets its own.
    let (red_again, blue_again) =
        tokio::join!(create(r#"{"item":"red"}"#), create(r#"{"item":"blue"}"#));
    assert_eq!((red_again, blue_again), (a, blue));
    assert_eq!(prepays(), 2);
}

#[tokio::test]
async fn the_payment_routes_reuse_unpaid_orders_throttle_queries_and_bound_buyers() {
    use wechat_core::OpenId;
    use wechat_core::routes::{CreatedOrder, OrderLimits, OrderStatus};

    let (sim, shop, routes) = routes_world(OrderLimits {
        orders_per_minute: 3,
        ..OrderLimits::default()
    })
    .await;
    let ip = "127.0.0.1".parse().unwrap();
    let alice = OpenId::new(ALICE);
    let create = |buyer: OpenId, headers: http::HeaderMap| {
        let routes = routes.clone();
        async move { routes.create_order(&buyer, ip, &headers, b"{}").await }
    };
    let prepays = || sim.stats().calls_to("/v3/pay/transactions/jsapi");

    // Not JSON (what a cross-site form sends): refused before anything happens.
    let mut form = http::HeaderMap::new();
    form.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    for headers in [form, http::HeaderMap::new()] {
        let refused = create(alice.clone(), headers).await;
        assert_eq!(refused.status(), http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    assert_eq!(prepays(), 0);

    // A double click (two concurrent requests) and a reload: one order, one prepay.
    let (a, b) = tokio::join!(
        create(alice.clone(), json_headers()),
        create(alice.clone(), json_headers())
    );
    let reload = create(alice.clone(), json_headers()).await;
    let numbers: Vec<String> = [a, b, reload]
        .iter()
        .map(|r| {
            assert_eq!(r.status(), http::StatusCode::OK);
            serde_json::from_slice::<CreatedOrder>(r.body())
                .unwrap()
                .out_trade_no
        })
        .collect();
    assert!(numbers.iter().all(|n| *n == numbers[0]), "{numbers:?}");
    assert_eq!(prepays(), 1);
    let order = numbers[0].clone();

    // However fast the page polls, WeChat is asked once per interval.
    let query_path = format!("/v3/pay/transactions/out-trade-no/{order}");
    for _ in 0..5 {
        let response = routes.order_status(&alice, &order).await;
        assert_eq!(response.status(), http::StatusCode::OK);
    }
    assert_eq!(sim.stats().calls_to(&query_path), 1);

    // Once paid, the same item is a new order.
    let created: CreatedOrder =
        serde_json::from_slice(create(alice.clone(), json_headers()).await.body()).unwrap();
    let confirmed: Value = reqwest::Client::new()
        .post(format!("{}/_sim/pay/confirm", sim.base_url()))
        .json(&created.params)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        confirmed["err_msg"], "get_brand_wcpay_request:ok",
        "{confirmed}"
    );
    let start = Instant::now();
    while shop.status(&order) != Some(OrderStatus::Paid) {
        assert!(start.elapsed() < WAIT, "the v3 notification did not arrive");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let next = create(alice.clone(), json_headers()).await;
    let next: CreatedOrder = serde_json::from_slice(next.body()).unwrap();
    assert_ne!(next.out_trade_no, order);
    assert_eq!(prepays(), 2);

    // Three new orders a minute for this buyer (reuse off, so each request is new): the fourth
    // gets 429 with Retry-After; another buyer is not affected.
    let strict = routes.clone().with_limits(OrderLimits {
        orders_per_minute: 3,
        reuse_window: Duration::ZERO,
        ..OrderLimits::default()
    });
    let bob = OpenId::new(BOB);
    for _ in 0..3 {
        let ok = strict.create_order(&bob, ip, &json_headers(), b"{}").await;
        assert_eq!(ok.status(), http::StatusCode::OK);
    }
    let limited = strict.create_order(&bob, ip, &json_headers(), b"{}").await;
    assert_eq!(limited.status(), http::StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = limited.headers()[http::header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(prepays(), 5);
    assert_eq!(
        strict
            .create_order(&alice, ip, &json_headers(), b"{}")
            .await
            .status(),
        http::StatusCode::OK
    );
}
