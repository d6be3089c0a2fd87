//! The end-to-end suite against the axum demo (`examples/axum-demo`) and its embedded wechat-sim.

use demo_shop::{OrderStore, Settings};
use wechat_sim::RunningSim;

/// The axum demo as a [`wechat_e2e::Demo`].
pub(crate) struct Axum(axum_demo::RunningDemo);

impl wechat_e2e::Demo for Axum {
    const FRAMEWORK: &'static str = "axum";

    async fn start(settings: Settings) -> demo_shop::Result<Self> {
        axum_demo::start(settings).await.map(Axum)
    }

    fn base_url(&self) -> &str {
        self.0.base_url()
    }

    fn sim(&self) -> Option<&RunningSim> {
        self.0.sim()
    }

    fn store(&self) -> &OrderStore {
        self.0.store()
    }

    fn shop(&self) -> &demo_shop::Shop {
        self.0.shop()
    }

    async fn stop(self) {
        self.0.shutdown().await;
    }
}

wechat_e2e::e2e_suite!(Axum);
