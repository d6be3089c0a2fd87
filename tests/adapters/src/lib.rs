//! The behaviours both adapters must share, written once and run against each: wechat-tower's
//! layer and router, and wechat-actix's middleware and scope, over real HTTP on 127.0.0.1 against
//! wechat-sim, driven by the workspace's test browser as WeChat's in-app browser.
//!
//! An adapter joins the suite by implementing [`AdapterApp`] (serve the test app below on a
//! listener) in its own tests and invoking [`adapter_suite!`], which declares one
//! `#[tokio::test]` per scenario of [`scenarios`]:
//!
//! ```ignore
//! // crates/wechat-tower/tests/suite.rs
//! struct TowerApp(tokio::task::JoinHandle<()>);
//!
//! impl wechat_adapter_tests::AdapterApp for TowerApp {
//!     const FRAMEWORK: &'static str = "axum";
//!     fn serve(listener: std::net::TcpListener, flow: LoginFlow, routes: WeChatRoutes) -> Self {
//!         // the routes of the table below, inside `WeChatLoginLayer::new(flow)`, served on `listener`
//!     }
//! }
//!
//! wechat_adapter_tests::adapter_suite!(TowerApp);
//! ```
//!
//! The test app, every route inside the login layer (middleware):
//!
//! | route | handler |
//! | --- | --- |
//! | `GET /`, `GET /shop`, `GET /api/me`, `POST /api/cart` | the user (`WeChatUser`): [`page_text`] |
//! | `GET /health` (excluded from the login) | `ok` |
//! | `GET /public/me` (excluded) | the user (`WeChatUser`): [`page_text`] |
//! | `GET /public/maybe` (excluded) | the user if any (`Option<WeChatUser>`): [`maybe_text`] |
//! | `/wechat/…` | the adapter's mounted routes (JS-SDK config, orders, notifications) |
//!
//! Only what differs by framework stays in each adapter's own tests: the rejection of an
//! extractor used without the layer, readiness, and the cross-framework session test.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::Value;
use wechat_core::login::{LoginConfig, LoginFlow};
use wechat_core::oauth::{OAuthClient, Scope};
use wechat_core::pay::v2::PayClient;
use wechat_core::routes::{PayRoutes, WeChatRoutes};
use wechat_core::session::{SessionKeys, SessionUser};
use wechat_core::testing::{self, MemoryOrders};
use wechat_core::token::{MemoryStore, Tokens};
use wechat_core::{BaseUrls, Config, build_http_client};
use wechat_sim::{RunningSim, Simulator, fixtures};
pub use wechat_test_support::eventually;
use wechat_test_support::{Browser, ConsentPage, Visit};

pub mod scenarios;

/// The simulator's app.
pub const APPID: &str = fixtures::APPID;
/// Its AppSecret.
pub const SECRET: &str = fixtures::SECRET;
/// An AppSecret WeChat refuses (40125).
pub const WRONG_SECRET: &str = "ffffffffffffffffffffffffffffffff";
/// The simulator's first user (the one `snsapi_base` logs in).
pub const ALICE: &str = fixtures::ALICE;
/// Its second user.
pub const BOB: &str = fixtures::BOB;
/// The price of the test shop's product, in fen.
pub const PRICE: u64 = 1;
/// Where the WeChat routes are mounted.
pub const PREFIX: &str = "/wechat";
/// Every wait (HTTP request, polling) is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

/// An adapter's test app: the routes of the [crate docs](crate) inside its login layer.
pub trait AdapterApp: Sized {
    /// The framework's name, for messages (`axum`, `actix-web`).
    const FRAMEWORK: &'static str;

    /// Serves the test app on `listener` (127.0.0.1, ephemeral port; bound before the app so
    /// that the simulator knows its URL) in this runtime: the login layer with `flow`, the
    /// routes with `routes` under [`PREFIX`]. Stops when dropped.
    fn serve(listener: TcpListener, flow: LoginFlow, routes: WeChatRoutes) -> Self;
}

/// What the app's pages answer for `user`: `openid=… nickname=…` (empty without a profile).
pub fn page_text(user: &SessionUser) -> String {
    let nickname = user.profile.as_ref().map_or("", |p| p.nickname.as_str());
    format!("openid={} nickname={nickname}", user.openid)
}

