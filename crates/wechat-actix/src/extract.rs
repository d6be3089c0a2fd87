//! The [`WeChatUser`] extractor.

use std::ops::Deref;

use actix_utils::future::{Ready, ready};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use wechat_core::adapter::require_user;
use wechat_core::login::LoginFlow;
use wechat_core::session::SessionUser;

use crate::Error;
use crate::convert::login_parts;

/// The logged-in WeChat user of a request, put there by
/// [`WeChatLoginMiddleware`](crate::WeChatLoginMiddleware). Dereferences to [`SessionUser`]
/// (`user.openid`, `user.unionid`, `user.profile` for `snsapi_userinfo`).
///
/// On routes the middleware protects, a handler taking a `WeChatUser` always gets one (requests
/// without a session were answered by the middleware). On excluded paths, a request without a
/// session gets the flow's 401 JSON ([`Error::LoginRequired`]); take `Option<WeChatUser>` to
/// serve anonymous requests there too.
///
/// ```
/// use actix_web::HttpResponse;
/// use wechat_actix::WeChatUser;
///
/// async fn me(user: WeChatUser) -> HttpResponse {
///     let name = user.profile.as_ref().map_or("", |p| p.nickname.as_str());
///     HttpResponse::Ok().body(format!("{} {name}", user.openid))
/// }
/// ```
///
/// # Errors
/// [`Error::MissingMiddleware`] (500, naming the middleware) when the route is not wrapped by
/// [`WeChatLoginMiddleware`](crate::WeChatLoginMiddleware); [`Error::LoginRequired`] (401 JSON)
/// without a session on an excluded path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeChatUser(pub SessionUser);

impl WeChatUser {
    /// The session user.
    pub fn into_inner(self) -> SessionUser {
        self.0
    }
}

impl Deref for WeChatUser {
    type Target = SessionUser;

    fn deref(&self) -> &SessionUser {
        &self.0
    }
}

impl FromRequest for WeChatUser {
    type Error = Error;
    type Future = Ready<Result<Self, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(user_of(req))
    }
}

/// How the 500 names the middleware to add.
const MISSING_MIDDLEWARE: &str = "`wechat_actix::WeChatLoginMiddleware`: add \
     `.wrap(WeChatLoginMiddleware::new(flow))` to the App or scope that serves this route";

/// The user the middleware found, or why there is none (`wechat_core::adapter::require_user`).
fn user_of(req: &HttpRequest) -> Result<WeChatUser, Error> {
    let extensions = req.extensions();
    if let Some(user) = extensions.get::<std::sync::Arc<SessionUser>>() {
        // The common case, without building the request head.
        return Ok(WeChatUser(SessionUser::clone(user)));
    }
    let parts = login_parts(req).ok_or(Error::BadRequest)?;
    let flow = extensions.get::<LoginFlow>();
    require_user(None, flow, &parts, MISSING_MIDDLEWARE)
        .map(WeChatUser)
        .map_err(|response| match flow {
            Some(_) => Error::LoginRequired(Box::new(response)),
            None => Error::MissingMiddleware(Box::new(response)),
        })
}
