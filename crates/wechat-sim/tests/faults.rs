//! Injected faults (`/_sim/fail`) on api.weixin, WeChat Pay v2 (both listeners) and v3 paths,
//! their frequency, listing, clearing and counting; the notification modes of
//! `/_sim/pay/notify`; and the cross-origin rule of the control routes. Against the running
//! simulator over real HTTP on 127.0.0.1.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use common::v3::{Auth, Client};
use common::{APPID, SECRET, WAIT, assert_errcode, client, get_json, v2, v3, wait_for};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use wechat_sim::fixtures::MCH_ID;
use wechat_sim::{RunningSim, Simulator};

// ---- helpers ----

/// `POST /_sim/fail?{query}`: the status and the JSON answer.
async fn fail(http: &reqwest::Client, sim: &RunningSim, query: &str) -> (u16, Value) {
    let res = http
        .post(format!("{}/_sim/fail?{query}", sim.base_url()))
        .send()
        .await
        .expect("sent");
    (res.status().as_u16(), res.json().await.expect("json"))
}

/// Registers a fault that must be accepted; its answer.
async fn inject(http: &reqwest::Client, sim: &RunningSim, query: &str) -> Value {
    let (status, answer) = fail(http, sim, query).await;
    assert_eq!(status, 200, "{query}: {answer}");
    answer
}

/// `DELETE /_sim/fail[?query]`: the answer.
async fn clear(http: &reqwest::Client, sim: &RunningSim, query: &str) -> Value {
    let res = http
        .delete(format!("{}/_sim/fail?{query}", sim.base_url()))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    res.json().await.expect("json")
}

fn token_url(sim: &RunningSim) -> String {
    format!(
        "{}/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}",
        sim.base_url()
    )
}

/// Asserts that the request ends in a transport error: the connection closed, no status.
async fn assert_dropped(request: reqwest::RequestBuilder) {
    match request.send().await {
        Ok(res) => panic!("expected a dropped connection, got HTTP {}", res.status()),
        Err(e) => assert!(!e.is_timeout() && e.status().is_none(), "{e:?}"),
    }
}

/// Status, content type and body text of an answer.
async fn raw(request: reqwest::RequestBuilder) -> (u16, String, String) {
    let res = request.send().await.expect("sent");
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, res.text().await.expect("body"))
}

/// Asserts a bare gateway answer: this status, an HTML page naming it.
fn assert_gateway((status, content_type, body): &(u16, String, String), want: u16, reason: &str) {
    assert_eq!(*status, want, "{body}");
    assert_eq!(content_type, "text/html");
    assert!(
        body.contains(&format!("<h1>{want} {reason}</h1>")),
        "{body}"
    );
}

/// `POST /_sim/pay/notify` with `body`: the status and the JSON answer.
async fn notify(http: &reqwest::Client, sim: &RunningSim, body: &Value) -> (u16, Value) {
    let res = http
        .post(format!("{}/_sim/pay/notify", sim.base_url()))
        .json(body)
        .send()
        .await
        .expect("sent");
    (res.status().as_u16(), res.json().await.expect("json"))
}

