//! Platform certificates (the legacy way of verifying WeChat Pay): downloaded from
//! `/v3/certificates`, decrypted with the APIv3 key, refreshed in the background, shared
//! through the token store; and the [`Verifier`] that gives the client its current keys.

use crate::pay::PayError;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use http::Method;
use serde::Deserialize;

use super::client::{RawReply, verify_raw};
use super::{PayClient, PayConfig, PlatformCertificate, WechatPayKeys, decrypt_resource};
use crate::pay::PayApiErrorCode;
use crate::token::{StoredToken, TokenStore};
use crate::{Error, Result};

const ENDPOINT: &str = "/v3/certificates";
/// The least time between two downloads caused by an unknown serial (per process), so that a
/// flood of forged serials cannot turn into a flood of downloads.
const FORCED_REFRESH_GAP_SECS: u64 = 60;

/// Where the client's WeChat Pay keys come from: a fixed public key, or platform certificates
/// (with the public key too, in combined mode).
#[derive(Debug)]
pub(crate) struct Verifier {
    fixed: Arc<WechatPayKeys>,
    certificates: Option<CertificateCache>,
}

struct CertificateCache {
    /// The keys in use and when their certificates were downloaded (unix seconds).
    current: RwLock<Option<(Arc<WechatPayKeys>, u64)>>,
    refreshing: tokio::sync::Mutex<()>,
    background: AtomicBool,
    last_forced: AtomicU64,
    /// Set once WeChat Pay said this merchant has no platform certificate (combined mode
    /// only: the public key alone is used from then on).
    none_available: AtomicBool,
    store: Option<(Arc<dyn TokenStore>, String)>,
}

impl std::fmt::Debug for CertificateCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateCache")
            .field(
                "store_key",
                &self
                    .store
                    .as_ref()
                    .map(|(store, key)| store.describe_key(key)),
            )
            .finish_non_exhaustive()
    }
}

impl Verifier {
    pub(crate) fn new(config: &PayConfig, store: Option<(Arc<dyn TokenStore>, String)>) -> Self {
        let fixed = match config.wechat_pay_public_key() {
            Some(key) => WechatPayKeys::from(key.clone()),
            None => WechatPayKeys::default(),
        };
        let certificates = config
            .uses_platform_certificates()
            .then(|| CertificateCache {
                current: RwLock::new(None),
                refreshing: tokio::sync::Mutex::new(()),
                background: AtomicBool::new(false),
                last_forced: AtomicU64::new(0),
                none_available: AtomicBool::new(false),
                store: store.map(|(store, prefix)| {
                    (
                        store,
                        format!("{prefix}wechatpay_certificates:{}", config.mch_id()),
                    )
                }),
            });
        Self {
            fixed: Arc::new(fixed),
            certificates,
        }
    }

    /// The keys to verify with now.
    pub(crate) async fn keys(&self, client: &PayClient) -> Result<Arc<WechatPayKeys>> {
        let Some(cache) = &self.certificates else {
            return Ok(Arc::clone(&self.fixed));
        };
        if cache.none_available.load(Ordering::Relaxed) {
            return Ok(Arc::clone(&self.fixed));
        }
        let now = client.config().clock().now_unix_secs();
        let interval = client.config().certificate_refresh().as_secs();
        let current = cache.current.read().map(|c| c.clone()).unwrap_or(None);
        match current {
            Some((keys, loaded_at)) => {
                if now.saturating_sub(loaded_at) >= interval
                    && !cache.background.swap(true, Ordering::AcqRel)
                {
                    let client = client.clone();
                    tokio::spawn(async move {
                        if let Some(cache) = &client.inner.verifier.certificates {
                            if let Err(e) =
                                cache.refresh(&client, &client.inner.verifier, false).await
                            {
                                tracing::warn!(error = %e, "WeChat Pay platform certificates could not be refreshed; the current ones stay in use");
                            }
                            cache.background.store(false, Ordering::Release);
                        }
                    });
                }
                Ok(keys)
            }
            None => cache.refresh(client, self, false).await,
        }
    }

