//! The scenarios, written once for any demo ([`Demo`]) and instantiated for axum and actix by
//! [`browser_suite!`]: what a user meets in a browser, from the first visit to the payment.
//!
//! Each scenario starts the demo with its embedded wechat-sim on 127.0.0.1 and a fresh SQLite
//! database, drives a fresh Chromium through it, and checks the page, the simulator and the
//! order store. Screenshots: `target/browser-screenshots/<framework>-<scenario>.png`.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use demo_shop::sim::{SimUser, USERS};
use demo_shop::{CALLBACK_PATH, OrderStore, PayVersion, Settings};
use serde_json::{Value, json};
use wechat_browser_tests::{
    Browser, Cookie, DEFAULT_WAIT, Error, Method, Result, TempDir, Wait, ensure, wait_until,
    workspace_root, write_png,
};
use wechat_core::OutTradeNo;
use wechat_core::routes::OrderStatus;
use wechat_sim::RunningSim;

/// The session cookie's name (wechat-core's default, used by both demos).
const SESSION_COOKIE: &str = "wechat_session";
/// Bound on the payment's end state: the page polls the order once a second, 30 times.
const PAYMENT_WAIT: Duration = Duration::from_secs(40);
/// Where the README's screenshot goes, relative to the workspace root.
const DOCS_SCREENSHOT: &str = "docs/demo.png";
/// Where the simulator README's screenshot of its console goes, relative to the workspace root.
const CONSOLE_SCREENSHOT: &str = "docs/sim-console.png";
/// The console's window: wide enough for its tables, small enough for a small PNG.
const CONSOLE_WINDOW: (u32, u32) = (1024, 700);
/// Bound on each wait for the console (it reloads once a second).
const CONSOLE_WAIT: Duration = Duration::from_secs(10);
/// Set to `1` to retake [`DOCS_SCREENSHOT`] and [`CONSOLE_SCREENSHOT`] (they are only written
/// when missing otherwise).
const UPDATE_DOCS_SCREENSHOT: &str = "UPDATE_DOCS_SCREENSHOT";
/// The README's screenshot must stay small.
const DOCS_SCREENSHOT_MAX_BYTES: usize = 100 * 1024;

/// A demo under test: how to start it and what it is made of.
pub(crate) trait Demo: Sized {
    /// `axum` or `actix`, for screenshot names and messages.
    const FRAMEWORK: &'static str;

    /// Starts the demo with `settings` and returns once it accepts connections.
    fn start(settings: Settings) -> impl Future<Output = demo_shop::Result<Self>>;

    /// `http://127.0.0.1:PORT`, no trailing slash.
    fn base_url(&self) -> &str;

    /// The embedded simulator.
    fn sim(&self) -> Option<&RunningSim>;

    /// The SQLite order store.
    fn store(&self) -> &OrderStore;

    /// Stops the demo and its simulator.
    fn stop(self) -> impl Future<Output = ()>;
}

/// Declares one `#[tokio::test]` per scenario for the [`Demo`] type `$demo` in module `$name`.
macro_rules! browser_suite {
    ($name:ident, $demo:ty) => {
        mod $name {
            browser_suite!(@tests $demo;
                first_visit_logs_in_and_shows_the_nickname,
                jssdk_is_ready_on_urls_with_query_and_fragment,
                denying_consent_shows_a_clear_page,
                a_tampered_session_cookie_logs_in_again,
                the_console_follows_a_payment_and_resends_its_notification,
            );
            /// The payment scenarios with WeChat Pay API v3 (the demos' default).
            mod pay_v3 {
                browser_suite!(@pay $demo; V3;
                    pay_confirm_marks_the_order_paid_once,
                    pay_cancel_leaves_the_order_unpaid,
                );
            }
            /// The payment scenarios with WeChat Pay API v2.
            mod pay_v2 {
                browser_suite!(@pay $demo; V2;
                    pay_confirm_marks_the_order_paid_once,
                    pay_cancel_leaves_the_order_unpaid,
                );
            }
        }
    };
    (@pay $demo:ty; $version:ident; $($scenario:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                $crate::demos::$scenario::<$demo>(demo_shop::PayVersion::$version).await;
            }
        )+
    };
    (@tests $demo:ty; $($scenario:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                $crate::demos::$scenario::<$demo>().await;
            }
        )+
    };
}

