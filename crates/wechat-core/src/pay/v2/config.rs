//! The merchant's WeChat Pay configuration.

use super::SignType;
use crate::pay::config::check_url;
use crate::{AppId, ConfigError, Error, MchId, PayApiKey, Result};

/// The merchant API client certificate (`apiclient_cert.pem` + `apiclient_key.pem` from the
/// merchant platform's API security page), presented over mutual TLS to `/secapi/pay/refund`.
///
/// Load it from the PEM pair with [`ClientCertificate::from_pem`], or from `apiclient_cert.p12`
/// with [`ClientCertificate::from_pkcs12`] (its password is the merchant id). PKCS#12 files with
/// the legacy encryption WeChat's downloads use (SHA-1 with 3DES or RC2) are read; a file written
/// with PBES2/AES (OpenSSL 3's default) is refused with an error that says to convert it:
///
/// ```text
/// openssl pkcs12 -in apiclient_cert.p12 -clcerts -nokeys -out apiclient_cert.pem -passin pass:MCH_ID
/// openssl pkcs12 -in apiclient_cert.p12 -nocerts -nodes -out apiclient_key.pem -passin pass:MCH_ID
/// ```
///
/// # Security
/// The private key is never printed: `Debug` shows `ClientCertificate([redacted])`.
#[derive(Clone)]
pub struct ClientCertificate {
    /// Certificate chain then private key, PEM, as `reqwest::Identity::from_pem` wants them.
    pem: Vec<u8>,
}

impl ClientCertificate {
    /// The certificate (chain) and its private key, both PEM (PKCS#8, PKCS#1 or SEC1 key).
    ///
    /// # Errors
    /// [`Error::Config`] when `cert_pem` holds no certificate or `key_pem` no private key.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self> {
        let certs = rustls_pemfile::certs(&mut &cert_pem[..])
            .filter_map(std::result::Result::ok)
            .count();
        if certs == 0 {
            return Err(Error::config(
                "ClientCertificate",
                "the merchant client certificate PEM contains no CERTIFICATE block (apiclient_cert.pem)",
            ));
        }
        match rustls_pemfile::private_key(&mut &key_pem[..]) {
            Ok(Some(_)) => {}
            _ => {
                return Err(Error::config(
                    "ClientCertificate",
                    "the merchant client key PEM contains no readable PRIVATE KEY block (apiclient_key.pem)",
                ));
            }
        }
        let mut pem = Vec::with_capacity(cert_pem.len() + key_pem.len() + 1);
        pem.extend_from_slice(cert_pem);
        if !pem.ends_with(b"\n") {
            pem.push(b'\n');
        }
        pem.extend_from_slice(key_pem);
        Ok(Self { pem })
    }

    /// The certificate and private key from a PKCS#12 file (`apiclient_cert.p12`), whose
    /// password is the merchant id unless it was changed.
    ///
    /// # Errors
    /// [`Error::Config`] when the file is not PKCS#12, the password is wrong (the MAC does not
    /// verify), it uses an encryption this reader does not support (PBES2/AES: convert it to
    /// PEM with the `openssl pkcs12` commands above), or it holds no certificate or no key. The
    /// messages never contain the password.
    pub fn from_pkcs12(der: &[u8], password: &str) -> Result<Self> {
        let pfx = p12::PFX::parse(der).map_err(|_| {
            Error::config(
                "ClientCertificate",
                "the merchant client certificate is not a PKCS#12 (.p12) file",
            )
        })?;
        if !pfx.verify_mac(password) {
            return Err(Error::config(
                "ClientCertificate",
                "the PKCS#12 password is wrong (WeChat's apiclient_cert.p12 uses the merchant id)",
            ));
        }
        let unsupported = |_| {
            Error::config(
                "ClientCertificate",
                "cannot decrypt this PKCS#12 file (PBES2/AES is not supported): convert it to PEM \
                 with `openssl pkcs12` and use ClientCertificate::from_pem",
            )
        };
        let certs = pfx.cert_x509_bags(password).map_err(unsupported)?;
        let keys = pfx.key_bags(password).map_err(unsupported)?;
        let Some(key) = keys.first() else {
            return Err(Error::config(
                "ClientCertificate",
                "the PKCS#12 file holds no readable private key (PBES2/AES-encrypted keys are not \
                 supported: convert it to PEM with `openssl pkcs12`)",
            ));
        };
        if certs.is_empty() {
            return Err(Error::config(
                "ClientCertificate",
                "the PKCS#12 file holds no readable certificate",
            ));
        }
        let mut cert_pem = Vec::new();
        for cert in &certs {
            cert_pem.extend_from_slice(pem_block("CERTIFICATE", cert).as_bytes());
        }
        Self::from_pem(&cert_pem, pem_block("PRIVATE KEY", key).as_bytes())
    }

    /// The identity for reqwest.
    pub(crate) fn identity(&self) -> Result<reqwest::Identity> {
        reqwest::Identity::from_pem(&self.pem).map_err(|e| {
            Error::config(
                "ClientCertificate",
                format!("cannot load the merchant client certificate: {e}"),
            )
        })
    }
}

