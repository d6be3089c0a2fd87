//! The scenarios, each generic over the [`AdapterApp`] under test. Each one starts its own
//! [`World`] (own simulator, own app), so they run in parallel.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::{Value, json};
use wechat_core::routes::OrderStatus;
use wechat_core::session::{OAuthState, SessionCookie, SessionUser};
use wechat_core::{AppId, OpenId};
use wechat_test_support::{Answer, Browser, ConsentPage};

use crate::{
    ALICE, APPID, AdapterApp, BOB, Notifications, Options, PRICE, SECRET, WRONG_SECRET, World,
    eventually, query_param,
};

/// `(status, Location)` of an answer, for one comparison.
fn status_and_location(answer: &Answer) -> (u16, Option<&str>) {
    (answer.status.as_u16(), answer.location())
}

/// Whether `browser` holds a session for the app of `w`.
fn has_session<A>(w: &World<A>, browser: &Browser) -> bool {
    browser.cookie(&w.url("/"), "wechat_session").is_some()
}

/// A `fetch()` GET from the app's page.
async fn fetch<A>(w: &World<A>, browser: &Browser, path: &str) -> Answer {
    browser.fetch(Method::GET, &w.url(path)).send().await
}

/// A `fetch()` POST from the app's page, with `body` as JSON (`""`: an empty body).
async fn post<A>(w: &World<A>, browser: &Browser, path: &str, body: &str) -> Answer {
    browser
        .fetch(Method::POST, &w.url(path))
        .json(body)
        .send()
        .await
}

/// A page load of `path` without a session: the 302 to WeChat's authorize page, and its URL.
async fn to_wechat<A>(w: &World<A>, browser: &Browser, path: &str) -> (Answer, String) {
    let first = browser.open(&w.url(path)).await;
    assert_eq!(first.status, 302, "{first:?}");
    let authorize = first.location().expect("a Location").to_owned();
    assert!(
        authorize.starts_with(&w.sim_url("/connect/oauth2/authorize?")),
        "{first:?}"
    );
    (first, authorize)
}

/// Asserts that `page` is the app's answer `status` at the OAuth callback.
fn assert_at_callback<A>(w: &World<A>, page: &Answer, status: u16) {
    assert_eq!(page.status, status, "{}", page.body);
    assert!(
        page.url
            .as_str()
            .starts_with(&w.url("/wechat/oauth/callback?")),
        "{}",
        page.url
    );
}

// ---------------------------------------------------------------------------------------------
// Login.

/// A first page load goes through WeChat and comes back to the page, with its query; the
/// session then serves fetches; a logout link from elsewhere only shows a confirmation, the
/// site's own form logs out.
pub async fn first_visit_logs_in_and_comes_back_to_the_page<A: AdapterApp>() {
    let w = World::<A>::start(Options::default()).await;
    let browser = Browser::wechat();
    let page = browser.navigate(&w.url("/shop?item=42&x=%20y")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.url.as_str(), w.url("/shop?item=42&x=%20y"));
    assert_eq!(page.body, format!("openid={ALICE} nickname="));
    let stats = w.sim.stats();
    assert_eq!(stats.calls_to("/connect/oauth2/authorize"), 1);
    assert_eq!(stats.calls_to("/sns/oauth2/access_token"), 1);
    assert_eq!(
        stats.calls_to("/sns/userinfo"),
        0,
        "snsapi_base has no profile"
    );

    // The session cookie now carries the user: no new login.
    assert!(has_session(&w, &browser));
    let cart = post(&w, &browser, "/api/cart", "").await;
    assert_eq!(cart.status, 200, "{cart:?}");
    assert_eq!(cart.body, format!("openid={ALICE} nickname="));
    assert_eq!(w.sim.stats().calls_to("/connect/oauth2/authorize"), 1);

    // A link to the logout on another site (an old browser's GET, no Sec-Fetch-Site) only
    // shows a confirmation; the session stays.
    let confirm = browser
        .navigate(&w.url("/wechat/oauth/logout?r=%2Fhealth"))
        .await;
    assert_eq!(confirm.status, 403, "{}", confirm.body);
    assert!(
        confirm.body.contains("<form method=\"post\""),
        "{}",
        confirm.body
    );
    assert!(has_session(&w, &browser));
    // The form on the site's own page logs out.
    let out = browser
        .submit(&w.url("/wechat/oauth/logout?r=%2Fhealth"))
        .follow()
        .await;
    assert_eq!(
        (out.url.as_str(), out.status.as_u16()),
        (w.url("/health").as_str(), 200)
    );
    let me = fetch(&w, &browser, "/api/me").await;
    assert_eq!(me.status, 401, "{me:?}");
}

