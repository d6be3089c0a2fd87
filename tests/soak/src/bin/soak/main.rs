//! The soak run: for a bounded time, simulated buyers log in and pay through four instances of
//! the demo shop while wechat-sim injects faults and Redis restarts; then WeChat's order book is
//! reconciled with the app's.
//!
//! ```sh
//! cargo run --release -p wechat-soak                      # 120 s, 50 buyers, v3
//! cargo run --release -p wechat-soak -- --seconds 30 --buyers 20
//! cargo run --release -p wechat-soak -- --pay-version v2
//! ```
//!
//! Everything runs in this process and on 127.0.0.1; it needs `redis-server` on `PATH` (it starts
//! and owns its own, on a free port) and nothing else.
//!
//! # What runs
//!
//! - **WeChat**: one wechat-sim (as a library), one app, one user per buyer, the demo's merchant
//!   with API v2 and v3; notifications retried on WeChat's schedule × `--notify-retry-scale`.
//! - **The app**: `--instances` demo shops (default two axum and two actix-web demos, as
//!   `axum_demo::start` / `actix_demo::start` run them), each with its own `Tokens` on one shared
//!   `RedisStore`, all on one SQLite order database (the demo store's transactions are written
//!   for several processes sharing the file) and one session key, behind a round-robin TCP
//!   balancer whose origin is every instance's public URL: the OAuth `redirect_uri`, the JS-SDK
//!   domain and the `notify_url` are the balancer's, and any instance answers any request, as
//!   behind a real load balancer. WeChat Pay API v3 by default, `--pay-version v2` for v2.
//! - **Buyers**: `--buyers` browsers (cookie jar, redirects followed, a new connection per
//!   request so the balancer spreads them). Each, until `--seconds` is up: logs in through the
//!   simulator's OAuth consent page as its own user (`snsapi_userinfo`, the demo's scope; again
//!   with probability `--relogin-rate` per round, and whenever a request gets 401), loads the
//!   shop page and does what its script does (`GET /wechat/jssdk/config`, then the JS-SDK's
//!   `/_sim/jssdk/verify`), creates an order (`POST /wechat/pay/orders`, `Content-Type:
//!   application/json`, body `{}`; now and then twice in a row, a double click), pays it as the
//!   pay sheet does (`/_sim/pay/check`, `/_sim/pay/confirm`, from the page's origin) unless it
//!   abandons it (`--abandon-rate`), polls `GET /wechat/pay/orders/{no}` every second (at most 30
//!   times, as the page does), and with probability `--refund-rate` asks for a refund. The demo
//!   has no refund route, so the shop's back office issues it through the library: the
//!   instance's Pay client (`v3::PayClient::refund`, v2 `PayClient::refund` with WeChat Pay's
//!   public test certificate, which the simulator does not check), `out_refund_no` = `R` + the
//!   order number, retried with the same number; sometimes requested twice on purpose. A buyer
//!   creates at most `--orders-per-minute` orders in any 60 s (the limit the library will
//!   enforce: a 429 is honoured with its `Retry-After`), and counts an order number it already
//!   had as a reused order, not an error.
//! - **Faults**, registered with `POST /_sim/fail` (`probability` = `--fault-rate`, seeds from
//!   `--seed`) on every endpoint the app's server calls: the token, ticket, OAuth code exchange
//!   and userinfo endpoints, and the Pay endpoints (order, query — a prefix path, since v3 paths
//!   carry the order number — and refund). Kinds: busy (api.weixin `errcode=-1`, v3 `500
//!   SYSTEM_ERROR`, v2 `err_code=SYSTEMERROR`), `502`, `503` (the gateway's page), `delay`
//!   (`--delay-ms`) and `drop` (the connection closed with no answer). The simulator draws one
//!   kind per path, so the plan rotates every `--fault-phase-seconds`: in phase k, endpoint i gets
//!   kind (i + k) mod 5. Faults that make an operation impossible on every try (bad signatures,
//!   malformed answers) are not injected. The token and ticket endpoints (`/cgi-bin/…`) get
//!   `--token-fault-rate` (default 0.25) instead: they are called once per refresh, a few times
//!   in a run, and their refresh under faults is what the token check is about.
//! - **Token lifetime**: access tokens and tickets live `--token-ttl-seconds` (default 60; WeChat's
//!   7200) on the simulator, whose clock is never moved: a run of minutes then refreshes each
//!   credential a few times (and once while Redis is down) instead of once at the start.
//! - **Notifications replayed** `--replays-per-second` through `/_sim/pay/notify`: `duplicate`,
//!   `concurrent_duplicates` (2–8 at once) of paid orders, `reordered` (refund first) and
//!   `duplicate` of refunds, `result_code_fail` (a failed payment, for unpaid and paid orders) and
//!   `unknown_order` (a payment of an order the app never made).
//! - **Redis** is killed (SIGKILL, no persistence: it comes back empty) `--redis-restarts` times
//!   during the run, for `--redis-down-seconds`, and started again on the same port.
//!
//! After `--seconds`, buyers finish the round they are in (at most 45 s more), faults are
//! cleared, and the books are compared until they agree or `--drain-seconds` pass; then the
//! instances stop and the final reconciliation runs on the database they leave.
//!
//! # What is checked
//!
//! The app's database gets a transition log written by triggers, in the store's own
//! transactions (`unpaid → paid`, `paid → refunded`, each refund's status changes), because the
//! store's rows alone cannot tell a payment applied once from one applied twice. Then, for every
//! order a buyer got, the app stored, or WeChat invented (`unknown_order`), against the
//! simulator's `GET /_sim/pay/orders/{no}`:
//!
//! 1. every order WeChat considers paid (`SUCCESS`/`REFUND`) is paid in the app exactly once
//!    (one `unpaid → paid` transition, same transaction id, payer and amount);
//! 2. no order is paid in the app that WeChat did not see paid, and no invented order is stored;
//! 3. no refund is applied twice (at most one transition to `SUCCESS` per refund and to
//!    `refunded` per order), none that WeChat did not make, never more than paid; every refund
//!    WeChat completed is in the app;
//! 4. the token endpoints were called at most once per refresh. A credential of lifetime L is
//!    refreshed ahead of its expiry, at L − min(L/6, 300 s): a run of T seconds needs at most
//!    1 + T / (L − min(L/6, 300)) refreshes, shared by all instances through Redis; each Redis
//!    outage adds, per instance, one refresh per such interval it lasted (plus 2 s: the store is
//!    skipped for a second after failing), since an instance refreshes alone while the store is
//!    down or empty. A refresh is one `stable_token` call; a ticket refresh may take three
//!    `getticket` calls, because WeChat answers the same ticket until it expires (asked ahead,
//!    at the expiry margin, then at expiry). Calls that an injected fault answered (busy, 5xx,
//!    drop; not delay) are retries and are subtracted; the rest must stay within that bound.
//!    And refresh by refresh: the simulator's counters are sampled every 0.5 s, calls less than
//!    3 s apart make one refresh, and a refresh outside a Redis outage (until 2 s after Redis
//!    answers again) may take one `stable_token` call WeChat answered (two `getticket` calls:
//!    the ticket's expiry margin and its expiry fall together);
//! 5. every OAuth code was exchanged at most once (`sns/oauth2/access_token` calls ≤ callbacks
//!    the buyers' browsers reached) and WeChat accepted every `wx.config` signature.
//!
//! Buyers seeing errors while WeChat fails is expected (a 502 when the order cannot be placed);
//! they are reported by kind, with the library's retries (its retry log events, by endpoint)
//! and the warnings and errors it logged. Exits 2 when a check fails (a mismatch of the order
//! books, or too many token calls), 1 when the run cannot be set up.

