//! The cookie itself: its settings, the wire format of its value, and the `Cookie` and
//! `Set-Cookie` headers.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use memchr::memmem::Finder;
use serde::{Deserialize, Serialize};

use super::cache::VerifiedCache;
use super::{Profile, SessionKeys, SessionUser};
use crate::clock::SharedClock;
use crate::oauth::Sex;
use crate::{AppId, ConfigError, Error, OpenId, Result, UnionId};

/// The longest cookie value this module produces, in bytes (browsers keep name + value up to
/// about 4096 bytes).
pub const MAX_COOKIE_VALUE_LEN: usize = 3800;

/// v2: the MAC also covers the app id and the cookie name (v1 values no longer verify).
const SESSION_LABEL: &[u8] = b"wechat-core/session/v2";
/// The prefix that makes browsers accept a cookie only with `Secure`, `Path=/` and no `Domain`,
/// so that no other host of the site (nor a plain-http page) can set or shadow it.
pub(crate) const HOST_PREFIX: &str = "__Host-";
/// The prefix that makes browsers accept a cookie only with `Secure` (for cookies whose path is
/// not `/`, which `__Host-` requires).
pub(crate) const SECURE_PREFIX: &str = "__Secure-";
const SESSION_VERSION: u8 = 1;
/// Limits on profile fields kept in the cookie; longer values are cut.
pub(super) const MAX_NICKNAME_CHARS: usize = 64;
pub(super) const MAX_REGION_CHARS: usize = 64;
const MAX_HEADIMGURL_BYTES: usize = 1024;
const MAX_ID_BYTES: usize = 256;

