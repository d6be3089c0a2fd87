//! Tests of the login flow.

use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{Method, Response, StatusCode, header};

use super::request::{is_page_load, query_param, request_parts};
use super::*;
use crate::clock::{Clock, SystemClock};
use crate::oauth::{Lang, OAuthClient, Scope};
use crate::response::captured_logs::{Logs, error_id_in};
use crate::response::html_page;
use crate::session::{OAuthState, SessionCookie, SessionKeys, SessionUser};
use crate::{BaseUrls, Config, OpenId};

fn now_unix() -> u64 {
    SystemClock.now_unix_secs()
}

const PUBLIC: &str = "https://shop.example.com";

fn keys() -> SessionKeys {
    SessionKeys::new([5u8; 32]).unwrap()
}

fn flow_with(builder: impl FnOnce(LoginConfigBuilder) -> LoginConfigBuilder) -> LoginFlow {
    // Nothing listens on port 9: a test that reaches WeChat fails fast.
    let config = Config::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef")
        .with_base_urls(BaseUrls::all("http://127.0.0.1:9"));
    let client = OAuthClient::new(&config, reqwest::Client::new());
    let login = builder(
        LoginConfig::builder(PUBLIC, keys())
            .exclude("/static")
            .exclude("/wechat/pay/notify"),
    )
    .build()
    .unwrap();
    LoginFlow::new(client, login)
}

fn flow() -> LoginFlow {
    flow_with(|b| b)
}

fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

fn respond(decision: Decision) -> Response<Bytes> {
    match decision {
        Decision::Respond(response) => response,
        other => panic!("expected a response, got {other:?}"),
    }
}

fn set_cookies(response: &Response<Bytes>) -> Vec<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn session_cookie_for(flow: &LoginFlow, user: &SessionUser) -> String {
    let value = flow.config().session_cookie().encode(user).unwrap();
    format!("__Host-wechat_session={value}")
}

fn alice(expires_at: u64) -> SessionUser {
    SessionUser::new(OpenId::new("o6_alice"), expires_at)
}

/// Splits a redirect to WeChat into (state, redirect_uri).
fn authorize_params(response: &Response<Bytes>) -> (String, String, String) {
    let location = response.headers()[header::LOCATION].to_str().unwrap();
    let url = url::Url::parse(location).unwrap();
    let get = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .unwrap()
            .1
            .into_owned()
    };
    (get("state"), get("redirect_uri"), get("scope"))
}

#[test]
fn builder_validates_and_defaults() {
    let config = LoginConfig::builder("https://shop.example.com/", keys())
        .build()
        .unwrap();
    assert_eq!(config.public_url(), "https://shop.example.com");
    assert_eq!(
        config.callback_url(),
        "https://shop.example.com/wechat/oauth/callback"
    );
    assert_eq!(config.scope(), Scope::Base);
    assert!(config.session_cookie().secure());
    assert_eq!(config.session_cookie().name(), "__Host-wechat_session");
    assert_eq!(
        config.session_cookie().cache_capacity(),
        SessionCookie::DEFAULT_CACHE_CAPACITY
    );
    let uncached = LoginConfig::builder("https://shop.example.com/", keys())
        .session_cache_capacity(0)
        .build()
        .unwrap();
    assert_eq!(uncached.session_cookie().cache_capacity(), 0);
    assert_eq!(config.state_cookie_name(), "__Secure-wechat_session_state");
    let plain = LoginConfig::builder("http://127.0.0.1:3000", keys())
        .build()
        .unwrap();
    assert!(!plain.session_cookie().secure());
    for bad in [
        "shop.example.com",
        "ftp://x.example",
        "https://x.example/app",
        "https://x.example/?a=1",
        "https://u:p@x.example",
    ] {
        assert!(LoginConfig::builder(bad, keys()).build().is_err(), "{bad}");
    }
    let builder = LoginConfig::builder(PUBLIC, keys());
    assert!(builder.clone().callback_path("cb").build().is_err());
    assert!(builder.clone().callback_path("/cb?x").build().is_err());
    assert!(builder.clone().exclude("static").build().is_err());
    assert!(
        builder
            .clone()
            .state_ttl(Duration::from_secs(5))
            .build()
            .is_err()
    );
    assert!(
        builder
            .clone()
            .session_ttl(Duration::from_secs(5))
            .build()
            .is_err()
    );
    assert!(builder.clone().cookie_name("a b").build().is_err());
    assert!(
        builder
            .clone()
            .login_path("/wechat/oauth/callback")
            .build()
            .is_err()
    );
    let custom = builder
        .callback_path("/auth/cb")
        .cookie_name("sid")
        .secure(false)
        .lang(Lang::En)
        .scope(Scope::UserInfo)
        .build()
        .unwrap();
    assert_eq!(custom.callback_url(), "https://shop.example.com/auth/cb");
    assert_eq!(custom.state_cookie_name(), "sid_state");
    assert!(!custom.session_cookie().secure());
    assert_eq!(custom.lang(), Some(Lang::En));
}

