//! open.weixin.qq.com `/connect/qrconnect`: website QR-code login (网站应用 微信登录) for an
//! Open Platform website application (`[[apps]] kind = "website"`).
//!
//! `GET /connect/qrconnect?appid&redirect_uri&response_type=code&scope=snsapi_login&state` is
//! WeChat's page with the QR code; the embedded variant (`login_type=jssdk`, `self_redirect`,
//! `style`, `href`, `stylelite`, `fast_login`, as wxLogin.js frames it) is accepted alike. Its
//! checks and texts are WeChat's: an unknown AppID (`AppID 参数错误`), an AppID that is not a
//! website application or a scope other than `snsapi_login` (`Scope 参数错误或没有 Scope 权限`),
//! a `redirect_uri` outside the app's callback domains (`redirect_uri 参数错误`). The simulator
//! stands in for the phone that scans: the page lists the app's users, each with a **确认登录**
//! button, and **取消**; `POST /connect/qrconnect` (the same parameters, `openid`, `action` =
//! `allow`|`deny`) redirects to `redirect_uri?code=CODE&state=STATE`, or without a code when the
//! user refused. The code lives 10 minutes and is exchanged once, with the website app's secret,
//! at `sns/oauth2/access_token` (scope `snsapi_login`, with the `unionid`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use url::Url;

use crate::config::{AppConfig, AppKind};
use crate::oauth::{Scope, domain_allowed, issue_code, redirect_back};
use crate::reply::{Params, html_escape, page};
use crate::state::Sim;

/// WeChat's refusal page for the QR login, with its text (a 400, so that tests see it).
struct Refused(&'static str);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let body = format!(
            r#"<div class="card"><h2>微信登录</h2><p id="sim-error-message">{}</p></div>"#,
            html_escape(self.0)
        );
        (StatusCode::BAD_REQUEST, page("微信登录", &body)).into_response()
    }
}

fn refused(text: &'static str) -> Refused {
    Refused(text)
}

/// A checked QR login request.
struct QrLogin<'a> {
    app: &'a AppConfig,
    redirect_uri: Url,
    state: String,
}

/// WeChat's checks, in its order.
fn validate<'a>(sim: &'a Sim, p: &Params) -> Result<QrLogin<'a>, Refused> {
    let app = p
        .get("appid")
        .and_then(|appid| sim.app(appid))
        .ok_or_else(|| refused("AppID 参数错误"))?;
    if app.kind != AppKind::Website || p.get("scope") != Some("snsapi_login") {
        return Err(refused("Scope 参数错误或没有 Scope 权限"));
    }
    let redirect_uri = p
        .get("redirect_uri")
        .and_then(|r| Url::parse(r).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .filter(|u| domain_allowed(u, &app.oauth_domains))
        .ok_or_else(|| refused("redirect_uri 参数错误"))?;
    if p.get("response_type") != Some("code") {
        return Err(refused("response_type 参数错误"));
    }
    let state = p.get("state").unwrap_or("").to_owned();
    if state.len() > 128 || !state.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(refused("state 参数错误"));
    }
    Ok(QrLogin {
        app,
        redirect_uri,
        state,
    })
}

/// `GET /connect/qrconnect`: the QR code page, with the app's users standing in for the phone.
pub(crate) async fn show(State(sim): State<Arc<Sim>>, p: Params) -> Response {
    let req = match validate(&sim, &p) {
        Ok(req) => req,
        Err(refusal) => return refusal.into_response(),
    };
    let hidden: String = [
        ("appid", req.app.appid.as_str()),
        ("redirect_uri", p.get("redirect_uri").unwrap_or_default()),
        ("response_type", "code"),
        ("scope", "snsapi_login"),
        ("state", req.state.as_str()),
    ]
    .iter()
    .map(|(name, value)| {
        format!(
            r#"<input type="hidden" name="{name}" value="{}">"#,
            html_escape(value)
        )
    })
    .collect();
    let mut users = String::new();
    for user in sim.users_of(&req.app.appid) {
        let Some(openid) = user.openid.as_deref() else {
            continue;
        };
        users.push_str(&format!(
            r#"<form method="post" action="/connect/qrconnect" class="user">{hidden}<input type="hidden" name="openid" value="{openid}"><span><b>{nick}</b><br><span class="muted">{openid}</span></span><button type="submit" name="action" value="allow" id="sim-login-as-{openid}">确认登录</button></form>"#,
            openid = html_escape(openid),
            nick = html_escape(&user.nickname),
        ));
    }
    let body = format!(
        r#"<div class="card"><h2>微信登录</h2><p>请使用微信扫描二维码登录 {appid}</p><p class="muted">wechat-sim: the phone that scans is one of the app's users below.</p></div>
<div class="card">{users}<form method="post" action="/connect/qrconnect">{hidden}<button type="submit" name="action" value="deny" id="sim-login-deny">取消</button></form></div>"#,
        appid = html_escape(&req.app.appid),
    );
    page("微信登录", &body).into_response()
}

/// `POST /connect/qrconnect`: the scanning phone's answer.
pub(crate) async fn confirm(State(sim): State<Arc<Sim>>, body: String) -> Response {
    let p = Params::parse(&body);
    let req = match validate(&sim, &p) {
        Ok(req) => req,
        Err(refusal) => return refusal.into_response(),
    };
    match p.get("action") {
        Some("allow") => {}
        Some("deny") => return redirect_back(req.redirect_uri, None, &req.state),
        _ => {
            return refused("wechat-sim: the form needs action=allow or action=deny")
                .into_response();
        }
    }
    let Some(user) = p.get("openid").and_then(|o| sim.user(&req.app.appid, o)) else {
        return refused("wechat-sim: choose one of the app's users (openid is missing or unknown)")
            .into_response();
    };
    let openid = user.openid.as_deref().unwrap_or_default();
    let code = issue_code(&sim, &req.app.appid, openid, Scope::Login);
    redirect_back(req.redirect_uri, Some(&code), &req.state)
}
