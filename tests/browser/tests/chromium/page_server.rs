//! A one-page web server on 127.0.0.1 for testing the browser against the simulator alone:
//! it serves the HTML the test gives it at every path (so the page URL can carry any query),
//! and acknowledges payment notifications at `POST /notify`.

use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::response::Html;
use axum::routing::{any, post};

/// A running page server; stops when dropped.
pub(crate) struct PageServer {
    origin: String,
    html: Arc<Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl PageServer {
    /// Starts serving (an empty page until [`PageServer::serve`] is called).
    pub(crate) async fn start() -> PageServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let origin = format!("http://{}", listener.local_addr().expect("local address"));
        let html = Arc::new(Mutex::new(String::from(
            "<!doctype html><title>empty</title>",
        )));
        let shared = Arc::clone(&html);
        let app = Router::new()
            .route(
                "/notify",
                post(|| async {
                    "<xml><return_code><![CDATA[SUCCESS]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>"
                }),
            )
            .fallback(any(move || {
                let html = shared.lock().unwrap_or_else(PoisonError::into_inner).clone();
                async move { Html(html) }
            }));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        PageServer { origin, html, task }
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }

    /// `127.0.0.1:PORT`, as the simulator's domain lists want it.
    pub(crate) fn authority(&self) -> &str {
        self.origin.trim_start_matches("http://")
    }

    /// Serves `html` from now on, at every path.
    pub(crate) fn serve(&self, html: String) {
        *self.html.lock().unwrap_or_else(PoisonError::into_inner) = html;
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
