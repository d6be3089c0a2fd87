//! Criterion micro-benchmarks of cached credentials: `Tokens` with a warm cache (the one fetch
//! goes to wechat-sim on 127.0.0.1 before measuring), as every request that needs a token or a
//! `wx.config` pays it.
//!
//! `cargo bench -p wechat-benches --bench tokens`.

use std::sync::Arc;
use std::time::Duration;

use criterion::Criterion;
use wechat_benches::fixtures;
use wechat_core::build_http_client;
use wechat_core::token::{MemoryStore, Tokens};

fn tokens(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let (sim, tokens) = runtime.block_on(async {
        let sim = wechat_sim::Simulator::from_toml_str(fixtures::SIM_TOML)
            .expect("valid simulator configuration")
            .start()
            .await
            .expect("the simulator starts");
        let config = fixtures::app_config(&sim.base_url());
        let tokens = Tokens::new(
            &config,
            build_http_client(&config).expect("an HTTP client"),
            Arc::new(MemoryStore::new()),
        );
        tokens
            .jsapi_ticket()
            .await
            .expect("the first fetch succeeds");
        (sim, tokens)
    });
    let fetches = |sim: &wechat_sim::RunningSim| {
        sim.stats().calls_to("/cgi-bin/stable_token")
            + sim.stats().calls_to("/cgi-bin/ticket/getticket")
    };
    let before = fetches(&sim);

    let mut g = c.benchmark_group("tokens_cached");
    g.bench_function("Tokens::access_token", |b| {
        b.to_async(&runtime).iter(|| tokens.access_token())
    });
    g.bench_function("Tokens::jsapi_ticket", |b| {
        b.to_async(&runtime).iter(|| tokens.jsapi_ticket())
    });
    g.bench_function("Tokens::jssdk_config", |b| {
        b.to_async(&runtime)
            .iter(|| tokens.jssdk_config(fixtures::JSSDK_PAGE, &["chooseWXPay"], &[]))
    });
    g.finish();
    let after = fetches(&sim);
    assert_eq!(
        before, after,
        "a cached credential was fetched again during the measurement"
    );
    runtime.block_on(sim.shutdown());
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    tokens(&mut c);
    c.final_summary();
}
