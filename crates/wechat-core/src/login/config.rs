//! The login flow's configuration and its builder.

use std::time::Duration;

use crate::oauth::{Lang, Scope};
use crate::session::{SessionCookie, SessionKeys, is_plain_path};
use crate::{Error, Result};

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

impl LoginConfigBuilder {
    /// Excludes the payment and refund notification routes mounted under `prefix` from login
    /// (see [`notification_paths`](crate::routes::notification_paths)): WeChat's servers post them without a session.
    ///
    /// # Errors
    /// [`Error::Config`] when `prefix` is not empty and does not start with `/`, or holds `?`,
    /// `#`, spaces…
    pub fn exclude_notifications(self, prefix: &str) -> Result<Self> {
        let [payment, refund] = crate::routes::notification_paths(prefix);
        self.exclude(&payment)?.exclude(&refund)
    }
}
