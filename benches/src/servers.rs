//! The servers the load benchmark drives, each on 127.0.0.1 (ephemeral port) in its own OS
//! thread with its own runtime and a fixed number of worker threads:
//!
//! - axum and actix-web "hello" apps, bare and behind the login middleware (`WeChatLoginLayer`,
//!   `WeChatLoginMiddleware`): the two apps of a framework differ only by the middleware;
//! - axum and actix-web apps with the mounted WeChat routes (`/wechat/jssdk/config`,
//!   `/wechat/pay/notify`) behind the middleware, as a real shop mounts them.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;

use axum::ServiceExt;
use futures_util::future::BoxFuture;
use wechat_core::login::LoginFlow;
use wechat_core::routes::{
    OrderBackend, OrderDraft, OrderRecord, OrderStatus, ShopError, WeChatRoutes,
};
use wechat_core::routes::{Payment, RefundUpdate};
use wechat_core::{OpenId, OutTradeNo};

use crate::fixtures;

/// The body of every hello handler.
pub const HELLO: &str = "hello, world";

/// A server running in its own thread; stopped on [`stop`](Self::stop) or drop.
pub struct RunningServer {
    addr: SocketAddr,
    /// The server's threads (Linux thread ids).
    threads: Vec<u32>,
    stop: Option<Box<dyn FnOnce() + Send>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("addr", &self.addr)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl RunningServer {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The ids of the server's threads (its runtime's workers and its accepting threads; Linux
    /// thread ids, see [`cpu::threads_cpu`](crate::cpu::threads_cpu)), so that its CPU time can
    /// be told apart from that of other servers running at the same time. Empty where `/proc`
    /// cannot be read.
    pub fn threads(&self) -> &[u32] {
        &self.threads
    }

    /// Stops serving and waits for the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Runs `start`, which starts a server and returns once all its threads exist, and gives the
/// server the threads of this process that appeared meanwhile: its own, as long as servers
/// are started one at a time and nothing else starts threads then.
fn with_new_threads(
    start: impl FnOnce() -> std::io::Result<RunningServer>,
) -> std::io::Result<RunningServer> {
    let before = crate::cpu::thread_ids();
    let mut server = start()?;
    server.threads = crate::cpu::thread_ids()
        .into_iter()
        .filter(|tid| !before.contains(tid))
        .collect();
    Ok(server)
}

fn bind() -> std::io::Result<TcpListener> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// The axum hello handler.
pub async fn axum_hello() -> &'static str {
    HELLO
}

/// Serves an axum app on a multi-threaded tokio runtime with `workers` worker threads (the
/// usual production setup), with the peer address available to handlers.
///
/// # Errors
/// When the port cannot be bound or the runtime cannot start.
pub fn spawn_axum(app: axum::Router, workers: usize) -> std::io::Result<RunningServer> {
    spawn_axum_service(app, workers)
}

/// As [`spawn_axum`], for any service an axum app can be made of (e.g. a tower layer around a
/// whole `Router`).
///
/// # Errors
/// When the port cannot be bound or the runtime cannot start.
pub fn spawn_axum_service<S>(app: S, workers: usize) -> std::io::Result<RunningServer>
where
    S: tower::Service<
            http::Request<axum::body::Body>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
{
    // The runtime starts its workers when it is built.
    with_new_threads(move || {
        let listener = bind()?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .thread_name("axum-worker")
            .enable_all()
            .build()?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        type Request = http::Request<axum::body::Body>;
        let app = ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(app);
        let thread = std::thread::Builder::new()
            .name("axum-server".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    tokio::select! {
                        _ = axum::serve(listener, app) => {}
                        _ = stop_rx => {}
                    }
                });
                // Dropping the runtime here ends the connections' tasks.
            })?;
        Ok(RunningServer {
            addr,
            threads: Vec::new(),
            stop: Some(Box::new(move || {
                let _ = stop_tx.send(());
            })),
            thread: Some(thread),
        })
    })
}

/// The bare axum hello app: `GET /hello`.
pub fn axum_bare() -> axum::Router {
    axum::Router::new().route("/hello", axum::routing::get(axum_hello))
}

/// The same app behind a tower layer that does nothing (`layer_fn(|service| service)`): what
/// axum's `Router::layer` costs by itself, whatever the layer (it boxes and clones the layered
/// service per request).
pub fn axum_noop_layer() -> axum::Router {
    axum_bare().layer(tower::layer::layer_fn(|service| service))
}

/// The same app behind the login layer.
pub fn axum_layer(flow: LoginFlow) -> axum::Router {
    axum_bare().layer(wechat_tower::WeChatLoginLayer::new(flow))
}

/// The same app inside the login layer: the layer around the whole `Router` (it runs before
/// routing) rather than added with `Router::layer` (which wraps each route).
pub fn axum_wrapped(flow: LoginFlow) -> wechat_tower::WeChatLogin<axum::Router> {
    tower::Layer::layer(&wechat_tower::WeChatLoginLayer::new(flow), axum_bare())
}

/// The hello app with the WeChat routes under `/wechat`, behind the login layer.
pub fn axum_routes(flow: LoginFlow, routes: WeChatRoutes) -> axum::Router {
    axum_bare()
        .nest("/wechat", wechat_tower::router(routes))
        .layer(wechat_tower::WeChatLoginLayer::new(flow))
}