#[test]
fn exclusions_match_on_segments() {
    let config = flow().config().clone();
    assert!(config.is_excluded("/static"));
    assert!(config.is_excluded("/static/app.js"));
    assert!(!config.is_excluded("/staticky"));
    assert!(config.is_excluded("/wechat/pay/notify"));
    assert!(!config.is_excluded("/"));
    let slash = LoginConfig::builder(PUBLIC, keys())
        .exclude("/assets/")
        .build()
        .unwrap();
    assert!(slash.is_excluded("/assets/x.css"));
    assert!(!slash.is_excluded("/assets"));
}

#[test]
fn page_load_detection() {
    let get = Method::GET;
    let h = |pairs: &[(&str, &str)]| parts("GET", "/", pairs).headers;
    assert!(is_page_load(
        &get,
        &h(&[("accept", "text/html,application/xhtml+xml,*/*;q=0.8")])
    ));
    assert!(is_page_load(
        &get,
        &h(&[("accept", "*/*"), ("sec-fetch-mode", "navigate")])
    ));
    assert!(is_page_load(&get, &h(&[("accept", "TEXT/HTML; q=0.5")])));
    assert!(!is_page_load(&get, &h(&[("accept", "text/html;q=0")])));
    assert!(!is_page_load(&get, &h(&[("accept", "application/json")])));
    assert!(!is_page_load(&get, &h(&[])));
    assert!(!is_page_load(
        &get,
        &h(&[("accept", "*/*"), ("sec-fetch-mode", "cors")])
    ));
    assert!(!is_page_load(
        &get,
        &h(&[("accept", "text/html"), ("sec-fetch-mode", "cors")])
    ));
    assert!(!is_page_load(
        &Method::POST,
        &h(&[("accept", "text/html"), ("sec-fetch-mode", "navigate")])
    ));
    assert!(!is_page_load(&Method::HEAD, &h(&[("accept", "text/html")])));
}

#[test]
fn browser_without_session_is_sent_to_wechat() {
    let flow = flow_with(|b| b.scope(Scope::UserInfo));
    let response = respond(flow.decide(&parts(
        "GET",
        "/shop?item=42&x=%20y",
        &[("accept", "text/html")],
    )));
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()[header::LOCATION].to_str().unwrap();
    assert!(
        location.starts_with(
            "http://127.0.0.1:9/connect/oauth2/authorize?appid=wx1234567890abcdef&redirect_uri="
        ),
        "{location}"
    );
    assert!(location.ends_with("#wechat_redirect"));
    let (state, redirect_uri, scope) = authorize_params(&response);
    assert_eq!(scope, "snsapi_userinfo");
    assert_eq!(
        redirect_uri,
        "https://shop.example.com/wechat/oauth/callback?r=%2Fshop%3Fitem%3D42%26x%3D%2520y"
    );
    let r = query_param(url::Url::parse(&redirect_uri).unwrap().query(), "r");
    let verified = OAuthState::verify_at(
        &keys(),
        flow.client().appid(),
        &state,
        r.as_deref(),
        now_unix(),
    )
    .unwrap();
    assert_eq!(verified.return_path(), "/shop?item=42&x=%20y");
    assert!(!verified.is_retry());
    let cookies = set_cookies(&response);
    assert_eq!(cookies.len(), 1);
    assert_eq!(
        cookies[0],
        format!(
            "__Secure-wechat_session_state={}; Path=/wechat/oauth/callback; Max-Age=600; HttpOnly; SameSite=Lax; Secure",
            verified.nonce()
        )
    );
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
}

