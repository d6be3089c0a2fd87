use std::time::Duration;

use super::cookie::{MAX_NICKNAME_CHARS, MAX_REGION_CHARS};
use super::*;
use crate::oauth::Sex;
use crate::{OpenId, UnionId};

const NOW: u64 = 1_700_000_000;

fn keys(byte: u8) -> SessionKeys {
    SessionKeys::new([byte; 32]).unwrap()
}

fn full_user() -> SessionUser {
    SessionUser {
        openid: OpenId::new("o6_bmjrPTlm6_2sgVt7hMZOPfL2M"),
        unionid: Some(UnionId::new("o6_bmasdasdsad6_2sgVt7hMZOPfL")),
        profile: Some(Profile {
            nickname: "Alice 张".to_owned(),
            headimgurl: "http://127.0.0.1:3000/avatar.png".to_owned(),
            sex: Sex::Female,
            province: "Guangdong".to_owned(),
            city: "Shenzhen".to_owned(),
            country: "CN".to_owned(),
        }),
        is_snapshot_user: false,
        expires_at: NOW + 3600,
    }
}

#[test]
fn round_trip() {
    let cookie = SessionCookie::new(keys(1));
    let user = full_user();
    let value = cookie.encode(&user).unwrap();
    assert!(
        value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
        "{value}"
    );
    assert_eq!(cookie.decode_at(&value, NOW), Some(user));
    let guest = SessionUser {
        is_snapshot_user: true,
        ..SessionUser::new(OpenId::new("virtual"), NOW + 60)
    };
    assert_eq!(
        cookie.decode_at(&cookie.encode(&guest).unwrap(), NOW),
        Some(guest)
    );
}

#[test]
fn tampered_values_are_rejected() {
    let cookie = SessionCookie::new(keys(1));
    let value = cookie.encode(&full_user()).unwrap();
    let (body, tag) = value.split_once('.').unwrap();
    // Another payload with the old tag.
    let mut forged = full_user();
    forged.openid = OpenId::new("attacker");
    let other = cookie.encode(&forged).unwrap();
    let other_body = other.split_once('.').unwrap().0;
    assert_eq!(cookie.decode_at(&format!("{other_body}.{tag}"), NOW), None);
    // A flipped character in the tag or the body.
    let mut bad_tag = tag.to_owned().into_bytes();
    bad_tag[3] = if bad_tag[3] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        cookie.decode_at(
            &format!("{body}.{}", String::from_utf8(bad_tag).unwrap()),
            NOW
        ),
        None
    );
    let mut bad_body = body.to_owned().into_bytes();
    bad_body[5] = if bad_body[5] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        cookie.decode_at(
            &format!("{}.{tag}", String::from_utf8(bad_body).unwrap()),
            NOW
        ),
        None
    );
    for junk in [
        "",
        ".",
        "abc",
        "abc.def",
        "..",
        &format!("{body}."),
        &format!(".{tag}"),
    ] {
        assert_eq!(cookie.decode_at(junk, NOW), None, "{junk}");
    }
    // Another key.
    assert_eq!(SessionCookie::new(keys(2)).decode_at(&value, NOW), None);
}

#[test]
fn tags_of_another_length_are_rejected() {
    let cookie = SessionCookie::new(keys(1));
    let value = cookie.encode(&full_user()).unwrap();
    let (body, tag) = value.split_once('.').unwrap();
    assert_eq!(tag.len(), 43, "a 32-byte tag in unpadded base64url");
    assert!(cookie.decode_at(&value, NOW).is_some());
    // Truncated, extended (still decodable into the stack buffer, and too long for it), and
    // the tag twice: never accepted, never a panic.
    let long = "A".repeat(200);
    for bad in [
        &tag[..42],
        &tag[..40],
        &format!("{tag}AAAA"),
        &long,
        &format!("{tag}{tag}"),
    ] {
        assert_eq!(
            cookie.decode_at(&format!("{body}.{bad}"), NOW),
            None,
            "{bad}"
        );
    }
}

