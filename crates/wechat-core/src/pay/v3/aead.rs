//! `AEAD_AES_256_GCM`: how WeChat Pay encrypts a notification's `resource` and the platform
//! certificates of `/v3/certificates` to the merchant's APIv3 key.

use crate::pay::PayError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::{ApiV3Key, Error, Result};

/// The only algorithm a resource may name.
pub const RESOURCE_ALGORITHM: &str = "AEAD_AES_256_GCM";

/// The AES-256 key of an APIv3 key: its 32 bytes as they are (not hex or base64).
fn key_of(api_v3_key: &ApiV3Key) -> Result<LessSafeKey> {
    let bytes = api_v3_key.expose_secret().as_bytes();
    if bytes.len() != 32 {
        return Err(Error::config(
            "APIv3 key (WECHAT_PAY_V3_KEY)",
            format!(
                "the APIv3 key must be the 32 characters set under Account center > API security \
                 (APIv3 key), not {} bytes; it is neither the API v2 key nor a hex or base64 form",
                bytes.len()
            ),
        ));
    }
    let key = UnboundKey::new(&AES_256_GCM, bytes)
        .map_err(|_| Error::config("APIv3 key (WECHAT_PAY_V3_KEY)", "not an AES-256 key"))?;
    Ok(LessSafeKey::new(key))
}

fn nonce_of(nonce: &str) -> Result<Nonce> {
    let bytes: [u8; NONCE_LEN] = nonce.as_bytes().try_into().map_err(|_| {
        Error::Pay(PayError::BadSignature(
            "the resource nonce is not 12 characters",
        ))
    })?;
    Ok(Nonce::assume_unique_for_key(bytes))
}

/// Decrypts a resource: `ciphertext_b64` (base64 of ciphertext ‖ 16-byte tag) with the APIv3
/// key, the 12-character `nonce` and `associated_data`, after checking that `algorithm` is
/// `AEAD_AES_256_GCM`.
///
/// ```
/// use wechat_core::ApiV3Key;
/// use wechat_core::pay::v3::decrypt_resource;
/// use wechat_core::testing::encrypt_resource; // as WeChat Pay encrypts it
///
/// let key = ApiV3Key::new("a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb");
/// let sealed = encrypt_resource(&key, "uluk4a9R25RW", "transaction", br#"{"trade_state":"SUCCESS"}"#)?;
/// let plain = decrypt_resource(&key, "AEAD_AES_256_GCM", "uluk4a9R25RW", "transaction", &sealed)?;
/// assert_eq!(plain, br#"{"trade_state":"SUCCESS"}"#);
/// assert!(decrypt_resource(&key, "AEAD_AES_256_GCM", "uluk4a9R25RW", "refund", &sealed).is_err());
/// # Ok::<(), wechat_core::Error>(())
/// ```
///
/// # Errors
/// [`Error::Config`] for an APIv3 key that is not 32 bytes; [`PayError::BadSignature`](crate::pay::PayError::BadSignature) for another
/// algorithm, a nonce that is not 12 bytes, text that is not base64, or a tag that does not
/// verify (forged, altered, or another key or associated data).
pub fn decrypt_resource(
    api_v3_key: &ApiV3Key,
    algorithm: &str,
    nonce: &str,
    associated_data: &str,
    ciphertext_b64: &str,
) -> Result<Vec<u8>> {
    if algorithm != RESOURCE_ALGORITHM {
        return Err(Error::Pay(PayError::BadSignature(
            "the resource is not encrypted with AEAD_AES_256_GCM",
        )));
    }
    let key = key_of(api_v3_key)?;
    let nonce = nonce_of(nonce)?;
    let mut sealed = STANDARD.decode(ciphertext_b64).map_err(|_| {
        Error::Pay(PayError::BadSignature(
            "the resource ciphertext is not base64",
        ))
    })?;
    let plain = key
        .open_in_place(nonce, Aad::from(associated_data.as_bytes()), &mut sealed)
        .map_err(|_| {
            Error::Pay(PayError::BadSignature(
                "the resource does not decrypt with the APIv3 key (forged, altered, or another key)",
            ))
        })?;
    Ok(plain.to_vec())
}

/// Encrypts `plaintext` as WeChat Pay does (base64 of ciphertext ‖ tag): for tests and
/// simulators that produce notifications ([`crate::testing::encrypt_resource`]).
///
/// # Errors
/// As [`decrypt_resource`], for the key and the nonce.
#[cfg(any(test, feature = "testing"))]
pub(crate) fn encrypt_resource(
    api_v3_key: &ApiV3Key,
    nonce: &str,
    associated_data: &str,
    plaintext: &[u8],
) -> Result<String> {
    let key = key_of(api_v3_key)?;
    let mut sealed = plaintext.to_vec();
    key.seal_in_place_append_tag(
        nonce_of(nonce)?,
        Aad::from(associated_data.as_bytes()),
        &mut sealed,
    )
    .map_err(|_| {
        Error::Pay(PayError::InvalidRequest(
            "the resource cannot be encrypted".to_owned(),
        ))
    })?;
    Ok(STANDARD.encode(sealed))
}
