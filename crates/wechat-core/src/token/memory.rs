//! [`MemoryStore`]: the default, in-process [`TokenStore`].

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use moka::Expiry;
use moka::future::Cache;
use moka::ops::compute::{CompResult, Op};

use super::store::{LockLease, StoredToken, TokenStore};
use crate::Result;

/// Entries whose expiry lies further ahead than this are kept this long (a guard against absurd
/// `expires_at` values; the managers re-check expiry anyway).
const MAX_ENTRY_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);

/// An in-process [`TokenStore`] on a `moka` cache, each entry dropped at its own expiry.
///
/// This is the default store. It is enough for one process; several instances of an app need a
/// store they share (a Redis store), or each instance's `cgi-bin/token` calls retire the others'
/// tokens. Clones share the same entries, so several [`Tokens`](crate::token::Tokens) handles built on
/// one `MemoryStore` behave like processes sharing one remote store.
#[derive(Clone)]
pub struct MemoryStore {
    cache: Cache<String, StoredToken>,
    locks: std::sync::Arc<Mutex<HashMap<String, (LockLease, tokio::time::Instant)>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(10_000)
                .expire_after(ExpireAtTokenExpiry)
                .build(),
            locks: Default::default(),
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.cache.entry_count())
            .finish_non_exhaustive()
    }
}

/// Gives each entry the lifetime left until its `expires_at`.
struct ExpireAtTokenExpiry;

impl ExpireAtTokenExpiry {
    fn remaining(token: &StoredToken) -> Duration {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Duration::from_secs(token.expires_at().saturating_sub(now)).min(MAX_ENTRY_LIFETIME)
    }
}

impl Expiry<String, StoredToken> for ExpireAtTokenExpiry {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &StoredToken,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(Self::remaining(value))
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &StoredToken,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(Self::remaining(value))
    }
}

