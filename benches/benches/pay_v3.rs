//! Criterion micro-benchmarks of WeChat Pay API v3, each beside the bare operation it contains
//! (measured in the same group, so compare the ratio):
//!
//! - the request's `Authorization` header, and the JSAPI `paySign`, beside a bare RSA-2048
//!   PKCS#1 v1.5 SHA-256 signature of the same message (ring);
//! - a payment notification's signature check (headers, skew, key by serial, RSA verify) and its
//!   resource decryption, beside a bare RSA verify plus AES-256-GCM open of the same bytes.
//!
//! The keys and the notification are the v3 test vectors of wechat-core
//! (`crates/wechat-core/tests/vectors/v3`). `cargo bench -p wechat-benches --bench pay_v3`.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use criterion::Criterion;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::SystemRandom;
use ring::signature::{self, RsaKeyPair, UnparsedPublicKey};
use wechat_core::ApiV3Key;
use wechat_core::clock::ManualClock;
use wechat_core::pay::v3::{
    MerchantKey, PayConfig, SignatureHeaders, WechatPayKeys, WechatPayPublicKey, authorization,
    decrypt_resource, pay_sign, request_message, verify_payment_notification, verify_signature,
};

fn vector(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/wechat-core/tests/vectors/v3")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text(name: &str) -> String {
    String::from_utf8(vector(name)).expect("UTF-8")
}

/// The DER inside a one-block PEM.
fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).expect("base64")
}

fn signing(c: &mut Criterion) {
    let key = MerchantKey::from_pem(&vector("rsa_test_private_key.pem"), "F5765756002FDD77")
        .expect("the test key");
    let bare = RsaKeyPair::from_pkcs8(&pem_der(&text("rsa_test_private_key.pem"))).expect("PKCS#8");
    let rng = SystemRandom::new();
    let body = br#"{"appid":"wx8888888888888888","mchid":"1900009191","description":"Coffee","out_trade_no":"T20240101001","notify_url":"https://shop.example.com/wechat/pay/notify","amount":{"total":1,"currency":"CNY"},"payer":{"openid":"o6_bmjrPTlm6_2sgVt7hMZOPfL2M"}}"#;
    let message = request_message(
        "POST",
        "/v3/pay/transactions/jsapi",
        1624523846,
        "A1B2C3D4E5F6G7",
        body,
    );
    let bare_sign = |message: &[u8]| {
        let mut out = vec![0u8; bare.public().modulus_len()];
        bare.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut out)
            .expect("signs");
        out
    };

    let mut g = c.benchmark_group("pay_v3_sign");
    g.bench_function("authorization (JSAPI prepay body)", |b| {
        b.iter(|| {
            authorization(
                "1900009191",
                &key,
                "POST",
                "/v3/pay/transactions/jsapi",
                1624523846,
                "A1B2C3D4E5F6G7",
                black_box(body),
            )
            .expect("signs")
        })
    });
    g.bench_function("pay_sign", |b| {
        b.iter(|| {
            pay_sign(
                &key,
                "wx8888888888888888",
                "1414561699",
                "5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
                black_box("prepay_id=wx201410272009395522657a690389285100"),
            )
            .expect("signs")
        })
    });
    g.bench_function("bare RSA-2048 sign of the request message", |b| {
        b.iter(|| bare_sign(black_box(&message)))
    });
    g.bench_function("bare RSA-2048 sign + base64", |b| {
        b.iter(|| STANDARD.encode(bare_sign(black_box(&message))))
    });
    g.finish();
}

