//! A headless Chromium driven through ChromeDriver's W3C WebDriver protocol (JSON over HTTP).
//!
//! Only the commands the scenarios need: navigation, elements (find, click, text), scripts,
//! cookies, window size, screenshots and the console log. Every wait is bounded
//! ([`Browser::wait_for`], [`wait_until`]); every HTTP exchange with ChromeDriver has a timeout.
//!
//! Reference: <https://www.w3.org/TR/webdriver2/>.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

use crate::artifacts;
use crate::driver::DriverProcess;
use crate::error::{Error, Result};
use crate::tools::Tools;

/// The Chromium command-line flags, besides `--user-data-dir=<fresh temporary folder>`.
///
/// The network ones keep Chromium from calling Google's services, which this machine (and many
/// CI machines) cannot reach.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
];

/// The window size set at launch (outer width and height in CSS pixels): about a phone's, like
/// the WeChat browser the demos are made for.
pub const WINDOW_SIZE: (u32, u32) = (480, 800);

/// The key of an element reference in WebDriver JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Bound on one WebDriver command (a page load included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on creating the session (Chromium's start).
const SESSION_TIMEOUT: Duration = Duration::from_secs(90);
/// Chromium's own page-load timeout, below [`COMMAND_TIMEOUT`] so that it answers first.
const PAGE_LOAD_TIMEOUT_MS: u64 = 30_000;
/// Chromium's own script timeout.
const SCRIPT_TIMEOUT_MS: u64 = 20_000;
/// How often bounded waits poll.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// The default bound of the `wait_*` helpers that take no timeout.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(15);

/// The outcome of one probe of [`wait_until`].
#[derive(Debug)]
pub enum Wait<T> {
    /// Done, with the value.
    Ready(T),
    /// Not yet; the text says what was seen (it ends up in the timeout message).
    Pending(String),
}

/// Calls `probe` every 100 ms until it returns [`Wait::Ready`], fails, or `timeout` passes.
///
/// A probe that hangs is cut off at the deadline too.
///
/// # Errors
///
/// The probe's error, or [`Error::Timeout`] naming `what` and the last [`Wait::Pending`] text.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Wait<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::new();
    loop {
        match tokio::time::timeout_at(deadline, probe()).await {
            Ok(Ok(Wait::Ready(value))) => return Ok(value),
            Ok(Ok(Wait::Pending(seen))) => last = seen,
            Ok(Err(e)) => return Err(e),
            Err(_elapsed) => break,
        }
        if tokio::time::Instant::now() + POLL_INTERVAL >= deadline {
            break;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    Err(Error::Timeout {
        what: what.to_owned(),
        after: timeout,
        last: if last.is_empty() {
            String::new()
        } else {
            format!("; last seen: {last}")
        },
    })
}

/// A cookie as WebDriver sees it (`HttpOnly` ones included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    /// The name.
    pub name: String,
    /// The value.
    pub value: String,
    /// The path.
    pub path: Option<String>,
    /// The domain, as Chromium reports it (`None`: the current page's host).
    pub domain: Option<String>,
    /// The `Secure` flag.
    pub secure: bool,
    /// The `HttpOnly` flag.
    pub http_only: bool,
    /// `Strict`, `Lax` or `None`.
    pub same_site: Option<String>,
}

impl Cookie {
    fn from_json(v: &Value) -> Option<Cookie> {
        let text = |key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
        Some(Cookie {
            name: text("name")?,
            value: text("value")?,
            path: text("path"),
            domain: text("domain"),
            secure: v.get("secure").and_then(Value::as_bool).unwrap_or(false),
            http_only: v.get("httpOnly").and_then(Value::as_bool).unwrap_or(false),
            same_site: text("sameSite"),
        })
    }

    fn to_json(&self) -> Value {
        let mut c = json!({
            "name": self.name,
            "value": self.value,
            "secure": self.secure,
            "httpOnly": self.http_only,
        });
        if let Some(path) = &self.path {
            c["path"] = json!(path);
        }
        if let Some(domain) = &self.domain {
            c["domain"] = json!(domain);
        }
        if let Some(same_site) = &self.same_site {
            c["sameSite"] = json!(same_site);
        }
        c
    }
}

