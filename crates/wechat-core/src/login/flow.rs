//! The login flow: [`LoginFlow`] and its [`Decision`]s.

use crate::metrics::LoginOutcome;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts;
use http::{Method, Response, StatusCode};

use super::LoginConfig;
use super::request::{CallbackQuery, is_page_load, query_param};
use crate::oauth::{OAuthClient, Scope, encode_component};
use crate::response::{
    Audience, base_response, error_answer, html_form_page, html_page, method_not_allowed, redirect,
};
use crate::session::{
    OAuthState, Profile, SessionUser, cookie_values, safe_return_path, set_cookie_value,
};
use crate::{ApiError, ApiErrorKind, Error, Result};

/// How many logins may be pending at once in one browser (e.g. two tabs).
const MAX_PENDING_NONCES: usize = 4;
const NONCE_LEN: usize = 16;

/// What the login middleware does with a request; see [`LoginFlow`].
#[derive(Debug)]
#[must_use = "the adapter must act on the decision"]
pub enum Decision {
    /// Pass the request to the inner service, after [`Proceed::apply`] has put what the
    /// extractors read into the request extensions.
    Proceed(Proceed),
    /// Send this response instead: a redirect to WeChat, a 401 JSON, a logout redirect…
    Respond(Response<Bytes>),
    /// This is the OAuth callback: send the response of [`LoginFlow::handle_callback`].
    Callback,
}

/// A request that goes on to the inner service, and what goes into its extensions with it.
///
/// With a valid session, the [`SessionUser`] (replacing any value an earlier layer put there).
/// Without one, only on excluded paths: any [`SessionUser`] is removed and a clone of the
/// [`LoginFlow`] is inserted instead, so that extractors can answer
/// [`LoginFlow::login_required`]. One value per request: this is the hot path.
#[derive(Debug)]
#[must_use = "the adapter must apply it to the request's extensions"]
pub struct Proceed {
    with: ProceedWith,
}

#[derive(Debug)]
enum ProceedWith {
    User(Arc<SessionUser>),
    Anonymous(LoginFlow),
}

impl Proceed {
    pub(crate) fn user(user: Arc<SessionUser>) -> Self {
        Self {
            with: ProceedWith::User(user),
        }
    }

    pub(crate) fn anonymous(flow: &LoginFlow) -> Self {
        Self {
            with: ProceedWith::Anonymous(flow.clone()),
        }
    }

    /// The session's user; `None` on an excluded path without a session.
    pub fn session_user(&self) -> Option<&SessionUser> {
        match &self.with {
            ProceedWith::User(user) => Some(&**user),
            ProceedWith::Anonymous(_) => None,
        }
    }

    /// The session's user, by value.
    pub fn into_session_user(self) -> Option<SessionUser> {
        match self.with {
            ProceedWith::User(user) => Some(Arc::unwrap_or_clone(user)),
            ProceedWith::Anonymous(_) => None,
        }
    }

    /// Puts the user (as an `Arc<SessionUser>`, shared with the session cache: no copy per
    /// request; read it with [`SessionUser::from_extensions`]) or, without one, the flow into the
    /// request's `extensions`, replacing or removing what an earlier layer may have put there:
    /// only the login middleware says who the user is.
    pub fn apply<E: crate::adapter::RequestExtensions>(self, extensions: &mut E) {
        match self.with {
            ProceedWith::User(user) => extensions.insert(user),
            ProceedWith::Anonymous(flow) => {
                extensions.remove::<Arc<SessionUser>>();
                extensions.insert(flow);
            }
        }
    }
}

