//! The apps the benchmarks send requests to, as values (nothing listens here): axum and
//! actix-web "hello" apps, bare and behind the login middleware (`WeChatLoginLayer`,
//! `WeChatLoginMiddleware`), so that the two apps of a framework differ only by the middleware;
//! an axum app with the mounted WeChat routes; and the shop behind the payment routes.
//!
//! `pay-ops` times one request through them in-process; the load generator
//! (`tools/loadtest`, package `wechat-loadtest`) serves them on 127.0.0.1.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use wechat_core::login::LoginFlow;
use wechat_core::routes::{
    OrderBackend, OrderDraft, OrderRecord, OrderStatus, Payment, RefundUpdate, ShopError,
    WeChatRoutes,
};
use wechat_core::{OpenId, OutTradeNo};

use crate::fixtures;

/// The body of every hello handler.
pub const HELLO: &str = "hello, world";

/// The axum hello handler.
pub async fn axum_hello() -> &'static str {
    HELLO
}

/// The bare axum hello app: `GET /hello`.
pub fn axum_bare() -> axum::Router {
    axum::Router::new().route("/hello", axum::routing::get(axum_hello))
}

/// The same app behind a tower layer that does nothing (`layer_fn(|service| service)`): what
/// axum's `Router::layer` costs by itself, whatever the layer (it boxes and clones the layered
/// service per request).
pub fn axum_noop_layer() -> axum::Router {
    axum_bare().layer(tower::layer::layer_fn(|service| service))
}

/// The same app behind the login layer.
pub fn axum_layer(flow: LoginFlow) -> axum::Router {
    axum_bare().layer(wechat_tower::WeChatLoginLayer::new(flow))
}

/// The same app inside the login layer: the layer around the whole `Router` (it runs before
/// routing) rather than added with `Router::layer` (which wraps each route).
pub fn axum_wrapped(flow: LoginFlow) -> wechat_tower::WeChatLogin<axum::Router> {
    tower::Layer::layer(&wechat_tower::WeChatLoginLayer::new(flow), axum_bare())
}

/// The hello app with the WeChat routes under `/wechat`, behind the login layer.
pub fn axum_routes(flow: LoginFlow, routes: WeChatRoutes) -> axum::Router {
    axum_bare()
        .nest("/wechat", wechat_tower::router(routes))
        .layer(wechat_tower::WeChatLoginLayer::new(flow))
}

/// The actix-web hello handler.
pub async fn actix_hello() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(HELLO)
}

/// The shop behind the payment routes: one unpaid order, [`fixtures::OUT_TRADE_NO`] of
/// [`fixtures::TOTAL_FEE`] fen; recording a payment is an idempotent no-op (no database), so
/// the notify route measures verification and the route itself.
#[derive(Debug, Default)]
pub struct BenchShop;

impl OrderBackend for BenchShop {
    fn price<'a>(
        &'a self,
        _buyer: &'a OpenId,
        _request: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<OrderDraft, ShopError>> {
        Box::pin(async {
            Ok(OrderDraft::new(
                fixtures::OUT_TRADE_NO,
                "Coffee",
                fixtures::TOTAL_FEE,
            ))
        })
    }

    fn record_created<'a>(
        &'a self,
        _buyer: &'a OpenId,
        _draft: &'a OrderDraft,
        _prepay_id: &'a str,
    ) -> BoxFuture<'a, Result<(), ShopError>> {
        Box::pin(async { Ok(()) })
    }

    fn on_paid<'a>(&'a self, _payment: &'a Payment) -> BoxFuture<'a, Result<(), ShopError>> {
        Box::pin(async { Ok(()) })
    }

    fn on_refund<'a>(&'a self, _refund: &'a RefundUpdate) -> BoxFuture<'a, Result<(), ShopError>> {
        Box::pin(async { Ok(()) })
    }

    fn order<'a>(
        &'a self,
        out_trade_no: &'a OutTradeNo,
    ) -> BoxFuture<'a, Result<Option<OrderRecord>, ShopError>> {
        Box::pin(async move {
            Ok(
                (out_trade_no.as_str() == fixtures::OUT_TRADE_NO).then(|| OrderRecord {
                    out_trade_no: out_trade_no.clone(),
                    owner: OpenId::new(fixtures::OPENID),
                    total_fee: fixtures::TOTAL_FEE,
                    status: OrderStatus::Unpaid,
                }),
            )
        })
    }
}

/// The shop as the routes hold it.
pub fn bench_shop() -> Arc<dyn OrderBackend> {
    Arc::new(BenchShop)
}
