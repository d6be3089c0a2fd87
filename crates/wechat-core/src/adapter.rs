//! The interface for framework adapters: what `wechat-tower` and `wechat-actix` use to run
//! [`LoginFlow`] and [`WeChatRoutes`] in their framework, and what an adapter for another
//! framework would use.
//!
//! An application does not need this module. An adapter does three things:
//!
//! 1. Around every route, run the login flow: [`fast_proceed`] for the common case (a valid
//!    session), else [`LoginFlow::decide`] over the request head ([`request_parts`] builds one
//!    for frameworks whose requests are not `http` 1 types), and carry out its
//!    [`Decision`](crate::login::Decision).
//! 2. In its user extractor, read what the middleware left in the request extensions with
//!    [`require_user`].
//! 3. Mount the routes: extract the query, body and client IP ([`client_ip`]) and send the
//!    route method's response.
//!
//! ```
//! use wechat_core::adapter::{fast_proceed, request_parts};
//! use wechat_core::login::{Decision, LoginConfig, LoginFlow};
//! use wechat_core::oauth::OAuthClient;
//! use wechat_core::session::SessionKeys;
//! use wechat_core::Config;
//!
//! let config = Config::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef");
//! let login = LoginConfig::builder("https://shop.example.com", SessionKeys::generate()).build()?;
//! let flow = LoginFlow::new(OAuthClient::new(&config, reqwest::Client::new()), login);
//!
//! // A request from a framework with its own types: no session, so decide what to do.
//! assert!(fast_proceed(&flow, "/shop", [b"theme=dark".as_slice()]).is_none());
//! let parts = request_parts("GET", "/shop", [("Accept", b"text/html".as_slice())]).unwrap();
//! let Decision::Respond(response) = flow.decide(&parts) else { panic!("a redirect to WeChat") };
//! assert_eq!(response.status(), http::StatusCode::FOUND);
//! # Ok::<(), wechat_core::Error>(())
//! ```

use std::net::IpAddr;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, Response, StatusCode};

pub use crate::login::request::{LOGIN_FLOW_HEADERS, request_parts};
use crate::login::{LoginFlow, Proceed};
use crate::routes::WeChatRoutes;
use crate::session::SessionUser;

/// The common case of [`LoginFlow::decide`], without building a request head: `Some` when a
/// request for `path` (without the query) whose `Cookie` header values (bytes, as the framework
/// holds them) are `cookie_headers` has a valid session and is not for one of the flow's own
/// paths, which is exactly when `decide` answers [`Decision::Proceed`](crate::login::Decision)
/// with that user. `None` means: build the request's [`Parts`] (see [`request_parts`]) and call
/// `decide`.
///
/// Nearly every request is a logged-in one, so this is the adapters' hot path.
///
/// ```
/// # use wechat_core::{Config, OpenId};
/// # use wechat_core::login::{LoginConfig, LoginFlow};
/// # use wechat_core::oauth::OAuthClient;
/// # use wechat_core::session::{SessionKeys, SessionUser};
/// # let config = Config::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef");
/// # let login = LoginConfig::builder("https://shop.example.com", SessionKeys::generate()).build()?;
/// use wechat_core::adapter::fast_proceed;
///
/// let flow = LoginFlow::new(OAuthClient::new(&config, reqwest::Client::new()), login);
/// let session = flow.config().session_cookie();
/// let expires_at = std::time::SystemTime::now()
///     .duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600;
/// let value = session.encode(&SessionUser::new(OpenId::new("o6_bmjrPTlm6_2sgVt7hMZOPfL2M"), expires_at))?;
/// // On https the cookie is `__Host-wechat_session`.
/// let cookie = format!("theme=dark; {}={value}", session.name());
///
/// let proceed = fast_proceed(&flow, "/shop", [cookie.as_bytes()]).expect("a valid session");
/// assert_eq!(proceed.session_user().unwrap().openid.as_str(), "o6_bmjrPTlm6_2sgVt7hMZOPfL2M");
/// // No session: decide sends the browser to log in.
/// assert!(fast_proceed(&flow, "/shop", [b"theme=dark".as_slice()]).is_none());
/// // The flow's own paths: decide answers them.
/// assert!(fast_proceed(&flow, "/wechat/oauth/logout", [cookie.as_bytes()]).is_none());
/// # Ok::<(), wechat_core::Error>(())
/// ```
pub fn fast_proceed<'a>(
    flow: &LoginFlow,
    path: &str,
    cookie_headers: impl IntoIterator<Item = &'a [u8]>,
) -> Option<Proceed> {
    flow.fast_proceed(path, cookie_headers)
}

