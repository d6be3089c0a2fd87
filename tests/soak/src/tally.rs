//! Counters by name, shared by the soak's tasks and printed at the end.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Named counters (`"order: 502"` → 3), safe to share between tasks.
#[derive(Debug, Default)]
pub struct Tally(Mutex<BTreeMap<String, u64>>);

impl Tally {
    /// An empty tally.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one to `key`.
    pub fn add(&self, key: impl Into<String>) {
        self.add_n(key, 1);
    }

    /// Adds `n` to `key`.
    pub fn add_n(&self, key: impl Into<String>, n: u64) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *map.entry(key.into()).or_default() += n;
    }

    /// The count of `key` (0 when never added).
    pub fn get(&self, key: &str) -> u64 {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .copied()
            .unwrap_or(0)
    }

    /// Every counter, sorted by name.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The sum of every counter.
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }
}

/// `a: 1, b: 2` for a tally's snapshot, or `none`.
pub fn inline(map: &BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".to_owned();
    }
    map.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_name() {
        let t = Tally::new();
        t.add("b");
        t.add("a");
        t.add_n("b", 2);
        assert_eq!(t.get("b"), 3);
        assert_eq!(t.get("c"), 0);
        assert_eq!(t.total(), 4);
        assert_eq!(inline(&t.snapshot()), "a: 1, b: 3");
        assert_eq!(inline(&BTreeMap::new()), "none");
    }
}
