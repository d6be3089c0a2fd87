//! The inputs every benchmark shares: one app, one merchant, a typical 12-field `unifiedorder`,
//! a signed payment notification, a JS-SDK page and a session cookie; [`v3`] holds the WeChat Pay
//! API v3 inputs.
//!
//! The same values feed the criterion benchmarks, the load benchmark, the stampede and the
//! side-by-side with wechatpy (`pay-ops --dump-inputs` hands them to the Python side), so that
//! every figure in BENCHMARKS.md is measured on the same data.

pub mod v3;

use std::time::Duration;

use wechat_core::login::{LoginConfig, LoginFlow};
use wechat_core::oauth::OAuthClient;
use wechat_core::pay::v2::{PayConfig, PayFields, SignType, sign_pay_fields};
use wechat_core::session::{SessionKeys, SessionUser};
use wechat_core::{AppId, BaseUrls, Config, JsapiTicket, OpenId, PayApiKey};

/// The benchmark app's id.
pub const APPID: &str = "wx1234567890abcdef";
/// The benchmark app's secret.
pub const SECRET: &str = "0123456789abcdef0123456789abcdef";
/// The benchmark merchant.
pub const MCH_ID: &str = "1900000109";
/// The merchant's API key (the official test vector's key).
pub const PAY_KEY: &str = "192006250b4c09247ec02edce69f6a2d";
/// The openid of the logged-in user the load benchmark sends a cookie for.
pub const OPENID: &str = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M";
/// The public origin of the benchmark app (used by the login flow and the JS-SDK domain).
pub const PUBLIC_URL: &str = "https://shop.example.com";
/// The page the JS-SDK benchmarks sign.
pub const JSSDK_PAGE: &str = "https://shop.example.com/pay?item=42&from=timeline";
/// A jsapi_ticket of WeChat's usual length (the official example's).
pub const JSSDK_TICKET: &str =
    "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg";
/// The JS-SDK nonce of the fixed-input benchmarks.
pub const JSSDK_NONCE: &str = "Wm3WZYTPz0wzccnW";
/// The JS-SDK timestamp of the fixed-input benchmarks.
pub const JSSDK_TIMESTAMP: u64 = 1_414_587_457;
/// The session keys (hex) of the login layer in the load benchmark.
pub const SESSION_KEY_HEX: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
/// The order the payment notification pays.
pub const OUT_TRADE_NO: &str = "T20240101001";
/// The amount of that order, in fen.
pub const TOTAL_FEE: u64 = 101;

/// The simulator's configuration: the app (no IP whitelist), one user and the merchant.
pub const SIM_TOML: &str = r#"
token_ttl_secs = 7200
[[apps]]
appid = "wx1234567890abcdef"
secret = "0123456789abcdef0123456789abcdef"
js_domains = ["shop.example.com"]
oauth_domains = ["shop.example.com"]
token_daily_quota = 1000000

[[users]]
appid = "wx1234567890abcdef"
openid = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
nickname = "Alice"

[[merchants]]
mch_id = "1900000109"
api_key = "192006250b4c09247ec02edce69f6a2d"
appids = ["wx1234567890abcdef"]
"#;

/// A typical JSAPI `unifiedorder`: the 12 fields a shop sends (before `sign`), in the order
/// `JsapiOrder::to_request` inserts them, `sign_type` included.
pub fn unified_order_fields(sign_type: SignType) -> [(&'static str, &'static str); 12] {
    [
        ("appid", APPID),
        ("mch_id", MCH_ID),
        ("nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"),
        ("sign_type", sign_type.as_str()),
        ("body", "咖啡店-拿铁 大杯"),
        ("out_trade_no", "20240101123456789012345678901234"),
        ("total_fee", "1888"),
        ("spbill_create_ip", "203.0.113.42"),
        ("notify_url", "https://shop.example.com/wechat/pay/notify"),
        ("trade_type", "JSAPI"),
        ("openid", OPENID),
        ("attach", "table=7&seat=3"),
    ]
}

/// WeChat's `stringSignTemp` for `fields`: the non-empty fields except `sign` sorted by name,
/// `k=v` joined with `&`, then `&key=KEY`. Written naively (it is the baseline, not the code
/// under test).
pub fn canonical_string(fields: &[(&str, &str)], key: &str) -> String {
    let mut sorted: Vec<(&str, &str)> = fields
        .iter()
        .copied()
        .filter(|(k, v)| *k != "sign" && !v.is_empty())
        .collect();
    sorted.sort_unstable();
    let mut out = String::new();
    for (k, v) in sorted {
        out.push_str(k);
        out.push('=');
        out.push_str(v);
        out.push('&');
    }
    out.push_str("key=");
    out.push_str(key);
    out
}

/// The fields of a paid JSAPI order's payment notification (before `sign`).
pub fn notification_fields() -> PayFields {
    [
        ("appid", APPID),
        ("attach", "table=7"),
        ("bank_type", "OTHERS"),
        ("cash_fee", "101"),
        ("fee_type", "CNY"),
        ("is_subscribe", "N"),
        ("mch_id", MCH_ID),
        ("nonce_str", "5d2b6c2a8db53831f7eda20af46e531c"),
        ("openid", OPENID),
        ("out_trade_no", OUT_TRADE_NO),
        ("result_code", "SUCCESS"),
        ("return_code", "SUCCESS"),
        ("time_end", "20240101120005"),
        ("total_fee", "101"),
        ("trade_type", "JSAPI"),
        ("transaction_id", "4200000000202401010000000001"),
    ]
    .into_iter()
    .collect()
}

