//! Basic tokens, stable tokens, jsapi tickets, the JS-SDK check and the `/_sim/` controls, over
//! real HTTP against the simulator.

mod common;

use common::*;
use serde_json::{Value, json};
use sha1::{Digest as _, Sha1};
use wechat_sim::{RunningSim, SimConfig, Simulator, StatsSnapshot};

fn token_url(sim: &RunningSim, appid: &str, secret: &str) -> String {
    format!(
        "{}/cgi-bin/token?grant_type=client_credential&appid={appid}&secret={secret}",
        sim.base_url()
    )
}

async fn stable(sim: &RunningSim, http: &reqwest::Client, force_refresh: bool) -> Value {
    post_json(
        http,
        format!("{}/cgi-bin/stable_token", sim.base_url()),
        &json!({"grant_type": "client_credential", "appid": APPID, "secret": SECRET, "force_refresh": force_refresh}),
    )
    .await
}

#[tokio::test]
async fn each_token_call_mints_a_new_token_and_the_old_one_lives_five_minutes() {
    let sim = start().await;
    let http = client();
    let first = basic_token(&sim, &http).await;
    let second = basic_token(&sim, &http).await;
    assert_ne!(first, second);
    assert!(first.len() >= 100);
    assert_eq!(getticket(&sim, &http, &first).await["errcode"], 0);

    advance(&sim, &http, 299).await;
    assert_eq!(
        getticket(&sim, &http, &first).await["errcode"],
        0,
        "still in the 5-minute grace"
    );
    advance(&sim, &http, 1).await;
    assert_errcode(&getticket(&sim, &http, &first).await, 40001);
    assert_eq!(getticket(&sim, &http, &second).await["errcode"], 0);

    advance(&sim, &http, 7200).await;
    assert_errcode(&getticket(&sim, &http, &second).await, 42001);
    assert_errcode(&getticket(&sim, &http, "not-a-token").await, 40001);
}

#[tokio::test]
async fn expires_in_reflects_the_remaining_lifetime() {
    let sim = start().await;
    let http = client();
    let token = basic_token(&sim, &http).await;
    let ticket = getticket(&sim, &http, &token).await;
    assert_eq!(ticket["errmsg"], "ok");
    assert_eq!(ticket["expires_in"], 7200);
    sim.advance_clock(100);
    let again = getticket(&sim, &http, &token).await;
    assert_eq!(
        again["ticket"], ticket["ticket"],
        "the same ticket while it is valid"
    );
    assert_eq!(again["expires_in"], 7100);
    let body = get_json(
        &http,
        format!(
            "{}/cgi-bin/ticket/getticket?access_token={token}&type=nope",
            sim.base_url()
        ),
    )
    .await;
    assert_errcode(&body, 40097);
    let body = get_json(
        &http,
        format!("{}/cgi-bin/ticket/getticket?type=jsapi", sim.base_url()),
    )
    .await;
    assert_errcode(&body, 41001);
}

#[tokio::test]
async fn credential_errors() {
    let sim = start().await;
    let http = client();
    let base = sim.base_url();
    assert_errcode(
        &get_json(&http, token_url(&sim, "wxunknown", SECRET)).await,
        40013,
    );
    assert_errcode(
        &get_json(&http, token_url(&sim, APPID, "wrong")).await,
        40125,
    );
    let no_grant = format!("{base}/cgi-bin/token?appid={APPID}&secret={SECRET}");
    assert_errcode(&get_json(&http, no_grant).await, 40002);
    let no_appid = format!("{base}/cgi-bin/token?grant_type=client_credential&secret={SECRET}");
    assert_errcode(&get_json(&http, no_appid).await, 41002);
    let no_secret = format!("{base}/cgi-bin/token?grant_type=client_credential&appid={APPID}");
    assert_errcode(&get_json(&http, no_secret).await, 41004);
}

