//! The login middleware: [`WeChatLoginMiddleware`] (an actix [`Transform`]) and the service it
//! wraps around each route, [`WeChatLogin`].
//!
//! Every decision is [`LoginFlow::decide`]'s (see `wechat_core::login::LoginFlow` for the behaviour);
//! this module only carries it out in actix:
//!
//! - [`Decision::Proceed`]: the [`SessionUser`](wechat_core::session::SessionUser) goes into the request extensions (on an excluded
//!   path without a session, a clone of the [`LoginFlow`] instead, for the extractor's 401), and
//!   the inner service is called;
//! - [`Decision::Respond`]: the flow's response is sent (a redirect to WeChat, a 401 JSON, …);
//! - [`Decision::Callback`]: [`LoginFlow::handle_callback`]'s response is sent.

use std::rc::Rc;

use actix_service::{Service, Transform, forward_ready};
use actix_utils::future::{Ready, ready};
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Extensions, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::{Error, HttpMessage};
use futures_util::future::{Either, LocalBoxFuture, MapOk, TryFutureExt};
use wechat_core::adapter::{RequestExtensions, fast_proceed};
use wechat_core::login::{Decision, LoginFlow, Proceed};

use crate::convert::{bad_request, login_parts, to_actix};

/// The WeChat login middleware: `App::new().wrap(WeChatLoginMiddleware::new(flow))`.
///
/// Requests with a valid session cookie reach the routes with their [`SessionUser`](wechat_core::session::SessionUser) (read it
/// with the [`WeChatUser`](crate::WeChatUser) extractor); browsers without one are sent to
/// WeChat and come back logged in; other requests without one get 401 JSON; excluded paths pass
/// with or without a session. The flow's callback, login and logout paths are answered here.
///
/// The session cookie is the one of `wechat-core`: an actix app and an axum app (with
/// `wechat-tower`) configured with the same [`SessionKeys`](wechat_core::session::SessionKeys) accept
/// each other's sessions.
///
/// ```
/// use actix_web::{App, HttpResponse, web};
/// use wechat_actix::{WeChatLoginMiddleware, WeChatUser};
/// use wechat_core::Config;
/// use wechat_core::login::{LoginConfig, LoginFlow};
/// use wechat_core::oauth::OAuthClient;
/// use wechat_core::session::SessionKeys;
///
/// async fn me(user: WeChatUser) -> HttpResponse {
///     HttpResponse::Ok().body(user.openid.to_string())
/// }
///
/// let config = Config::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef");
/// let login = LoginConfig::builder("https://shop.example.com", SessionKeys::generate())
///     .exclude("/wechat/pay/notify")
///     .build()?;
/// let flow = LoginFlow::new(OAuthClient::new(&config, reqwest::Client::new()), login);
///
/// let app = App::new()
///     .wrap(WeChatLoginMiddleware::new(flow))
///     .route("/me", web::get().to(me));
/// # let _ = app;
/// # Ok::<(), wechat_core::Error>(())
/// ```
///
/// # Security
/// See `wechat_core::login::LoginFlow` and `wechat_core::session::SessionCookie`: the state is signed and bound
/// to the browser, return paths stay on this site, and the cookie is `HttpOnly; SameSite=Lax`
/// (and `Secure` for an https public URL).
#[derive(Debug, Clone)]
pub struct WeChatLoginMiddleware {
    flow: LoginFlow,
}

impl WeChatLoginMiddleware {
    /// The middleware for `flow` (cheap to clone: the flow is shared).
    pub fn new(flow: LoginFlow) -> Self {
        Self { flow }
    }

    /// The login flow.
    pub fn flow(&self) -> &LoginFlow {
        &self.flow
    }
}

impl<S, B> Transform<S, ServiceRequest> for WeChatLoginMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = WeChatLogin<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(WeChatLogin {
            service: Rc::new(service),
            flow: self.flow.clone(),
        }))
    }
}

/// The service [`WeChatLoginMiddleware`] puts around the app's services; not used directly.
#[doc(hidden)]
#[derive(Debug)]
pub struct WeChatLogin<S> {
    service: Rc<S>,
    flow: LoginFlow,
}

type Left<B> = fn(ServiceResponse<B>) -> ServiceResponse<EitherBody<B>>;

/// The future of [`WeChatLogin`]: the inner service's (no allocation on the way through),
/// or the flow's own response.
#[doc(hidden)]
pub type ResponseFuture<F, B> = Either<
    MapOk<F, Left<B>>,
    LocalBoxFuture<'static, Result<ServiceResponse<EitherBody<B>>, Error>>,
>;

impl<S, B> Service<ServiceRequest> for WeChatLogin<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = ResponseFuture<S::Future, B>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        // Nearly every request is a logged-in one: let it through without building `Parts`.
        let cookies = req
            .headers()
            .get_all(header::COOKIE)
            .map(|value| value.as_bytes());
        if let Some(proceed) = fast_proceed(&self.flow, req.path(), cookies) {
            return self.proceed(req, proceed);
        }
        let Some(parts) = login_parts(req.request()) else {
            return respond(req, bad_request());
        };
        match self.flow.decide(&parts) {
            Decision::Proceed(proceed) => self.proceed(req, proceed),
            Decision::Respond(response) => respond(req, to_actix(&response)),
            Decision::Callback => {
                let flow = self.flow.clone();
                Either::Right(Box::pin(async move {
                    let response = flow.handle_callback(&parts).await;
                    Ok(req.into_response(to_actix(&response)).map_into_right_body())
                }))
            }
        }
    }
}

impl<S, B> WeChatLogin<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    /// Calls the inner service with what `proceed` carries in the request's extensions.
    fn proceed(&self, req: ServiceRequest, proceed: Proceed) -> ResponseFuture<S::Future, B> {
        proceed.apply(&mut ActixExtensions(&mut req.extensions_mut()));
        let left: Left<B> = ServiceResponse::map_into_left_body;
        Either::Left(self.service.call(req).map_ok(left))
    }
}

/// actix-web's request extensions, for [`Proceed::apply`].
struct ActixExtensions<'a>(&'a mut Extensions);

impl RequestExtensions for ActixExtensions<'_> {
    fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        self.0.insert(value);
    }

    fn remove<T: Clone + Send + Sync + 'static>(&mut self) {
        self.0.remove::<T>();
    }
}

/// Answers `req` with `response` instead of calling the inner service.
fn respond<F, B: 'static>(
    req: ServiceRequest,
    response: actix_web::HttpResponse<BoxBody>,
) -> ResponseFuture<F, B> {
    let response = req.into_response(response).map_into_right_body();
    Either::Right(Box::pin(ready(Ok(response))))
}
