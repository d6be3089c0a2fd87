//! Web page OAuth (`open.weixin.qq.com/connect/oauth2/authorize` and `api.weixin.qq.com/sns/*`).
//!
//! Protocol reference §1: codes are single use and live 5 minutes; user access tokens live
//! `token_ttl_secs`; refresh tokens 30 days.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use url::Url;

use crate::config::{AppConfig, AppKind, UserConfig};
use crate::console::view::{CODE_PREFIX_CHARS, CodeView, UserTokenView, validity};
use crate::reply::{Params, WxError, html_escape, page, random_token};
use crate::state::{Sim, lock};

/// How long an authorization code lives.
const CODE_TTL_SECS: u64 = 300;
/// A website QR-code login code's lifetime (10 minutes).
const LOGIN_CODE_TTL_SECS: u64 = 600;
/// How long a refresh token lives.
const REFRESH_TTL_SECS: u64 = 30 * 24 * 3600;
/// Expired entries are forgotten this long after they expire (until then they answer
/// "expired" rather than "invalid").
const FORGET_AFTER_SECS: u64 = 2 * 24 * 3600 + REFRESH_TTL_SECS;

/// The routes of this module.
pub(crate) fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/connect/oauth2/authorize", get(authorize).post(consent))
        .route(
            "/connect/qrconnect",
            get(crate::qrconnect::show).post(crate::qrconnect::confirm),
        )
        .route("/sns/oauth2/access_token", get(access_token))
        .route("/sns/oauth2/refresh_token", get(refresh_token))
        .route("/sns/userinfo", get(userinfo))
        .route("/sns/auth", get(auth))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Base,
    UserInfo,
    /// A website application's QR-code login.
    Login,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::Base => "snsapi_base",
            Scope::UserInfo => "snsapi_userinfo",
            Scope::Login => "snsapi_login",
        }
    }

    /// How long a code of this scope can be exchanged: 5 minutes for web OAuth, 10 for
    /// website QR-code login.
    fn code_ttl(self) -> u64 {
        match self {
            Scope::Base | Scope::UserInfo => CODE_TTL_SECS,
            Scope::Login => LOGIN_CODE_TTL_SECS,
        }
    }

    /// Whether a token of this scope may call `sns/userinfo` and carries the unionid.
    fn has_profile(self) -> bool {
        matches!(self, Scope::UserInfo | Scope::Login)
    }
}

#[derive(Debug)]
struct Code {
    appid: String,
    openid: String,
    scope: Scope,
    issued_at: u64,
    used: bool,
}

#[derive(Debug)]
struct UserToken {
    appid: String,
    openid: String,
    scope: Scope,
    expires_at: u64,
}

#[derive(Debug)]
struct Refresh {
    appid: String,
    openid: String,
    scope: Scope,
    expires_at: u64,
    access_token: String,
}

/// OAuth codes and per-user tokens.
#[derive(Debug, Default)]
pub(crate) struct OAuthStore {
    codes: HashMap<String, Code>,
    tokens: HashMap<String, UserToken>,
    refresh: HashMap<String, Refresh>,
}

impl OAuthStore {
    fn forget_old(&mut self, now: u64) {
        let keep = |expires_at: u64| expires_at.saturating_add(FORGET_AFTER_SECS) > now;
        self.codes
            .retain(|_, c| keep(c.issued_at + c.scope.code_ttl()));
        self.tokens.retain(|_, t| keep(t.expires_at));
        self.refresh.retain(|_, r| keep(r.expires_at));
    }

