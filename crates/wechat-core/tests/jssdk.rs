//! The JS-SDK signature: URL preparation, and wx.config checked by wechat-sim (the official
//! vector is a unit test of `jssdk`).

use std::time::Duration;

use wechat_core::jssdk::jssdk_page_url;
use wechat_core::token::Tokens;
use wechat_core::{BaseUrls, Config, Error, build_http_client};
use wechat_sim::Simulator;

const SIM_CONFIG: &str = r#"
[[apps]]
appid = "wx1234567890abcdef"
secret = "0123456789abcdef0123456789abcdef"
js_domains = ["127.0.0.1:3000"]
"#;

#[test]
fn the_fragment_is_stripped() {
    assert_eq!(
        jssdk_page_url("http://127.0.0.1:3000/shop?item=1#/cart").unwrap(),
        "http://127.0.0.1:3000/shop?item=1"
    );
    assert_eq!(
        jssdk_page_url("https://example.com#x").unwrap(),
        "https://example.com/"
    );
}

#[test]
fn html_escaped_urls_are_refused() {
    let err =
        jssdk_page_url("http://127.0.0.1:3000/shop?item=1&amp;from=singlemessage").unwrap_err();
    assert!(matches!(err, Error::InvalidPageUrl(_)));
    let message = err.to_string();
    assert!(message.contains("HTML-escaped"), "{message}");
    assert!(message.contains("invalid signature"), "{message}");
    assert!(matches!(
        jssdk_page_url("file:///etc/passwd"),
        Err(Error::InvalidPageUrl(_))
    ));
}

async fn verify(http: &reqwest::Client, base: &str, body: serde_json::Value) -> serde_json::Value {
    http.post(format!("{base}/_sim/jssdk/verify"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_config_is_accepted_by_the_simulator() {
    let sim = Simulator::from_toml_str(SIM_CONFIG)
        .unwrap()
        .start()
        .await
        .unwrap();
    let config = Config::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef")
        .with_base_urls(BaseUrls::all(&sim.base_url()))
        .with_timeout(Duration::from_secs(10));
    let tokens = Tokens::builder(&config, build_http_client(&config).unwrap())
        .build()
        .unwrap();
    let page = "http://127.0.0.1:3000/shop?item=1&from=singlemessage#/cart";
    let wx_config = tokens
        .jssdk_config(
            page,
            &["chooseWXPay", "updateAppMessageShareData"],
            &["wx-open-launch-weapp"],
        )
        .await
        .unwrap();
    assert_eq!(
        wx_config.signed_url(),
        "http://127.0.0.1:3000/shop?item=1&from=singlemessage"
    );
    assert_eq!(wx_config.nonce_str().len(), 16);

    // Exactly what the page passes to wx.config.
    let json = serde_json::to_value(&wx_config).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "debug",
        "appId",
        "timestamp",
        "nonceStr",
        "signature",
        "jsApiList",
        "openTagList",
    ];
    expected.sort_unstable();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, expected);
    assert_eq!(json["debug"], false);
    assert!(json["timestamp"].is_u64());
    assert_eq!(
        json["jsApiList"],
        serde_json::json!(["chooseWXPay", "updateAppMessageShareData"])
    );
    assert_eq!(
        json["openTagList"],
        serde_json::json!(["wx-open-launch-weapp"])
    );

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut body = json.clone();
    body["url"] = page.into(); // location.href, fragment included: WeChat drops it
    let answer = verify(&http, &sim.base_url(), body).await;
    assert_eq!(answer["ok"], true, "{answer}");

    // The same signature for another URL (a lost query) is refused, so the check above means something.
    let mut wrong = json.clone();
    wrong["url"] = "http://127.0.0.1:3000/shop?item=1".into();
    let answer = verify(&http, &sim.base_url(), wrong).await;
    assert_eq!(answer["ok"], false, "{answer}");

    // One ticket fetch serves many pages.
    for n in 0..10 {
        tokens
            .jssdk_config(
                &format!("http://127.0.0.1:3000/p/{n}"),
                &["chooseImage"],
                &[],
            )
            .await
            .unwrap();
    }
    assert_eq!(sim.stats().calls_to("/cgi-bin/ticket/getticket"), 1);
    assert_eq!(sim.stats().calls_to("/cgi-bin/stable_token"), 1);
}
