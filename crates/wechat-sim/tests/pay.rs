//! WeChat Pay v2 against the running simulator over real HTTP on 127.0.0.1: order, pay sheet,
//! notifications with retries, query, close, refunds over mutual TLS, refund notifications.

mod common;

use std::time::Duration;

use common::v2::*;
use common::{client as http, wait_for};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use wechat_sim::Simulator;

fn config(extra: &str) -> String {
    format!(
        r#"
[[apps]]
appid = "{APPID}"
secret = "0123456789abcdef0123456789abcdef"
[[apps]]
appid = "wxbbbbbbbbbbbbbbbb"
secret = "0123456789abcdef0123456789abcdef"
[[users]]
appid = "{APPID}"
openid = "{OPENID}"
nickname = "Alice"
[[merchants]]
mch_id = "{MCH}"
api_key = "{KEY}"
appids = ["{APPID}"]
notify_retry_scale = 0.001
{extra}
"#
    )
}

#[tokio::test]
async fn pay_notify_retry_and_test_controls() {
    let sim = Simulator::from_toml_str(&config(""))
        .expect("config")
        .start()
        .await
        .expect("start");
    let base = sim.base_url();
    let client = http();
    let (notify_url, mut notifications) = receiver(&["FAIL", "FAIL"]).await;

    let order = unified_order(&client, &base, "ORDER-1", "1", &notify_url, false).await;
    assert_eq!(order["result_code"], "SUCCESS", "{order:?}");
    let params = page_params(&order["prepay_id"], false);

    let check: Value = client
        .post(format!("{base}/_sim/pay/check"))
        .json(&params)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(
        check,
        json!({"ok": true, "body": "Demo product", "total_fee": 1, "mch_id": MCH, "api": "v2"})
    );
    let paid: Value = client
        .post(format!("{base}/_sim/pay/confirm"))
        .json(&params)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(paid["err_msg"], "get_brand_wcpay_request:ok");

    // FAIL, FAIL, then SUCCESS: the same signed notification three times.
    let mut seen = Vec::new();
    for _ in 0..3 {
        let n = next(&mut notifications).await;
        assert!(verifies(&n, false), "signed with MD5: {n:?}");
        assert!(!n.contains_key("sign_type"));
        assert_eq!((n["appid"].as_str(), n["mch_id"].as_str()), (APPID, MCH));
        assert_eq!(
            (n["out_trade_no"].as_str(), n["total_fee"].as_str()),
            ("ORDER-1", "1")
        );
        assert_eq!(
            (n["return_code"].as_str(), n["result_code"].as_str()),
            ("SUCCESS", "SUCCESS")
        );
        assert_eq!(n["openid"], OPENID);
        seen.push(n);
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]));
    wait_for(&sim, 3, 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        notifications.try_recv().is_err(),
        "no delivery after SUCCESS"
    );
    assert_eq!(sim.stats().notifications.sent, 3);

    let query = post_xml(
        &client,
        &format!("{base}/pay/orderquery"),
        fields(&[("out_trade_no", "ORDER-1")]),
        false,
    )
    .await;
    assert_eq!(query["trade_state"], "SUCCESS");
    assert_eq!(query["transaction_id"], seen[0]["transaction_id"]);

    // Test controls: a duplicate is the genuine notification; tampered ones do not verify.
    let control = |mode: &str| {
        let client = client.clone();
        let url = format!("{base}/_sim/pay/notify");
        let body = json!({"out_trade_no": "ORDER-1", "mode": mode});
        async move {
            client
                .post(url)
                .json(&body)
                .send()
                .await
                .expect("sent")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    let dup = control("duplicate").await;
    assert_eq!(
        (dup["status"].clone(), dup["acknowledged"].clone()),
        (json!(200), json!(true))
    );
    let n = next(&mut notifications).await;
    assert!(verifies(&n, false));
    assert_eq!(n["transaction_id"], seen[0]["transaction_id"]);
    wait_for(&sim, 4, 2).await;

    control("tamper_total_fee").await;
    let n = next(&mut notifications).await;
    assert_eq!(n["total_fee"], "2");
    assert!(!verifies(&n, false));
    control("tamper_sign").await;
    assert!(!verifies(&next(&mut notifications).await, false));
    control("other_appid").await;
    let n = next(&mut notifications).await;
    assert!(verifies(&n, false), "validly signed, but for another appid");
    assert_ne!(n["appid"], APPID);
    control("no_sign").await;
    assert!(!next(&mut notifications).await.contains_key("sign"));

    let view: Value = client
        .get(format!("{base}/_sim/pay/orders/ORDER-1"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(view["trade_state"], "SUCCESS");
    assert_eq!(view["notifications"]["sent"], 8);
}

#[tokio::test]
async fn hmac_order_gets_hmac_notification() {
    let sim = Simulator::from_toml_str(&config(""))
        .expect("config")
        .start()
        .await
        .expect("start");
    let base = sim.base_url();
    let client = http();
    let (notify_url, mut notifications) = receiver(&[]).await;
    let order = unified_order(&client, &base, "HMAC-1", "88", &notify_url, true).await;
    let paid: Value = client
        .post(format!("{base}/_sim/pay/confirm"))
        .json(&page_params(&order["prepay_id"], true))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(paid["err_msg"], "get_brand_wcpay_request:ok");
    let n = next(&mut notifications).await;
    assert_eq!(n["sign_type"], "HMAC-SHA256");
    assert!(verifies(&n, true));
    wait_for(&sim, 1, 1).await;
}

#[tokio::test]
async fn order_states_and_safety() {
    let sim = Simulator::from_toml_str(&config(""))
        .expect("config")
        .start()
        .await
        .expect("start");
    let base = sim.base_url();
    let client = http();
    let (notify_url, _notifications) = receiver(&[]).await;

    let first = unified_order(&client, &base, "S-1", "10", &notify_url, false).await;
    assert_eq!(
        unified_order(&client, &base, "S-1", "10", &notify_url, false).await["prepay_id"],
        first["prepay_id"]
    );
    let used = unified_order(&client, &base, "S-1", "11", &notify_url, false).await;
    assert_eq!(
        (used["result_code"].as_str(), used["err_code"].as_str()),
        ("FAIL", "OUT_TRADE_NO_USED")
    );

    let closed = post_xml(
        &client,
        &format!("{base}/pay/closeorder"),
        fields(&[("out_trade_no", "S-1")]),
        false,
    )
    .await;
    assert_eq!(closed["result_code"], "SUCCESS");
    let query = post_xml(
        &client,
        &format!("{base}/pay/orderquery"),
        fields(&[("out_trade_no", "S-1")]),
        false,
    )
    .await;
    assert_eq!(query["trade_state"], "CLOSED");
    assert_eq!(
        unified_order(&client, &base, "S-1", "10", &notify_url, false).await["err_code"],
        "ORDERCLOSED"
    );

    let order = unified_order(&client, &base, "S-2", "10", &notify_url, false).await;
    let paid: Value = client
        .post(format!("{base}/_sim/pay/confirm"))
        .json(&page_params(&order["prepay_id"], false))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(paid["err_msg"], "get_brand_wcpay_request:ok");
    assert_eq!(
        unified_order(&client, &base, "S-2", "10", &notify_url, false).await["err_code"],
        "ORDERPAID"
    );

    // A wrong sign is refused at the communication level.
    let mut forged = fields(&[
        ("appid", APPID),
        ("mch_id", MCH),
        ("nonce_str", "x"),
        ("out_trade_no", "S-2"),
    ]);
    forged.insert("sign".into(), "0".repeat(32));
    let text = client
        .post(format!("{base}/pay/orderquery"))
        .body(to_xml(&forged))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("body");
    assert_eq!(
        parse(&text),
        fields(&[("return_code", "FAIL"), ("return_msg", "签名错误")])
    );

    // XXE and a 1 MiB body get an XML refusal.
    let xxe = r#"<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]><xml><appid>&x;</appid></xml>"#;
    let text = client
        .post(format!("{base}/pay/unifiedorder"))
        .body(xxe)
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("body");
    assert_eq!(parse(&text)["return_code"], "FAIL");
    let big = format!("<xml><body>{}</body></xml>", "a".repeat(1024 * 1024));
    let text = client
        .post(format!("{base}/pay/unifiedorder"))
        .body(big)
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("body");
    assert_eq!(parse(&text)["return_code"], "FAIL");
}

/// A CA and a client certificate it signed (PEM): (ca, identity = cert + key).
fn client_pki() -> (String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Test merchant CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).expect("CA");
    let key = KeyPair::generate().expect("key");
    let mut leaf = CertificateParams::new(Vec::<String>::new()).expect("params");
    leaf.distinguished_name.push(DnType::CommonName, MCH);
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).expect("cert");
    (
        ca_cert.pem(),
        format!("{}{}", cert.pem(), key.serialize_pem()),
    )
}

#[tokio::test]
async fn refund_over_mutual_tls_and_refund_notification() {
    let (ca_pem, identity_pem) = client_pki();
    let (_, stranger_pem) = client_pki();
    let dir =
        std::env::temp_dir().join(format!("wechat-sim-pay-{}-{}", std::process::id(), line!()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let ca_path = dir.join("merchant-ca.pem");
    std::fs::write(&ca_path, &ca_pem).expect("write CA");
    let (refund_url, mut refund_notifications) = receiver(&["FAIL"]).await;
    let extra = format!(
        "client_ca = {:?}\nrefund_notify_url = {refund_url:?}",
        ca_path.display().to_string()
    );

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let tls_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let sim = Simulator::from_toml_str(&config(&extra))
        .expect("config")
        .start_on(listener, Some(tls_listener))
        .await
        .expect("start");
    let base = sim.base_url();
    let tls_base = sim.tls_base_url().expect("TLS listener");
    let client = http();
    let (notify_url, _payments) = receiver(&[]).await;

    let order = unified_order(&client, &base, "REFUND-1", "100", &notify_url, false).await;
    let paid: Value = client
        .post(format!("{base}/_sim/pay/confirm"))
        .json(&page_params(&order["prepay_id"], false))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(paid["err_msg"], "get_brand_wcpay_request:ok");
    wait_for(&sim, 1, 1).await;

    let refund_fields = fields(&[
        ("out_trade_no", "REFUND-1"),
        ("out_refund_no", "RF-1"),
        ("total_fee", "100"),
        ("refund_fee", "40"),
    ]);

    // The plain listener refuses /secapi for this merchant.
    let plain = post_xml(
        &client,
        &format!("{base}/secapi/pay/refund"),
        refund_fields.clone(),
        false,
    )
    .await;
    assert_eq!(plain["return_code"], "FAIL");
    assert!(plain["return_msg"].contains("证书"), "{plain:?}");

    // Over TLS: the simulator's CA from the plain listener; no client certificate, or one from
    // another CA, is refused.
    let server_ca = client
        .get(format!("{base}/_sim/tls/server-ca.pem"))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("pem");
    let tls_client = |identity: Option<&str>| {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .timeout(WAIT)
            .add_root_certificate(
                reqwest::Certificate::from_pem(server_ca.as_bytes()).expect("CA"),
            );
        if let Some(pem) = identity {
            builder =
                builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("identity"));
        }
        builder.build().expect("client")
    };
    let url = format!("{tls_base}/secapi/pay/refund");
    let body = {
        let mut f = refund_fields.clone();
        f.extend(fields(&[
            ("appid", APPID),
            ("mch_id", MCH),
            ("nonce_str", "n"),
        ]));
        let s = sign(&f, false);
        f.insert("sign".into(), s);
        to_xml(&f)
    };
    let no_cert = tls_client(None).post(&url).body(body.clone()).send().await;
    assert!(
        no_cert.is_err(),
        "a TLS client without a certificate is refused: {no_cert:?}"
    );
    let stranger = tls_client(Some(&stranger_pem))
        .post(&url)
        .body(body.clone())
        .send()
        .await;
    assert!(
        stranger.is_err(),
        "a certificate from another CA is refused: {stranger:?}"
    );

    let merchant = tls_client(Some(&identity_pem));
    let refund = post_xml(&merchant, &url, refund_fields.clone(), false).await;
    assert_eq!(refund["result_code"], "SUCCESS", "{refund:?}");
    assert_eq!(
        (
            refund["refund_fee"].as_str(),
            refund["out_refund_no"].as_str()
        ),
        ("40", "RF-1")
    );
    let again = post_xml(&merchant, &url, refund_fields, false).await;
    assert_eq!(
        again["refund_id"], refund["refund_id"],
        "out_refund_no is idempotent"
    );

    // The refund notification: FAIL once, then SUCCESS; no sign; req_info decrypts.
    for _ in 0..2 {
        let n = next(&mut refund_notifications).await;
        assert_eq!(
            (
                n["return_code"].as_str(),
                n["appid"].as_str(),
                n["mch_id"].as_str()
            ),
            ("SUCCESS", APPID, MCH)
        );
        assert!(!n.contains_key("sign"));
        let info = parse(
            &decrypt_req_info(&n["req_info"])
                .replace("<root>", "<xml>")
                .replace("</root>", "</xml>"),
        );
        assert_eq!(info["out_refund_no"], "RF-1");
        assert_eq!(info["refund_id"], refund["refund_id"]);
        assert_eq!(
            (info["refund_fee"].as_str(), info["total_fee"].as_str()),
            ("40", "100")
        );
        assert_eq!(info["refund_status"], "SUCCESS");
        assert_eq!(info["out_trade_no"], "REFUND-1");
        assert_eq!(info["success_time"].len(), 19);
    }
    wait_for(&sim, 3, 2).await;

    let query = post_xml(
        &client,
        &format!("{base}/pay/refundquery"),
        fields(&[("out_trade_no", "REFUND-1")]),
        false,
    )
    .await;
    assert_eq!(
        (
            query["refund_count"].as_str(),
            query["refund_status_0"].as_str()
        ),
        ("1", "SUCCESS")
    );
    let _ = std::fs::remove_dir_all(&dir);
}
