//! `WeChatLoginLayer`, `WeChatUser` and `router` over real HTTP on 127.0.0.1, against wechat-sim: the
//! adapter suite (`wechat-adapter-tests`, shared with wechat-actix) run against an axum app,
//! and what only axum has: the extractor's rejection on a route the layer does not wrap.

use std::net::{SocketAddr, TcpListener};

use axum::Router;
use axum::routing::{get, post};
use reqwest::Method;
use wechat_adapter_tests::{AdapterApp, Options, PREFIX, World, maybe_text, page_text};
use wechat_test_support::Browser;
use wechat_tower::wechat_core::login::LoginFlow;
use wechat_tower::wechat_core::routes::WeChatRoutes;
use wechat_tower::{WeChatLoginLayer, WeChatUser, router};

async fn page(user: WeChatUser) -> String {
    page_text(&user)
}

async fn maybe(user: Option<WeChatUser>) -> String {
    maybe_text(user.as_deref())
}

/// The suite's app in axum (`Router::layer`), plus `/no-layer/me`, added after the layer and so
/// not wrapped by it. Aborted on drop.
struct TowerApp(tokio::task::JoinHandle<()>);

impl Drop for TowerApp {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl AdapterApp for TowerApp {
    const FRAMEWORK: &'static str = "axum";

    fn serve(listener: TcpListener, flow: LoginFlow, routes: WeChatRoutes) -> Self {
        let app = Router::new()
            .route("/", get(page))
            .route("/shop", get(page))
            .route("/api/me", get(page))
            .route("/api/cart", post(page))
            .route("/health", get(|| async { "ok" }))
            .route("/public/me", get(page))
            .route("/public/maybe", get(maybe))
            .nest(PREFIX, router(routes))
            .layer(WeChatLoginLayer::new(flow))
            .route("/no-layer/me", get(page));
        listener.set_nonblocking(true).expect("non-blocking");
        let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
        Self(tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        }))
    }
}

wechat_adapter_tests::adapter_suite!(TowerApp);

#[tokio::test]
async fn the_extractor_without_the_layer_is_a_500_naming_it() {
    let w = World::<TowerApp>::start(Options::default()).await;
    let browser = Browser::wechat();
    w.log_in(&browser).await;
    let answer = browser
        .request(Method::GET, &w.url("/no-layer/me"))
        .send()
        .await;
    assert_eq!(answer.status, 500);
    assert!(
        answer.body.contains("wechat_tower::WeChatLoginLayer"),
        "{}",
        answer.body
    );
}
