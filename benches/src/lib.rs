//! Benchmarks for the WeChat integration; see BENCHMARKS.md at the workspace root for the
//! figures and the commands that reproduce them.
//!
//! - `benches/*.rs`: criterion micro-benchmarks (signing, notification verification, JS-SDK,
//!   session cookie, cached tokens), each beside its baseline.
//! - `pay-ops` (binary): bare operations timed one by one, the Rust side of the side-by-sides
//!   with wechatpy (`benches/wechatpy/compare.sh`) and with the Pay v3 SDKs
//!   (`benches/v3-sdks/compare.sh`).
//!
//! This library holds what they share with the load tools (`tools/loadtest`, package
//! `wechat-loadtest`: the `load`, `stampede` and `cache-memory` binaries): the inputs
//! ([`fixtures`]) and the apps under test ([`apps`]). The soak, a system test, is in
//! `tests/soak` (package `wechat-soak`). Nothing here runs as part of `cargo test` beyond its
//! own unit tests: every measurement is started explicitly.

pub mod apps;
pub mod fixtures;
