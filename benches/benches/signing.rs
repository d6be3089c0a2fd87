//! Criterion micro-benchmarks of the signing paths, each beside its baseline:
//!
//! - WeChat Pay v2 `sign` of a typical 12-field `unifiedorder`, MD5 and HMAC-SHA256, beside the
//!   bare hash of the same `stringSignTemp` (target: sign <= 3x the bare hash);
//! - a payment notification, MD5 and HMAC-SHA256: parse + verify + typed value, and its parts,
//!   beside the bare hash of its canonical string (target: <= 2x);
//! - the JS-SDK `wx.config` signature, beside the bare SHA-1 of the same string.
//!
//! `cargo bench -p wechat-benches --bench signing` (1 s warm-up and 3 s measurement per
//! benchmark by default; criterion's `--warm-up-time`/`--measurement-time` override them).

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;
use sha2::Sha256;
use wechat_benches::fixtures;
use wechat_core::jssdk::{JsSdkConfig, sign_jssdk};
use wechat_core::pay::v2::{
    PayFields, SignType, sign_pay_fields, verify_pay_fields, verify_payment_notification,
};

/// The bare HMAC-SHA256 of `input` keyed with the merchant API key: the baseline.
fn hmac(input: &[u8]) -> impl AsRef<[u8]> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(fixtures::PAY_KEY.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(input);
    mac.finalize().into_bytes()
}

fn pay_sign(c: &mut Criterion) {
    let key = fixtures::pay_key();
    for (sign_type, group) in [
        (SignType::Md5, "pay_sign/md5"),
        (SignType::HmacSha256, "pay_sign/hmac_sha256"),
    ] {
        let fields = fixtures::unified_order_fields(sign_type);
        let canonical = fixtures::canonical_string(&fields, fixtures::PAY_KEY);
        let mut g = c.benchmark_group(group);
        g.bench_function("sign_pay_fields, 12 fields", |b| {
            b.iter(|| sign_pay_fields(black_box(fields), &key, sign_type))
        });
        match sign_type {
            SignType::Md5 => {
                g.bench_function("bare hash of stringSignTemp", |b| {
                    b.iter(|| Md5::digest(black_box(canonical.as_bytes())))
                });
                g.bench_function("bare hash + uppercase hex", |b| {
                    b.iter(|| hex::encode_upper(Md5::digest(black_box(canonical.as_bytes()))))
                });
            }
            SignType::HmacSha256 => {
                g.bench_function("bare hash of stringSignTemp", |b| {
                    b.iter(|| hmac(black_box(canonical.as_bytes())))
                });
                g.bench_function("bare hash + uppercase hex", |b| {
                    b.iter(|| hex::encode_upper(hmac(black_box(canonical.as_bytes()))))
                });
            }
        }
        g.finish();
    }
}

fn notification(c: &mut Criterion) {
    for sign_type in [SignType::Md5, SignType::HmacSha256] {
        let config = fixtures::pay_config_signed("http://127.0.0.1:9", sign_type);
        let body = fixtures::signed_notification_body(sign_type);
        let parsed = PayFields::parse(&body).expect("the fixture parses");
        let sign = parsed.get("sign").expect("signed").to_owned();
        let key = fixtures::pay_key();
        assert!(verify_payment_notification(&config, &body).is_ok());
        let group = match sign_type {
            SignType::Md5 => "pay_notify",
            SignType::HmacSha256 => "pay_notify_hmac_sha256",
        };
        let mut g = c.benchmark_group(group);
        g.bench_function(
            "verify_payment_notification (parse + verify + typed)",
            |b| b.iter(|| verify_payment_notification(&config, black_box(&body)).is_ok()),
        );
        g.bench_function("PayFields::parse only", |b| {
            b.iter(|| PayFields::parse(black_box(&body)).is_ok())
        });
        g.bench_function("verify_pay_fields only", |b| {
            b.iter(|| verify_pay_fields(black_box(&parsed), &key, sign_type, &sign).is_ok())
        });
        // The baseline of the target (notification <= 2x): the bare hash of the same
        // canonical string (the fields but `sign`, sorted, `&key=`), measured in the same group.
        let unsigned: Vec<(&str, &str)> =
            parsed.iter().filter(|(name, _)| *name != "sign").collect();
        let canonical = fixtures::canonical_string(&unsigned, fixtures::PAY_KEY);
        match sign_type {
            SignType::Md5 => g.bench_function("bare MD5 of the canonical string", |b| {
                b.iter(|| Md5::digest(black_box(canonical.as_bytes())))
            }),
            SignType::HmacSha256 => g
                .bench_function("bare HMAC-SHA256 of the canonical string", |b| {
                    b.iter(|| hmac(black_box(canonical.as_bytes())))
                }),
        };
        g.finish();
    }
}

fn jssdk(c: &mut Criterion) {
    let ticket = fixtures::jsapi_ticket();
    let string1 = format!(
        "jsapi_ticket={}&noncestr={}&timestamp={}&url={}",
        fixtures::JSSDK_TICKET,
        fixtures::JSSDK_NONCE,
        fixtures::JSSDK_TIMESTAMP,
        fixtures::JSSDK_PAGE
    );
    let mut g = c.benchmark_group("jssdk");
    g.bench_function("sign_jssdk", |b| {
        b.iter(|| {
            sign_jssdk(
                &ticket,
                black_box(fixtures::JSSDK_NONCE),
                fixtures::JSSDK_TIMESTAMP,
                black_box(fixtures::JSSDK_PAGE),
            )
        })
    });
    g.bench_function("JsSdkConfig::sign (URL prepared + signed)", |b| {
        b.iter(|| {
            JsSdkConfig::sign(
                fixtures::appid(),
                &ticket,
                black_box(fixtures::JSSDK_PAGE),
                fixtures::JSSDK_NONCE,
                fixtures::JSSDK_TIMESTAMP,
            )
            .is_ok()
        })
    });
    g.bench_function("bare SHA-1 + hex of string1", |b| {
        b.iter(|| hex::encode(Sha1::digest(black_box(string1.as_bytes()))))
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    pay_sign(&mut c);
    notification(&mut c);
    jssdk(&mut c);
    c.final_summary();
}