/// What `/public/maybe` answers: `member <openid>`, or `guest` without a session.
pub fn maybe_text(user: Option<&SessionUser>) -> String {
    match user {
        Some(user) => format!("member {}", user.openid),
        None => "guest".to_owned(),
    }
}

/// Where WeChat Pay's payment notifications go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Notifications {
    /// To the mounted `/wechat/pay/notify`.
    #[default]
    Delivered,
    /// To a receiver beside the app that answers FAIL (a lost notification).
    Refused,
}

/// How a [`World`] is set up.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `snsapi_userinfo` (the consent page) instead of `snsapi_base`.
    pub userinfo: bool,
    /// Where payment notifications go.
    pub notifications: Notifications,
    /// The app holds [`WRONG_SECRET`]: WeChat refuses every code exchange.
    pub wrong_secret: bool,
}

/// A listener on 127.0.0.1 and an ephemeral port, and its address.
///
/// # Panics
/// When it cannot be bound.
pub fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    (listener, addr)
}

/// The simulator, allowing OAuth redirects and JS-SDK pages to each of `apps` (`host:port`).
///
/// # Panics
/// When it does not start.
pub async fn start_sim(apps: &[SocketAddr]) -> RunningSim {
    let domains: Vec<String> = apps.iter().map(ToString::to_string).collect();
    let domains: Vec<&str> = domains.iter().map(String::as_str).collect();
    let avatars = apps.first().map(|addr| format!("http://{addr}"));
    Simulator::from_toml_str(&fixtures::shop_toml(&domains, avatars.as_deref()))
        .expect("the test config is valid")
        .start()
        .await
        .expect("the simulator starts")
}

/// The session keys of the test apps.
pub fn session_keys() -> SessionKeys {
    SessionKeys::new([42u8; 32]).expect("a 32-byte key")
}

fn wechat_config(sim: &RunningSim, secret: &str) -> Config {
    Config::new(APPID, secret)
        .with_base_urls(BaseUrls::all(&sim.base_url()))
        .with_timeout(WAIT)
        .with_connect_timeout(Duration::from_secs(5))
}

/// The login flow of an app at `public_url` talking to `sim`: `/health` and `/public` excluded,
/// the notification routes under [`PREFIX`] excluded.
///
/// # Panics
/// When the configuration is refused.
pub fn login_flow(
    sim: &RunningSim,
    public_url: &str,
    keys: SessionKeys,
    options: Options,
) -> LoginFlow {
    let secret = if options.wrong_secret {
        WRONG_SECRET
    } else {
        SECRET
    };
    let config = wechat_config(sim, secret);
    let client = OAuthClient::new(&config, build_http_client(&config).expect("client"));
    let scope = if options.userinfo {
        Scope::UserInfo
    } else {
        Scope::Base
    };
    let login = LoginConfig::builder(public_url, keys)
        .scope(scope)
        .exclude("/health")
        .exclude("/public")
        .exclude_notifications(PREFIX)
        .build()
        .expect("a valid login config");
    LoginFlow::new(client, login)
}

/// Logs `browser` in on the app at `base` by opening `path`, one hop at a time: to WeChat (the
/// simulator, `snsapi_base`), back to the callback, and to `path` again. Returns the callback
/// URL WeChat sent the browser to.
pub async fn log_in_at(browser: &Browser, base: &str, sim: &RunningSim, path: &str) -> String {
    let first = browser.open(&format!("{base}{path}")).await;
    assert_eq!(first.status, 302, "{first:?}");
    let authorize = first.location().expect("a Location");
    assert!(
        authorize.starts_with(&format!("{}/connect/oauth2/authorize?", sim.base_url())),
        "{first:?}"
    );
    let wechat = browser.open(authorize).await;
    assert_eq!(wechat.status, 302, "{wechat:?}");
    let callback = wechat.location().expect("a Location").to_owned();
    assert!(
        callback.starts_with(&format!("{base}{PREFIX}/oauth/callback")),
        "{callback}"
    );
    let back = browser.open(&callback).await;
    assert_eq!(
        (back.status.as_u16(), back.location()),
        (302, Some(path)),
        "{back:?}"
    );
    assert!(browser.cookie(base, "wechat_session").is_some(), "{back:?}");
    callback
}

