//! The login flow (`LoginFlow::decide` / `handle_callback`) end to end against wechat-sim on
//! 127.0.0.1, with a small cookie-keeping "browser" standing in for the adapters.

use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use wechat_core::login::{Decision, LoginConfig, LoginFlow};
use wechat_core::oauth::{OAuthClient, Scope};
use wechat_core::session::{SessionKeys, SessionUser};
use wechat_core::{BaseUrls, Config, OpenId, build_http_client};
use wechat_sim::{RunningSim, Simulator, fixtures};

const APPID: &str = fixtures::APPID;
const SECRET: &str = fixtures::SECRET;
const PUBLIC: &str = "http://127.0.0.1:3000";
const ALICE: &str = fixtures::ALICE;
const GUEST: &str = fixtures::GUEST;

const SIM_TOML: &str = fixtures::OAUTH_TOML;

fn key() -> SessionKeys {
    SessionKeys::new([42u8; 32]).unwrap()
}

fn flow(sim: &RunningSim, scope: Scope, secret: &str) -> LoginFlow {
    let config = Config::new(APPID, secret)
        .with_base_urls(BaseUrls::all(&sim.base_url()))
        .with_timeout(Duration::from_secs(10));
    let client = OAuthClient::new(&config, build_http_client(&config).unwrap());
    let login = LoginConfig::builder(PUBLIC, key())
        .scope(scope)
        .exclude("/health")
        .build()
        .unwrap();
    LoginFlow::new(client, login)
}

async fn start() -> RunningSim {
    Simulator::from_toml_str(SIM_TOML)
        .unwrap()
        .start()
        .await
        .unwrap()
}

/// A browser: a cookie jar for the app (name, value, path) and an HTTP client for the sim.
struct Browser {
    jar: Vec<(String, String, String)>,
    http: reqwest::Client,
}

impl Browser {
    fn new() -> Self {
        Self {
            jar: Vec::new(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }

    /// Keeps the cookies of an app response, honouring `Path` and `Max-Age=0`.
    fn store(&mut self, response: &Response<Bytes>) {
        for value in response.headers().get_all(header::SET_COOKIE) {
            let text = value.to_str().unwrap();
            let mut attrs = text.split(';').map(str::trim);
            let (name, value) = attrs.next().unwrap().split_once('=').unwrap();
            let mut path = "/".to_owned();
            let mut remove = false;
            for attr in attrs {
                if let Some(p) = attr.strip_prefix("Path=") {
                    path = p.to_owned();
                }
                if attr == "Max-Age=0" {
                    remove = true;
                }
            }
            self.jar.retain(|(n, _, p)| !(n == name && *p == path));
            if !remove {
                self.jar.push((name.to_owned(), value.to_owned(), path));
            }
        }
    }

    fn cookie(&self, name: &str) -> Option<&str> {
        self.jar
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, v, _)| v.as_str())
    }

    /// An app request as the browser sends it (a page load when `page` is set).
    fn request(&self, method: &str, uri: &str, page: bool) -> http::request::Parts {
        let path = uri.strip_prefix(PUBLIC).unwrap_or(uri);
        let cookies: Vec<String> = self
            .jar
            .iter()
            .filter(|(_, _, p)| path.starts_with(p.as_str()))
            .map(|(n, v, _)| format!("{n}={v}"))
            .collect();
        let mut builder = http::Request::builder().method(method).uri(path);
        if page {
            builder = builder
                .header(header::ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
                .header("sec-fetch-mode", "navigate")
                // Links followed on the shop's own pages.
                .header("sec-fetch-site", "same-origin");
        }
        if !cookies.is_empty() {
            builder = builder.header(header::COOKIE, cookies.join("; "));
        }
        builder.body(()).unwrap().into_parts().0
    }

    /// What the adapters do: decide, and run the callback when told to.
    async fn visit(&mut self, flow: &LoginFlow, uri: &str) -> Visit {
        let parts = self.request("GET", uri, true);
        let visit = match flow.decide(&parts) {
            Decision::Proceed(p) => return Visit::Page(p.into_session_user()),
            Decision::Respond(response) => response,
            Decision::Callback => flow.handle_callback(&parts).await,
        };
        self.store(&visit);
        Visit::Response(visit)
    }

    /// On WeChat (the sim): opens the authorize URL, answers the consent page if any, and
    /// returns the URL WeChat sends the browser back to.
    async fn on_wechat(&self, authorize_url: &str, choice: Option<(&str, &str)>) -> String {
        let page = self.http.get(authorize_url).send().await.unwrap();
        if page.status() == reqwest::StatusCode::FOUND {
            return page.headers()["location"].to_str().unwrap().to_owned();
        }
        assert_eq!(page.status(), reqwest::StatusCode::OK);
        let (openid, action) = choice.expect("a consent page");
        let mut url = url::Url::parse(authorize_url).unwrap();
        let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        form.push(("openid".into(), openid.into()));
        form.push(("action".into(), action.into()));
        url.set_query(None);
        url.set_fragment(None);
        let answer = self.http.post(url).form(&form).send().await.unwrap();
        assert_eq!(answer.status(), reqwest::StatusCode::FOUND);
        answer.headers()["location"].to_str().unwrap().to_owned()
    }
}

#[derive(Debug)]
enum Visit {
    Page(Option<SessionUser>),
    Response(Response<Bytes>),
}

impl Visit {
    fn response(self) -> Response<Bytes> {
        match self {
            Visit::Response(r) => r,
            Visit::Page(user) => panic!("expected a response, the page was shown to {user:?}"),
        }
    }