    /// The console's rows: codes by their first characters, user tokens by owner and expiry
    /// (never a token's value); newest first.
    pub(crate) fn console_rows(&self, now: u64) -> (Vec<CodeView>, Vec<UserTokenView>) {
        let mut codes: Vec<CodeView> = self
            .codes
            .iter()
            .map(|(value, c)| {
                let expires_at = c.issued_at + c.scope.code_ttl();
                let state = if c.used {
                    "used"
                } else if now >= expires_at {
                    "expired"
                } else {
                    "unused"
                };
                let prefix: String = value.chars().take(CODE_PREFIX_CHARS).collect();
                CodeView {
                    prefix: format!("{prefix}…"),
                    appid: c.appid.clone(),
                    openid: c.openid.clone(),
                    scope: c.scope.as_str(),
                    issued_at: c.issued_at,
                    expires_at,
                    state,
                }
            })
            .collect();
        codes.sort_by_key(|c| std::cmp::Reverse(c.issued_at));
        let mut tokens: Vec<UserTokenView> = self
            .tokens
            .values()
            .map(|t| UserTokenView {
                appid: t.appid.clone(),
                openid: t.openid.clone(),
                scope: t.scope.as_str(),
                expires_at: t.expires_at,
                state: validity(now, t.expires_at),
            })
            .collect();
        tokens.sort_by_key(|t| std::cmp::Reverse(t.expires_at));
        (codes, tokens)
    }

    /// The user token, checked for existence and expiry.
    fn user_token(&self, now: u64, token: &str) -> Result<&UserToken, WxError> {
        let t = self.tokens.get(token).ok_or(WxError::code(40001))?;
        if now >= t.expires_at {
            return Err(WxError::code(42001));
        }
        Ok(t)
    }
}

// ---------------------------------------------------------------------------------------------
// The authorize page

/// A validated authorize request.
struct Authorize<'a> {
    app: &'a AppConfig,
    redirect_uri: Url,
    scope: Scope,
    state: String,
}

/// WeChat's error page for the authorize step: an optional code (10003…) and a message.
pub(crate) struct ErrorPage {
    code: Option<u32>,
    message: String,
}

pub(crate) fn error_page(code: Option<u32>, message: &str) -> ErrorPage {
    ErrorPage {
        code,
        message: message.to_owned(),
    }
}

impl IntoResponse for ErrorPage {
    fn into_response(self) -> Response {
        let code_html = self
            .code
            .map(|c| format!(r#"<p class="code" id="sim-error-code">{c}</p>"#))
            .unwrap_or_default();
        let body = format!(
            r#"<div class="card">
<h2>Oops! Something went wrong:(</h2>
{code_html}
<p id="sim-error-message">{}</p>
</div>"#,
            html_escape(&self.message)
        );
        page("微信网页授权", &body).into_response()
    }
}

/// The `host` or `host:port` of a URL, as compared with the configured domains.
pub(crate) fn authority(url: &Url) -> Option<String> {
    let host = url.host_str()?.to_ascii_lowercase();
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    })
}

/// Whether `url`'s host (and port) is one of `domains`.
pub(crate) fn domain_allowed(url: &Url, domains: &[String]) -> bool {
    let Some(auth) = authority(url) else {
        return false;
    };
    domains
        .iter()
        .any(|d| d.trim().trim_end_matches('/').eq_ignore_ascii_case(&auth))
}

/// Checks the authorize parameters in WeChat's order; `Err` is the error page.
fn validate<'a>(sim: &'a Sim, p: &Params) -> Result<Authorize<'a>, ErrorPage> {
    let appid = p
        .get("appid")
        .ok_or_else(|| error_page(Some(10012), "appid为空 (appid is empty)"))?;
    let app = sim.app(appid).ok_or_else(|| {
        error_page(
            Some(40013),
            &format!("invalid appid: {appid} is not an app of this simulator"),
        )
    })?;
    if app.kind == AppKind::Website {
        return Err(error_page(
            Some(10016),
            "不支持微信开放平台的Appid，请使用公众号Appid (a website application logs in with /connect/qrconnect)",
        ));
    }
    let raw_redirect = p
        .get("redirect_uri")
        .ok_or_else(|| error_page(Some(10011), "redirect_uri为空 (redirect_uri is empty)"))?;
    let redirect_uri = Url::parse(raw_redirect)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .filter(|u| domain_allowed(u, &app.oauth_domains))
        .ok_or_else(|| {
            error_page(
                Some(10003),
                &format!(
                    "redirect_uri域名与后台配置不一致 (the domain of redirect_uri {raw_redirect} \
                     is not among the app's OAuth domains {:?})",
                    app.oauth_domains
                ),
            )
        })?;
    if p.get("response_type") != Some("code") {
        return Err(error_page(
            None,
            "response_type参数错误 (response_type must be \"code\")",
        ));
    }
    let scope = match p.get("scope") {
        None => return Err(error_page(Some(10010), "scope为空 (scope is empty)")),
        Some("snsapi_base") => Scope::Base,
        Some("snsapi_userinfo") => Scope::UserInfo,
        Some(other) => {
            return Err(error_page(
                Some(10005),
                &format!("此公众号并没有这些scope的权限 (no permission for scope {other})"),
            ));
        }
    };
    let state = p.get("state").unwrap_or("").to_owned();
    if state.len() > 128 || !state.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(error_page(
            None,
            "state参数错误 (state must be at most 128 characters of a-zA-Z0-9)",
        ));
    }
    Ok(Authorize {
        app,
        redirect_uri,
        scope,
        state,
    })
}

