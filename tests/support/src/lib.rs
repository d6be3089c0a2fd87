//! What the tests of every crate share to act as a user: one test [`Browser`].
//!
//! A browser keeps cookies as a real one does ([`jar`]: by host, ports ignored, `Path`, `Max-Age`
//! and `Secure` honoured), sends the headers a browser sends for a page load, a form posted from
//! a page, or a `fetch` (`Accept`, `Sec-Fetch-*`, `Origin`, `User-Agent`), and sends each request
//! once ([`Request::send`], the answer as it came, redirects included) or follows redirects as
//! page loads ([`Request::follow`], every hop kept). The same requests can be built as
//! `http::request::Parts` without sending them ([`Request::into_parts`]), for a test that calls
//! the login flow in-process and keeps the cookies of its answers
//! ([`Browser::keep_cookies`]). [`html`] reads forms and elements, and [`ConsentPage`] the
//! simulator's `snsapi_userinfo` consent page.
//!
//! Acting as a WeChat user means WeChat's in-app browser: [`Browser::wechat`] sends its
//! `User-Agent` ([`WECHAT_USER_AGENT`]); [`Browser::desktop`] is a desktop Chrome.
//!
//! ```no_run
//! # async fn example() {
//! use wechat_test_support::{Browser, ConsentPage};
//!
//! let browser = Browser::wechat();
//! // A page load, redirects followed: to WeChat's consent page.
//! let consent = browser.page("http://127.0.0.1:3000/shop").follow().await;
//! let page = ConsentPage::read(&consent).expect("the consent page");
//! // "Allow" as the second user: back through the app's callback to the shop.
//! let shop = browser.consent(&page, Some("o-bob"), "allow").follow().await;
//! assert_eq!(shop.status, 200);
//! assert!(browser.cookie("http://127.0.0.1:3000/", "wechat_session").is_some());
//! # }
//! ```

mod browser;
mod consent;
pub mod html;
pub mod jar;

pub use browser::{Answer, BrowseError, Browser, BrowserBuilder, Request, Visit};
pub use consent::ConsentPage;

/// Polls `check` every 10 ms until it holds, for at most 10 seconds (what a test waits for
/// something the browser set off, e.g. a payment notification).
///
/// # Panics
/// With `what` when the time is up.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The `User-Agent` of WeChat's in-app browser (WeChat 8.0.47 on iOS 17): what a WeChat user's
/// requests carry.
pub const WECHAT_USER_AGENT: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN";

/// The `User-Agent` of a desktop Chrome (on Windows): a visitor outside WeChat.
pub const DESKTOP_USER_AGENT: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

/// Safari on an iPhone: a visitor outside WeChat on a phone (H5 payment, no WeChat web login).
pub const PHONE_USER_AGENT: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
