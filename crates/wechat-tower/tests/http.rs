//! `WeChatLoginLayer`, `WeChatUser` and `router` through real HTTP on 127.0.0.1, against wechat-sim:
//! a small axum app (tests/common) and a browser that keeps cookies and follows redirects.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use wechat_tower::wechat_core::routes::OrderStatus;
use wechat_tower::wechat_core::session::OAuthState;

// ---------------------------------------------------------------------------------------------
// Login.

#[tokio::test]
async fn first_visit_logs_in_and_comes_back_to_the_page() {
    let w = world(Options::default()).await;
    let browser = Browser::new();
    let (url, status, body) = browser.open(&w.url("/shop?item=42&x=%20y")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(url, w.url("/shop?item=42&x=%20y"));
    assert_eq!(body, format!("openid={ALICE} nickname="));
    let stats = w.sim.stats();
    assert_eq!(stats.calls_to("/connect/oauth2/authorize"), 1);
    assert_eq!(stats.calls_to("/sns/oauth2/access_token"), 1);
    assert_eq!(
        stats.calls_to("/sns/userinfo"),
        0,
        "snsapi_base has no profile"
    );

    // The session cookie now carries the user: no new login.
    assert!(browser.cookies_for(&w.url("/")).contains("wechat_session="));
    let (status, body) = browser.fetch(Method::POST, &w.url("/api/cart"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["text"], format!("openid={ALICE} nickname="));
    assert_eq!(w.sim.stats().calls_to("/connect/oauth2/authorize"), 1);

    // A link to the logout on another site (an old browser's GET, no Sec-Fetch-Site) only
    // shows a confirmation; the session stays.
    let (_, status, page) = browser
        .open(&w.url("/wechat/oauth/logout?r=%2Fhealth"))
        .await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("<form method=\"post\""), "{page}");
    assert!(browser.cookies_for(&w.url("/")).contains("wechat_session="));
    // The form on the site's own page logs out.
    let (url, status, _) = browser
        .submit(&w.url("/wechat/oauth/logout?r=%2Fhealth"))
        .await;
    assert_eq!((url.as_str(), status), (w.url("/health").as_str(), 200));
    let (status, body) = browser.fetch(Method::GET, &w.url("/api/me"), None).await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test]
async fn logout_refuses_other_sites_and_accepts_this_sites_own_requests() {
    let w = world(Options::default()).await;
    let browser = Browser::new();
    w.log_in(&browser).await;
    let logout = w.url("/wechat/oauth/logout?r=%2Fbye");
    let evil = "https://evil.example";
    let send = |method: Method, headers: &'static [(&'static str, &'static str)]| {
        let request = browser.manual.request(method, &logout);
        async move {
            let mut request = request;
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .map(|v| v.to_str().unwrap().to_owned());
            (status, location, response.text().await.unwrap())
        }
    };

    // A form on another site posting to the logout (with Sec-Fetch-Site, or only Origin from a
    // browser without it): a confirmation page, and the session stays.
    const CROSS_SITE: [&[(&str, &str)]; 3] = [
        &[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://evil.example"),
        ],
        &[
            ("sec-fetch-site", "same-site"),
            ("origin", "https://evil.example"),
        ],
        &[("origin", "https://evil.example")],
    ];
    for headers in CROSS_SITE {
        let (status, _, page) = send(Method::POST, headers).await;
        assert_eq!(status, 403, "{headers:?}: {page}");
        assert!(page.contains("<form method=\"post\""), "{page}");
        assert!(
            browser.cookies_for(&w.url("/")).contains("wechat_session="),
            "{headers:?}: the session must stay ({evil})"
        );
    }

    // A same-origin link (GET) on the site's own page logs out.
    let (status, location, _) = send(
        Method::GET,
        &[
            ("sec-fetch-site", "same-origin"),
            ("sec-fetch-mode", "navigate"),
        ],
    )
    .await;
    assert_eq!((status, location.as_deref()), (303, Some("/bye")));
    assert!(!browser.cookies_for(&w.url("/")).contains("wechat_session="));

    // So does a same-origin POST.
    w.log_in(&browser).await;
    let (status, location, _) = send(Method::POST, &[("sec-fetch-site", "same-origin")]).await;
    assert_eq!((status, location.as_deref()), (303, Some("/bye")));
    assert!(!browser.cookies_for(&w.url("/")).contains("wechat_session="));
    let (status, body) = browser.fetch(Method::GET, &w.url("/api/me"), None).await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test]
