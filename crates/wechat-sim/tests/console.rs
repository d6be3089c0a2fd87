//! The console (`GET /_sim/`) over real HTTP: after a login, tokens, a ticket, a v2 and a v3
//! payment with their notifications, no page of the console holds a secret, a key, a token,
//! a ticket or a whole OAuth code; state values are escaped; cross-origin requests are refused;
//! and every action route works.

mod common;

use std::time::Duration;

use common::v3::Client as V3Client;
use common::{OPENID, WAIT, client, get_json, wait_for};
use serde_json::{Value, json};
use url::Url;
use wechat_sim::fixtures::{self, API_KEY, APIV3_KEY, APPID, MCH_ID, MerchantKeyPair, SECRET};
use wechat_sim::{RunningSim, Simulator};

const NASTY: &str = "<script>alert(1)</script>";

fn config() -> String {
    format!(
        r#"
[[apps]]
appid = "{APPID}"
secret = "{SECRET}"
oauth_domains = ["127.0.0.1:3000"]
[[users]]
appid = "{APPID}"
openid = "{OPENID}"
nickname = "{NASTY}"
{}"#,
        fixtures::v3_merchant_toml(MerchantKeyPair::shared(), false)
    )
}

async fn start() -> RunningSim {
    Simulator::from_toml_str(&config())
        .expect("valid config")
        .start()
        .await
        .expect("started")
}

/// Every page and asset of the console, as text.
async fn console_pages(sim: &RunningSim, http: &reqwest::Client) -> Vec<(String, String)> {
    let mut pages = Vec::new();
    for path in [
        "/_sim/",
        "/_sim/console/live",
        "/_sim/console/state",
        "/_sim/console/console.js",
        "/_sim/console/console.css",
    ] {
        let res = http
            .get(format!("{}{path}", sim.base_url()))
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 200, "{path}");
        assert!(
            res.headers()
                .keys()
                .all(|n| !n.as_str().starts_with("access-control-")),
            "{path} sends CORS headers"
        );
        assert_eq!(res.headers()["cache-control"], "no-store", "{path}");
        pages.push((path.to_owned(), res.text().await.expect("text")));
    }
    pages
}

/// The console's JSON state.
async fn state(sim: &RunningSim, http: &reqwest::Client) -> Value {
    get_json(http, format!("{}/_sim/console/state", sim.base_url())).await
}

/// POSTs JSON to a control route: (status, body).
async fn post(sim: &RunningSim, http: &reqwest::Client, path: &str, body: &Value) -> (u16, Value) {
    let res = http
        .post(format!("{}{path}", sim.base_url()))
        .json(body)
        .send()
        .await
        .expect("sent");
    let status = res.status().as_u16();
    (status, res.json().await.expect("json"))
}

/// Waits until the console's state satisfies `done`.
async fn wait_state(
    sim: &RunningSim,
    http: &reqwest::Client,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = state(sim, http).await;
        if done(&s) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited for {what}: {s:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The console's order `no`.
fn order<'a>(s: &'a Value, no: &str) -> &'a Value {
    s["orders"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["out_trade_no"] == no))
        .unwrap_or_else(|| panic!("no order {no} in {s:#}"))
}

/// The deliveries of order `no` in `mode`.
fn deliveries<'a>(s: &'a Value, no: &str, mode: &str) -> Vec<&'a Value> {
    s["deliveries"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter(|d| d["subject"]["out_trade_no"] == no && d["mode"] == mode)
                .collect()
        })
        .unwrap_or_default()
}

/// A login through snsapi_base: (the code, its exchange's JSON).
async fn login(sim: &RunningSim, http: &reqwest::Client, exchange: bool) -> (String, Value) {
    let mut url = Url::parse(&format!("{}/connect/oauth2/authorize", sim.base_url())).unwrap();
    url.query_pairs_mut()
        .append_pair("appid", APPID)
        .append_pair("redirect_uri", "http://127.0.0.1:3000/cb")
        .append_pair("response_type", "code")
        .append_pair("scope", "snsapi_base")
        .append_pair("state", "s1");
    let res = http.get(url).send().await.expect("sent");
    assert_eq!(res.status(), 302);
    let location = Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code");
    if !exchange {
        return (code, Value::Null);
    }
    let tokens = get_json(
        http,
        format!(
            "{}/sns/oauth2/access_token?appid={APPID}&secret={SECRET}&code={code}&grant_type=authorization_code",
            sim.base_url()
        ),
    )
    .await;
    assert!(tokens["access_token"].is_string(), "{tokens}");
    (code, tokens)
}

