//! Benchmarks for the WeChat integration; see BENCHMARKS.md at the workspace root for the
//! figures and the commands that reproduce them.
//!
//! - `benches/*.rs`: criterion micro-benchmarks (signing, notification verification, JS-SDK,
//!   session cookie, cached tokens), each beside its baseline.
//! - `load` (binary): bare axum and actix-web against the same apps behind the login
//!   middleware, and the JS-SDK and notify routes, driven by [`loadgen`] in the same run; with
//!   `--paired`, a bare and a layered app side by side in alternating short slices
//!   ([`paired`]).
//! - `stampede` (binary): 10,000 concurrent callers on a cold and on an expired token, against
//!   wechat-sim.
//! - `pay-ops` (binary): the Rust side of the side-by-sides with wechatpy
//!   (`benches/wechatpy/compare.sh`) and with the Pay v3 SDKs (`benches/v3-sdks/compare.sh`).
//! - `soak` (binary): buyers log in and pay through four demo-shop instances behind a balancer
//!   while wechat-sim injects faults and Redis restarts; then WeChat's order book is reconciled
//!   with the app's ([`soak`] holds its parts).
//! - `cache-memory` (binary): the resident memory of the session cookie cache and the token
//!   store filled with 10,000 and 1,000,000 users (apps), each case in a fresh process.
//!
//! This library holds what they share. Nothing here runs as part of `cargo test` beyond its own
//! unit tests: every measurement is started explicitly.

pub mod cpu;
pub mod fixtures;
pub mod loadgen;
pub mod paired;
pub mod report;
pub mod servers;
pub mod soak;
pub mod stats;
