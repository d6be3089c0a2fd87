//! Property tests of every parser that reads untrusted input: the v2 XML reader, the v3
//! notification, the session cookie, the OAuth state, the return path and the JS-SDK page URL.
//! For arbitrary bytes none panics; each refuses with a typed error, or returns a value that
//! encodes back to what it read. (How their time grows with the input's size is measured in
//! `benches/benches/parsers.rs`, not asserted here.)

mod common;

use std::time::Duration;
use wechat_core::PayError;

use proptest::collection::vec;
use proptest::prelude::*;
use wechat_core::clock::ManualClock;
use wechat_core::jssdk::jssdk_page_url;
use wechat_core::pay::v2::{MAX_NOTIFICATION_BODY, PayFields};
use wechat_core::pay::v3::verify_payment_notification;
use wechat_core::session::{OAuthState, SessionCookie, SessionKeys, SessionUser, safe_return_path};
use wechat_core::testing::encrypt_resource;
use wechat_core::{ApiV3Key, AppId, Error, OpenId};

use common::v3::{
    API_V3_KEY, SIGNED_AT, WECHAT_SERIAL, config_at, keys, signed_headers, wechat_key,
};

const NOW: u64 = 1_700_000_000;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Bytes that look like XML often enough to reach deep into the parser.
fn xmlish() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop_oneof![
        Just(b"<xml>".to_vec()),
        Just(b"</xml>".to_vec()),
        Just(b"<a>".to_vec()),
        Just(b"</a>".to_vec()),
        Just(b"<b/>".to_vec()),
        Just(b"<![CDATA[".to_vec()),
        Just(b"]]>".to_vec()),
        Just(b"&amp;".to_vec()),
        Just(b"&#x4E2D;".to_vec()),
        Just(b"&bogus;".to_vec()),
        Just(b"<!DOCTYPE x>".to_vec()),
        Just(b"<?xml version=\"1.0\"?>".to_vec()),
        Just(b"<!-- c -->".to_vec()),
        vec(any::<u8>(), 0..8),
    ];
    vec(pieces, 0..40).prop_map(|parts| parts.concat())
}

/// A field name WeChat could send.
fn field_name() -> impl Strategy<Value = String> {
    (
        prop::sample::select(b"abcdefghijklmnopqrstuvwxyz_".to_vec()),
        vec(
            prop::sample::select(b"abcdefghijklmnopqrstuvwxyz0123456789_".to_vec()),
            0..12,
        ),
    )
        .prop_map(|(first, rest)| {
            let mut name = String::from(first as char);
            name.extend(rest.into_iter().map(char::from));
            name
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn v2_xml_never_panics_and_what_it_reads_encodes_back(body in prop_oneof![vec(any::<u8>(), 0..512), xmlish()]) {
        match PayFields::parse(&body) {
            Ok(fields) => {
                let xml = fields.to_xml().expect("names that parsed are plain names");
                prop_assert_eq!(PayFields::parse(xml.as_bytes()).unwrap(), fields);
            }
            Err(e) => prop_assert!(matches!(e, Error::Pay(PayError::Xml(_))), "{e:?}"),
        }
    }

    #[test]
    fn v2_xml_reads_exactly_the_fields_written(
        pairs in vec((field_name(), any::<String>()), 0..40),
    ) {
        // Any text (CDATA, `]]>`, markup characters, Unicode) survives the round trip; XML
        // cannot carry most control characters, which WeChat never sends.
        let mut fields = PayFields::new();
        for (name, value) in pairs {
            let value: String = value
                .chars()
                .filter(|c| !c.is_control() || matches!(c, '\t' | '\n'))
                .collect();
            fields.insert(name, value);
        }
        let xml = fields.to_xml().unwrap();
        if xml.len() <= MAX_NOTIFICATION_BODY {
            prop_assert_eq!(PayFields::parse(xml.as_bytes()).unwrap(), fields);
        }
    }

    #[test]
    fn session_values_never_panic_and_verified_ones_encode_back(value in prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,50}",
    ]) {
        let cookie = cookie();
        if let Some(user) = cookie.decode(&value) {
            let again = cookie.encode(&user).unwrap();
            prop_assert_eq!(cookie.decode(&again), Some(user));
        }
    }

    #[test]
    fn sessions_encode_and_decode_to_the_same_user(
        openid in "[A-Za-z0-9_-]{1,64}",
        lifetime in 1u64..10_000_000,
    ) {
        let cookie = cookie();
        let user = SessionUser::new(OpenId::new(openid), NOW + lifetime);
        let value = cookie.encode(&user).unwrap();
        prop_assert_eq!(cookie.decode(&value), Some(user.clone()));
        // One flipped character anywhere: no session.
        for at in [0, value.len() / 2, value.len() - 1] {
            let mut bytes = value.clone().into_bytes();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            if tampered != value {
                prop_assert_eq!(cookie.decode(&tampered), None);
            }
        }
    }

    #[test]
    fn oauth_states_never_panic_and_refuse_with_a_typed_error(
        state in prop_oneof![any::<String>(), "[A-Za-z0-9]{0,130}"],
        r in proptest::option::of(any::<String>()),
    ) {
        let clock = ManualClock::at(NOW);
        match OAuthState::verify(&session_keys(), &app(), &state, r.as_deref(), &clock) {
            Ok(_) => prop_assert!(false, "an unsigned state verified"),
            Err(e) => prop_assert!(matches!(e, Error::InvalidState(_)), "{e:?}"),
        }
    }

    #[test]
    fn oauth_states_carry_their_return_path(path in any::<String>(), retry in any::<bool>()) {
        let clock = ManualClock::at(NOW);
        let keys = session_keys();
        let state = OAuthState::issue(&keys, &app(), &path, Duration::from_secs(600), retry, &clock);
        let safe = safe_return_path(&path);
        // The callback gets `r` back only when it is not `/`.
        let r = (safe != "/").then_some(safe);
        let verified = OAuthState::verify(&keys, &app(), state.as_str(), r, &clock).unwrap();
        prop_assert_eq!(verified.return_path(), safe);
        prop_assert_eq!(verified.is_retry(), retry);
    }

    #[test]
    fn return_paths_are_local_and_stable(path in prop_oneof![
        any::<String>(),
        "[/\\\\:a-z.%?#]{0,30}",
    ]) {
        let safe = safe_return_path(&path);
        prop_assert!(safe.starts_with('/'), "{safe}");
        prop_assert!(!safe.starts_with("//") && !safe.starts_with("/\\"), "{safe}");
        prop_assert!(!safe.contains('\\'), "{safe}");
        prop_assert_eq!(safe_return_path(safe), safe);
        prop_assert!(safe == "/" || path.starts_with(safe), "{path:?} -> {safe:?}");
    }

    #[test]
    fn jssdk_page_urls_never_panic_and_are_stable(url in prop_oneof![
        any::<String>(),
        "https?://[a-z.]{1,12}(:[0-9]{1,5})?(/[a-z%&=?#;]{0,20}){0,3}",
    ]) {
        match jssdk_page_url(&url) {
            Ok(signed) => {
                prop_assert!(!signed.contains('#'), "{signed}");
                prop_assert_eq!(jssdk_page_url(&signed).unwrap(), signed.clone());
            }
            Err(e) => prop_assert!(matches!(e, Error::InvalidPageUrl(_)), "{e:?}"),
        }
    }
}

