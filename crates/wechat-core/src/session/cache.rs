//! A bounded cache of verified session cookie values, so that a returning browser's cookie is
//! verified (HMAC-SHA256, base64, JSON) once and then only looked up.
//!
//! The cache is direct-mapped: a fixed array of slots, each holding at most one verified value,
//! chosen by the value's last characters (base64 of its HMAC tag, so uniformly spread for
//! genuine values). A new value replaces whatever its slot held. Memory is therefore bounded by
//! the slot count, whatever the traffic, and no eviction bookkeeping runs on the hot path.
//!
//! Only values that passed full verification are inserted, and a hit requires the request's
//! value to equal the stored one byte for byte (compared in constant time, so the comparison
//! says nothing about how close a guess came). The stored user's expiry is checked on every
//! hit. A cache belongs to one [`SessionCookie`](super::SessionCookie)'s keys: a
//! `SessionCookie` built with other keys starts with an empty cache, so removing a key stops
//! its cookies at once.
//!
//! Slots are locked with `try_lock`: when two threads meet on one slot, the loser verifies the
//! value in full instead of waiting, so the cache never blocks a request.

use std::sync::{Arc, Mutex, TryLockError};

use super::SessionUser;

/// The most slots a cache may have (about 1 million).
const MAX_SLOTS: usize = 1 << 20;

/// One verified value and what it decoded to.
struct Entry {
    value: Box<[u8]>,
    user: Arc<SessionUser>,
    nonce: Option<Box<str>>,
}

/// Verified session cookie values and their users; see the module docs.
pub(super) struct VerifiedCache {
    slots: Box<[Mutex<Option<Entry>>]>,
}

impl std::fmt::Debug for VerifiedCache {
    /// Shows the size only: cached values are bearer credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedCache")
            .field("slots", &self.slots.len())
            .finish()
    }
}

impl VerifiedCache {
    /// A cache of `capacity` slots, rounded up to a power of two and capped at [`MAX_SLOTS`];
    /// `None` for 0 (no cache).
    pub(super) fn new(capacity: usize) -> Option<Self> {
        if capacity == 0 {
            return None;
        }
        let slots = capacity.min(MAX_SLOTS).next_power_of_two();
        Some(Self {
            slots: (0..slots).map(|_| Mutex::new(None)).collect(),
        })
    }

    /// How many slots the cache has.
    pub(super) fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn slot(&self, value: &[u8]) -> &Mutex<Option<Entry>> {
        // The last 8 bytes are, for a genuine value, base64 of its HMAC tag: already uniformly
        // spread, so one multiplication mixes them enough.
        let mut tail = [0u8; 8];
        let start = value.len().saturating_sub(8);
        tail[..value.len() - start].copy_from_slice(&value[start..]);
        let hash = u64::from_le_bytes(tail).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let index = (hash >> 32) as usize & (self.slots.len() - 1);
        &self.slots[index]
    }

