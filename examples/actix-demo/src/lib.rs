//! The actix-web demo shop: WeChat login, JS-SDK and WeChat Pay with one middleware and one
//! scope.
//!
//! [`app`] is the whole integration, in the shape an existing actix-web app would add it:
//!
//! ```text
//! App::new()
//!     .wrap(WeChatLoginMiddleware::new(login_flow))        // "log in with WeChat"
//!     .route("/", web::get().to(shop_page))                // uses the WeChatUser extractor
//!     .service(wechat_actix::scope("/wechat", routes))     // JS-SDK config + WeChat Pay routes
//! ```
//!
//! Everything framework-independent (settings, the SQLite order store, the page, the embedded
//! wechat-sim) comes from the `demo-shop` crate, shared with the axum demo: both demos have the
//! same environment variables, routes, page and JSON. [`start`] runs the demo from the current
//! tokio runtime (actix-web's workers run on their own threads); `cargo run -p actix-demo` runs
//! it until Ctrl-C.
//!
//! ```no_run
//! # async fn run() -> demo_shop::Result<()> {
//! let demo = actix_demo::start(demo_shop::Settings::from_env()?).await?;
//! println!("{}", demo.shop().startup_message("actix-web"));
//! demo.shutdown().await;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServerHandle, Service, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{App, HttpResponse, HttpServer, web};
use demo_shop::{
    ASSETS_PREFIX, DemoError, HEALTH_PATH, METRICS_CONTENT_TYPE, METRICS_PATH, PAGE_CONTENT_TYPE,
    Page, Settings, Shop, WECHAT_PREFIX,
};
use tokio::task::JoinHandle;
use wechat_actix::{WeChatLoginMiddleware, WeChatUser};
use wechat_core::login::LoginFlow;
use wechat_core::routes::WeChatRoutes;

/// How many actix-web workers (each a thread with its own single-threaded runtime) serve the
/// demo.
const WORKERS: usize = 2;

/// How long open requests may take to finish at shutdown.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// What the application needs from the [`Shop`], cloned into each actix-web worker (all of it is
/// shared: `Arc`s inside).
#[derive(Debug, Clone)]
pub struct AppParts {
    login_flow: LoginFlow,
    routes: WeChatRoutes,
    page: web::Data<Page>,
    serves_metrics: bool,
}

impl AppParts {
    /// The parts of `shop`.
    pub fn new(shop: &Shop) -> Self {
        Self {
            login_flow: shop.login_flow().clone(),
            routes: shop.routes().clone(),
            page: web::Data::new(shop.page().clone()),
            serves_metrics: shop.serves_metrics(),
        }
    }
}

/// The actix-web application: the page at `/`, the assets, the health check, the metrics page
/// (unless `METRICS_LISTEN` moved it), the WeChat routes under `/wechat`, all behind the WeChat
/// login middleware. Call it from the `HttpServer::new`
/// factory (once per worker): `HttpServer::new(move || app(parts.clone()))`.
pub fn app(
    parts: AppParts,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .wrap(WeChatLoginMiddleware::new(parts.login_flow))
        .app_data(parts.page)
        .route("/", web::get().to(shop_page))
        .route(HEALTH_PATH, web::get().to(health))
        .configure(|config| {
            if parts.serves_metrics {
                config.route(METRICS_PATH, web::get().to(metrics));
            }
        })
        .route(&format!("{ASSETS_PREFIX}/{{name}}"), web::get().to(asset))
        .service(wechat_actix::scope(WECHAT_PREFIX, parts.routes))
}

/// `GET /`: the shop page for the logged-in user (the middleware sends anyone else to WeChat
/// first).
async fn shop_page(page: web::Data<Page>, user: WeChatUser) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, PAGE_CONTENT_TYPE))
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(page.render(&user))
}

/// `GET /metrics`: the Prometheus text page, without login.
async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, METRICS_CONTENT_TYPE))
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(demo_shop::render_metrics())
}

/// `GET /health`: `ok`, without login.
async fn health() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
        .body("ok")
}

/// `GET /assets/{name}`: the page's script and images, without login.
async fn asset(name: web::Path<String>) -> HttpResponse {
    match demo_shop::asset(&name) {
        Some(asset) => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, asset.content_type))
            .insert_header((CACHE_CONTROL, "no-cache"))
            .body(asset.body),
        None => HttpResponse::NotFound()
            .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
            .body("not found"),
    }
}

