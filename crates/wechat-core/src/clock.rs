//! The one clock of the library: everything that reads the time (token expiry, the JS-SDK
//! timestamp, the login state, the session cookie's expiry) asks a [`Clock`].
//!
//! [`SystemClock`] is the default everywhere; each part takes a [`SharedClock`]
//! (`LoginConfigBuilder::clock`, `SessionCookieBuilder::clock`, `TokensBuilder::clock`,
//! `PayConfigBuilder::clock`, or an argument of [`OAuthState::issue`](crate::session::OAuthState::issue)).
//! Tests give the same [`ManualClock`] (or, with a `wechat-sim` whose clock they move,
//! [`OffsetClock`]) to every part, so that they move time instead of sleeping:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use wechat_core::OpenId;
//! use wechat_core::clock::ManualClock;
//! use wechat_core::session::{SessionCookie, SessionKeys};
//!
//! let clock = Arc::new(ManualClock::starting_now());
//! let cookie = SessionCookie::builder(SessionKeys::generate())
//!     .max_age(Duration::from_secs(3600))
//!     .clock(clock.clone())
//!     .build()?;
//! let value = cookie.encode(&cookie.new_user(OpenId::new("o6_bmjrPTlm6_2sgVt7hMZOPfL2M")))?;
//! assert!(cookie.decode(&value).is_some());
//! clock.advance(Duration::from_secs(3600));
//! assert!(cookie.decode(&value).is_none()); // expired, without waiting an hour
//! # Ok::<(), wechat_core::Error>(())
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the library reads the current unix time.
///
/// A clock given to [`Tokens`](crate::token::Tokens) must not run behind the system clock:
/// token stores (Redis, the in-memory store) drop entries at their expiry by system time.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// The current unix time, in seconds.
    fn now_unix_secs(&self) -> u64;
}

/// The clock shared by the parts of the library that read the time.
pub type SharedClock = Arc<dyn Clock>;

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix_secs(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

/// The default clock, [`SystemClock`], as a [`SharedClock`].
pub(crate) fn system() -> SharedClock {
    Arc::new(SystemClock)
}

/// The system time plus an offset that only grows: for tests that move a `wechat-sim` clock
/// forward and need tokens to expire on both sides at once.
///
/// Unlike [`ManualClock`], it never runs behind the system clock, so it may be given to
/// [`Tokens`](crate::token::Tokens) with any token store.
///
/// ```
/// use wechat_core::clock::{Clock, OffsetClock, SystemClock};
///
/// let clock = OffsetClock::new();
/// assert_eq!(clock.advance(7200), 7200); // with the simulator: sim.advance_clock(7200)
/// assert!(clock.now_unix_secs() >= SystemClock.now_unix_secs() + 7199);
/// ```
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_secs: AtomicU64,
}

impl OffsetClock {
    /// A clock at the system time.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock `secs` seconds forward; returns the new offset.
    pub fn advance(&self, secs: u64) -> u64 {
        self.offset_secs.fetch_add(secs, Ordering::SeqCst) + secs
    }

    /// How far ahead of the system clock it is, in seconds.
    pub fn offset(&self) -> u64 {
        self.offset_secs.load(Ordering::SeqCst)
    }
}

impl Clock for OffsetClock {
    fn now_unix_secs(&self) -> u64 {
        SystemClock
            .now_unix_secs()
            .saturating_add(self.offset_secs.load(Ordering::SeqCst))
    }
}

/// A clock that stands still until it is moved: for tests.
///
/// It starts at a given time ([`at`](Self::at)) or at the system time
/// ([`starting_now`](Self::starting_now)) and moves only with [`advance`](Self::advance) and
/// [`set`](Self::set). Shared through an `Arc`, every part given it sees the same time.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
}

impl ManualClock {
    /// A clock at `unix_secs`.
    pub fn at(unix_secs: u64) -> Self {
        Self {
            now: AtomicU64::new(unix_secs),
        }
    }

    /// A clock at the current system time.
    pub fn starting_now() -> Self {
        Self::at(SystemClock.now_unix_secs())
    }

    /// Moves the clock forward by `by` (whole seconds).
    pub fn advance(&self, by: Duration) {
        self.now.fetch_add(by.as_secs(), Ordering::Relaxed);
    }

    /// Sets the clock to `unix_secs` (forward or back).
    pub fn set(&self, unix_secs: u64) {
        self.now.store(unix_secs, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_unix_secs(&self) -> u64 {
        self.now.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::at(1_700_000_000);
        assert_eq!(clock.now_unix_secs(), 1_700_000_000);
        clock.advance(Duration::from_millis(61_500));
        assert_eq!(clock.now_unix_secs(), 1_700_000_061);
        clock.set(5);
        assert_eq!(clock.now_unix_secs(), 5);
    }

    #[test]
    fn offset_clock_advances_with_the_system_clock() {
        let clock = OffsetClock::new();
        let before = SystemClock.now_unix_secs();
        assert_eq!(clock.advance(7200), 7200);
        assert_eq!(clock.offset(), 7200);
        let now = clock.now_unix_secs();
        assert!(now >= before + 7200 && now <= SystemClock.now_unix_secs() + 7200);
    }

    #[test]
    fn system_clock_is_unix_time() {
        let now = SystemClock.now_unix_secs();
        // After 2023-11 and before 2100.
        assert!((1_700_000_000..4_102_444_800).contains(&now));
    }
}
