//! End-to-end tests of both demos in headless Chromium.
//!
//! This package holds a small WebDriver client ([`Browser`]) that starts Debian's
//! `chromedriver` as a child process on a free port of 127.0.0.1, and through it a headless
//! Chromium with [`CHROMIUM_FLAGS`] and a fresh temporary profile; and the tests (in `tests/`)
//! that drive the axum and actix demos, each with its embedded wechat-sim, through the whole
//! flow a user meets: the consent page, the shop page, `wx.config`, the pay sheet.
//!
//! Running them needs `chromium` and `chromedriver` on `PATH`
//! (`apt-get install chromium chromium-driver fonts-noto-cjk`). Without them each browser test
//! prints one line saying so and passes; with `CI=true` in the environment it fails instead.
//! Every scenario saves a screenshot to `target/browser-screenshots/<scenario>.png`
//! (`$CARGO_TARGET_DIR/browser-screenshots/` when that is set).
//!
//! ```no_run
//! use std::time::Duration;
//! use wechat_browser_tests::{Browser, Tools};
//!
//! # #[tokio::main] async fn main() -> Result<(), wechat_browser_tests::Error> {
//! let Some(tools) = Tools::locate_or_skip("example")? else { return Ok(()) };
//! let browser = Browser::launch(&tools).await?;
//! browser.goto("http://127.0.0.1:3000/").await?;
//! let nickname = browser.wait_for("#nickname", Duration::from_secs(10)).await?.text().await?;
//! browser.save_screenshot("example").await?;
//! browser.quit().await?;
//! # let _ = nickname; Ok(()) }
//! ```
//!
//! Scenarios normally go through [`run_scenario`], which adds the skip rule, the screenshot
//! (also on failure) and a failure report with the page's URL, text and console.
//!
//! The tests (`cargo test -p wechat-browser-tests`, one binary, `tests/chromium/`):
//!
//! - `simulator::*`: the browser against wechat-sim alone, on a page of the test's own: the
//!   consent page (allow, deny), `wx.config` (ready on a URL with a query and a `#fragment`,
//!   `config:invalid signature` for a wrong one), the pay sheet (cancel, confirm);
//! - `on_axum::*` and `on_actix::*`: the same scenarios against each demo (first visit →
//!   consent → the user's nickname; `wx.ready` on URLs with a query and a fragment; pay →
//!   confirm → paid once in the order store, even after a duplicate notification; pay → cancel →
//!   unpaid; denied consent → a clear page; a tampered session cookie → login again; the
//!   simulator's console following a payment, then re-sending its notification).
//!
//! The axum login scenario also writes the README's screenshot, `docs/demo.png`, and the axum
//! console scenario the simulator README's, `docs/sim-console.png`, when they are missing or
//! when `UPDATE_DOCS_SCREENSHOT=1` (each fails if its PNG would exceed 100 KB).

mod artifacts;
mod browser;
mod driver;
mod error;
mod scenario;
mod tools;

pub use artifacts::{SCREENSHOT_DIR, screenshot_path, target_dir, workspace_root, write_png};
pub use browser::{
    Browser, CHROMIUM_FLAGS, Cookie, DEFAULT_WAIT, Element, WINDOW_SIZE, Wait, wait_until,
};
pub use driver::TempDir;
pub use error::{Error, Result, ensure};
pub use scenario::run_scenario;
pub use tools::{SKIP_HINT, Tools};

/// Re-exported for [`Browser::command`]'s `method`.
pub use reqwest::Method;
