//! The one HTTP layer every WeChat call goes through: timeouts, no redirects, JSON
//! `errcode`/`errmsg` decoding into [`Error`], bounded retries of `-1` (system busy), 5xx,
//! dropped connections and timeouts for the calls that may be repeated, and a
//! tracing span per call that names the endpoint and never the query string (which carries
//! secrets and tokens), and `wechat_api_requests_total`/`wechat_api_request_duration_seconds`
//! per attempt.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::{ApiErrorKind, Config, Error, Result};

/// How many times a call answered with `-1` (system busy) is sent in all.
const BUSY_ATTEMPTS: u32 = 3;
/// The wait before the first retry after `-1`; doubled for each further retry.
const BUSY_BACKOFF: Duration = Duration::from_millis(200);
/// The largest JSON body accepted from WeChat.
const MAX_JSON_BODY: usize = 1 << 20;

/// Builds the `reqwest::Client` used for WeChat: redirects off, the configured timeouts.
///
/// # Errors
/// [`Error::Config`] when the TLS backend cannot be initialised.
pub fn build_http_client(config: &Config) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(config.timeout())
        .connect_timeout(config.connect_timeout())
        .user_agent(concat!("wechat-rs/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            Error::config(
                "build_http_client",
                format!("cannot build the HTTP client: {}", e.without_url()),
            )
        })
}

/// Whether a call may be repeated when WeChat answers `-1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnBusy {
    /// Repeat with bounded backoff (idempotent calls).
    Retry,
    /// Return [`ApiErrorKind::SystemBusy`] at once (e.g. a code exchange: repeating a used code gives 40163).
    Fail,
}

/// What a JSON call looks like: endpoint path, method and body.
pub(crate) struct JsonCall<'a, B: Serialize + ?Sized = ()> {
    /// The base URL (no trailing slash).
    pub(crate) base: &'a str,
    /// The endpoint path, e.g. `/cgi-bin/token`; also the name used in errors and logs.
    pub(crate) endpoint: &'static str,
    /// Query parameters (may hold secrets: never logged).
    pub(crate) query: &'a [(&'a str, &'a str)],
    /// A JSON body: the call is a POST when present.
    pub(crate) body: Option<&'a B>,
    /// Retry policy for `-1`.
    pub(crate) on_busy: OnBusy,
}

