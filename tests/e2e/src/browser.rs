//! A minimal browser over reqwest: a cookie jar, redirects followed one by one (so that every
//! hop is visible), and the request headers a real browser sends for page loads and `fetch`.

use std::sync::Arc;
use std::time::Duration;

use reqwest::cookie::{CookieStore as _, Jar};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, LOCATION};
use reqwest::{Method, StatusCode};
use url::Url;

/// How many redirects a navigation follows before giving up (browsers allow about 20).
const MAX_REDIRECTS: usize = 10;

/// The result of a page load, after redirects.
#[derive(Debug)]
pub struct Visit {
    /// The final URL.
    pub url: Url,
    /// The final status.
    pub status: StatusCode,
    /// The final response headers.
    pub headers: HeaderMap,
    /// The final body, as text.
    pub body: String,
    /// Every URL that answered with a redirect, in order, with its `Location`.
    pub redirects: Vec<(Url, String)>,
}

/// A browser: one cookie jar, bounded timeouts, no automatic redirects.
#[derive(Debug, Clone)]
pub struct Browser {
    client: reqwest::Client,
    jar: Arc<Jar>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    /// A new browser with an empty cookie jar.
    ///
    /// # Panics
    /// When the HTTP client cannot be built (no TLS backend): a broken test environment.
    pub fn new() -> Self {
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(Arc::clone(&jar))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("reqwest client");
        Self { client, jar }
    }

    /// The underlying client (cookies included, redirects not followed).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The value of cookie `name` that would be sent to `url`.
    pub fn cookie(&self, url: &str, name: &str) -> Option<String> {
        let url = Url::parse(url).expect("cookie URL");
        let header = self.jar.cookies(&url)?;
        let header = header.to_str().ok()?.to_owned();
        header.split(';').find_map(|pair| {
            let (n, v) = pair.trim().split_once('=')?;
            (n == name).then(|| v.to_owned())
        })
    }

    /// Stores a cookie for `url` as if the server had sent `set_cookie` (a `Set-Cookie` value).
    pub fn set_cookie(&self, url: &str, set_cookie: &str) {
        let url = Url::parse(url).expect("cookie URL");
        self.jar.add_cookie_str(set_cookie, &url);
    }

    /// Loads `url` as a page (`GET`, `Accept: text/html`, `Sec-Fetch-Mode: navigate`) and follows
    /// redirects.
    pub async fn navigate(&self, url: &str) -> Visit {
        let request = self.page_request(Method::GET, url);
        self.follow(request, url).await
    }

    /// Loads `url` as a page but does not follow a redirect: the first response.
    pub async fn navigate_once(&self, url: &str) -> reqwest::Response {
        self.page_request(Method::GET, url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"))
    }

    /// Submits a form (`POST`, `application/x-www-form-urlencoded`) as a page load and follows
    /// redirects.
    pub async fn submit_form(&self, url: &str, fields: &[(String, String)]) -> Visit {
        let request = self.page_request(Method::POST, url).form(fields);
        self.follow(request, url).await
    }

    fn page_request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, url)
            .header(
                ACCEPT,
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            )
            .header("Sec-Fetch-Mode", "navigate")
            .header("Sec-Fetch-Dest", "document")
    }

    async fn follow(&self, first: reqwest::RequestBuilder, url: &str) -> Visit {
        let mut response = first.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let mut redirects = Vec::new();
        while response.status().is_redirection() {
            let from = response.url().clone();
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("{from} redirected without a Location"))
                .to_owned();
            let next = from.join(&location).unwrap_or_else(|e| {
                panic!("{from} redirected to a bad Location {location:?}: {e}")
            });
            redirects.push((from, location));
            assert!(
                redirects.len() <= MAX_REDIRECTS,
                "redirect loop: {redirects:#?}"
            );
            response = self
                .page_request(Method::GET, next.as_str())
                .send()
                .await
                .unwrap_or_else(|e| panic!("{next}: {e}"));
        }
        let url = response.url().clone();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .text()
            .await
            .unwrap_or_else(|e| panic!("{url}: body: {e}"));
        Visit {
            url,
            status,
            headers,
            body,
            redirects,
        }
    }

    /// A `fetch()` from the page: `Accept: application/json`, `Sec-Fetch-Mode: cors`, a JSON body
    /// when given. Returns the status and the JSON answer (`Null` when the body is not JSON).
    pub async fn fetch_json(
        &self,
        method: Method,
        url: &str,
        body: Option<&str>,
    ) -> (StatusCode, serde_json::Value) {
        let mut request = self
            .client
            .request(method.clone(), url)
            .header(ACCEPT, "application/json")
            .header("Sec-Fetch-Mode", "cors")
            .header("Sec-Fetch-Dest", "empty");
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_owned());
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status();
        let text = response
            .text()
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: body: {e}"));
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// `POST` JSON to a simulator control endpoint (`/_sim/…`) and read its JSON answer.
    pub async fn post_json(&self, url: &str, body: &serde_json::Value) -> serde_json::Value {
        let response = self
            .client
            .post(url)
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("POST {url}: {status} not JSON ({e}): {text}"))
    }
}
