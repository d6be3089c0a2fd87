//! Shared setup: wechat-sim on 127.0.0.1, actix apps on ephemeral ports, and a small browser
//! that keeps cookies and does not follow redirects.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use demo_shop::OrderStore;
use reqwest::cookie::{CookieStore, Jar};
use wechat_core::login::{LoginConfig, LoginFlow};
use wechat_core::oauth::{OAuthClient, Scope};
use wechat_core::pay::v2::PayClient;
use wechat_core::routes::{OrderStatus, PayRoutes, WeChatRoutes};
use wechat_core::session::SessionKeys;
use wechat_core::token::{MemoryStore, Tokens};
use wechat_core::{AppId, BaseUrls, Config, OutTradeNo, build_http_client};
use wechat_sim::{RunningSim, Simulator, fixtures};

pub const APPID: &str = fixtures::APPID;
pub const SECRET: &str = fixtures::SECRET;
pub const ALICE: &str = fixtures::ALICE;
pub const BOB: &str = fixtures::BOB;
/// Where the WeChat routes are mounted in the test apps.
pub const PREFIX: &str = "/wechat";

/// The simulator, allowing OAuth redirects and JS-SDK pages to each of `apps` (`host:port`).
pub async fn start_sim(apps: &[SocketAddr]) -> RunningSim {
    let domains: Vec<String> = apps.iter().map(ToString::to_string).collect();
    let domains: Vec<&str> = domains.iter().map(String::as_str).collect();
    let toml = fixtures::shop_toml(&domains, None);
    Simulator::from_toml_str(&toml)
        .expect("the test config is valid")
        .start()
        .await
        .expect("the simulator starts")
}

/// A listener on 127.0.0.1 and an ephemeral port, bound before the app so that its public URL
/// is known.
pub fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    (listener, addr)
}

/// The app's public URL.
pub fn public_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

pub fn keys() -> SessionKeys {
    SessionKeys::new([7u8; 32]).expect("a 32-byte key")
}

fn wechat_config(sim_base: &str) -> Config {
    Config::new(APPID, SECRET)
        .with_base_urls(BaseUrls::all(sim_base))
        .with_timeout(Duration::from_secs(10))
        .with_connect_timeout(Duration::from_secs(5))
}

/// The login flow (`snsapi_base`) of an app at `addr`, talking to WeChat at `sim_base`, with
/// `/public` excluded and the notification routes under [`PREFIX`] excluded.
pub fn flow(sim_base: &str, addr: SocketAddr, keys: SessionKeys) -> LoginFlow {
    flow_with_scope(sim_base, addr, keys, Scope::Base)
}

/// [`flow`] with another scope.
pub fn flow_with_scope(
    sim_base: &str,
    addr: SocketAddr,
    keys: SessionKeys,
    scope: Scope,
) -> LoginFlow {
    let config = wechat_config(sim_base);
    let client = OAuthClient::new(&config, build_http_client(&config).expect("client"));
    let login = LoginConfig::builder(&public_url(addr), keys)
        .scope(scope)
        .exclude("/public")
        .exclude_notifications(PREFIX)
        .build()
        .expect("valid login config");
    LoginFlow::new(client, login)
}

/// The WeChat routes of an app at `addr`, with payment over `store`.
pub fn routes(sim_base: &str, addr: SocketAddr, store: &OrderStore) -> WeChatRoutes {
    let config = wechat_config(sim_base);
    let http = build_http_client(&config).expect("client");
    let tokens = Tokens::new(&config, http.clone(), Arc::new(MemoryStore::new()));
    let pay_config = wechat_core::testing::pay_config(
        sim_base,
        format!("{}{PREFIX}/pay/notify", public_url(addr)),
    )
    .timeout(Duration::from_secs(10))
    .build()
    .unwrap();
    let pay = PayRoutes::new(
        PayClient::with_http_client(pay_config, http).expect("pay client"),
        Arc::new(store.clone()),
    );
    WeChatRoutes::builder(tokens)
        .jssdk_domain(&public_url(addr))
        .js_api_list(["chooseWXPay"])
        .pay(pay)
        .build()
        .unwrap()
}

/// Serves the actix app that `$factory` builds on `$listener` (one worker), until the returned
/// guard is dropped. A macro: `HttpServer::new`'s bounds on the factory are long.
#[macro_export]
macro_rules! serve {
    ($listener:expr, $factory:expr) => {{
        let server = actix_web::HttpServer::new($factory)
            .workers(1)
            .disable_signals()
            .shutdown_timeout(1)
            .listen($listener)
            .expect("listen")
            .run();
        let guard = $crate::common::ServerGuard(server.handle());
        tokio::spawn(server);
        guard
    }};
}

/// Stops an actix server when dropped.
pub struct ServerGuard(pub actix_web::dev::ServerHandle);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        // The stop command is sent at once; the returned future only waits for completion.
        drop(self.0.stop(false));
    }
}

/// A response as the browser saw it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn location(&self) -> &str {
        self.headers
            .get("location")
            .map_or("", |v| v.to_str().expect("ASCII location"))
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().expect("ASCII cookie").to_owned())
            .collect()
    }
}

