//! The console's HTML, built with `format!` from a [`Snapshot`]. Every value from the state
//! goes through [`esc`] (element text and double-quoted attributes alike); markup is only ever
//! made of literals and escaped values.

use std::fmt::Write as _;

use serde_json::json;

use super::view::{DeliveryView, OrderView, Snapshot};
use crate::reply::html_escape;

/// Escapes a value for HTML text or a double-quoted attribute.
pub(crate) fn esc(value: &str) -> String {
    html_escape(value)
}

/// The fault kinds the fault form offers, with what its value field means.
const FAULT_KINDS: [(&str, &str); 10] = [
    ("errcode", "errcode N (api.weixin)"),
    ("err_code", "err_code CODE (v2, signed)"),
    ("return_code", "return_code FAIL (v2)"),
    ("status_code", "HTTP status S + code CODE (v3, signed)"),
    ("status", "HTTP status S, gateway page (all)"),
    ("delay", "delay N ms (all)"),
    ("drop", "dropped connection (all)"),
    ("malformed", "malformed answer (all)"),
    ("bad_signature", "bad signature (v2, v3)"),
    ("unsigned", "unsigned answer (v2, v3)"),
];

/// The whole page: the header, the forms that stay put, and the live part.
pub(crate) fn page(s: &Snapshot) -> String {
    let kinds: String = FAULT_KINDS
        .iter()
        .map(|(value, label)| format!(r#"<option value="{value}">{}</option>"#, esc(label)))
        .collect();
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>wechat-sim console</title>
<link rel="stylesheet" href="/_sim/console/console.css">
<script src="/_sim/console/console.js" defer></script>
</head>
<body>
<header>
<h1>wechat-sim console</h1>
<label class="live-toggle"><input type="checkbox" id="sim-console-live" checked> refresh every second</label>
<span id="sim-console-updated" class="muted"></span>
</header>
<section id="sim-actions" class="actions">
<form data-action="clock" id="sim-clock-form">
<strong>Clock</strong>
<input type="number" name="seconds" min="0" value="301" aria-label="seconds">
<button type="submit" id="sim-clock-advance">advance (s)</button>
<button type="button" data-action="clock-by" data-seconds="7200">+2 h</button>
</form>
<form data-action="fault" id="sim-fault-form">
<strong>Fail</strong>
<input name="path" placeholder="/cgi-bin/token or /v3/*" required aria-label="path">
<select name="kind" aria-label="fault">{kinds}</select>
<input name="value" placeholder="N, CODE, S or ms" aria-label="value">
<input name="code" placeholder="v3 code" aria-label="v3 code">
<input type="number" name="times" min="1" value="1" aria-label="times">
<button type="submit" id="sim-fault-add">fail next N calls</button>
<button type="button" data-action="delete" data-url="/_sim/fail">clear all faults</button>
</form>
<pre id="sim-console-result" class="result"></pre>
</section>
<main id="sim-live">
{live}
</main>
</body>
</html>
"#,
        live = live(s),
    )
}

/// The live part, swapped in by the script every second.
pub(crate) fn live(s: &Snapshot) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<p id="sim-clock">Simulated time <strong id="sim-now">{}</strong> (Beijing), unix {} — clock moved forward {} s</p>"#,
        esc(&s.now_beijing),
        s.now,
        s.offset_secs,
    );
    out.push_str(&orders(s));
    out.push_str(&deliveries(s));
    out.push_str(&credentials(s));
    out.push_str(&configuration(s));
    out.push_str(&counters(s));
    out.push_str(&requests(s));
    out
}

/// A table: a caption, escaped headers, rows already made of [`td`] cells.
fn table(id: &str, caption: &str, headers: &[&str], rows: &[String]) -> String {
    let head: String = headers
        .iter()
        .map(|h| format!("<th>{}</th>", esc(h)))
        .collect();
    let body = if rows.is_empty() {
        format!(
            r#"<tr><td colspan="{}" class="muted">none yet</td></tr>"#,
            headers.len()
        )
    } else {
        rows.concat()
    };
    format!(
        r#"<section id="{id}"><h2>{}</h2><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>"#,
        esc(caption)
    )
}

/// A cell with escaped text.
fn td(text: &str) -> String {
    format!("<td>{}</td>", esc(text))
}

/// A cell with escaped text and a class.
fn td_class(class: &str, text: &str) -> String {
    format!(r#"<td class="{class}">{}</td>"#, esc(text))
}

/// A unix time on the simulated clock: Beijing time (without the date when it is today's) and
/// how far from now.
pub(super) fn when(now: u64, t: u64) -> String {
    let rel = if t == now {
        "now".to_owned()
    } else if t > now {
        format!("in {}", span(t - now))
    } else {
        format!("{} ago", span(now - t))
    };
    let full = crate::pay::beijing(t, true);
    // The date only when it is not today's (Beijing time, `yyyy-MM-dd HH:mm:ss`).
    match full.split_once(' ') {
        Some((date, time)) if crate::pay::beijing(now, true).starts_with(date) => {
            format!("{time} ({rel})")
        }
        _ => format!("{full} ({rel})"),
    }
}

/// `1h 2m 3s`.
fn span(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m {s}s"),
    }
}

