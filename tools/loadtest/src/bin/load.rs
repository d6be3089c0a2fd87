//! The load benchmark: bare axum and actix-web hello apps against the same apps behind the
//! WeChat login middleware (with a valid session cookie), and the JS-SDK config and payment
//! notification routes, all on 127.0.0.1 and measured in one run.
//!
//! ```sh
//! cargo run --release -p wechat-loadtest --bin load     # 10 s per target, in 10 interleaved rounds
//! cargo run --release -p wechat-loadtest --bin load -- --duration 1 --rounds 1 --warmup 0.2  # smoke
//! cargo run --release -p wechat-loadtest --bin load -- --paired --duration 60  # pairs, 60 s each
//! cargo run --release -p wechat-loadtest --bin load -- --pairs axum-noop:axum-layer --duration 20
//! ```
//!
//! Prints a Markdown table (req/s, p50, p99, errors) and the layer/bare ratio per framework.
//! With `--paired` (or `--pairs`), each pair of hello apps is served side by side and measured
//! in alternating slices of 20 ms (A B B A) by the same connections ([`wechat_loadtest::paired`]),
//! and the table gives B/A per pair: the median of the blocks' ratios, their interquartile range
//! and the 95 % bootstrap interval of the median, for req/s and for CPU time per request.
//! Exits non-zero when a target answers wrongly before the measurement, or when errors occur.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use wechat_benches::apps::{self, HELLO};
use wechat_benches::fixtures;
use wechat_core::build_http_client;
use wechat_core::login::LoginFlow;
use wechat_core::pay::v2::PayClient;
use wechat_core::routes::{PayRoutes, WeChatRoutes};
use wechat_core::token::{MemoryStore, Tokens};
use wechat_loadtest::loadgen::{self, LoadOptions, LoadReport, Target};
use wechat_loadtest::paired::{self, PairOptions};
use wechat_loadtest::report::{fmt_duration, loadavg, machine};
use wechat_loadtest::servers::{self, RunningServer};
use wechat_loadtest::stats::{self, Spread};

/// The pairs `--paired` measures by default: the login middleware against each framework's
/// bare app, against axum's no-op layer (axum's own cost of `Router::layer` not counted), and
/// a bare app against another server of the same app (a control: 1.00 but for the noise).
const DEFAULT_PAIRS: &str = "axum-bare:axum-layer,axum-noop:axum-layer,actix-bare:actix-layer,axum-bare:axum-bare,actix-bare:actix-bare";

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "Load benchmark: the login middleware against bare axum and actix-web")]
struct Args {
    /// Seconds of measurement per target, split evenly over the rounds; in paired mode, per
    /// pair (in blocks of four slices).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before each round's measurement of a target (not counted); in paired
    /// mode, before each pair's first block.
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
    /// Concurrent keep-alive connections per target (in paired mode, connection slots per
    /// pair, each with one connection to either server).
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
    /// alike; the layer/bare ratio is the median of the rounds' ratios. Not used in paired
    /// mode.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Only the targets whose name contains one of these comma-separated texts (e.g.
    /// `--only bare,+` for the four layer/bare targets).
    #[arg(long, conflicts_with_all = ["paired", "pairs"])]
    only: Option<String>,
    /// Paired mode: instead of the rounds, serve the two apps of each pair side by side (each
    /// its own server) and have the same connections alternate between them in short slices,
    /// A B B A, so that both see the same drift; reports B/A per pair. The pairs are
    /// `--pairs`, by default `axum-bare:axum-layer,axum-noop:axum-layer,actix-bare:actix-layer`
    /// and the controls `axum-bare:axum-bare,actix-bare:actix-bare`.
    #[arg(long)]
    paired: bool,
    /// The pairs of the paired mode (implies `--paired`), comma-separated `A:B` of the hello
    /// apps axum-bare, axum-noop, axum-layer, axum-wrapped (the layer around the whole
    /// Router), actix-bare, actix-layer; an app paired with itself runs as two servers.
    #[arg(long, value_name = "A:B,…")]
    pairs: Option<String>,
    /// Paired mode: the length of a slice in milliseconds (at least 10); its first tenth is not
    /// counted (the other server's last responses arrive then).
    #[arg(long, default_value_t = 20)]
    slice_ms: u64,
}

/// The hello apps: the same `GET /hello`, bare or behind a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HelloApp {
    AxumBare,
    AxumNoop,
    AxumLayer,
    AxumWrapped,
    ActixBare,
    ActixLayer,
}

