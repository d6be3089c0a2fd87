//! WeChat Pay v2 against wechat-sim over real HTTP on 127.0.0.1: orders, the page's paySign,
//! notifications (genuine, duplicated, tampered, failing handler), orderquery, closeorder and
//! refunds over mutual TLS.
//!
//! Notifications are received by a tiny hyper server in front of [`PayRoutes`] with an
//! in-memory [`OrderBackend`], so the payment routes' logic is tested here too.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use wechat_core::PayError;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use wechat_core::pay::v2::{
    BrandWcPayParams, ClientCertificate, JsapiOrder, OrderRef, PayClient, PayConfig, PayErrorCode,
    RefundRef, RefundRequest, SignType, TradeState,
};
use wechat_core::routes::{CreatedOrder, OrderStatus, PayRoutes};
use wechat_core::testing::{MemoryOrders, encrypt_refund_req_info, json_request_headers};
use wechat_core::{BaseUrls, Error, OpenId, OutRefundNo, OutTradeNo};
use wechat_sim::{RunningSim, Simulator};
use wechat_test_support::eventually;

mod common;

const APPID: &str = "wx1234567890abcdef";
const MCH_ID: &str = "1900000109";
const API_KEY: &str = "192006250b4c09247ec02edce69f6a2d";
const ALICE: &str = "oAlice0000000000000000000001";
const BOB: &str = "oBob00000000000000000000002";
const PRICE: u64 = 101;
const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// The application's side: the in-memory shop of `wechat_core::testing`.

type Shop = MemoryOrders;

// ---------------------------------------------------------------------------------------------
// The merchant's HTTP server: a tiny hyper server in front of PayRoutes.

/// Serves the payment routes on `listener` until the test ends.
fn serve(listener: TcpListener, routes: PayRoutes) {
    common::serve(listener, move |request: hyper::Request<Incoming>| {
        let routes = routes.clone();
        async move { route(&routes, request).await }
    });
}

async fn route(routes: &PayRoutes, request: hyper::Request<Incoming>) -> http::Response<Bytes> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let body = match Limited::new(body, PayRoutes::MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => {
            return routes.notification_unreadable(true);
        }
    };
    match path.as_str() {
        "/pay/notify" => routes.payment_notify(&parts.headers, &body).await,
        "/pay/refund-notify" => routes.refund_notify(&parts.headers, &body).await,
        _ => {
            let mut response = http::Response::new(Bytes::new());
            *response.status_mut() = http::StatusCode::NOT_FOUND;
            response
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Test world: simulator + shop + receiver.

struct Tls {
    ca_file: PathBuf,
    cert_pem: String,
    key_pem: String,
    /// A certificate the merchant's CA did not sign.
    stranger_cert_pem: String,
    stranger_key_pem: String,
}

impl Drop for Tls {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.ca_file);
    }
}

fn client_cert(name: &str, ca: &rcgen::Certificate, ca_key: &rcgen::KeyPair) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, ca, ca_key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn ca(name: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).unwrap();
    (cert, key)
}