/// The login one hop at a time: the state cookie and the signed state on the way to WeChat,
/// the session cookie's attributes at the callback, the session in every kind of request and
/// on excluded paths, the used callback and the login path with a session, and the logout.
pub async fn login_hops_set_the_cookies_and_the_session_reaches_every_handler<A: AdapterApp>() {
    let w = World::<A>::start(Options::default()).await;
    let browser = Browser::wechat();

    // A page load without a session goes to WeChat with a signed state and a state cookie.
    let (first, authorize) = to_wechat(&w, &browser, "/shop?item=42").await;
    assert!(authorize.contains("scope=snsapi_base&state="), "{first:?}");
    let cookies = first.set_cookies();
    assert!(
        cookies[0].starts_with("wechat_session_state=")
            && cookies[0].contains("Path=/wechat/oauth/callback")
            && cookies[0].contains("HttpOnly"),
        "{cookies:?}"
    );
    assert_eq!(first.headers["cache-control"], "no-store");

    // WeChat (the sim) sends the browser back; the callback sets the session and returns.
    let wechat = browser.open(&authorize).await;
    let callback = wechat.location().expect("a Location").to_owned();
    let back = browser.open(&callback).await;
    assert_eq!(
        status_and_location(&back),
        (302, Some("/shop?item=42")),
        "{back:?}"
    );
    let set = back.set_cookies();
    assert!(
        set.iter().any(|c| c.starts_with("wechat_session=")
            && c.ends_with("; Path=/; Max-Age=604800; HttpOnly; SameSite=Lax")),
        "{set:?}"
    );
    assert!(
        browser
            .cookie(&w.url("/wechat/oauth/callback"), "wechat_session_state")
            .is_none()
    );

    // The user reaches page loads, fetches and excluded paths alike.
    let user = format!("openid={ALICE} nickname=");
    for answer in [
        browser.open(&w.url("/shop?item=42")).await,
        fetch(&w, &browser, "/api/me").await,
        post(&w, &browser, "/api/cart", "{}").await,
        fetch(&w, &browser, "/public/me").await,
    ] {
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.body, user);
    }
    let maybe = fetch(&w, &browser, "/public/maybe").await;
    assert_eq!(
        (maybe.status.as_u16(), maybe.body.as_str()),
        (200, format!("member {ALICE}").as_str())
    );
    assert_eq!(w.sim.stats().calls_to("/sns/oauth2/access_token"), 1);

    // Back onto the used callback URL: straight to the page, nothing exchanged again.
    let again = browser.open(&callback).await;
    assert_eq!(status_and_location(&again), (302, Some("/shop?item=42")));
    assert_eq!(w.sim.stats().calls_to("/sns/oauth2/access_token"), 1);

    // The login path with a session goes straight to the return path.
    let login = browser
        .open(&w.url("/wechat/oauth/login?r=%2Fapi%2Fme"))
        .await;
    assert_eq!(status_and_location(&login), (302, Some("/api/me")));

    // Logout removes the session; the next fetch is 401 again.
    let refused = browser.open(&w.url("/wechat/oauth/logout?r=%2Fbye")).await;
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(has_session(&w, &browser));
    let logout = browser
        .submit(&w.url("/wechat/oauth/logout?r=%2Fbye"))
        .send()
        .await;
    assert_eq!(status_and_location(&logout), (303, Some("/bye")));
    assert!(!has_session(&w, &browser));
    assert_eq!(fetch(&w, &browser, "/api/me").await.status, 401);
}

/// A logout from another site (a form posting to it, with `Sec-Fetch-Site` or only `Origin`)
/// gets a confirmation page and the session stays; a same-origin link or POST logs out.
pub async fn logout_refuses_other_sites_and_accepts_this_sites_own_requests<A: AdapterApp>() {
    let w = World::<A>::start(Options::default()).await;
    let browser = Browser::wechat();
    w.log_in_at(&browser, "/shop").await;
    let logout = w.url("/wechat/oauth/logout?r=%2Fbye");
    let evil = "https://evil.example";
    let send = |method: Method, headers: &[(&str, &str)]| {
        let mut request = browser.request(method, &logout);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send()
    };

    // A form on another site posting to the logout (with Sec-Fetch-Site, or only Origin from a
    // browser without it): a confirmation page, and the session stays.
    for headers in [
        &[("sec-fetch-site", "cross-site"), ("origin", evil)][..],
        &[("sec-fetch-site", "same-site"), ("origin", evil)][..],
        &[("origin", evil)][..],
    ] {
        let refused = send(Method::POST, headers).await;
        assert_eq!(refused.status, 403, "{headers:?}: {refused:?}");
        assert!(
            refused.body.contains("<form method=\"post\""),
            "{refused:?}"
        );
        assert!(
            has_session(&w, &browser),
            "{headers:?}: the session must stay ({evil})"
        );
    }

    // A same-origin link (GET) on the site's own page logs out.
    let link = send(
        Method::GET,
        &[
            ("sec-fetch-site", "same-origin"),
            ("sec-fetch-mode", "navigate"),
        ],
    )
    .await;
    assert_eq!(status_and_location(&link), (303, Some("/bye")), "{link:?}");
    assert!(!has_session(&w, &browser));

    // So does a same-origin POST, with or without Origin.
    let base = w.base.clone();
    for headers in [
        &[("sec-fetch-site", "same-origin")][..],
        &[("sec-fetch-site", "same-origin"), ("origin", base.as_str())][..],
    ] {
        w.log_in(&browser).await;
        let post = send(Method::POST, headers).await;
        assert_eq!(
            status_and_location(&post),
            (303, Some("/bye")),
            "{headers:?}: {post:?}"
        );
        assert!(!has_session(&w, &browser));
    }
    assert_eq!(fetch(&w, &browser, "/api/me").await.status, 401);
}

