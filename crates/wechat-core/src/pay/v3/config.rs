//! The API v3 merchant configuration: credentials, how WeChat Pay is verified, URLs, timeouts.

use std::time::Duration;

use super::{MerchantKey, WechatPayPublicKey};
use crate::clock::SharedClock;
use crate::pay::v2::check_url;
use crate::{ApiV3Key, AppId, BaseUrls, ConfigError, MchId};

/// How often platform certificates are downloaded again by default: WeChat Pay lists a new
/// certificate at least 24 hours before it signs with it and advises polling more often than
/// every 12 hours.
pub const DEFAULT_CERTIFICATE_REFRESH: Duration = Duration::from_secs(6 * 3600);

/// A WeChat Pay API v3 merchant: the merchant id and the app id bound to it, the merchant API
/// private key (with its certificate serial), the APIv3 key, and how replies and
/// notifications from WeChat Pay are verified.
///
/// Each credential comes from the merchant platform (pay.weixin.qq.com, Account center > API
/// security):
/// - the **merchant API certificate** (`apiclient_key.pem`, `apiclient_cert.pem`), made with
///   WeChat Pay's certificate tool; its serial is shown there and is read from
///   `apiclient_cert.pem` by [`MerchantKey::from_pem_with_certificate`];
/// - the **APIv3 key**, 32 characters set by the merchant;
/// - the **WeChat Pay public key** (`pub_key.pem`) and its id `PUB_KEY_ID_…`: what merchants
///   get since 2024, set with [`wechat_pay_public_key`](PayConfigBuilder::wechat_pay_public_key);
///   merchants from before have **platform certificates**, downloaded from `/v3/certificates` by
///   the client ([`platform_certificates`](PayConfigBuilder::platform_certificates)); a merchant
///   switching from one to the other sets both, and each signature's `Wechatpay-Serial` says
///   which key verifies it.
///
/// ```
/// use wechat_core::BaseUrls;
/// use wechat_core::pay::v3::{MerchantKey, PayConfig, WechatPayPublicKey};
///
/// let key = MerchantKey::from_pem(&std::fs::read("tests/vectors/v3/rsa_test_private_key.pem")?, "F5765756002FDD77")?;
/// let wechat_pay = WechatPayPublicKey::from_pem(
///     "PUB_KEY_ID_0119000001092025120100000001",
///     &std::fs::read("tests/vectors/v3/rsa_test_public_key.pem")?,
/// )?;
/// let pay = PayConfig::builder(
///     "1900000109",
///     "wx1234567890abcdef",
///     key,
///     "0123456789abcdefghijABCDEFGHIJ01",
///     "https://shop.example.com/wechat/pay/notify",
/// )
/// .wechat_pay_public_key(wechat_pay)
/// .base_urls(&BaseUrls::all("http://127.0.0.1:9000"))
/// .build()?;
/// assert_eq!(pay.mch_id().as_str(), "1900000109");
/// assert!(!format!("{pay:?}").contains("0123456789abcdef"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct PayConfig {
    mch_id: MchId,
    appid: AppId,
    merchant_key: MerchantKey,
    api_v3_key: ApiV3Key,
    public_key: Option<WechatPayPublicKey>,
    platform_certificates: bool,
    certificate_refresh: Duration,
    notify_url: String,
    refund_notify_url: Option<String>,
    base_url: String,
    root_certificates: Vec<Vec<u8>>,
    timeout: Duration,
    connect_timeout: Duration,
    clock: SharedClock,
}

impl PayConfig {
    /// A merchant with its app id, merchant API key, APIv3 key (32 characters) and the public
    /// URL WeChat Pay posts payment notifications to; WeChat Pay's production host, 10 s timeout.
    /// Say how WeChat Pay is verified with
    /// [`wechat_pay_public_key`](PayConfigBuilder::wechat_pay_public_key) and/or
    /// [`platform_certificates`](PayConfigBuilder::platform_certificates);
    /// [`build`](PayConfigBuilder::build) checks every value.
    pub fn builder(
        mch_id: impl Into<MchId>,
        appid: impl Into<AppId>,
        merchant_key: MerchantKey,
        api_v3_key: impl Into<ApiV3Key>,
        notify_url: impl Into<String>,
    ) -> PayConfigBuilder {
        PayConfigBuilder {
            config: Self {
                mch_id: mch_id.into(),
                appid: appid.into(),
                merchant_key,
                api_v3_key: api_v3_key.into(),
                public_key: None,
                platform_certificates: false,
                certificate_refresh: DEFAULT_CERTIFICATE_REFRESH,
                notify_url: notify_url.into(),
                refund_notify_url: None,
                base_url: BaseUrls::wechat().pay,
                root_certificates: Vec::new(),
                timeout: Duration::from_secs(10),
                connect_timeout: Duration::from_secs(5),
                clock: crate::clock::system(),
            },
        }
    }

    /// The merchant id.
    pub fn mch_id(&self) -> &MchId {
        &self.mch_id
    }

    /// The app id orders are placed with.
    pub fn appid(&self) -> &AppId {
        &self.appid
    }

    /// The merchant API private key that signs requests and `paySign`.
    pub fn merchant_key(&self) -> &MerchantKey {
        &self.merchant_key
    }

