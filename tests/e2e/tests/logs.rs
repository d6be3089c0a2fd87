//! No secret reaches the logs. The whole end-to-end suite runs, for both demos, with every
//! target logging at `TRACE` into one buffer (the demos, wechat-core, the adapters, the embedded
//! simulator, reqwest and hyper); the buffer is then searched for the simulator's AppSecret, the
//! merchant's API v2 key and APIv3 key, any private key, and anything shaped like the access
//! tokens, jsapi_tickets, OAuth tokens and codes the simulator issued.
//!
//! The test's own browser (`wechat-test-support`, its own cookie jar) logs nothing of the
//! cookies it keeps. A `main` of its own (`harness = false`), so that the search runs after
//! every scenario.

#[allow(dead_code, unused_imports)]
#[path = "actix.rs"]
mod actix;
#[allow(dead_code, unused_imports)]
#[path = "axum.rs"]
mod axum;

use std::io::Write as _;
use std::sync::{Arc, Mutex};

use demo_shop::sim::{SIM_APIV3_KEY, SIM_PAY_KEY, SIM_SECRET};

/// Everything logged, as text.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn main() {
    let capture = Capture::default();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_ansi(false)
        .with_writer(capture.clone())
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        wechat_e2e::e2e_run_all!(axum::Axum).await;
        wechat_e2e::e2e_run_all!(actix::Actix).await;
    });
    drop(runtime);

    let logs =
        String::from_utf8_lossy(&capture.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    let lines = logs.lines().count();
    // The search means something only if the suite logged what it did.
    for expected in [
        "wechat_core",
        "wechat_sim",
        "notification",
        "/cgi-bin/",
        "/v3/pay/",
        "/pay/unifiedorder",
    ] {
        assert!(
            logs.contains(expected),
            "the logs never mention {expected:?} ({lines} lines)"
        );
    }
    // The search finds what it looks for.
    let token: String = "aB3".chars().cycle().take(128).collect();
    assert!(credential_shaped(&format!("GET /x?access_token={token}&y=1")).is_some());
    assert!(credential_shaped("sign=9A0A8659F005D6984697E2CA0A9CF3B7").is_none());
    assert!(credential_shaped("code=Zq8xQm1vLr0pTt2sUu3wVv4yXx5zAa6b").is_some());
    assert!(credential_shaped("mac.ijVRqvHdjj6vnSKgOilDQu6wUA1p7Y4K_w-nxZa3mzI;").is_none());
    let mut leaks = Vec::new();
    for (name, secret) in [
        ("the AppSecret", SIM_SECRET),
        ("the API v2 key", SIM_PAY_KEY),
        ("the APIv3 key", SIM_APIV3_KEY),
        ("a private key", "PRIVATE KEY"),
    ] {
        if let Some(line) = logs.lines().find(|line| line.contains(secret)) {
            leaks.push(format!("{name} in: {line}"));
        }
    }
    for line in logs.lines() {
        if let Some(token) = credential_shaped(line) {
            leaks.push(format!(
                "a simulator credential ({} characters) {token:?} in: {line}",
                token.len()
            ));
        }
    }
    assert!(
        leaks.is_empty(),
        "secrets in the logs:\n{}",
        leaks.join("\n")
    );
    let _ = writeln!(
        std::io::stderr(),
        "logs: {lines} lines of the whole e2e suite (both demos, every target at TRACE) hold no secret"
    );
}

/// A run of ASCII letters and digits shaped like a credential the simulator issues: 128
/// (access token), 96 (OAuth access and refresh tokens) or 86 (jsapi_ticket) characters, or
/// 32 (OAuth code) with both cases and a letter beyond `f`, so that hex digests are not taken
/// for codes.
///
/// Only whole words count: a run inside a longer base64 or base64url value (a signature, a
/// cookie's MAC) is not one of these credentials, so words are split at characters outside
/// those alphabets.
fn credential_shaped(line: &str) -> Option<&str> {
    line.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '-' | '_')))
        .filter(|word| word.bytes().all(|b| b.is_ascii_alphanumeric()))
        .find(|run| match run.len() {
            128 | 96 | 86 => true,
            32 => {
                run.bytes().any(|b| b.is_ascii_uppercase())
                    && run.bytes().any(|b| b.is_ascii_lowercase())
                    && run
                        .bytes()
                        .any(|b| b.is_ascii_alphabetic() && b.to_ascii_lowercase() > b'f')
            }
            _ => false,
        })
}