/// `snsapi_userinfo`: allowing gives the profile (one `sns/userinfo` call), hop by hop and
/// followed; declining gives a page at the callback, no redirect and no session.
pub async fn userinfo_consent_gives_the_profile_and_refusal_gets_a_page<A: AdapterApp>() {
    let w = World::<A>::start(Options {
        userinfo: true,
        ..Options::default()
    })
    .await;
    let bob = format!("openid={BOB} nickname=Bob");

    // Hop by hop.
    let browser = Browser::wechat();
    let (first, authorize) = to_wechat(&w, &browser, "/api/me").await;
    assert!(authorize.contains("scope=snsapi_userinfo"), "{first:?}");
    let page = browser.open(&authorize).await;
    let form = ConsentPage::read(&page).expect("the consent page");
    let back = browser.consent(&form, Some(BOB), "allow").send().await;
    assert_eq!(back.status, 302, "{back:?}");
    let done = browser.open(back.location().expect("a Location")).await;
    assert_eq!(
        status_and_location(&done),
        (302, Some("/api/me")),
        "{done:?}"
    );
    assert_eq!(fetch(&w, &browser, "/api/me").await.body, bob);
    assert_eq!(w.sim.stats().calls_to("/sns/userinfo"), 1);

    // Followed, back at the page with its query.
    let browser = Browser::wechat();
    let page = w.consent(&browser, "/shop?item=1", BOB, "allow").await;
    assert_eq!(
        (page.url.as_str(), page.status.as_u16()),
        (w.url("/shop?item=1").as_str(), 200),
        "{}",
        page.body
    );
    assert_eq!(page.body, bob);

    // Declining consent: a clear page at the callback, no redirect, no session.
    let declined = Browser::wechat();
    let page = w.consent(&declined, "/shop", ALICE, "deny").await;
    assert_at_callback(&w, &page, 403);
    assert!(page.headers.get("location").is_none());
    assert!(page.body.contains("You declined"), "{}", page.body);
    assert!(page.body.contains("Try again"), "{}", page.body);
    assert!(!has_session(&w, &declined));
}

/// A callback whose state is forged, expired, another browser's, missing, or bound to another
/// return path gets 400 and no redirect, and its code is never exchanged; the callback only
/// answers GET; the genuine callback still works in the browser that started it.
pub async fn forged_expired_and_foreign_states_are_refused_without_redirect<A: AdapterApp>() {
    let w = World::<A>::start(Options::default()).await;
    let browser = Browser::wechat();
    // Start a login by hand: page -> WeChat -> the callback URL with a code.
    let (_, authorize) = to_wechat(&w, &browser, "/shop").await;
    let wechat = browser.open(&authorize).await;
    assert_eq!(wechat.status, 302);
    let callback = wechat.location().expect("a Location").to_owned();
    let state = query_param(&callback, "state").expect("a state");
    assert!(
        callback.starts_with(&w.url("/wechat/oauth/callback?r=%2Fshop&")),
        "{callback}"
    );

    let refused = |answer: Answer, why: &str| {
        assert_eq!(answer.status, 400, "{why}: {}", answer.body);
        assert_eq!(answer.location(), None, "{why}");
        assert!(
            answer.body.contains("Login link not valid"),
            "{why}: {}",
            answer.body
        );
    };
    // Forged: the last character of the state's MAC changed; or something before the state.
    let mut forged = state.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'0' { b'1' } else { b'0' };
    let forged_url = callback.replace(&state, std::str::from_utf8(&forged).expect("ASCII"));
    refused(browser.open(&forged_url).await, "forged");
    let prefixed = browser.open(&callback.replace("state=", "state=x")).await;
    assert_eq!(prefixed.status, 400, "{prefixed:?}");
    // Without a state.
    let no_state = browser
        .open(&w.url("/wechat/oauth/callback?code=abc"))
        .await;
    assert_eq!(no_state.status, 400);
    // Another browser (another session) presenting this browser's callback.
    refused(Browser::wechat().open(&callback).await, "other session");
    // The return path altered in the callback URL (it is bound to the state).
    refused(
        browser
            .open(&callback.replace("r=%2Fshop", "r=%2Fadmin"))
            .await,
        "altered return path",
    );
    // Expired: a state issued 700 s ago with a 600 s lifetime, with its nonce in the cookie.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let old = OAuthState::issue(
        &w.keys,
        &AppId::new(APPID),
        "/",
        Duration::from_secs(600),
        false,
        &wechat_core::clock::ManualClock::at(now - 700),
    );
    let expired = Browser::wechat();
    expired.set_cookie(
        &w.url("/wechat/oauth/callback"),
        &format!(
            "wechat_session_state={}; Path=/wechat/oauth/callback",
            old.nonce()
        ),
    );
    let expired_url = w.url(&format!(
        "/wechat/oauth/callback?code=x&state={}",
        old.as_str()
    ));
    refused(expired.open(&expired_url).await, "expired");
    // The callback only answers GET.
    let posted = browser.fetch(Method::POST, &callback).json("").send().await;
    assert_eq!(posted.status, 405);
    assert_eq!(w.sim.stats().calls_to("/sns/oauth2/access_token"), 0);

    // The genuine callback still works in the browser that started it.
    let ok = browser.open(&callback).await;
    assert_eq!(status_and_location(&ok), (302, Some("/shop")));
}

