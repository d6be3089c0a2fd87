//! Load tools for the WeChat integration; see BENCHMARKS.md at the workspace root for the
//! figures and the commands that reproduce them.
//!
//! - `load` (binary): bare axum and actix-web against the same apps behind the login
//!   middleware, and the JS-SDK and notify routes, driven by [`loadgen`] in the same run; with
//!   `--paired`, a bare and a layered app side by side in alternating short slices
//!   ([`paired`]).
//! - `stampede` (binary): 10,000 concurrent callers on a cold and on an expired token, against
//!   wechat-sim.
//! - `cache-memory` (binary): the resident memory of the session cookie cache and the token
//!   store filled with 10,000 and 1,000,000 users (apps), each case in a fresh process.
//!
//! The inputs and the apps under test are the benchmarks' (`wechat_benches::fixtures`,
//! `wechat_benches::apps`), so that every figure is measured on the same data. This library
//! holds what the binaries share: the servers, the generator, CPU accounting, statistics and
//! the report lines (which the soak, `tests/soak`, prints too). Nothing here runs as part of
//! `cargo test` beyond its own unit tests: every measurement is started explicitly.

pub mod cpu;
pub mod loadgen;
pub mod paired;
pub mod report;
pub mod servers;
pub mod stats;
