//! The axum demo shop: WeChat login, JS-SDK and WeChat Pay with one layer and one router.
//!
//! [`app`] is the whole integration, in the shape an existing axum app would add it:
//!
//! ```text
//! Router::new()
//!     .route("/", get(shop_page))                      // uses the WeChatUser extractor
//!     .nest("/wechat", wechat_tower::router(routes))   // JS-SDK config + WeChat Pay routes
//!     .layer(WeChatLoginLayer::new(login_flow))             // "log in with WeChat"
//! ```
//!
//! Everything framework-independent (settings, the SQLite order store, the page, the embedded
//! wechat-sim) comes from the `demo-shop` crate, shared with the actix demo. [`start`] runs the
//! demo in the current tokio runtime; `cargo run -p axum-demo` runs it until Ctrl-C.
//!
//! ```no_run
//! # async fn run() -> demo_shop::Result<()> {
//! let demo = axum_demo::start(demo_shop::Settings::from_env()?).await?;
//! println!("open {}/", demo.base_url());
//! demo.shutdown().await;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use demo_shop::{
    ASSETS_PREFIX, DemoError, HEALTH_PATH, METRICS_CONTENT_TYPE, METRICS_PATH, OrderStore,
    PAGE_CONTENT_TYPE, Page, Settings, Shop, WECHAT_PREFIX,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wechat_sim::RunningSim;
use wechat_tower::{WeChatLoginLayer, WeChatUser};

/// The axum application for `shop`: the page at `/`, the assets, the health check, the metrics
/// page (unless `METRICS_LISTEN` moved it), the WeChat routes under `/wechat`, all behind the
/// WeChat login layer. Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()` (the order route sends the buyer's IP to
/// WeChat).
pub fn app(shop: &Shop) -> Router {
    let mut router = Router::new();
    if shop.serves_metrics() {
        router = router.route(METRICS_PATH, get(metrics));
    }
    router
        .route("/", get(shop_page))
        .route(HEALTH_PATH, get(health))
        .route(&format!("{ASSETS_PREFIX}/{{name}}"), get(asset))
        .nest(WECHAT_PREFIX, wechat_tower::router(shop.routes().clone()))
        .layer(WeChatLoginLayer::new(shop.login_flow().clone()))
        .with_state(shop.page().clone())
}

/// `GET /`: the shop page for the logged-in user (the layer sends anyone else to WeChat first).
async fn shop_page(State(page): State<Page>, user: WeChatUser) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(PAGE_CONTENT_TYPE),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        page.render(&user),
    )
        .into_response()
}

/// `GET /metrics`: the Prometheus text page, without login.
async fn metrics() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(METRICS_CONTENT_TYPE),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        demo_shop::render_metrics(),
    )
        .into_response()
}

/// `GET /health`: `ok`, without login.
async fn health() -> &'static str {
    "ok"
}

/// `GET /assets/{name}`: the page's script and images, without login.
async fn asset(Path(name): Path<String>) -> Response {
    match demo_shop::asset(&name) {
        Some(asset) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(asset.content_type),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            asset.body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// A demo serving in the background: its URL, its parts, and how to stop it.
#[derive(Debug)]
pub struct RunningDemo {
    shop: Shop,
    local_addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<std::io::Result<()>>,
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

    /// The embedded simulator, when no `WECHAT_APPID` was configured.
    pub fn sim(&self) -> Option<&RunningSim> {
        self.shop.sim()
    }

    /// The SQLite order store.
    pub fn store(&self) -> &OrderStore {
        self.shop.store()
    }

    /// Everything built from the settings.
    pub fn shop(&self) -> &Shop {
        &self.shop
    }

    /// What to print once started: the URL to open and where WeChat is.
    pub fn startup_message(&self) -> String {
        self.shop.startup_message("axum")
    }

    /// Whether the server task has stopped (it only does on an accept error or shutdown).
    pub fn is_finished(&self) -> bool {
        self.server.is_finished()
    }

    /// Stops accepting connections, lets open requests finish (at most 5 s), then stops the
    /// embedded simulator. Paid orders are already durable in SQLite.
    pub async fn shutdown(self) {
        let Self {
            shop,
            shutdown,
            mut server,
            ..
        } = self;
        let _ = shutdown.send(());
        match tokio::time::timeout(Duration::from_secs(5), &mut server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::error!(error = %e, "the axum server failed"),
            Ok(Err(e)) => tracing::error!(error = %e, "the axum server task failed"),
            Err(_) => {
                tracing::warn!("open requests did not finish within 5 s; stopping anyway");
                server.abort();
            }
        }
        shop.shutdown().await;
    }
}

/// Starts the demo: binds `settings.listen` first (so that the public URL has the real port,
/// also for `127.0.0.1:0`), builds the [`Shop`] (starting the embedded wechat-sim when there is
/// no `WECHAT_APPID`), and serves [`app`] in the background.
///
/// # Errors
/// [`DemoError`] naming what is misconfigured or unavailable (address in use, database, Redis…).
pub async fn start(settings: Settings) -> Result<RunningDemo, DemoError> {
    let std_listener = demo_shop::bind(settings.listen)?;
    let local_addr = std_listener.local_addr().map_err(|source| DemoError::Io {
        what: format!("cannot read the address bound for {}", settings.listen),
        source,
    })?;
    let listener =
        tokio::net::TcpListener::from_std(std_listener).map_err(|source| DemoError::Io {
            what: format!("cannot serve on {local_addr}"),
            source,
        })?;
    let shop = Shop::start(&settings, local_addr).await?;
    let service = app(&shop).into_make_service_with_connect_info::<SocketAddr>();
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, service)
            .with_graceful_shutdown(async {
                let _ = stop.await;
            })
            .await
    });
    tracing::info!(url = shop.public_url(), %local_addr, "axum demo listening");
    Ok(RunningDemo {
        shop,
        local_addr,
        shutdown,
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_readme_documents_every_variable() {
        let readme = include_str!("../README.md");
        assert!(readme.contains("cargo run -p axum-demo\n"));
        for (name, _) in demo_shop::ENV_VARS {
            assert!(
                readme.contains(&format!("| `{name}` |")),
                "{name} is not in the README's table"
            );
        }
    }
}