/// A started demo with its database folder (removed after the demo stops).
struct Running<D: Demo> {
    demo: D,
    _db_dir: TempDir,
}

impl<D: Demo> Running<D> {
    async fn start(version: PayVersion) -> Result<Running<D>> {
        let db_dir = TempDir::new("wechat-browser-db")?;
        let mut settings = Settings::embedded(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            db_dir.path().join("orders.sqlite"),
        );
        settings.pay_version = version;
        let demo = D::start(settings)
            .await
            .map_err(|e| Error::Check(format!("the {} demo did not start: {e}", D::FRAMEWORK)))?;
        Ok(Running {
            demo,
            _db_dir: db_dir,
        })
    }

    fn base(&self) -> &str {
        self.demo.base_url()
    }

    fn sim(&self) -> Result<&RunningSim> {
        self.demo.sim().ok_or_else(|| {
            Error::Check(format!(
                "the {} demo started without its embedded simulator (is WECHAT_APPID set?)",
                D::FRAMEWORK
            ))
        })
    }

    fn store(&self) -> &OrderStore {
        self.demo.store()
    }

    async fn stop(self) {
        self.demo.stop().await;
    }
}

/// `<framework>-<scenario>`, the screenshot's name.
fn shot<D: Demo>(scenario: &str) -> String {
    format!("{}-{scenario}", D::FRAMEWORK)
}

/// The first configured user, whom the consent page preselects.
fn first_user() -> SimUser {
    USERS[0]
}

/// The other configured user.
fn second_user() -> SimUser {
    USERS[1]
}

/// Waits for the simulator's consent page and checks it is the one for this demo's app.
async fn expect_consent_page(browser: &Browser, sim: &RunningSim) -> Result<()> {
    browser.wait_for("#sim-consent-allow", DEFAULT_WAIT).await?;
    let url = browser.current_url().await?;
    ensure(url.starts_with(&sim.base_url()), || {
        format!("the consent page is not the simulator's: {url}")
    })?;
    ensure(url.contains("scope=snsapi_userinfo"), || {
        format!("the login does not ask for snsapi_userinfo: {url}")
    })
}

/// Allows on the consent page, as `user` (the consent page lists every configured user).
async fn allow_as(browser: &Browser, user: &SimUser) -> Result<()> {
    let radio = format!(
        r#"input[type="radio"][name="openid"][value="{}"]"#,
        user.openid()
    );
    browser.click(&radio, DEFAULT_WAIT).await?;
    browser.click("#sim-consent-allow", DEFAULT_WAIT).await
}

/// Waits until the shop page shows `user`'s nickname, and checks its URL and openid.
async fn expect_shop_page_of(browser: &Browser, base: &str, user: &SimUser) -> Result<()> {
    browser
        .wait_for_text("#nickname", DEFAULT_WAIT, user.nickname, |t| {
            t == user.nickname
        })
        .await?;
    let url = browser.current_url().await?;
    ensure(url.starts_with(&format!("{base}/")), || {
        format!("the shop page is not on the demo: {url}")
    })?;
    let openid = browser.find("#openid").await?.text().await?;
    ensure(openid == user.openid(), || {
        format!("the page shows openid {openid}, not {}", user.openid())
    })
}

/// From a fresh browser: the shop page, the consent page, allow as `user`, the shop page.
async fn log_in(browser: &Browser, base: &str, sim: &RunningSim, user: &SimUser) -> Result<()> {
    browser.goto(&format!("{base}/")).await?;
    expect_consent_page(browser, sim).await?;
    allow_as(browser, user).await?;
    expect_shop_page_of(browser, base, user).await
}

/// Waits for `#jssdk-status` to say `ready`; anything else it ends with (wx.error's errMsg,
/// e.g. `config:invalid signature`) fails at once.
async fn expect_jssdk_ready(browser: &Browser) -> Result<()> {
    let status = browser
        .wait_for_text("#jssdk-status", DEFAULT_WAIT, "ready or an error", |t| {
            !t.is_empty() && !t.starts_with("configuring")
        })
        .await?;
    ensure(status == "ready", || {
        format!("wx.config did not reach wx.ready: #jssdk-status = {status:?}")
    })
}

