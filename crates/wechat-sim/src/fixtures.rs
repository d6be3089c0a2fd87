//! A ready-made world for an app's tests: one Official Account with two users and a WeChat Pay
//! merchant (API v2 and v3), using the example ids of WeChat's documentation; and merchant RSA
//! keys for API v3, made without OpenSSL.
//!
//! ```
//! use wechat_sim::{Simulator, fixtures};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let toml = fixtures::shop_toml(&["127.0.0.1:3000"], None);
//! let sim = Simulator::from_toml_str(&toml)?.start().await?;
//! // The app logs in with fixtures::APPID / fixtures::SECRET; Alice consents by default.
//! # let _ = sim;
//! # Ok(())
//! # }
//! ```

/// The app id of the test Official Account.
pub const APPID: &str = "wx1234567890abcdef";
/// Its AppSecret.
pub const SECRET: &str = "0123456789abcdef0123456789abcdef";
/// The test merchant's id (the one of WeChat Pay's documentation).
pub const MCH_ID: &str = "1900000109";
/// The test merchant's API v2 key (the one of WeChat Pay's documentation).
pub const API_KEY: &str = "192006250b4c09247ec02edce69f6a2d";
/// The test merchant's APIv3 key (32 characters).
pub const APIV3_KEY: &str = "0123456789abcdefghijABCDEFGHIJ01";
/// The id of the simulator's WeChat Pay public key for the test merchant.
pub const PAY_PUBLIC_KEY_ID: &str = "PUB_KEY_ID_0119000001092025120100000001";

/// A merchant API key pair for WeChat Pay v3: what the merchant signs with (`apiclient_key.pem`)
/// and what the simulator verifies with, plus the certificate serial the merchant announces.
/// Its `Debug` hides the private key.
#[derive(Clone)]
pub struct MerchantKeyPair {
    /// The RSA-2048 private key, PKCS#8 PEM (`BEGIN PRIVATE KEY`).
    pub private_key_pem: String,
    /// Its public key, SPKI PEM (`BEGIN PUBLIC KEY`): the simulator's `merchant_public_key`.
    pub public_key_pem: String,
    /// A merchant certificate serial: 40 upper-case hex digits.
    pub serial: String,
}

impl std::fmt::Debug for MerchantKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MerchantKeyPair")
            .field("private_key_pem", &"[redacted]")
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

impl MerchantKeyPair {
    /// A new RSA-2048 key pair and a random serial (pure Rust; takes a moment).
    ///
    /// # Panics
    /// When the operating system's random number generator fails.
    pub fn generate() -> Self {
        let (private_key_pem, public_key_pem) = crate::pay::v3::keys::generate_pems()
            .unwrap_or_else(|e| panic!("cannot generate an RSA key: {e}"));
        let serial = (0..20)
            .map(|_| format!("{:02X}", rand::random::<u8>()))
            .collect();
        Self {
            private_key_pem,
            public_key_pem,
            serial,
        }
    }

    /// One key pair shared by the whole process (generated on first use), so that tests do
    /// not each pay for RSA key generation.
    pub fn shared() -> &'static MerchantKeyPair {
        static SHARED: std::sync::OnceLock<MerchantKeyPair> = std::sync::OnceLock::new();
        SHARED.get_or_init(Self::generate)
    }
}

/// A `[[merchants]]` block for a v2 + v3 merchant: [`MCH_ID`], appids `[`[`APPID`]`]`,
/// [`API_KEY`], [`APIV3_KEY`], the serial and inline public key of `keys`,
/// [`PAY_PUBLIC_KEY_ID`], notifications retried 1,000 times faster than WeChat does, and a
/// platform certificate when `platform_certificate`. The simulator generates its WeChat Pay key.
pub fn v3_merchant_toml(keys: &MerchantKeyPair, platform_certificate: bool) -> String {
    format!(
        r#"[[merchants]]
mch_id = "{MCH_ID}"
api_key = "{API_KEY}"
appids = ["{APPID}"]
notify_retry_scale = 0.001
apiv3_key = "{APIV3_KEY}"
merchant_serial = "{serial}"
merchant_public_key = """
{pem}"""
pay_public_key_id = "{PAY_PUBLIC_KEY_ID}"
platform_certificate = {platform_certificate}
"#,
        serial = keys.serial,
        pem = keys.public_key_pem.trim_end(),
    )
}

