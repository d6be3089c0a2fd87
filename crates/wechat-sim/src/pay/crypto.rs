//! The refund notification's `req_info` (§4.8): base64 of AES-256-ECB with PKCS#7 padding, keyed
//! by the 32 ASCII characters of the lowercase hex MD5 of the merchant API key.

use aes::Aes256;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyInit, block_padding::Pkcs7};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::{Digest, Md5};

/// The AES key for `req_info`: lowercase hex of MD5(api_key), as 32 ASCII bytes.
fn req_info_key(api_key: &str) -> [u8; 32] {
    let hex = hex::encode(Md5::digest(api_key.as_bytes()));
    let mut key = [0u8; 32];
    key.copy_from_slice(hex.as_bytes());
    key
}

/// AES-256-ECB/PKCS#7 with a raw 32-byte key, base64 encoded.
fn encrypt_raw(key: &[u8; 32], plaintext: &[u8]) -> String {
    let cipher = ecb::Encryptor::<Aes256>::new(key.into());
    STANDARD.encode(cipher.encrypt_padded_vec_mut::<Pkcs7>(plaintext))
}

/// Encrypts a `<root>…</root>` document into `req_info`.
pub(crate) fn encrypt_req_info(api_key: &str, plaintext: &str) -> String {
    encrypt_raw(&req_info_key(api_key), plaintext.as_bytes())
}

/// Decrypts `req_info`; `None` when it is not valid base64, not whole blocks or badly padded.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn decrypt_req_info(api_key: &str, req_info: &str) -> Option<Vec<u8>> {
    let data = STANDARD.decode(req_info.trim()).ok()?;
    let key = req_info_key(api_key);
    let cipher = ecb::Decryptor::<Aes256>::new((&key).into());
    cipher.decrypt_padded_vec_mut::<Pkcs7>(&data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v15_aes_256_ecb_vector() {
        assert_eq!(
            encrypt_raw(b"0123456789abcdef0123456789abcdef", b"hello"),
            "pZwJZBLuy3mDACEQT4YTBw=="
        );
    }

    #[test]
    fn req_info_round_trip() {
        let key = "192006250b4c09247ec02edce69f6a2d";
        let doc = "<root><out_refund_no><![CDATA[R1]]></out_refund_no></root>";
        let ct = encrypt_req_info(key, doc);
        assert_eq!(decrypt_req_info(key, &ct).as_deref(), Some(doc.as_bytes()));
        assert_eq!(decrypt_req_info("another key", &ct), None);
        assert_eq!(decrypt_req_info(key, "not base64!"), None);
    }
}