/// The actix-web hello handler.
pub async fn actix_hello() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(HELLO)
}

/// Serves the actix-web app that `$factory` (an `App` factory closure) builds, with `$workers`
/// workers (each a single-threaded runtime, actix's model), signals left to the benchmark.
/// A macro rather than a function: each app has its own `App<…>` type, and `HttpServer::new`'s
/// bounds on it are long.
macro_rules! spawn_actix {
    ($workers:expr, $factory:expr) => {{
        let workers: usize = $workers;
        let factory = $factory;
        with_new_threads(move || -> std::io::Result<RunningServer> {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            let (handle_tx, handle_rx) = std::sync::mpsc::channel();
            let thread = std::thread::Builder::new()
                .name("actix-server".to_owned())
                .spawn(move || {
                    let system = actix_web::rt::System::new();
                    let result = system.block_on(async move {
                        let mut server = actix_web::HttpServer::new(factory)
                            .workers(workers.max(1))
                            .disable_signals()
                            .shutdown_timeout(1)
                            .listen(listener)?
                            .run();
                        // The first poll starts the workers and the acceptor thread, so that
                        // they all exist once the handle is sent.
                        if let Some(ended) = futures_util::FutureExt::now_or_never(&mut server) {
                            return ended;
                        }
                        let _ = handle_tx.send(server.handle());
                        server.await
                    });
                    if let Err(e) = result {
                        eprintln!("actix server failed: {e}");
                    }
                })?;
            let handle = handle_rx
                .recv()
                .map_err(|_| std::io::Error::other("the actix server did not start"))?;
            Ok(RunningServer {
                addr,
                threads: Vec::new(),
                stop: Some(Box::new(move || {
                    // `stop` sends the command at once; its future only waits for completion,
                    // which joining the thread does.
                    drop(handle.stop(false));
                })),
                thread: Some(thread),
            })
        })
    }};
}

/// Serves the bare actix-web hello app: `GET /hello`.
///
/// # Errors
/// When the port cannot be bound or the server cannot start.
pub fn spawn_actix_bare(workers: usize) -> std::io::Result<RunningServer> {
    use actix_web::{App, web};
    spawn_actix!(workers, move || App::new()
        .route("/hello", web::get().to(actix_hello)))
}

/// Serves the same app behind the login middleware.
///
/// # Errors
/// When the port cannot be bound or the server cannot start.
pub fn spawn_actix_layer(flow: LoginFlow, workers: usize) -> std::io::Result<RunningServer> {
    use actix_web::{App, web};
    spawn_actix!(workers, move || App::new()
        .wrap(wechat_actix::WeChatLoginMiddleware::new(flow.clone()))
        .route("/hello", web::get().to(actix_hello)))
}

/// Serves the hello app and the WeChat routes under `/wechat`, behind the login middleware.
///
/// # Errors
/// When the port cannot be bound or the server cannot start.
pub fn spawn_actix_routes(
    flow: LoginFlow,
    routes: WeChatRoutes,
    workers: usize,
) -> std::io::Result<RunningServer> {
    use actix_web::{App, web};
    spawn_actix!(workers, move || App::new()
        .wrap(wechat_actix::WeChatLoginMiddleware::new(flow.clone()))
        .route("/hello", web::get().to(actix_hello))
        .service(wechat_actix::scope("/wechat", routes.clone())))
}

/// The shop behind the payment routes: one unpaid order, [`fixtures::OUT_TRADE_NO`] of
/// [`fixtures::TOTAL_FEE`] fen; recording a payment is an idempotent no-op (no database), so
/// the notify route measures verification and the route itself.
#[derive(Debug, Default)]
pub struct BenchShop;

impl OrderBackend for BenchShop {
    fn price<'a>(
        &'a self,
        _buyer: &'a OpenId,
        _request: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<OrderDraft, ShopError>> {
        Box::pin(async {
            Ok(OrderDraft::new(
                fixtures::OUT_TRADE_NO,
                "Coffee",
                fixtures::TOTAL_FEE,
            ))
        })
    }

    fn record_created<'a>(
        &'a self,
        _buyer: &'a OpenId,
        _draft: &'a OrderDraft,
        _prepay_id: &'a str,
    ) -> BoxFuture<'a, Result<(), ShopError>> {
        Box::pin(async { Ok(()) })
    }

    fn on_paid<'a>(&'a self, _payment: &'a Payment) -> BoxFuture<'a, Result<(), ShopError>> {
        Box::pin(async { Ok(()) })
    }

    fn on_refund<'a>(&'a self, _refund: &'a RefundUpdate) -> BoxFuture<'a, Result<(), ShopError>> {
        Box::pin(async { Ok(()) })
    }

    fn order<'a>(
        &'a self,
        out_trade_no: &'a OutTradeNo,
    ) -> BoxFuture<'a, Result<Option<OrderRecord>, ShopError>> {
        Box::pin(async move {
            Ok(
                (out_trade_no.as_str() == fixtures::OUT_TRADE_NO).then(|| OrderRecord {
                    out_trade_no: out_trade_no.clone(),
                    owner: OpenId::new(fixtures::OPENID),
                    total_fee: fixtures::TOTAL_FEE,
                    status: OrderStatus::Unpaid,
                }),
            )
        })
    }
}

/// The shop as the routes hold it.
pub fn bench_shop() -> Arc<dyn OrderBackend> {
    Arc::new(BenchShop)
}
