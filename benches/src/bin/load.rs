//! The load benchmark: bare axum and actix-web hello apps against the same apps behind the
//! WeChat login middleware (with a valid session cookie), and the JS-SDK config and payment
//! notification routes, all on 127.0.0.1 and measured in one run.
//!
//! ```sh
//! cargo run --release -p wechat-benches --bin load     # 10 s per target, in 10 interleaved rounds
//! cargo run --release -p wechat-benches --bin load -- --duration 1 --rounds 1 --warmup 0.2  # smoke
//! ```
//!
//! Prints a Markdown table (req/s, p50, p99, errors) and the layer/bare ratio per framework.
//! Exits non-zero when a target answers wrongly before the measurement, or when errors occur.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use wechat_benches::fixtures;
use wechat_benches::loadgen::{self, LoadOptions, LoadReport, Target};
use wechat_benches::report::{fmt_duration, loadavg, machine};
use wechat_benches::servers::{self, HELLO, RunningServer};
use wechat_core::build_http_client;
use wechat_core::pay::v2::PayClient;
use wechat_core::routes::{PayRoutes, WeChatRoutes};
use wechat_core::token::{MemoryStore, Tokens};

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "Load benchmark: the login middleware against bare axum and actix-web")]
struct Args {
    /// Seconds of measurement per target, split evenly over the rounds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before each round's measurement of a target (not counted).
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
    /// Concurrent keep-alive connections per target.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Threads of the load generator.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Worker threads of every server (tokio workers for axum, actix workers).
    #[arg(long, default_value_t = 1)]
    server_workers: usize,
    /// Rounds: every target is measured this many times (`duration / rounds` each),
    /// interleaved (bare, layer, bare, layer, …), so that drift on a shared machine hits all
    /// alike; the layer/bare ratio is the median of the rounds' ratios.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Only the targets whose name contains one of these comma-separated texts (e.g.
    /// `--only bare,+` for the four layer/bare targets).
    #[arg(long)]
    only: Option<String>,
}

/// One measured target.
struct Bench {
    name: &'static str,
    target: Target,
    /// Text the probe's body must contain.
    expect_body: &'static str,
    report: LoadReport,
    /// Each round's requests per second.
    rounds: Vec<f64>,
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("load benchmark failed: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let options = LoadOptions {
        connections: args.connections.max(1),
        threads: args.client_threads.max(1),
        warmup: Duration::from_secs_f64(args.warmup.max(0.0)),
        duration: Duration::from_secs_f64(args.duration.max(0.1) / args.rounds.max(1) as f64),
    };
    let workers = args.server_workers.max(1);
    let load_before = loadavg();

