//! The "log in with WeChat" flow over `http` types, shared by the tower and actix adapters.
//!
//! The behaviour, its security notes and an example are on [`LoginFlow`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts;
use http::{Method, Response, StatusCode};

use crate::oauth::encode_component;
use crate::session::{cookie_values, is_plain_path, set_cookie_value};
use crate::state::safe_return_path;
use crate::{
    Error, Lang, OAuthClient, OAuthState, Profile, Result, Scope, SessionCookie, SessionKeys,
    SessionUser,
};

/// How many logins may be pending at once in one browser (e.g. two tabs).
const MAX_PENDING_NONCES: usize = 4;
const NONCE_LEN: usize = 16;

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The login flow's configuration; build it with [`LoginConfig::builder`].
#[derive(Debug, Clone)]
pub struct LoginConfig {
    public_url: String,
    callback_path: String,
    login_path: String,
    logout_path: String,
    scope: Scope,
    session: SessionCookie,
    state_ttl: Duration,
    excluded: Vec<String>,
    lang: Option<Lang>,
}

/// Builds a [`LoginConfig`]. Setters chain; the ones that can fail return a `Result`.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build() is called"]
pub struct LoginConfigBuilder {
    config: LoginConfig,
}

impl LoginConfig {
    /// The default callback path.
    pub const DEFAULT_CALLBACK_PATH: &'static str = "/wechat/oauth/callback";
    /// The default path that starts a login.
    pub const DEFAULT_LOGIN_PATH: &'static str = "/wechat/oauth/login";
    /// The default logout path.
    pub const DEFAULT_LOGOUT_PATH: &'static str = "/wechat/oauth/logout";
    /// The default lifetime of a pending login (the state and its cookie): 10 minutes.
    pub const DEFAULT_STATE_TTL: Duration = Duration::from_secs(600);

    /// Starts a configuration.
    ///
    /// `public_url` is the app's external origin as browsers see it, e.g.
    /// `https://shop.example.com` (no path, query or fragment; a trailing `/` is removed); the
    /// `redirect_uri` sent to WeChat is `public_url + callback_path`, so its host must be the
    /// account's OAuth callback domain. `keys` sign the session cookie and the OAuth state.
    ///
    /// Defaults: scope `snsapi_base`, callback `/wechat/oauth/callback`, login
    /// `/wechat/oauth/login`, logout `/wechat/oauth/logout`, state TTL 10 minutes, the
    /// [`SessionCookie`] defaults (name `wechat_session`, `Path=/`, 7 days), `Secure` when
    /// `public_url` is https, no excluded paths, `sns/userinfo` language `zh_CN`.
    ///
    /// # Errors
    /// [`Error::Config`] when `public_url` is not an absolute http(s) origin.
    pub fn builder(public_url: &str, keys: SessionKeys) -> Result<LoginConfigBuilder> {
        let public_url = validate_public_url(public_url)?;
        let secure = public_url.starts_with("https://");
        Ok(LoginConfigBuilder {
            config: LoginConfig {
                public_url,
                callback_path: Self::DEFAULT_CALLBACK_PATH.to_owned(),
                login_path: Self::DEFAULT_LOGIN_PATH.to_owned(),
                logout_path: Self::DEFAULT_LOGOUT_PATH.to_owned(),
                scope: Scope::Base,
                session: SessionCookie::new(keys).with_secure(secure),
                state_ttl: Self::DEFAULT_STATE_TTL,
                excluded: Vec::new(),
                lang: None,
            },
        })
    }

    /// The public origin, without a trailing slash.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The callback path.
    pub fn callback_path(&self) -> &str {
        &self.callback_path
    }

    /// The callback URL given to WeChat (without the return path parameter).
    pub fn callback_url(&self) -> String {
        format!("{}{}", self.public_url, self.callback_path)
    }

    /// The path that starts a login.
    pub fn login_path(&self) -> &str {
        &self.login_path
    }

    /// The logout path.
    pub fn logout_path(&self) -> &str {
        &self.logout_path
    }

    /// The OAuth scope.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// The session cookie settings and keys.
    pub fn session_cookie(&self) -> &SessionCookie {
        &self.session
    }

    /// The name of the cookie that binds pending logins to the browser:
    /// `{session cookie name}_state`.
    pub fn state_cookie_name(&self) -> String {
        format!("{}_state", self.session.name())
    }

    /// How long a pending login stays valid.
    pub fn state_ttl(&self) -> Duration {
        self.state_ttl
    }

    /// The excluded path prefixes.
    pub fn excluded_paths(&self) -> &[String] {
        &self.excluded
    }

    /// The `sns/userinfo` language, if set.
    pub fn lang(&self) -> Option<Lang> {
        self.lang
    }

    /// Whether `path` is excluded from login: it equals an excluded prefix or continues it after
    /// a `/` (`/static` excludes `/static` and `/static/app.js`, not `/staticky`).
    pub fn is_excluded(&self, path: &str) -> bool {
        self.excluded.iter().any(|prefix| {
            path.strip_prefix(prefix.as_str()).is_some_and(|rest| {
                rest.is_empty() || prefix.ends_with('/') || rest.starts_with('/')
            })
        })
    }
}

fn validate_public_url(public_url: &str) -> Result<String> {
    let trimmed = public_url.trim().trim_end_matches('/');
    let bad = |why: &str| {
        Error::Config(format!(
            "public URL {trimmed:?} {why}; expected e.g. https://shop.example.com"
        ))
    };
    let parsed = url::Url::parse(trimmed).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(bad("must be an absolute http(s) URL"));
    }
    if parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("must have no path, query or fragment"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("must not contain credentials"));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

fn checked_path(what: &str, path: &str) -> Result<String> {
    if is_plain_path(path) {
        Ok(path.to_owned())
    } else {
        Err(Error::Config(format!(
            "{what} {path:?} must start with a single / and hold no ; , ? # \\ or spaces"
        )))
    }
}

