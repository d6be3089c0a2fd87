//! WeChat Pay API v3 signatures, keys and resource decryption against the official vectors of
//! wechatpay-go and wechatpay-java, and the derived ones (`tests/vectors/v3/README.md` says which
//! is which and where each comes from).

use std::path::PathBuf;
use wechat_core::PayError;

use serde_json::Value;
use wechat_core::clock::ManualClock;
use wechat_core::pay::v3::{
    MerchantKey, PlatformCertificate, SignatureHeaders, WechatPayKeys, WechatPayPublicKey,
    authorization, decrypt_resource, pay_sign, verify_signature,
};
use wechat_core::testing::encrypt_resource;
use wechat_core::{ApiV3Key, Error};

/// The id the SDK tests register the test public key under.
const TEST_SERIAL: &str = "F5765756002FDD77";

fn vector(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/v3")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text(name: &str) -> String {
    String::from_utf8(vector(name)).unwrap()
}

/// `key=value` lines.
fn field(name: &str, key: &str) -> String {
    text(name)
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{key}=")).map(str::to_owned))
        .unwrap_or_else(|| panic!("{name} has no {key}"))
}

fn json(name: &str) -> Value {
    serde_json::from_slice(&vector(name)).unwrap()
}

fn merchant_key() -> MerchantKey {
    MerchantKey::from_pem(&vector("rsa_test_private_key.pem"), TEST_SERIAL).unwrap()
}

fn public_keys(id: &str) -> WechatPayKeys {
    WechatPayKeys::from(
        WechatPayPublicKey::from_pem(id, &vector("rsa_test_public_key.pem")).unwrap(),
    )
}

/// `Name: value` lines.
fn headers(name: &str) -> Vec<(String, String)> {
    text(name)
        .lines()
        .filter_map(|line| line.split_once(": "))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

fn header<'a>(all: &'a [(String, String)], name: &str) -> Option<&'a str> {
    all.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn signature_headers(all: &[(String, String)]) -> SignatureHeaders<'_> {
    SignatureHeaders {
        timestamp: header(all, "Wechatpay-Timestamp").unwrap(),
        nonce: header(all, "Wechatpay-Nonce").unwrap(),
        signature: header(all, "Wechatpay-Signature").unwrap(),
        serial: header(all, "Wechatpay-Serial").unwrap(),
        signature_type: header(all, "Wechatpay-Signature-Type"),
    }
}

#[test]
fn official_rsa_signature() {
    let expected = field("rsa_sign_vector.txt", "signature_b64");
    let message = field("rsa_sign_vector.txt", "message");
    assert_eq!(merchant_key().sign(message.as_bytes()).unwrap(), expected);
    let keys = public_keys(TEST_SERIAL);
    let now = 1_700_000_000;
    keys.verify(TEST_SERIAL, message.as_bytes(), &expected, now)
        .unwrap();
    assert!(
        keys.verify(TEST_SERIAL, b"wrong source", &expected, now)
            .is_err()
    );
    // The same key in the official self-signed certificate, found by its serial.
    let certificate = PlatformCertificate::from_pem(&vector("rsa_test_certificate.pem")).unwrap();
    assert_eq!(certificate.serial_no(), TEST_SERIAL);
    let valid = certificate.not_before() + 1;
    let by_certificate = WechatPayKeys::default().with_certificate(certificate);
    by_certificate
        .verify(TEST_SERIAL, message.as_bytes(), &expected, valid)
        .unwrap();
    assert_eq!(by_certificate.serial(), Some(TEST_SERIAL));
}

#[test]
fn pkcs1_keys_sign_like_pkcs8_ones() {
    // apiclient_key.pem is PKCS#8; older tools write PKCS#1 (BEGIN RSA PRIVATE KEY): the
    // RSAPrivateKey inside the PKCS#8 OCTET STRING, re-wrapped.
    let pem = text("rsa_test_private_key.pem");
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    use base64::Engine as _;
    let pkcs8 = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let pkcs1 = octet_string_of_pkcs8(&pkcs8);
    let encoded = base64::engine::general_purpose::STANDARD.encode(pkcs1);
    let mut pkcs1_pem = String::from("-----BEGIN RSA PRIVATE KEY-----\n");
    for line in encoded.as_bytes().chunks(64) {
        pkcs1_pem.push_str(std::str::from_utf8(line).unwrap());
        pkcs1_pem.push('\n');
    }
    pkcs1_pem.push_str("-----END RSA PRIVATE KEY-----\n");
    let key = MerchantKey::from_pem(pkcs1_pem.as_bytes(), TEST_SERIAL).unwrap();
    assert_eq!(
        key.sign(b"source").unwrap(),
        field("rsa_sign_vector.txt", "signature_b64")
    );
}

