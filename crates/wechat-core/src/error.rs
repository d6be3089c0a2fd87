//! The one error type of this crate.
//!
//! WeChat answers failures with `{"errcode": N, "errmsg": "…"}` (or, for WeChat Pay, with
//! `return_code`/`result_code`/`err_code`). Codes a caller would branch on become named variants
//! whose message says what to do ([`Error::WeChat`] with an [`ApiErrorKind`]); every other code
//! is kept as [`ApiErrorKind::Other`].

/// A setting that a builder's `build()` (or a constructor) refused: which setting, and why.
///
/// Builders take every value without failing and check them all in `build()`, so that a
/// configuration reads as one chain; this error then names the setting to fix (the builder's
/// setter, or for files and environment the path or name it came from).
///
/// ```
/// use wechat_core::login::LoginConfig;
/// use wechat_core::session::SessionKeys;
///
/// let err = LoginConfig::builder("https://shop.example.com", SessionKeys::generate())
///     .cookie_name("not a token")
///     .build()
///     .unwrap_err();
/// assert_eq!(err.setting(), "LoginConfigBuilder::cookie_name");
/// assert!(err.to_string().contains("not a token"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {setting}: {problem}")]
pub struct ConfigError {
    setting: std::borrow::Cow<'static, str>,
    problem: String,
}

impl ConfigError {
    /// An error for `setting` (e.g. `LoginConfigBuilder::cookie_name`, or a file's path) that
    /// says what is wrong with its value.
    pub fn new(
        setting: impl Into<std::borrow::Cow<'static, str>>,
        problem: impl Into<String>,
    ) -> Self {
        Self {
            setting: setting.into(),
            problem: problem.into(),
        }
    }

    /// The setting that is wrong.
    pub fn setting(&self) -> &str {
        &self.setting
    }

    /// What is wrong with it.
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

impl Error {
    /// An [`Error::Config`] for `setting`.
    pub(crate) fn config(
        setting: impl Into<std::borrow::Cow<'static, str>>,
        problem: impl Into<String>,
    ) -> Self {
        Self::Config(ConfigError::new(setting, problem))
    }
}

/// A `Result` whose error is this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to WeChat.
///
/// Messages never contain an AppSecret, an API key or a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// WeChat answered an error code (`{"errcode": N, "errmsg": "…"}`): [`ApiError`] says
    /// where, which, and what to do; branch on its [`kind`](ApiError::kind).
    #[error(transparent)]
    WeChat(ApiError),
    /// The request did not get an HTTP answer (connection, TLS or timeout). The URL is removed
    /// because WeChat puts secrets and tokens in query strings.
    #[error("request to {endpoint} failed: {source}")]
    Http {
        /// The endpoint path, e.g. `/cgi-bin/token`.
        endpoint: &'static str,
        /// The underlying error, without its URL.
        #[source]
        source: reqwest::Error,
    },
    /// WeChat answered something this crate cannot read.
    #[error("unexpected response from {endpoint}: {detail}")]
    UnexpectedResponse {
        /// The endpoint path.
        endpoint: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// The token store (memory or Redis) failed.
    #[error("token store: {0}")]
    Store(String),
    /// An access token or jsapi_ticket cannot be had right now: its last refresh failed with an
    /// error that cannot be repeated as such (e.g. a transport error), and the next attempt waits
    /// for a short backoff so that failures never turn into a refresh per call.
    #[error(
        "the {what} is unavailable: its last refresh failed ({cause}); the next attempt follows a \
         short backoff, so that failing refreshes do not use up WeChat's daily quota"
    )]
    TokenUnavailable {
        /// `access_token` or `jsapi_ticket`.
        what: &'static str,
        /// The message of the error that made the refresh fail.
        cause: String,
    },
    /// Read-only mode ([`TokensBuilder::read_only`](crate::token::TokensBuilder::read_only)): the shared
    /// token store holds no usable access token or jsapi_ticket, and this process never fetches
    /// one from WeChat itself.
    #[error(
        "no usable {what} in the shared token store ({key}: {reason}); this process is read-only \
         and never calls WeChat for it: the central service that owns the token must keep that key \
         filled"
    )]
    TokenNotInStore {
        /// `access_token` or `jsapi_ticket`.
        what: &'static str,
        /// The key, as the store names it (e.g. `Redis key wechat:access_token:wx… at redis://…`).
        key: String,
        /// What the store held: empty, an expired or rejected credential, or why it failed.
        reason: String,
    },
    /// A setting is invalid: [`ConfigError`] names it and says what is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A page URL cannot be signed for the JS-SDK.
    #[error("cannot sign this page URL for the JS-SDK: {0}")]
    InvalidPageUrl(String),
    /// A signed OAuth `state` or session value failed verification.
    #[error("invalid or expired login state: {0}")]
    InvalidState(&'static str),

    /// WeChat Pay refused a request, answered an error, or sent something that does not
    /// verify: [`PayError`](crate::pay::PayError) says which (only with the `pay` feature).
    #[cfg(feature = "pay")]
    #[error(transparent)]
    Pay(crate::pay::PayError),
}