impl LoginConfigBuilder {
    /// Sets the callback path (default `/wechat/oauth/callback`).
    ///
    /// # Errors
    /// [`Error::Config`] when the path does not start with `/` or holds `?`, `#`, `;`, spaces…
    pub fn callback_path(mut self, path: &str) -> Result<Self> {
        self.config.callback_path = checked_path("callback path", path)?;
        Ok(self)
    }

    /// Sets the path that starts a login (default `/wechat/oauth/login`).
    ///
    /// # Errors
    /// As [`callback_path`](Self::callback_path).
    pub fn login_path(mut self, path: &str) -> Result<Self> {
        self.config.login_path = checked_path("login path", path)?;
        Ok(self)
    }

    /// Sets the logout path (default `/wechat/oauth/logout`).
    ///
    /// # Errors
    /// As [`callback_path`](Self::callback_path).
    pub fn logout_path(mut self, path: &str) -> Result<Self> {
        self.config.logout_path = checked_path("logout path", path)?;
        Ok(self)
    }

    /// Sets the scope: [`Scope::Base`] (silent, openid only; the default) or
    /// [`Scope::UserInfo`] (consent page; the session then holds the profile).
    pub fn scope(mut self, scope: Scope) -> Self {
        self.config.scope = scope;
        self
    }

    /// Sets how long a pending login stays valid (default 10 minutes).
    ///
    /// # Errors
    /// [`Error::Config`] outside 1 minute to 1 hour.
    pub fn state_ttl(mut self, ttl: Duration) -> Result<Self> {
        if !(Duration::from_secs(60)..=Duration::from_secs(3600)).contains(&ttl) {
            return Err(Error::Config(format!(
                "state TTL {ttl:?} must be between 1 minute and 1 hour"
            )));
        }
        self.config.state_ttl = ttl;
        Ok(self)
    }

    /// Sets the session lifetime (cookie max-age; default 7 days).
    ///
    /// # Errors
    /// [`Error::Config`] when shorter than 1 minute.
    pub fn session_ttl(mut self, ttl: Duration) -> Result<Self> {
        if ttl < Duration::from_secs(60) {
            return Err(Error::Config(format!(
                "session TTL {ttl:?} must be at least 1 minute"
            )));
        }
        self.config.session = self.config.session.with_max_age(ttl);
        Ok(self)
    }

    /// Sets the session cookie name (default `wechat_session`; cookies ignore ports, so two
    /// apps on one host need different names).
    ///
    /// # Errors
    /// [`Error::Config`] when `name` is not a cookie token.
    pub fn cookie_name(mut self, name: &str) -> Result<Self> {
        self.config.session = self.config.session.with_name(name)?;
        Ok(self)
    }

    /// Sets the session cookie `Path` (default `/`).
    ///
    /// # Errors
    /// As [`SessionCookie::with_path`].
    pub fn cookie_path(mut self, path: &str) -> Result<Self> {
        self.config.session = self.config.session.with_path(path)?;
        Ok(self)
    }

    /// Sets the `Secure` attribute of both cookies (default: on for an https public URL).
    pub fn secure(mut self, secure: bool) -> Self {
        self.config.session = self.config.session.with_secure(secure);
        self
    }

    /// Sets the number of slots of the session cookie's verified-value cache (default
    /// [`SessionCookie::DEFAULT_CACHE_CAPACITY`]; 0 turns it off); see
    /// [`SessionCookie::with_cache_capacity`]. Raise it when many more browsers than that are
    /// active at once on one instance.
    pub fn session_cache_capacity(mut self, capacity: usize) -> Self {
        self.config.session = self.config.session.with_cache_capacity(capacity);
        self
    }

    /// Excludes a path prefix from login (e.g. `/wechat/pay/notify`, `/static`, `/health`):
    /// such requests proceed with the user when there is a valid session and without one
    /// otherwise.
    ///
    /// # Errors
    /// [`Error::Config`] when the prefix does not start with `/` or holds `?`, `#`, spaces…
    pub fn exclude(mut self, prefix: &str) -> Result<Self> {
        let prefix = checked_path("excluded path", prefix)?;
        if !self.config.excluded.contains(&prefix) {
            self.config.excluded.push(prefix);
        }
        Ok(self)
    }

    /// Sets the language of the profile's region fields (`sns/userinfo` `lang`).
    pub fn lang(mut self, lang: Lang) -> Self {
        self.config.lang = Some(lang);
        self
    }

    /// Finishes the configuration.
    ///
    /// # Errors
    /// [`Error::Config`] when the callback, login and logout paths are not all different.
    pub fn build(self) -> Result<LoginConfig> {
        let c = &self.config;
        if c.callback_path == c.login_path
            || c.callback_path == c.logout_path
            || c.login_path == c.logout_path
        {
            return Err(Error::Config(format!(
                "the callback ({}), login ({}) and logout ({}) paths must differ",
                c.callback_path, c.login_path, c.logout_path
            )));
        }
        Ok(self.config)
    }
}

/// What the login middleware does with a request; see [`LoginFlow`].
#[derive(Debug)]
#[must_use = "the adapter must act on the decision"]
pub enum Decision {
    /// Pass the request to the inner service. Insert the user into the request extensions
    /// (replacing any earlier one) when `Some`. `None` only on excluded paths: remove any
    /// [`SessionUser`] from the extensions and insert a clone of the [`LoginFlow`] instead, so
    /// that extractors can answer [`LoginFlow::login_required`].
    Proceed(Option<SessionUser>),
    /// Send this response instead: a redirect to WeChat, a 401 JSON, a logout redirect…
    Respond(Response<Bytes>),
    /// This is the OAuth callback: send the response of [`LoginFlow::handle_callback`].
    Callback,
}