/// The contents of the OCTET STRING of a PKCS#8 PrivateKeyInfo (version, algorithm, key).
fn octet_string_of_pkcs8(der: &[u8]) -> &[u8] {
    fn element(input: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = input[0];
        let (len, header) = if input[1] < 0x80 {
            (usize::from(input[1]), 2)
        } else {
            let n = usize::from(input[1] & 0x7f);
            let len = input[2..2 + n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, 2 + n)
        };
        (tag, &input[header..header + len], &input[header + len..])
    }
    let (_, info, _) = element(der);
    let (_, _, rest) = element(info); // version
    let (_, _, rest) = element(rest); // algorithm
    let (tag, key, _) = element(rest);
    assert_eq!(tag, 0x04, "OCTET STRING");
    key
}

#[test]
fn derived_authorization_header() {
    let v = json("derived/authorization_vector.json");
    let s = |k: &str| v[k].as_str().unwrap().to_owned();
    let header = authorization(
        &s("mchid"),
        &merchant_key(),
        &s("method"),
        &s("canonical_url"),
        s("timestamp").parse().unwrap(),
        &s("nonce_str"),
        s("body").as_bytes(),
    )
    .unwrap();
    assert_eq!(header, s("authorization"));
    // A nonce that would break the header is refused, not sent.
    assert!(
        authorization(
            "1900009191",
            &merchant_key(),
            "GET",
            "/v3/certificates",
            1,
            "a\"b",
            b""
        )
        .is_err()
    );
}

#[test]
fn derived_jsapi_pay_sign() {
    let v = json("derived/paysign_vector.json");
    let f = |k: &str| v["fields"][k].as_str().unwrap().to_owned();
    let sign = pay_sign(
        &merchant_key(),
        &f("appId"),
        &f("timeStamp"),
        &f("nonceStr"),
        &f("package"),
    )
    .unwrap();
    assert_eq!(sign, v["paySign"].as_str().unwrap());
}

#[test]
fn official_aes_gcm() {
    let key = ApiV3Key::new(field("aes_gcm_vector.txt", "key"));
    let nonce = field("aes_gcm_vector.txt", "nonce");
    let aad = field("aes_gcm_vector.txt", "aad");
    let sealed = field("aes_gcm_vector.txt", "ciphertext_b64");
    let plain = decrypt_resource(&key, "AEAD_AES_256_GCM", &nonce, &aad, &sealed).unwrap();
    assert_eq!(plain, field("aes_gcm_vector.txt", "plaintext").as_bytes());
    assert_eq!(
        encrypt_resource(&key, &nonce, &aad, &plain).unwrap(),
        sealed
    );
    // Bad AAD, bad nonce, another algorithm, garbage: refused.
    for (algorithm, nonce, aad, sealed) in [
        (
            "AEAD_AES_256_GCM",
            nonce.as_str(),
            "associatedDatb",
            sealed.as_str(),
        ),
        (
            "AEAD_AES_256_GCM",
            "uluk4a9R25RX",
            aad.as_str(),
            sealed.as_str(),
        ),
        (
            "AEAD_SM4_GCM",
            nonce.as_str(),
            aad.as_str(),
            sealed.as_str(),
        ),
        (
            "AEAD_AES_256_GCM",
            nonce.as_str(),
            aad.as_str(),
            "not base64!",
        ),
        ("AEAD_AES_256_GCM", "short", aad.as_str(), sealed.as_str()),
    ] {
        assert!(matches!(
            decrypt_resource(&key, algorithm, nonce, aad, sealed),
            Err(Error::Pay(PayError::BadSignature(_)))
        ));
    }
}

