//! No internal error text reaches a browser (as actix-session's `tests/opaque_errors.rs`): when
//! WeChat fails, the login page, the JS-SDK route, the order route and the notification replies
//! say what the reader can act on, and nothing of WeChat's answer. No endpoint, errcode, `rid`,
//! `Request-ID`, caller IP or WeChat message appears in what is sent back, while the log holds
//! all of it under the error id the browser was shown.
//!
//! Each failure is injected into wechat-sim on 127.0.0.1 (`POST /_sim/fail`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use wechat_core::login::{Decision, LoginConfig, LoginFlow};
use wechat_core::oauth::OAuthClient;
use wechat_core::pay::v3::{MerchantKey, PayClient, PayConfig, WechatPayPublicKey};
use wechat_core::pay::{ApiVersion, NotificationReply};
use wechat_core::routes::{PayRoutes, WeChatRoutes};
use wechat_core::session::SessionKeys;
use wechat_core::testing::{MemoryOrders, json_request_headers};
use wechat_core::token::Tokens;
use wechat_core::{BaseUrls, Config, OpenId, build_http_client};
use wechat_sim::fixtures::{self, ALICE, APPID, MCH_ID, MerchantKeyPair};
use wechat_sim::{RunningSim, Simulator};

const PUBLIC: &str = "http://127.0.0.1:3000";
/// The caller IP, the `rid` and the message WeChat's injected 40164 carries.
const IP: &str = "203.0.113.7";
const RID: &str = "0123abcd-4567ef01-89abcdef";
const ERRMSG: &str = "invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist rid: 0123abcd-4567ef01-89abcdef";

