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
    /// Counts one request to `path`.
    pub(crate) fn count_call(&self, path: &str) {
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        match calls.get_mut(path) {
            Some(n) => *n += 1,
            None => {
                calls.insert(path.to_owned(), 1);
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

    /// Counts one fault of `kind` injected into a request to `path`.
    pub(crate) fn count_fault(&self, kind: &str, path: &str) {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        *faults.injected.entry(kind.to_owned()).or_default() += 1;
        *faults
            .by_path
            .entry(path.to_owned())
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

/// What `GET /_sim/stats` returns: `{"calls": {"/cgi-bin/token": 3, ...}, "notifications": {...},
/// "faults": {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// Requests received, by URL path (any method, any outcome, `/_sim/` paths included).
    pub calls: BTreeMap<String, u64>,
    /// Payment and refund notification deliveries.
    pub notifications: NotificationStats,
    /// Faults injected by `POST /_sim/fail`.
    #[serde(default)]
    pub faults: FaultStats,
}

impl StatsSnapshot {
    /// How many requests `path` (e.g. `/cgi-bin/token`) received; 0 when none.
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
    /// The same counts by request path (the path called, not the registered prefix), then kind.
    pub by_path: BTreeMap<String, BTreeMap<String, u64>>,
}
