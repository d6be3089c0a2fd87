//! The one place that builds HTTP responses for login, the routes and Pay: HTML pages, JSON,
//! redirects, with `Cache-Control: no-store` (none of them may be cached: they carry sessions,
//! orders and one-time redirects).

#[cfg(feature = "pay")]
use crate::pay::PayError;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};

/// Escapes text for HTML element content and quoted attribute values: `&`, `<`, `>`, `"` and `'`.
pub(crate) fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn base_response(
    status: StatusCode,
    content_type: Option<&'static str>,
    body: impl Into<Bytes>,
) -> Response<Bytes> {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Some(content_type) = content_type {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
    }
    response
}

/// A small UTF-8 HTML page; every text is escaped.
pub(crate) fn html_page(
    status: StatusCode,
    title: &str,
    message: &str,
    link: Option<(&str, &str)>,
) -> Response<Bytes> {
    let link = link
        .map(|(href, text)| {
            format!(
                "<p><a href=\"{}\">{}</a></p>\n",
                escape_html(href),
                escape_html(text)
            )
        })
        .unwrap_or_default();
    page(status, title, message, &link)
}

/// A small UTF-8 HTML page whose button POSTs to `action` (same origin); every text is escaped.
pub(crate) fn html_form_page(
    status: StatusCode,
    title: &str,
    message: &str,
    action: &str,
    button: &str,
) -> Response<Bytes> {
    let form = format!(
        "<form method=\"post\" action=\"{}\"><button type=\"submit\">{}</button></form>\n",
        escape_html(action),
        escape_html(button)
    );
    page(status, title, message, &form)
}

/// The frame of every page: `extra` is trusted HTML, the rest is escaped.
fn page(status: StatusCode, title: &str, message: &str, extra: &str) -> Response<Bytes> {
    let body = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head>\n<body style=\"font-family:sans-serif;max-width:32em;margin:2em auto;padding:0 1em\">\n\
         <h1>{title}</h1>\n<p>{message}</p>\n{extra}</body></html>\n",
        title = escape_html(title),
        message = escape_html(message),
    );
    base_response(status, Some("text/html; charset=utf-8"), body)
}

pub(crate) fn redirect(status: StatusCode, location: &str) -> Response<Bytes> {
    match HeaderValue::try_from(location) {
        Ok(value) => {
            let mut response = base_response(status, None, Bytes::new());
            response.headers_mut().insert(header::LOCATION, value);
            response
        }
        Err(_) => html_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Login error",
            "The login redirect could not be built.",
            None,
        ),
    }
}

pub(crate) fn method_not_allowed(allow: &'static str) -> Response<Bytes> {
    let mut response = html_page(
        StatusCode::METHOD_NOT_ALLOWED,
        "Method not allowed",
        "This login address only accepts ordinary page loads.",
        None,
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// A JSON response with `status`; a body that cannot be serialized becomes a 500
/// `{"error":"internal error"}`.
pub(crate) fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> Response<Bytes> {
    match serde_json::to_vec(body) {
        Ok(bytes) => base_response(status, Some("application/json"), bytes),
        Err(_) => base_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            Some("application/json"),
            Bytes::from_static(br#"{"error":"internal error"}"#),
        ),
    }
}

/// `{"error": message}` with `status`: the shape of every error the routes answer to a browser.
pub(crate) fn json_error(status: StatusCode, message: &str) -> Response<Bytes> {
    json(status, &serde_json::json!({ "error": message }))
}

/// A short random id that ties what a user sees to the log line with the details.
pub(crate) fn error_id() -> String {
    hex::encode(rand::random::<[u8; 6]>())
}

/// Who reads the answer to a failed operation: that decides its form and its words.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Audience<'a> {
    /// A person at the login, in the browser: an HTML page with `status` and a link to try
    /// again at `retry`.
    LoginPage {
        /// The page's status (502 when WeChat failed, 500 when this server did).
        status: StatusCode,
        /// Where "Try again" goes (the login URL).
        retry: &'a str,
    },
    /// The shop page's script asking for the JS-SDK configuration: JSON.
    JssdkScript,
    /// The shop page's script creating an order: JSON.
    #[cfg(feature = "pay")]
    OrderScript,
    /// WeChat Pay delivering a notification, in the merchant's API version.
    #[cfg(feature = "pay")]
    WeChatPay(crate::pay::ApiVersion),
}

/// The one place where an [`Error`](crate::Error) becomes an HTTP answer, in the form and the
/// words its [`Audience`] reads.
///
/// What the visitor did wrong (a page URL the JS-SDK cannot sign) is said; what they cannot act
/// on (WeChat's message, an endpoint, an errcode, a `rid`, an IP to whitelist, a store outage)
/// never reaches a browser: it gets a short message and an error id, and the log gets the whole
/// error under that id. WeChat Pay gets its short FAIL reasons only.
pub(crate) fn error_answer(error: &crate::Error, audience: Audience<'_>) -> Response<Bytes> {
    use crate::Error;
    match audience {
        Audience::LoginPage { status, retry } => {
            let id = error_id();
            tracing::warn!(error_id = %id, error = %error, "WeChat login failed");
            html_page(
                status,
                "WeChat login failed",
                &format!(
                    "WeChat login could not be completed. Please try again in a moment. \
                     (Error id {id}: the site's log has the details.)"
                ),
                Some((retry, "Try again")),
            )
        }
        Audience::JssdkScript => match error {
            Error::InvalidPageUrl(_) => json_error(StatusCode::BAD_REQUEST, &error.to_string()),
            _ => opaque_json_error(
                StatusCode::BAD_GATEWAY,
                "WeChat could not sign this page right now; try again in a moment",
                "JS-SDK config",
                error,
            ),
        },
        #[cfg(feature = "pay")]
        Audience::OrderScript => {
            let (status, message) = order_failure(error);
            opaque_json_error(status, message, "prepay", error)
        }
        #[cfg(feature = "pay")]
        Audience::WeChatPay(version) => {
            let (status, message) = notification_refusal(version, error);
            crate::pay::NotificationReply::fail(version, status, message).into_response()
        }
    }
}

/// The status and public words of an order that could not be placed.
#[cfg(feature = "pay")]
fn order_failure(error: &crate::Error) -> (StatusCode, &'static str) {
    use crate::Error;
    use crate::pay::{PayApiErrorCode, PayErrorCode};
    const NO_LONGER: &str =
        "this order can no longer be paid (it is paid or closed): start a new one";
    match error {
        Error::Pay(PayError::Business {
            code: PayErrorCode::OrderPaid | PayErrorCode::OrderClosed | PayErrorCode::OutTradeNoUsed,
            ..
        }) => (StatusCode::CONFLICT, NO_LONGER),
        Error::Pay(PayError::Api(e))
            if matches!(
                e.code,
                PayApiErrorCode::OrderClosed | PayApiErrorCode::OutTradeNoUsed
            ) =>
        {
            (StatusCode::CONFLICT, NO_LONGER)
        }
        Error::Pay(PayError::InvalidRequest(_)) | Error::Config(_) => {
            tracing::error!(error = %error, "the order backend produced an order WeChat would refuse");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the shop could not create this order",
            )
        }
        _ => (
            StatusCode::BAD_GATEWAY,
            "WeChat Pay could not create the order right now; try again in a moment",
        ),
    }
}