mod buyer;
mod chaos;
mod summary;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use clap::Parser;
use demo_shop::PayVersion;
use demo_shop::sim::SIM_APPID;
use futures_util::StreamExt as _;
use reqwest::Url;
use wechat_core::routes::PayApi;
use wechat_core::session::SessionKeys;
use wechat_loadtest::report::loadavg;
use wechat_soak::applog;
use wechat_soak::balancer::Balancer;
use wechat_soak::faults;
use wechat_soak::ledger;
use wechat_soak::reconcile::{Reconciliation, reconcile};
use wechat_soak::redis::RedisServer;
use wechat_soak::tally::Tally;
use wechat_soak::world::{self, Framework, Instance, Shared};

/// Command-line options.
#[derive(Debug, Clone, Parser)]
#[command(
    about = "Soak: buyers log in and pay through 4 demo instances while wechat-sim injects faults; then the order books are reconciled"
)]
struct Args {
    /// How long buyers keep buying, in seconds.
    #[arg(long, default_value_t = 120)]
    seconds: u64,
    /// Concurrent simulated buyers.
    #[arg(long, default_value_t = 50)]
    buyers: usize,
    /// The demo instances, comma-separated: axum or actix.
    #[arg(long, default_value = "axum,actix,axum,actix")]
    instances: String,
    /// WeChat Pay API: v3 or v2.
    #[arg(long, default_value = "v3", value_parser = ["v3", "v2"])]
    pay_version: String,
    /// Probability that a call to a faulted endpoint fails.
    #[arg(long, default_value_t = 0.05)]
    fault_rate: f64,
    /// Probability that a call to a token or ticket endpoint (`/cgi-bin/…`) fails: a run calls
    /// them only once per refresh, so a few times, and the refresh path under faults is what
    /// the soak is for.
    #[arg(long, default_value_t = 0.25)]
    token_fault_rate: f64,
    /// Seed of the fault draws and of every random choice.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// How long each phase of the fault rotation lasts, in seconds.
    #[arg(long, default_value_t = 10)]
    fault_phase_seconds: u64,
    /// The delay of `delay` faults, in milliseconds.
    #[arg(long, default_value_t = 300)]
    delay_ms: u64,
    /// How many times Redis is killed and restarted during the run (0: never).
    #[arg(long, default_value_t = 1)]
    redis_restarts: u32,
    /// How long Redis stays down each time, in seconds.
    #[arg(long, default_value_t = 5.0)]
    redis_down_seconds: f64,
    /// Orders a buyer creates at most in any 60 s.
    #[arg(long, default_value_t = 5)]
    orders_per_minute: usize,
    /// Probability that a paid order is refunded.
    #[arg(long, default_value_t = 0.2)]
    refund_rate: f64,
    /// Probability that a buyer does not pay an order it created.
    #[arg(long, default_value_t = 0.1)]
    abandon_rate: f64,
    /// Probability that a buyer logs in again (a new browser session) before a round.
    #[arg(long, default_value_t = 0.2)]
    relogin_rate: f64,
    /// Probability that the pay button is clicked twice.
    #[arg(long, default_value_t = 0.05)]
    double_click_rate: f64,
    /// Notifications replayed per second (duplicates, reordered, failed, unknown orders).
    #[arg(long, default_value_t = 2.0)]
    replays_per_second: f64,
    /// The lifetime of access tokens and jsapi_tickets at the simulator, in seconds (WeChat's
    /// is 7200: a run of a few minutes would then refresh each once).
    #[arg(long, default_value_t = 60)]
    token_ttl_seconds: u64,
    /// WeChat's notification retry schedule (15 s, 15 s, 30 s, 3 min…) is multiplied by this.
    #[arg(long, default_value_t = 0.1)]
    notify_retry_scale: f64,
    /// At most this long, after the buyers stop, for the books to agree, in seconds.
    #[arg(long, default_value_t = 30)]
    drain_seconds: u64,
    /// Runtime worker threads (buyers, simulator, axum instances; actix instances have their
    /// own).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Also write the warnings and errors logged during the run to this file.
    #[arg(long)]
    log: Option<PathBuf>,
}

