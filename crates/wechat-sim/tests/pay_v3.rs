//! WeChat Pay v3 against the running simulator over real HTTP on 127.0.0.1: signed requests
//! and answers, prepay, the pay sheet, notifications with retries, query, close, refunds, the
//! platform certificate, the notification test modes and the v3 faults. Requests are signed
//! by a small independent signer (ring), never by the simulator's code.

mod common;

use common::v3::*;
use common::wait_for;
use rsa::pkcs8::DecodePublicKey as _;
use serde_json::{Value, json};
use wechat_sim::Simulator;
use wechat_sim::fixtures::{self, APIV3_KEY, APPID, MCH_ID, MerchantKeyPair};

#[tokio::test]
async fn prepay_pay_notify_query_refund() {
    let sim = start(false).await;
    let c = Client::new(&sim).await;
    let (notify_url, mut rx) = receiver(&[500]).await;

    let a = c.prepay("V3ORDER001", 100, &notify_url).await;
    assert_eq!(a.status, 200, "{:?}", a.json());
    let prepay_id = a.json()["prepay_id"]
        .as_str()
        .expect("prepay_id")
        .to_owned();
    assert!(prepay_id.starts_with("wx"));
    // The same parameters again: the same prepay_id; others: OUT_TRADE_NO_USED.
    let again = c.prepay("V3ORDER001", 100, &notify_url).await;
    assert_eq!(again.json()["prepay_id"], prepay_id.as_str());
    let other = c.prepay("V3ORDER001", 101, &notify_url).await;
    assert_eq!(
        (other.status.as_u16(), other.code()),
        (403, "OUT_TRADE_NO_USED".into())
    );

    let q = c.query("V3ORDER001").await.json();
    assert_eq!(q["trade_state"], "NOTPAY");
    assert_eq!(q["amount"]["total"], 100);
    assert!(q.get("transaction_id").is_none());

    // The pay sheet: RSA paySign by the merchant's key; MD5 is refused.
    let base = sim.base_url();
    let md5 = c
        .control("/_sim/pay/check", &page_params(&prepay_id, "MD5"))
        .await;
    assert_eq!(md5["err_desc"], "支付验证签名失败");
    let mut forged = page_params(&prepay_id, "RSA");
    forged["nonceStr"] = json!("another");
    let forged = c.control("/_sim/pay/check", &forged).await;
    assert_eq!(forged["err_desc"], "支付验证签名失败");
    let check = c
        .control("/_sim/pay/check", &page_params(&prepay_id, "RSA"))
        .await;
    assert_eq!(check["ok"], true, "{check}");
    let paid = c
        .control("/_sim/pay/confirm", &page_params(&prepay_id, "RSA"))
        .await;
    assert_eq!(paid["err_msg"], "get_brand_wcpay_request:ok", "{paid}");

    // The notification: answered 500 first, so it comes again; both are signed.
    for _ in 0..2 {
        let n = next(&mut rx).await;
        assert_eq!(header(&n.headers, "content-type"), "application/json");
        assert_eq!(
            header(&n.headers, "wechatpay-serial"),
            fixtures::PAY_PUBLIC_KEY_ID
        );
        assert!(signed_by(&n.headers, n.body.as_bytes(), &c.pay_public_pem));
        let envelope: Value = serde_json::from_str(&n.body).expect("json");
        assert_eq!(envelope["event_type"], "TRANSACTION.SUCCESS");
        assert_eq!(envelope["summary"], "支付成功");
        assert_eq!(envelope["resource"]["original_type"], "transaction");
        let t = resource(&n);
        assert_eq!(t["trade_state"], "SUCCESS");
        assert_eq!(t["out_trade_no"], "V3ORDER001");
        assert_eq!(t["mchid"], MCH_ID);
        assert_eq!(t["payer"]["openid"], OPENID);
        assert_eq!(t["amount"]["payer_total"], 100);
        assert!(
            t["success_time"]
                .as_str()
                .expect("time")
                .ends_with("+08:00")
        );
    }
    wait_for(&sim, 2, 1).await;

    let q = c.query("V3ORDER001").await.json();
    assert_eq!(q["trade_state"], "SUCCESS");
    let transaction_id = q["transaction_id"].as_str().expect("id").to_owned();
    let by_id = c
        .send(
            "GET",
            &format!("/v3/pay/transactions/id/{transaction_id}?mchid={MCH_ID}"),
            "",
        )
        .await;
    assert_eq!(by_id.json()["out_trade_no"], "V3ORDER001");
    let no_mchid = c
        .send("GET", "/v3/pay/transactions/id/4200000000", "")
        .await;
    assert_eq!(
        (no_mchid.status.as_u16(), no_mchid.code()),
        (400, "PARAM_ERROR".into())
    );
    let unknown = c.query("NOSUCHORDER").await;
    assert_eq!(
        (unknown.status.as_u16(), unknown.code()),
        (404, "ORDER_NOT_EXIST".into())
    );
    // A paid order can be neither paid again, re-ordered nor closed.
    let twice = c
        .control("/_sim/pay/confirm", &page_params(&prepay_id, "RSA"))
        .await;
    assert_eq!(twice["err_msg"], "get_brand_wcpay_request:fail");
    let reorder = c.prepay("V3ORDER001", 100, &notify_url).await;
    assert_eq!(reorder.code(), "OUT_TRADE_NO_USED");
    let close = c
        .send(
            "POST",
            "/v3/pay/transactions/out-trade-no/V3ORDER001/close",
            &json!({ "mchid": MCH_ID }).to_string(),
        )
        .await;
    assert_eq!(
        (close.status.as_u16(), close.code()),
        (403, "TRADE_ERROR".into())
    );

    // Refund: PROCESSING, idempotent, then SUCCESS with a notification.
    let refund_body = json!({
        "out_trade_no": "V3ORDER001", "out_refund_no": "V3REFUND001", "reason": "test",
        "notify_url": notify_url, "amount": { "refund": 40, "total": 100, "currency": "CNY" },
    })
    .to_string();
    let r = c
        .send("POST", "/v3/refund/domestic/refunds", &refund_body)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json());
    let r = r.json();
    assert_eq!(r["status"], "PROCESSING");
    assert_eq!(r["amount"]["refund"], 40);
    let same = c
        .send("POST", "/v3/refund/domestic/refunds", &refund_body)
        .await
        .json();
    assert_eq!(same["refund_id"], r["refund_id"]);
    let n = next(&mut rx).await;
    assert!(signed_by(&n.headers, n.body.as_bytes(), &c.pay_public_pem));
    let envelope: Value = serde_json::from_str(&n.body).expect("json");
    assert_eq!(envelope["event_type"], "REFUND.SUCCESS");
    let refund = resource(&n);
    assert_eq!(refund["refund_status"], "SUCCESS");
    assert_eq!(refund["out_refund_no"], "V3REFUND001");
    assert_eq!(refund["amount"]["refund"], 40);
    wait_for(&sim, 3, 2).await;
    let queried = c
        .send("GET", "/v3/refund/domestic/refunds/V3REFUND001", "")
        .await
        .json();
    assert_eq!(queried["status"], "SUCCESS");
    assert!(queried["success_time"].is_string());
    assert_eq!(c.query("V3ORDER001").await.json()["trade_state"], "REFUND");
    let too_much = json!({
        "out_trade_no": "V3ORDER001", "out_refund_no": "V3REFUND002",
        "amount": { "refund": 61, "total": 100, "currency": "CNY" },
    });
    let too_much = c
        .send("POST", "/v3/refund/domestic/refunds", &too_much.to_string())
        .await;
    assert_eq!(
        (too_much.status.as_u16(), too_much.code()),
        (400, "INVALID_REQUEST".into())
    );
    let unknown = c
        .send("GET", "/v3/refund/domestic/refunds/NOSUCHREFUND", "")
        .await;
    assert_eq!(
        (unknown.status.as_u16(), unknown.code()),
        (404, "RESOURCE_NOT_EXISTS".into())
    );

    // The order as the controls show it.
    let order: Value = c
        .http
        .get(format!("{base}/_sim/pay/orders/V3ORDER001"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(order["api"], "v3");
    assert_eq!(order["sign_type"], "RSA");
    assert_eq!(order["trade_state"], "REFUND");
    assert_eq!(order["notifications"]["sent"], 2);
    assert_eq!(order["refunds"][0]["api"], "v3");
    assert_eq!(order["refunds"][0]["refund_status"], "SUCCESS");

    // The test modes, for payments and refunds.
    for (target, key, event) in [
        ("out_trade_no", "V3ORDER001", "TRANSACTION.SUCCESS"),
        ("out_refund_no", "V3REFUND001", "REFUND.SUCCESS"),
    ] {
        for mode in [
            "duplicate",
            "tampered_body",
            "stale_timestamp",
            "unknown_serial",
            "signtest",
        ] {
            let answer = c
                .control("/_sim/pay/notify", &json!({ target: key, "mode": mode }))
                .await;
            assert_eq!(answer["status"], 204, "{mode}: {answer}");
            assert_eq!(answer["acknowledged"], true);
            assert_eq!(answer["notify_url"], notify_url.as_str());
            let n = next(&mut rx).await;
            let genuine = signed_by(&n.headers, n.body.as_bytes(), &c.pay_public_pem);
            let ts: u64 = header(&n.headers, "wechatpay-timestamp")
                .parse()
                .expect("ts");
            let serial = header(&n.headers, "wechatpay-serial");
            let signature = header(&n.headers, "wechatpay-signature");
            let envelope: Value = serde_json::from_str(&n.body).expect("json");
            assert_eq!(envelope["event_type"], event);
            match mode {
                "duplicate" => assert!(genuine && now().abs_diff(ts) < 60),
                "tampered_body" => assert!(!genuine && serial == fixtures::PAY_PUBLIC_KEY_ID),
                "stale_timestamp" => assert!(genuine && now() - ts >= 590),
                "unknown_serial" => {
                    assert!(!genuine && serial.starts_with("PUB_KEY_ID_UNKNOWN"));
                }
                _ => assert!(!genuine && signature.starts_with("WECHATPAY/SIGNTEST/")),
            }
        }
    }
    // A v2 mode on a v3 order is refused, clearly.
    let v2_mode = c
        .http
        .post(format!("{base}/_sim/pay/notify"))
        .json(&json!({ "out_trade_no": "V3ORDER001", "mode": "tamper_sign" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(v2_mode.status(), 400);
    let text = v2_mode.text().await.expect("body");
    assert!(text.contains("v2 mode"), "{text}");
}

#[tokio::test]
async fn requests_must_be_signed_right() {
    let sim = start(false).await;
    let c = Client::new(&sim).await;
    let url = format!("/v3/pay/transactions/out-trade-no/NOPE000?mchid={MCH_ID}");
    let good = c
        .send_with(Some(&Auth::good()), "GET", &url, "", None)
        .await;
    assert_eq!(good.status, 404, "{:?}", good.json());
    // Without Wechatpay-Serial the public key signs (no platform certificate).
    assert_eq!(
        header(&good.headers, "wechatpay-serial"),
        fixtures::PAY_PUBLIC_KEY_ID
    );
    assert!(signed_by(&good.headers, &good.body, &c.pay_public_pem));

    let stranger = MerchantKeyPair::generate();
    let wrong_key = Auth {
        private_pem: stranger.private_key_pem.clone(),
        ..Auth::good()
    };
    let wrong_serial = Auth {
        serial: stranger.serial.clone(),
        ..Auth::good()
    };
    let stale = Auth {
        timestamp: now() - 400,
        ..Auth::good()
    };
    for (auth, needle) in [
        (Some(&wrong_key), "bad signature"),
        (Some(&wrong_serial), "serial_no"),
        (Some(&stale), "stale timestamp"),
        (None, "missing Authorization"),
    ] {
        let a = c.send_with(auth, "GET", &url, "", None).await;
        assert_eq!(a.status, 401, "{needle}");
        assert_eq!(a.code(), "SIGN_ERROR");
        let message = a.json()["message"].as_str().unwrap_or_default().to_owned();
        assert!(message.contains(needle), "{message}");
        if auth.is_some() {
            assert!(
                signed_by(&a.headers, &a.body, &c.pay_public_pem),
                "{needle}"
            );
        }
    }
    let bad = c
        .send_with(Some(&wrong_key), "GET", &url, "", None)
        .await
        .json();
    assert!(
        bad["detail"]["sign_information"]["truncated_sign_message"]
            .as_str()
            .is_some_and(|m| m.starts_with("GET\n/v3/pay/transactions/out-trade-no/NOPE000?mchid="))
    );
    // A signature over another body does not verify either.
    let body = json!({ "mchid": MCH_ID }).to_string();
    let mut other = c
        .http
        .post(format!(
            "{}/v3/pay/transactions/out-trade-no/NOPE000/close",
            c.base
        ))
        .header("Content-Type", "application/json")
        .header(
            "Authorization",
            Auth::good().header(
                "POST",
                "/v3/pay/transactions/out-trade-no/NOPE000/close",
                "{}",
            ),
        )
        .body(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(other.status(), 401);
    other = c
        .http
        .get(format!("{}{url}", c.base))
        .header("Authorization", "WECHATPAY2-SHA256-RSA2048 mchid=\"9999\"")
        .send()
        .await
        .expect("sent");
    assert_eq!(other.status(), 401);

    // Malformed and oversized bodies, bad parameters.
    for (body, code, status) in [
        ("not json", "PARAM_ERROR", 400),
        ("[1]", "PARAM_ERROR", 400),
        (r#"{"appid":"wx1234567890abcdef"}"#, "PARAM_ERROR", 400),
    ] {
        let a = c.send("POST", "/v3/pay/transactions/jsapi", body).await;
        assert_eq!(
            (a.status.as_u16(), a.code()),
            (status, code.to_owned()),
            "{body}"
        );
    }
    let big = format!("{{\"x\":\"{}\"}}", "a".repeat(70 * 1024));
    let a = c.send("POST", "/v3/pay/transactions/jsapi", &big).await;
    assert_eq!(a.status, 400);
    let bad_fields = [
        ("out_trade_no", json!("short"), "PARAM_ERROR", 400),
        ("out_trade_no", json!("has space 12"), "PARAM_ERROR", 400),
        ("description", json!("x".repeat(128)), "PARAM_ERROR", 400),
        (
            "notify_url",
            json!("http://example.com/notify"),
            "PARAM_ERROR",
            400,
        ),
        (
            "notify_url",
            json!("https://example.com/notify?x=1"),
            "PARAM_ERROR",
            400,
        ),
        (
            "appid",
            json!("wxffffffffffffffff"),
            "APPID_MCHID_NOT_MATCH",
            400,
        ),
        (
            "payer",
            json!({ "openid": "o-nobody" }),
            "OPENID_MISMATCH",
            500,
        ),
        ("amount", json!({ "total": 0 }), "PARAM_ERROR", 400),
        ("amount", json!({ "total": 1.5 }), "PARAM_ERROR", 400),
        (
            "amount",
            json!({ "total": 1, "currency": "USD" }),
            "PARAM_ERROR",
            400,
        ),
    ];
    for (field, value, code, status) in bad_fields {
        let mut body = json!({
            "appid": APPID, "mchid": MCH_ID, "description": "Demo",
            "out_trade_no": "V3BADFIELDS", "notify_url": "https://example.com/notify",
            "amount": { "total": 1 }, "payer": { "openid": OPENID },
        });
        body[field] = value.clone();
        let a = c
            .send("POST", "/v3/pay/transactions/jsapi", &body.to_string())
            .await;
        assert_eq!(
            (a.status.as_u16(), a.code()),
            (status, code.to_owned()),
            "{field} = {value}"
        );
    }
}

#[tokio::test]
async fn close_and_one_order_book() {
    let sim = start(false).await;
    let c = Client::new(&sim).await;
    let a = c
        .prepay("V3CLOSE001", 5, "https://example.com/notify")
        .await;
    assert_eq!(a.status, 200);
    let close_url = "/v3/pay/transactions/out-trade-no/V3CLOSE001/close";
    let mchid = json!({ "mchid": MCH_ID }).to_string();
    let closed = c.send("POST", close_url, &mchid).await;
    assert_eq!(closed.status, 204);
    assert!(closed.body.is_empty());
    assert_eq!(c.query("V3CLOSE001").await.json()["trade_state"], "CLOSED");
    assert_eq!(c.send("POST", close_url, &mchid).await.status, 204);
    let reorder = c
        .prepay("V3CLOSE001", 5, "https://example.com/notify")
        .await;
    assert_eq!(
        (reorder.status.as_u16(), reorder.code()),
        (400, "ORDER_CLOSED".into())
    );
    let unknown = c
        .send(
            "POST",
            "/v3/pay/transactions/out-trade-no/NOPE0001/close",
            &mchid,
        )
        .await;
    assert_eq!(unknown.status, 404);

    // A v2 order is the same order for v3.
    let mut fields = std::collections::BTreeMap::new();
    for (k, v) in [
        ("appid", APPID),
        ("mch_id", MCH_ID),
        ("nonce_str", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"),
        ("body", "Demo"),
        ("out_trade_no", "V2ORDER0001"),
        ("total_fee", "7"),
        ("spbill_create_ip", "127.0.0.1"),
        ("notify_url", "https://example.com/notify"),
        ("trade_type", "JSAPI"),
        ("openid", OPENID),
    ] {
        fields.insert(k.to_owned(), v.to_owned());
    }
    let mut text: String = fields.iter().map(|(k, v)| format!("{k}={v}&")).collect();
    text.push_str(&format!("key={}", fixtures::API_KEY));
    use md5::Digest as _;
    let sign = hex::encode_upper(md5::Md5::digest(text.as_bytes()));
    fields.insert("sign".to_owned(), sign);
    let xml: String = fields
        .iter()
        .map(|(k, v)| format!("<{k}><![CDATA[{v}]]></{k}>"))
        .collect();
    let answer = c
        .http
        .post(format!("{}/pay/unifiedorder", c.base))
        .body(format!("<xml>{xml}</xml>"))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("body");
    assert!(
        answer.contains("<result_code><![CDATA[SUCCESS]]></result_code>"),
        "{answer}"
    );
    let q = c.query("V2ORDER0001").await.json();
    assert_eq!(q["trade_state"], "NOTPAY");
    assert_eq!(q["amount"]["total"], 7);
    // v3 cannot take over the number.
    let reuse = c
        .prepay("V2ORDER0001", 7, "https://example.com/notify")
        .await;
    assert_eq!(reuse.code(), "OUT_TRADE_NO_USED");
    let order: Value = c
        .http
        .get(format!("{}/_sim/pay/orders/V2ORDER0001", c.base))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(order["api"], "v2");
}

#[tokio::test]
async fn certificates_for_platform_certificate_merchants_only() {
    let sim = start(false).await;
    let c = Client::new(&sim).await;
    let none = c.send("GET", "/v3/certificates", "").await;
    assert_eq!(
        (none.status.as_u16(), none.code()),
        (404, "RESOURCE_NOT_EXISTS".into())
    );
    assert!(
        none.json()["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("无可用的平台证书")
    );
    drop(sim);

    let sim = start(true).await;
    let c = Client::new(&sim).await;
    let list = c
        .send_with(Some(&Auth::good()), "GET", "/v3/certificates", "", None)
        .await;
    assert_eq!(list.status, 200);
    let entry = &list.json()["data"][0];
    let serial = entry["serial_no"].as_str().expect("serial").to_owned();
    assert_eq!(serial.len(), 40);
    assert_eq!(header(&list.headers, "wechatpay-serial"), serial);
    let e = &entry["encrypt_certificate"];
    assert_eq!(e["associated_data"], "certificate");
    assert_eq!(e["algorithm"], "AEAD_AES_256_GCM");
    let pem = decrypt(
        APIV3_KEY,
        e["nonce"].as_str().expect("nonce"),
        "certificate",
        e["ciphertext"].as_str().expect("ciphertext"),
    );
    use x509_cert::der::{Decode as _, Encode as _};
    let der = rustls_pemfile::certs(&mut pem.as_bytes())
        .next()
        .expect("a certificate")
        .expect("pem");
    let cert = x509_cert::Certificate::from_der(der.as_ref()).expect("X.509");
    assert_eq!(
        {
            // The DER integer's sign byte is not part of the serial (Go: `SerialNumber.Bytes()`).
            let bytes = cert.tbs_certificate.serial_number.as_bytes();
            let start = bytes
                .iter()
                .position(|b| *b != 0)
                .unwrap_or(bytes.len().saturating_sub(1));
            hex::encode_upper(&bytes[start..])
        },
        serial
    );
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .expect("spki");
    let cert_key = rsa::RsaPublicKey::from_public_key_der(&spki).expect("RSA");
    let cert_pem =
        rsa::pkcs8::EncodePublicKey::to_public_key_pem(&cert_key, Default::default()).expect("pem");
    assert!(signed_by(&list.headers, &list.body, &cert_pem));
    // Other answers: by the certificate without Wechatpay-Serial, by the public key with it.
    let url = format!("/v3/pay/transactions/out-trade-no/NOPE000?mchid={MCH_ID}");
    let by_cert = c
        .send_with(Some(&Auth::good()), "GET", &url, "", None)
        .await;
    assert_eq!(header(&by_cert.headers, "wechatpay-serial"), serial);
    assert!(signed_by(&by_cert.headers, &by_cert.body, &cert_pem));
    let by_key = c.send("GET", &url, "").await;
    assert_eq!(by_key.status, 404);
}

/// `unknown_serial` names a key of the kind the merchant verifies with, which it does not know:
/// a platform-certificate merchant gets an unknown 40-digit certificate serial (upper-case hex,
/// like the simulator's own certificate serials), a public-key merchant an unknown
/// `PUB_KEY_ID_…`; both signed by a key no merchant knows.
#[tokio::test]
async fn unknown_serial_names_a_key_of_the_merchants_kind() {
    for platform_certificate in [false, true] {
        let sim = start(platform_certificate).await;
        let c = Client::new(&sim).await;
        let (notify_url, mut rx) = receiver(&[]).await;
        c.paid_order("V3SERIAL01", 100, &notify_url).await;
        let genuine = next(&mut rx).await;
        assert!(signed_by(
            &genuine.headers,
            genuine.body.as_bytes(),
            &c.pay_public_pem
        ));
        let genuine_serial = header(&genuine.headers, "wechatpay-serial");
        assert_eq!(
            genuine_serial.starts_with("PUB_KEY_ID_"),
            !platform_certificate,
            "{genuine_serial}"
        );
        let answer = c
            .control(
                "/_sim/pay/notify",
                &json!({ "out_trade_no": "V3SERIAL01", "mode": "unknown_serial" }),
            )
            .await;
        assert_eq!(answer["status"], 204, "{answer}");
        let n = next(&mut rx).await;
        assert!(!signed_by(&n.headers, n.body.as_bytes(), &c.pay_public_pem));
        let serial = header(&n.headers, "wechatpay-serial");
        assert_ne!(serial, genuine_serial);
        if platform_certificate {
            assert_eq!(serial.len(), 40, "{serial}");
            assert!(
                serial
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)),
                "{serial}"
            );
        } else {
            assert!(serial.starts_with("PUB_KEY_ID_"), "{serial}");
        }
    }
}

/// `Request-ID` is shaped like WeChat Pay's (`08F78BB5AF0610D302189F99DD5C20BA56F89845-0`): 40
/// upper-case hex digits, a dash and a decimal number; on signed and unsigned answers alike, and
/// new on every answer.
#[tokio::test]
async fn request_ids_look_like_wechat_pays() {
    let sim = start(false).await;
    let c = Client::new(&sim).await;
    let url = format!("/v3/pay/transactions/out-trade-no/NOPE000?mchid={MCH_ID}");
    let signed = c.send("GET", &url, "").await;
    assert_eq!(signed.status, 404);
    let unsigned = c.send_with(None, "GET", &url, "", None).await;
    assert_eq!(unsigned.status, 401);
    let ids: Vec<String> = [&signed, &unsigned]
        .iter()
        .map(|a| header(&a.headers, "request-id"))
        .collect();
    for id in &ids {
        let (hex, number) = id.split_once('-').unwrap_or_else(|| panic!("{id:?}"));
        assert_eq!(hex.len(), 40, "{id:?}");
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)),
            "{id:?}"
        );
        assert!(
            !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()),
            "{id:?}"
        );
    }
    assert_ne!(ids[0], ids[1]);
}

#[tokio::test]
async fn v3_faults() {
    let sim = start(false).await;
    let c = Client::new(&sim).await;
    let fail = |query: &str| {
        let url = format!("{}/_sim/fail?{query}", c.base);
        let http = c.http.clone();
        async move { http.post(url).send().await.expect("sent") }
    };
    let queued: Value =
        fail("path=/v3/pay/transactions/jsapi&status=500&code=SYSTEM_ERROR&times=2")
            .await
            .json()
            .await
            .expect("json");
    assert_eq!(queued["queued"], 2);
    for _ in 0..2 {
        let a = c
            .prepay("V3FAULT001", 1, "https://example.com/notify")
            .await;
        assert_eq!((a.status.as_u16(), a.code()), (500, "SYSTEM_ERROR".into()));
    }
    assert_eq!(
        c.prepay("V3FAULT001", 1, "https://example.com/notify")
            .await
            .status,
        200
    );

    let query = format!("/v3/pay/transactions/out-trade-no/V3FAULT001?mchid={MCH_ID}");
    let path = "/v3/pay/transactions/out-trade-no/V3FAULT001";
    fail(&format!("path={path}&fault=bad_signature")).await;
    let a = c
        .send_with(Some(&Auth::good()), "GET", &query, "", None)
        .await;
    assert_eq!(a.status, 200);
    assert!(!header(&a.headers, "wechatpay-signature").is_empty());
    assert!(!signed_by(&a.headers, &a.body, &c.pay_public_pem));
    fail(&format!("path={path}&fault=unsigned")).await;
    let a = c
        .send_with(Some(&Auth::good()), "GET", &query, "", None)
        .await;
    assert_eq!(a.status, 200);
    assert!(a.headers.get("wechatpay-signature").is_none());
    assert!(a.headers.get("wechatpay-timestamp").is_none());
    // Then answers are genuine again.
    assert_eq!(c.query("V3FAULT001").await.status, 200);
    for bad in [
        "path=/v3/x&status=200&code=X",
        "path=/v3/x&status=500&message=x",
        "path=/v3/x&fault=other",
        "path=/v3/x?mchid=1&fault=unsigned",
    ] {
        assert_eq!(fail(bad).await.status(), 400, "{bad}");
    }
}

#[tokio::test]
async fn merchants_with_one_version_and_key_files() {
    // Key files relative to the configuration file; the merchant key as PKCS#1; v3 only.
    let dir = std::env::temp_dir().join(format!("wechat-sim-v3-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let keys = MerchantKeyPair::shared();
    let pkcs1 = rsa::pkcs1::EncodeRsaPublicKey::to_pkcs1_pem(
        &rsa::RsaPublicKey::from_public_key_pem(&keys.public_key_pem).expect("SPKI"),
        Default::default(),
    )
    .expect("PKCS#1");
    std::fs::write(dir.join("merchant_pub.pem"), pkcs1).expect("write");
    std::fs::write(
        dir.join("pay_key.pem"),
        include_str!("../src/pay/v3/testdata/rsa_test_private_key.pem"),
    )
    .expect("write");
    let toml = format!(
        r#"
[[apps]]
appid = "{APPID}"
secret = "0123456789abcdef0123456789abcdef"
[[users]]
appid = "{APPID}"
openid = "{OPENID}"
nickname = "Alice"
[[merchants]]
mch_id = "{MCH_ID}"
appids = ["{APPID}"]
apiv3_key = "{APIV3_KEY}"
merchant_serial = "{}"
merchant_public_key_file = "merchant_pub.pem"
pay_public_key_id = "{}"
pay_private_key_file = "pay_key.pem"
[[merchants]]
mch_id = "1900000110"
api_key = "{}"
appids = ["{APPID}"]
"#,
        keys.serial.to_ascii_lowercase(),
        fixtures::PAY_PUBLIC_KEY_ID,
        fixtures::API_KEY
    );
    std::fs::write(dir.join("sim.toml"), toml).expect("write");
    let sim = Simulator::from_file(dir.join("sim.toml"))
        .expect("valid config")
        .start()
        .await
        .expect("started");
    let _ = std::fs::remove_dir_all(&dir);
    let (_, pem) = sim.pay_public_key(MCH_ID).expect("v3 merchant");
    let configured = rsa::RsaPublicKey::from_public_key_pem(include_str!(
        "../src/pay/v3/testdata/rsa_test_public_key.pem"
    ))
    .expect("SPKI");
    assert_eq!(
        rsa::RsaPublicKey::from_public_key_pem(&pem).expect("SPKI"),
        configured
    );
    assert!(sim.pay_public_key("1900000110").is_none());
    let c = Client::new(&sim).await;
    assert_eq!(c.query("NOPE0001").await.status, 404);

    // v2 calls of a merchant without api_key: an unknown merchant.
    let answer = c
        .http
        .post(format!("{}/pay/orderquery", c.base))
        .body(format!(
            "<xml><appid>{APPID}</appid><mch_id>{MCH_ID}</mch_id><nonce_str>n</nonce_str><out_trade_no>X</out_trade_no><sign>S</sign></xml>"
        ))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("body");
    assert!(answer.contains("商户号mch_id不存在"), "{answer}");
    // v3 calls of a merchant without apiv3_key: 403 NO_AUTH.
    let v2_only = Auth {
        mchid: "1900000110".into(),
        ..Auth::good()
    };
    let a = c
        .send_with(
            Some(&v2_only),
            "GET",
            "/v3/pay/transactions/out-trade-no/NOPE0001?mchid=1900000110",
            "",
            None,
        )
        .await;
    assert_eq!((a.status.as_u16(), a.code()), (403, "NO_AUTH".into()));
    let key: reqwest::Response = c
        .http
        .get(format!(
            "{}/_sim/pay/v3/public-key?mch_id=1900000110",
            c.base
        ))
        .send()
        .await
        .expect("sent");
    assert_eq!(key.status(), 404);
}

#[tokio::test]
async fn time_expire_and_the_shop_fixture() {
    let sim = Simulator::from_toml_str(&fixtures::shop_toml(&["127.0.0.1:3000"], None))
        .expect("valid config")
        .start()
        .await
        .expect("started");
    let c = Client::new(&sim).await;
    let expire = time::OffsetDateTime::from_unix_timestamp(now() as i64 + 60)
        .expect("time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("rfc 3339");
    let body = json!({
        "appid": APPID, "mchid": MCH_ID, "description": "Demo", "out_trade_no": "V3EXPIRE01",
        "notify_url": "https://example.com/notify", "time_expire": expire,
        "amount": { "total": 1 }, "payer": { "openid": fixtures::ALICE },
    });
    let a = c
        .send("POST", "/v3/pay/transactions/jsapi", &body.to_string())
        .await;
    assert_eq!(a.status, 200, "{:?}", a.json());
    let prepay_id = a.json()["prepay_id"]
        .as_str()
        .expect("prepay_id")
        .to_owned();
    let check = c
        .control("/_sim/pay/check", &page_params(&prepay_id, "RSA"))
        .await;
    assert_eq!(check["ok"], true, "{check}");
    sim.advance_clock(120);
    let late = c
        .control("/_sim/pay/check", &page_params(&prepay_id, "RSA"))
        .await;
    assert_eq!(late["ok"], false, "{late}");
}
