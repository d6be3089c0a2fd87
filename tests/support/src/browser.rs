//! The browser: a client with no automatic redirects, one [`Jar`], and the requests a browser
//! makes.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http::header::{
    ACCEPT, CONTENT_TYPE, COOKIE, HOST, HeaderMap, HeaderName, HeaderValue, LOCATION, ORIGIN,
    SET_COOKIE, USER_AGENT,
};
use http::{Method, StatusCode};
use url::Url;

use crate::jar::Jar;
use crate::{DESKTOP_USER_AGENT, PHONE_USER_AGENT, WECHAT_USER_AGENT};

/// How many redirects [`Request::follow`] follows (browsers allow about 20).
const MAX_REDIRECTS: usize = 10;

/// A page load's `Accept`.
const PAGE_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// A failure below HTTP: the request got no answer (or an unreadable one), or a redirect could
/// not be followed.
#[derive(Debug)]
pub enum BrowseError {
    /// No answer. `kind` is `timeout`, `connect`, `body` or `request` (reqwest's
    /// classification); the error itself, without its URL, is the [source](std::error::Error::source).
    Transport {
        /// What went wrong, in one word.
        kind: &'static str,
        /// reqwest's error.
        error: reqwest::Error,
    },
    /// A redirect without a usable `Location`, or too many of them.
    Redirect(&'static str),
}

impl BrowseError {
    fn transport(error: reqwest::Error) -> Self {
        let kind = if error.is_timeout() {
            "timeout"
        } else if error.is_connect() {
            "connect"
        } else if error.is_body() || error.is_decode() {
            "body"
        } else {
            "request"
        };
        Self::Transport {
            kind,
            error: error.without_url(),
        }
    }
}

impl std::fmt::Display for BrowseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transport { kind, .. } => write!(f, "transport ({kind})"),
            Self::Redirect(what) => write!(f, "redirect ({what})"),
        }
    }
}

impl std::error::Error for BrowseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Transport { error, .. } => Some(error),
            Self::Redirect(_) => None,
        }
    }
}

/// One answer, as it came (a redirect is not followed).
#[derive(Debug, Clone)]
pub struct Answer {
    /// The URL that answered.
    pub url: Url,
    /// The status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body, as text.
    pub body: String,
}

impl Answer {
    /// The value of header `name`, if it is there and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `Location`, as sent.
    pub fn location(&self) -> Option<&str> {
        self.header(LOCATION.as_str())
    }

    /// Every `Set-Cookie`, in order.
    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    /// `Retry-After`, in seconds, when the answer has one.
    pub fn retry_after(&self) -> Option<u64> {
        self.header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
    }

