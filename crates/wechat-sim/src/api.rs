//! Basic access tokens and jsapi tickets (`api.weixin.qq.com/cgi-bin/*`).
//!
//! Protocol reference §2 and §3: `cgi-bin/token` mints a new token on every call and the previous
//! one keeps working 5 minutes; `cgi-bin/stable_token` returns the same token while it has more
//! than 5 minutes left; the two are isolated. The jsapi ticket is per app.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::config::AppConfig;
use crate::console::view::{TicketView, TokenView, validity};
use crate::reply::{Params, WxError, random_token};
use crate::state::{Sim, lock};

/// How long a replaced token keeps working.
const GRACE_SECS: u64 = 300;
/// `force_refresh` calls allowed per day, and their minimum spacing.
const FORCE_REFRESH_PER_DAY: u32 = 20;
const FORCE_REFRESH_SPACING_SECS: u64 = 30;
/// Expired tokens are forgotten (and then answer 40001 rather than 42001) this long after expiry.
const FORGET_AFTER_SECS: u64 = 2 * 24 * 3600;

/// The routes of this module.
pub(crate) fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/cgi-bin/token", get(token))
        .route(
            "/cgi-bin/stable_token",
            post(stable_token).get(|| async { WxError::code(43002) }),
        )
        .route("/cgi-bin/ticket/getticket", get(getticket))
}

#[derive(Debug)]
struct BasicToken {
    appid: String,
    expires_at: u64,
    /// When a newer `cgi-bin/token` replaced it; it dies `GRACE_SECS` later.
    replaced_at: Option<u64>,
    /// Invalidated at once (stable_token `force_refresh`).
    revoked: bool,
}

#[derive(Debug)]
struct Ticket {
    ticket: String,
    expires_at: u64,
}

/// Per-day counter on the simulated clock.
#[derive(Debug, Default, Clone, Copy)]
struct Daily {
    day: u64,
    count: u32,
}

impl Daily {
    fn count_today(&mut self, now: u64) -> u32 {
        if self.day != now / 86_400 {
            *self = Daily {
                day: now / 86_400,
                count: 0,
            };
        }
        self.count
    }
}

/// Basic and stable access tokens, tickets and quotas, for every app.
#[derive(Debug, Default)]
pub(crate) struct TokenStore {
    tokens: HashMap<String, BasicToken>,
    /// appid -> the latest `cgi-bin/token` token.
    latest: HashMap<String, String>,
    /// appid -> the current stable token.
    stable: HashMap<String, String>,
    /// appid -> `cgi-bin/token` calls today.
    quota: HashMap<String, Daily>,
    /// appid -> (force refreshes today, time of the last one).
    forced: HashMap<String, (Daily, u64)>,
    /// appid -> the current jsapi ticket.
    tickets: HashMap<String, Ticket>,
}

impl TokenStore {
    fn mint(&mut self, now: u64, ttl: u64, appid: &str) -> String {
        self.tokens
            .retain(|_, t| t.expires_at.saturating_add(FORGET_AFTER_SECS) > now);
        let token = random_token(128);
        self.tokens.insert(
            token.clone(),
            BasicToken {
                appid: appid.to_owned(),
                expires_at: now + ttl,
                replaced_at: None,
                revoked: false,
            },
        );
        token
    }

    /// The app a basic or stable access token belongs to: 40001 when unknown, replaced more than
    /// 5 minutes ago or revoked; 42001 when expired.
    pub(crate) fn app_of(&self, now: u64, token: &str) -> Result<String, WxError> {
        let t = self.tokens.get(token).ok_or(WxError::code(40001))?;
        if now >= t.expires_at {
            return Err(WxError::code(42001));
        }
        if t.revoked || t.replaced_at.is_some_and(|r| now >= r + GRACE_SECS) {
            return Err(WxError::code(40001));
        }
        Ok(t.appid.clone())
    }

    /// The current jsapi ticket of an app, if one was issued and has not expired.
    pub(crate) fn current_ticket(&self, now: u64, appid: &str) -> Option<&str> {
        self.tickets
            .get(appid)
            .filter(|t| now < t.expires_at)
            .map(|t| t.ticket.as_str())
    }
}