#[test]
fn pending_logins_accumulate_up_to_a_limit() {
    let flow = flow();
    let mut cookie = String::new();
    let mut nonces = Vec::new();
    for _ in 0..6 {
        let response = respond(flow.decide(&parts(
            "GET",
            "/",
            &[("accept", "text/html"), ("cookie", &cookie)],
        )));
        let (state, _, _) = authorize_params(&response);
        nonces.push(state[..16].to_owned());
        let set = set_cookies(&response).remove(0);
        cookie = set.split(';').next().unwrap().to_owned();
    }
    let value = cookie
        .strip_prefix("__Secure-wechat_session_state=")
        .unwrap();
    assert_eq!(value.split('.').collect::<Vec<_>>(), nonces[2..].to_vec());
}

#[test]
fn fetches_without_session_get_401_json() {
    let flow = flow();
    for request in [
        parts("POST", "/api/cart", &[("accept", "text/html")]),
        parts("GET", "/api/me", &[("accept", "application/json")]),
        parts(
            "GET",
            "/api/me",
            &[
                ("sec-fetch-mode", "cors"),
                ("referer", "https://shop.example.com/shop?item=1"),
            ],
        ),
        parts(
            "DELETE",
            "/api/cart",
            &[("referer", "https://evil.example/")],
        ),
    ] {
        let response = respond(flow.decide(&request));
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert!(set_cookies(&response).is_empty());
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["error"], "login_required");
        assert!(body["message"].as_str().unwrap().contains("login_url"));
        let login_url = body["login_url"].as_str().unwrap();
        if request
            .headers
            .get("referer")
            .is_some_and(|r| r.to_str().unwrap().starts_with(PUBLIC))
        {
            assert_eq!(
                login_url,
                "https://shop.example.com/wechat/oauth/login?r=%2Fshop%3Fitem%3D1"
            );
        } else {
            assert_eq!(login_url, "https://shop.example.com/wechat/oauth/login");
        }
    }
}

