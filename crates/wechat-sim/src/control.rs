//! The simulator's own control endpoints under `/_sim/`: stats, clock, injected errors.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::pay::v3::V3Fault;
use crate::pay::v3::auth::V3Error;
use crate::reply::{Params, WxError, errmsg};
use crate::state::{Sim, lock};

/// The most errors one `POST /_sim/fail` may queue.
const MAX_FAULTS: u32 = 100_000;

/// The routes of this module.
pub(crate) fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/_sim/stats", get(stats))
        .route("/_sim/clock", get(clock))
        .route("/_sim/clock/advance", post(advance))
        .route("/_sim/fail", post(fail))
}

/// Errors to answer instead of the real handler, per path, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Faults(
    HashMap<String, VecDeque<WxError>>,
    HashMap<String, VecDeque<V3Fault>>,
);

impl Faults {
    /// The next queued v3 fault for `path` (a `/v3/…` path), if any.
    pub(crate) fn take_v3(&mut self, path: &str) -> Option<V3Fault> {
        let queue = self.1.get_mut(path)?;
        let next = queue.pop_front();
        if queue.is_empty() {
            self.1.remove(path);
        }
        next
    }

    /// The next queued error for `path`, if any.
    pub(crate) fn take(&mut self, path: &str) -> Option<WxError> {
        let queue = self.0.get_mut(path)?;
        let next = queue.pop_front();
        if queue.is_empty() {
            self.0.remove(path);
        }
        next
    }
}

/// A `400 {"error": …}` for a bad control request.
fn bad_request(msg: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": msg }))).into_response()
}

/// `GET /_sim/stats`
async fn stats(State(sim): State<Arc<Sim>>) -> Response {
    Json(sim.stats.snapshot()).into_response()
}

/// `GET /_sim/clock`
async fn clock(State(sim): State<Arc<Sim>>) -> Response {
    Json(json!({"now": sim.now_secs(), "offset_secs": sim.clock.offset_secs()})).into_response()
}

/// `POST /_sim/clock/advance?seconds=N`
async fn advance(State(sim): State<Arc<Sim>>, p: Params) -> Response {
    let Some(secs) = p.get("seconds").and_then(|s| s.parse::<u64>().ok()) else {
        return bad_request("seconds must be a non-negative integer, e.g. ?seconds=301");
    };
    let now = sim.clock.advance(secs);
    tracing::info!(secs, now, "simulated clock advanced");
    Json(json!({"now": now, "offset_secs": sim.clock.offset_secs()})).into_response()
}

/// `POST /_sim/fail?path=/cgi-bin/token&errcode=-1&times=2[&errmsg=…]`: the next `times` requests
/// to `path` (an `api.weixin.qq.com` path, `/cgi-bin/…` or `/sns/…`) get this error instead.
///
/// For a WeChat Pay v3 path (`/v3/…`, matched without the query):
/// `?path=/v3/…&status=500&code=SYSTEM_ERROR&times=2[&message=…]` answers signed v3 JSON
/// errors with that HTTP status; `&fault=bad_signature` (instead of status and code) lets the
/// real handler answer with a wrong `Wechatpay-Signature`, `&fault=unsigned` without the
/// `Wechatpay-*` headers.
async fn fail(State(sim): State<Arc<Sim>>, p: Params) -> Response {
    if p.get("path").is_some_and(|path| path.starts_with("/v3/")) {
        return fail_v3(&sim, &p);
    }
    let Some(path) = p
        .get("path")
        .filter(|p| p.starts_with("/cgi-bin/") || p.starts_with("/sns/"))
    else {
        return bad_request(
            "path must be an api.weixin.qq.com path (/cgi-bin/… or /sns/…) or a WeChat Pay v3 path (/v3/…)",
        );
    };
    let Some(code) = p
        .get("errcode")
        .and_then(|c| c.parse::<i64>().ok())
        .filter(|c| *c != 0)
    else {
        return bad_request("errcode must be a non-zero integer, e.g. -1 or 45009");
    };
    let times = match times(&p) {
        Ok(n) => n,
        Err(msg) => return bad_request(msg),
    };
    let msg = p.get("errmsg").unwrap_or(errmsg(code)).to_owned();
    let mut faults = lock(&sim.faults);
    let queue = faults.0.entry(path.to_owned()).or_default();
    queue.extend((0..times).map(|_| WxError::with_msg(code, msg.clone())));
    let queued = queue.len();
    Json(json!({"path": path, "queued": queued})).into_response()
}

/// `times` of a `/_sim/fail` request (1 when absent).
fn times(p: &Params) -> Result<u32, &'static str> {
    match p.get("times").map(str::parse::<u32>) {
        None => Ok(1),
        Some(Ok(n)) if (1..=MAX_FAULTS).contains(&n) => Ok(n),
        Some(_) => Err("times must be between 1 and 100000"),
    }
}

/// The `/v3/…` form of `POST /_sim/fail`.
fn fail_v3(sim: &Sim, p: &Params) -> Response {
    let path = p.get("path").unwrap_or_default();
    if path.contains('?') {
        return bad_request("path is matched without its query: drop the ?…");
    }
    let times = match times(p) {
        Ok(n) => n,
        Err(msg) => return bad_request(msg),
    };
    let fault = match p.get("fault") {
        Some("bad_signature") => V3Fault::BadSignature,
        Some("unsigned") => V3Fault::Unsigned,
        Some(_) => return bad_request("fault must be bad_signature or unsigned"),
        None => {
            let Some(status) = p
                .get("status")
                .and_then(|s| s.parse::<u16>().ok())
                .filter(|s| (400..=599).contains(s))
                .and_then(|s| StatusCode::from_u16(s).ok())
            else {
                return bad_request("status must be an HTTP error status (400-599), e.g. 500");
            };
            let Some(code) = p.get("code").filter(|c| !c.is_empty()) else {
                return bad_request("code is required, e.g. SYSTEM_ERROR");
            };
            let message = p.get("message").unwrap_or("系统错误");
            V3Fault::Error(V3Error::new(status, code, message))
        }
    };
    let mut faults = lock(&sim.faults);
    let queue = faults.1.entry(path.to_owned()).or_default();
    queue.extend((0..times).map(|_| fault.clone()));
    let queued = queue.len();
    Json(json!({"path": path, "queued": queued})).into_response()
}