/// The payment notification WeChat would post for [`OUT_TRADE_NO`]: 16 fields plus `sign`
/// (MD5, WeChat's default), as XML.
pub fn notification_body() -> Vec<u8> {
    signed_notification_body(SignType::Md5)
}

/// The same notification signed with `sign_type` (which, for HMAC-SHA256, it names in
/// `sign_type`, as WeChat does).
pub fn signed_notification_body(sign_type: SignType) -> Vec<u8> {
    let mut fields = notification_fields();
    if sign_type != SignType::Md5 {
        fields.insert("sign_type", sign_type.as_str());
    }
    let sign = sign_pay_fields(&fields, &pay_key(), sign_type);
    fields.insert("sign", sign);
    fields
        .to_xml()
        .expect("the notification's field names are plain XML names")
        .into_bytes()
}

/// The merchant API key.
pub fn pay_key() -> PayApiKey {
    PayApiKey::new(PAY_KEY)
}

/// The merchant's configuration (notifications signed with MD5), pointing at `base_url`.
pub fn pay_config(base_url: &str) -> PayConfig {
    pay_config_signed(base_url, SignType::Md5)
}

/// The merchant's configuration signing with `sign_type`, pointing at `base_url`.
pub fn pay_config_signed(base_url: &str, sign_type: SignType) -> PayConfig {
    PayConfig::builder(
        MCH_ID,
        APPID,
        PAY_KEY,
        "https://shop.example.com/wechat/pay/notify",
    )
    .sign_type(sign_type)
    .base_url(base_url)
    .build()
    .unwrap()
}

/// The app's configuration with every WeChat base URL at `base_url` (the simulator).
pub fn app_config(base_url: &str) -> Config {
    Config::new(APPID, SECRET)
        .with_base_urls(BaseUrls::all(base_url))
        .with_timeout(Duration::from_secs(10))
}

/// The jsapi_ticket of the fixed-input JS-SDK benchmarks.
pub fn jsapi_ticket() -> JsapiTicket {
    JsapiTicket::new(JSSDK_TICKET)
}

/// The app id.
pub fn appid() -> AppId {
    AppId::new(APPID)
}

/// The session keys of the login layer.
pub fn session_keys() -> SessionKeys {
    SessionKeys::from_hex(SESSION_KEY_HEX).expect("a valid 32-byte hex key")
}

/// The login flow of the load benchmark: public URL [`PUBLIC_URL`], WeChat at `base_url`, the
/// notification routes under `/wechat` excluded from login.
///
/// # Errors
/// A configuration error from `wechat-core` (none for these constants).
pub fn login_flow(base_url: &str) -> wechat_core::Result<LoginFlow> {
    let config = app_config(base_url);
    let login = LoginConfig::builder(PUBLIC_URL, session_keys())
        .exclude_notifications("/wechat")
        .build()?;
    Ok(LoginFlow::new(
        OAuthClient::new(&config, reqwest::Client::new()),
        login,
    ))
}

/// A `Cookie` header value (`name=value`) with a valid session of [`OPENID`] for `flow`,
/// valid for a day.
///
/// # Errors
/// A cookie encoding error from `wechat-core` (none for this user).
pub fn session_cookie_header(flow: &LoginFlow) -> wechat_core::Result<String> {
    let cookie = flow.config().session_cookie();
    let user = SessionUser::new(OpenId::new(OPENID), unix_now() + 24 * 3600);
    Ok(format!("{}={}", cookie.name(), cookie.encode(&user)?))
}

/// The current unix time in seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::{Digest, Md5};
    use wechat_core::pay::v2::{verify_pay_fields, verify_payment_notification};

    #[test]
    fn canonical_string_is_wechats_and_matches_the_library_sign() {
        let fields = unified_order_fields(SignType::Md5);
        let s = canonical_string(&fields, PAY_KEY);
        assert!(s.starts_with("appid=wx1234567890abcdef&attach=table=7&seat=3&body="));
        assert!(s.ends_with("&trade_type=JSAPI&key=192006250b4c09247ec02edce69f6a2d"));
        let bare = hex::encode_upper(Md5::digest(s.as_bytes()));
        assert_eq!(sign_pay_fields(fields, &pay_key(), SignType::Md5), bare);
    }

    #[test]
    fn notification_fixture_verifies_and_a_changed_one_does_not() {
        let config = pay_config("http://127.0.0.1:9");
        let body = notification_body();
        let paid = verify_payment_notification(&config, &body).expect("genuine notification");
        assert_eq!(paid.total_fee, TOTAL_FEE);
        let forged = String::from_utf8(body)
            .unwrap()
            .replace("<total_fee>101</total_fee>", "<total_fee>1</total_fee>");
        assert!(verify_payment_notification(&config, forged.as_bytes()).is_err());
        let fields = notification_fields();
        assert!(verify_pay_fields(&fields, &pay_key(), SignType::Md5, "00").is_err());
    }

    #[test]
    fn session_cookie_fixture_is_accepted_by_the_flow() {
        let flow = login_flow("http://127.0.0.1:9").unwrap();
        let header = session_cookie_header(&flow).unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::COOKIE, header.parse().unwrap());
        let user = flow.current_user(&headers).expect("valid session");
        assert_eq!(user.openid.as_str(), OPENID);
    }
}