/// A return path off this site (absolute, protocol-relative, …) in the login link becomes `/`:
/// the callback WeChat is sent to carries none, and the login ends at the root.
pub async fn return_paths_off_this_site_become_root<A: AdapterApp>() {
    let w = World::<A>::start(Options::default()).await;
    for target in wechat_core::testing::HOSTILE_RETURN_PATHS {
        let browser = Browser::wechat();
        let login =
            reqwest::Url::parse_with_params(&w.url("/wechat/oauth/login"), &[("r", target)])
                .expect("a URL");
        let to_wechat = browser.open(login.as_str()).await;
        assert_eq!(to_wechat.status, 302, "{target}");
        let authorize = to_wechat.location().expect("a Location").to_owned();
        assert_eq!(
            query_param(&authorize, "redirect_uri"),
            Some(w.url("/wechat/oauth/callback")),
            "{target}"
        );
        let back = browser.open(&authorize).await;
        let done = browser.open(back.location().expect("a Location")).await;
        assert_eq!(status_and_location(&done), (302, Some("/")), "{target}");
        // The same link followed, now with the session: the root page.
        let page = browser.navigate(login.as_str()).await;
        assert_shows(&page, &w.url("/"), ALICE);
    }
}

/// Starts a login by hand and returns the callback URL with a fresh code.
async fn callback_with_code<A>(w: &World<A>, browser: &Browser, start: &str) -> String {
    let (_, authorize) = to_wechat(w, browser, start).await;
    let wechat = browser.open(&authorize).await;
    assert_eq!(wechat.status, 302, "{}", wechat.body);
    wechat.location().expect("a Location").to_owned()
}

/// Starts a login by hand and returns the callback URL with a code that was used already
/// (exchanged at the simulator as another party would).
async fn used_callback<A>(w: &World<A>, browser: &Browser, start: &str) -> String {
    let callback = callback_with_code(w, browser, start).await;
    w.burn_code(&query_param(&callback, "code").expect("a code"))
        .await;
    callback
}

/// Asserts that `page` is the app's page at `url` (200) showing `who`.
fn assert_shows(page: &Answer, url: &str, who: &str) {
    assert_eq!(
        (page.url.as_str(), page.status.as_u16()),
        (url, 200),
        "{}",
        page.body
    );
    assert!(page.body.contains(who), "{}", page.body);
}

/// A code used already (the callback loaded twice, a lost first attempt) restarts the login
/// once, and the user still arrives at the page; when the restarted login's code is refused
/// too, a page, not a loop.
pub async fn a_used_code_restarts_the_login_once<A: AdapterApp>() {
    let w = World::<A>::start(Options::default()).await;
    let browser = Browser::wechat();
    let callback = used_callback(&w, &browser, "/shop").await;
    let page = browser.navigate(&callback).await;
    assert_shows(&page, &w.url("/shop"), ALICE);
    assert_eq!(w.sim.stats().calls_to("/connect/oauth2/authorize"), 2);

    // Hop by hop: back to WeChat, then to the page.
    let browser = Browser::wechat();
    let callback = used_callback(&w, &browser, "/shop").await;
    let restarted = browser.open(&callback).await;
    assert_eq!(restarted.status, 302, "{restarted:?}");
    let authorize = restarted.location().expect("a Location").to_owned();
    assert!(
        authorize.starts_with(&w.sim_url("/connect/oauth2/authorize?")),
        "{restarted:?}"
    );
    let second = browser.open(&authorize).await;
    let done = browser.open(second.location().expect("a Location")).await;
    assert_eq!(status_and_location(&done), (302, Some("/shop")));
    assert_eq!(
        fetch(&w, &browser, "/api/me").await.body,
        format!("openid={ALICE} nickname=")
    );

    // Only once: when the restarted login's code is refused too, a page, not a loop.
    let browser = Browser::wechat();
    let callback = used_callback(&w, &browser, "/shop").await;
    let restarted = browser.open(&callback).await;
    assert_eq!(restarted.status, 302);
    let retry = browser
        .open(restarted.location().expect("a Location"))
        .await;
    let retry_callback = retry.location().expect("a Location").to_owned();
    w.burn_code(&query_param(&retry_callback, "code").expect("a code"))
        .await;
    let page = browser.open(&retry_callback).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert_eq!(page.location(), None);
    assert!(
        page.body.contains("refused the login code again"),
        "{}",
        page.body
    );
    assert!(page.body.contains("40163"), "{}", page.body);
}