/// How long a buyer's request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long buyers may take, after the end, to finish the round they are in.
const ROUND_GRACE: Duration = Duration::from_secs(45);
/// Polls of an order's status after paying (the page's 30, 1 s apart).
const STATUS_POLLS: usize = 30;
/// The session cookie of the demos (no `__Host-` prefix on http).
const SESSION_COOKIE: &str = "wechat_session";

/// What every task of the run shares.
pub(crate) struct Ctx {
    /// The options.
    pub(crate) args: Args,
    /// When buyers started.
    pub(crate) started: Instant,
    /// When buyers stop starting anything new.
    pub(crate) deadline: Instant,
    /// The balancer's origin, `http://127.0.0.1:PORT/`: the shop's public URL.
    pub(crate) public: Url,
    /// The same, without the trailing `/` (the `Origin` header of the shop's pages).
    pub(crate) origin: String,
    /// The simulator's base URL.
    pub(crate) sim: Url,
    /// The same, without the trailing `/`.
    pub(crate) sim_base: String,
    /// The client for the simulator's control endpoints.
    pub(crate) control: reqwest::Client,
    /// Each instance's Pay client (for the back office's refunds).
    pub(crate) pay: Vec<PayApi>,
    /// What buyers did, by name.
    pub(crate) traffic: Tally,
    /// What went wrong for buyers (and the back office), by kind.
    pub(crate) errors: Tally,
    /// Notifications replayed, by mode and outcome.
    pub(crate) replays: Tally,
    /// The orders known so far, by state.
    pub(crate) book: Mutex<Book>,
    /// Per credential of [`chaos::CREDENTIALS`]: calls and faulted calls counted so far, and
    /// the samples of new calls.
    pub(crate) token_calls: Mutex<[TokenCalls; 2]>,
}