    /// The body as JSON.
    ///
    /// # Panics
    /// When it is not JSON, with the body in the message.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} {}: not JSON ({e}): {}",
                self.status, self.url, self.body
            )
        })
    }

    /// The body as JSON, `Null` when it is not.
    pub fn json_or_null(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A page load's outcome after its redirects: the last answer (its fields are [`Answer`]'s,
/// through `Deref`) and every redirect on the way.
#[derive(Debug, Clone)]
pub struct Visit {
    /// The last answer (not a redirect).
    pub answer: Answer,
    /// Every URL that answered with a redirect, in order, with its `Location` as sent.
    pub redirects: Vec<(Url, String)>,
}

impl std::ops::Deref for Visit {
    type Target = Answer;

    fn deref(&self) -> &Answer {
        &self.answer
    }
}

/// A browser: one cookie jar, one `User-Agent`, bounded timeouts, no automatic redirects.
/// Clones share the jar (they are the same browser).
#[derive(Debug, Clone)]
pub struct Browser {
    client: reqwest::Client,
    jar: Arc<Mutex<Jar>>,
    user_agent: HeaderValue,
}

/// Settings of a [`Browser`] other than the default ones.
#[derive(Debug, Clone)]
#[must_use]
pub struct BrowserBuilder {
    user_agent: &'static str,
    timeout: Duration,
    fresh_connections: bool,
}

impl BrowserBuilder {
    /// Every request ends within `timeout` (default 15 s; connecting within 5 s at most).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A new connection per request (no kept-alive ones), so that a load balancer spreads one
    /// browser's requests over its instances.
    pub fn fresh_connections(mut self) -> Self {
        self.fresh_connections = true;
        self
    }

    /// The browser, with an empty jar.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (no TLS backend).
    pub fn build(self) -> reqwest::Result<Browser> {
        let mut client = reqwest::Client::builder()
            .user_agent(self.user_agent)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .connect_timeout(self.timeout.min(Duration::from_secs(5)))
            // Every server here is local: no proxy from the environment.
            .no_proxy();
        if self.fresh_connections {
            client = client.pool_max_idle_per_host(0);
        }
        Ok(Browser {
            client: client.build()?,
            jar: Arc::new(Mutex::new(Jar::default())),
            user_agent: HeaderValue::from_static(self.user_agent),
        })
    }
}

impl Browser {
    /// Settings for a browser sending `user_agent` ([`WECHAT_USER_AGENT`],
    /// [`DESKTOP_USER_AGENT`], or another).
    pub fn builder(user_agent: &'static str) -> BrowserBuilder {
        BrowserBuilder {
            user_agent,
            timeout: Duration::from_secs(15),
            fresh_connections: false,
        }
    }

    /// WeChat's in-app browser ([`WECHAT_USER_AGENT`]): how a test acts as a WeChat user.
    ///
    /// # Panics
    /// When the HTTP client cannot be built: a broken test environment.
    pub fn wechat() -> Self {
        Self::builder(WECHAT_USER_AGENT)
            .build()
            .expect("the test browser's HTTP client")
    }

    /// A desktop Chrome ([`DESKTOP_USER_AGENT`]): a visitor outside WeChat.
    ///
    /// # Panics
    /// When the HTTP client cannot be built: a broken test environment.
    pub fn desktop() -> Self {
        Self::builder(DESKTOP_USER_AGENT)
            .build()
            .expect("the test browser's HTTP client")
    }

    /// Safari on an iPhone ([`PHONE_USER_AGENT`]): a phone visitor outside WeChat.
    ///
    /// # Panics
    /// When the HTTP client cannot be built: a broken test environment.
    pub fn phone() -> Self {
        Self::builder(PHONE_USER_AGENT)
            .build()
            .expect("the test browser's HTTP client")
    }

    fn jar(&self) -> MutexGuard<'_, Jar> {
        self.jar.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value of the cookie `name` a request to `url` would carry.
    pub fn cookie(&self, url: &str, name: &str) -> Option<String> {
        self.jar().get(&parse(url), name)
    }

    /// Whether a cookie named `name` is kept, for any host and path.
    pub fn has_cookie(&self, name: &str) -> bool {
        self.jar().contains(name)
    }

    /// Keeps a cookie as if `url` had answered with `set_cookie` (a `Set-Cookie` value).
    pub fn set_cookie(&self, url: &str, set_cookie: &str) {
        self.jar().store(&parse(url), set_cookie);
    }

    /// Keeps the cookies of an answer from `url` (its `Set-Cookie` headers): for answers the
    /// test got without sending the request, e.g. from the login flow called in-process.
    pub fn keep_cookies(&self, url: &str, headers: &HeaderMap) {
        let url = parse(url);
        let mut jar = self.jar();
        for value in headers.get_all(SET_COOKIE) {
            if let Ok(text) = value.to_str() {
                jar.store(&url, text);
            }
        }
    }

    /// Forgets every cookie (a new browser session).
    pub fn clear_cookies(&self) {
        self.jar().clear();
    }

    /// A request with this browser's `User-Agent` and cookies and nothing else (as for an image
    /// or a script, or a test that sets every other header itself).
    ///
    /// # Panics
    /// When `url` is not an absolute URL.
    pub fn request(&self, method: Method, url: &str) -> Request<'_> {
        Request {
            browser: self,
            method,
            url: parse(url),
            headers: HeaderMap::new(),
            body: None,
            cookies: true,
        }
    }

    /// A page load (a link followed, an address typed): `GET`, an HTML `Accept`,
    /// `Sec-Fetch-Mode: navigate`, `Sec-Fetch-Dest: document`. No `Sec-Fetch-Site` (an older
    /// browser's, or set it with [`Request::site`]).
    pub fn page(&self, url: &str) -> Request<'_> {
        self.request(Method::GET, url)
            .header(ACCEPT.as_str(), PAGE_ACCEPT)
            .header("sec-fetch-mode", "navigate")
            .header("sec-fetch-dest", "document")
    }

    /// A form on a page of `url`'s own site posted to `url`: a page load's headers with
    /// `POST`, `Sec-Fetch-Site: same-origin` and `Origin`; add the fields with
    /// [`Request::form`].
    pub fn submit(&self, url: &str) -> Request<'_> {
        let origin = parse(url).origin().ascii_serialization();
        let mut request = self.page(url).site("same-origin").origin(&origin);
        request.method = Method::POST;
        request
    }

    /// A `fetch()` from a page: `Accept: application/json`, `Sec-Fetch-Mode: cors`,
    /// `Sec-Fetch-Dest: empty`; a body with [`Request::json`].
    pub fn fetch(&self, method: Method, url: &str) -> Request<'_> {
        self.request(method, url)
            .header(ACCEPT.as_str(), "application/json")
            .header("sec-fetch-mode", "cors")
            .header("sec-fetch-dest", "empty")
    }

    /// [`page`](Self::page) sent once: the first answer.
    pub async fn open(&self, url: &str) -> Answer {
        self.page(url).send().await
    }

    /// [`page`](Self::page) with its redirects followed.
    pub async fn navigate(&self, url: &str) -> Visit {
        self.page(url).follow().await
    }
}