#[test]
fn verified_values_are_cached_and_still_checked() {
    let cookie = SessionCookie::new(keys(1));
    assert_eq!(
        cookie.cache_capacity(),
        SessionCookie::DEFAULT_CACHE_CAPACITY
    );
    let value = cookie.encode(&full_user()).unwrap();
    let cached = |cookie: &SessionCookie, value: &str| {
        cookie
            .cache
            .as_ref()
            .unwrap()
            .get(value.as_bytes(), NOW, |user, _| SessionUser::clone(user))
    };
    assert_eq!(cached(&cookie, &value), None);
    assert_eq!(cookie.decode_at(&value, NOW), Some(full_user()));
    // Stored on the first verification, shared with clones, and answered from there.
    let clone = cookie.clone();
    assert_eq!(cached(&clone, &value), Some(full_user()));
    assert_eq!(clone.decode_at(&value, NOW), Some(full_user()));
    // Expiry is checked on every hit.
    assert_eq!(cookie.decode_at(&value, NOW + 3600), None);
    // A value with the cached one's tag and another body shares its slot, not its result.
    let (_, tag) = value.split_once('.').unwrap();
    let mut forged = full_user();
    forged.openid = OpenId::new("attacker");
    let forged_body = cookie.encode(&forged).unwrap();
    let forged_body = forged_body.split_once('.').unwrap().0;
    assert_eq!(cookie.decode_at(&format!("{forged_body}.{tag}"), NOW), None);
    assert_eq!(cookie.decode_at(&value, NOW), Some(full_user()));
    // Other keys, other cache: the value is no session there.
    assert_eq!(SessionCookie::new(keys(2)).decode_at(&value, NOW), None);
    // Turned off: still verifies, stores nothing.
    let uncached = SessionCookie::builder(keys(1))
        .cache_capacity(0)
        .build()
        .unwrap();
    assert_eq!(uncached.cache_capacity(), 0);
    assert_eq!(uncached.decode_at(&value, NOW), Some(full_user()));
    assert_eq!(uncached.decode_at(&value, NOW + 3600), None);
    assert_eq!(
        SessionCookie::builder(keys(1))
            .cache_capacity(3000)
            .build()
            .unwrap()
            .cache_capacity(),
        4096
    );
}

#[test]
fn cached_values_keep_their_login_nonce() {
    let cookie = SessionCookie::new(keys(1));
    let value = cookie
        .encode_with_nonce(&full_user(), Some("nonce-1"))
        .unwrap();
    for _ in 0..2 {
        assert_eq!(
            cookie.decode_with_nonce(&value, NOW),
            Some((full_user(), Some("nonce-1".to_owned())))
        );
    }
    // The cache does not mix values of two users.
    let mut bob = full_user();
    bob.openid = OpenId::new("bob");
    let bob_value = cookie.encode(&bob).unwrap();
    assert_eq!(cookie.decode_at(&bob_value, NOW), Some(bob));
    assert_eq!(cookie.decode_at(&value, NOW), Some(full_user()));
}

#[test]
fn expired_values_are_rejected() {
    let cookie = SessionCookie::new(keys(1));
    let value = cookie.encode(&full_user()).unwrap();
    assert!(cookie.decode_at(&value, NOW + 3599).is_some());
    assert_eq!(cookie.decode_at(&value, NOW + 3600), None);
    assert_eq!(cookie.decode_at(&value, NOW + 100_000), None);
}

#[test]
fn rotation_accepts_previous_keys_until_removed() {
    let old = SessionCookie::new(keys(1));
    let value = old.encode(&full_user()).unwrap();
    let rotated = SessionCookie::new(keys(2).with_previous([1u8; 32]).unwrap());
    assert_eq!(rotated.decode_at(&value, NOW), Some(full_user()));
    // New cookies are signed with the current key only.
    let new_value = rotated.encode(&full_user()).unwrap();
    assert_eq!(old.decode_at(&new_value, NOW), None);
    assert!(
        SessionCookie::new(keys(2))
            .decode_at(&new_value, NOW)
            .is_some()
    );
    // Once the old key is removed, its cookies are no session.
    assert_eq!(SessionCookie::new(keys(2)).decode_at(&value, NOW), None);
}