/// One app of adapter `A` with everything it talks to: the simulator, the shop behind its
/// payment routes, and a receiver that refuses notifications.
pub struct World<A> {
    /// The running app (stopped on drop).
    pub app: A,
    /// The simulator.
    pub sim: RunningSim,
    /// The app's origin, `http://127.0.0.1:PORT`.
    pub base: String,
    /// The shop behind the payment routes.
    pub shop: Arc<MemoryOrders>,
    /// The app's login flow.
    pub flow: LoginFlow,
    /// The app's session keys.
    pub keys: SessionKeys,
    /// Notifications the refusing receiver got (see [`Notifications::Refused`]).
    pub refused_notifications: Arc<AtomicU32>,
    receiver: tokio::task::JoinHandle<()>,
}

impl<A> Drop for World<A> {
    fn drop(&mut self) {
        self.receiver.abort();
    }
}

impl<A: AdapterApp> World<A> {
    /// Starts the simulator, the refusing receiver and the app.
    ///
    /// # Panics
    /// When any of them does not start.
    pub async fn start(options: Options) -> Self {
        let (listener, addr) = bind();
        let base = format!("http://{addr}");
        let sim = start_sim(&[addr]).await;
        let keys = session_keys();
        let flow = login_flow(&sim, &base, keys.clone(), options);

        let refused_notifications = Arc::new(AtomicU32::new(0));
        let (receiver, receiver_url) = refusing_receiver(refused_notifications.clone()).await;
        let notify_url = match options.notifications {
            Notifications::Delivered => format!("{base}{PREFIX}/pay/notify"),
            Notifications::Refused => receiver_url,
        };
        let config = wechat_config(&sim, SECRET);
        let http = build_http_client(&config).expect("client");
        let pay = testing::pay_config(&sim.base_url(), notify_url)
            .timeout(WAIT)
            .build()
            .expect("a valid pay config");
        let shop = Arc::new(MemoryOrders::new(PRICE));
        let pay = PayRoutes::new(
            PayClient::with_http_client(pay, http.clone()).expect("pay client"),
            shop.clone(),
        );
        let routes =
            WeChatRoutes::builder(Tokens::new(&config, http, Arc::new(MemoryStore::new())))
                .jssdk_domain(&base)
                .js_api_list(["chooseWXPay"])
                .pay(pay)
                .build()
                .expect("valid routes");
        let app = A::serve(listener, flow.clone(), routes);
        Self {
            app,
            sim,
            base,
            shop,
            flow,
            keys,
            refused_notifications,
            receiver,
        }
    }
}

