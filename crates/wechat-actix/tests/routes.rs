//! The mounted scope over real HTTP on 127.0.0.1, against wechat-sim: the JS-SDK config, an
//! order paid through the simulator's pay sheet and its notification, the owner-only status,
//! and the adapter's body limit.

mod common;

use std::time::Duration;

use actix_web::App;
use common::{
    ALICE, APPID, Browser, PREFIX, TempStore, bind, flow, keys, public_url, routes, start_sim,
};
use wechat_actix::WeChatLoginMiddleware;
use wechat_core::routes::OrderStatus;

macro_rules! app {
    ($flow:expr, $routes:expr) => {{
        let (flow, routes) = ($flow, $routes);
        move || {
            App::new()
                .wrap(WeChatLoginMiddleware::new(flow.clone()))
                .service(wechat_actix::scope(PREFIX, routes.clone()))
        }
    }};
}

#[tokio::test]
async fn jssdk_config_signs_pages_of_this_site_only() {
    let (listener, addr) = bind();
    let sim = start_sim(&[addr]).await;
    let shop = TempStore::new().await;
    let _server = serve!(
        listener,
        app!(
            flow(&sim.base_url(), addr, keys()),
            routes(&sim.base_url(), addr, &shop.store)
        )
    );
    let base = public_url(addr);
    let browser = Browser::new();
    browser.log_in(&base, &sim, "/").await;

    let page = format!("{base}/shop?item=1");
    let answer = browser
        .fetch(&format!(
            "{base}{PREFIX}/jssdk/config?url={}",
            urlencode(&format!("{page}#top"))
        ))
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let config = answer.json();
    assert_eq!(config["appId"], APPID);
    assert_eq!(config["jsApiList"], serde_json::json!(["chooseWXPay"]));
    // The simulator checks the signature as the WeChat client does.
    let verified = reqwest::Client::new()
        .post(format!("{}/_sim/jssdk/verify", sim.base_url()))
        .json(&serde_json::json!({
            "appId": config["appId"],
            "timestamp": config["timestamp"],
            "nonceStr": config["nonceStr"],
            "signature": config["signature"],
            "url": page,
        }))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    let verified: serde_json::Value = verified.json().await.unwrap();
    assert_eq!(verified["ok"], true, "{verified}");

    let foreign = browser
        .fetch(&format!(
            "{base}{PREFIX}/jssdk/config?url={}",
            urlencode("https://evil.example/")
        ))
        .await;
    assert_eq!(foreign.status, 400);
    assert!(
        foreign.json()["error"]
            .as_str()
            .unwrap()
            .contains("not a configured JS-SDK domain")
    );
    let missing = browser.fetch(&format!("{base}{PREFIX}/jssdk/config")).await;
    assert_eq!(missing.status, 400);
}

#[tokio::test]
async fn jssdk_config_reports_wechat_errors_as_502_with_an_error_id() {
    let (listener, addr) = bind();
    let sim = start_sim(&[addr]).await;
    let shop = TempStore::new().await;
    let _server = serve!(
        listener,
        app!(
            flow(&sim.base_url(), addr, keys()),
            routes(&sim.base_url(), addr, &shop.store)
        )
    );
    let base = public_url(addr);
    let browser = Browser::new();
    browser.log_in(&base, &sim, "/").await;
    let failing = reqwest::Client::new()
        .post(format!("{}/_sim/fail", sim.base_url()))
        .query(&[
            ("path", "/cgi-bin/stable_token"),
            ("errcode", "40164"),
            ("times", "5"),
            (
                "errmsg",
                "invalid ip 203.0.113.9 ipv6 ::ffff:203.0.113.9, not in whitelist",
            ),
        ])
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert!(failing.status().is_success());
    let answer = browser
        .fetch(&format!(
            "{base}{PREFIX}/jssdk/config?url={}",
            urlencode(&format!("{base}/shop"))
        ))
        .await;
    assert_eq!(answer.status, 502, "{answer:?}");
    let body = answer.json();
    let error = body["error"].as_str().unwrap();
    assert!(!error.contains("203.0.113.9"), "{error}");
    let id = body["error_id"].as_str().unwrap();
    assert!(error.contains(id) && id.len() == 12, "{body}");
}