/// The simulator's `/_sim/` JSON at `path`.
async fn sim_json(sim: &RunningSim, path: &str) -> Result<Value> {
    let url = format!("{}{path}", sim.base_url());
    let fail = |e: reqwest::Error| Error::Check(format!("GET {url}: {e}"));
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(fail)?
        .get(&url)
        .send()
        .await
        .map_err(fail)?
        .json()
        .await
        .map_err(fail)
}

/// Clicks `#pay`, waits for the pay sheet, checks its amount, clicks `button` on it, and
/// returns the order number the page shows.
async fn pay_and_press(browser: &Browser, button: &str, sheet_shot: &str) -> Result<OutTradeNo> {
    browser.click("#pay", DEFAULT_WAIT).await?;
    browser.wait_for("#sim-pay-sheet", DEFAULT_WAIT).await?;
    let amount = browser.find("#sim-pay-amount").await?.text().await?;
    ensure(amount == "¥0.01", || {
        format!("the pay sheet asks for {amount:?}, not ¥0.01")
    })?;
    browser.save_screenshot(sheet_shot).await?;
    browser.click(button, DEFAULT_WAIT).await?;
    let order_no = browser.find("#order-no").await?.text().await?;
    ensure(!order_no.is_empty() && order_no != "none yet", || {
        format!("the page shows no order number ({order_no:?})")
    })?;
    Ok(OutTradeNo::new(order_no))
}

/// The order as the demo's store has it.
async fn stored_status<D: Demo>(running: &Running<D>, order: &OutTradeNo) -> Result<OrderStatus> {
    running
        .store()
        .get(order)
        .await
        .map_err(|e| Error::Check(format!("the order store failed: {e}")))?
        .map(|o| o.status)
        .ok_or_else(|| Error::Check(format!("order {} is not in the store", order.as_str())))
}

async fn paid_count<D: Demo>(running: &Running<D>) -> Result<u64> {
    running
        .store()
        .paid_count()
        .await
        .map_err(|e| Error::Check(format!("the order store failed: {e}")))
}

// ------------------------------------------------------------------------------ scenarios

/// First visit -> the simulator's consent page -> allow -> the shop page with the configured
/// user's nickname and avatar. The axum run also provides the README's screenshot.
pub(crate) async fn first_visit_logs_in_and_shows_the_nickname<D: Demo>() {
    let name = shot::<D>("login");
    wechat_browser_tests::run_scenario(&name, async |browser: &Browser| {
        let running = Running::<D>::start(PayVersion::V3).await?;
        let (base, sim) = (running.base(), running.sim()?);

        browser.goto(&format!("{base}/")).await?;
        expect_consent_page(browser, sim).await?;
        let consent = browser.page_text().await?;
        ensure(consent.contains(first_user().nickname), || {
            format!(
                "the consent page does not offer {}: {consent}",
                first_user().nickname
            )
        })?;
        browser.save_screenshot(&shot::<D>("login-consent")).await?;
        browser.click("#sim-consent-allow", DEFAULT_WAIT).await?;

        expect_shop_page_of(browser, base, &first_user()).await?;
        let landed = browser.current_url().await?;
        ensure(landed == format!("{base}/"), || {
            format!("after login the browser is at {landed}, not back at {base}/")
        })?;
        let avatar = browser.find("#avatar").await?;
        let src = avatar.property("src").await?;
        ensure(
            src.as_str()
                .is_some_and(|s| s.ends_with(first_user().avatar_path)),
            || format!("the avatar is {src}, not {}", first_user().avatar_path),
        )?;
        wait_until("the avatar to load", DEFAULT_WAIT, || async {
            let width = avatar.property("naturalWidth").await?;
            Ok(match width.as_u64() {
                Some(w) if w > 0 => Wait::Ready(()),
                _ => Wait::Pending(format!("naturalWidth {width}")),
            })
        })
        .await?;
        let session = browser.cookie(SESSION_COOKIE).await?;
        ensure(session.as_ref().is_some_and(|c| c.http_only), || {
            format!("no HttpOnly {SESSION_COOKIE} cookie after login: {session:?}")
        })?;
        expect_jssdk_ready(browser).await?;

        if D::FRAMEWORK == "axum" {
            update_docs_screenshot(browser).await?;
        }
        running.stop().await;
        Ok(())
    })
    .await;
}