#[test]
fn valid_session_proceeds_with_the_user() {
    let flow = flow();
    let user = alice(now_unix() + 3600);
    let cookie = session_cookie_for(&flow, &user);
    for request in [
        parts(
            "GET",
            "/shop",
            &[("accept", "text/html"), ("cookie", &cookie)],
        ),
        parts("POST", "/api/cart", &[("cookie", &cookie)]),
        parts("GET", "/static/app.js", &[("cookie", &cookie)]),
    ] {
        match flow.decide(&request) {
            Decision::Proceed(p) if p.session_user().is_some() => {
                assert_eq!(p.session_user(), Some(&user))
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        flow.current_user(&parts("GET", "/", &[("cookie", &cookie)]).headers),
        Some(user)
    );
}

#[test]
fn fast_proceed_agrees_with_decide() {
    let flow = flow_with(|b| b.exclude("/static"));
    let user = alice(now_unix() + 3600);
    let cookie = session_cookie_for(&flow, &user);
    let expired = session_cookie_for(&flow, &alice(now_unix() - 1));
    let config = flow.config().clone();
    for path in [
        "/shop",
        "/static/app.js",
        config.callback_path(),
        config.login_path(),
        config.logout_path(),
    ] {
        for cookies in [
            vec![],
            vec!["a=1"],
            vec!["a=1", cookie.as_str()],
            vec![expired.as_str()],
        ] {
            let mut headers: Vec<(&str, &str)> = vec![("accept", "text/html")];
            headers.extend(cookies.iter().map(|c| ("cookie", *c)));
            let fast = flow
                .fast_proceed(path, cookies.iter().map(|c| c.as_bytes()))
                .and_then(Proceed::into_session_user);
            match flow.decide(&parts("GET", path, &headers)) {
                Decision::Proceed(p) if p.session_user().is_some() => {
                    assert_eq!(fast, p.into_session_user(), "{path} {cookies:?}")
                }
                other => assert!(fast.is_none(), "{path} {cookies:?}: {other:?}"),
            }
        }
    }
    assert_eq!(
        flow.fast_proceed("/shop", [cookie.as_bytes()])
            .and_then(Proceed::into_session_user),
        Some(user)
    );
}

#[test]
fn expired_tampered_or_foreign_sessions_count_as_none() {
    let flow = flow();
    let expired = session_cookie_for(&flow, &alice(now_unix() - 1));
    let other_key = SessionCookie::new(SessionKeys::new([6u8; 32]).unwrap())
        .encode(&alice(now_unix() + 3600))
        .unwrap();
    let foreign = format!("__Host-wechat_session={other_key}");
    let mut tampered = session_cookie_for(&flow, &alice(now_unix() + 3600));
    tampered.insert(20, 'x');
    for cookie in [expired, foreign, tampered] {
        let response = respond(flow.decide(&parts("POST", "/api", &[("cookie", &cookie)])));
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{cookie}");
    }
}

#[test]
fn excluded_paths_proceed_without_session() {
    let flow = flow();
    assert!(matches!(
        flow.decide(&parts("POST", "/wechat/pay/notify", &[])),
        Decision::Proceed(p) if p.session_user().is_none()
    ));
    assert!(matches!(
        flow.decide(&parts("GET", "/static/a.css", &[("accept", "text/html")])),
        Decision::Proceed(p) if p.session_user().is_none()
    ));
    assert!(matches!(
        flow.decide(&parts("GET", "/wechat/oauth/callback?code=x", &[])),
        Decision::Callback
    ));
}

#[test]
fn login_and_logout_paths() {
    let flow = flow();
    let response = respond(flow.decide(&parts("GET", "/wechat/oauth/login?r=%2Fcart", &[])));
    assert_eq!(response.status(), StatusCode::FOUND);
    let (_, redirect_uri, _) = authorize_params(&response);
    assert!(redirect_uri.ends_with("?r=%2Fcart"), "{redirect_uri}");
    let evil = respond(flow.decide(&parts("GET", "/wechat/oauth/login?r=%2F%2Fevil.com", &[])));
    let (_, redirect_uri, _) = authorize_params(&evil);
    assert_eq!(
        redirect_uri,
        "https://shop.example.com/wechat/oauth/callback"
    );
    // Already logged in: straight to the return path.
    let cookie = session_cookie_for(&flow, &alice(now_unix() + 3600));
    let response = respond(flow.decide(&parts(
        "GET",
        "/wechat/oauth/login?r=%2Fcart",
        &[("cookie", &cookie)],
    )));
    assert_eq!(response.headers()[header::LOCATION], "/cart");
    assert_eq!(
        respond(flow.decide(&parts("POST", "/wechat/oauth/login", &[]))).status(),
        StatusCode::METHOD_NOT_ALLOWED
    );

    let response = respond(flow.decide(&parts(
        "POST",
        "/wechat/oauth/logout?r=https://evil.com",
        &[("cookie", &cookie)],
    )));
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/");
    let cookies = set_cookies(&response);
    assert!(
        cookies
            .iter()
            .any(|c| c
                .starts_with("__Host-wechat_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax")),
        "{cookies:?}"
    );
    assert!(
        cookies.iter().any(|c| c
            .starts_with("__Secure-wechat_session_state=; Path=/wechat/oauth/callback; Max-Age=0")),
        "{cookies:?}"
    );
    assert_eq!(flow.logout("/bye").headers()[header::LOCATION], "/bye");
}

#[test]
fn logout_answers_only_this_sites_own_pages() {
    let flow = flow();
    let cookie = session_cookie_for(&flow, &alice(now_unix() + 3600));
    // Each request as axum hands it over (every header) and as an adapter that copies only
    // LOGIN_FLOW_HEADERS builds it (wechat-actix): both must get the same answer.
    let logout = |method: &str, headers: &[(&str, &str)]| {
        let mut all = vec![("cookie", cookie.as_str())];
        all.extend_from_slice(headers);
        let target = "/wechat/oauth/logout?r=%2Fbye";
        let full = respond(flow.decide(&parts(method, target, &all)));
        let copied = request_parts(
            method,
            target,
            all.iter().map(|(name, value)| (*name, value.as_bytes())),
        )
        .unwrap();
        let adapted = respond(flow.decide(&copied));
        assert_eq!(
            (adapted.status(), adapted.headers(), adapted.body()),
            (full.status(), full.headers(), full.body()),
            "{method} {headers:?}: an adapter passing LOGIN_FLOW_HEADERS gets another answer"
        );
        full
    };
    let logged_out = |response: &Response<Bytes>| {
        response.status() == StatusCode::SEE_OTHER
            && set_cookies(response)
                .iter()
                .any(|c| c.starts_with("__Host-wechat_session=; "))
    };
    // From the site's own pages: a link (same-origin), the address bar (none), a form POST.
    assert!(logged_out(&logout(
        "GET",
        &[("sec-fetch-site", "same-origin")]
    )));
    assert!(logged_out(&logout("GET", &[("sec-fetch-site", "none")])));
    assert!(logged_out(&logout(
        "POST",
        &[("sec-fetch-site", "same-origin")]
    )));
    assert!(logged_out(&logout("POST", &[])));
    assert!(logged_out(&logout("POST", &[("origin", PUBLIC)])));
    // From elsewhere: an <img> or link on another site, a sibling subdomain, an old browser's
    // GET, a cross-site form: a page with a button, and the session stays.
    for (method, headers) in [
        ("GET", &[("sec-fetch-site", "cross-site")][..]),
        ("GET", &[("sec-fetch-site", "same-site")][..]),
        ("GET", &[][..]),
        ("POST", &[("origin", "https://evil.example")][..]),
        ("POST", &[("sec-fetch-site", "cross-site")][..]),
    ] {
        let response = logout(method, headers);
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{method} {headers:?}"
        );
        assert!(set_cookies(&response).is_empty(), "{method} {headers:?}");
        let page = std::str::from_utf8(response.body()).unwrap();
        assert!(
            page.contains(r#"<form method="post" action="/wechat/oauth/logout?r=%2Fbye">"#),
            "{page}"
        );
    }
    assert_eq!(
        logout("DELETE", &[("sec-fetch-site", "same-origin")]).status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[test]
fn sessions_and_states_are_bound_to_the_app_and_the_cookie() {
    // Two apps sharing the session keys (the same LoginConfig settings).
    let ours = flow();
    let other_app = {
        let config = Config::new("wx0000000000000000", "0123456789abcdef0123456789abcdef")
            .with_base_urls(BaseUrls::all("http://127.0.0.1:9"));
        let client = OAuthClient::new(&config, reqwest::Client::new());
        LoginFlow::new(
            client,
            LoginConfig::builder(PUBLIC, keys()).build().unwrap(),
        )
    };
    let user = alice(now_unix() + 3600);
    let theirs = session_cookie_for(&other_app, &user);
    assert!(matches!(
        other_app.decide(&parts("GET", "/shop", &[("cookie", &theirs)])),
        Decision::Proceed(p) if p.session_user().is_some()
    ));
    assert!(
        ours.current_user(&parts("GET", "/", &[("cookie", &theirs)]).headers)
            .is_none()
    );
    // Another cookie of the same app and keys (another name): not a session either.
    let renamed = flow_with(|b| b.cookie_name("admin_session"));
    let value = renamed.config().session_cookie().encode(&user).unwrap();
    let as_ours = format!("__Host-wechat_session={value}");
    assert!(
        ours.current_user(&parts("GET", "/", &[("cookie", &as_ours)]).headers)
            .is_none()
    );
    // A state issued by the other app does not verify here.
    let response = respond(other_app.decide(&parts("GET", "/shop", &[("accept", "text/html")])));
    let (state, _, _) = authorize_params(&response);
    assert!(
        OAuthState::verify_at(
            &keys(),
            ours.client().appid(),
            &state,
            Some("/shop"),
            now_unix()
        )
        .is_err()
    );
    assert!(
        OAuthState::verify_at(
            &keys(),
            other_app.client().appid(),
            &state,
            Some("/shop"),
            now_unix()
        )
        .is_ok()
    );
}

#[test]
fn https_cookies_carry_the_host_and_secure_prefixes() {
    let secure = flow();
    assert_eq!(
        secure.config().session_cookie().name(),
        "__Host-wechat_session"
    );
    assert_eq!(
        secure.config().state_cookie_name(),
        "__Secure-wechat_session_state"
    );
    let plain = flow_with(|b| b.secure(false));
    assert_eq!(plain.config().session_cookie().name(), "wechat_session");
    assert_eq!(plain.config().state_cookie_name(), "wechat_session_state");
    let unprefixed = flow_with(|b| b.host_prefix(false));
    assert_eq!(
        unprefixed.config().session_cookie().name(),
        "wechat_session"
    );
    assert_eq!(
        unprefixed.config().state_cookie_name(),
        "wechat_session_state"
    );
    // `__Host-` needs `Path=/`: on another path only `__Secure-` is possible.
    let scoped = flow_with(|b| b.cookie_path("/shop"));
    assert_eq!(
        scoped.config().session_cookie().name(),
        "__Secure-wechat_session"
    );
    // A configured name may not carry a prefix itself.
    assert!(
        LoginConfig::builder(PUBLIC, keys())
            .cookie_name("__Host-x")
            .build()
            .is_err()
    );
}

/// Starts a login and returns (callback URI for `code`, the browser's cookie header).
fn start_login(flow: &LoginFlow, path: &str, code: Option<&str>) -> (String, String) {
    let response = respond(flow.decide(&parts("GET", path, &[("accept", "text/html")])));
    let (state, redirect_uri, _) = authorize_params(&response);
    let cookie = set_cookies(&response)
        .remove(0)
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let callback = redirect_uri.strip_prefix(PUBLIC).unwrap().to_owned();
    let sep = if callback.contains('?') { '&' } else { '?' };
    let uri = match code {
        Some(code) => format!("{callback}{sep}code={code}&state={state}"),
        None => format!("{callback}{sep}state={state}"),
    };
    (uri, cookie)
}

async fn callback(flow: &LoginFlow, uri: &str, cookie: &str) -> Response<Bytes> {
    flow.handle_callback(&parts("GET", uri, &[("cookie", cookie)]))
        .await
}

fn body_text(response: &Response<Bytes>) -> String {
    String::from_utf8(response.body().to_vec()).unwrap()
}

#[tokio::test]
async fn forged_expired_or_foreign_states_are_refused_without_redirect() {
    let flow = flow();
    let (uri, cookie) = start_login(&flow, "/shop", Some("CODE"));
    // Another browser (no state cookie, or another pending login).
    let (_, other_cookie) = start_login(&flow, "/", Some("CODE"));
    let forged_state = {
        let mut u = uri.clone();
        let at = u.find("state=").unwrap() + "state=".len() + 3;
        let c = u.as_bytes()[at];
        u.replace_range(at..=at, if c == b'a' { "b" } else { "a" });
        u
    };
    let other_path = uri.replace("r=%2Fshop", "r=%2Fadmin");
    let expired = {
        let old = OAuthState::issue_at(
            &keys(),
            flow.client().appid(),
            "/",
            Duration::from_secs(600),
            false,
            now_unix() - 700,
        );
        (
            format!("/wechat/oauth/callback?code=CODE&state={}", old.as_str()),
            format!("__Secure-wechat_session_state={}", old.nonce()),
        )
    };
    for (uri, cookie, reason) in [
        (uri.clone(), String::new(), "no cookie"),
        (uri.clone(), other_cookie.clone(), "another browser"),
        (forged_state, cookie.clone(), "forged"),
        (other_path, cookie.clone(), "altered return path"),
        (expired.0, expired.1, "expired"),
        (
            "/wechat/oauth/callback?code=CODE".to_owned(),
            cookie.clone(),
            "no state",
        ),
        (format!("{uri}&state=x"), cookie.clone(), "repeated state"),
    ] {
        let response = callback(&flow, &uri, &cookie).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{reason}");
        assert!(
            response.headers().get(header::LOCATION).is_none(),
            "{reason}"
        );
        assert!(
            set_cookies(&response)
                .iter()
                .all(|c| !c.starts_with("__Host-wechat_session=")),
            "{reason}"
        );
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert!(
            body_text(&response).contains("Login link not valid"),
            "{reason}"
        );
    }
    let wrong_method = flow
        .handle_callback(&parts("POST", &uri, &[("cookie", &cookie)]))
        .await;
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn declined_consent_gets_a_page_with_a_retry_link() {
    let flow = flow_with(|b| b.scope(Scope::UserInfo));
    let (uri, cookie) = start_login(&flow, "/shop?a=1", None);
    let response = callback(&flow, &uri, &cookie).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get(header::LOCATION).is_none());
    let body = body_text(&response);
    assert!(body.contains("You declined"), "{body}");
    assert!(
        body.contains("href=\"https://shop.example.com/wechat/oauth/login?r=%2Fshop%3Fa%3D1\""),
        "{body}"
    );
    assert!(body.starts_with("<!DOCTYPE html>") && body.contains("<meta charset=\"utf-8\">"));
    assert!(
        set_cookies(&response)[0]
            .starts_with("__Secure-wechat_session_state=; Path=/wechat/oauth/callback; Max-Age=0")
    );
}

#[tokio::test]
async fn unreachable_wechat_gives_502_not_a_panic() {
    let (logs, _guard) = Logs::capture();
    let flow = flow();
    let (uri, cookie) = start_login(&flow, "/", Some("CODE"));
    let response = callback(&flow, &uri, &cookie).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body = body_text(&response);
    // The page has a short message and an id; the details are in the log under that id.
    assert!(!body.contains("/sns/oauth2/access_token"), "{body}");
    assert!(!body.contains("0123456789abcdef0123"), "{body}");
    let id = error_id_in(&body);
    let logged = logs.text();
    assert!(
        logged
            .lines()
            .any(|l| l.contains(&id) && l.contains("request to /sns/oauth2/access_token failed")),
        "{logged}"
    );
    assert!(!logged.contains("0123456789abcdef0123"), "{logged}");
}

#[tokio::test]
async fn back_button_after_login_returns_to_the_page() {
    let flow = flow();
    let (uri, cookie) = start_login(&flow, "/shop", Some("CODE"));
    let nonce = cookie
        .strip_prefix("__Secure-wechat_session_state=")
        .unwrap();
    // What a completed login left: a session remembering the nonce, no pending state.
    let session = flow
        .config()
        .session_cookie()
        .encode_with_nonce(&alice(now_unix() + 3600), Some(nonce))
        .unwrap();
    let response = callback(&flow, &uri, &format!("__Host-wechat_session={session}")).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(response.headers()[header::LOCATION], "/shop");
    // A session from another login does not make a foreign state acceptable.
    let other = session_cookie_for(&flow, &alice(now_unix() + 3600));
    assert_eq!(
        callback(&flow, &uri, &other).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[test]
fn request_parts_keep_what_the_flow_reads() {
    let flow = flow();
    let user = alice(now_unix() + 3600);
    let cookie = session_cookie_for(&flow, &user);
    let parts = request_parts(
        "GET",
        "/shop?x=1",
        [
            ("COOKIE", cookie.as_bytes()),
            ("Sec-Fetch-Mode", b"navigate".as_slice()),
            ("X-Other", b"1".as_slice()),
            ("Accept", b"bad\nvalue".as_slice()),
        ],
    )
    .unwrap();
    assert_eq!(parts.headers.len(), 2);
    assert!(matches!(flow.decide(&parts), Decision::Proceed(p) if p.session_user() == Some(&user)));
    let anonymous =
        request_parts("GET", "/shop", [("Sec-Fetch-Mode", b"navigate".as_slice())]).unwrap();
    assert_eq!(respond(flow.decide(&anonymous)).status(), StatusCode::FOUND);
    assert!(request_parts("BAD METHOD", "/", []).is_none());
    assert!(request_parts("GET", "not a uri", []).is_none());
}

#[test]
fn html_is_escaped() {
    let page = html_page(
        StatusCode::OK,
        "<t>",
        "a & \"b\" <script>",
        Some(("/x?a=1&b='2'", "go")),
    );
    let body = String::from_utf8(page.body().to_vec()).unwrap();
    assert!(body.contains("&lt;t&gt;") && body.contains("a &amp; &quot;b&quot; &lt;script&gt;"));
    assert!(body.contains("href=\"/x?a=1&amp;b=&#39;2&#39;\""));
    assert!(!body.contains("<script>"));
}

/// Every request header the login flow (and the session it reads) names in its source must be in
/// [`LOGIN_FLOW_HEADERS`]: an adapter that copies only those (wechat-actix) would otherwise hand
/// the flow a request without it, and decide otherwise than axum (as a cross-site logout did).
#[test]
fn login_flow_headers_lists_every_request_header_the_flow_reads() {
    use super::request::LOGIN_FLOW_HEADERS;
    // The flow's and the session's code, without their tests.
    const SOURCES: [(&str, &str); 11] = [
        ("login/mod.rs", include_str!("mod.rs")),
        ("login/config.rs", include_str!("config.rs")),
        ("login/flow.rs", include_str!("flow.rs")),
        ("login/request.rs", include_str!("request.rs")),
        ("session/mod.rs", include_str!("../session/mod.rs")),
        ("session/cache.rs", include_str!("../session/cache.rs")),
        ("session/cookie.rs", include_str!("../session/cookie.rs")),
        ("session/keys.rs", include_str!("../session/keys.rs")),
        ("session/state.rs", include_str!("../session/state.rs")),
        ("session/user.rs", include_str!("../session/user.rs")),
        ("response.rs", include_str!("../response.rs")),
    ];
    // Headers a browser or proxy sends that the flow could branch on (those that only answers
    // carry, such as Location or Set-Cookie, are not listed).
    const REQUEST_HEADERS: &[&str] = &[
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "authorization",
        "cookie",
        "dnt",
        "forwarded",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "origin",
        "referer",
        "sec-ch-ua",
        "sec-ch-ua-mobile",
        "sec-ch-ua-platform",
        "sec-fetch-dest",
        "sec-fetch-mode",
        "sec-fetch-site",
        "sec-fetch-user",
        "te",
        "upgrade-insecure-requests",
        "user-agent",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-real-ip",
        "x-requested-with",
    ];
    let mut named = Vec::new();
    for (file, source) in SOURCES {
        let code = source
            .split("\n#[cfg(test)]\nmod tests {")
            .next()
            .unwrap_or(source);
        // `header::USER_AGENT` and the like ...
        for piece in code.split("header::").skip(1) {
            let constant: String = piece
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                .collect();
            named.push((file, constant.to_ascii_lowercase().replace('_', "-")));
        }
        // ... and string literals ("user-agent", "User-Agent").
        for (i, literal) in code.split('"').enumerate() {
            if i % 2 == 1 {
                named.push((file, literal.to_ascii_lowercase()));
            }
        }
    }
    let mut missing: Vec<String> = named
        .iter()
        .filter(|(_, name)| REQUEST_HEADERS.contains(&name.as_str()))
        .filter(|(_, name)| !LOGIN_FLOW_HEADERS.contains(&name.as_str()))
        .map(|(file, name)| format!("{name} (in {file})"))
        .collect();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "the login flow reads request headers that LOGIN_FLOW_HEADERS lacks: {missing:?}"
    );
    // The scan sees what it must: the headers the flow does read today.
    for expected in LOGIN_FLOW_HEADERS {
        assert!(
            named.iter().any(|(_, name)| name == expected),
            "{expected} is listed but the scan did not find it in the flow's source"
        );
    }
}