#[tokio::test]
async fn an_order_is_paid_notified_and_shown_to_its_owner_only() {
    let (listener, addr) = bind();
    let sim = start_sim(&[addr]).await;
    let shop = TempStore::new().await;
    let _server = serve!(
        listener,
        app!(
            flow(&sim.base_url(), addr, keys()),
            routes(&sim.base_url(), addr, &shop.store)
        )
    );
    let base = public_url(addr);
    let orders = format!("{base}{PREFIX}/pay/orders");

    // Without a session: 401 JSON from the middleware.
    let anonymous = Browser::new();
    assert_eq!(
        anonymous
            .post(&orders, r#"{"product":"demo"}"#)
            .await
            .status,
        401
    );

    let browser = Browser::new();
    browser.log_in(&base, &sim, "/").await;
    // The backend prices; the browser cannot.
    let unknown = browser.post(&orders, r#"{"product":"car"}"#).await;
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("unknown product")
    );
    let not_json = browser.post(&orders, "{").await;
    assert_eq!(not_json.status, 400);
    let too_large = browser
        .post(&orders, &format!("\"{}\"", "x".repeat(70 * 1024)))
        .await;
    assert_eq!(too_large.status, 413, "{too_large:?}");

    let created = browser.post(&orders, r#"{"product":"demo"}"#).await;
    assert_eq!(created.status, 200, "{created:?}");
    let created = created.json();
    let out_trade_no = created["out_trade_no"].as_str().unwrap().to_owned();
    assert_eq!(created["params"]["appId"], APPID);
    let status_url = format!("{orders}/{out_trade_no}");
    let unpaid = browser.fetch(&status_url).await;
    assert_eq!(unpaid.status, 200);
    assert_eq!(unpaid.json()["status"], "unpaid");
    assert_eq!(unpaid.json()["total_fee"], 1);

    // Pay in the simulator's pay sheet: it then posts the notification to /wechat/pay/notify.
    let paid = reqwest::Client::new()
        .post(format!("{}/_sim/pay/confirm", sim.base_url()))
        .json(&created["params"])
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    let paid: serde_json::Value = paid.json().await.unwrap();
    assert_eq!(paid["err_msg"], "get_brand_wcpay_request:ok", "{paid}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    // Paid in the shop, and answered SUCCESS to the simulator.
    while shop.status(&out_trade_no).await != Some(OrderStatus::Paid)
        || sim.stats().notifications.acknowledged == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the notification never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let shown = browser.fetch(&status_url).await.json();
    assert_eq!(shown["status"], "paid");
    assert_eq!(shown["out_trade_no"], out_trade_no.as_str());

    // Another user, and an unknown order, get the same 404.
    let stranger = {
        let keys_browser = Browser::new();
        let value = wechat_core::session::SessionCookie::builder(keys())
            .app_id(wechat_core::AppId::new(APPID))
            .build()
            .unwrap()
            .encode(&wechat_core::session::SessionUser::new(
                wechat_core::OpenId::new("oSomeoneElse000000000000000"),
                u64::MAX / 2,
            ))
            .unwrap();
        keys_browser.set_cookie(&base, &format!("wechat_session={value}; Path=/"));
        keys_browser
    };
    assert_eq!(stranger.fetch(&status_url).await.status, 404);
    assert_eq!(browser.fetch(&format!("{orders}/NOPE")).await.status, 404);
    assert_eq!(shop.status(&out_trade_no).await, Some(OrderStatus::Paid));
    assert_eq!(shop.store.paid_count().await.unwrap(), 1);
    assert_eq!(shown["total_fee"], 1);
    // Only the unpaid status was checked with WeChat; the paid one came from the notification.
    assert_eq!(sim.stats().calls_to("/pay/orderquery"), 1, "{ALICE}");
}

#[tokio::test]
async fn notifications_pass_the_login_and_forgeries_are_refused() {
    let (listener, addr) = bind();
    let sim = start_sim(&[addr]).await;
    let shop = TempStore::new().await;
    let _server = serve!(
        listener,
        app!(
            flow(&sim.base_url(), addr, keys()),
            routes(&sim.base_url(), addr, &shop.store)
        )
    );
    let base = public_url(addr);
    let http = reqwest::Client::new();
    for path in ["pay/notify", "pay/refund-notify"] {
        let answer = http
            .post(format!("{base}{PREFIX}/{path}"))
            .header("content-type", "text/xml")
            .body("<xml><return_code>SUCCESS</return_code></xml>")
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap();
        let text = answer.text().await.unwrap();
        assert!(
            text.contains("<return_code><![CDATA[FAIL]]></return_code>"),
            "{path}: {text}"
        );
    }
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
