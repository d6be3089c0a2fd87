//! Reading the request: the callback's query, the return path parameter, whether a request is a
//! page load, and the request head adapters build for the flow.

use http::Method;
use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts;

/// The callback's query parameters.
pub(crate) struct CallbackQuery {
    pub(crate) state: Option<String>,
    pub(crate) code: Option<String>,
    pub(crate) return_path: Option<String>,
}

impl CallbackQuery {
    /// Parses the query; a repeated `state`, `code` or `r` is refused as ambiguous.
    pub(crate) fn parse(query: Option<&str>) -> Option<Self> {
        let mut parsed = Self {
            state: None,
            code: None,
            return_path: None,
        };
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let slot = match name.as_ref() {
                "state" => &mut parsed.state,
                "code" => &mut parsed.code,
                crate::session::RETURN_PARAM => &mut parsed.return_path,
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return None;
            }
        }
        Some(parsed)
    }
}

/// Reads one query parameter (the first occurrence).
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

/// Every request header the login flow reads, lower-case: `Cookie` (the session and the login
/// state), `Accept` and `Sec-Fetch-Mode` (is this a page load?), `Referer` (where to return after
/// a login from a `fetch`), `Sec-Fetch-Site` and `Origin` (is a logout from this site's own
/// pages?). An adapter that builds the flow's request head itself must pass all of them
/// ([`request_parts`] keeps exactly these); a test in this crate fails when the flow reads a
/// header that is not listed.
pub const LOGIN_FLOW_HEADERS: [&str; 6] = [
    "cookie",
    "accept",
    "sec-fetch-mode",
    "referer",
    "sec-fetch-site",
    "origin",
];

/// Builds the `http` 1 request head that [`LoginFlow::decide`](crate::login::LoginFlow::decide),
/// [`LoginFlow::handle_callback`](crate::login::LoginFlow::handle_callback) and [`LoginFlow::login_required`](crate::login::LoginFlow::login_required) take, for adapters whose
/// framework has other request types (actix-web 4 uses `http` 0.2).
///
/// `target` is the request's path and query (`/shop?item=1`); `headers` are name/value pairs, of
/// which only [`LOGIN_FLOW_HEADERS`] are kept (others are skipped, as are invalid ones). Returns
/// `None` when the method or target is not valid HTTP (answer 400).
///
/// ```
/// let parts = wechat_core::adapter::request_parts(
///     "GET",
///     "/shop?item=1",
///     [("Accept", &b"text/html"[..]), ("X-Other", &b"ignored"[..])],
/// )
/// .unwrap();
/// assert_eq!(parts.uri.path(), "/shop");
/// assert_eq!(parts.headers["accept"], "text/html");
/// assert!(parts.headers.get("x-other").is_none());
/// ```
pub fn request_parts<'a>(
    method: &str,
    target: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Option<Parts> {
    let method = Method::from_bytes(method.as_bytes()).ok()?;
    let uri = http::Uri::try_from(target).ok()?;
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = method;
    parts.uri = uri;
    for (name, value) in headers {
        let Some(known) = LOGIN_FLOW_HEADERS
            .iter()
            .find(|known| name.eq_ignore_ascii_case(known))
        else {
            continue;
        };
        if let Ok(value) = HeaderValue::from_bytes(value) {
            parts
                .headers
                .append(header::HeaderName::from_static(known), value);
        }
    }
    Some(parts)
}

/// Whether the request is a page load by a browser (as opposed to `fetch`/XHR or a form post).
///
/// A `GET` whose `Sec-Fetch-Mode` is `navigate`; when the browser sends no `Sec-Fetch-Mode`, a
/// `GET` whose `Accept` names `text/html` (with a non-zero q).
pub(crate) fn is_page_load(method: &Method, headers: &HeaderMap) -> bool {
    if method != Method::GET {
        return false;
    }
    let modes: Vec<&str> = headers
        .get_all("sec-fetch-mode")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .collect();
    if !modes.is_empty() {
        return modes.iter().any(|m| m.eq_ignore_ascii_case("navigate"));
    }
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut pieces = item.split(';').map(str::trim);
            let media = pieces.next().unwrap_or("");
            media.eq_ignore_ascii_case("text/html")
                && !pieces.any(|p| {
                    p.split_once('=').is_some_and(|(k, v)| {
                        k.trim().eq_ignore_ascii_case("q")
                            && v.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
                    })
                })
        })
}