impl HelloApp {
    const ALL: [HelloApp; 6] = [
        HelloApp::AxumBare,
        HelloApp::AxumNoop,
        HelloApp::AxumLayer,
        HelloApp::AxumWrapped,
        HelloApp::ActixBare,
        HelloApp::ActixLayer,
    ];

    /// How `--pairs` names it.
    fn key(self) -> &'static str {
        match self {
            HelloApp::AxumBare => "axum-bare",
            HelloApp::AxumNoop => "axum-noop",
            HelloApp::AxumLayer => "axum-layer",
            HelloApp::AxumWrapped => "axum-wrapped",
            HelloApp::ActixBare => "actix-bare",
            HelloApp::ActixLayer => "actix-layer",
        }
    }

    /// How the tables name it.
    fn name(self) -> &'static str {
        match self {
            HelloApp::AxumBare => "axum bare",
            HelloApp::AxumNoop => "axum + no-op tower layer",
            HelloApp::AxumLayer => "axum + WeChatLoginLayer",
            HelloApp::AxumWrapped => "axum + WeChatLoginLayer around the Router",
            HelloApp::ActixBare => "actix-web bare",
            HelloApp::ActixLayer => "actix-web + WeChatLoginMiddleware",
        }
    }

    /// Whether the login middleware is in it.
    fn has_login(self) -> bool {
        matches!(
            self,
            HelloApp::AxumLayer | HelloApp::AxumWrapped | HelloApp::ActixLayer
        )
    }

    fn from_key(key: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|app| app.key() == key.trim())
            .ok_or_else(|| {
                let keys: Vec<&str> = Self::ALL.iter().map(|app| app.key()).collect();
                format!(
                    "unknown app {key:?} in --pairs (one of {})",
                    keys.join(", ")
                )
            })
    }

    /// Serves it with `workers` workers.
    fn spawn(self, flow: &LoginFlow, workers: usize) -> std::io::Result<RunningServer> {
        match self {
            HelloApp::AxumBare => servers::spawn_axum(apps::axum_bare(), workers),
            HelloApp::AxumNoop => servers::spawn_axum(apps::axum_noop_layer(), workers),
            HelloApp::AxumLayer => servers::spawn_axum(apps::axum_layer(flow.clone()), workers),
            HelloApp::AxumWrapped => {
                servers::spawn_axum_service(apps::axum_wrapped(flow.clone()), workers)
            }
            HelloApp::ActixBare => servers::spawn_actix_bare(workers),
            HelloApp::ActixLayer => servers::spawn_actix_layer(flow.clone(), workers),
        }
    }
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

type BoxError = Box<dyn std::error::Error>;

fn run(args: Args) -> Result<(), BoxError> {
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
    let flow = fixtures::login_flow(&sim.base_url())?;
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
    let errors = if args.paired || args.pairs.is_some() {
        run_paired(&args, &runtime, &flow, &hello, &load_before)?
    } else {
        run_rounds(&args, &runtime, &sim, &flow, &cookie, &hello, &load_before)?
    };
    runtime.block_on(sim.shutdown());
    if errors > 0 {
        return Err(format!("{errors} requests failed during the measurement").into());
    }
    Ok(())
}