/// Writes the README's screenshot when it is missing or `UPDATE_DOCS_SCREENSHOT=1`.
async fn update_docs_screenshot(browser: &Browser) -> Result<()> {
    update_screenshot(browser, DOCS_SCREENSHOT).await
}

/// Writes the screenshot at `relative` (to the workspace root) when it is missing or
/// `UPDATE_DOCS_SCREENSHOT=1`; fails when it would exceed 100 KB.
async fn update_screenshot(browser: &Browser, relative: &str) -> Result<()> {
    let path = workspace_root().join(relative);
    let wanted = std::env::var(UPDATE_DOCS_SCREENSHOT).is_ok_and(|v| v == "1");
    if path.exists() && !wanted {
        return Ok(());
    }
    let png = browser.screenshot_png().await?;
    ensure(png.len() <= DOCS_SCREENSHOT_MAX_BYTES, || {
        format!(
            "the README screenshot would be {} bytes, over {DOCS_SCREENSHOT_MAX_BYTES}: make the window smaller",
            png.len()
        )
    })?;
    write_png(&path, &png)
}

/// `wx.config` reaches `wx.ready` (no invalid signature) on `/`, and on a URL with a query
/// string and a `#fragment`, the login keeping the query. Each config is checked by the
/// simulator against its jsapi_ticket.
pub(crate) async fn jssdk_is_ready_on_urls_with_query_and_fragment<D: Demo>() {
    let name = shot::<D>("jssdk");
    wechat_browser_tests::run_scenario(&name, async |browser: &Browser| {
        let running = Running::<D>::start(PayVersion::V3).await?;
        let (base, sim) = (running.base(), running.sim()?);
        let verified = || sim.stats().calls_to("/_sim/jssdk/verify");

        // First visit on a URL with a query and a fragment: the login comes back to the query.
        let query = "?from=singlemessage&isappinstalled=0&q=%E5%BE%AE%E4%BF%A1%20pay";
        browser
            .goto(&format!("{base}/{query}#/cart?item=1"))
            .await?;
        expect_consent_page(browser, sim).await?;
        allow_as(browser, &first_user()).await?;
        expect_shop_page_of(browser, base, &first_user()).await?;
        let landed = browser.current_url().await?;
        ensure(landed.starts_with(&format!("{base}/{query}")), || {
            format!("the login lost the page's query: back at {landed}")
        })?;
        expect_jssdk_ready(browser).await?;
        // The count includes the CORS preflights of the script's POSTs.
        ensure(verified() > 0, || {
            "wx.config was not checked by the simulator".to_owned()
        })?;

        for url in [
            format!("{base}/"),
            format!("{base}/?a=1&b=%E4%B8%AD&c=#section-2"),
            format!("{base}/#only-a-fragment"),
        ] {
            let before = verified();
            browser.goto(&url).await?;
            expect_shop_page_of(browser, base, &first_user()).await?;
            expect_jssdk_ready(browser)
                .await
                .map_err(|e| Error::Check(format!("on {url}: {e}")))?;
            ensure(verified() > before, || {
                format!("wx.config on {url} was not checked by the simulator")
            })?;
        }
        running.stop().await;
        Ok(())
    })
    .await;
}