/// A 302 to `redirect_uri` with `code` (when granted) and `state`.
pub(crate) fn redirect_back(mut redirect_uri: Url, code: Option<&str>, state: &str) -> Response {
    {
        let mut q = redirect_uri.query_pairs_mut();
        if let Some(code) = code {
            q.append_pair("code", code);
        }
        q.append_pair("state", state);
    }
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, redirect_uri.to_string()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response()
}

pub(crate) fn issue_code(sim: &Sim, appid: &str, openid: &str, scope: Scope) -> String {
    let now = sim.now_secs();
    let code = random_token(32);
    let mut store = lock(&sim.oauth);
    store.forget_old(now);
    store.codes.insert(
        code.clone(),
        Code {
            appid: appid.to_owned(),
            openid: openid.to_owned(),
            scope,
            issued_at: now,
            used: false,
        },
    );
    code
}

/// `GET /connect/oauth2/authorize`: snsapi_base logs the app's first user in at once;
/// snsapi_userinfo shows the consent page.
async fn authorize(State(sim): State<Arc<Sim>>, p: Params) -> Response {
    let req = match validate(&sim, &p) {
        Ok(req) => req,
        Err(page) => return page.into_response(),
    };
    let users: Vec<&UserConfig> = sim.users_of(&req.app.appid).collect();
    let Some(first) = users.first() else {
        return error_page(
            None,
            &format!(
                "wechat-sim: no [[users]] configured for appid {}",
                req.app.appid
            ),
        )
        .into_response();
    };
    match req.scope {
        Scope::Base => {
            let openid = first.openid.as_deref().unwrap_or_default();
            let code = issue_code(&sim, &req.app.appid, openid, Scope::Base);
            redirect_back(req.redirect_uri, Some(&code), &req.state)
        }
        Scope::UserInfo | Scope::Login => consent_page(&req, &users, &p),
    }
}

