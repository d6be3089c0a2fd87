//! The keys of API v3: the merchant's API private key (signs requests and the page's `paySign`)
//! and WeChat Pay's keys (verify replies and notifications): the WeChat Pay public key
//! (`PUB_KEY_ID_…`, what new merchants get) or platform certificates.

use crate::pay::PayError;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{self, RsaKeyPair, UnparsedPublicKey};
use rustls_pemfile::Item;

use crate::{Error, Result};
use spki::der::Decode as _;
use spki::der::referenced::OwnedToRef as _;
use spki::{ObjectIdentifier, SubjectPublicKeyInfoRef};

/// Where a key's errors point: the constructor a caller used.
const MERCHANT_KEY: &str = "MerchantKey (apiclient_key.pem)";
const PUBLIC_KEY: &str = "WechatPayPublicKey (pub_key.pem)";
const PLATFORM_CERTIFICATE: &str = "PlatformCertificate";

/// The PEM blocks of `pem`, refusing text with none.
fn pem_items(pem: &[u8], setting: &'static str) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    for item in rustls_pemfile::read_all(&mut &pem[..]) {
        match item {
            Ok(item) => items.push(item),
            Err(_) => return Err(Error::config(setting, "the PEM text cannot be read")),
        }
    }
    if items.is_empty() {
        return Err(Error::config(
            setting,
            "no PEM block (-----BEGIN …-----) found",
        ));
    }
    Ok(items)
}

/// The uppercase hex of a certificate serial number, as WeChat Pay writes it (without the sign
/// byte DER adds before a high bit).
fn serial_hex(serial: &[u8]) -> String {
    match serial {
        [0, rest @ ..] if !rest.is_empty() => hex::encode_upper(rest),
        serial => hex::encode_upper(serial),
    }
}

