//! The crate's error type: what the [`WeChatUser`](crate::WeChatUser) extractor answers when it
//! cannot give a user. Every variant renders its own response ([`ResponseError`]).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use bytes::Bytes;

/// Why a request has no WeChat user. The responses are `wechat-core`'s, the same as
/// `wechat-tower`'s.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The route is not wrapped by [`WeChatLoginMiddleware`](crate::WeChatLoginMiddleware): a
    /// programming error, answered 500 with a plain-text body that names the middleware.
    #[error("the WeChatUser extractor needs wechat_actix::WeChatLoginMiddleware around the route")]
    MissingMiddleware(Box<http::Response<Bytes>>),
    /// The route is excluded from login and the request has no valid session: answered with the
    /// login flow's 401 JSON (`{"error":"login_required","message":"…","login_url":"…"}`).
    #[error("login required: the request has no valid WeChat session")]
    LoginRequired(Box<http::Response<Bytes>>),
    /// The request's method or target is not valid HTTP: answered 400.
    #[error("bad request: the method or target is not valid HTTP")]
    BadRequest,
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MissingMiddleware(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::LoginRequired(_) => StatusCode::UNAUTHORIZED,
            Self::BadRequest => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::MissingMiddleware(response) | Self::LoginRequired(response) => {
                crate::convert::to_actix(response)
            }
            Self::BadRequest => crate::convert::bad_request(),
        }
    }
}