/// Pay -> the pay sheet -> confirm -> the page shows `paid`, and the store has the order paid,
/// once, even after the simulator repeats the notification.
pub(crate) async fn pay_confirm_marks_the_order_paid_once<D: Demo>(version: PayVersion) {
    let name = shot::<D>(&format!("pay-confirm-{}", version.as_str()));
    wechat_browser_tests::run_scenario(&name, async |browser: &Browser| {
        let running = Running::<D>::start(version).await?;
        let (base, sim) = (running.base(), running.sim()?);
        log_in(browser, base, sim, &first_user()).await?;

        let order = pay_and_press(browser, "#sim-pay-confirm", &format!("{name}-sheet")).await?;
        browser
            .wait_for_text("#order-status", PAYMENT_WAIT, "paid", |t| {
                t == "paid" || t.starts_with("failed") || t.starts_with("not confirmed")
            })
            .await
            .and_then(|status| {
                ensure(status == "paid", || {
                    format!("the page says {status:?}, not paid")
                })
            })?;

        let stored = running
            .store()
            .get(&order)
            .await
            .map_err(|e| Error::Check(format!("the order store failed: {e}")))?
            .ok_or_else(|| Error::Check(format!("order {} is not stored", order.as_str())))?;
        ensure(stored.status == OrderStatus::Paid, || {
            format!("the page says paid, the store says {:?}", stored.status)
        })?;
        ensure(
            stored.total_fee == 1 && stored.owner.as_str() == first_user().openid(),
            || format!("the stored order is not 1 fen for the buyer: {stored:?}"),
        )?;
        ensure(
            stored.transaction_id.is_some() && stored.paid_at.is_some(),
            || format!("a paid order without transaction id or time: {stored:?}"),
        )?;
        ensure(paid_count(&running).await? == 1, || {
            "not exactly one paid order".to_owned()
        })?;
        let at_sim = sim_json(sim, &format!("/_sim/pay/orders/{}", order.as_str())).await?;
        ensure(at_sim["trade_state"] == json!("SUCCESS"), || {
            format!("the simulator says {}", at_sim["trade_state"])
        })?;
        ensure(at_sim["api"] == json!(version.as_str()), || {
            format!(
                "the order was paid through API {}, not {}",
                at_sim["api"],
                version.as_str()
            )
        })?;

        // WeChat repeats notifications: a duplicate must not pay the order a second time.
        let acknowledged = || async {
            Ok::<_, Error>(
                sim_json(sim, "/_sim/stats").await?["notifications"]["acknowledged"]
                    .as_u64()
                    .unwrap_or(0),
            )
        };
        let before = acknowledged().await?;
        let resend = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Check(e.to_string()))?
            .post(format!("{}/_sim/pay/notify", sim.base_url()))
            .json(&json!({ "out_trade_no": order.as_str(), "mode": "duplicate" }))
            .send()
            .await
            .map_err(|e| Error::Check(format!("re-sending the notification: {e}")))?;
        ensure(resend.status().is_success(), || {
            format!(
                "the simulator refused to re-send the notification: {}",
                resend.status()
            )
        })?;
        wait_until(
            "the duplicate notification to be acknowledged",
            DEFAULT_WAIT,
            || async {
                let now = acknowledged().await?;
                Ok(if now > before {
                    Wait::Ready(())
                } else {
                    Wait::Pending(format!("acknowledged {now}"))
                })
            },
        )
        .await?;
        let again = running
            .store()
            .get(&order)
            .await
            .map_err(|e| Error::Check(format!("the order store failed: {e}")))?;
        ensure(again.as_ref() == Some(&stored), || {
            format!("the duplicate notification changed the order: {again:?}, was {stored:?}")
        })?;
        ensure(paid_count(&running).await? == 1, || {
            "a duplicate notification made a second paid order".to_owned()
        })?;
        running.stop().await;
        Ok(())
    })
    .await;
}

/// Pay -> the pay sheet -> cancel -> the page says `cancelled`, the order stays unpaid.
pub(crate) async fn pay_cancel_leaves_the_order_unpaid<D: Demo>(version: PayVersion) {
    let name = shot::<D>(&format!("pay-cancel-{}", version.as_str()));
    wechat_browser_tests::run_scenario(&name, async |browser: &Browser| {
        let running = Running::<D>::start(version).await?;
        let (base, sim) = (running.base(), running.sim()?);
        log_in(browser, base, sim, &first_user()).await?;

        let order = pay_and_press(browser, "#sim-pay-cancel", &format!("{name}-sheet")).await?;
        let status = browser
            .wait_for_text("#order-status", PAYMENT_WAIT, "cancelled", |t| {
                t == "cancelled" || t == "paid" || t.starts_with("failed")
            })
            .await?;
        ensure(status == "cancelled", || {
            format!("the page says {status:?}, not cancelled")
        })?;
        ensure(browser.try_find("#sim-pay-sheet").await?.is_none(), || {
            "the pay sheet is still shown after cancel".to_owned()
        })?;
        let stored = stored_status(&running, &order).await?;
        ensure(stored == OrderStatus::Unpaid, || {
            format!("cancelled, yet the store says {stored:?}")
        })?;
        ensure(paid_count(&running).await? == 0, || {
            "a paid order after cancel".to_owned()
        })?;
        let at_sim = sim_json(sim, &format!("/_sim/pay/orders/{}", order.as_str())).await?;
        ensure(at_sim["trade_state"] == json!("NOTPAY"), || {
            format!(
                "cancelled, yet the simulator says {}",
                at_sim["trade_state"]
            )
        })?;
        running.stop().await;
        Ok(())
    })
    .await;
}

