//! The refund notification's `req_info` cipher (protocol reference §4.8): AES-256-ECB with
//! PKCS#7 padding, keyed with the 32 ASCII characters of `lowercase_hex(MD5(API key))`.
//!
//! ECB is WeChat's choice, not ours: it hides the content but does not authenticate it, so a
//! decrypted refund notification must still be matched against the merchant's own refund.

use crate::pay::PayError;
use aes::Aes256;
#[cfg(any(test, feature = "testing"))]
use aes::cipher::BlockEncryptMut;
use aes::cipher::{BlockDecryptMut, KeyInit, block_padding::Pkcs7};
use base64::Engine as _;
use md5::{Digest, Md5};

use crate::{Error, PayApiKey, Result};

/// The AES-256 key of `req_info`: the lowercase hex MD5 of the API key, as 32 ASCII bytes.
fn req_info_key(api_key: &PayApiKey) -> [u8; 32] {
    let digest = Md5::digest(api_key.expose_secret().as_bytes());
    let mut key = [0u8; 32];
    // `encode_to_slice` only fails on a wrong output length, which is fixed here.
    if hex::encode_to_slice(digest, &mut key).is_err() {
        key = [0; 32];
    }
    key
}

/// AES-256-ECB decryption with PKCS#7 padding.
fn aes256_ecb_decrypt(key: &[u8; 32], ciphertext: &[u8]) -> Option<Vec<u8>> {
    if ciphertext.is_empty() || ciphertext.len() % 16 != 0 {
        return None;
    }
    ecb::Decryptor::<Aes256>::new(key.into())
        .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
        .ok()
}

/// AES-256-ECB encryption with PKCS#7 padding.
#[cfg(any(test, feature = "testing"))]
fn aes256_ecb_encrypt(key: &[u8; 32], plaintext: &[u8]) -> Vec<u8> {
    ecb::Encryptor::<Aes256>::new(key.into()).encrypt_padded_vec_mut::<Pkcs7>(plaintext)
}

/// Decrypts a refund notification's base64 `req_info` with the merchant API key.
///
/// # Errors
/// [`PayError::BadSignature`](crate::pay::PayError::BadSignature) when it is not base64 or does not decrypt with this key (wrong key,
/// altered ciphertext): such a notification did not come from WeChat for this merchant.
pub fn decrypt_refund_req_info(req_info: &str, api_key: &PayApiKey) -> Result<Vec<u8>> {
    let ciphertext = base64::engine::general_purpose::STANDARD
        .decode(req_info.trim().as_bytes())
        .map_err(|_| {
            Error::Pay(PayError::BadSignature(
                "refund notification req_info is not base64",
            ))
        })?;
    aes256_ecb_decrypt(&req_info_key(api_key), &ciphertext).ok_or(Error::Pay(
        PayError::BadSignature("refund notification req_info does not decrypt with the API key"),
    ))
}

/// Encrypts `req_info` as WeChat does (for tests and simulators that send refund
/// notifications): [`crate::testing::encrypt_refund_req_info`].
#[cfg(any(test, feature = "testing"))]
pub(crate) fn encrypt_refund_req_info(plaintext: &[u8], api_key: &PayApiKey) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(aes256_ecb_encrypt(&req_info_key(api_key), plaintext))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_v15_aes_256_ecb_pkcs7() {
        let key: [u8; 32] = *b"0123456789abcdef0123456789abcdef";
        let ct = aes256_ecb_encrypt(&key, b"hello");
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(&ct),
            "pZwJZBLuy3mDACEQT4YTBw=="
        );
        assert_eq!(aes256_ecb_decrypt(&key, &ct).unwrap(), b"hello");
    }

    #[test]
    fn key_is_lowercase_hex_md5_of_the_api_key() {
        // printf %s 192006250b4c09247ec02edce69f6a2d | md5sum
        let key = req_info_key(&PayApiKey::new("192006250b4c09247ec02edce69f6a2d"));
        let expected = hex::encode(Md5::digest(b"192006250b4c09247ec02edce69f6a2d"));
        assert_eq!(&key, expected.as_bytes());
        assert!(
            key.iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        );
    }

    #[test]
    fn req_info_round_trip_and_failures() {
        let api_key = PayApiKey::new("192006250b4c09247ec02edce69f6a2d");
        let xml = b"<root><out_refund_no><![CDATA[R1]]></out_refund_no></root>";
        let req_info = encrypt_refund_req_info(xml, &api_key);
        assert_eq!(decrypt_refund_req_info(&req_info, &api_key).unwrap(), xml);
        let other = PayApiKey::new("00000000000000000000000000000000");
        assert!(matches!(
            decrypt_refund_req_info(&req_info, &other),
            Err(Error::Pay(PayError::BadSignature(_)))
        ));
        assert!(decrypt_refund_req_info("not base64!", &api_key).is_err());
        assert!(decrypt_refund_req_info("", &api_key).is_err());
        assert!(decrypt_refund_req_info("AAAA", &api_key).is_err());
    }
}
