//! A ready-made world for an app's tests: one Official Account with two users and a WeChat Pay
//! merchant, using the example ids of WeChat's documentation.
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
/// given) and Bob, and the merchant, whose notifications are retried 1,000 times faster than
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

[[merchants]]
mch_id = "{MCH_ID}"
api_key = "{API_KEY}"
appids = ["{APPID}"]
notify_retry_scale = 0.001
"#
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
        let oauth = SimConfig::from_toml_str(OAUTH_TOML).unwrap();
        assert_eq!(oauth.apps[0].appid, APPID);
        assert_eq!(oauth.users[0].effective_openid(), ALICE);
        assert_eq!(oauth.users[0].unionid.as_deref(), Some(ALICE_UNIONID));
        assert_eq!(oauth.users[1].effective_openid(), GUEST);
    }
}
