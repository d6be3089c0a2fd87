//! The login middleware and the `WeChatUser` extractor over real HTTP on 127.0.0.1, against
//! wechat-sim: the login itself, and every failure path the adapter translates.

mod common;

use actix_web::{App, HttpResponse, web};
use common::{ALICE, BOB, Browser, bind, flow, flow_with_scope, keys, public_url, start_sim};
use wechat_actix::{WeChatLoginMiddleware, WeChatUser};
use wechat_core::oauth::Scope;

async fn me(user: WeChatUser) -> HttpResponse {
    HttpResponse::Ok().body(format!("hello {}", user.openid))
}

async fn profile(user: WeChatUser) -> HttpResponse {
    let nickname = user.profile.as_ref().map_or("-", |p| p.nickname.as_str());
    HttpResponse::Ok().body(format!("{} {nickname}", user.openid))
}

async fn maybe_me(user: Option<WeChatUser>) -> HttpResponse {
    match user {
        Some(user) => HttpResponse::Ok().body(format!("hello {}", user.openid)),
        None => HttpResponse::Ok().body("hello guest"),
    }
}

/// An app with `/shop` and `/api/me` (protected), `/public/me` and `/public/maybe` (excluded),
/// and `/unwrapped/me` outside the middleware.
macro_rules! app {
    ($flow:expr) => {{
        let flow = $flow;
        move || {
            App::new()
                .service(web::scope("/unwrapped").route("/me", web::get().to(me)))
                .service(
                    web::scope("")
                        .wrap(WeChatLoginMiddleware::new(flow.clone()))
                        .route("/shop", web::get().to(me))
                        .route("/api/me", web::get().to(me))
                        .route("/api/profile", web::get().to(profile))
                        .route("/api/cart", web::post().to(me))
                        .route("/public/me", web::get().to(me))
                        .route("/public/maybe", web::get().to(maybe_me)),
                )
        }
    }};
}

#[tokio::test]
async fn a_browser_logs_in_and_its_session_reaches_the_handlers() {
    let (listener, addr) = bind();
    let sim = start_sim(&[addr]).await;
    let _server = serve!(listener, app!(flow(&sim.base_url(), addr, keys())));
    let base = public_url(addr);
    let browser = Browser::new();

    // A page load without a session goes to WeChat with a signed state and a state cookie.
    let first = browser.open(&format!("{base}/shop?item=42")).await;
    assert_eq!(first.status, 302);
    assert!(
        first.location().contains("scope=snsapi_base&state="),
        "{first:?}"
    );
    let cookies = first.set_cookies();
    assert!(
        cookies[0].starts_with("wechat_session_state=")
            && cookies[0].contains("Path=/wechat/oauth/callback")
            && cookies[0].contains("HttpOnly"),
        "{cookies:?}"
    );
    assert_eq!(first.headers["cache-control"], "no-store");

    // WeChat (the sim) sends the browser back; the callback sets the session and returns.
    let wechat = browser.open(first.location()).await;
    let back = browser.open(wechat.location()).await;
    assert_eq!(back.status, 302, "{back:?}");
    assert_eq!(back.location(), "/shop?item=42");
    let set = back.set_cookies();
    assert!(
        set.iter().any(|c| c.starts_with("wechat_session=")
            && c.ends_with("; Path=/; Max-Age=604800; HttpOnly; SameSite=Lax")),
        "{set:?}"
    );
    let callback_url = format!("{base}/wechat/oauth/callback");
    assert!(
        browser
            .cookie(&callback_url, "wechat_session_state")
            .is_none()
    );

    // The user reaches page loads, fetches and excluded paths alike.
    for answer in [
        browser.open(&format!("{base}/shop?item=42")).await,
        browser.fetch(&format!("{base}/api/me")).await,
        browser.post(&format!("{base}/api/cart"), "{}").await,
        browser.fetch(&format!("{base}/public/me")).await,
        browser.fetch(&format!("{base}/public/maybe")).await,
    ] {
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.body, format!("hello {ALICE}"));
    }
    assert_eq!(sim.stats().calls_to("/sns/oauth2/access_token"), 1);

    // Back onto the used callback URL: straight to the page, nothing exchanged again.
    let again = browser.open(wechat.location()).await;
    assert_eq!((again.status, again.location()), (302, "/shop?item=42"));
    assert_eq!(sim.stats().calls_to("/sns/oauth2/access_token"), 1);

    // The login path with a session goes straight to the return path.
    let login = browser
        .open(&format!("{base}/wechat/oauth/login?r=%2Fapi%2Fme"))
        .await;
    assert_eq!((login.status, login.location()), (302, "/api/me"));

    // Logout removes the session; the next fetch is 401 again.
    let refused = browser
        .open(&format!("{base}/wechat/oauth/logout?r=%2Fbye"))
        .await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(browser.cookie(&base, "wechat_session").is_some());
    let logout = browser
        .submit(&format!("{base}/wechat/oauth/logout?r=%2Fbye"))
        .await;
    assert_eq!((logout.status, logout.location()), (303, "/bye"));
    assert!(browser.cookie(&base, "wechat_session").is_none());
    assert_eq!(browser.fetch(&format!("{base}/api/me")).await.status, 401);
}