async fn userinfo_consent_gives_the_profile_and_refusal_gets_a_page() {
    let w = world(Options {
        userinfo: true,
        ..Options::default()
    })
    .await;
    let browser = Browser::new();
    let (url, status, body) = w.consent(&browser, "/shop?item=1", BOB, "allow").await;
    assert_eq!(
        (url.as_str(), status),
        (w.url("/shop?item=1").as_str(), 200),
        "{body}"
    );
    assert_eq!(body, format!("openid={BOB} nickname=Bob"));

    // Declining consent: a clear page at the callback, no redirect, no session.
    let declined = Browser::new();
    let (url, status, body) = w.consent(&declined, "/shop", ALICE, "deny").await;
    assert_eq!(status, 403, "{body}");
    assert!(url.starts_with(&w.url("/wechat/oauth/callback?")), "{url}");
    assert!(body.contains("You declined"), "{body}");
    assert!(body.contains("Try again"), "{body}");
    assert!(
        !declined
            .cookies_for(&w.url("/"))
            .contains("wechat_session=")
    );
}

#[tokio::test]
async fn forged_expired_and_foreign_states_are_refused_without_redirect() {
    let w = world(Options::default()).await;
    let browser = Browser::new();
    // Start a login by hand: page -> WeChat -> the callback URL with a code.
    let (status, authorize, _) = browser.step(&w.url("/shop")).await;
    assert_eq!(status, 302);
    let authorize = authorize.unwrap();
    assert!(
        authorize.starts_with(&w.sim_url("/connect/oauth2/authorize?")),
        "{authorize}"
    );
    let (status, callback, _) = browser.step(&authorize).await;
    assert_eq!(status, 302);
    let callback = callback.unwrap();
    let state = query_param(&callback, "state").unwrap();
    assert!(
        callback.starts_with(&w.url("/wechat/oauth/callback?r=%2Fshop&")),
        "{callback}"
    );

    let refused = |(status, location, body): (u16, Option<String>, String), why: &str| {
        assert_eq!(status, 400, "{why}: {body}");
        assert_eq!(location, None, "{why}");
        assert!(body.contains("Login link not valid"), "{why}: {body}");
    };
    // Forged: the last character of the state's MAC changed.
    let mut forged = state.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
    let forged_url = callback.replace(&state, std::str::from_utf8(&forged).unwrap());
    refused(browser.step(&forged_url).await, "forged");
    // Another browser (another session) presenting this browser's callback.
    let other = Browser::new();
    refused(other.step(&callback).await, "other session");
    // The return path altered in the callback URL (it is bound to the state).
    refused(
        browser
            .step(&callback.replace("r=%2Fshop", "r=%2Fadmin"))
            .await,
        "altered return path",
    );
    // Expired: a state issued 700 s ago with a 600 s lifetime, with its nonce in the cookie.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let old = OAuthState::issue(
        &w.keys,
        &wechat_tower::wechat_core::AppId::new(APPID),
        "/",
        Duration::from_secs(600),
        false,
        &wechat_tower::wechat_core::clock::ManualClock::at(now - 700),
    );
    let expired = Browser::new();
    expired.jar.add_cookie_str(
        &format!(
            "wechat_session_state={}; Path=/wechat/oauth/callback",
            old.nonce()
        ),
        &w.url("/wechat/oauth/callback").parse().unwrap(),
    );
    let expired_url = w.url(&format!(
        "/wechat/oauth/callback?code=x&state={}",
        old.as_str()
    ));
    refused(expired.step(&expired_url).await, "expired");
    assert_eq!(w.sim.stats().calls_to("/sns/oauth2/access_token"), 0);

    // The genuine callback still works in the browser that started it.
    let (status, location, _) = browser.step(&callback).await;
    assert_eq!((status, location.as_deref()), (302, Some("/shop")));
}

#[tokio::test]
async fn absolute_and_protocol_relative_return_paths_become_root() {
    let w = world(Options::default()).await;
    for target in wechat_tower::wechat_core::testing::HOSTILE_RETURN_PATHS {
        let browser = Browser::new();
        let url = reqwest::Url::parse_with_params(&w.url("/wechat/oauth/login"), &[("r", target)])
            .unwrap();
        let (status, authorize, _) = browser.step(url.as_str()).await;
        assert_eq!(status, 302, "{target}");
        let redirect_uri = query_param(&authorize.unwrap(), "redirect_uri").unwrap();
        assert_eq!(redirect_uri, w.url("/wechat/oauth/callback"), "{target}");
        let (url, status, body) = browser.open(url.as_str()).await;
        assert_eq!(
            (url.as_str(), status),
            (w.url("/").as_str(), 200),
            "{target}: {body}"
        );
        assert!(body.contains(ALICE));
    }
}