fn notification(c: &mut Criterion) {
    let dir = "derived/notification_transaction";
    let headers_text = text(&format!("{dir}/headers.txt"));
    let header = |name: &str| {
        headers_text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .expect("header")
            .to_owned()
    };
    let (timestamp, nonce, signature_b64, serial) = (
        header("Wechatpay-Timestamp"),
        header("Wechatpay-Nonce"),
        header("Wechatpay-Signature"),
        header("Wechatpay-Serial"),
    );
    let body = vector(&format!("{dir}/body.json"));
    let at: u64 = timestamp.parse().expect("unix seconds");
    let clock = ManualClock::at(at);
    let api_v3_key = ApiV3Key::new(text(&format!("{dir}/apiv3_key.txt")));
    let keys = WechatPayKeys::from(
        WechatPayPublicKey::from_pem(&serial, &vector("rsa_test_public_key.pem")).expect("key"),
    );
    let envelope: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    let resource = &envelope["resource"];
    let field = |k: &str| resource[k].as_str().expect("resource field").to_owned();
    let (r_nonce, r_aad, r_ciphertext) = (
        field("nonce"),
        field("associated_data"),
        field("ciphertext"),
    );

    // The bare operations: RSA verify of the same message, AES-256-GCM open of the same bytes.
    let spki = pem_der(&text("rsa_test_public_key.pem"));
    // The RSAPublicKey at the end of the SPKI (after its 24-byte header for a 2048-bit key).
    let rsa_public =
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, spki[24..].to_vec());
    let signature = STANDARD.decode(&signature_b64).expect("base64");
    let mut message = Vec::new();
    for part in [timestamp.as_bytes(), nonce.as_bytes(), &body] {
        message.extend_from_slice(part);
        message.push(b'\n');
    }
    rsa_public
        .verify(&message, &signature)
        .expect("the bare verify accepts the vector");
    let aes = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, api_v3_key.expose_secret().as_bytes()).expect("32 bytes"),
    );
    let sealed = STANDARD.decode(&r_ciphertext).expect("base64");
    let nonce_bytes: [u8; 12] = r_nonce.as_bytes().try_into().expect("12 bytes");

    let mut g = c.benchmark_group("pay_v3_notify");
    // The typed path an application runs: headers + raw body → PaymentNotification.
    let config = PayConfig::builder(
        "1230000109",
        "wxd678efh567hg6787",
        MerchantKey::from_pem(&vector("rsa_test_private_key.pem"), "F5765756002FDD77")
            .expect("key"),
        api_v3_key.expose_secret(),
        "https://shop.example.com/pay/notify",
    )
    .wechat_pay_public_key(
        WechatPayPublicKey::from_pem(&serial, &vector("rsa_test_public_key.pem")).expect("key"),
    )
    .clock(std::sync::Arc::new(ManualClock::at(at)))
    .build()
    .expect("config");
    let mut header_map = http::HeaderMap::new();
    for (name, value) in [
        ("wechatpay-timestamp", &timestamp),
        ("wechatpay-nonce", &nonce),
        ("wechatpay-signature", &signature_b64),
        ("wechatpay-serial", &serial),
    ] {
        header_map.insert(name, value.parse().expect("header value"));
    }
    let paid = verify_payment_notification(&config, &keys, &header_map, &body).expect("verifies");
    assert_eq!(paid.total, 100);
    g.bench_function("verify_payment_notification (wechat-core, typed)", |b| {
        b.iter(|| {
            verify_payment_notification(&config, &keys, black_box(&header_map), black_box(&body))
                .expect("verifies")
                .total
        })
    });
    g.bench_function(
        "verify_signature + decrypt_resource + parse (wechat-core parts)",
        |b| {
            b.iter(|| {
                let headers = SignatureHeaders {
                    timestamp: &timestamp,
                    nonce: &nonce,
                    signature: &signature_b64,
                    serial: &serial,
                    signature_type: Some("WECHATPAY2-SHA256-RSA2048"),
                };
                verify_signature(&keys, &headers, black_box(&body), &clock).expect("verifies");
                let envelope: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
                let r = &envelope["resource"];
                let plain = decrypt_resource(
                    &api_v3_key,
                    r["algorithm"].as_str().expect("algorithm"),
                    r["nonce"].as_str().expect("nonce"),
                    r["associated_data"].as_str().expect("aad"),
                    r["ciphertext"].as_str().expect("ciphertext"),
                )
                .expect("decrypts");
                serde_json::from_slice::<serde_json::Value>(&plain).expect("JSON")
            })
        },
    );
    g.bench_function("bare RSA verify + AES-256-GCM open", |b| {
        b.iter(|| {
            rsa_public
                .verify(black_box(&message), &signature)
                .expect("verifies");
            let mut buffer = sealed.clone();
            aes.open_in_place(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(r_aad.as_bytes()),
                &mut buffer,
            )
            .expect("opens")
            .len()
        })
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    signing(&mut c);
    notification(&mut c);
    c.final_summary();
}