#[tokio::test]
async fn requests_without_a_session_get_the_flows_answers() {
    let (listener, addr) = bind();
    let sim = start_sim(&[addr]).await;
    let _server = serve!(listener, app!(flow(&sim.base_url(), addr, keys())));
    let base = public_url(addr);
    let browser = Browser::new();

    // fetch / XHR and non-GET: 401 JSON whose login_url returns to the referring page.
    for answer in [
        browser.fetch(&format!("{base}/api/me")).await,
        browser.post(&format!("{base}/api/cart"), "{}").await,
    ] {
        assert_eq!(answer.status, 401, "{answer:?}");
        assert_eq!(answer.headers["content-type"], "application/json");
        let body = answer.json();
        assert_eq!(body["error"], "login_required");
        assert_eq!(body["login_url"], format!("{base}/wechat/oauth/login"));
        assert!(answer.set_cookies().is_empty());
    }
    let from_page = reqwest::Client::new()
        .get(format!("{base}/api/me"))
        .header("referer", format!("{base}/shop?item=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(from_page.status(), 401);
    let body: serde_json::Value = from_page.json().await.unwrap();
    assert_eq!(
        body["login_url"],
        format!("{base}/wechat/oauth/login?r=%2Fshop%3Fitem%3D1")
    );

    // Excluded paths: the extractor answers the same 401 JSON; Option<WeChatUser> serves guests.
    let excluded = browser.open(&format!("{base}/public/me")).await;
    assert_eq!(excluded.status, 401, "{excluded:?}");
    assert_eq!(excluded.json()["error"], "login_required");
    let guest = browser.open(&format!("{base}/public/maybe")).await;
    assert_eq!((guest.status, guest.body.as_str()), (200, "hello guest"));

    // A forged session cookie counts as none.
    browser.set_cookie(&base, "wechat_session=eyJ2IjoxfQ.AAAA; Path=/");
    assert_eq!(browser.fetch(&format!("{base}/api/me")).await.status, 401);

    // The login path only takes page loads.
    let post_login = browser
        .post(&format!("{base}/wechat/oauth/login"), "")
        .await;
    assert_eq!(post_login.status, 405);
    assert_eq!(post_login.headers["allow"], "GET");
}

#[tokio::test]
async fn the_extractor_without_the_middleware_is_a_500_naming_it() {
    let (listener, addr) = bind();
    let sim = start_sim(&[addr]).await;
    let _server = serve!(listener, app!(flow(&sim.base_url(), addr, keys())));
    let answer = Browser::new()
        .fetch(&format!("{}/unwrapped/me", public_url(addr)))
        .await;
    assert_eq!(answer.status, 500);
    assert!(
        answer.body.contains("wechat_actix::WeChatLoginMiddleware"),
        "{}",
        answer.body
    );
    assert!(answer.body.contains(".wrap("), "{}", answer.body);
}

#[tokio::test]
async fn bad_callbacks_are_refused_without_a_redirect() {
    let (listener, addr) = bind();
    let sim = start_sim(&[addr]).await;
    let _server = serve!(listener, app!(flow(&sim.base_url(), addr, keys())));
    let base = public_url(addr);
    let browser = Browser::new();
    let first = browser.open(&format!("{base}/shop")).await;
    let callback = browser.open(first.location()).await.location().to_owned();

    // Another browser (no state cookie) cannot use this callback.
    let stolen = Browser::new().open(&callback).await;
    assert_eq!(stolen.status, 400, "{stolen:?}");
    assert!(stolen.headers.get("location").is_none());
    assert!(
        stolen.body.contains("Login link not valid"),
        "{}",
        stolen.body
    );

    // A forged state, and a callback without one.
    let forged = browser.open(&callback.replace("state=", "state=x")).await;
    assert_eq!(forged.status, 400, "{forged:?}");
    let no_state = browser
        .open(&format!("{base}/wechat/oauth/callback?code=abc"))
        .await;
    assert_eq!(no_state.status, 400);

    // The callback only answers GET.
    let posted = browser.post(&callback, "").await;
    assert_eq!(posted.status, 405);
    assert_eq!(sim.stats().calls_to("/sns/oauth2/access_token"), 0);

    // The genuine callback still works, once.
    let ok = browser.open(&callback).await;
    assert_eq!((ok.status, ok.location()), (302, "/shop"));
}

#[tokio::test]
async fn a_used_code_restarts_the_login_once() {
    let (listener, addr) = bind();
    let sim = start_sim(&[addr]).await;
    let app_flow = flow(&sim.base_url(), addr, keys());
    let _server = serve!(listener, app!(app_flow.clone()));
    let base = public_url(addr);
    let browser = Browser::new();
    let first = browser.open(&format!("{base}/shop")).await;
    let callback = browser.open(first.location()).await.location().to_owned();
    // The code is used behind the browser's back (a lost first attempt).
    let code = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    app_flow.client().exchange_code(&code).await.unwrap();

    let restarted = browser.open(&callback).await;
    assert_eq!(restarted.status, 302, "{restarted:?}");
    assert!(
        restarted
            .location()
            .starts_with(&format!("{}/connect/oauth2/authorize?", sim.base_url())),
        "{restarted:?}"
    );
    let second = browser.open(restarted.location()).await;
    let done = browser.open(second.location()).await;
    assert_eq!((done.status, done.location()), (302, "/shop"));
    assert_eq!(
        browser.fetch(&format!("{base}/api/me")).await.body,
        format!("hello {ALICE}")
    );
}

#[tokio::test]
async fn wechat_errors_become_pages_with_an_error_id() {
    let (listener, addr) = bind();
    let sim = start_sim(&[addr]).await;
    // The app holds a wrong secret: WeChat refuses the code exchange (40125).
    let config = wechat_core::Config::new(common::APPID, "ffffffffffffffffffffffffffffffff")
        .with_base_urls(wechat_core::BaseUrls::all(&sim.base_url()))
        .with_timeout(std::time::Duration::from_secs(10));
    let client = wechat_core::oauth::OAuthClient::new(
        &config,
        wechat_core::build_http_client(&config).unwrap(),
    );
    let login = wechat_core::login::LoginConfig::builder(&public_url(addr), keys())
        .build()
        .unwrap();
    let _server = serve!(
        listener,
        app!(wechat_core::login::LoginFlow::new(client, login))
    );
    let base = public_url(addr);
    let browser = Browser::new();
    let first = browser.open(&format!("{base}/shop")).await;
    let callback = browser.open(first.location()).await.location().to_owned();
    let failed = browser.open(&callback).await;
    assert_eq!(failed.status, 502, "{failed:?}");
    assert!(failed.headers.get("location").is_none());
    assert_eq!(failed.headers["content-type"], "text/html; charset=utf-8");
    // An error id for the user; WeChat's answer (40125, a wrong secret) stays in the log.
    assert!(!failed.body.contains("40125"), "{}", failed.body);
    assert!(failed.body.contains("Error id "), "{}", failed.body);
    assert!(!failed.body.contains("ffffffffffffffff"), "{}", failed.body);
    assert!(browser.cookie(&base, "wechat_session").is_none());
}

#[tokio::test]
async fn userinfo_consent_gives_the_profile_and_refusal_gets_a_page() {
    let (listener, addr) = bind();
    let sim = start_sim(&[addr]).await;
    let login = flow_with_scope(&sim.base_url(), addr, keys(), Scope::UserInfo);
    let _server = serve!(listener, app!(login));
    let base = public_url(addr);

    let browser = Browser::new();
    let first = browser.open(&format!("{base}/api/profile")).await;
    assert!(
        first.location().contains("scope=snsapi_userinfo"),
        "{first:?}"
    );
    let back = browser.consent(first.location(), BOB, "allow").await;
    let done = browser.open(&back).await;
    assert_eq!(
        (done.status, done.location()),
        (302, "/api/profile"),
        "{done:?}"
    );
    let shown = browser.fetch(&format!("{base}/api/profile")).await;
    assert_eq!(shown.body, format!("{BOB} Bob"));
    assert_eq!(sim.stats().calls_to("/sns/userinfo"), 1);

    // Declining: a page at the callback, no redirect, no session.
    let declined = Browser::new();
    let first = declined.open(&format!("{base}/shop")).await;
    let back = declined.consent(first.location(), ALICE, "deny").await;
    let page = declined.open(&back).await;
    assert_eq!(page.status, 403, "{page:?}");
    assert!(page.headers.get("location").is_none());
    assert!(page.body.contains("You declined"), "{}", page.body);
    assert!(declined.cookie(&base, "wechat_session").is_none());
}

#[tokio::test]
async fn return_paths_off_this_site_become_root() {
    let (listener, addr) = bind();
    let sim = start_sim(&[addr]).await;
    let _server = serve!(listener, app!(flow(&sim.base_url(), addr, keys())));
    let base = public_url(addr);
    for target in wechat_core::testing::HOSTILE_RETURN_PATHS {
        let browser = Browser::new();
        let login =
            url::Url::parse_with_params(&format!("{base}/wechat/oauth/login"), [("r", target)])
                .unwrap();
        let to_wechat = browser.open(login.as_str()).await;
        assert_eq!(to_wechat.status, 302, "{target}");
        let redirect_uri = url::Url::parse(to_wechat.location())
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "redirect_uri")
            .map(|(_, v)| v.into_owned());
        assert_eq!(
            redirect_uri.as_deref(),
            Some(format!("{base}/wechat/oauth/callback").as_str()),
            "{target}"
        );
        let back = browser.open(to_wechat.location()).await;
        let done = browser.open(back.location()).await;
        assert_eq!((done.status, done.location()), (302, "/"), "{target}");
    }
}

#[tokio::test]
async fn logout_refuses_other_sites_and_accepts_this_sites_own_requests() {
    let (listener, addr) = bind();
    let sim = start_sim(&[addr]).await;
    let _server = serve!(listener, app!(flow(&sim.base_url(), addr, keys())));
    let base = public_url(addr);
    let browser = Browser::new();
    browser.log_in(&base, &sim, "/shop").await;
    let logout = format!("{base}/wechat/oauth/logout?r=%2Fbye");
    let evil = "https://evil.example";

    // A form on another site posting to the logout (with Sec-Fetch-Site, or only Origin from a
    // browser without it): a confirmation page, and the session stays.
    for headers in [
        &[("sec-fetch-site", "cross-site"), ("origin", evil)][..],
        &[("sec-fetch-site", "same-site"), ("origin", evil)][..],
        &[("origin", evil)][..],
    ] {
        let refused = browser
            .send_with(reqwest::Method::POST, &logout, headers)
            .await;
        assert_eq!(refused.status, 403, "{headers:?}: {refused:?}");
        assert!(
            refused.body.contains("<form method=\"post\""),
            "{refused:?}"
        );
        assert!(
            browser.cookie(&base, "wechat_session").is_some(),
            "{headers:?}: the session must stay"
        );
    }

    // A same-origin link (GET) on the site's own page logs out.
    let link = browser
        .send_with(
            reqwest::Method::GET,
            &logout,
            &[
                ("sec-fetch-site", "same-origin"),
                ("sec-fetch-mode", "navigate"),
            ],
        )
        .await;
    assert_eq!((link.status, link.location()), (303, "/bye"), "{link:?}");
    assert!(browser.cookie(&base, "wechat_session").is_none());

    // So does a same-origin POST.
    browser.log_in(&base, &sim, "/shop").await;
    let post = browser
        .send_with(
            reqwest::Method::POST,
            &logout,
            &[("sec-fetch-site", "same-origin"), ("origin", &base)],
        )
        .await;
    assert_eq!((post.status, post.location()), (303, "/bye"), "{post:?}");
    assert!(browser.cookie(&base, "wechat_session").is_none());
    assert_eq!(browser.fetch(&format!("{base}/api/me")).await.status, 401);
}
