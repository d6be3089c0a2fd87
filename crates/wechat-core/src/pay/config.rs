//! A WeChat Pay merchant's configuration, written once for both API versions: the settings every
//! merchant has (merchant id, app id, notify URLs, WeChat Pay's host, timeouts, extra root
//! certificates, the clock) and the version's credentials.
//!
//! Users name it through their version, [`v2::PayConfig`](super::v2::PayConfig) or
//! [`v3::PayConfig`](super::v3::PayConfig), each a [`PayConfig`] over that version's
//! [`Credentials`]; both are made by `PayConfig::builder(..)…build()`, with the same setters
//! for what they share and one check of each setting.

use std::time::Duration;

use crate::clock::SharedClock;
use crate::{AppId, BaseUrls, ConfigError, Error, MchId, Result};

/// The credentials of one WeChat Pay API version: [`v2::Credentials`](super::v2::Credentials)
/// (the API key and sign type) or [`v3::Credentials`](super::v3::Credentials) (the merchant's
/// RSA key, the APIv3 key and how WeChat Pay is verified). Sealed: only those two exist.
pub trait Credentials:
    sealed::Credentials + std::fmt::Debug + Clone + Send + Sync + 'static
{
}

pub(crate) mod sealed {
    use crate::ConfigError;

    /// What [`PayConfigBuilder::build`](super::PayConfigBuilder::build) asks of the credentials.
    pub trait Credentials {
        /// Checks the credentials, with a [`ConfigError`] naming the setting that is wrong.
        fn validate(&self) -> Result<(), ConfigError>;
        /// Checks the version's own URLs (after the shared ones).
        fn validate_urls(&self) -> Result<(), ConfigError> {
            Ok(())
        }
    }
}

/// A WeChat Pay merchant's configuration for one API version: what both versions share, and the
/// version's [`Credentials`]. Made by the version's `PayConfig::builder` and
/// [`PayConfigBuilder::build`], which checks every setting.
///
/// # Security
/// `Debug` never shows a key: the credentials' secrets print as `[redacted]`.
#[derive(Debug, Clone)]
pub struct PayConfig<C> {
    mch_id: MchId,
    appid: AppId,
    notify_url: String,
    refund_notify_url: Option<String>,
    base_url: String,
    root_certificates: Vec<Vec<u8>>,
    timeout: Duration,
    connect_timeout: Duration,
    clock: SharedClock,
    pub(crate) credentials: C,
}

impl<C: Credentials> PayConfig<C> {
    /// A builder with WeChat Pay's production host, a 10 s timeout, a 5 s connect timeout and
    /// the system clock; the version's `PayConfig::builder` calls it.
    pub(crate) fn builder_with(
        mch_id: MchId,
        appid: AppId,
        notify_url: String,
        credentials: C,
    ) -> PayConfigBuilder<C> {
        PayConfigBuilder {
            config: Self {
                mch_id,
                appid,
                notify_url,
                refund_notify_url: None,
                base_url: BaseUrls::wechat().pay,
                root_certificates: Vec::new(),
                timeout: Duration::from_secs(10),
                connect_timeout: Duration::from_secs(5),
                clock: crate::clock::system(),
                credentials,
            },
        }
    }

    /// The merchant id.
    pub fn mch_id(&self) -> &MchId {
        &self.mch_id
    }

    /// The app id bound to the merchant, that orders are placed with.
    pub fn appid(&self) -> &AppId {
        &self.appid
    }

    /// The payment notification URL.
    pub fn notify_url(&self) -> &str {
        &self.notify_url
    }

    /// The refund notification URL, when configured.
    pub fn refund_notify_url(&self) -> Option<&str> {
        self.refund_notify_url.as_deref()
    }

    /// WeChat Pay's base URL (`https://api.mch.weixin.qq.com` in production).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The timeout of each request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The clock of request timestamps, the page's `timeStamp` and signature freshness checks.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The version's credentials.
    pub fn credentials(&self) -> &C {
        &self.credentials
    }