/// A WeChat error answer (`{"errcode": N, "errmsg": "…"}`): the endpoint called, WeChat's code,
/// message and request id, and the [`ApiErrorKind`] callers branch on.
///
/// Its message names the endpoint, the code and the `rid`, and says what to do; it can name an
/// IP address, never a secret or a token. It is for logs and operators, not for browsers.
///
/// ```
/// use wechat_core::{ApiErrorKind, Error};
///
/// let err = Error::from_errcode(
///     "/cgi-bin/stable_token",
///     40164,
///     "invalid ip 203.0.113.7 ipv6 ::ffff:203.0.113.7, not in whitelist rid: 6571a8c1-1b2c3d4e-5f6a7b8c",
/// );
/// let api = err.api_error().unwrap();
/// assert!(matches!(&api.kind, ApiErrorKind::IpNotWhitelisted { ip } if ip == "203.0.113.7"));
/// assert_eq!(api.rid.as_deref(), Some("6571a8c1-1b2c3d4e-5f6a7b8c"));
/// assert!(err.to_string().contains("add 203.0.113.7 to the Official Account's IP whitelist"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiError {
    /// The endpoint called, e.g. `/cgi-bin/stable_token`.
    pub endpoint: &'static str,
    /// WeChat's `errcode`.
    pub errcode: i64,
    /// WeChat's `errmsg`, as sent (with its `rid`, when sent).
    pub errmsg: String,
    /// WeChat's `rid` from `errmsg` (what WeChat's support asks for), when sent.
    pub rid: Option<String>,
    /// What the code means for the caller.
    pub kind: ApiErrorKind,
}

/// What a WeChat error code means for the caller: the codes a caller branches on, named; every
/// other code is [`Other`](Self::Other).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiErrorKind {
    /// 40164 (or 61004): the calling server's IP is not on the Official Account's IP whitelist.
    IpNotWhitelisted {
        /// The caller IP WeChat saw, taken from `errmsg` (`unknown` when it could not be read).
        ip: String,
    },
    /// 40125 (or 40001 from an endpoint that takes the secret): the AppSecret is wrong or was
    /// reset.
    InvalidAppSecret,
    /// 40013: WeChat does not know the app id.
    InvalidAppId,
    /// 40001, 40014 or 42001: a basic access token was rejected or has expired. Token-using calls
    /// refresh the token and retry once before returning this.
    AccessTokenInvalid,
    /// -1: WeChat is busy; retried with bounded backoff before this is returned.
    SystemBusy,
    /// 45009: the daily quota for this API is used up. Never retried.
    QuotaExceeded,
    /// 40029 or 42003: the OAuth code is invalid or expired (codes live 5 minutes).
    InvalidCode,
    /// 40163: the OAuth code was already used (the user pressed back or reloaded the callback).
    CodeAlreadyUsed,
    /// 48001: the API is not authorized for this token: `sns/userinfo` with a `snsapi_base`
    /// token or for a snapshot (guest) user, or an interface the account lacks.
    ScopeUnauthorized,
    /// 40030, 42002 or 42007: the OAuth refresh token is invalid, expired or revoked.
    RefreshTokenInvalid,
    /// 40001, 40014 or 42001 from `sns/userinfo` or `sns/auth`: the user's OAuth access token
    /// (not the basic one) is invalid or expired.
    OAuthTokenInvalid,
    /// Any other code, kept as WeChat sent it in [`ApiError::errcode`] and
    /// [`ApiError::errmsg`].
    Other,
}