impl TokenStore {
    /// The console's rows: each token by app, kind and times, each ticket by app and expiry;
    /// never a value. Tokens newest first.
    pub(crate) fn console_rows(&self, now: u64, ttl: u64) -> (Vec<TokenView>, Vec<TicketView>) {
        let mut tokens: Vec<TokenView> = self
            .tokens
            .iter()
            .map(|(value, t)| {
                let kind = if self.latest.get(&t.appid) == Some(value) {
                    "cgi-bin/token (latest)"
                } else if self.stable.get(&t.appid) == Some(value) {
                    "stable_token (current)"
                } else {
                    "older"
                };
                let state = if now >= t.expires_at {
                    "expired"
                } else if t.revoked {
                    "revoked"
                } else if t.replaced_at.is_some_and(|r| now >= r + GRACE_SECS) {
                    "retired"
                } else if t.replaced_at.is_some() {
                    "replaced"
                } else {
                    "valid"
                };
                TokenView {
                    appid: t.appid.clone(),
                    kind,
                    issued_at: t.expires_at.saturating_sub(ttl),
                    expires_at: t.expires_at,
                    replaced_at: t.replaced_at,
                    revoked: t.revoked,
                    state,
                }
            })
            .collect();
        tokens.sort_by(|a, b| (b.expires_at, &b.appid).cmp(&(a.expires_at, &a.appid)));
        let mut tickets: Vec<TicketView> = self
            .tickets
            .iter()
            .map(|(appid, t)| TicketView {
                appid: appid.clone(),
                expires_at: t.expires_at,
                state: validity(now, t.expires_at),
            })
            .collect();
        tickets.sort_by(|a, b| a.appid.cmp(&b.appid));
        (tokens, tickets)
    }
}

/// The IP as WeChat reports it: IPv4-mapped IPv6 addresses are shown as IPv4.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// 40164 unless the caller's IP is whitelisted (an empty whitelist allows everyone).
fn check_ip(app: &AppConfig, peer: SocketAddr) -> Result<(), WxError> {
    if app.ip_whitelist.is_empty() {
        return Ok(());
    }
    let ip = canonical_ip(peer.ip());
    let allowed = app.ip_whitelist.iter().any(|entry| {
        entry
            .trim()
            .parse::<IpAddr>()
            .is_ok_and(|w| canonical_ip(w) == ip)
    });
    if allowed {
        return Ok(());
    }
    let msg = match ip {
        IpAddr::V4(v4) => format!("invalid ip {v4} ipv6 ::ffff:{v4}, not in whitelist"),
        IpAddr::V6(v6) => format!("invalid ip {v6} ipv6 {v6}, not in whitelist"),
    };
    Err(WxError::with_msg(40164, msg))
}

/// The credential checks shared by `cgi-bin/token` and `cgi-bin/stable_token`.
fn check_credentials<'a>(
    sim: &'a Sim,
    grant_type: Option<&str>,
    appid: Option<&str>,
    secret: Option<&str>,
    peer: SocketAddr,
) -> Result<&'a AppConfig, WxError> {
    if grant_type != Some("client_credential") {
        return Err(WxError::code(40002));
    }
    let app = sim
        .app(appid.ok_or(WxError::code(41002))?)
        .ok_or(WxError::code(40013))?;
    if secret.ok_or(WxError::code(41004))? != app.secret {
        return Err(WxError::code(40125));
    }
    check_ip(app, peer)?;
    Ok(app)
}

/// `GET /cgi-bin/token?grant_type=client_credential&appid&secret`
async fn token(
    State(sim): State<Arc<Sim>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    p: Params,
) -> Result<Json<Value>, WxError> {
    let app = check_credentials(
        &sim,
        p.get("grant_type"),
        p.get("appid"),
        p.get("secret"),
        peer,
    )?;
    let now = sim.now_secs();
    let ttl = sim.config.token_ttl_secs;
    let mut store = lock(&sim.tokens);
    let quota = store.quota.entry(app.appid.clone()).or_default();
    if quota.count_today(now) >= app.token_daily_quota {
        return Err(WxError::code(45009));
    }
    quota.count += 1;
    let token = store.mint(now, ttl, &app.appid);
    if let Some(previous) = store.latest.insert(app.appid.clone(), token.clone()) {
        if let Some(t) = store.tokens.get_mut(&previous) {
            t.replaced_at.get_or_insert(now);
        }
    }
    drop(store);
    tracing::debug!(appid = %app.appid, "cgi-bin/token issued a new access token");
    Ok(Json(json!({"access_token": token, "expires_in": ttl})))
}