/// A request being built: [`send`](Self::send) it once, [`follow`](Self::follow) its
/// redirects, or take it [`into_parts`](Self::into_parts) for an in-process call.
#[derive(Debug)]
#[must_use]
pub struct Request<'b> {
    browser: &'b Browser,
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
    cookies: bool,
}

impl Request<'_> {
    /// Sets header `name` (replacing the browser's value, if any).
    ///
    /// # Panics
    /// When `name` or `value` is not a valid header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let name = HeaderName::from_bytes(name.as_bytes())
            .unwrap_or_else(|e| panic!("header name {name:?}: {e}"));
        let value = HeaderValue::from_str(value).unwrap_or_else(|e| panic!("header {name}: {e}"));
        self.headers.insert(name, value);
        self
    }

    /// Leaves out header `name` (one the browser would send).
    pub fn without(mut self, name: &str) -> Self {
        self.headers.remove(name);
        self
    }

    /// `Sec-Fetch-Site` (`same-origin`, `same-site`, `cross-site`, `none`).
    pub fn site(self, site: &str) -> Self {
        self.header("sec-fetch-site", site)
    }

    /// `Origin`.
    pub fn origin(self, origin: &str) -> Self {
        self.header(ORIGIN.as_str(), origin)
    }

    /// A JSON body (`Content-Type: application/json`); `""` for an empty one.
    pub fn json(mut self, body: &str) -> Self {
        self.body = Some(body.as_bytes().to_vec());
        self.header(CONTENT_TYPE.as_str(), "application/json")
    }

    /// A form body (`application/x-www-form-urlencoded`).
    pub fn form(mut self, fields: &[(String, String)]) -> Self {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.body = Some(body.into_bytes());
        self.header(CONTENT_TYPE.as_str(), "application/x-www-form-urlencoded")
    }

    /// Sends no cookies (a `fetch` with `credentials: "omit"`, as the JS-SDK's calls to WeChat).
    pub fn without_cookies(mut self) -> Self {
        self.cookies = false;
        self
    }

    /// Every header the request carries: the browser's, its cookies, its `User-Agent`.
    fn all_headers(&self) -> HeaderMap {
        let mut headers = self.headers.clone();
        headers.insert(USER_AGENT, self.browser.user_agent.clone());
        if self.cookies {
            if let Some(cookies) = self.browser.jar().header_for(&self.url) {
                let value = HeaderValue::from_str(&cookies).expect("cookies are header text");
                headers.insert(COOKIE, value);
            }
        }
        headers
    }

    /// The request as the server at its URL receives it, without sending it: the method, the
    /// path and query as the URI, `Host`, and every header. For a test that calls the login
    /// flow in-process; keep the answer's cookies with [`Browser::keep_cookies`].
    pub fn into_parts(self) -> http::request::Parts {
        let mut headers = self.all_headers();
        let host = match self.url.port() {
            Some(port) => format!("{}:{port}", self.url.host_str().unwrap_or_default()),
            None => self.url.host_str().unwrap_or_default().to_owned(),
        };
        headers.insert(HOST, HeaderValue::from_str(&host).expect("a host"));
        let path_and_query = match self.url.query() {
            Some(query) => format!("{}?{query}", self.url.path()),
            None => self.url.path().to_owned(),
        };
        let mut builder = http::Request::builder()
            .method(self.method)
            .uri(path_and_query);
        if let Some(map) = builder.headers_mut() {
            *map = headers;
        }
        builder.body(()).expect("a valid request").into_parts().0
    }

    /// Sends the request once and reads the whole answer, keeping its cookies.
    ///
    /// # Errors
    /// [`BrowseError::Transport`] when there is no answer.
    pub async fn try_send(self) -> Result<Answer, BrowseError> {
        let headers = self.all_headers();
        let mut request = self
            .browser
            .client
            .request(self.method, self.url.clone())
            .headers(headers);
        if let Some(body) = self.body {
            request = request.body(body);
        }
        let response = request.send().await.map_err(BrowseError::transport)?;
        let url = response.url().clone();
        let status = response.status();
        let headers = response.headers().clone();
        self.browser.keep_cookies(url.as_str(), &headers);
        let body = response.text().await.map_err(BrowseError::transport)?;
        Ok(Answer {
            url,
            status,
            headers,
            body,
        })
    }

    /// Sends the request once: the first answer.
    ///
    /// # Panics
    /// When there is no answer, with the method and URL.
    pub async fn send(self) -> Answer {
        let what = format!("{} {}", self.method, self.url);
        self.try_send()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}: {e:?}"))
    }

    /// Sends the request and follows its redirects as page loads (`GET`, a page load's
    /// headers), as a browser does after a link or a form.
    ///
    /// # Errors
    /// [`BrowseError`] when a request gets no answer, a redirect has no usable `Location`, or
    /// there are more than 10.
    pub async fn try_follow(self) -> Result<Visit, BrowseError> {
        let browser = self.browser;
        let mut answer = self.try_send().await?;
        let mut redirects = Vec::new();
        while answer.status.is_redirection() {
            let location = answer
                .location()
                .ok_or(BrowseError::Redirect("no Location"))?
                .to_owned();
            let next = answer
                .url
                .join(&location)
                .map_err(|_| BrowseError::Redirect("bad Location"))?;
            redirects.push((answer.url, location));
            if redirects.len() > MAX_REDIRECTS {
                return Err(BrowseError::Redirect("too many"));
            }
            answer = browser.page(next.as_str()).try_send().await?;
        }
        Ok(Visit { answer, redirects })
    }

    /// [`try_follow`](Self::try_follow).
    ///
    /// # Panics
    /// On its errors, with the method and URL.
    pub async fn follow(self) -> Visit {
        let what = format!("{} {}", self.method, self.url);
        self.try_follow()
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}: {e:?}"))
    }
}

/// `url` parsed.
///
/// # Panics
/// When it is not an absolute URL.
fn parse(url: &str) -> Url {
    Url::parse(url).unwrap_or_else(|e| panic!("not an absolute URL {url:?}: {e}"))
}
