//! A local, stateful WeChat simulator.
//!
//! One HTTP listener serves every WeChat host the library talks to (`api.weixin.qq.com`,
//! `open.weixin.qq.com`, `api.mch.weixin.qq.com`, `res.wx.qq.com`): their paths do not collide.
//! Tests start it on an ephemeral port with [`Simulator::start`] and point the library's base
//! URLs at [`RunningSim::base_url`]; the README lists every endpoint and the `/_sim/` controls.
//! A browser on `GET /_sim/` gets the console, a page that shows the simulator's state as it
//! changes (orders, notifications and the app's answers, tokens, requests) and steers it.
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = wechat_sim::Simulator::from_toml_str(
//!     r#"
//!     [[apps]]
//!     appid = "wx1234567890abcdef"
//!     secret = "0123456789abcdef0123456789abcdef"
//!     "#,
//! )?
//! .start()
//! .await?;
//! let url = format!(
//!     "{}/cgi-bin/token?grant_type=client_credential&appid=wx1234567890abcdef&secret=0123456789abcdef0123456789abcdef",
//!     sim.base_url()
//! );
//! let body: serde_json::Value = reqwest::get(url).await?.json().await?;
//! assert!(body["access_token"].is_string());
//! assert_eq!(sim.stats().calls_to("/cgi-bin/token"), 1);
//! # Ok(()) }
//! ```

mod api;
mod clock;
mod config;
mod console;
mod control;
mod fault;
pub mod fixtures;
mod host;
mod journal;
mod jssdk;
mod oauth;
mod pay;
mod qrconnect;
mod reply;
mod router;
mod serve;
mod state;
mod stats;

pub use config::{
    AppConfig, AppKind, ConfigError, MerchantConfig, ServerConfig, SimConfig, UserConfig,
    derive_openid,
};
pub use state::{RunningSim, Simulator};
pub use stats::{FaultStats, NotificationStats, StatsSnapshot};
