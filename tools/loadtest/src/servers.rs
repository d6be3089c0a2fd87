//! The servers the load benchmark drives, each on 127.0.0.1 (ephemeral port) in its own OS
//! thread with its own runtime and a fixed number of worker threads:
//!
//! - axum and actix-web "hello" apps ([`wechat_benches::apps`]), bare and behind the login
//!   middleware (`WeChatLoginLayer`, `WeChatLoginMiddleware`): the two apps of a framework differ
//!   only by the middleware;
//! - axum and actix-web apps with the mounted WeChat routes (`/wechat/jssdk/config`,
//!   `/wechat/pay/notify`) behind the middleware, as a real shop mounts them.

use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;

use axum::ServiceExt;
use wechat_benches::apps::actix_hello;
use wechat_core::login::LoginFlow;
use wechat_core::routes::WeChatRoutes;

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