/// DER bytes as one PEM block with the given label.
fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        // base64 output is ASCII, so every chunk is valid UTF-8.
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientCertificate([redacted])")
    }
}

/// The API v2 credentials of a merchant: the API key and the signature algorithm, and the
/// client certificate that refunds need. Part of a [`PayConfig`]; set through its builder.
///
/// # Security
/// `Debug` shows the key as `PayApiKey([redacted])` and the certificate as
/// `ClientCertificate([redacted])`.
#[derive(Debug, Clone)]
pub struct Credentials {
    api_key: PayApiKey,
    sign_type: SignType,
    also_accepted_sign_type: Option<SignType>,
    client_certificate: Option<ClientCertificate>,
    secapi_base_url: Option<String>,
}

impl crate::pay::config::Credentials for Credentials {}

impl crate::pay::config::sealed::Credentials for Credentials {
    fn validate(&self) -> std::result::Result<(), ConfigError> {
        let key = self.api_key.expose_secret();
        if key.len() != 32 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::new(
                "PayConfig::builder(api_key)",
                "the WeChat Pay API key must be the 32-character API v2 key set under Account center > \
                 API security on pay.weixin.qq.com (not the AppSecret, not the APIv3 key)",
            ));
        }
        Ok(())
    }

    fn validate_urls(&self) -> std::result::Result<(), ConfigError> {
        match &self.secapi_base_url {
            Some(url) => check_url(
                "PayConfigBuilder::secapi_base_url",
                "secapi base URL",
                url,
                false,
            ),
            None => Ok(()),
        }
    }
}

/// A WeChat Pay merchant (API v2) as used by one Official Account: the settings both versions
/// share ([`pay::PayConfig`](crate::pay::PayConfig)) with the v2 [`Credentials`].
///
/// ```
/// use wechat_core::BaseUrls;
/// use wechat_core::pay::v2::{PayConfig, SignType};
///
/// let pay = PayConfig::builder(
///     "1900000109",
///     "wx1234567890abcdef",
///     "192006250b4c09247ec02edce69f6a2d",
///     "https://shop.example.com/wechat/pay/notify",
/// )
/// .sign_type(SignType::HmacSha256)
/// .base_urls(&BaseUrls::all("http://127.0.0.1:9000"))
/// .build()?;
/// assert!(!format!("{pay:?}").contains("192006250b4c"));
/// # Ok::<(), wechat_core::ConfigError>(())
/// ```
pub type PayConfig = crate::pay::PayConfig<Credentials>;

/// Builds a v2 [`PayConfig`]: the shared setters of
/// [`pay::PayConfigBuilder`](crate::pay::PayConfigBuilder) and the v2 ones; `build()` checks
/// them all.
pub type PayConfigBuilder = crate::pay::PayConfigBuilder<Credentials>;

