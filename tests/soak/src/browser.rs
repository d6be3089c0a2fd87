//! A buyer's browser, just enough of one: a cookie jar (cookies ignore ports, as browsers'
//! do, so one session works on every instance at `127.0.0.1`), redirects followed one by one,
//! the request headers a browser sends for page loads, same-origin `fetch` calls and the JS
//! bridge's cross-origin calls, and a reader for the simulator's consent form.

use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, COOKIE, HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode, Url};

/// How many redirects a page load follows.
const MAX_REDIRECTS: usize = 10;

/// A failure below HTTP: the request got no answer (or an unreadable one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrowseError {
    /// No answer: `timeout`, `connect`, `body` or `request` (reqwest's classification; the URL
    /// is never kept).
    Transport(&'static str),
    /// A redirect without a usable `Location`, or too many of them.
    Redirect(&'static str),
}

impl std::fmt::Display for BrowseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transport(kind) => write!(f, "transport ({kind})"),
            Self::Redirect(what) => write!(f, "redirect ({what})"),
        }
    }
}

impl std::error::Error for BrowseError {}

/// The class of a reqwest failure.
pub fn transport_kind(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else if error.is_body() || error.is_decode() {
        "body"
    } else {
        "request"
    }
}

fn transport(error: reqwest::Error) -> BrowseError {
    BrowseError::Transport(transport_kind(&error))
}

/// A page load's outcome, after redirects.
#[derive(Debug)]
pub struct Page {
    /// The final URL.
    pub url: Url,
    /// The final status.
    pub status: StatusCode,
    /// The final body.
    pub body: String,
    /// Every URL that answered with a redirect, in order.
    pub redirected_from: Vec<Url>,
}

/// A `fetch` answer: the status, `Retry-After` in seconds when sent, and the JSON body (`Null`
/// when not JSON).
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// `Retry-After`, in seconds, when the answer has one.
    pub retry_after: Option<u64>,
    /// The body as JSON, `Null` when it is not.
    pub json: serde_json::Value,
}

#[derive(Debug, Clone)]
struct Cookie {
    name: String,
    value: String,
    path: String,
}

/// One buyer's browser: one cookie jar, no automatic redirects, bounded timeouts, no kept-alive
/// connections.
#[derive(Debug)]
pub struct Browser {
    client: reqwest::Client,
    jar: Mutex<Vec<Cookie>>,
}

