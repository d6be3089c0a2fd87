//! The HMAC keys that sign session cookies and OAuth states.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::{Error, Result};

type HmacSha256 = Hmac<Sha256>;

/// The shortest key [`SessionKeys`] accepts, in bytes.
pub const MIN_KEY_LEN: usize = 32;

/// One HMAC key, kept as the HMAC state after absorbing the key (so that each MAC clones it
/// instead of hashing the key's inner and outer blocks again); never printed.
#[derive(Clone)]
struct Key(HmacSha256);

impl Key {
    fn new(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < MIN_KEY_LEN {
            return Err(Error::config(
                "SessionKeys",
                format!(
                    "a session key must have at least {MIN_KEY_LEN} bytes (64 hex digits), got {}",
                    bytes.len()
                ),
            ));
        }
        Ok(Self::keyed(bytes))
    }

    fn keyed(bytes: &[u8]) -> Self {
        Self(<HmacSha256 as Mac>::new_from_slice(bytes).expect("HMAC accepts keys of any length"))
    }

    fn from_hex(hex_key: &str) -> Result<Self> {
        let bytes = hex::decode(hex_key.trim()).map_err(|_| {
            Error::config(
                "SessionKeys",
                "a session key in hex must contain only hex digits (0-9a-f), in pairs",
            )
        })?;
        Self::new(&bytes)
    }

    fn mac(&self, label: &[u8], parts: &[&[u8]]) -> HmacSha256 {
        let mut mac = self.0.clone();
        mac.update(label);
        for part in parts {
            // Length-prefix every part so that no two part lists give the same input.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }
}

/// The HMAC keys that sign session cookies and OAuth `state` values: one current key (used to
/// sign) and any number of previous keys (still accepted, for rotation).
///
/// Every instance of the app must be configured with the same keys. `Debug` never shows them.
///
/// ```
/// use wechat_core::session::SessionKeys;
///
/// let keys = SessionKeys::from_hex(&"ab".repeat(32))?       // the new key
///     .with_previous_hex(&"cd".repeat(32))?;                  // still accepted
/// assert_eq!(format!("{keys:?}"), "SessionKeys { current: [redacted], previous: 1 }");
/// assert!(SessionKeys::new(b"too short").is_err());
/// # Ok::<(), wechat_core::Error>(())
/// ```
///
/// # Security
/// Keys are secrets: whoever has one can log in as any user. Use at least 32 random bytes
/// (e.g. `openssl rand -hex 32`), keep them out of source control, and rotate by moving the
/// current key to the previous keys.
#[derive(Clone)]
pub struct SessionKeys {
    current: Key,
    previous: Vec<Key>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("current", &format_args!("[redacted]"))
            .field("previous", &self.previous.len())
            .finish()
    }
}

impl SessionKeys {
    /// Keys with `current` (raw bytes, at least [`MIN_KEY_LEN`]) as the signing key.
    ///
    /// # Errors
    /// [`Error::Config`] when the key is shorter than 32 bytes.
    pub fn new(current: impl AsRef<[u8]>) -> Result<Self> {
        Ok(Self {
            current: Key::new(current.as_ref())?,
            previous: Vec::new(),
        })
    }

    /// Keys with a hex-encoded signing key (at least 64 hex digits), e.g. from an environment
    /// variable filled with `openssl rand -hex 32`.
    ///
    /// # Errors
    /// [`Error::Config`] when the text is not hex or decodes to fewer than 32 bytes.
    pub fn from_hex(current: &str) -> Result<Self> {
        Ok(Self {
            current: Key::from_hex(current)?,
            previous: Vec::new(),
        })
    }

    /// A random 32-byte key. Sessions signed with it do not survive a restart and are not
    /// accepted by other instances: use configured keys in production.
    pub fn generate() -> Self {
        let mut bytes = [0u8; MIN_KEY_LEN];
        rand::rng().fill_bytes(&mut bytes);
        Self {
            current: Key::keyed(&bytes),
            previous: Vec::new(),
        }
    }

    /// Adds a previous key (raw bytes): values it signed are still accepted; nothing new is
    /// signed with it.
    ///
    /// # Errors
    /// [`Error::Config`] when the key is shorter than 32 bytes.
    #[must_use = "with_previous returns the keys with the previous key added"]
    pub fn with_previous(mut self, key: impl AsRef<[u8]>) -> Result<Self> {
        self.previous.push(Key::new(key.as_ref())?);
        Ok(self)
    }

    /// Adds a hex-encoded previous key; see [`with_previous`](Self::with_previous).
    ///
    /// # Errors
    /// [`Error::Config`] when the text is not hex or decodes to fewer than 32 bytes.
    #[must_use = "with_previous_hex returns the keys with the previous key added"]
    pub fn with_previous_hex(mut self, key: &str) -> Result<Self> {
        self.previous.push(Key::from_hex(key)?);
        Ok(self)
    }

    /// How many previous keys are accepted.
    pub fn previous_len(&self) -> usize {
        self.previous.len()
    }

    /// HMAC-SHA256 with the current key over `label` and the length-prefixed `parts`.
    pub(crate) fn sign(&self, label: &[u8], parts: &[&[u8]]) -> [u8; 32] {
        self.current
            .mac(label, parts)
            .finalize()
            .into_bytes()
            .into()
    }

    /// Whether `tag` is the HMAC of `parts` under the current or a previous key (constant time
    /// per key).
    pub(crate) fn verify(&self, label: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .any(|key| key.mac(label, parts).verify_slice(tag).is_ok())
    }
}