/// Calls and faulted calls seen so far, and the samples of new ones.
pub(crate) type TokenCalls = (u64, u64, Vec<wechat_soak::refreshes::Sample>);

/// The orders the run knows of.
#[derive(Debug, Default)]
pub(crate) struct Book {
    /// Every order number a buyer was given.
    pub(crate) known: BTreeSet<String>,
    /// Orders the status route reported paid.
    pub(crate) paid: Vec<String>,
    /// Refunds WeChat accepted: (out_trade_no, out_refund_no).
    pub(crate) refunded: Vec<(String, String)>,
    /// Orders left unpaid on purpose.
    pub(crate) unpaid: Vec<String>,
    /// Order numbers WeChat made up (`unknown_order` notifications).
    pub(crate) invented: BTreeSet<String>,
}

impl Ctx {
    /// Whether the buying part of the run is still on.
    pub(crate) fn running(&self) -> bool {
        Instant::now() < self.deadline
    }

    /// The order book (a short lock).
    pub(crate) fn book(&self) -> MutexGuard<'_, Book> {
        self.book
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
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
            eprintln!("soak: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match runtime.block_on(run(args)) {
        Ok(true) => 0,
        Ok(false) => 2,
        Err(e) => {
            eprintln!("soak failed: {e}");
            1
        }
    };
    // Connections the instances' tasks may still hold must not delay the exit.
    runtime.shutdown_timeout(Duration::from_secs(2));
    std::process::exit(code);
}