/// Sends a JSON call and decodes the reply into `T`, mapping WeChat's errcodes to [`Error`].
pub(crate) async fn call_json<T, B>(client: &reqwest::Client, call: JsonCall<'_, B>) -> Result<T>
where
    T: DeserializeOwned,
    B: Serialize + ?Sized,
{
    let span = tracing::debug_span!(
        "wechat_call",
        endpoint = call.endpoint,
        errcode = tracing::field::Empty
    );
    async {
        let mut attempt = 1;
        loop {
            let (result, transient) = send_once(client, &call).await;
            match &result {
                Err(e) if transient && call.on_busy == OnBusy::Retry && attempt < BUSY_ATTEMPTS => {
                    let wait = BUSY_BACKOFF * 2u32.pow(attempt - 1);
                    tracing::warn!(
                        endpoint = call.endpoint,
                        attempt,
                        ?wait,
                        error = %e,
                        "WeChat busy or unreachable, retrying"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                _ => return result,
            }
        }
    }
    .instrument(span)
    .await
}

/// One attempt, and whether its failure is transient: `-1` (busy), a gateway's 5xx, a dropped
/// connection or a timeout.
async fn send_once<T, B>(client: &reqwest::Client, call: &JsonCall<'_, B>) -> (Result<T>, bool)
where
    T: DeserializeOwned,
    B: Serialize + ?Sized,
{
    let mut status = None;
    let started = tokio::time::Instant::now();
    let result = attempt(client, call, &mut status).await;
    crate::metrics::record_api_call(
        call.endpoint,
        crate::metrics::outcome_of(&result),
        started.elapsed(),
    );
    let transient = match &result {
        Err(Error::Http { .. }) => true,
        Err(Error::WeChat(api)) if api.kind == ApiErrorKind::SystemBusy => true,
        Err(_) => status.is_some_and(|s: reqwest::StatusCode| s.is_server_error()),
        Ok(_) => false,
    };
    (result, transient)
}

async fn attempt<T, B>(
    client: &reqwest::Client,
    call: &JsonCall<'_, B>,
    seen_status: &mut Option<reqwest::StatusCode>,
) -> Result<T>
where
    T: DeserializeOwned,
    B: Serialize + ?Sized,
{
    let url = format!("{}{}", call.base, call.endpoint);
    let mut request = match call.body {
        Some(body) => client.post(&url).json(body),
        None => client.get(&url),
    };
    if !call.query.is_empty() {
        request = request.query(call.query);
    }
    let http_err = |source: reqwest::Error| Error::Http {
        endpoint: call.endpoint,
        source: source.without_url(),
    };
    let mut response = request.send().await.map_err(http_err)?;
    let status = response.status();
    *seen_status = Some(status);
    let body = read_capped(&mut response, MAX_JSON_BODY, call.endpoint).await?;
    decode_json(call.endpoint, status, &body)
}

/// Reads a reply's body chunk by chunk, refusing it as soon as it passes `max` bytes (a reply
/// that claims no length, or lies about it, is never buffered beyond the cap).
pub(crate) async fn read_capped(
    response: &mut reqwest::Response,
    max: usize,
    endpoint: &'static str,
) -> Result<Vec<u8>> {
    let status = response.status();
    let too_large = || Error::UnexpectedResponse {
        endpoint,
        detail: format!("HTTP {status}, body larger than {max} bytes"),
    };
    if response
        .content_length()
        .is_some_and(|length| length > max as u64)
    {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|source| Error::Http {
        endpoint,
        source: source.without_url(),
    })? {
        if bytes.len() + chunk.len() > max {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[derive(serde::Deserialize)]
struct ErrorProbe {
    #[serde(default)]
    errcode: Option<i64>,
    #[serde(default)]
    errmsg: Option<String>,
}

/// Decodes a WeChat JSON reply: a non-zero `errcode` becomes an [`Error`]; anything else is `T`.
pub(crate) fn decode_json<T: DeserializeOwned>(
    endpoint: &'static str,
    status: reqwest::StatusCode,
    body: &[u8],
) -> Result<T> {
    let probe: ErrorProbe =
        serde_json::from_slice(body).map_err(|e| Error::UnexpectedResponse {
            endpoint,
            detail: format!("HTTP {status}, not JSON ({e})"),
        })?;
    if let Some(errcode) = probe.errcode.filter(|c| *c != 0) {
        let errmsg = probe.errmsg.unwrap_or_default();
        tracing::Span::current().record("errcode", errcode);
        tracing::warn!(endpoint, errcode, errmsg = %errmsg, "WeChat returned an error");
        return Err(Error::from_errcode(endpoint, errcode, &errmsg));
    }
    if !status.is_success() {
        return Err(Error::UnexpectedResponse {
            endpoint,
            detail: format!("HTTP {status}"),
        });
    }
    serde_json::from_slice(body).map_err(|e| Error::UnexpectedResponse {
        endpoint,
        detail: format!("missing or malformed fields: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Token {
        access_token: String,
    }

    #[test]
    fn decodes_success_and_errors() {
        let ok: Token = decode_json(
            "/cgi-bin/token",
            reqwest::StatusCode::OK,
            br#"{"access_token":"T","expires_in":7200}"#,
        )
        .unwrap();
        assert_eq!(ok.access_token, "T");
        let ok0: Token = decode_json(
            "/x",
            reqwest::StatusCode::OK,
            br#"{"errcode":0,"errmsg":"ok","access_token":"T"}"#,
        )
        .unwrap();
        assert_eq!(ok0.access_token, "T");
        let err = decode_json::<Token>(
            "/cgi-bin/token",
            reqwest::StatusCode::OK,
            br#"{"errcode":45009,"errmsg":"reach max api daily quota limit rid: 1"}"#,
        )
        .unwrap_err();
        assert_eq!(err.api_kind(), Some(&ApiErrorKind::QuotaExceeded));
        let err = decode_json::<Token>("/x", reqwest::StatusCode::OK, b"<html>").unwrap_err();
        assert!(matches!(
            err,
            Error::UnexpectedResponse { endpoint: "/x", .. }
        ));
        let err = decode_json::<Token>("/x", reqwest::StatusCode::OK, br#"{"foo":1}"#).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }

    /// A server that answers every request with `head` (status line and headers) and then
    /// streams `chunks` chunks of 64 KiB of JSON whitespace, counting what it managed to send.
    async fn streaming_server(
        head: &'static str,
        chunks: usize,
    ) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = sent.clone();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
            for _ in 0..chunks {
                if stream.write_all(chunk.as_bytes()).await.is_err() {
                    return;
                }
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            let _ = stream.write_all(b"0\r\n\r\n").await;
        });
        (base, sent)
    }

    #[tokio::test]
    async fn oversized_replies_are_refused_while_streaming() {
        // 64 MiB announced by nothing (chunked): refused after the first MiB, not buffered.
        let (base, sent) = streaming_server(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
            1024,
        )
        .await;
        let client = reqwest::Client::new();
        let call = JsonCall::<()> {
            base: &base,
            endpoint: "/cgi-bin/token",
            query: &[],
            body: None,
            on_busy: OnBusy::Fail,
        };
        let err = call_json::<Token, ()>(&client, call).await.unwrap_err();
        assert!(
            err.to_string().contains("larger than 1048576 bytes"),
            "{err}"
        );
        assert!(
            sent.load(std::sync::atomic::Ordering::SeqCst) < 1024,
            "the whole body was read"
        );

        // A Content-Length over the cap is refused before reading.
        let (base, _) = streaming_server(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 67108864\r\n\r\n",
            0,
        )
        .await;
        let call = JsonCall::<()> {
            base: &base,
            endpoint: "/cgi-bin/token",
            query: &[],
            body: None,
            on_busy: OnBusy::Fail,
        };
        let err = call_json::<Token, ()>(&client, call).await.unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
    }
}
