//! The `main` both demos share: logging, settings from the environment, start, print the URL,
//! serve until Ctrl-C, stop.

use std::future::Future;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

use crate::{DemoError, Settings, Shop};

/// A demo started by [`run`]: what it exposes to the shared `main`.
pub trait RunningApp {
    /// Everything built from the settings (for the startup message).
    fn shop(&self) -> &Shop;

    /// Stops the server and the embedded simulator.
    fn shutdown(self) -> impl Future<Output = ()>;
}

/// Runs a demo as a command: `name` names it in messages, `framework` in the startup message,
/// and `start` starts it from the environment's [`Settings`]. Returns the process exit code.
pub async fn run<D, F, Fut>(name: &str, framework: &str, start: F) -> ExitCode
where
    D: RunningApp,
    F: FnOnce(Settings) -> Fut,
    Fut: Future<Output = Result<D, DemoError>>,
{
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,wechat_sim=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let demo = match Settings::from_env() {
        Ok(settings) => start(settings).await,
        Err(e) => Err(e),
    };
    let demo = match demo {
        Ok(demo) => demo,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", demo.shop().startup_message(framework));
    println!("Press Ctrl-C to stop.");
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("{name}: cannot listen for Ctrl-C ({e}); stopping");
    }
    demo.shutdown().await;
    ExitCode::SUCCESS
}