/// A temporary folder for the run's database, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("wechat-soak-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn run(args: Args) -> Result<bool, BoxError> {
    let version = match args.pay_version.as_str() {
        "v2" => PayVersion::V2,
        _ => PayVersion::V3,
    };
    let frameworks = args
        .instances
        .split(',')
        .map(Framework::parse)
        .collect::<Result<Vec<_>, _>>()?;
    if frameworks.is_empty() || args.buyers == 0 || args.seconds == 0 {
        return Err("at least one instance, one buyer and one second are needed".into());
    }
    let log = applog::install(args.log.as_deref())?;
    let load_before = loadavg();

    // Redis, the database (the demo's schema, then the soak's transition log), the balancer's
    // port, the simulator, the instances.
    let redis = RedisServer::start().await?;
    let dir = TempDir::new()?;
    let db = dir.0.join("orders.sqlite3");
    // The demo's own store creates its schema; the soak's triggers go on top.
    drop(demo_shop::OrderStore::open(&db, SIM_APPID.into()).await?);
    ledger::instrument(&db)?;
    let v2_certificate = match version {
        PayVersion::V2 => {
            let path = dir.0.join("apiclient_cert_and_key.pem");
            std::fs::write(&path, world::V2_CLIENT_CERTIFICATE)?;
            Some(path)
        }
        PayVersion::V3 => None,
    };
    let front = std::net::TcpListener::bind("127.0.0.1:0")?;
    let front_addr = front.local_addr()?;
    let origin = format!("http://{front_addr}");
    let config = world::sim_config(
        args.buyers,
        &front_addr.to_string(),
        args.token_ttl_seconds.max(1),
        args.notify_retry_scale,
    );
    config.validate()?;
    let sim = wechat_sim::Simulator::new(config).start().await?;
    let shared = Shared {
        version,
        public_url: origin.clone(),
        db_path: db.clone(),
        redis_url: redis.url(),
        session_key: SessionKeys::generate(),
        v2_certificate,
    };
    let mut instances = Vec::with_capacity(frameworks.len());
    for framework in &frameworks {
        let settings = world::instance_settings(&sim, &shared)?;
        instances.push(Instance::start(*framework, settings).await?);
    }
    let balancer = Balancer::start(front, instances.iter().map(Instance::local_addr).collect())?;
    let pay = instances
        .iter()
        .map(|i| i.shop().pay_routes().map(|p| p.client().clone()))
        .collect::<Option<Vec<_>>>()
        .ok_or("an instance has no payment routes")?;
    let control = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;

    let started = Instant::now();
    let ctx = Arc::new(Ctx {
        started,
        deadline: started + Duration::from_secs(args.seconds),
        public: Url::parse(&format!("{origin}/"))?,
        origin,
        sim: Url::parse(&format!("{}/", sim.base_url()))?,
        sim_base: sim.base_url(),
        control,
        pay,
        traffic: Tally::new(),
        errors: Tally::new(),
        replays: Tally::new(),
        book: Mutex::new(Book::default()),
        token_calls: Mutex::new(Default::default()),
        args: args.clone(),
    });
    eprintln!(
        "soak: {} buyers for {} s against {} instances behind {} (WeChat Pay {}), wechat-sim at {}, Redis on port {}",
        args.buyers,
        args.seconds,
        instances.len(),
        ctx.origin,
        version.as_str(),
        ctx.sim_base,
        redis.port()
    );
    let fault_task = tokio::spawn(chaos::fault_phases(
        Arc::clone(&ctx),
        faults::targets(version),
    ));
    let redis_task = tokio::spawn(chaos::redis_restarts(Arc::clone(&ctx), redis));
    let replay_task = tokio::spawn(chaos::replays(Arc::clone(&ctx)));
    let progress_task = tokio::spawn(progress(Arc::clone(&ctx)));
    let watch_task = tokio::spawn(chaos::watch_token_calls(Arc::clone(&ctx)));
    let buyers: Vec<_> = (0..args.buyers)
        .map(|i| tokio::spawn(buyer::run(Arc::clone(&ctx), i)))
        .collect();

    tokio::time::sleep_until(ctx.deadline.into()).await;
    let phases = fault_task.await??;
    faults::clear(&ctx.control, &ctx.sim_base).await?;
    let _ = replay_task.await;
    let grace = Instant::now() + ROUND_GRACE;
    let mut cut = 0;
    for mut task in buyers {
        if tokio::time::timeout_at(grace.into(), &mut task)
            .await
            .is_err()
        {
            task.abort();
            cut += 1;
        }
    }
    progress_task.abort();
    let buying = started.elapsed();
    let (redis, outages, redis_error) = redis_task.await?;
    if let Some(e) = redis_error {
        return Err(format!("Redis did not come back: {e}").into());
    }

    // Drain: WeChat retries what failed; wait for the books to agree.
    let drain_start = Instant::now();
    let drain_limit = Duration::from_secs(args.drain_seconds);
    loop {
        let r = books(&ctx, &db).await?;
        if r.mismatches.is_empty() || drain_start.elapsed() >= drain_limit {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let drained = drain_start.elapsed();

    // Stop the app, then compare what it left with WeChat's book.
    let connections = balancer.connections();
    balancer.stop();
    let instance_names: Vec<String> = instances
        .iter()
        .map(|i| i.framework().as_str().to_owned())
        .collect();
    for instance in instances {
        instance.shutdown().await;
    }
    let reconciliation = books(&ctx, &db).await?;
    watch_task.abort();
    chaos::sample_token_calls(&ctx).await;
    let stats = sim.stats();
    let elapsed = started.elapsed();
    let report = summary::Report {
        args: &args,
        version,
        instances: instance_names,
        connections,
        buying,
        drained,
        elapsed,
        cut,
        phases,
        outages,
        stats,
        ctx: &ctx,
        log: &log,
        reconciliation: &reconciliation,
        load_before,
    };
    let ok = report.print();
    sim.shutdown().await;
    drop(redis);
    drop(dir);
    Ok(ok)
}

/// Reads both books and compares them.
async fn books(ctx: &Ctx, db: &Path) -> Result<Reconciliation, BoxError> {
    let path = db.to_owned();
    let app = tokio::task::spawn_blocking(move || ledger::read_app_book(&path)).await??;
    let (known, invented) = {
        let book = ctx.book();
        (book.known.clone(), book.invented.clone())
    };
    let numbers: BTreeSet<String> = known
        .iter()
        .chain(app.orders.keys())
        .chain(invented.iter())
        .cloned()
        .collect();
    let answers: Vec<(String, Result<Option<ledger::SimOrder>, String>)> =
        futures_util::stream::iter(numbers)
            .map(|no| async move {
                let answer = ledger::read_sim_order(&ctx.control, &ctx.sim_base, &no).await;
                (no, answer)
            })
            .buffer_unordered(16)
            .collect()
            .await;
    let mut sim = BTreeMap::new();
    for (no, answer) in answers {
        sim.insert(no, answer?);
    }
    Ok(reconcile(&known, &invented, &app, &sim))
}

/// A line on stderr every 15 s, so that a long run shows it is alive.
async fn progress(ctx: Arc<Ctx>) {
    loop {
        tokio::time::sleep(Duration::from_secs(15)).await;
        eprintln!(
            "soak: {:>4.0} s: {} orders, {} paid, {} refunds, {} buyer errors",
            ctx.started.elapsed().as_secs_f64(),
            ctx.traffic.get("orders: created"),
            ctx.traffic.get("orders: paid on the pay sheet"),
            ctx.traffic.get("refunds: accepted by WeChat"),
            ctx.errors.total()
        );
    }
}
