//! Serving connections: an accept loop for the plain listener and one HTTP/1 connection task
//! per socket (plain or TLS), with graceful shutdown and the hook that `/_sim/fail`'s
//! `fault=drop` uses to close a connection without answering.
//!
//! The simulator serves each connection itself (rather than through `axum::serve`) so that a
//! handler can drop the very connection its request came on: the connection future is then
//! dropped before any byte of a response is written, and the client sees the socket close
//! (a transport error, never a status).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tower::ServiceExt as _;

use crate::state::Sim;

/// The connection a request came on, in the request's extensions.
#[derive(Debug, Clone)]
pub(crate) struct Connection {
    /// Notified to drop the connection.
    drop: Arc<Notify>,
    /// Whether the connection is TLS (the simulator's own origin is then `https://…`).
    pub(crate) tls: bool,
}

impl Connection {
    /// Closes this connection at once, without writing a response; never completes (the
    /// connection task drops the request's future).
    pub(crate) async fn drop_now(&self) -> Response {
        self.drop.notify_one();
        std::future::pending().await
    }
}

/// Serves one connection with `app` until it ends, is dropped through [`Connection`], or
/// `shutdown` turns true (then in-flight requests finish and the connection closes).
/// `extension` is added to every request (the TLS listener's client certificate).
pub(crate) async fn serve_connection<I, E>(
    io: I,
    remote: SocketAddr,
    tls: bool,
    extension: E,
    app: Router,
    mut shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    E: Clone + Send + Sync + 'static,
{
    let connection = Connection {
        drop: Arc::new(Notify::new()),
        tls,
    };
    let dropped = Arc::clone(&connection.drop);
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let extensions = req.extensions_mut();
        extensions.insert(extension.clone());
        extensions.insert(ConnectInfo::<SocketAddr>(remote));
        extensions.insert(connection.clone());
        app.clone().oneshot(req)
    });
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let mut draining = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%remote, error = %e, "connection ended with an error");
                }
                return;
            }
            () = dropped.notified() => {
                tracing::debug!(%remote, "connection dropped without an answer (fault=drop)");
                return;
            }
            () = stopped(&mut shutdown), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Accepts connections on `listener` and serves each with `app`, until `shutdown` turns true;
/// then waits for the open connections to finish.
pub(crate) async fn serve(listener: TcpListener, app: Router, mut shutdown: watch::Receiver<bool>) {
    let for_connections = shutdown.clone();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, remote)) => {
                    // Small answers: do not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve_connection(
                        stream,
                        remote,
                        false,
                        (),
                        app.clone(),
                        for_connections.clone(),
                    ));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = stopped(&mut shutdown) => break,
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// `app` with every answer's `Date` header taken from the simulated clock (so that a clock moved
/// forward with `POST /_sim/clock/advance` shows in `Date`, as a server whose clock is off would),
/// instead of the wall-clock one hyper adds.
pub(crate) fn with_simulated_date(app: Router, sim: Arc<Sim>) -> Router {
    app.layer(axum::middleware::map_response_with_state(sim, date_header))
}

/// Sets `Date` (IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`) from the simulated clock.
async fn date_header(State(sim): State<Arc<Sim>>, mut response: Response) -> Response {
    if let Some(date) = http_date(sim.now_secs()) {
        response.headers_mut().insert(header::DATE, date);
    }
    response
}

/// `secs` (unix time) as an HTTP date; `None` beyond what a date can hold.
fn http_date(secs: u64) -> Option<HeaderValue> {
    let time = time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).ok()?).ok()?;
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    HeaderValue::from_str(&time.format(&format).ok()?).ok()
}

/// Completes once `shutdown` is true, or its sender is gone.
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_imf_fixdates() {
        assert_eq!(
            http_date(784_111_777).unwrap(),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            http_date(1_764_633_600).unwrap(),
            "Tue, 02 Dec 2025 00:00:00 GMT"
        );
        assert!(http_date(u64::MAX).is_none());
    }
}
