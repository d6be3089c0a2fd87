//! Web page OAuth (网页授权): the authorize URL, code exchange, refresh, `sns/userinfo` and
//! `sns/auth`.
//!
//! Implements WeChat's
//! [web page authorization](https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html)
//! for both scopes: [`Scope::Base`] (`snsapi_base`, silent, the openid only) and
//! [`Scope::UserInfo`] (`snsapi_userinfo`, a consent page, then the profile). Most apps use it
//! through [`LoginFlow`](crate::login::LoginFlow); [`OAuthClient`] has the details.
//!
//! ```
//! use wechat_core::oauth::{OAuthClient, Scope};
//! use wechat_core::{BaseUrls, Config};
//!
//! let config = Config::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef")
//!     .with_base_urls(BaseUrls::all("http://127.0.0.1:9000"));
//! let client = OAuthClient::new(&config, reqwest::Client::new());
//! let url = client.authorize_url("https://shop.example.com/cb", Scope::Base, "state123");
//! assert!(url.starts_with("http://127.0.0.1:9000/connect/oauth2/authorize?appid=wx1234567890abcdef"));
//! assert!(url.ends_with("&scope=snsapi_base&state=state123#wechat_redirect"));
//! ```

use std::sync::Arc;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;

use crate::transport::{JsonCall, OnBusy, call_json};
use crate::{
    ApiErrorKind, AppId, AppSecret, Config, Error, OAuthAccessToken, OpenId, RefreshToken, Result,
    UnionId,
};

/// Characters kept unencoded in a URL component: `A-Za-z0-9-_.~` (RFC 3986 unreserved).
pub(crate) const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encodes `value` as one URL component (everything but `A-Za-z0-9-_.~`).
pub(crate) fn encode_component(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}

/// The OAuth scope requested on the authorize page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scope {
    /// `snsapi_base`: silent, yields the openid only.
    #[default]
    Base,
    /// `snsapi_userinfo`: shows a consent page and enables `sns/userinfo` (nickname, avatar…),
    /// also for users who do not follow the account.
    UserInfo,
}

