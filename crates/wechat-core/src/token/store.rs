//! The [`TokenStore`] trait: where access tokens and tickets are shared, and how one refresher at a
//! time is chosen among the processes that share them.

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::Result;

/// Why `prefix` cannot start store keys, if it cannot: braces are for a Redis Cluster hash tag
/// only (`{shop}:`, a `{` followed later by a `}` with something between). Any other brace makes
/// a credential key and its refresh lock hash to different slots, and every fenced write fail
/// with `CROSSSLOT` in a cluster.
pub(crate) fn key_prefix_problem(prefix: &str) -> Option<String> {
    let tagged = prefix
        .find('{')
        .and_then(|open| prefix[open + 1..].find('}'))
        .is_some_and(|len| len > 0);
    (prefix.contains(['{', '}']) && !tagged).then(|| {
        format!(
            "key prefix {prefix:?} has a brace that forms no Redis Cluster hash tag: use braces \
             only around a non-empty tag (e.g. \"{{shop}}:\"), or none"
        )
    })
}

/// A cached credential (an access token or a jsapi_ticket) with its expiry.
///
/// `Debug` never prints the value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredToken {
    value: String,
    expires_at: u64,
}

impl StoredToken {
    /// A credential that stops being valid at `expires_at` (unix seconds).
    pub fn new(value: impl Into<String>, expires_at: u64) -> Self {
        Self {
            value: value.into(),
            expires_at,
        }
    }

    /// The credential itself. Never log it.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// When the credential stops being valid, in unix seconds.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// Whether the credential is still valid at `now` (unix seconds).
    pub fn is_valid_at(&self, now: u64) -> bool {
        now < self.expires_at
    }

    /// The credential, consuming `self`.
    pub fn into_value(self) -> String {
        self.value
    }
}

impl std::fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredToken")
            .field("value", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Proof that the caller holds a store's refresh lock, returned by [`TokenStore::try_lock`] and
/// handed back to [`TokenStore::unlock`].
///
/// The id is random, so that a store shared by several processes releases the lock only for its
/// holder (a Redis store compares it before deleting the lock key). A lease that is never
/// released expires on its own, so a holder that dies does not block the others for long.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LockLease {
    id: String,
}

impl LockLease {
    /// A lease with a fresh random id (128 bits, hex).
    pub fn random() -> Self {
        Self {
            id: hex::encode(rand::random::<[u8; 16]>()),
        }
    }

    /// A lease with a given id (e.g. one read back from a store).
    pub fn from_id(id: impl Into<String>) -> Self {
        Self { id: id.into() }
    }

    /// The lease id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Where access tokens and jsapi_tickets are kept, possibly shared by several processes.
///
/// [`Tokens`](crate::token::Tokens) keeps its own in-process copy in front of the store and calls it only
/// when that copy is missing, expired or due for refresh, so a store may be remote (Redis).
/// [`MemoryStore`](crate::token::MemoryStore) is the default, for a single process.
///
/// The trait is object safe and used as `Arc<dyn TokenStore>`; methods return boxed futures.
/// Keys are complete (`{prefix}access_token:{appid}`, `{prefix}jsapi_ticket:{appid}`); a store
/// derives the names of its lock entries from them (e.g. `{key}:lock`).
///
/// # Errors
/// Every method returns [`Error::Store`](crate::Error::Store) when the store cannot be reached or
/// answers nonsense. The token managers survive that: they log one warning per outage, fall back
/// to their in-process single flight, and use the store again when it answers.
pub trait TokenStore: Send + Sync + 'static {
    /// The stored credential under `key`, if any. It may have expired (callers check
    /// [`StoredToken::expires_at`]); a store may also drop expired entries on its own. A value
    /// that cannot be parsed should be reported as `None` (it is then replaced), not trusted.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<StoredToken>>>;

    /// Stores `token` under `key`, replacing any previous value, until `token.expires_at()`.
    fn set<'a>(&'a self, key: &'a str, token: &'a StoredToken) -> BoxFuture<'a, Result<()>>;

    /// The fenced write of a refreshed credential: stores `token` under `key` only while `lease`
    /// (when given) still holds the key's refresh lock, or when the stored credential, if any,
    /// expires before `token` does; says whether it wrote. A process whose lease ran out during
    /// a slow fetch thus cannot overwrite the newer credential of the process that took over.
    ///
    /// The default implementation reads, compares the expiries and writes (ignoring `lease`,
    /// which it cannot check), which is not atomic; a store shared by several processes should
    /// do it in one step (Redis: a script), as [`MemoryStore`](crate::token::MemoryStore) and
    /// `RedisStore` do.
    fn set_fenced<'a>(
        &'a self,
        key: &'a str,
        token: &'a StoredToken,
        lease: Option<&'a LockLease>,
    ) -> BoxFuture<'a, Result<bool>> {
        let _ = lease;
        Box::pin(async move {
            if self
                .get(key)
                .await?
                .is_some_and(|stored| stored.expires_at() >= token.expires_at())
            {
                return Ok(false);
            }
            self.set(key, token).await?;
            Ok(true)
        })
    }

    /// Compare-and-expire: removes the entry under `key` only if its value is still `value`, and
    /// says whether it did. A credential another caller already replaced survives.
    fn expire_if<'a>(&'a self, key: &'a str, value: &'a str) -> BoxFuture<'a, Result<bool>>;

    /// Tries to become the one refresher of `key` for at most `lease`: `Some` when the lock was
    /// free (or its previous lease ran out), `None` while another holder's lease runs. Must be
    /// atomic across every process sharing the store (Redis: `SET {key}:lock {id} NX PX {lease}`).
    fn try_lock<'a>(
        &'a self,
        key: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, Result<Option<LockLease>>>;

    /// Releases the lock of `key` if `lease` still holds it; a lease that ran out and was taken
    /// over by another holder is left alone.
    fn unlock<'a>(&'a self, key: &'a str, lease: &'a LockLease) -> BoxFuture<'a, Result<()>>;

    /// How errors and logs name the entry under `key`, so that an operator can find it (e.g.
    /// `Redis key wechat:access_token:wx… at redis://10.0.0.5:6379/0`). Defaults to `key`.
    fn describe_key(&self, key: &str) -> String {
        key.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        let shown = format!("{:?}", StoredToken::new("s3cr3t-token", 42));
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert_eq!(
            shown,
            r#"StoredToken { value: "[redacted]", expires_at: 42 }"#
        );
    }

    #[test]
    fn validity_and_lease_ids() {
        let token = StoredToken::new("t", 100);
        assert!(token.is_valid_at(99));
        assert!(!token.is_valid_at(100));
        let (a, b) = (LockLease::random(), LockLease::random());
        assert_ne!(a, b);
        assert_eq!(a.id().len(), 32);
        assert_eq!(LockLease::from_id(a.id()), a);
    }
}