impl PayConfig {
    /// A merchant with its app id, API key (v2, 32 characters: not the AppSecret) and the
    /// public URL WeChat posts payment notifications to. MD5 signing, WeChat's production host,
    /// 10 s timeout. [`build`](PayConfigBuilder::build) checks every value.
    pub fn builder(
        mch_id: impl Into<MchId>,
        appid: impl Into<AppId>,
        api_key: impl Into<PayApiKey>,
        notify_url: impl Into<String>,
    ) -> PayConfigBuilder {
        Self::builder_with(
            mch_id.into(),
            appid.into(),
            notify_url.into(),
            Credentials {
                api_key: api_key.into(),
                sign_type: SignType::Md5,
                also_accepted_sign_type: None,
                client_certificate: None,
                secapi_base_url: None,
            },
        )
    }

    /// The API key.
    pub fn api_key(&self) -> &PayApiKey {
        &self.credentials.api_key
    }

    /// The signature algorithm.
    pub fn sign_type(&self) -> SignType {
        self.credentials.sign_type
    }

    /// Whether a payment notification signed with `sign_type` is accepted: the configured
    /// algorithm, and the one of
    /// [`also_accept_notification_sign_type`](PayConfigBuilder::also_accept_notification_sign_type)
    /// while migrating. A notification names its own `sign_type`, so accepting any would let a
    /// forger pick the weaker one.
    pub fn accepts_notification_sign_type(&self, sign_type: SignType) -> bool {
        sign_type == self.credentials.sign_type
            || self.credentials.also_accepted_sign_type == Some(sign_type)
    }

    /// The client certificate, when configured.
    pub fn client_certificate(&self) -> Option<&ClientCertificate> {
        self.credentials.client_certificate.as_ref()
    }

    /// The host of the mutual-TLS routes.
    pub fn secapi_base_url(&self) -> &str {
        self.credentials
            .secapi_base_url
            .as_deref()
            .unwrap_or(self.base_url())
    }
}

impl PayConfigBuilder {
    /// The signature algorithm for requests, the page's `paySign`, replies and notifications
    /// (default MD5).
    pub fn sign_type(mut self, sign_type: SignType) -> Self {
        self.config.credentials.sign_type = sign_type;
        self
    }

    /// Also accepts payment notifications signed with `sign_type`, for a merchant moving from
    /// one algorithm to the other while orders placed with the old one are still being paid.
    /// Without it, a notification signed otherwise than [`sign_type`](Self::sign_type) is
    /// refused.
    pub fn also_accept_notification_sign_type(mut self, sign_type: SignType) -> Self {
        self.config.credentials.also_accepted_sign_type = Some(sign_type);
        self
    }