    /// A reqwest client builder for calls to WeChat Pay: no redirects, the timeouts, a
    /// `User-Agent` naming the library, and the extra root certificates.
    pub(crate) fn http_client_builder(&self) -> Result<reqwest::ClientBuilder> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .user_agent(USER_AGENT);
        for pem in &self.root_certificates {
            let certificate = reqwest::Certificate::from_pem(pem).map_err(|e| {
                Error::config(
                    "PayConfigBuilder::root_certificate_pem",
                    format!("cannot read a root certificate PEM: {e}"),
                )
            })?;
            builder = builder.add_root_certificate(certificate);
        }
        Ok(builder)
    }

    /// The HTTP client of [`PayClient::new`](super::v3::PayClient::new) (both versions).
    pub(crate) fn http_client(&self) -> Result<reqwest::Client> {
        self.http_client_builder()?.build().map_err(|e| {
            Error::config(
                "PayClient::new",
                format!("cannot build the HTTP client: {}", e.without_url()),
            )
        })
    }

    fn validate(&self) -> std::result::Result<(), ConfigError> {
        if self.mch_id.as_str().is_empty() {
            return Err(ConfigError::new(
                "PayConfig::builder(mch_id)",
                "the WeChat Pay merchant id (mch_id) is empty",
            ));
        }
        if self.appid.as_str().is_empty() {
            return Err(ConfigError::new(
                "PayConfig::builder(appid)",
                "the app id bound to the merchant is empty",
            ));
        }
        self.credentials.validate()?;
        check_url(
            "PayConfig::builder(notify_url)",
            "notify_url",
            &self.notify_url,
            true,
        )?;
        if let Some(url) = &self.refund_notify_url {
            check_url(
                "PayConfigBuilder::refund_notify_url",
                "refund notify_url",
                url,
                true,
            )?;
        }
        check_url(
            "PayConfigBuilder::base_url",
            "Pay base URL",
            &self.base_url,
            false,
        )?;
        self.credentials.validate_urls()
    }
}

/// Builds a [`PayConfig`]: every setter takes its value and never fails,
/// [`build`](Self::build) checks them all. The setters here are the ones both versions share;
/// each version adds its own (the v2 sign type and client certificate, the v3 WeChat Pay public
/// key and platform certificates).
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build() is called"]
pub struct PayConfigBuilder<C> {
    pub(crate) config: PayConfig<C>,
}

impl<C: Credentials> PayConfigBuilder<C> {
    /// Takes WeChat Pay's base URL from `base_urls.pay` (a `wechat-sim`, a proxy).
    pub fn base_urls(self, base_urls: &BaseUrls) -> Self {
        self.base_url(base_urls.pay.as_str())
    }

    /// WeChat Pay's base URL, e.g. `https://api.mch.weixin.qq.com` (a trailing slash is
    /// dropped); a simulator's in tests.
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.config.base_url = base_url.into().trim_end_matches('/').to_owned();
        self
    }

    /// Where WeChat Pay posts refund notifications (sent as each refund's `notify_url`);
    /// without it, the one set on the merchant platform, if any.
    pub fn refund_notify_url(mut self, url: impl Into<String>) -> Self {
        self.config.refund_notify_url = Some(url.into());
        self
    }

    /// Trusts one more root certificate (PEM) for the HTTPS connection to WeChat Pay, e.g. a
    /// test simulator's.
    pub fn root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.config.root_certificates.push(pem.into());
        self
    }

    /// The total timeout of one HTTP request (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }

    /// The connect timeout (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// The clock of timestamps, the page's `timeStamp` and freshness checks (default the
    /// system clock; tests use a [`ManualClock`](crate::clock::ManualClock)).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.config.clock = clock;
        self
    }

    /// Checks every setting and finishes the configuration.
    ///
    /// # Errors
    /// [`ConfigError`] naming the setting: an empty merchant id or app id; a key of the wrong
    /// shape (v2: the API key is not 32 ASCII characters; v3: the APIv3 key is not 32 bytes, or
    /// nothing says how WeChat Pay is verified); a notify URL that is not absolute http(s) or
    /// has a query string; a base URL that is not https (plain http only on a loopback address,
    /// for a local simulator).
    pub fn build(self) -> std::result::Result<PayConfig<C>, ConfigError> {
        self.config.validate()?;
        Ok(self.config)
    }
}

/// The `User-Agent` of WeChat Pay calls (WeChat Pay may refuse requests without one).
pub(crate) const USER_AGENT: &str = concat!("wechat-rs/", env!("CARGO_PKG_VERSION"));

/// Whether the URL's host is `localhost` or a loopback IP address.
fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Checks a URL setting: absolute http(s); a notify URL has no query string (WeChat Pay drops
/// it); a WeChat Pay host is https unless it is on this machine.
pub(crate) fn check_url(
    setting: &'static str,
    what: &str,
    value: &str,
    notify: bool,
) -> std::result::Result<(), ConfigError> {
    let url = url::Url::parse(value)
        .map_err(|e| ConfigError::new(setting, format!("{what} {value:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ConfigError::new(
            setting,
            format!("{what} {value:?} must be an absolute http(s) URL"),
        ));
    }
    // A Pay host over plain HTTP would send signed requests, refunds and their answers in the
    // clear: only a simulator on this machine may be reached that way.
    if !notify && url.scheme() == "http" && !is_loopback_host(&url) {
        return Err(ConfigError::new(
            setting,
            format!(
                "{what} {value:?} must be https: plain http is allowed only for a loopback address \
                 (a local wechat-sim such as http://127.0.0.1:9000)"
            ),
        ));
    }
    if notify && url.query().is_some() {
        return Err(ConfigError::new(
            setting,
            format!(
                "{what} {value:?} must not have a query string: WeChat Pay drops it (put data in `attach`)"
            ),
        ));
    }
    Ok(())
}
