//! The Rust side of the side-by-side with wechatpy: operations per second of wechat-core's
//! signing and notification verification on fixed inputs.
//!
//! ```sh
//! cargo run --release -p wechat-benches --bin pay-ops -- --dump-inputs   # the inputs, as JSON
//! cargo run --release -p wechat-benches --bin pay-ops -- --seconds 2      # {"op": ops/s, …}
//! cargo run --release -p wechat-benches --bin pay-ops -- --op sign_md5 --iterations 10000
//! ```
//!
//! Besides the operations compared with wechatpy, it runs the bare hashes they are compared with
//! and the login middleware's per-request work (`session_decode`, `session_decode_uncached`,
//! `login_decide`); `--op` runs
//! one of them a fixed number of times, for `benches/count-instructions.sh`.
//!
//! `benches/wechatpy/compare.sh` runs it beside wechatpy on the same inputs (read from
//! `--dump-inputs`, and checked to give the same signatures on both sides).

use std::hint::black_box;
use std::time::{Duration, Instant};

use clap::Parser;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use wechat_benches::fixtures;
use wechat_core::jssdk::sign_jssdk;
use wechat_core::pay::v2::{SignType, sign_pay_fields, verify_payment_notification};

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "wechat-core signing and notification verification, operations per second")]
struct Args {
    /// Print the inputs and the expected results as JSON and exit.
    #[arg(long)]
    dump_inputs: bool,
    /// Seconds of measurement per operation.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Run only this operation, exactly `--iterations` times, and print nothing: for counting
    /// instructions with `valgrind --tool=callgrind` (see benches/count-instructions.sh).
    #[arg(long)]
    op: Option<String>,
    /// Iterations of `--op`.
    #[arg(long, default_value_t = 10_000)]
    iterations: u64,
}

/// One operation on the fixed inputs.
type Op = Box<dyn FnMut() -> bool>;