fn make_tls() -> Tls {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let (merchant_ca, merchant_ca_key) = ca("merchant CA");
    let (cert_pem, key_pem) = client_cert(MCH_ID, &merchant_ca, &merchant_ca_key);
    let (stranger_ca, stranger_ca_key) = ca("stranger CA");
    let (stranger_cert_pem, stranger_key_pem) = client_cert(MCH_ID, &stranger_ca, &stranger_ca_key);
    let ca_file = std::env::temp_dir().join(format!(
        "wechat-core-pay-test-{}-{}.pem",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::write(&ca_file, merchant_ca.pem()).unwrap();
    Tls {
        ca_file,
        cert_pem,
        key_pem,
        stranger_cert_pem,
        stranger_key_pem,
    }
}

struct World {
    sim: RunningSim,
    shop: Arc<Shop>,
    client: PayClient,
    routes: PayRoutes,
    receiver: SocketAddr,
    http: reqwest::Client,
    tls: Option<Tls>,
}

#[derive(Default)]
struct Options {
    sign_type: SignType,
    tls: bool,
    /// Payment notifications go nowhere (a lost notification).
    lose_notifications: bool,
}

async fn world(options: Options) -> World {
    let tls = options.tls.then(make_tls);
    let client_ca = tls
        .as_ref()
        .map(|t| t.ca_file.to_string_lossy().replace('\\', "\\\\"))
        .unwrap_or_default();
    let toml = format!(
        r#"
        [[apps]]
        appid = "{APPID}"
        secret = "0123456789abcdef0123456789abcdef"

        [[apps]]
        appid = "wxffffffffffffffff"
        secret = "0123456789abcdef0123456789abcdef"

        [[users]]
        appid = "{APPID}"
        openid = "{ALICE}"
        nickname = "Alice"

        [[users]]
        appid = "{APPID}"
        openid = "{BOB}"
        nickname = "Bob"

        [[users]]
        appid = "wxffffffffffffffff"
        openid = "oCarolOfAnotherApp0000000003"
        nickname = "Carol"

        [[merchants]]
        mch_id = "{MCH_ID}"
        api_key = "{API_KEY}"
        appids = ["{APPID}"]
        client_ca = "{client_ca}"
        notify_retry_scale = 0.001
        "#
    );
    let simulator = Simulator::from_toml_str(&toml).unwrap();
    let sim = if tls.is_some() {
        let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let secure = TcpListener::bind("127.0.0.1:0").await.unwrap();
        simulator.start_on(plain, Some(secure)).await.unwrap()
    } else {
        simulator.start().await.unwrap()
    };
    let http = reqwest::Client::builder().timeout(WAIT).build().unwrap();
    let shop = Arc::new(MemoryOrders::new(PRICE));

    // The receiver's address goes into the config: bind it first.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = listener.local_addr().unwrap();
    let notify_base = if options.lose_notifications {
        // Nothing listens on the discard port.
        "http://127.0.0.1:9".to_owned()
    } else {
        format!("http://{receiver}")
    };
    let mut config =
        PayConfig::builder(MCH_ID, APPID, API_KEY, format!("{notify_base}/pay/notify"))
            .sign_type(options.sign_type)
            .base_urls(&BaseUrls::all(&sim.base_url()))
            .refund_notify_url(format!("{notify_base}/pay/refund-notify"))
            .timeout(WAIT);
    if let Some(tls) = &tls {
        let server_ca = http
            .get(format!("{}/_sim/tls/server-ca.pem", sim.base_url()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        config = config
            .secapi_base_url(sim.tls_base_url().unwrap())
            .root_certificate_pem(server_ca.into_bytes())
            .client_certificate(
                ClientCertificate::from_pem(tls.cert_pem.as_bytes(), tls.key_pem.as_bytes())
                    .unwrap(),
            );
    }
    let client = PayClient::new(config.build().unwrap()).unwrap();
    let routes = PayRoutes::new(client.clone(), shop.clone());
    serve(listener, routes.clone());
    World {
        sim,
        shop,
        client,
        routes,
        receiver,
        http,
        tls,
    }
}

impl World {
    fn client(&self) -> &PayClient {
        &self.client
    }

    /// `POST …/pay/orders` as `buyer`, through the routes.
    async fn create_order(&self, buyer: &str, body: &[u8]) -> (http::StatusCode, Value) {
        let response = self
            .routes
            .create_order(
                &OpenId::new(buyer),
                IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)),
                &json_request_headers(),
                body,
            )
            .await;
        (
            response.status(),
            serde_json::from_slice(response.body()).unwrap(),
        )
    }

    async fn new_order(&self, buyer: &str) -> CreatedOrder {
        let (status, body) = self.create_order(buyer, b"{}").await;
        assert_eq!(status, http::StatusCode::OK, "{body}");
        serde_json::from_value(body).unwrap()
    }

    async fn sim_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.sim.base_url()))
            .json(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// What the WeChat client does when the user confirms the pay sheet.
    async fn confirm(&self, params: &BrandWcPayParams) -> Value {
        self.sim_json("/_sim/pay/confirm", &serde_json::to_value(params).unwrap())
            .await
            .1
    }

    async fn pay(&self, params: &BrandWcPayParams) {
        let answer = self.confirm(params).await;
        assert_eq!(answer["err_msg"], "get_brand_wcpay_request:ok", "{answer}");
    }

    async fn status(&self, viewer: &str, out_trade_no: &str) -> (http::StatusCode, Value) {
        let response = self
            .routes
            .order_status(&OpenId::new(viewer), out_trade_no)
            .await;
        (
            response.status(),
            serde_json::from_slice(response.body()).unwrap(),
        )
    }

    /// Asks the simulator to send a (possibly tampered) notification once.
    async fn resend(&self, key: &str, value: &str, mode: &str) -> Value {
        let (status, answer) = self
            .sim_json("/_sim/pay/notify", &json!({ key: value, "mode": mode }))
            .await;
        assert_eq!(status, 200, "{answer}");
        answer
    }
}

// ---------------------------------------------------------------------------------------------
// Tests.

async fn full_flow(sign_type: SignType) {
    let w = world(Options {
        sign_type,
        ..Options::default()
    })
    .await;
    let created = w.new_order(ALICE).await;
    let params = &created.params;
    assert_eq!(params.app_id, APPID);
    assert_eq!(params.sign_type, sign_type.as_str());
    assert!(params.package.starts_with("prepay_id="));
    params
        .verify(&wechat_core::PayApiKey::new(API_KEY))
        .unwrap();
    // The simulator checks the parameters exactly as the WeChat client does.
    let (_, check) = w
        .sim_json("/_sim/pay/check", &serde_json::to_value(params).unwrap())
        .await;
    assert_eq!(check["ok"], true, "{check}");
    assert_eq!(check["total_fee"], PRICE);

    let (status, body) = w.status(ALICE, &created.out_trade_no).await;
    assert_eq!(status, http::StatusCode::OK);
    assert_eq!(
        body,
        json!({"out_trade_no": created.out_trade_no, "status": "unpaid", "total_fee": PRICE})
    );

    w.pay(params).await;
    eventually("the payment notification", || {
        w.shop.status(&created.out_trade_no) == Some(OrderStatus::Paid)
    })
    .await;
    eventually("the acknowledgement", || {
        w.sim.stats().notifications.acknowledged == 1
    })
    .await;
    let paid = w.shop.payments()[0].clone();
    assert_eq!(paid.out_trade_no.as_str(), created.out_trade_no);
    assert_eq!(paid.total_fee, PRICE);
    assert_eq!(paid.openid.as_ref().map(OpenId::as_str), Some(ALICE));
    assert_eq!(paid.appid.as_str(), APPID);
    assert!(!paid.transaction_id.as_str().is_empty());

    // orderquery after payment.
    let query = w
        .client()
        .query_order(&OrderRef::OutTradeNo(paid.out_trade_no.clone()))
        .await
        .unwrap();
    assert_eq!(query.trade_state, TradeState::Success);
    assert_eq!(query.total_fee, Some(PRICE));
    assert_eq!(query.transaction_id.as_ref(), Some(&paid.transaction_id));
    let by_id = w
        .client()
        .query_order(&OrderRef::TransactionId(paid.transaction_id.clone()))
        .await
        .unwrap();
    assert_eq!(by_id.out_trade_no.as_ref(), Some(&paid.out_trade_no));

    let (status, body) = w.status(ALICE, &created.out_trade_no).await;
    assert_eq!(status, http::StatusCode::OK);
    assert_eq!(body["status"], "paid");
    // Paying again is impossible.
    let again = w.confirm(params).await;
    assert_eq!(again["err_msg"], "get_brand_wcpay_request:fail", "{again}");
    let (status, body) = w
        .create_order(
            ALICE,
            json!({"reuse": created.out_trade_no})
                .to_string()
                .as_bytes(),
        )
        .await;
    assert_eq!(status, http::StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("paid or closed"),
        "{body}"
    );
}

#[tokio::test]
async fn order_pay_notify_query_md5() {
    full_flow(SignType::Md5).await;
}

#[tokio::test]
async fn order_pay_notify_query_hmac_sha256() {
    full_flow(SignType::HmacSha256).await;
}

#[tokio::test]
async fn order_status_is_private_and_asks_wechat_when_the_notification_is_lost() {
    let w = world(Options {
        lose_notifications: true,
        ..Options::default()
    })
    .await;
    let created = w.new_order(ALICE).await;
    // Another user cannot see the order, paid or not; an unknown order looks the same.
    let (status, bob) = w.status(BOB, &created.out_trade_no).await;
    assert_eq!(status, http::StatusCode::NOT_FOUND);
    let (_, unknown) = w.status(ALICE, "T9999").await;
    assert_eq!(bob, unknown);

    w.pay(&created.params).await;
    // The notification cannot be delivered; the shop does not know yet.
    eventually("a delivery attempt", || {
        w.sim.stats().notifications.sent >= 1
    })
    .await;
    assert_eq!(
        w.shop.status(&created.out_trade_no),
        Some(OrderStatus::Unpaid)
    );
    let (status, body) = w.status(ALICE, &created.out_trade_no).await;
    assert_eq!(status, http::StatusCode::OK);
    assert_eq!(
        body,
        json!({"out_trade_no": created.out_trade_no, "status": "paid", "total_fee": PRICE})
    );
    // Recorded through on_paid exactly as a notification would be.
    assert_eq!(
        w.shop.status(&created.out_trade_no),
        Some(OrderStatus::Paid)
    );
    assert_eq!(w.shop.payment_count(), 1);
    assert_eq!(w.shop.payments()[0].total_fee, PRICE);
    assert_eq!(w.sim.stats().notifications.acknowledged, 0);
    let (status, _) = w.status(BOB, &created.out_trade_no).await;
    assert_eq!(status, http::StatusCode::NOT_FOUND);
    // Once paid, the stored status is enough: no further orderquery.
    let before = w.sim.stats().calls_to("/pay/orderquery");
    let (_, body) = w.status(ALICE, &created.out_trade_no).await;
    assert_eq!(body["status"], "paid");
    assert_eq!(w.sim.stats().calls_to("/pay/orderquery"), before);
}

#[tokio::test]
async fn tampered_notifications_are_refused_and_duplicates_acknowledged() {
    let w = world(Options::default()).await;
    let created = w.new_order(ALICE).await;
    w.pay(&created.params).await;
    eventually("the acknowledgement", || {
        w.sim.stats().notifications.acknowledged == 1
    })
    .await;
    assert_eq!(w.shop.payment_count(), 1);

    for mode in ["tamper_sign", "tamper_total_fee", "other_appid", "no_sign"] {
        let answer = w.resend("out_trade_no", &created.out_trade_no, mode).await;
        assert_eq!(answer["acknowledged"], false, "{mode}: {answer}");
        assert_eq!(answer["status"], 400, "{mode}: {answer}");
    }
    assert_eq!(
        w.shop.payment_count(),
        1,
        "the handler must never see a forged notification"
    );
    assert_eq!(w.sim.stats().notifications.acknowledged, 1);

    for _ in 0..2 {
        let answer = w
            .resend("out_trade_no", &created.out_trade_no, "duplicate")
            .await;
        assert_eq!(answer["acknowledged"], true, "{answer}");
        assert_eq!(answer["status"], 200, "{answer}");
    }
    assert_eq!(
        w.shop.payment_count(),
        3,
        "each duplicate reaches the (idempotent) handler"
    );
    assert_eq!(w.sim.stats().notifications.acknowledged, 3);
    assert_eq!(
        w.shop.status(&created.out_trade_no),
        Some(OrderStatus::Paid)
    );
}

#[tokio::test]
async fn handler_error_yields_fail_and_the_simulator_retries() {
    let w = world(Options::default()).await;
    w.shop.fail_next_payments(2);
    let created = w.new_order(ALICE).await;
    w.pay(&created.params).await;
    eventually("the third delivery to be acknowledged", || {
        w.sim.stats().notifications.acknowledged == 1
    })
    .await;
    let stats = w.sim.stats().notifications;
    assert!(stats.sent >= 3, "{stats:?}");
    assert_eq!(w.shop.payment_count(), 3);
    assert_eq!(
        w.shop.status(&created.out_trade_no),
        Some(OrderStatus::Paid)
    );
    // Acknowledged: no more deliveries.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.sim.stats().notifications.sent, stats.sent);
}

#[tokio::test]
async fn xxe_and_oversized_notifications_are_refused_over_http() {
    let w = world(Options::default()).await;
    let url = format!("http://{}/pay/notify", w.receiver);
    let xxe = r#"<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><return_code>SUCCESS</return_code><out_trade_no>&xxe;</out_trade_no></xml>"#;
    let response = w.http.post(&url).body(xxe).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("FAIL"));
    let big = format!(
        "<xml><return_code>SUCCESS</return_code><attach>{}</attach></xml>",
        "x".repeat(1 << 20)
    );
    let response = w.http.post(&url).body(big).send().await.unwrap();
    assert_eq!(response.status(), 413);
    assert!(response.text().await.unwrap().contains("FAIL"));
    let refund_url = format!("http://{}/pay/refund-notify", w.receiver);
    let response = w.http.post(&refund_url).body(xxe).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(w.shop.payment_count(), 0);
    assert!(w.shop.refunds().is_empty());
}

