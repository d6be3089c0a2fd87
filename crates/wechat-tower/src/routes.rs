//! The mountable axum routes: JS-SDK config and WeChat Pay. Each handler extracts plain values
//! and calls [`WeChatRoutes`], where the logic lives (shared with `wechat-actix`).

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, RawQuery, Request, State};
use axum::response::Response;
use axum::routing::{get, post};
use bytes::{Bytes, BytesMut};
use http::StatusCode;
use http_body_util::BodyExt as _;
use wechat_core::adapter::{client_ip_from_headers, json_error_response};
use wechat_core::routes::{
    JSSDK_CONFIG_PATH, PAY_NOTIFY_PATH, PAY_ORDER_STATUS_PATH, PAY_ORDERS_PATH, REFUND_NOTIFY_PATH,
    WeChatRoutes,
};

use crate::WeChatUser;

/// The WeChat routes as an axum [`Router`], to mount with [`Router::nest`] under any prefix
/// (e.g. `/wechat`):
///
/// | route | answer |
/// | --- | --- |
/// | `GET /jssdk/config?url=<page url>` | the `wx.config` JSON for a page on a configured JS-SDK domain; 400 otherwise; 502 with WeChat's message when the ticket cannot be had |
/// | `POST /pay/orders` | for the session's user (JSON body priced by the app's [`OrderBackend`](wechat_core::routes::OrderBackend); empty or `{}` allowed): `{"out_trade_no", "params": {appId, timeStamp, nonceStr, package, signType, paySign}}` |
/// | `POST /pay/notify` | WeChat's payment notifications (XML) |
/// | `POST /pay/refund-notify` | WeChat's refund notifications (XML) |
/// | `GET /pay/orders/{out_trade_no}` | `{"out_trade_no", "status", "total_fee"}` for the order's owner, 404 for anyone else; asks WeChat (`orderquery`) while unpaid |
///
/// The `/pay/*` routes exist only when [`WeChatRoutes`] has payment
/// ([`WeChatRoutesBuilder::pay`](wechat_core::routes::WeChatRoutesBuilder::pay)). Request bodies are
/// limited to [`WeChatRoutes::MAX_BODY`] (64 KiB; 413 above).
///
/// Requirements of the app:
/// - Put [`WeChatLoginLayer`](crate::WeChatLoginLayer) around the mounted router (the order routes need
///   the user; without the layer they answer 500 naming it).
/// - Exclude the two notification routes from login: WeChat's servers post them without a
///   session. With the routes under `/wechat`:
///   `LoginConfig::builder(…).exclude_notifications("/wechat")`; the Pay `notify_url` is then
///   `{public_url}/wechat/pay/notify`.
/// - Serve with the peer address, `app.into_make_service_with_connect_info::<SocketAddr>()`:
///   the order route sends the buyer's IP to WeChat (`spbill_create_ip`). Behind a reverse proxy,
///   enable [`trust_proxy`](wechat_core::routes::WeChatRoutesBuilder::trust_proxy) instead.
pub fn router<S>(routes: WeChatRoutes) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let mut router = Router::new().route(JSSDK_CONFIG_PATH, get(jssdk_config));
    if routes.pay().is_some() {
        router = router
            .route(PAY_ORDERS_PATH, post(create_order))
            .route(PAY_ORDER_STATUS_PATH, get(order_status))
            .route(PAY_NOTIFY_PATH, post(payment_notify))
            .route(REFUND_NOTIFY_PATH, post(refund_notify));
    }
    router.with_state(routes)
}

fn to_axum(response: http::Response<Bytes>) -> Response {
    response.map(Body::from)
}

/// Reads at most `WeChatRoutes::MAX_BODY + 1` bytes: the route methods answer 413 above the
/// limit, so a larger body is never buffered whole.
async fn read_limited(body: Body) -> Result<Bytes, axum::Error> {
    let limit = WeChatRoutes::MAX_BODY + 1;
    let mut body = body;
    let mut buffer = BytesMut::new();
    while buffer.len() < limit {
        let Some(frame) = body.frame().await else {
            break;
        };
        if let Ok(data) = frame?.into_data() {
            let take = data.len().min(limit - buffer.len());
            buffer.extend_from_slice(&data[..take]);
        }
    }
    Ok(buffer.freeze())
}

async fn jssdk_config(State(routes): State<WeChatRoutes>, RawQuery(query): RawQuery) -> Response {
    to_axum(routes.jssdk_config(query.as_deref()).await)
}

async fn create_order(
    State(routes): State<WeChatRoutes>,
    user: WeChatUser,
    request: Request,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let Some(client_ip) = client_ip_from_headers(&routes, peer, request.headers()) else {
        tracing::error!(
            "POST pay/orders: the client IP is unknown; serve the app with \
             into_make_service_with_connect_info::<SocketAddr>()"
        );
        return to_axum(json_error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the client IP (spbill_create_ip) is unknown: serve the axum app with \
             `app.into_make_service_with_connect_info::<std::net::SocketAddr>()`, or, behind a \
             reverse proxy, enable WeChatRoutesBuilder::trust_proxy",
        ));
    };
    let (parts, body) = request.into_parts();
    match read_limited(body).await {
        Ok(body) => to_axum(
            routes
                .create_order(&user, client_ip, &parts.headers, &body)
                .await,
        ),
        Err(e) => to_axum(json_error_response(
            StatusCode::BAD_REQUEST,
            &format!("could not read the request body: {e}"),
        )),
    }
}

async fn order_status(
    State(routes): State<WeChatRoutes>,
    user: WeChatUser,
    Path(out_trade_no): Path<String>,
) -> Response {
    to_axum(routes.order_status(&user.openid, &out_trade_no).await)
}

/// WeChat Pay's notifications: the headers (v3 signs with `Wechatpay-*`) and the raw body.
async fn payment_notify(
    State(routes): State<WeChatRoutes>,
    headers: http::HeaderMap,
    body: Body,
) -> Response {
    match read_limited(body).await {
        Ok(body) => to_axum(routes.payment_notify(&headers, &body).await),
        Err(_) => to_axum(routes.notification_unreadable(false)),
    }
}

async fn refund_notify(
    State(routes): State<WeChatRoutes>,
    headers: http::HeaderMap,
    body: Body,
) -> Response {
    match read_limited(body).await {
        Ok(body) => to_axum(routes.refund_notify(&headers, &body).await),
        Err(_) => to_axum(routes.notification_unreadable(false)),
    }
}