impl Scope {
    /// WeChat's name of the scope: `snsapi_base` or `snsapi_userinfo`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Base => "snsapi_base",
            Self::UserInfo => "snsapi_userinfo",
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The language of the region fields returned by `sns/userinfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    /// `zh_CN`, simplified Chinese (WeChat's default).
    #[default]
    ZhCn,
    /// `zh_TW`, traditional Chinese.
    ZhTw,
    /// `en`, English.
    En,
}

impl Lang {
    /// WeChat's spelling: `zh_CN`, `zh_TW` or `en`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ZhCn => "zh_CN",
            Self::ZhTw => "zh_TW",
            Self::En => "en",
        }
    }
}

/// A user's sex as `sns/userinfo` reports it (`1` male, `2` female, `0` unknown). Current WeChat
/// replies usually say unknown; do not rely on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Sex {
    /// `0`, or any value WeChat does not document.
    #[default]
    Unknown,
    /// `1`.
    Male,
    /// `2`.
    Female,
}

impl Sex {
    /// Maps WeChat's number (anything but 1 and 2 is unknown).
    pub fn from_code(code: i64) -> Self {
        match code {
            1 => Self::Male,
            2 => Self::Female,
            _ => Self::Unknown,
        }
    }

    /// WeChat's number: 0, 1 or 2.
    pub fn code(self) -> u8 {
        match self {
            Self::Unknown => 0,
            Self::Male => 1,
            Self::Female => 2,
        }
    }
}

/// Builds the authorize URL the browser is sent to (protocol reference §1.1).
///
/// The parameters are emitted in the order WeChat's link matcher expects (`appid`,
/// `redirect_uri`, `response_type=code`, `scope`, `state`) followed by the mandatory
/// `#wechat_redirect`. `redirect_uri` is percent-encoded as one component (only `A-Za-z0-9-_.~`
/// kept), and so is `state` (which WeChat limits to 128 characters of `a-zA-Z0-9`).
/// `open_base` is `https://open.weixin.qq.com` in production ([`BaseUrls::open`](crate::BaseUrls)).
///
/// The host of `redirect_uri` must be the OAuth callback domain configured for the account,
/// otherwise WeChat shows error 10003.
pub fn authorize_url(
    open_base: &str,
    appid: &AppId,
    redirect_uri: &str,
    scope: Scope,
    state: &str,
) -> String {
    format!(
        "{}/connect/oauth2/authorize?appid={}&redirect_uri={}&response_type=code&scope={}&state={}#wechat_redirect",
        open_base.trim_end_matches('/'),
        encode_component(appid.as_str()),
        encode_component(redirect_uri),
        scope.as_str(),
        encode_component(state),
    )
}

/// The website QR-code login page (`https://open.weixin.qq.com/connect/qrconnect`,
/// `scope=snsapi_login`) of an Open Platform website application, for desktop browsers: the
/// page shows a QR code that the user scans with WeChat on a phone, then WeChat redirects to
/// `redirect_uri?code=CODE&state=STATE`, and the code is exchanged with the website app's own
/// AppID and AppSecret ([`OAuthClient::exchange_code`] of a client built with them).
///
/// `appid` is the website application's (not the Official Account's: WeChat answers
/// `Scope 参数错误或没有 Scope 权限`); the host of `redirect_uri` must be its authorization callback
/// domain (`redirect_uri 参数错误` otherwise). Encoded as [`authorize_url`] is. See
/// <https://developers.weixin.qq.com/doc/oplatform/Website_App/WeChat_Login/Wechat_Login.html>.
///
/// ```
/// use wechat_core::AppId;
///
/// let url = wechat_core::oauth::qrconnect_url(
///     "https://open.weixin.qq.com",
///     &AppId::new("wxbdc5610cc59c1631"),
///     "https://shop.example.com/wechat/oauth/callback",
///     "xyz123",
/// );
/// assert_eq!(
///     url,
///     "https://open.weixin.qq.com/connect/qrconnect?appid=wxbdc5610cc59c1631\
///      &redirect_uri=https%3A%2F%2Fshop.example.com%2Fwechat%2Foauth%2Fcallback\
///      &response_type=code&scope=snsapi_login&state=xyz123#wechat_redirect"
/// );
/// ```
pub fn qrconnect_url(open_base: &str, appid: &AppId, redirect_uri: &str, state: &str) -> String {
    format!(
        "{}#wechat_redirect",
        qrconnect_query(open_base, appid, redirect_uri, state)
    )
}

/// `…/connect/qrconnect?appid=…&redirect_uri=…&response_type=code&scope=snsapi_login&state=…`.
fn qrconnect_query(open_base: &str, appid: &AppId, redirect_uri: &str, state: &str) -> String {
    format!(
        "{}/connect/qrconnect?appid={}&redirect_uri={}&response_type=code&scope=snsapi_login&state={}",
        open_base.trim_end_matches('/'),
        encode_component(appid.as_str()),
        encode_component(redirect_uri),
        encode_component(state),
    )
}

/// How the QR code embedded in the site's own page looks and where the login lands; see
/// [`embedded_qrconnect_url`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EmbeddedQrLogin {
    /// `true`: WeChat goes to `redirect_uri` inside the frame; `false` (the default): in the
    /// top window (the frame then needs `allow-top-navigation` if sandboxed).
    pub self_redirect: bool,
    /// White text for a dark page (`style=white`); black otherwise.
    pub white: bool,
    /// A stylesheet URL (`https://…` or `data:text/css;base64,…`) that restyles the frame
    /// (`href`).
    pub href: Option<String>,
}

