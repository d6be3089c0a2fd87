//! The embedded wechat-sim that the demos start when no `WECHAT_APPID` is configured.
//!
//! The generated configuration has one Official Account whose OAuth and JS-SDK domain is the
//! demo's own `host:port`, two users ([`USERS`]; the consent page lets you choose who you are),
//! and a merchant bound to the app, with API v2 and v3: its merchant API key pair is generated
//! when the demo starts ([`wechat_sim::fixtures::MerchantKeyPair::shared`]), the simulator
//! generates its WeChat Pay key, and the demo configures itself from both. Identifiers are
//! fixed, so openids (and thus who owns which order in the database) are the same on every run.

use wechat_sim::fixtures::MerchantKeyPair;
use wechat_sim::{
    AppConfig, AppKind, MerchantConfig, RunningSim, SimConfig, Simulator, UserConfig,
};

use crate::{DemoError, Result};

/// The embedded simulator's Official Account.
pub const SIM_APPID: &str = "wxde0000000000de01";
/// Its AppSecret (a public test value: the simulator is local).
pub const SIM_SECRET: &str = "de30de30de30de30de30de30de30de30";
/// The simulated merchant.
pub const SIM_MCH_ID: &str = "1900000109";
/// The simulated merchant's API v2 key (32 characters).
pub const SIM_PAY_KEY: &str = "demoshopdemoshopdemoshopdemoshop";
/// The simulated merchant's APIv3 key (32 characters).
pub const SIM_APIV3_KEY: &str = "demoshopV3demoshopV3demoshopV3ab";
/// The id of the embedded simulator's WeChat Pay public key.
pub const SIM_PAY_PUBLIC_KEY_ID: &str = "PUB_KEY_ID_0119000001092025120100000109";

/// A user of the embedded simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimUser {
    /// The nickname `sns/userinfo` returns.
    pub nickname: &'static str,
    /// The unionid.
    pub unionid: &'static str,
    /// The avatar, a path of the demo's assets (the simulator serves no images).
    pub avatar_path: &'static str,
    /// 1 male, 2 female.
    pub sex: u8,
    /// Province.
    pub province: &'static str,
    /// City.
    pub city: &'static str,
}

impl SimUser {
    /// The user's openid for [`SIM_APPID`] (derived, stable across runs).
    pub fn openid(&self) -> String {
        wechat_sim::derive_openid(SIM_APPID, self.nickname)
    }
}

/// The embedded simulator's users; the first is preselected on the consent page.
pub const USERS: [SimUser; 2] = [
    SimUser {
        nickname: "微信用户小明",
        unionid: "o6_bmasdemo_xiaoming_union01",
        avatar_path: "/assets/avatar-xiaoming.svg",
        sex: 1,
        province: "广东",
        city: "深圳",
    },
    SimUser {
        nickname: "小红 Hong",
        unionid: "o6_bmasdemo_xiaohong_union02",
        avatar_path: "/assets/avatar-xiaohong.svg",
        sex: 2,
        province: "浙江",
        city: "杭州",
    },
];

/// The simulator configuration for a demo reachable at `public_url` (an origin such as
/// `http://127.0.0.1:3000`): the app's OAuth and JS-SDK domain is its `host[:port]`, avatars
/// point at the demo's assets.
///
/// # Errors
/// [`DemoError::Config`] when `public_url` is not an http(s) origin.
pub fn sim_config(public_url: &str) -> Result<SimConfig> {
    let domain = domain_of(public_url)?;
    let merchant = MerchantKeyPair::shared();
    let origin = public_url.trim_end_matches('/');
    Ok(SimConfig {
        token_ttl_secs: 7200,
        server: wechat_sim::ServerConfig::default(),
        apps: vec![AppConfig {
            appid: SIM_APPID.to_owned(),
            secret: SIM_SECRET.to_owned(),
            ip_whitelist: Vec::new(),
            oauth_domains: vec![domain.clone()],
            js_domains: vec![domain],
            token_daily_quota: 2000,
            kind: AppKind::OfficialAccount,
        }],
        users: USERS
            .iter()
            .map(|user| UserConfig {
                appid: SIM_APPID.to_owned(),
                openid: Some(user.openid()),
                unionid: Some(user.unionid.to_owned()),
                nickname: user.nickname.to_owned(),
                sex: user.sex,
                province: user.province.to_owned(),
                city: user.city.to_owned(),
                country: "中国".to_owned(),
                headimgurl: format!("{origin}{}", user.avatar_path),
                is_snapshotuser: false,
            })
            .collect(),
        merchants: vec![MerchantConfig {
            mch_id: SIM_MCH_ID.to_owned(),
            api_key: SIM_PAY_KEY.to_owned(),
            appids: vec![SIM_APPID.to_owned()],
            client_ca: String::new(),
            refund_notify_url: String::new(),
            notify_retry_scale: 1.0,
            apiv3_key: SIM_APIV3_KEY.to_owned(),
            merchant_serial: merchant.serial.clone(),
            merchant_public_key: merchant.public_key_pem.clone(),
            pay_public_key_id: SIM_PAY_PUBLIC_KEY_ID.to_owned(),
            ..MerchantConfig::default()
        }],
    })
}

