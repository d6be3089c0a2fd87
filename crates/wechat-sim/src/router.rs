//! The whole HTTP surface: every module's routes, plus the middleware that counts requests,
//! records them in the console's journal (path, status, errcode), injects the faults
//! `/_sim/fail` registered, answers CORS for the three `/_sim/` routes the JS-SDK script calls
//! from the app's pages, and refuses requests to the others (the console included) addressed
//! to a `Host` that is not loopback or listed in `[server] hosts` (DNS rebinding, see
//! [`crate::host`]) or coming from another origin.

use std::sync::Arc;

use axum::body::{Body, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::json;

use crate::journal::RequestRecord;
use crate::serve::Connection;
use crate::state::{Sim, lock};

/// The `/_sim/` routes that `jweixin.js` calls from the app's own pages: cross-origin by
/// design, so they answer CORS.
const BRIDGE_ROUTES: [&str; 3] = ["/_sim/jssdk/verify", "/_sim/pay/check", "/_sim/pay/confirm"];

/// The simulator's router, with its state.
pub(crate) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .merge(crate::oauth::router())
        .merge(crate::api::router())
        .merge(crate::jssdk::router())
        .merge(crate::control::router())
        .merge(crate::console::router())
        .merge(crate::pay::router())
        .fallback(|| async { (StatusCode::NOT_FOUND, "404 Not Found (wechat-sim)") })
        .layer(middleware::from_fn_with_state(Arc::clone(&sim), around))
        .with_state(sim)
}

/// Counts the request; applies a fault registered for its path; CORS for the bridge routes;
/// the other `/_sim/` routes only for a loopback or listed `Host` ([`crate::host`]) and never
/// cross-origin; records the answer in the journal (except the console's own requests).
async fn around(State(sim): State<Arc<Sim>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let method = request.method().to_string();
    // A route serves the path (whatever the method) when it matched; the fallback sets none.
    let served = request.extensions().get::<MatchedPath>().is_some();
    sim.stats.count_call(&path, served);
    tracing::debug!(%method, %path, "request");
    let response = answer(&sim, &path, served, request, next).await;
    if crate::console::is_console_path(&path) {
        return response;
    }
    record(&sim, method, path, response).await
}

/// The answer, after the checks and faults of [`around`].
async fn answer(sim: &Sim, path: &str, served: bool, request: Request, next: Next) -> Response {
    if path == "/_sim" || path.starts_with("/_sim/") {
        if BRIDGE_ROUTES.contains(&path) {
            return bridge(request, next).await;
        }
        if let Some(reason) = sim.hosts.refusal(&request) {
            tracing::info!(%path, %reason, "control request to another host refused");
            return (StatusCode::FORBIDDEN, Json(json!({ "error": reason }))).into_response();
        }
        if let Some(reason) = cross_origin(&request) {
            tracing::info!(%path, %reason, "cross-origin control request refused");
            return (StatusCode::FORBIDDEN, Json(json!({ "error": reason }))).into_response();
        }
        return next.run(request).await;
    }
    let fault = lock(&sim.faults).take(path);
    match fault {
        None => next.run(request).await,
        Some(fault) => {
            sim.stats.count_fault(fault.kind(), path, served);
            tracing::info!(%path, kind = fault.kind(), "fault injected");
            crate::fault::apply(fault, request, next).await
        }
    }
}

/// The answers whose bodies are read for an errcode: WeChat's are a few KiB.
const MAX_RECORDED_BODY: u64 = 64 * 1024;

/// Records `response` in the journal: its status, and the WeChat error in a JSON or XML body
/// of known, small length (the body is read and put back).
async fn record(sim: &Sim, method: String, path: String, response: Response) -> Response {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let small = HttpBody::size_hint(response.body())
        .exact()
        .is_some_and(|n| n <= MAX_RECORDED_BODY);
    let (response, errcode) =
        if small && (content_type.contains("json") || content_type.contains("xml")) {
            let (parts, body) = response.into_parts();
            match axum::body::to_bytes(body, MAX_RECORDED_BODY as usize).await {
                Ok(bytes) => {
                    let errcode = crate::journal::errcode_of(&content_type, &bytes);
                    (Response::from_parts(parts, Body::from(bytes)), errcode)
                }
                Err(_) => (
                    (StatusCode::INTERNAL_SERVER_ERROR, "answer unreadable").into_response(),
                    None,
                ),
            }
        } else {
            (response, None)
        };
    sim.journal.request(RequestRecord {
        at: sim.now_secs(),
        method,
        path,
        status,
        errcode,
    });
    response
}

/// Why a request to a control route is refused as cross-origin, if it is: any `OPTIONS`
/// (preflight), `Sec-Fetch-Site: cross-site` or `same-site`, or an `Origin` other than the
/// simulator's own (`http://` or, on the TLS listener, `https://` + `Host`). Requests without
/// those headers (curl, test clients) pass.
fn cross_origin(request: &Request) -> Option<String> {
    if request.method() == Method::OPTIONS {
        return Some("the /_sim/ control routes answer no CORS preflight".into());
    }
    let headers = request.headers();
    let text = |name: header::HeaderName| headers.get(name).map(|v| v.to_str().unwrap_or("?"));
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        if site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site") {
            return Some(format!(
                "the /_sim/ control routes answer no cross-origin request (Sec-Fetch-Site: {site})"
            ));
        }
    }
    let origin = text(header::ORIGIN)?;
    let scheme = match request.extensions().get::<Connection>() {
        Some(connection) if connection.tls => "https",
        _ => "http",
    };
    let own = text(header::HOST).map(|host| format!("{scheme}://{host}"));
    if own.is_some_and(|own| own.eq_ignore_ascii_case(origin)) {
        return None;
    }
    Some(format!(
        "the /_sim/ control routes answer no cross-origin request (Origin {origin} is not the simulator's)"
    ))
}

/// A bridge route: preflights answered `204`, every answer with CORS headers.
async fn bridge(request: Request, next: Next) -> Response {
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