#[derive(Serialize, Deserialize)]
struct WirePayload {
    v: u8,
    o: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    u: Option<String>,
    e: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<WireProfile>,
    #[serde(default, skip_serializing_if = "is_false")]
    g: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct WireProfile {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    n: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    h: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    s: u8,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pr: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    c: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    co: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

fn cut_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

impl WireProfile {
    fn from_profile(p: &Profile) -> Self {
        Self {
            n: cut_chars(&p.nickname, MAX_NICKNAME_CHARS),
            h: if p.headimgurl.len() <= MAX_HEADIMGURL_BYTES {
                p.headimgurl.clone()
            } else {
                String::new()
            },
            s: p.sex.code(),
            pr: cut_chars(&p.province, MAX_REGION_CHARS),
            c: cut_chars(&p.city, MAX_REGION_CHARS),
            co: cut_chars(&p.country, MAX_REGION_CHARS),
        }
    }

    fn into_profile(self) -> Profile {
        Profile {
            nickname: self.n,
            headimgurl: self.h,
            sex: Sex::from_code(i64::from(self.s)),
            province: self.pr,
            city: self.c,
            country: self.co,
        }
    }
}

/// The session cookie's settings and keys: encodes, verifies, and writes `Set-Cookie` headers.
///
/// Defaults: name `wechat_session`, `Path=/`, max-age 7 days, not `Secure` (the login flow turns
/// it on for https public URLs), a cache of [`DEFAULT_CACHE_CAPACITY`](Self::DEFAULT_CACHE_CAPACITY)
/// verified values. Cheap to clone; clones share the cache.
///
/// The cookie carries the user itself (openid, unionid when known, for `snsapi_userinfo` the
/// profile, a snapshot flag and an expiry), so any number of app instances, written with
/// `wechat-tower` or `wechat-actix`, accept each other's cookies given the same
/// [`SessionKeys`], with no shared store.
///
/// Format of the value: `base64url(JSON payload) "." base64url(HMAC-SHA256(key, label ‖ app id ‖
/// cookie name ‖ payload))` (no padding; each part length-prefixed). The MAC binds the value to
/// its app ([`SessionCookieBuilder::app_id`]; the login flow sets its client's) and to the cookie
/// it is for, so that apps (or two cookies of one app) sharing [`SessionKeys`] do not accept each
/// other's values. The payload uses short field names: `v` version (1), `o` openid, `u` unionid,
/// `e` expiry (unix seconds), `p` profile (`n` nickname, `h` headimgurl, `s` sex, `pr` province,
/// `c` city, `co` country), `g` snapshot (guest) flag, `n` nonce of the login that created it.
/// The payload is readable by whoever holds the cookie (it is not encrypted): it holds nothing
/// the user does not already know about themselves.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use wechat_core::OpenId;
/// use wechat_core::clock::ManualClock;
/// use wechat_core::session::{SessionCookie, SessionKeys};
///
/// let keys = SessionKeys::from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")?;
/// let clock = Arc::new(ManualClock::at(1_700_000_000));
/// let cookie = SessionCookie::builder(keys)
///     .secure(true)
///     .max_age(Duration::from_secs(3600))
///     .clock(clock.clone())
///     .build()?;
/// let user = cookie.new_user(OpenId::new("o6_bmjrPTlm6_2sgVt7hMZOPfL2M")); // expires in 1 hour
///
/// let value = cookie.encode(&user)?;
/// assert_eq!(cookie.decode(&value), Some(user.clone()));
/// clock.advance(Duration::from_secs(3600));
/// assert_eq!(cookie.decode(&value), None); // expired
///
/// let header = cookie.set_cookie(&user)?;
/// // A Secure cookie on `Path=/` carries the `__Host-` prefix.
/// assert!(header.to_str().unwrap().starts_with("__Host-wechat_session="));
/// # Ok::<(), wechat_core::Error>(())
/// ```
///
/// # Security
/// - Values are authenticated with HMAC-SHA256 and verified in constant time
///   (`Mac::verify_slice`); a tampered value, an expired one, or one signed only by a key that
///   is no longer configured counts as no session.
/// - Keys rotate: sign with the current key, accept the current and the previous keys; remove a
///   previous key once every cookie it signed has expired (the cookie's max-age) or to log
///   everyone out.
/// - The cookie is `HttpOnly` and `SameSite=Lax`; set `Secure` whenever the site is served over
///   https. A `Secure` cookie on `Path=/` is named with the `__Host-` prefix (e.g.
///   `__Host-wechat_session`; `__Secure-` on another path; turn it off with
///   [`SessionCookieBuilder::host_prefix`]), so that
///   browsers refuse it from other subdomains and from plain http. It is a bearer credential:
///   whoever holds it is logged in until it expires, and a logout only removes it from that
///   browser.
/// - The payload is signed, not encrypted: do not add secrets to it.
///
/// # The verified-value cache
/// Verifying a value (base64, HMAC-SHA256, JSON) is most of what the login middleware does per
/// request, and a browser sends the same value with every request. So values that verified are
/// remembered, with their user, in a bounded cache: a later request with the very same value
/// (compared byte for byte, in constant time) gets the user without a new HMAC, as long as the
/// session has not expired (checked on every request). Only values that passed verification are
/// stored, so a flood of forged cookies cannot fill it; the cache has a fixed number of slots, a
/// new value replacing the one in its slot, so its memory stays bounded: each entry holds a
/// value and its user, a few hundred bytes for `snsapi_base` and at most about 5 KB for a
/// maximal `snsapi_userinfo` profile (values are capped at [`MAX_COOKIE_VALUE_LEN`]), so the
/// default 4,096 slots hold typically 1–3 MB. Keys cannot change within a `SessionCookie`: one
/// built with rotated keys has a new, empty cache. Turn it off, or resize it, with
/// [`SessionCookieBuilder::cache_capacity`].
#[derive(Clone)]
pub struct SessionCookie {
    keys: SessionKeys,
    /// The name as configured, before any prefix.
    base_name: String,
    /// The name sent to browsers.
    name: String,
    host_prefix: bool,
    /// The app the values are bound to (empty: none).
    app_id: Option<AppId>,
    /// A prepared search for `name` in `Cookie` headers.
    name_finder: Finder<'static>,
    path: String,
    secure: bool,
    max_age: Duration,
    pub(super) cache: Option<Arc<VerifiedCache>>,
    clock: SharedClock,
}

impl std::fmt::Debug for SessionCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCookie")
            .field("keys", &self.keys)
            .field("name", &self.name)
            .field("app_id", &self.app_id)
            .field("path", &self.path)
            .field("secure", &self.secure)
            .field("max_age", &self.max_age)
            .field("cache_capacity", &self.cache_capacity())
            .finish_non_exhaustive()
    }
}

