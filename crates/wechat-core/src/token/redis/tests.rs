use super::connect::{describe, parse_cluster_urls, parse_url, redact_url};
use super::*;

#[test]
fn credentials_round_trip_as_json() {
    let token = StoredToken::new("tok\"en", 1_700_000_000);
    let raw = encode(&token);
    assert_eq!(raw, r#"{"value":"tok\"en","expires_at":1700000000}"#);
    assert_eq!(decode(raw.as_bytes()), Ok(token));
}

#[test]
fn unparsable_values_are_refused() {
    for raw in [
        &b"plain-token"[..],
        b"",
        b"{}",
        br#"{"value":"","expires_at":1}"#,
        br#"{"value":"x","expires_at":-1}"#,
        br#"{"value":"x"}"#,
        b"\xff\xfe",
    ] {
        assert!(decode(raw).is_err(), "{raw:?}");
    }
}

#[test]
fn ttl_follows_the_expiry() {
    assert_eq!(ttl_millis(100, 40_000), Some(60_000));
    assert_eq!(ttl_millis(100, 99_999), Some(1));
    assert_eq!(ttl_millis(100, 100_000), None);
    assert_eq!(ttl_millis(100, 200_000), None);
    assert_eq!(ttl_millis(u64::MAX, 0), Some(MAX_KEY_LIFETIME_MS));
}

#[test]
fn urls_are_described_without_passwords() {
    let info = parse_url("redis://user:hunter2@redis.internal:6380/3").unwrap();
    assert_eq!(describe(&info), "redis://redis.internal:6380/3");
    assert_eq!(
        describe(&parse_url("redis://127.0.0.1/").unwrap()),
        "redis://127.0.0.1:6379/0"
    );
    let redacted = redact_url("redis://user:hunter2@redis.internal:6380/3");
    assert!(!redacted.contains("hunter2"), "{redacted}");
    let redacted = redact_url("unix:///run/redis.sock?db=1&pass=hunter2");
    assert!(!redacted.contains("hunter2"), "{redacted}");
    let builder = RedisStore::builder("redis://:hunter2@redis.internal/").prefix("p:");
    assert!(!format!("{builder:?}").contains("hunter2"));
}

#[test]
fn bad_urls_are_configuration_errors() {
    let err = parse_url("rediss://:hunter2@redis.internal/#insecure").unwrap_err();
    assert!(
        matches!(err, Error::Config(ref m) if m.problem().contains("tls_root_certificates")),
        "{err}"
    );
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let err = parse_url("http://:hunter2@redis.internal/").unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(parse_url("redis://host/notanumber").is_err());
}

#[test]
fn tls_urls_are_described_as_rediss() {
    let info = parse_url("rediss://:hunter2@redis.internal:6380/1").unwrap();
    assert_eq!(describe(&info), "rediss://redis.internal:6380/1");
}

#[test]
fn locks_share_their_keys_hash_slot() {
    assert_eq!(
        lock_key("wechat:access_token:wx1"),
        "{wechat:access_token:wx1}:lock"
    );
    // A key with a hash tag keeps it.
    assert_eq!(
        lock_key("{shop}:wechat:access_token:wx1"),
        "{shop}:wechat:access_token:wx1:lock"
    );
    // A `}` outside a hash tag cannot be inside the lock's: such a key's lock cannot share
    // its slot (a cluster answers CROSSSLOT; the documentation asks for no such braces).
    assert_eq!(lock_key("a{}b"), "a{}b:lock");
    for key in ["wechat:access_token:wx1", "{shop}:k", "p{:k", "x{y}z", "{"] {
        assert_eq!(slot_text(key), slot_text(&lock_key(key)), "{key}");
    }
    assert!(has_hash_tag("{a}"));
    assert!(!has_hash_tag("{}a"));
    assert!(!has_hash_tag("a}{"));
}

/// The part of a key Redis Cluster hashes.
fn slot_text(key: &str) -> &str {
    if let Some(open) = key.find('{') {
        if let Some(len) = key[open + 1..].find('}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

#[test]
fn tokens_refuse_a_key_prefix_with_a_stray_brace() {
    let config = crate::Config::new("wx1234567890abcdef", "0123456789abcdef0123456789abcdef");
    let build = |prefix: &str| {
        crate::token::Tokens::builder(&config, reqwest::Client::new())
            .key_prefix(prefix)
            .build()
    };
    let err = build("wechat}:").unwrap_err();
    assert!(
        err.to_string().contains("TokensBuilder::key_prefix"),
        "{err}"
    );
    assert!(err.to_string().contains("hash tag"), "{err}");
    assert!(build("{wechat}:").is_ok());
    assert!(build("wechat:").is_ok());
}

#[test]
fn cluster_nodes_are_checked() {
    let nodes = |urls: &[&str]| urls.iter().map(|u| (*u).to_owned()).collect::<Vec<_>>();
    assert!(parse_cluster_urls(&[]).is_err());
    let err = parse_cluster_urls(&nodes(&["redis://a:7000", "rediss://b:7000"])).unwrap_err();
    assert!(err.to_string().contains("mix"), "{err}");
    let err = parse_cluster_urls(&nodes(&["redis://:hunter2@a:7000/2"])).unwrap_err();
    assert!(err.to_string().contains("database 0"), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(parse_cluster_urls(&nodes(&["unix:///tmp/r.sock"])).is_err());
    assert_eq!(
        parse_cluster_urls(&nodes(&["redis://a:7000", "redis://b:7001"]))
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn prefixes_with_braces_that_form_no_hash_tag_are_refused() {
    for prefix in ["a{}b", "p}", "x{", "{:", "a}b{c"] {
        // Checked before any connection: nothing listens on port 1.
        let err = RedisStore::cluster_builder(["redis://127.0.0.1:1"])
            .prefix(prefix)
            .connect()
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(err, Error::Config(_)) && message.contains("RedisStoreBuilder::prefix"),
            "{prefix}: {message}"
        );
        assert!(message.contains("hash tag"), "{message}");
        assert!(
            RedisStore::builder("redis://127.0.0.1:1/")
                .prefix(prefix)
                .connect()
                .await
                .is_err()
        );
    }
    // Valid: no braces, or a hash tag (whose key and lock share a slot), even with a brace
    // after it (Redis hashes the first tag only).
    for prefix in ["", "shop:", "{shop}:", "app:{shop}:", "{shop}}", "}{shop}"] {
        assert_eq!(
            super::super::store::key_prefix_problem(prefix),
            None,
            "{prefix}"
        );
        let key = format!("{prefix}wechat:access_token:wx1");
        assert_eq!(slot_text(&key), slot_text(&lock_key(&key)), "{prefix}");
    }
}

#[tokio::test]
async fn certificates_are_checked_before_connecting() {
    let err = RedisStore::builder("redis://127.0.0.1:1/")
        .tls_root_certificates("-----BEGIN CERTIFICATE-----\n")
        .connect()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("rediss://"), "{err}");
    let err = RedisStore::builder("rediss://127.0.0.1:1/")
        .tls_client_certificate("-----BEGIN CERTIFICATE-----\n", "hunter2 is not PEM")
        .connect()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("PRIVATE KEY"), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let builder = RedisStore::builder("rediss://127.0.0.1:1/")
        .tls_client_certificate("cert", "-----BEGIN PRIVATE KEY-----\nhunter2");
    assert!(!format!("{builder:?}").contains("hunter2"));
}

#[tokio::test]
async fn an_unreachable_server_fails_fast() {
    // Nothing listens on port 1 of localhost: the connection is refused at once.
    let started = std::time::Instant::now();
    let err = RedisStore::connect("redis://:hunter2@127.0.0.1:1/")
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let msg = err.to_string();
    assert!(matches!(err, Error::Store(_)), "{msg}");
    assert!(msg.contains("redis://127.0.0.1:1/0"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
}