fn consent_page(req: &Authorize<'_>, users: &[&UserConfig], p: &Params) -> Response {
    let hidden = |name: &str, value: &str| {
        format!(
            r#"<input type="hidden" name="{name}" value="{}">"#,
            html_escape(value)
        )
    };
    let mut list = String::new();
    for (i, user) in users.iter().enumerate() {
        let openid = user.openid.as_deref().unwrap_or_default();
        let avatar = if user.headimgurl.is_empty() {
            String::new()
        } else {
            format!(r#"<img src="{}" alt="">"#, html_escape(&user.headimgurl))
        };
        list.push_str(&format!(
            r#"<label class="user"><input type="radio" name="openid" value="{openid}"{checked}>{avatar}<span><b>{nick}</b><br><span class="muted">{openid}</span></span></label>
"#,
            openid = html_escape(openid),
            checked = if i == 0 { " checked" } else { "" },
            nick = html_escape(&user.nickname),
        ));
    }
    let body = format!(
        r#"<form method="post" action="/connect/oauth2/authorize" class="card">
<h2>网页授权</h2>
<p>{appid} 申请获得以下权限：获得你的公开信息（昵称、头像、地区及性别）</p>
<p class="muted">This page wants your public profile (nickname, avatar, region, sex). Choose who you are:</p>
{hidden}
{list}
<button type="submit" id="sim-consent-allow" name="action" value="allow">允许 Allow</button>
<button type="submit" id="sim-consent-deny" name="action" value="deny">拒绝 Deny</button>
</form>"#,
        appid = html_escape(&req.app.appid),
        hidden = [
            hidden("appid", &req.app.appid),
            hidden("redirect_uri", p.get("redirect_uri").unwrap_or_default()),
            hidden("response_type", "code"),
            hidden("scope", req.scope.as_str()),
            hidden("state", &req.state),
        ]
        .concat(),
    );
    page("微信授权", &body).into_response()
}

/// `POST /connect/oauth2/authorize`: the consent form's answer.
async fn consent(State(sim): State<Arc<Sim>>, body: String) -> Response {
    let p = Params::parse(&body);
    let req = match validate(&sim, &p) {
        Ok(req) => req,
        Err(page) => return page.into_response(),
    };
    match p.get("action") {
        Some("allow") => {}
        Some("deny") => return redirect_back(req.redirect_uri, None, &req.state),
        _ => {
            return error_page(
                None,
                "wechat-sim: the form needs action=allow or action=deny",
            )
            .into_response();
        }
    }
    let Some(user) = p.get("openid").and_then(|o| sim.user(&req.app.appid, o)) else {
        return error_page(
            None,
            "wechat-sim: choose one of the app's users (openid is missing or unknown)",
        )
        .into_response();
    };
    let openid = user.openid.as_deref().unwrap_or_default();
    let code = issue_code(&sim, &req.app.appid, openid, req.scope);
    redirect_back(req.redirect_uri, Some(&code), &req.state)
}

// ---------------------------------------------------------------------------------------------
// api.weixin.qq.com/sns/*

/// The reply shared by the code exchange and the refresh.
fn token_reply(
    sim: &Sim,
    access_token: &str,
    expires_in: u64,
    refresh_token: &str,
    appid: &str,
    openid: &str,
    scope: Scope,
) -> Json<Value> {
    let mut body = json!({
        "access_token": access_token,
        "expires_in": expires_in,
        "refresh_token": refresh_token,
        "openid": openid,
        "scope": scope.as_str(),
    });
    let user = sim.user(appid, openid);
    if scope.has_profile() {
        if let Some(unionid) = user.and_then(|u| u.unionid.as_deref()) {
            body["unionid"] = json!(unionid);
        }
    }
    if user.is_some_and(|u| u.is_snapshotuser) {
        body["is_snapshotuser"] = json!(1);
    }
    Json(body)
}

/// Checks `appid` (41002, 40013) and returns the app.
fn known_app<'a>(sim: &'a Sim, p: &Params) -> Result<&'a AppConfig, WxError> {
    let appid = p.get("appid").ok_or(WxError::code(41002))?;
    sim.app(appid).ok_or(WxError::code(40013))
}

/// `GET /sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code`
async fn access_token(State(sim): State<Arc<Sim>>, p: Params) -> Result<Json<Value>, WxError> {
    let app = known_app(&sim, &p)?;
    let secret = p.get("secret").ok_or(WxError::code(41004))?;
    if secret != app.secret {
        return Err(WxError::code(40125));
    }
    let code = p.get("code").ok_or(WxError::code(41008))?;
    if p.get("grant_type") != Some("authorization_code") {
        return Err(WxError::code(40002));
    }
    let now = sim.now_secs();
    let ttl = sim.config.token_ttl_secs;
    let mut store = lock(&sim.oauth);
    let entry = store
        .codes
        .get_mut(code)
        .filter(|c| c.appid == app.appid)
        .ok_or(WxError::code(40029))?;
    if entry.used {
        return Err(WxError::code(40163));
    }
    if now >= entry.issued_at + entry.scope.code_ttl() {
        return Err(WxError::code(42003));
    }
    entry.used = true;
    let (openid, scope) = (entry.openid.clone(), entry.scope);
    let access = random_token(96);
    let refresh = random_token(96);
    store.tokens.insert(
        access.clone(),
        UserToken {
            appid: app.appid.clone(),
            openid: openid.clone(),
            scope,
            expires_at: now + ttl,
        },
    );
    store.refresh.insert(
        refresh.clone(),
        Refresh {
            appid: app.appid.clone(),
            openid: openid.clone(),
            scope,
            expires_at: now + REFRESH_TTL_SECS,
            access_token: access.clone(),
        },
    );
    drop(store);
    tracing::debug!(appid = %app.appid, %openid, scope = scope.as_str(), "code exchanged");
    Ok(token_reply(
        &sim, &access, ttl, &refresh, &app.appid, &openid, scope,
    ))
}