/// Every operation, by name: the four compared with wechatpy, the bare hashes they are
/// compared with, and the per-request work of the login middleware.
fn ops() -> Vec<(&'static str, Op)> {
    let key = fixtures::pay_key();
    let md5_fields = fixtures::unified_order_fields(SignType::Md5);
    let hmac_fields = fixtures::unified_order_fields(SignType::HmacSha256);
    let md5_canonical = fixtures::canonical_string(&md5_fields, fixtures::PAY_KEY);
    let hmac_canonical = fixtures::canonical_string(&hmac_fields, fixtures::PAY_KEY);
    let config = fixtures::pay_config("http://127.0.0.1:9");
    let body = fixtures::notification_body();
    let ticket = fixtures::jsapi_ticket();
    let flow = fixtures::login_flow("http://127.0.0.1:9").expect("constant configuration");
    let header = fixtures::session_cookie_header(&flow).expect("the cookie encodes");
    let value = header
        .split_once('=')
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default();
    let (parts, ()) = http::Request::builder()
        .uri("/hello")
        .header(http::header::COOKIE, &header)
        .body(())
        .expect("a valid request")
        .into_parts();
    let cookie = flow.config().session_cookie().clone();
    // The same cookie (default name, `Secure` as on https, the same app) without the cache.
    let uncached = wechat_core::session::SessionCookie::builder(cookie.keys().clone())
        .secure(cookie.secure())
        .app_id(flow.client().appid().clone())
        .cache_capacity(0)
        .build()
        .expect("constant configuration");
    assert!(
        uncached.decode(&value).is_some(),
        "the uncached cookie verifies the value"
    );
    let uncached_value = value.clone();
    let sign_key = key.clone();
    let hmac_key = key.clone();
    vec![
        (
            "sign_md5",
            Box::new(move || {
                !sign_pay_fields(black_box(md5_fields), &sign_key, SignType::Md5).is_empty()
            }) as Op,
        ),
        (
            "sign_hmac_sha256",
            Box::new(move || {
                !sign_pay_fields(black_box(hmac_fields), &hmac_key, SignType::HmacSha256).is_empty()
            }),
        ),
        (
            "bare_md5",
            Box::new(move || Md5::digest(black_box(md5_canonical.as_bytes()))[0] != 1),
        ),
        (
            "bare_hmac_sha256",
            Box::new(move || {
                let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(fixtures::PAY_KEY.as_bytes())
                    .expect("HMAC takes any key length");
                mac.update(black_box(hmac_canonical.as_bytes()));
                mac.finalize().into_bytes()[0] != 1
            }),
        ),
        (
            "notify_verify_md5",
            Box::new(move || verify_payment_notification(&config, black_box(&body)).is_ok()),
        ),
        (
            "jssdk_sign",
            Box::new(move || {
                !sign_jssdk(
                    &ticket,
                    black_box(fixtures::JSSDK_NONCE),
                    fixtures::JSSDK_TIMESTAMP,
                    fixtures::JSSDK_PAGE,
                )
                .is_empty()
            }),
        ),
        (
            "session_decode",
            Box::new(move || cookie.decode(black_box(&value)).is_some()),
        ),
        (
            "session_decode_uncached",
            Box::new(move || uncached.decode(black_box(&uncached_value)).is_some()),
        ),
        (
            "axum_router_bare",
            axum_op(wechat_benches::servers::axum_bare(), &header),
        ),
        (
            "axum_router_noop_layer",
            axum_op(
                wechat_benches::servers::axum_bare()
                    .layer(tower::layer::layer_fn(|service| service)),
                &header,
            ),
        ),
        (
            "axum_router_layer",
            axum_op(
                wechat_benches::servers::axum_layer(
                    fixtures::login_flow("http://127.0.0.1:9").expect("constant configuration"),
                ),
                &header,
            ),
        ),
        (
            "axum_router_wrapped",
            axum_op(
                tower::Layer::layer(
                    &wechat_tower::WeChatLayer::new(
                        fixtures::login_flow("http://127.0.0.1:9").expect("constant configuration"),
                    ),
                    wechat_benches::servers::axum_bare(),
                ),
                &header,
            ),
        ),
        ("actix_app_bare", actix_op(false, &header)),
        ("actix_app_middleware", actix_op(true, &header)),
        (
            "login_decide",
            Box::new(move || {
                matches!(
                    flow.decide(black_box(&parts)),
                    wechat_core::login::Decision::Proceed(p) if p.session_user().is_some()
                )
            }),
        ),
    ]
}

/// One `GET /hello` with the session cookie through `router` (an axum `Router`, or a layer
/// around one), in process (no socket): what the router, its layers and the handler cost,
/// without hyper and the kernel.
fn axum_op<S>(router: S, cookie_header: &str) -> Op
where
    S: tower::Service<
            http::Request<axum::body::Body>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + 'static,
{
    use futures_util::FutureExt;
    use tower::ServiceExt;
    let cookie = http::HeaderValue::from_str(cookie_header).expect("a valid header value");
    Box::new(move || {
        let mut request = http::Request::new(axum::body::Body::empty());
        *request.uri_mut() = http::Uri::from_static("/hello");
        request
            .headers_mut()
            .insert(http::header::COOKIE, cookie.clone());
        // The hello handler never waits, so neither does the whole call.
        match router.clone().oneshot(request).now_or_never() {
            Some(Ok(response)) => response.status() == http::StatusCode::OK,
            _ => false,
        }
    })
}

/// The [`Op`] calling an initialized actix-web app `$app` on `$runner` (a macro: the app's
/// request type, `actix_http::Request`, is not nameable through actix-web).
macro_rules! actix_call {
    ($runner:expr, $app:expr, $cookie:expr) => {{
        let (runner, app, cookie) = ($runner, $app, $cookie.to_owned());
        Box::new(move || {
            let request = actix_web::test::TestRequest::get()
                .uri("/hello")
                .insert_header(("cookie", cookie.as_str()))
                .to_request();
            match runner.block_on(actix_web::dev::Service::call(&app, request)) {
                Ok(response) => response.status().as_u16() == 200,
                Err(_) => false,
            }
        }) as Op
    }};
}