#[tokio::test]
async fn the_console_shows_the_state_and_never_a_secret() {
    let sim = start().await;
    let http = client();
    let base = sim.base_url();

    // Credentials of every kind.
    let basic = common::basic_token(&sim, &http).await;
    let stable = common::post_json(
        &http,
        format!("{base}/cgi-bin/stable_token"),
        &json!({"grant_type": "client_credential", "appid": APPID, "secret": SECRET}),
    )
    .await;
    let stable = stable["access_token"].as_str().expect("stable").to_owned();
    let ticket = common::getticket(&sim, &http, &basic).await;
    let ticket = ticket["ticket"].as_str().expect("ticket").to_owned();
    let (used_code, tokens) = login(&sim, &http, true).await;
    let (unused_code, _) = login(&sim, &http, false).await;
    let user_token = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();

    // A v2 and a v3 payment, notified and acknowledged.
    let (v2_url, _v2_rx) = common::v2::receiver(&[]).await;
    common::v2::paid_order(&http, &base, "CONSOLEV2001", "100", &v2_url).await;
    let v3 = V3Client::new(&sim).await;
    let (v3_url, _v3_rx) = common::v3::receiver(&[500]).await;
    v3.paid_order("CONSOLEV3001", 200, &v3_url).await;
    wait_for(&sim, 3, 2).await;

    let s = state(&sim, &http).await;
    let v2 = order(&s, "CONSOLEV2001");
    assert_eq!(
        (
            &v2["api"],
            &v2["trade_state"],
            &v2["total_fee"],
            &v2["payer"]
        ),
        (&json!("v2"), &json!("SUCCESS"), &json!(100), &json!(OPENID))
    );
    let scheduled = deliveries(&s, "CONSOLEV2001", "scheduled");
    assert_eq!(scheduled.len(), 1, "{s:#}");
    let attempt = &scheduled[0]["attempts"][0];
    assert_eq!(attempt["status"], 200);
    assert!(attempt["reply"].as_str().unwrap().contains("SUCCESS"));
    let v3_attempts = &deliveries(&s, "CONSOLEV3001", "scheduled")[0]["attempts"];
    assert_eq!(v3_attempts[0]["status"], 500);
    assert!(v3_attempts[0]["reply"].as_str().unwrap().contains("FAIL"));
    assert_eq!(v3_attempts[1]["status"], 204);
    assert_eq!(s["tickets"][0]["state"], "valid");
    assert_eq!(s["tokens"].as_array().map(Vec::len), Some(2));
    let codes = s["codes"].as_array().unwrap();
    assert_eq!(codes.len(), 2);
    assert!(
        codes
            .iter()
            .all(|c| c["prefix"].as_str().unwrap().chars().count() == 5)
    );
    assert_eq!(s["user_tokens"][0]["openid"], OPENID);
    assert!(s["stats"]["calls"]["/cgi-bin/token"] == 1);
    let requests = s["requests"].as_array().unwrap();
    assert!(requests.iter().any(|r| r["path"] == "/cgi-bin/token"));
    assert!(
        requests
            .iter()
            .all(|r| !r["path"].as_str().unwrap().contains('?'))
    );
    assert!(
        requests
            .iter()
            .all(|r| !r["path"].as_str().unwrap().starts_with("/_sim/console")),
        "the console's polls fill the journal"
    );

    let secrets = [
        SECRET,
        API_KEY,
        APIV3_KEY,
        &basic,
        &stable,
        &ticket,
        &user_token,
        &refresh_token,
        &used_code,
        &unused_code,
    ];
    let private_pem = &MerchantKeyPair::shared().private_key_pem;
    let private_line = private_pem.lines().nth(1).expect("a PEM body line");
    for (path, text) in console_pages(&sim, &http).await {
        for secret in secrets {
            assert!(!text.contains(secret), "{path} shows a secret: {secret}");
        }
        assert!(!text.contains(private_line), "{path} shows a private key");
        assert!(!text.contains("PRIVATE KEY"), "{path} shows a private key");
        assert!(!text.contains("secret="), "{path} shows a query string");
        if path != "/_sim/console/state" {
            assert!(!text.contains(NASTY), "{path} does not escape the nickname");
        }
    }
    let page = http
        .get(format!("{base}/_sim/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("CONSOLEV2001") && page.contains("re-send (duplicate)"));
}

#[tokio::test]
async fn the_console_refuses_other_origins() {
    let sim = start().await;
    let http = client();
    let base = sim.base_url();
    let own = format!("http://{}", sim.local_addr());
    for path in [
        "/_sim/",
        "/_sim/console/live",
        "/_sim/console/state",
        "/_sim/console/console.js",
    ] {
        let url = format!("{base}{path}");
        let evil = http
            .get(&url)
            .header("Origin", "http://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(evil.status(), 403, "{path}");
        assert!(evil.headers().get("access-control-allow-origin").is_none());
        for site in ["cross-site", "same-site"] {
            let res = http
                .get(&url)
                .header("Sec-Fetch-Site", site)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 403, "{path} {site}");
        }
        let preflight = http
            .request(reqwest::Method::OPTIONS, &url)
            .header("Origin", "http://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(preflight.status(), 403, "{path}");
        // The console's own page: same origin, or a typed URL.
        for (name, value) in [
            ("Origin", own.as_str()),
            ("Sec-Fetch-Site", "same-origin"),
            ("Sec-Fetch-Site", "none"),
        ] {
            let res = http.get(&url).header(name, value).send().await.unwrap();
            assert_eq!(res.status(), 200, "{path} {name}: {value}");
        }
    }
    let bare = http.get(format!("{base}/_sim")).send().await.unwrap();
    assert_eq!(bare.status(), 308);
    assert_eq!(bare.headers()["location"], "/_sim/");
    let page = http.get(format!("{base}/_sim/")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    // The actions too.
    for path in [
        "/_sim/pay/orders/X/pay",
        "/_sim/pay/orders/X/close",
        "/_sim/pay/orders/X/refund",
    ] {
        let res = http
            .post(format!("{base}{path}"))
            .header("Origin", "http://evil.example")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{path}");
    }
}

/// DNS rebinding: a page on a name that resolves to 127.0.0.1 is same-origin with itself, so
/// the console answers only a loopback `Host`, `localhost` or `*.localhost` (or a name of
/// `[server] hosts`, none here).
#[tokio::test]
async fn the_console_answers_loopback_hosts_only() {
    let sim = start().await;
    let http = client();
    let base = sim.base_url();
    let port = sim.local_addr().port();
    for path in [
        "/_sim/",
        "/_sim/console/live",
        "/_sim/console/state",
        "/_sim/console/console.js",
        "/_sim/console/console.css",
    ] {
        let url = format!("{base}{path}");
        let rebound = http
            .get(&url)
            .header("Host", format!("rebind.evil.example:{port}"))
            .header("Origin", format!("http://rebind.evil.example:{port}"))
            .header("Sec-Fetch-Site", "same-origin")
            .send()
            .await
            .unwrap();
        assert_eq!(rebound.status(), 403, "{path}");
        let text = rebound.text().await.unwrap();
        assert!(
            text.contains("rebind.evil.example") && text.contains("[server] hosts"),
            "{text}"
        );
        for host in [
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
        ] {
            let res = http
                .get(&url)
                .header("Host", &host)
                .header("Origin", format!("http://{host}"))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{path} Host: {host}");
        }
    }
}

#[tokio::test]
async fn every_console_action_works() {
    let sim = start().await;
    let http = client();
    let base = sim.base_url();
    let (v2_url, _v2_rx) = common::v2::receiver(&[]).await;
    let v3 = V3Client::new(&sim).await;
    let (v3_url, _v3_rx) = common::v3::receiver(&[]).await;

    // Pay: an unpaid v2 order, with its notification; not twice.
    let ordered = common::v2::unified_order(&http, &base, "ACTV2PAY", "300", &v2_url, false).await;
    assert_eq!(ordered["result_code"], "SUCCESS");
    let (status, paid) = post(&sim, &http, "/_sim/pay/orders/ACTV2PAY/pay", &json!({})).await;
    assert_eq!(
        (status, &paid["trade_state"]),
        (200, &json!("SUCCESS")),
        "{paid}"
    );
    let s = wait_state(&sim, &http, "the v2 notification", |s| {
        deliveries(s, "ACTV2PAY", "scheduled")
            .first()
            .is_some_and(|d| d["attempts"][0]["status"] == 200)
    })
    .await;
    assert!(order(&s, "ACTV2PAY")["paid_at"].is_u64());
    let (status, _) = post(&sim, &http, "/_sim/pay/orders/ACTV2PAY/pay", &json!({})).await;
    assert_eq!(status, 409);
    let (status, _) = post(&sim, &http, "/_sim/pay/orders/NOSUCHORDER/pay", &json!({})).await;
    assert_eq!(status, 404);

    // Close: an unpaid v3 order; it cannot be paid any more; a paid order cannot be closed.
    assert_eq!(v3.prepay("ACTV3CLOSE", 100, &v3_url).await.status, 200);
    let (status, closed) = post(
        &sim,
        &http,
        "/_sim/pay/orders/ACTV3CLOSE/close",
        &json!({ "mch_id": MCH_ID }),
    )
    .await;
    assert_eq!(
        (status, &closed["trade_state"]),
        (200, &json!("CLOSED")),
        "{closed}"
    );
    let (status, _) = post(&sim, &http, "/_sim/pay/orders/ACTV3CLOSE/pay", &json!({})).await;
    assert_eq!(status, 409);
    let (status, _) = post(&sim, &http, "/_sim/pay/orders/ACTV2PAY/close", &json!({})).await;
    assert_eq!(status, 409);

    // Refund: v2 in full (then nothing is left), v3 in part (PROCESSING, then SUCCESS).
    let (status, refunded) =
        post(&sim, &http, "/_sim/pay/orders/ACTV2PAY/refund", &json!({})).await;
    assert_eq!(
        (status, &refunded["trade_state"]),
        (200, &json!("REFUND")),
        "{refunded}"
    );
    assert_eq!(refunded["refund_fee"], 300);
    let (status, _) = post(&sim, &http, "/_sim/pay/orders/ACTV2PAY/refund", &json!({})).await;
    assert_eq!(status, 409);
    v3.paid_order("ACTV3REFUND", 500, &v3_url).await;
    let (status, _) = post(
        &sim,
        &http,
        "/_sim/pay/orders/ACTV3REFUND/refund",
        &json!({ "refund_fee": 501 }),
    )
    .await;
    assert_eq!(status, 400);
    let (status, refunded) = post(
        &sim,
        &http,
        "/_sim/pay/orders/ACTV3REFUND/refund",
        &json!({ "refund_fee": 120, "out_refund_no": "ACTV3R1", "reason": "console" }),
    )
    .await;
    assert_eq!(
        (status, &refunded["refunded_fee"]),
        (200, &json!(120)),
        "{refunded}"
    );
    let s = wait_state(&sim, &http, "the v3 refund to succeed", |s| {
        order(s, "ACTV3REFUND")["refunds"][0]["status"] == "SUCCESS"
    })
    .await;
    assert_eq!(order(&s, "ACTV3REFUND")["trade_state"], "REFUND");
    let queried = v3
        .send("GET", "/v3/refund/domestic/refunds/ACTV3R1", "")
        .await;
    assert_eq!(queried.status, 200);
    assert_eq!(queried.json()["status"], "SUCCESS");
    let (status, _) = post(
        &sim,
        &http,
        "/_sim/pay/orders/ACTV3CLOSE/refund",
        &json!({}),
    )
    .await;
    assert_eq!(status, 409);
    let (status, bad) = post(
        &sim,
        &http,
        "/_sim/pay/orders/ACTV2PAY/refund",
        &json!({"x": 1}),
    )
    .await;
    assert_eq!(status, 400, "{bad}");

    // Re-send a notification: each delivery is its own entry, with the app's reply.
    let (status, sent) = post(
        &sim,
        &http,
        "/_sim/pay/notify",
        &json!({ "out_trade_no": "ACTV3REFUND", "mode": "concurrent_duplicates", "count": 3 }),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    let s = state(&sim, &http).await;
    let concurrent = deliveries(&s, "ACTV3REFUND", "concurrent_duplicates");
    assert_eq!(concurrent[0]["attempts"].as_array().map(Vec::len), Some(3));
    assert!(s["deliveries"][0]["modes"].as_array().unwrap().len() >= 7);

    // The clock, and a fault the recent requests show with its errcode.
    let before = state(&sim, &http).await["now"].as_u64().unwrap();
    let res = http
        .post(format!("{base}/_sim/clock/advance?seconds=7200"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(state(&sim, &http).await["now"].as_u64().unwrap() >= before + 7200);
    let res = http
        .post(format!(
            "{base}/_sim/fail?path=/cgi-bin/token&errcode=45009&times=1"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let failed = get_json(
        &http,
        format!("{base}/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}"),
    )
    .await;
    assert_eq!(failed["errcode"], 45009);
    let s = state(&sim, &http).await;
    let last = s["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["path"] == "/cgi-bin/token")
        .expect("the token call");
    assert_eq!(
        (&last["status"], &last["errcode"]),
        (&json!(200), &json!("45009"))
    );
    assert_eq!(s["stats"]["faults"]["injected"]["errcode"], 1);
}
