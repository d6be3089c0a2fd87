//! The login flow's configuration and its builder.

use std::time::Duration;

use crate::ConfigError;
use crate::clock::SharedClock;
use crate::oauth::{Lang, Scope};
use crate::session::{SessionCookie, SessionCookieBuilder, SessionKeys, is_plain_path};

/// The login flow's configuration; build it with [`LoginConfig::builder`].
#[derive(Debug, Clone)]
pub struct LoginConfig {
    pub(super) public_url: String,
    pub(super) callback_path: String,
    pub(super) login_path: String,
    pub(super) logout_path: String,
    pub(super) scope: Scope,
    pub(super) session: SessionCookie,
    pub(super) state_ttl: Duration,
    pub(super) excluded: Vec<String>,
    pub(super) lang: Option<Lang>,
}

/// Builds a [`LoginConfig`]. Every setter takes its value; [`build`](Self::build) checks them
/// all and names the one that is wrong.
///
/// ```
/// use std::time::Duration;
/// use wechat_core::login::LoginConfig;
/// use wechat_core::oauth::Scope;
/// use wechat_core::session::SessionKeys;
///
/// let login = LoginConfig::builder("https://shop.example.com", SessionKeys::generate())
///     .scope(Scope::UserInfo)
///     .session_ttl(Duration::from_secs(24 * 3600))
///     .exclude("/static")
///     .exclude_notifications("/wechat")
///     .build()?;
/// assert!(login.is_excluded("/wechat/pay/notify"));
///
/// let err = LoginConfig::builder("shop.example.com", SessionKeys::generate()).build().unwrap_err();
/// assert_eq!(err.setting(), "LoginConfig::builder(public_url)");
/// # Ok::<(), wechat_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build() is called"]
pub struct LoginConfigBuilder {
    public_url: String,
    callback_path: String,
    login_path: String,
    logout_path: String,
    scope: Scope,
    session: SessionCookieBuilder,
    secure: Option<bool>,
    state_ttl: Duration,
    excluded: Vec<(String, &'static str)>,
    lang: Option<Lang>,
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
    /// [`build`](LoginConfigBuilder::build) refuses a `public_url` that is not an absolute
    /// http(s) origin.
    ///
    /// Defaults: scope `snsapi_base`, callback `/wechat/oauth/callback`, login
    /// `/wechat/oauth/login`, logout `/wechat/oauth/logout`, state TTL 10 minutes, the
    /// [`SessionCookie`] defaults (name `wechat_session`, `Path=/`, 7 days), `Secure` when
    /// `public_url` is https, no excluded paths, `sns/userinfo` language `zh_CN`, the system
    /// clock.
    pub fn builder(public_url: &str, keys: SessionKeys) -> LoginConfigBuilder {
        LoginConfigBuilder {
            public_url: public_url.to_owned(),
            callback_path: Self::DEFAULT_CALLBACK_PATH.to_owned(),
            login_path: Self::DEFAULT_LOGIN_PATH.to_owned(),
            logout_path: Self::DEFAULT_LOGOUT_PATH.to_owned(),
            scope: Scope::Base,
            session: SessionCookie::builder(keys),
            secure: None,
            state_ttl: Self::DEFAULT_STATE_TTL,
            excluded: Vec::new(),
            lang: None,
        }
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
    /// `{session cookie name}_state`, with the `__Secure-` prefix when the session cookie has
    /// the `__Host-` one (the state cookie's path is the callback's, which `__Host-` forbids).
    pub fn state_cookie_name(&self) -> String {
        self.session.companion_name("_state")
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

    /// The clock the flow reads (the session cookie's).
    pub fn clock(&self) -> &SharedClock {
        self.session.clock()
    }
}

const PUBLIC_URL_SETTING: &str = "LoginConfig::builder(public_url)";

fn validate_public_url(public_url: &str) -> Result<String, ConfigError> {
    let trimmed = public_url.trim().trim_end_matches('/');
    let bad = |why: &str| {
        ConfigError::new(
            PUBLIC_URL_SETTING,
            format!("public URL {trimmed:?} {why}; expected e.g. https://shop.example.com"),
        )
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

fn check_path(setting: &'static str, what: &str, path: &str) -> Result<(), ConfigError> {
    if is_plain_path(path) {
        Ok(())
    } else {
        Err(ConfigError::new(
            setting,
            format!("{what} {path:?} must start with a single / and hold no ; , ? # \\ or spaces"),
        ))
    }
}

impl LoginConfigBuilder {
    /// Sets the callback path (default `/wechat/oauth/callback`): starts with `/`, without `?`,
    /// `#`, `;`, spaces…
    pub fn callback_path(mut self, path: &str) -> Self {
        self.callback_path = path.to_owned();
        self
    }

    /// Sets the path that starts a login (default `/wechat/oauth/login`), as
    /// [`callback_path`](Self::callback_path).
    pub fn login_path(mut self, path: &str) -> Self {
        self.login_path = path.to_owned();
        self
    }

    /// Sets the logout path (default `/wechat/oauth/logout`), as
    /// [`callback_path`](Self::callback_path).
    pub fn logout_path(mut self, path: &str) -> Self {
        self.logout_path = path.to_owned();
        self
    }

    /// Sets the scope: [`Scope::Base`] (silent, openid only; the default) or
    /// [`Scope::UserInfo`] (consent page; the session then holds the profile).
    pub fn scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    /// Sets how long a pending login stays valid (default 10 minutes; 1 minute to 1 hour).
    pub fn state_ttl(mut self, ttl: Duration) -> Self {
        self.state_ttl = ttl;
        self
    }

    /// Sets the session lifetime (cookie max-age; default 7 days; at least 1 minute).
    pub fn session_ttl(mut self, ttl: Duration) -> Self {
        self.session = self.session.max_age(ttl);
        self
    }

    /// Sets the session cookie name (default `wechat_session`; a cookie token; cookies ignore
    /// ports, so two apps on one host need different names).
    pub fn cookie_name(mut self, name: &str) -> Self {
        self.session = self.session.name(name);
        self
    }

    /// Whether `Secure` cookies carry the `__Host-` (session cookie) and `__Secure-` (state
    /// cookie) name prefixes (default `true`), as [`SessionCookieBuilder::host_prefix`].
    pub fn host_prefix(mut self, on: bool) -> Self {
        self.session = self.session.host_prefix(on);
        self
    }

    /// Sets the session cookie `Path` (default `/`), as
    /// [`SessionCookieBuilder::path`].
    pub fn cookie_path(mut self, path: &str) -> Self {
        self.session = self.session.path(path);
        self
    }

    /// Sets the `Secure` attribute of both cookies (default: on for an https public URL).
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = Some(secure);
        self
    }

    /// Sets the number of slots of the session cookie's verified-value cache (default
    /// [`SessionCookie::DEFAULT_CACHE_CAPACITY`]; 0 turns it off); see
    /// [`SessionCookieBuilder::cache_capacity`]. Raise it when many more browsers than that are
    /// active at once on one instance.
    pub fn session_cache_capacity(mut self, capacity: usize) -> Self {
        self.session = self.session.cache_capacity(capacity);
        self
    }

    /// Sets the clock of the flow: the OAuth state's and the session's expiry (default
    /// [`SystemClock`](crate::clock::SystemClock)). Tests move a
    /// [`ManualClock`](crate::clock::ManualClock) instead of sleeping.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.session = self.session.clock(clock);
        self
    }

    /// Excludes a path prefix from login (e.g. `/wechat/pay/notify`, `/static`, `/health`):
    /// such requests proceed with the user when there is a valid session and without one
    /// otherwise. The prefix starts with `/` and holds no `?`, `#`, spaces…
    pub fn exclude(mut self, prefix: &str) -> Self {
        self.push_excluded(prefix.to_owned(), "LoginConfigBuilder::exclude");
        self
    }

    /// Excludes the payment and refund notification routes mounted under `prefix` from login
    /// (see [`notification_paths`](crate::routes::notification_paths)): WeChat's servers post
    /// them without a session. `prefix` is empty or starts with `/`.
    pub fn exclude_notifications(mut self, prefix: &str) -> Self {
        for path in crate::routes::notification_paths(prefix) {
            self.push_excluded(path, "LoginConfigBuilder::exclude_notifications");
        }
        self
    }

    fn push_excluded(&mut self, prefix: String, setting: &'static str) {
        if !self.excluded.iter().any(|(p, _)| *p == prefix) {
            self.excluded.push((prefix, setting));
        }
    }

    /// Sets the language of the profile's region fields (`sns/userinfo` `lang`).
    pub fn lang(mut self, lang: Lang) -> Self {
        self.lang = Some(lang);
        self
    }

    /// Checks every setting and finishes the configuration.
    ///
    /// # Errors
    /// [`ConfigError`] naming the setting that is wrong: a public URL that is not an absolute
    /// http(s) origin, a path that does not start with `/` or holds `?`, `#`, `;` or spaces,
    /// callback, login and logout paths that are not all different, a state TTL outside 1
    /// minute to 1 hour, a session TTL under 1 minute, a cookie name that is not a token.
    pub fn build(self) -> Result<LoginConfig, ConfigError> {
        let public_url = validate_public_url(&self.public_url)?;
        check_path(
            "LoginConfigBuilder::callback_path",
            "callback path",
            &self.callback_path,
        )?;
        check_path(
            "LoginConfigBuilder::login_path",
            "login path",
            &self.login_path,
        )?;
        check_path(
            "LoginConfigBuilder::logout_path",
            "logout path",
            &self.logout_path,
        )?;
        if self.callback_path == self.login_path
            || self.callback_path == self.logout_path
            || self.login_path == self.logout_path
        {
            return Err(ConfigError::new(
                "LoginConfigBuilder::callback_path",
                format!(
                    "the callback ({}), login ({}) and logout ({}) paths must differ",
                    self.callback_path, self.login_path, self.logout_path
                ),
            ));
        }
        if !(Duration::from_secs(60)..=Duration::from_secs(3600)).contains(&self.state_ttl) {
            return Err(ConfigError::new(
                "LoginConfigBuilder::state_ttl",
                format!(
                    "state TTL {:?} must be between 1 minute and 1 hour",
                    self.state_ttl
                ),
            ));
        }
        for (prefix, setting) in &self.excluded {
            check_path(setting, "excluded path", prefix)?;
        }
        let secure = self
            .secure
            .unwrap_or_else(|| public_url.starts_with("https://"));
        let session = self.session.secure(secure).build_as(
            "LoginConfigBuilder",
            ["cookie_name", "cookie_path", "session_ttl"],
        )?;
        Ok(LoginConfig {
            public_url,
            callback_path: self.callback_path,
            login_path: self.login_path,
            logout_path: self.logout_path,
            scope: self.scope,
            session,
            state_ttl: self.state_ttl,
            excluded: self.excluded.into_iter().map(|(p, _)| p).collect(),
            lang: self.lang,
        })
    }
}
