//! The axum extractor for the logged-in user.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;
use http::request::Parts;
use wechat_core::adapter::require_user;
use wechat_core::login::LoginFlow;
use wechat_core::session::SessionUser;

/// What the 500 answer says is missing when [`WeChatUser`] is used without the layer.
pub(crate) const MISSING_LAYER: &str = "`wechat_tower::WeChatLoginLayer`: add \
     `.layer(wechat_tower::WeChatLoginLayer::new(flow))` to the axum Router that holds this route \
     (Router::layer wraps only the routes added before it)";

/// The logged-in WeChat user, read from the request extensions that [`WeChatLoginLayer`]
/// filled (openid, unionid when known, the profile for `snsapi_userinfo`).
///
/// Rejections ([`WeChatUserRejection`]):
/// - on a path excluded from login, without a session: the flow's 401 JSON
///   (`{"error":"login_required","message":…,"login_url":…}`);
/// - on a route the layer does not wrap: 500 whose body names `wechat_tower::WeChatLoginLayer`.
///
/// `Option<WeChatUser>` gives `None` instead of the 401 (still 500 without the layer).
///
/// ```
/// use axum::{Router, routing::get};
/// use wechat_tower::WeChatUser;
///
/// async fn me(user: WeChatUser) -> String {
///     let nickname = user.profile.as_ref().map_or("", |p| p.nickname.as_str());
///     format!("{} {nickname}", user.openid)
/// }
///
/// async fn maybe(user: Option<WeChatUser>) -> &'static str {
///     if user.is_some() { "member" } else { "guest" }
/// }
///
/// let app: Router = Router::new().route("/me", get(me)).route("/public/hello", get(maybe));
/// // … .layer(WeChatLoginLayer::new(flow)) with "/public" excluded from login.
/// # let _ = app;
/// ```
///
/// [`WeChatLoginLayer`]: crate::WeChatLoginLayer
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeChatUser(pub SessionUser);

impl WeChatUser {
    /// The session's user.
    pub fn into_inner(self) -> SessionUser {
        self.0
    }
}

impl std::ops::Deref for WeChatUser {
    type Target = SessionUser;

    fn deref(&self) -> &SessionUser {
        &self.0
    }
}

/// Why [`WeChatUser`] could not be extracted; its response is the answer (401 JSON, or 500
/// naming the missing layer).
#[derive(Debug)]
pub struct WeChatUserRejection {
    response: http::Response<Bytes>,
}

impl WeChatUserRejection {
    /// The status: 401 (login required) or 500 (layer missing).
    pub fn status(&self) -> StatusCode {
        self.response.status()
    }

    /// The response that will be sent.
    pub fn into_response_bytes(self) -> http::Response<Bytes> {
        self.response
    }
}

impl std::fmt::Display for WeChatUserRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.status() == StatusCode::UNAUTHORIZED {
            f.write_str("WeChat login required")
        } else {
            write!(f, "no WeChat login middleware: {MISSING_LAYER}")
        }
    }
}

impl std::error::Error for WeChatUserRejection {}

impl IntoResponse for WeChatUserRejection {
    fn into_response(self) -> Response {
        self.response.map(axum::body::Body::from)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WeChatUser {
    type Rejection = WeChatUserRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let user = SessionUser::from_extensions(&parts.extensions);
        let flow = parts.extensions.get::<LoginFlow>();
        require_user(user, flow, parts, MISSING_LAYER)
            .map(WeChatUser)
            .map_err(|response| WeChatUserRejection { response })
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for WeChatUser {
    type Rejection = WeChatUserRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        if let Some(user) = SessionUser::from_extensions(&parts.extensions) {
            return Ok(Some(WeChatUser(user.clone())));
        }
        if parts.extensions.get::<LoginFlow>().is_some() {
            return Ok(None);
        }
        Err(WeChatUserRejection {
            response: wechat_core::adapter::missing_middleware_response(MISSING_LAYER),
        })
    }
}
