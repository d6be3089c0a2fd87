//! The system under test, assembled: the simulator's configuration (one app, one buyer per
//! simulated browser, the merchant with API v2 and v3), the demo shop's settings for each
//! instance (the simulator as WeChat, one database, one Redis, one session key, the balancer's
//! origin as public URL), and the instances themselves (axum or actix-web demo).

use std::net::SocketAddr;
use std::path::PathBuf;

use demo_shop::sim::{
    SIM_APIV3_KEY, SIM_APPID, SIM_MCH_ID, SIM_PAY_KEY, SIM_PAY_PUBLIC_KEY_ID, SIM_SECRET,
};
use demo_shop::{DemoError, PaySettings, PayVersion, Settings, Shop, WeChatSettings};
use wechat_core::BaseUrls;
use wechat_core::pay::v2::SignType;
use wechat_core::pay::v3::{MerchantKey, WechatPayPublicKey};
use wechat_core::session::SessionKeys;
use wechat_sim::fixtures::MerchantKeyPair;
use wechat_sim::{AppConfig, AppKind, MerchantConfig, RunningSim, SimConfig, UserConfig};

/// The v2 merchant API certificate and its key (WeChat Pay's public RSA test vector), so that
/// the library lets the app send `/secapi/pay/refund`. The simulator's merchant has no
/// `client_ca`: it serves refunds on its plain listener and checks no certificate.
pub const V2_CLIENT_CERTIFICATE: &str = concat!(
    include_str!("../../../crates/wechat-core/tests/vectors/v3/rsa_test_certificate.pem"),
    include_str!("../../../crates/wechat-core/tests/vectors/v3/rsa_test_private_key.pem"),
);

/// The nickname of simulated buyer `index` (a user of the simulator's app).
pub fn buyer_nickname(index: usize) -> String {
    format!("Soak buyer {index:03}")
}

/// The openid of simulated buyer `index`.
pub fn buyer_openid(index: usize) -> String {
    wechat_sim::derive_openid(SIM_APPID, &buyer_nickname(index))
}

/// The simulator's configuration: the demo's app (OAuth and JS-SDK domain `domain`, the
/// balancer's `host:port`), `buyers` users, the demo's merchant with API v2 and v3 (its v3 key
/// pair: [`MerchantKeyPair::shared`]), access tokens and tickets that live `token_ttl_secs`,
/// notifications retried on WeChat's schedule × `notify_retry_scale`.
pub fn sim_config(
    buyers: usize,
    domain: &str,
    token_ttl_secs: u64,
    notify_retry_scale: f64,
) -> SimConfig {
    let merchant = MerchantKeyPair::shared();
    SimConfig {
        token_ttl_secs,
        server: wechat_sim::ServerConfig::default(),
        apps: vec![AppConfig {
            appid: SIM_APPID.to_owned(),
            secret: SIM_SECRET.to_owned(),
            ip_whitelist: Vec::new(),
            oauth_domains: vec![domain.to_owned()],
            js_domains: vec![domain.to_owned()],
            token_daily_quota: 2000,
            kind: AppKind::OfficialAccount,
        }],
        users: (0..buyers.max(1))
            .map(|i| UserConfig {
                appid: SIM_APPID.to_owned(),
                openid: Some(buyer_openid(i)),
                unionid: None,
                nickname: buyer_nickname(i),
                sex: 1,
                province: "广东".to_owned(),
                city: "深圳".to_owned(),
                country: "中国".to_owned(),
                headimgurl: String::new(),
                is_snapshotuser: false,
            })
            .collect(),
        merchants: vec![MerchantConfig {
            mch_id: SIM_MCH_ID.to_owned(),
            api_key: SIM_PAY_KEY.to_owned(),
            appids: vec![SIM_APPID.to_owned()],
            client_ca: String::new(),
            refund_notify_url: String::new(),
            notify_retry_scale,
            apiv3_key: SIM_APIV3_KEY.to_owned(),
            merchant_serial: merchant.serial.clone(),
            merchant_public_key: merchant.public_key_pem.clone(),
            pay_public_key_id: SIM_PAY_PUBLIC_KEY_ID.to_owned(),
            ..MerchantConfig::default()
        }],
    }
}

/// What every instance shares.
#[derive(Debug, Clone)]
pub struct Shared {
    /// The Pay API the instances use.
    pub version: PayVersion,
    /// The balancer's origin: every instance's public URL.
    pub public_url: String,
    /// The one SQLite order database.
    pub db_path: PathBuf,
    /// The one Redis.
    pub redis_url: String,
    /// The one session key (a cookie from any instance is valid on all).
    pub session_key: SessionKeys,
    /// v2: the merchant certificate file (see [`V2_CLIENT_CERTIFICATE`]).
    pub v2_certificate: Option<PathBuf>,
}