    /// Verifies an answer; in platform-certificate mode an unknown serial first downloads the
    /// certificates again (at most once a minute), as WeChat Pay's rotation guide advises.
    pub(crate) async fn verify_reply(
        &self,
        client: &PayClient,
        endpoint: &'static str,
        raw: &RawReply,
    ) -> Result<()> {
        let keys = self.keys(client).await?;
        let serial = raw
            .headers
            .get("wechatpay-serial")
            .and_then(|v| v.to_str().ok());
        let keys = match serial {
            Some(serial) if !keys.knows(serial) => self.keys_knowing(client, serial).await?,
            _ => keys,
        };
        verify_raw(&keys, client.config(), endpoint, raw)
    }

    /// The keys, after a download if `serial` is unknown and downloads are possible.
    pub(crate) async fn keys_knowing(
        &self,
        client: &PayClient,
        serial: &str,
    ) -> Result<Arc<WechatPayKeys>> {
        let keys = self.keys(client).await?;
        let Some(cache) = &self.certificates else {
            return Ok(keys);
        };
        if keys.knows(serial) || serial.starts_with("PUB_KEY_ID_") {
            return Ok(keys);
        }
        let now = client.config().clock().now_unix_secs();
        let last = cache.last_forced.load(Ordering::Acquire);
        if now.saturating_sub(last) < FORCED_REFRESH_GAP_SECS
            || cache
                .last_forced
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return Ok(keys);
        }
        tracing::info!(
            serial,
            "unknown WeChat Pay serial: downloading the platform certificates again"
        );
        cache.refresh(client, self, true).await
    }

    /// Downloads the certificates now and puts them in use.
    pub(crate) async fn download(&self, client: &PayClient) -> Result<Vec<PlatformCertificate>> {
        let Some(cache) = &self.certificates else {
            return Err(Error::config(
                "PayConfigBuilder::platform_certificates",
                "this client verifies WeChat Pay with its public key only: platform certificates \
                 are not configured",
            ));
        };
        let keys = cache.refresh(client, self, true).await?;
        Ok(keys.certificates().to_vec())
    }
}

impl CertificateCache {
    /// Loads fresh keys: from the shared store when it holds a fresh list (unless `force`),
    /// else from WeChat Pay, then shares them.
    async fn refresh(
        &self,
        client: &PayClient,
        verifier: &Verifier,
        force: bool,
    ) -> Result<Arc<WechatPayKeys>> {
        let _single = self.refreshing.lock().await;
        let config = client.config();
        let now = config.clock().now_unix_secs();
        let interval = config.certificate_refresh().as_secs();
        if !force {
            if let Some((keys, loaded_at)) = self.current.read().map(|c| c.clone()).unwrap_or(None)
            {
                if now.saturating_sub(loaded_at) < interval {
                    return Ok(keys);
                }
            }
            if let Some(keys) = self.load_shared(config, verifier, now, interval).await {
                return Ok(keys);
            }
        }
        let (certificates, list) = match download(client, verifier).await {
            Ok(downloaded) => downloaded,
            Err(Error::Pay(PayError::Api(e)))
                if e.code == PayApiErrorCode::ResourceNotExists
                    && verifier.fixed.public_key().is_some() =>
            {
                tracing::warn!(request_id = ?e.request_id, "WeChat Pay has no platform certificate for this merchant any more: verifying with the WeChat Pay public key only");
                self.none_available.store(true, Ordering::Relaxed);
                return Ok(Arc::clone(&verifier.fixed));
            }
            Err(Error::Pay(PayError::Api(e))) if e.code == PayApiErrorCode::ResourceNotExists => {
                return Err(Error::config(
                    "PayConfigBuilder::platform_certificates",
                    format!(
                        "WeChat Pay has no platform certificate for merchant {} (404 RESOURCE_NOT_EXISTS, \
                         Request-ID {}): merchants since 2024 verify with the WeChat Pay public key; \
                         download pub_key.pem and its PUB_KEY_ID_… from Account center > API security \
                         and configure wechat_pay_public_key",
                        config.mch_id(),
                        e.request_id.as_deref().unwrap_or("none")
                    ),
                ));
            }
            Err(e) => return Err(e),
        };
        let keys = Arc::new(combine(verifier, certificates));
        self.install(&keys, now);
        if let Some((store, key)) = &self.store {
            let stored = StoredToken::new(list, now + interval);
            if let Err(e) = store.set(key, &stored).await {
                tracing::warn!(error = %e, key = %store.describe_key(key), "could not share the WeChat Pay platform certificates");
            }
        }
        Ok(keys)
    }