impl TokenStore for MemoryStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>>> {
        Box::pin(async move { Ok(self.cache.get(key).await) })
    }

    fn set<'a>(&'a self, key: &'a str, token: &'a StoredToken) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.cache.insert(key.to_owned(), token.clone()).await;
            Ok(())
        })
    }

    fn set_fenced<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
        lease: Option<&'a LockLease>,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let holds_lock = lease.is_some_and(|lease| {
                let now = tokio::time::Instant::now();
                let locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
                locks
                    .get(key)
                    .is_some_and(|(held, until)| held == lease && *until > now)
            });
            let result = self
                .cache
                .entry_by_ref(key)
                .and_compute_with(|entry| {
                    let newer_stored =
                        entry.is_some_and(|entry| entry.value().expires_at() >= token.expires_at());
                    std::future::ready(if holds_lock || !newer_stored {
                        Op::Put(token.clone())
                    } else {
                        Op::Nop
                    })
                })
                .await;
            Ok(matches!(
                result,
                CompResult::Inserted(_) | CompResult::ReplacedWith(_)
            ))
        })
    }

    fn expire_if<'a>(&'a self, key: &'a str, value: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let result = self
                .cache
                .entry_by_ref(key)
                .and_compute_with(|entry| {
                    let op = match entry {
                        Some(entry) if entry.value().value() == value => Op::Remove,
                        _ => Op::Nop,
                    };
                    std::future::ready(op)
                })
                .await;
            Ok(matches!(result, CompResult::Removed(_)))
        })
    }

    fn try_lock<'a>(
        &'a self,
        key: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Option<LockLease>>> {
        Box::pin(async move {
            let now = tokio::time::Instant::now();
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            locks.retain(|_, (_, until)| *until > now);
            if locks.contains_key(key) {
                return Ok(None);
            }
            let granted = LockLease::random();
            locks.insert(key.to_owned(), (granted.clone(), now + lease));
            Ok(Some(granted))
        })
    }

    fn unlock<'a>(&'a self, key: &'a str, lease: &'a LockLease) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
            if locks.get(key).is_some_and(|(held, _)| held == lease) {
                locks.remove(key);
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn far_future() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 7200
    }

    #[tokio::test]
    async fn fenced_writes_go_to_the_lease_holder_or_a_newer_expiry() {
        let store = MemoryStore::new();
        let later = far_future();
        let key = "wechat:access_token:wx1";
        // Empty: anyone writes.
        assert!(
            store
                .set_fenced(key, &StoredToken::new("A", later), None)
                .await
                .unwrap()
        );
        // Not newer, no lease: refused.
        let older = StoredToken::new("OLD", later - 60);
        assert!(!store.set_fenced(key, &older, None).await.unwrap());
        assert!(
            !store
                .set_fenced(key, &StoredToken::new("SAME", later), None)
                .await
                .unwrap()
        );
        // A lease that does not hold the lock changes nothing.
        let stale = LockLease::random();
        assert!(!store.set_fenced(key, &older, Some(&stale)).await.unwrap());
        assert_eq!(store.get(key).await.unwrap().unwrap().value(), "A");
        // Newer: written.
        assert!(
            store
                .set_fenced(key, &StoredToken::new("B", later + 60), None)
                .await
                .unwrap()
        );
        // The lease holder writes whatever is stored.
        let lease = store
            .try_lock(key, Duration::from_secs(5))
            .await
            .unwrap()
            .unwrap();
        assert!(store.set_fenced(key, &older, Some(&lease)).await.unwrap());
        assert_eq!(store.get(key).await.unwrap().unwrap().value(), "OLD");
    }

    #[tokio::test]
    async fn set_get_and_compare_and_expire() {
        let store = MemoryStore::new();
        assert_eq!(store.get("k").await.unwrap(), None);
        let token = StoredToken::new("A", far_future());
        store.set("k", &token).await.unwrap();
        assert_eq!(store.get("k").await.unwrap(), Some(token));
        // Another value was stored meanwhile: expiring the old one leaves it alone.
        store
            .set("k", &StoredToken::new("B", far_future()))
            .await
            .unwrap();
        assert!(!store.expire_if("k", "A").await.unwrap());
        assert_eq!(store.get("k").await.unwrap().unwrap().value(), "B");
        assert!(store.expire_if("k", "B").await.unwrap());
        assert_eq!(store.get("k").await.unwrap(), None);
        assert!(!store.expire_if("k", "B").await.unwrap());
    }

    #[tokio::test]
    async fn already_expired_entries_are_not_kept() {
        let store = MemoryStore::new();
        store.set("k", &StoredToken::new("old", 1)).await.unwrap();
        assert_eq!(store.get("k").await.unwrap(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn lock_is_exclusive_released_by_holder_and_expires() {
        let store = MemoryStore::new();
        let lease = Duration::from_secs(10);
        let held = store
            .try_lock("k", lease)
            .await
            .unwrap()
            .expect("free lock");
        assert_eq!(store.try_lock("k", lease).await.unwrap(), None);
        assert!(store.try_lock("other", lease).await.unwrap().is_some());
        // Not the holder: nothing happens.
        store.unlock("k", &LockLease::random()).await.unwrap();
        assert_eq!(store.try_lock("k", lease).await.unwrap(), None);
        store.unlock("k", &held).await.unwrap();
        let again = store.try_lock("k", lease).await.unwrap().expect("released");
        // A holder that never unlocks loses the lock after its lease.
        tokio::time::advance(lease + Duration::from_millis(1)).await;
        let taken_over = store
            .try_lock("k", lease)
            .await
            .unwrap()
            .expect("lease ran out");
        // The old holder's unlock does not release the new holder's lock.
        store.unlock("k", &again).await.unwrap();
        assert_eq!(store.try_lock("k", lease).await.unwrap(), None);
        store.unlock("k", &taken_over).await.unwrap();
    }
}