/// The interleaved rounds over every target; returns the failed requests.
fn run_rounds(
    args: &Args,
    runtime: &tokio::runtime::Runtime,
    sim: &wechat_sim::RunningSim,
    flow: &LoginFlow,
    cookie: &str,
    hello: &dyn Fn(&RunningServer) -> Target,
    load_before: &str,
) -> Result<u64, BoxError> {
    let options = LoadOptions {
        connections: args.connections.max(1),
        threads: args.client_threads.max(1),
        warmup: Duration::from_secs_f64(args.warmup.max(0.0)),
        duration: Duration::from_secs_f64(args.duration.max(0.1) / args.rounds.max(1) as f64),
    };
    let workers = args.server_workers.max(1);
    let base = sim.base_url();
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
        apps::bench_shop(),
    );
    let routes = WeChatRoutes::builder(tokens)
        .jssdk_domain(fixtures::PUBLIC_URL)
        .js_api_list(["chooseWXPay", "updateAppMessageShareData"])
        .pay(pay)
        .build()
        .unwrap();

    let hello_servers = HelloApp::ALL
        .into_iter()
        .map(|app| Ok((app, app.spawn(flow, workers)?)))
        .collect::<std::io::Result<Vec<_>>>()?;
    let axum_routes =
        servers::spawn_axum(apps::axum_routes(flow.clone(), routes.clone()), workers)?;
    let actix_routes = servers::spawn_actix_routes(flow.clone(), routes, workers)?;

    let page = format!(
        "/wechat/jssdk/config?url={}",
        encode_component(fixtures::JSSDK_PAGE)
    );
    let jssdk = |server: &RunningServer| {
        Target::new(server.addr(), "GET", &page, &[("Cookie", cookie)], b"", 200)
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
    let mut benches: Vec<Bench> = hello_servers
        .iter()
        .map(|(app, server)| bench(app.name(), hello(server), HELLO))
        .collect();
    benches.extend([
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
    ]);
    if let Some(only) = &args.only {
        let wanted: Vec<&str> = only.split(',').filter(|w| !w.is_empty()).collect();
        benches.retain(|b| wanted.iter().any(|w| b.name.contains(w)));
    }

    // Check every target answers what it should, and that the middleware is really there: the
    // layered apps refuse the same request without the cookie.
    runtime.block_on(async {
        for b in &benches {
            check_answer(b.name, &b.target, b.expect_body).await?;
        }
        for (_, server) in hello_servers.iter().filter(|(app, _)| app.has_login()) {
            check_login_required(server).await?;
        }
        Ok::<(), BoxError>(())
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
        ("axum", "axum bare", "axum + WeChatLoginLayer"),
        (
            "axum, WeChatLoginLayer around the whole Router",
            "axum bare",
            "axum + WeChatLoginLayer around the Router",
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
        let ratios: Vec<f64> = bare
            .rounds
            .iter()
            .zip(&layer.rounds)
            .map(|(b, l)| if *b > 0.0 { l / b } else { 0.0 })
            .collect();
        let ratios = stats::sorted(&ratios);
        let median = stats::quantile_sorted(&ratios, 0.5);
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

    for (_, server) in hello_servers {
        server.stop();
    }
    axum_routes.stop();
    actix_routes.stop();
    Ok(errors)
}

/// Checks that `target` answers its expected status with a body containing `expect_body`.
async fn check_answer(name: &str, target: &Target, expect_body: &str) -> Result<(), BoxError> {
    let (status, body) = loadgen::probe(target).await?;
    let text = String::from_utf8_lossy(&body);
    if status != target.expect_status || !text.contains(expect_body) {
        return Err(format!("{name}: unexpected answer {status}: {text}").into());
    }
    Ok(())
}

/// Checks that the middleware is really on `server`: it refuses the request without the
/// cookie.
async fn check_login_required(server: &RunningServer) -> Result<(), BoxError> {
    let anonymous = Target::new(server.addr(), "GET", "/hello", &[], b"", 401);
    let (status, _) = loadgen::probe(&anonymous).await?;
    if status != 401 {
        return Err(format!(
            "the middleware on {} let a request without a session through ({status})",
            server.addr()
        )
        .into());
    }
    Ok(())
}

/// The paired mode: each pair served side by side and measured in A B B A slices; returns the
/// failed requests.
fn run_paired(
    args: &Args,
    runtime: &tokio::runtime::Runtime,
    flow: &LoginFlow,
    hello: &dyn Fn(&RunningServer) -> Target,
    load_before: &str,
) -> Result<u64, BoxError> {
    let pairs = args
        .pairs
        .as_deref()
        .unwrap_or(DEFAULT_PAIRS)
        .split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (a, b) = pair
                .split_once(':')
                .ok_or_else(|| format!("--pairs: {pair:?} is not A:B"))?;
            Ok((HelloApp::from_key(a)?, HelloApp::from_key(b)?))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let slice = Duration::from_millis(args.slice_ms.max(10));
    let mut options = PairOptions {
        connections: args.connections.max(1),
        threads: args.client_threads.max(1),
        warmup: Duration::from_secs_f64(args.warmup.max(0.0)),
        slice,
        settle: slice / 10,
        blocks: 0,
    };
    options.blocks = (args.duration.max(0.0) / (4.0 * slice.as_secs_f64()))
        .round()
        .max(1.0) as usize;
    let workers = args.server_workers.max(1);
    println!(
        "load --paired: {} connections (each with one to A and one to B), {} generator thread(s), {} server worker(s) per server; per pair {:.1} s warm-up, then {} blocks of A B B A slices of {} ms ({} ms of each not counted)",
        options.connections,
        options.threads,
        workers,
        options.warmup.as_secs_f64(),
        options.blocks,
        slice.as_millis(),
        options.settle.as_millis(),
    );
    println!(
        "machine: {} | load average before: {load_before}",
        machine()
    );
    let mut measured = Vec::with_capacity(pairs.len());
    for (a, b) in pairs {
        let servers = [a.spawn(flow, workers)?, b.spawn(flow, workers)?];
        let targets = servers.each_ref().map(hello);
        runtime.block_on(async {
            for (app, (server, target)) in [a, b].into_iter().zip(servers.iter().zip(&targets)) {
                check_answer(app.name(), target, HELLO).await?;
                if app.has_login() {
                    check_login_required(server).await?;
                }
            }
            Ok::<(), BoxError>(())
        })?;
        eprintln!("measuring {} : {} …", a.key(), b.key());
        let report = paired::run_pair(
            targets.each_ref(),
            servers.each_ref().map(RunningServer::threads),
            &options,
        )?;
        let rate = report.rate_spread();
        eprintln!(
            "  B/A req/s {} (interquartile {}–{}), CPU per request {}",
            percent(rate.median),
            percent(rate.quartiles.0),
            percent(rate.quartiles.1),
            percent(report.cpu_spread().median),
        );
        for server in servers {
            server.stop();
        }
        measured.push((a, b, report));
    }
    println!("load average after: {}", loadavg());
    println!();
    println!(
        "| pair: A → B | B/A req/s: median of the blocks | interquartile range | 95 % interval of the median | B/A of the summed requests (95 %) | B/A CPU time per request: median (interquartile range) | A / B req/s | A / B server CPU per request: user + kernel | A / B p50, p99 | blocks (slices) | errors |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut errors = 0;
    for (a, b, report) in &mut measured {
        let rate = report.rate_spread();
        let cpu = report.cpu_spread();
        let (summed, (low, high)) = report.summed_ratio();
        let [ta, tb] = &mut report.totals;
        let cpu_of = |t: &LoadReport| {
            let c = t.server_cpu_per_request();
            format!("{:.1} + {:.1} µs", micros(c.user), micros(c.system))
        };
        let latency = |t: &mut LoadReport| {
            let p = t.percentiles(&[50.0, 99.0]);
            format!("{}, {}", fmt_duration(p[0]), fmt_duration(p[1]))
        };
        errors += ta.errors + tb.errors;
        println!(
            "| {} → {} | {} | {}–{} | {}–{} | {} ({}–{}) | {} ({}–{}) | {:.0} / {:.0} | {} / {} | {} / {} | {} ({}) | {} |",
            a.key(),
            b.key(),
            percent(rate.median),
            percent(rate.quartiles.0),
            percent(rate.quartiles.1),
            percent(rate.median_interval.0),
            percent(rate.median_interval.1),
            percent(summed),
            percent(low),
            percent(high),
            percent(cpu.median),
            percent(cpu.quartiles.0),
            percent(cpu.quartiles.1),
            ta.requests_per_sec(),
            tb.requests_per_sec(),
            cpu_of(ta),
            cpu_of(tb),
            latency(ta),
            latency(tb),
            rate.n,
            rate.n * 4,
            ta.errors + tb.errors,
        );
    }
    println!();
    for (a, b, report) in &measured {
        let rate = report.rate_spread();
        println!("{} → {}: {}", a.key(), b.key(), verdict(*a, *b, &rate));
    }
    Ok(errors)
}

/// What a pair's B/A says about the target (the middleware at >= 95 % of the app without it).
fn verdict(a: HelloApp, b: HelloApp, rate: &Spread) -> String {
    let (low, high) = rate.median_interval;
    let measured = format!(
        "B/A req/s {} (95 % interval of the median {}–{})",
        percent(rate.median),
        percent(low),
        percent(high)
    );
    if a == b {
        let holds = low <= 1.0 && 1.0 <= high;
        let control = if holds { "holds 100 %" } else { "MISSES 100 %" };
        return format!("{measured}; control: two servers of the same app, the interval {control}");
    }
    if a.has_login() || !b.has_login() {
        return format!("{measured}; no target");
    }
    let target = if low >= 0.95 {
        "target >= 95 %: met"
    } else if high < 0.95 {
        "target >= 95 %: MISSED"
    } else {
        "target >= 95 %: not resolved (the interval spans 95 %)"
    };
    format!("{measured}; {target}")
}

fn percent(ratio: f64) -> String {
    format!("{:.1} %", ratio * 100.0)
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