/// Starts a login by hand and returns the callback URL with a fresh code.
async fn callback_with_code(w: &World, browser: &Browser, start: &str) -> String {
    let (status, authorize, body) = browser.step(&w.url(start)).await;
    assert_eq!(status, 302, "{body}");
    let (status, callback, body) = browser.step(&authorize.unwrap()).await;
    assert_eq!(status, 302, "{body}");
    callback.unwrap()
}

#[tokio::test]
async fn a_used_code_restarts_the_login_once() {
    let w = world(Options::default()).await;
    // The code was used already (say, the callback was loaded twice): the login restarts and
    // the user still arrives at the page.
    let browser = Browser::new();
    let callback = callback_with_code(&w, &browser, "/shop").await;
    w.burn_code(&query_param(&callback, "code").unwrap()).await;
    let (url, status, body) = browser.open(&callback).await;
    assert_eq!(
        (url.as_str(), status),
        (w.url("/shop").as_str(), 200),
        "{body}"
    );
    assert!(body.contains(ALICE));
    assert_eq!(w.sim.stats().calls_to("/connect/oauth2/authorize"), 2);

    // Only once: when the restarted login's code is refused too, a page, not a loop.
    let browser = Browser::new();
    let callback = callback_with_code(&w, &browser, "/shop").await;
    w.burn_code(&query_param(&callback, "code").unwrap()).await;
    let (status, authorize, _) = browser.step(&callback).await;
    assert_eq!(status, 302);
    let (_, retry_callback, _) = browser.step(&authorize.unwrap()).await;
    let retry_callback = retry_callback.unwrap();
    w.burn_code(&query_param(&retry_callback, "code").unwrap())
        .await;
    let (status, location, body) = browser.step(&retry_callback).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(location, None);
    assert!(body.contains("refused the login code again"), "{body}");
    assert!(body.contains("40163"), "{body}");
}

#[tokio::test]
async fn wechat_errors_on_the_code_exchange_give_502_with_an_error_id() {
    let w = world(Options::default()).await;
    w.sim_fail(
        "/sns/oauth2/access_token",
        45011,
        "api minute-quota reach limit mustslower retry next minute",
        1,
    )
    .await;
    let browser = Browser::new();
    let (url, status, body) = browser.open(&w.url("/shop")).await;
    assert_eq!(status, 502, "{body}");
    assert!(url.starts_with(&w.url("/wechat/oauth/callback?")), "{url}");
    // WeChat's answer goes to the log; the user sees an error id.
    assert!(!body.contains("45011"), "{body}");
    assert!(!body.contains("api minute-quota reach limit"), "{body}");
    assert!(body.contains("Error id "), "{body}");
    assert!(!body.contains(SECRET), "{body}");
    assert!(!browser.cookies_for(&w.url("/")).contains("wechat_session="));
}

#[tokio::test]
async fn excluded_paths_pass_and_requests_that_are_not_page_loads_get_401_json() {
    let w = world(Options::default()).await;
    let browser = Browser::new();
    // Excluded paths: no login.
    let (url, status, body) = browser.open(&w.url("/health")).await;
    assert_eq!(
        (url.as_str(), status, body.as_str()),
        (w.url("/health").as_str(), 200, "ok")
    );
    let (_, status, body) = browser.open(&w.url("/public/maybe")).await;
    assert_eq!((status, body.as_str()), (200, "guest"));
    // WeChatUser on an excluded path without a session: the flow's 401 JSON.
    let (status, body) = browser.fetch(Method::GET, &w.url("/public/me"), None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "login_required");
    let (_, status, _) = browser.open(&w.url("/public/me")).await;
    assert_eq!(status, 401, "an excluded path is never redirected");

    // Not page loads: POST, fetch with JSON Accept, Sec-Fetch-Mode cors.
    let (status, body) = browser
        .fetch(Method::POST, &w.url("/api/cart"), Some("{}"))
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "login_required");
    assert_eq!(body["login_url"], w.url("/wechat/oauth/login"));
    let response = browser
        .follow
        .get(w.url("/api/me"))
        .header("accept", "application/json")
        .header("referer", w.url("/shop?item=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["login_url"],
        w.url("/wechat/oauth/login?r=%2Fshop%3Fitem%3D1")
    );
    let response = browser
        .follow
        .get(w.url("/api/me"))
        .header("sec-fetch-mode", "cors")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(w.sim.stats().calls_to("/connect/oauth2/authorize"), 0);

    // After login, excluded paths see the user too.
    w.log_in(&browser).await;
    let (_, status, body) = browser.open(&w.url("/public/maybe")).await;
    assert_eq!((status, body), (200, format!("member {ALICE}")));
}