#[tokio::test]
async fn ip_not_in_whitelist_gives_40164_in_wechat_format() {
    let sim = start().await;
    let http = client();
    let body = get_json(&http, token_url(&sim, LOCKED_APPID, LOCKED_SECRET)).await;
    assert_errcode(&body, 40164);
    let msg = body["errmsg"].as_str().unwrap();
    let prefix = "invalid ip 127.0.0.1 ipv6 ::ffff:127.0.0.1, not in whitelist rid: ";
    assert!(msg.starts_with(prefix), "{msg}");
    assert_eq!(msg.len(), prefix.len() + 26);

    let body = post_json(
        &http,
        format!("{}/cgi-bin/stable_token", sim.base_url()),
        &json!({"grant_type": "client_credential", "appid": LOCKED_APPID, "secret": LOCKED_SECRET}),
    )
    .await;
    assert_errcode(&body, 40164);
}

#[tokio::test]
async fn daily_quota_gives_45009_until_the_next_day() {
    let sim = Simulator::from_toml_str(&CONFIG.replace(r#"ip_whitelist = ["10.1.2.3"]"#, ""))
        .unwrap()
        .start()
        .await
        .unwrap();
    let http = client();
    let day_start = 86_400 - sim.now_secs() % 86_400;
    sim.advance_clock(day_start); // the start of a simulated day: no rollover mid-test
    for _ in 0..3 {
        let body = get_json(&http, token_url(&sim, LOCKED_APPID, LOCKED_SECRET)).await;
        assert!(body["access_token"].is_string(), "{body}");
    }
    assert_errcode(
        &get_json(&http, token_url(&sim, LOCKED_APPID, LOCKED_SECRET)).await,
        45009,
    );
    sim.advance_clock(86_400);
    let body = get_json(&http, token_url(&sim, LOCKED_APPID, LOCKED_SECRET)).await;
    assert!(body["access_token"].is_string(), "{body}");
}

#[tokio::test]
async fn stable_token_is_stable_isolated_and_force_refreshable() {
    let sim = start().await;
    let http = client();
    let a = stable(&sim, &http, false).await;
    let token = a["access_token"].as_str().unwrap().to_owned();
    assert_eq!(a["expires_in"], 7200);
    sim.advance_clock(60);
    let b = stable(&sim, &http, false).await;
    assert_eq!(b["access_token"], token.as_str());
    assert_eq!(b["expires_in"], 7140);

    // cgi-bin/token does not disturb it, even after the 5-minute grace.
    basic_token(&sim, &http).await;
    basic_token(&sim, &http).await;
    advance(&sim, &http, 301).await;
    assert_eq!(getticket(&sim, &http, &token).await["errcode"], 0);
    assert_eq!(
        stable(&sim, &http, false).await["access_token"],
        token.as_str()
    );

    // force_refresh: the old one dies at once.
    let forced = stable(&sim, &http, true).await;
    let new_token = forced["access_token"].as_str().unwrap().to_owned();
    assert_ne!(new_token, token);
    assert_eq!(forced["expires_in"], 7200);
    assert_errcode(&getticket(&sim, &http, &token).await, 40001);
    // Less than 30 s later, force_refresh does not refresh.
    sim.advance_clock(10);
    assert_eq!(
        stable(&sim, &http, true).await["access_token"],
        new_token.as_str()
    );
    sim.advance_clock(30);
    assert_ne!(
        stable(&sim, &http, true).await["access_token"],
        new_token.as_str()
    );
}

#[tokio::test]
async fn stable_token_rotates_five_minutes_before_expiry() {
    let sim = start().await;
    let http = client();
    let old = stable(&sim, &http, false).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    sim.advance_clock(7200 - 300);
    let rotated = stable(&sim, &http, false).await;
    assert_ne!(rotated["access_token"], old.as_str());
    assert_eq!(rotated["expires_in"], 7200);
    assert_eq!(
        getticket(&sim, &http, &old).await["errcode"],
        0,
        "old one valid until its expiry"
    );
    sim.advance_clock(300);
    assert_errcode(&getticket(&sim, &http, &old).await, 42001);
}

#[tokio::test]
async fn stable_token_bad_requests() {
    let sim = start().await;
    let http = client();
    let url = format!("{}/cgi-bin/stable_token", sim.base_url());
    let not_json: Value = http
        .post(&url)
        .body("appid=x")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_errcode(&not_json, 47001);
    assert_errcode(&get_json(&http, url.clone()).await, 43002);
    let wrong = post_json(
        &http,
        url.clone(),
        &json!({"grant_type": "client_credential", "appid": APPID, "secret": "x"}),
    )
    .await;
    assert_errcode(&wrong, 40125);
    let grant = post_json(&http, url, &json!({"appid": APPID, "secret": SECRET})).await;
    assert_errcode(&grant, 40002);
}

fn sign(ticket: &str, noncestr: &str, timestamp: &str, url: &str) -> String {
    let s = format!("jsapi_ticket={ticket}&noncestr={noncestr}&timestamp={timestamp}&url={url}");
    hex::encode(Sha1::digest(s.as_bytes()))
}

#[tokio::test]
async fn jssdk_verify_checks_the_signature_against_the_current_ticket() {
    let sim = start().await;
    let http = client();
    let token = basic_token(&sim, &http).await;
    let ticket = getticket(&sim, &http, &token).await["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = "http://127.0.0.1:3000/shop?x=1&from=singlemessage";
    let signature = sign(&ticket, "Wm3WZYTPz0wzccnW", "1414587457", page);
    let verify = format!("{}/_sim/jssdk/verify", sim.base_url());
    let request = |signature: &str, url: &str, timestamp: Value| json!({"appId": APPID, "timestamp": timestamp, "nonceStr": "Wm3WZYTPz0wzccnW", "signature": signature, "url": url});

    let ok = post_json(
        &http,
        verify.clone(),
        &request(&signature, page, json!(1414587457)),
    )
    .await;
    assert_eq!(ok, json!({"ok": true}));
    let with_fragment = format!("{page}#/cart");
    let ok = post_json(
        &http,
        verify.clone(),
        &request(&signature, &with_fragment, json!("1414587457")),
    )
    .await;
    assert_eq!(ok, json!({"ok": true}), "the fragment is not signed");

    let invalid = json!({"ok": false, "errMsg": "config:invalid signature"});
    let upper = signature.to_uppercase();
    assert_eq!(
        post_json(
            &http,
            verify.clone(),
            &request(&upper, page, json!(1414587457))
        )
        .await,
        invalid
    );
    let other_url = "http://127.0.0.1:3000/shop?x=1";
    assert_eq!(
        post_json(
            &http,
            verify.clone(),
            &request(&signature, other_url, json!(1414587457))
        )
        .await,
        invalid
    );
    let escaped = sign(
        &ticket,
        "Wm3WZYTPz0wzccnW",
        "1414587457",
        "http://127.0.0.1:3000/shop?x=1&amp;from=singlemessage",
    );
    assert_eq!(
        post_json(
            &http,
            verify.clone(),
            &request(&escaped, page, json!(1414587457))
        )
        .await,
        invalid
    );

    let outside = post_json(
        &http,
        verify.clone(),
        &request(&signature, "http://127.0.0.1:4000/shop", json!(1)),
    )
    .await;
    assert_eq!(
        outside,
        json!({"ok": false, "errMsg": "config:invalid url domain"})
    );

    // Once the ticket has expired, the old signature no longer matches the app's ticket.
    sim.advance_clock(7200);
    assert_eq!(
        post_json(&http, verify, &request(&signature, page, json!(1414587457))).await,
        invalid
    );
}

#[tokio::test]
async fn stats_count_requests_by_path() {
    let sim = start().await;
    let http = client();
    for _ in 0..3 {
        basic_token(&sim, &http).await;
    }
    let _ = http
        .get(format!("{}/no/such/path", sim.base_url()))
        .send()
        .await
        .unwrap();
    let stats = get_json(&http, format!("{}/_sim/stats", sim.base_url())).await;
    assert_eq!(stats["calls"]["/cgi-bin/token"], 3);
    assert_eq!(
        stats["calls"]["(unknown)"], 1,
        "paths no route serves count under one entry"
    );
    assert!(stats["calls"].get("/no/such/path").is_none());
    assert_eq!(
        stats["calls"]["/_sim/stats"], 1,
        "the stats request counts itself"
    );
    assert_eq!(
        stats["notifications"],
        json!({"sent": 0, "acknowledged": 0})
    );
    let snapshot = sim.stats();
    assert_eq!(snapshot.calls_to("/cgi-bin/token"), 3);
    assert_eq!(snapshot.calls_to("/sns/userinfo"), 0);
}

/// Requests to paths no route serves count under one `(unknown)` entry, so random paths cannot
/// grow the counters: 2,000 of them leave a handful of entries, and nothing is lost.
#[tokio::test]
async fn unknown_paths_count_under_one_entry() {
    let sim = start().await;
    let http = client();
    basic_token(&sim, &http).await;
    let mut tasks = Vec::new();
    for task in 0..8 {
        let (http, base) = (http.clone(), sim.base_url());
        tasks.push(tokio::spawn(async move {
            for i in 0..250 {
                let path = format!("/no/such/{task}-{i}-{:016x}", rand::random::<u64>());
                let res = http.get(format!("{base}{path}")).send().await.unwrap();
                assert_eq!(res.status(), 404, "{path}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let stats = sim.stats();
    assert_eq!(stats.calls_to(StatsSnapshot::UNKNOWN_PATH), 2000);
    assert_eq!(StatsSnapshot::UNKNOWN_PATH, "(unknown)");
    assert_eq!(stats.calls_to("/cgi-bin/token"), 1);
    assert_eq!(stats.calls.len(), 2, "{:?}", stats.calls.keys());
    assert_eq!(stats.calls.values().sum::<u64>(), 2001);
    // A known route with a parameter counts by its path; a known path with the wrong method
    // too (the route serves the path).
    let order = http
        .get(format!("{}/_sim/pay/orders/NOSUCHORDER", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(order.status(), 404);
    let wrong_method = http
        .delete(format!("{}/cgi-bin/token", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    let stats = sim.stats();
    assert_eq!(stats.calls_to("/_sim/pay/orders/NOSUCHORDER"), 1);
    assert_eq!(stats.calls_to("/cgi-bin/token"), 2);
    assert_eq!(stats.calls_to(StatsSnapshot::UNKNOWN_PATH), 2000);
}

#[tokio::test]
async fn concurrent_token_requests_are_each_counted() {
    let sim = start().await;
    let http = client();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (http, url) = (http.clone(), token_url(&sim, APPID, SECRET));
        tasks.push(tokio::spawn(async move { get_json(&http, url).await }));
    }
    let mut tokens = std::collections::HashSet::new();
    for task in tasks {
        tokens.insert(
            task.await.unwrap()["access_token"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(tokens.len(), 50);
    assert_eq!(sim.stats().calls_to("/cgi-bin/token"), 50);
}

#[tokio::test]
async fn sim_routes_answer_cors_preflights() {
    let sim = start().await;
    let http = client();
    for path in ["/_sim/jssdk/verify", "/_sim/pay/check", "/_sim/pay/confirm"] {
        let res = http
            .request(
                reqwest::Method::OPTIONS,
                format!("{}{path}", sim.base_url()),
            )
            .header("Origin", "http://127.0.0.1:3000")
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "content-type")
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        let h = res.headers();
        assert_eq!(
            h["access-control-allow-origin"], "http://127.0.0.1:3000",
            "{path}"
        );
        assert!(
            h["access-control-allow-methods"]
                .to_str()
                .unwrap()
                .contains("POST")
        );
        assert_eq!(h["access-control-allow-headers"], "content-type");
    }
    let res = http
        .post(format!("{}/_sim/jssdk/verify", sim.base_url()))
        .header("Origin", "http://127.0.0.1:3000")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "http://127.0.0.1:3000"
    );
}

#[tokio::test]
async fn the_jssdk_script_is_served_where_wechat_serves_it() {
    let sim = start().await;
    let res = client()
        .get(format!("{}/open/js/jweixin-1.6.0.js", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/javascript")
    );
    let js = res.text().await.unwrap();
    for needle in [
        "window.wx",
        "/_sim/jssdk/verify",
        "location.href.split('#')[0]",
        "document.currentScript",
        "WeixinJSBridgeReady",
        "getBrandWCPayRequest",
        "/_sim/pay/check",
        "/_sim/pay/confirm",
        "sim-pay-confirm",
        "sim-pay-cancel",
        "get_brand_wcpay_request:cancel",
    ] {
        assert!(js.contains(needle), "script lacks {needle}");
    }
}

#[tokio::test]
async fn injected_errors_and_clock_controls() {
    let sim = start().await;
    let http = client();
    let base = sim.base_url();
    let res = http
        .post(format!(
            "{base}/_sim/fail?path=/cgi-bin/token&errcode=-1&times=2"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_errcode(&get_json(&http, token_url(&sim, APPID, SECRET)).await, -1);
    assert_errcode(&get_json(&http, token_url(&sim, APPID, SECRET)).await, -1);
    assert!(get_json(&http, token_url(&sim, APPID, SECRET)).await["access_token"].is_string());

    let bad = http
        .post(format!("{base}/_sim/clock/advance?seconds=-5"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let before = sim.now_secs();
    let moved: Value = http
        .post(format!("{base}/_sim/clock/advance?seconds=3600"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(moved["now"].as_u64().unwrap() >= before + 3600);
    assert_eq!(moved["offset_secs"], 3600);
}

#[test]
fn config_errors_are_reported() {
    assert!(SimConfig::from_toml_str(CONFIG).is_ok());
    let unknown_field = format!("{CONFIG}\nsurprise = 1\n");
    assert!(Simulator::from_toml_str(&unknown_field).is_err());
    let orphan = r#"
        [[users]]
        appid = "wxnobody"
        nickname = "Ghost"
    "#;
    let err = Simulator::from_toml_str(orphan).unwrap_err().to_string();
    assert!(err.contains("wxnobody"), "{err}");
    let err = Simulator::from_file("/nonexistent/sim.toml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/sim.toml"), "{err}");
    let defaults = SimConfig::from_toml_str("").unwrap();
    assert_eq!(defaults.token_ttl_secs, 7200);
    assert!(
        defaults.server.hosts.is_empty(),
        "no [server]: no host listed"
    );
}

#[test]
fn server_hosts_are_names_without_port_or_wildcard() {
    let with = |hosts: &str| SimConfig::from_toml_str(&format!("{CONFIG}\n[server]\n{hosts}\n"));
    let config =
        with(r#"hosts = ["sim.internal", "Wechat-Sim", "10.0.0.5", "[fd00::1]", "fd00::2"]"#)
            .unwrap();
    assert_eq!(
        config.server.hosts,
        [
            "sim.internal",
            "Wechat-Sim",
            "10.0.0.5",
            "[fd00::1]",
            "fd00::2"
        ]
    );
    assert!(with("").unwrap().server.hosts.is_empty());
    let unknown = with(r#"host = ["sim.internal"]"#).unwrap_err().to_string();
    assert!(unknown.contains("host"), "{unknown}");
    for bad in [
        "sim.internal:9000",
        "http://sim.internal",
        "sim.internal/",
        "*.internal",
        "",
        "sim internal",
    ] {
        let err = with(&format!("hosts = [{bad:?}]")).unwrap_err().to_string();
        assert!(err.contains("[server] hosts"), "{bad}: {err}");
    }
}