    /// The APIv3 key that decrypts notifications and certificates.
    pub fn api_v3_key(&self) -> &ApiV3Key {
        &self.api_v3_key
    }

    /// The WeChat Pay public key, when configured.
    pub fn wechat_pay_public_key(&self) -> Option<&WechatPayPublicKey> {
        self.public_key.as_ref()
    }

    /// Whether platform certificates are downloaded from `/v3/certificates`.
    pub fn uses_platform_certificates(&self) -> bool {
        self.platform_certificates
    }

    /// How often platform certificates are downloaded again.
    pub fn certificate_refresh(&self) -> Duration {
        self.certificate_refresh
    }

    /// The payment notification URL.
    pub fn notify_url(&self) -> &str {
        &self.notify_url
    }

    /// The refund notification URL, when configured.
    pub fn refund_notify_url(&self) -> Option<&str> {
        self.refund_notify_url.as_deref()
    }

    /// The WeChat Pay base URL (`https://api.mch.weixin.qq.com` in production).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The clock of request timestamps, `timeStamp` and the signature freshness check.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    pub(crate) fn root_certificates(&self) -> &[Vec<u8>] {
        &self.root_certificates
    }

    fn validate(&self) -> Result<(), ConfigError> {
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
        if self.api_v3_key.expose_secret().len() != 32 {
            return Err(ConfigError::new(
                "PayConfig::builder(api_v3_key)",
                "the APIv3 key must be the 32 characters set under Account center > API security \
                 > APIv3 key on pay.weixin.qq.com (not the API v2 key's hex, not the AppSecret)",
            ));
        }
        if self.public_key.is_none() && !self.platform_certificates {
            return Err(ConfigError::new(
                "PayConfigBuilder::wechat_pay_public_key",
                "say how WeChat Pay's signatures are verified: the WeChat Pay public key \
                 (pub_key.pem and its PUB_KEY_ID_…, from Account center > API security; what \
                 merchants get since 2024), or platform_certificates() for a merchant that has \
                 platform certificates, or both while switching",
            ));
        }
        if self.certificate_refresh < Duration::from_secs(60) {
            return Err(ConfigError::new(
                "PayConfigBuilder::certificate_refresh",
                "the platform certificate refresh interval must be at least one minute",
            ));
        }
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
        )
    }
}

/// Builds a v3 [`PayConfig`]: every setter takes its value, [`build`](Self::build) checks them
/// all.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build() is called"]
pub struct PayConfigBuilder {
    config: PayConfig,
}

impl PayConfigBuilder {
    /// Verifies WeChat Pay with its public key (`pub_key.pem` and the `PUB_KEY_ID_…` shown
    /// beside it on the merchant platform). Requests then carry `Wechatpay-Serial: PUB_KEY_ID_…`
    /// so that WeChat Pay signs its answers with that key.
    pub fn wechat_pay_public_key(mut self, key: WechatPayPublicKey) -> Self {
        self.config.public_key = Some(key);
        self
    }

    /// Verifies WeChat Pay with platform certificates, downloaded from `/v3/certificates`
    /// (decrypted with the APIv3 key, checked, refreshed every
    /// [`certificate_refresh`](Self::certificate_refresh) and when an unknown serial arrives).
    /// With a public key as well, each signature's serial picks the key.
    pub fn platform_certificates(mut self) -> Self {
        self.config.platform_certificates = true;
        self
    }

    /// How often platform certificates are downloaded again (default
    /// [`DEFAULT_CERTIFICATE_REFRESH`], at least a minute).
    pub fn certificate_refresh(mut self, every: Duration) -> Self {
        self.config.certificate_refresh = every;
        self
    }

    /// Takes the Pay base URL from `base_urls.pay`.
    pub fn base_urls(mut self, base_urls: &BaseUrls) -> Self {
        self.config.base_url = base_urls.pay.trim_end_matches('/').to_owned();
        self
    }

    /// Sets the Pay base URL (a simulator's in tests).
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.config.base_url = base_url.into().trim_end_matches('/').to_owned();
        self
    }

    /// The URL refund notifications are posted to (sent as each refund's `notify_url`);
    /// without it WeChat Pay uses the one set on the merchant platform, if any.
    pub fn refund_notify_url(mut self, url: impl Into<String>) -> Self {
        self.config.refund_notify_url = Some(url.into());
        self
    }

    /// Trusts one more root certificate (PEM) for the HTTPS connection to WeChat Pay.
    pub fn root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.config.root_certificates.push(pem.into());
        self
    }

    /// The timeout of each request (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.config.timeout = timeout;
        self
    }

    /// The connect timeout (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// The clock of timestamps and the freshness check (tests use a
    /// [`ManualClock`](crate::clock::ManualClock)).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.config.clock = clock;
        self
    }

    /// Checks the configuration and finishes it.
    ///
    /// # Errors
    /// [`ConfigError`] naming the setting: an empty merchant id or app id, an APIv3 key that is
    /// not 32 bytes, no way to verify WeChat Pay, a notify URL that is not absolute http(s) or
    /// has a query string, a base URL that is not https (plain http only on a loopback
    /// address, for a local simulator).
    pub fn build(self) -> Result<PayConfig, ConfigError> {
        self.config.validate()?;
        Ok(self.config)
    }
}