#[tokio::test]
async fn the_extractor_without_the_layer_is_a_500_naming_it() {
    let w = world(Options::default()).await;
    let browser = Browser::new();
    w.log_in(&browser).await;
    let response = browser
        .follow
        .get(w.url("/no-layer/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let body = response.text().await.unwrap();
    assert!(body.contains("wechat_tower::WeChatLoginLayer"), "{body}");
}

// ---------------------------------------------------------------------------------------------
// JS-SDK.

fn jssdk_url(w: &World, page: &str) -> String {
    reqwest::Url::parse_with_params(&w.url("/wechat/jssdk/config"), &[("url", page)])
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn jssdk_config_is_accepted_by_the_simulator_and_foreign_pages_get_400() {
    let w = world(Options::default()).await;
    let browser = Browser::new();
    w.log_in(&browser).await;
    let page = w.url("/shop?item=1&from=singlemessage");
    let (status, config) = browser
        .fetch(Method::GET, &jssdk_url(&w, &format!("{page}#/cart")), None)
        .await;
    assert_eq!(status, 200, "{config}");
    assert_eq!(config["appId"], APPID);
    assert_eq!(config["debug"], false);
    assert_eq!(config["jsApiList"], json!(["chooseWXPay"]));
    let verify = |url: &str| {
        json!({
            "appId": config["appId"],
            "timestamp": config["timestamp"],
            "nonceStr": config["nonceStr"],
            "signature": config["signature"],
            "url": url,
        })
    };
    let answer = w.sim_post("/_sim/jssdk/verify", &verify(&page)).await;
    assert_eq!(answer, json!({"ok": true}));
    // The check can fail: the same signature for another page is refused.
    let answer = w
        .sim_post("/_sim/jssdk/verify", &verify(&w.url("/other")))
        .await;
    assert_eq!(answer["errMsg"], "config:invalid signature");

    for (url, expected) in [
        (
            jssdk_url(&w, "https://evil.example/shop"),
            "not a configured JS-SDK domain",
        ),
        (jssdk_url(&w, "not a url"), "absolute URL"),
        (w.url("/wechat/jssdk/config"), "missing url"),
    ] {
        let (status, body) = browser.fetch(Method::GET, &url, None).await;
        assert_eq!(status, 400, "{url}: {body}");
        assert!(body["error"].as_str().unwrap().contains(expected), "{body}");
    }
}

#[tokio::test]
async fn jssdk_config_reports_wechat_errors_as_502_with_an_error_id() {
    let w = world(Options::default()).await;
    let browser = Browser::new();
    w.log_in(&browser).await;
    w.sim_fail(
        "/cgi-bin/stable_token",
        40164,
        "invalid ip 203.0.113.9 ipv6 ::ffff:203.0.113.9, not in whitelist",
        5,
    )
    .await;
    let (status, body) = browser
        .fetch(Method::GET, &jssdk_url(&w, &w.url("/shop")), None)
        .await;
    assert_eq!(status, 502, "{body}");
    // The browser learns nothing about the server (its IP, WeChat's message): an error id that
    // the server's log carries with the details.
    let error = body["error"].as_str().unwrap();
    assert!(!error.contains("203.0.113.9"), "{error}");
    let id = body["error_id"].as_str().unwrap();
    assert!(
        id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()) && error.contains(id),
        "{body}"
    );
}

// ---------------------------------------------------------------------------------------------
// WeChat Pay.

/// Creates an order as the browser's user: (out_trade_no, params).
async fn order(w: &World, browser: &Browser, body: Option<&str>) -> (String, Value) {
    let (status, created) = browser
        .fetch(Method::POST, &w.url("/wechat/pay/orders"), body)
        .await;
    assert_eq!(status, 200, "{created}");
    (
        created["out_trade_no"].as_str().unwrap().to_owned(),
        created["params"].clone(),
    )
}

async fn status_of(w: &World, browser: &Browser, out_trade_no: &str) -> (u16, Value) {
    browser
        .fetch(
            Method::GET,
            &w.url(&format!("/wechat/pay/orders/{out_trade_no}")),
            None,
        )
        .await
}

#[tokio::test]
async fn order_confirm_notification_paid() {
    let w = world(Options::default()).await;
    let browser = Browser::new();
    w.log_in(&browser).await;
    let (no, params) = order(&w, &browser, Some("{}")).await;
    assert_eq!(params["appId"], APPID);
    assert!(
        params["package"]
            .as_str()
            .unwrap()
            .starts_with("prepay_id=")
    );
    let check = w.sim_post("/_sim/pay/check", &params).await;
    assert_eq!(check["ok"], true, "{check}");
    assert_eq!(check["total_fee"], PRICE);
    let (status, body) = status_of(&w, &browser, &no).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"out_trade_no": no, "status": "unpaid", "total_fee": PRICE})
    );

    // The user confirms the pay sheet; WeChat notifies /wechat/pay/notify (excluded from login).
    let confirmed = w.sim_post("/_sim/pay/confirm", &params).await;
    assert_eq!(confirmed["err_msg"], "get_brand_wcpay_request:ok");
    eventually("the notification", || {
        w.shop.status(&no) == Some(OrderStatus::Paid)
            && w.sim.stats().notifications.acknowledged == 1
    })
    .await;
    let (status, body) = status_of(&w, &browser, &no).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"out_trade_no": no, "status": "paid", "total_fee": PRICE})
    );

    // An empty body is a `{}` order too; a product the shop does not price is refused; the
    // amount never comes from the browser.
    let (second, _) = order(&w, &browser, None).await;
    assert_ne!(second, no);
    let (status, body) = browser
        .fetch(
            Method::POST,
            &w.url("/wechat/pay/orders"),
            Some(r#"{"product":"tea","total_fee":0}"#),
        )
        .await;
    assert_eq!((status, body), (400, json!({"error": "unknown product"})));
    let (status, body) = browser
        .fetch(
            Method::POST,
            &w.url("/wechat/pay/orders"),
            Some("{not json"),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(70 * 1024));
    let (status, _) = browser
        .fetch(Method::POST, &w.url("/wechat/pay/orders"), Some(&huge))
        .await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn order_status_asks_wechat_when_the_notification_is_lost() {
    let w = world(Options {
        notifications: Notifications::Refused,
        ..Options::default()
    })
    .await;
    let browser = Browser::new();
    w.log_in(&browser).await;
    let (no, params) = order(&w, &browser, Some("{}")).await;
    let confirmed = w.sim_post("/_sim/pay/confirm", &params).await;
    assert_eq!(confirmed["err_msg"], "get_brand_wcpay_request:ok");
    eventually("the refused notification", || {
        w.refused_notifications.load(Ordering::SeqCst) >= 1
    })
    .await;
    assert_eq!(w.shop.status(&no), Some(OrderStatus::Unpaid));
    assert_eq!(w.shop.payment_count(), 0);

    let (status, body) = status_of(&w, &browser, &no).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"out_trade_no": no, "status": "paid", "total_fee": PRICE})
    );
    assert_eq!(w.shop.status(&no), Some(OrderStatus::Paid));
    assert!(w.sim.stats().calls_to("/pay/orderquery") >= 1);
    assert_eq!(w.sim.stats().notifications.acknowledged, 0);
}

#[tokio::test]
async fn another_user_cannot_read_the_order() {
    let w = world(Options {
        userinfo: true,
        ..Options::default()
    })
    .await;
    let alice = Browser::new();
    let (_, status, body) = w.consent(&alice, "/", ALICE, "allow").await;
    assert_eq!(status, 200, "{body}");
    let (no, _) = order(&w, &alice, Some("{}")).await;

    let bob = Browser::new();
    let (_, status, body) = w.consent(&bob, "/", BOB, "allow").await;
    assert_eq!((status, body), (200, format!("openid={BOB} nickname=Bob")));
    let (status, body) = status_of(&w, &bob, &no).await;
    assert_eq!((status, body), (404, json!({"error": "order not found"})));
    // The same answer as for an order that does not exist.
    let (status, body) = status_of(&w, &bob, "T9999").await;
    assert_eq!((status, body), (404, json!({"error": "order not found"})));
    // Without a session: 401.
    let (status, _) = status_of(&w, &Browser::new(), &no).await;
    assert_eq!(status, 401);
    // The owner sees it.
    let (status, body) = status_of(&w, &alice, &no).await;
    assert_eq!((status, body["status"].clone()), (200, json!("unpaid")));
}