    fn install(&self, keys: &Arc<WechatPayKeys>, loaded_at: u64) {
        if let Ok(mut current) = self.current.write() {
            *current = Some((Arc::clone(keys), loaded_at));
        }
    }

    /// The keys from the shared store's list, when it is fresh and decrypts with our key.
    async fn load_shared(
        &self,
        config: &PayConfig,
        verifier: &Verifier,
        now: u64,
        interval: u64,
    ) -> Option<Arc<WechatPayKeys>> {
        let (store, key) = self.store.as_ref()?;
        let stored = match store.get(key).await {
            Ok(Some(stored)) if stored.is_valid_at(now) => stored,
            Ok(_) => return None,
            Err(e) => {
                tracing::warn!(error = %e, "token store unavailable: downloading the WeChat Pay platform certificates");
                return None;
            }
        };
        match decode_list(stored.value(), config, now) {
            Ok(certificates) => {
                let keys = Arc::new(combine(verifier, certificates));
                // Downloaded by another process at expires_at - interval.
                let loaded_at = stored.expires_at().saturating_sub(interval).min(now);
                self.install(&keys, loaded_at);
                Some(keys)
            }
            Err(e) => {
                tracing::warn!(error = %e, key = %store.describe_key(key), "the shared WeChat Pay platform certificates are unusable: downloading them");
                None
            }
        }
    }
}

fn combine(verifier: &Verifier, certificates: Vec<PlatformCertificate>) -> WechatPayKeys {
    let mut keys = (*verifier.fixed).clone();
    for certificate in certificates {
        keys = keys.with_certificate(certificate);
    }
    keys
}