impl<A> World<A> {
    /// The app's URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The simulator's URL of `path`.
    pub fn sim_url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url())
    }

    /// Logs `browser` in with the base scope (the simulator's first user, Alice), redirects
    /// followed.
    pub async fn log_in(&self, browser: &Browser) {
        let page = browser.navigate(&self.url("/")).await;
        assert_eq!(
            (page.url.as_str(), page.status.as_u16()),
            (self.url("/").as_str(), 200),
            "{}",
            page.body
        );
        assert!(page.body.contains(ALICE), "{}", page.body);
    }

    /// Logs `browser` in one hop at a time from `path` (see [`log_in_at`]).
    pub async fn log_in_at(&self, browser: &Browser, path: &str) -> String {
        log_in_at(browser, &self.base, &self.sim, path).await
    }

    /// Logs `browser` in through the consent page (userinfo scope) from `path` as `openid`,
    /// answering `action` (`allow` or `deny`), redirects followed: where it ends.
    pub async fn consent(
        &self,
        browser: &Browser,
        path: &str,
        openid: &str,
        action: &str,
    ) -> Visit {
        let page = browser.navigate(&self.url(path)).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            page.url.as_str().starts_with(&self.sim.base_url()),
            "{}",
            page.url
        );
        let form = ConsentPage::read(&page).expect("the consent page");
        browser.consent(&form, Some(openid), action).follow().await
    }

    /// POSTs JSON to a simulator control endpoint (`/_sim/…`) and reads its JSON answer.
    pub async fn sim_post(&self, path: &str, body: &Value) -> Value {
        let response = reqwest::Client::new()
            .post(self.sim_url(path))
            .json(body)
            .timeout(WAIT)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.expect("JSON")
    }

    /// Makes the next `times` calls to a WeChat API path fail with `errcode`.
    pub async fn sim_fail(&self, path: &str, errcode: i64, errmsg: &str, times: u32) {
        let url = reqwest::Url::parse_with_params(
            &self.sim_url("/_sim/fail"),
            &[
                ("path", path),
                ("errcode", &errcode.to_string()),
                ("errmsg", errmsg),
                ("times", &times.to_string()),
            ],
        )
        .expect("a URL");
        let response = reqwest::Client::new()
            .post(url)
            .timeout(WAIT)
            .send()
            .await
            .expect("the simulator answers");
        assert!(response.status().is_success());
    }

    /// Exchanges `code` at the simulator as another party would (the code is then used).
    pub async fn burn_code(&self, code: &str) {
        let url = reqwest::Url::parse_with_params(
            &self.sim_url("/sns/oauth2/access_token"),
            &[
                ("appid", APPID),
                ("secret", SECRET),
                ("code", code),
                ("grant_type", "authorization_code"),
            ],
        )
        .expect("a URL");
        let body: Value = reqwest::get(url)
            .await
            .expect("the simulator answers")
            .json()
            .await
            .expect("JSON");
        assert!(body.get("openid").is_some(), "{body}");
    }
}

/// A receiver of payment notifications that answers FAIL to each and counts them, on
/// 127.0.0.1: its task and its notify URL.
async fn refusing_receiver(count: Arc<AtomicU32>) -> (tokio::task::JoinHandle<()>, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let url = format!(
        "http://{}/lost/notify",
        listener.local_addr().expect("local address")
    );
    let app = axum::Router::new().route(
        "/lost/notify",
        axum::routing::post(move || {
            count.fetch_add(1, Ordering::SeqCst);
            async {
                "<xml><return_code><![CDATA[FAIL]]></return_code><return_msg><![CDATA[busy]]></return_msg></xml>"
            }
        }),
    );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (task, url)
}

/// A query parameter of a URL.
///
/// # Panics
/// When `url` is not a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .expect("a URL")
        .query_pairs()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

/// Declares one `#[tokio::test]` per scenario of [`scenarios`] for the [`AdapterApp`] `$app`.
#[macro_export]
macro_rules! adapter_suite {
    ($app:ty) => {
        $crate::adapter_suite!(@tests $app;
            first_visit_logs_in_and_comes_back_to_the_page,
            login_hops_set_the_cookies_and_the_session_reaches_every_handler,
            logout_refuses_other_sites_and_accepts_this_sites_own_requests,
            userinfo_consent_gives_the_profile_and_refusal_gets_a_page,
            forged_expired_and_foreign_states_are_refused_without_redirect,
            return_paths_off_this_site_become_root,
            a_used_code_restarts_the_login_once,
            wechat_errors_on_the_code_exchange_give_502_with_an_error_id,
            excluded_paths_pass_and_requests_not_page_loads_get_401_json,
            jssdk_config_is_accepted_by_the_simulator_and_foreign_pages_get_400,
            jssdk_config_reports_wechat_errors_as_502_with_an_error_id,
            order_confirm_notification_paid,
            order_status_asks_wechat_when_the_notification_is_lost,
            another_user_cannot_read_the_order,
            an_order_is_paid_notified_and_shown_to_its_owner_only,
            notifications_pass_the_login_and_forgeries_are_refused,
        );
    };
    (@tests $app:ty; $($scenario:ident),* $(,)?) => {
        $(
            #[doc = concat!("The `", stringify!($scenario), "` scenario of `wechat_adapter_tests::scenarios`.")]
            #[tokio::test]
            async fn $scenario() {
                $crate::scenarios::$scenario::<$app>().await;
            }
        )*
    };
}