#[tokio::test]
async fn close_an_unpaid_order() {
    let w = world(Options::default()).await;
    let order = JsapiOrder::new("C0001", "Tea", 50, ALICE)
        .with_payer_client_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let (created, params) = w.client().create_jsapi_order(&order).await.unwrap();
    assert!(!created.prepay_id.is_empty());
    assert_eq!(created.trade_type, "JSAPI");
    let no = OutTradeNo::new("C0001");
    let query = w
        .client()
        .query_order(&OrderRef::OutTradeNo(no.clone()))
        .await
        .unwrap();
    assert_eq!(query.trade_state, TradeState::NotPay);
    // Same number, same parameters: the same prepay id.
    assert_eq!(
        w.client().prepay(&order).await.unwrap().prepay_id,
        created.prepay_id
    );

    w.client().close_order(&no).await.unwrap();
    let query = w
        .client()
        .query_order(&OrderRef::OutTradeNo(no.clone()))
        .await
        .unwrap();
    assert_eq!(query.trade_state, TradeState::Closed);
    let answer = w.confirm(&params).await;
    assert_eq!(
        answer["err_msg"], "get_brand_wcpay_request:fail",
        "{answer}"
    );
    match w.client().close_order(&no).await {
        Err(Error::Pay(PayError::Business {
            code: PayErrorCode::OrderClosed,
            ..
        })) => {}
        other => panic!("closing twice: {other:?}"),
    }
    match w.client().prepay(&order).await {
        Err(Error::Pay(PayError::Business {
            code: PayErrorCode::OrderClosed,
            description,
            ..
        })) => assert!(!description.is_empty()),
        other => panic!("reusing a closed number: {other:?}"),
    }
    assert_eq!(w.sim.stats().notifications.sent, 0);
}

