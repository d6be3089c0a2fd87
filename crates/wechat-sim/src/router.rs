//! The whole HTTP surface: every module's routes, plus the middleware that counts requests,
//! answers queued errors (hands v3 faults to the v3 handlers) and adds CORS headers to `/_sim/` routes.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use crate::state::{Sim, lock};

/// The simulator's router, with its state.
pub(crate) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .merge(crate::oauth::router())
        .merge(crate::api::router())
        .merge(crate::jssdk::router())
        .merge(crate::control::router())
        .merge(crate::pay::router())
        .fallback(|| async { (StatusCode::NOT_FOUND, "404 Not Found (wechat-sim)") })
        .layer(middleware::from_fn_with_state(Arc::clone(&sim), around))
        .with_state(sim)
}

/// Counts the request; answers an error queued by `/_sim/fail`; handles CORS for `/_sim/`.
async fn around(State(sim): State<Arc<Sim>>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    sim.stats.count_call(&path);
    tracing::debug!(method = %request.method(), %path, "request");

    if path.starts_with("/v3/") {
        // v3 faults are answered (signed) or applied by the v3 handlers.
        if let Some(fault) = lock(&sim.faults).take_v3(&path) {
            request.extensions_mut().insert(fault);
        }
        return next.run(request).await;
    }
    if !path.starts_with("/_sim/") {
        if let Some(error) = lock(&sim.faults).take(&path) {
            return error.into_response();
        }
        return next.run(request).await;
    }

    let origin = request.headers().get(header::ORIGIN).cloned();
    let requested_headers = request
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned();
    let mut response = if request.method() == Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    cors_headers(response.headers_mut(), origin, requested_headers);
    response
}

/// CORS for pages on other origins (the app's pages load the JS-SDK script from the simulator
/// and call it from their own origin).
fn cors_headers(
    headers: &mut HeaderMap,
    origin: Option<HeaderValue>,
    requested_headers: Option<HeaderValue>,
) {
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        origin.unwrap_or(HeaderValue::from_static("*")),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        requested_headers.unwrap_or(HeaderValue::from_static("Content-Type")),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}
