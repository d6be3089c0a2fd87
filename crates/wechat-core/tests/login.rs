//! The login flow (`LoginFlow::decide` / `handle_callback`) end to end against wechat-sim on
//! 127.0.0.1, with the workspace's test browser (WeChat's in-app one) whose requests to the app
//! are handed to the flow in-process, standing in for the adapters.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response, StatusCode, header};
use wechat_core::login::{Decision, LoginConfig, LoginFlow};
use wechat_core::oauth::{OAuthClient, Scope};
use wechat_core::session::{SessionKeys, SessionUser};
use wechat_core::{BaseUrls, Config, OpenId, build_http_client};
use wechat_sim::{RunningSim, Simulator, fixtures};
use wechat_test_support::Browser;

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

/// The app's URL of `uri` (a path, or a URL of the app already).
fn app_url(uri: &str) -> String {
    if uri.starts_with(PUBLIC) {
        uri.to_owned()
    } else {
        format!("{PUBLIC}{uri}")
    }
}

/// What the adapters do with a page load (a link on the shop's own pages): decide, and run the
/// callback when told to; the browser keeps the answer's cookies.
async fn visit(browser: &Browser, flow: &LoginFlow, uri: &str) -> Visit {
    let url = app_url(uri);
    let parts = browser.page(&url).site("same-origin").into_parts();
    let visit = match flow.decide(&parts) {
        Decision::Proceed(p) => return Visit::Page(p.into_session_user()),
        Decision::Respond(response) => response,
        Decision::Callback => flow.handle_callback(&parts).await,
    };
    browser.keep_cookies(&url, visit.headers());
    Visit::Response(visit)
}

/// A request to the app that is not a page load (no browser headers but its cookies), as the
/// app receives it.
fn app_request(browser: &Browser, method: Method, uri: &str) -> http::request::Parts {
    browser.request(method, &app_url(uri)).into_parts()
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
    browser: &Browser,
    flow: &LoginFlow,
    sim: &RunningSim,
    path: &str,
    choice: Option<(&str, &str)>,
) -> String {
    let response = visit(browser, flow, path).await.response();
    assert_eq!(response.status(), StatusCode::FOUND, "{}", body(&response));
    let to_wechat = location(&response);
    assert!(
        to_wechat.starts_with(&format!(
            "{}/connect/oauth2/authorize?appid={APPID}&redirect_uri=",
            sim.base_url()
        )),
        "{to_wechat}"
    );
    let back = browser.back_from_wechat(&to_wechat, choice).await;
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
    let browser = Browser::wechat();
    let callback = login_until_callback(&browser, &flow, &sim, "/shop?item=42&q=a%20b", None).await;
    assert!(browser.has_cookie("wechat_session_state"));

    let response = visit(&browser, &flow, &callback).await.response();
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
        !browser.has_cookie("wechat_session_state"),
        "the state cookie is cleared"
    );

    let user = visit(&browser, &flow, "/shop?item=42&q=a%20b").await.user();
    assert_eq!(user.openid, OpenId::new(ALICE));
    assert!(user.profile.is_none() && user.unionid.is_none() && !user.is_snapshot_user);
    assert_eq!(sim.stats().calls_to("/sns/oauth2/access_token"), 1);
    assert_eq!(sim.stats().calls_to("/sns/userinfo"), 0);

    // Requests that are not page loads also pass with the session.
    match flow.decide(&app_request(&browser, Method::POST, "/api/cart")) {
        Decision::Proceed(p) if p.session_user().is_some() => {
            assert_eq!(p.session_user(), Some(&user))
        }
        other => panic!("{other:?}"),
    }

    // Back button onto the used callback URL: straight back to the page, no second exchange.
    let response = visit(&browser, &flow, &callback).await.response();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), "/shop?item=42&q=a%20b");
    assert_eq!(sim.stats().calls_to("/sns/oauth2/access_token"), 1);

    // Another instance with the same key accepts the session (stateless cookie).
    let other_instance = flow_with_same_key(&sim);
    match other_instance.decide(
        &browser
            .page(&app_url("/shop"))
            .site("same-origin")
            .into_parts(),
    ) {
        Decision::Proceed(p) if p.session_user().is_some() => {
            assert_eq!(p.session_user().unwrap().openid, OpenId::new(ALICE))
        }
        other => panic!("{other:?}"),
    }

    // Logout removes the session.
    let response = visit(&browser, &flow, "/wechat/oauth/logout")
        .await
        .response();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(!browser.has_cookie("wechat_session"));
    assert_eq!(
        visit(&browser, &flow, "/shop").await.response().status(),
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
    let browser = Browser::wechat();
    let callback = login_until_callback(&browser, &flow, &sim, "/me", Some((ALICE, "allow"))).await;
    let response = visit(&browser, &flow, &callback).await.response();
    assert_eq!(response.status(), StatusCode::FOUND, "{}", body(&response));
    assert_eq!(location(&response), "/me");
    let user = visit(&browser, &flow, "/me").await.user();
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
    let browser = Browser::wechat();
    let callback = login_until_callback(&browser, &flow, &sim, "/", Some((GUEST, "allow"))).await;
    let response = visit(&browser, &flow, &callback).await.response();
    assert_eq!(response.status(), StatusCode::FOUND, "{}", body(&response));
    let user = visit(&browser, &flow, "/").await.user();
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
    let browser = Browser::wechat();
    let callback =
        login_until_callback(&browser, &flow, &sim, "/shop", Some((ALICE, "deny"))).await;
    let response = visit(&browser, &flow, &callback).await.response();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get(header::LOCATION).is_none());
    let page = body(&response);
    assert!(page.contains("declined"), "{page}");
    assert!(
        page.contains("href=\"http://127.0.0.1:3000/wechat/oauth/login?r=%2Fshop\""),
        "{page}"
    );
    assert!(!browser.has_cookie("wechat_session"));
    // The retry link starts a new login.
    let retry = visit(&browser, &flow, "/wechat/oauth/login?r=%2Fshop")
        .await
        .response();
    assert_eq!(retry.status(), StatusCode::FOUND);
    assert!(location(&retry).contains("/connect/oauth2/authorize?"));
}

