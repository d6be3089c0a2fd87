//! The login middleware: [`WeChatLoginLayer`] and its service [`WeChatLogin`].
//!
//! For every request the service asks [`LoginFlow::decide`] what to do (the decisions live in
//! `wechat-core`, shared with `wechat-actix`) and translates the [`Decision`]:
//!
//! - `Proceed`: what it carries goes into the request extensions
//!   ([`Proceed::apply`](wechat_core::login::Proceed::apply): the user, or on an excluded path
//!   without a session the flow, for the extractors' 401), and the inner service is called;
//! - `Respond`: that response is sent (a 302 to WeChat's authorize page, a 401 JSON for `fetch`
//!   and non-GET requests, the login and logout redirects…), the inner service is not called;
//! - `Callback`: the OAuth callback, answered by [`LoginFlow::handle_callback`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderValue, Request, Response, StatusCode, header};
use tower_layer::Layer;
use tower_service::Service;
use wechat_core::adapter::fast_proceed;
use wechat_core::login::{Decision, LoginFlow};

/// A tower [`Layer`] that logs browsers in with WeChat and puts the user into the request
/// extensions; see the [crate docs](crate) for an axum app.
///
/// Apply it outside every route that needs the user (with axum, `Router::layer` after the
/// routes, including the nested [`router`](crate::router)). Exclude WeChat's notification routes
/// from login in the [`LoginConfig`](wechat_core::login::LoginConfig) with
/// [`exclude_notifications`](wechat_core::login::LoginConfigBuilder::exclude_notifications).
///
/// ```
/// use tower_layer::Layer;
/// use wechat_core::Config;
/// use wechat_core::login::{LoginConfig, LoginFlow};
/// use wechat_core::oauth::OAuthClient;
/// use wechat_core::session::SessionKeys;
/// use wechat_tower::WeChatLoginLayer;
///
/// let config = Config::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef");
/// let login = LoginConfig::builder("https://shop.example.com", SessionKeys::generate())
///     .exclude_notifications("/wechat")
///     .build()?;
/// let layer = WeChatLoginLayer::new(LoginFlow::new(OAuthClient::new(&config, reqwest::Client::new()), login));
/// // Any tower service over `http` requests whose response body can be built from `Bytes`:
/// let service = layer.layer(tower::service_fn(|_request: http::Request<()>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(bytes::Bytes::from_static(b"hello")))
/// }));
/// # let _ = service;
/// # Ok::<(), wechat_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct WeChatLoginLayer {
    flow: LoginFlow,
}

impl WeChatLoginLayer {
    /// A layer running `flow` (cheap to clone: an `Arc` inside).
    pub fn new(flow: LoginFlow) -> Self {
        Self { flow }
    }

    /// The login flow.
    pub fn flow(&self) -> &LoginFlow {
        &self.flow
    }
}

impl<S> Layer<S> for WeChatLoginLayer {
    type Service = WeChatLogin<S>;

    fn layer(&self, inner: S) -> Self::Service {
        WeChatLogin {
            inner,
            flow: self.flow.clone(),
        }
    }
}

/// The service of [`WeChatLoginLayer`], wrapping the inner service `S`.
///
/// Generic over the request body and over the response body `ResBody`, which must be buildable
/// from `Bytes` (axum's `Body`, `http_body_util::Full<Bytes>`…) for the responses the flow sends
/// itself. Readiness is the inner service's: the inner service is called synchronously from
/// [`Service::call`] (the decision needs no I/O), so the readiness reserved by `poll_ready` is
/// the one used, and no clone of the inner service is needed.
#[derive(Debug, Clone)]
pub struct WeChatLogin<S> {
    inner: S,
    flow: LoginFlow,
}