/// Builds a [`SessionCookie`]: every setter takes its value, [`build`](Self::build) checks them
/// all.
///
/// ```
/// use std::time::Duration;
/// use wechat_core::session::{SessionCookie, SessionKeys};
///
/// let cookie = SessionCookie::builder(SessionKeys::generate())
///     .name("shop_session")
///     .secure(true)
///     .max_age(Duration::from_secs(24 * 3600))
///     .build()?;
/// // Secure on `Path=/`: browsers get it as `__Host-shop_session`.
/// assert_eq!(cookie.name(), "__Host-shop_session");
/// assert!(SessionCookie::builder(SessionKeys::generate()).path("no-slash").build().is_err());
/// # Ok::<(), wechat_core::ConfigError>(())
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until build() is called"]
pub struct SessionCookieBuilder {
    keys: SessionKeys,
    name: String,
    host_prefix: bool,
    app_id: Option<AppId>,
    path: String,
    secure: bool,
    max_age: Duration,
    cache_capacity: usize,
    clock: SharedClock,
}

impl std::fmt::Debug for SessionCookieBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCookieBuilder")
            .field("keys", &self.keys)
            .field("name", &self.name)
            .field("host_prefix", &self.host_prefix)
            .field("app_id", &self.app_id)
            .field("path", &self.path)
            .field("secure", &self.secure)
            .field("max_age", &self.max_age)
            .field("cache_capacity", &self.cache_capacity)
            .finish_non_exhaustive()
    }
}

impl SessionCookieBuilder {
    /// Sets the cookie name (default `wechat_session`): a cookie token of 1 to 64 letters,
    /// digits or `!#$%&'*+-.^_`|~`. Cookies ignore ports, so two apps on one host need
    /// different names.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Whether a `Secure` cookie is named `__Host-{name}` (on `Path=/`; `__Secure-{name}` on
    /// another path, which `__Host-` forbids) (default `true`): browsers then accept it only over
    /// https and, with `__Host-`, only from this very host. Turn it off only for a client that
    /// must read the cookie under its bare name.
    pub fn host_prefix(mut self, on: bool) -> Self {
        self.host_prefix = on;
        self
    }

    /// Binds the values to an app (the login flow binds them to its client's app id): a value
    /// issued for another app id, with the same keys, does not verify.
    pub fn app_id(mut self, app_id: impl Into<AppId>) -> Self {
        self.app_id = Some(app_id.into());
        self
    }

    /// Sets the cookie `Path` (default `/`): starts with a single `/`, without `;`, `,`, `?`,
    /// `#`, `\` or spaces.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Sets the `Secure` attribute (the browser then sends the cookie over https only).
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Sets the session lifetime (cookie max-age and payload expiry; default 7 days, at least
    /// one minute).
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Sets the number of slots of the verified-value cache (see [`SessionCookie`]), rounded up
    /// to a power of two (at most 2^20); 0 turns the cache off, so that every request's value is
    /// verified in full.
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// Sets the clock that decides expiry (default [`SystemClock`](crate::clock::SystemClock)).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// Checks every setting, naming the offending one as `{prefix}::{setter}`.
    fn check(
        &self,
        prefix: &str,
        setters: [&'static str; 3],
    ) -> std::result::Result<(), ConfigError> {
        let [name_setter, path_setter, age_setter] = setters;
        if !is_cookie_name(&self.name)
            || self.name.starts_with(HOST_PREFIX)
            || self.name.starts_with(SECURE_PREFIX)
        {
            return Err(ConfigError::new(
                format!("{prefix}::{name_setter}"),
                format!(
                    "cookie name {:?} must be 1 to 64 letters, digits or !#$%&'*+-.^_`|~, \
                     without a __Host- or __Secure- prefix (added on https)",
                    self.name
                ),
            ));
        }
        if !is_plain_path(&self.path) {
            return Err(ConfigError::new(
                format!("{prefix}::{path_setter}"),
                format!(
                    "cookie path {:?} must start with a single / and hold no ; , ? # \\ or spaces",
                    self.path
                ),
            ));
        }
        if self.max_age < Duration::from_secs(60) {
            return Err(ConfigError::new(
                format!("{prefix}::{age_setter}"),
                format!(
                    "session lifetime {:?} must be at least 1 minute",
                    self.max_age
                ),
            ));
        }
        Ok(())
    }

    /// Finishes the session cookie.
    ///
    /// # Errors
    /// [`ConfigError`] naming the setter whose value is wrong: a name that is not a cookie
    /// token, a path a cookie cannot hold, a lifetime under a minute.
    pub fn build(self) -> std::result::Result<SessionCookie, ConfigError> {
        self.build_as("SessionCookieBuilder", ["name", "path", "max_age"])
    }

    /// [`build`](Self::build), naming a failing setting as `{prefix}::{setter}` (the login
    /// configuration names its own setters).
    pub(crate) fn build_as(
        self,
        prefix: &str,
        setters: [&'static str; 3],
    ) -> std::result::Result<SessionCookie, ConfigError> {
        self.check(prefix, setters)?;
        Ok(SessionCookie::from_builder(self))
    }
}

/// Whether `name` is a valid cookie name (an RFC 7230 token).
pub(crate) fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `path` is a safe absolute path for a cookie `Path` or a route: starts with `/`,
/// printable ASCII without `;`, `,`, `?`, `#`, `\` or spaces.
pub(crate) fn is_plain_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && path.len() <= 256
        && path
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b";,?#\\\"".contains(&b))
}

/// The values of every cookie called `name` in the `Cookie` headers (HTTP/2 may send several).
pub(crate) fn cookie_values<'a>(headers: &'a http::HeaderMap, name: &str) -> Vec<&'a str> {
    let finder = Finder::new(name).into_owned();
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .flat_map(|header| cookie_values_in(header.as_bytes(), &finder))
        .filter_map(|value| std::str::from_utf8(value).ok())
        .collect()
}