    /// A separate host for the mutual-TLS `/secapi/…` routes (refunds); by default the Pay host.
    /// A simulator serves them on its own TLS port.
    pub fn secapi_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.config.credentials.secapi_base_url =
            Some(base_url.into().trim_end_matches('/').to_owned());
        self
    }

    /// The merchant API client certificate, required for refunds.
    pub fn client_certificate(mut self, certificate: ClientCertificate) -> Self {
        self.config.credentials.client_certificate = Some(certificate);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_pay_hosts_are_only_for_loopback() {
        let base = |url: &str| {
            PayConfig::builder(
                "1900000109",
                "wx1234567890abcdef",
                "192006250b4c09247ec02edce69f6a2d",
                "https://x.example/notify",
            )
            .base_url(url)
            .build()
        };
        for ok in [
            "https://api.mch.weixin.qq.com",
            "http://127.0.0.1:9000",
            "http://localhost:9000",
            "http://[::1]:9000",
        ] {
            assert!(base(ok).is_ok(), "{ok}");
        }
        let err = base("http://api.mch.weixin.qq.com").unwrap_err();
        assert_eq!(err.setting(), "PayConfigBuilder::base_url");
        assert!(err.problem().contains("https"), "{err}");
        let secapi = PayConfig::builder(
            "1900000109",
            "wx1234567890abcdef",
            "192006250b4c09247ec02edce69f6a2d",
            "https://x.example/notify",
        )
        .secapi_base_url("http://10.0.0.7:8443")
        .build();
        assert!(secapi.is_err());
    }

    /// A self-signed certificate and its PKCS#8 key, DER.
    fn cert_and_key() -> (Vec<u8>, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["1900000109".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.der().to_vec(), key.serialize_der())
    }

    #[test]
    fn pkcs12_is_read_with_the_merchant_id_as_password() {
        let (cert, key) = cert_and_key();
        let p12 = p12::PFX::new(&cert, &key, None, "1900000109", "Tenpay Certificate")
            .unwrap()
            .to_der();
        let loaded = ClientCertificate::from_pkcs12(&p12, "1900000109").unwrap();
        // The same certificate, as PEM, in front of the key; and reqwest accepts it.
        let pem = String::from_utf8(loaded.pem.clone()).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"), "{pem}");
        assert!(pem.contains("-----BEGIN PRIVATE KEY-----\n"));
        let der = rustls_pemfile::certs(&mut pem.as_bytes())
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(der.as_ref(), &cert[..]);
        loaded.identity().unwrap();
        assert_eq!(format!("{loaded:?}"), "ClientCertificate([redacted])");
    }

    #[test]
    fn pkcs12_errors_are_clear_and_never_echo_the_password() {
        let (cert, key) = cert_and_key();
        let p12 = p12::PFX::new(&cert, &key, None, "1900000109", "x")
            .unwrap()
            .to_der();
        let err = ClientCertificate::from_pkcs12(&p12, "wrong-pass-123")
            .unwrap_err()
            .to_string();
        assert!(err.contains("password is wrong"), "{err}");
        assert!(!err.contains("wrong-pass-123"), "{err}");
        let err = ClientCertificate::from_pkcs12(b"-----BEGIN CERTIFICATE-----", "1900000109")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a PKCS#12"), "{err}");
    }

    fn config() -> PayConfigBuilder {
        PayConfig::builder(
            "1900000109",
            "wx1234567890abcdef",
            "192006250b4c09247ec02edce69f6a2d",
            "https://x.example/notify",
        )
    }

    #[test]
    fn validation_messages() {
        assert!(config().build().is_ok());
        let err = PayConfig::builder("1", "wx1", "short", "https://x.example/n")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("32-character"), "{err}");
        let err = PayConfig::builder(
            "1",
            "wx1",
            "192006250b4c09247ec02edce69f6a2d",
            "https://x.example/n?a=1",
        )
        .build()
        .unwrap_err();
        assert!(err.to_string().contains("query"), "{err}");
        assert!(config().base_url("api.mch.weixin.qq.com").build().is_err());
        assert!(
            PayConfig::builder(
                "",
                "wx1",
                "192006250b4c09247ec02edce69f6a2d",
                "https://x.example/n"
            )
            .build()
            .is_err()
        );
    }

    #[test]
    fn debug_hides_key_and_certificate() {
        let shown = format!("{:?}", config());
        assert!(!shown.contains("192006250b4c"), "{shown}");
        assert!(shown.contains("PayApiKey([redacted])"), "{shown}");
        assert!(ClientCertificate::from_pem(b"nothing", b"nothing").is_err());
    }

    #[test]
    fn secapi_defaults_to_the_pay_host() {
        let b = config().base_url("http://127.0.0.1:1/");
        let c = b.clone().build().unwrap();
        assert_eq!(c.base_url(), "http://127.0.0.1:1");
        assert_eq!(c.secapi_base_url(), "http://127.0.0.1:1");
        let c = b.secapi_base_url("https://127.0.0.1:2").build().unwrap();
        assert_eq!(c.secapi_base_url(), "https://127.0.0.1:2");
    }
}
