//! Native (QR code) and H5 (phone browser) payment, API v3 and v2, against wechat-sim over real
//! HTTP on 127.0.0.1: the prepay calls, the simulated phone that scans a `code_url`, the H5
//! cashier page and WeChat's checks there (WeChat's browser, Referer, domains, IP, expiry), the
//! notifications through the same verified paths as JSAPI's (forged, replayed and altered ones
//! refused), and queries that report the trade type.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use wechat_core::pay::{H5Info, H5Order, NativeOrder, OrderRef, TradeState, TradeType, v2, v3};
use wechat_core::{OpenId, OutTradeNo, PayError};
use wechat_sim::fixtures::{self, ALICE, APPID, BOB, MCH_ID, MerchantKeyPair};
use wechat_sim::{RunningSim, Simulator};
use wechat_test_support::{Browser, eventually};

mod common;

/// The shop's H5 domain, as configured on the simulated merchant platform.
const SHOP: &str = "127.0.0.1:3000";

/// A notification as the shop's endpoint received it.
#[derive(Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

/// The shop's notification endpoint: records what arrives and acknowledges it (v3 204, v2
/// SUCCESS), so that each test runs the client's handlers on what WeChat Pay sent.
#[derive(Clone, Default)]
struct Inbox(Arc<Mutex<Vec<Received>>>);

impl Inbox {
    async fn start() -> (Self, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let inbox = Self::default();
        let kept = inbox.clone();
        common::serve(listener, move |request: hyper::Request<Incoming>| {
            let inbox = kept.clone();
            async move {
                let (parts, body) = request.into_parts();
                let body = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let v2 = body.starts_with(b"<xml>");
                inbox.0.lock().unwrap().push(Received {
                    headers: parts.headers,
                    body,
                });
                if v2 {
                    http::Response::new(Bytes::from_static(v2::NOTIFICATION_SUCCESS_XML.as_bytes()))
                } else {
                    let mut r = http::Response::new(Bytes::new());
                    *r.status_mut() = http::StatusCode::NO_CONTENT;
                    r
                }
            }
        });
        (inbox, base)
    }

