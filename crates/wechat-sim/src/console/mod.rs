//! The console: a web page to see and steer the simulator while developing, at `GET /_sim/`.
//!
//! It is server-rendered HTML ([`render`]) with a small script and style sheet served by the
//! simulator itself (no build step, no CDN). The script reloads the live part of the page
//! (`GET /_sim/console/live`, an HTML fragment) every second and sends the actions to the
//! existing control routes with `fetch()` from the same origin: `/_sim/clock/advance`,
//! `/_sim/fail`, `/_sim/pay/notify`, `/_sim/pay/orders/{out_trade_no}/pay|close|refund`.
//! `GET /_sim/console/state` is the same data as JSON.
//!
//! Like every `/_sim/` route but the JS-SDK's three, it answers no cross-origin request (the
//! router refuses them before they get here) and sends no CORS headers. What it shows comes
//! from [`view`], whose types hold no secret: apps without secrets, merchants without keys,
//! tokens and tickets by owner and times only, OAuth codes by their first characters. Every
//! value is HTML-escaped, since nicknames, order descriptions and the app's replies to
//! notifications are anyone's text.

mod render;
pub(crate) mod view;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::state::{Sim, lock};
use view::{AppView, DeliveryView, MerchantView, Snapshot, UserView};

/// The most orders the console lists (newest first).
pub(crate) const MAX_ORDERS: usize = 100;

/// The console's script.
const SCRIPT: &str = include_str!("console.js");
/// The console's style sheet.
const STYLE: &str = include_str!("console.css");

/// The console's routes: the page (`/_sim` redirects to it), its live fragment, its JSON, its
/// script and style.
pub(crate) fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/_sim", get(|| async { Redirect::permanent("/_sim/") }))
        .route("/_sim/", get(page))
        .route("/_sim/console/live", get(live))
        .route("/_sim/console/state", get(state))
        .route("/_sim/console/console.js", get(script))
        .route("/_sim/console/console.css", get(style))
}

/// Whether `path` is one of the console's own routes, which the journal does not record
/// (the page polls once a second).
pub(crate) fn is_console_path(path: &str) -> bool {
    path == "/_sim" || path == "/_sim/" || path.starts_with("/_sim/console/")
}

/// Gathers what the console shows, taking each lock in turn.
pub(crate) fn snapshot(sim: &Sim) -> Snapshot {
    let now = sim.now_secs();
    let config = &sim.config;
    let (tokens, tickets) = lock(&sim.tokens).console_rows(now, config.token_ttl_secs);
    let (codes, user_tokens) = lock(&sim.oauth).console_rows(now);
    let deliveries: Vec<DeliveryView> = sim
        .journal
        .deliveries()
        .into_iter()
        .rev()
        .map(|record| {
            let modes =
                crate::pay::notify_modes(record.subject.api, record.subject.kind == "refund");
            DeliveryView { record, modes }
        })
        .collect();
    let mut requests = sim.journal.requests();
    requests.reverse();
    Snapshot {
        now,
        now_beijing: crate::pay::beijing(now, true),
        offset_secs: sim.clock.offset_secs(),
        apps: config
            .apps
            .iter()
            .map(|a| AppView {
                appid: a.appid.clone(),
                kind: match a.kind {
                    crate::config::AppKind::OfficialAccount => "official account",
                    crate::config::AppKind::Website => "website",
                },
                oauth_domains: a.oauth_domains.clone(),
                js_domains: a.js_domains.clone(),
                ip_whitelist: a.ip_whitelist.clone(),
                token_daily_quota: a.token_daily_quota,
            })
            .collect(),
        users: config
            .users
            .iter()
            .map(|u| UserView {
                appid: u.appid.clone(),
                openid: u.effective_openid(),
                unionid: u.unionid.clone(),
                nickname: u.nickname.clone(),
                is_snapshotuser: u.is_snapshotuser,
            })
            .collect(),
        merchants: config
            .merchants
            .iter()
            .map(|m| MerchantView {
                mch_id: m.mch_id.clone(),
                appids: m.appids.clone(),
                v2: m.has_v2(),
                v3: m.has_v3(),
                notify_retry_scale: m.notify_retry_scale,
                h5_domains: m.h5_domains.clone(),
            })
            .collect(),
        tokens,
        tickets,
        codes,
        user_tokens,
        orders: crate::pay::console_orders(sim, MAX_ORDERS),
        deliveries,
        stats: sim.stats.snapshot(),
        faults: lock(&sim.faults).list(),
        requests,
    }
}

/// The headers of every console answer: never cached, never framed, never sniffed, no
/// referrer; HTML pages also get a Content-Security-Policy that allows only the simulator's
/// own script and style (no inline script runs, whatever a value slipped in).
fn headers(html: bool) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = vec![
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ];
    if html {
        headers.push((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ));
    }
    headers
}

/// Adds [`headers`] to an answer.
fn with_headers(html: bool, response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    for (name, value) in headers(html) {
        response.headers_mut().insert(name, value);
    }
    response
}

/// `GET /_sim/`: the console page.
async fn page(State(sim): State<Arc<Sim>>) -> Response {
    with_headers(true, Html(render::page(&snapshot(&sim))))
}

/// `GET /_sim/console/live`: the live part of the page, which the script swaps in.
async fn live(State(sim): State<Arc<Sim>>) -> Response {
    with_headers(true, Html(render::live(&snapshot(&sim))))
}

/// `GET /_sim/console/state`: what the console shows, as JSON.
async fn state(State(sim): State<Arc<Sim>>) -> Response {
    with_headers(false, Json(snapshot(&sim)))
}

/// `GET /_sim/console/console.js`
async fn script() -> Response {
    with_headers(
        false,
        (
            [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
            SCRIPT,
        ),
    )
}

/// `GET /_sim/console/console.css`
async fn style() -> Response {
    with_headers(
        false,
        ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE),
    )
}
