//! Running one browser scenario: skip or launch, run, screenshot, report.

use std::fmt::Write as _;

use crate::browser::Browser;
use crate::error::Result;
use crate::tools::Tools;

/// Scenarios of one test binary run one at a time: one Chromium is plenty on a small machine.
/// (An async mutex: tests in one binary run on separate threads, each with its own runtime.)
static ONE_BROWSER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How much of the page's text a failure report shows.
const PAGE_TEXT_IN_REPORT: usize = 1500;

/// Runs scenario `name` in a fresh headless Chromium, then saves its screenshot to
/// `target/browser-screenshots/<name>.png`, whether it passed or failed.
///
/// Without Chromium or ChromeDriver on `PATH` it prints one line saying how to install them and
/// returns (the test passes, skipped); with `CI=true` it fails instead. Scenarios in one process
/// run one after the other.
///
/// `body` starts whatever it needs (a demo, a simulator) itself, so that nothing is started
/// when the scenario is skipped.
///
/// # Panics
///
/// This is the test's verdict: it panics when the browser cannot start, when `body` returns an
/// error (with the page's URL, its text, the browser console and the screenshot's path in the
/// message), or when the screenshot cannot be saved.
pub async fn run_scenario<F>(name: &str, body: F)
where
    F: AsyncFnOnce(&Browser) -> Result<()>,
{
    let _one_at_a_time = ONE_BROWSER_AT_A_TIME.lock().await;
    let tools = match Tools::locate_or_skip(name) {
        Ok(Some(tools)) => tools,
        Ok(None) => return,
        Err(e) => panic!("browser scenario {name}: {e}"),
    };
    let browser = match Browser::launch(&tools).await {
        Ok(browser) => browser,
        Err(e) => panic!("browser scenario {name}: cannot start Chromium: {e}"),
    };
    let outcome = body(&browser).await;
    let shot = browser.save_screenshot(name).await;
    match outcome {
        Ok(()) => {
            if let Err(e) = shot {
                panic!("browser scenario {name} passed, but its screenshot failed: {e}");
            }
        }
        Err(e) => {
            let report = failure_report(&browser, shot).await;
            panic!("browser scenario {name} failed: {e}\n{report}");
        }
    }
    if let Err(e) = browser.quit().await {
        panic!("browser scenario {name}: ending the WebDriver session failed: {e}");
    }
}

/// What the page looked like when a scenario failed.
async fn failure_report(browser: &Browser, shot: Result<std::path::PathBuf>) -> String {
    let mut report = String::new();
    match shot {
        Ok(path) => {
            let _ = writeln!(report, "screenshot: {}", path.display());
        }
        Err(e) => {
            let _ = writeln!(report, "screenshot failed: {e}");
        }
    }
    match browser.current_url().await {
        Ok(url) => {
            let _ = writeln!(report, "page URL: {url}");
        }
        Err(e) => {
            let _ = writeln!(report, "page URL unknown: {e}");
        }
    }
    if let Ok(text) = browser.page_text().await {
        let shown: String = text.chars().take(PAGE_TEXT_IN_REPORT).collect();
        let _ = writeln!(report, "page text:\n{shown}");
    }
    if let Ok(lines) = browser.console_log().await {
        // Pages without an icon make Chromium log a 404 for /favicon.ico: noise here.
        let lines: Vec<String> = lines
            .into_iter()
            .filter(|l| !l.contains("/favicon.ico"))
            .collect();
        if !lines.is_empty() {
            let _ = writeln!(report, "browser console:\n{}", lines.join("\n"));
        }
    }
    report
}