/// The login flow: an [`OAuthClient`] and a [`LoginConfig`]. Cheap to clone (an `Arc` inside).
///
/// Everything the login middleware decides lives here: whether a request has a valid session,
/// where to send a browser without one, how the OAuth callback is checked, and which cookies are
/// set. `wechat-tower` and `wechat-actix` only translate a [`Decision`] into their framework:
///
/// - [`Decision::Proceed`]: [`Proceed::apply`] the user (or, on an excluded path without a
///   session, the flow) to the request extensions, then call the inner service.
/// - [`Decision::Respond`]: send this response instead (a redirect to WeChat, a 401 JSON, …).
/// - [`Decision::Callback`]: await [`LoginFlow::handle_callback`] and send its response.
///
/// Behaviour:
/// - A request with a valid session cookie proceeds with its user. Excluded path prefixes
///   (notification routes, static files, health checks) proceed with or without one.
/// - A page load without a session (a `GET` whose `Sec-Fetch-Mode` is `navigate`, or, when the
///   browser sends no `Sec-Fetch-Mode`, whose `Accept` names `text/html`) gets a 302 to WeChat's
///   authorize URL with a signed [`OAuthState`] carrying the original path and query, and a
///   short-lived `HttpOnly; SameSite=Lax` cookie ([`LoginConfig::state_cookie_name`], path = the
///   callback path) holding the state's nonce, which binds the state to this browser.
/// - Any other request without a session (non-GET, `fetch`/XHR) gets 401 with
///   `{"error":"login_required","message":"…","login_url":"…"}`; opening `login_url` in the
///   browser logs in and comes back to the page that made the request (from `Referer`).
/// - The callback checks the state (forged, expired, or not issued to this browser: 400, never a
///   redirect), shows a page when the user declined (403), exchanges the code, fetches the
///   profile for `snsapi_userinfo` (not for snapshot users), sets the session cookie and
///   redirects (302) to the return path. A used or invalid code (40163, 40029, 42003, e.g. the
///   user pressed back) restarts the login once; a second failure shows a page. Other WeChat
///   errors give 502 with the error's message.
/// - `GET {login_path}?r=/path` (default `/wechat/oauth/login`) starts a login (or, with a valid
///   session, redirects to `/path`); `{logout_path}?r=/path` (default `/wechat/oauth/logout`)
///   removes the session and redirects (303) to `/path`, for requests from this site's own
///   pages only: a POST (a form on the page), or a GET whose `Sec-Fetch-Site` is `same-origin`
///   or `none`. Anything else (a link or image on another site) gets a 403 page whose button
///   logs out with a POST.
///
/// ```
/// use http::{Request, StatusCode};
/// use wechat_core::{BaseUrls, Config};
/// use wechat_core::login::{Decision, LoginConfig, LoginFlow};
/// use wechat_core::oauth::{OAuthClient, Scope};
/// use wechat_core::session::SessionKeys;
///
/// let config = Config::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef")
///     .with_base_urls(BaseUrls::all("http://127.0.0.1:9000"));
/// let client = OAuthClient::new(&config, reqwest::Client::new());
/// let login = LoginConfig::builder("https://shop.example.com", SessionKeys::generate())
///     .scope(Scope::UserInfo)
///     .exclude("/wechat/pay/notify")
///     .exclude("/static")
///     .build()?;
/// let flow = LoginFlow::new(client, login);
///
/// // A browser opening a page without a session goes to WeChat.
/// let (parts, ()) = Request::get("/shop?item=42")
///     .header("accept", "text/html,application/xhtml+xml")
///     .body(())
///     .unwrap()
///     .into_parts();
/// let Decision::Respond(response) = flow.decide(&parts) else { panic!("expected a redirect") };
/// assert_eq!(response.status(), StatusCode::FOUND);
/// let location = response.headers()["location"].to_str().unwrap();
/// assert!(location.starts_with("http://127.0.0.1:9000/connect/oauth2/authorize?appid=wx1234567890abcdef&redirect_uri=https%3A%2F%2Fshop.example.com%2Fwechat%2Foauth%2Fcallback%3Fr%3D%252Fshop%253Fitem%253D42&response_type=code&scope=snsapi_userinfo&state="));
///
/// // A fetch without a session gets 401 JSON; an excluded path proceeds.
/// let (parts, ()) = Request::post("/api/cart").body(()).unwrap().into_parts();
/// let Decision::Respond(response) = flow.decide(&parts) else { panic!("expected 401") };
/// assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
/// let (parts, ()) = Request::post("/wechat/pay/notify").body(()).unwrap().into_parts();
/// assert!(matches!(flow.decide(&parts), Decision::Proceed(p) if p.session_user().is_none()));
/// # Ok::<(), wechat_core::Error>(())
/// ```
///
/// # Security
/// See [`OAuthState`] (CSRF, open redirects) and [`SessionCookie`](crate::session::SessionCookie) (the session). The public URL
/// must be the one browsers use: its host has to be the account's OAuth callback domain
/// (WeChat shows error 10003 otherwise), and an `https` URL makes the cookies `Secure`.
#[derive(Clone)]
pub struct LoginFlow {
    inner: Arc<FlowInner>,
}

