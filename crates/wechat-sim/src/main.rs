//! `wechat-sim`: run the WeChat simulator from the command line.
//!
//! ```text
//! cargo run -p wechat-sim -- --listen 127.0.0.1:9000 --config sim.toml [--tls-listen 127.0.0.1:9443]
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use wechat_sim::Simulator;

/// A local, stateful WeChat simulator (OAuth, tokens, JS-SDK, Pay) for tests and demos.
#[derive(Debug, Parser)]
#[command(name = "wechat-sim", version, about)]
struct Args {
    /// Address of the plain-HTTP listener that serves every WeChat host.
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// The TOML configuration file (apps, users, merchants); see the crate's README.
    #[arg(long)]
    config: PathBuf,
    /// Address of the TLS listener for `/secapi` (refunds with a client certificate).
    #[arg(long)]
    tls_listen: Option<SocketAddr>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wechat-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let sim = Simulator::from_file(&args.config)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let tls = match args.tls_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?,
        ),
        None => None,
    };
    let running = sim.start_on(listener, tls).await?;
    println!("wechat-sim listening on {}", running.base_url());
    if let Some(tls) = running.tls_base_url() {
        println!("wechat-sim /secapi over TLS on {tls}");
    }
    tokio::signal::ctrl_c().await?;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}
