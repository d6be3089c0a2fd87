//! Paying outside WeChat's browser: the phone that scans a Native order's `code_url`, and the H5
//! cashier page a phone browser is sent to (`h5_url`, v2 `mweb_url`), at WeChat's path.
//!
//! - `GET /_sim/pay/scan?code_url=…`: what WeChat shows after 扫一扫 on a Native code: the
//!   order, and the users of its app to pay as (the simulator's stand-in for "whoever scanned").
//!   `POST /_sim/pay/scan` (`code_url`, `openid`, `action` = `pay` | `cancel`) pays it as that
//!   user and sends the notification, or leaves it unpaid. A code is refused once the order is
//!   paid or closed, 2 hours after it was handed out, or after the order's `time_expire`.
//! - `GET /cgi-bin/mmpayweb-bin/checkmweb?prepay_id=…&package=…[&redirect_url=…]`: WeChat's
//!   checks, in its order and with its texts: inside WeChat's browser (`请在微信外打开订单，进行支付`),
//!   an unknown or expired link (5 minutes: `支付请求已失效，请重新发起支付`), no `Referer`
//!   (`商家参数格式有误，请联系商家解决`), a `Referer` or `redirect_url` outside the merchant's
//!   `h5_domains` (`商家存在未配置的参数，请联系商家解决`), a visitor IP other than the order's
//!   `payer_client_ip` (`网络环境未能通过安全验证，请稍后再试`). Then a cashier page where the user
//!   pays or cancels (`POST` to the same path); either way the browser goes back to
//!   `redirect_url`, or to the page it came from.
//!
//! Both pages are plain forms and links, so that tests and any HTTP client can drive them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use url::Url;

use super::book::{self, OrderKey, Payment};
use super::{jsapi, merchant};
use crate::oauth::domain_allowed;
use crate::reply::{Params, html_escape, page};
use crate::state::Sim;

/// A refusal: the page with WeChat's text.
struct Refused(StatusCode, &'static str);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let Self(status, text) = self;
        let body = format!(
            r#"<div class="card"><p id="sim-pay-refused">{}</p></div>"#,
            html_escape(text)
        );
        (status, page("微信支付", &body)).into_response()
    }
}

fn refused(status: StatusCode, text: &'static str) -> Refused {
    Refused(status, text)
}

/// `¥` and yuan with two decimals, from fen.
fn yuan(fen: u64) -> String {
    format!("¥{}.{:02}", fen / 100, fen % 100)
}

/// Why an order cannot be paid now, as WeChat words it, or `None`.
fn unpayable(order: &book::Order, now: u64) -> Option<&'static str> {
    match order.payment {
        Payment::Paid { .. } => Some("该订单已支付，请勿重复支付"),
        Payment::Closed => Some("该订单已关闭"),
        Payment::NotPaid if order.time_expire.is_some_and(|t| now >= t) => {
            Some("订单已过期，请重新下单")
        }
        Payment::NotPaid => None,
    }
}

/// The users of `appid` as pay / cancel forms posting `fields` to `action`.
fn payer_forms(sim: &Sim, appid: &str, action: &str, fields: &[(&str, &str)]) -> String {
    let hidden: String = fields
        .iter()
        .map(|(name, value)| {
            format!(
                r#"<input type="hidden" name="{}" value="{}">"#,
                html_escape(name),
                html_escape(value)
            )
        })
        .collect();
    let mut forms = String::new();
    for user in sim.users_of(appid) {
        let Some(openid) = user.openid.as_deref() else {
            continue;
        };
        forms.push_str(&format!(
            r#"<form method="post" action="{action}" class="user">{hidden}<input type="hidden" name="openid" value="{openid}"><span>{nick}</span><button type="submit" name="action" value="pay" id="sim-pay-as-{openid}">支付</button></form>"#,
            openid = html_escape(openid),
            nick = html_escape(&user.nickname),
        ));
    }
    forms.push_str(&format!(
        r#"<form method="post" action="{action}">{hidden}<button type="submit" name="action" value="cancel" id="sim-pay-cancel">取消支付</button></form>"#
    ));
    forms
}