#[test]
fn apiv3_keys_that_are_not_32_bytes_are_refused() {
    // The official Go notification uses a 16-byte key (AES-128): a production decoder refuses it.
    let short = ApiV3Key::new(text("notification_vector/apiv3_key.txt"));
    let err = decrypt_resource(&short, "AEAD_AES_256_GCM", "uluk4a9R25RW", "", "AAAA").unwrap_err();
    match err {
        Error::Config(config) => {
            assert!(config.setting().contains("WECHAT_PAY_V3_KEY"), "{config}");
            assert!(config.problem().contains("32"), "{config}");
            assert!(!config.to_string().contains("testMchAPIv3Key0"), "{config}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn official_certificate_download_decrypts() {
    let key = ApiV3Key::new(field("cert_download_expected.txt", "apiv3_key"));
    let response = json("cert_download_response.json");
    let entry = &response["data"][0];
    let e = &entry["encrypt_certificate"];
    let s = |k: &str| e[k].as_str().unwrap();
    let pem = decrypt_resource(
        &key,
        s("algorithm"),
        s("nonce"),
        s("associated_data"),
        s("ciphertext"),
    )
    .unwrap();
    assert_eq!(pem, vector("cert_download_decrypted.pem"));
    let certificate = PlatformCertificate::from_pem(&pem).unwrap();
    let expected = field("cert_download_expected.txt", "expected_serial");
    assert_eq!(certificate.serial_no(), expected);
    assert_eq!(entry["serial_no"].as_str().unwrap(), expected);
}

#[test]
fn official_notification_signature() {
    // AES-128 resource (see the README): only its signature is checked here.
    let all = headers("notification_vector/headers.txt");
    let body = vector("notification_vector/body.json");
    let at: u64 = text("notification_vector/verify_at_unix_time.txt")
        .trim()
        .parse()
        .unwrap();
    let certificate =
        PlatformCertificate::from_pem(&vector("notification_vector/platform_cert.pem")).unwrap();
    let headers = signature_headers(&all);
    assert_eq!(certificate.serial_no(), headers.serial);
    let keys = WechatPayKeys::default().with_certificate(certificate);
    verify_signature(&keys, &headers, &body, &ManualClock::at(at)).unwrap();
    let mut longer = body.clone();
    longer.push(b' ');
    assert!(verify_signature(&keys, &headers, &longer, &ManualClock::at(at)).is_err());
}

#[test]
fn derived_notifications_verify_and_decrypt() {
    for dir in [
        "derived/notification_transaction",
        "derived/notification_refund",
    ] {
        let all = headers(&format!("{dir}/headers.txt"));
        let body = vector(&format!("{dir}/body.json"));
        let at: u64 = text(&format!("{dir}/verify_at_unix_time.txt"))
            .trim()
            .parse()
            .unwrap();
        let keys = public_keys(TEST_SERIAL);
        let headers = signature_headers(&all);
        verify_signature(&keys, &headers, &body, &ManualClock::at(at + 299)).unwrap();
        verify_signature(&keys, &headers, &body, &ManualClock::at(at - 299)).unwrap();

        // Replays and clock errors of five minutes or more.
        for now in [at + 300, at - 300] {
            assert!(verify_signature(&keys, &headers, &body, &ManualClock::at(now)).is_err());
        }
        // Another body, another serial, a probe, another signature type.
        let mut altered = body.clone();
        altered.push(b'\n');
        assert!(verify_signature(&keys, &headers, &altered, &ManualClock::at(at)).is_err());
        let unknown = SignatureHeaders {
            serial: "PUB_KEY_ID_0000",
            ..headers.clone()
        };
        assert!(verify_signature(&keys, &unknown, &body, &ManualClock::at(at)).is_err());
        let probe_signature = format!("WECHATPAY/SIGNTEST/{}", headers.signature);
        let probe = SignatureHeaders {
            signature: &probe_signature,
            ..headers.clone()
        };
        assert!(verify_signature(&keys, &probe, &body, &ManualClock::at(at)).is_err());
        let sm2 = SignatureHeaders {
            signature_type: Some("WECHATPAY2-SM2-WITH-SM3"),
            ..headers.clone()
        };
        assert!(verify_signature(&keys, &sm2, &body, &ManualClock::at(at)).is_err());
        let untyped = SignatureHeaders {
            signature_type: None,
            ..headers.clone()
        };
        verify_signature(&keys, &untyped, &body, &ManualClock::at(at)).unwrap();

        // The resource decrypts to the expected plaintext, byte for byte.
        let envelope: Value = serde_json::from_slice(&body).unwrap();
        let r = &envelope["resource"];
        let s = |k: &str| r[k].as_str().unwrap();
        let key = ApiV3Key::new(text(&format!("{dir}/apiv3_key.txt")));
        let plain = decrypt_resource(
            &key,
            s("algorithm"),
            s("nonce"),
            s("associated_data"),
            s("ciphertext"),
        )
        .unwrap();
        assert_eq!(
            plain,
            vector(&format!("{dir}/expected_plaintext.json")),
            "{dir}"
        );
    }
}

#[test]
fn signature_headers_are_read_once_each() {
    let mut map = http::HeaderMap::new();
    for (name, value) in headers("derived/notification_transaction/headers.txt") {
        map.append(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    let read = SignatureHeaders::from_headers(&map).unwrap();
    assert_eq!(read.serial, TEST_SERIAL);
    assert_eq!(read.signature_type, Some("WECHATPAY2-SHA256-RSA2048"));
    map.append("wechatpay-nonce", "second".parse().unwrap());
    assert!(
        SignatureHeaders::from_headers(&map).is_none(),
        "a repeated header is ambiguous"
    );
    map.remove("wechatpay-nonce");
    assert!(
        SignatureHeaders::from_headers(&map).is_none(),
        "a missing header"
    );
}

#[test]
fn wrong_files_are_named() {
    let public = vector("rsa_test_public_key.pem");
    let certificate = vector("rsa_test_certificate.pem");
    let private = vector("rsa_test_private_key.pem");
    let problem = |e: Error| match e {
        Error::Config(c) => c.problem().to_owned(),
        other => panic!("{other:?}"),
    };
    assert!(
        problem(MerchantKey::from_pem(&public, TEST_SERIAL).unwrap_err()).contains("a public key")
    );
    assert!(
        problem(MerchantKey::from_pem(&certificate, TEST_SERIAL).unwrap_err())
            .contains("a certificate")
    );
    assert!(problem(MerchantKey::from_pem(b"not pem", TEST_SERIAL).unwrap_err()).contains("PEM"));
    assert!(MerchantKey::from_pem(&private, "not hex!").is_err());
    assert!(
        problem(WechatPayPublicKey::from_pem("PUB_KEY_ID_1", &private).unwrap_err())
            .contains("private key")
    );
    assert!(
        problem(WechatPayPublicKey::from_pem("PUB_KEY_ID_1", &certificate).unwrap_err())
            .contains("certificate")
    );
    assert!(WechatPayPublicKey::from_pem("", &public).is_err());
    // The certificate gives the serial, and must be the key's.
    let key = MerchantKey::from_pem_with_certificate(&private, &certificate).unwrap();
    assert_eq!(key.serial_no(), TEST_SERIAL);
    let other = vector("cert_download_decrypted.pem");
    let err = MerchantKey::from_pem_with_certificate(&private, &other).unwrap_err();
    assert!(problem(err).contains("another key"));
    // Nothing secret in Debug.
    let shown = format!("{key:?}");
    assert!(!shown.contains("MII"), "{shown}");
}

#[test]
fn an_expired_or_not_yet_valid_platform_certificate_verifies_nothing() {
    // The official self-signed certificate holds the test merchant key's public half.
    let certificate = PlatformCertificate::from_pem(&vector("rsa_test_certificate.pem")).unwrap();
    let (not_before, not_after) = (certificate.not_before(), certificate.not_after());
    assert!(not_before < not_after);
    let keys = WechatPayKeys::default().with_certificate(certificate);
    let key = merchant_key();
    let body = br#"{"id":"EV-1"}"#;
    // What WeChat Pay would send at `at`, checked on a clock that says `at`.
    let verify_at = |at: u64| {
        let timestamp = at.to_string();
        let nonce = "5K8264ILTKCH16CQ2502SI8ZNMTM67VS";
        let message = format!(
            "{timestamp}\n{nonce}\n{}\n",
            std::str::from_utf8(body).unwrap()
        );
        let signature = key.sign(message.as_bytes()).unwrap();
        let headers = SignatureHeaders {
            timestamp: &timestamp,
            nonce,
            signature: &signature,
            serial: TEST_SERIAL,
            signature_type: Some("WECHATPAY2-SHA256-RSA2048"),
        };
        verify_signature(&keys, &headers, body, &ManualClock::at(at))
    };
    verify_at(not_before).unwrap();
    verify_at(not_after - 1).unwrap();
    for at in [not_after, not_after + 1, not_after + 400 * 86_400] {
        let err = verify_at(at).unwrap_err();
        assert!(
            matches!(&err, Error::Pay(PayError::CertificateNotValid { serial, not_after: n, now, .. })
                if serial == TEST_SERIAL && *n == not_after && *now == at),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("expired at "), "{message}");
        assert!(message.contains(TEST_SERIAL), "{message}");
        assert!(message.contains("PUB_KEY_ID_"), "{message}");
    }
    let early = verify_at(not_before - 1).unwrap_err();
    assert!(
        matches!(early, Error::Pay(PayError::CertificateNotValid { .. })),
        "{early:?}"
    );
    assert!(early.to_string().contains("is not valid before"), "{early}");
}
