//! The merchant's WeChat Pay configuration.

use std::time::Duration;

use super::SignType;
use crate::{AppId, BaseUrls, Error, MchId, PayApiKey, Result};

/// The merchant API client certificate (`apiclient_cert.pem` + `apiclient_key.pem` from the
/// merchant platform's API security page), presented over mutual TLS to `/secapi/pay/refund`.
///
/// Only PEM is supported. The merchant platform's download contains the PEM files next to
/// `apiclient_cert.p12`; to convert a `.p12` (password = the merchant id):
///
/// ```text
/// openssl pkcs12 -in apiclient_cert.p12 -clcerts -nokeys -out apiclient_cert.pem -passin pass:MCH_ID
/// openssl pkcs12 -in apiclient_cert.p12 -nocerts -nodes -out apiclient_key.pem -passin pass:MCH_ID
/// ```
///
/// (OpenSSL 3 may need `-legacy` for older `.p12` files.)
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
            return Err(Error::Config(
                "the merchant client certificate PEM contains no CERTIFICATE block (apiclient_cert.pem)".into(),
            ));
        }
        match rustls_pemfile::private_key(&mut &key_pem[..]) {
            Ok(Some(_)) => {}
            _ => {
                return Err(Error::Config(
                    "the merchant client key PEM contains no readable PRIVATE KEY block (apiclient_key.pem)".into(),
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

    /// The identity for reqwest.
    pub(crate) fn identity(&self) -> Result<reqwest::Identity> {
        reqwest::Identity::from_pem(&self.pem)
            .map_err(|e| Error::Config(format!("cannot load the merchant client certificate: {e}")))
    }
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientCertificate([redacted])")
    }
}

/// A WeChat Pay merchant (API v2) as used by one Official Account.
///
/// ```
/// use wechat_core::{BaseUrls, PayConfig, SignType};
///
/// let pay = PayConfig::new(
///     "1900000109",
///     "wx1234567890abcdef",
///     "192006250b4c09247ec02edce69f6a2d",
///     "https://shop.example.com/wechat/pay/notify",
/// )
/// .with_sign_type(SignType::HmacSha256)
/// .with_base_urls(&BaseUrls::all("http://127.0.0.1:9000"));
/// assert!(pay.validate().is_ok());
/// assert!(!format!("{pay:?}").contains("192006250b4c"));
/// ```
#[derive(Debug, Clone)]
pub struct PayConfig {
    mch_id: MchId,
    appid: AppId,
    api_key: PayApiKey,
    sign_type: SignType,
    notify_url: String,
    refund_notify_url: Option<String>,
    client_certificate: Option<ClientCertificate>,
    root_certificates: Vec<Vec<u8>>,
    base_url: String,
    secapi_base_url: Option<String>,
    timeout: Duration,
    connect_timeout: Duration,
}

impl PayConfig {
    /// A merchant with its app id, API key (v2, 32 characters: not the AppSecret) and the
    /// public URL WeChat posts payment notifications to. MD5 signing, WeChat's production host,
    /// 10 s timeout.
    pub fn new(
        mch_id: impl Into<MchId>,
        appid: impl Into<AppId>,
        api_key: impl Into<PayApiKey>,
        notify_url: impl Into<String>,
    ) -> Self {
        Self {
            mch_id: mch_id.into(),
            appid: appid.into(),
            api_key: api_key.into(),
            sign_type: SignType::Md5,
            notify_url: notify_url.into(),
            refund_notify_url: None,
            client_certificate: None,
            root_certificates: Vec::new(),
            base_url: BaseUrls::wechat().pay,
            secapi_base_url: None,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// The signature algorithm for requests, the page's `paySign` and replies (default MD5).
    #[must_use]
    pub fn with_sign_type(mut self, sign_type: SignType) -> Self {
        self.sign_type = sign_type;
        self
    }

    /// Takes the Pay host from `base_urls.pay` (a `wechat-sim`, a proxy).
    #[must_use]
    pub fn with_base_urls(mut self, base_urls: &BaseUrls) -> Self {
        self.base_url = base_urls.pay.trim_end_matches('/').to_owned();
        self
    }

    /// The Pay host, e.g. `https://api.mch.weixin.qq.com` (no trailing slash).
    #[must_use]
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into().trim_end_matches('/').to_owned();
        self
    }

    /// A separate host for the mutual-TLS `/secapi/…` routes (refunds); by default the Pay host.
    /// A simulator serves them on its own TLS port.
    #[must_use]
    pub fn with_secapi_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.secapi_base_url = Some(base_url.into().trim_end_matches('/').to_owned());
        self
    }

    /// Where WeChat posts refund notifications (sent as `notify_url` with each refund); by
    /// default the one configured on the merchant platform.
    #[must_use]
    pub fn with_refund_notify_url(mut self, url: impl Into<String>) -> Self {
        self.refund_notify_url = Some(url.into());
        self
    }

    /// The merchant API client certificate, required for refunds.
    #[must_use]
    pub fn with_client_certificate(mut self, certificate: ClientCertificate) -> Self {
        self.client_certificate = Some(certificate);
        self
    }

    /// Trusts one more CA (PEM) for WeChat Pay's server certificate, e.g. a test simulator's.
    #[must_use]
    pub fn with_root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_certificates.push(pem.into());
        self
    }

    /// The total timeout of one HTTP request (default 10 s).
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The connect timeout (default 5 s).
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The merchant id.
    pub fn mch_id(&self) -> &MchId {
        &self.mch_id
    }

    /// The app id the merchant is bound to.
    pub fn appid(&self) -> &AppId {
        &self.appid
    }

    /// The API key.
    pub fn api_key(&self) -> &PayApiKey {
        &self.api_key
    }

    /// The signature algorithm.
    pub fn sign_type(&self) -> SignType {
        self.sign_type
    }

    /// The payment notification URL.
    pub fn notify_url(&self) -> &str {
        &self.notify_url
    }

    /// The refund notification URL, when configured.
    pub fn refund_notify_url(&self) -> Option<&str> {
        self.refund_notify_url.as_deref()
    }

    /// The client certificate, when configured.
    pub fn client_certificate(&self) -> Option<&ClientCertificate> {
        self.client_certificate.as_ref()
    }

    /// The Pay host.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The host of the mutual-TLS routes.
    pub fn secapi_base_url(&self) -> &str {
        self.secapi_base_url.as_deref().unwrap_or(&self.base_url)
    }

    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    pub(crate) fn root_certificates(&self) -> &[Vec<u8>] {
        &self.root_certificates
    }

    /// Checks the configuration the way WeChat would, with messages that say what to fix.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty merchant id or app id, an API key that is not 32 ASCII
    /// characters, a notify URL that is not absolute http(s) or has a query string, or a base URL
    /// that is not absolute http(s).
    pub fn validate(&self) -> Result<()> {
        if self.mch_id.as_str().is_empty() {
            return Err(Error::Config(
                "the WeChat Pay merchant id (mch_id) is empty".into(),
            ));
        }
        if self.appid.as_str().is_empty() {
            return Err(Error::Config(
                "the app id bound to the merchant is empty".into(),
            ));
        }
        let key = self.api_key.expose_secret();
        if key.len() != 32 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::Config(
                "the WeChat Pay API key must be the 32-character API v2 key set under Account center > \
                 API security on pay.weixin.qq.com (not the AppSecret, not the APIv3 key)"
                    .into(),
            ));
        }
        check_url("notify_url", &self.notify_url, true)?;
        if let Some(url) = &self.refund_notify_url {
            check_url("refund notify_url", url, true)?;
        }
        check_url("Pay base URL", &self.base_url, false)?;
        if let Some(url) = &self.secapi_base_url {
            check_url("secapi base URL", url, false)?;
        }
        Ok(())
    }
}