/// The login flow: an [`OAuthClient`] and a [`LoginConfig`]. Cheap to clone (an `Arc` inside).
///
/// Everything the login middleware decides lives here: whether a request has a valid session,
/// where to send a browser without one, how the OAuth callback is checked, and which cookies are
/// set. `wechat-tower` and `wechat-actix` only translate a [`Decision`] into their framework:
///
/// - [`Decision::Proceed`]: call the inner service with the [`SessionUser`] in the request
///   extensions; on an excluded path without a session, with a clone of the [`LoginFlow`] there
///   instead (it lets extractors answer [`LoginFlow::login_required`]). One value per request:
///   this is the hot path.
/// - [`Decision::Respond`]: send this response instead (a redirect to WeChat, a 401 JSON, …).
/// - [`Decision::Callback`]: await [`LoginFlow::handle_callback`] and send its response.
///
/// Behaviour:
/// - A request with a valid session cookie proceeds with its user. Excluded path prefixes
///   (notification routes, static files, health checks) proceed with or without one.
/// - A page load without a session (a `GET` whose `Sec-Fetch-Mode` is `navigate`, or, when the
///   browser sends no `Sec-Fetch-Mode`, whose `Accept` names `text/html`) gets a 302 to WeChat's
///   authorize URL with a signed [`OAuthState`] carrying the original path and query, and a
///   short-lived `HttpOnly; SameSite=Lax` cookie (`{session cookie name}_state`, path = the
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
///   removes the session and redirects (303) to `/path`.
///
/// ```
/// use http::{Request, StatusCode};
/// use wechat_core::{
///     BaseUrls, Config, Decision, LoginConfig, LoginFlow, OAuthClient, Scope, SessionKeys,
/// };
///
/// let config = Config::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef")
///     .with_base_urls(BaseUrls::all("http://127.0.0.1:9000"));
/// let client = OAuthClient::new(&config, reqwest::Client::new());
/// let login = LoginConfig::builder("https://shop.example.com", SessionKeys::generate())?
///     .scope(Scope::UserInfo)
///     .exclude("/wechat/pay/notify")?
///     .exclude("/static")?
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
/// assert!(matches!(flow.decide(&parts), Decision::Proceed(None)));
/// # Ok::<(), wechat_core::Error>(())
/// ```
///
/// # Security
/// See [`OAuthState`] (CSRF, open redirects) and [`SessionCookie`] (the session). The public URL
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

/// The callback's query parameters.
struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    return_path: Option<String>,
}

impl CallbackQuery {
    /// Parses the query; a repeated `state`, `code` or `r` is refused as ambiguous.
    fn parse(query: Option<&str>) -> Option<Self> {
        let mut parsed = Self {
            state: None,
            code: None,
            return_path: None,
        };
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let slot = match name.as_ref() {
                "state" => &mut parsed.state,
                "code" => &mut parsed.code,
                crate::state::RETURN_PARAM => &mut parsed.return_path,
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return None;
            }
        }
        Some(parsed)
    }
}

/// Reads one query parameter (the first occurrence).
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

/// The request headers the login flow reads: `Cookie`, `Accept`, `Sec-Fetch-Mode`, `Referer`.
pub const LOGIN_FLOW_HEADERS: [&str; 4] = ["cookie", "accept", "sec-fetch-mode", "referer"];

/// Builds the `http` 1 request head that [`LoginFlow::decide`],
/// [`LoginFlow::handle_callback`] and [`LoginFlow::login_required`] take, for adapters whose
/// framework has other request types (actix-web 4 uses `http` 0.2).
///
/// `target` is the request's path and query (`/shop?item=1`); `headers` are name/value pairs, of
/// which only [`LOGIN_FLOW_HEADERS`] are kept (others are skipped, as are invalid ones). Returns
/// `None` when the method or target is not valid HTTP (answer 400).
///
/// ```
/// let parts = wechat_core::request_parts(
///     "GET",
///     "/shop?item=1",
///     [("Accept", &b"text/html"[..]), ("X-Other", &b"ignored"[..])],
/// )
/// .unwrap();
/// assert_eq!(parts.uri.path(), "/shop");
/// assert_eq!(parts.headers["accept"], "text/html");
/// assert!(parts.headers.get("x-other").is_none());
/// ```
pub fn request_parts<'a>(
    method: &str,
    target: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Option<Parts> {
    let method = Method::from_bytes(method.as_bytes()).ok()?;
    let uri = http::Uri::try_from(target).ok()?;
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    for (name, value) in headers {
        let Some(known) = LOGIN_FLOW_HEADERS
            .iter()
            .find(|known| name.eq_ignore_ascii_case(known))
        else {
            continue;
        };
        if let Ok(value) = HeaderValue::from_bytes(value) {
            parts
                .headers
                .append(header::HeaderName::from_static(known), value);
        }
    }
    Some(parts)
}

/// Whether the request is a page load by a browser (as opposed to `fetch`/XHR or a form post).
///
/// A `GET` whose `Sec-Fetch-Mode` is `navigate`; when the browser sends no `Sec-Fetch-Mode`, a
/// `GET` whose `Accept` names `text/html` (with a non-zero q).
pub fn is_page_load(method: &Method, headers: &HeaderMap) -> bool {
    if method != Method::GET {
        return false;
    }
    let modes: Vec<&str> = headers
        .get_all("sec-fetch-mode")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .collect();
    if !modes.is_empty() {
        return modes.iter().any(|m| m.eq_ignore_ascii_case("navigate"));
    }
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut pieces = item.split(';').map(str::trim);
            let media = pieces.next().unwrap_or("");
            media.eq_ignore_ascii_case("text/html")
                && !pieces.any(|p| {
                    p.split_once('=').is_some_and(|(k, v)| {
                        k.trim().eq_ignore_ascii_case("q")
                            && v.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
                    })
                })
        })
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn base_response(
    status: StatusCode,
    content_type: Option<&'static str>,
    body: impl Into<Bytes>,
) -> Response<Bytes> {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Some(content_type) = content_type {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
    }
    response
}