/// A headless Chromium with a fresh profile, driven by its own ChromeDriver.
///
/// Dropping it ends the WebDriver session (Chromium quits), kills ChromeDriver and removes the
/// temporary profile.
#[derive(Debug)]
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`.
    session_url: String,
    driver: DriverProcess,
}

impl Browser {
    /// Starts ChromeDriver and, through it, Chromium with [`CHROMIUM_FLAGS`] and a fresh
    /// `--user-data-dir`, in a [`WINDOW_SIZE`] window.
    ///
    /// # Errors
    ///
    /// [`Error::DriverStart`] when ChromeDriver does not come up, [`Error::WebDriver`] when
    /// Chromium does not start (the message is ChromeDriver's), [`Error::Io`] for the
    /// temporary folder.
    pub async fn launch(tools: &Tools) -> Result<Browser> {
        let mut driver = DriverProcess::start(&tools.chromedriver).await?;
        let profile = driver.profile_dir()?;
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|&f| f.to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "timeouts": {
                        "implicit": 0,
                        "pageLoad": PAGE_LOAD_TIMEOUT_MS,
                        "script": SCRIPT_TIMEOUT_MS,
                    },
                    "goog:chromeOptions": {
                        "binary": tools.chromium.display().to_string(),
                        "args": args,
                    },
                    "goog:loggingPrefs": { "browser": "ALL" },
                }
            }
        });
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(COMMAND_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|source| Error::Http {
                command: "build client".to_owned(),
                source,
            })?;
        let command = "POST /session";
        let reply = http
            .post(format!("{}/session", driver.url()))
            .timeout(SESSION_TIMEOUT)
            .json(&capabilities)
            .send()
            .await
            .map_err(|source| Error::Http {
                command: command.to_owned(),
                source,
            })?;
        let value = decode(command, reply).await.map_err(|e| match e {
            Error::WebDriver { error, message, .. } => Error::WebDriver {
                command: command.to_owned(),
                error,
                message: format!("{message}\nchromedriver output:\n{}", driver.log_tail()),
            },
            other => other,
        })?;
        let id = value
            .get("sessionId")
            .and_then(Value::as_str)
            .ok_or_else(|| protocol_error(command, &value))?
            .to_owned();
        driver.set_session(id.clone());
        let browser = Browser {
            http,
            session_url: format!("{}/session/{id}", driver.url()),
            driver,
        };
        browser
            .set_window_size(WINDOW_SIZE.0, WINDOW_SIZE.1)
            .await?;
        Ok(browser)
    }

    /// Ends the session (Chromium quits) and stops ChromeDriver, reporting errors that drop
    /// would swallow.
    ///
    /// # Errors
    ///
    /// The error of `DELETE /session/{id}`.
    pub async fn quit(mut self) -> Result<()> {
        let result = self.command(Method::DELETE, "", None).await;
        if result.is_ok() {
            self.driver.clear_session();
        }
        drop(self);
        result.map(|_| ())
    }

    /// Sends one WebDriver command for this session and returns its `value`.
    ///
    /// `path` is relative to `/session/{id}` (`""` for the session itself, `"/url"`…). POST
    /// commands always get a JSON body (`{}` when `body` is `None`), as the protocol requires.
    ///
    /// # Errors
    ///
    /// [`Error::Http`] (no answer in time…), [`Error::WebDriver`] (the command failed).
    pub async fn command(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let label = format!("{method} /session/{{id}}{path}");
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.session_url));
        if method == Method::POST {
            request = request.json(&body.unwrap_or_else(|| json!({})));
        }
        let reply = request.send().await.map_err(|source| Error::Http {
            command: label.clone(),
            source,
        })?;
        decode(&label, reply).await
    }

    // ------------------------------------------------------------------------ navigation

    /// Loads `url` and waits for the page load to finish (following redirects).
    ///
    /// # Errors
    ///
    /// [`Error::WebDriver`] (e.g. `timeout` when the page does not load within 30 s).
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.command(Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .map(|_| ())
    }

    /// The current page's URL.
    ///
    /// # Errors
    ///
    /// As [`Browser::command`].
    pub async fn current_url(&self) -> Result<String> {
        let v = self.command(Method::GET, "/url", None).await?;
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| protocol_error("GET /url", &v))
    }

    /// The current page's title.
    ///
    /// # Errors
    ///
    /// As [`Browser::command`].
    pub async fn title(&self) -> Result<String> {
        let v = self.command(Method::GET, "/title", None).await?;
        v.as_str()
            .map(str::to_owned)
            .ok_or_else(|| protocol_error("GET /title", &v))
    }

    /// Reloads the current page.
    ///
    /// # Errors
    ///
    /// As [`Browser::command`].
    pub async fn refresh(&self) -> Result<()> {
        self.command(Method::POST, "/refresh", None)
            .await
            .map(|_| ())
    }

    /// Sets the window's outer size in CSS pixels.
    ///
    /// # Errors
    ///
    /// As [`Browser::command`].
    pub async fn set_window_size(&self, width: u32, height: u32) -> Result<()> {
        self.command(
            Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await
        .map(|_| ())
    }

    // ------------------------------------------------------------------------ elements

    /// The first element matching the CSS selector `css`.
    ///
    /// # Errors
    ///
    /// [`Error::WebDriver`] `no such element` when there is none (see
    /// [`Error::is_no_such_element`]).
    pub async fn find(&self, css: &str) -> Result<Element<'_>> {
        let v = self
            .command(
                Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await?;
        let id = v
            .get(ELEMENT_KEY)
            .and_then(Value::as_str)
            .ok_or_else(|| protocol_error("POST /element", &v))?;
        Ok(Element {
            browser: self,
            id: id.to_owned(),
            css: css.to_owned(),
        })
    }

    /// The first element matching `css`, or `None` when there is none right now.
    ///
    /// # Errors
    ///
    /// As [`Browser::command`], but for `no such element`.
    pub async fn try_find(&self, css: &str) -> Result<Option<Element<'_>>> {
        match self.find(css).await {
            Ok(el) => Ok(Some(el)),
            Err(e) if e.is_no_such_element() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Waits (at most `timeout`) for an element matching `css` that is displayed.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] naming the selector and the page's URL, or a WebDriver error.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Result<Element<'_>> {
        wait_until(&format!("element {css}"), timeout, || async {
            match self.try_find(css).await? {
                Some(el) => match el.is_displayed().await {
                    Ok(true) => Ok(Wait::Ready(el)),
                    Ok(false) => Ok(Wait::Pending(format!("{css} hidden"))),
                    // Replaced between find and check (page navigated): try again.
                    Err(Error::WebDriver { error, .. }) if error == "stale element reference" => {
                        Ok(Wait::Pending(format!("{css} went stale")))
                    }
                    Err(e) => Err(e),
                },
                None => Ok(Wait::Pending(format!(
                    "no {css} on {}",
                    self.current_url().await.unwrap_or_default()
                ))),
            }
        })
        .await
    }

    /// Waits (at most `timeout`) until the text of the element matching `css` satisfies
    /// `accept`, and returns that text.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] with the last text seen, or a WebDriver error.
    pub async fn wait_for_text(
        &self,
        css: &str,
        timeout: Duration,
        what: &str,
        accept: impl Fn(&str) -> bool,
    ) -> Result<String> {
        wait_until(&format!("{css} to show {what}"), timeout, || async {
            let Some(el) = self.try_find(css).await? else {
                return Ok(Wait::Pending(format!(
                    "no {css} on {}",
                    self.current_url().await.unwrap_or_default()
                )));
            };
            match el.text().await {
                Ok(text) if accept(&text) => Ok(Wait::Ready(text)),
                Ok(text) => Ok(Wait::Pending(format!("{css} = {text:?}"))),
                Err(Error::WebDriver { error, .. }) if error == "stale element reference" => {
                    Ok(Wait::Pending(format!("{css} went stale")))
                }
                Err(e) => Err(e),
            }
        })
        .await
    }

    /// Waits (at most `timeout`) until the current URL satisfies `accept`, and returns it.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] with the last URL seen, or a WebDriver error.
    pub async fn wait_for_url(
        &self,
        timeout: Duration,
        what: &str,
        accept: impl Fn(&str) -> bool,
    ) -> Result<String> {
        wait_until(&format!("the URL to be {what}"), timeout, || async {
            let url = self.current_url().await?;
            if accept(&url) {
                Ok(Wait::Ready(url))
            } else {
                Ok(Wait::Pending(url))
            }
        })
        .await
    }

    /// Waits for `css` to be displayed (at most `timeout`), then clicks it.
    ///
    /// # Errors
    ///
    /// As [`Browser::wait_for`] and [`Element::click`].
    pub async fn click(&self, css: &str, timeout: Duration) -> Result<()> {
        self.wait_for(css, timeout).await?.click().await
    }

    /// The visible text of the whole page (`document.body.innerText`, empty without a body).
    ///
    /// # Errors
    ///
    /// As [`Browser::execute`].
    pub async fn page_text(&self) -> Result<String> {
        let v = self
            .execute(
                "return document.body ? document.body.innerText : '';",
                vec![],
            )
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    // ------------------------------------------------------------------------ scripts

    /// Runs `script` (a function body; `arguments[i]` are `args`) in the page and returns what
    /// it returns.
    ///
    /// # Errors
    ///
    /// [`Error::WebDriver`] `javascript error` when it throws.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.command(
            Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// The browser console's messages since the last call (`LEVEL message` per line).
    ///
    /// # Errors
    ///
    /// As [`Browser::command`] (ChromeDriver's `se/log` extension).
    pub async fn console_log(&self) -> Result<Vec<String>> {
        let v = self
            .command(Method::POST, "/se/log", Some(json!({ "type": "browser" })))
            .await?;
        Ok(v.as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| {
                        format!(
                            "{} {}",
                            e["level"].as_str().unwrap_or("?"),
                            e["message"].as_str().unwrap_or_default()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    // ------------------------------------------------------------------------ cookies

    /// All cookies visible to the current page.
    ///
    /// # Errors
    ///
    /// As [`Browser::command`].
    pub async fn cookies(&self) -> Result<Vec<Cookie>> {
        let v = self.command(Method::GET, "/cookie", None).await?;
        let list = v
            .as_array()
            .ok_or_else(|| protocol_error("GET /cookie", &v))?;
        Ok(list.iter().filter_map(Cookie::from_json).collect())
    }

    /// The cookie called `name`, if the current page sees one.
    ///
    /// # Errors
    ///
    /// As [`Browser::command`].
    pub async fn cookie(&self, name: &str) -> Result<Option<Cookie>> {
        Ok(self.cookies().await?.into_iter().find(|c| c.name == name))
    }

    /// Adds (or replaces) a cookie for the current page's host.
    ///
    /// # Errors
    ///
    /// As [`Browser::command`] (`unable to set cookie` when the page's host does not match).
    pub async fn add_cookie(&self, cookie: &Cookie) -> Result<()> {
        self.command(
            Method::POST,
            "/cookie",
            Some(json!({ "cookie": cookie.to_json() })),
        )
        .await
        .map(|_| ())
    }

    /// Deletes the cookie called `name` (no error when there is none).
    ///
    /// # Errors
    ///
    /// As [`Browser::command`].
    pub async fn delete_cookie(&self, name: &str) -> Result<()> {
        self.command(Method::DELETE, &format!("/cookie/{name}"), None)
            .await
            .map(|_| ())
    }

    // ------------------------------------------------------------------------ screenshots

    /// A PNG of the current viewport.
    ///
    /// # Errors
    ///
    /// As [`Browser::command`]; [`Error::Protocol`] when the reply is not base64.
    pub async fn screenshot_png(&self) -> Result<Vec<u8>> {
        let v = self.command(Method::GET, "/screenshot", None).await?;
        let b64 = v
            .as_str()
            .ok_or_else(|| protocol_error("GET /screenshot", &v))?;
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| Error::Protocol {
                command: "GET /screenshot".to_owned(),
                reply: format!("not base64: {e}"),
            })
    }

    /// Saves a screenshot as `target/browser-screenshots/<name>.png` and returns its path.
    ///
    /// # Errors
    ///
    /// As [`Browser::screenshot_png`] and [`artifacts::write_png`].
    pub async fn save_screenshot(&self, name: &str) -> Result<PathBuf> {
        let png = self.screenshot_png().await?;
        let path = artifacts::screenshot_path(name);
        artifacts::write_png(&path, &png)?;
        Ok(path)
    }
}

/// An element of the current page.
#[derive(Debug)]
pub struct Element<'b> {
    browser: &'b Browser,
    id: String,
    /// The selector it was found with (for messages).
    css: String,
}

impl Element<'_> {
    fn path(&self, tail: &str) -> String {
        format!("/element/{}{tail}", self.id)
    }

    /// The selector this element was found with.
    pub fn selector(&self) -> &str {
        &self.css
    }

    /// Clicks it (scrolled into view first, as WebDriver does).
    ///
    /// # Errors
    ///
    /// [`Error::WebDriver`] (`element click intercepted`, `element not interactable`…).
    pub async fn click(&self) -> Result<()> {
        self.browser
            .command(Method::POST, &self.path("/click"), None)
            .await
            .map(|_| ())
    }

    /// Its rendered text.
    ///
    /// # Errors
    ///
    /// As [`Browser::command`].
    pub async fn text(&self) -> Result<String> {
        let v = self
            .browser
            .command(Method::GET, &self.path("/text"), None)
            .await?;
        Ok(v.as_str().unwrap_or_default().to_owned())
    }

    /// The DOM property `name` (`src`, `value`, `naturalWidth`…), `Value::Null` when unset.
    ///
    /// # Errors
    ///
    /// As [`Browser::command`].
    pub async fn property(&self, name: &str) -> Result<Value> {
        self.browser
            .command(Method::GET, &self.path(&format!("/property/{name}")), None)
            .await
    }

    /// Whether it is displayed.
    ///
    /// # Errors
    ///
    /// As [`Browser::command`].
    pub async fn is_displayed(&self) -> Result<bool> {
        let v = self
            .browser
            .command(Method::GET, &self.path("/displayed"), None)
            .await?;
        Ok(v.as_bool().unwrap_or(false))
    }
}

/// Decodes a WebDriver reply: `value` on success, [`Error::WebDriver`] on a W3C error.
async fn decode(command: &str, reply: reqwest::Response) -> Result<Value> {
    let status = reply.status();
    let body: Value = reply.json().await.map_err(|source| Error::Http {
        command: command.to_owned(),
        source,
    })?;
    let value = body.get("value").cloned().unwrap_or(Value::Null);
    if let Some(error) = value.get("error").and_then(Value::as_str) {
        let message = value
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        return Err(Error::WebDriver {
            command: command.to_owned(),
            error: error.to_owned(),
            // ChromeDriver appends its build info and a stack trace after the first lines.
            message: message.lines().take(3).collect::<Vec<_>>().join(" | "),
        });
    }
    if !status.is_success() {
        return Err(protocol_error(command, &body));
    }
    Ok(value)
}

fn protocol_error(command: &str, value: &Value) -> Error {
    let mut reply = value.to_string();
    if reply.len() > 300 {
        let cut = (0..=300)
            .rev()
            .find(|&i| reply.is_char_boundary(i))
            .unwrap_or(0);
        reply.truncate(cut);
        reply.push('…');
    }
    Error::Protocol {
        command: command.to_owned(),
        reply,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_exactly_the_documented_ones() {
        assert_eq!(
            CHROMIUM_FLAGS,
            [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ]
        );
    }

    #[test]
    fn cookies_round_trip_through_json() {
        let v = json!({
            "name": "wechat_session", "value": "abc", "path": "/", "domain": "127.0.0.1",
            "secure": false, "httpOnly": true, "sameSite": "Lax", "expiry": 1
        });
        let c = Cookie::from_json(&v).expect("cookie");
        assert!(c.http_only);
        assert_eq!(c.same_site.as_deref(), Some("Lax"));
        let back = c.to_json();
        assert_eq!(back["httpOnly"], json!(true));
        assert_eq!(back["domain"], json!("127.0.0.1"));
        assert!(Cookie::from_json(&json!({ "value": "x" })).is_none());
    }

    #[tokio::test]
    async fn wait_until_returns_when_ready() {
        let mut n = 0;
        let got = wait_until("n to reach 3", Duration::from_secs(5), || {
            n += 1;
            let now = n;
            async move {
                Ok(if now >= 3 {
                    Wait::Ready(now)
                } else {
                    Wait::Pending(format!("n={now}"))
                })
            }
        })
        .await
        .expect("ready");
        assert_eq!(got, 3);
    }

    #[tokio::test]
    async fn wait_until_times_out_with_the_last_observation() {
        let started = std::time::Instant::now();
        let err = wait_until("never", Duration::from_millis(300), || async {
            Ok(Wait::<()>::Pending("still no".to_owned()))
        })
        .await
        .expect_err("must time out");
        assert!(started.elapsed() < Duration::from_secs(2));
        let text = err.to_string();
        assert!(
            text.contains("never") && text.contains("still no"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn wait_until_cuts_off_a_hanging_probe() {
        let started = std::time::Instant::now();
        let err = wait_until("a hanging probe", Duration::from_millis(200), || async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(Wait::Ready(()))
        })
        .await
        .expect_err("must time out");
        assert!(matches!(err, Error::Timeout { .. }));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn wait_until_passes_probe_errors_through() {
        let err = wait_until("x", Duration::from_secs(5), || async {
            Err::<Wait<()>, _>(Error::Check("boom".to_owned()))
        })
        .await
        .expect_err("error");
        assert_eq!(err.to_string(), "boom");
    }
}