/// `GET /sns/oauth2/refresh_token?appid&grant_type=refresh_token&refresh_token`: a still valid
/// access token is kept and its expiry extended; an expired one is replaced.
async fn refresh_token(State(sim): State<Arc<Sim>>, p: Params) -> Result<Json<Value>, WxError> {
    let app = known_app(&sim, &p)?;
    if p.get("grant_type") != Some("refresh_token") {
        return Err(WxError::code(40002));
    }
    let refresh = p.get("refresh_token").ok_or(WxError::code(41003))?;
    let now = sim.now_secs();
    let ttl = sim.config.token_ttl_secs;
    let mut store = lock(&sim.oauth);
    let entry = store
        .refresh
        .get(refresh)
        .filter(|r| r.appid == app.appid)
        .ok_or(WxError::code(40030))?;
    if now >= entry.expires_at {
        return Err(WxError::code(42002));
    }
    let (openid, scope, old) = (
        entry.openid.clone(),
        entry.scope,
        entry.access_token.clone(),
    );
    let access = match store.tokens.get_mut(&old) {
        Some(t) if now < t.expires_at => {
            t.expires_at = now + ttl;
            old
        }
        _ => {
            store.tokens.remove(&old);
            let access = random_token(96);
            store.tokens.insert(
                access.clone(),
                UserToken {
                    appid: app.appid.clone(),
                    openid: openid.clone(),
                    scope,
                    expires_at: now + ttl,
                },
            );
            if let Some(r) = store.refresh.get_mut(refresh) {
                r.access_token = access.clone();
            }
            access
        }
    };
    drop(store);
    Ok(token_reply(
        &sim, &access, ttl, refresh, &app.appid, &openid, scope,
    ))
}

/// Checks `access_token` and `openid` of a `sns/*` call; returns the user token's scope.
fn check_user_call(sim: &Sim, p: &Params) -> Result<(String, String, Scope), WxError> {
    let token = p.get("access_token").ok_or(WxError::code(41001))?;
    let openid = p.get("openid").ok_or(WxError::code(41009))?;
    let store = lock(&sim.oauth);
    let t = store.user_token(sim.now_secs(), token)?;
    if t.openid != openid {
        return Err(WxError::code(40003));
    }
    Ok((t.appid.clone(), t.openid.clone(), t.scope))
}

/// `GET /sns/userinfo?access_token&openid&lang`: needs a snsapi_userinfo token (48001 otherwise,
/// and for snapshot users).
async fn userinfo(State(sim): State<Arc<Sim>>, p: Params) -> Result<Json<Value>, WxError> {
    let (appid, openid, scope) = check_user_call(&sim, &p)?;
    if !matches!(p.get("lang"), None | Some("zh_CN" | "zh_TW" | "en")) {
        return Err(WxError::code(40097));
    }
    let user = sim.user(&appid, &openid).ok_or(WxError::code(40003))?;
    if !scope.has_profile() || user.is_snapshotuser {
        return Err(WxError::code(48001));
    }
    let mut body = json!({
        "openid": openid,
        "nickname": user.nickname,
        "sex": user.sex,
        "province": user.province,
        "city": user.city,
        "country": user.country,
        "headimgurl": user.headimgurl,
        "privilege": [],
    });
    if let Some(unionid) = &user.unionid {
        body["unionid"] = json!(unionid);
    }
    Ok(Json(body))
}

/// `GET /sns/auth?access_token&openid`: `{"errcode":0,"errmsg":"ok"}` when the token is valid
/// for that openid.
async fn auth(State(sim): State<Arc<Sim>>, p: Params) -> Result<Json<Value>, WxError> {
    check_user_call(&sim, &p)?;
    Ok(Json(json!({"errcode": 0, "errmsg": "ok"})))
}