impl<S> WeChatLogin<S> {
    /// The login flow.
    pub fn flow(&self) -> &LoginFlow {
        &self.flow
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for WeChatLogin<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // Nearly every request is a logged-in one: let it through without taking it apart.
        let cookies = request
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .map(HeaderValue::as_bytes);
        if let Some(proceed) = fast_proceed(&self.flow, request.uri().path(), cookies) {
            proceed.apply(request.extensions_mut());
            return ResponseFuture {
                kind: Kind::Inner {
                    future: self.inner.call(request),
                },
            };
        }
        let (mut parts, body) = request.into_parts();
        match self.flow.decide(&parts) {
            Decision::Proceed(proceed) => {
                proceed.apply(&mut parts.extensions);
                ResponseFuture {
                    kind: Kind::Inner {
                        future: self.inner.call(Request::from_parts(parts, body)),
                    },
                }
            }
            Decision::Respond(response) => ResponseFuture {
                kind: Kind::Ready {
                    response: Some(response.map(ResBody::from)),
                },
            },
            Decision::Callback => {
                let flow = self.flow.clone();
                ResponseFuture {
                    kind: Kind::Callback {
                        future: Box::pin(async move { flow.handle_callback(&parts).await }),
                    },
                }
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`WeChatLogin`]: the inner service's response, or the one the
    /// login flow produced.
    pub struct ResponseFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        Inner { #[pin] future: F },
        Ready { response: Option<Response<B>> },
        Callback { future: BoxFuture<'static, Response<Bytes>> },
    }
}

impl<F, B> std::fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Inner { .. } => "Inner",
            Kind::Ready { .. } => "Ready",
            Kind::Callback { .. } => "Callback",
        };
        f.debug_struct("ResponseFuture")
            .field("kind", &kind)
            .finish()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: From<Bytes>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => future.poll(cx),
            KindProj::Ready { response } => Poll::Ready(Ok(response.take().unwrap_or_else(|| {
                // Polled again after completion: a caller bug; answer rather than panic.
                let mut response = Response::new(B::from(Bytes::new()));
                *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                response
            }))),
            KindProj::Callback { future } => future.as_mut().poll(cx).map(|r| Ok(r.map(B::from))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http::header;
    use tower::{ServiceExt as _, service_fn};
    use wechat_core::login::LoginConfig;
    use wechat_core::oauth::OAuthClient;
    use wechat_core::session::{SessionKeys, SessionUser};
    use wechat_core::{Config, OpenId};

    use super::*;

    fn flow() -> LoginFlow {
        let config = Config::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef");
        let login = LoginConfig::builder(
            "https://shop.example.com",
            SessionKeys::new([7u8; 32]).unwrap(),
        )
        .exclude("/health")
        .build()
        .unwrap();
        LoginFlow::new(OAuthClient::new(&config, reqwest::Client::new()), login)
    }

    /// An inner service that reports what it saw in the extensions, and counts its calls.
    fn echo(
        calls: Arc<AtomicUsize>,
    ) -> impl Service<Request<()>, Response = Response<Bytes>, Error = Infallible, Future: Send> + Clone
    {
        service_fn(move |request: Request<()>| {
            calls.fetch_add(1, Ordering::SeqCst);
            let user =
                SessionUser::from_extensions(request.extensions()).map(|u| u.openid.to_string());
            let has_flow = request.extensions().get::<LoginFlow>().is_some();
            async move {
                Ok::<_, Infallible>(Response::new(Bytes::from(format!(
                    "user={} flow={has_flow}",
                    user.unwrap_or_default()
                ))))
            }
        })
    }

    #[tokio::test]
    async fn translates_each_decision() {
        let flow = flow();
        let calls = Arc::new(AtomicUsize::new(0));
        let service = WeChatLoginLayer::new(flow.clone()).layer(echo(calls.clone()));

        // A page load without a session: 302 to WeChat, inner not called.
        let page = Request::get("/shop")
            .header(header::ACCEPT, "text/html")
            .body(())
            .unwrap();
        let response = service.clone().oneshot(page).await.unwrap();
        assert_eq!(response.status(), StatusCode::FOUND);
        assert!(
            response.headers()[header::LOCATION]
                .to_str()
                .unwrap()
                .contains("/connect/oauth2/authorize?appid=wx1234567890abcdef")
        );
        // A fetch: 401 JSON.
        let fetch = Request::post("/api").body(()).unwrap();
        let response = service.clone().oneshot(fetch).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(
            std::str::from_utf8(response.body())
                .unwrap()
                .contains("login_required")
        );
        assert_eq!(calls.load(Ordering::SeqCst), 0);

        // An excluded path proceeds with the flow but no user, even if something upstream put
        // a user into the extensions.
        let mut health = Request::get("/health").body(()).unwrap();
        health
            .extensions_mut()
            .insert(Arc::new(SessionUser::new(OpenId::new("oForged"), u64::MAX)));
        let response = service.clone().oneshot(health).await.unwrap();
        assert_eq!(response.body(), "user= flow=true");

        // A valid session proceeds with its user (and no flow: one extension per request).
        let user = SessionUser::new(OpenId::new("oAlice"), u64::MAX / 2);
        let session = flow.config().session_cookie();
        let cookie = format!("{}={}", session.name(), session.encode(&user).unwrap());
        let request = Request::post("/api")
            .header(header::COOKIE, cookie)
            .body(())
            .unwrap();
        let response = service.clone().oneshot(request).await.unwrap();
        assert_eq!(response.body(), "user=oAlice flow=false");
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        // The callback is answered by the flow (here: no state, so 400 and no redirect).
        let callback = Request::get("/wechat/oauth/callback?code=x")
            .body(())
            .unwrap();
        let response = service.clone().oneshot(callback).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(response.headers().get(header::LOCATION).is_none());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    /// An inner service that is ready only every other poll, to check readiness is forwarded.
    #[derive(Clone)]
    struct Flaky {
        polls: Arc<AtomicUsize>,
    }

    impl Service<Request<()>> for Flaky {
        type Response = Response<Bytes>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response<Bytes>, Infallible>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            if self.polls.fetch_add(1, Ordering::SeqCst) % 2 == 0 {
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready(Ok(()))
            }
        }

        fn call(&mut self, _request: Request<()>) -> Self::Future {
            std::future::ready(Ok(Response::new(Bytes::from_static(b"inner"))))
        }
    }

    #[tokio::test]
    async fn readiness_is_the_inner_services() {
        let polls = Arc::new(AtomicUsize::new(0));
        let mut service = WeChatLoginLayer::new(flow()).layer(Flaky {
            polls: polls.clone(),
        });
        let ready = std::future::poll_fn(|cx| service.poll_ready(cx)).await;
        assert!(ready.is_ok());
        assert_eq!(polls.load(Ordering::SeqCst), 2);
        let response = service
            .call(Request::get("/health").body(()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.body(), "inner");
    }
}