/// rsaEncryption, 1.2.840.113549.1.1.1.
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// The merchant API private key (`apiclient_key.pem`, RSA 2048) and the serial number of its
/// certificate (`apiclient_cert.pem`), which names the key in every request's `Authorization`.
///
/// Signing uses ring (constant-time RSA). `Debug` shows the serial only.
///
/// ```
/// use wechat_core::pay::v3::MerchantKey;
///
/// let pem = std::fs::read("tests/vectors/v3/rsa_test_private_key.pem")?;
/// let key = MerchantKey::from_pem(&pem, "F5765756002FDD77")?;
/// assert_eq!(format!("{key:?}"), r#"MerchantKey { serial_no: "F5765756002FDD77", key: "[redacted]" }"#);
///
/// // The classic mistake, a public key where the private key belongs, says so:
/// let public = std::fs::read("tests/vectors/v3/rsa_test_public_key.pem")?;
/// let err = MerchantKey::from_pem(&public, "F5765756002FDD77").unwrap_err();
/// assert!(err.to_string().contains("a public key"), "{err}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct MerchantKey {
    key: Arc<RsaKeyPair>,
    serial_no: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for MerchantKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MerchantKey")
            .field("serial_no", &self.serial_no)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl MerchantKey {
    /// The private key from `apiclient_key.pem` (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1
    /// `BEGIN RSA PRIVATE KEY`), named by the serial number of its certificate (as shown on the
    /// merchant platform, or read from `apiclient_cert.pem` by
    /// [`from_pem_with_certificate`](Self::from_pem_with_certificate)).
    ///
    /// # Errors
    /// [`Error::Config`] when the PEM holds no private key (a public key or a certificate where
    /// the private key belongs is named as such), the key is not RSA of 2048 to 4096 bits, or the
    /// serial is not hex.
    pub fn from_pem(key_pem: &[u8], serial_no: impl Into<String>) -> Result<Self> {
        let serial_no = serial_no.into().trim().to_ascii_uppercase();
        if serial_no.is_empty() || !serial_no.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::config(
                "merchant certificate serial (WECHAT_PAY_MCH_SERIAL)",
                format!(
                    "{serial_no:?} is not a certificate serial number: expected the hex serial of \
                     apiclient_cert.pem, e.g. 444F4864EA9B34415..."
                ),
            ));
        }
        let mut found = None;
        let mut other = None;
        for item in pem_items(key_pem, MERCHANT_KEY)? {
            match item {
                Item::Pkcs8Key(der) => found = Some(RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())),
                Item::Pkcs1Key(der) => found = Some(RsaKeyPair::from_der(der.secret_pkcs1_der())),
                Item::Sec1Key(_) => other = Some("an EC private key; WeChat Pay keys are RSA"),
                Item::SubjectPublicKeyInfo(_) => {
                    other = Some(
                        "a public key (BEGIN PUBLIC KEY), such as the WeChat Pay public key \
                         pub_key.pem; the merchant API private key is apiclient_key.pem",
                    );
                }
                Item::X509Certificate(_) => {
                    other = Some(
                        "a certificate (BEGIN CERTIFICATE), such as apiclient_cert.pem; the \
                         private key is apiclient_key.pem, beside it",
                    );
                }
                _ => {}
            }
            if found.is_some() {
                break;
            }
        }
        let key = match (found, other) {
            (Some(Ok(key)), _) => key,
            (Some(Err(e)), _) => {
                return Err(Error::config(
                    MERCHANT_KEY,
                    format!("the private key is not a usable RSA key ({e})"),
                ));
            }
            (None, Some(what)) => {
                return Err(Error::config(
                    MERCHANT_KEY,
                    format!("this PEM holds {what}"),
                ));
            }
            (None, None) => {
                return Err(Error::config(MERCHANT_KEY, "this PEM holds no private key"));
            }
        };
        Ok(Self {
            key: Arc::new(key),
            serial_no,
            rng: SystemRandom::new(),
        })
    }

    /// The private key from `apiclient_key.pem`, named by the serial number read from its
    /// certificate `apiclient_cert.pem`.
    ///
    /// # Errors
    /// As [`from_pem`](Self::from_pem), and [`Error::Config`] when `cert_pem` holds no readable
    /// certificate or the certificate is for another key.
    pub fn from_pem_with_certificate(key_pem: &[u8], cert_pem: &[u8]) -> Result<Self> {
        let certificate = PlatformCertificate::from_pem(cert_pem).map_err(|e| match e {
            Error::Config(c) => {
                Error::config("merchant certificate (apiclient_cert.pem)", c.problem())
            }
            other => other,
        })?;
        let key = Self::from_pem(key_pem, certificate.serial_no())?;
        let probe = key.sign(b"wechat-core: does the certificate match the key?")?;
        // Whether the keys match, whatever the merchant certificate's dates.
        if certificate
            .key
            .verify(b"wechat-core: does the certificate match the key?", &probe)
            .is_err()
        {
            return Err(Error::config(
                "merchant certificate (apiclient_cert.pem)",
                "the certificate is for another key than apiclient_key.pem",
            ));
        }
        Ok(key)
    }

    /// The serial number of the merchant certificate.
    pub fn serial_no(&self) -> &str {
        &self.serial_no
    }

    /// The base64 RSASSA-PKCS1-v1_5 SHA-256 signature of `message`.
    ///
    /// # Errors
    /// [`PayError::InvalidRequest`](crate::pay::PayError::InvalidRequest) if the signature cannot be computed (not expected with a key
    /// that loaded).
    pub fn sign(&self, message: &[u8]) -> Result<String> {
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &self.rng,
                message,
                &mut signature,
            )
            .map_err(|_| {
                Error::Pay(PayError::InvalidRequest(
                    "the RSA signature failed".to_owned(),
                ))
            })?;
        Ok(STANDARD.encode(signature))
    }
}

