//! The session cookie is the same in both adapters: an actix-web app (this crate's middleware)
//! and an axum app (`wechat-tower`'s layer) configured with the same session keys accept each
//! other's sessions, in both directions; an app with other keys accepts neither.

mod common;

use std::net::{SocketAddr, TcpListener};

use actix_web::{App, HttpResponse, web};
use common::serve;
use http::Method;
use wechat_adapter_tests::{ALICE, Options, bind, log_in_at, login_flow, session_keys, start_sim};
use wechat_core::login::LoginFlow;
use wechat_core::session::SessionKeys;
use wechat_test_support::{Answer, Browser};

async fn actix_me(user: wechat_actix::WeChatUser) -> HttpResponse {
    HttpResponse::Ok().body(format!("actix: hello {}", user.openid))
}

async fn axum_me(user: wechat_tower::WeChatUser) -> String {
    format!("axum: hello {}", user.openid)
}

/// Serves an actix-web app with `GET /me` behind the middleware on `listener`; stopped when the
/// handle is dropped with the test's runtime.
fn serve_actix(listener: TcpListener, flow: LoginFlow) -> actix_web::dev::ServerHandle {
    serve!(listener, move || {
        App::new()
            .wrap(wechat_actix::WeChatLoginMiddleware::new(flow.clone()))
            .route("/me", web::get().to(actix_me))
    })
}

/// Serves an axum app with `GET /me` behind `WeChatLoginLayer` on `listener`, until the test ends.
fn serve_axum(listener: TcpListener, flow: LoginFlow) {
    let app = axum::Router::new()
        .route("/me", axum::routing::get(axum_me))
        .layer(wechat_tower::WeChatLoginLayer::new(flow));
    listener.set_nonblocking(true).expect("non-blocking");
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
}

/// A `fetch()` of `GET {base}/me`.
async fn me(browser: &Browser, base: &str) -> Answer {
    browser
        .fetch(Method::GET, &format!("{base}/me"))
        .send()
        .await
}

#[tokio::test]
async fn actix_and_axum_accept_each_others_sessions() {
    let (actix_listener, actix_addr) = bind();
    let (axum_listener, axum_addr) = bind();
    let (foreign_listener, foreign_addr) = bind();
    let sim = start_sim(&[actix_addr, axum_addr, foreign_addr]).await;
    let (actix, axum, foreign) = (
        format!("http://{actix_addr}"),
        format!("http://{axum_addr}"),
        format!("http://{foreign_addr}"),
    );
    let flow = |base: &str, keys: SessionKeys| login_flow(&sim, base, keys, Options::default());
    let actix_server = serve_actix(actix_listener, flow(&actix, session_keys()));
    serve_axum(axum_listener, flow(&axum, session_keys()));
    let other_keys = SessionKeys::new([9u8; 32]).expect("a 32-byte key");
    serve_axum(foreign_listener, flow(&foreign, other_keys));

    // Logged in on actix: axum accepts the cookie.
    let browser = Browser::wechat();
    log_in_at(&browser, &actix, &sim, "/me").await;
    let on_actix = me(&browser, &actix).await;
    assert_eq!(on_actix.body, format!("actix: hello {ALICE}"));
    let on_axum = me(&browser, &axum).await;
    assert_eq!(on_axum.status, 200, "{on_axum:?}");
    assert_eq!(on_axum.body, format!("axum: hello {ALICE}"));
    // An app with other keys does not.
    let on_foreign = me(&browser, &foreign).await;
    assert_eq!(on_foreign.status, 401, "{on_foreign:?}");

    // Logged in on axum: actix accepts the cookie.
    let browser = Browser::wechat();
    log_in_at(&browser, &axum, &sim, "/me").await;
    let on_axum = me(&browser, &axum).await;
    assert_eq!(on_axum.body, format!("axum: hello {ALICE}"));
    let on_actix = me(&browser, &actix).await;
    assert_eq!(on_actix.status, 200, "{on_actix:?}");
    assert_eq!(on_actix.body, format!("actix: hello {ALICE}"));
    assert_eq!(me(&browser, &foreign).await.status, 401);

    // Logging out on actix ends the session for axum too (the browser drops the cookie).
    let logout = browser
        .submit(&format!("{actix}/wechat/oauth/logout"))
        .send()
        .await;
    assert_eq!(logout.status, 303);
    assert_eq!(me(&browser, &axum).await.status, 401);
    assert_eq!(sim.stats().calls_to("/sns/oauth2/access_token"), 2);
    drop(actix_server.stop(false));
}
