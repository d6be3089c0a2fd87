//! A tiny independent WeChat Pay v2 client for the tests: signs, XML, orders, the pay sheet's
//! parameters, and a notify_url that records notifications.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use aes::Aes256;
use aes::cipher::{BlockDecryptMut, KeyInit, block_padding::Pkcs7};
use axum::Router;
use axum::routing::post;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use quick_xml::events::Event;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub use super::{APPID, OPENID, WAIT};

/// The test merchant's API v2 key.
pub const KEY: &str = wechat_sim::fixtures::API_KEY;
/// The test merchant.
pub const MCH: &str = wechat_sim::fixtures::MCH_ID;

pub fn sign(fields: &BTreeMap<String, String>, hmac: bool) -> String {
    let mut text = String::new();
    for (k, v) in fields {
        if k != "sign" && !v.is_empty() {
            text.push_str(&format!("{k}={v}&"));
        }
    }
    text.push_str(&format!("key={KEY}"));
    if hmac {
        let mut mac =
            <Hmac<sha2::Sha256> as Mac>::new_from_slice(KEY.as_bytes()).expect("any key length");
        mac.update(text.as_bytes());
        hex::encode_upper(mac.finalize().into_bytes())
    } else {
        hex::encode_upper(Md5::digest(text.as_bytes()))
    }
}

pub fn verifies(fields: &BTreeMap<String, String>, hmac: bool) -> bool {
    fields.get("sign").is_some_and(|s| *s == sign(fields, hmac))
}

pub fn to_xml(fields: &BTreeMap<String, String>) -> String {
    let mut out = String::from("<xml>");
    for (k, v) in fields {
        out.push_str(&format!("<{k}><![CDATA[{v}]]></{k}>"));
    }
    out + "</xml>"
}

pub fn parse(text: &str) -> BTreeMap<String, String> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut map = BTreeMap::new();
    let mut depth = 0;
    let mut current: Option<String> = None;
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => {
                depth += 1;
                if depth == 2 {
                    let name = String::from_utf8(e.name().as_ref().to_vec()).expect("utf-8");
                    map.insert(name.clone(), String::new());
                    current = Some(name);
                }
            }
            Event::End(_) => {
                depth -= 1;
                if depth < 2 {
                    current = None;
                }
            }
            Event::Text(t) => {
                if let Some(k) = &current {
                    map.get_mut(k)
                        .expect("open field")
                        .push_str(&t.decode().expect("text"));
                }
            }
            Event::CData(t) => {
                if let Some(k) = &current {
                    map.get_mut(k)
                        .expect("open field")
                        .push_str(&t.decode().expect("cdata"));
                }
            }
            Event::GeneralRef(_) => panic!("the simulator escapes with CDATA"),
            Event::Eof => break,
            _ => {}
        }
    }
    map
}

pub fn decrypt_req_info(req_info: &str) -> String {
    let key = hex::encode(Md5::digest(KEY.as_bytes()));
    let data = base64::engine::general_purpose::STANDARD
        .decode(req_info)
        .expect("base64");
    let plain = ecb::Decryptor::<Aes256>::new(key.as_bytes().into())
        .decrypt_padded_vec_mut::<Pkcs7>(&data)
        .expect("decrypts with the merchant key");
    String::from_utf8(plain).expect("utf-8")
}

/// A request body of the test merchant: `fields` plus appid, mch_id, nonce_str, sign_type
/// (HMAC) and sign.
pub fn signed_xml(mut fields: BTreeMap<String, String>, hmac: bool) -> String {
    fields.insert("appid".into(), APPID.into());
    fields.insert("mch_id".into(), MCH.into());
    fields.insert(
        "nonce_str".into(),
        "5K8264ILTKCH16CQ2502SI8ZNMTM67VS".into(),
    );
    if hmac {
        fields.insert("sign_type".into(), "HMAC-SHA256".into());
    }
    let signature = sign(&fields, hmac);
    fields.insert("sign".into(), signature);
    to_xml(&fields)
}

/// POSTs a signed request; the answer, whose sign is checked when `return_code` is SUCCESS.
pub async fn post_xml(
    client: &reqwest::Client,
    url: &str,
    fields: BTreeMap<String, String>,
    hmac: bool,
) -> BTreeMap<String, String> {
    let text = client
        .post(url)
        .body(signed_xml(fields, hmac))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("body");
    let answer = parse(&text);
    if answer["return_code"] == "SUCCESS" {
        assert!(verifies(&answer, hmac), "the answer's sign: {answer:?}");
    }
    answer
}

pub fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The getBrandWCPayRequest parameters, as the shop's page gets them.
pub fn page_params(prepay_id: &str, hmac: bool) -> Value {
    let sign_type = if hmac { "HMAC-SHA256" } else { "MD5" };
    let package = format!("prepay_id={prepay_id}");
    let signed = fields(&[
        ("appId", APPID),
        ("timeStamp", "1414561699"),
        ("nonceStr", "e61463f8efa94090b1f366cccfbbb444"),
        ("package", &package),
        ("signType", sign_type),
    ]);
    let mut params = serde_json::to_value(&signed).expect("json");
    params["paySign"] = json!(sign(&signed, hmac));
    params
}

/// A notify_url on 127.0.0.1 that records bodies and answers the scripted return codes
/// (SUCCESS once the script is exhausted).
pub async fn receiver(script: &[&'static str]) -> (String, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/notify", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::unbounded_channel();
    let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
    let app = Router::new().route(
        "/notify",
        post(move |body: String| {
            let tx = tx.clone();
            let script = Arc::clone(&script);
            async move {
                let _ = tx.send(body);
                let code = script.lock().expect("lock").pop_front().unwrap_or("SUCCESS");
                format!("<xml><return_code><![CDATA[{code}]]></return_code><return_msg><![CDATA[OK]]></return_msg></xml>")
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

pub async fn next(rx: &mut mpsc::UnboundedReceiver<String>) -> BTreeMap<String, String> {
    let body = tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("a notification in time")
        .expect("open");
    parse(&body)
}

pub async fn unified_order(
    client: &reqwest::Client,
    base: &str,
    out_trade_no: &str,
    fee: &str,
    notify_url: &str,
    hmac: bool,
) -> BTreeMap<String, String> {
    post_xml(
        client,
        &format!("{base}/pay/unifiedorder"),
        fields(&[
            ("body", "Demo product"),
            ("out_trade_no", out_trade_no),
            ("total_fee", fee),
            ("spbill_create_ip", "127.0.0.1"),
            ("notify_url", notify_url),
            ("trade_type", "JSAPI"),
            ("openid", OPENID),
        ]),
        hmac,
    )
    .await
}

/// A JSAPI order of `fee` fen for the test payer, paid through the simulated pay sheet.
pub async fn paid_order(
    client: &reqwest::Client,
    base: &str,
    out_trade_no: &str,
    fee: &str,
    notify_url: &str,
) {
    let order = unified_order(client, base, out_trade_no, fee, notify_url, false).await;
    assert_eq!(order["result_code"], "SUCCESS", "{order:?}");
    let paid: Value = client
        .post(format!("{base}/_sim/pay/confirm"))
        .json(&page_params(&order["prepay_id"], false))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(paid["err_msg"], "get_brand_wcpay_request:ok", "{paid}");
}
