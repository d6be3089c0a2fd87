//! Request, notification and injected-fault counters, read through `GET /_sim/stats`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Live counters shared by every handler.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    calls: Mutex<BTreeMap<String, u64>>,
    sent: AtomicU64,
    acknowledged: AtomicU64,
    faults: Mutex<FaultStats>,
}

impl Stats {
    /// Counts one request to `path`; `served` tells whether a route serves that path (see
    /// [`StatsSnapshot::UNKNOWN_PATH`] and [`StatsSnapshot::MAX_PATHS`]).
    pub(crate) fn count_call(&self, path: &str, served: bool) {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let key = bounded_key(&calls, path, served);
        match calls.get_mut(key) {
            Some(n) => *n += 1,
            None => {
                calls.insert(key.to_owned(), 1);
            }
        }
    }

    /// Counts one notification delivery attempt (payment or refund).
    pub(crate) fn notification_sent(&self) {
        self.sent.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts one delivery attempt that the receiver answered with SUCCESS.
    pub(crate) fn notification_acknowledged(&self) {
        self.acknowledged.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts one fault of `kind` injected into a request to `path` (`served` as for
    /// [`Stats::count_call`]).
    pub(crate) fn count_fault(&self, kind: &str, path: &str, served: bool) {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        *faults.injected.entry(kind.to_owned()).or_default() += 1;
        let key = bounded_key(&faults.by_path, path, served).to_owned();
        *faults
            .by_path
            .entry(key)
            .or_default()
            .entry(kind.to_owned())
            .or_default() += 1;
    }

    /// A copy of the counters.
    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        let calls = self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone();
        StatsSnapshot {
            calls,
            notifications: NotificationStats {
                sent: self.sent.load(Ordering::SeqCst),
                acknowledged: self.acknowledged.load(Ordering::SeqCst),
            },
            faults: self
                .faults
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

/// The key under which a request to `path` counts in `map`: [`StatsSnapshot::UNKNOWN_PATH`]
/// when no route serves it; the path itself when it has an entry already or the map holds fewer
/// than [`StatsSnapshot::MAX_PATHS`] paths; else [`StatsSnapshot::OTHER_PATHS`].
fn bounded_key<'a, V>(map: &BTreeMap<String, V>, path: &'a str, served: bool) -> &'a str {
    if !served {
        return StatsSnapshot::UNKNOWN_PATH;
    }
    if map.contains_key(path) {
        return path;
    }
    let special = [StatsSnapshot::UNKNOWN_PATH, StatsSnapshot::OTHER_PATHS]
        .iter()
        .filter(|key| map.contains_key(**key))
        .count();
    if map.len() - special < StatsSnapshot::MAX_PATHS {
        path
    } else {
        StatsSnapshot::OTHER_PATHS
    }
}

/// What `GET /_sim/stats` returns: `{"calls": {"/cgi-bin/token": 3, ...}, "notifications": {...},
/// "faults": {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// Requests received, by URL path (any method, any outcome, `/_sim/` paths included);
    /// paths no route serves under [`StatsSnapshot::UNKNOWN_PATH`], served paths beyond the
    /// first [`StatsSnapshot::MAX_PATHS`] under [`StatsSnapshot::OTHER_PATHS`].
    pub calls: BTreeMap<String, u64>,
    /// Payment and refund notification deliveries.
    pub notifications: NotificationStats,
    /// Faults injected by `POST /_sim/fail`.
    #[serde(default)]
    pub faults: FaultStats,
}

impl StatsSnapshot {
    /// The `calls` and `faults.by_path` key of requests to paths that no route serves (any
    /// method): they all count under this one entry, so random paths cannot grow the counters.
    pub const UNKNOWN_PATH: &'static str = "(unknown)";

    /// The `calls` and `faults.by_path` key of requests to served paths first seen once the map
    /// holds [`StatsSnapshot::MAX_PATHS`] paths (served paths carry order and refund numbers).
    pub const OTHER_PATHS: &'static str = "(other)";

    /// How many distinct paths `calls` and `faults.by_path` each count on their own, besides
    /// [`StatsSnapshot::UNKNOWN_PATH`] and [`StatsSnapshot::OTHER_PATHS`].
    pub const MAX_PATHS: usize = 1024;

    /// How many requests `path` (e.g. `/cgi-bin/token`) received; 0 when none (and for a path
    /// no route serves: see [`StatsSnapshot::UNKNOWN_PATH`]).
    pub fn calls_to(&self, path: &str) -> u64 {
        self.calls.get(path).copied().unwrap_or(0)
    }

    /// How many faults of `kind` (e.g. `drop`, `status`) were injected, on any path; 0 when none.
    pub fn faults_injected(&self, kind: &str) -> u64 {
        self.faults.injected.get(kind).copied().unwrap_or(0)
    }
}

/// Notification delivery counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationStats {
    /// Every delivery attempt, retries and requested duplicates included.
    pub sent: u64,
    /// Attempts the receiver answered with SUCCESS.
    pub acknowledged: u64,
}

/// Injected-fault counters: `{"injected": {"drop": 3, "status": 2}, "by_path": {"/cgi-bin/token":
/// {"errcode": 2}}}`. A fault counts when a request takes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultStats {
    /// Faults injected, by kind: `errcode`, `err_code`, `return_code`, `status`, `delay`,
    /// `drop`, `malformed`, `bad_signature`, `unsigned`.
    pub injected: BTreeMap<String, u64>,
    /// The same counts by request path (the path called, not the registered prefix), then kind;
    /// bounded like [`StatsSnapshot::calls`].
    pub by_path: BTreeMap<String, BTreeMap<String, u64>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_beyond_the_cap_count_under_one_entry() {
        let stats = Stats::default();
        for i in 0..StatsSnapshot::MAX_PATHS + 500 {
            stats.count_call(&format!("/v3/pay/transactions/out-trade-no/{i}"), true);
        }
        // A path counted already keeps its own entry; unserved paths have theirs.
        stats.count_call("/v3/pay/transactions/out-trade-no/0", true);
        stats.count_call("/no/such/path", false);
        let s = stats.snapshot();
        assert_eq!(s.calls.len(), StatsSnapshot::MAX_PATHS + 2);
        assert_eq!(s.calls_to("/v3/pay/transactions/out-trade-no/0"), 2);
        assert_eq!(s.calls_to(StatsSnapshot::OTHER_PATHS), 500);
        assert_eq!(s.calls_to(StatsSnapshot::UNKNOWN_PATH), 1);
        assert_eq!(s.calls_to("/no/such/path"), 0);
        assert_eq!(
            s.calls.values().sum::<u64>(),
            StatsSnapshot::MAX_PATHS as u64 + 502
        );
    }

    #[test]
    fn fault_paths_are_bounded_alike() {
        let stats = Stats::default();
        for i in 0..2000 {
            stats.count_fault("status", &format!("/v3/no/such/{i}"), false);
        }
        for i in 0..StatsSnapshot::MAX_PATHS + 10 {
            stats.count_fault("drop", &format!("/v3/refund/domestic/refunds/{i}"), true);
        }
        let s = stats.snapshot();
        assert_eq!(s.faults.by_path.len(), StatsSnapshot::MAX_PATHS + 2);
        assert_eq!(
            s.faults.by_path[StatsSnapshot::UNKNOWN_PATH]["status"],
            2000
        );
        assert_eq!(s.faults.by_path[StatsSnapshot::OTHER_PATHS]["drop"], 10);
        assert_eq!(s.faults_injected("status"), 2000);
        assert_eq!(
            s.faults_injected("drop"),
            StatsSnapshot::MAX_PATHS as u64 + 10
        );
    }
}