fn check_url(what: &str, value: &str, notify: bool) -> Result<()> {
    let url =
        url::Url::parse(value).map_err(|e| Error::Config(format!("{what} {value:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(Error::Config(format!(
            "{what} {value:?} must be an absolute http(s) URL"
        )));
    }
    if notify && url.query().is_some() {
        return Err(Error::Config(format!(
            "{what} {value:?} must not have a query string: WeChat Pay drops it (put data in `attach`)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> PayConfig {
        PayConfig::new(
            "1900000109",
            "wx1234567890abcdef",
            "192006250b4c09247ec02edce69f6a2d",
            "https://x.example/notify",
        )
    }

    #[test]
    fn validation_messages() {
        assert!(config().validate().is_ok());
        let err = PayConfig::new("1", "wx1", "short", "https://x.example/n")
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("32-character"), "{err}");
        let err = PayConfig::new(
            "1",
            "wx1",
            "192006250b4c09247ec02edce69f6a2d",
            "https://x.example/n?a=1",
        )
        .validate()
        .unwrap_err();
        assert!(err.to_string().contains("query"), "{err}");
        assert!(
            config()
                .with_base_url("api.mch.weixin.qq.com")
                .validate()
                .is_err()
        );
        assert!(
            PayConfig::new(
                "",
                "wx1",
                "192006250b4c09247ec02edce69f6a2d",
                "https://x.example/n"
            )
            .validate()
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
        let c = config().with_base_url("http://127.0.0.1:1/");
        assert_eq!(c.base_url(), "http://127.0.0.1:1");
        assert_eq!(c.secapi_base_url(), "http://127.0.0.1:1");
        let c = c.with_secapi_base_url("https://127.0.0.1:2");
        assert_eq!(c.secapi_base_url(), "https://127.0.0.1:2");
    }
}