/// `POST /cgi-bin/stable_token` with a JSON body.
async fn stable_token(
    State(sim): State<Arc<Sim>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Result<Json<Value>, WxError> {
    let body: Value = serde_json::from_slice(&body).map_err(|_| WxError::code(47001))?;
    let field = |name: &str| {
        body.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let app = check_credentials(
        &sim,
        field("grant_type"),
        field("appid"),
        field("secret"),
        peer,
    )?;
    let force = match body.get("force_refresh") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(WxError::code(47001)),
    };
    let now = sim.now_secs();
    let ttl = sim.config.token_ttl_secs;
    let appid = app.appid.clone();
    let mut store = lock(&sim.tokens);
    if force {
        let (daily, last) = store.forced.entry(appid.clone()).or_default();
        let spaced = daily.count_today(now) == 0 || now >= *last + FORCE_REFRESH_SPACING_SECS;
        if daily.count_today(now) < FORCE_REFRESH_PER_DAY && spaced {
            daily.count += 1;
            *last = now;
            if let Some(old) = store.stable.remove(&appid) {
                if let Some(t) = store.tokens.get_mut(&old) {
                    t.revoked = true;
                }
            }
        }
    }
    let current = store
        .stable
        .get(&appid)
        .and_then(|tok| store.tokens.get(tok).map(|t| (tok.clone(), t)))
        .filter(|(_, t)| !t.revoked && t.expires_at > now + GRACE_SECS)
        .map(|(tok, t)| (tok, t.expires_at - now));
    let (token, expires_in) = match current {
        Some(found) => found,
        None => {
            // The previous stable token (if any) keeps working until its own expiry.
            let token = store.mint(now, ttl, &appid);
            store.stable.insert(appid.clone(), token.clone());
            (token, ttl)
        }
    };
    drop(store);
    Ok(Json(
        json!({"access_token": token, "expires_in": expires_in}),
    ))
}

/// `GET /cgi-bin/ticket/getticket?access_token&type=jsapi`: the app's ticket, the same one while
/// it is valid.
async fn getticket(State(sim): State<Arc<Sim>>, p: Params) -> Result<Json<Value>, WxError> {
    let token = p.get("access_token").ok_or(WxError::code(41001))?;
    let now = sim.now_secs();
    let ttl = sim.config.token_ttl_secs;
    let mut store = lock(&sim.tokens);
    let appid = store.app_of(now, token)?;
    if p.get("type") != Some("jsapi") {
        return Err(WxError::code(40097));
    }
    let (ticket, expires_at) = match store.tickets.get(&appid).filter(|t| now < t.expires_at) {
        Some(t) => (t.ticket.clone(), t.expires_at),
        None => {
            let ticket = random_token(86);
            let expires_at = now + ttl;
            store.tickets.insert(
                appid,
                Ticket {
                    ticket: ticket.clone(),
                    expires_at,
                },
            );
            (ticket, expires_at)
        }
    };
    drop(store);
    Ok(Json(json!({
        "errcode": 0,
        "errmsg": "ok",
        "ticket": ticket,
        "expires_in": expires_at - now,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_ipv6_is_shown_as_ipv4() {
        let ip: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(canonical_ip(ip), "10.1.2.3".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn replaced_token_dies_after_grace_and_expired_gives_42001() {
        let mut store = TokenStore::default();
        let a = store.mint(1000, 7200, "wx1");
        assert_eq!(store.app_of(1000, &a), Ok("wx1".to_owned()));
        store.tokens.get_mut(&a).unwrap().replaced_at = Some(1100);
        assert!(store.app_of(1399, &a).is_ok());
        assert_eq!(store.app_of(1400, &a).unwrap_err().code, 40001);
        let b = store.mint(1000, 7200, "wx1");
        assert_eq!(store.app_of(8200, &b).unwrap_err().code, 42001);
        assert_eq!(store.app_of(8200, "nope").unwrap_err().code, 40001);
    }
}