/// The same login page for an `<iframe>` in the site's own page (what WeChat's `wxLogin.js`
/// builds, with `login_type=jssdk`), so that the page needs no script from WeChat's CDN:
/// `<iframe src="…" width="300" height="400" frameborder="0" scrolling="no"
/// allow="local-network-access"></iframe>` (Chrome 142 and later need `local-network-access`
/// for WeChat's quick login, which talks to the desktop client).
///
/// ```
/// use wechat_core::AppId;
/// use wechat_core::oauth::{EmbeddedQrLogin, embedded_qrconnect_url};
///
/// let url = embedded_qrconnect_url(
///     "https://open.weixin.qq.com",
///     &AppId::new("wxbdc5610cc59c1631"),
///     "https://shop.example.com/cb",
///     "xyz123",
///     &EmbeddedQrLogin::default(),
/// );
/// assert!(url.contains("&scope=snsapi_login&state=xyz123&login_type=jssdk&self_redirect=false"));
/// assert!(!url.contains('#'));
/// ```
pub fn embedded_qrconnect_url(
    open_base: &str,
    appid: &AppId,
    redirect_uri: &str,
    state: &str,
    options: &EmbeddedQrLogin,
) -> String {
    let mut url = format!(
        "{}&login_type=jssdk&self_redirect={}&styletype=&sizetype=&bgcolor=&rst=",
        qrconnect_query(open_base, appid, redirect_uri, state),
        options.self_redirect,
    );
    if options.white {
        url.push_str("&style=white");
    }
    if let Some(href) = &options.href {
        url.push_str("&href=");
        url.push_str(&encode_component(href));
    }
    url
}

/// The reply of a code exchange or a refresh (`sns/oauth2/access_token`,
/// `sns/oauth2/refresh_token`). `Debug` shows the tokens as `[redacted]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthToken {
    /// The app the token (and its `openid`) belongs to: the Official Account for web OAuth, the
    /// website application for QR-code login. One person has a different openid in each app;
    /// the `unionid` is the same in every app of one Open Platform account.
    pub appid: AppId,
    /// The per-user OAuth access token (only valid for `sns/*`, unrelated to the basic token).
    pub access_token: OAuthAccessToken,
    /// Lifetime of `access_token` in seconds (7200).
    pub expires_in: u64,
    /// The refresh token (30 days).
    pub refresh_token: RefreshToken,
    /// The user's openid for this app (virtual for a snapshot user).
    pub openid: OpenId,
    /// The granted scopes, parsed from WeChat's comma-separated `scope`.
    pub scope: Vec<String>,
    /// The unionid, present with `snsapi_userinfo` for accounts bound to an Open Platform account.
    pub unionid: Option<UnionId>,
    /// `is_snapshotuser=1`: a "snapshot page" virtual user (the page was opened from a Moments
    /// snapshot). The openid is virtual and `sns/userinfo` fails: treat the user as a guest.
    pub is_snapshot_user: bool,
}

impl OAuthToken {
    /// Whether WeChat granted `scope` with this token.
    pub fn grants(&self, scope: Scope) -> bool {
        self.scope.iter().any(|s| s == scope.as_str())
    }
}

#[derive(Deserialize)]
struct RawToken {
    access_token: String,
    #[serde(default)]
    expires_in: u64,
    refresh_token: String,
    openid: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    unionid: Option<String>,
    #[serde(default)]
    is_snapshotuser: Option<i64>,
}

impl RawToken {
    fn into_token(self, appid: &AppId) -> OAuthToken {
        let raw = self;
        OAuthToken {
            appid: appid.clone(),
            access_token: OAuthAccessToken::new(raw.access_token),
            expires_in: raw.expires_in,
            refresh_token: RefreshToken::new(raw.refresh_token),
            openid: OpenId::new(raw.openid),
            scope: raw
                .scope
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            unionid: raw.unionid.filter(|u| !u.is_empty()).map(UnionId::new),
            is_snapshot_user: raw.is_snapshotuser == Some(1),
        }
    }
}

/// A user's profile from `sns/userinfo` (needs a `snsapi_userinfo` token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The user's openid.
    pub openid: OpenId,
    /// The nickname.
    pub nickname: String,
    /// The sex (usually [`Sex::Unknown`] in current replies).
    pub sex: Sex,
    /// Province (often empty in current replies).
    pub province: String,
    /// City (often empty in current replies).
    pub city: String,
    /// Country code such as `CN` (often empty in current replies).
    pub country: String,
    /// Avatar URL; the last path segment is the size (0 = 640×640, 46, 64, 96, 132). Empty when
    /// the user has none; stops working after the user changes the avatar.
    pub headimgurl: String,
    /// Privileges, e.g. `chinaunicom` for WoCard holders.
    pub privilege: Vec<String>,
    /// The unionid, for accounts bound to an Open Platform account.
    pub unionid: Option<UnionId>,
}