#[test]
fn keys_are_validated_and_redacted() {
    assert!(SessionKeys::new([0u8; 31]).is_err());
    assert!(SessionKeys::from_hex("zz").is_err());
    assert!(SessionKeys::from_hex(&"ab".repeat(31)).is_err());
    let keys = SessionKeys::from_hex(&"ab".repeat(32))
        .unwrap()
        .with_previous_hex(&"cd".repeat(40))
        .unwrap();
    assert_eq!(keys.previous_len(), 1);
    let shown = format!("{keys:?}");
    assert_eq!(shown, "SessionKeys { current: [redacted], previous: 1 }");
    let cookie_shown = format!("{:?}", SessionCookie::new(keys));
    assert!(
        !cookie_shown.contains("abab") && !cookie_shown.contains("171, 171"),
        "{cookie_shown}"
    );
    // Two generated keys differ.
    let a = SessionCookie::new(SessionKeys::generate());
    let b = SessionCookie::new(SessionKeys::generate());
    assert_eq!(b.decode_at(&a.encode(&full_user()).unwrap(), NOW), None);
}

#[test]
fn long_profiles_are_cut_not_refused() {
    let cookie = SessionCookie::builder(keys(1)).name("s").build().unwrap();
    let mut user = full_user();
    let profile = user.profile.as_mut().unwrap();
    profile.nickname = "名".repeat(500);
    profile.city = "c".repeat(5000);
    profile.headimgurl = format!("https://thirdwx.qlogo.cn/{}", "x".repeat(2000));
    let value = cookie.encode(&user).unwrap();
    assert!(value.len() < MAX_COOKIE_VALUE_LEN);
    let back = cookie.decode_at(&value, NOW).unwrap();
    let p = back.profile.unwrap();
    assert_eq!(p.nickname.chars().count(), MAX_NICKNAME_CHARS);
    assert_eq!(p.city.len(), MAX_REGION_CHARS);
    assert!(p.headimgurl.is_empty());
    assert_eq!(p.country, "CN");
    // An id longer than any WeChat id is refused rather than cut.
    let mut weird = full_user();
    weird.openid = OpenId::new("o".repeat(300));
    assert!(cookie.encode(&weird).is_err());
}

#[test]
fn set_cookie_attributes() {
    let builder = || SessionCookie::builder(keys(1));
    let cookie = SessionCookie::builder(keys(1))
        .name("my_sess")
        .path("/app")
        .secure(true)
        .max_age(Duration::from_secs(100))
        .build()
        .unwrap();
    let header = cookie.set_cookie_at(&full_user(), NOW + 600).unwrap();
    let text = header.to_str().unwrap();
    assert!(text.starts_with("__Secure-my_sess="), "{text}");
    assert!(
        text.ends_with("; Path=/app; Max-Age=3000; HttpOnly; SameSite=Lax; Secure"),
        "{text}"
    );
    let clear = cookie.clear_cookie();
    assert_eq!(
        clear.to_str().unwrap(),
        "__Secure-my_sess=; Path=/app; Max-Age=0; HttpOnly; SameSite=Lax; Secure"
    );
    // On `Path=/`, `__Host-`; without the prefix on request.
    let root = SessionCookie::builder(keys(1)).name("my_sess").secure(true);
    assert_eq!(root.clone().build().unwrap().name(), "__Host-my_sess");
    let bare = root.host_prefix(false).build().unwrap();
    assert!(
        bare.set_cookie_at(&full_user(), NOW)
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("my_sess=")
    );
    assert!(builder().name("__Host-x").build().is_err());
    assert!(builder().name("__Secure-x").build().is_err());
    assert!(builder().name("bad name").build().is_err());
    assert!(builder().name("").build().is_err());
    assert!(builder().path("app").build().is_err());
    assert!(builder().path("/a;b").build().is_err());
    let err = builder()
        .max_age(Duration::from_secs(59))
        .build()
        .unwrap_err();
    assert_eq!(err.setting(), "SessionCookieBuilder::max_age");
}

