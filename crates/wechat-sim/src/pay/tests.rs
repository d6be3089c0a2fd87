//! State transitions through the Pay router, in process (no sockets except failed
//! notification attempts to a closed port).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::sign::{self, SignType};
use super::xml;
use crate::config::SimConfig;
use crate::state::Sim;

const KEY: &str = "192006250b4c09247ec02edce69f6a2d";
const MCH: &str = "1900000109";
const APPID: &str = "wx1234567890abcdef";
const OTHER_APPID: &str = "wxbbbbbbbbbbbbbbbb";
const OPENID: &str = "o-alice";
/// Nothing listens there: notification attempts fail at once.
const NOTIFY_URL: &str = "http://127.0.0.1:9/pay/notify";

struct Harness {
    sim: Arc<Sim>,
    app: Router,
}

fn config(extra: &str) -> SimConfig {
    let text = format!(
        r#"
[[apps]]
appid = "{APPID}"
secret = "0123456789abcdef0123456789abcdef"
[[apps]]
appid = "{OTHER_APPID}"
secret = "0123456789abcdef0123456789abcdef"
[[users]]
appid = "{APPID}"
openid = "{OPENID}"
nickname = "Alice"
[[users]]
appid = "{OTHER_APPID}"
openid = "o-bob"
nickname = "Bob"
[[merchants]]
mch_id = "{MCH}"
api_key = "{KEY}"
appids = ["{APPID}"]
{extra}
"#
    );
    SimConfig::from_toml_str(&text).expect("valid config")
}

impl Harness {
    fn new(extra: &str) -> Self {
        let sim = Arc::new(Sim::new(config(extra)));
        let app = super::router().with_state(Arc::clone(&sim));
        Self { sim, app }
    }

    async fn send(&self, path: &str, method: &str, body: Vec<u8>) -> Vec<u8> {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::from(body))
            .expect("request");
        let resp = self.app.clone().oneshot(req).await.expect("infallible");
        axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body")
            .to_vec()
    }

    async fn raw(&self, path: &str, body: Vec<u8>) -> BTreeMap<String, String> {
        let bytes = self.send(path, "POST", body).await;
        xml::parse(&bytes, "xml").expect("XML answer")
    }

    /// Signs `fields` (plus appid, mch_id, nonce_str) and posts them; checks the answer's sign.
    async fn call(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        sign_type: SignType,
    ) -> BTreeMap<String, String> {
        let mut map: BTreeMap<String, String> =
            [("appid", APPID), ("mch_id", MCH), ("nonce_str", "n0nce")]
                .into_iter()
                .chain(fields.iter().copied())
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        if sign_type == SignType::HmacSha256 {
            map.insert("sign_type".into(), "HMAC-SHA256".into());
        }
        if !map.contains_key("sign") {
            let s = sign::sign_map(&map, KEY, sign_type);
            map.insert("sign".into(), s);
        }
        let answer = self.raw(path, xml::write_map(&map).into_bytes()).await;
        if answer["return_code"] == "SUCCESS" {
            assert!(
                sign::verify_fields(&answer, KEY, sign_type),
                "answer sign: {answer:?}"
            );
        } else {
            assert!(!answer.contains_key("sign"));
        }
        answer
    }

    async fn order(&self, out_trade_no: &str, total_fee: &str) -> BTreeMap<String, String> {
        self.call(
            "/pay/unifiedorder",
            &[
                ("body", "Test product"),
                ("out_trade_no", out_trade_no),
                ("total_fee", total_fee),
                ("spbill_create_ip", "127.0.0.1"),
                ("notify_url", NOTIFY_URL),
                ("trade_type", "JSAPI"),
                ("openid", OPENID),
            ],
            SignType::Md5,
        )
        .await
    }

    async fn json(&self, path: &str, body: &Value) -> Value {
        let bytes = self.send(path, "POST", body.to_string().into_bytes()).await;
        serde_json::from_slice(&bytes).expect("JSON answer")
    }

    async fn paid(&self, out_trade_no: &str, total_fee: &str) {
        let order = self.order(out_trade_no, total_fee).await;
        let answer = self
            .json(
                "/_sim/pay/confirm",
                &page(&order["prepay_id"], APPID, SignType::Md5, KEY),
            )
            .await;
        assert_eq!(answer["err_msg"], "get_brand_wcpay_request:ok", "{answer}");
    }
}

