//! The demos' `GET /metrics` page: wechat-core's metrics in the Prometheus text format.
//!
//! wechat-core records through the `metrics` facade and installs nothing; the demos install
//! `metrics-exporter-prometheus`'s recorder once per process ([`prometheus`]) and serve
//! [`render_metrics`] either on the app's own listener, outside the login (the default), or on a
//! listener of its own ([`MetricsServer`], `METRICS_LISTEN`), as a deployment would keep it
//! internal.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{DemoError, Result};

/// The path of the metrics page (excluded from login).
pub const METRICS_PATH: &str = "/metrics";

/// The `Content-Type` of the Prometheus text format.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Histogram buckets in seconds, for WeChat calls and refresh-lock waits.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus recorder, installed (with wechat-core's metric descriptions) by the
/// first call; every demo started in the process shares it, since a process has one global
/// recorder. `None` when another recorder was installed first (then the page says so).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let installed = PrometheusBuilder::new()
                .set_buckets(&BUCKETS)
                .and_then(PrometheusBuilder::install_recorder);
            match installed {
                Ok(handle) => {
                    wechat_core::describe_metrics();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot install the Prometheus recorder; /metrics stays empty");
                    None
                }
            }
        })
        .as_ref()
}

/// The metrics page's body: every metric recorded so far in the Prometheus text format.
pub fn render_metrics() -> String {
    match prometheus() {
        Some(handle) => {
            // No exporter task runs the upkeep (histogram buckets are drained here instead).
            handle.run_upkeep();
            handle.render()
        }
        None => "# another metrics recorder is installed in this process\n".to_owned(),
    }
}

/// The metrics page on a listener of its own (`METRICS_LISTEN`): answers `GET /metrics`, and
/// 404 to anything else.
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// The largest request head the metrics listener reads.
const MAX_REQUEST_HEAD: usize = 8 * 1024;

impl MetricsServer {
    /// Binds `addr` (port 0: a free port) and serves the page in the background.
    ///
    /// # Errors
    /// [`DemoError::Io`] naming the address.
    pub async fn start(addr: SocketAddr) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            DemoError::io(
                format!(
                    "cannot listen on {addr} for /metrics (set METRICS_LISTEN to another address)"
                ),
                e,
            )
        })?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| DemoError::io(format!("cannot read the address bound for {addr}"), e))?;
        prometheus();
        let (shutdown, mut stop) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stop => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            tokio::spawn(answer(stream));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "metrics listener: accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    },
                }
            }
        });
        tracing::info!(%local_addr, "metrics listening");
        Ok(Self {
            local_addr,
            shutdown,
            task,
        })
    }

    /// The address bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting connections.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }
}

/// Answers one connection: the page for `GET /metrics`, 404 or 405 otherwise; then closes it.
async fn answer(mut stream: tokio::net::TcpStream) {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST_HEAD {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        true
    })
    .await;
    if !matches!(read, Ok(true)) {
        return;
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, target) = (parts.next(), parts.next());
    let path = target.map(|t| t.split(|&b| b == b'?').next().unwrap_or_default());
    let (status, content_type, body) = match (method, path) {
        (Some(b"GET"), Some(p)) if p == METRICS_PATH.as_bytes() => {
            ("200 OK", METRICS_CONTENT_TYPE, render_metrics())
        }
        (Some(_), Some(p)) if p == METRICS_PATH.as_bytes() => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "method not allowed\n".to_owned(),
        ),
        _ => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found\n".to_owned(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