impl Browser {
    /// A browser whose every request ends within `timeout`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(timeout: Duration) -> reqwest::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            // A new connection per request, so that the balancer in front of the instances
            // spreads a buyer's requests over all of them.
            .pool_max_idle_per_host(0)
            .build()?;
        Ok(Self {
            client,
            jar: Mutex::new(Vec::new()),
        })
    }

    /// Forgets every cookie (a new browser session: the next page load logs in again).
    pub fn clear_cookies(&self) {
        self.jar_lock().clear();
    }

    /// Whether a cookie named `name` is kept.
    pub fn has_cookie(&self, name: &str) -> bool {
        self.jar_lock().iter().any(|c| c.name == name)
    }

    fn jar_lock(&self) -> std::sync::MutexGuard<'_, Vec<Cookie>> {
        self.jar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The `Cookie` header for a request to `url`, if any cookie applies.
    fn cookie_header(&self, url: &Url) -> Option<String> {
        let path = url.path();
        let jar = self.jar_lock();
        let pairs: Vec<String> = jar
            .iter()
            .filter(|c| path_matches(&c.path, path))
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    /// Keeps (or deletes) the cookies a response sets.
    fn store_cookies(&self, headers: &HeaderMap, url: &Url) {
        let mut jar = self.jar_lock();
        for value in headers.get_all(SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let Some(cookie) = parse_set_cookie(text, url.path()) else {
                continue;
            };
            jar.retain(|c| !(c.name == cookie.0.name && c.path == cookie.0.path));
            if !cookie.1 {
                jar.push(cookie.0);
            }
        }
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &Url,
    ) -> Result<reqwest::Response, BrowseError> {
        let request = match self.cookie_header(url) {
            Some(cookies) => request.header(COOKIE, cookies),
            None => request,
        };
        let response = request.send().await.map_err(transport)?;
        self.store_cookies(response.headers(), url);
        Ok(response)
    }

    fn page_request(&self, method: Method, url: &Url) -> reqwest::RequestBuilder {
        self.client
            .request(method, url.clone())
            .header(
                ACCEPT,
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            )
            .header("Sec-Fetch-Mode", "navigate")
            .header("Sec-Fetch-Dest", "document")
    }

    /// Loads `url` as a page (`GET`) and follows redirects.
    ///
    /// # Errors
    /// [`BrowseError`] when a request gets no answer or a redirect is unusable.
    pub async fn navigate(&self, url: &Url) -> Result<Page, BrowseError> {
        let response = self.send(self.page_request(Method::GET, url), url).await?;
        self.follow(response).await
    }

    /// Submits a form (`POST`, url-encoded) as a page load and follows redirects.
    ///
    /// # Errors
    /// As [`navigate`](Self::navigate).
    pub async fn submit_form(
        &self,
        url: &Url,
        fields: &[(String, String)],
    ) -> Result<Page, BrowseError> {
        let request = self.page_request(Method::POST, url).form(fields);
        let response = self.send(request, url).await?;
        self.follow(response).await
    }

    async fn follow(&self, mut response: reqwest::Response) -> Result<Page, BrowseError> {
        let mut redirected_from = Vec::new();
        while response.status().is_redirection() {
            let from = response.url().clone();
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or(BrowseError::Redirect("no Location"))?;
            let next = from
                .join(location)
                .map_err(|_| BrowseError::Redirect("bad Location"))?;
            redirected_from.push(from);
            if redirected_from.len() > MAX_REDIRECTS {
                return Err(BrowseError::Redirect("too many"));
            }
            response = self
                .send(self.page_request(Method::GET, &next), &next)
                .await?;
        }
        let url = response.url().clone();
        let status = response.status();
        let body = response.text().await.map_err(transport)?;
        Ok(Page {
            url,
            status,
            body,
            redirected_from,
        })
    }

    /// A `fetch()` from the app's page at `origin` to the app itself (same origin): `Accept:
    /// application/json`, and for a body `Content-Type: application/json` and `Origin`.
    ///
    /// # Errors
    /// [`BrowseError::Transport`] when there is no answer.
    pub async fn fetch(
        &self,
        method: Method,
        url: &Url,
        body: Option<&str>,
        origin: &str,
    ) -> Result<Reply, BrowseError> {
        let mut request = self
            .client
            .request(method, url.clone())
            .header(ACCEPT, "application/json")
            .header("Sec-Fetch-Mode", "cors")
            .header("Sec-Fetch-Site", "same-origin")
            .header("Sec-Fetch-Dest", "empty");
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .header("Origin", origin)
                .body(body.to_owned());
        }
        let response = self.send(request, url).await?;
        read_reply(response).await
    }

    /// What the simulator's JS-SDK script does from the app's page at `origin`: a cross-origin
    /// `POST` of JSON to the simulator (`/_sim/jssdk/verify`, `/_sim/pay/check`,
    /// `/_sim/pay/confirm`).
    ///
    /// # Errors
    /// [`BrowseError::Transport`] when there is no answer.
    pub async fn bridge_post(
        &self,
        url: &Url,
        body: &serde_json::Value,
        origin: &str,
    ) -> Result<Reply, BrowseError> {
        let request = self
            .client
            .post(url.clone())
            .header(ACCEPT, "application/json")
            .header("Origin", origin)
            .header("Sec-Fetch-Mode", "cors")
            .header("Sec-Fetch-Site", "same-site")
            .header("Sec-Fetch-Dest", "empty")
            .json(body);
        // The JS-SDK's fetch sends no credentials: no cookies.
        let response = request.send().await.map_err(transport)?;
        read_reply(response).await
    }
}

async fn read_reply(response: reqwest::Response) -> Result<Reply, BrowseError> {
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let text = response.text().await.map_err(transport)?;
    Ok(Reply {
        status,
        retry_after,
        json: serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    })
}

/// Whether a cookie of path `cookie_path` is sent to `request_path` (RFC 6265 §5.1.4).
fn path_matches(cookie_path: &str, request_path: &str) -> bool {
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/')
                || request_path.as_bytes().get(cookie_path.len()) == Some(&b'/')))
}

