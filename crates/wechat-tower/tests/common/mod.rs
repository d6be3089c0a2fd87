//! The test world: wechat-sim, and a small axum app using `WeChatLoginLayer`, `router` and an
//! in-memory `OrderBackend`, both on 127.0.0.1; plus a cookie-keeping browser.

#![allow(dead_code)] // each helper is used by some tests only

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use reqwest::cookie::{CookieStore as _, Jar};
use serde_json::{Value, json};
use wechat_sim::{RunningSim, Simulator, fixtures};
use wechat_tower::wechat_core::login::{LoginConfig, LoginFlow};
use wechat_tower::wechat_core::oauth::{OAuthClient, Scope};
use wechat_tower::wechat_core::pay::v2::PayClient;
use wechat_tower::wechat_core::routes::{PayRoutes, WeChatRoutes};
use wechat_tower::wechat_core::session::SessionKeys;
use wechat_tower::wechat_core::testing::{self, MemoryOrders};
use wechat_tower::wechat_core::token::{MemoryStore, Tokens};
use wechat_tower::wechat_core::{BaseUrls, Config, build_http_client};
use wechat_tower::{WeChatLoginLayer, WeChatUser, router};

pub(crate) const APPID: &str = fixtures::APPID;
pub(crate) const SECRET: &str = fixtures::SECRET;
pub(crate) const ALICE: &str = fixtures::ALICE;
pub(crate) const BOB: &str = fixtures::BOB;
pub(crate) const PRICE: u64 = 1;
/// Every wait (HTTP request, polling) is bounded by this.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// The application's side: the in-memory shop of `wechat_core::testing`.

pub(crate) type Shop = MemoryOrders;

// ---------------------------------------------------------------------------------------------
// The app.

/// Where WeChat Pay's payment notifications go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Notifications {
    /// To the mounted `/wechat/pay/notify`.
    #[default]
    Delivered,
    /// To `/lost/notify`, a receiver that answers FAIL (a lost notification).
    Refused,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Options {
    pub(crate) userinfo: bool,
    pub(crate) notifications: Notifications,
}

/// A page: who is logged in.
async fn page(user: WeChatUser) -> String {
    let nickname = user.profile.as_ref().map_or("", |p| p.nickname.as_str());
    format!("openid={} nickname={nickname}", user.openid)
}

async fn maybe(user: Option<WeChatUser>) -> String {
    match user {
        Some(user) => format!("member {}", user.openid),
        None => "guest".to_owned(),
    }
}

