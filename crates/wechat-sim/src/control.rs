//! The simulator's own control endpoints under `/_sim/`: stats, clock, injected faults.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::fault::FaultRequest;
use crate::reply::Params;
use crate::state::{Sim, lock};

/// The routes of this module.
pub(crate) fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/_sim/stats", get(stats))
        .route("/_sim/clock", get(clock))
        .route("/_sim/clock/advance", post(advance))
        .route(
            "/_sim/fail",
            post(fail).get(list_faults).delete(clear_faults),
        )
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

/// `POST /_sim/fail?path=…&<fault>[&times=K | &probability=P[&seed=S]]`: the next `times`
/// calls to `path` (or each with probability `P`) get the fault; see [`crate::fault`] and the
/// README's table. Answers `{"path", "queued"[, "probability"]}`, or 400 `{"error"}`.
async fn fail(State(sim): State<Arc<Sim>>, p: Params) -> Response {
    match FaultRequest::parse(&p) {
        Ok(request) => {
            tracing::info!(path = %request.path, kind = request.fault.kind(), "fault registered");
            Json(lock(&sim.faults).add(request)).into_response()
        }
        Err(msg) => bad_request(&msg),
    }
}

/// `GET /_sim/fail`: the registered faults, `{"faults": [{"path", "match", "queued", "queue",
/// "random"}]}`.
async fn list_faults(State(sim): State<Arc<Sim>>) -> Response {
    Json(lock(&sim.faults).list()).into_response()
}

/// `DELETE /_sim/fail[?path=…]`: clears the faults of `path` (as registered), or all;
/// answers `{"cleared": N}`, the number of paths cleared.
async fn clear_faults(State(sim): State<Arc<Sim>>, p: Params) -> Response {
    if let Some(unknown) = p.names().find(|n| *n != "path") {
        return bad_request(&format!("unknown parameter {unknown}; only path"));
    }
    let cleared = lock(&sim.faults).clear(p.get("path"));
    Json(json!({ "cleared": cleared })).into_response()
}