#[derive(Deserialize)]
struct RawUserInfo {
    openid: String,
    #[serde(default)]
    nickname: String,
    #[serde(default)]
    sex: i64,
    #[serde(default)]
    province: String,
    #[serde(default)]
    city: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    headimgurl: String,
    #[serde(default)]
    privilege: Vec<String>,
    #[serde(default)]
    unionid: Option<String>,
}

impl From<RawUserInfo> for UserInfo {
    fn from(raw: RawUserInfo) -> Self {
        Self {
            openid: OpenId::new(raw.openid),
            nickname: raw.nickname,
            sex: Sex::from_code(raw.sex),
            province: raw.province,
            city: raw.city,
            country: raw.country,
            headimgurl: raw.headimgurl,
            privilege: raw.privilege,
            unionid: raw.unionid.filter(|u| !u.is_empty()).map(UnionId::new),
        }
    }
}

/// The web OAuth client: code exchange, refresh, `sns/userinfo`, `sns/auth`.
///
/// Cheap to clone (an `Arc` inside); share one per app.
///
/// Implements WeChat's "网页授权" documents (`doc/service/api/webdev/access/api_sns*` on
/// developers.weixin.qq.com). The flow: send the browser to [`authorize_url`], WeChat redirects
/// back to `redirect_uri?code=CODE&state=STATE`, and the server exchanges the single-use code with
/// [`OAuthClient::exchange_code`]. For a ready-made flow with a signed `state` and a session
/// cookie, see [`LoginFlow`](crate::login::LoginFlow).
///
/// ```
/// use wechat_core::oauth::{authorize_url, Scope};
/// use wechat_core::AppId;
///
/// let url = authorize_url(
///     "https://open.weixin.qq.com",
///     &AppId::new("wx1234567890abcdef"),
///     "https://shop.example.com/wechat/oauth/callback",
///     Scope::Base,
///     "xyz123",
/// );
/// assert_eq!(
///     url,
///     "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx1234567890abcdef\
///      &redirect_uri=https%3A%2F%2Fshop.example.com%2Fwechat%2Foauth%2Fcallback\
///      &response_type=code&scope=snsapi_base&state=xyz123#wechat_redirect"
/// );
/// ```
///
/// Exchanging a code (against WeChat, or a `wechat-sim` through [`Config::with_base_urls`]):
///
/// ```no_run
/// # async fn run() -> wechat_core::Result<()> {
/// use wechat_core::{build_http_client, Config};
/// use wechat_core::oauth::{Lang, OAuthClient};
///
/// let config = Config::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef");
/// let client = OAuthClient::new(&config, build_http_client(&config)?);
/// let token = client.exchange_code("CODE_FROM_THE_CALLBACK").await?;
/// if !token.is_snapshot_user {
///     let user = client.userinfo(&token.access_token, &token.openid, Lang::ZhCn).await?;
///     println!("hello {}", user.nickname);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct OAuthClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    appid: AppId,
    secret: AppSecret,
    api_base: String,
    open_base: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("appid", &self.inner.appid)
            .field("api_base", &self.inner.api_base)
            .field("open_base", &self.inner.open_base)
            .finish_non_exhaustive()
    }
}

impl OAuthClient {
    /// A client for the app in `config`, sending through `http` (build it with
    /// [`build_http_client`](crate::build_http_client): redirects off, timeouts on).
    pub fn new(config: &Config, http: reqwest::Client) -> Self {
        Self {
            inner: Arc::new(ClientInner {
                appid: config.appid().clone(),
                secret: config.secret().clone(),
                api_base: config.base_urls().api.trim_end_matches('/').to_owned(),
                open_base: config.base_urls().open.trim_end_matches('/').to_owned(),
                http,
            }),
        }
    }

    /// The app id.
    pub fn appid(&self) -> &AppId {
        &self.inner.appid
    }