/// An RSA public key that verifies WeChat Pay's signatures (PKCS#1 DER inside).
#[derive(Clone)]
struct VerifyingKey(Arc<UnparsedPublicKey<Vec<u8>>>);

impl VerifyingKey {
    fn from_spki_der(spki: &[u8], setting: &'static str) -> Result<Self> {
        let spki = SubjectPublicKeyInfoRef::from_der(spki)
            .map_err(|_| Error::config(setting, "the public key cannot be read (not SPKI DER)"))?;
        Self::from_spki(&spki, setting)
    }

    fn from_spki(spki: &SubjectPublicKeyInfoRef<'_>, setting: &'static str) -> Result<Self> {
        if spki.algorithm.oid != RSA_ENCRYPTION {
            return Err(Error::config(setting, "the public key is not an RSA key"));
        }
        let rsa = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| Error::config(setting, "the public key cannot be read"))?;
        Ok(Self(Arc::new(UnparsedPublicKey::new(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            rsa.to_vec(),
        ))))
    }

    fn verify(&self, message: &[u8], signature_b64: &str) -> Result<()> {
        let bad = || {
            Error::Pay(PayError::BadSignature(
                "the WeChat Pay signature does not verify",
            ))
        };
        // A 4096-bit signature is 684 base64 characters: anything far longer is not one.
        if signature_b64.len() > 1024 {
            return Err(bad());
        }
        let signature = STANDARD.decode(signature_b64).map_err(|_| bad())?;
        self.0.verify(message, &signature).map_err(|_| bad())
    }
}

/// The WeChat Pay public key (`pub_key.pem`, `BEGIN PUBLIC KEY`) and its id (`PUB_KEY_ID_…`),
/// both from the merchant platform (Account center > API security). What merchants who signed
/// up since late 2024 get instead of platform certificates.
#[derive(Clone)]
pub struct WechatPayPublicKey {
    id: String,
    key: VerifyingKey,
}

impl std::fmt::Debug for WechatPayPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatPayPublicKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl WechatPayPublicKey {
    /// The key in `pem` (`BEGIN PUBLIC KEY`), known to WeChat Pay as `id`.
    ///
    /// # Errors
    /// [`Error::Config`] when `pem` holds no RSA public key (a private key or a certificate is
    /// named as such), or `id` is empty.
    pub fn from_pem(id: impl Into<String>, pem: &[u8]) -> Result<Self> {
        let id = id.into().trim().to_owned();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::config(
                "WeChat Pay public key id (WECHAT_PAY_PUBLIC_KEY_ID)",
                "expected the id shown beside the key, PUB_KEY_ID_…",
            ));
        }
        for item in pem_items(pem, PUBLIC_KEY)? {
            match item {
                Item::SubjectPublicKeyInfo(spki) => {
                    let key = VerifyingKey::from_spki_der(spki.as_ref(), PUBLIC_KEY)?;
                    return Ok(Self { id, key });
                }
                Item::Pkcs8Key(_) | Item::Pkcs1Key(_) | Item::Sec1Key(_) => {
                    return Err(Error::config(
                        PUBLIC_KEY,
                        "this PEM holds a private key: the WeChat Pay public key is pub_key.pem \
                         (BEGIN PUBLIC KEY); keep the private key apiclient_key.pem for signing",
                    ));
                }
                Item::X509Certificate(_) => {
                    return Err(Error::config(
                        PUBLIC_KEY,
                        "this PEM holds a certificate: for a platform certificate use \
                         PlatformCertificate; the WeChat Pay public key is pub_key.pem",
                    ));
                }
                _ => {}
            }
        }
        Err(Error::config(PUBLIC_KEY, "this PEM holds no public key"))
    }

    /// The key's id, `PUB_KEY_ID_…`: the `Wechatpay-Serial` of what it signed.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Verifies a base64 signature of `message`.
    ///
    /// # Errors
    /// [`PayError::BadSignature`](crate::pay::PayError::BadSignature) when it does not verify.
    pub fn verify(&self, message: &[u8], signature_b64: &str) -> Result<()> {
        self.key.verify(message, signature_b64)
    }
}

