//! The mountable JS-SDK and payment routes: [`configure`] and [`scope`].
//!
//! Every answer is `wechat_core::routes::WeChatRoutes`'s; this module extracts what it needs (query,
//! body, session user, client IP) and sends the response.

use std::net::IpAddr;

use actix_web::error::PayloadError;
use actix_web::web::{self, Payload, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse, Scope};
use bytes::BytesMut;
use futures_util::StreamExt;
use http::StatusCode;
use wechat_core::adapter::json_error_response;
use wechat_core::routes::{
    JSSDK_CONFIG_PATH, PAY_NOTIFY_PATH, PAY_ORDER_STATUS_PATH, PAY_ORDERS_PATH, REFUND_NOTIFY_PATH,
    WeChatRoutes,
};

use crate::WeChatUser;
use crate::convert::{headers_of, to_actix};

/// Registers the routes of `routes` relative to where it is applied, for `App::configure` or
/// `Scope::configure`:
///
/// | route | answer |
/// | --- | --- |
/// | `GET /jssdk/config?url=<page url>` | the `wx.config` object ([`WeChatRoutes::jssdk_config`]) |
/// | `POST /pay/orders` | a new order for the [`WeChatUser`] ([`WeChatRoutes::create_order`]) |
/// | `POST /pay/notify` | WeChat's payment notification ([`WeChatRoutes::payment_notify`]) |
/// | `POST /pay/refund-notify` | WeChat's refund notification ([`WeChatRoutes::refund_notify`]) |
/// | `GET /pay/orders/{out_trade_no}` | the status, for the order's owner ([`WeChatRoutes::order_status`]) |
///
/// The handlers are functions over `web::Data<WeChatRoutes>`, which `configure` registers where
/// it is applied (so mount each `WeChatRoutes` in its own scope). The `/pay/…` routes are
/// registered only when [`WeChatRoutes::pay`] is configured. The two
/// notification routes are posted by WeChat's servers without a session: exclude them from
/// login (`LoginConfigBuilder::exclude_notifications(prefix)`); the order routes need
/// [`WeChatLoginMiddleware`](crate::WeChatLoginMiddleware) around them.
///
/// ```
/// use actix_web::{App, web};
/// # fn app(routes: wechat_core::routes::WeChatRoutes) {
/// let app = App::new().service(web::scope("/wechat").configure(wechat_actix::configure(routes)));
/// # let _ = app;
/// # }
/// ```
pub fn configure(routes: WeChatRoutes) -> impl FnOnce(&mut ServiceConfig) {
    move |cfg| {
        let with_pay = routes.pay().is_some();
        cfg.app_data(web::Data::new(routes))
            .route(JSSDK_CONFIG_PATH, web::get().to(jssdk_config));
        if with_pay {
            cfg.route(PAY_ORDERS_PATH, web::post().to(create_order))
                .route(PAY_ORDER_STATUS_PATH, web::get().to(order_status))
                .route(PAY_NOTIFY_PATH, web::post().to(payment_notify))
                .route(REFUND_NOTIFY_PATH, web::post().to(refund_notify));
        }
    }
}

async fn jssdk_config(routes: web::Data<WeChatRoutes>, req: HttpRequest) -> HttpResponse {
    to_actix(&routes.jssdk_config(req.uri().query()).await)
}

async fn create_order(
    routes: web::Data<WeChatRoutes>,
    req: HttpRequest,
    user: WeChatUser,
    payload: Payload,
) -> HttpResponse {
    let Some(ip) = client_ip(&routes, &req) else {
        tracing::error!("POST pay/orders: the client IP is unknown");
        return to_actix(&json_error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the client IP (spbill_create_ip) is unknown: the connection has no peer address; \
             behind a reverse proxy, enable WeChatRoutesBuilder::trust_proxy",
        ));
    };
    match read_body(payload).await {
        Ok(body) => to_actix(
            &routes
                .create_order(&user, ip, &headers_of(&req), &body)
                .await,
        ),
        Err(e) => unreadable_body(&e),
    }
}

async fn order_status(
    routes: web::Data<WeChatRoutes>,
    req: HttpRequest,
    user: WeChatUser,
) -> HttpResponse {
    let out_trade_no = req.match_info().get("out_trade_no").unwrap_or_default();
    to_actix(&routes.order_status(&user.openid, out_trade_no).await)
}

/// WeChat Pay's notifications: the headers (v3 signs with `Wechatpay-*`) and the raw body.
async fn payment_notify(
    routes: web::Data<WeChatRoutes>,
    req: HttpRequest,
    payload: Payload,
) -> HttpResponse {
    match read_body(payload).await {
        Ok(body) => to_actix(&routes.payment_notify(&headers_of(&req), &body).await),
        Err(_) => to_actix(&routes.notification_unreadable(false)),
    }
}

async fn refund_notify(
    routes: web::Data<WeChatRoutes>,
    req: HttpRequest,
    payload: Payload,
) -> HttpResponse {
    match read_body(payload).await {
        Ok(body) => to_actix(&routes.refund_notify(&headers_of(&req), &body).await),
        Err(_) => to_actix(&routes.notification_unreadable(false)),
    }
}

/// The routes of [`configure`] in a scope mounted at `prefix` (e.g. `/wechat`):
/// `App::new().service(wechat_actix::scope("/wechat", routes))`.
pub fn scope(prefix: &str, routes: WeChatRoutes) -> Scope {
    web::scope(prefix).configure(configure(routes))
}

/// The client IP for `spbill_create_ip`, by the routes' proxy policy.
fn client_ip(routes: &WeChatRoutes, req: &HttpRequest) -> Option<IpAddr> {
    let header = |name: &str| req.headers().get(name).map(|v| v.as_bytes());
    wechat_core::adapter::client_ip(
        routes,
        req.peer_addr().map(|addr| addr.ip()),
        header("x-forwarded-for"),
        header("x-real-ip"),
    )
}

/// Reads the body up to one byte past [`WeChatRoutes::MAX_BODY`] (the route methods answer 413
/// above the limit, so a larger body is never buffered whole).
async fn read_body(mut payload: Payload) -> Result<BytesMut, PayloadError> {
    let limit = WeChatRoutes::MAX_BODY + 1;
    let mut body = BytesMut::new();
    while body.len() < limit {
        let Some(chunk) = payload.next().await else {
            break;
        };
        let chunk = chunk?;
        let take = chunk.len().min(limit - body.len());
        body.extend_from_slice(&chunk[..take]);
    }
    Ok(body)
}

/// The answer to a browser whose request body broke off.
fn unreadable_body(error: &PayloadError) -> HttpResponse {
    to_actix(&json_error_response(
        StatusCode::BAD_REQUEST,
        &format!("could not read the request body: {error}"),
    ))
}