/// A browser: one cookie jar for 127.0.0.1 (cookies ignore ports, as in a real browser, and
/// honour `Path` and `Max-Age`), no automatic redirects.
pub struct Browser {
    jar: Arc<Jar>,
    http: reqwest::Client,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        let jar = Arc::new(Jar::default());
        Self {
            http: reqwest::Client::builder()
                .cookie_provider(Arc::clone(&jar))
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .connect_timeout(Duration::from_secs(5))
                .no_proxy()
                .build()
                .expect("client"),
            jar,
        }
    }

    /// The cookie `name` the browser would send to `url`.
    pub fn cookie(&self, url: &str, name: &str) -> Option<String> {
        let url = url::Url::parse(url).expect("absolute URL");
        let header = self.jar.cookies(&url)?;
        header.to_str().ok()?.split("; ").find_map(|pair| {
            let (n, v) = pair.split_once('=')?;
            (n == name).then(|| v.to_owned())
        })
    }

    /// Sets a cookie as if `url` had sent `set_cookie`.
    pub fn set_cookie(&self, url: &str, set_cookie: &str) {
        self.jar
            .add_cookie_str(set_cookie, &url::Url::parse(url).expect("absolute URL"));
    }

    /// Sends a request; a page load (`page`) carries `Sec-Fetch-Mode: navigate` and an HTML
    /// `Accept`, like a browser opening a link.
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        page: bool,
        body: Option<Vec<u8>>,
    ) -> Answer {
        let mut request = self.http.request(method, url);
        if page {
            request = request
                .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
                .header("sec-fetch-mode", "navigate");
        } else {
            request = request
                .header("accept", "application/json")
                .header("sec-fetch-mode", "cors");
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        answer(request, url).await
    }

    /// Opens a page (a navigation).
    pub async fn open(&self, url: &str) -> Answer {
        self.send(reqwest::Method::GET, url, true, None).await
    }

    /// Submits a form on one of the app's pages: a same-origin POST navigation.
    pub async fn submit(&self, url: &str) -> Answer {
        let request = self
            .http
            .post(url)
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .header("sec-fetch-mode", "navigate")
            .header("sec-fetch-site", "same-origin");
        answer(request, url).await
    }

    /// A request with exactly the given extra headers (e.g. `Sec-Fetch-Site`, `Origin`), as
    /// a page on another site or an older browser sends it.
    pub async fn send_with(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self.http.request(method, url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        answer(request, url).await
    }

    /// A `fetch` GET.
    pub async fn fetch(&self, url: &str) -> Answer {
        self.send(reqwest::Method::GET, url, false, None).await
    }

    /// A `fetch` POST with a JSON body.
    pub async fn post(&self, url: &str, body: &str) -> Answer {
        self.send(
            reqwest::Method::POST,
            url,
            false,
            Some(body.as_bytes().to_vec()),
        )
        .await
    }

    /// On the simulator's `snsapi_userinfo` consent page at `authorize_url`: chooses `openid`
    /// and presses `action` (`allow` or `deny`); returns where WeChat sends the browser back.
    pub async fn consent(&self, authorize_url: &str, openid: &str, action: &str) -> String {
        let page = self.open(authorize_url).await;
        assert_eq!(page.status, 200, "a consent page: {page:?}");
        let mut url = url::Url::parse(authorize_url).expect("absolute URL");
        let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        form.push(("openid".into(), openid.into()));
        form.push(("action".into(), action.into()));
        url.set_query(None);
        url.set_fragment(None);
        let answer = self
            .http
            .post(url)
            .form(&form)
            .send()
            .await
            .expect("the simulator answers");
        assert_eq!(answer.status(), 302, "{answer:?}");
        answer.headers()["location"]
            .to_str()
            .expect("ASCII location")
            .to_owned()
    }

    /// Logs in on the app at `base` by opening `path`: to WeChat (the sim, `snsapi_base`), back
    /// to the callback, and to `path` again. Returns the callback URL WeChat sent back.
    pub async fn log_in(&self, base: &str, sim: &RunningSim, path: &str) -> String {
        let first = self.open(&format!("{base}{path}")).await;
        assert_eq!(first.status, 302, "{first:?}");
        assert!(
            first
                .location()
                .starts_with(&format!("{}/connect/oauth2/authorize?", sim.base_url())),
            "{first:?}"
        );
        let wechat = self.open(first.location()).await;
        assert_eq!(wechat.status, 302, "{wechat:?}");
        let callback = wechat.location().to_owned();
        assert!(
            callback.starts_with(&format!("{base}/wechat/oauth/callback")),
            "{callback}"
        );
        let back = self.open(&callback).await;
        assert_eq!(back.status, 302, "{back:?}");
        assert_eq!(back.location(), path);
        assert!(self.cookie(base, "wechat_session").is_some(), "{back:?}");
        callback
    }
}

/// A fresh SQLite order store (the demos' `OrderBackend`) in a temporary folder, removed on
/// drop.
pub struct TempStore {
    dir: PathBuf,
    pub store: OrderStore,
}

impl TempStore {
    pub async fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "wechat-actix-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let store = OrderStore::open(dir.join("orders.sqlite3"), AppId::new(APPID))
            .await
            .expect("the order store opens");
        Self { dir, store }
    }

    /// The stored status of an order.
    pub async fn status(&self, out_trade_no: &str) -> Option<OrderStatus> {
        self.store
            .get(&OutTradeNo::new(out_trade_no))
            .await
            .expect("the store answers")
            .map(|order| order.status)
    }
}

impl Drop for TempStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends `request` and reads its answer whole.
async fn answer(request: reqwest::RequestBuilder, url: &str) -> Answer {
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.expect("body");
    Answer {
        status,
        headers,
        body,
    }
}