/// The settings of one instance: listening on an ephemeral port of 127.0.0.1, WeChat = `sim`,
/// everything else from `shared`.
///
/// # Errors
/// When the simulator has no v3 key for the merchant or a key does not load.
pub fn instance_settings(sim: &RunningSim, shared: &Shared) -> Result<Settings, DemoError> {
    let pay = match shared.version {
        PayVersion::V2 => PaySettings::V2 {
            key: SIM_PAY_KEY.into(),
            sign_type: SignType::Md5,
            cert: shared.v2_certificate.clone(),
        },
        PayVersion::V3 => {
            let keys = MerchantKeyPair::shared();
            let (id, pem) = sim.pay_public_key(SIM_MCH_ID).ok_or_else(|| {
                DemoError::Config("the simulator has no v3 key for the merchant".into())
            })?;
            PaySettings::V3 {
                api_v3_key: SIM_APIV3_KEY.into(),
                merchant_key: MerchantKey::from_pem(
                    keys.private_key_pem.as_bytes(),
                    keys.serial.as_str(),
                )?,
                public_key: Some(WechatPayPublicKey::from_pem(id, pem.as_bytes())?),
            }
        }
    };
    let mut settings = Settings::embedded(SocketAddr::from(([127, 0, 0, 1], 0)), &shared.db_path);
    settings.public_url = Some(shared.public_url.clone());
    settings.wechat = Some(WeChatSettings {
        appid: SIM_APPID.into(),
        secret: SIM_SECRET.into(),
        mch_id: SIM_MCH_ID.into(),
        pay,
        base_urls: BaseUrls::all(&sim.base_url()),
    });
    settings.pay_version = shared.version;
    settings.session_key = Some(shared.session_key.clone());
    settings.redis_url = Some(shared.redis_url.clone());
    Ok(settings)
}

/// Which demo an instance runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framework {
    /// `axum-demo` (wechat-tower).
    Axum,
    /// `actix-demo` (wechat-actix).
    Actix,
}

impl Framework {
    /// `axum` or `actix`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Axum => "axum",
            Self::Actix => "actix",
        }
    }

    /// Parses `axum` or `actix`.
    ///
    /// # Errors
    /// A message naming the accepted values.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "axum" => Ok(Self::Axum),
            "actix" => Ok(Self::Actix),
            other => Err(format!("unknown framework {other:?}: axum or actix")),
        }
    }
}

/// One running instance of the demo shop.
#[derive(Debug)]
pub enum Instance {
    /// The axum demo.
    Axum(axum_demo::RunningDemo),
    /// The actix-web demo.
    Actix(actix_demo::RunningDemo),
}

impl Instance {
    /// Starts the demo of `framework` with `settings`, in the current tokio runtime.
    ///
    /// # Errors
    /// The demo's start error.
    pub async fn start(framework: Framework, settings: Settings) -> Result<Self, DemoError> {
        Ok(match framework {
            Framework::Axum => Self::Axum(axum_demo::start(settings).await?),
            Framework::Actix => Self::Actix(actix_demo::start(settings).await?),
        })
    }

    /// Which demo it is.
    pub fn framework(&self) -> Framework {
        match self {
            Self::Axum(_) => Framework::Axum,
            Self::Actix(_) => Framework::Actix,
        }
    }

    /// Its parts (store, Pay client…).
    pub fn shop(&self) -> &Shop {
        match self {
            Self::Axum(demo) => demo.shop(),
            Self::Actix(demo) => demo.shop(),
        }
    }

    /// The address it is bound to (behind the balancer).
    pub fn local_addr(&self) -> SocketAddr {
        match self {
            Self::Axum(demo) => demo.local_addr(),
            Self::Actix(demo) => demo.local_addr(),
        }
    }

    /// Stops it (open requests get at most 5 s).
    pub async fn shutdown(self) {
        match self {
            Self::Axum(demo) => demo.shutdown().await,
            Self::Actix(demo) => demo.shutdown().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulator_config_is_valid() {
        let config = sim_config(3, "127.0.0.1:4000", 60, 0.1);
        config.validate().unwrap();
        assert_eq!(config.users.len(), 3);
        assert_ne!(buyer_openid(1), buyer_openid(2));
        assert_eq!(config.apps[0].oauth_domains, ["127.0.0.1:4000"]);
        assert!(V2_CLIENT_CERTIFICATE.contains("BEGIN CERTIFICATE"));
        assert!(V2_CLIENT_CERTIFICATE.contains("PRIVATE KEY"));
        assert_eq!(Framework::parse("actix").unwrap(), Framework::Actix);
        assert!(Framework::parse("rocket").is_err());
    }
}