/// A demo serving in the background: its URL, its parts, and how to stop it.
#[derive(Debug)]
pub struct RunningDemo {
    shop: Shop,
    local_addr: SocketAddr,
    handle: ServerHandle,
    in_flight: InFlight,
    server: JoinHandle<std::io::Result<()>>,
}

/// Counts the requests being handled, so that shutdown waits for them and not for idle
/// keep-alive connections (which actix-web's graceful stop would wait on until its timeout).
#[derive(Debug, Clone, Default)]
struct InFlight(Arc<AtomicUsize>);

/// One request being handled; counted until dropped.
struct InFlightGuard(Arc<AtomicUsize>);

impl InFlight {
    fn enter(&self) -> InFlightGuard {
        self.0.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(Arc::clone(&self.0))
    }

    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl RunningDemo {
    /// The URL to open (the public URL: `WECHAT_PUBLIC_URL`, or `http://` + the bound address),
    /// without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.shop.public_url()
    }

    /// The address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Everything built from the settings: the embedded simulator
    /// ([`Shop::sim`]), the SQLite order store ([`Shop::store`]), the startup message
    /// ([`Shop::startup_message`])…
    pub fn shop(&self) -> &Shop {
        &self.shop
    }

    /// Whether the server has stopped (it only does on a fatal error or shutdown).
    pub fn is_finished(&self) -> bool {
        self.server.is_finished()
    }

    /// Stops accepting connections, lets open requests finish (at most 5 s), then stops the
    /// embedded simulator. Paid orders are already durable in SQLite.
    pub async fn shutdown(self) {
        let Self {
            shop,
            handle,
            in_flight,
            mut server,
            ..
        } = self;
        handle.pause().await;
        let deadline = tokio::time::Instant::now() + SHUTDOWN_TIMEOUT;
        while in_flight.count() > 0 {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!("open requests did not finish within 5 s; stopping anyway");
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // No request is open any more: close the idle keep-alive connections at once.
        handle.stop(false).await;
        match tokio::time::timeout(SHUTDOWN_TIMEOUT, &mut server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::error!(error = %e, "the actix-web server failed"),
            Ok(Err(e)) => tracing::error!(error = %e, "the actix-web server task failed"),
            Err(_) => {
                tracing::warn!("the actix-web server did not stop within 5 s");
                server.abort();
            }
        }
        shop.shutdown().await;
    }
}

/// Starts the demo: binds `settings.listen` first (so that the public URL has the real port,
/// also for `127.0.0.1:0`), builds the [`Shop`] (starting the embedded wechat-sim when there is
/// no `WECHAT_APPID`), and serves [`app`] in the background. Must be called from a tokio
/// runtime.
///
/// # Errors
/// [`DemoError`] naming what is misconfigured or unavailable (address in use, database, Redis…).
pub async fn start(settings: Settings) -> Result<RunningDemo, DemoError> {
    let listener = demo_shop::bind(settings.listen)?;
    let local_addr = listener.local_addr().map_err(|source| DemoError::Io {
        what: format!("cannot read the address bound for {}", settings.listen),
        source,
    })?;
    let shop = Shop::start(&settings, local_addr).await?;
    let parts = AppParts::new(&shop);
    let in_flight = InFlight::default();
    let counter = in_flight.clone();
    let server = HttpServer::new(move || {
        let counter = counter.clone();
        app(parts.clone()).wrap_fn(move |req, service| {
            let guard = counter.enter();
            let response = service.call(req);
            async move {
                let response = response.await;
                drop(guard);
                response
            }
        })
    })
    .workers(WORKERS)
    .disable_signals()
    .shutdown_timeout(SHUTDOWN_TIMEOUT.as_secs())
    .listen(listener)
    .map_err(|source| DemoError::Io {
        what: format!("cannot serve on {local_addr}"),
        source,
    })?
    .run();
    let handle = server.handle();
    let server = tokio::spawn(server);
    tracing::info!(url = shop.public_url(), %local_addr, "actix-web demo listening");
    Ok(RunningDemo {
        shop,
        local_addr,
        handle,
        in_flight,
        server,
    })
}

impl demo_shop::cli::RunningApp for RunningDemo {
    fn shop(&self) -> &Shop {
        RunningDemo::shop(self)
    }

    async fn shutdown(self) {
        RunningDemo::shutdown(self).await;
    }
}