/// WeChat refusing the code exchange (a busy quota, a wrong AppSecret) gives a 502 page at the
/// callback with an error id, and none of WeChat's answer or the secret; no session.
pub async fn wechat_errors_on_the_code_exchange_give_502_with_an_error_id<A: AdapterApp>() {
    let w = World::<A>::start(Options::default()).await;
    w.sim_fail(
        "/sns/oauth2/access_token",
        45011,
        "api minute-quota reach limit mustslower retry next minute",
        1,
    )
    .await;
    let browser = Browser::wechat();
    let page = browser.navigate(&w.url("/shop")).await;
    assert_at_callback(&w, &page, 502);
    // WeChat's answer goes to the log; the user sees an error id.
    assert!(!page.body.contains("45011"), "{}", page.body);
    assert!(
        !page.body.contains("api minute-quota reach limit"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Error id "), "{}", page.body);
    assert!(!page.body.contains(SECRET), "{}", page.body);
    assert!(!has_session(&w, &browser));

    // The app holds a wrong secret: WeChat refuses every code exchange (40125).
    let w = World::<A>::start(Options {
        wrong_secret: true,
        ..Options::default()
    })
    .await;
    let browser = Browser::wechat();
    let callback = callback_with_code(&w, &browser, "/shop").await;
    let failed = browser.open(&callback).await;
    assert_eq!(failed.status, 502, "{failed:?}");
    assert_eq!(failed.location(), None);
    assert_eq!(failed.headers["content-type"], "text/html; charset=utf-8");
    // An error id for the user; WeChat's answer (40125, a wrong secret) stays in the log.
    assert!(!failed.body.contains("40125"), "{}", failed.body);
    assert!(failed.body.contains("Error id "), "{}", failed.body);
    assert!(
        !failed.body.contains(&WRONG_SECRET[..16]),
        "{}",
        failed.body
    );
    assert!(!has_session(&w, &browser));
}

/// Excluded paths need no login (and see the user once there is one); a request that is not a
/// page load gets 401 JSON whose `login_url` returns to the referring page, never a redirect;
/// a forged session counts as none; the login path takes page loads only.
pub async fn excluded_paths_pass_and_requests_not_page_loads_get_401_json<A: AdapterApp>() {
    let w = World::<A>::start(Options::default()).await;
    let browser = Browser::wechat();
    // Excluded paths: no login.
    let health = browser.navigate(&w.url("/health")).await;
    assert_eq!(
        (
            health.url.as_str(),
            health.status.as_u16(),
            health.body.as_str()
        ),
        (w.url("/health").as_str(), 200, "ok")
    );
    let guest = browser.navigate(&w.url("/public/maybe")).await;
    assert_eq!((guest.status.as_u16(), guest.body.as_str()), (200, "guest"));
    // WeChatUser on an excluded path without a session: the flow's 401 JSON, page load or not.
    let me = fetch(&w, &browser, "/public/me").await;
    assert_eq!(me.status, 401, "{me:?}");
    assert_eq!(me.json()["error"], "login_required");
    let me = browser.navigate(&w.url("/public/me")).await;
    assert_eq!(me.status, 401, "an excluded path is never redirected");
    assert_eq!(me.json()["error"], "login_required");

    // Not page loads: fetch and POST.
    for answer in [
        fetch(&w, &browser, "/api/me").await,
        post(&w, &browser, "/api/cart", "{}").await,
    ] {
        assert_eq!(answer.status, 401, "{answer:?}");
        assert_eq!(answer.headers["content-type"], "application/json");
        let body = answer.json();
        assert_eq!(body["error"], "login_required");
        assert_eq!(body["login_url"], w.url("/wechat/oauth/login"));
        assert!(answer.set_cookies().is_empty());
    }
    // From a page (Referer): the login URL returns to it. A JSON Accept, or no Accept of a
    // browser's at all.
    for accept in [Some("application/json"), None] {
        let mut request = browser
            .request(Method::GET, &w.url("/api/me"))
            .header("referer", &w.url("/shop?item=1"));
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        let answer = request.send().await;
        assert_eq!(answer.status, 401, "{accept:?}");
        assert_eq!(answer.headers["content-type"], "application/json");
        assert_eq!(
            answer.json()["login_url"],
            w.url("/wechat/oauth/login?r=%2Fshop%3Fitem%3D1")
        );
    }
    // A page's Accept but Sec-Fetch-Mode cors: not a page load.
    let cors = browser
        .page(&w.url("/api/me"))
        .header("sec-fetch-mode", "cors")
        .send()
        .await;
    assert_eq!(cors.status, 401);
    assert_eq!(w.sim.stats().calls_to("/connect/oauth2/authorize"), 0);

    // A forged session cookie counts as none.
    let forged = Browser::wechat();
    forged.set_cookie(&w.base, "wechat_session=eyJ2IjoxfQ.AAAA; Path=/");
    assert_eq!(fetch(&w, &forged, "/api/me").await.status, 401);

    // The login path only takes page loads.
    let post_login = post(&w, &browser, "/wechat/oauth/login", "").await;
    assert_eq!(post_login.status, 405);
    assert_eq!(post_login.headers["allow"], "GET");

    // After login, excluded paths see the user too.
    w.log_in(&browser).await;
    let member = browser.navigate(&w.url("/public/maybe")).await;
    assert_eq!(
        (member.status.as_u16(), member.body.clone()),
        (200, format!("member {ALICE}"))
    );
}

// ---------------------------------------------------------------------------------------------
// JS-SDK.

fn jssdk_url<A>(w: &World<A>, page: &str) -> String {
    reqwest::Url::parse_with_params(&w.url("/wechat/jssdk/config"), &[("url", page)])
        .expect("a URL")
        .to_string()
}

/// The `wx.config` of a page of this site (its fragment dropped) passes the simulator's check
/// as the WeChat client does it, and not for another page; pages of other sites, URLs that are
/// not absolute and a missing URL get 400.
pub async fn jssdk_config_is_accepted_by_the_simulator_and_foreign_pages_get_400<A: AdapterApp>() {
    let w = World::<A>::start(Options::default()).await;
    let browser = Browser::wechat();
    w.log_in(&browser).await;
    let page = w.url("/shop?item=1&from=singlemessage");
    for fragment in ["#/cart", "#top"] {
        let answer = browser
            .fetch(Method::GET, &jssdk_url(&w, &format!("{page}{fragment}")))
            .send()
            .await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let config = answer.json();
        assert_eq!(config["appId"], APPID);
        assert_eq!(config["debug"], false);
        assert_eq!(config["jsApiList"], json!(["chooseWXPay"]));
        let verify = |url: &str| {
            json!({
                "appId": config["appId"],
                "timestamp": config["timestamp"],
                "nonceStr": config["nonceStr"],
                "signature": config["signature"],
                "url": url,
            })
        };
        let answer = w.sim_post("/_sim/jssdk/verify", &verify(&page)).await;
        assert_eq!(answer, json!({"ok": true}));
        // The check can fail: the same signature for another page is refused.
        let answer = w
            .sim_post("/_sim/jssdk/verify", &verify(&w.url("/other")))
            .await;
        assert_eq!(answer["errMsg"], "config:invalid signature");
    }

    for (url, expected) in [
        (
            jssdk_url(&w, "https://evil.example/shop"),
            "not a configured JS-SDK domain",
        ),
        (jssdk_url(&w, "not a url"), "absolute URL"),
        (w.url("/wechat/jssdk/config"), "missing url"),
    ] {
        let answer = browser.fetch(Method::GET, &url).send().await;
        assert_eq!(answer.status, 400, "{url}: {answer:?}");
        let body = answer.json();
        assert!(
            body["error"].as_str().expect("an error").contains(expected),
            "{body}"
        );
    }
}

/// WeChat refusing the token (40164, the server's IP not whitelisted) gives 502 with an error
/// id that the server's log carries; nothing about the server reaches the browser.
pub async fn jssdk_config_reports_wechat_errors_as_502_with_an_error_id<A: AdapterApp>() {
    let w = World::<A>::start(Options::default()).await;
    let browser = Browser::wechat();
    w.log_in(&browser).await;
    w.sim_fail(
        "/cgi-bin/stable_token",
        40164,
        "invalid ip 203.0.113.9 ipv6 ::ffff:203.0.113.9, not in whitelist",
        5,
    )
    .await;
    let answer = browser
        .fetch(Method::GET, &jssdk_url(&w, &w.url("/shop")))
        .send()
        .await;
    assert_eq!(answer.status, 502, "{answer:?}");
    let body = answer.json();
    let error = body["error"].as_str().expect("an error");
    assert!(!error.contains("203.0.113.9"), "{error}");
    let id = body["error_id"].as_str().expect("an error id");
    assert!(
        id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()) && error.contains(id),
        "{body}"
    );
}

// ---------------------------------------------------------------------------------------------
// WeChat Pay.

/// Creates an order as the browser's user with `body` (`""`: empty): (out_trade_no, params).
async fn order<A>(w: &World<A>, browser: &Browser, body: &str) -> (String, Value) {
    let created = post(w, browser, "/wechat/pay/orders", body).await;
    assert_eq!(created.status, 200, "{created:?}");
    let created = created.json();
    (
        created["out_trade_no"]
            .as_str()
            .expect("an order number")
            .to_owned(),
        created["params"].clone(),
    )
}

async fn status_of<A>(w: &World<A>, browser: &Browser, out_trade_no: &str) -> (u16, Value) {
    let answer = fetch(w, browser, &format!("/wechat/pay/orders/{out_trade_no}")).await;
    (answer.status.as_u16(), answer.json_or_null())
}

/// An order, the pay sheet's check and confirm, the notification (excluded from the login),
/// and the status turns `paid`; the amount never comes from the browser; bad bodies are
/// refused.
pub async fn order_confirm_notification_paid<A: AdapterApp>() {
    let w = World::<A>::start(Options::default()).await;
    let browser = Browser::wechat();
    w.log_in(&browser).await;
    let (no, params) = order(&w, &browser, "{}").await;
    assert_eq!(params["appId"], APPID);
    assert!(
        params["package"]
            .as_str()
            .expect("a package")
            .starts_with("prepay_id=")
    );
    let check = w.sim_post("/_sim/pay/check", &params).await;
    assert_eq!(check["ok"], true, "{check}");
    assert_eq!(check["total_fee"], PRICE);
    let (status, body) = status_of(&w, &browser, &no).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"out_trade_no": no, "status": "unpaid", "total_fee": PRICE})
    );

    // The user confirms the pay sheet; WeChat notifies /wechat/pay/notify (excluded from login).
    let confirmed = w.sim_post("/_sim/pay/confirm", &params).await;
    assert_eq!(confirmed["err_msg"], "get_brand_wcpay_request:ok");
    eventually("the notification", || {
        w.shop.status(&no) == Some(OrderStatus::Paid)
            && w.sim.stats().notifications.acknowledged == 1
    })
    .await;
    let (status, body) = status_of(&w, &browser, &no).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"out_trade_no": no, "status": "paid", "total_fee": PRICE})
    );

    // An empty body is a `{}` order too; a product the shop does not price is refused; the
    // amount never comes from the browser.
    let (second, _) = order(&w, &browser, "").await;
    assert_ne!(second, no);
    let tea = post(
        &w,
        &browser,
        "/wechat/pay/orders",
        r#"{"product":"tea","total_fee":0}"#,
    )
    .await;
    assert_eq!(
        (tea.status.as_u16(), tea.json()),
        (400, json!({"error": "unknown product"}))
    );
    let not_json = post(&w, &browser, "/wechat/pay/orders", "{not json").await;
    assert_eq!(not_json.status, 400, "{not_json:?}");
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(70 * 1024));
    let too_large = post(&w, &browser, "/wechat/pay/orders", &huge).await;
    assert_eq!(too_large.status, 413);
}

