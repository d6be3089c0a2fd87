//! A [`Clock`] that runs with the system clock plus an offset, moved forward together with
//! wechat-sim's clock so that tokens expire on both sides at once.

use std::sync::atomic::{AtomicU64, Ordering};

use wechat_core::clock::{Clock, SystemClock};

/// The system time plus an offset that only grows (a clock must not run behind the system
/// clock: stores drop entries by system time).
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_secs: AtomicU64,
}

impl OffsetClock {
    /// A clock at the system time.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock `secs` forward; returns the new offset.
    pub fn advance(&self, secs: u64) -> u64 {
        self.offset_secs.fetch_add(secs, Ordering::SeqCst) + secs
    }
}

impl Clock for OffsetClock {
    fn now_unix_secs(&self) -> u64 {
        SystemClock.now_unix_secs() + self.offset_secs.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advances_with_the_system_clock() {
        let clock = OffsetClock::new();
        let before = SystemClock.now_unix_secs();
        assert_eq!(clock.advance(7200), 7200);
        let now = clock.now_unix_secs();
        assert!(now >= before + 7200 && now <= SystemClock.now_unix_secs() + 7200);
    }
}
