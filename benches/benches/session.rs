//! Criterion micro-benchmarks of the session cookie, the per-request cost of the login
//! middleware: verifying a cookie value (answered from the verified-value cache, and in full
//! with the cache off), reading it from the `Cookie` header, and the whole `LoginFlow::decide`
//! for a request with a valid session, beside the bare HMAC-SHA256 of the same cookie payload.
//!
//! `cargo bench -p wechat-benches --bench session`.

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use wechat_benches::fixtures;

fn session(c: &mut Criterion) {
    let flow = fixtures::login_flow("http://127.0.0.1:9").expect("constant configuration");
    let header = fixtures::session_cookie_header(&flow).expect("the cookie encodes");
    let cookie = flow.config().session_cookie();
    let value = header
        .split_once('=')
        .map(|(_, v)| v.to_owned())
        .expect("name=value");
    let request = http::Request::builder()
        .method("GET")
        .uri("/hello")
        .header(http::header::COOKIE, &header)
        .body(())
        .expect("a valid request");
    let (parts, ()) = request.into_parts();
    let payload = value
        .split_once('.')
        .map(|(p, _)| p.to_owned())
        .expect("payload.tag");
    let key = hex::decode(fixtures::SESSION_KEY_HEX).expect("hex key");

    // The same cookie (default name, `Secure` as on https, the same app) without the cache.
    let uncached = wechat_core::session::SessionCookie::builder(cookie.keys().clone())
        .secure(cookie.secure())
        .app_id(flow.client().appid().clone())
        .cache_capacity(0)
        .build()
        .expect("constant configuration");
    // Both measure a value that verifies, not a refusal.
    assert!(cookie.decode(&value).is_some() && uncached.decode(&value).is_some());

    let mut g = c.benchmark_group("session_cookie");
    g.bench_function("SessionCookie::decode (verified before: cache hit)", |b| {
        b.iter(|| cookie.decode(black_box(&value)).is_some())
    });
    g.bench_function("SessionCookie::decode (cache off: verify + parse)", |b| {
        b.iter(|| uncached.decode(black_box(&value)).is_some())
    });
    g.bench_function("SessionCookie::read (Cookie header)", |b| {
        b.iter(|| cookie.read(black_box(&parts.headers)).is_some())
    });
    g.bench_function("LoginFlow::decide (valid session)", |b| {
        b.iter(|| match flow.decide(black_box(&parts)) {
            wechat_core::login::Decision::Proceed(p) => p.session_user().is_some(),
            _ => false,
        })
    });
    g.bench_function("bare HMAC-SHA256 of the payload", |b| {
        b.iter(|| {
            let mut mac =
                <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes any key length");
            mac.update(black_box(payload.as_bytes()));
            mac.finalize().into_bytes()
        })
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    session(&mut c);
    c.final_summary();
}