impl ApiError {
    /// The error of a non-zero `errcode` with `errmsg` from `endpoint`, its kind decided from
    /// the code, and WeChat's `rid` (and, for 40164, the caller IP) read from `errmsg`.
    ///
    /// 40001 means a bad AppSecret on the endpoints that take the secret (`/cgi-bin/token`,
    /// `/cgi-bin/stable_token`, `/sns/oauth2/access_token`) and a bad access token elsewhere.
    pub fn new(endpoint: &'static str, errcode: i64, errmsg: &str) -> Self {
        let token_endpoint = matches!(
            endpoint,
            "/cgi-bin/token" | "/cgi-bin/stable_token" | "/sns/oauth2/access_token"
        );
        let kind = match errcode {
            40164 | 61004 => ApiErrorKind::IpNotWhitelisted {
                ip: caller_ip_from_errmsg(errmsg).unwrap_or_else(|| "unknown".to_owned()),
            },
            40125 => ApiErrorKind::InvalidAppSecret,
            40001 if token_endpoint => ApiErrorKind::InvalidAppSecret,
            40013 => ApiErrorKind::InvalidAppId,
            40001 | 40014 | 42001 => ApiErrorKind::AccessTokenInvalid,
            -1 => ApiErrorKind::SystemBusy,
            45009 => ApiErrorKind::QuotaExceeded,
            40029 | 42003 => ApiErrorKind::InvalidCode,
            40163 => ApiErrorKind::CodeAlreadyUsed,
            48001 => ApiErrorKind::ScopeUnauthorized,
            40030 | 42002 | 42007 => ApiErrorKind::RefreshTokenInvalid,
            _ => ApiErrorKind::Other,
        };
        Self {
            endpoint,
            errcode,
            errmsg: errmsg.to_owned(),
            rid: rid_from_errmsg(errmsg),
            kind,
        }
    }

    /// The same error read as another kind (e.g. a rejected token from `sns/userinfo` is the
    /// user's OAuth token, not the basic access token).
    #[must_use]
    pub(crate) fn with_kind(mut self, kind: ApiErrorKind) -> Self {
        self.kind = kind;
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            endpoint,
            errcode,
            errmsg,
            rid,
            kind,
        } = self;
        let rid = Rid(rid);
        match kind {
            ApiErrorKind::IpNotWhitelisted { ip } => write!(
                f,
                "WeChat refused the call to {endpoint} from IP {ip} (errcode {errcode}{rid}): add \
                 {ip} to the Official Account's IP whitelist under Development > Basic \
                 configuration > IP whitelist (mp.weixin.qq.com); behind NAT this is the egress IP"
            ),
            ApiErrorKind::InvalidAppSecret => write!(
                f,
                "WeChat rejected the AppSecret at {endpoint} (errcode {errcode}{rid}): check the \
                 configured secret against Development > Basic configuration in the Official \
                 Account admin (it changes when reset)"
            ),
            ApiErrorKind::InvalidAppId => write!(
                f,
                "WeChat does not know this appid (errcode {errcode} from {endpoint}{rid}): check \
                 the configured app id"
            ),
            ApiErrorKind::AccessTokenInvalid => write!(
                f,
                "WeChat rejected the access token at {endpoint} (errcode {errcode}{rid}) even \
                 after a refresh: another process may be fetching tokens for the same app; share \
                 one token store between instances"
            ),
            ApiErrorKind::SystemBusy => write!(
                f,
                "WeChat is busy (errcode {errcode} from {endpoint}{rid}) and stayed busy after \
                 retries; try again later"
            ),
            ApiErrorKind::QuotaExceeded => write!(
                f,
                "WeChat's daily API quota for {endpoint} is used up (errcode {errcode}{rid}): \
                 calls fail until tomorrow or until the quota is reset (cgi-bin/clear_quota); \
                 cache tokens instead of fetching them per request"
            ),
            ApiErrorKind::InvalidCode => write!(
                f,
                "the OAuth code is invalid or expired (errcode {errcode} from {endpoint}{rid}): \
                 restart the login"
            ),
            ApiErrorKind::CodeAlreadyUsed => write!(
                f,
                "the OAuth code was already used (errcode {errcode} from {endpoint}{rid}): \
                 restart the login to get a new one"
            ),
            ApiErrorKind::ScopeUnauthorized => write!(
                f,
                "WeChat says {endpoint} is not authorized (errcode {errcode}{rid}): sns/userinfo \
                 needs the snsapi_userinfo scope and fails for snapshot (guest) users"
            ),
            ApiErrorKind::RefreshTokenInvalid => write!(
                f,
                "the OAuth refresh token is no longer valid (errcode {errcode} from \
                 {endpoint}{rid}): ask the user to log in again"
            ),
            ApiErrorKind::OAuthTokenInvalid => write!(
                f,
                "the user's OAuth access token is invalid or expired (errcode {errcode} from \
                 {endpoint}{rid}): refresh it with the refresh_token, or ask the user to log in \
                 again"
            ),
            ApiErrorKind::Other => {
                write!(f, "WeChat API error {errcode} from {endpoint}: {errmsg}")
            }
        }
    }
}