    fn user(self) -> SessionUser {
        match self {
            Visit::Page(Some(user)) => user,
            other => panic!("expected the page with a user, got {other:?}"),
        }
    }
}

fn location(response: &Response<Bytes>) -> String {
    response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned()
}

fn body(response: &Response<Bytes>) -> String {
    String::from_utf8(response.body().to_vec()).unwrap()
}

/// Visits `path` without a session and returns the callback URL WeChat sends the browser to.
async fn login_until_callback(
    browser: &mut Browser,
    flow: &LoginFlow,
    sim: &RunningSim,
    path: &str,
    choice: Option<(&str, &str)>,
) -> String {
    let response = browser.visit(flow, path).await.response();
    assert_eq!(response.status(), StatusCode::FOUND, "{}", body(&response));
    let to_wechat = location(&response);
    assert!(
        to_wechat.starts_with(&format!(
            "{}/connect/oauth2/authorize?appid={APPID}&redirect_uri=",
            sim.base_url()
        )),
        "{to_wechat}"
    );
    let back = browser.on_wechat(&to_wechat, choice).await;
    assert!(
        back.starts_with(&format!("{PUBLIC}/wechat/oauth/callback")),
        "{back}"
    );
    back
}

/// Exchanges the code of a callback URL behind the flow's back (as a first, lost attempt would).
async fn burn_code(flow: &LoginFlow, callback_url: &str) {
    let code = url::Url::parse(callback_url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    flow.client().exchange_code(&code).await.unwrap();
}

#[tokio::test]
async fn first_visit_logs_in_and_returns_to_the_page() {
    let sim = start().await;
    let flow = flow(&sim, Scope::Base, SECRET);
    let mut browser = Browser::new();
    let callback =
        login_until_callback(&mut browser, &flow, &sim, "/shop?item=42&q=a%20b", None).await;
    assert!(browser.cookie("wechat_session_state").is_some());

    let response = browser.visit(&flow, &callback).await.response();
    assert_eq!(response.status(), StatusCode::FOUND, "{}", body(&response));
    assert_eq!(location(&response), "/shop?item=42&q=a%20b");
    let set: Vec<&str> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        set.iter().any(|c| c.starts_with("wechat_session=")
            && c.ends_with("; Path=/; Max-Age=604800; HttpOnly; SameSite=Lax")),
        "{set:?}"
    );
    assert!(
        browser.cookie("wechat_session_state").is_none(),
        "the state cookie is cleared"
    );

    let user = browser.visit(&flow, "/shop?item=42&q=a%20b").await.user();
    assert_eq!(user.openid, OpenId::new(ALICE));
    assert!(user.profile.is_none() && user.unionid.is_none() && !user.is_snapshot_user);
    assert_eq!(sim.stats().calls_to("/sns/oauth2/access_token"), 1);
    assert_eq!(sim.stats().calls_to("/sns/userinfo"), 0);

    // Requests that are not page loads also pass with the session.
    match flow.decide(&browser.request("POST", "/api/cart", false)) {
        Decision::Proceed(p) if p.session_user().is_some() => {
            assert_eq!(p.session_user(), Some(&user))
        }
        other => panic!("{other:?}"),
    }

    // Back button onto the used callback URL: straight back to the page, no second exchange.
    let response = browser.visit(&flow, &callback).await.response();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), "/shop?item=42&q=a%20b");
    assert_eq!(sim.stats().calls_to("/sns/oauth2/access_token"), 1);

    // Another instance with the same key accepts the session (stateless cookie).
    let other_instance = flow_with_same_key(&sim);
    match other_instance.decide(&browser.request("GET", "/shop", true)) {
        Decision::Proceed(p) if p.session_user().is_some() => {
            assert_eq!(p.session_user().unwrap().openid, OpenId::new(ALICE))
        }
        other => panic!("{other:?}"),
    }

    // Logout removes the session.
    let response = browser
        .visit(&flow, "/wechat/oauth/logout")
        .await
        .response();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(browser.cookie("wechat_session").is_none());
    assert_eq!(
        browser.visit(&flow, "/shop").await.response().status(),
        StatusCode::FOUND
    );
}