/// An amount in fen as yuan.
fn yuan(fen: u64) -> String {
    format!("¥{}.{:02}", fen / 100, fen % 100)
}

/// A button that POSTs `body` (JSON) to `url`.
fn post_button(class: &str, url: &str, body: &serde_json::Value, label: &str) -> String {
    format!(
        r#"<button type="button" class="{class}" data-action="post" data-url="{}" data-body="{}">{}</button>"#,
        esc(url),
        esc(&body.to_string()),
        esc(label)
    )
}

/// A form that POSTs `body` with the notification mode (and count) chosen to
/// `/_sim/pay/notify`.
fn resend_form(body: &serde_json::Value, modes: &[&str]) -> String {
    let options: String = modes
        .iter()
        .map(|m| format!(r#"<option value="{m}">{m}</option>"#, m = esc(m)))
        .collect();
    format!(
        r#"<form class="resend" data-action="post" data-url="/_sim/pay/notify" data-body="{}"><select name="mode" aria-label="mode">{options}</select><input type="number" name="count" min="1" max="50" placeholder="count" aria-label="count"><button type="submit">re-send</button></form>"#,
        esc(&body.to_string())
    )
}

fn orders(s: &Snapshot) -> String {
    let rows: Vec<String> = s.orders.iter().map(|o| order_row(s.now, o)).collect();
    table(
        "sim-orders",
        "Orders",
        &[
            "api",
            "out_trade_no",
            "state",
            "amount",
            "actions",
            "refunds",
            "notifications",
            "created / paid",
            "payer",
            "description",
            "merchant / app",
        ],
        &rows,
    )
}

fn order_row(now: u64, o: &OrderView) -> String {
    let ident = json!({ "mch_id": o.mch_id });
    let base = format!("/_sim/pay/orders/{}", percent(&o.out_trade_no));
    let mut actions = String::new();
    if o.trade_state == "NOTPAY" {
        if !o.code_url.is_empty() {
            // A waiting Native order: open the phone's scan page for its code.
            let _ = write!(
                actions,
                r#"<a class="scan" href="/_sim/pay/scan?code_url={}" target="_blank" rel="noopener">scan</a>"#,
                esc(&percent(&o.code_url)),
            );
        }
        actions.push_str(&post_button("pay", &format!("{base}/pay"), &ident, "pay"));
        actions.push_str(&post_button(
            "close",
            &format!("{base}/close"),
            &ident,
            "close",
        ));
    }
    let left = o.total_fee.saturating_sub(o.refunded_fee);
    if o.paid_at.is_some() && left > 0 {
        let _ = write!(
            actions,
            r#"<form class="refund" data-action="post" data-url="{}" data-body="{}"><input type="number" name="refund_fee" min="1" max="{left}" value="{left}" aria-label="refund fen"><button type="submit">refund (fen)</button></form>"#,
            esc(&format!("{base}/refund")),
            esc(&ident.to_string()),
        );
    }
    if o.paid_at.is_some() {
        let body = json!({ "out_trade_no": o.out_trade_no, "mch_id": o.mch_id });
        actions.push_str(&resend_form(&body, &o.modes));
    }
    let refunds: String = o
        .refunds
        .iter()
        .map(|r| {
            let body = json!({ "out_refund_no": r.out_refund_no, "mch_id": o.mch_id });
            format!(
                r#"<div class="refund-line">{} {} {}{}</div>"#,
                esc(&r.out_refund_no),
                esc(&yuan(r.refund_fee)),
                esc(r.status),
                if r.status == "SUCCESS" {
                    resend_form(&body, &r.modes)
                } else {
                    String::new()
                }
            )
        })
        .collect();
    let paid = o
        .paid_at
        .map(|t| format!("paid {}", when(now, t)))
        .unwrap_or_default();
    format!(
        r#"<tr class="order" data-out-trade-no="{no}">{}{}{}{}<td class="order-actions">{actions}</td><td>{refunds}</td>{}<td>{}<br>{}</td>{}{}{}</tr>"#,
        td(&format!("{} {}", o.api, o.trade_type)),
        td_class("id", &o.out_trade_no),
        td_class("trade-state", o.trade_state),
        td(&yuan(o.total_fee)),
        td(&format!(
            "{} sent, {} acknowledged",
            o.notifications_sent, o.notifications_acknowledged
        )),
        esc(&when(now, o.created)),
        esc(&paid),
        td_class("id", &o.payer),
        td(&o.description),
        td_class("id", &format!("{} / {}", o.mch_id, o.appid)),
        no = esc(&o.out_trade_no),
    )
}

/// Percent-encodes an order number for a URL path segment (they are `[0-9A-Za-z_-|*@]`, but
/// the console does not rely on it).
fn percent(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn deliveries(s: &Snapshot) -> String {
    let mut out = String::from(r#"<section id="sim-notifications"><h2>Notifications</h2>"#);
    if s.deliveries.is_empty() {
        out.push_str(r#"<p class="muted">none yet</p>"#);
    }
    for d in &s.deliveries {
        out.push_str(&delivery(s.now, d));
    }
    out.push_str("</section>");
    out
}

fn delivery(now: u64, d: &DeliveryView) -> String {
    let r = &d.record;
    let subject = &r.subject;
    let number = subject
        .out_refund_no
        .as_deref()
        .unwrap_or(&subject.out_trade_no);
    let body = match &subject.out_refund_no {
        Some(no) => json!({ "out_refund_no": no, "mch_id": subject.mch_id }),
        None => json!({ "out_trade_no": subject.out_trade_no, "mch_id": subject.mch_id }),
    };
    let mut duplicate = body.clone();
    duplicate["mode"] = json!("duplicate");
    let attempts: Vec<String> = r
        .attempts
        .iter()
        .enumerate()
        .map(|(n, a)| {
            let status = a.status.map_or("unreachable".to_owned(), |s| s.to_string());
            let reply = if a.truncated {
                format!("{}…", a.reply)
            } else {
                a.reply.clone()
            };
            format!(
                r#"<tr class="attempt">{}{}{}{}<td><pre class="reply">{}</pre></td></tr>"#,
                td(&(n + 1).to_string()),
                td(&when(now, a.at)),
                td_class("status", &status),
                td_class("acknowledged", if a.acknowledged { "yes" } else { "no" }),
                esc(&reply),
            )
        })
        .collect();
    let more = r.attempts_made.saturating_sub(r.attempts.len() as u64);
    let more = if more > 0 {
        format!(r#"<p class="muted">{more} more attempts not kept</p>"#)
    } else {
        String::new()
    };
    let attempts_table = if attempts.is_empty() {
        r#"<p class="muted">no attempt yet</p>"#.to_owned()
    } else {
        format!(
            "<table><thead><tr><th>#</th><th>sent</th><th>app's status</th><th>acknowledged</th><th>app's reply (first KiB)</th></tr></thead><tbody>{}</tbody></table>",
            attempts.concat()
        )
    };
    format!(
        r#"<div class="delivery" data-delivery="{id}" data-kind="{kind}" data-number="{number}" data-mode="{mode}"><h3>#{id} {kind} {api} {number} — {mode} — {made} attempt(s) to {url}</h3><div class="delivery-actions">{dup}{form}</div>{attempts_table}{more}</div>"#,
        id = r.id,
        kind = esc(subject.kind),
        api = esc(subject.api),
        number = esc(number),
        mode = esc(&r.mode),
        made = r.attempts_made,
        url = esc(&r.notify_url),
        dup = post_button(
            "resend-duplicate",
            "/_sim/pay/notify",
            &duplicate,
            "re-send (duplicate)"
        ),
        form = resend_form(&body, &d.modes),
    )
}

fn credentials(s: &Snapshot) -> String {
    let now = s.now;
    let tokens: Vec<String> = s
        .tokens
        .iter()
        .map(|t| {
            let replaced = t.replaced_at.map(|r| when(now, r)).unwrap_or_default();
            format!(
                "<tr>{}{}{}{}{}{}</tr>",
                td(&t.appid),
                td(t.kind),
                td(&when(now, t.issued_at)),
                td(&when(now, t.expires_at)),
                td(&replaced),
                td_class("token-state", t.state),
            )
        })
        .collect();
    let tickets: Vec<String> = s
        .tickets
        .iter()
        .map(|t| {
            format!(
                "<tr>{}{}{}</tr>",
                td(&t.appid),
                td(&when(now, t.expires_at)),
                td(t.state)
            )
        })
        .collect();
    let codes: Vec<String> = s
        .codes
        .iter()
        .map(|c| {
            format!(
                "<tr>{}{}{}{}{}{}{}</tr>",
                td(&c.prefix),
                td(&c.appid),
                td(&c.openid),
                td(c.scope),
                td(&when(now, c.issued_at)),
                td(&when(now, c.expires_at)),
                td(c.state)
            )
        })
        .collect();
    let user_tokens: Vec<String> = s
        .user_tokens
        .iter()
        .map(|t| {
            format!(
                "<tr>{}{}{}{}{}</tr>",
                td(&t.appid),
                td(&t.openid),
                td(t.scope),
                td(&when(now, t.expires_at)),
                td(t.state)
            )
        })
        .collect();
    [
        table(
            "sim-tokens",
            "Access tokens (cgi-bin/token, stable_token)",
            &["app", "kind", "issued", "expires", "replaced", "state"],
            &tokens,
        ),
        table(
            "sim-tickets",
            "jsapi tickets",
            &["app", "expires", "state"],
            &tickets,
        ),
        table(
            "sim-codes",
            "OAuth codes",
            &[
                "code", "app", "openid", "scope", "issued", "expires", "state",
            ],
            &codes,
        ),
        table(
            "sim-user-tokens",
            "OAuth user access tokens",
            &["app", "openid", "scope", "expires", "state"],
            &user_tokens,
        ),
    ]
    .concat()
}

fn configuration(s: &Snapshot) -> String {
    let list = |v: &[String]| {
        if v.is_empty() {
            "any".to_owned()
        } else {
            v.join(", ")
        }
    };
    let apps: Vec<String> = s
        .apps
        .iter()
        .map(|a| {
            format!(
                "<tr>{}{}{}{}{}{}</tr>",
                td(&a.appid),
                td(a.kind),
                td(&a.oauth_domains.join(", ")),
                td(&a.js_domains.join(", ")),
                td(&list(&a.ip_whitelist)),
                td(&a.token_daily_quota.to_string()),
            )
        })
        .collect();
    let users: Vec<String> = s
        .users
        .iter()
        .map(|u| {
            format!(
                r#"<tr class="user">{}{}{}{}{}</tr>"#,
                td(&u.appid),
                td_class("nickname", &u.nickname),
                td(&u.openid),
                td(u.unionid.as_deref().unwrap_or("")),
                td(if u.is_snapshotuser {
                    "snapshot user"
                } else {
                    ""
                }),
            )
        })
        .collect();
    let merchants: Vec<String> = s
        .merchants
        .iter()
        .map(|m| {
            let apis = match (m.v2, m.v3) {
                (true, true) => "v2, v3",
                (true, false) => "v2",
                (false, true) => "v3",
                (false, false) => "none",
            };
            format!(
                "<tr>{}{}{}{}{}</tr>",
                td(&m.mch_id),
                td(&m.appids.join(", ")),
                td(apis),
                td(&m.notify_retry_scale.to_string()),
                td(&if m.h5_domains.is_empty() {
                    "no H5".to_owned()
                } else {
                    m.h5_domains.join(", ")
                }),
            )
        })
        .collect();
    [
        table(
            "sim-apps",
            "Apps",
            &[
                "appid",
                "kind",
                "oauth_domains",
                "js_domains",
                "ip_whitelist",
                "daily token quota",
            ],
            &apps,
        ),
        table(
            "sim-users",
            "Users",
            &["app", "nickname", "openid", "unionid", ""],
            &users,
        ),
        table(
            "sim-merchants",
            "Merchants",
            &["mch_id", "apps", "API", "notify_retry_scale", "h5_domains"],
            &merchants,
        ),
    ]
    .concat()
}

fn counters(s: &Snapshot) -> String {
    let calls: Vec<String> = s
        .stats
        .calls
        .iter()
        .map(|(path, n)| format!("<tr>{}{}</tr>", td(path), td(&n.to_string())))
        .collect();
    let injected: Vec<String> = s
        .stats
        .faults
        .injected
        .iter()
        .map(|(kind, n)| format!("<tr>{}{}</tr>", td(kind), td(&n.to_string())))
        .collect();
    let registered = serde_json::to_string_pretty(&s.faults).unwrap_or_default();
    format!(
        r#"<section id="sim-counters"><h2>Counters</h2><p>Notifications: {} sent, {} acknowledged.</p><div class="columns">{}{}</div><h3>Faults registered</h3><pre class="faults">{}</pre></section>"#,
        s.stats.notifications.sent,
        s.stats.notifications.acknowledged,
        table("sim-calls", "Calls by path", &["path", "calls"], &calls),
        table(
            "sim-faults-injected",
            "Faults injected",
            &["kind", "count"],
            &injected
        ),
        esc(&registered),
    )
}

fn requests(s: &Snapshot) -> String {
    let rows: Vec<String> = s
        .requests
        .iter()
        .map(|r| {
            format!(
                r#"<tr class="request">{}{}{}{}{}</tr>"#,
                td(&when(s.now, r.at)),
                td(&r.method),
                td(&r.path),
                td(&r.status.to_string()),
                td(r.errcode.as_deref().unwrap_or("")),
            )
        })
        .collect();
    table(
        "sim-requests",
        "Recent requests (newest first; paths only)",
        &["at", "method", "path", "status", "errcode"],
        &rows,
    )
}