    /// The first notification received after `count` earlier ones.
    async fn nth(&self, index: usize) -> Received {
        eventually("a notification", || self.0.lock().unwrap().len() > index).await;
        self.0.lock().unwrap()[index].clone()
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

struct World {
    sim: RunningSim,
    v3: v3::PayClient,
    v2: v2::PayClient,
    inbox: Inbox,
}

impl World {
    async fn start(h5_domains: &[&str]) -> Self {
        let domains = h5_domains
            .iter()
            .map(|d| format!("{d:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        // The shop's app, Alice and Bob, and the merchant (its table last), with H5 domains.
        let toml = format!(
            "{}h5_domains = [{domains}]\n",
            fixtures::shop_toml(&[SHOP], None)
        );
        let sim = Simulator::from_toml_str(&toml)
            .unwrap()
            .start()
            .await
            .unwrap();
        let (inbox, notify_base) = Inbox::start().await;
        let keys = MerchantKeyPair::shared();
        let key = v3::MerchantKey::from_pem(keys.private_key_pem.as_bytes(), keys.serial.as_str())
            .unwrap();
        let (id, pem) = sim.pay_public_key(MCH_ID).unwrap();
        let v3 = v3::PayClient::new(
            v3::PayConfig::builder(
                MCH_ID,
                APPID,
                key,
                fixtures::APIV3_KEY,
                format!("{notify_base}/v3/notify"),
            )
            .wechat_pay_public_key(v3::WechatPayPublicKey::from_pem(id, pem.as_bytes()).unwrap())
            .base_url(sim.base_url())
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap(),
        )
        .unwrap();
        let v2 = v2::PayClient::new(
            v2::PayConfig::builder(
                MCH_ID,
                APPID,
                fixtures::API_KEY,
                format!("{notify_base}/v2/notify"),
            )
            .base_url(sim.base_url())
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap(),
        )
        .unwrap();
        Self { sim, v3, v2, inbox }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url())
    }

    /// The simulated phone scanning `code_url`: the scan page, then pay (or cancel) as `openid`.
    async fn scan(
        &self,
        code_url: &str,
        openid: &str,
        action: &str,
    ) -> wechat_test_support::Answer {
        let browser = Browser::wechat();
        let page = browser
            .page(&self.url(&format!("/_sim/pay/scan?code_url={}", urlencode(code_url))))
            .send()
            .await;
        if page.status != 200 {
            return page;
        }
        assert!(
            page.body.contains(&format!("sim-pay-as-{openid}")),
            "{}",
            page.body
        );
        browser
            .submit(&self.url("/_sim/pay/scan"))
            .form(&[
                ("code_url".into(), code_url.into()),
                ("openid".into(), openid.into()),
                ("action".into(), action.into()),
            ])
            .send()
            .await
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        reqwest::Client::new()
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// What the client's verified handler makes of a v3 notification: `Some(what the handler saw)`
/// when it was handed over, `None` when it was refused; and the reply's status.
async fn v3_delivered(pay: &v3::PayClient, n: &Received) -> (Option<v3::PaymentNotification>, u16) {
    let seen = Mutex::new(None);
    let reply = pay
        .handle_payment_notification(&n.headers, &n.body, |paid| {
            *seen.lock().unwrap() = Some(paid);
            async { Ok::<(), String>(()) }
        })
        .await;
    (
        seen.into_inner().unwrap(),
        reply.into_response().status().as_u16(),
    )
}

#[tokio::test]
async fn v3_native_is_scanned_paid_by_whoever_scans_and_notified_as_native() {
    let world = World::start(&[SHOP]).await;
    let order = NativeOrder::new("T3NATIVE0001", "Coffee", 101);
    let prepay = world.v3.send(&order).await.unwrap();
    assert!(
        prepay.code_url.starts_with("weixin://wxpay/bizpayurl?pr="),
        "{}",
        prepay.code_url
    );
    // The same order again before it expires: the same code.
    assert_eq!(world.v3.send(&order).await.unwrap(), prepay);
    // A QR code of it, as the page shows it.
    assert!(
        wechat_core::qr::svg(&prepay.code_url)
            .unwrap()
            .starts_with("<svg")
    );
    // The console shows the waiting Native order with a link to the phone's scan page, and the
    // merchant's H5 domains.
    let console = reqwest::get(world.url("/_sim/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let encoded: String = prepay
        .code_url
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    assert!(
        console.contains(&format!("href=\"/_sim/pay/scan?code_url={encoded}\"")),
        "no scan link in the console"
    );
    assert!(
        console.contains("v3 NATIVE") && console.contains(SHOP),
        "console"
    );

    // Bob scans: the order is the buyer's, whoever pays it.
    let paid = world.scan(&prepay.code_url, BOB, "pay").await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    assert!(paid.body.contains("sim-pay-done"));
    let notification = world.inbox.nth(0).await;
    let (seen, status) = v3_delivered(&world.v3, &notification).await;
    assert_eq!(status, 204);
    let seen = seen.expect("a verified Native payment is handed over");
    assert_eq!(seen.trade_type, Some(TradeType::Native));
    assert_eq!(seen.openid, Some(OpenId::new(BOB)));
    assert_eq!(
        (seen.out_trade_no.as_str(), seen.total),
        ("T3NATIVE0001", 101)
    );

    let queried = world
        .v3
        .query_order(&OrderRef::OutTradeNo(OutTradeNo::new("T3NATIVE0001")))
        .await
        .unwrap();
    assert_eq!(queried.trade_state, TradeState::Success);
    assert_eq!(queried.trade_type, Some(TradeType::Native));

    // Scanning again after payment is refused, with WeChat's words.
    let again = world.scan(&prepay.code_url, ALICE, "pay").await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(again.body.contains("该订单已支付"), "{}", again.body);

    // Forged, stale and duplicate notifications of the Native order go through the same checks.
    for mode in ["tampered_body", "stale_timestamp", "duplicate"] {
        let before = world.inbox.count();
        world
            .control(
                "/_sim/pay/notify",
                json!({"out_trade_no": "T3NATIVE0001", "mode": mode}),
            )
            .await;
        let n = world.inbox.nth(before).await;
        let (seen, status) = v3_delivered(&world.v3, &n).await;
        if mode == "duplicate" {
            assert_eq!(
                (seen.is_some(), status),
                (true, 204),
                "{mode}: a duplicate is genuine"
            );
        } else {
            assert!(
                seen.is_none() && status >= 400,
                "{mode}: refused, got {status}"
            );
        }
    }
}

#[tokio::test]
async fn v3_native_cancel_leaves_it_unpaid_and_the_code_expires_after_two_hours() {
    let world = World::start(&[]).await;
    let prepay = world
        .v3
        .send(&NativeOrder::new("T3NATIVE0002", "Tea", 50))
        .await
        .unwrap();
    let cancelled = world.scan(&prepay.code_url, ALICE, "cancel").await;
    assert!(
        cancelled.body.contains("sim-pay-cancelled"),
        "{}",
        cancelled.body
    );
    let queried = world
        .v3
        .query_order(&OrderRef::OutTradeNo(OutTradeNo::new("T3NATIVE0002")))
        .await
        .unwrap();
    assert_eq!(queried.trade_state, TradeState::NotPay);
    assert_eq!(world.inbox.count(), 0);

    world.sim.advance_clock(2 * 3600);
    let expired = world.scan(&prepay.code_url, ALICE, "pay").await;
    assert_eq!(expired.status, 410, "{}", expired.body);
    assert!(expired.body.contains("二维码已过期"), "{}", expired.body);
    let unknown = world
        .scan("weixin://wxpay/bizpayurl?pr=nothing", ALICE, "pay")
        .await;
    assert_eq!(unknown.status, 404);
}

/// Opens `h5_url` from `browser` with `referer`, as a shop page's link does.
async fn open_cashier(
    browser: &Browser,
    url: &str,
    referer: Option<&str>,
) -> wechat_test_support::Answer {
    let request = browser.page(url);
    match referer {
        Some(referer) => request.header("referer", referer).send().await,
        None => request.send().await,
    }
}

#[tokio::test]
async fn v3_h5_cashier_checks_what_wechat_checks_then_returns_either_way() {
    let world = World::start(&[SHOP]).await;
    let ip = "127.0.0.1".parse().unwrap();
    let order = H5Order::new(
        "T3H5ORDER001",
        "Coffee",
        101,
        ip,
        H5Info::wap("Shop", format!("http://{SHOP}")),
    );
    let prepay = world.v3.send(&order).await.unwrap();
    let base = world.sim.base_url();
    assert!(
        prepay
            .h5_url
            .starts_with(&format!("{base}/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=")),
        "{}",
        prepay.h5_url
    );
    let back = format!("http://{SHOP}/orders/T3H5ORDER001");
    let url = prepay.url_with_redirect(&back);
    let from_shop = Some("http://127.0.0.1:3000/checkout");

    // WeChat's refusals, each with its text.
    let refusals = [
        (
            Browser::wechat(),
            url.clone(),
            from_shop,
            "请在微信外打开订单，进行支付",
        ),
        (
            Browser::phone(),
            url.clone(),
            None,
            "商家参数格式有误，请联系商家解决",
        ),
        (
            Browser::phone(),
            url.clone(),
            Some("http://evil.example/checkout"),
            "商家存在未配置的参数，请联系商家解决",
        ),
        (
            Browser::phone(),
            prepay.url_with_redirect("http://evil.example/"),
            from_shop,
            "商家存在未配置的参数，请联系商家解决",
        ),
    ];
    for (browser, url, referer, text) in refusals {
        let page = open_cashier(&browser, &url, referer).await;
        assert!(page.status.is_client_error(), "{text}: {}", page.status);
        assert!(page.body.contains(text), "expected {text}: {}", page.body);
    }

    // The phone browser from the shop's page: the cashier; paying returns to redirect_url.
    let phone = Browser::phone();
    let cashier = open_cashier(&phone, &url, from_shop).await;
    assert_eq!(cashier.status, 200, "{}", cashier.body);
    assert!(cashier.body.contains("¥1.01"), "{}", cashier.body);
    let form = |action: &str| {
        vec![
            (
                "prepay_id".to_owned(),
                prepay
                    .h5_url
                    .split("prepay_id=")
                    .nth(1)
                    .unwrap()
                    .split('&')
                    .next()
                    .unwrap()
                    .to_owned(),
            ),
            (
                "package".to_owned(),
                prepay.h5_url.split("package=").nth(1).unwrap().to_owned(),
            ),
            ("return_to".to_owned(), back.clone()),
            ("openid".to_owned(), ALICE.to_owned()),
            ("action".to_owned(), action.to_owned()),
        ]
    };
    let cancelled = phone
        .submit(&world.url("/cgi-bin/mmpayweb-bin/checkmweb"))
        .form(&form("cancel"))
        .send()
        .await;
    assert_eq!(
        (cancelled.status.as_u16(), cancelled.location()),
        (302, Some(back.as_str()))
    );
    assert_eq!(world.inbox.count(), 0, "cancelling pays nothing");
    let paid = phone
        .submit(&world.url("/cgi-bin/mmpayweb-bin/checkmweb"))
        .form(&form("pay"))
        .send()
        .await;
    assert_eq!(
        (paid.status.as_u16(), paid.location()),
        (302, Some(back.as_str()))
    );
    let (seen, status) = v3_delivered(&world.v3, &world.inbox.nth(0).await).await;
    assert_eq!(status, 204);
    let seen = seen.unwrap();
    assert_eq!(seen.trade_type, Some(TradeType::Mweb));
    assert_eq!(seen.total, 101);
    // The simulator's order view shows the trade type and the buyer's IP.
    let view: Value = reqwest::get(world.url("/_sim/pay/orders/T3H5ORDER001"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            view["trade_type"].as_str(),
            view["payer_client_ip"].as_str()
        ),
        (Some("MWEB"), Some("127.0.0.1")),
        "{view}"
    );

    // Forged and stale notifications of the H5 order are refused as JSAPI's are.
    for mode in ["tampered_body", "stale_timestamp"] {
        let before = world.inbox.count();
        world
            .control(
                "/_sim/pay/notify",
                json!({"out_trade_no": "T3H5ORDER001", "mode": mode}),
            )
            .await;
        let (seen, status) = v3_delivered(&world.v3, &world.inbox.nth(before).await).await;
        assert!(
            seen.is_none() && status >= 400,
            "{mode}: refused, got {status}"
        );
    }

    // Another buyer IP than the one the order was placed for.
    let elsewhere = H5Order::new(
        "T3H5ORDER002",
        "Coffee",
        101,
        "10.1.2.3".parse().unwrap(),
        H5Info::wap("Shop", format!("http://{SHOP}")),
    );
    let link = world
        .v3
        .send(&elsewhere)
        .await
        .unwrap()
        .url_with_redirect(&back);
    let page = open_cashier(&phone, &link, from_shop).await;
    assert!(
        page.body.contains("网络环境未能通过安全验证，请稍后再试"),
        "{}",
        page.body
    );

    // Five minutes later the link has expired.
    let late = H5Order::new(
        "T3H5ORDER003",
        "Coffee",
        101,
        ip,
        H5Info::wap("Shop", format!("http://{SHOP}")),
    );
    let link = world.v3.send(&late).await.unwrap().url_with_redirect(&back);
    world.sim.advance_clock(5 * 60);
    let page = open_cashier(&phone, &link, from_shop).await;
    assert!(
        page.body.contains("支付请求已失效，请重新发起支付"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn v3_h5_without_the_h5_product_is_refused_and_h5_needs_the_buyers_ip() {
    let world = World::start(&[]).await;
    let order = H5Order::new(
        "T3H5NOAUTH01",
        "Coffee",
        1,
        "127.0.0.1".parse().unwrap(),
        H5Info::wap("Shop", "http://x"),
    );
    match world.v3.send(&order).await {
        Err(wechat_core::Error::Pay(PayError::Api(e))) => {
            assert_eq!((e.status, e.code.as_str()), (403, "NO_AUTH"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    let mut no_ip = order.clone();
    no_ip.payer_client_ip = None;
    assert!(matches!(
        world.v3.send(&no_ip).await,
        Err(wechat_core::Error::Pay(PayError::InvalidRequest(_)))
    ));
}

#[tokio::test]
async fn v2_native_and_mweb_are_unifiedorder_and_pay_through_the_same_pages() {
    let world = World::start(&[SHOP]).await;
    let ip = "127.0.0.1".parse().unwrap();
    let native = NativeOrder::new("T2NATIVE01", "Coffee", 101).with_payer_client_ip(ip);
    let code = world.v2.send(&native).await.unwrap();
    assert!(
        code.code_url.starts_with("weixin://wxpay/bizpayurl?pr="),
        "{}",
        code.code_url
    );
    assert!(
        world
            .scan(&code.code_url, ALICE, "pay")
            .await
            .body
            .contains("sim-pay-done")
    );
    let notification = world.inbox.nth(0).await;
    let seen = Mutex::new(None);
    let reply = world
        .v2
        .handle_payment_notification(&notification.headers, &notification.body, |n| {
            *seen.lock().unwrap() = Some(n);
            async { Ok::<(), String>(()) }
        })
        .await;
    assert_eq!(reply.into_response().status(), 200);
    let seen = seen
        .into_inner()
        .unwrap()
        .expect("verified and handed over");
    assert_eq!(seen.trade_type, TradeType::Native);
    assert_eq!((seen.openid.as_str(), seen.total_fee), (ALICE, 101));

    // An altered amount is refused as for JSAPI.
    world
        .control(
            "/_sim/pay/notify",
            json!({"out_trade_no": "T2NATIVE01", "mode": "tamper_total_fee"}),
        )
        .await;
    let altered = world.inbox.nth(1).await;
    let called = Mutex::new(false);
    let reply = world
        .v2
        .handle_payment_notification(&altered.headers, &altered.body, |_| {
            *called.lock().unwrap() = true;
            async { Ok::<(), String>(()) }
        })
        .await;
    assert!(!*called.lock().unwrap());
    assert!(reply.into_response().status().is_client_error());

    // Paid from the console (no one scanned): the app's first user pays, and the v2
    // notification, which must name a payer, verifies.
    let console_paid = NativeOrder::new("T2NATIVE02", "Tea", 50).with_payer_client_ip(ip);
    world.v2.send(&console_paid).await.unwrap();
    world
        .control("/_sim/pay/orders/T2NATIVE02/pay", json!({}))
        .await;
    let n = world.inbox.nth(2).await;
    let verified = world
        .v2
        .verify_payment_notification(&n.headers, &n.body)
        .await
        .unwrap();
    assert_eq!(
        (verified.out_trade_no.as_str(), verified.openid.as_str()),
        ("T2NATIVE02", ALICE)
    );

    let mweb = H5Order::new(
        "T2MWEB0001",
        "Coffee",
        101,
        ip,
        H5Info::wap("Shop", format!("http://{SHOP}")),
    );
    let page = world.v2.send(&mweb).await.unwrap();
    let back = format!("http://{SHOP}/orders/T2MWEB0001");
    let cashier = open_cashier(
        &Browser::phone(),
        &page.url_with_redirect(&back),
        Some("http://127.0.0.1:3000/checkout"),
    )
    .await;
    assert_eq!(cashier.status, 200, "{}", cashier.body);

    let queried = world
        .v2
        .query_order(&OrderRef::OutTradeNo(OutTradeNo::new("T2NATIVE01")))
        .await
        .unwrap();
    assert_eq!(queried.trade_state, TradeState::Success);
}
