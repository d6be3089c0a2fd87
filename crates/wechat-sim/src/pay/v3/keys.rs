//! RSA keys for API v3: the simulator's WeChat Pay signing key, merchants' public keys, the
//! platform certificate, and AES-256-GCM with the APIv3 key.
//!
//! Keys are generated with the `rsa` crate (no OpenSSL); signing and verifying use `ring`
//! (RSASSA-PKCS1-v1_5 with SHA-256), which is fast in debug builds too.

use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rsa::pkcs1::{DecodeRsaPrivateKey as _, DecodeRsaPublicKey as _};
use rsa::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _};
use rsa::pkcs8::{EncodePublicKey as _, LineEnding};
use rsa::traits::PublicKeyParts as _;

/// Why a key, certificate or ciphertext could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum KeyError {
    /// A PEM or DER that is not what the field needs.
    #[error("{0}")]
    Invalid(String),
    /// Generating a key or a certificate failed.
    #[error("cannot generate: {0}")]
    Generate(String),
}

fn invalid(msg: impl Into<String>) -> KeyError {
    KeyError::Invalid(msg.into())
}

/// An RSA public key that verifies SHA256-RSA (PKCS#1 v1.5) signatures.
#[derive(Clone)]
pub(crate) struct PublicKey {
    n: Vec<u8>,
    e: Vec<u8>,
    /// SubjectPublicKeyInfo PEM (`BEGIN PUBLIC KEY`).
    pub(crate) spki_pem: String,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("bits", &(self.n.len() * 8))
            .finish()
    }
}

impl PublicKey {
    fn from_rsa(key: &rsa::RsaPublicKey) -> Result<Self, KeyError> {
        let spki_pem = key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| invalid(format!("cannot encode the public key: {e}")))?;
        Ok(Self {
            n: key.n().to_bytes_be(),
            e: key.e().to_bytes_be(),
            spki_pem,
        })
    }

    /// Reads an SPKI (`BEGIN PUBLIC KEY`) or PKCS#1 (`BEGIN RSA PUBLIC KEY`) public key, or an
    /// X.509 certificate (`BEGIN CERTIFICATE`); for a certificate, also its serial as upper-case
    /// hex.
    pub(crate) fn from_pem(pem: &str) -> Result<(Self, Option<String>), KeyError> {
        let pem = pem.trim();
        if pem.contains("BEGIN CERTIFICATE") {
            use x509_cert::der::{Decode as _, Encode as _};
            let der = rustls_pemfile::certs(&mut pem.as_bytes())
                .next()
                .ok_or_else(|| invalid("no certificate in the PEM"))?
                .map_err(|e| invalid(format!("unreadable certificate PEM: {e}")))?;
            let cert = x509_cert::Certificate::from_der(der.as_ref())
                .map_err(|e| invalid(format!("not an X.509 certificate: {e}")))?;
            let spki = cert
                .tbs_certificate
                .subject_public_key_info
                .to_der()
                .map_err(|e| invalid(format!("bad certificate public key: {e}")))?;
            let key = rsa::RsaPublicKey::from_public_key_der(&spki)
                .map_err(|e| invalid(format!("the certificate's key is not RSA: {e}")))?;
            let serial = {
                // The DER integer's sign byte is not part of the serial (Go: `SerialNumber.Bytes()`).
                let bytes = cert.tbs_certificate.serial_number.as_bytes();
                let start = bytes
                    .iter()
                    .position(|b| *b != 0)
                    .unwrap_or(bytes.len().saturating_sub(1));
                hex::encode_upper(&bytes[start..])
            };
            Ok((Self::from_rsa(&key)?, Some(serial)))
        } else if pem.contains("BEGIN RSA PUBLIC KEY") {
            let key = rsa::RsaPublicKey::from_pkcs1_pem(pem)
                .map_err(|e| invalid(format!("not a PKCS#1 RSA public key: {e}")))?;
            Ok((Self::from_rsa(&key)?, None))
        } else if pem.contains("BEGIN PUBLIC KEY") {
            let key = rsa::RsaPublicKey::from_public_key_pem(pem)
                .map_err(|e| invalid(format!("not an RSA public key: {e}")))?;
            Ok((Self::from_rsa(&key)?, None))
        } else {
            Err(invalid(
                "expected a PEM with BEGIN PUBLIC KEY, BEGIN RSA PUBLIC KEY or BEGIN CERTIFICATE",
            ))
        }
    }

    /// Whether `signature_b64` is a valid SHA256-RSA signature of `message`.
    pub(crate) fn verify(&self, message: &[u8], signature_b64: &str) -> bool {
        let Ok(signature) = B64.decode(signature_b64.trim()) else {
            return false;
        };
        ring::signature::RsaPublicKeyComponents {
            n: &self.n,
            e: &self.e,
        }
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            message,
            &signature,
        )
        .is_ok()
    }
}