#[derive(Deserialize)]
struct CertificateList {
    data: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct CertificateEntry {
    serial_no: String,
    encrypt_certificate: EncryptedCertificate,
}

#[derive(Deserialize)]
struct EncryptedCertificate {
    algorithm: String,
    nonce: String,
    #[serde(default)]
    associated_data: String,
    ciphertext: String,
}

/// Downloads, decrypts and checks the list; the answer is verified with the certificates it
/// carries (and the public key, in combined mode). Returns them and the list as stored.
async fn download(
    client: &PayClient,
    verifier: &Verifier,
) -> Result<(Vec<PlatformCertificate>, String)> {
    let raw = client
        .send_with_retries(&Method::GET, ENDPOINT, ENDPOINT, None, None)
        .await?;
    let config = client.config();
    let list: CertificateList =
        serde_json::from_slice(&raw.body).map_err(|e| Error::UnexpectedResponse {
            endpoint: ENDPOINT,
            detail: format!("the certificate list cannot be read: {e}"),
        })?;
    let text = serde_json::Value::Array(list.data).to_string();
    let now = config.clock().now_unix_secs();
    let certificates = decode_list(&text, config, now)?;
    let keys = combine(verifier, certificates.clone());
    verify_raw(&keys, config, ENDPOINT, &raw)?;
    tracing::info!(
        serials = ?certificates.iter().map(PlatformCertificate::serial_no).collect::<Vec<_>>(),
        "WeChat Pay platform certificates downloaded"
    );
    Ok((certificates, text))
}

/// Decrypts every entry of a `data` array; expired certificates are left out; at least one
/// must remain.
pub(crate) fn decode_list(
    list: &str,
    config: &PayConfig,
    now: u64,
) -> Result<Vec<PlatformCertificate>> {
    let unexpected = |detail: String| Error::UnexpectedResponse {
        endpoint: ENDPOINT,
        detail,
    };
    let entries: Vec<CertificateEntry> = serde_json::from_str(list)
        .map_err(|e| unexpected(format!("the certificate list cannot be read: {e}")))?;
    let mut certificates = Vec::with_capacity(entries.len());
    for entry in entries {
        let e = &entry.encrypt_certificate;
        let pem = decrypt_resource(
            config.api_v3_key(),
            &e.algorithm,
            &e.nonce,
            &e.associated_data,
            &e.ciphertext,
        )?;
        let certificate = PlatformCertificate::from_pem(&pem)?;
        if !certificate
            .serial_no()
            .eq_ignore_ascii_case(&entry.serial_no)
        {
            return Err(unexpected(format!(
                "the certificate listed as {} has serial {}",
                entry.serial_no,
                certificate.serial_no()
            )));
        }
        if certificate.not_after() <= now {
            continue;
        }
        certificates.push(certificate);
    }
    if certificates.is_empty() {
        return Err(unexpected(
            "WeChat Pay listed no unexpired platform certificate".into(),
        ));
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pay::v3::{MerchantKey, PayConfig};

    fn vector(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/vectors/v3/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn config() -> PayConfig {
        let key =
            MerchantKey::from_pem(&vector("rsa_test_private_key.pem"), "F5765756002FDD77").unwrap();
        PayConfig::builder(
            "1900009191",
            "wx1234567890abcdef",
            key,
            "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb",
            "https://shop.example.com/notify",
        )
        .platform_certificates()
        .build()
        .unwrap()
    }

    fn official_list() -> String {
        let response: serde_json::Value =
            serde_json::from_slice(&vector("cert_download_response.json")).unwrap();
        response["data"].to_string()
    }

    #[test]
    fn the_official_download_decodes_and_expired_certificates_are_dropped() {
        let config = config();
        let list = official_list();
        let certificates = decode_list(&list, &config, 1_700_000_000).unwrap();
        assert_eq!(certificates.len(), 1);
        let certificate = &certificates[0];
        assert_eq!(
            certificate.serial_no(),
            "5DEA10EF55877E3CF6C33255C2E7DEFFF7E427EC"
        );
        assert!(certificate.not_before() < 1_700_000_000);
        // After its expiry the list holds nothing usable.
        let err = decode_list(&list, &config, certificate.not_after()).unwrap_err();
        assert!(err.to_string().contains("no unexpired"), "{err}");
    }

    #[test]
    fn a_list_that_lies_or_was_encrypted_for_another_merchant_is_refused() {
        let config = config();
        let mut lying: serde_json::Value = serde_json::from_str(&official_list()).unwrap();
        lying[0]["serial_no"] = "0123".into();
        let err = decode_list(&lying.to_string(), &config, 1_700_000_000).unwrap_err();
        assert!(err.to_string().contains("has serial"), "{err}");

        let other = PayConfig::builder(
            "1900009191",
            "wx1234567890abcdef",
            config.merchant_key().clone(),
            "0123456789abcdefghijABCDEFGHIJ01",
            "https://shop.example.com/notify",
        )
        .platform_certificates()
        .build()
        .unwrap();
        assert!(matches!(
            decode_list(&official_list(), &other, 1_700_000_000),
            Err(Error::Pay(PayError::BadSignature(_)))
        ));
        assert!(decode_list("{", &config, 0).is_err());
        assert!(decode_list("[]", &config, 0).is_err());
    }
}