/// The order a Native `code_url` names, if it can still be scanned.
fn scannable(sim: &Sim, code_url: &str, now: u64) -> Result<(OrderKey, book::Order), Refused> {
    let book = sim.pay.book();
    let Some(key) = book.by_code_url.get(code_url).cloned() else {
        return Err(refused(StatusCode::NOT_FOUND, "二维码已失效，请重新生成"));
    };
    let Some(order) = book.orders.get(&key).cloned() else {
        return Err(refused(StatusCode::NOT_FOUND, "二维码已失效，请重新生成"));
    };
    if now >= order.prepay_expires {
        return Err(refused(StatusCode::GONE, "二维码已过期，请重新生成"));
    }
    if let Some(text) = unpayable(&order, now) {
        return Err(refused(StatusCode::CONFLICT, text));
    }
    Ok((key, order))
}

/// `GET /_sim/pay/scan?code_url=…`.
pub(super) async fn scan_page(State(sim): State<Arc<Sim>>, p: Params) -> Response {
    let Some(code_url) = p.get("code_url") else {
        return refused(StatusCode::BAD_REQUEST, "缺少参数code_url").into_response();
    };
    let (_, order) = match scannable(&sim, code_url, sim.now_secs()) {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    let body = format!(
        r#"<div class="card"><p>{description}</p><p class="code" id="sim-pay-amount">{amount}</p><p class="muted">{out_trade_no}</p></div><div class="card">{forms}</div>"#,
        description = html_escape(&order.body),
        amount = yuan(order.total_fee),
        out_trade_no = html_escape(&order.out_trade_no),
        forms = payer_forms(
            &sim,
            &order.appid,
            "/_sim/pay/scan",
            &[("code_url", code_url)]
        ),
    );
    page("微信支付", &body).into_response()
}

/// `POST /_sim/pay/scan` (form: `code_url`, `openid`, `action`).
pub(super) async fn scan_confirm(State(sim): State<Arc<Sim>>, form: String) -> Response {
    let p = Params::parse(&form);
    let Some(code_url) = p.get("code_url") else {
        return refused(StatusCode::BAD_REQUEST, "缺少参数code_url").into_response();
    };
    let now = sim.now_secs();
    let (key, order) = match scannable(&sim, code_url, now) {
        Ok(found) => found,
        Err(refusal) => return refusal.into_response(),
    };
    match pay_as(&sim, &key, &order.appid, &p, now) {
        Ok(true) => page(
            "微信支付",
            r#"<div class="card"><p id="sim-pay-done">支付成功</p></div>"#,
        )
        .into_response(),
        Ok(false) => page(
            "微信支付",
            r#"<div class="card"><p id="sim-pay-cancelled">已取消支付</p></div>"#,
        )
        .into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// Carries out the form's `action` as `openid` (one of `appid`'s users): `Ok(true)` paid (the
/// payer recorded, the notification on its way), `Ok(false)` cancelled.
fn pay_as(
    sim: &Arc<Sim>,
    key: &OrderKey,
    appid: &str,
    p: &Params,
    now: u64,
) -> Result<bool, Refused> {
    match p.get("action") {
        Some("pay") => {}
        Some("cancel") => return Ok(false),
        _ => {
            return Err(refused(
                StatusCode::BAD_REQUEST,
                "wechat-sim: the form needs action=pay or action=cancel",
            ));
        }
    }
    let Some(openid) = p.get("openid").filter(|o| sim.user(appid, o).is_some()) else {
        return Err(refused(StatusCode::BAD_REQUEST, "请选择付款的微信用户"));
    };
    let paid = {
        let mut book = sim.pay.book();
        match book.orders.get_mut(key) {
            Some(order) if unpayable(order, now).is_none() => order.openid = openid.to_owned(),
            Some(order) => {
                let text = unpayable(order, now).unwrap_or_default();
                return Err(refused(StatusCode::CONFLICT, text));
            }
            None => return Err(refused(StatusCode::NOT_FOUND, "订单不存在")),
        }
        book.pay(key, now)
    };
    if let Some(order) = paid {
        jsapi::notify_paid(sim, &order, now);
    }
    Ok(true)
}

/// The browser's IP as the simulator sees it (the peer address; an IPv4-mapped IPv6 address
/// as IPv4).
fn visitor_ip(peer: SocketAddr) -> IpAddr {
    peer.ip().to_canonical()
}

/// The H5 link's order and where the browser returns, after WeChat's checks; or the refusal.
fn check_h5_link(
    sim: &Sim,
    headers: &HeaderMap,
    peer: SocketAddr,
    p: &Params,
    from_cashier: bool,
) -> Result<(OrderKey, book::Order, String), Refused> {
    let user_agent = headers
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase())
        .unwrap_or_default();
    if user_agent.contains("micromessenger") {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "请在微信外打开订单，进行支付",
        ));
    }
    let now = sim.now_secs();
    let book = sim.pay.book();
    let link = p
        .get("package")
        .and_then(|package| book.h5_links.get(package));
    let Some((key, issued)) = link.cloned() else {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "商家参数格式有误，请联系商家解决",
        ));
    };
    let Some(order) = book.orders.get(&key).cloned() else {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "商家参数格式有误，请联系商家解决",
        ));
    };
    drop(book);
    if p.get("prepay_id") != Some(order.prepay_id.as_str()) {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "商家参数格式有误，请联系商家解决",
        ));
    }
    if now >= issued.saturating_add(book::H5_LINK_TTL_SECS) {
        return Err(refused(StatusCode::GONE, "支付请求已失效，请重新发起支付"));
    }
    let domains = merchant(sim, &order.mch_id)
        .map(|m| m.h5_domains.as_slice())
        .unwrap_or_default();
    // The page the buyer came from: the Referer when WeChat's page opens, carried in the
    // cashier's form afterwards.
    let came_from = if from_cashier {
        p.get("return_to").unwrap_or("").to_owned()
    } else {
        let Some(referer) = headers
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .filter(|r| !r.is_empty())
        else {
            return Err(refused(
                StatusCode::BAD_REQUEST,
                "商家参数格式有误，请联系商家解决",
            ));
        };
        referer.to_owned()
    };
    let allowed = |url: &str| Url::parse(url).is_ok_and(|u| domain_allowed(&u, domains));
    if !allowed(&came_from) || p.get("redirect_url").is_some_and(|r| !allowed(r)) {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "商家存在未配置的参数，请联系商家解决",
        ));
    }
    let expected: Option<IpAddr> = order.payer_client_ip.parse().ok();
    if expected.map(|ip| ip.to_canonical()) != Some(visitor_ip(peer)) {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "网络环境未能通过安全验证，请稍后再试",
        ));
    }
    if let Some(text) = unpayable(&order, now) {
        return Err(refused(StatusCode::CONFLICT, text));
    }
    let return_to = p.get("redirect_url").map_or(came_from, str::to_owned);
    Ok((key, order, return_to))
}