/// The getBrandWCPayRequest parameters for a prepay_id, as a shop computes them.
fn page(prepay_id: &str, appid: &str, sign_type: SignType, key: &str) -> Value {
    let package = format!("prepay_id={prepay_id}");
    let fields = [
        ("appId", appid),
        ("nonceStr", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"),
        ("package", package.as_str()),
        ("signType", sign_type.as_str()),
        ("timeStamp", "1414561699"),
    ];
    let pay_sign = sign::sign(fields, key, sign_type);
    json!({
        "appId": appid, "timeStamp": "1414561699", "nonceStr": "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
        "package": package, "signType": sign_type.as_str(), "paySign": pay_sign,
    })
}

fn err_code(answer: &BTreeMap<String, String>) -> (&str, &str) {
    assert_eq!(answer["return_code"], "SUCCESS", "{answer:?}");
    assert_eq!(answer["result_code"], "FAIL", "{answer:?}");
    (answer["err_code"].as_str(), answer["err_code_des"].as_str())
}

#[test]
fn merchant_debug_hides_the_api_key() {
    let cfg = config("");
    let printed = format!("{cfg:?}");
    assert!(printed.contains("MerchantConfig"));
    assert!(printed.contains("[redacted]"));
    assert!(!printed.contains(KEY));
}

#[tokio::test]
async fn order_pay_query_and_repeat() {
    let h = Harness::new("");
    let first = h.order("T1", "1").await;
    assert_eq!(first["result_code"], "SUCCESS");
    assert_eq!(first["trade_type"], "JSAPI");
    let prepay_id = first["prepay_id"].clone();
    assert!(prepay_id.starts_with("wx"));

    // Same parameters (new nonce): the same prepay_id. Different ones: OUT_TRADE_NO_USED.
    assert_eq!(h.order("T1", "1").await["prepay_id"], prepay_id);
    assert_eq!(err_code(&h.order("T1", "2").await).0, "OUT_TRADE_NO_USED");

    let query = h
        .call("/pay/orderquery", &[("out_trade_no", "T1")], SignType::Md5)
        .await;
    assert_eq!(query["trade_state"], "NOTPAY");

    // The client's checks.
    let good = page(&prepay_id, APPID, SignType::Md5, KEY);
    let check = h.json("/_sim/pay/check", &good).await;
    assert_eq!(
        check,
        json!({"ok": true, "body": "Test product", "total_fee": 1, "mch_id": MCH, "api": "v2"})
    );
    let mut wrong = good.clone();
    wrong["paySign"] = json!("0".repeat(32));
    assert_eq!(
        h.json("/_sim/pay/check", &wrong).await["err_desc"],
        "支付验证签名失败"
    );
    let hmac = page(&prepay_id, APPID, SignType::HmacSha256, KEY);
    assert_eq!(
        h.json("/_sim/pay/check", &hmac).await["err_desc"],
        "支付验证签名失败"
    );
    let other_app = page(&prepay_id, OTHER_APPID, SignType::Md5, KEY);
    let answer = h.json("/_sim/pay/confirm", &other_app).await;
    assert_eq!(answer["err_msg"], "get_brand_wcpay_request:fail");
    assert_eq!(answer["err_desc"], "调用支付JSAPI缺少参数：total_fee");
    let unknown = page("wx000", APPID, SignType::Md5, KEY);
    assert_eq!(
        h.json("/_sim/pay/check", &unknown).await["err_desc"],
        "调用支付JSAPI缺少参数：total_fee"
    );

    // Pay.
    assert_eq!(
        h.json("/_sim/pay/confirm", &good).await,
        json!({"err_msg": "get_brand_wcpay_request:ok"})
    );
    let again = h.json("/_sim/pay/confirm", &good).await;
    assert_eq!(again["err_msg"], "get_brand_wcpay_request:fail");
    assert_eq!(h.json("/_sim/pay/check", &good).await["ok"], false);

    let query = h
        .call(
            "/pay/orderquery",
            &[("out_trade_no", "T1")],
            SignType::HmacSha256,
        )
        .await;
    assert_eq!(query["trade_state"], "SUCCESS");
    assert_eq!(query["total_fee"], "1");
    assert_eq!(query["openid"], OPENID);
    assert_eq!(query["time_end"].len(), 14);
    let transaction_id = query["transaction_id"].clone();
    assert_eq!(transaction_id.len(), 28);
    let by_txn = h
        .call(
            "/pay/orderquery",
            &[("transaction_id", &transaction_id)],
            SignType::Md5,
        )
        .await;
    assert_eq!(by_txn["out_trade_no"], "T1");

    assert_eq!(err_code(&h.order("T1", "1").await).0, "ORDERPAID");
    assert_eq!(
        err_code(
            &h.call("/pay/closeorder", &[("out_trade_no", "T1")], SignType::Md5)
                .await
        )
        .0,
        "ORDERPAID"
    );
    assert_eq!(
        err_code(
            &h.call(
                "/pay/orderquery",
                &[("out_trade_no", "NOPE")],
                SignType::Md5
            )
            .await
        )
        .0,
        "ORDERNOTEXIST"
    );

    // The test view.
    let bytes = h.send("/_sim/pay/orders/T1", "GET", Vec::new()).await;
    let view: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(view["trade_state"], "SUCCESS");
    assert_eq!(view["transaction_id"], json!(transaction_id));
}

#[tokio::test]
async fn close_and_expiry() {
    let h = Harness::new("");
    let order = h.order("C1", "5").await;
    let close = h
        .call("/pay/closeorder", &[("out_trade_no", "C1")], SignType::Md5)
        .await;
    assert_eq!(close["result_code"], "SUCCESS");
    assert_eq!(
        err_code(
            &h.call("/pay/closeorder", &[("out_trade_no", "C1")], SignType::Md5)
                .await
        )
        .0,
        "ORDERCLOSED"
    );
    assert_eq!(err_code(&h.order("C1", "5").await).0, "ORDERCLOSED");
    assert_eq!(
        h.call("/pay/orderquery", &[("out_trade_no", "C1")], SignType::Md5)
            .await["trade_state"],
        "CLOSED"
    );
    let answer = h
        .json(
            "/_sim/pay/confirm",
            &page(&order["prepay_id"], APPID, SignType::Md5, KEY),
        )
        .await;
    assert_eq!(answer["err_msg"], "get_brand_wcpay_request:fail");
    assert_eq!(
        err_code(
            &h.call("/pay/closeorder", &[("out_trade_no", "C9")], SignType::Md5)
                .await
        )
        .0,
        "ORDERNOTEXIST"
    );

    // A prepay_id lives 2 h on the simulated clock; ordering again then gives a new one.
    let order = h.order("E1", "5").await;
    h.sim.clock.advance(2 * 3600);
    let stale = page(&order["prepay_id"], APPID, SignType::Md5, KEY);
    assert_eq!(
        h.json("/_sim/pay/check", &stale).await["err_desc"],
        "调用支付JSAPI缺少参数：total_fee"
    );
    let renewed = h.order("E1", "5").await;
    assert_ne!(renewed["prepay_id"], order["prepay_id"]);
    let fresh = page(&renewed["prepay_id"], APPID, SignType::Md5, KEY);
    assert_eq!(h.json("/_sim/pay/check", &fresh).await["ok"], true);
}

#[tokio::test]
async fn hmac_orders_need_hmac_pay_sign() {
    let h = Harness::new("");
    let order = h
        .call(
            "/pay/unifiedorder",
            &[
                ("body", "B"),
                ("out_trade_no", "H1"),
                ("total_fee", "3"),
                ("spbill_create_ip", "127.0.0.1"),
                ("notify_url", NOTIFY_URL),
                ("trade_type", "JSAPI"),
                ("openid", OPENID),
            ],
            SignType::HmacSha256,
        )
        .await;
    assert_eq!(order["result_code"], "SUCCESS");
    let md5 = page(&order["prepay_id"], APPID, SignType::Md5, KEY);
    assert_eq!(
        h.json("/_sim/pay/check", &md5).await["err_desc"],
        "支付验证签名失败"
    );
    let hmac = page(&order["prepay_id"], APPID, SignType::HmacSha256, KEY);
    assert_eq!(
        h.json("/_sim/pay/confirm", &hmac).await["err_msg"],
        "get_brand_wcpay_request:ok"
    );
}

#[tokio::test]
async fn request_validation() {
    let h = Harness::new("");
    let base = [
        ("body", "B"),
        ("out_trade_no", "V1"),
        ("total_fee", "1"),
        ("spbill_create_ip", "127.0.0.1"),
        ("notify_url", NOTIFY_URL),
        ("trade_type", "JSAPI"),
        ("openid", OPENID),
    ];
    let with = |name: &str, value: &'static str| -> Vec<(&str, &str)> {
        base.iter()
            .map(|(k, v)| if *k == name { (*k, value) } else { (*k, *v) })
            .collect()
    };
    let without = |name: &str| -> Vec<(&str, &str)> {
        base.iter().filter(|(k, _)| *k != name).copied().collect()
    };

    // Communication-level failures: no sign.
    let bad_sign = h
        .call(
            "/pay/unifiedorder",
            &[base.as_slice(), &[("sign", "0123")]].concat(),
            SignType::Md5,
        )
        .await;
    assert_eq!(
        (
            bad_sign["return_code"].as_str(),
            bad_sign["return_msg"].as_str()
        ),
        ("FAIL", "签名错误")
    );
    let mut map: BTreeMap<String, String> = base
        .iter()
        .chain(&[("appid", OTHER_APPID), ("mch_id", MCH), ("nonce_str", "n")])
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    map.insert("sign".into(), sign::sign_map(&map, KEY, SignType::Md5));
    let unbound = h
        .raw("/pay/unifiedorder", xml::write_map(&map).into_bytes())
        .await;
    assert_eq!(unbound["return_msg"], "appid和mch_id不匹配");
    map.insert("mch_id".into(), "42".into());
    assert_eq!(
        h.raw("/pay/unifiedorder", xml::write_map(&map).into_bytes())
            .await["return_code"],
        "FAIL"
    );

    // Business-level failures: signed.
    assert_eq!(
        err_code(
            &h.call("/pay/unifiedorder", &without("openid"), SignType::Md5)
                .await
        )
        .0,
        "PARAM_ERROR"
    );
    let bob = h
        .call("/pay/unifiedorder", &with("openid", "o-bob"), SignType::Md5)
        .await;
    assert_eq!(err_code(&bob), ("PARAM_ERROR", "appid和openid不匹配"));
    for fee in ["0", "-1", "1.5", "abc"] {
        let answer = h
            .call("/pay/unifiedorder", &with("total_fee", fee), SignType::Md5)
            .await;
        assert_eq!(err_code(&answer).0, "PARAM_ERROR", "total_fee {fee}");
    }
    assert_eq!(
        err_code(
            &h.call("/pay/unifiedorder", &without("body"), SignType::Md5)
                .await
        )
        .0,
        "LACK_PARAMS"
    );
    let query_url = h
        .call(
            "/pay/unifiedorder",
            &with("notify_url", "http://x/n?a=1"),
            SignType::Md5,
        )
        .await;
    assert_eq!(err_code(&query_url).0, "PARAM_ERROR");
    // NATIVE needs a product_id, no openid, and gets a code_url.
    let no_product = h
        .call(
            "/pay/unifiedorder",
            &with("trade_type", "NATIVE"),
            SignType::Md5,
        )
        .await;
    assert_eq!(err_code(&no_product), ("LACK_PARAMS", "缺少参数product_id"));
    let native = h
        .call(
            "/pay/unifiedorder",
            &[with("trade_type", "NATIVE"), vec![("product_id", "SKU1")]].concat(),
            SignType::Md5,
        )
        .await;
    assert!(native["code_url"].starts_with("weixin://wxpay/bizpayurl?pr="));
    // MWEB needs the H5 product (h5_domains) and scene_info; an IPv4-mapped client IP is refused.
    let no_h5 = h
        .call(
            "/pay/unifiedorder",
            &[
                with("trade_type", "MWEB"),
                vec![("scene_info", r#"{"h5_info":{"type":"Wap"}}"#)],
            ]
            .concat(),
            SignType::Md5,
        )
        .await;
    assert_eq!(err_code(&no_h5).0, "NO_AUTH");
    let mapped = h
        .call(
            "/pay/unifiedorder",
            &with("spbill_create_ip", "::ffff:1.2.3.4"),
            SignType::Md5,
        )
        .await;
    assert_eq!(
        err_code(&mapped),
        ("PARAM_ERROR", "invalid spbill_create_ip")
    );
}

#[tokio::test]
async fn xml_safety_on_the_wire() {
    let h = Harness::new("");
    let xxe = br#"<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><appid>&xxe;</appid></xml>"#;
    let answer = h.raw("/pay/unifiedorder", xxe.to_vec()).await;
    assert_eq!(
        (
            answer["return_code"].as_str(),
            answer["return_msg"].as_str()
        ),
        ("FAIL", "XML格式错误")
    );
    let mut big = b"<xml><body>".to_vec();
    big.extend(std::iter::repeat_n(b'a', 1024 * 1024));
    big.extend_from_slice(b"</body></xml>");
    let answer = h.raw("/pay/unifiedorder", big).await;
    assert_eq!(
        (
            answer["return_code"].as_str(),
            answer["return_msg"].as_str()
        ),
        ("FAIL", "XML格式错误")
    );
    assert_eq!(
        h.raw("/pay/orderquery", Vec::new()).await["return_code"],
        "FAIL"
    );
    let get = h.send("/pay/unifiedorder", "GET", Vec::new()).await;
    assert_eq!(
        xml::parse(&get, "xml").expect("XML")["return_msg"],
        "请使用post方法"
    );
}

#[tokio::test]
async fn refunds_and_refundquery() {
    let h = Harness::new("");
    let refund = |no: &'static str, total: &'static str, fee: &'static str| {
        let h = &h;
        async move {
            h.call(
                "/secapi/pay/refund",
                &[
                    ("out_trade_no", "R"),
                    ("out_refund_no", no),
                    ("total_fee", total),
                    ("refund_fee", fee),
                ],
                SignType::Md5,
            )
            .await
        }
    };
    let order = h.order("R", "100").await;
    assert_eq!(
        err_code(&refund("R1", "100", "30").await),
        ("ERROR", "订单状态错误，订单未支付")
    );
    let paid = h
        .json(
            "/_sim/pay/confirm",
            &page(&order["prepay_id"], APPID, SignType::Md5, KEY),
        )
        .await;
    assert_eq!(paid["err_msg"], "get_brand_wcpay_request:ok");
    h.order("R-unpaid", "1").await;

    let first = refund("R1", "100", "30").await;
    assert_eq!(first["result_code"], "SUCCESS", "{first:?}");
    assert_eq!(first["refund_fee"], "30");
    let refund_id = first["refund_id"].clone();
    assert_eq!(
        refund("R1", "100", "30").await["refund_id"],
        refund_id,
        "idempotent"
    );
    assert_eq!(
        err_code(&refund("R1", "100", "40").await).0,
        "REFUND_FEE_MISMATCH"
    );
    assert_eq!(
        err_code(&refund("R2", "99", "10").await).0,
        "REFUND_FEE_MISMATCH"
    );
    assert_eq!(
        err_code(&refund("R2", "100", "80").await).0,
        "INVALID_REQUEST"
    );
    let over = refund("R2", "100", "101").await;
    assert_eq!(
        (over["return_code"].as_str(), over["return_msg"].as_str()),
        ("FAIL", "invalid refund_fee")
    );
    assert_eq!(refund("R2", "100", "70").await["result_code"], "SUCCESS");
    assert_eq!(
        err_code(&refund("R3", "100", "1").await),
        ("ERROR", "订单已全额退款")
    );

    assert_eq!(
        h.call("/pay/orderquery", &[("out_trade_no", "R")], SignType::Md5)
            .await["trade_state"],
        "REFUND"
    );
    let all = h
        .call("/pay/refundquery", &[("out_trade_no", "R")], SignType::Md5)
        .await;
    assert_eq!(all["refund_count"], "2");
    assert_eq!(all["out_refund_no_0"], "R1");
    assert_eq!(all["refund_fee_1"], "70");
    assert_eq!(all["refund_status_1"], "SUCCESS");
    let one = h
        .call(
            "/pay/refundquery",
            &[("refund_id", &refund_id)],
            SignType::Md5,
        )
        .await;
    assert_eq!(
        (
            one["refund_count"].as_str(),
            one["out_refund_no_0"].as_str()
        ),
        ("1", "R1")
    );
    let by_no = h
        .call(
            "/pay/refundquery",
            &[("out_refund_no", "R2")],
            SignType::Md5,
        )
        .await;
    assert_eq!(by_no["refund_fee_0"], "70");
    assert_eq!(
        err_code(
            &h.call(
                "/pay/refundquery",
                &[("out_refund_no", "R9")],
                SignType::Md5
            )
            .await
        )
        .0,
        "REFUNDNOTEXIST"
    );
    assert_eq!(
        err_code(
            &h.call(
                "/pay/refundquery",
                &[("out_trade_no", "R-unpaid")],
                SignType::Md5
            )
            .await
        )
        .0,
        "REFUNDNOTEXIST"
    );
}

#[tokio::test]
async fn secapi_needs_the_certificate_when_configured() {
    let dir = std::env::temp_dir().join(format!("wechat-sim-pay-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ca = dir.join("ca.pem");
    let tls = super::tls::ServerTls::generate().expect("rcgen");
    std::fs::write(&ca, &tls.ca_pem).expect("write CA");
    let h = Harness::new(&format!("client_ca = {:?}", ca.display().to_string()));
    h.paid("S1", "10").await;
    let answer = h
        .call(
            "/secapi/pay/refund",
            &[
                ("out_trade_no", "S1"),
                ("out_refund_no", "S1R"),
                ("total_fee", "10"),
                ("refund_fee", "10"),
            ],
            SignType::Md5,
        )
        .await;
    assert_eq!(answer["return_code"], "FAIL");
    assert!(answer["return_msg"].contains("证书"), "{answer:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn test_controls() {
    let h = Harness::new("");
    let missing = h
        .json(
            "/_sim/pay/notify",
            &json!({"out_trade_no": "X", "mode": "duplicate"}),
        )
        .await;
    assert_eq!(missing["error"], "no such order");
    h.order("N1", "1").await;
    let unpaid = h
        .json(
            "/_sim/pay/notify",
            &json!({"out_trade_no": "N1", "mode": "duplicate"}),
        )
        .await;
    assert_eq!(unpaid["error"], "the order is not paid");
    h.paid("N2", "1").await;
    let bad_mode = h
        .json(
            "/_sim/pay/notify",
            &json!({"out_trade_no": "N2", "mode": "nope"}),
        )
        .await;
    assert!(bad_mode["error"].is_string());
    // Nothing listens at the notify_url: delivered nowhere, counted as sent.
    let sent = h
        .json(
            "/_sim/pay/notify",
            &json!({"out_trade_no": "N2", "mode": "tamper_sign"}),
        )
        .await;
    assert_eq!(sent["status"], Value::Null);
    assert_eq!(sent["acknowledged"], false);
    assert!(h.sim.stats.snapshot().notifications.sent >= 1);
    assert_eq!(h.sim.stats.snapshot().notifications.acknowledged, 0);
}
