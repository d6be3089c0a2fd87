//! The browser against wechat-sim alone (no demo): its consent page, its JS-SDK script and its
//! pay sheet, on a page served by [`PageServer`]. These pin what the demo scenarios rely on.

use std::collections::BTreeMap;
use std::time::Duration;

use md5::{Digest as _, Md5};
use serde_json::{Value, json};
use sha1::Sha1;
use wechat_browser_tests::{Browser, DEFAULT_WAIT, Result, ensure, run_scenario};
use wechat_sim::{RunningSim, Simulator};

use crate::page_server::PageServer;

const APPID: &str = "wx1234567890abcdef";
const SECRET: &str = "0123456789abcdef0123456789abcdef";
const MCH_ID: &str = "1900000109";
const PAY_KEY: &str = "192006250b4c09247ec02edce69f6a2d";
const OPENID: &str = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M";
/// A Chinese nickname: the consent page must render it (fonts-noto-cjk).
const NICKNAME: &str = "小明 Ming";

/// A simulator whose app accepts the page server's origin for OAuth and the JS-SDK.
async fn sim_for(page: &PageServer) -> RunningSim {
    let authority = page.authority();
    let config = format!(
        r#"
[[apps]]
appid = "{APPID}"
secret = "{SECRET}"
oauth_domains = ["{authority}"]
js_domains = ["{authority}"]
[[users]]
appid = "{APPID}"
openid = "{OPENID}"
nickname = "{NICKNAME}"
[[users]]
appid = "{APPID}"
nickname = "Bob"
[[merchants]]
mch_id = "{MCH_ID}"
api_key = "{PAY_KEY}"
appids = ["{APPID}"]
notify_retry_scale = 0.001
"#
    );
    Simulator::from_toml_str(&config)
        .expect("valid simulator config")
        .start()
        .await
        .expect("simulator starts")
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// The simulator's authorize URL for `snsapi_userinfo`, coming back to `redirect_uri`.
fn authorize_url(sim: &RunningSim, redirect_uri: &str, state: &str) -> String {
    let mut url =
        url::Url::parse(&format!("{}/connect/oauth2/authorize", sim.base_url())).expect("sim URL");
    url.query_pairs_mut()
        .append_pair("appid", APPID)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("scope", "snsapi_userinfo")
        .append_pair("state", state);
    url.set_fragment(Some("wechat_redirect"));
    url.into()
}

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn sim_consent_allow_and_deny() {
    run_scenario("sim-consent", async |browser: &Browser| {
        let page = PageServer::start().await;
        let sim = sim_for(&page).await;
        page.serve(r#"<!doctype html><title>back</title><p id="landed">landed</p>"#.to_owned());
        let callback = format!("{}/cb?next=%2Fshop", page.origin());

        browser.goto(&authorize_url(&sim, &callback, "abc123")).await?;
        browser.wait_for("#sim-consent-allow", DEFAULT_WAIT).await?;
        let text = browser.page_text().await?;
        ensure(text.contains(NICKNAME), || {
            format!("the consent page does not list {NICKNAME:?}: {text}")
        })?;
        browser.save_screenshot("sim-consent-page").await?;

        browser.click("#sim-consent-allow", DEFAULT_WAIT).await?;
        let back = browser
            .wait_for_url(DEFAULT_WAIT, "the callback with a code", |u| {
                u.starts_with(&format!("{}/cb?", page.origin()))
            })
            .await?;
        browser.wait_for("#landed", DEFAULT_WAIT).await?;
        ensure(query_param(&back, "next").as_deref() == Some("/shop"), || {
            format!("the callback lost its own query: {back}")
        })?;
        ensure(query_param(&back, "state").as_deref() == Some("abc123"), || {
            format!("no state=abc123 in {back}")
        })?;
        let code = query_param(&back, "code").unwrap_or_default();
        ensure(!code.is_empty(), || format!("no code in {back}"))?;

        // The code is real: it exchanges for the configured user.
        let token: Value = http()
            .get(format!(
                "{}/sns/oauth2/access_token?appid={APPID}&secret={SECRET}&code={code}&grant_type=authorization_code",
                sim.base_url()
            ))
            .send()
            .await
            .expect("exchange sent")
            .json()
            .await
            .expect("exchange JSON");
        ensure(token["openid"] == json!(OPENID), || {
            format!("the code did not log in {OPENID}: {token}")
        })?;

        browser.goto(&authorize_url(&sim, &callback, "deny42")).await?;
        browser.click("#sim-consent-deny", DEFAULT_WAIT).await?;
        let denied = browser
            .wait_for_url(DEFAULT_WAIT, "the callback without a code", |u| {
                u.starts_with(&format!("{}/cb?", page.origin()))
            })
            .await?;
        ensure(query_param(&denied, "state").as_deref() == Some("deny42"), || {
            format!("no state=deny42 in {denied}")
        })?;
        ensure(query_param(&denied, "code").is_none(), || {
            format!("denying consent still gave a code: {denied}")
        })
    })
    .await;
}

/// The page's `jsapi_ticket`, fetched the way a server does.
async fn jsapi_ticket(sim: &RunningSim) -> String {
    let client = http();
    let token: Value = client
        .get(format!(
            "{}/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}",
            sim.base_url()
        ))
        .send()
        .await
        .expect("token sent")
        .json()
        .await
        .expect("token JSON");
    let access_token = token["access_token"].as_str().expect("access_token");
    let ticket: Value = client
        .get(format!(
            "{}/cgi-bin/ticket/getticket?access_token={access_token}&type=jsapi",
            sim.base_url()
        ))
        .send()
        .await
        .expect("ticket sent")
        .json()
        .await
        .expect("ticket JSON");
    ticket["ticket"].as_str().expect("ticket").to_owned()
}

/// A page that loads the simulator's jweixin script, calls `wx.config` with `signature` and
/// writes `ready` or wx.error's errMsg into `#jssdk-status`.
fn jssdk_page(sim: &RunningSim, timestamp: u64, nonce: &str, signature: &str) -> String {
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>jssdk</title>
<script src="{sim}/open/js/jweixin-1.6.0.js"></script></head>
<body><p id="jssdk-status">pending</p>
<script>
wx.config({{ debug: false, appId: "{APPID}", timestamp: {timestamp}, nonceStr: "{nonce}",
  signature: "{signature}", jsApiList: ["chooseWXPay"] }});
wx.ready(function () {{ document.getElementById("jssdk-status").textContent = "ready"; }});
wx.error(function (e) {{ document.getElementById("jssdk-status").textContent = e.errMsg; }});
</script></body></html>"#,
        sim = sim.base_url()
    )
}

#[tokio::test]
async fn sim_jssdk_ready_with_query_and_fragment() {
    run_scenario("sim-jssdk", async |browser: &Browser| {
        let page = PageServer::start().await;
        let sim = sim_for(&page).await;
        let ticket = jsapi_ticket(&sim).await;
        let (timestamp, nonce) = (1_414_587_457_u64, "Wm3WZYTPz0wzccnW");
        // The signature covers the URL without its #fragment.
        let signed_url = format!("{}/shop?x=1&y=%E4%B8%AD", page.origin());
        let plain = format!(
            "jsapi_ticket={ticket}&noncestr={nonce}&timestamp={timestamp}&url={signed_url}"
        );
        let signature = hex::encode(Sha1::digest(plain.as_bytes()));

        page.serve(jssdk_page(&sim, timestamp, nonce, &signature));
        browser.goto(&format!("{signed_url}#section-2")).await?;
        browser
            .wait_for_text("#jssdk-status", DEFAULT_WAIT, "ready", |t| t == "ready")
            .await?;

        // A wrong signature is refused the way WeChat refuses it.
        page.serve(jssdk_page(&sim, timestamp, nonce, &"0".repeat(40)));
        browser.goto(&signed_url).await?;
        browser
            .wait_for_text("#jssdk-status", DEFAULT_WAIT, "invalid signature", |t| {
                t == "config:invalid signature"
            })
            .await
            .map(|_| ())
    })
    .await;
}

/// WeChat Pay v2's MD5 signature over `fields` (empty values and `sign` skipped).
fn md5_sign(fields: &BTreeMap<String, String>) -> String {
    let mut plain = fields
        .iter()
        .filter(|(k, v)| !v.is_empty() && k.as_str() != "sign")
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    plain.push_str("&key=");
    plain.push_str(PAY_KEY);
    hex::encode_upper(Md5::digest(plain.as_bytes()))
}

/// The text of `<name>` in a flat WeChat Pay XML reply (CDATA or not).
fn xml_field(xml: &str, name: &str) -> Option<String> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    let raw = &xml[start..end];
    Some(
        raw.strip_prefix("<![CDATA[")
            .and_then(|s| s.strip_suffix("]]>"))
            .unwrap_or(raw)
            .to_owned(),
    )
}

