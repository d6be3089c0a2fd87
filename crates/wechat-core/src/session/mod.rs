//! The stateless session cookie: who is logged in, authenticated with HMAC-SHA256.
//!
//! The details are on [`SessionCookie`], where rustdoc shows them (this module is private).

mod cache;
mod state;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use memchr::memmem::Finder;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::oauth::{Sex, UserInfo};
use crate::{Error, OpenId, Result, UnionId};
use cache::VerifiedCache;
pub use state::{MAX_RETURN_PATH_LEN, OAuthState, RETURN_PARAM, STATE_MAX_LEN, safe_return_path};

type HmacSha256 = Hmac<Sha256>;

/// The shortest key [`SessionKeys`] accepts, in bytes.
pub const MIN_KEY_LEN: usize = 32;

/// The longest cookie value this module produces, in bytes (browsers keep name + value up to
/// about 4096 bytes).
pub const MAX_COOKIE_VALUE_LEN: usize = 3800;

const SESSION_LABEL: &[u8] = b"wechat-core/session/v1";
const SESSION_VERSION: u8 = 1;
/// Limits on profile fields kept in the cookie; longer values are cut.
const MAX_NICKNAME_CHARS: usize = 64;
const MAX_REGION_CHARS: usize = 64;
const MAX_HEADIMGURL_BYTES: usize = 1024;
const MAX_ID_BYTES: usize = 256;

/// One HMAC key, kept as the HMAC state after absorbing the key (so that each MAC clones it
/// instead of hashing the key's inner and outer blocks again); never printed.
#[derive(Clone)]
struct Key(HmacSha256);

impl Key {
    fn new(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < MIN_KEY_LEN {
            return Err(Error::Config(format!(
                "a session key must have at least {MIN_KEY_LEN} bytes (64 hex digits), got {}",
                bytes.len()
            )));
        }
        Ok(Self::keyed(bytes))
    }

    fn keyed(bytes: &[u8]) -> Self {
        Self(<HmacSha256 as Mac>::new_from_slice(bytes).expect("HMAC accepts keys of any length"))
    }

    fn from_hex(hex_key: &str) -> Result<Self> {
        let bytes = hex::decode(hex_key.trim()).map_err(|_| {
            Error::Config(
                "a session key in hex must contain only hex digits (0-9a-f), in pairs".to_owned(),
            )
        })?;
        Self::new(&bytes)
    }

    fn mac(&self, label: &[u8], parts: &[&[u8]]) -> HmacSha256 {
        let mut mac = self.0.clone();
        mac.update(label);
        for part in parts {
            // Length-prefix every part so that no two part lists give the same input.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }
}

/// The HMAC keys that sign session cookies and OAuth `state` values: one current key (used to
/// sign) and any number of previous keys (still accepted, for rotation).
///
/// Every instance of the app must be configured with the same keys. `Debug` never shows them.
///
/// ```
/// use wechat_core::session::SessionKeys;
///
/// let keys = SessionKeys::from_hex(&"ab".repeat(32))?       // the new key
///     .with_previous_hex(&"cd".repeat(32))?;                  // still accepted
/// assert_eq!(format!("{keys:?}"), "SessionKeys { current: [redacted], previous: 1 }");
/// assert!(SessionKeys::new(b"too short").is_err());
/// # Ok::<(), wechat_core::Error>(())
/// ```
///
/// # Security
/// Keys are secrets: whoever has one can log in as any user. Use at least 32 random bytes
/// (e.g. `openssl rand -hex 32`), keep them out of source control, and rotate by moving the
/// current key to the previous keys.
#[derive(Clone)]
pub struct SessionKeys {
    current: Key,
    previous: Vec<Key>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("current", &format_args!("[redacted]"))
            .field("previous", &self.previous.len())
            .finish()
    }
}

impl SessionKeys {
    /// Keys with `current` (raw bytes, at least [`MIN_KEY_LEN`]) as the signing key.
    ///
    /// # Errors
    /// [`Error::Config`] when the key is shorter than 32 bytes.
    pub fn new(current: impl AsRef<[u8]>) -> Result<Self> {
        Ok(Self {
            current: Key::new(current.as_ref())?,
            previous: Vec::new(),
        })
    }