    /// The authorize URL for this app on the configured open host; see [`authorize_url`].
    pub fn authorize_url(&self, redirect_uri: &str, scope: Scope, state: &str) -> String {
        authorize_url(
            &self.inner.open_base,
            &self.inner.appid,
            redirect_uri,
            scope,
            state,
        )
    }

    /// The website QR-code login page for this app (a website application's client); see
    /// [`qrconnect_url`].
    pub fn qrconnect_url(&self, redirect_uri: &str, state: &str) -> String {
        qrconnect_url(
            &self.inner.open_base,
            &self.inner.appid,
            redirect_uri,
            state,
        )
    }

    /// The embedded variant of [`qrconnect_url`](Self::qrconnect_url), for an `<iframe>`; see
    /// [`embedded_qrconnect_url`].
    pub fn embedded_qrconnect_url(
        &self,
        redirect_uri: &str,
        state: &str,
        options: &EmbeddedQrLogin,
    ) -> String {
        embedded_qrconnect_url(
            &self.inner.open_base,
            &self.inner.appid,
            redirect_uri,
            state,
            options,
        )
    }

    /// Exchanges a callback's `code` for the user's OAuth token (`sns/oauth2/access_token`),
    /// with this client's AppID and AppSecret: the Official Account's for web OAuth, the
    /// website application's for QR-code login (whose token has scope `snsapi_login` and the
    /// `unionid`).
    ///
    /// Codes are single use and live 5 minutes (10 for QR-code login). A `-1` (busy) reply is not retried, because
    /// WeChat may have consumed the code anyway (the repeat would get 40163): restart the login.
    ///
    /// # Errors
    /// [`ApiErrorKind::CodeAlreadyUsed`] (40163, e.g. the user pressed back), [`ApiErrorKind::InvalidCode`]
    /// (40029 invalid, 42003 expired), [`ApiErrorKind::InvalidAppSecret`], [`ApiErrorKind::InvalidAppId`],
    /// [`ApiErrorKind::SystemBusy`], [`Error::Http`], or [`ApiErrorKind::Other`] for other codes.
    pub async fn exchange_code(&self, code: &str) -> Result<OAuthToken> {
        let raw: RawToken = call_json(
            &self.inner.http,
            JsonCall::<()> {
                base: &self.inner.api_base,
                endpoint: "/sns/oauth2/access_token",
                query: &[
                    ("appid", self.inner.appid.as_str()),
                    ("secret", self.inner.secret.expose_secret()),
                    ("code", code),
                    ("grant_type", "authorization_code"),
                ],
                body: None,
                on_busy: OnBusy::Fail,
            },
        )
        .await?;
        Ok(raw.into_token(&self.inner.appid))
    }

