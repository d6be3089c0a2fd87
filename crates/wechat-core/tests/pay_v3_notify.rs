//! API v3 notifications: the derived vectors decode to typed values, and every forged, altered,
//! stale, misdirected or malformed notification is refused before the application sees it.

use std::path::PathBuf;
use wechat_core::PayError;

use http::{HeaderMap, HeaderValue, StatusCode};
use wechat_core::pay::v3::{
    MAX_NOTIFICATION_BODY, MerchantKey, PayClient, RefundStatus, TradeState,
    verify_payment_notification, verify_refund_notification,
};
use wechat_core::pay::{ApiVersion, NotificationReply};
use wechat_core::testing::encrypt_resource;
use wechat_core::{ApiV3Key, Error};

mod common;

use common::v3::{
    API_V3_KEY, APPID, MCH_ID, SIGNED_AT, WECHAT_SERIAL, config_at, keys, signed_headers, vector,
    wechat_key,
};

fn vector_headers(dir: &str) -> HeaderMap {
    let text = String::from_utf8(vector(&format!("{dir}/headers.txt"))).unwrap();
    let mut headers = HeaderMap::new();
    for (name, value) in text.lines().filter_map(|l| l.split_once(": ")) {
        headers.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    headers
}

/// A notification as WeChat Pay sends it: `resource` encrypted, the body signed.
struct Notification {
    event_type: &'static str,
    original_type: &'static str,
    resource: serde_json::Value,
    timestamp: u64,
    serial: &'static str,
    key: MerchantKey,
}

impl Notification {
    fn payment(resource: serde_json::Value) -> Self {
        Self {
            event_type: "TRANSACTION.SUCCESS",
            original_type: "transaction",
            resource,
            timestamp: SIGNED_AT,
            serial: WECHAT_SERIAL,
            key: wechat_key(),
        }
    }

    fn refund(resource: serde_json::Value) -> Self {
        Self {
            event_type: "REFUND.SUCCESS",
            original_type: "refund",
            ..Self::payment(resource)
        }
    }

    fn body(&self) -> Vec<u8> {
        let nonce = "fdasflkja484";
        let ciphertext = encrypt_resource(
            &ApiV3Key::new(API_V3_KEY),
            nonce,
            self.original_type,
            self.resource.to_string().as_bytes(),
        )
        .unwrap();
        serde_json::json!({
            "id": "EV-1", "create_time": "2021-06-24T16:37:26+08:00", "resource_type": "encrypt-resource",
            "event_type": self.event_type, "summary": "ok",
            "resource": {"original_type": self.original_type, "algorithm": "AEAD_AES_256_GCM",
                         "ciphertext": ciphertext, "associated_data": self.original_type, "nonce": nonce},
        })
        .to_string()
        .into_bytes()
    }

    fn headers_for(&self, body: &[u8]) -> HeaderMap {
        signed_headers(&self.key, self.timestamp, self.serial, body)
    }

    fn signed(&self) -> (HeaderMap, Vec<u8>) {
        let body = self.body();
        (self.headers_for(&body), body)
    }
}

fn paid() -> serde_json::Value {
    serde_json::json!({
        "mchid": MCH_ID, "appid": APPID, "out_trade_no": "T2021062400001", "transaction_id": "4200000000202106240000000001",
        "trade_type": "JSAPI", "trade_state": "SUCCESS", "trade_state_desc": "支付成功", "bank_type": "OTHERS",
        "attach": "", "success_time": "2021-06-24T16:37:00+08:00", "payer": {"openid": "oUser"},
        "amount": {"total": 100, "payer_total": 90, "currency": "CNY", "payer_currency": "CNY"}
    })
}

fn refunded() -> serde_json::Value {
    serde_json::json!({
        "mchid": MCH_ID, "transaction_id": "4200000000202106240000000001", "out_trade_no": "T2021062400001",
        "refund_id": "50000000382019052709732678859", "out_refund_no": "R2021062400001", "refund_status": "SUCCESS",
        "success_time": "2021-06-24T16:40:00+08:00", "user_received_account": "招商银行信用卡0403",
        "amount": {"total": 100, "refund": 30, "payer_total": 100, "payer_refund": 30}
    })
}

#[test]
fn derived_vectors_decode_to_typed_values() {
    let config = config_at(SIGNED_AT + 10);
    let dir = "derived/notification_transaction";
    let payment = verify_payment_notification(
        &config,
        &keys(),
        &vector_headers(dir),
        &vector(&format!("{dir}/body.json")),
    )
    .unwrap();
    assert_eq!(
        payment.out_trade_no.as_str(),
        "1217752501201407033233368018"
    );
    assert_eq!(
        payment.transaction_id.as_str(),
        "4200000000201806081234567890"
    );
    assert_eq!(payment.total, 100);
    assert_eq!(
        payment.openid.as_ref().map(|o| o.as_str()),
        Some("oUpF8uMuAJO_M2pxb1Q9zNjWeS6o")
    );
    assert_eq!(payment.attach.as_deref(), Some("自定义数据"));
    assert_eq!(payment.id, "EV-2018022511223320873");
    assert_eq!(payment.transaction.trade_state, TradeState::Success);

    let dir = "derived/notification_refund";
    let refund = verify_refund_notification(
        &config,
        &keys(),
        &vector_headers(dir),
        &vector(&format!("{dir}/body.json")),
    )
    .unwrap();
    assert_eq!(refund.refund.refund_status, RefundStatus::Success);
    assert!(refund.event_type.starts_with("REFUND."));
}

#[test]
fn a_genuine_payment_and_refund_verify() {
    let config = config_at(SIGNED_AT + 1);
    let (headers, body) = Notification::payment(paid()).signed();
    let payment = verify_payment_notification(&config, &keys(), &headers, &body).unwrap();
    assert_eq!(payment.total, 100);
    assert_eq!(payment.payer_total, Some(90));
    assert_eq!(payment.attach, None, "an empty attach is none");

    let (headers, body) = Notification::refund(refunded()).signed();
    let refund = verify_refund_notification(&config, &keys(), &headers, &body).unwrap();
    assert_eq!(refund.refund.amount.refund, 30);
    assert_eq!(refund.refund.out_refund_no.as_str(), "R2021062400001");
}

fn refused(headers: &HeaderMap, body: &[u8]) -> Error {
    verify_payment_notification(&config_at(SIGNED_AT + 1), &keys(), headers, body).unwrap_err()
}

#[test]
fn forged_altered_stale_and_probing_notifications_are_refused() {
    let genuine = Notification::payment(paid());
    let (headers, body) = genuine.signed();

    // Signed with another key under WeChat Pay's serial.
    let other_key = MerchantKey::from_pem(&other_private_key(), WECHAT_SERIAL).unwrap();
    let forged = Notification {
        key: other_key,
        ..Notification::payment(paid())
    };
    let (h, b) = forged.signed();
    assert!(matches!(
        refused(&h, &b),
        Error::Pay(PayError::BadSignature(_))
    ));

    // A body altered after signing (the amount, in the clear envelope: any byte).
    let mut tampered = body.clone();
    let at = tampered.iter().position(|&b| b == b'1').unwrap();
    tampered[at] = b'2';
    assert!(matches!(
        refused(&headers, &tampered),
        Error::Pay(PayError::BadSignature(_))
    ));

    // Replayed 5 minutes later, or signed 5 minutes ahead.
    for timestamp in [SIGNED_AT - 300, SIGNED_AT + 302] {
        let stale = Notification {
            timestamp,
            ..Notification::payment(paid())
        };
        let (h, b) = stale.signed();
        let e = refused(&h, &b);
        assert!(e.to_string().contains("5 minutes"), "{e}");
    }

    // A serial nobody configured.
    let unknown = Notification {
        serial: "PUB_KEY_ID_0000000000000000000000000000",
        ..Notification::payment(paid())
    };
    let (h, b) = unknown.signed();
    let e = refused(&h, &b);
    assert!(
        matches!(&e, Error::Pay(PayError::UnknownSerial { serial }) if serial == "PUB_KEY_ID_0000000000000000000000000000"),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("not configured")
            && e.to_string()
                .contains("PUB_KEY_ID_0000000000000000000000000000"),
        "the error names the serial: {e}"
    );

    // WeChat Pay's probe.
    let mut probe = headers.clone();
    probe.insert(
        "wechatpay-signature",
        HeaderValue::from_static("WECHATPAY/SIGNTEST/ZmFrZQ=="),
    );
    let e = refused(&probe, &body);
    assert!(e.to_string().contains("SIGNTEST"), "{e}");

    // No signature headers at all; a header sent twice.
    assert!(matches!(
        refused(&HeaderMap::new(), &body),
        Error::Pay(PayError::BadSignature(_))
    ));
    let mut twice = headers.clone();
    twice.append("wechatpay-nonce", HeaderValue::from_static("again"));
    assert!(matches!(
        refused(&twice, &body),
        Error::Pay(PayError::BadSignature(_))
    ));

    // Another signature type.
    let mut other_type = headers.clone();
    other_type.insert(
        "wechatpay-signature-type",
        HeaderValue::from_static("WECHATPAY2-SM2-WITH-SM3"),
    );
    assert!(matches!(
        refused(&other_type, &body),
        Error::Pay(PayError::BadSignature(_))
    ));
}

#[test]
fn notifications_for_someone_else_or_unpaid_are_refused() {
    let mut other_mch = paid();
    other_mch["mchid"] = "1900000001".into();
    let mut other_app = paid();
    other_app["appid"] = "wx0000000000000000".into();
    let mut unpaid = paid();
    unpaid["trade_state"] = "NOTPAY".into();
    for resource in [other_mch, other_app, unpaid] {
        let (h, b) = Notification::payment(resource).signed();
        assert!(matches!(
            refused(&h, &b),
            Error::Pay(PayError::NotificationMismatch(_))
        ));
    }
    // A refund notification posted to the payment route, and the other way round.
    let (h, b) = Notification::refund(refunded()).signed();
    assert!(matches!(
        refused(&h, &b),
        Error::Pay(PayError::NotificationMismatch(_))
    ));
    let (h, b) = Notification::payment(paid()).signed();
    assert!(verify_refund_notification(&config_at(SIGNED_AT), &keys(), &h, &b).is_err());
    let mut other_mch = refunded();
    other_mch["mchid"] = "1900000001".into();
    let (h, b) = Notification::refund(other_mch).signed();
    assert!(matches!(
        verify_refund_notification(&config_at(SIGNED_AT), &keys(), &h, &b),
        Err(Error::Pay(PayError::NotificationMismatch(_)))
    ));
}

#[test]
fn undecryptable_malformed_and_oversized_bodies_are_refused_without_panic() {
    // Encrypted with another APIv3 key, correctly signed.
    let genuine = Notification::payment(paid());
    let body = String::from_utf8(genuine.body()).unwrap();
    let other = encrypt_resource(
        &ApiV3Key::new("0123456789abcdefghijABCDEFGHIJ01"),
        "fdasflkja484",
        "transaction",
        paid().to_string().as_bytes(),
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut swapped = v.clone();
    swapped["resource"]["ciphertext"] = other.into();
    let swapped = swapped.to_string().into_bytes();
    assert!(matches!(
        refused(&genuine.headers_for(&swapped), &swapped),
        Error::Pay(PayError::BadSignature(_))
    ));

    // Signed garbage of every shape: never a panic, always an error.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    for junk in [
        &b""[..],
        b"{}",
        b"not json",
        b"{\"id\":1}",
        deep.as_bytes(),
        b"{\"id\":\"x\",\"event_type\":\"TRANSACTION.SUCCESS\",\"resource\":{\"algorithm\":\"AEAD_AES_256_GCM\",\"ciphertext\":\"!!\",\"nonce\":\"short\"}}",
    ] {
        let e = refused(&genuine.headers_for(junk), junk);
        assert!(!matches!(e, Error::Config(_)), "{e:?}");
    }
    let big = vec![b' '; MAX_NOTIFICATION_BODY + 1];
    assert!(matches!(
        refused(&genuine.headers_for(&big), &big),
        Error::UnexpectedResponse { .. }
    ));
}

#[test]
fn duplicate_keys_and_many_keys_are_refused_or_read_in_one_pass() {
    let genuine = Notification::payment(paid());
    let body = String::from_utf8(genuine.body()).unwrap();
    // Two `event_type`s: which one the application acts on would depend on the parser.
    let doubled = body.replacen(
        "\"event_type\":",
        "\"event_type\":\"REFUND.SUCCESS\",\"event_type\":",
        1,
    );
    assert_ne!(doubled, body);
    let doubled = doubled.into_bytes();
    let e = refused(&genuine.headers_for(&doubled), &doubled);
    assert!(e.to_string().contains("duplicate field"), "{e}");

    // The same inside the encrypted resource.
    let mut twice = paid().to_string();
    twice.insert_str(1, "\"out_trade_no\":\"OTHER\",");
    let nonce = "fdasflkja484";
    let ciphertext = encrypt_resource(
        &ApiV3Key::new(API_V3_KEY),
        nonce,
        "transaction",
        twice.as_bytes(),
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut swapped = v.clone();
    swapped["resource"]["ciphertext"] = ciphertext.into();
    let swapped = swapped.to_string().into_bytes();
    let e = refused(&genuine.headers_for(&swapped), &swapped);
    assert!(e.to_string().contains("duplicate field"), "{e}");

    // Thousands of unknown keys up to the size limit: read (and ignored) in one pass.
    let mut padded = v.clone();
    let extra = padded.as_object_mut().unwrap();
    let mut size = body.len();
    let mut i = 0;
    while size < MAX_NOTIFICATION_BODY - 4096 {
        let key = format!("k{i}");
        size += key.len() + 8; // "key":null,
        extra.insert(key, serde_json::Value::Null);
        i += 1;
    }
    assert!(i > 3_000, "{i}");
    let padded = serde_json::to_vec(&padded).unwrap();
    let notification = verify_payment_notification(
        &config_at(SIGNED_AT),
        &keys(),
        &genuine.headers_for(&padded),
        &padded,
    )
    .unwrap();
    assert_eq!(
        Some(notification.transaction.out_trade_no.as_str()),
        paid()["out_trade_no"].as_str()
    );
}

fn client() -> PayClient {
    PayClient::new(config_at(SIGNED_AT + 1)).unwrap()
}

#[tokio::test]
async fn the_handler_runs_once_per_verified_payment_and_gates_the_acknowledgement() {
    let pay = client();
    let (headers, body) = Notification::payment(paid()).signed();

    let mut seen = Vec::new();
    let reply = pay
        .handle_payment_notification(&headers, &body, |n| {
            seen.push(n.total);
            async { Ok::<(), String>(()) }
        })
        .await;
    assert_eq!(reply, NotificationReply::success(ApiVersion::V3));
    assert_eq!(
        reply.clone().into_response().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(seen, [100]);

    // The application could not record it: no acknowledgement, WeChat Pay sends it again.
    let reply = pay
        .handle_payment_notification(&headers, &body, |_| async { Err("database down") })
        .await;
    assert_eq!(reply.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!reply.is_success());
    let response = reply.into_response();
    let json: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(json["code"], "FAIL");
    assert!(
        !json["message"].as_str().unwrap().contains("database"),
        "no internals"
    );

    // A forged one never reaches the handler.
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    let reply = pay
        .handle_payment_notification(&headers, &tampered, |_| async {
            panic!("the handler must not see a forged notification");
            #[allow(unreachable_code)]
            Ok::<(), String>(())
        })
        .await;
    assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);

    // Verified but unpaid: nothing to record, acknowledged so that it stops.
    let mut unpaid = paid();
    unpaid["trade_state"] = "CLOSED".into();
    let (h, b) = Notification::payment(unpaid).signed();
    let reply = pay
        .handle_payment_notification(&h, &b, |_| async {
            panic!("nothing to record");
            #[allow(unreachable_code)]
            Ok::<(), String>(())
        })
        .await;
    assert!(reply.is_success());

    let big = vec![b'{'; MAX_NOTIFICATION_BODY + 1];
    let reply = pay
        .handle_payment_notification(&headers, &big, |_| async { Ok::<(), String>(()) })
        .await;
    assert_eq!(reply.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn refund_notifications_are_acknowledged_only_after_the_handler() {
    let pay = client();
    let (headers, body) = Notification::refund(refunded()).signed();
    let reply = pay
        .handle_refund_notification(&headers, &body, |n| async move {
            assert_eq!(n.refund.amount.refund, 30);
            Ok::<(), String>(())
        })
        .await;
    assert!(reply.is_success());
    let reply = pay
        .handle_refund_notification(&headers, &body, |_| async { Err("busy") })
        .await;
    assert_eq!(reply.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

/// A second RSA key (PKCS#8), for "signed with another key".
fn other_private_key() -> Vec<u8> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/other_rsa_private_key.pem");
    std::fs::read(path).unwrap()
}
