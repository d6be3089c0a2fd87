//! Headless Chromium against wechat-sim and both demos.
//!
//! Needs `chromium` and `chromedriver` on `PATH`; without them every test prints one line and
//! passes, unless `CI=true` (then they fail). Screenshots: `target/browser-screenshots/`.
//!
//! - `simulator`: the browser against wechat-sim alone (consent page, JS-SDK, pay sheet);
//! - `on_axum`, `on_actix`: the scenarios of `demos`, against each demo.

mod page_server;
mod simulator;
#[macro_use]
mod demos;

use demo_shop::{OrderStore, Settings};
use wechat_sim::RunningSim;

/// The axum demo (`examples/axum-demo`).
struct Axum(axum_demo::RunningDemo);

impl demos::Demo for Axum {
    const FRAMEWORK: &'static str = "axum";

    async fn start(settings: Settings) -> demo_shop::Result<Self> {
        axum_demo::start(settings).await.map(Axum)
    }

    fn base_url(&self) -> &str {
        self.0.base_url()
    }

    fn sim(&self) -> Option<&RunningSim> {
        self.0.shop().sim()
    }

    fn store(&self) -> &OrderStore {
        self.0.shop().store()
    }

    async fn stop(self) {
        self.0.shutdown().await;
    }
}

/// The actix-web demo (`examples/actix-demo`).
struct Actix(actix_demo::RunningDemo);

impl demos::Demo for Actix {
    const FRAMEWORK: &'static str = "actix";

    async fn start(settings: Settings) -> demo_shop::Result<Self> {
        actix_demo::start(settings).await.map(Actix)
    }

    fn base_url(&self) -> &str {
        self.0.base_url()
    }

    fn sim(&self) -> Option<&RunningSim> {
        self.0.shop().sim()
    }

    fn store(&self) -> &OrderStore {
        self.0.shop().store()
    }

    async fn stop(self) {
        self.0.shutdown().await;
    }
}

browser_suite!(on_axum, crate::Axum);
browser_suite!(on_actix, crate::Actix);