/// Deny on the consent page -> a clear page (no session, no shop), whose link starts over.
pub(crate) async fn denying_consent_shows_a_clear_page<D: Demo>() {
    let name = shot::<D>("consent-denied");
    wechat_browser_tests::run_scenario(&name, async |browser: &Browser| {
        let running = Running::<D>::start(PayVersion::V3).await?;
        let (base, sim) = (running.base(), running.sim()?);

        browser.goto(&format!("{base}/")).await?;
        expect_consent_page(browser, sim).await?;
        browser.click("#sim-consent-deny", DEFAULT_WAIT).await?;
        let url = browser
            .wait_for_url(DEFAULT_WAIT, "the demo's callback", |u| {
                u.starts_with(&format!("{base}{CALLBACK_PATH}"))
            })
            .await?;
        ensure(!url.contains("code="), || {
            format!("a code after denying: {url}")
        })?;
        let text = wait_until("the page after denying", DEFAULT_WAIT, || async {
            let text = browser.page_text().await?;
            Ok(if text.contains("You declined") {
                Wait::Ready(text)
            } else {
                Wait::Pending(text)
            })
        })
        .await?;
        ensure(browser.try_find("#nickname").await?.is_none(), || {
            format!("the shop page is shown after denying: {text}")
        })?;
        ensure(browser.cookie(SESSION_COOKIE).await?.is_none(), || {
            "a session cookie after denying".to_owned()
        })?;
        ensure(
            sim.stats().calls_to("/sns/oauth2/access_token") == 0,
            || "a code was exchanged although consent was denied".to_owned(),
        )?;
        browser
            .save_screenshot(&shot::<D>("consent-denied-page"))
            .await?;

        // The page's link starts the login again.
        browser.click("a", DEFAULT_WAIT).await?;
        expect_consent_page(browser, sim).await?;
        running.stop().await;
        Ok(())
    })
    .await;
}

/// A session cookie whose value was altered counts as no session: the next page load goes
/// through the login again, which can log in someone else.
pub(crate) async fn a_tampered_session_cookie_logs_in_again<D: Demo>() {
    let name = shot::<D>("tampered-cookie");
    wechat_browser_tests::run_scenario(&name, async |browser: &Browser| {
        let running = Running::<D>::start(PayVersion::V3).await?;
        let (base, sim) = (running.base(), running.sim()?);
        log_in(browser, base, sim, &first_user()).await?;
        let logins = || sim.stats().calls_to("/sns/oauth2/access_token");
        ensure(logins() == 1, || {
            format!("{} code exchanges for one login", logins())
        })?;

        let original = browser
            .cookie(SESSION_COOKIE)
            .await?
            .ok_or_else(|| Error::Check(format!("no {SESSION_COOKIE} cookie after login")))?;
        let tampered = Cookie {
            value: tamper(&original.value),
            // Host-only, like the original (the demo sets no Domain).
            domain: None,
            ..original.clone()
        };
        browser.delete_cookie(SESSION_COOKIE).await?;
        browser.add_cookie(&tampered).await?;
        let now: Vec<Cookie> = browser
            .cookies()
            .await?
            .into_iter()
            .filter(|c| c.name == SESSION_COOKIE)
            .collect();
        ensure(now.len() == 1 && now[0].value == tampered.value, || {
            format!("the tampered cookie did not replace the original: {now:?}")
        })?;

        browser.goto(&format!("{base}/")).await?;
        expect_consent_page(browser, sim).await?;
        allow_as(browser, &second_user()).await?;
        expect_shop_page_of(browser, base, &second_user()).await?;
        ensure(logins() == 2, || {
            format!("{} code exchanges, not 2", logins())
        })?;
        let renewed = browser.cookie(SESSION_COOKIE).await?;
        ensure(
            renewed
                .as_ref()
                .is_some_and(|c| c.value != tampered.value && c.value != original.value),
            || format!("the new login did not set a new session cookie: {renewed:?}"),
        )?;
        running.stop().await;
        Ok(())
    })
    .await;
}

