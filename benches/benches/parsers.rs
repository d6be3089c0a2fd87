//! How the parsers of untrusted input scale: each is fed adversarial input of growing size (1,
//! 8 and 60 KiB, or up to its cap), so that the time per byte can be compared across sizes; a
//! parser that is linear in its input shows a flat time per byte (criterion prints the
//! throughput). What they must refuse, and that they never panic, is tested in
//! `crates/wechat-core/tests/parsers.rs`.
//!
//! `cargo bench -p wechat-benches --bench parsers`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use wechat_core::jssdk::jssdk_page_url;
use wechat_core::pay::v2::PayFields;
use wechat_core::session::{SessionCookie, SessionKeys, safe_return_path};

/// Input sizes: the largest stays under the 64 KiB notification limit.
const SIZES: [usize; 3] = [1024, 8 * 1024, 60 * 1024];

/// `<xml>` with `n` bytes of distinct empty fields: refused at the field cap, after reading
/// 256 of them, whatever the size.
fn many_fields(n: usize) -> Vec<u8> {
    let mut body = String::from("<xml>");
    let mut i = 0;
    while body.len() < n - 6 {
        body.push_str(&format!("<f{i}/>"));
        i += 1;
    }
    body.push_str("</xml>");
    body.into_bytes()
}

/// `<xml>` with 16 fields sharing `n` bytes of entity references and CDATA: read in full.
fn heavy_values(n: usize) -> Vec<u8> {
    let per_field = n / 16;
    let mut body = String::from("<xml>");
    for i in 0..16 {
        body.push_str(&format!("<v{i}>"));
        let mut value = String::new();
        while value.len() + 30 < per_field {
            value.push_str("&amp;&#x4E2D;<![CDATA[a]]>x");
        }
        body.push_str(&value);
        body.push_str(&format!("</v{i}>"));
    }
    body.push_str("</xml>");
    body.into_bytes()
}

fn parsers(c: &mut Criterion) {
    let mut g = c.benchmark_group("parsers");
    g.measurement_time(Duration::from_secs(2));
    g.warm_up_time(Duration::from_millis(500));
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        let fields = many_fields(size);
        g.bench_with_input(
            BenchmarkId::new("v2 XML, distinct empty fields", size),
            &fields,
            |b, body| b.iter(|| PayFields::parse(black_box(body)).is_err()),
        );
        let values = heavy_values(size);
        assert!(PayFields::parse(&values).is_ok());
        g.bench_with_input(
            BenchmarkId::new("v2 XML, entities and CDATA", size),
            &values,
            |b, body| b.iter(|| PayFields::parse(black_box(body)).is_ok()),
        );
        let path = format!("/{}", "a/".repeat(size / 2));
        g.bench_with_input(
            BenchmarkId::new("safe_return_path", size),
            &path,
            |b, path| b.iter(|| safe_return_path(black_box(path)).len()),
        );
        let url = format!("https://shop.example.com/{}#frag", "p&q=1".repeat(size / 5));
        g.bench_with_input(BenchmarkId::new("jssdk_page_url", size), &url, |b, url| {
            b.iter(|| jssdk_page_url(black_box(url)).is_ok())
        });
    }
    // The cookie is capped at MAX_COOKIE_VALUE_LEN (3,800 bytes); longer values are refused
    // before any work.
    let cookie = SessionCookie::new(SessionKeys::new([1u8; 32]).expect("a 32-byte key"));
    for size in [512, 3_700, 64 * 1024] {
        g.throughput(Throughput::Bytes(size as u64));
        let forged = format!("{}.{}", "e".repeat(size - 44), "A".repeat(43));
        g.bench_with_input(
            BenchmarkId::new("SessionCookie::decode, forged", size),
            &forged,
            |b, v| b.iter(|| cookie.decode(black_box(v)).is_none()),
        );
    }
    g.finish();
}

criterion::criterion_group!(benches, parsers);
criterion::criterion_main!(benches);