/// The status and FAIL reason WeChat Pay gets for a notification refused with `error` (the
/// handlers log the error itself): a signature that does not verify is 401 in v3 (400 in v2).
#[cfg(feature = "pay")]
fn notification_refusal(
    version: crate::pay::ApiVersion,
    error: &crate::Error,
) -> (StatusCode, &'static str) {
    use crate::Error;
    match error {
        Error::Pay(
            PayError::BadSignature(_)
            | PayError::UnknownSerial { .. }
            | PayError::CertificateNotValid { .. },
        ) => match version {
            crate::pay::ApiVersion::V2 => (StatusCode::BAD_REQUEST, "invalid signature"),
            crate::pay::ApiVersion::V3 => (StatusCode::UNAUTHORIZED, "invalid signature"),
        },
        Error::Pay(PayError::NotificationMismatch(_)) => {
            (StatusCode::BAD_REQUEST, "not for this merchant")
        }
        _ => (StatusCode::BAD_REQUEST, "invalid notification"),
    }
}

/// A JSON error for a failure the user cannot act on: `{"error": "<message> (error id …)",
/// "error_id": "…"}`, while the details go to the log as a warning with the same `error_id`.
/// `what` names the operation in the log.
fn opaque_json_error(
    status: StatusCode,
    message: &str,
    what: &str,
    error: &crate::Error,
) -> Response<Bytes> {
    let id = error_id();
    tracing::warn!(error_id = %id, error = %error, "{what} failed");
    json(
        status,
        &serde_json::json!({
            "error": format!("{message} (error id {id})"),
            "error_id": id,
        }),
    )
}

/// A plain-text response with `status`.
pub(crate) fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Bytes> {
    base_response(status, Some("text/plain; charset=utf-8"), body)
}

/// Test help: what the code under test logs, captured for the current thread.
#[cfg(test)]
pub(crate) mod captured_logs {
    use std::sync::{Arc, Mutex};

    /// The log lines written while the guard returned with it lives.
    #[derive(Clone, Default)]
    pub(crate) struct Logs(Arc<Mutex<Vec<u8>>>);

    impl Logs {
        /// Starts capturing on this thread (a current-thread tokio test stays on it).
        pub(crate) fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
            let logs = Self::default();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(logs.clone())
                .with_ansi(false)
                .with_max_level(tracing::Level::DEBUG)
                .finish();
            (logs, tracing::subscriber::set_default(subscriber))
        }

        /// Everything logged so far.
        pub(crate) fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    impl std::io::Write for Logs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
        type Writer = Self;
        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    /// The error id in `shown` (`error id XXXXXXXXXXXX`), which the log must carry too.
    pub(crate) fn error_id_in(shown: &str) -> String {
        let at = shown
            .to_ascii_lowercase()
            .find("error id ")
            .unwrap_or_else(|| panic!("no error id in {shown}"))
            + "error id ".len();
        let id: String = shown[at..].chars().take(12).collect();
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{shown}");
        id
    }
}