/// Alice's openid (the first user: the consent page's default).
pub const ALICE: &str = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M";
/// Bob's openid.
pub const BOB: &str = "oBob000000000000000000000002";

/// Alice's unionid (in [`OAUTH_TOML`]).
pub const ALICE_UNIONID: &str = "o6_bmasdasdsad6_2sgVt7hMZOPfL";
/// The openid of a Moments snapshot-page guest (in [`OAUTH_TOML`]).
pub const GUEST: &str = "oSnapshotGuest0000000000000x";

/// A configuration for login tests, as TOML: the app, allowing OAuth redirects to
/// `127.0.0.1:3000`, with Alice (a full profile and a unionid, consent by default) and a
/// snapshot-page guest ([`GUEST`]), whose code exchange says `is_snapshotuser` and whose
/// `sns/userinfo` fails with 48001.
pub const OAUTH_TOML: &str = r#"[[apps]]
appid = "wx1234567890abcdef"
secret = "0123456789abcdef0123456789abcdef"
oauth_domains = ["127.0.0.1:3000"]

[[users]]
appid = "wx1234567890abcdef"
openid = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
unionid = "o6_bmasdasdsad6_2sgVt7hMZOPfL"
nickname = "Alice"
sex = 2
province = "Guangdong"
city = "Shenzhen"
country = "CN"
headimgurl = "http://127.0.0.1:3000/avatar.png"

[[users]]
appid = "wx1234567890abcdef"
openid = "oSnapshotGuest0000000000000x"
nickname = "Guest"
is_snapshotuser = true
"#;

/// The configuration, as TOML: the app allows OAuth redirects and JS-SDK pages on each of
/// `domains` (`host:port`), users Alice (with an avatar at `{avatar_base}/alice.png` when
/// given) and Bob, and the merchant (API v2 and v3, see [`v3_merchant_toml`], with the
/// [`MerchantKeyPair::shared`] keys), whose notifications are retried 1,000 times faster than
/// WeChat does (so that retry tests take milliseconds).
pub fn shop_toml(domains: &[&str], avatar_base: Option<&str>) -> String {
    let domains = domains
        .iter()
        .map(|d| format!("{d:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let avatar = avatar_base
        .map(|base| format!("headimgurl = {:?}\n", format!("{base}/alice.png")))
        .unwrap_or_default();
    format!(
        r#"[[apps]]
appid = "{APPID}"
secret = "{SECRET}"
oauth_domains = [{domains}]
js_domains = [{domains}]

[[users]]
appid = "{APPID}"
openid = "{ALICE}"
nickname = "Alice"
{avatar}
[[users]]
appid = "{APPID}"
openid = "{BOB}"
nickname = "Bob"

{merchant}"#,
        merchant = v3_merchant_toml(MerchantKeyPair::shared(), false),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimConfig;

    #[test]
    fn the_shop_config_is_valid() {
        let config =
            SimConfig::from_toml_str(&shop_toml(&["127.0.0.1:3000"], Some("http://x"))).unwrap();
        assert_eq!(config.apps[0].oauth_domains, ["127.0.0.1:3000"]);
        assert_eq!(config.users[0].headimgurl, "http://x/alice.png");
        assert_eq!(config.users[1].effective_openid(), BOB);
        assert_eq!(config.merchants.len(), 1);
        assert!(config.merchants[0].has_v2() && config.merchants[0].has_v3());
        let keys = MerchantKeyPair::shared();
        assert_eq!(keys.serial.len(), 40);
        assert!(
            keys.private_key_pem
                .starts_with("-----BEGIN PRIVATE KEY-----")
        );
        assert!(
            keys.public_key_pem
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
        assert!(!format!("{keys:?}").contains("PRIVATE"));
        let platform = SimConfig::from_toml_str(&v3_merchant_toml(keys, true)).unwrap();
        assert!(platform.merchants[0].platform_certificate);
        let oauth = SimConfig::from_toml_str(OAUTH_TOML).unwrap();
        assert_eq!(oauth.apps[0].appid, APPID);
        assert_eq!(oauth.users[0].effective_openid(), ALICE);
        assert_eq!(oauth.users[0].unionid.as_deref(), Some(ALICE_UNIONID));
        assert_eq!(oauth.users[1].effective_openid(), GUEST);
    }
}