/// An RSA private key that signs SHA256-RSA (PKCS#1 v1.5). Its `Debug` hides the key.
pub(crate) struct SignKey {
    pair: ring::signature::RsaKeyPair,
    pkcs8_der: Vec<u8>,
    /// The public half.
    pub(crate) public: PublicKey,
}

impl std::fmt::Debug for SignKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignKey")
            .field("private_key", &"[redacted]")
            .field("public", &self.public)
            .finish()
    }
}

impl SignKey {
    /// Reads a PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`) RSA key.
    pub(crate) fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let pem = pem.trim();
        let key = if pem.contains("BEGIN RSA PRIVATE KEY") {
            rsa::RsaPrivateKey::from_pkcs1_pem(pem)
                .map_err(|e| invalid(format!("not a PKCS#1 RSA private key: {e}")))?
        } else if pem.contains("BEGIN PRIVATE KEY") {
            rsa::RsaPrivateKey::from_pkcs8_pem(pem)
                .map_err(|e| invalid(format!("not a PKCS#8 RSA private key: {e}")))?
        } else {
            return Err(invalid(
                "expected a PEM with BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY",
            ));
        };
        Self::from_rsa(&key)
    }

    fn from_rsa(key: &rsa::RsaPrivateKey) -> Result<Self, KeyError> {
        let der = key
            .to_pkcs8_der()
            .map_err(|e| invalid(format!("cannot encode the private key: {e}")))?;
        let pkcs8_der = der.as_bytes().to_vec();
        let pair = ring::signature::RsaKeyPair::from_pkcs8(&pkcs8_der)
            .map_err(|e| invalid(format!("unusable RSA key (2048 bits or more needed): {e}")))?;
        Ok(Self {
            pair,
            pkcs8_der,
            public: PublicKey::from_rsa(&key.to_public_key())?,
        })
    }

    /// A new RSA-2048 key.
    pub(crate) fn generate() -> Result<Self, KeyError> {
        let key = generate_rsa()?;
        Self::from_rsa(&key)
    }

    /// Base64 SHA256-RSA signature of `message`.
    pub(crate) fn sign(&self, message: &[u8]) -> String {
        let rng = ring::rand::SystemRandom::new();
        let mut signature = vec![0u8; self.pair.public().modulus_len()];
        match self.pair.sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &rng,
            message,
            &mut signature,
        ) {
            Ok(()) => B64.encode(signature),
            Err(_) => {
                tracing::error!("RSA signing failed");
                String::new()
            }
        }
    }

    /// A self-signed X.509 certificate over this key (the "platform certificate"), valid
    /// from a day before `now` for five years, with this serial (hex); its PEM, `not_before`
    /// and `not_after` as unix times.
    pub(crate) fn certificate(
        &self,
        serial_hex: &str,
        now: u64,
    ) -> Result<(String, u64, u64), KeyError> {
        use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SerialNumber};
        let der = rustls::pki_types::PrivatePkcs8KeyDer::from(self.pkcs8_der.clone());
        let key = KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256)
            .map_err(|e| KeyError::Generate(e.to_string()))?;
        let mut params = CertificateParams::new(Vec::<String>::new())
            .map_err(|e| KeyError::Generate(e.to_string()))?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "Tenpay.com sign (wechat-sim)");
        name.push(DnType::OrganizationName, "Tenpay.com");
        name.push(DnType::CountryName, "CN");
        params.distinguished_name = name;
        let bytes = hex::decode(serial_hex).map_err(|e| KeyError::Generate(e.to_string()))?;
        params.serial_number = Some(SerialNumber::from_slice(&bytes));
        let not_before = now.saturating_sub(86_400);
        let not_after = not_before.saturating_add(5 * 365 * 86_400);
        let to_time = |t: u64| {
            time::OffsetDateTime::from_unix_timestamp(i64::try_from(t).unwrap_or(0))
                .map_err(|e| KeyError::Generate(e.to_string()))
        };
        params.not_before = to_time(not_before)?;
        params.not_after = to_time(not_after)?;
        let cert = params
            .self_signed(&key)
            .map_err(|e| KeyError::Generate(e.to_string()))?;
        Ok((cert.pem(), not_before, not_after))
    }
}

/// A new RSA-2048 private key.
pub(crate) fn generate_rsa() -> Result<rsa::RsaPrivateKey, KeyError> {
    rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
        .map_err(|e| KeyError::Generate(e.to_string()))
}

/// PKCS#8 and SPKI PEMs of a new RSA-2048 key.
pub(crate) fn generate_pems() -> Result<(String, String), KeyError> {
    let key = generate_rsa()?;
    let private = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| KeyError::Generate(e.to_string()))?
        .to_string();
    let public = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| KeyError::Generate(e.to_string()))?;
    Ok((private, public))
}