/// The values of every cookie named by `finder` (a search for the cookie name) in one `Cookie`
/// header value: `name=value` pairs separated by `;`, with optional spaces and quotes around
/// the value. Searches the bytes for the name, so the other cookies of a long header cost a
/// vectorized scan, not a split.
/// The value of a `Cookie` header that is only `name=value` (no other cookie, nothing to trim
/// or unquote), the middleware's common case, read as [`cookie_values_in`] would; `None` for any
/// other header, which `cookie_values_in` reads.
pub(super) fn leading_cookie_value<'h>(header: &'h [u8], name: &[u8]) -> Option<&'h [u8]> {
    let value = header.strip_prefix(name)?.strip_prefix(b"=")?;
    let plain_end =
        |byte: Option<&u8>| byte.is_some_and(|&b| !b.is_ascii_whitespace() && b != b'"');
    let whole = memchr::memchr(b';', value).is_none()
        && plain_end(value.first())
        && plain_end(value.last());
    whole.then_some(value)
}

pub(crate) fn cookie_values_in<'h>(
    header: &'h [u8],
    finder: &Finder<'static>,
) -> impl Iterator<Item = &'h [u8]> {
    let name_len = finder.needle().len();
    finder.find_iter(header).filter_map(move |at| {
        // The name must start a pair: only spaces since the previous `;`.
        let before = header[..at].trim_ascii_end();
        if !(before.is_empty() || before.ends_with(b";")) {
            return None;
        }
        let rest = header[at + name_len..].trim_ascii_start();
        let rest = rest.strip_prefix(b"=")?;
        let value = rest[..memchr::memchr(b';', rest).unwrap_or(rest.len())].trim_ascii();
        Some(
            value
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(value),
        )
    })
}

/// Builds a `Set-Cookie` value with this crate's fixed attributes.
pub(crate) fn set_cookie_value(
    name: &str,
    value: &str,
    path: &str,
    max_age: u64,
    secure: bool,
) -> Result<http::HeaderValue> {
    let mut cookie =
        format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax");
    if secure {
        cookie.push_str("; Secure");
    }
    http::HeaderValue::try_from(cookie).map_err(|_| {
        Error::config(
            format!("cookie {name}"),
            "the cookie value is not a valid header value",
        )
    })
}

impl SessionCookie {
    /// The default cookie name. Cookies ignore ports, so apps on one host need distinct names.
    pub const DEFAULT_NAME: &'static str = "wechat_session";
    /// The default session lifetime: 7 days.
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
    /// The default number of slots of the verified-value cache (see [`SessionCookie`]): a
    /// returning browser is verified once as long as fewer than about this many are active at
    /// once; beyond that, values replace each other and are verified in full more often.
    pub const DEFAULT_CACHE_CAPACITY: usize = 4096;

    /// A session cookie signed with `keys`, with the default settings.
    pub fn new(keys: SessionKeys) -> Self {
        Self::from_builder(Self::builder(keys))
    }