    /// Refreshes the user's OAuth access token (`sns/oauth2/refresh_token`). The reply may
    /// carry a new refresh token: keep the latest pair.
    ///
    /// # Errors
    /// [`ApiErrorKind::RefreshTokenInvalid`] (40030 invalid, 42002 expired after 30 days, 42007
    /// revoked; the user must log in again), [`ApiErrorKind::InvalidAppId`], [`ApiErrorKind::SystemBusy`],
    /// [`Error::Http`], or [`ApiErrorKind::Other`].
    pub async fn refresh(&self, refresh_token: &RefreshToken) -> Result<OAuthToken> {
        let raw: RawToken = call_json(
            &self.inner.http,
            JsonCall::<()> {
                base: &self.inner.api_base,
                endpoint: "/sns/oauth2/refresh_token",
                query: &[
                    ("appid", self.inner.appid.as_str()),
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token.expose_secret()),
                ],
                body: None,
                on_busy: OnBusy::Retry,
            },
        )
        .await
        .map_err(|e| match e {
            Error::WeChat(api) if api.kind == ApiErrorKind::AccessTokenInvalid => {
                Error::WeChat(api.with_kind(ApiErrorKind::RefreshTokenInvalid))
            }
            other => other,
        })?;
        Ok(raw.into_token(&self.inner.appid))
    }

    /// Fetches the user's profile (`sns/userinfo`). Needs a `snsapi_userinfo` token; fails for
    /// snapshot users ([`OAuthToken::is_snapshot_user`]).
    ///
    /// # Errors
    /// [`ApiErrorKind::ScopeUnauthorized`] (48001: a `snsapi_base` token or a snapshot user),
    /// [`ApiErrorKind::OAuthTokenInvalid`] (40001/40014/42001: refresh it or log in again),
    /// [`ApiErrorKind::SystemBusy`], [`Error::Http`], or [`ApiErrorKind::Other`] (e.g. 40003 invalid openid).
    pub async fn userinfo(
        &self,
        access_token: &OAuthAccessToken,
        openid: &OpenId,
        lang: Lang,
    ) -> Result<UserInfo> {
        let raw: RawUserInfo = call_json(
            &self.inner.http,
            JsonCall::<()> {
                base: &self.inner.api_base,
                endpoint: "/sns/userinfo",
                query: &[
                    ("access_token", access_token.expose_secret()),
                    ("openid", openid.as_str()),
                    ("lang", lang.as_str()),
                ],
                body: None,
                on_busy: OnBusy::Retry,
            },
        )
        .await
        .map_err(oauth_token_error)?;
        Ok(raw.into())
    }

    /// Checks whether an OAuth access token is valid for `openid` (`sns/auth`).
    ///
    /// Returns `Ok(true)` when valid and `Ok(false)` when WeChat says the token is invalid or
    /// expired or does not belong to `openid` (40001, 40014, 42001, 40003).
    ///
    /// # Errors
    /// Other WeChat errors, [`ApiErrorKind::SystemBusy`] and [`Error::Http`]: the answer is unknown.
    pub async fn check(&self, access_token: &OAuthAccessToken, openid: &OpenId) -> Result<bool> {
        let result: Result<serde::de::IgnoredAny> = call_json(
            &self.inner.http,
            JsonCall::<()> {
                base: &self.inner.api_base,
                endpoint: "/sns/auth",
                query: &[
                    ("access_token", access_token.expose_secret()),
                    ("openid", openid.as_str()),
                ],
                body: None,
                on_busy: OnBusy::Retry,
            },
        )
        .await;
        match result.map_err(oauth_token_error) {
            Ok(_) => Ok(true),
            Err(Error::WeChat(api))
                if api.kind == ApiErrorKind::OAuthTokenInvalid || api.errcode == 40003 =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

/// On `sns/*` calls a rejected token is the user's OAuth token, not the basic one.
fn oauth_token_error(e: Error) -> Error {
    match e {
        Error::WeChat(api) if api.kind == ApiErrorKind::AccessTokenInvalid => {
            Error::WeChat(api.with_kind(ApiErrorKind::OAuthTokenInvalid))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v7_redirect_uri_is_encoded_as_one_component() {
        let v7 = "https://chong.qq.com/php/index.php?d=&c=wxAdapter&m=mobileDeal&showwxpaytitle=1&vb2ctag=4_2030_5_1194_60";
        assert_eq!(
            encode_component(v7),
            "https%3A%2F%2Fchong.qq.com%2Fphp%2Findex.php%3Fd%3D%26c%3DwxAdapter%26m%3DmobileDeal%26showwxpaytitle%3D1%26vb2ctag%3D4_2030_5_1194_60"
        );
        assert_eq!(
            encode_component("http://nba.bluewebgame.com/oauth_response.php"),
            "http%3A%2F%2Fnba.bluewebgame.com%2Foauth_response.php"
        );
        assert_eq!(
            encode_component("a-b_c.d~e f+g/é"),
            "a-b_c.d~e%20f%2Bg%2F%C3%A9"
        );
    }

    #[test]
    fn authorize_url_has_wechat_order_and_fragment() {
        let url = authorize_url(
            "https://open.weixin.qq.com/",
            &AppId::new("wx520c15f417810387"),
            "http://nba.bluewebgame.com/oauth_response.php",
            Scope::UserInfo,
            "STATE",
        );
        assert_eq!(
            url,
            "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx520c15f417810387\
             &redirect_uri=http%3A%2F%2Fnba.bluewebgame.com%2Foauth_response.php\
             &response_type=code&scope=snsapi_userinfo&state=STATE#wechat_redirect"
        );
        let parsed = url::Url::parse(&url).unwrap();
        let names: Vec<String> = parsed.query_pairs().map(|(k, _)| k.into_owned()).collect();
        assert_eq!(
            names,
            ["appid", "redirect_uri", "response_type", "scope", "state"]
        );
        assert_eq!(parsed.fragment(), Some("wechat_redirect"));
    }

    #[test]
    fn token_reply_is_typed_and_redacted() {
        let raw: RawToken = serde_json::from_str(
            r#"{"access_token":"ACCESS_TOKEN_X","expires_in":7200,"refresh_token":"REFRESH_X","openid":"OPENID",
                "scope":"snsapi_base,snsapi_userinfo","unionid":"o6_bmasdasdsad6_2sgVt7hMZOPfL","is_snapshotuser":1}"#,
        )
        .unwrap();
        let token = raw.into_token(&AppId::new("wx1"));
        assert_eq!(token.scope, ["snsapi_base", "snsapi_userinfo"]);
        assert!(token.grants(Scope::UserInfo) && token.grants(Scope::Base));
        assert!(token.is_snapshot_user);
        assert_eq!(
            token.unionid.as_ref().map(UnionId::as_str),
            Some("o6_bmasdasdsad6_2sgVt7hMZOPfL")
        );
        let shown = format!("{token:?}");
        assert!(
            !shown.contains("ACCESS_TOKEN_X") && !shown.contains("REFRESH_X"),
            "{shown}"
        );
        assert!(shown.contains("OAuthAccessToken([redacted])"), "{shown}");

        let raw: RawToken = serde_json::from_str(
            r#"{"access_token":"A","expires_in":7200,"refresh_token":"R","openid":"O","scope":"snsapi_base","unionid":""}"#,
        )
        .unwrap();
        let token = raw.into_token(&AppId::new("wx1"));
        assert!(
            !token.is_snapshot_user && token.unionid.is_none() && !token.grants(Scope::UserInfo)
        );
    }

    #[test]
    fn userinfo_reply_is_typed() {
        let raw: RawUserInfo = serde_json::from_str(
            r#"{"openid":"OPENID","nickname":"NICKNAME","sex":1,"province":"P","city":"C","country":"CN",
                "headimgurl":"https://thirdwx.qlogo.cn/mmopen/x/46","privilege":["PRIVILEGE1"],"unionid":"U"}"#,
        )
        .unwrap();
        let info = UserInfo::from(raw);
        assert_eq!(info.sex, Sex::Male);
        assert_eq!(info.privilege, ["PRIVILEGE1"]);
        assert_eq!(info.unionid, Some(UnionId::new("U")));
        let minimal: RawUserInfo = serde_json::from_str(r#"{"openid":"O","sex":7}"#).unwrap();
        let info = UserInfo::from(minimal);
        assert_eq!(info.sex, Sex::Unknown);
        assert!(info.nickname.is_empty() && info.unionid.is_none());
    }

    #[test]
    fn names_match_wechat() {
        assert_eq!(Scope::Base.as_str(), "snsapi_base");
        assert_eq!(Scope::UserInfo.to_string(), "snsapi_userinfo");
        assert_eq!(Lang::ZhCn.as_str(), "zh_CN");
        assert_eq!(Lang::ZhTw.as_str(), "zh_TW");
        assert_eq!(Lang::En.as_str(), "en");
        for code in 0..=2 {
            assert_eq!(i64::from(Sex::from_code(code).code()), code);
        }
    }

    #[test]
    fn sns_token_errors_are_oauth_errors() {
        let e = oauth_token_error(Error::from_errcode("/sns/userinfo", 42001, "expired"));
        assert_eq!(e.api_kind(), Some(&ApiErrorKind::OAuthTokenInvalid));
        assert_eq!(e.errcode(), Some(42001));
        let e = oauth_token_error(Error::from_errcode("/sns/userinfo", 48001, "unauthorized"));
        assert_eq!(e.api_kind(), Some(&ApiErrorKind::ScopeUnauthorized));
    }
}
