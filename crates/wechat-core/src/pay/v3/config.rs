//! The API v3 merchant configuration: credentials, how WeChat Pay is verified, URLs, timeouts.

use std::time::Duration;

use super::{MerchantKey, WechatPayPublicKey};
use crate::{ApiV3Key, AppId, ConfigError, MchId};

/// How often platform certificates are downloaded again by default: WeChat Pay lists a new
/// certificate at least 24 hours before it signs with it and advises polling more often than
/// every 12 hours.
pub const DEFAULT_CERTIFICATE_REFRESH: Duration = Duration::from_secs(6 * 3600);

/// The API v3 credentials of a merchant: the merchant API private key (with its certificate
/// serial), the APIv3 key, and how WeChat Pay's signatures are verified (its public key,
/// platform certificates, or both while switching). Part of a [`PayConfig`]; set through its
/// builder.
///
/// # Security
/// `Debug` shows neither key.
#[derive(Debug, Clone)]
pub struct Credentials {
    merchant_key: MerchantKey,
    api_v3_key: ApiV3Key,
    public_key: Option<WechatPayPublicKey>,
    platform_certificates: bool,
    certificate_refresh: Duration,
}

impl crate::pay::config::Credentials for Credentials {}

impl crate::pay::config::sealed::Credentials for Credentials {
    fn validate(&self) -> Result<(), ConfigError> {
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
        Ok(())
    }
}

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
pub type PayConfig = crate::pay::PayConfig<Credentials>;

/// Builds a v3 [`PayConfig`]: the shared setters of
/// [`pay::PayConfigBuilder`](crate::pay::PayConfigBuilder) and the v3 ones; `build()` checks
/// them all.
pub type PayConfigBuilder = crate::pay::PayConfigBuilder<Credentials>;

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
        Self::builder_with(
            mch_id.into(),
            appid.into(),
            notify_url.into(),
            Credentials {
                merchant_key,
                api_v3_key: api_v3_key.into(),
                public_key: None,
                platform_certificates: false,
                certificate_refresh: DEFAULT_CERTIFICATE_REFRESH,
            },
        )
    }

    /// The merchant API private key that signs requests and `paySign`.
    pub fn merchant_key(&self) -> &MerchantKey {
        &self.credentials.merchant_key
    }

    /// The APIv3 key that decrypts notifications and certificates.
    pub fn api_v3_key(&self) -> &ApiV3Key {
        &self.credentials.api_v3_key
    }

    /// The WeChat Pay public key, when configured.
    pub fn wechat_pay_public_key(&self) -> Option<&WechatPayPublicKey> {
        self.credentials.public_key.as_ref()
    }

    /// Whether platform certificates are downloaded from `/v3/certificates`.
    pub fn uses_platform_certificates(&self) -> bool {
        self.credentials.platform_certificates
    }

    /// How often platform certificates are downloaded again.
    pub fn certificate_refresh(&self) -> Duration {
        self.credentials.certificate_refresh
    }
}

impl PayConfigBuilder {
    /// Verifies WeChat Pay with its public key (`pub_key.pem` and the `PUB_KEY_ID_…` shown
    /// beside it on the merchant platform). Requests then carry `Wechatpay-Serial: PUB_KEY_ID_…`
    /// so that WeChat Pay signs its answers with that key.
    pub fn wechat_pay_public_key(mut self, key: WechatPayPublicKey) -> Self {
        self.config.credentials.public_key = Some(key);
        self
    }

    /// Verifies WeChat Pay with platform certificates, downloaded from `/v3/certificates`
    /// (decrypted with the APIv3 key, checked, refreshed every
    /// [`certificate_refresh`](Self::certificate_refresh) and when an unknown serial arrives).
    /// With a public key as well, each signature's serial picks the key.
    pub fn platform_certificates(mut self) -> Self {
        self.config.credentials.platform_certificates = true;
        self
    }

    /// How often platform certificates are downloaded again (default
    /// [`DEFAULT_CERTIFICATE_REFRESH`], at least a minute).
    pub fn certificate_refresh(mut self, every: Duration) -> Self {
        self.config.credentials.certificate_refresh = every;
        self
    }
}
