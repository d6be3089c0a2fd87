//! The simulator's clock: real unix time plus an offset that tests move forward.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time as the simulator sees it. Every expiry (codes, tokens, tickets, prepay ids) is
/// measured on this clock, so `POST /_sim/clock/advance` makes them expire without waiting.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    offset_secs: AtomicU64,
}

impl Clock {
    /// The current simulated unix time, in seconds.
    pub(crate) fn now_secs(&self) -> u64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        real.saturating_add(self.offset_secs.load(Ordering::SeqCst))
    }

    /// Moves the clock forward by `secs`; returns the new simulated time.
    pub(crate) fn advance(&self, secs: u64) -> u64 {
        let _ = self
            .offset_secs
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |o| {
                Some(o.saturating_add(secs))
            });
        self.now_secs()
    }

    /// How far the clock has been moved forward, in seconds.
    pub(crate) fn offset_secs(&self) -> u64 {
        self.offset_secs.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_now_forward() {
        let clock = Clock::default();
        let before = clock.now_secs();
        clock.advance(300);
        assert!(clock.now_secs() >= before + 300);
        assert_eq!(clock.offset_secs(), 300);
        clock.advance(u64::MAX);
        assert_eq!(clock.offset_secs(), u64::MAX);
    }
}