/// A request's extensions, as the adapter's framework holds them: what [`Proceed::apply`]
/// writes to. Implemented for `http::Extensions`; an adapter whose framework has its own
/// extensions type implements it on a wrapper (`wechat-actix` does, for actix-web's).
pub trait RequestExtensions {
    /// Inserts `value`, replacing any value of its type.
    fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T);
    /// Removes any value of type `T`.
    fn remove<T: Clone + Send + Sync + 'static>(&mut self);
}

impl RequestExtensions for http::Extensions {
    fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        http::Extensions::insert(self, value);
    }

    fn remove<T: Clone + Send + Sync + 'static>(&mut self) {
        http::Extensions::remove::<T>(self);
    }
}

/// The user of a route that needs one, as the adapters' extractors decide it.
///
/// - `user` is the [`SessionUser`] the login middleware put into the request extensions: it is
///   returned.
/// - No user, but `flow` (the [`LoginFlow`] the middleware also puts there) is present: the
///   request came through the middleware on an excluded path without a session, so the answer is
///   the flow's 401 JSON ([`LoginFlow::login_required`]).
/// - Neither: the middleware did not run for this route, a programming error. The answer is a
///   500 whose plain-text body names the missing middleware, `missing_middleware` (e.g.
///   ``"`wechat_tower::WeChatLoginLayer`: add `.layer(WeChatLoginLayer::new(flow))` …"``).
///
/// # Errors
/// The response to send instead, as above.
#[allow(clippy::result_large_err)] // the error is the response to send at once
pub fn require_user(
    user: Option<&SessionUser>,
    flow: Option<&LoginFlow>,
    parts: &Parts,
    missing_middleware: &str,
) -> std::result::Result<SessionUser, Response<Bytes>> {
    if let Some(user) = user {
        return Ok(user.clone());
    }
    if let Some(flow) = flow {
        return Err(flow.login_required(parts));
    }
    Err(missing_middleware_response(missing_middleware))
}

/// The 500 answer of an extractor used where the login middleware did not run: a plain-text body
/// naming `missing_middleware`; see [`require_user`].
pub fn missing_middleware_response(missing_middleware: &str) -> Response<Bytes> {
    tracing::error!(
        middleware = missing_middleware,
        "a route needs the WeChat user, but the login middleware did not run for it"
    );
    let body = format!(
        "Internal configuration error: this route needs the WeChat user, but the WeChat login \
         middleware did not run for this request. Missing: {missing_middleware}\n"
    );
    crate::response::text(StatusCode::INTERNAL_SERVER_ERROR, body)
}

/// A JSON error body `{"error": message}` with `status`, `Content-Type: application/json` and
/// `Cache-Control: no-store`: the shape of every error the routes answer to a browser, for the
/// errors an adapter finds itself (an unreadable body, an unknown client IP).
pub fn json_error_response(status: StatusCode, message: &str) -> Response<Bytes> {
    crate::response::json_error(status, message)
}

/// The client IP for `spbill_create_ip`, by the routes' proxy policy, from the raw header
/// values: with [`trust_proxy`](crate::routes::WeChatRoutesBuilder::trust_proxy), the first
/// entry of `X-Forwarded-For` (`forwarded_for`), else `X-Real-IP` (`real_ip`), else the TCP
/// `peer`; without it, the peer only. IPv4-mapped IPv6 addresses become IPv4. `None` when
/// nothing usable is known (the adapter then answers 500).
pub fn client_ip(
    routes: &WeChatRoutes,
    peer: Option<IpAddr>,
    forwarded_for: Option<&[u8]>,
    real_ip: Option<&[u8]>,
) -> Option<IpAddr> {
    routes.client_ip(peer, forwarded_for, real_ip)
}

/// [`client_ip`] reading `X-Forwarded-For` and `X-Real-IP` from `http` `headers`.
pub fn client_ip_from_headers(
    routes: &WeChatRoutes,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    routes.client_ip(
        peer,
        headers
            .get("x-forwarded-for")
            .map(http::HeaderValue::as_bytes),
        headers.get("x-real-ip").map(http::HeaderValue::as_bytes),
    )
}
