//! Shared setup for the integration tests: a simulator on 127.0.0.1 and a bounded client.

#![allow(dead_code, unreachable_pub)]

pub mod v2;
pub mod v3;

use std::time::Duration;

use serde_json::Value;
use wechat_sim::{RunningSim, Simulator, fixtures};

/// How long a test waits for anything (an answer, a notification).
pub const WAIT: Duration = Duration::from_secs(10);
/// The payer in the Pay tests' configurations.
pub const OPENID: &str = "o-alice";

pub const APPID: &str = fixtures::APPID;
pub const SECRET: &str = fixtures::SECRET;
/// An app whose IP whitelist does not contain 127.0.0.1.
pub const LOCKED_APPID: &str = "wxlocked0000000001";
pub const LOCKED_SECRET: &str = "fedcba9876543210fedcba9876543210";
pub const ALICE: &str = fixtures::ALICE;
pub const ALICE_UNIONID: &str = fixtures::ALICE_UNIONID;
pub const CALLBACK: &str = "http://127.0.0.1:3000/wechat/oauth/callback?next=%2Fshop";

pub const CONFIG: &str = r#"
token_ttl_secs = 7200              # lifetime of access tokens and tickets
[[apps]]
appid = "wx1234567890abcdef"
secret = "0123456789abcdef0123456789abcdef"
ip_whitelist = []                  # empty: any caller; otherwise 40164 for others
oauth_domains = ["127.0.0.1:3000"] # where redirect_uri may point
js_domains = ["127.0.0.1:3000"]    # JS-SDK safe domains

[[apps]]
appid = "wxlocked0000000001"
secret = "fedcba9876543210fedcba9876543210"
ip_whitelist = ["10.1.2.3"]
token_daily_quota = 3

[[users]]
appid = "wx1234567890abcdef"
openid = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
unionid = "o6_bmasdasdsad6_2sgVt7hMZOPfL"  # optional
nickname = "Alice"
sex = 2
province = "Guangdong"
city = "Shenzhen"
country = "CN"
headimgurl = "http://127.0.0.1:3000/avatar.png"

[[users]]
appid = "wx1234567890abcdef"
nickname = "Bob"
sex = 1

[[merchants]]
mch_id = "1900000109"
api_key = "192006250b4c09247ec02edce69f6a2d"   # 32 characters
appids = ["wx1234567890abcdef"]
client_ca = ""            # a CA file: /secapi routes are then served over TLS on --tls-listen and require a client certificate it signed; empty: not required
refund_notify_url = ""    # where refund notifications go when a refund request has no notify_url
notify_retry_scale = 1.0  # WeChat's retry schedule multiplied by this (0.001 in tests)
"#;

/// A simulator with [`CONFIG`] on an ephemeral port.
pub async fn start() -> RunningSim {
    Simulator::from_toml_str(CONFIG)
        .expect("the test config is valid")
        .start()
        .await
        .expect("the simulator starts")
}

/// A client with bounded timeouts that does not follow redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(WAIT)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("client builds")
}

/// GET `base + path_and_query`, as JSON.
pub async fn get_json(http: &reqwest::Client, url: String) -> Value {
    http.get(url)
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("JSON reply")
}

/// POST a JSON body, answer as JSON.
pub async fn post_json(http: &reqwest::Client, url: String, body: &Value) -> Value {
    http.post(url)
        .json(body)
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("JSON reply")
}

/// Asserts a WeChat error reply: the code, and an errmsg with the ` rid: ` trailer.
#[track_caller]
pub fn assert_errcode(body: &Value, code: i64) {
    assert_eq!(body["errcode"], code, "unexpected reply {body}");
    let msg = body["errmsg"].as_str().expect("errmsg is a string");
    let rid = msg.rsplit(" rid: ").next().expect("rid trailer");
    assert!(msg.contains(" rid: "), "no rid trailer in {msg:?}");
    let parts: Vec<&str> = rid.split('-').collect();
    assert!(
        parts.len() == 3 && parts.iter().all(|p| p.len() == 8),
        "rid {rid:?} is not like 64eed8de-4cdaca9b-1be8f193"
    );
}

/// A basic access token from `cgi-bin/token`.
pub async fn basic_token(sim: &RunningSim, http: &reqwest::Client) -> String {
    let body = get_json(
        http,
        format!(
            "{}/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}",
            sim.base_url()
        ),
    )
    .await;
    body["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in {body}"))
        .to_owned()
}

/// `cgi-bin/ticket/getticket` with this token.
pub async fn getticket(sim: &RunningSim, http: &reqwest::Client, token: &str) -> Value {
    get_json(
        http,
        format!(
            "{}/cgi-bin/ticket/getticket?access_token={token}&type=jsapi",
            sim.base_url()
        ),
    )
    .await
}

/// `POST /_sim/clock/advance?seconds=N` over HTTP.
pub async fn advance(sim: &RunningSim, http: &reqwest::Client, secs: u64) {
    let res = http
        .post(format!(
            "{}/_sim/clock/advance?seconds={secs}",
            sim.base_url()
        ))
        .send()
        .await
        .expect("request sent");
    assert_eq!(res.status(), 200);
}

/// Waits until the simulator has counted exactly these notification deliveries.
pub async fn wait_for(sim: &RunningSim, sent: u64, acknowledged: u64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let n = sim.stats().notifications;
        if n.sent == sent && n.acknowledged == acknowledged {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stats stuck at {n:?}, want sent {sent} acknowledged {acknowledged}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