/// Starts the simulator for a demo at `public_url` on an ephemeral port of 127.0.0.1.
///
/// # Errors
/// [`DemoError::Config`] for a bad `public_url`, [`DemoError::Sim`] when the generated
/// configuration is invalid, [`DemoError::Io`] when no port can be bound.
pub async fn start_sim(public_url: &str) -> Result<RunningSim> {
    let config = sim_config(public_url)?;
    config.validate()?;
    Simulator::new(config)
        .start()
        .await
        .map_err(|e| DemoError::io("cannot start the embedded wechat-sim on 127.0.0.1", e))
}

/// `host` or `host:port` (port when not the scheme's default), as WeChat's domain settings
/// spell it.
pub fn domain_of(origin: &str) -> Result<String> {
    let url = url::Url::parse(origin)
        .map_err(|e| DemoError::Config(format!("public URL {origin:?}: {e}")))?;
    let host = url
        .host_str()
        .ok_or_else(|| DemoError::Config(format!("public URL {origin:?} has no host")))?;
    Ok(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_config_is_valid_and_names_the_demo() {
        let config = sim_config("http://127.0.0.1:3456").unwrap();
        config.validate().unwrap();
        assert_eq!(config.apps[0].oauth_domains, ["127.0.0.1:3456"]);
        assert_eq!(config.apps[0].js_domains, ["127.0.0.1:3456"]);
        assert_eq!(config.users[0].nickname, "微信用户小明");
        assert_eq!(
            config.users[0].headimgurl,
            "http://127.0.0.1:3456/assets/avatar-xiaoming.svg"
        );
        assert_eq!(config.merchants[0].appids, [SIM_APPID]);
        assert_eq!(SIM_PAY_KEY.len(), 32);
        assert_ne!(USERS[0].openid(), USERS[1].openid());
        assert_eq!(USERS[0].openid().len(), 28);
    }

    /// `sim.toml` (for a separately started simulator) is the generated configuration for
    /// `http://127.0.0.1:3000`.
    #[test]
    fn the_shipped_sim_toml_matches_the_embedded_config() {
        let mut shipped = SimConfig::from_toml_str(include_str!("../sim.toml")).unwrap();
        for user in &mut shipped.users {
            user.openid = Some(user.effective_openid());
        }
        let mut generated = sim_config("http://127.0.0.1:3000").unwrap();
        // The shipped file is for API v2 (WECHAT_PAY_VERSION=v2): the v3 merchant key is
        // generated when the embedded simulator starts.
        let merchant = &mut generated.merchants[0];
        assert_eq!(merchant.apiv3_key, SIM_APIV3_KEY);
        assert!(
            merchant
                .merchant_public_key
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
        merchant.apiv3_key.clear();
        merchant.merchant_serial.clear();
        merchant.merchant_public_key.clear();
        merchant.pay_public_key_id.clear();
        assert_eq!(format!("{shipped:?}"), format!("{generated:?}"));
        // Debug redacts the keys: compare them too.
        assert_eq!(shipped.apps[0].secret, generated.apps[0].secret);
        assert_eq!(shipped.merchants[0].api_key, generated.merchants[0].api_key);
    }

    #[test]
    fn domains_drop_default_ports() {
        assert_eq!(
            domain_of("https://shop.example.com").unwrap(),
            "shop.example.com"
        );
        assert_eq!(
            domain_of("http://shop.example.com:80").unwrap(),
            "shop.example.com"
        );
        assert_eq!(domain_of("http://[::1]:8080").unwrap(), "[::1]:8080");
        assert!(domain_of("not a url").is_err());
    }
}