/// The current window's WebDriver handle.
async fn window_handle(browser: &Browser) -> Result<String> {
    let handle = browser.command(Method::GET, "/window", None).await?;
    handle
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::Check(format!("GET /window answered {handle}")))
}

/// Opens a new tab and returns its handle (the current window stays current).
async fn new_tab(browser: &Browser) -> Result<String> {
    let opened = browser
        .command(Method::POST, "/window/new", Some(json!({ "type": "tab" })))
        .await?;
    opened["handle"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::Check(format!("POST /window/new answered {opened}")))
}

/// Makes the window or tab `handle` current.
async fn switch_to(browser: &Browser, handle: &str) -> Result<()> {
    browser
        .command(Method::POST, "/window", Some(json!({ "handle": handle })))
        .await
        .map(|_| ())
}

/// Runs `script` (which may use `q`, the console's selector argument) until it returns a
/// non-empty string, and returns that string; the console's live part is replaced every
/// second, so each probe queries the page afresh.
async fn console_until(
    browser: &Browser,
    what: &str,
    selector: &str,
    script: &str,
) -> Result<String> {
    wait_until(what, CONSOLE_WAIT, || async {
        let v = browser
            .execute(
                &format!("var q = arguments[0]; {script}"),
                vec![json!(selector)],
            )
            .await?;
        Ok(match v.as_str() {
            Some(s) if !s.is_empty() => Wait::Ready(s.to_owned()),
            _ => Wait::Pending(format!(
                "{selector}: {}",
                browser
                    .page_text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(600)
                    .collect::<String>()
            )),
        })
    })
    .await
}

/// The text of the trade state cell of order `no` in the console ("" when not listed).
const TRADE_STATE: &str = "var td = document.querySelector(q); return td ? td.textContent : '';";

/// `status|reply` of the first attempt matching `q` whose status is 2xx and whose reply says
/// SUCCESS ("" when none yet).
const ACKNOWLEDGED_ATTEMPT: &str = r"var rows = document.querySelectorAll(q);
    for (var i = 0; i < rows.length; i++) {
      var status = rows[i].querySelector('td.status').textContent;
      var reply = rows[i].querySelector('pre.reply').textContent;
      if (/^2\d\d$/.test(status) && reply.indexOf('SUCCESS') >= 0) return status + '|' + reply;
    }
    return '';";