/// The `kind` of each delivery a `/_sim/pay/notify` answer lists.
fn kinds(answer: &Value) -> Vec<&str> {
    answer["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .map(|d| d["kind"].as_str().unwrap_or_default())
        .collect()
}

/// A notify_url that acknowledges every notification (200 `SUCCESS`, which v3 takes as any
/// 2xx) and records how many it held at once; after [`Gathering::hold`]`(n)` each delivery is
/// held until `n` are in flight (at most 2 s), which only concurrent deliveries achieve.
struct Gathering {
    url: String,
    hold: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    bodies: mpsc::UnboundedReceiver<(axum::http::HeaderMap, String)>,
}

impl Gathering {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/notify", listener.local_addr().expect("addr"));
        let hold = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let (tx, bodies) = mpsc::unbounded_channel();
        let (h, m) = (Arc::clone(&hold), Arc::clone(&most));
        let app = Router::new().route(
            "/notify",
            post(move |headers: axum::http::HeaderMap, body: String| {
                let (hold, most, in_flight, tx) = (
                    Arc::clone(&h),
                    Arc::clone(&m),
                    Arc::clone(&in_flight),
                    tx.clone(),
                );
                async move {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    let want = hold.load(Ordering::SeqCst);
                    let deadline = Instant::now() + Duration::from_secs(2);
                    while most.load(Ordering::SeqCst) < want && Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    let _ = tx.send((headers, body));
                    "<xml><return_code><![CDATA[SUCCESS]]></return_code></xml>"
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            hold,
            most,
            bodies,
        }
    }

    /// Holds each delivery until `n` are in flight; resets the record.
    fn hold(&self, n: usize) {
        self.hold.store(n, Ordering::SeqCst);
        self.most.store(0, Ordering::SeqCst);
    }

    fn most(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }

    /// The next `n` deliveries received.
    async fn received(&mut self, n: usize) -> Vec<(axum::http::HeaderMap, String)> {
        let mut out = Vec::new();
        for _ in 0..n {
            let next = tokio::time::timeout(WAIT, self.bodies.recv())
                .await
                .expect("a delivery in time")
                .expect("open");
            out.push(next);
        }
        out
    }
}

// ---- faults, per area ----

#[tokio::test]
async fn api_weixin_faults_of_every_kind() {
    let sim = v3::start(false).await;
    let http = client();

    inject(&http, &sim, "path=/cgi-bin/token&errcode=45011").await;
    assert_errcode(&get_json(&http, token_url(&sim)).await, 45011);

    inject(&http, &sim, "path=/cgi-bin/token&status=503").await;
    assert_gateway(
        &raw(http.get(token_url(&sim))).await,
        503,
        "Service Unavailable",
    );

    inject(&http, &sim, "path=/cgi-bin/token&fault=delay&delay_ms=300").await;
    let started = Instant::now();
    let body = get_json(&http, token_url(&sim)).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(
        body["access_token"].is_string(),
        "the genuine answer: {body}"
    );

    inject(&http, &sim, "path=/cgi-bin/token&fault=drop").await;
    assert_dropped(http.get(token_url(&sim))).await;
    assert!(get_json(&http, token_url(&sim)).await["access_token"].is_string());

    inject(&http, &sim, "path=/cgi-bin/token&fault=malformed").await;
    let (status, content_type, body) = raw(http.get(token_url(&sim))).await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert!(body.starts_with('{'), "{body}");
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");

    for refused in [
        "path=/cgi-bin/token&fault=bad_signature",
        "path=/cgi-bin/token&fault=unsigned",
        "path=/cgi-bin/token&err_code=SYSTEMERROR",
        "path=/cgi-bin/token&status=500&code=SYSTEM_ERROR",
    ] {
        assert_eq!(fail(&http, &sim, refused).await.0, 400, "{refused}");
    }

    let stats = sim.stats();
    for kind in ["errcode", "status", "delay", "drop", "malformed"] {
        assert_eq!(stats.faults_injected(kind), 1, "{kind}");
    }
    assert_eq!(stats.faults.by_path["/cgi-bin/token"].len(), 5);
    let over_http = get_json(&http, format!("{}/_sim/stats", sim.base_url())).await;
    assert_eq!(over_http["faults"]["injected"]["drop"], 1);
    assert_eq!(over_http["faults"]["by_path"]["/cgi-bin/token"]["delay"], 1);
    assert_eq!(over_http["calls"]["/cgi-bin/token"], 6);
}

#[tokio::test]
async fn pay_v2_faults_of_every_kind() {
    let sim = v3::start(false).await;
    let http = client();
    let base = sim.base_url();
    let order = v2::unified_order(
        &http,
        &base,
        "V2FAULT1",
        "100",
        "http://127.0.0.1:9/n",
        false,
    );
    assert_eq!(order.await["result_code"], "SUCCESS");
    let query = || {
        http.post(format!("{base}/pay/orderquery"))
            .body(v2::signed_xml(
                v2::fields(&[("out_trade_no", "V2FAULT1")]),
                false,
            ))
    };
    let answer = |text: &str| v2::parse(text);

    // A business failure, signed as WeChat signs it.
    inject(&http, &sim, "path=/pay/orderquery&err_code=SYSTEMERROR").await;
    let a = answer(&raw(query()).await.2);
    assert_eq!(
        (
            a["return_code"].as_str(),
            a["result_code"].as_str(),
            a["err_code"].as_str()
        ),
        ("SUCCESS", "FAIL", "SYSTEMERROR")
    );
    assert!(!a["err_code_des"].is_empty());
    assert_eq!((a["appid"].as_str(), a["mch_id"].as_str()), (APPID, MCH_ID));
    assert!(v2::verifies(&a, false), "{a:?}");
    assert!(!a.contains_key("trade_state"));

    // A communication failure: return_code and return_msg only, unsigned.
    inject(&http, &sim, "path=/pay/orderquery&return_code=FAIL").await;
    let a = answer(&raw(query()).await.2);
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(a["return_code"], "FAIL");
    assert_eq!(a["return_msg"], "系统繁忙，请稍后再试");

    inject(&http, &sim, "path=/pay/orderquery&status=502").await;
    assert_gateway(&raw(query()).await, 502, "Bad Gateway");

    inject(&http, &sim, "path=/pay/orderquery&fault=delay&delay_ms=250").await;
    let started = Instant::now();
    let a = answer(&raw(query()).await.2);
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert_eq!(a["trade_state"], "NOTPAY");
    assert!(v2::verifies(&a, false));

    inject(&http, &sim, "path=/pay/orderquery&fault=drop").await;
    assert_dropped(query()).await;

    inject(&http, &sim, "path=/pay/orderquery&fault=malformed").await;
    let (status, content_type, body) = raw(query()).await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/xml"), "{content_type}");
    assert!(
        body.starts_with("<xml>") && !body.contains("</xml>"),
        "{body}"
    );

    inject(&http, &sim, "path=/pay/orderquery&fault=bad_signature").await;
    let a = answer(&raw(query()).await.2);
    assert_eq!(a["trade_state"], "NOTPAY");
    assert_eq!(a["sign"].len(), 32, "still an MD5 sign");
    assert!(!v2::verifies(&a, false));

    inject(&http, &sim, "path=/pay/orderquery&fault=unsigned").await;
    let a = answer(&raw(query()).await.2);
    assert_eq!(a["return_code"], "SUCCESS");
    assert!(!a.contains_key("sign"));

    // Refunds (on the plain listener: this merchant has no client_ca).
    inject(
        &http,
        &sim,
        "path=/secapi/pay/refund&err_code=BIZERR_NEED_RETRY",
    )
    .await;
    let refund = v2::fields(&[
        ("out_trade_no", "V2FAULT1"),
        ("out_refund_no", "V2FAULT1R"),
        ("total_fee", "100"),
        ("refund_fee", "1"),
    ]);
    let a = v2::post_xml(&http, &format!("{base}/secapi/pay/refund"), refund, false).await;
    assert_eq!(
        (a["result_code"].as_str(), a["err_code"].as_str()),
        ("FAIL", "BIZERR_NEED_RETRY")
    );

    // A prefix: every v2 path, until cleared.
    inject(&http, &sim, "path=/pay/*&status=500&probability=1").await;
    assert_eq!(raw(query()).await.0, 500);
    let close = v2::signed_xml(v2::fields(&[("out_trade_no", "V2FAULT1")]), false);
    assert_eq!(
        raw(http.post(format!("{base}/pay/closeorder")).body(close))
            .await
            .0,
        500
    );
    assert_eq!(
        clear(&http, &sim, "path=/pay/*").await,
        json!({ "cleared": 1 })
    );
    assert_eq!(answer(&raw(query()).await.2)["trade_state"], "NOTPAY");

    for refused in [
        "path=/pay/orderquery&errcode=-1",
        "path=/pay/orderquery&err_code=system_error",
        "path=/pay/orderquery&return_code=SUCCESS",
        "path=/pay/orderquery&status=500&code=SYSTEM_ERROR",
        "path=/pay/orderquery&err_code=SYSTEMERROR&errmsg=x",
    ] {
        assert_eq!(fail(&http, &sim, refused).await.0, 400, "{refused}");
    }
    let stats = sim.stats();
    assert_eq!(stats.faults_injected("err_code"), 2);
    assert_eq!(stats.faults_injected("status"), 3);
    assert_eq!(stats.faults.by_path["/pay/closeorder"]["status"], 1);
}

#[tokio::test]
async fn pay_v3_faults_of_every_kind() {
    let sim = v3::start(false).await;
    let c = Client::new(&sim).await;
    let http = client();
    let query_url = format!("/v3/pay/transactions/out-trade-no/V3FAULT1?mchid={MCH_ID}");
    let auth = Auth::good();
    let unverified = || c.send_with(Some(&auth), "GET", &query_url, "", None);

    // Prepay, a little late.
    inject(
        &http,
        &sim,
        "path=/v3/pay/transactions/jsapi&fault=delay&delay_ms=300",
    )
    .await;
    let started = Instant::now();
    let a = c.prepay("V3FAULT1", 1, "https://example.com/notify").await;
    assert_eq!(a.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));

    inject(&http, &sim, "path=/v3/pay/transactions/jsapi&fault=drop").await;
    assert_dropped(
        http.post(format!("{}/v3/pay/transactions/jsapi", sim.base_url()))
            .body("{}"),
    )
    .await;

    // By prefix, since v3 paths carry the order number: a signed error…
    let prefix = "path=/v3/pay/transactions/out-trade-no/*";
    inject(
        &http,
        &sim,
        &format!("{prefix}&status=429&code=FREQUENCY_LIMITED"),
    )
    .await;
    let a = c.query("V3FAULT1").await; // checks the signature
    assert_eq!(
        (a.status.as_u16(), a.code()),
        (429, "FREQUENCY_LIMITED".into())
    );

    // …a bare gateway status, unsigned…
    inject(&http, &sim, &format!("{prefix}&status=502")).await;
    let a = unverified().await;
    assert_eq!(a.status, 502);
    assert_eq!(v3::header(&a.headers, "content-type"), "text/html");
    assert!(a.headers.get("wechatpay-signature").is_none());
    assert!(String::from_utf8_lossy(&a.body).contains("502 Bad Gateway"));

    // …JSON that does not parse, correctly signed over the bytes sent…
    inject(&http, &sim, &format!("{prefix}&fault=malformed")).await;
    let a = c.query("V3FAULT1").await;
    assert_eq!(a.status, 200);
    assert_eq!(v3::header(&a.headers, "content-type"), "application/json");
    assert!(!a.body.is_empty() && serde_json::from_slice::<Value>(&a.body).is_err());

    // …and signatures that do not verify, on every v3 path while the fault lasts.
    inject(&http, &sim, "path=/v3/*&fault=bad_signature&probability=1").await;
    for _ in 0..2 {
        let a = unverified().await;
        assert_eq!(a.status, 200);
        assert!(!v3::signed_by(&a.headers, &a.body, &c.pay_public_pem));
    }
    inject(&http, &sim, "path=/v3/*&fault=unsigned&probability=1").await;
    let a = unverified().await;
    assert!(a.headers.get("wechatpay-signature").is_none());
    assert_eq!(
        clear(&http, &sim, "path=/v3/*").await,
        json!({ "cleared": 1 })
    );
    assert_eq!(c.query("V3FAULT1").await.json()["trade_state"], "NOTPAY");

    let stats = sim.stats();
    assert_eq!(stats.faults_injected("status"), 2);
    assert_eq!(stats.faults_injected("bad_signature"), 2);
    let by_query = &stats.faults.by_path["/v3/pay/transactions/out-trade-no/V3FAULT1"];
    assert_eq!(by_query.values().sum::<u64>(), 6, "{by_query:?}");
}

#[tokio::test]
async fn secapi_faults_on_the_tls_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let tls_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let sim = Simulator::from_toml_str(&v3::config(false))
        .expect("config")
        .start_on(listener, Some(tls_listener))
        .await
        .expect("start");
    let http = client();
    let base = sim.base_url();
    let tls_base = sim.tls_base_url().expect("TLS listener");
    let server_ca = raw(http.get(format!("{base}/_sim/tls/server-ca.pem")))
        .await
        .2;
    let tls = reqwest::Client::builder()
        .no_proxy()
        .timeout(WAIT)
        .add_root_certificate(reqwest::Certificate::from_pem(server_ca.as_bytes()).expect("CA"))
        .build()
        .expect("client");
    v2::paid_order(&http, &base, "TLSFAULT1", "100", "http://127.0.0.1:9/n").await;
    let refund = || {
        let fields = v2::fields(&[
            ("out_trade_no", "TLSFAULT1"),
            ("out_refund_no", "TLSFAULT1R"),
            ("total_fee", "100"),
            ("refund_fee", "10"),
        ]);
        tls.post(format!("{tls_base}/secapi/pay/refund"))
            .body(v2::signed_xml(fields, false))
    };
    inject(
        &http,
        &sim,
        "path=/secapi/pay/refund&err_code=SYSTEMERROR&times=1",
    )
    .await;
    let a = v2::parse(&raw(refund()).await.2);
    assert_eq!(
        (a["result_code"].as_str(), a["err_code"].as_str()),
        ("FAIL", "SYSTEMERROR")
    );
    assert!(v2::verifies(&a, false));
    inject(&http, &sim, "path=/secapi/*&fault=drop").await;
    assert_dropped(refund()).await;
    let a = v2::parse(&raw(refund()).await.2);
    assert_eq!(a["result_code"], "SUCCESS", "{a:?}");

    // The control routes' own origin on this listener is https://.
    let stats = |origin: &str| {
        tls.get(format!("{tls_base}/_sim/stats"))
            .header("Origin", origin)
    };
    assert_eq!(raw(stats(&tls_base)).await.0, 200);
    let plain_origin = tls_base.replacen("https://", "http://", 1);
    assert_eq!(raw(stats(&plain_origin)).await.0, 403);
}

// ---- frequency, listing, clearing ----

/// 40 calls to `/sns/userinfo` under `probability=0.5&seed=7` on `/sns/*`: which failed.
async fn seeded_draws(http: &reqwest::Client, sim: &RunningSim) -> Vec<bool> {
    inject(http, sim, "path=/sns/*&errcode=-1&probability=0.5&seed=7").await;
    let url = format!("{}/sns/userinfo?access_token=x&openid=y", sim.base_url());
    let mut draws = Vec::new();
    for _ in 0..40 {
        draws.push(get_json(http, url.clone()).await["errcode"] == -1);
    }
    draws
}

#[tokio::test]
async fn times_probability_listing_and_clearing() {
    let sim = common::start().await;
    let http = client();
    let base = sim.base_url();
    let userinfo = format!("{base}/sns/userinfo?access_token=x&openid=y");

    let queued = inject(&http, &sim, "path=/sns/userinfo&errcode=45011&times=3").await;
    assert_eq!(queued, json!({ "path": "/sns/userinfo", "queued": 3 }));
    for _ in 0..3 {
        assert_errcode(&get_json(&http, userinfo.clone()).await, 45011);
    }
    let genuine = get_json(&http, userinfo.clone()).await;
    assert_ne!(genuine["errcode"], 45011, "three times only: {genuine}");

    // Seeded draws: some calls fail, not all, and the same seed fails the same calls.
    let first = seeded_draws(&http, &sim).await;
    let hits = first.iter().filter(|hit| **hit).count();
    assert!((1..40).contains(&hits), "{hits} of 40 at p = 0.5");
    let listed = get_json(&http, format!("{base}/_sim/fail")).await;
    assert_eq!(
        listed["faults"][0],
        json!({
            "path": "/sns/*", "match": "prefix", "queued": 0, "queue": [],
            "random": {
                "probability": 0.5, "seed": 7,
                "fault": { "kind": "errcode", "errcode": -1, "errmsg": "system error" },
            },
        })
    );
    assert_eq!(
        clear(&http, &sim, "path=/sns/*").await,
        json!({ "cleared": 1 })
    );
    assert_eq!(seeded_draws(&http, &sim).await, first);

    // Queued faults are listed in order, identical ones counted together.
    inject(&http, &sim, "path=/cgi-bin/token&errcode=-1&times=2").await;
    let answer = inject(&http, &sim, "path=/cgi-bin/token&errcode=45009").await;
    assert_eq!(answer["queued"], 3);
    let listed = get_json(&http, format!("{base}/_sim/fail")).await;
    let token = &listed["faults"][0];
    assert_eq!(
        (token["path"].as_str(), token["match"].as_str()),
        (Some("/cgi-bin/token"), Some("exact"))
    );
    assert_eq!(token["queue"][0]["times"], 2);
    assert_eq!(token["queue"][1]["fault"]["errcode"], 45009);
    assert_eq!(listed["faults"].as_array().map(Vec::len), Some(2));

    assert_eq!(
        clear(&http, &sim, "path=/cgi-bin/token").await,
        json!({ "cleared": 1 })
    );
    assert_eq!(
        clear(&http, &sim, "path=/cgi-bin/token").await,
        json!({ "cleared": 0 })
    );
    assert_eq!(clear(&http, &sim, "").await, json!({ "cleared": 1 }));
    assert_eq!(
        get_json(&http, format!("{base}/_sim/fail")).await,
        json!({ "faults": [] })
    );
    assert!(get_json(&http, token_url(&sim)).await["access_token"].is_string());

    for refused in [
        "path=/sns/*&errcode=-1&times=2&probability=0.5",
        "path=/sns/*&errcode=-1&seed=7",
        "path=/sns/*&errcode=-1&probability=2",
        "path=/sns/*&errcode=-1&surprise=1",
        "path=/sns/userinfo?x=1&errcode=-1",
        "path=/sns*/x&errcode=-1",
        "path=/connect/oauth2/authorize&status=500",
    ] {
        let (status, answer) = fail(&http, &sim, refused).await;
        assert_eq!(status, 400, "{refused}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    let bad_clear = http
        .delete(format!("{base}/_sim/fail?times=1"))
        .send()
        .await
        .expect("sent");
    assert_eq!(bad_clear.status(), 400);

    let stats = sim.stats();
    assert_eq!(stats.faults_injected("errcode") as usize, 3 + 2 * hits);
    assert_eq!(
        stats.faults.by_path["/sns/userinfo"]["errcode"] as usize,
        3 + 2 * hits
    );
}

// ---- notification modes ----

#[tokio::test]
async fn v2_notification_modes() {
    let sim = v3::start(false).await;
    let http = client();
    let base = sim.base_url();
    let (url, mut rx) = v2::receiver(&[]).await;
    v2::paid_order(&http, &base, "V2N1", "100", &url).await;
    let genuine = v2::next(&mut rx).await;
    let refund = v2::fields(&[
        ("out_trade_no", "V2N1"),
        ("out_refund_no", "V2N1R"),
        ("total_fee", "100"),
        ("refund_fee", "30"),
        ("notify_url", &url),
    ]);
    let r = v2::post_xml(&http, &format!("{base}/secapi/pay/refund"), refund, false).await;
    assert_eq!(r["result_code"], "SUCCESS", "{r:?}");
    assert!(v2::next(&mut rx).await.contains_key("req_info"));
    wait_for(&sim, 2, 2).await;

    // A failed payment, correctly signed.
    let (status, a) = notify(
        &http,
        &sim,
        &json!({"out_trade_no": "V2N1", "mode": "result_code_fail"}),
    )
    .await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(
        (a["status"].clone(), a["acknowledged"].clone()),
        (json!(200), json!(true))
    );
    assert_eq!(a["notify_url"], url.as_str());
    let n = v2::next(&mut rx).await;
    assert!(v2::verifies(&n, false), "{n:?}");
    assert_eq!(
        (
            n["return_code"].as_str(),
            n["result_code"].as_str(),
            n["err_code"].as_str()
        ),
        ("SUCCESS", "FAIL", "NOTENOUGH")
    );
    assert_eq!(n["out_trade_no"], "V2N1");
    assert!(!n.contains_key("transaction_id") && !n.contains_key("time_end"));

    // A payment of an order the app never made, correctly signed.
    let (_, a) = notify(
        &http,
        &sim,
        &json!({"out_trade_no": "V2N1", "mode": "unknown_order"}),
    )
    .await;
    let invented = a["deliveries"][0]["out_trade_no"]
        .as_str()
        .expect("out_trade_no");
    assert!(invented.starts_with("SIMUNKNOWN"), "{a}");
    let n = v2::next(&mut rx).await;
    assert!(v2::verifies(&n, false));
    assert_eq!(n["out_trade_no"], invented);
    assert_eq!(
        (n["result_code"].as_str(), n["total_fee"].as_str()),
        ("SUCCESS", "100")
    );
    assert_ne!(n["transaction_id"], genuine["transaction_id"]);

    // The refund's notification first, then the payment's.
    let (_, a) = notify(
        &http,
        &sim,
        &json!({"out_trade_no": "V2N1", "mode": "reordered"}),
    )
    .await;
    assert_eq!(kinds(&a), ["refund", "payment"]);
    assert_eq!(a["acknowledged"], true);
    assert_eq!(a["deliveries"][0]["out_refund_no"], "V2N1R");
    let first = v2::next(&mut rx).await;
    assert!(v2::decrypt_req_info(&first["req_info"]).contains("V2N1R"));
    let second = v2::next(&mut rx).await;
    assert!(v2::verifies(&second, false));
    assert_eq!(second["transaction_id"], genuine["transaction_id"]);

    // Mistakes are explained.
    v2::paid_order(&http, &base, "V2N2", "1", &url).await;
    v2::next(&mut rx).await;
    for (body, want, needle) in [
        (
            json!({"out_refund_no": "V2N1R", "mode": "result_code_fail"}),
            400,
            "give out_trade_no",
        ),
        (
            json!({"out_trade_no": "V2N2", "mode": "reordered"}),
            409,
            "no refund",
        ),
        (
            json!({"out_trade_no": "V2N1", "mode": "tampered_body"}),
            400,
            "v3 mode",
        ),
        (
            json!({"out_trade_no": "V2N1", "mode": "nope"}),
            400,
            "concurrent_duplicates",
        ),
    ] {
        let (status, a) = notify(&http, &sim, &body).await;
        assert_eq!(status, want, "{body}: {a}");
        let error = a["error"].as_str().expect("error");
        assert!(error.contains(needle), "{error}");
    }
}

#[tokio::test]
async fn v3_notification_modes() {
    let sim = v3::start(false).await;
    let c = Client::new(&sim).await;
    let http = client();
    let (url, mut rx) = v3::receiver(&[]).await;
    c.paid_order("V3NOTIFY1", 100, &url).await;
    v3::next(&mut rx).await;
    let refund = json!({
        "out_trade_no": "V3NOTIFY1", "out_refund_no": "V3N1R", "notify_url": url,
        "amount": { "refund": 30, "total": 100, "currency": "CNY" },
    });
    let r = c
        .send("POST", "/v3/refund/domestic/refunds", &refund.to_string())
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    v3::next(&mut rx).await;
    let event = |n: &v3::Received| {
        assert!(v3::signed_by(
            &n.headers,
            n.body.as_bytes(),
            &c.pay_public_pem
        ));
        let envelope: Value = serde_json::from_str(&n.body).expect("json");
        (
            envelope["event_type"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            v3::resource(n),
        )
    };

    // A failed payment: still TRANSACTION.SUCCESS (v3 has no other payment event), the
    // resource says PAYERROR.
    let (_, a) = notify(
        &http,
        &sim,
        &json!({"out_trade_no": "V3NOTIFY1", "mode": "result_code_fail"}),
    )
    .await;
    assert_eq!(
        (a["status"].clone(), a["acknowledged"].clone()),
        (json!(204), json!(true))
    );
    let (event_type, t) = event(&v3::next(&mut rx).await);
    assert_eq!(event_type, "TRANSACTION.SUCCESS");
    assert_eq!(
        (t["trade_state"].as_str(), t["out_trade_no"].as_str()),
        (Some("PAYERROR"), Some("V3NOTIFY1"))
    );
    assert!(t.get("transaction_id").is_none() && t.get("success_time").is_none());

    let (_, a) = notify(
        &http,
        &sim,
        &json!({"out_trade_no": "V3NOTIFY1", "mode": "unknown_order"}),
    )
    .await;
    let (_, t) = event(&v3::next(&mut rx).await);
    let invented = t["out_trade_no"].as_str().expect("out_trade_no");
    assert!(invented.starts_with("SIMUNKNOWN"));
    assert_eq!(a["deliveries"][0]["out_trade_no"], invented);
    assert_eq!(
        (t["trade_state"].as_str(), t["amount"]["total"].as_u64()),
        (Some("SUCCESS"), Some(100))
    );

    let (_, a) = notify(
        &http,
        &sim,
        &json!({"out_refund_no": "V3N1R", "mode": "reordered"}),
    )
    .await;
    assert_eq!(kinds(&a), ["refund", "payment"]);
    let (first, r) = event(&v3::next(&mut rx).await);
    assert_eq!(
        (first.as_str(), r["out_refund_no"].as_str()),
        ("REFUND.SUCCESS", Some("V3N1R"))
    );
    let (second, t) = event(&v3::next(&mut rx).await);
    assert_eq!(
        (second.as_str(), t["trade_state"].as_str()),
        ("TRANSACTION.SUCCESS", Some("REFUND"))
    );
}

#[tokio::test]
async fn concurrent_duplicates_arrive_at_once() {
    let sim = v3::start(false).await;
    let c = Client::new(&sim).await;
    let http = client();
    let base = sim.base_url();
    let mut app = Gathering::start().await;

    // v2: five identical notifications, all in flight together.
    v2::paid_order(&http, &base, "C2", "1", &app.url).await;
    app.received(1).await;
    wait_for(&sim, 1, 1).await;
    app.hold(5);
    let body = json!({"out_trade_no": "C2", "mode": "concurrent_duplicates", "count": 5});
    let (status, a) = notify(&http, &sim, &body).await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(app.most(), 5, "not concurrent: {a}");
    let deliveries = a["deliveries"].as_array().expect("deliveries");
    assert_eq!(deliveries.len(), 5);
    assert!(
        deliveries
            .iter()
            .all(|d| d["status"] == 200 && d["kind"] == "payment")
    );
    let received = app.received(5).await;
    assert!(
        received.windows(2).all(|w| w[0].1 == w[1].1),
        "identical bodies"
    );
    assert!(v2::verifies(&v2::parse(&received[0].1), false));

    // v3: four, each signed.
    app.hold(0);
    c.paid_order("CONCUR3", 1, &app.url).await;
    app.received(1).await;
    wait_for(&sim, 7, 7).await;
    app.hold(4);
    let body = json!({"out_trade_no": "CONCUR3", "mode": "concurrent_duplicates", "count": 4});
    let (_, a) = notify(&http, &sim, &body).await;
    assert_eq!(app.most(), 4, "not concurrent: {a}");
    assert_eq!(a["acknowledged"], true);
    let received = app.received(4).await;
    assert!(received.windows(2).all(|w| w[0].1 == w[1].1));
    assert!(received.iter().all(|(headers, body)| v3::signed_by(
        headers,
        body.as_bytes(),
        &c.pay_public_pem
    )));
    wait_for(&sim, 11, 11).await;

    for count in [json!(null), json!(0), json!(51)] {
        let body = json!({"out_trade_no": "C2", "mode": "concurrent_duplicates", "count": count});
        assert_eq!(notify(&http, &sim, &body).await.0, 400, "{count}");
    }
    let body = json!({"out_trade_no": "C2", "mode": "duplicate", "count": 2});
    assert_eq!(notify(&http, &sim, &body).await.0, 400);
}

/// A prefix fault is taken by paths no route serves too; they count under one `(unknown)`
/// entry of `faults.by_path` (and of `calls`), however many there are.
#[tokio::test]
async fn faults_on_unknown_paths_count_under_one_entry() {
    let sim = common::start().await;
    let http = client();
    inject(&http, &sim, "path=/cgi-bin/*&status=503&times=300").await;
    for i in 0..300 {
        let url = format!("{}/cgi-bin/no-such-{i}", sim.base_url());
        assert_eq!(http.get(url).send().await.expect("sent").status(), 503);
    }
    let stats = sim.stats();
    assert_eq!(stats.faults_injected("status"), 300);
    assert_eq!(
        stats.faults.by_path.keys().collect::<Vec<_>>(),
        ["(unknown)"]
    );
    assert_eq!(stats.faults.by_path["(unknown)"]["status"], 300);
    assert_eq!(stats.calls_to("(unknown)"), 300);
}

// ---- the cross-origin rule ----

#[tokio::test]
async fn control_routes_answer_no_cross_origin_request() {
    let sim = common::start().await;
    let http = client();
    let base = sim.base_url();
    let stats = format!("{base}/_sim/stats");
    let status_of = |request: reqwest::RequestBuilder| async move {
        let res = request.send().await.expect("sent");
        assert!(
            res.headers().get("access-control-allow-origin").is_none(),
            "no CORS on control routes"
        );
        res.status().as_u16()
    };

    assert_eq!(
        status_of(http.get(&stats)).await,
        200,
        "no Origin: curl, tests"
    );
    assert_eq!(
        status_of(http.get(&stats).header("Origin", &base)).await,
        200
    );
    for site in ["same-origin", "none"] {
        assert_eq!(
            status_of(http.get(&stats).header("Sec-Fetch-Site", site)).await,
            200
        );
    }
    for site in ["cross-site", "same-site"] {
        assert_eq!(
            status_of(http.get(&stats).header("Sec-Fetch-Site", site)).await,
            403
        );
    }
    for origin in ["http://127.0.0.1:3000", "null", "https://evil.example"] {
        let (status, _, body) = raw(http.get(&stats).header("Origin", origin)).await;
        assert_eq!(status, 403, "{origin}");
        let error: Value = serde_json::from_str(&body).expect("JSON");
        assert!(
            error["error"]
                .as_str()
                .is_some_and(|e| e.contains("cross-origin"))
        );
    }
    let preflight = http
        .request(reqwest::Method::OPTIONS, format!("{base}/_sim/fail"))
        .header("Origin", "http://127.0.0.1:3000")
        .header("Access-Control-Request-Method", "POST");
    assert_eq!(status_of(preflight).await, 403);
    // A refused request changes nothing.
    let forged = http
        .post(format!("{base}/_sim/fail?path=/cgi-bin/token&errcode=-1"))
        .header("Origin", "http://127.0.0.1:3000");
    assert_eq!(status_of(forged).await, 403);
    let notify = http
        .post(format!("{base}/_sim/pay/notify"))
        .header("Sec-Fetch-Site", "cross-site")
        .json(&json!({"out_trade_no": "X", "mode": "duplicate"}));
    assert_eq!(status_of(notify).await, 403);
    assert_eq!(
        get_json(&http, format!("{base}/_sim/fail")).await,
        json!({ "faults": [] })
    );

    // The bridge routes the JS-SDK calls from the app's page still answer CORS.
    let bridge = http
        .post(format!("{base}/_sim/pay/check"))
        .header("Origin", "http://127.0.0.1:3000")
        .header("Sec-Fetch-Site", "cross-site")
        .json(&json!({}))
        .send()
        .await
        .expect("sent");
    assert_eq!(bridge.status(), 200);
    assert_eq!(
        bridge.headers()["access-control-allow-origin"],
        "http://127.0.0.1:3000"
    );
}

// ---- the Host rule (DNS rebinding) ----

/// The test configuration with `[server] hosts` naming one more host, in mixed case.
async fn start_with_listed_host() -> RunningSim {
    Simulator::from_toml_str(&format!(
        "{}\n[server]\nhosts = [\"Sim.Internal\"]\n",
        common::CONFIG
    ))
    .expect("valid config")
    .start()
    .await
    .expect("started")
}

/// Sends `head` (a whole HTTP/1 request without a body) on a new connection; the answer's
/// status.
async fn raw_status(sim: &RunningSim, head: &str) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(sim.local_addr())
        .await
        .expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

/// A page on a name that resolves to 127.0.0.1 (DNS rebinding) sends its own name in `Host`
/// and `Origin`, so the cross-origin rule alone lets it through: the control routes answer only
/// a loopback `Host`, `localhost`, `*.localhost` or a name of `[server] hosts`, and a refused
/// request changes nothing.
#[tokio::test]
async fn control_routes_answer_loopback_and_listed_hosts_only() {
    let sim = start_with_listed_host().await;
    let http = client();
    let base = sim.base_url();
    let port = sim.local_addr().port();
    let evil = "rebind.evil.example";
    for (method, path) in [
        ("POST", "/_sim/clock/advance?seconds=600"),
        ("POST", "/_sim/fail?path=/cgi-bin/token&errcode=-1"),
        ("POST", "/_sim/pay/orders/X/pay"),
        ("GET", "/_sim/stats"),
        ("GET", "/_sim/"),
        ("GET", "/_sim"),
        ("GET", "/_sim/console/state"),
        ("GET", "/_sim/pay/v3/public-key?mch_id=1900000109"),
    ] {
        for host in [evil.to_owned(), format!("{evil}:{port}")] {
            let res = http
                .request(method.parse().expect("method"), format!("{base}{path}"))
                .header("Host", &host)
                .header("Origin", format!("http://{host}"))
                .header("Sec-Fetch-Site", "same-origin")
                .send()
                .await
                .expect("sent");
            assert_eq!(res.status(), 403, "{method} {path} Host: {host}");
            assert!(res.headers().get("access-control-allow-origin").is_none());
            let body: Value = res.json().await.expect("JSON");
            let error = body["error"].as_str().unwrap_or_default();
            assert!(
                error.contains(&host) && error.contains("[server] hosts"),
                "{error}"
            );
        }
    }
    // Nothing changed.
    let clock = get_json(&http, format!("{base}/_sim/clock")).await;
    assert_eq!(clock["offset_secs"], 0, "{clock}");
    assert_eq!(
        get_json(&http, format!("{base}/_sim/fail")).await,
        json!({ "faults": [] })
    );

    let stats = format!("{base}/_sim/stats");
    for host in [
        "localhost.evil.example".to_owned(),
        "127.0.0.1.evil.example".to_owned(),
        "evil-localhost".to_owned(),
        "localhost.".to_owned(),
        "sim.internal.evil.example".to_owned(),
        "0.0.0.0".to_owned(),
        "10.1.2.3".to_owned(),
        format!("[::2]:{port}"),
        "a b".to_owned(),
        String::new(),
    ] {
        let res = http
            .get(&stats)
            .header("Host", &host)
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 403, "Host: {host:?}");
    }
    for host in [
        format!("127.0.0.1:{port}"),
        "127.0.0.1".to_owned(),
        format!("127.1.2.3:{port}"),
        format!("localhost:{port}"),
        "LocalHost".to_owned(),
        format!("app.localhost:{port}"),
        format!("[::1]:{port}"),
        "[::1]".to_owned(),
        format!("sim.internal:{port}"),
        "SIM.internal".to_owned(),
    ] {
        let res = http
            .get(&stats)
            .header("Host", &host)
            .header("Origin", format!("http://{host}"))
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 200, "Host: {host}");
    }
    let moved = http
        .post(format!("{base}/_sim/clock/advance?seconds=60"))
        .header("Host", format!("localhost:{port}"))
        .send()
        .await
        .expect("sent");
    assert_eq!(moved.status(), 200);

    // Without a Host (HTTP/1.1 or 1.0), or with a request target naming another host: refused.
    for head in [
        "GET /_sim/stats HTTP/1.1\r\nConnection: close\r\n\r\n".to_owned(),
        "GET /_sim/stats HTTP/1.0\r\n\r\n".to_owned(),
        format!(
            "GET http://{evil}/_sim/stats HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        ),
    ] {
        assert_eq!(raw_status(&sim, &head).await, 403, "{head:?}");
    }
    let head =
        format!("GET /_sim/stats HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    assert_eq!(raw_status(&sim, &head).await, 200);

    // The bridge routes and the WeChat endpoints answer any Host, as before.
    for path in ["/_sim/pay/check", "/_sim/jssdk/verify"] {
        let bridge = http
            .post(format!("{base}{path}"))
            .header("Host", evil)
            .header("Origin", "http://127.0.0.1:3000")
            .header("Sec-Fetch-Site", "cross-site")
            .json(&json!({}))
            .send()
            .await
            .expect("sent");
        assert_eq!(bridge.status(), 200, "{path}");
        assert_eq!(
            bridge.headers()["access-control-allow-origin"],
            "http://127.0.0.1:3000"
        );
        let preflight = http
            .request(reqwest::Method::OPTIONS, format!("{base}{path}"))
            .header("Host", evil)
            .header("Origin", "http://127.0.0.1:3000")
            .header("Access-Control-Request-Method", "POST")
            .send()
            .await
            .expect("sent");
        assert_eq!(preflight.status(), 204, "{path}");
    }
    let token = http
        .get(token_url(&sim))
        .header("Host", "wechat-sim:9000")
        .send()
        .await
        .expect("sent");
    let token: Value = token.json().await.expect("JSON");
    assert!(token["access_token"].is_string(), "{token}");
}