/// One `GET /hello` with the session cookie through the actix-web hello app (behind the login
/// middleware when `middleware`), in process with `actix_web::test` (no socket).
fn actix_op(middleware: bool, cookie_header: &str) -> Op {
    use actix_web::{App, test, web};
    let runner = actix_web::rt::System::new();
    let hello = web::get().to(wechat_benches::servers::actix_hello);
    if middleware {
        let flow = fixtures::login_flow("http://127.0.0.1:9").expect("constant configuration");
        let app = runner.block_on(test::init_service(
            App::new()
                .wrap(wechat_actix::WeChatLoginMiddleware::new(flow))
                .route("/hello", hello),
        ));
        actix_call!(runner, app, cookie_header)
    } else {
        let app = runner.block_on(test::init_service(App::new().route("/hello", hello)));
        actix_call!(runner, app, cookie_header)
    }
}

fn main() {
    let args = Args::parse();
    if args.dump_inputs {
        println!("{}", inputs());
        return;
    }
    let mut ops = ops();
    // Every operation must succeed on its inputs, or its figure means nothing.
    for (name, op) in &mut ops {
        if !op() {
            eprintln!("pay-ops: {name} fails on its fixed input");
            std::process::exit(1);
        }
    }
    if let Some(name) = &args.op {
        let Some((_, op)) = ops.iter_mut().find(|(n, _)| n == name) else {
            let names: Vec<_> = ops.iter().map(|(n, _)| *n).collect();
            eprintln!("pay-ops: unknown op {name}; one of {}", names.join(", "));
            std::process::exit(2);
        };
        for _ in 0..args.iterations {
            black_box(op());
        }
        return;
    }
    let budget = Duration::from_secs_f64(args.seconds.max(0.05));
    let json: serde_json::Map<String, serde_json::Value> = ops
        .into_iter()
        .map(|(name, mut op)| {
            (
                name.to_owned(),
                serde_json::json!(ops_per_sec(budget, &mut op)),
            )
        })
        .collect();
    println!("{}", serde_json::Value::Object(json));
}

/// Runs `op` in batches until `budget` has passed; returns operations per second.
fn ops_per_sec(budget: Duration, op: &mut Op) -> f64 {
    // Warm up caches and the branch predictor.
    for _ in 0..1000 {
        black_box(op());
    }
    let start = Instant::now();
    let mut count: u64 = 0;
    loop {
        for _ in 0..1000 {
            black_box(op());
        }
        count += 1000;
        let elapsed = start.elapsed();
        if elapsed >= budget {
            return count as f64 / elapsed.as_secs_f64();
        }
    }
}

/// The inputs of every operation and the results wechat-core gives, for the Python side.
fn inputs() -> serde_json::Value {
    let key = fixtures::pay_key();
    let pairs = |sign_type| {
        fixtures::unified_order_fields(sign_type)
            .iter()
            .map(|(k, v)| serde_json::json!([k, v]))
            .collect::<Vec<_>>()
    };
    serde_json::json!({
        "api_key": fixtures::PAY_KEY,
        "appid": fixtures::APPID,
        "mch_id": fixtures::MCH_ID,
        "unified_order_md5": pairs(SignType::Md5),
        "unified_order_hmac_sha256": pairs(SignType::HmacSha256),
        "notification_xml": String::from_utf8_lossy(&fixtures::notification_body()),
        "jssdk": {
            "ticket": fixtures::JSSDK_TICKET,
            "noncestr": fixtures::JSSDK_NONCE,
            "timestamp": fixtures::JSSDK_TIMESTAMP,
            "url": fixtures::JSSDK_PAGE,
        },
        "expected": {
            "sign_md5": sign_pay_fields(fixtures::unified_order_fields(SignType::Md5), &key, SignType::Md5),
            "sign_hmac_sha256": sign_pay_fields(fixtures::unified_order_fields(SignType::HmacSha256), &key, SignType::HmacSha256),
            "jssdk_sign": sign_jssdk(&fixtures::jsapi_ticket(), fixtures::JSSDK_NONCE, fixtures::JSSDK_TIMESTAMP, fixtures::JSSDK_PAGE),
        },
    })
}