proptest! {
    // Each case signs with RSA-2048: fewer cases.
    #![proptest_config(ProptestConfig { cases: 48, ..config() })]

    #[test]
    fn signed_v3_notifications_of_any_content_never_panic(body in prop_oneof![
        vec(any::<u8>(), 0..2048),
        any::<String>().prop_map(String::into_bytes),
        json_envelope(),
    ]) {
        // Correctly signed, so everything after the signature check is exercised.
        let headers = signed_headers(&wechat_key(), SIGNED_AT, WECHAT_SERIAL, &body);
        match verify_payment_notification(&config_at(SIGNED_AT), &keys(), &headers, &body) {
            Ok(n) => prop_assert!(false, "a made-up notification was accepted: {n:?}"),
            Err(e) => prop_assert!(
                matches!(
                    e,
                    Error::UnexpectedResponse { .. }
                        | Error::Pay(PayError::NotificationMismatch(_))
                        | Error::Pay(PayError::BadSignature(_))
                ),
                "{e:?}"
            ),
        }
    }
}

/// A v3 envelope whose encrypted resource is arbitrary JSON-ish text.
fn json_envelope() -> impl Strategy<Value = Vec<u8>> {
    (any::<String>(), "[a-z_.A-Z]{0,24}").prop_map(|(plain, event)| {
        let nonce = "fdasflkja484";
        let ciphertext =
            encrypt_resource(&ApiV3Key::new(API_V3_KEY), nonce, "transaction", plain.as_bytes())
                .unwrap();
        serde_json::json!({
            "id": "EV-1", "resource_type": "encrypt-resource", "event_type": event,
            "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                         "ciphertext": ciphertext, "associated_data": "transaction", "nonce": nonce},
        })
        .to_string()
        .into_bytes()
    })
}

fn session_keys() -> SessionKeys {
    SessionKeys::new([3u8; 32]).unwrap()
}

fn app() -> AppId {
    AppId::new("wx1234567890abcdef")
}

fn cookie() -> SessionCookie {
    SessionCookie::builder(session_keys())
        .app_id(app())
        .clock(std::sync::Arc::new(ManualClock::at(NOW)))
        .build()
        .unwrap()
}