/// The notification is lost (its receiver answers FAIL): the status route asks WeChat, records
/// the payment and says `paid`.
pub async fn order_status_asks_wechat_when_the_notification_is_lost<A: AdapterApp>() {
    let w = World::<A>::start(Options {
        notifications: Notifications::Refused,
        ..Options::default()
    })
    .await;
    let browser = Browser::wechat();
    w.log_in(&browser).await;
    let (no, params) = order(&w, &browser, "{}").await;
    let confirmed = w.sim_post("/_sim/pay/confirm", &params).await;
    assert_eq!(confirmed["err_msg"], "get_brand_wcpay_request:ok");
    eventually("the refused notification", || {
        w.refused_notifications.load(Ordering::SeqCst) >= 1
    })
    .await;
    assert_eq!(w.shop.status(&no), Some(OrderStatus::Unpaid));
    assert_eq!(w.shop.payment_count(), 0);

    let (status, body) = status_of(&w, &browser, &no).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"out_trade_no": no, "status": "paid", "total_fee": PRICE})
    );
    assert_eq!(w.shop.status(&no), Some(OrderStatus::Paid));
    assert!(w.sim.stats().calls_to("/pay/orderquery") >= 1);
    assert_eq!(w.sim.stats().notifications.acknowledged, 0);
}