fn flow_with_same_key(sim: &RunningSim) -> LoginFlow {
    flow(sim, Scope::UserInfo, SECRET)
}

#[tokio::test]
async fn userinfo_login_keeps_the_profile() {
    let sim = start().await;
    let flow = flow(&sim, Scope::UserInfo, SECRET);
    let mut browser = Browser::new();
    let callback =
        login_until_callback(&mut browser, &flow, &sim, "/me", Some((ALICE, "allow"))).await;
    let response = browser.visit(&flow, &callback).await.response();
    assert_eq!(response.status(), StatusCode::FOUND, "{}", body(&response));
    assert_eq!(location(&response), "/me");
    let user = browser.visit(&flow, "/me").await.user();
    assert_eq!(user.openid, OpenId::new(ALICE));
    assert_eq!(
        user.unionid.as_ref().map(|u| u.as_str()),
        Some("o6_bmasdasdsad6_2sgVt7hMZOPfL")
    );
    let profile = user.profile.expect("a profile");
    assert_eq!(profile.nickname, "Alice");
    assert_eq!(profile.city, "Shenzhen");
    assert_eq!(profile.headimgurl, "http://127.0.0.1:3000/avatar.png");
    assert_eq!(sim.stats().calls_to("/sns/userinfo"), 1);
}

#[tokio::test]
async fn snapshot_users_log_in_as_guests_without_userinfo() {
    let sim = start().await;
    let flow = flow(&sim, Scope::UserInfo, SECRET);
    let mut browser = Browser::new();
    let callback =
        login_until_callback(&mut browser, &flow, &sim, "/", Some((GUEST, "allow"))).await;
    let response = browser.visit(&flow, &callback).await.response();
    assert_eq!(response.status(), StatusCode::FOUND, "{}", body(&response));
    let user = browser.visit(&flow, "/").await.user();
    assert!(user.is_snapshot_user);
    assert_eq!(user.openid, OpenId::new(GUEST));
    assert!(user.profile.is_none());
    assert_eq!(
        sim.stats().calls_to("/sns/userinfo"),
        0,
        "userinfo is not called for snapshot users"
    );
}

#[tokio::test]
async fn declining_consent_shows_a_page_with_a_retry_link() {
    let sim = start().await;
    let flow = flow(&sim, Scope::UserInfo, SECRET);
    let mut browser = Browser::new();
    let callback =
        login_until_callback(&mut browser, &flow, &sim, "/shop", Some((ALICE, "deny"))).await;
    let response = browser.visit(&flow, &callback).await.response();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get(header::LOCATION).is_none());
    let page = body(&response);
    assert!(page.contains("declined"), "{page}");
    assert!(
        page.contains("href=\"http://127.0.0.1:3000/wechat/oauth/login?r=%2Fshop\""),
        "{page}"
    );
    assert!(browser.cookie("wechat_session").is_none());
    // The retry link starts a new login.
    let retry = browser
        .visit(&flow, "/wechat/oauth/login?r=%2Fshop")
        .await
        .response();
    assert_eq!(retry.status(), StatusCode::FOUND);
    assert!(location(&retry).contains("/connect/oauth2/authorize?"));
}

