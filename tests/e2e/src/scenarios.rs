//! The scenarios, each generic over the [`Demo`] under test. Each one starts its own demo (own
//! simulator, own database), so they run in parallel.

use std::time::Duration;

use demo_shop::sim::USERS;
use demo_shop::{OrderStore, PayVersion, Settings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use wechat_core::OutTradeNo;
use wechat_core::routes::OrderStatus;
use wechat_core::session::SessionKeys;
use wechat_sim::RunningSim;

use wechat_test_support::html::{attr, element_tag, element_text};
use wechat_test_support::{Answer, ConsentPage};

use crate::{Browser, Demo, TempDir, Visit, eventually, test_settings};

/// How long a notification may take to arrive.
const NOTIFICATION_WAIT: Duration = Duration::from_secs(10);

/// A demo started for one scenario, with its database folder.
struct Running<D: Demo> {
    demo: D,
    // Dropped after the demo is stopped: removes the database.
    dir: TempDir,
}

impl<D: Demo> Running<D> {
    async fn start(label: &str) -> Self {
        let dir = TempDir::new(label);
        let settings = test_settings(&dir);
        Self::start_with(dir, settings).await
    }

    async fn start_with(dir: TempDir, settings: Settings) -> Self {
        let demo = D::start(settings)
            .await
            .unwrap_or_else(|e| panic!("the {} demo does not start: {e}", D::FRAMEWORK));
        assert!(
            demo.sim().is_some(),
            "the {} demo started without its embedded simulator",
            D::FRAMEWORK
        );
        Self { demo, dir }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.demo.base_url())
    }

    fn sim(&self) -> &RunningSim {
        self.demo.sim().expect("embedded simulator")
    }

    fn sim_url(&self, path: &str) -> String {
        format!("{}{path}", self.sim().base_url())
    }

    fn store(&self) -> &OrderStore {
        self.demo.store()
    }

    async fn stop(self) -> TempDir {
        self.demo.stop().await;
        self.dir
    }

    /// Logs `browser` in as `USERS[user]` starting from `path`, and returns the page it ends on.
    async fn login(&self, browser: &Browser, user: usize, path: &str) -> Visit {
        let consent = browser.navigate(&self.url(path)).await;
        assert_consent_page(&consent, self.sim());
        let form = ConsentPage::read(&consent).expect("the consent page has a form");
        let openid = USERS[user].openid();
        let page = browser
            .consent(&form, Some(openid.as_str()), "allow")
            .follow()
            .await;
        assert_eq!(
            page.status,
            StatusCode::OK,
            "after consent the {} demo should show the page: {page:#?}",
            D::FRAMEWORK
        );
        page
    }

    /// `POST /wechat/pay/orders` with `{}`; the order number and the pay parameters.
    async fn create_order(&self, browser: &Browser) -> (OutTradeNo, Value) {
        let (status, body) = fetch_json(
            browser,
            Method::POST,
            &self.url("/wechat/pay/orders"),
            Some("{}"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "create order: {body}");
        let out_trade_no = body["out_trade_no"]
            .as_str()
            .unwrap_or_else(|| panic!("no out_trade_no in {body}"))
            .to_owned();
        let params = body["params"].clone();
        for field in [
            "appId",
            "timeStamp",
            "nonceStr",
            "package",
            "signType",
            "paySign",
        ] {
            assert!(
                params[field].is_string(),
                "params.{field} missing in {body}"
            );
        }
        (OutTradeNo::new(out_trade_no), params)
    }

    /// `GET /wechat/pay/orders/{no}` as a `fetch`.
    async fn order_status(&self, browser: &Browser, no: &OutTradeNo) -> (StatusCode, Value) {
        get_json(browser, &self.url(&format!("/wechat/pay/orders/{no}"))).await
    }

    /// What the simulator's pay sheet's confirm button does.
    async fn confirm(&self, browser: &Browser, params: &Value) -> Value {
        post_json(browser, &self.sim_url("/_sim/pay/confirm"), params).await
    }

    async fn paid_count(&self) -> u64 {
        self.store().paid_count().await.expect("paid_count")
    }

    async fn stored_status(&self, no: &OutTradeNo) -> OrderStatus {
        self.store()
            .get(no)
            .await
            .expect("store")
            .expect("the order is stored")
            .status
    }
}

fn assert_consent_page(visit: &Visit, sim: &RunningSim) {
    assert_eq!(visit.status, StatusCode::OK, "consent page: {visit:#?}");
    assert!(
        visit
            .url
            .as_str()
            .starts_with(&format!("{}/connect/oauth2/authorize?", sim.base_url())),
        "expected the simulator's authorize page, got {}",
        visit.url
    );
    assert!(
        visit.body.contains(r#"id="sim-consent-allow""#),
        "no consent form: {}",
        visit.body
    );
}

/// First visit → the simulator's consent page (the browser was redirected there with a signed
/// state) → "allow" → back at the original path and query, with the nickname and avatar rendered
/// by the server; the page's scripts load.
pub async fn login_shows_the_user<D: Demo>() {
    let demo = Running::<D>::start("login").await;
    let browser = Browser::wechat();
    // The first visit: a 302 to WeChat's authorize page, which shows the consent form.
    let consent = browser.navigate(&demo.url("/?from=e2e")).await;
    assert_consent_page(&consent, demo.sim());
    let (from, location) = &consent.redirects[0];
    assert_eq!(from.as_str(), demo.url("/?from=e2e"));
    assert!(
        location.starts_with(
            &demo.sim_url("/connect/oauth2/authorize?appid=wxde0000000000de01&redirect_uri=")
        ),
        "the first visit goes to WeChat's authorize page: {location}"
    );
    assert!(location.contains("scope=snsapi_userinfo"), "{location}");

    // "Allow", as the form's button does: back through the callback to the original URL.
    let form = ConsentPage::read(&consent).expect("the consent page has a form");
    let page = browser.consent(&form, None, "allow").follow().await;
    assert_eq!(page.status, StatusCode::OK, "{page:#?}");
    assert_eq!(
        page.url.as_str(),
        demo.url("/?from=e2e"),
        "back at the original URL"
    );
    assert!(
        page.redirects
            .iter()
            .any(|(from, _)| from.path() == "/wechat/oauth/callback"),
        "the login returns through the callback: {:#?}",
        page.redirects
    );
    assert!(
        page.headers[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
    );
    assert_eq!(
        element_text(&page.body, "nickname").as_deref(),
        Some(USERS[0].nickname),
        "the nickname is on the page: {}",
        page.body
    );
    let avatar = attr(element_tag(&page.body, "avatar").expect("#avatar"), "src").expect("src");
    assert_eq!(avatar, demo.url(USERS[0].avatar_path));
    assert!(element_tag(&page.body, "pay").is_some());
    assert!(element_tag(&page.body, "order-status").is_some());
    assert!(browser.cookie(&demo.url("/"), "wechat_session").is_some());

    // The avatar, the page script and the simulator's JS-SDK load.
    let image = browser.request(Method::GET, &avatar).send().await;
    assert_eq!(image.status, StatusCode::OK);
    assert_eq!(image.headers["content-type"], "image/svg+xml");
    let script = browser
        .request(Method::GET, &demo.url("/assets/shop.js"))
        .send()
        .await;
    assert_eq!(script.status, StatusCode::OK);
    let jssdk = demo.sim_url("/open/js/jweixin-1.6.0.js");
    assert!(
        page.body.contains(&format!(r#"<script src="{jssdk}">"#)),
        "the page loads the JS-SDK from the simulator"
    );
    let jssdk = browser.request(Method::GET, &jssdk).send().await;
    assert_eq!(jssdk.status, StatusCode::OK);
    assert!(jssdk.body.contains("WeixinJSBridge"));

    // A second visit needs no login.
    let again = browser.navigate(&demo.url("/")).await;
    assert!(again.redirects.is_empty(), "{:#?}", again.redirects);
    assert_eq!(again.status, StatusCode::OK);
    demo.stop().await;
}

/// The page's `wx.config` for a URL with a query and a fragment passes the simulator's check
/// (`POST /_sim/jssdk/verify`, as the JS-SDK does); a different URL does not; a page on another
/// domain gets no config.
pub async fn jssdk_config_passes_the_simulators_check<D: Demo>() {
    let demo = Running::<D>::start("jssdk").await;
    let browser = Browser::wechat();
    demo.login(&browser, 0, "/").await;
    let page_url = demo.url("/?item=42&ref=a%20b#section");
    let signed_url = demo.url("/?item=42&ref=a%20b");
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("url", &page_url)
        .finish();
    let (status, config) = get_json(
        &browser,
        &demo.url(&format!("/wechat/jssdk/config?{query}")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "jssdk config: {config}");
    assert_eq!(config["appId"], "wxde0000000000de01");
    let verify = |url: String| {
        let body = json!({
            "appId": config["appId"],
            "timestamp": config["timestamp"],
            "nonceStr": config["nonceStr"],
            "signature": config["signature"],
            "url": url,
        });
        let browser = browser.clone();
        let endpoint = demo.sim_url("/_sim/jssdk/verify");
        async move { post_json(&browser, &endpoint, &body).await }
    };
    assert_eq!(verify(signed_url).await, json!({"ok": true}));
    let other = verify(demo.url("/?item=43")).await;
    assert_eq!(other["ok"], false);
    assert_eq!(other["errMsg"], "config:invalid signature");

    let foreign: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("url", "https://evil.example.com/")
        .finish();
    let (status, body) = get_json(
        &browser,
        &demo.url(&format!("/wechat/jssdk/config?{foreign}")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "foreign domain: {body}");
    demo.stop().await;
}

/// Order → the pay sheet's confirm (`/_sim/pay/confirm` with the page's params) → the
/// notification → `paid`, with exactly one paid row; a duplicate notification changes nothing;
/// confirming the same params again fails.
pub async fn payment_is_recorded_exactly_once<D: Demo>(version: PayVersion) {
    let dir = TempDir::new("pay");
    let mut settings = test_settings(&dir);
    settings.pay_version = version;
    let demo = Running::<D>::start_with(dir, settings).await;
    let browser = Browser::wechat();
    demo.login(&browser, 0, "/").await;
    let (no, params) = demo.create_order(&browser).await;
    let stored = demo.store().get(&no).await.unwrap().expect("order stored");
    assert_eq!(stored.status, OrderStatus::Unpaid);
    assert_eq!(stored.total_fee, 1);
    assert_eq!(stored.owner.as_str(), USERS[0].openid());
    let (status, body) = demo.order_status(&browser, &no).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"out_trade_no": no.as_str(), "status": "unpaid", "total_fee": 1})
    );

    let paid = demo.confirm(&browser, &params).await;
    assert_eq!(paid["err_msg"], "get_brand_wcpay_request:ok", "{paid}");
    let store = demo.store().clone();
    eventually(NOTIFICATION_WAIT, "the payment notification", || {
        let (store, no) = (store.clone(), no.clone());
        async move {
            let order = store.get(&no).await.ok()??;
            (order.status == OrderStatus::Paid).then_some(())
        }
    })
    .await;
    let sim = demo.sim();
    eventually(NOTIFICATION_WAIT, "the acknowledgement", || async {
        (sim.stats().notifications.acknowledged >= 1).then_some(())
    })
    .await;
    let (status, body) = demo.order_status(&browser, &no).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"out_trade_no": no.as_str(), "status": "paid", "total_fee": 1})
    );
    assert_eq!(demo.paid_count().await, 1);
    let stored = demo.store().get(&no).await.unwrap().unwrap();
    assert!(stored.transaction_id.is_some());

    assert_eq!(
        params["signType"],
        match version {
            PayVersion::V3 => "RSA",
            PayVersion::V2 => "MD5",
        }
    );
    // WeChat re-sends: acknowledged again, still one paid row; a tampered, replayed or
    // probing one is refused.
    let modes: &[(&str, bool)] = match version {
        PayVersion::V2 => &[
            ("duplicate", true),
            ("tamper_total_fee", false),
            ("tamper_sign", false),
        ],
        PayVersion::V3 => &[
            ("duplicate", true),
            ("tampered_body", false),
            ("stale_timestamp", false),
            ("unknown_serial", false),
            ("signtest", false),
        ],
    };
    for &(mode, acknowledged) in modes {
        let resend = post_json(
            &browser,
            &demo.sim_url("/_sim/pay/notify"),
            &json!({"out_trade_no": no.as_str(), "mode": mode}),
        )
        .await;
        assert_eq!(resend["acknowledged"], acknowledged, "{mode}: {resend}");
        assert_eq!(demo.paid_count().await, 1, "{mode}");
    }

    // The same pay sheet cannot pay twice.
    let twice = demo.confirm(&browser, &params).await;
    assert_eq!(twice["err_msg"], "get_brand_wcpay_request:fail", "{twice}");
    assert_eq!(demo.paid_count().await, 1);
    assert_eq!(demo.stored_status(&no).await, OrderStatus::Paid);
    demo.stop().await;
}

/// The notification never arrives (the notify URL is unreachable): the status route asks WeChat
/// (`orderquery`), records the payment, and says `paid`, once.
pub async fn lost_notification_is_recovered_by_orderquery<D: Demo>(version: PayVersion) {
    let dir = TempDir::new("lost");
    let mut settings = test_settings(&dir);
    settings.pay_version = version;
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    settings.notify_url = Some(format!("http://127.0.0.1:{closed_port}/wechat/pay/notify"));
    let demo = Running::<D>::start_with(dir, settings).await;
    let browser = Browser::wechat();
    demo.login(&browser, 0, "/").await;
    let (no, params) = demo.create_order(&browser).await;
    let paid = demo.confirm(&browser, &params).await;
    assert_eq!(paid["err_msg"], "get_brand_wcpay_request:ok", "{paid}");
    let sim = demo.sim();
    eventually(
        NOTIFICATION_WAIT,
        "the (lost) notification attempt",
        || async { (sim.stats().notifications.sent >= 1).then_some(()) },
    )
    .await;
    assert_eq!(sim.stats().notifications.acknowledged, 0);
    assert_eq!(demo.stored_status(&no).await, OrderStatus::Unpaid);
    assert_eq!(demo.paid_count().await, 0);

    let query_path = match version {
        PayVersion::V2 => "/pay/orderquery".to_owned(),
        PayVersion::V3 => format!("/v3/pay/transactions/out-trade-no/{no}"),
    };
    let queries = sim.stats().calls_to(&query_path);
    let (status, body) = demo.order_status(&browser, &no).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "paid", "{body}");
    assert!(sim.stats().calls_to(&query_path) > queries);
    assert_eq!(demo.stored_status(&no).await, OrderStatus::Paid);
    assert_eq!(demo.paid_count().await, 1);

    // Known as paid now: no further query, still one paid row.
    let queries = sim.stats().calls_to(&query_path);
    let (_, body) = demo.order_status(&browser, &no).await;
    assert_eq!(body["status"], "paid");
    assert_eq!(sim.stats().calls_to(&query_path), queries);
    assert_eq!(demo.paid_count().await, 1);
    demo.stop().await;
}