    /// Calls `read` with the cached user and login nonce of `value` when it was verified before
    /// and its session has not ended at `now`; `None` otherwise (the caller verifies in full).
    pub(super) fn get<R>(
        &self,
        value: &[u8],
        now: u64,
        read: impl FnOnce(&Arc<SessionUser>, Option<&str>) -> R,
    ) -> Option<R> {
        let slot = match self.slot(value).try_lock() {
            Ok(slot) => slot,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        let entry = slot.as_ref()?;
        if entry.user.expires_at <= now || !constant_time_eq(&entry.value, value) {
            return None;
        }
        Some(read(&entry.user, entry.nonce.as_deref()))
    }

    /// Remembers that `value` verified to `user` (and `nonce`), replacing its slot's entry.
    pub(super) fn insert(&self, value: &[u8], user: &Arc<SessionUser>, nonce: Option<&str>) {
        let mut slot = match self.slot(value).try_lock() {
            Ok(slot) => slot,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        *slot = Some(Entry {
            value: value.into(),
            user: Arc::clone(user),
            nonce: nonce.map(Into::into),
        });
    }
}

/// Whether `a` and `b` are equal, in time that depends on their lengths only (lengths are not
/// secret here: every genuine value of one user has about the same length).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    // No early exit: every word is compared, eight bytes at a time.
    let (a_words, b_words) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail = a_words
        .remainder()
        .iter()
        .zip(b_words.remainder())
        .fold(0u64, |diff, (x, y)| diff | u64::from(x ^ y));
    let word = |chunk: &[u8]| u64::from_ne_bytes(chunk.try_into().unwrap_or([0; 8]));
    let diff = a_words
        .zip(b_words)
        .fold(tail, |diff, (x, y)| diff | (word(x) ^ word(y)));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OpenId;

    fn user(openid: &str, expires_at: u64) -> Arc<SessionUser> {
        Arc::new(SessionUser::new(OpenId::new(openid), expires_at))
    }

    #[test]
    fn hits_need_the_same_value_and_a_live_session() {
        let cache = VerifiedCache::new(8).unwrap();
        cache.insert(
            b"body.tag-of-alice-0123456789",
            &user("alice", 100),
            Some("n1"),
        );
        let got = cache.get(b"body.tag-of-alice-0123456789", 99, |user, nonce| {
            (user.clone(), nonce.map(str::to_owned))
        });
        assert_eq!(got, Some((user("alice", 100), Some("n1".to_owned()))));
        // Expired at `now`.
        assert!(
            cache
                .get(b"body.tag-of-alice-0123456789", 100, |_, _| ())
                .is_none()
        );
        // Same tail (so the same slot), another body: not a hit.
        assert!(
            cache
                .get(b"bodx.tag-of-alice-0123456789", 50, |_, _| ())
                .is_none()
        );
        assert!(
            cache
                .get(b"body.tag-of-alice-0123456789x", 50, |_, _| ())
                .is_none()
        );
        assert!(cache.get(b"", 50, |_, _| ()).is_none());
    }

    #[test]
    fn capacity_is_bounded_and_zero_means_none() {
        assert!(VerifiedCache::new(0).is_none());
        assert_eq!(VerifiedCache::new(1).unwrap().capacity(), 1);
        assert_eq!(VerifiedCache::new(1000).unwrap().capacity(), 1024);
        assert_eq!(
            VerifiedCache::new(usize::MAX).unwrap().capacity(),
            MAX_SLOTS
        );
        // A one-slot cache keeps the newest value only.
        let cache = VerifiedCache::new(1).unwrap();
        cache.insert(b"a.first", &user("a", 10), None);
        cache.insert(b"b.second", &user("b", 10), None);
        assert!(cache.get(b"a.first", 0, |_, _| ()).is_none());
        assert!(cache.get(b"b.second", 0, |_, _| ()).is_some());
    }

    #[test]
    fn genuine_values_spread_over_the_slots() {
        use base64::Engine;
        use sha2::{Digest, Sha256};
        // 1,000 values ending like genuine ones (base64 of a 32-byte tag) in 4,096 slots: with
        // uniform spreading about 888 keep a slot of their own.
        let cache = VerifiedCache::new(4096).unwrap();
        let values: Vec<Vec<u8>> = (0u32..1000)
            .map(|i| {
                let tag = Sha256::digest(i.to_be_bytes());
                let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag);
                format!("eyJ2IjoxfQ.{tag}").into_bytes()
            })
            .collect();
        for value in &values {
            cache.insert(value, &user("u", 10), None);
        }
        let kept = values
            .iter()
            .filter(|value| cache.get(value, 0, |_, _| ()).is_some())
            .count();
        assert!(kept > 850, "{kept} of 1000 kept");
    }

    #[test]
    fn debug_shows_no_values() {
        let cache = VerifiedCache::new(4).unwrap();
        cache.insert(b"secret-cookie-value", &user("alice", 10), None);
        assert_eq!(format!("{cache:?}"), "VerifiedCache { slots: 4 }");
    }

    #[test]
    fn constant_time_eq_compares_every_byte() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"xbc"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        let long = "0123456789abcdef-0123456789abcdef-tail";
        assert!(constant_time_eq(long.as_bytes(), long.as_bytes()));
        for i in 0..long.len() {
            let mut other = long.as_bytes().to_vec();
            other[i] ^= 1;
            assert!(!constant_time_eq(long.as_bytes(), &other), "{i}");
        }
    }
}