/// A WeChat Pay platform certificate (legacy mode: downloaded from `/v3/certificates`), named by
/// its serial number.
#[derive(Clone)]
pub struct PlatformCertificate {
    serial_no: String,
    key: VerifyingKey,
    not_before: u64,
    not_after: u64,
}

impl std::fmt::Debug for PlatformCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformCertificate")
            .field("serial_no", &self.serial_no)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl PlatformCertificate {
    /// The first certificate in `pem` (`BEGIN CERTIFICATE`).
    ///
    /// # Errors
    /// [`Error::Config`] when `pem` holds no certificate, or its key is not RSA.
    pub fn from_pem(pem: &[u8]) -> Result<Self> {
        for item in pem_items(pem, PLATFORM_CERTIFICATE)? {
            if let Item::X509Certificate(cert) = item {
                return Self::from_der(cert.as_ref());
            }
        }
        Err(Error::config(
            PLATFORM_CERTIFICATE,
            "this PEM holds no certificate (BEGIN CERTIFICATE)",
        ))
    }

    /// A certificate in DER.
    ///
    /// # Errors
    /// As [`from_pem`](Self::from_pem).
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let certificate = x509_cert::Certificate::from_der(der).map_err(|_| {
            Error::config(
                PLATFORM_CERTIFICATE,
                "the certificate cannot be read (not X.509 DER)",
            )
        })?;
        let tbs = &certificate.tbs_certificate;
        let spki = &tbs.subject_public_key_info;
        let spki = SubjectPublicKeyInfoRef {
            algorithm: spki.algorithm.owned_to_ref(),
            subject_public_key: spki.subject_public_key.owned_to_ref(),
        };
        Ok(Self {
            serial_no: serial_hex(tbs.serial_number.as_bytes()),
            key: VerifyingKey::from_spki(&spki, PLATFORM_CERTIFICATE)?,
            not_before: tbs.validity.not_before.to_unix_duration().as_secs(),
            not_after: tbs.validity.not_after.to_unix_duration().as_secs(),
        })
    }

    /// When the certificate becomes valid, unix seconds.
    pub fn not_before(&self) -> u64 {
        self.not_before
    }

    /// When the certificate expires, unix seconds: after it, nothing it signed is accepted.
    pub fn not_after(&self) -> u64 {
        self.not_after
    }

    /// The serial number, uppercase hex: the `Wechatpay-Serial` of what it signed.
    pub fn serial_no(&self) -> &str {
        &self.serial_no
    }

    /// Whether the certificate is valid at `now_unix_secs`: from
    /// [`not_before`](Self::not_before) until [`not_after`](Self::not_after).
    ///
    /// # Errors
    /// [`PayError::CertificateNotValid`](crate::pay::PayError::CertificateNotValid) before or after that window, saying which and when.
    pub fn check_validity(&self, now_unix_secs: u64) -> Result<()> {
        if (self.not_before..self.not_after).contains(&now_unix_secs) {
            return Ok(());
        }
        Err(Error::Pay(PayError::CertificateNotValid {
            serial: self.serial_no.clone(),
            not_before: self.not_before,
            not_after: self.not_after,
            now: now_unix_secs,
        }))
    }

    /// Verifies a base64 signature of `message` at `now_unix_secs` (the configured clock's
    /// time): the certificate must be valid then ([`check_validity`](Self::check_validity)).
    ///
    /// # Errors
    /// [`PayError::CertificateNotValid`](crate::pay::PayError::CertificateNotValid) outside its validity;
    /// [`PayError::BadSignature`](crate::pay::PayError::BadSignature) when the signature does not verify.
    pub fn verify(&self, message: &[u8], signature_b64: &str, now_unix_secs: u64) -> Result<()> {
        self.check_validity(now_unix_secs)?;
        self.key.verify(message, signature_b64)
    }
}