/// A `Set-Cookie` value as (cookie, deleted): name, value and path (default: the request
/// path's directory); `Max-Age=0` or less deletes it.
fn parse_set_cookie(text: &str, request_path: &str) -> Option<(Cookie, bool)> {
    let mut parts = text.split(';');
    let (name, value) = parts.next()?.trim().split_once('=')?;
    let mut path = None;
    let mut deleted = false;
    for attribute in parts {
        let (key, val) = attribute
            .trim()
            .split_once('=')
            .unwrap_or((attribute.trim(), ""));
        if key.eq_ignore_ascii_case("path") && val.starts_with('/') {
            path = Some(val.to_owned());
        } else if key.eq_ignore_ascii_case("max-age") {
            deleted = val.trim().parse::<i64>().is_ok_and(|age| age <= 0);
        }
    }
    let path = path.unwrap_or_else(|| match request_path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(i) => request_path[..i].to_owned(),
    });
    Some((
        Cookie {
            name: name.trim().to_owned(),
            value: value.trim().to_owned(),
            path,
        },
        deleted,
    ))
}

/// The simulator's `snsapi_userinfo` consent form: where it posts, and its hidden fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentForm {
    /// The form's `action`, as written (relative to the page).
    pub action: String,
    /// The hidden inputs, in order.
    pub hidden: Vec<(String, String)>,
}

impl ConsentForm {
    /// The first form of `html`, if it has the consent page's "allow" button.
    pub fn parse(html: &str) -> Option<Self> {
        if !html.contains(r#"id="sim-consent-allow""#) {
            return None;
        }
        let start = html.find("<form")?;
        let end = html[start..]
            .find("</form>")
            .map_or(html.len(), |e| start + e);
        let form = &html[start..end];
        let form_tag = &form[..form.find('>')? + 1];
        let action = attr(form_tag, "action")?;
        let mut hidden = Vec::new();
        let mut rest = form;
        while let Some(at) = rest.find("<input") {
            let tag_end = rest[at..].find('>')? + at + 1;
            let tag = &rest[at..tag_end];
            if attr(tag, "type").as_deref() == Some("hidden") {
                hidden.push((attr(tag, "name")?, attr(tag, "value").unwrap_or_default()));
            }
            rest = &rest[tag_end..];
        }
        Some(Self { action, hidden })
    }

    /// The fields a browser posts when `openid` is chosen and "allow" is pressed.
    pub fn allow_as(&self, openid: &str) -> Vec<(String, String)> {
        let mut fields = self.hidden.clone();
        fields.push(("openid".to_owned(), openid.to_owned()));
        fields.push(("action".to_owned(), "allow".to_owned()));
        fields
    }
}

/// The unescaped value of the double-quoted attribute `name` in `tag`.
fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

/// Decodes the five entities the simulator's pages use.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_follow_paths_and_max_age() {
        let (c, deleted) = parse_set_cookie(
            "s=abc; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax",
            "/x/y",
        )
        .unwrap();
        assert_eq!(
            (c.name.as_str(), c.value.as_str(), c.path.as_str()),
            ("s", "abc", "/")
        );
        assert!(!deleted);
        let (c, deleted) = parse_set_cookie("st=; Path=/cb; Max-Age=0", "/cb").unwrap();
        assert_eq!(c.path, "/cb");
        assert!(deleted);
        assert_eq!(parse_set_cookie("a=1", "/x/y").unwrap().0.path, "/x");
        assert!(path_matches("/", "/anything"));
        assert!(path_matches(
            "/wechat/oauth/callback",
            "/wechat/oauth/callback"
        ));
        assert!(!path_matches(
            "/wechat/oauth/callback",
            "/wechat/pay/orders"
        ));
        assert!(!path_matches("/cb", "/cbx"));
    }

    #[test]
    fn reads_the_consent_form() {
        let html = r#"<form method="post" action="/connect/oauth2/authorize" class="card">
<input type="hidden" name="appid" value="wx1">
<input type="hidden" name="redirect_uri" value="http://127.0.0.1:1/cb?r=%2F&amp;x=1">
<label class="user"><input type="radio" name="openid" value="o1" checked>A</label>
<button type="submit" id="sim-consent-allow" name="action" value="allow">ok</button></form>"#;
        let form = ConsentForm::parse(html).unwrap();
        assert_eq!(form.action, "/connect/oauth2/authorize");
        assert_eq!(form.hidden[1].1, "http://127.0.0.1:1/cb?r=%2F&x=1");
        let fields = form.allow_as("o2");
        assert_eq!(fields.len(), 4);
        assert_eq!(fields[2], ("openid".to_owned(), "o2".to_owned()));
        assert!(ConsentForm::parse("<p>no form</p>").is_none());
    }
}