/// Another user gets the same 404 as for an order that does not exist; without a session, 401;
/// the owner sees it.
pub async fn another_user_cannot_read_the_order<A: AdapterApp>() {
    let w = World::<A>::start(Options {
        userinfo: true,
        ..Options::default()
    })
    .await;
    let alice = Browser::wechat();
    let page = w.consent(&alice, "/", ALICE, "allow").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let (no, _) = order(&w, &alice, "{}").await;

    let bob = Browser::wechat();
    let page = w.consent(&bob, "/", BOB, "allow").await;
    assert_eq!(
        (page.status.as_u16(), page.body.clone()),
        (200, format!("openid={BOB} nickname=Bob"))
    );
    let (status, body) = status_of(&w, &bob, &no).await;
    assert_eq!((status, body), (404, json!({"error": "order not found"})));
    // The same answer as for an order that does not exist.
    let (status, body) = status_of(&w, &bob, "T9999").await;
    assert_eq!((status, body), (404, json!({"error": "order not found"})));
    // Without a session: 401.
    let (status, _) = status_of(&w, &Browser::wechat(), &no).await;
    assert_eq!(status, 401);
    // The owner sees it.
    let (status, body) = status_of(&w, &alice, &no).await;
    assert_eq!((status, body["status"].clone()), (200, json!("unpaid")));
}