/// The keys that verify WeChat Pay: the public key, platform certificates, or both while a
/// merchant migrates; each signature is checked with the key its `Wechatpay-Serial` names.
///
/// ```
/// use wechat_core::pay::v3::{WechatPayKeys, WechatPayPublicKey};
///
/// let pem = std::fs::read("tests/vectors/v3/rsa_test_public_key.pem")?;
/// let keys = WechatPayKeys::from(WechatPayPublicKey::from_pem("PUB_KEY_ID_0114232134912410000000000000", &pem)?);
/// assert_eq!(keys.serial(), Some("PUB_KEY_ID_0114232134912410000000000000"));
/// let now = 1_700_000_000;
/// assert!(keys.verify("PUB_KEY_ID_9", b"message", "c2lnbmF0dXJl", now).is_err()); // unknown serial
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct WechatPayKeys {
    public_key: Option<WechatPayPublicKey>,
    certificates: Vec<PlatformCertificate>,
}

impl From<WechatPayPublicKey> for WechatPayKeys {
    fn from(key: WechatPayPublicKey) -> Self {
        Self {
            public_key: Some(key),
            certificates: Vec::new(),
        }
    }
}

impl WechatPayKeys {
    /// Sets (or replaces) the WeChat Pay public key.
    #[must_use]
    pub fn with_public_key(mut self, key: WechatPayPublicKey) -> Self {
        self.public_key = Some(key);
        self
    }

    /// The platform certificates, in the order they were added.
    pub fn certificates(&self) -> &[PlatformCertificate] {
        &self.certificates
    }

    /// The WeChat Pay public key, when there is one.
    pub fn public_key(&self) -> Option<&WechatPayPublicKey> {
        self.public_key.as_ref()
    }

    /// Adds (or replaces, by serial) a platform certificate.
    #[must_use]
    pub fn with_certificate(mut self, certificate: PlatformCertificate) -> Self {
        self.certificates
            .retain(|c| c.serial_no() != certificate.serial_no());
        self.certificates.push(certificate);
        self
    }

    /// What to send as the request's `Wechatpay-Serial` (the key this merchant verifies with):
    /// the public key's id, else the serial of the certificate added last.
    pub fn serial(&self) -> Option<&str> {
        self.public_key
            .as_ref()
            .map(WechatPayPublicKey::id)
            .or_else(|| self.certificates.last().map(PlatformCertificate::serial_no))
    }

    /// Whether a key named `serial` is known.
    pub fn knows(&self, serial: &str) -> bool {
        self.public_key.as_ref().is_some_and(|k| k.id() == serial)
            || self.certificates.iter().any(|c| c.serial_no() == serial)
    }

    /// Verifies a base64 signature of `message` with the key named `serial`, at `now_unix_secs`
    /// (the configured clock's time; a platform certificate must be valid then).
    ///
    /// # Errors
    /// [`PayError::BadSignature`](crate::pay::PayError::BadSignature) when no key is named `serial`, or the signature does not verify;
    /// [`PayError::CertificateNotValid`](crate::pay::PayError::CertificateNotValid) when the certificate named `serial` has expired
    /// or is not valid yet.
    pub fn verify(
        &self,
        serial: &str,
        message: &[u8],
        signature_b64: &str,
        now_unix_secs: u64,
    ) -> Result<()> {
        if let Some(key) = self.public_key.as_ref().filter(|k| k.id() == serial) {
            return key.verify(message, signature_b64);
        }
        match self.certificates.iter().find(|c| c.serial_no() == serial) {
            Some(certificate) => certificate.verify(message, signature_b64, now_unix_secs),
            None => Err(Error::Pay(PayError::BadSignature(
                "the signature names a WeChat Pay key (Wechatpay-Serial) that is not configured",
            ))),
        }
    }
}