#[tokio::test]
async fn a_used_code_restarts_the_login_once() {
    let sim = start().await;
    let flow = flow(&sim, Scope::Base, SECRET);
    let mut browser = Browser::new();
    let callback = login_until_callback(&mut browser, &flow, &sim, "/orders", None).await;
    burn_code(&flow, &callback).await;

    // 40163: back to WeChat with a retry state, for the same page.
    let restart = browser.visit(&flow, &callback).await.response();
    assert_eq!(restart.status(), StatusCode::FOUND, "{}", body(&restart));
    let to_wechat = location(&restart);
    assert!(to_wechat.starts_with(&sim.base_url()), "{to_wechat}");
    let state = url::Url::parse(&to_wechat)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(
        &state[16..17],
        "1",
        "the restarted login is marked as a retry"
    );

    // The restarted login succeeds.
    let back = browser.on_wechat(&to_wechat, None).await;
    let response = browser.visit(&flow, &back).await.response();
    assert_eq!(response.status(), StatusCode::FOUND, "{}", body(&response));
    assert_eq!(location(&response), "/orders");
    assert_eq!(
        browser.visit(&flow, "/orders").await.user().openid,
        OpenId::new(ALICE)
    );
}

#[tokio::test]
async fn a_second_bad_code_shows_an_error_instead_of_looping() {
    let sim = start().await;
    let flow = flow(&sim, Scope::Base, SECRET);
    let mut browser = Browser::new();
    let callback = login_until_callback(&mut browser, &flow, &sim, "/orders", None).await;
    burn_code(&flow, &callback).await;
    let restart = browser.visit(&flow, &callback).await.response();
    assert_eq!(restart.status(), StatusCode::FOUND);
    let back = browser.on_wechat(&location(&restart), None).await;
    burn_code(&flow, &back).await;

    let response = browser.visit(&flow, &back).await.response();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response.headers().get(header::LOCATION).is_none(),
        "no further redirect"
    );
    let page = body(&response);
    assert!(page.contains("40163"), "{page}");
    assert!(page.contains("Try again"), "{page}");
    assert!(browser.cookie("wechat_session").is_none());
}

#[tokio::test]
async fn a_state_from_another_browser_is_refused() {
    let sim = start().await;
    let flow = flow(&sim, Scope::Base, SECRET);
    let mut attacker = Browser::new();
    let callback = login_until_callback(&mut attacker, &flow, &sim, "/", None).await;
    // The victim opens the attacker's callback URL (login CSRF): no matching state cookie.
    let mut victim = Browser::new();
    let _ = login_until_callback(&mut victim, &flow, &sim, "/", None).await;
    let response = victim.visit(&flow, &callback).await.response();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(header::LOCATION).is_none());
    assert!(victim.cookie("wechat_session").is_none());
    assert_eq!(
        sim.stats().calls_to("/sns/oauth2/access_token"),
        0,
        "the code is never exchanged"
    );
}

#[tokio::test]
async fn wechat_errors_on_exchange_give_502_with_an_error_id() {
    let sim = start().await;
    let wrong_secret = "ffffffffffffffffffffffffffffffff";
    let flow = flow(&sim, Scope::Base, wrong_secret);
    let mut browser = Browser::new();
    let callback = login_until_callback(&mut browser, &flow, &sim, "/", None).await;
    let response = browser.visit(&flow, &callback).await.response();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let page = body(&response);
    // WeChat's answer (40125: the AppSecret is wrong) is for the log, not the user.
    assert!(
        !page.contains("40125") && page.contains("Error id "),
        "{page}"
    );
    assert!(!page.contains(wrong_secret), "{page}");
    assert!(browser.cookie("wechat_session").is_none());
}

#[tokio::test]
async fn fetches_and_excluded_paths() {
    let sim = start().await;
    let flow = flow(&sim, Scope::Base, SECRET);
    let browser = Browser::new();
    match flow.decide(&browser.request("GET", "/health", false)) {
        Decision::Proceed(p) if p.session_user().is_none() => {}
        other => panic!("{other:?}"),
    }
    let Decision::Respond(response) = flow.decide(&browser.request("POST", "/api/cart", false))
    else {
        panic!("expected 401");
    };
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let json: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(json["error"], "login_required");
    assert_eq!(
        json["login_url"],
        "http://127.0.0.1:3000/wechat/oauth/login"
    );
    assert_eq!(sim.stats().calls_to("/connect/oauth2/authorize"), 0);
}