/// What must never reach a browser for a failure of `endpoint`.
fn internals(endpoint: &str) -> Vec<String> {
    [
        endpoint,
        "40164",
        IP,
        RID,
        "whitelist",
        "errcode",
        "errmsg",
        "rid",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

/// Every header value and the body of `response`, as text.
fn everything(response: &Response<Bytes>) -> String {
    let mut text = String::from_utf8_lossy(response.body()).into_owned();
    for (name, value) in response.headers() {
        text.push_str(&format!("\n{name}: {}", value.to_str().unwrap_or("")));
    }
    text
}

fn assert_opaque(what: &str, response: &Response<Bytes>, internals: &[String]) {
    let shown = everything(response);
    for secret in internals {
        assert!(
            !shown.contains(secret.as_str()),
            "{what}: {secret:?} reached the browser:\n{shown}"
        );
    }
}

/// The error id in a shown text: the hex run after "rror id ".
fn error_id_in(text: &str) -> String {
    let at = text.find("rror id ").expect("an error id") + "rror id ".len();
    text[at..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect()
}

/// Everything logged, whole lines (the test's own subscriber, for the current thread).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    /// Checks that the logged line naming error id `id` has every one of `details`.
    fn assert_names(&self, id: &str, details: &[&str]) {
        let line = self.line_with(id);
        for detail in details {
            assert!(
                line.contains(detail),
                "{detail} missing from the log: {line}"
            );
        }
    }

    /// The logged line that names `id`.
    fn line_with(&self, id: &str) -> String {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines()
            .find(|line| line.contains(id))
            .unwrap_or_else(|| panic!("no log line names error id {id}:\n{text}"))
            .to_owned()
    }
}

async fn start() -> RunningSim {
    // The demo shop's app, users and merchant (API v2 and v3, the WeChat Pay public key).
    Simulator::from_toml_str(&fixtures::shop_toml(&["127.0.0.1:3000"], None))
        .unwrap()
        .start()
        .await
        .unwrap()
}

/// Fails the next call of `path` with `fault` (`POST /_sim/fail`).
async fn fail(sim: &RunningSim, path: &str, fault: &[(&str, &str)]) {
    let mut query = vec![("path", path), ("times", "1")];
    query.extend_from_slice(fault);
    let response = reqwest::Client::new()
        .post(format!("{}/_sim/fail", sim.base_url()))
        .query(&query)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{path} {fault:?}");
}

fn config(sim: &RunningSim) -> Config {
    Config::new(APPID, fixtures::SECRET)
        .with_base_urls(BaseUrls::all(&sim.base_url()))
        .with_timeout(Duration::from_secs(5))
}

#[tokio::test]
async fn a_failed_login_shows_an_error_id_and_nothing_of_wechats_answer() {
    let sim = start().await;
    let config = config(&sim);
    let client = OAuthClient::new(&config, build_http_client(&config).unwrap());
    let login = LoginConfig::builder(PUBLIC, SessionKeys::new([7u8; 32]).unwrap())
        .build()
        .unwrap();
    let flow = LoginFlow::new(client, login);

    // A page load without a session: to WeChat, with the signed state in a cookie.
    let page = http::Request::get("/shop")
        .header(header::ACCEPT, "text/html")
        .header("sec-fetch-mode", "navigate")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    let Decision::Respond(to_wechat) = flow.decide(&page) else {
        panic!("a page load without a session goes to WeChat");
    };
    let location = to_wechat.headers()[header::LOCATION].to_str().unwrap();
    let query = |name: &str| {
        url::Url::parse(location)
            .unwrap()
            .query_pairs()
            .find(|(n, _)| n == name)
            .unwrap()
            .1
            .into_owned()
    };
    // Where WeChat sends the browser back: the redirect_uri with the code and the state.
    let back = url::Url::parse(&query("redirect_uri")).unwrap();
    let state = query("state");
    let cookie = to_wechat.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();

    // WeChat refuses the code exchange: this server's IP is not whitelisted.
    fail(
        &sim,
        "/sns/oauth2/access_token",
        &[("errcode", "40164"), ("errmsg", ERRMSG)],
    )
    .await;
    let callback = http::Request::get(format!(
        "{}?{}&code=CODE&state={}",
        back.path(),
        back.query().unwrap_or(""),
        url::form_urlencoded::byte_serialize(state.as_bytes()).collect::<String>()
    ))
    .header(header::COOKIE, cookie)
    .header(header::ACCEPT, "text/html")
    .header("sec-fetch-mode", "navigate")
    .body(())
    .unwrap()
    .into_parts()
    .0;
    let (logs, _guard) = Logs::capture();
    let page = flow.handle_callback(&callback).await;
    assert_eq!(
        page.status(),
        StatusCode::BAD_GATEWAY,
        "{}",
        String::from_utf8_lossy(page.body())
    );
    assert_opaque("login page", &page, &internals("/sns/oauth2/access_token"));
    let shown = String::from_utf8_lossy(page.body()).into_owned();
    assert!(
        shown.contains("WeChat login could not be completed"),
        "{shown}"
    );
    // The operator finds the whole story under the id the user saw.
    logs.assert_names(
        &error_id_in(&shown),
        &["/sns/oauth2/access_token", "40164", IP, RID],
    );
}

#[tokio::test]
async fn a_failed_jssdk_config_shows_an_error_id_and_nothing_of_wechats_answer() {
    let sim = start().await;
    let config = config(&sim);
    let tokens = Tokens::new(
        &config,
        build_http_client(&config).unwrap(),
        Arc::new(wechat_core::token::MemoryStore::new()),
    );
    let routes = WeChatRoutes::builder(tokens)
        .jssdk_domain("127.0.0.1:3000")
        .build()
        .unwrap();
    // WeChat refuses the access token (whichever token endpoint is configured).
    fail(
        &sim,
        "/cgi-bin/*",
        &[("errcode", "40164"), ("errmsg", ERRMSG)],
    )
    .await;
    let (logs, _guard) = Logs::capture();
    let answer = routes
        .jssdk_config(Some("url=http%3A%2F%2F127.0.0.1%3A3000%2Fshop"))
        .await;
    assert_eq!(answer.status(), StatusCode::BAD_GATEWAY);
    assert_opaque("JS-SDK config", &answer, &internals("/cgi-bin/"));
    let shown: serde_json::Value = serde_json::from_slice(answer.body()).unwrap();
    let id = shown["error_id"].as_str().unwrap();
    logs.assert_names(id, &["/cgi-bin/", "40164", IP, RID]);
}

fn pay_client(sim: &RunningSim) -> PayClient {
    let keys = MerchantKeyPair::shared();
    let key = MerchantKey::from_pem(keys.private_key_pem.as_bytes(), keys.serial.as_str()).unwrap();
    let (id, pem) = sim.pay_public_key(MCH_ID).unwrap();
    let config = PayConfig::builder(
        MCH_ID,
        APPID,
        key,
        fixtures::APIV3_KEY,
        "https://shop.example/wechat/pay/notify",
    )
    .base_url(sim.base_url())
    .wechat_pay_public_key(WechatPayPublicKey::from_pem(&id, pem.as_bytes()).unwrap())
    .timeout(Duration::from_secs(5))
    .build()
    .unwrap();
    PayClient::new(config).unwrap()
}

#[tokio::test]
async fn a_failed_order_shows_an_error_id_and_nothing_of_wechat_pays_answer() {
    let sim = start().await;
    let routes = PayRoutes::new(pay_client(&sim), Arc::new(MemoryOrders::new(100)));
    // WeChat Pay fails (after the client's retries): a signed 500 SYSTEM_ERROR each time.
    for _ in 0..3 {
        fail(
            &sim,
            "/v3/pay/transactions/jsapi",
            &[
                ("status", "500"),
                ("code", "SYSTEM_ERROR"),
                ("message", "系统错误 203.0.113.7"),
            ],
        )
        .await;
    }
    let (logs, _guard) = Logs::capture();
    let answer = routes
        .create_order(
            &OpenId::new(ALICE),
            "127.0.0.1".parse().unwrap(),
            &json_request_headers(),
            b"{}",
        )
        .await;
    assert_eq!(answer.status(), StatusCode::BAD_GATEWAY);
    let mut hidden = internals("/v3/pay/transactions/jsapi");
    hidden.extend(["SYSTEM_ERROR", "系统错误", "Request-ID"].map(str::to_owned));
    assert_opaque("order", &answer, &hidden);
    let shown: serde_json::Value = serde_json::from_slice(answer.body()).unwrap();
    logs.assert_names(
        shown["error_id"].as_str().unwrap(),
        &["/v3/pay/transactions/jsapi", "SYSTEM_ERROR", "Request-ID"],
    );
}

#[tokio::test]
async fn a_refused_notification_tells_wechat_pay_only_why_in_a_word() {
    let sim = start().await;
    let routes = PayRoutes::new(pay_client(&sim), Arc::new(MemoryOrders::new(100)));
    let mut headers = http::HeaderMap::new();
    for (name, value) in [
        ("wechatpay-timestamp", "1700000000"),
        ("wechatpay-nonce", "n"),
        ("wechatpay-signature", "c2lnbmF0dXJl"),
        (
            "wechatpay-serial",
            "PUB_KEY_ID_0000000000000000000000000000",
        ),
    ] {
        headers.insert(name, value.parse().unwrap());
    }
    let reply = routes
        .payment_notify(&headers, br#"{"id":"EV-1","resource":{}}"#)
        .await;
    assert!(reply.status().is_client_error(), "{:?}", reply.status());
    let body: serde_json::Value = serde_json::from_slice(reply.body()).unwrap();
    assert_eq!(body["code"], "FAIL");
    let message = body["message"].as_str().unwrap();
    assert!(
        [
            "invalid signature",
            "invalid notification",
            "not for this merchant"
        ]
        .contains(&message),
        "{message}"
    );
    // The same words in the reply an application builds itself.
    let own = NotificationReply::fail(ApiVersion::V3, reply.status(), message).into_response();
    assert_eq!(own.body(), reply.body());
}