    /// Starts a session cookie signed with `keys`; every setting has the default until set.
    pub fn builder(keys: SessionKeys) -> SessionCookieBuilder {
        SessionCookieBuilder {
            keys,
            name: Self::DEFAULT_NAME.to_owned(),
            host_prefix: true,
            app_id: None,
            path: "/".to_owned(),
            secure: false,
            max_age: Self::DEFAULT_MAX_AGE,
            cache_capacity: Self::DEFAULT_CACHE_CAPACITY,
            clock: crate::clock::system(),
        }
    }

    fn from_builder(builder: SessionCookieBuilder) -> Self {
        let name = match (builder.secure && builder.host_prefix, builder.path == "/") {
            (true, true) => format!("{HOST_PREFIX}{}", builder.name),
            // `__Host-` requires `Path=/`.
            (true, false) => format!("{SECURE_PREFIX}{}", builder.name),
            (false, _) => builder.name.clone(),
        };
        Self {
            name_finder: Finder::new(name.as_str()).into_owned(),
            keys: builder.keys,
            base_name: builder.name,
            name,
            host_prefix: builder.host_prefix,
            app_id: builder.app_id,
            path: builder.path,
            secure: builder.secure,
            max_age: builder.max_age,
            cache: VerifiedCache::new(builder.cache_capacity).map(Arc::new),
            clock: builder.clock,
        }
    }

    /// The number of slots of the verified-value cache; 0 when it is off.
    pub fn cache_capacity(&self) -> usize {
        self.cache.as_ref().map_or(0, |cache| cache.capacity())
    }

    /// The cookie name as browsers see it: `__Host-{name}` for a `Secure` cookie on `Path=/`,
    /// `__Secure-{name}` on another path (see [`SessionCookieBuilder::host_prefix`]), else the
    /// configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name of a companion cookie `{configured name}{suffix}` on another path (the login
    /// flow's state cookie): `__Secure-` prefixed when this cookie is `Secure` and prefixed.
    pub(crate) fn companion_name(&self, suffix: &str) -> String {
        if self.secure && self.host_prefix {
            format!("{SECURE_PREFIX}{}{suffix}", self.base_name)
        } else {
            format!("{}{suffix}", self.base_name)
        }
    }

    /// The app the values are bound to, if any.
    pub fn app_id(&self) -> Option<&AppId> {
        self.app_id.as_ref()
    }

    /// The same cookie bound to `app_id` (with an empty verified-value cache when it changes).
    pub(crate) fn for_app(&self, app_id: &AppId) -> Self {
        if self.app_id.as_ref() == Some(app_id) {
            return self.clone();
        }
        Self::from_builder(SessionCookieBuilder {
            keys: self.keys.clone(),
            name: self.base_name.clone(),
            host_prefix: self.host_prefix,
            app_id: Some(app_id.clone()),
            path: self.path.clone(),
            secure: self.secure,
            max_age: self.max_age,
            cache_capacity: self.cache_capacity(),
            clock: self.clock.clone(),
        })
    }

    /// The length-prefixed parts the MAC covers before the payload.
    fn mac_context(&self) -> [&[u8]; 2] {
        [
            self.app_id
                .as_ref()
                .map_or(&b""[..], |a| a.as_str().as_bytes()),
            self.name.as_bytes(),
        ]
    }

    /// The cookie path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the cookie is `Secure`.
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// The session lifetime.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// The keys.
    pub fn keys(&self) -> &SessionKeys {
        &self.keys
    }

    /// The clock that decides expiry.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The current unix time by the cookie's clock.
    pub(crate) fn now(&self) -> u64 {
        self.clock.now_unix_secs()
    }

    /// A user with `openid` whose session starts now and lasts [`max_age`](Self::max_age).
    pub fn new_user(&self, openid: OpenId) -> SessionUser {
        SessionUser::new(openid, self.now().saturating_add(self.max_age.as_secs()))
    }

    /// Encodes and signs `user` into a cookie value. Profile fields are cut (nickname and region
    /// to 64 characters) or left out (an avatar URL over 1024 bytes, then the avatar, then the
    /// whole profile) so that the value stays within [`MAX_COOKIE_VALUE_LEN`].
    ///
    /// # Errors
    /// [`Error::InvalidState`] when the openid or unionid is longer than 256 bytes (no WeChat id
    /// is).
    pub fn encode(&self, user: &SessionUser) -> Result<String> {
        self.encode_with_nonce(user, None)
    }