/// A small UTF-8 HTML page; every text is escaped.
fn html_page(
    status: StatusCode,
    title: &str,
    message: &str,
    link: Option<(&str, &str)>,
) -> Response<Bytes> {
    let link = link
        .map(|(href, text)| {
            format!(
                "<p><a href=\"{}\">{}</a></p>\n",
                escape_html(href),
                escape_html(text)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head>\n<body style=\"font-family:sans-serif;max-width:32em;margin:2em auto;padding:0 1em\">\n\
         <h1>{title}</h1>\n<p>{message}</p>\n{link}</body></html>\n",
        title = escape_html(title),
        message = escape_html(message),
    );
    base_response(status, Some("text/html; charset=utf-8"), body)
}

fn redirect(status: StatusCode, location: &str) -> Response<Bytes> {
    match HeaderValue::try_from(location) {
        Ok(value) => {
            let mut response = base_response(status, None, Bytes::new());
            response.headers_mut().insert(header::LOCATION, value);
            response
        }
        Err(_) => html_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Login error",
            "The login redirect could not be built.",
            None,
        ),
    }
}

fn method_not_allowed(allow: &'static str) -> Response<Bytes> {
    let mut response = html_page(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        "This login address only accepts ordinary page loads.",
        None,
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

impl LoginFlow {
    /// A flow for `client`'s app with `config`.
    pub fn new(client: OAuthClient, config: LoginConfig) -> Self {
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
        self.inner.config.session.read(headers, now_unix())
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
                crate::state::RETURN_PARAM,
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
        let now = now_unix();
        if path == config.login_path {
            if parts.method != Method::GET {
                return Decision::Respond(method_not_allowed("GET"));
            }
            let wanted = query_param(parts.uri.query(), crate::state::RETURN_PARAM);
            let return_path = safe_return_path(wanted.as_deref().unwrap_or("/"));
            if config.session.read(&parts.headers, now).is_some() {
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
            let wanted = query_param(parts.uri.query(), crate::state::RETURN_PARAM);
            return Decision::Respond(self.logout(wanted.as_deref().unwrap_or("/")));
        }
        let user = config.session.read(&parts.headers, now);
        if user.is_some() || config.is_excluded(path) {
            return Decision::Proceed(user);
        }
        if is_page_load(&parts.method, &parts.headers) {
            let original = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
            Decision::Respond(self.redirect_to_wechat(&parts.headers, original, false, None, now))
        } else {
            Decision::Respond(self.login_required(parts))
        }
    }

    /// The common case of [`decide`](Self::decide), for adapters whose requests are not `http`
    /// 1 types: the user when a request for `path` (without the query) whose `Cookie` header
    /// values (bytes, as the framework holds them) are `cookie_headers` has a valid session and is not for one of the flow's own
    /// paths, which is exactly when `decide` answers [`Decision::Proceed`] with that user.
    /// `None` means: build the request's [`Parts`] (see [`request_parts`]) and call `decide`.
    ///
    /// `wechat-actix` uses it so that logged-in requests, nearly all of them, pass without an
    /// `http::request::Parts` being built for each.
    ///
    /// ```
    /// # use wechat_core::{Config, LoginConfig, LoginFlow, OAuthClient, SessionKeys, SessionUser, OpenId};
    /// # let config = Config::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef");
    /// # let login = LoginConfig::builder("https://shop.example.com", SessionKeys::generate())?.build()?;
    /// let flow = LoginFlow::new(OAuthClient::new(&config, reqwest::Client::new()), login);
    /// let session = flow.config().session_cookie();
    /// let expires_at = std::time::SystemTime::now()
    ///     .duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600;
    /// let value = session.encode(&SessionUser::new(OpenId::new("o6_bmjrPTlm6_2sgVt7hMZOPfL2M"), expires_at))?;
    /// let cookie = format!("theme=dark; wechat_session={value}");
    ///
    /// let user = flow.fast_proceed("/shop", [cookie.as_bytes()]).expect("a valid session");
    /// assert_eq!(user.openid.as_str(), "o6_bmjrPTlm6_2sgVt7hMZOPfL2M");
    /// // No session: decide sends the browser to log in.
    /// assert!(flow.fast_proceed("/shop", [b"theme=dark".as_slice()]).is_none());
    /// // The flow's own paths: decide answers them.
    /// assert!(flow.fast_proceed("/wechat/oauth/logout", [cookie.as_bytes()]).is_none());
    /// # Ok::<(), wechat_core::Error>(())
    /// ```
    pub fn fast_proceed<'a>(
        &self,
        path: &str,
        cookie_headers: impl IntoIterator<Item = &'a [u8]>,
    ) -> Option<SessionUser> {
        let config = &self.inner.config;
        if path == config.callback_path || path == config.login_path || path == config.logout_path {
            return None;
        }
        config
            .session
            .read_values(cookie_headers.into_iter(), now_unix())
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
        let state = OAuthState::issue(
            config.session.keys(),
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

    fn error_page(&self, status: StatusCode, error: &Error) -> Response<Bytes> {
        html_page(
            status,
            "WeChat login failed",
            &format!("WeChat login failed: {error}"),
            Some((&self.login_url("/"), "Try again")),
        )
    }

    /// Handles the OAuth callback (`GET {callback_path}?code=…&state=…[&r=…]`); see the
    /// [`LoginFlow`] docs for every outcome. Never panics; errors become pages.
    pub async fn handle_callback(&self, parts: &Parts) -> Response<Bytes> {
        if parts.method != Method::GET {
            return method_not_allowed("GET");
        }
        let config = &self.inner.config;
        let now = now_unix();
        let Some(query) = CallbackQuery::parse(parts.uri.query()) else {
            return self.bad_state("The login link has a repeated parameter.", "/");
        };
        let wanted = safe_return_path(query.return_path.as_deref().unwrap_or("/"));
        let Some(state_param) = query.state.as_deref().filter(|s| !s.is_empty()) else {
            return self.bad_state("The login link has no state parameter.", wanted);
        };
        let state = match OAuthState::verify(
            config.session.keys(),
            state_param,
            query.return_path.as_deref(),
            now,
        ) {
            Ok(state) => state,
            Err(e) => {
                tracing::info!(error = %e, "OAuth callback refused");
                return self.bad_state(&format!("This login link cannot be used: {e}."), wanted);
            }
        };
        let return_path = state.return_path().to_owned();
        let pending = self.pending_nonces(&parts.headers);
        if !pending.iter().any(|n| n == state.nonce()) {
            // The user pressed back after this very login completed: the session remembers its
            // login nonce. Nothing is exchanged; the return path is bound by the state's MAC.
            if let Some((_, Some(nonce))) = config.session.read_with_nonce(&parts.headers, now) {
                if nonce == state.nonce() {
                    return redirect(StatusCode::FOUND, &return_path);
                }
            }
            tracing::info!("OAuth callback refused: the state was not issued to this browser");
            return self.bad_state(
                "This login was started in another browser or session, or has already been used.",
                &return_path,
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
            return response;
        };
        let token = match self.inner.client.exchange_code(code).await {
            Ok(token) => token,
            Err(e @ (Error::CodeAlreadyUsed | Error::InvalidCode { .. })) => {
                if state.is_retry() {
                    tracing::warn!(error = %e, "OAuth code refused again after a restart; not retrying");
                    return html_page(
                        StatusCode::BAD_REQUEST,
                        "WeChat login failed",
                        &format!("WeChat refused the login code again: {e}"),
                        Some((&self.login_url(&return_path), "Try again")),
                    );
                }
                tracing::info!(error = %e, "OAuth code refused; restarting the login once");
                return self.redirect_to_wechat(
                    &parts.headers,
                    &return_path,
                    true,
                    Some(state.nonce()),
                    now,
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "OAuth code exchange failed");
                return self.error_page(StatusCode::BAD_GATEWAY, &e);
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
                    return self.error_page(StatusCode::BAD_GATEWAY, &e);
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
                Err(e) => return self.error_page(StatusCode::BAD_GATEWAY, &e),
            };
        let mut response = redirect(StatusCode::FOUND, &return_path);
        let headers = response.headers_mut();
        headers.append(header::SET_COOKIE, session_cookie);
        let remaining: Vec<String> = pending.into_iter().filter(|n| n != state.nonce()).collect();
        if let Ok(cookie) = self.state_cookie_header(&remaining) {
            headers.append(header::SET_COOKIE, cookie);
        }
        response
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BaseUrls, Config, OpenId};

    const PUBLIC: &str = "https://shop.example.com";

    fn keys() -> SessionKeys {
        SessionKeys::new([5u8; 32]).unwrap()
    }

    fn flow_with(builder: impl FnOnce(LoginConfigBuilder) -> LoginConfigBuilder) -> LoginFlow {
        // Nothing listens on port 9: a test that reaches WeChat fails fast.
        let config = Config::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef")
            .with_base_urls(BaseUrls::all("http://127.0.0.1:9"));
        let client = OAuthClient::new(&config, reqwest::Client::new());
        let login = builder(
            LoginConfig::builder(PUBLIC, keys())
                .unwrap()
                .exclude("/static")
                .unwrap()
                .exclude("/wechat/pay/notify")
                .unwrap(),
        )
        .build()
        .unwrap();
        LoginFlow::new(client, login)
    }

    fn flow() -> LoginFlow {
        flow_with(|b| b)
    }

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = http::Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn respond(decision: Decision) -> Response<Bytes> {
        match decision {
            Decision::Respond(response) => response,
            other => panic!("expected a response, got {other:?}"),
        }
    }

    fn set_cookies(response: &Response<Bytes>) -> Vec<String> {
        response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    fn session_cookie_for(flow: &LoginFlow, user: &SessionUser) -> String {
        let value = flow.config().session_cookie().encode(user).unwrap();
        format!("wechat_session={value}")
    }

    fn alice(expires_at: u64) -> SessionUser {
        SessionUser::new(OpenId::new("o6_alice"), expires_at)
    }

    /// Splits a redirect to WeChat into (state, redirect_uri).
    fn authorize_params(response: &Response<Bytes>) -> (String, String, String) {
        let location = response.headers()[header::LOCATION].to_str().unwrap();
        let url = url::Url::parse(location).unwrap();
        let get = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .unwrap()
                .1
                .into_owned()
        };
        (get("state"), get("redirect_uri"), get("scope"))
    }

    #[test]
    fn builder_validates_and_defaults() {
        let config = LoginConfig::builder("https://shop.example.com/", keys())
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(config.public_url(), "https://shop.example.com");
        assert_eq!(
            config.callback_url(),
            "https://shop.example.com/wechat/oauth/callback"
        );
        assert_eq!(config.scope(), Scope::Base);
        assert!(config.session_cookie().secure());
        assert_eq!(config.session_cookie().name(), "wechat_session");
        assert_eq!(
            config.session_cookie().cache_capacity(),
            SessionCookie::DEFAULT_CACHE_CAPACITY
        );
        let uncached = LoginConfig::builder("https://shop.example.com/", keys())
            .unwrap()
            .session_cache_capacity(0)
            .build()
            .unwrap();
        assert_eq!(uncached.session_cookie().cache_capacity(), 0);
        assert_eq!(config.state_cookie_name(), "wechat_session_state");
        let plain = LoginConfig::builder("http://127.0.0.1:3000", keys())
            .unwrap()
            .build()
            .unwrap();
        assert!(!plain.session_cookie().secure());
        for bad in [
            "shop.example.com",
            "ftp://x.example",
            "https://x.example/app",
            "https://x.example/?a=1",
            "https://u:p@x.example",
        ] {
            assert!(LoginConfig::builder(bad, keys()).is_err(), "{bad}");
        }
        let builder = LoginConfig::builder(PUBLIC, keys()).unwrap();
        assert!(builder.clone().callback_path("cb").is_err());
        assert!(builder.clone().callback_path("/cb?x").is_err());
        assert!(builder.clone().exclude("static").is_err());
        assert!(builder.clone().state_ttl(Duration::from_secs(5)).is_err());
        assert!(builder.clone().session_ttl(Duration::from_secs(5)).is_err());
        assert!(builder.clone().cookie_name("a b").is_err());
        assert!(
            builder
                .clone()
                .login_path("/wechat/oauth/callback")
                .unwrap()
                .build()
                .is_err()
        );
        let custom = builder
            .callback_path("/auth/cb")
            .unwrap()
            .cookie_name("sid")
            .unwrap()
            .secure(false)
            .lang(Lang::En)
            .scope(Scope::UserInfo)
            .build()
            .unwrap();
        assert_eq!(custom.callback_url(), "https://shop.example.com/auth/cb");
        assert_eq!(custom.state_cookie_name(), "sid_state");
        assert!(!custom.session_cookie().secure());
        assert_eq!(custom.lang(), Some(Lang::En));
    }

    #[test]
    fn exclusions_match_on_segments() {
        let config = flow().config().clone();
        assert!(config.is_excluded("/static"));
        assert!(config.is_excluded("/static/app.js"));
        assert!(!config.is_excluded("/staticky"));
        assert!(config.is_excluded("/wechat/pay/notify"));
        assert!(!config.is_excluded("/"));
        let slash = LoginConfig::builder(PUBLIC, keys())
            .unwrap()
            .exclude("/assets/")
            .unwrap()
            .build()
            .unwrap();
        assert!(slash.is_excluded("/assets/x.css"));
        assert!(!slash.is_excluded("/assets"));
    }

    #[test]
    fn page_load_detection() {
        let get = Method::GET;
        let h = |pairs: &[(&str, &str)]| parts("GET", "/", pairs).headers;
        assert!(is_page_load(
            &get,
            &h(&[("accept", "text/html,application/xhtml+xml,*/*;q=0.8")])
        ));
        assert!(is_page_load(
            &get,
            &h(&[("accept", "*/*"), ("sec-fetch-mode", "navigate")])
        ));
        assert!(is_page_load(&get, &h(&[("accept", "TEXT/HTML; q=0.5")])));
        assert!(!is_page_load(&get, &h(&[("accept", "text/html;q=0")])));
        assert!(!is_page_load(&get, &h(&[("accept", "application/json")])));
        assert!(!is_page_load(&get, &h(&[])));
        assert!(!is_page_load(
            &get,
            &h(&[("accept", "*/*"), ("sec-fetch-mode", "cors")])
        ));
        assert!(!is_page_load(
            &get,
            &h(&[("accept", "text/html"), ("sec-fetch-mode", "cors")])
        ));
        assert!(!is_page_load(
            &Method::POST,
            &h(&[("accept", "text/html"), ("sec-fetch-mode", "navigate")])
        ));
        assert!(!is_page_load(&Method::HEAD, &h(&[("accept", "text/html")])));
    }

    #[test]
    fn browser_without_session_is_sent_to_wechat() {
        let flow = flow_with(|b| b.scope(Scope::UserInfo));
        let response = respond(flow.decide(&parts(
            "GET",
            "/shop?item=42&x=%20y",
            &[("accept", "text/html")],
        )));
        assert_eq!(response.status(), StatusCode::FOUND);
        let location = response.headers()[header::LOCATION].to_str().unwrap();
        assert!(
            location.starts_with(
                "http://127.0.0.1:9/connect/oauth2/authorize?appid=wx1234567890abcdef&redirect_uri="
            ),
            "{location}"
        );
        assert!(location.ends_with("#wechat_redirect"));
        let (state, redirect_uri, scope) = authorize_params(&response);
        assert_eq!(scope, "snsapi_userinfo");
        assert_eq!(
            redirect_uri,
            "https://shop.example.com/wechat/oauth/callback?r=%2Fshop%3Fitem%3D42%26x%3D%2520y"
        );
        let r = query_param(url::Url::parse(&redirect_uri).unwrap().query(), "r");
        let verified = OAuthState::verify(&keys(), &state, r.as_deref(), now_unix()).unwrap();
        assert_eq!(verified.return_path(), "/shop?item=42&x=%20y");
        assert!(!verified.is_retry());
        let cookies = set_cookies(&response);
        assert_eq!(cookies.len(), 1);
        assert_eq!(
            cookies[0],
            format!(
                "wechat_session_state={}; Path=/wechat/oauth/callback; Max-Age=600; HttpOnly; SameSite=Lax; Secure",
                verified.nonce()
            )
        );
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    }

    #[test]
    fn pending_logins_accumulate_up_to_a_limit() {
        let flow = flow();
        let mut cookie = String::new();
        let mut nonces = Vec::new();
        for _ in 0..6 {
            let response = respond(flow.decide(&parts(
                "GET",
                "/",
                &[("accept", "text/html"), ("cookie", &cookie)],
            )));
            let (state, _, _) = authorize_params(&response);
            nonces.push(state[..16].to_owned());
            let set = set_cookies(&response).remove(0);
            cookie = set.split(';').next().unwrap().to_owned();
        }
        let value = cookie.strip_prefix("wechat_session_state=").unwrap();
        assert_eq!(value.split('.').collect::<Vec<_>>(), nonces[2..].to_vec());
    }

    #[test]
    fn fetches_without_session_get_401_json() {
        let flow = flow();
        for request in [
            parts("POST", "/api/cart", &[("accept", "text/html")]),
            parts("GET", "/api/me", &[("accept", "application/json")]),
            parts(
                "GET",
                "/api/me",
                &[
                    ("sec-fetch-mode", "cors"),
                    ("referer", "https://shop.example.com/shop?item=1"),
                ],
            ),
            parts(
                "DELETE",
                "/api/cart",
                &[("referer", "https://evil.example/")],
            ),
        ] {
            let response = respond(flow.decide(&request));
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
            assert!(set_cookies(&response).is_empty());
            let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
            assert_eq!(body["error"], "login_required");
            assert!(body["message"].as_str().unwrap().contains("login_url"));
            let login_url = body["login_url"].as_str().unwrap();
            if request
                .headers
                .get("referer")
                .is_some_and(|r| r.to_str().unwrap().starts_with(PUBLIC))
            {
                assert_eq!(
                    login_url,
                    "https://shop.example.com/wechat/oauth/login?r=%2Fshop%3Fitem%3D1"
                );
            } else {
                assert_eq!(login_url, "https://shop.example.com/wechat/oauth/login");
            }
        }
    }

    #[test]
    fn valid_session_proceeds_with_the_user() {
        let flow = flow();
        let user = alice(now_unix() + 3600);
        let cookie = session_cookie_for(&flow, &user);
        for request in [
            parts(
                "GET",
                "/shop",
                &[("accept", "text/html"), ("cookie", &cookie)],
            ),
            parts("POST", "/api/cart", &[("cookie", &cookie)]),
            parts("GET", "/static/app.js", &[("cookie", &cookie)]),
        ] {
            match flow.decide(&request) {
                Decision::Proceed(Some(got)) => assert_eq!(got, user),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            flow.current_user(&parts("GET", "/", &[("cookie", &cookie)]).headers),
            Some(user)
        );
    }

    #[test]
    fn fast_proceed_agrees_with_decide() {
        let flow = flow_with(|b| b.exclude("/static").unwrap());
        let user = alice(now_unix() + 3600);
        let cookie = session_cookie_for(&flow, &user);
        let expired = session_cookie_for(&flow, &alice(now_unix() - 1));
        let config = flow.config().clone();
        for path in [
            "/shop",
            "/static/app.js",
            config.callback_path(),
            config.login_path(),
            config.logout_path(),
        ] {
            for cookies in [
                vec![],
                vec!["a=1"],
                vec!["a=1", cookie.as_str()],
                vec![expired.as_str()],
            ] {
                let mut headers: Vec<(&str, &str)> = vec![("accept", "text/html")];
                headers.extend(cookies.iter().map(|c| ("cookie", *c)));
                let fast = flow.fast_proceed(path, cookies.iter().map(|c| c.as_bytes()));
                match flow.decide(&parts("GET", path, &headers)) {
                    Decision::Proceed(Some(got)) => {
                        assert_eq!(fast, Some(got), "{path} {cookies:?}")
                    }
                    other => assert!(fast.is_none(), "{path} {cookies:?}: {other:?}"),
                }
            }
        }
        assert_eq!(flow.fast_proceed("/shop", [cookie.as_bytes()]), Some(user));
    }

    #[test]
    fn expired_tampered_or_foreign_sessions_count_as_none() {
        let flow = flow();
        let expired = session_cookie_for(&flow, &alice(now_unix() - 1));
        let other_key = SessionCookie::new(SessionKeys::new([6u8; 32]).unwrap())
            .encode(&alice(now_unix() + 3600))
            .unwrap();
        let foreign = format!("wechat_session={other_key}");
        let mut tampered = session_cookie_for(&flow, &alice(now_unix() + 3600));
        tampered.insert(20, 'x');
        for cookie in [expired, foreign, tampered] {
            let response = respond(flow.decide(&parts("POST", "/api", &[("cookie", &cookie)])));
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{cookie}");
        }
    }

    #[test]
    fn excluded_paths_proceed_without_session() {
        let flow = flow();
        assert!(matches!(
            flow.decide(&parts("POST", "/wechat/pay/notify", &[])),
            Decision::Proceed(None)
        ));
        assert!(matches!(
            flow.decide(&parts("GET", "/static/a.css", &[("accept", "text/html")])),
            Decision::Proceed(None)
        ));
        assert!(matches!(
            flow.decide(&parts("GET", "/wechat/oauth/callback?code=x", &[])),
            Decision::Callback
        ));
    }

    #[test]
    fn login_and_logout_paths() {
        let flow = flow();
        let response = respond(flow.decide(&parts("GET", "/wechat/oauth/login?r=%2Fcart", &[])));
        assert_eq!(response.status(), StatusCode::FOUND);
        let (_, redirect_uri, _) = authorize_params(&response);
        assert!(redirect_uri.ends_with("?r=%2Fcart"), "{redirect_uri}");
        let evil = respond(flow.decide(&parts("GET", "/wechat/oauth/login?r=%2F%2Fevil.com", &[])));
        let (_, redirect_uri, _) = authorize_params(&evil);
        assert_eq!(
            redirect_uri,
            "https://shop.example.com/wechat/oauth/callback"
        );
        // Already logged in: straight to the return path.
        let cookie = session_cookie_for(&flow, &alice(now_unix() + 3600));
        let response = respond(flow.decide(&parts(
            "GET",
            "/wechat/oauth/login?r=%2Fcart",
            &[("cookie", &cookie)],
        )));
        assert_eq!(response.headers()[header::LOCATION], "/cart");
        assert_eq!(
            respond(flow.decide(&parts("POST", "/wechat/oauth/login", &[]))).status(),
            StatusCode::METHOD_NOT_ALLOWED
        );

        let response = respond(flow.decide(&parts(
            "POST",
            "/wechat/oauth/logout?r=https://evil.com",
            &[("cookie", &cookie)],
        )));
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()[header::LOCATION], "/");
        let cookies = set_cookies(&response);
        assert!(
            cookies.iter().any(
                |c| c.starts_with("wechat_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax")
            ),
            "{cookies:?}"
        );
        assert!(
            cookies
                .iter()
                .any(|c| c
                    .starts_with("wechat_session_state=; Path=/wechat/oauth/callback; Max-Age=0")),
            "{cookies:?}"
        );
        assert_eq!(flow.logout("/bye").headers()[header::LOCATION], "/bye");
    }

    /// Starts a login and returns (callback URI for `code`, the browser's cookie header).
    fn start_login(flow: &LoginFlow, path: &str, code: Option<&str>) -> (String, String) {
        let response = respond(flow.decide(&parts("GET", path, &[("accept", "text/html")])));
        let (state, redirect_uri, _) = authorize_params(&response);
        let cookie = set_cookies(&response)
            .remove(0)
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let callback = redirect_uri.strip_prefix(PUBLIC).unwrap().to_owned();
        let sep = if callback.contains('?') { '&' } else { '?' };
        let uri = match code {
            Some(code) => format!("{callback}{sep}code={code}&state={state}"),
            None => format!("{callback}{sep}state={state}"),
        };
        (uri, cookie)
    }

    async fn callback(flow: &LoginFlow, uri: &str, cookie: &str) -> Response<Bytes> {
        flow.handle_callback(&parts("GET", uri, &[("cookie", cookie)]))
            .await
    }

    fn body_text(response: &Response<Bytes>) -> String {
        String::from_utf8(response.body().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn forged_expired_or_foreign_states_are_refused_without_redirect() {
        let flow = flow();
        let (uri, cookie) = start_login(&flow, "/shop", Some("CODE"));
        // Another browser (no state cookie, or another pending login).
        let (_, other_cookie) = start_login(&flow, "/", Some("CODE"));
        let forged_state = {
            let mut u = uri.clone();
            let at = u.find("state=").unwrap() + "state=".len() + 3;
            let c = u.as_bytes()[at];
            u.replace_range(at..=at, if c == b'a' { "b" } else { "a" });
            u
        };
        let other_path = uri.replace("r=%2Fshop", "r=%2Fadmin");
        let expired = {
            let old = OAuthState::issue(
                &keys(),
                "/",
                Duration::from_secs(600),
                false,
                now_unix() - 700,
            );
            (
                format!("/wechat/oauth/callback?code=CODE&state={}", old.as_str()),
                format!("wechat_session_state={}", old.nonce()),
            )
        };
        for (uri, cookie, reason) in [
            (uri.clone(), String::new(), "no cookie"),
            (uri.clone(), other_cookie.clone(), "another browser"),
            (forged_state, cookie.clone(), "forged"),
            (other_path, cookie.clone(), "altered return path"),
            (expired.0, expired.1, "expired"),
            (
                "/wechat/oauth/callback?code=CODE".to_owned(),
                cookie.clone(),
                "no state",
            ),
            (format!("{uri}&state=x"), cookie.clone(), "repeated state"),
        ] {
            let response = callback(&flow, &uri, &cookie).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{reason}");
            assert!(
                response.headers().get(header::LOCATION).is_none(),
                "{reason}"
            );
            assert!(
                set_cookies(&response)
                    .iter()
                    .all(|c| !c.starts_with("wechat_session=")),
                "{reason}"
            );
            assert_eq!(
                response.headers()[header::CONTENT_TYPE],
                "text/html; charset=utf-8"
            );
            assert!(
                body_text(&response).contains("Login link not valid"),
                "{reason}"
            );
        }
        let wrong_method = flow
            .handle_callback(&parts("POST", &uri, &[("cookie", &cookie)]))
            .await;
        assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[tokio::test]
    async fn declined_consent_gets_a_page_with_a_retry_link() {
        let flow = flow_with(|b| b.scope(Scope::UserInfo));
        let (uri, cookie) = start_login(&flow, "/shop?a=1", None);
        let response = callback(&flow, &uri, &cookie).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert!(response.headers().get(header::LOCATION).is_none());
        let body = body_text(&response);
        assert!(body.contains("You declined"), "{body}");
        assert!(
            body.contains("href=\"https://shop.example.com/wechat/oauth/login?r=%2Fshop%3Fa%3D1\""),
            "{body}"
        );
        assert!(body.starts_with("<!DOCTYPE html>") && body.contains("<meta charset=\"utf-8\">"));
        assert!(
            set_cookies(&response)[0]
                .starts_with("wechat_session_state=; Path=/wechat/oauth/callback; Max-Age=0")
        );
    }

    #[tokio::test]
    async fn unreachable_wechat_gives_502_not_a_panic() {
        let flow = flow();
        let (uri, cookie) = start_login(&flow, "/", Some("CODE"));
        let response = callback(&flow, &uri, &cookie).await;
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        let body = body_text(&response);
        assert!(
            body.contains("request to /sns/oauth2/access_token failed"),
            "{body}"
        );
        assert!(!body.contains("0123456789abcdef0123"), "{body}");
    }

    #[tokio::test]
    async fn back_button_after_login_returns_to_the_page() {
        let flow = flow();
        let (uri, cookie) = start_login(&flow, "/shop", Some("CODE"));
        let nonce = cookie.strip_prefix("wechat_session_state=").unwrap();
        // What a completed login left: a session remembering the nonce, no pending state.
        let session = flow
            .config()
            .session_cookie()
            .encode_with_nonce(&alice(now_unix() + 3600), Some(nonce))
            .unwrap();
        let response = callback(&flow, &uri, &format!("wechat_session={session}")).await;
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(response.headers()[header::LOCATION], "/shop");
        // A session from another login does not make a foreign state acceptable.
        let other = session_cookie_for(&flow, &alice(now_unix() + 3600));
        assert_eq!(
            callback(&flow, &uri, &other).await.status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn request_parts_keep_what_the_flow_reads() {
        let flow = flow();
        let user = alice(now_unix() + 3600);
        let cookie = session_cookie_for(&flow, &user);
        let parts = request_parts(
            "GET",
            "/shop?x=1",
            [
                ("COOKIE", cookie.as_bytes()),
                ("Sec-Fetch-Mode", b"navigate".as_slice()),
                ("X-Other", b"1".as_slice()),
                ("Accept", b"bad\nvalue".as_slice()),
            ],
        )
        .unwrap();
        assert_eq!(parts.headers.len(), 2);
        assert!(matches!(flow.decide(&parts), Decision::Proceed(Some(u)) if u == user));
        let anonymous =
            request_parts("GET", "/shop", [("Sec-Fetch-Mode", b"navigate".as_slice())]).unwrap();
        assert_eq!(respond(flow.decide(&anonymous)).status(), StatusCode::FOUND);
        assert!(request_parts("BAD METHOD", "/", []).is_none());
        assert!(request_parts("GET", "not a uri", []).is_none());
    }

    #[test]
    fn html_is_escaped() {
        let page = html_page(
            StatusCode::OK,
            "<t>",
            "a & \"b\" <script>",
            Some(("/x?a=1&b='2'", "go")),
        );
        let body = String::from_utf8(page.body().to_vec()).unwrap();
        assert!(
            body.contains("&lt;t&gt;") && body.contains("a &amp; &quot;b&quot; &lt;script&gt;")
        );
        assert!(body.contains("href=\"/x?a=1&amp;b=&#39;2&#39;\""));
        assert!(!body.contains("<script>"));
    }
}