/// The console (`/_sim/`) in a second tab during a payment (API v2, whose acknowledgement has a
/// body): the order goes from NOTPAY to SUCCESS, the notification shows its attempt with the
/// app's status and reply, and "re-send (duplicate)" adds a delivery with the app's reply; the
/// order stays paid once. The axum run also provides the simulator README's screenshot.
pub(crate) async fn the_console_follows_a_payment_and_resends_its_notification<D: Demo>() {
    let name = shot::<D>("sim-console");
    wechat_browser_tests::run_scenario(&name, async |browser: &Browser| {
        let running = Running::<D>::start(PayVersion::V2).await?;
        let (base, sim) = (running.base(), running.sim()?);
        log_in(browser, base, sim, &first_user()).await?;
        let shop = window_handle(browser).await?;

        // The order exists, unpaid, while the pay sheet is shown.
        browser.click("#pay", DEFAULT_WAIT).await?;
        browser.wait_for("#sim-pay-sheet", DEFAULT_WAIT).await?;
        let orders = sim_json(sim, "/_sim/console/state").await?;
        let order = orders["orders"][0]["out_trade_no"]
            .as_str()
            .ok_or_else(|| Error::Check(format!("no order in the console's state: {orders}")))?
            .to_owned();

        let console = new_tab(browser).await?;
        switch_to(browser, &console).await?;
        browser
            .set_window_size(CONSOLE_WINDOW.0, CONSOLE_WINDOW.1)
            .await?;
        browser.goto(&format!("{}/_sim/", sim.base_url())).await?;
        let state_cell = format!(r#"tr.order[data-out-trade-no="{order}"] td.trade-state"#);
        let unpaid = console_until(browser, "the order in the console", &state_cell, TRADE_STATE).await?;
        ensure(unpaid == "NOTPAY", || {
            format!("before the payment the console says {unpaid}, not NOTPAY")
        })?;

        // Pay in the shop's tab; the console follows by itself.
        switch_to(browser, &shop).await?;
        browser.click("#sim-pay-confirm", DEFAULT_WAIT).await?;
        switch_to(browser, &console).await?;
        let paid = console_until(
            browser,
            "the console to show the order paid",
            &state_cell,
            "var td = document.querySelector(q); return td && td.textContent === 'SUCCESS' ? 'SUCCESS' : '';",
        )
        .await?;
        ensure(paid == "SUCCESS", || format!("the console says {paid}"))?;
        let scheduled = format!(
            r#".delivery[data-number="{order}"][data-mode="scheduled"] tr.attempt"#
        );
        let first = console_until(
            browser,
            "the notification's acknowledged attempt",
            &scheduled,
            ACKNOWLEDGED_ATTEMPT,
        )
        .await?;
        ensure(first.starts_with("200|<xml>"), || {
            format!("the attempt shows {first:?}, not 200 with the app's XML")
        })?;

        // Re-send (duplicate): a new delivery, with the app's reply.
        let clicked = browser
            .execute(
                "var b = document.querySelector(arguments[0]); if (b) { b.click(); return true; } return false;",
                vec![json!(format!(
                    r#".delivery[data-number="{order}"] button.resend-duplicate"#
                ))],
            )
            .await?;
        ensure(clicked == json!(true), || {
            "no re-send (duplicate) button for the notification".to_owned()
        })?;
        let duplicate = format!(
            r#".delivery[data-number="{order}"][data-mode="duplicate"] tr.attempt"#
        );
        let again = console_until(
            browser,
            "the duplicate's attempt with the app's reply",
            &duplicate,
            ACKNOWLEDGED_ATTEMPT,
        )
        .await?;
        ensure(again.starts_with("200|<xml>"), || {
            format!("the duplicate's attempt shows {again:?}")
        })?;
        let result = browser.find("#sim-console-result").await?.text().await?;
        ensure(result.starts_with("POST /_sim/pay/notify -> 200"), || {
            format!("the console reports {result:?} for the re-send")
        })?;
        ensure(paid_count(&running).await? == 1, || {
            "the duplicate notification made a second paid order".to_owned()
        })?;
        ensure(
            stored_status(&running, &OutTradeNo::new(order.clone())).await? == OrderStatus::Paid,
            || "the store does not have the order paid".to_owned(),
        )?;

        if D::FRAMEWORK == "axum" {
            browser.execute("window.scrollTo(0, 0); return true;", vec![]).await?;
            update_screenshot(browser, CONSOLE_SCREENSHOT).await?;
        }

        // The forms: "+2 h" moves the clock; the fault form queues a fault for the next N calls.
        let before = sim.now_secs();
        browser
            .click(r#"button[data-seconds="7200"]"#, DEFAULT_WAIT)
            .await?;
        wait_until("the clock to move 2 h", CONSOLE_WAIT, || async {
            Ok(if sim.now_secs() >= before + 7200 {
                Wait::Ready(())
            } else {
                Wait::Pending(format!("now {}", sim.now_secs()))
            })
        })
        .await?;
        browser
            .execute(
                r"var f = document.getElementById('sim-fault-form');
                f.path.value = '/cgi-bin/token'; f.kind.value = 'errcode';
                f.value.value = '-1'; f.times.value = '2';
                return true;",
                vec![],
            )
            .await?;
        browser.click("#sim-fault-add", DEFAULT_WAIT).await?;
        let queued = wait_until("the fault to be registered", CONSOLE_WAIT, || async {
            let faults = sim_json(sim, "/_sim/fail").await?;
            let queued = faults["faults"][0]["queued"].as_u64();
            Ok(match (&faults["faults"][0]["path"], queued) {
                (path, Some(n)) if path == "/cgi-bin/token" => Wait::Ready(n),
                _ => Wait::Pending(faults.to_string()),
            })
        })
        .await?;
        ensure(queued == 2, || {
            format!("the fault form queued {queued} faults, not 2")
        })?;
        running.stop().await;
        Ok(())
    })
    .await;
}

/// `value` with its middle character changed (the cookie's MAC covers every character).
fn tamper(value: &str) -> String {
    let mut chars: Vec<char> = value.chars().collect();
    if chars.is_empty() {
        return "x".to_owned();
    }
    let mid = chars.len() / 2;
    chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}