/// The WeChat Pay key of merchants that configure none: generated once per process (RSA-2048
/// generation is slow) and shared by every simulator the process runs.
pub(crate) fn generated_pay_key() -> Result<Arc<SignKey>, KeyError> {
    static KEY: OnceLock<Result<Arc<SignKey>, String>> = OnceLock::new();
    KEY.get_or_init(|| SignKey::generate().map(Arc::new).map_err(|e| e.to_string()))
        .clone()
        .map_err(KeyError::Generate)
}

/// A random platform-certificate serial as WeChat Pay writes them: 40 upper-case hex digits
/// (20 bytes), the first one `5` (a leading byte below 0x80 keeps the DER integer positive and
/// 20 bytes long).
pub(crate) fn certificate_serial() -> String {
    let serial: String = (0..20)
        .map(|_| format!("{:02X}", rand::random::<u8>()))
        .collect();
    format!("5{}", &serial[1..])
}

/// A key no merchant knows, for `unknown_serial` notifications; generated once per process.
pub(crate) fn stranger_key() -> Result<Arc<SignKey>, KeyError> {
    static KEY: OnceLock<Result<Arc<SignKey>, String>> = OnceLock::new();
    KEY.get_or_init(|| SignKey::generate().map(Arc::new).map_err(|e| e.to_string()))
        .clone()
        .map_err(KeyError::Generate)
}

/// A 12-character ASCII nonce for AES-GCM, from `[0-9A-Za-z]`.
pub(crate) fn gcm_nonce() -> String {
    use rand::Rng as _;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(12)
        .map(char::from)
        .collect()
}

/// AEAD_AES_256_GCM: base64(ciphertext ‖ tag) of `plaintext` with the 32-byte APIv3 key, the
/// 12 ASCII bytes of `nonce` as IV and `aad`.
pub(crate) fn aes_gcm_encrypt(
    key: &[u8],
    nonce: &str,
    aad: &str,
    plaintext: &[u8],
) -> Result<String, KeyError> {
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let unbound =
        UnboundKey::new(&AES_256_GCM, key).map_err(|_| invalid("the APIv3 key is not 32 bytes"))?;
    let nonce_bytes: [u8; 12] = nonce
        .as_bytes()
        .try_into()
        .map_err(|_| invalid("the AES-GCM nonce is not 12 bytes"))?;
    let mut data = plaintext.to_vec();
    LessSafeKey::new(unbound)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce_bytes),
            Aad::from(aad.as_bytes()),
            &mut data,
        )
        .map_err(|_| invalid("AES-GCM encryption failed"))?;
    Ok(B64.encode(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/pay/v3/testdata");

    #[test]
    fn official_sign_vector() {
        let pem = std::fs::read_to_string(format!("{VECTORS}/rsa_test_private_key.pem")).unwrap();
        let key = SignKey::from_pem(&pem).unwrap();
        let vector = std::fs::read_to_string(format!("{VECTORS}/rsa_sign_vector.txt")).unwrap();
        let field = |name: &str| {
            vector
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .unwrap()
                .to_owned()
        };
        let signature = key.sign(field("message").as_bytes());
        assert_eq!(signature, field("signature_b64"));
        let public = std::fs::read_to_string(format!("{VECTORS}/rsa_test_public_key.pem")).unwrap();
        let (public, serial) = PublicKey::from_pem(&public).unwrap();
        assert!(serial.is_none());
        assert!(public.verify(b"source", &signature));
        assert!(!public.verify(b"wrong source", &signature));
        assert!(!public.verify(b"source", "not base64!"));
        let cert = std::fs::read_to_string(format!("{VECTORS}/rsa_test_certificate.pem")).unwrap();
        let (from_cert, serial) = PublicKey::from_pem(&cert).unwrap();
        assert_eq!(serial.as_deref(), Some("F5765756002FDD77"));
        assert!(from_cert.verify(b"source", &signature));
    }

    #[test]
    fn official_aes_gcm_vector() {
        let ciphertext = aes_gcm_encrypt(
            b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb",
            "uluk4a9R25RW",
            "associatedData",
            b"message",
        )
        .unwrap();
        assert_eq!(ciphertext, "ulwSiIajGClcvcOYvOQ7+l+0PAbzzwI=");
        assert!(aes_gcm_encrypt(b"short", "uluk4a9R25RW", "", b"x").is_err());
        assert!(aes_gcm_encrypt(b"a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb", "short", "", b"x").is_err());
    }

    #[test]
    fn garbage_pems_are_errors() {
        assert!(PublicKey::from_pem("hello").is_err());
        assert!(
            PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
                .is_err()
        );
        assert!(
            PublicKey::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----")
                .is_err()
        );
        assert!(
            SignKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
                .is_err()
        );
        let debug = format!(
            "{:?}",
            SignKey::from_pem(
                &std::fs::read_to_string(format!("{VECTORS}/rsa_test_private_key.pem")).unwrap()
            )
            .unwrap()
        );
        assert!(debug.contains("[redacted]") && !debug.contains("MII"));
    }
}