impl std::error::Error for ApiError {}

impl Error {
    /// Maps a WeChat `errcode`/`errmsg` pair (non-zero `errcode`) from `endpoint` (e.g.
    /// `/cgi-bin/stable_token`) to an [`Error::WeChat`]; see [`ApiError::new`].
    pub fn from_errcode(endpoint: &'static str, errcode: i64, errmsg: &str) -> Self {
        Self::WeChat(ApiError::new(endpoint, errcode, errmsg))
    }

    /// The [`ApiError`] of an [`Error::WeChat`].
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Self::WeChat(error) => Some(error),
            _ => None,
        }
    }

    /// The kind of an [`Error::WeChat`], for `matches!`.
    pub fn api_kind(&self) -> Option<&ApiErrorKind> {
        self.api_error().map(|e| &e.kind)
    }

    /// The WeChat endpoint the failed call went to, for the errors that name one (WeChat error
    /// codes, WeChat Pay errors, transport and unreadable answers).
    pub fn endpoint(&self) -> Option<&'static str> {
        match self {
            Self::WeChat(error) => Some(error.endpoint),
            Self::Http { endpoint, .. } | Self::UnexpectedResponse { endpoint, .. } => {
                Some(endpoint)
            }
            #[cfg(feature = "pay")]
            Self::Pay(error) => error.endpoint(),
            _ => None,
        }
    }

    /// WeChat's `errcode`, for the errors WeChat answered with one.
    pub fn errcode(&self) -> Option<i64> {
        self.api_error().map(|e| e.errcode)
    }

    /// What WeChat's support asks for: the `rid` of a WeChat error, or the `Request-ID` of a
    /// WeChat Pay v3 answer, when sent.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::WeChat(error) => error.rid.as_deref(),
            #[cfg(feature = "pay")]
            Self::Pay(error) => error.request_id(),
            _ => None,
        }
    }

    /// Whether this is a rejected or expired basic access token (40001/40014/42001), after
    /// which the token is refreshed and the call retried once.
    pub fn is_access_token_invalid(&self) -> bool {
        matches!(self.api_kind(), Some(ApiErrorKind::AccessTokenInvalid))
    }

    /// Whether retrying the same request later may succeed (-1 busy, SYSTEMERROR, transport).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::WeChat(error) => error.kind == ApiErrorKind::SystemBusy,
            Self::Http { .. } => true,
            #[cfg(feature = "pay")]
            Self::Pay(error) => error.is_transient(),
            _ => false,
        }
    }
}

/// `", rid …"` after an error code, when WeChat sent one.
struct Rid<'a>(&'a Option<String>);

impl std::fmt::Display for Rid<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(rid) => write!(f, ", rid {rid}"),
            None => Ok(()),
        }
    }
}

/// `unix` seconds as `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian calendar).
#[cfg(feature = "pay")]
pub(crate) fn utc(unix: u64) -> String {
    let [year, month, day, hour, minute, second] = civil(unix);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02} UTC")
}

/// `unix` seconds as `[year, month, day, hour, minute, second]` in UTC (proleptic Gregorian
/// calendar).
#[cfg(feature = "pay")]
pub(crate) fn civil(unix: u64) -> [u64; 6] {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (never negative here).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    [year, month, day, secs / 3_600, secs % 3_600 / 60, secs % 60]
}

