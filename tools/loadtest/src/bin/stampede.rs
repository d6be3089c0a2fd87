//! The stampede benchmark: many concurrent callers ask [`Tokens`] for a credential at the same
//! instant, when nothing is cached, when the cached token has expired, and inside the
//! refresh-ahead window; the simulator counts the upstream requests, and every caller's wait
//! is measured from the common start. The same callers on a cached token give the baseline
//! (the cost of running that many tasks at once).
//!
//! ```sh
//! cargo run --release -p wechat-loadtest --bin stampede              # 10,000 callers
//! cargo run --release -p wechat-loadtest --bin stampede -- --callers 1000
//! ```
//!
//! The target is exactly one upstream request per refresh. Exits non-zero when it is missed or
//! a caller gets an error.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use wechat_benches::fixtures;
use wechat_core::clock::OffsetClock;
use wechat_core::token::{MemoryStore, Tokens};
use wechat_core::{TokenEndpoint, build_http_client};
use wechat_loadtest::loadgen::percentile_sorted;
use wechat_loadtest::report::{fmt_duration, loadavg, machine};
use wechat_sim::RunningSim;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "Token refresh stampede: concurrent callers against wechat-sim")]
struct Args {
    /// Concurrent callers per scenario.
    #[arg(long, default_value_t = 10_000)]
    callers: usize,
    /// Runtime worker threads (callers, Tokens and the simulator share them).
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

/// The simulator's token lifetime (its default, as WeChat's).
const TTL: u64 = 7200;
const TOKEN: &str = "/cgi-bin/token";
const STABLE_TOKEN: &str = "/cgi-bin/stable_token";
const TICKET: &str = "/cgi-bin/ticket/getticket";

/// What one scenario measured.
struct Outcome {
    scenario: &'static str,
    /// `(path, upstream requests, expected)`.
    calls: Vec<(&'static str, u64, u64)>,
    errors: usize,
    waits: Vec<Duration>,
}

fn main() {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers.max(1))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("stampede: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(true) => {}
        Ok(false) => std::process::exit(2),
        Err(e) => {
            eprintln!("stampede failed: {e}");
            std::process::exit(1);
        }
    }
}

async fn run(args: Args) -> Result<bool, Box<dyn std::error::Error>> {
    let callers = args.callers.max(1);
    let load_before = loadavg();
    let sim = wechat_sim::Simulator::from_toml_str(fixtures::SIM_TOML)?
        .start()
        .await?;
    let base = sim.base_url();
    let clock = Arc::new(OffsetClock::new());
    let tokens_with = |endpoint: TokenEndpoint| -> Result<Tokens, wechat_core::Error> {
        let config = fixtures::app_config(&base).with_token_endpoint(endpoint);
        Ok(Tokens::builder(&config, build_http_client(&config)?)
            .store(Arc::new(MemoryStore::new()))
            .clock(Arc::clone(&clock) as Arc<dyn wechat_core::clock::Clock>)
            .build()
            .unwrap())
    };
    let mut outcomes = Vec::new();

    // 1. access_token, nothing cached.
    let tokens = tokens_with(TokenEndpoint::Token)?;
    outcomes.push(
        scenario(&sim, "access_token, cold", &[(TOKEN, 1)], callers, {
            let tokens = tokens.clone();
            move || {
                let tokens = tokens.clone();
                async move { tokens.access_token().await.map(drop) }
            }
        })
        .await,
    );

    // Baseline: the same callers on a fresh cached token. Their wait is the cost of starting
    // and polling that many tasks on this runtime; no refresh, no upstream request.
    outcomes.push(
        scenario(
            &sim,
            "access_token, cached (baseline)",
            &[(TOKEN, 0)],
            callers,
            {
                let tokens = tokens.clone();
                move || {
                    let tokens = tokens.clone();
                    async move { tokens.access_token().await.map(drop) }
                }
            },
        )
        .await,
    );

    // 2. The same Tokens after the token expired (both clocks moved past its lifetime).
    advance(&sim, &clock, TTL + 1);
    outcomes.push(
        scenario(&sim, "access_token, expired", &[(TOKEN, 1)], callers, {
            let tokens = tokens.clone();
            move || {
                let tokens = tokens.clone();
                async move { tokens.access_token().await.map(drop) }
            }
        })
        .await,
    );

    // 3. Inside the refresh-ahead window (100 s left): callers get the current token at once,
    //    one background refresh replaces it.
    advance(&sim, &clock, TTL - 100);
    let before = sim.stats().calls_to(TOKEN);
    let mut ahead = scenario(&sim, "access_token, 100 s before expiry", &[], callers, {
        let tokens = tokens.clone();
        move || {
            let tokens = tokens.clone();
            async move { tokens.access_token().await.map(drop) }
        }
    })
    .await;
    // The background refresh may still be on its way: wait for it (bounded).
    let deadline = Instant::now() + Duration::from_secs(5);
    while sim.stats().calls_to(TOKEN) == before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    ahead
        .calls
        .push((TOKEN, sim.stats().calls_to(TOKEN) - before, 1));
    outcomes.push(ahead);

    // 4. jsapi_ticket on fresh Tokens: one token and one ticket request.
    let fresh = tokens_with(TokenEndpoint::Token)?;
    outcomes.push(
        scenario(
            &sim,
            "jsapi_ticket, cold",
            &[(TOKEN, 1), (TICKET, 1)],
            callers,
            move || {
                let tokens = fresh.clone();
                async move { tokens.jsapi_ticket().await.map(drop) }
            },
        )
        .await,
    );

    // 5. stable_token, cold and expired.
    let stable = tokens_with(TokenEndpoint::StableToken)?;
    outcomes.push(
        scenario(&sim, "stable_token, cold", &[(STABLE_TOKEN, 1)], callers, {
            let tokens = stable.clone();
            move || {
                let tokens = tokens.clone();
                async move { tokens.access_token().await.map(drop) }
            }
        })
        .await,
    );
    advance(&sim, &clock, TTL + 1);
    outcomes.push(
        scenario(
            &sim,
            "stable_token, expired",
            &[(STABLE_TOKEN, 1)],
            callers,
            move || {
                let tokens = stable.clone();
                async move { tokens.access_token().await.map(drop) }
            },
        )
        .await,
    );

    println!(
        "stampede: {callers} concurrent callers per scenario, {} runtime worker(s); wechat-sim on 127.0.0.1",
        args.workers.max(1)
    );
    println!(
        "machine: {} | load average before: {load_before}, after: {}",
        machine(),
        loadavg()
    );
    println!();
    println!(
        "| scenario | upstream requests (expected) | callers' wait p50 | p99 | max | errors |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    let mut all_met = true;
    for mut o in outcomes {
        o.waits.sort_unstable();
        let nanos: Vec<u64> = o
            .waits
            .iter()
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .collect();
        let pct = |p| fmt_duration(Duration::from_nanos(percentile_sorted(&nanos, p)));
        let calls = o
            .calls
            .iter()
            .map(|(path, got, expected)| {
                all_met &= got == expected;
                format!("{path}: {got} ({expected})")
            })
            .collect::<Vec<_>>()
            .join(", ");
        all_met &= o.errors == 0;
        println!(
            "| {} | {calls} | {} | {} | {} | {} |",
            o.scenario,
            pct(50.0),
            pct(99.0),
            pct(100.0),
            o.errors
        );
    }
    println!();
    println!(
        "target: exactly 1 upstream request per refresh: {}",
        if all_met { "met" } else { "MISSED" }
    );
    sim.shutdown().await;
    Ok(all_met)
}

fn advance(sim: &RunningSim, clock: &OffsetClock, secs: u64) {
    sim.advance_clock(secs);
    clock.advance(secs);
}

/// Starts `callers` tasks running `call`, releases them at one instant, and measures each one's
/// wait from that instant; counts the upstream requests to each of `expect`'s paths.
async fn scenario<F, Fut>(
    sim: &RunningSim,
    name: &'static str,
    expect: &[(&'static str, u64)],
    callers: usize,
    call: F,
) -> Outcome
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), wechat_core::Error>> + Send + 'static,
{
    let before: Vec<u64> = expect
        .iter()
        .map(|(path, _)| sim.stats().calls_to(path))
        .collect();
    let (start_tx, start_rx) = tokio::sync::watch::channel(None::<Instant>);
    let ready = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let mut start_rx = start_rx.clone();
            let ready = Arc::clone(&ready);
            let fut = call();
            tokio::spawn(async move {
                ready.fetch_add(1, Ordering::SeqCst);
                let start = match start_rx.wait_for(Option::is_some).await {
                    Ok(start) => start.unwrap_or_else(Instant::now),
                    Err(_) => Instant::now(),
                };
                let result = fut.await;
                (start.elapsed(), result.is_ok())
            })
        })
        .collect();
    // Release them only once every caller is parked on the signal.
    while ready.load(Ordering::SeqCst) < callers {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let _ = start_tx.send(Some(Instant::now()));
    let mut waits = Vec::with_capacity(callers);
    let mut errors = 0;
    for task in tasks {
        match task.await {
            Ok((wait, true)) => waits.push(wait),
            Ok((wait, false)) => {
                errors += 1;
                waits.push(wait);
            }
            Err(_) => errors += 1,
        }
    }
    let calls = expect
        .iter()
        .zip(before)
        .map(|((path, expected), before)| (*path, sim.stats().calls_to(path) - before, *expected))
        .collect();
    Outcome {
        scenario: name,
        calls,
        errors,
        waits,
    }
}