/// The whole purchase through the mounted routes: 401 without a session; the backend prices
/// (an unknown product, a body that is not JSON, a body over the limit are refused); the order
/// is paid on the pay sheet and notified; its status reads `paid` for its owner only, without
/// asking WeChat again.
pub async fn an_order_is_paid_notified_and_shown_to_its_owner_only<A: AdapterApp>() {
    let w = World::<A>::start(Options::default()).await;
    let orders = "/wechat/pay/orders";

    // Without a session: 401 JSON from the middleware.
    let anonymous = Browser::wechat();
    let refused = post(&w, &anonymous, orders, r#"{"product":"coffee"}"#).await;
    assert_eq!(refused.status, 401);

    let browser = Browser::wechat();
    w.log_in_at(&browser, "/").await;
    // The backend prices; the browser cannot.
    let unknown = post(&w, &browser, orders, r#"{"product":"car"}"#).await;
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.json()["error"]
            .as_str()
            .expect("an error")
            .starts_with("unknown product")
    );
    let not_json = post(&w, &browser, orders, "{").await;
    assert_eq!(not_json.status, 400);
    let too_large = post(
        &w,
        &browser,
        orders,
        &format!("\"{}\"", "x".repeat(70 * 1024)),
    )
    .await;
    assert_eq!(too_large.status, 413, "{too_large:?}");

    let created = post(&w, &browser, orders, r#"{"product":"coffee"}"#).await;
    assert_eq!(created.status, 200, "{created:?}");
    let created = created.json();
    let out_trade_no = created["out_trade_no"]
        .as_str()
        .expect("an order number")
        .to_owned();
    assert_eq!(created["params"]["appId"], APPID);
    let status_path = format!("{orders}/{out_trade_no}");
    let unpaid = fetch(&w, &browser, &status_path).await;
    assert_eq!(unpaid.status, 200);
    assert_eq!(unpaid.json()["status"], "unpaid");
    assert_eq!(unpaid.json()["total_fee"], 1);

    // Pay in the simulator's pay sheet: it then posts the notification to /wechat/pay/notify.
    let paid = w.sim_post("/_sim/pay/confirm", &created["params"]).await;
    assert_eq!(paid["err_msg"], "get_brand_wcpay_request:ok", "{paid}");
    // Paid in the shop, and answered SUCCESS to the simulator.
    eventually("the notification", || {
        w.shop.status(&out_trade_no) == Some(OrderStatus::Paid)
            && w.sim.stats().notifications.acknowledged > 0
    })
    .await;
    let shown = fetch(&w, &browser, &status_path).await.json();
    assert_eq!(shown["status"], "paid");
    assert_eq!(shown["out_trade_no"], out_trade_no.as_str());

    // Another user, and an unknown order, get the same 404.
    let stranger = Browser::wechat();
    let value = SessionCookie::builder(w.keys.clone())
        .app_id(AppId::new(APPID))
        .build()
        .expect("a session cookie")
        .encode(&SessionUser::new(
            OpenId::new("oSomeoneElse000000000000000"),
            u64::MAX / 2,
        ))
        .expect("an encoded session");
    stranger.set_cookie(&w.base, &format!("wechat_session={value}; Path=/"));
    assert_eq!(fetch(&w, &stranger, &status_path).await.status, 404);
    assert_eq!(
        fetch(&w, &browser, &format!("{orders}/NOPE")).await.status,
        404
    );
    assert_eq!(w.shop.status(&out_trade_no), Some(OrderStatus::Paid));
    assert_eq!(w.shop.payment_count(), 1);
    assert_eq!(shown["total_fee"], 1);
    // Only the unpaid status was checked with WeChat; the paid one came from the notification.
    assert_eq!(w.sim.stats().calls_to("/pay/orderquery"), 1, "{ALICE}");
}

/// The notification routes pass the login (no session: WeChat's server has none) and refuse
/// a notification that is not signed.
pub async fn notifications_pass_the_login_and_forgeries_are_refused<A: AdapterApp>() {
    let w = World::<A>::start(Options::default()).await;
    // WeChat Pay's server, not a browser.
    let http = reqwest::Client::new();
    for path in ["pay/notify", "pay/refund-notify"] {
        let answer = http
            .post(w.url(&format!("/wechat/{path}")))
            .header("content-type", "text/xml")
            .body("<xml><return_code>SUCCESS</return_code></xml>")
            .timeout(crate::WAIT)
            .send()
            .await
            .expect("the app answers");
        let text = answer.text().await.expect("a body");
        assert!(
            text.contains("<return_code><![CDATA[FAIL]]></return_code>"),
            "{path}: {text}"
        );
    }
}