    pub(crate) fn encode_with_nonce(
        &self,
        user: &SessionUser,
        login_nonce: Option<&str>,
    ) -> Result<String> {
        let too_long = |id: &str| id.len() > MAX_ID_BYTES;
        if too_long(user.openid.as_str())
            || user.unionid.as_ref().is_some_and(|u| too_long(u.as_str()))
        {
            return Err(Error::InvalidState(
                "the openid or unionid is too long for a session cookie",
            ));
        }
        let mut payload = WirePayload {
            v: SESSION_VERSION,
            o: user.openid.as_str().to_owned(),
            u: user.unionid.as_ref().map(|u| u.as_str().to_owned()),
            e: user.expires_at,
            p: user.profile.as_ref().map(WireProfile::from_profile),
            g: user.is_snapshot_user,
            n: login_nonce.map(str::to_owned),
        };
        loop {
            let value = self.seal(&payload)?;
            if value.len() + self.name.len() < MAX_COOKIE_VALUE_LEN {
                return Ok(value);
            }
            match payload.p.as_mut() {
                Some(p) if !p.h.is_empty() => p.h.clear(),
                Some(_) => payload.p = None,
                None => return Err(Error::InvalidState("the session does not fit in a cookie")),
            }
        }
    }

    fn seal(&self, payload: &WirePayload) -> Result<String> {
        let json = serde_json::to_vec(payload)
            .map_err(|_| Error::InvalidState("the session cannot be encoded"))?;
        let body = URL_SAFE_NO_PAD.encode(json);
        let [app, name] = self.mac_context();
        let tag = self.keys.sign(SESSION_LABEL, &[app, name, body.as_bytes()]);
        Ok(format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag)))
    }

    /// Verifies a cookie value and returns its user, or `None` when the value is malformed,
    /// tampered with, signed by no configured key, or expired by the cookie's clock.
    pub fn decode(&self, value: &str) -> Option<SessionUser> {
        self.decode_at(value, self.now())
    }

    /// [`decode`](Self::decode) at `now` (unix seconds).
    pub(crate) fn decode_at(&self, value: &str, now: u64) -> Option<SessionUser> {
        self.decode_map(value.as_bytes(), now, |user, _| SessionUser::clone(user))
    }

    pub(crate) fn decode_with_nonce(
        &self,
        value: &str,
        now: u64,
    ) -> Option<(SessionUser, Option<String>)> {
        self.decode_map(value.as_bytes(), now, |user, nonce| {
            (SessionUser::clone(user), nonce.map(str::to_owned))
        })
    }

    /// `read` applied to the user and login nonce of `value`, from the cache when `value`
    /// verified before, else verified in full (and then cached). Bytes, as they come in the
    /// `Cookie` header: a value that is not base64url fails verification.
    fn decode_map<R>(
        &self,
        value: &[u8],
        now: u64,
        read: impl Fn(&Arc<SessionUser>, Option<&str>) -> R,
    ) -> Option<R> {
        if value.len() > MAX_COOKIE_VALUE_LEN {
            return None;
        }
        if let Some(cache) = &self.cache {
            if let Some(hit) = cache.get(value, now, &read) {
                return Some(hit);
            }
        }
        let (user, nonce) = self.verify(value, now)?;
        let user = Arc::new(user);
        if let Some(cache) = &self.cache {
            cache.insert(value, &user, nonce.as_deref());
        }
        Some(read(&user, nonce.as_deref()))
    }

    /// Verifies `value` in full: the tag, then the payload.
    fn verify(&self, value: &[u8], now: u64) -> Option<(SessionUser, Option<String>)> {
        let dot = memchr::memchr(b'.', value)?;
        let (body, tag) = (&value[..dot], &value[dot + 1..]);
        // A genuine tag is 32 bytes (43 characters); decode on the stack, anything longer fails.
        let mut tag_buf = [0u8; 48];
        let tag_len = URL_SAFE_NO_PAD.decode_slice(tag, &mut tag_buf).ok()?;
        let tag = &tag_buf[..tag_len];
        let [app, name] = self.mac_context();
        if !self.keys.verify(SESSION_LABEL, &[app, name, body], tag) {
            return None;
        }
        let json = URL_SAFE_NO_PAD.decode(body).ok()?;
        let payload: WirePayload = serde_json::from_slice(&json).ok()?;
        if payload.v != SESSION_VERSION || payload.e <= now || payload.o.is_empty() {
            return None;
        }
        let user = SessionUser {
            openid: OpenId::new(payload.o),
            unionid: payload.u.filter(|u| !u.is_empty()).map(UnionId::new),
            profile: payload.p.map(WireProfile::into_profile),
            is_snapshot_user: payload.g,
            expires_at: payload.e,
        };
        Some((user, payload.n))
    }

    /// The user of the first valid session cookie in `headers` (all `Cookie` headers are read;
    /// several cookies of the same name are tried in turn).
    pub fn read(&self, headers: &http::HeaderMap) -> Option<SessionUser> {
        self.read_at(headers, self.now())
    }

    /// [`read`](Self::read) at `now` (unix seconds).
    pub(crate) fn read_at(&self, headers: &http::HeaderMap, now: u64) -> Option<SessionUser> {
        self.read_shared_at(headers, now).map(Arc::unwrap_or_clone)
    }

    /// [`read_at`](Self::read_at), sharing the cached user rather than copying it.
    pub(crate) fn read_shared_at(
        &self,
        headers: &http::HeaderMap,
        now: u64,
    ) -> Option<Arc<SessionUser>> {
        self.read_values(
            headers
                .get_all(http::header::COOKIE)
                .iter()
                .map(http::HeaderValue::as_bytes),
            now,
        )
    }

    /// As [`read`](Self::read), from the `Cookie` header values themselves (for frameworks whose
    /// requests are not `http` 1 types).
    pub(crate) fn read_values<'a>(
        &self,
        header_values: impl Iterator<Item = &'a [u8]>,
        now: u64,
    ) -> Option<Arc<SessionUser>> {
        // Loops rather than iterator adapters: the found user is moved once, not per adapter.
        for header in header_values {
            // The common header holds only the session: `name=value`, read without a search.
            let leading = leading_cookie_value(header, self.name_finder.needle());
            if let Some(value) = leading {
                if let Some(user) = self.decode_map(value, now, |user, _| Arc::clone(user)) {
                    return Some(user);
                }
            }
            for value in cookie_values_in(header, &self.name_finder) {
                // The leading value was tried (and failed) above: a forged cookie costs one
                // verification, not two.
                if leading.is_some_and(|tried| std::ptr::eq(tried, value)) {
                    continue;
                }
                if let Some(user) = self.decode_map(value, now, |user, _| Arc::clone(user)) {
                    return Some(user);
                }
            }
        }
        None
    }

    pub(crate) fn read_with_nonce(
        &self,
        headers: &http::HeaderMap,
        now: u64,
    ) -> Option<(SessionUser, Option<String>)> {
        cookie_values(headers, &self.name)
            .into_iter()
            .find_map(|value| self.decode_with_nonce(value, now))
    }

    /// A `Set-Cookie` header value for `user`: `HttpOnly; SameSite=Lax`, the configured path,
    /// `Secure` when configured, and `Max-Age` up to the user's expiry.
    ///
    /// # Errors
    /// As [`encode`](Self::encode).
    pub fn set_cookie(&self, user: &SessionUser) -> Result<http::HeaderValue> {
        self.set_cookie_at(user, self.now())
    }

    /// [`set_cookie`](Self::set_cookie) at `now` (unix seconds).
    pub(crate) fn set_cookie_at(&self, user: &SessionUser, now: u64) -> Result<http::HeaderValue> {
        self.set_cookie_with_nonce(user, now, None)
    }

    pub(crate) fn set_cookie_with_nonce(
        &self,
        user: &SessionUser,
        now: u64,
        nonce: Option<&str>,
    ) -> Result<http::HeaderValue> {
        let value = self.encode_with_nonce(user, nonce)?;
        set_cookie_value(
            &self.name,
            &value,
            &self.path,
            user.expires_at.saturating_sub(now),
            self.secure,
        )
    }

    /// A `Set-Cookie` header value that removes the session cookie (logout).
    pub fn clear_cookie(&self) -> http::HeaderValue {
        set_cookie_value(&self.name, "", &self.path, 0, self.secure).unwrap_or_else(|_| {
            http::HeaderValue::from_static("wechat_session=; Path=/; Max-Age=0")
        })
    }
}
