//! `WeChatLoginMiddleware`, `WeChatUser` and `scope` over real HTTP on 127.0.0.1, against
//! wechat-sim: the adapter suite (`wechat-adapter-tests`, shared with wechat-tower) run against
//! an actix-web app, and what only actix-web has: the extractor's rejection outside the
//! middleware, which says where `.wrap(…)` goes.

mod common;

use std::net::TcpListener;

use actix_web::dev::ServerHandle;
use actix_web::{App, web};
use common::serve;
use wechat_actix::{WeChatLoginMiddleware, WeChatUser};
use wechat_adapter_tests::{AdapterApp, Options, PREFIX, World, maybe_text, page_text};
use wechat_core::login::LoginFlow;
use wechat_core::routes::WeChatRoutes;
use wechat_test_support::Browser;

async fn page(user: WeChatUser) -> String {
    page_text(&user)
}

async fn maybe(user: Option<WeChatUser>) -> String {
    maybe_text(user.as_deref())
}

/// The suite's app in actix-web (one worker): the middleware on a scope holding every route,
/// and `/unwrapped/me` beside it, outside the middleware. Stopped on drop.
struct ActixApp(ServerHandle);

impl Drop for ActixApp {
    fn drop(&mut self) {
        // The stop command is sent at once; the returned future only waits for completion.
        drop(self.0.stop(false));
    }
}

impl AdapterApp for ActixApp {
    const FRAMEWORK: &'static str = "actix-web";

    fn serve(listener: TcpListener, flow: LoginFlow, routes: WeChatRoutes) -> Self {
        Self(serve!(listener, move || {
            App::new()
                .service(web::scope("/unwrapped").route("/me", web::get().to(page)))
                .service(
                    web::scope("")
                        .wrap(WeChatLoginMiddleware::new(flow.clone()))
                        .route("/", web::get().to(page))
                        .route("/shop", web::get().to(page))
                        .route("/api/me", web::get().to(page))
                        .route("/api/cart", web::post().to(page))
                        .route("/health", web::get().to(|| async { "ok" }))
                        .route("/public/me", web::get().to(page))
                        .route("/public/maybe", web::get().to(maybe))
                        .service(wechat_actix::scope(PREFIX, routes.clone())),
                )
        }))
    }
}

wechat_adapter_tests::adapter_suite!(ActixApp);

#[tokio::test]
async fn the_extractor_without_the_middleware_is_a_500_saying_where_it_goes() {
    let w = World::<ActixApp>::start(Options::default()).await;
    let unwrapped = Browser::wechat().open(&w.url("/unwrapped/me")).await;
    assert_eq!(unwrapped.status, 500);
    for needed in ["wechat_actix::WeChatLoginMiddleware", ".wrap("] {
        assert!(unwrapped.body.contains(needed), "{}", unwrapped.body);
    }
}