/// `GET /cgi-bin/mmpayweb-bin/checkmweb`: WeChat's checks, then the cashier.
pub(super) async fn cashier_page(
    State(sim): State<Arc<Sim>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    p: Params,
) -> Response {
    let (_, order, return_to) = match check_h5_link(&sim, &headers, peer, &p, false) {
        Ok(checked) => checked,
        Err(refusal) => return refusal.into_response(),
    };
    let package = p.get("package").unwrap_or_default();
    let fields = [
        ("prepay_id", order.prepay_id.as_str()),
        ("package", package),
        ("return_to", return_to.as_str()),
    ];
    let body = format!(
        r#"<div class="card"><p>{description}</p><p class="code" id="sim-pay-amount">{amount}</p><p class="muted">正在打开微信… (wechat-sim: choose who pays in the WeChat app)</p></div><div class="card">{forms}</div>"#,
        description = html_escape(&order.body),
        amount = yuan(order.total_fee),
        forms = payer_forms(&sim, &order.appid, book::H5_CASHIER_PATH, &fields),
    );
    page("微信支付", &body).into_response()
}

/// `POST /cgi-bin/mmpayweb-bin/checkmweb` (the cashier's form): pays or cancels, then sends
/// the browser back either way, as WeChat does.
pub(super) async fn cashier_confirm(
    State(sim): State<Arc<Sim>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: String,
) -> Response {
    let p = Params::parse(&form);
    let (key, order, return_to) = match check_h5_link(&sim, &headers, peer, &p, true) {
        Ok(checked) => checked,
        Err(refusal) => return refusal.into_response(),
    };
    if let Err(refusal) = pay_as(&sim, &key, &order.appid, &p, sim.now_secs()) {
        return refusal.into_response();
    }
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, return_to),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}