#[tokio::test]
async fn a_used_code_restarts_the_login_once() {
    let sim = start().await;
    let flow = flow(&sim, Scope::Base, SECRET);
    let browser = Browser::wechat();
    let callback = login_until_callback(&browser, &flow, &sim, "/orders", None).await;
    burn_code(&flow, &callback).await;

    // 40163: back to WeChat with a retry state, for the same page.
    let restart = visit(&browser, &flow, &callback).await.response();
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
    let back = browser.back_from_wechat(&to_wechat, None).await;
    let response = visit(&browser, &flow, &back).await.response();
    assert_eq!(response.status(), StatusCode::FOUND, "{}", body(&response));
    assert_eq!(location(&response), "/orders");
    assert_eq!(
        visit(&browser, &flow, "/orders").await.user().openid,
        OpenId::new(ALICE)
    );
}

#[tokio::test]
async fn a_second_bad_code_shows_an_error_instead_of_looping() {
    let sim = start().await;
    let flow = flow(&sim, Scope::Base, SECRET);
    let browser = Browser::wechat();
    let callback = login_until_callback(&browser, &flow, &sim, "/orders", None).await;
    burn_code(&flow, &callback).await;
    let restart = visit(&browser, &flow, &callback).await.response();
    assert_eq!(restart.status(), StatusCode::FOUND);
    let back = browser.back_from_wechat(&location(&restart), None).await;
    burn_code(&flow, &back).await;

    let response = visit(&browser, &flow, &back).await.response();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response.headers().get(header::LOCATION).is_none(),
        "no further redirect"
    );
    let page = body(&response);
    assert!(page.contains("40163"), "{page}");
    assert!(page.contains("Try again"), "{page}");
    assert!(!browser.has_cookie("wechat_session"));
}

#[tokio::test]
async fn a_state_from_another_browser_is_refused() {
    let sim = start().await;
    let flow = flow(&sim, Scope::Base, SECRET);
    let attacker = Browser::wechat();
    let callback = login_until_callback(&attacker, &flow, &sim, "/", None).await;
    // The victim opens the attacker's callback URL (login CSRF): no matching state cookie.
    let victim = Browser::wechat();
    let _ = login_until_callback(&victim, &flow, &sim, "/", None).await;
    let response = visit(&victim, &flow, &callback).await.response();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(header::LOCATION).is_none());
    assert!(!victim.has_cookie("wechat_session"));
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
    let browser = Browser::wechat();
    let callback = login_until_callback(&browser, &flow, &sim, "/", None).await;
    let response = visit(&browser, &flow, &callback).await.response();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let page = body(&response);
    // WeChat's answer (40125: the AppSecret is wrong) is for the log, not the user.
    assert!(
        !page.contains("40125") && page.contains("Error id "),
        "{page}"
    );
    assert!(!page.contains(wrong_secret), "{page}");
    assert!(!browser.has_cookie("wechat_session"));
}

#[tokio::test]
async fn fetches_and_excluded_paths() {
    let sim = start().await;
    let flow = flow(&sim, Scope::Base, SECRET);
    let browser = Browser::wechat();
    match flow.decide(&app_request(&browser, Method::GET, "/health")) {
        Decision::Proceed(p) if p.session_user().is_none() => {}
        other => panic!("{other:?}"),
    }
    let Decision::Respond(response) =
        flow.decide(&app_request(&browser, Method::POST, "/api/cart"))
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