    // The simulator (for the jsapi_ticket) and the setup run on their own small runtime.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let sim = runtime.block_on(async {
        wechat_sim::Simulator::from_toml_str(fixtures::SIM_TOML)?
            .start()
            .await
            .map_err(Box::<dyn std::error::Error>::from)
    })?;
    let base = sim.base_url();
    let flow = fixtures::login_flow(&base)?;
    let config = fixtures::app_config(&base);
    let tokens = Tokens::new(
        &config,
        build_http_client(&config)?,
        Arc::new(MemoryStore::new()),
    );
    // Fetch the ticket once: under load the route serves it from the cache.
    runtime.block_on(tokens.jsapi_ticket())?;
    let pay = PayRoutes::new(
        PayClient::new(fixtures::pay_config(&base))?,
        servers::bench_shop(),
    );
    let routes = WeChatRoutes::builder(tokens)
        .jssdk_domain(fixtures::PUBLIC_URL)
        .js_api_list(["chooseWXPay", "updateAppMessageShareData"])
        .pay(pay)
        .build()
        .unwrap();

    let axum_bare = servers::spawn_axum(servers::axum_bare(), workers)?;
    let axum_noop = servers::spawn_axum(servers::axum_noop_layer(), workers)?;
    let axum_layer = servers::spawn_axum(servers::axum_layer(flow.clone()), workers)?;
    let axum_wrapped = servers::spawn_axum_service(servers::axum_wrapped(flow.clone()), workers)?;
    let axum_routes =
        servers::spawn_axum(servers::axum_routes(flow.clone(), routes.clone()), workers)?;
    let actix_bare = servers::spawn_actix_bare(workers)?;
    let actix_layer = servers::spawn_actix_layer(flow.clone(), workers)?;
    let actix_routes = servers::spawn_actix_routes(flow.clone(), routes, workers)?;

    let cookie = fixtures::session_cookie_header(&flow)?;
    let hello = |server: &RunningServer| {
        Target::new(
            server.addr(),
            "GET",
            "/hello",
            &[("Cookie", &cookie)],
            b"",
            200,
        )
    };
    let page = format!(
        "/wechat/jssdk/config?url={}",
        encode_component(fixtures::JSSDK_PAGE)
    );
    let jssdk = |server: &RunningServer| {
        Target::new(
            server.addr(),
            "GET",
            &page,
            &[("Cookie", &cookie)],
            b"",
            200,
        )
    };
    let body = fixtures::notification_body();
    let notify = |server: &RunningServer| {
        Target::new(
            server.addr(),
            "POST",
            "/wechat/pay/notify",
            &[("Content-Type", "text/xml")],
            &body,
            200,
        )
    };
    let bench = |name, target, expect_body| Bench {
        name,
        target,
        expect_body,
        report: LoadReport::default(),
        rounds: Vec::new(),
    };
    let mut benches = vec![
        bench("axum bare", hello(&axum_bare), HELLO),
        bench("axum + no-op tower layer", hello(&axum_noop), HELLO),
        bench("axum + WeChatLayer", hello(&axum_layer), HELLO),
        bench(
            "axum + WeChatLayer around the Router",
            hello(&axum_wrapped),
            HELLO,
        ),
        bench("actix-web bare", hello(&actix_bare), HELLO),
        bench(
            "actix-web + WeChatLoginMiddleware",
            hello(&actix_layer),
            HELLO,
        ),
        bench(
            "axum GET /wechat/jssdk/config",
            jssdk(&axum_routes),
            "\"signature\"",
        ),
        bench(
            "axum POST /wechat/pay/notify",
            notify(&axum_routes),
            "SUCCESS",
        ),
        bench(
            "actix-web GET /wechat/jssdk/config",
            jssdk(&actix_routes),
            "\"signature\"",
        ),
        bench(
            "actix-web POST /wechat/pay/notify",
            notify(&actix_routes),
            "SUCCESS",
        ),
    ];
    if let Some(only) = &args.only {
        let wanted: Vec<&str> = only.split(',').filter(|w| !w.is_empty()).collect();
        benches.retain(|b| wanted.iter().any(|w| b.name.contains(w)));
    }

    // Check every target answers what it should, and that the middleware is really there: the
    // layered apps refuse the same request without the cookie.
    runtime.block_on(async {
        for b in &benches {
            let (status, body) = loadgen::probe(&b.target).await?;
            let text = String::from_utf8_lossy(&body);
            if status != b.target.expect_status || !text.contains(b.expect_body) {
                return Err(format!("{}: unexpected answer {status}: {text}", b.name).into());
            }
        }
        for server in [&axum_layer, &axum_wrapped, &actix_layer] {
            let anonymous = Target::new(server.addr(), "GET", "/hello", &[], b"", 401);
            let (status, _) = loadgen::probe(&anonymous).await?;
            if status != 401 {
                return Err(format!(
                    "the middleware on {} let a request without a session through ({status})",
                    server.addr()
                )
                .into());
            }
        }
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;

    println!(
        "load: {} connections, {} generator thread(s), {} server worker(s); per target {} round(s) of {:.1} s warm-up + {:.1} s measured",
        options.connections,
        options.threads,
        workers,
        args.rounds.max(1),
        options.warmup.as_secs_f64(),
        options.duration.as_secs_f64(),
    );
    println!(
        "machine: {} | load average before: {load_before}",
        machine()
    );
    for _ in 0..args.rounds.max(1) {
        for b in &mut benches {
            eprintln!("measuring {} …", b.name);
            let round = loadgen::run(&b.target, options)?;
            let cpu = round.server_cpu_per_request();
            eprintln!(
                "  {}: {:.0} req/s, {:.2} + {:.2} µs",
                b.name,
                round.requests_per_sec(),
                micros(cpu.user),
                micros(cpu.system)
            );
            b.rounds.push(round.requests_per_sec());
            b.report.merge(round);
        }
    }
    println!("load average after: {}", loadavg());
    println!();
    println!(
        "| target | req/s | p50 | p99 | server CPU per request: user + kernel | server / generator busy | errors |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut errors = 0;
    for b in &mut benches {
        let p = b.report.percentiles(&[50.0, 99.0]);
        errors += b.report.errors;
        println!(
            "| {} | {:.0} | {} | {} | {:.1} + {:.1} µs | {:.0} % / {:.0} % | {} |",
            b.name,
            b.report.requests_per_sec(),
            fmt_duration(p[0]),
            fmt_duration(p[1]),
            micros(b.report.server_cpu_per_request().user),
            micros(b.report.server_cpu_per_request().system),
            b.report.server_busy() * 100.0,
            b.report.generator_busy() * 100.0,
            b.report.errors
        );
    }
    println!();
    let find = |name: &str| benches.iter().find(|b| b.name == name);
    for (framework, bare, layer) in [
        ("axum", "axum bare", "axum + WeChatLayer"),
        (
            "axum, WeChatLayer around the whole Router",
            "axum bare",
            "axum + WeChatLayer around the Router",
        ),
        (
            "axum, a layer that does nothing (no target: for reference)",
            "axum bare",
            "axum + no-op tower layer",
        ),
        (
            "actix-web",
            "actix-web bare",
            "actix-web + WeChatLoginMiddleware",
        ),
    ] {
        let (Some(bare), Some(layer)) = (find(bare), find(layer)) else {
            continue;
        };
        let mut ratios: Vec<f64> = bare
            .rounds
            .iter()
            .zip(&layer.rounds)
            .map(|(b, l)| if *b > 0.0 { l / b } else { 0.0 })
            .collect();
        ratios.sort_by(f64::total_cmp);
        let median = match ratios.len() {
            0 => 0.0,
            n if n % 2 == 1 => ratios[n / 2],
            n => (ratios[n / 2 - 1] + ratios[n / 2]) / 2.0,
        };
        let (min, max) = (
            ratios.first().copied().unwrap_or(0.0),
            ratios.last().copied().unwrap_or(0.0),
        );
        let bare_user = micros(bare.report.server_cpu_per_request().user);
        let layer_user = micros(layer.report.server_cpu_per_request().user);
        let verdict = if layer.name.contains("no-op") {
            "no target"
        } else if median >= 0.95 {
            "target >= 95 %: met"
        } else {
            "target >= 95 %: MISSED"
        };
        let rounds: Vec<String> = ratios.iter().map(|r| format!("{:.0}", r * 100.0)).collect();
        println!(
            "{framework}: layer/bare req/s = {:.1} % (median of {} rounds, {:.1} to {:.1} %; {verdict}); server user-space CPU per request {bare_user:.1} µs bare, {layer_user:.1} µs with the layer ({:+.1} µs); the rounds, sorted: {} %",
            median * 100.0,
            ratios.len(),
            min * 100.0,
            max * 100.0,
            layer_user - bare_user,
            rounds.join(" "),
        );
    }
    let ticket_calls = sim.stats().calls_to("/cgi-bin/ticket/getticket");
    println!("jsapi_ticket fetches from the simulator during the whole run: {ticket_calls}");

    for server in [
        axum_bare,
        axum_noop,
        axum_layer,
        axum_wrapped,
        axum_routes,
        actix_bare,
        actix_layer,
        actix_routes,
    ] {
        server.stop();
    }
    runtime.block_on(sim.shutdown());
    if errors > 0 {
        return Err(format!("{errors} requests failed during the measurement").into());
    }
    Ok(())
}

/// Percent-encodes a query component (everything but unreserved characters).
fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
