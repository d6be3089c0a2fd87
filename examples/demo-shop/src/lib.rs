//! Shared parts of the axum and actix demos: the shop page, the SQLite order store, settings from
//! the environment and the embedded simulator.
//!
//! Both demos are the same shop: one product ("Demo product", 0.01 yuan), WeChat login
//! (`snsapi_userinfo`), the JS-SDK configured through the library's route, and WeChat Pay
//! (JSAPI). Everything that does not depend on the web framework lives here, so that the two
//! demos differ only in how they wire `wechat-tower` or `wechat-actix`:
//!
//! 1. [`Settings::from_env`] (or [`Settings::embedded`] in tests) reads the configuration;
//! 2. [`bind`] binds the listener first, so that the public URL has the real port;
//! 3. [`Shop::start`] builds the WeChat clients, the [`LoginFlow`](wechat_core::login::LoginFlow), the
//!    [`PayRoutes`](wechat_core::routes::PayRoutes) over the SQLite [`OrderStore`], the [`Page`], and
//!    (with no `WECHAT_APPID`) starts an embedded wechat-sim on 127.0.0.1 ([`sim`]);
//! 4. the adapter serves [`Page::render`] at `/`, [`asset`] under [`ASSETS_PREFIX`], `ok` at
//!    [`HEALTH_PATH`], [`render_metrics`] at [`METRICS_PATH`] (unless `METRICS_LISTEN` gave the
//!    page a listener of its own: [`Shop::serves_metrics`]), and mounts its WeChat routes under
//!    [`WECHAT_PREFIX`].
//!
//! ```no_run
//! # async fn run() -> demo_shop::Result<()> {
//! let settings = demo_shop::Settings::from_env()?;
//! let listener = demo_shop::bind(settings.listen)?;
//! let shop = demo_shop::Shop::start(&settings, listener.local_addr().map_err(|e| demo_shop::DemoError::Io { what: "local address".into(), source: e })?).await?;
//! println!("{}", shop.startup_message("my framework"));
//! # Ok(()) }
//! ```

pub mod cli;
mod error;
mod page;
mod prometheus;
mod settings;
mod shop;
pub mod sim;
mod store;

pub use error::{DemoError, Result};
pub use page::{ASSETS_PREFIX, Asset, JSSDK_SCRIPT_PATH, PAGE_CONTENT_TYPE, Page, asset, yuan};
pub use prometheus::{
    METRICS_CONTENT_TYPE, METRICS_PATH, MetricsServer, prometheus, render_metrics,
};
pub use settings::{
    DATA_DIR, DEFAULT_DB_FILE, DEFAULT_LISTEN, ENV_VARS, PaySettings, PayVersion, Settings,
    WeChatSettings,
};
pub use shop::{
    CALLBACK_PATH, EXCLUDED_PATHS, HEALTH_PATH, NOTIFY_PATH, REFUND_NOTIFY_PATH, Shop,
    WECHAT_PREFIX, bind,
};
pub use store::{
    OrderStore, PRODUCT_DESCRIPTION, PRODUCT_ID, PRODUCT_PRICE_FEN, StoredOrder, new_out_trade_no,
};
