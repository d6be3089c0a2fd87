//! The session cookie is the same in both adapters: an actix-web app (this crate's middleware)
//! and an axum app (`wechat-tower`'s layer) configured with the same session keys accept each
//! other's sessions, in both directions; an app with other keys accepts neither.

mod common;

use std::net::{SocketAddr, TcpListener};

use actix_web::{App, HttpResponse, web};
use common::{ALICE, Browser, bind, flow, keys, public_url, start_sim};
use wechat_core::login::LoginFlow;
use wechat_core::session::SessionKeys;

async fn actix_me(user: wechat_actix::WeChatUser) -> HttpResponse {
    HttpResponse::Ok().body(format!("actix: hello {}", user.openid))
}

async fn axum_me(user: wechat_tower::WeChatUser) -> String {
    format!("axum: hello {}", user.openid)
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

#[tokio::test]
async fn actix_and_axum_accept_each_others_sessions() {
    let (actix_listener, actix_addr) = bind();
    let (axum_listener, axum_addr) = bind();
    let (foreign_listener, foreign_addr) = bind();
    let sim = start_sim(&[actix_addr, axum_addr, foreign_addr]).await;
    let actix_flow = flow(&sim.base_url(), actix_addr, keys());
    let _actix = serve!(actix_listener, move || {
        App::new()
            .wrap(wechat_actix::WeChatLoginMiddleware::new(actix_flow.clone()))
            .route("/me", web::get().to(actix_me))
    });
    serve_axum(axum_listener, flow(&sim.base_url(), axum_addr, keys()));
    let other_keys = SessionKeys::new([9u8; 32]).expect("a 32-byte key");
    serve_axum(
        foreign_listener,
        flow(&sim.base_url(), foreign_addr, other_keys),
    );
    let (actix, axum, foreign) = (
        public_url(actix_addr),
        public_url(axum_addr),
        public_url(foreign_addr),
    );

    // Logged in on actix: axum accepts the cookie.
    let browser = Browser::new();
    browser.log_in(&actix, &sim, "/me").await;
    let on_actix = browser.fetch(&format!("{actix}/me")).await;
    assert_eq!(on_actix.body, format!("actix: hello {ALICE}"));
    let on_axum = browser.fetch(&format!("{axum}/me")).await;
    assert_eq!(on_axum.status, 200, "{on_axum:?}");
    assert_eq!(on_axum.body, format!("axum: hello {ALICE}"));
    // An app with other keys does not.
    let on_foreign = browser.fetch(&format!("{foreign}/me")).await;
    assert_eq!(on_foreign.status, 401, "{on_foreign:?}");

    // Logged in on axum: actix accepts the cookie.
    let browser = Browser::new();
    browser.log_in(&axum, &sim, "/me").await;
    let on_axum = browser.fetch(&format!("{axum}/me")).await;
    assert_eq!(on_axum.body, format!("axum: hello {ALICE}"));
    let on_actix = browser.fetch(&format!("{actix}/me")).await;
    assert_eq!(on_actix.status, 200, "{on_actix:?}");
    assert_eq!(on_actix.body, format!("actix: hello {ALICE}"));
    assert_eq!(browser.fetch(&format!("{foreign}/me")).await.status, 401);

    // Logging out on actix ends the session for axum too (the browser drops the cookie).
    let logout = browser
        .submit(&format!("{actix}/wechat/oauth/logout"))
        .await;
    assert_eq!(logout.status, 303);
    assert_eq!(browser.fetch(&format!("{axum}/me")).await.status, 401);
    assert_eq!(sim.stats().calls_to("/sns/oauth2/access_token"), 2);
}