/// Reads WeChat's request id out of an `errmsg` such as `invalid code rid: 5fab84d2-09424a07-00bd7fe3`.
fn rid_from_errmsg(errmsg: &str) -> Option<String> {
    let rest = &errmsg[errmsg.find("rid: ")? + "rid: ".len()..];
    let rid: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(64)
        .collect();
    (!rid.is_empty()).then_some(rid)
}

/// Reads the caller IP out of a 40164 `errmsg` such as
/// `invalid ip 47.94.148.108 ipv6 ::ffff:47.94.148.108, not in whitelist rid: …`.
fn caller_ip_from_errmsg(errmsg: &str) -> Option<String> {
    let rest = &errmsg[errmsg.find("invalid ip ")? + "invalid ip ".len()..];
    let ip: String = rest
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || *c == '.' || *c == ':')
        .collect();
    let ip = ip.trim_end_matches([':', '.']);
    (!ip.is_empty()).then(|| ip.to_owned())
}

#[cfg(test)]
mod tests {
    #[cfg(feature = "pay")]
    #[test]
    fn utc_formats_unix_seconds() {
        assert_eq!(super::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(super::utc(1_796_649_444), "2026-12-07 13:17:24 UTC");
        assert_eq!(super::utc(4_102_444_799), "2099-12-31 23:59:59 UTC");
    }

    use super::*;

    #[test]
    fn ip_whitelist_error_names_the_ip() {
        let err = Error::from_errcode(
            "/cgi-bin/token",
            40164,
            "invalid ip 47.94.148.108 ipv6 ::ffff:47.94.148.108, not in whitelist rid: 5fab84d2-09424a07-00bd7fe3",
        );
        let msg = err.to_string();
        assert!(
            matches!(err, Error::WeChat(ApiError { kind: ApiErrorKind::IpNotWhitelisted { ref ip }, errcode: 40164, .. }) if ip == "47.94.148.108")
        );
        assert!(msg.contains("47.94.148.108"), "{msg}");
        assert!(msg.contains("IP whitelist"), "{msg}");
        let old = Error::from_errcode(
            "/cgi-bin/token",
            40164,
            "invalid ip 61.172.68.219, not in whitelist hint: [KJZfAa0644e575]",
        );
        assert!(
            matches!(old, Error::WeChat(ApiError { kind: ApiErrorKind::IpNotWhitelisted { ref ip }, .. }) if ip == "61.172.68.219")
        );
        let unknown =
            Error::from_errcode("/cgi-bin/token", 61004, "access clientip is not registered");
        assert!(
            matches!(unknown, Error::WeChat(ApiError { kind: ApiErrorKind::IpNotWhitelisted { ref ip }, errcode: 61004, .. }) if ip == "unknown")
        );
    }

    #[test]
    fn errors_carry_the_endpoint_the_errcode_and_the_rid() {
        let err = Error::from_errcode(
            "/cgi-bin/stable_token",
            40164,
            "invalid ip 47.94.148.108 ipv6 ::ffff:47.94.148.108, not in whitelist rid: 5fab84d2-09424a07-00bd7fe3",
        );
        let msg = err.to_string();
        for part in [
            "/cgi-bin/stable_token",
            "40164",
            "rid 5fab84d2-09424a07-00bd7fe3",
            "47.94.148.108",
        ] {
            assert!(msg.contains(part), "{part} missing from {msg}");
        }
        assert_eq!(err.endpoint(), Some("/cgi-bin/stable_token"));
        assert_eq!(err.errcode(), Some(40164));
        assert_eq!(err.request_id(), Some("5fab84d2-09424a07-00bd7fe3"));
        // Every named code says where it came from and which code it was.
        for (code, errmsg) in [
            (40125, "invalid appsecret rid: 1a2b"),
            (40013, "invalid appid rid: 1a2b"),
            (40001, "invalid credential rid: 1a2b"),
            (-1, "system error rid: 1a2b"),
            (45009, "reach max api daily quota limit rid: 1a2b"),
            (40029, "invalid code rid: 1a2b"),
            (40163, "code been used rid: 1a2b"),
            (48001, "api unauthorized rid: 1a2b"),
            (42002, "refresh_token expired rid: 1a2b"),
            (99999, "something new rid: 1a2b"),
        ] {
            let err = Error::from_errcode("/sns/userinfo", code, errmsg);
            let msg = err.to_string();
            assert!(msg.contains("/sns/userinfo"), "{msg}");
            assert!(msg.contains(&code.to_string()), "{msg}");
            assert!(
                msg.contains("rid 1a2b") || msg.contains("rid: 1a2b"),
                "{msg}"
            );
            assert_eq!(err.errcode(), Some(code), "{msg}");
            assert_eq!(err.request_id(), Some("1a2b"), "{msg}");
        }
        // No rid: none invented.
        let err = Error::from_errcode("/cgi-bin/token", 40013, "invalid appid");
        assert_eq!(err.request_id(), None);
        assert!(!err.to_string().contains("rid"), "{err}");
        // 40001 is the secret on the endpoints that take it, the token elsewhere.
        assert!(matches!(
            Error::from_errcode("/sns/oauth2/access_token", 40001, "invalid credential"),
            Error::WeChat(ApiError {
                kind: ApiErrorKind::InvalidAppSecret,
                ..
            })
        ));
        assert!(
            Error::from_errcode("/cgi-bin/ticket/getticket", 40001, "x").is_access_token_invalid()
        );
        assert_eq!(
            rid_from_errmsg("x rid: 5fab-01 hint"),
            Some("5fab-01".to_owned())
        );
        assert_eq!(rid_from_errmsg("rid: "), None);
    }

    #[test]
    fn well_known_codes_are_named() {
        assert!(matches!(
            Error::from_errcode("/cgi-bin/token", 40125, "invalid appsecret"),
            Error::WeChat(ApiError {
                kind: ApiErrorKind::InvalidAppSecret,
                errcode: 40125,
                ..
            })
        ));
        assert!(matches!(
            Error::from_errcode("/cgi-bin/token", 40001, "invalid credential"),
            Error::WeChat(ApiError {
                kind: ApiErrorKind::InvalidAppSecret,
                errcode: 40001,
                ..
            })
        ));
        assert!(
            Error::from_errcode("/cgi-bin/ticket/getticket", 40001, "invalid credential")
                .is_access_token_invalid()
        );
        assert!(
            Error::from_errcode("/cgi-bin/ticket/getticket", 42001, "expired")
                .is_access_token_invalid()
        );
        assert!(
            Error::from_errcode("/cgi-bin/ticket/getticket", 40014, "invalid")
                .is_access_token_invalid()
        );
        assert!(matches!(
            Error::from_errcode("/cgi-bin/ticket/getticket", -1, "system error"),
            Error::WeChat(ApiError {
                kind: ApiErrorKind::SystemBusy,
                ..
            })
        ));
        assert!(matches!(
            Error::from_errcode("/cgi-bin/ticket/getticket", 45009, "quota"),
            Error::WeChat(ApiError {
                kind: ApiErrorKind::QuotaExceeded,
                ..
            })
        ));
        assert!(matches!(
            Error::from_errcode("/cgi-bin/ticket/getticket", 40029, "invalid code"),
            Error::WeChat(ApiError {
                kind: ApiErrorKind::InvalidCode,
                ..
            })
        ));
        assert!(matches!(
            Error::from_errcode("/cgi-bin/ticket/getticket", 40163, "code been used"),
            Error::WeChat(ApiError {
                kind: ApiErrorKind::CodeAlreadyUsed,
                ..
            })
        ));
        assert!(matches!(
            Error::from_errcode("/cgi-bin/ticket/getticket", 48001, "api unauthorized"),
            Error::WeChat(ApiError {
                kind: ApiErrorKind::ScopeUnauthorized,
                ..
            })
        ));
        assert!(matches!(
            Error::from_errcode("/cgi-bin/token", 40013, "invalid appid"),
            Error::WeChat(ApiError {
                kind: ApiErrorKind::InvalidAppId,
                ..
            })
        ));
        match Error::from_errcode("/cgi-bin/ticket/getticket", 12345, "something new") {
            Error::WeChat(ApiError {
                kind: ApiErrorKind::Other,
                errcode,
                errmsg,
                ..
            }) => {
                assert_eq!(errcode, 12345);
                assert_eq!(errmsg, "something new");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