    /// Keys with a hex-encoded signing key (at least 64 hex digits), e.g. from an environment
    /// variable filled with `openssl rand -hex 32`.
    ///
    /// # Errors
    /// [`Error::Config`] when the text is not hex or decodes to fewer than 32 bytes.
    pub fn from_hex(current: &str) -> Result<Self> {
        Ok(Self {
            current: Key::from_hex(current)?,
            previous: Vec::new(),
        })
    }

    /// A random 32-byte key. Sessions signed with it do not survive a restart and are not
    /// accepted by other instances: use configured keys in production.
    pub fn generate() -> Self {
        let mut bytes = [0u8; MIN_KEY_LEN];
        rand::rng().fill_bytes(&mut bytes);
        Self {
            current: Key::keyed(&bytes),
            previous: Vec::new(),
        }
    }

    /// Adds a previous key (raw bytes): values it signed are still accepted; nothing new is
    /// signed with it.
    ///
    /// # Errors
    /// [`Error::Config`] when the key is shorter than 32 bytes.
    #[must_use = "with_previous returns the keys with the previous key added"]
    pub fn with_previous(mut self, key: impl AsRef<[u8]>) -> Result<Self> {
        self.previous.push(Key::new(key.as_ref())?);
        Ok(self)
    }

    /// Adds a hex-encoded previous key; see [`with_previous`](Self::with_previous).
    ///
    /// # Errors
    /// [`Error::Config`] when the text is not hex or decodes to fewer than 32 bytes.
    #[must_use = "with_previous_hex returns the keys with the previous key added"]
    pub fn with_previous_hex(mut self, key: &str) -> Result<Self> {
        self.previous.push(Key::from_hex(key)?);
        Ok(self)
    }

    /// How many previous keys are accepted.
    pub fn previous_len(&self) -> usize {
        self.previous.len()
    }

    /// HMAC-SHA256 with the current key over `label` and the length-prefixed `parts`.
    pub(crate) fn sign(&self, label: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        self.current
            .mac(label, parts)
            .finalize()
            .into_bytes()
            .into()
    }

    /// Whether `tag` is the HMAC of `parts` under the current or a previous key (constant time
    /// per key).
    pub(crate) fn verify(&self, label: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .any(|key| key.mac(label, parts).verify_slice(tag).is_ok())
    }
}

/// The profile fields kept in the session for `snsapi_userinfo` logins.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Profile {
    /// The nickname (cut to 64 characters in the cookie).
    pub nickname: String,
    /// The avatar URL (left out of the cookie when longer than 1024 bytes).
    pub headimgurl: String,
    /// The sex.
    pub sex: Sex,
    /// Province.
    pub province: String,
    /// City.
    pub city: String,
    /// Country.
    pub country: String,
}

impl From<&UserInfo> for Profile {
    fn from(info: &UserInfo) -> Self {
        Self {
            nickname: info.nickname.clone(),
            headimgurl: info.headimgurl.clone(),
            sex: info.sex,
            province: info.province.clone(),
            city: info.city.clone(),
            country: info.country.clone(),
        }
    }
}

/// The logged-in user, read from a valid session cookie.
///
/// The login middleware of `wechat-tower` and `wechat-actix` puts it into the request extensions
/// (see [`Decision::Proceed`](crate::login::Decision::Proceed)); handlers read it with the adapters'
/// extractors or [`SessionUser::from_extensions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    /// The user's openid for this app (virtual for a snapshot user).
    pub openid: OpenId,
    /// The unionid, when WeChat returned one.
    pub unionid: Option<UnionId>,
    /// The profile, for `snsapi_userinfo` logins of non-snapshot users.
    pub profile: Option<Profile>,
    /// The user opened the page from a Moments snapshot: a guest with a virtual openid and no
    /// profile.
    pub is_snapshot_user: bool,
    /// When the session ends, in unix seconds.
    pub expires_at: u64,
}