/// Another user gets 404 for an order, exactly as for an order that does not exist.
pub async fn orders_are_private<D: Demo>() {
    let demo = Running::<D>::start("private").await;
    let buyer = Browser::wechat();
    demo.login(&buyer, 0, "/").await;
    let other = Browser::wechat();
    let page = demo.login(&other, 1, "/").await;
    assert_eq!(
        element_text(&page.body, "nickname").as_deref(),
        Some(USERS[1].nickname)
    );
    let (no, _) = demo.create_order(&buyer).await;

    let (status, body) = demo.order_status(&other, &no).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (unknown_status, unknown_body) = demo
        .order_status(&buyer, &OutTradeNo::new("20240101000000nosuchorder"))
        .await;
    assert_eq!(unknown_status, StatusCode::NOT_FOUND);
    assert_eq!(
        body, unknown_body,
        "another's order looks like a missing one"
    );
    let (status, _) = demo.order_status(&buyer, &no).await;
    assert_eq!(status, StatusCode::OK);
    demo.stop().await;
}

/// The amount comes from the server: a body that names one still pays 1 fen; an unknown
/// product is refused.
pub async fn browser_never_sets_the_amount<D: Demo>() {
    let demo = Running::<D>::start("amount").await;
    let browser = Browser::wechat();
    demo.login(&browser, 0, "/").await;
    let (status, order) = fetch_json(
        &browser,
        Method::POST,
        &demo.url("/wechat/pay/orders"),
        Some(r#"{"total_fee": 100000, "product": "demo"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{order}");
    let sheet = post_json(&browser, &demo.sim_url("/_sim/pay/check"), &order["params"]).await;
    assert_eq!(sheet["ok"], true, "{sheet}");
    assert_eq!(sheet["total_fee"], 1, "{sheet}");
    assert_eq!(sheet["body"], "Demo product");
    let (status, body) = fetch_json(
        &browser,
        Method::POST,
        &demo.url("/wechat/pay/orders"),
        Some(r#"{"product": "gold bar"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    demo.stop().await;
}

/// Denying consent ends on a clear page (403, "declined", a way to try again), with no session.
pub async fn denied_consent_shows_a_page<D: Demo>() {
    let demo = Running::<D>::start("deny").await;
    let browser = Browser::wechat();
    let consent = browser.navigate(&demo.url("/")).await;
    assert_consent_page(&consent, demo.sim());
    let form = ConsentPage::read(&consent).expect("form");
    let page = browser.consent(&form, None, "deny").follow().await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "{page:#?}");
    assert_eq!(page.url.path(), "/wechat/oauth/callback");
    assert!(page.body.contains("declined"), "{}", page.body);
    assert!(page.body.contains("Try again"), "{}", page.body);
    assert!(browser.cookie(&demo.url("/"), "wechat_session").is_none());
    // Trying again shows the consent page again.
    let again = browser.navigate(&demo.url("/")).await;
    assert_consent_page(&again, demo.sim());
    demo.stop().await;
}

/// A session cookie with one character changed counts as no session: page loads go to WeChat
/// again, fetches get 401.
pub async fn tampered_cookie_logs_in_again<D: Demo>() {
    let demo = Running::<D>::start("tamper").await;
    let browser = Browser::wechat();
    demo.login(&browser, 0, "/").await;
    let value = browser
        .cookie(&demo.url("/"), "wechat_session")
        .expect("session cookie");
    let mut tampered: Vec<char> = value.chars().collect();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    browser.set_cookie(
        &demo.url("/"),
        &format!("wechat_session={tampered}; Path=/; HttpOnly"),
    );
    assert_eq!(
        browser.cookie(&demo.url("/"), "wechat_session").as_deref(),
        Some(tampered.as_str())
    );
    let response = browser.open(&demo.url("/")).await;
    assert_eq!(response.status, StatusCode::FOUND);
    let location = response.location().expect("a Location").to_owned();
    assert!(
        location.starts_with(&demo.sim_url("/connect/oauth2/authorize?")),
        "{location}"
    );
    let (status, body) = fetch_json(
        &browser,
        Method::POST,
        &demo.url("/wechat/pay/orders"),
        Some("{}"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // Logging in again works.
    let page = demo.login(&browser, 0, "/").await;
    assert_eq!(
        element_text(&page.body, "nickname").as_deref(),
        Some(USERS[0].nickname)
    );
    demo.stop().await;
}

/// Without a session, `fetch` requests get 401 JSON with a login URL (not a redirect); the
/// health check and the assets need no session.
pub async fn fetch_without_session_gets_401_json<D: Demo>() {
    let demo = Running::<D>::start("401").await;
    let browser = Browser::wechat();
    for (method, path, body) in [
        (Method::POST, "/wechat/pay/orders", Some("{}")),
        (
            Method::GET,
            "/wechat/pay/orders/20240101000000abcdefabcdef",
            None,
        ),
        (
            Method::GET,
            "/wechat/jssdk/config?url=http%3A%2F%2F127.0.0.1%2F",
            None,
        ),
    ] {
        let (status, json) = fetch_json(&browser, method.clone(), &demo.url(path), body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {json}");
        assert_eq!(json["error"], "login_required", "{method} {path}: {json}");
        assert!(
            json["login_url"]
                .as_str()
                .is_some_and(|u| u.starts_with(demo.demo.base_url())),
            "{json}"
        );
    }
    let health = browser
        .request(Method::GET, &demo.url("/health"))
        .send()
        .await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body, "ok");
    let asset = browser
        .request(Method::GET, &demo.url("/assets/avatar.svg"))
        .send()
        .await;
    assert_eq!(asset.status, StatusCode::OK);
    // Nothing was priced or stored.
    assert_eq!(demo.paid_count().await, 0);
    demo.stop().await;
}

/// A restart (same database and session key) loses no paid order: the new process still
/// reports it paid to its owner.
pub async fn restart_keeps_paid_orders<D: Demo>() {
    let dir = TempDir::new("restart");
    let keys = SessionKeys::new([42u8; 32]).expect("key");
    let mut settings = test_settings(&dir);
    settings.session_key = Some(keys.clone());
    let first = Running::<D>::start_with(dir, settings).await;
    let browser = Browser::wechat();
    first.login(&browser, 0, "/").await;
    let (no, params) = first.create_order(&browser).await;
    let paid = first.confirm(&browser, &params).await;
    assert_eq!(paid["err_msg"], "get_brand_wcpay_request:ok", "{paid}");
    let store = first.store().clone();
    eventually(NOTIFICATION_WAIT, "the payment notification", || {
        let (store, no) = (store.clone(), no.clone());
        async move {
            let order = store.get(&no).await.ok()??;
            (order.status == OrderStatus::Paid).then_some(())
        }
    })
    .await;
    drop(store);
    let dir = first.stop().await;

    let mut settings = test_settings(&dir);
    settings.session_key = Some(keys);
    let second = Running::<D>::start_with(dir, settings).await;
    assert_eq!(second.paid_count().await, 1);
    assert_eq!(second.stored_status(&no).await, OrderStatus::Paid);
    // The same browser (cookies ignore ports) is still logged in and sees its order paid.
    let (status, body) = second.order_status(&browser, &no).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "paid");
    second.stop().await;
}

/// A `fetch()` from the page (a JSON body when given): the status and the JSON answer (`Null`
/// when the body is not JSON).
async fn fetch_json(
    browser: &Browser,
    method: Method,
    url: &str,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = browser.fetch(method, url);
    if let Some(body) = body {
        request = request.json(body);
    }
    let answer = request.send().await;
    (answer.status, answer.json_or_null())
}

/// A `fetch()` GET from the page: the status and the JSON answer (`Null` when not JSON).
async fn get_json(browser: &Browser, url: &str) -> (StatusCode, Value) {
    fetch_json(browser, Method::GET, url, None).await
}

/// `POST` JSON to a simulator control endpoint (`/_sim/…`), as the JS-SDK's script does, and
/// read its JSON answer.
async fn post_json(browser: &Browser, url: &str, body: &Value) -> Value {
    let answer: Answer = browser
        .request(Method::POST, url)
        .json(&body.to_string())
        .send()
        .await;
    answer.json()
}

/// `GET {url}` without cookies or redirects: the status and the body.
async fn scrape(url: &str) -> (StatusCode, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client");
    let response = client.get(url).send().await.expect("GET the metrics page");
    let status = response.status();
    (
        status,
        response.text().await.expect("the metrics page's body"),
    )
}

/// The sum of the samples of `name` in a Prometheus text page whose labels include `labels`
/// (`key="value"` pairs).
fn sample(page: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    page.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix('{')?;
            let (set, value) = rest.split_once("} ")?;
            labels
                .iter()
                .all(|(k, v)| set.split(',').any(|pair| pair == format!("{k}=\"{v}\"")))
                .then(|| value.trim().parse::<f64>().ok())?
        })
        .sum()
}

/// `GET /metrics` without a session (not redirected to the login) after a login and a paid
/// order: the login, the OAuth and Pay calls and the accepted notification are counted, and no
/// openid or order number is in the page. The recorder is the process's, shared with the
/// scenarios running beside this one: counts are compared before and after.
pub async fn metrics_count_a_login_and_a_payment<D: Demo>() {
    let demo = Running::<D>::start("metrics").await;
    let metrics_url = demo.url(demo_shop::METRICS_PATH);
    let (status, before) = scrape(&metrics_url).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{} /metrics: {before}",
        D::FRAMEWORK
    );
    let logins = [("outcome", "success")];
    let accepted = [
        ("version", "v3"),
        ("kind", "payment"),
        ("outcome", "accepted"),
    ];

    let browser = Browser::wechat();
    demo.login(&browser, 0, "/").await;
    let (no, params) = demo.create_order(&browser).await;
    let paid = demo.confirm(&browser, &params).await;
    assert_eq!(paid["err_msg"], "get_brand_wcpay_request:ok", "{paid}");
    let sim = demo.sim();
    eventually(NOTIFICATION_WAIT, "the acknowledgement", || async {
        (sim.stats().notifications.acknowledged >= 1).then_some(())
    })
    .await;

    let (status, after) = scrape(&metrics_url).await;
    assert_eq!(status, StatusCode::OK);
    let grew = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) >= sample(&before, name, labels) + 1.0
    };
    assert!(grew("wechat_logins_total", &logins), "{after}");
    assert!(grew("wechat_pay_notifications_total", &accepted), "{after}");
    for endpoint in [
        "sns/oauth2/access_token",
        "sns/userinfo",
        "v3/pay/transactions/jsapi",
    ] {
        assert!(
            grew(
                "wechat_api_requests_total",
                &[("endpoint", endpoint), ("outcome", "ok")]
            ),
            "{endpoint}: {after}"
        );
    }
    assert!(
        after.contains("# TYPE wechat_logins_total counter"),
        "{after}"
    );
    assert!(
        after.contains("# TYPE wechat_api_request_duration_seconds histogram"),
        "{after}"
    );
    assert!(
        !after.contains(USERS[0].openid().as_str()),
        "an openid in {after}"
    );
    assert!(!after.contains(no.as_str()), "an order number in {after}");
    demo.stop().await;
}

/// `METRICS_LISTEN`: the page is on a listener of its own, and not on the app's.
pub async fn metrics_listen_moves_the_page<D: Demo>() {
    let dir = TempDir::new("metrics-listen");
    let mut settings = test_settings(&dir);
    settings.metrics_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let demo = Running::<D>::start_with(dir, settings).await;
    demo.login(&Browser::wechat(), 0, "/").await;
    let addr = demo.demo.shop().metrics_addr().expect("a metrics listener");
    let (status, page) = scrape(&format!("http://{addr}{}", demo_shop::METRICS_PATH)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("wechat_logins_total{"), "{page}");
    let (status, _) = scrape(&format!("http://{addr}/")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = scrape(&demo.url(demo_shop::METRICS_PATH)).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the {} app still serves /metrics: {body}",
        D::FRAMEWORK
    );
    demo.stop().await;
}