pub(crate) struct World {
    pub(crate) sim: RunningSim,
    /// The app's origin, `http://127.0.0.1:PORT`.
    pub(crate) app: String,
    pub(crate) shop: Arc<Shop>,
    pub(crate) flow: LoginFlow,
    pub(crate) keys: SessionKeys,
    /// Notifications received (and refused) by `/lost/notify`.
    pub(crate) refused_notifications: Arc<AtomicU32>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for World {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub(crate) async fn world(options: Options) -> World {
    // The app's address goes into the simulator's config: bind it first.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = format!("http://127.0.0.1:{port}");
    let domain = format!("127.0.0.1:{port}");
    let toml = fixtures::shop_toml(&[&domain], Some(&app));
    let sim = Simulator::from_toml_str(&toml)
        .unwrap()
        .start()
        .await
        .unwrap();
    let base = BaseUrls::all(&sim.base_url());

    let config = Config::new(APPID, SECRET)
        .with_base_urls(base.clone())
        .with_timeout(WAIT);
    let http = build_http_client(&config).unwrap();
    let keys = SessionKeys::new([42u8; 32]).unwrap();
    let scope = if options.userinfo {
        Scope::UserInfo
    } else {
        Scope::Base
    };
    let login = LoginConfig::builder(&app, keys.clone())
        .scope(scope)
        .exclude("/health")
        .exclude("/public")
        .exclude("/lost")
        .exclude_notifications("/wechat")
        .build()
        .unwrap();
    let flow = LoginFlow::new(OAuthClient::new(&config, http.clone()), login);

    let notify_url = match options.notifications {
        Notifications::Delivered => format!("{app}/wechat/pay/notify"),
        Notifications::Refused => format!("{app}/lost/notify"),
    };
    let pay = testing::pay_config(&sim.base_url(), notify_url)
        .timeout(WAIT)
        .build()
        .unwrap();
    let shop = Arc::new(MemoryOrders::new(PRICE));
    let routes = WeChatRoutes::builder(Tokens::new(&config, http, Arc::new(MemoryStore::new())))
        .jssdk_domain(&app)
        .js_api_list(["chooseWXPay"])
        .pay(PayRoutes::new(PayClient::new(pay).unwrap(), shop.clone()))
        .build()
        .unwrap();

    let refused_notifications = Arc::new(AtomicU32::new(0));
    let refused = refused_notifications.clone();
    let app_router = Router::new()
        .route("/", get(page))
        .route("/shop", get(page))
        .route("/api/me", get(page))
        .route("/api/cart", post(page))
        .route("/health", get(|| async { "ok" }))
        .route("/public/me", get(page))
        .route("/public/maybe", get(maybe))
        .route(
            "/lost/notify",
            post(move || {
                refused.fetch_add(1, Ordering::SeqCst);
                async {
                    "<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[busy]]></return_msg></xml>"
                }
            }),
        )
        .nest("/wechat", router(routes))
        .layer(WeChatLoginLayer::new(flow.clone()))
        // Added after the layer: not wrapped by it.
        .route("/no-layer/me", get(page));
    let server = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app_router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    World {
        sim,
        app,
        shop,
        flow,
        keys,
        refused_notifications,
        server,
    }
}

// ---------------------------------------------------------------------------------------------
// The browser.

/// A browser: one cookie jar, a client that follows redirects and one that does not. Requests
/// are page loads (`Accept: text/html`) unless a test sets other headers.
pub(crate) struct Browser {
    pub(crate) jar: Arc<Jar>,
    pub(crate) follow: reqwest::Client,
    pub(crate) manual: reqwest::Client,
}

impl Browser {
    pub(crate) fn new() -> Self {
        let jar = Arc::new(Jar::default());
        let client = |policy| {
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(
                reqwest::header::ACCEPT,
                reqwest::header::HeaderValue::from_static(
                    "text/html,application/xhtml+xml,*/*;q=0.8",
                ),
            );
            reqwest::Client::builder()
                .cookie_provider(jar.clone())
                .redirect(policy)
                .default_headers(headers)
                .timeout(WAIT)
                .build()
                .unwrap()
        };
        Self {
            follow: client(reqwest::redirect::Policy::limited(10)),
            manual: client(reqwest::redirect::Policy::none()),
            jar,
        }
    }

    /// The cookies the browser would send to `url`.
    pub(crate) fn cookies_for(&self, url: &str) -> String {
        self.jar
            .cookies(&url.parse().unwrap())
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    /// Loads a page following redirects: (final URL, status, body).
    pub(crate) async fn open(&self, url: &str) -> (String, u16, String) {
        let response = self.follow.get(url).send().await.unwrap();
        let final_url = response.url().to_string();
        let status = response.status().as_u16();
        (final_url, status, response.text().await.unwrap())
    }

    /// Submits a form on one of the app's pages (a same-origin POST), following redirects:
    /// (final URL, status, body).
    pub(crate) async fn submit(&self, url: &str) -> (String, u16, String) {
        let response = self
            .follow
            .post(url)
            .header("sec-fetch-site", "same-origin")
            .header("sec-fetch-mode", "navigate")
            .send()
            .await
            .unwrap();
        let final_url = response.url().to_string();
        let status = response.status().as_u16();
        (final_url, status, response.text().await.unwrap())
    }

    /// One request without following redirects: (status, Location, body).
    pub(crate) async fn step(&self, url: &str) -> (u16, Option<String>, String) {
        let response = self.manual.get(url).send().await.unwrap();
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        (status, location, response.text().await.unwrap())
    }

    /// A `fetch` from the page: JSON, `Sec-Fetch-Mode: cors`.
    pub(crate) async fn fetch(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&str>,
    ) -> (u16, Value) {
        let post = method == reqwest::Method::POST;
        let mut request = self
            .follow
            .request(method, url)
            .header(reqwest::header::ACCEPT, "application/json")
            .header("sec-fetch-mode", "cors");
        // As the shop page's fetch does: a POST says its (possibly empty) body is JSON.
        if post || body.is_some() {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json");
        }
        if let Some(body) = body {
            request = request.body(body.to_owned());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "text": text }));
        (status, value)
    }
}

/// The hidden and radio inputs of the simulator's consent page, as form fields.
pub(crate) fn consent_form(html: &str) -> Vec<(String, String)> {
    let unescape = |s: &str| {
        s.replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    let mut fields = Vec::new();
    for input in html.split("<input ").skip(1) {
        let attr = |name: &str| {
            let start = input.find(&format!("{name}=\""))? + name.len() + 2;
            let end = input[start..].find('"')? + start;
            Some(unescape(&input[start..end]))
        };
        if attr("type").as_deref() == Some("hidden") {
            if let (Some(name), Some(value)) = (attr("name"), attr("value")) {
                fields.push((name, value));
            }
        }
    }
    fields
}

impl World {
    pub(crate) fn sim_url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url())
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.app)
    }

    /// Logs `browser` in with the base scope (the simulator's first user, Alice).
    pub(crate) async fn log_in(&self, browser: &Browser) {
        let (url, status, body) = browser.open(&self.url("/")).await;
        assert_eq!(
            (url.as_str(), status),
            (self.url("/").as_str(), 200),
            "{body}"
        );
        assert!(body.contains(ALICE), "{body}");
    }

    /// Logs `browser` in through the consent page (userinfo scope) as `openid`, answering
    /// `action` (allow or deny): (final URL, status, body).
    pub(crate) async fn consent(
        &self,
        browser: &Browser,
        path: &str,
        openid: &str,
        action: &str,
    ) -> (String, u16, String) {
        let (url, status, page) = browser.open(&self.url(path)).await;
        assert_eq!(status, 200, "{page}");
        assert!(url.starts_with(&self.sim.base_url()), "{url}");
        assert!(page.contains("sim-consent-allow"), "{page}");
        let mut form = consent_form(&page);
        form.push(("openid".to_owned(), openid.to_owned()));
        form.push(("action".to_owned(), action.to_owned()));
        let response = browser
            .follow
            .post(self.sim_url("/connect/oauth2/authorize"))
            .form(&form)
            .send()
            .await
            .unwrap();
        let final_url = response.url().to_string();
        let status = response.status().as_u16();
        (final_url, status, response.text().await.unwrap())
    }

    /// POSTs JSON to a simulator control endpoint.
    pub(crate) async fn sim_post(&self, path: &str, body: &Value) -> Value {
        let response = reqwest::Client::builder()
            .timeout(WAIT)
            .build()
            .unwrap()
            .post(self.sim_url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// Makes the next `times` calls to a WeChat API path fail with `errcode`.
    pub(crate) async fn sim_fail(&self, path: &str, errcode: i64, errmsg: &str, times: u32) {
        let url = reqwest::Url::parse_with_params(
            &self.sim_url("/_sim/fail"),
            &[
                ("path", path),
                ("errcode", &errcode.to_string()),
                ("errmsg", errmsg),
                ("times", &times.to_string()),
            ],
        )
        .unwrap();
        let response = reqwest::Client::new().post(url).send().await.unwrap();
        assert!(response.status().is_success());
    }

    /// Exchanges `code` at the simulator as another party would (the code is then used).
    pub(crate) async fn burn_code(&self, code: &str) {
        let url = reqwest::Url::parse_with_params(
            &self.sim_url("/sns/oauth2/access_token"),
            &[
                ("appid", APPID),
                ("secret", SECRET),
                ("code", code),
                ("grant_type", "authorization_code"),
            ],
        )
        .unwrap();
        let body: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        assert!(body.get("openid").is_some(), "{body}");
    }
}

/// A query parameter of a URL.
pub(crate) fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

/// Polls `check` until it holds, for at most [`WAIT`].
pub(crate) async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
