//! End-to-end HTTP tests of both demos against wechat-sim, written once.
//!
//! Each scenario in [`scenarios`] starts a demo (through the [`Demo`] trait) with its embedded
//! simulator and a fresh SQLite database, drives it with the workspace's test [`Browser`]
//! (`wechat-test-support`, as WeChat's in-app browser) exactly as a browser would (page loads
//! follow redirects; the simulator's consent form is posted), and checks what the page, the
//! simulator and the database say.
//!
//! A demo joins the suite by implementing [`Demo`] on a small wrapper and invoking
//! [`e2e_suite!`], which declares one `#[tokio::test]` per scenario:
//!
//! ```ignore
//! // tests/e2e/tests/axum.rs
//! struct Axum(axum_demo::RunningDemo);
//!
//! impl wechat_e2e::Demo for Axum {
//!     const FRAMEWORK: &'static str = "axum";
//!     async fn start(settings: demo_shop::Settings) -> demo_shop::Result<Self> {
//!         axum_demo::start(settings).await.map(Axum)
//!     }
//!     fn base_url(&self) -> &str { self.0.base_url() }
//!     fn sim(&self) -> Option<&wechat_sim::RunningSim> { self.0.sim() }
//!     fn store(&self) -> &demo_shop::OrderStore { self.0.store() }
//!     fn shop(&self) -> &demo_shop::Shop { self.0.shop() }
//!     async fn stop(self) { self.0.shutdown().await }
//! }
//!
//! wechat_e2e::e2e_suite!(Axum);
//! ```

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use demo_shop::{OrderStore, Settings};
use wechat_sim::RunningSim;

pub mod scenarios;

pub use wechat_test_support::{Browser, Visit};

/// A demo under test: how to start it, where it is, and what it stores.
///
/// Implement it on a wrapper of the demo's running handle (the trait and the handle are both
/// foreign to the test file); see the [crate docs](crate).
pub trait Demo: Sized {
    /// The framework's name, for messages (`axum`, `actix`).
    const FRAMEWORK: &'static str;

    /// Starts the demo with `settings` (no `WECHAT_APPID`: an embedded simulator; `listen` on
    /// `127.0.0.1:0`) and returns once it accepts connections.
    fn start(settings: Settings) -> impl Future<Output = demo_shop::Result<Self>>;

    /// The demo's public URL (`http://127.0.0.1:PORT`, no trailing slash).
    fn base_url(&self) -> &str;

    /// The embedded simulator (`None` only when started against a real or external WeChat).
    fn sim(&self) -> Option<&RunningSim>;

    /// The demo's SQLite order store.
    fn store(&self) -> &OrderStore;

    /// Everything the demo built from its settings (e.g. where its metrics listener is).
    fn shop(&self) -> &demo_shop::Shop;

    /// Stops the demo and its simulator.
    fn stop(self) -> impl Future<Output = ()>;
}

/// A temporary folder for one test's database, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty folder under the system's temporary directory.
    ///
    /// # Panics
    /// When it cannot be created.
    pub fn new(label: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "wechat-e2e-{label}-{}-{}",
            std::process::id(),
            demo_shop::new_out_trade_no()
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        Self(dir)
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The database file in it.
    pub fn db(&self) -> PathBuf {
        self.0.join("orders.sqlite3")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Zero-configuration settings on an ephemeral port of 127.0.0.1 with the database in `dir`.
pub fn test_settings(dir: &TempDir) -> Settings {
    Settings::embedded(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), dir.db())
}

/// Logs to the test output when `RUST_LOG` is set (e.g. `RUST_LOG=info,wechat_core=debug`).
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `limit`.
///
/// # Panics
/// With `what` when the time is up.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Calls `$callback!` with `$args`, then every scenario of [`scenarios`]: those without a
/// parameter after `plain:`, the payment ones (run with each Pay version) after `pay:`. The one
/// list [`e2e_suite!`] and [`e2e_run_all!`] read.
#[doc(hidden)]
#[macro_export]
macro_rules! with_scenarios {
    ($callback:ident, $($args:tt)*) => {
        $crate::$callback! {
            $($args)*;
            plain:
            login_shows_the_user,
            jssdk_config_passes_the_simulators_check,
            orders_are_private,
            browser_never_sets_the_amount,
            denied_consent_shows_a_page,
            tampered_cookie_logs_in_again,
            fetch_without_session_gets_401_json,
            restart_keeps_paid_orders,
            metrics_count_a_login_and_a_payment,
            metrics_listen_moves_the_page;
            pay:
            payment_is_recorded_exactly_once,
            lost_notification_is_recovered_by_orderquery
        }
    };
}

/// Declares one `#[tokio::test]` per scenario of [`scenarios`] for the [`Demo`] type `$demo`
/// (the payment scenarios once with each Pay version, in modules `pay_v3` and `pay_v2`).
#[macro_export]
macro_rules! e2e_suite {
    ($demo:ty) => {
        $crate::with_scenarios!(e2e_suite, @expand $demo);
    };
    (@expand $demo:ty; plain: $($scenario:ident),*; pay: $($pay:ident),*) => {
        $crate::e2e_suite!(@tests $demo; $($scenario),*);
        /// The payment scenarios with WeChat Pay API v3 (the demos' default).
        mod pay_v3 {
            use super::*;
            $crate::e2e_suite!(@pay $demo; V3; $($pay),*);
        }
        /// The payment scenarios with WeChat Pay API v2.
        mod pay_v2 {
            use super::*;
            $crate::e2e_suite!(@pay $demo; V2; $($pay),*);
        }
    };
    (@pay $demo:ty; $version:ident; $($scenario:ident),* $(,)?) => {
        $(
            #[doc = concat!("The `", stringify!($scenario), "` scenario of `wechat_e2e::scenarios` with WeChat Pay ", stringify!($version), ".")]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                $crate::init_tracing();
                $crate::scenarios::$scenario::<$demo>(demo_shop::PayVersion::$version).await;
            }
        )*
    };
    (@tests $demo:ty; $($scenario:ident),* $(,)?) => {
        $(
            #[doc = concat!("The `", stringify!($scenario), "` scenario of `wechat_e2e::scenarios`.")]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                $crate::init_tracing();
                $crate::scenarios::$scenario::<$demo>().await;
            }
        )*
    };
}

/// A future that runs every scenario of [`scenarios`] for the [`Demo`] type `$demo`, one after
/// the other (the payment ones with API v3, then v2): the whole suite in one task, for a test
/// that looks at what all of it did (e.g. its logs).
#[macro_export]
macro_rules! e2e_run_all {
    ($demo:ty) => {
        $crate::with_scenarios!(e2e_run_all, @expand $demo)
    };
    (@expand $demo:ty; plain: $($scenario:ident),*; pay: $($pay:ident),*) => {
        async {
            $( $crate::scenarios::$scenario::<$demo>().await; )*
            $( $crate::scenarios::$pay::<$demo>(demo_shop::PayVersion::V3).await; )*
            $( $crate::scenarios::$pay::<$demo>(demo_shop::PayVersion::V2).await; )*
        }
    };
}

/// The root README's Rust examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct RootReadme;
