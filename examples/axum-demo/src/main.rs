//! `cargo run -p axum-demo`: the demo shop on `LISTEN` (default 127.0.0.1:3000), against the
//! embedded wechat-sim unless `WECHAT_APPID` is set. See the README for every variable.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    demo_shop::cli::run("axum-demo", "axum", axum_demo::start).await
}