/// Places a 1-fen JSAPI order and returns the `getBrandWCPayRequest` parameters for it.
async fn pay_params(sim: &RunningSim, page: &PageServer, out_trade_no: &str) -> Value {
    let mut fields: BTreeMap<String, String> = [
        ("appid", APPID),
        ("mch_id", MCH_ID),
        ("nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"),
        ("body", "浏览器测试 Browser test"),
        ("out_trade_no", out_trade_no),
        ("total_fee", "1"),
        ("spbill_create_ip", "127.0.0.1"),
        ("trade_type", "JSAPI"),
        ("openid", OPENID),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    fields.insert("notify_url".to_owned(), format!("{}/notify", page.origin()));
    let sign = md5_sign(&fields);
    fields.insert("sign".to_owned(), sign);
    let xml = format!(
        "<xml>{}</xml>",
        fields
            .iter()
            .map(|(k, v)| format!("<{k}><![CDATA[{v}]]></{k}>"))
            .collect::<String>()
    );
    let reply = http()
        .post(format!("{}/pay/unifiedorder", sim.base_url()))
        .body(xml)
        .send()
        .await
        .expect("unifiedorder sent")
        .text()
        .await
        .expect("unifiedorder body");
    let prepay_id =
        xml_field(&reply, "prepay_id").unwrap_or_else(|| panic!("no prepay_id: {reply}"));
    let signed: BTreeMap<String, String> = [
        ("appId", APPID.to_owned()),
        ("timeStamp", "1414561699".to_owned()),
        ("nonceStr", "e61463f8efa94090b1f366cccfbbb444".to_owned()),
        ("package", format!("prepay_id={prepay_id}")),
        ("signType", "MD5".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut params = serde_json::to_value(&signed).expect("params JSON");
    params["paySign"] = json!(md5_sign(&signed));
    params
}

/// Clicks `#go` (which invokes `getBrandWCPayRequest`), then `button` on the pay sheet, and
/// returns the `err_msg` the page's callback got.
async fn pay_with(browser: &Browser, button: &str) -> Result<String> {
    browser.click("#go", DEFAULT_WAIT).await?;
    browser.wait_for("#sim-pay-sheet", DEFAULT_WAIT).await?;
    let amount = browser.find("#sim-pay-amount").await?.text().await?;
    ensure(amount == "¥0.01", || {
        format!("the pay sheet shows {amount:?}, not ¥0.01")
    })?;
    browser.click(button, DEFAULT_WAIT).await?;
    browser
        .wait_for_text("#result", DEFAULT_WAIT, "the callback's err_msg", |t| {
            t.starts_with("get_brand_wcpay_request:")
        })
        .await
}

#[tokio::test]
async fn sim_pay_sheet_cancel_then_confirm() {
    run_scenario("sim-pay-sheet", async |browser: &Browser| {
        let page = PageServer::start().await;
        let sim = sim_for(&page).await;
        let params = pay_params(&sim, &page, "BROWSER-SIM-1").await;
        page.serve(format!(
            r#"<!doctype html><html><head><meta charset="utf-8"><title>pay</title>
<script src="{sim}/open/js/jweixin-1.6.0.js"></script></head>
<body><button id="go" type="button">pay</button><p id="result"></p>
<script>
document.getElementById("go").addEventListener("click", function () {{
  document.getElementById("result").textContent = "";
  WeixinJSBridge.invoke("getBrandWCPayRequest", {params}, function (res) {{
    document.getElementById("result").textContent = res.err_msg;
  }});
}});
</script></body></html>"#,
            sim = sim.base_url()
        ));
        browser.goto(&format!("{}/pay", page.origin())).await?;

        let cancelled = pay_with(browser, "#sim-pay-cancel").await?;
        ensure(cancelled == "get_brand_wcpay_request:cancel", || {
            format!("cancel gave {cancelled}")
        })?;
        ensure(browser.try_find("#sim-pay-sheet").await?.is_none(), || {
            "the pay sheet stayed after cancel".to_owned()
        })?;
        let order = sim_order(&sim, "BROWSER-SIM-1").await;
        ensure(order["trade_state"] == json!("NOTPAY"), || {
            format!("cancelled, yet the simulator says {}", order["trade_state"])
        })?;

        let paid = pay_with(browser, "#sim-pay-confirm").await?;
        ensure(paid == "get_brand_wcpay_request:ok", || {
            format!("confirm gave {paid}")
        })?;
        let order = sim_order(&sim, "BROWSER-SIM-1").await;
        ensure(order["trade_state"] == json!("SUCCESS"), || {
            format!("confirmed, yet the simulator says {}", order["trade_state"])
        })
    })
    .await;
}

/// The simulator's view of an order.
async fn sim_order(sim: &RunningSim, out_trade_no: &str) -> Value {
    http()
        .get(format!("{}/_sim/pay/orders/{out_trade_no}", sim.base_url()))
        .send()
        .await
        .expect("order sent")
        .json()
        .await
        .expect("order JSON")
}