struct FlowInner {
    client: OAuthClient,
    config: LoginConfig,
    callback_url: String,
    state_cookie: String,
}

impl std::fmt::Debug for LoginFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginFlow")
            .field("client", &self.inner.client)
            .field("config", &self.inner.config)
            .finish()
    }
}

impl LoginFlow {
    /// A flow for `client`'s app with `config`. The session cookie and the OAuth state are
    /// bound to the client's app id: another app sharing the same keys accepts neither.
    pub fn new(client: OAuthClient, mut config: LoginConfig) -> Self {
        config.session = config.session.for_app(client.appid());
        let callback_url = config.callback_url();
        let state_cookie = config.state_cookie_name();
        Self {
            inner: Arc::new(FlowInner {
                client,
                config,
                callback_url,
                state_cookie,
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &LoginConfig {
        &self.inner.config
    }

    /// The OAuth client.
    pub fn client(&self) -> &OAuthClient {
        &self.inner.client
    }

    /// The user of a valid session cookie in `headers`, if any.
    pub fn current_user(&self, headers: &HeaderMap) -> Option<SessionUser> {
        self.inner.config.session.read(headers)
    }

    /// The absolute URL that starts a login and returns to `return_path` (sanitized) afterwards:
    /// `{public_url}{login_path}?r=…`. Link to it, or open it from JavaScript after a 401.
    pub fn login_url(&self, return_path: &str) -> String {
        let config = &self.inner.config;
        let return_path = safe_return_path(return_path);
        if return_path == "/" {
            format!("{}{}", config.public_url, config.login_path)
        } else {
            format!(
                "{}{}?{}={}",
                config.public_url,
                config.login_path,
                crate::session::RETURN_PARAM,
                encode_component(return_path)
            )
        }
    }

    /// Decides what to do with a request; see [`LoginFlow`]. Never blocks or fails.
    pub fn decide(&self, parts: &Parts) -> Decision {
        let config = &self.inner.config;
        let path = parts.uri.path();
        if path == config.callback_path {
            return Decision::Callback;
        }
        let now = config.session.now();
        if path == config.login_path {
            if parts.method != Method::GET {
                return Decision::Respond(method_not_allowed("GET"));
            }
            let wanted = query_param(parts.uri.query(), crate::session::RETURN_PARAM);
            let return_path = safe_return_path(wanted.as_deref().unwrap_or("/"));
            if config.session.read_at(&parts.headers, now).is_some() {
                return Decision::Respond(redirect(StatusCode::FOUND, return_path));
            }
            return Decision::Respond(self.redirect_to_wechat(
                &parts.headers,
                return_path,
                false,
                None,
                now,
            ));
        }
        if path == config.logout_path {
            let wanted = query_param(parts.uri.query(), crate::session::RETURN_PARAM);
            let return_path = wanted.as_deref().unwrap_or("/");
            return Decision::Respond(match logout_check(parts, &config.public_url) {
                LogoutCheck::Allowed => self.logout(return_path),
                LogoutCheck::Confirm => self.confirm_logout(return_path),
                LogoutCheck::BadMethod => method_not_allowed("GET, POST"),
            });
        }
        if let Some(user) = config.session.read_shared_at(&parts.headers, now) {
            return Decision::Proceed(Proceed::user(user));
        }
        if config.is_excluded(path) {
            return Decision::Proceed(Proceed::anonymous(self));
        }
        if is_page_load(&parts.method, &parts.headers) {
            let original = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
            Decision::Respond(self.redirect_to_wechat(&parts.headers, original, false, None, now))
        } else {
            Decision::Respond(self.login_required(parts))
        }
    }

    /// The common case of [`decide`](Self::decide); see [`adapter::fast_proceed`](crate::adapter::fast_proceed).
    pub(crate) fn fast_proceed<'a>(
        &self,
        path: &str,
        cookie_headers: impl IntoIterator<Item = &'a [u8]>,
    ) -> Option<Proceed> {
        let config = &self.inner.config;
        if path == config.callback_path || path == config.login_path || path == config.logout_path {
            return None;
        }
        config
            .session
            .read_values(cookie_headers.into_iter(), config.session.now())
            .map(Proceed::user)
    }

    /// The 401 answer for a request without a session that is not a page load:
    /// `{"error":"login_required","message":"…","login_url":"…"}`, where `login_url` returns to
    /// the page named by the request's `Referer` when it is on this site. Extractors use it on
    /// excluded paths.
    pub fn login_required(&self, parts: &Parts) -> Response<Bytes> {
        let return_path = self.referer_path(&parts.headers).unwrap_or("/");
        let body = serde_json::json!({
            "error": "login_required",
            "message": "Log in with WeChat first: open login_url in the browser, then retry.",
            "login_url": self.login_url(return_path),
        });
        base_response(
            StatusCode::UNAUTHORIZED,
            Some("application/json"),
            body.to_string(),
        )
    }

    /// The path and query of `Referer` when it is a page of this site.
    fn referer_path<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        let referer = headers.get(header::REFERER)?.to_str().ok()?;
        let rest = referer.strip_prefix(self.inner.config.public_url.as_str())?;
        let rest = rest.split('#').next().unwrap_or("");
        match rest {
            "" => Some("/"),
            rest if rest.starts_with('/') => Some(safe_return_path(rest)),
            _ => None,
        }
    }

    /// A response that removes the session (and any pending login) and redirects (303) to
    /// `return_path` (sanitized).
    pub fn logout(&self, return_path: &str) -> Response<Bytes> {
        let mut response = redirect(StatusCode::SEE_OTHER, safe_return_path(return_path));
        let headers = response.headers_mut();
        headers.append(header::SET_COOKIE, self.clear_session_cookie());
        if let Ok(clear_state) = self.state_cookie_header(&[]) {
            headers.append(header::SET_COOKIE, clear_state);
        }
        response
    }

    /// The page shown for a logout that may come from another site (a GET without a
    /// same-origin `Sec-Fetch-Site`): a button that logs out with a same-origin POST.
    fn confirm_logout(&self, return_path: &str) -> Response<Bytes> {
        let config = &self.inner.config;
        let return_path = safe_return_path(return_path);
        let action = if return_path == "/" {
            config.logout_path.clone()
        } else {
            format!(
                "{}?{}={}",
                config.logout_path,
                crate::session::RETURN_PARAM,
                encode_component(return_path)
            )
        };
        html_form_page(
            StatusCode::FORBIDDEN,
            "Log out",
            "Log out of this site?",
            &action,
            "Log out",
        )
    }

    /// A `Set-Cookie` value that removes the session cookie.
    pub fn clear_session_cookie(&self) -> HeaderValue {
        self.inner.config.session.clear_cookie()
    }

    /// The nonces of pending logins in this browser's state cookie.
    fn pending_nonces(&self, headers: &HeaderMap) -> Vec<String> {
        let mut nonces: Vec<String> = Vec::new();
        for value in cookie_values(headers, &self.inner.state_cookie) {
            for nonce in value.split('.') {
                if nonce.len() == NONCE_LEN
                    && nonce.bytes().all(|b| b.is_ascii_alphanumeric())
                    && !nonces.iter().any(|n| n == nonce)
                {
                    nonces.push(nonce.to_owned());
                }
            }
        }
        nonces
    }

    /// The `Set-Cookie` value holding `nonces` (or removing the cookie when empty).
    fn state_cookie_header(&self, nonces: &[String]) -> Result<HeaderValue> {
        let config = &self.inner.config;
        let max_age = if nonces.is_empty() {
            0
        } else {
            config.state_ttl.as_secs()
        };
        set_cookie_value(
            &self.inner.state_cookie,
            &nonces.join("."),
            &config.callback_path,
            max_age,
            config.session.secure(),
        )
    }

    /// A 302 to WeChat's authorize page with a new state for `return_path`, remembering its
    /// nonce in the state cookie (dropping `used`, the nonce of a finished attempt).
    fn redirect_to_wechat(
        &self,
        headers: &HeaderMap,
        return_path: &str,
        retry: bool,
        used: Option<&str>,
        now: u64,
    ) -> Response<Bytes> {
        let config = &self.inner.config;
        let state = OAuthState::issue_at(
            config.session.keys(),
            self.inner.client.appid(),
            return_path,
            config.state_ttl,
            retry,
            now,
        );
        let redirect_uri = state.redirect_uri(&self.inner.callback_url);
        let location = self
            .inner
            .client
            .authorize_url(&redirect_uri, config.scope, state.as_str());
        let mut nonces = self.pending_nonces(headers);
        nonces.retain(|n| Some(n.as_str()) != used);
        nonces.push(state.nonce().to_owned());
        let excess = nonces.len().saturating_sub(MAX_PENDING_NONCES);
        nonces.drain(..excess);
        let mut response = redirect(StatusCode::FOUND, &location);
        match self.state_cookie_header(&nonces) {
            Ok(cookie) => {
                response.headers_mut().append(header::SET_COOKIE, cookie);
                response
            }
            Err(e) => self.error_page(StatusCode::INTERNAL_SERVER_ERROR, &e),
        }
    }

    /// The page for a login that failed on WeChat's side or ours: a short message with an
    /// error id for the user; the details (WeChat's message, an IP to whitelist) go to the log
    /// under that id.
    fn error_page(&self, status: StatusCode, error: &Error) -> Response<Bytes> {
        error_answer(
            error,
            Audience::LoginPage {
                status,
                retry: &self.login_url("/"),
            },
        )
    }

    /// Handles the OAuth callback (`GET {callback_path}?code=…&state=…[&r=…]`); see the
    /// [`LoginFlow`] docs for every outcome. Never panics; errors become pages.
    pub async fn handle_callback(&self, parts: &Parts) -> Response<Bytes> {
        let (response, outcome) = self.callback(parts).await;
        if let Some(outcome) = outcome {
            crate::metrics::record_login(outcome);
        }
        response
    }

    /// [`handle_callback`](Self::handle_callback), and how the login ended (`None`: not a
    /// callback request).
    async fn callback(&self, parts: &Parts) -> (Response<Bytes>, Option<LoginOutcome>) {
        if parts.method != Method::GET {
            return (method_not_allowed("GET"), None);
        }
        let config = &self.inner.config;
        let now = config.session.now();
        let Some(query) = CallbackQuery::parse(parts.uri.query()) else {
            return (
                self.bad_state("The login link has a repeated parameter.", "/"),
                Some(LoginOutcome::BadState),
            );
        };
        let wanted = safe_return_path(query.return_path.as_deref().unwrap_or("/"));
        let Some(state_param) = query.state.as_deref().filter(|s| !s.is_empty()) else {
            return (
                self.bad_state("The login link has no state parameter.", wanted),
                Some(LoginOutcome::BadState),
            );
        };
        let state = match OAuthState::verify_at(
            config.session.keys(),
            self.inner.client.appid(),
            state_param,
            query.return_path.as_deref(),
            now,
        ) {
            Ok(state) => state,
            Err(e) => {
                tracing::info!(error = %e, "OAuth callback refused");
                return (
                    self.bad_state(&format!("This login link cannot be used: {e}."), wanted),
                    Some(LoginOutcome::BadState),
                );
            }
        };
        let return_path = state.return_path().to_owned();
        let pending = self.pending_nonces(&parts.headers);
        if !pending.iter().any(|n| n == state.nonce()) {
            // The user pressed back after this very login completed: the session remembers its
            // login nonce. Nothing is exchanged; the return path is bound by the state's MAC.
            if let Some((_, Some(nonce))) = config.session.read_with_nonce(&parts.headers, now) {
                if nonce == state.nonce() {
                    return (
                        redirect(StatusCode::FOUND, &return_path),
                        Some(LoginOutcome::Repeated),
                    );
                }
            }
            tracing::info!("OAuth callback refused: the state was not issued to this browser");
            return (
                self.bad_state(
                    "This login was started in another browser or session, or has already been used.",
                    &return_path,
                ),
                Some(LoginOutcome::BadState),
            );
        }
        let Some(code) = query.code.as_deref().filter(|c| !c.is_empty()) else {
            let mut response = html_page(
                StatusCode::FORBIDDEN,
                "Login cancelled",
                "You declined to log in with WeChat, so this page cannot be shown.",
                Some((&self.login_url(&return_path), "Try again")),
            );
            let remaining: Vec<String> =
                pending.into_iter().filter(|n| n != state.nonce()).collect();
            if let Ok(cookie) = self.state_cookie_header(&remaining) {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            return (response, Some(LoginOutcome::Denied));
        };
        let token = match self.inner.client.exchange_code(code).await {
            Ok(token) => token,
            Err(
                e @ Error::WeChat(ApiError {
                    kind: ApiErrorKind::CodeAlreadyUsed | ApiErrorKind::InvalidCode,
                    ..
                }),
            ) => {
                if state.is_retry() {
                    tracing::warn!(error = %e, "OAuth code refused again after a restart; not retrying");
                    return (
                        html_page(
                            StatusCode::BAD_REQUEST,
                            "WeChat login failed",
                            &format!("WeChat refused the login code again: {e}"),
                            Some((&self.login_url(&return_path), "Try again")),
                        ),
                        Some(LoginOutcome::CodeInvalid),
                    );
                }
                tracing::info!(error = %e, "OAuth code refused; restarting the login once");
                return (
                    self.redirect_to_wechat(
                        &parts.headers,
                        &return_path,
                        true,
                        Some(state.nonce()),
                        now,
                    ),
                    Some(LoginOutcome::CodeInvalid),
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "OAuth code exchange failed");
                return (
                    self.error_page(StatusCode::BAD_GATEWAY, &e),
                    Some(LoginOutcome::Error),
                );
            }
        };
        let mut unionid = token.unionid.clone();
        let mut profile = None;
        if config.scope == Scope::UserInfo
            && token.grants(Scope::UserInfo)
            && !token.is_snapshot_user
        {
            let lang = config.lang.unwrap_or_default();
            match self
                .inner
                .client
                .userinfo(&token.access_token, &token.openid, lang)
                .await
            {
                Ok(info) => {
                    profile = Some(Profile::from(&info));
                    unionid = info.unionid.or(unionid);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "sns/userinfo failed during login");
                    return (
                        self.error_page(StatusCode::BAD_GATEWAY, &e),
                        Some(LoginOutcome::Error),
                    );
                }
            }
        }
        let user = SessionUser {
            openid: token.openid,
            unionid,
            profile,
            is_snapshot_user: token.is_snapshot_user,
            expires_at: now.saturating_add(config.session.max_age().as_secs()),
        };
        let session_cookie =
            match config
                .session
                .set_cookie_with_nonce(&user, now, Some(state.nonce()))
            {
                Ok(cookie) => cookie,
                Err(e) => {
                    return (
                        self.error_page(StatusCode::BAD_GATEWAY, &e),
                        Some(LoginOutcome::Error),
                    );
                }
            };
        let mut response = redirect(StatusCode::FOUND, &return_path);
        let headers = response.headers_mut();
        headers.append(header::SET_COOKIE, session_cookie);
        let remaining: Vec<String> = pending.into_iter().filter(|n| n != state.nonce()).collect();
        if let Ok(cookie) = self.state_cookie_header(&remaining) {
            headers.append(header::SET_COOKIE, cookie);
        }
        (response, Some(LoginOutcome::Success))
    }

    fn bad_state(&self, message: &str, return_path: &str) -> Response<Bytes> {
        html_page(
            StatusCode::BAD_REQUEST,
            "Login link not valid",
            message,
            Some((&self.login_url(return_path), "Log in again")),
        )
    }
}

/// What a request to the logout path gets.
enum LogoutCheck {
    /// It comes from this site's own pages: log out.
    Allowed,
    /// It may come from another site: a page whose button logs out with a same-origin POST.
    Confirm,
    /// Neither GET nor POST.
    BadMethod,
}

/// Whether a request to the logout path may log out: one from this site's own pages
/// (`Sec-Fetch-Site: same-origin`, or `none` for an address typed or bookmarked), or, from a
/// browser that sends no `Sec-Fetch-Site`, a POST whose `Origin` (if any) is the public origin.
fn logout_check(parts: &Parts, public_url: &str) -> LogoutCheck {
    if parts.method != Method::GET && parts.method != Method::POST {
        return LogoutCheck::BadMethod;
    }
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let allowed = match header("sec-fetch-site") {
        Some(site) => site.eq_ignore_ascii_case("same-origin") || site.eq_ignore_ascii_case("none"),
        None => {
            parts.method == Method::POST
                && header(header::ORIGIN.as_str()).is_none_or(|origin| origin == public_url)
        }
    };
    if allowed {
        LogoutCheck::Allowed
    } else {
        tracing::info!(method = %parts.method, "logout refused: not from this site's own pages");
        LogoutCheck::Confirm
    }
}