impl SessionUser {
    /// A user with only an openid, whose session ends at `expires_at` (unix seconds).
    pub fn new(openid: OpenId, expires_at: u64) -> Self {
        Self {
            openid,
            unionid: None,
            profile: None,
            is_snapshot_user: false,
            expires_at,
        }
    }

    /// The user the login middleware put into `http` request extensions, if any.
    pub fn from_extensions(extensions: &http::Extensions) -> Option<&Self> {
        extensions.get::<Self>()
    }
}

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
/// Format of the value: `base64url(JSON payload) "." base64url(HMAC-SHA256(key, label ‖ payload))`
/// (no padding). The payload uses short field names: `v` version (1), `o` openid, `u` unionid,
/// `e` expiry (unix seconds), `p` profile (`n` nickname, `h` headimgurl, `s` sex, `pr` province,
/// `c` city, `co` country), `g` snapshot (guest) flag, `n` nonce of the login that created it.
/// The payload is readable by whoever holds the cookie (it is not encrypted): it holds nothing
/// the user does not already know about themselves.
///
/// ```
/// use std::time::Duration;
/// use wechat_core::OpenId;
/// use wechat_core::session::{SessionCookie, SessionKeys, SessionUser};
///
/// let keys = SessionKeys::from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")?;
/// let cookie = SessionCookie::new(keys).with_secure(true).with_max_age(Duration::from_secs(3600));
/// let now = 1_700_000_000;
/// let user = SessionUser::new(OpenId::new("o6_bmjrPTlm6_2sgVt7hMZOPfL2M"), now + 3600);
///
/// let value = cookie.encode(&user)?;
/// assert_eq!(cookie.decode(&value, now), Some(user.clone()));
/// assert_eq!(cookie.decode(&value, now + 3600), None); // expired
///
/// let header = cookie.set_cookie(&user, now)?;
/// assert!(header.to_str().unwrap().starts_with("wechat_session="));
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
///   https. It is a bearer credential: whoever holds it is logged in until it expires, and a
///   logout only removes it from that browser.
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
/// [`with_cache_capacity`](Self::with_cache_capacity).
#[derive(Debug, Clone)]
pub struct SessionCookie {
    keys: SessionKeys,
    name: String,
    /// A prepared search for `name` in `Cookie` headers.
    name_finder: Finder<'static>,
    path: String,
    secure: bool,
    max_age: Duration,
    cache: Option<Arc<VerifiedCache>>,
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
    http::HeaderValue::try_from(cookie)
        .map_err(|_| Error::Config("cookie value is not a valid header value".to_owned()))
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
        Self {
            keys,
            name: Self::DEFAULT_NAME.to_owned(),
            name_finder: Finder::new(Self::DEFAULT_NAME).into_owned(),
            path: "/".to_owned(),
            secure: false,
            max_age: Self::DEFAULT_MAX_AGE,
            cache: VerifiedCache::new(Self::DEFAULT_CACHE_CAPACITY).map(Arc::new),
        }
    }

    /// Sets the number of slots of the verified-value cache (see [`SessionCookie`]), rounded up
    /// to a power of two (at most 2^20); 0 turns the cache off, so that every request's value is
    /// verified in full. The new cache starts empty and is shared by the clones made from now on.
    #[must_use]
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache = VerifiedCache::new(capacity).map(Arc::new);
        self
    }

    /// The number of slots of the verified-value cache; 0 when it is off.
    pub fn cache_capacity(&self) -> usize {
        self.cache.as_ref().map_or(0, |cache| cache.capacity())
    }

    /// Sets the cookie name.
    ///
    /// # Errors
    /// [`Error::Config`] when `name` is not a cookie token (letters, digits, `_`, `-`, …).
    #[must_use = "with_name returns the new settings"]
    pub fn with_name(mut self, name: &str) -> Result<Self> {
        if !is_cookie_name(name) {
            return Err(Error::Config(format!(
                "cookie name {name:?} must be 1 to 64 letters, digits or !#$%&'*+-.^_`|~"
            )));
        }
        self.name = name.to_owned();
        self.name_finder = Finder::new(name).into_owned();
        Ok(self)
    }

    /// Sets the cookie `Path` (default `/`).
    ///
    /// # Errors
    /// [`Error::Config`] when `path` does not start with `/` or has characters a cookie path
    /// cannot hold.
    #[must_use = "with_path returns the new settings"]
    pub fn with_path(mut self, path: &str) -> Result<Self> {
        if !is_plain_path(path) {
            return Err(Error::Config(format!(
                "cookie path {path:?} must start with a single / and hold no ; , ? # \\ or spaces"
            )));
        }
        self.path = path.to_owned();
        Ok(self)
    }

    /// Sets the `Secure` attribute (the browser then sends the cookie over https only).
    #[must_use]
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Sets the session lifetime (cookie max-age and payload expiry); at least one minute.
    #[must_use]
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age.max(Duration::from_secs(60));
        self
    }

    /// The cookie name.
    pub fn name(&self) -> &str {
        &self.name
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
        let tag = self.keys.sign(SESSION_LABEL, &[body.as_bytes()]);
        Ok(format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag)))
    }

    /// Verifies a cookie value and returns its user, or `None` when the value is malformed,
    /// tampered with, signed by no configured key, or expired at `now` (unix seconds).
    pub fn decode(&self, value: &str, now: u64) -> Option<SessionUser> {
        self.decode_map(value.as_bytes(), now, |user, _| user.clone())
    }

    pub(crate) fn decode_with_nonce(
        &self,
        value: &str,
        now: u64,
    ) -> Option<(SessionUser, Option<String>)> {
        self.decode_map(value.as_bytes(), now, |user, nonce| {
            (user.clone(), nonce.map(str::to_owned))
        })
    }

    /// `read` applied to the user and login nonce of `value`, from the cache when `value`
    /// verified before, else verified in full (and then cached). Bytes, as they come in the
    /// `Cookie` header: a value that is not base64url fails verification.
    fn decode_map<R>(
        &self,
        value: &[u8],
        now: u64,
        read: impl Fn(&SessionUser, Option<&str>) -> R,
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
        if !self.keys.verify(SESSION_LABEL, &[body], tag) {
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
    pub fn read(&self, headers: &http::HeaderMap, now: u64) -> Option<SessionUser> {
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
    ) -> Option<SessionUser> {
        // Loops rather than iterator adapters: the found user is moved once, not per adapter.
        for header in header_values {
            for value in cookie_values_in(header, &self.name_finder) {
                if let Some(user) = self.decode_map(value, now, |user, _| user.clone()) {
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
    pub fn set_cookie(&self, user: &SessionUser, now: u64) -> Result<http::HeaderValue> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn keys(byte: u8) -> SessionKeys {
        SessionKeys::new([byte; 32]).unwrap()
    }

    fn full_user() -> SessionUser {
        SessionUser {
            openid: OpenId::new("o6_bmjrPTlm6_2sgVt7hMZOPfL2M"),
            unionid: Some(UnionId::new("o6_bmasdasdsad6_2sgVt7hMZOPfL")),
            profile: Some(Profile {
                nickname: "Alice 张".to_owned(),
                headimgurl: "http://127.0.0.1:3000/avatar.png".to_owned(),
                sex: Sex::Female,
                province: "Guangdong".to_owned(),
                city: "Shenzhen".to_owned(),
                country: "CN".to_owned(),
            }),
            is_snapshot_user: false,
            expires_at: NOW + 3600,
        }
    }

    #[test]
    fn round_trip() {
        let cookie = SessionCookie::new(keys(1));
        let user = full_user();
        let value = cookie.encode(&user).unwrap();
        assert!(
            value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "{value}"
        );
        assert_eq!(cookie.decode(&value, NOW), Some(user));
        let guest = SessionUser {
            is_snapshot_user: true,
            ..SessionUser::new(OpenId::new("virtual"), NOW + 60)
        };
        assert_eq!(
            cookie.decode(&cookie.encode(&guest).unwrap(), NOW),
            Some(guest)
        );
    }

    #[test]
    fn tampered_values_are_rejected() {
        let cookie = SessionCookie::new(keys(1));
        let value = cookie.encode(&full_user()).unwrap();
        let (body, tag) = value.split_once('.').unwrap();
        // Another payload with the old tag.
        let mut forged = full_user();
        forged.openid = OpenId::new("attacker");
        let other = cookie.encode(&forged).unwrap();
        let other_body = other.split_once('.').unwrap().0;
        assert_eq!(cookie.decode(&format!("{other_body}.{tag}"), NOW), None);
        // A flipped character in the tag or the body.
        let mut bad_tag = tag.to_owned().into_bytes();
        bad_tag[3] = if bad_tag[3] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            cookie.decode(
                &format!("{body}.{}", String::from_utf8(bad_tag).unwrap()),
                NOW
            ),
            None
        );
        let mut bad_body = body.to_owned().into_bytes();
        bad_body[5] = if bad_body[5] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            cookie.decode(
                &format!("{}.{tag}", String::from_utf8(bad_body).unwrap()),
                NOW
            ),
            None
        );
        for junk in [
            "",
            ".",
            "abc",
            "abc.def",
            "..",
            &format!("{body}."),
            &format!(".{tag}"),
        ] {
            assert_eq!(cookie.decode(junk, NOW), None, "{junk}");
        }
        // Another key.
        assert_eq!(SessionCookie::new(keys(2)).decode(&value, NOW), None);
    }

    #[test]
    fn tags_of_another_length_are_rejected() {
        let cookie = SessionCookie::new(keys(1));
        let value = cookie.encode(&full_user()).unwrap();
        let (body, tag) = value.split_once('.').unwrap();
        assert_eq!(tag.len(), 43, "a 32-byte tag in unpadded base64url");
        assert!(cookie.decode(&value, NOW).is_some());
        // Truncated, extended (still decodable into the stack buffer, and too long for it), and
        // the tag twice: never accepted, never a panic.
        let long = "A".repeat(200);
        for bad in [
            &tag[..42],
            &tag[..40],
            &format!("{tag}AAAA"),
            &long,
            &format!("{tag}{tag}"),
        ] {
            assert_eq!(cookie.decode(&format!("{body}.{bad}"), NOW), None, "{bad}");
        }
    }

    #[test]
    fn verified_values_are_cached_and_still_checked() {
        let cookie = SessionCookie::new(keys(1));
        assert_eq!(
            cookie.cache_capacity(),
            SessionCookie::DEFAULT_CACHE_CAPACITY
        );
        let value = cookie.encode(&full_user()).unwrap();
        let cached = |cookie: &SessionCookie, value: &str| {
            cookie
                .cache
                .as_ref()
                .unwrap()
                .get(value.as_bytes(), NOW, |user, _| user.clone())
        };
        assert_eq!(cached(&cookie, &value), None);
        assert_eq!(cookie.decode(&value, NOW), Some(full_user()));
        // Stored on the first verification, shared with clones, and answered from there.
        let clone = cookie.clone();
        assert_eq!(cached(&clone, &value), Some(full_user()));
        assert_eq!(clone.decode(&value, NOW), Some(full_user()));
        // Expiry is checked on every hit.
        assert_eq!(cookie.decode(&value, NOW + 3600), None);
        // A value with the cached one's tag and another body shares its slot, not its result.
        let (_, tag) = value.split_once('.').unwrap();
        let mut forged = full_user();
        forged.openid = OpenId::new("attacker");
        let forged_body = cookie.encode(&forged).unwrap();
        let forged_body = forged_body.split_once('.').unwrap().0;
        assert_eq!(cookie.decode(&format!("{forged_body}.{tag}"), NOW), None);
        assert_eq!(cookie.decode(&value, NOW), Some(full_user()));
        // Other keys, other cache: the value is no session there.
        assert_eq!(SessionCookie::new(keys(2)).decode(&value, NOW), None);
        // Turned off: still verifies, stores nothing.
        let uncached = SessionCookie::new(keys(1)).with_cache_capacity(0);
        assert_eq!(uncached.cache_capacity(), 0);
        assert_eq!(uncached.decode(&value, NOW), Some(full_user()));
        assert_eq!(uncached.decode(&value, NOW + 3600), None);
        assert_eq!(
            SessionCookie::new(keys(1))
                .with_cache_capacity(3000)
                .cache_capacity(),
            4096
        );
    }

    #[test]
    fn cached_values_keep_their_login_nonce() {
        let cookie = SessionCookie::new(keys(1));
        let value = cookie
            .encode_with_nonce(&full_user(), Some("nonce-1"))
            .unwrap();
        for _ in 0..2 {
            assert_eq!(
                cookie.decode_with_nonce(&value, NOW),
                Some((full_user(), Some("nonce-1".to_owned())))
            );
        }
        // The cache does not mix values of two users.
        let mut bob = full_user();
        bob.openid = OpenId::new("bob");
        let bob_value = cookie.encode(&bob).unwrap();
        assert_eq!(cookie.decode(&bob_value, NOW), Some(bob));
        assert_eq!(cookie.decode(&value, NOW), Some(full_user()));
    }

    #[test]
    fn expired_values_are_rejected() {
        let cookie = SessionCookie::new(keys(1));
        let value = cookie.encode(&full_user()).unwrap();
        assert!(cookie.decode(&value, NOW + 3599).is_some());
        assert_eq!(cookie.decode(&value, NOW + 3600), None);
        assert_eq!(cookie.decode(&value, NOW + 100_000), None);
    }

    #[test]
    fn rotation_accepts_previous_keys_until_removed() {
        let old = SessionCookie::new(keys(1));
        let value = old.encode(&full_user()).unwrap();
        let rotated = SessionCookie::new(keys(2).with_previous([1u8; 32]).unwrap());
        assert_eq!(rotated.decode(&value, NOW), Some(full_user()));
        // New cookies are signed with the current key only.
        let new_value = rotated.encode(&full_user()).unwrap();
        assert_eq!(old.decode(&new_value, NOW), None);
        assert!(
            SessionCookie::new(keys(2))
                .decode(&new_value, NOW)
                .is_some()
        );
        // Once the old key is removed, its cookies are no session.
        assert_eq!(SessionCookie::new(keys(2)).decode(&value, NOW), None);
    }

    #[test]
    fn keys_are_validated_and_redacted() {
        assert!(SessionKeys::new([0u8; 31]).is_err());
        assert!(SessionKeys::from_hex("zz").is_err());
        assert!(SessionKeys::from_hex(&"ab".repeat(31)).is_err());
        let keys = SessionKeys::from_hex(&"ab".repeat(32))
            .unwrap()
            .with_previous_hex(&"cd".repeat(40))
            .unwrap();
        assert_eq!(keys.previous_len(), 1);
        let shown = format!("{keys:?}");
        assert_eq!(shown, "SessionKeys { current: [redacted], previous: 1 }");
        let cookie_shown = format!("{:?}", SessionCookie::new(keys));
        assert!(
            !cookie_shown.contains("abab") && !cookie_shown.contains("171, 171"),
            "{cookie_shown}"
        );
        // Two generated keys differ.
        let a = SessionCookie::new(SessionKeys::generate());
        let b = SessionCookie::new(SessionKeys::generate());
        assert_eq!(b.decode(&a.encode(&full_user()).unwrap(), NOW), None);
    }

    #[test]
    fn long_profiles_are_cut_not_refused() {
        let cookie = SessionCookie::new(keys(1)).with_name("s").unwrap();
        let mut user = full_user();
        let profile = user.profile.as_mut().unwrap();
        profile.nickname = "名".repeat(500);
        profile.city = "c".repeat(5000);
        profile.headimgurl = format!("https://thirdwx.qlogo.cn/{}", "x".repeat(2000));
        let value = cookie.encode(&user).unwrap();
        assert!(value.len() < MAX_COOKIE_VALUE_LEN);
        let back = cookie.decode(&value, NOW).unwrap();
        let p = back.profile.unwrap();
        assert_eq!(p.nickname.chars().count(), MAX_NICKNAME_CHARS);
        assert_eq!(p.city.len(), MAX_REGION_CHARS);
        assert!(p.headimgurl.is_empty());
        assert_eq!(p.country, "CN");
        // An id longer than any WeChat id is refused rather than cut.
        let mut weird = full_user();
        weird.openid = OpenId::new("o".repeat(300));
        assert!(cookie.encode(&weird).is_err());
    }

    #[test]
    fn set_cookie_attributes() {
        let cookie = SessionCookie::new(keys(1))
            .with_name("my_sess")
            .unwrap()
            .with_path("/app")
            .unwrap()
            .with_secure(true)
            .with_max_age(Duration::from_secs(100));
        let header = cookie.set_cookie(&full_user(), NOW + 600).unwrap();
        let text = header.to_str().unwrap();
        assert!(text.starts_with("my_sess="), "{text}");
        assert!(
            text.ends_with("; Path=/app; Max-Age=3000; HttpOnly; SameSite=Lax; Secure"),
            "{text}"
        );
        let clear = cookie.clear_cookie();
        assert_eq!(
            clear.to_str().unwrap(),
            "my_sess=; Path=/app; Max-Age=0; HttpOnly; SameSite=Lax; Secure"
        );
        assert!(SessionCookie::new(keys(1)).with_name("bad name").is_err());
        assert!(SessionCookie::new(keys(1)).with_name("").is_err());
        assert!(SessionCookie::new(keys(1)).with_path("app").is_err());
        assert!(SessionCookie::new(keys(1)).with_path("/a;b").is_err());
    }

    #[test]
    fn reads_cookie_headers() {
        let cookie = SessionCookie::new(keys(1));
        let value = cookie.encode(&full_user()).unwrap();
        let mut headers = http::HeaderMap::new();
        headers.append(
            http::header::COOKIE,
            "a=1; wechat_session=garbage".parse().unwrap(),
        );
        assert_eq!(cookie.read(&headers, NOW), None);
        headers.append(
            http::header::COOKIE,
            format!("other=2;wechat_session=\"{value}\"")
                .parse()
                .unwrap(),
        );
        assert_eq!(cookie.read(&headers, NOW), Some(full_user()));
        // Spaces around `=`, and another cookie whose value is not ASCII (it used to hide ours).
        let mut spaced = http::HeaderMap::new();
        spaced.insert(
            http::header::COOKIE,
            http::HeaderValue::from_bytes(
                format!("name=\u{4f60}\u{597d};  wechat_session = {value} ; z=1").as_bytes(),
            )
            .unwrap(),
        );
        assert_eq!(cookie.read(&spaced, NOW), Some(full_user()));
        let mut only_prefix = http::HeaderMap::new();
        only_prefix.insert(
            http::header::COOKIE,
            format!("xwechat_session={value}").parse().unwrap(),
        );
        assert_eq!(cookie.read(&only_prefix, NOW), None);
    }

    #[test]
    fn extensions_helper() {
        let mut ext = http::Extensions::new();
        assert!(SessionUser::from_extensions(&ext).is_none());
        ext.insert(full_user());
        assert_eq!(SessionUser::from_extensions(&ext), Some(&full_user()));
    }
}
