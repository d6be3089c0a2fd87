//! The end-to-end suite against the actix-web demo (`examples/actix-demo`) and its embedded
//! wechat-sim: the same scenarios as `tests/axum.rs`.

use demo_shop::{OrderStore, Settings};
use wechat_sim::RunningSim;

/// The actix-web demo as a [`wechat_e2e::Demo`].
pub(crate) struct Actix(actix_demo::RunningDemo);

impl wechat_e2e::Demo for Actix {
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

    fn shop(&self) -> &demo_shop::Shop {
        self.0.shop()
    }

    async fn stop(self) {
        self.0.shutdown().await;
    }
}

wechat_e2e::e2e_suite!(Actix);