#[test]
fn reads_cookie_headers() {
    let cookie = SessionCookie::new(keys(1));
    let value = cookie.encode(&full_user()).unwrap();
    let mut headers = http::HeaderMap::new();
    headers.append(
        http::header::COOKIE,
        "a=1; wechat_session=garbage".parse().unwrap(),
    );
    assert_eq!(cookie.read_at(&headers, NOW), None);
    headers.append(
        http::header::COOKIE,
        format!("other=2;wechat_session=\"{value}\"")
            .parse()
            .unwrap(),
    );
    assert_eq!(cookie.read_at(&headers, NOW), Some(full_user()));
    // Spaces around `=`, and another cookie whose value is not ASCII (it used to hide ours).
    let mut spaced = http::HeaderMap::new();
    spaced.insert(
        http::header::COOKIE,
        http::HeaderValue::from_bytes(
            format!("name=\u{4f60}\u{597d};  wechat_session = {value} ; z=1").as_bytes(),
        )
        .unwrap(),
    );
    assert_eq!(cookie.read_at(&spaced, NOW), Some(full_user()));
    let mut only_prefix = http::HeaderMap::new();
    only_prefix.insert(
        http::header::COOKIE,
        format!("xwechat_session={value}").parse().unwrap(),
    );
    assert_eq!(cookie.read_at(&only_prefix, NOW), None);
}

#[test]
fn extensions_helper() {
    let mut ext = http::Extensions::new();
    assert!(SessionUser::from_extensions(&ext).is_none());
    // A plain `SessionUser` is not what the middleware puts there: it is not read.
    ext.insert(full_user());
    assert!(SessionUser::from_extensions(&ext).is_none());
    ext.insert(std::sync::Arc::new(full_user()));
    assert_eq!(SessionUser::from_extensions(&ext), Some(&full_user()));
}

#[test]
fn a_header_of_only_the_session_is_read_as_the_general_reader_reads_it() {
    use super::cookie::{cookie_values_in, leading_cookie_value};
    let finder = memchr::memmem::Finder::new(b"wechat_session").into_owned();
    for header in [
        &b"wechat_session=abc.def"[..],
        b"wechat_session=abc.def; other=1",
        b"wechat_session= abc.def",
        b"wechat_session=abc.def ",
        b"wechat_session=\"abc.def\"",
        b"wechat_session=",
        b"wechat_session =abc",
        b"wechat_sessionx=abc",
        b"other=1; wechat_session=abc",
    ] {
        let general = cookie_values_in(header, &finder).next();
        // When the fast path reads a value, it is the general reader's first one; otherwise the
        // general reader does the work (and may find a value).
        if let Some(value) = leading_cookie_value(header, b"wechat_session") {
            assert_eq!(Some(value), general, "{header:?}");
        }
    }
    assert_eq!(
        leading_cookie_value(b"wechat_session=abc.def", b"wechat_session"),
        Some(&b"abc.def"[..])
    );
    assert_eq!(
        leading_cookie_value(b"wechat_session=a; b=1", b"wechat_session"),
        None
    );
}

#[test]
fn a_failing_leading_value_does_not_hide_a_later_one() {
    let cookie = SessionCookie::new(keys(1));
    let value = cookie.encode(&full_user()).unwrap();
    let mut headers = http::HeaderMap::new();
    headers.append(
        http::header::COOKIE,
        "wechat_session=forged.x".parse().unwrap(),
    );
    assert_eq!(cookie.read_at(&headers, NOW), None);
    headers.append(
        http::header::COOKIE,
        format!("wechat_session={value}").parse().unwrap(),
    );
    assert_eq!(cookie.read_at(&headers, NOW), Some(full_user()));
}