#[tokio::test]
async fn wechat_errors_are_typed() {
    let w = world(Options::default()).await;
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let order = JsapiOrder::new("E0001", "Tea", 50, ALICE).with_payer_client_ip(ip);
    w.client().prepay(&order).await.unwrap();
    // Same number, other amount.
    let changed = JsapiOrder::new("E0001", "Tea", 51, ALICE).with_payer_client_ip(ip);
    assert!(matches!(
        w.client().prepay(&changed).await,
        Err(Error::Pay(PayError::Business {
            code: PayErrorCode::OutTradeNoUsed,
            ..
        }))
    ));
    // An openid of another app.
    let stranger = JsapiOrder::new("E0002", "Tea", 50, "oCarolOfAnotherApp0000000003")
        .with_payer_client_ip(ip);
    match w.client().prepay(&stranger).await {
        Err(Error::Pay(PayError::Business {
            code: PayErrorCode::ParamError,
            description,
            ..
        })) => assert!(description.contains("openid"), "{description}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        w.client()
            .query_order(&OrderRef::OutTradeNo(OutTradeNo::new("NOPE")))
            .await,
        Err(Error::Pay(PayError::Business {
            code: PayErrorCode::OrderNotExist,
            ..
        }))
    ));
    // A wrong API key: WeChat answers return_code FAIL (签名错误), which names no secret.
    let wrong = PayConfig::builder(
        MCH_ID,
        APPID,
        "00000000000000000000000000000000",
        "http://127.0.0.1:9/pay/notify",
    )
    .base_urls(&BaseUrls::all(&w.sim.base_url()))
    .build()
    .unwrap();
    let wrong = PayClient::new(wrong).unwrap();
    match wrong
        .prepay(&JsapiOrder::new("E0003", "Tea", 50, ALICE).with_payer_client_ip(ip))
        .await
    {
        Err(Error::Pay(PayError::Return { return_msg, .. })) => assert_eq!(return_msg, "签名错误"),
        other => panic!("{other:?}"),
    }
    // Routes map WeChat failures to 502 JSON with an error id (the message goes to the log).
    let bad_routes = PayRoutes::new(wrong, w.shop.clone());
    let response = bad_routes
        .create_order(&OpenId::new(ALICE), ip, &json_request_headers(), b"{}")
        .await;
    assert_eq!(response.status(), http::StatusCode::BAD_GATEWAY);
    let body: Value = serde_json::from_slice(response.body()).unwrap();
    assert!(
        !body["error"].as_str().unwrap().contains("签名错误") && body["error_id"].is_string(),
        "{body}"
    );
    assert!(
        !body
            .to_string()
            .contains("00000000000000000000000000000000")
    );
    // A refund without a client certificate never leaves the process.
    match w
        .client()
        .refund(&RefundRequest::new(
            OrderRef::OutTradeNo(OutTradeNo::new("E0001")),
            "RF1",
            50,
            50,
        ))
        .await
    {
        Err(Error::Config(message)) => {
            assert!(message.problem().contains("certificate"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn refund_over_mutual_tls_and_refund_notification() {
    let w = world(Options {
        tls: true,
        ..Options::default()
    })
    .await;
    let created = w.new_order(ALICE).await;
    w.pay(&created.params).await;
    eventually("the payment", || {
        w.shop.status(&created.out_trade_no) == Some(OrderStatus::Paid)
    })
    .await;
    let no = OutTradeNo::new(created.out_trade_no.clone());

    let refund = RefundRequest::new(OrderRef::OutTradeNo(no.clone()), "R0001", PRICE, 40)
        .with_description("one item missing");
    let accepted = w.client().refund(&refund).await.unwrap();
    assert_eq!(accepted.out_refund_no.as_str(), "R0001");
    assert_eq!(accepted.refund_fee, 40);
    assert!(!accepted.refund_id.is_empty());
    // Resending the same out_refund_no is the same refund.
    let again = w.client().refund(&refund).await.unwrap();
    assert_eq!(again.refund_id, accepted.refund_id);

    eventually("the refund notification", || !w.shop.refunds().is_empty()).await;
    let notified = w.shop.refunds()[0].clone();
    assert_eq!(notified.out_refund_no, OutRefundNo::new("R0001"));
    assert_eq!(notified.out_trade_no, no);
    assert_eq!(notified.refund_id, accepted.refund_id);
    assert_eq!(notified.refund_fee, 40);
    assert_eq!(notified.total_fee, PRICE);
    assert_eq!(notified.status, wechat_core::routes::RefundStatus::Success);

    let query = w
        .client()
        .query_refund(&RefundRef::OutRefundNo(OutRefundNo::new("R0001")))
        .await
        .unwrap();
    assert_eq!(query.refunds.len(), 1);
    assert_eq!(query.refunds[0].refund_fee, 40);
    assert_eq!(query.refunds[0].refund_id, accepted.refund_id);
    let by_order = w
        .client()
        .query_refund(&RefundRef::OutTradeNo(no.clone()))
        .await
        .unwrap();
    assert_eq!(by_order.refunds.len(), 1);

    // More than what is left to refund.
    let too_much = RefundRequest::new(OrderRef::OutTradeNo(no.clone()), "R0002", PRICE, PRICE);
    assert!(matches!(
        w.client().refund(&too_much).await,
        Err(Error::Pay(PayError::Business { .. }))
    ));

    // Refund notifications: an undecryptable req_info is refused, a duplicate acknowledged.
    let refunds_before = w.shop.refunds().len();
    let answer = w.resend("out_refund_no", "R0001", "tamper_req_info").await;
    assert_eq!(answer["acknowledged"], false, "{answer}");
    assert_eq!(w.shop.refunds().len(), refunds_before);
    let answer = w.resend("out_refund_no", "R0001", "duplicate").await;
    assert_eq!(answer["acknowledged"], true, "{answer}");
    assert_eq!(w.shop.refunds().len(), refunds_before + 1);

    // req_info has no MAC (AES-ECB): one that decrypts but claims what WeChat does not confirm
    // with a signed refundquery (another amount, a refund that does not exist) changes nothing.
    let refund_url = format!("http://{}/pay/refund-notify", w.receiver);
    let forged = |out_refund_no: &str, refund_fee: u64| {
        let root = format!(
            "<root><out_refund_no>{out_refund_no}</out_refund_no><refund_id>{}</refund_id>\
             <out_trade_no>{no}</out_trade_no><transaction_id>{}</transaction_id>\
             <total_fee>{PRICE}</total_fee><refund_fee>{refund_fee}</refund_fee>\
             <refund_status>SUCCESS</refund_status></root>",
            accepted.refund_id, notified.transaction_id
        );
        let req_info = encrypt_refund_req_info(root.as_bytes(), &API_KEY.into());
        format!(
            "<xml><return_code>SUCCESS</return_code><appid>{APPID}</appid>\
             <mch_id>{MCH_ID}</mch_id><nonce_str>n</nonce_str><req_info>{req_info}</req_info></xml>"
        )
    };
    let before = w.shop.refunds().len();
    for body in [forged("R0001", PRICE), forged("R9999", 40)] {
        let response = w.http.post(&refund_url).body(body).send().await.unwrap();
        let text = response.text().await.unwrap();
        assert!(
            text.contains("<return_code><![CDATA[FAIL]]></return_code>"),
            "{text}"
        );
    }
    assert_eq!(
        w.shop.refunds().len(),
        before,
        "no forged refund reached the shop"
    );
    // The genuine content, confirmed by WeChat, is accepted.
    let response = w
        .http
        .post(&refund_url)
        .body(forged("R0001", 40))
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    assert!(text.contains("SUCCESS"), "{text}");
    assert_eq!(w.shop.refunds().len(), before + 1);

    let tls = w.tls.as_ref().unwrap();
    let base = PayConfig::builder(MCH_ID, APPID, API_KEY, "http://127.0.0.1:9/pay/notify")
        .base_urls(&BaseUrls::all(&w.sim.base_url()))
        .timeout(WAIT);
    // The plain listener refuses /secapi for a merchant with a client CA.
    let plain = PayClient::new(
        base.clone()
            .client_certificate(
                ClientCertificate::from_pem(tls.cert_pem.as_bytes(), tls.key_pem.as_bytes())
                    .unwrap(),
            )
            .build()
            .unwrap(),
    )
    .unwrap();
    let r3 = RefundRequest::new(OrderRef::OutTradeNo(no.clone()), "R0003", PRICE, 1);
    assert!(matches!(
        plain.refund(&r3).await,
        Err(Error::Pay(PayError::Return { .. }))
    ));
    // A certificate from another CA fails the TLS handshake.
    let server_ca = w
        .http
        .get(format!("{}/_sim/tls/server-ca.pem", w.sim.base_url()))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let stranger = PayClient::new(
        base.secapi_base_url(w.sim.tls_base_url().unwrap())
            .root_certificate_pem(server_ca.to_vec())
            .client_certificate(
                ClientCertificate::from_pem(
                    tls.stranger_cert_pem.as_bytes(),
                    tls.stranger_key_pem.as_bytes(),
                )
                .unwrap(),
            )
            .build()
            .unwrap(),
    )
    .unwrap();
    match stranger.refund(&r3).await {
        Err(Error::Http { endpoint, .. }) => assert_eq!(endpoint, "/secapi/pay/refund"),
        Err(Error::Pay(PayError::Return { .. })) => {}
        other => panic!("{other:?}"),
    }
    let query = w
        .client()
        .query_refund(&RefundRef::OutTradeNo(no))
        .await
        .unwrap();
    assert_eq!(
        query.refunds.len(),
        1,
        "no refund went through without the right certificate"
    );
}
