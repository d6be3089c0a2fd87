//! The Rust side of the side-by-sides with wechatpy (Pay v2) and with the v3 SDKs: operations
//! per second of wechat-core's signing and notification verification on fixed inputs.
//!
//! ```sh
//! cargo run --release -p wechat-benches --bin pay-ops -- --dump-inputs   # the inputs, as JSON
//! cargo run --release -p wechat-benches --bin pay-ops -- --seconds 2      # {"op": ops/s, …}
//! cargo run --release -p wechat-benches --bin pay-ops -- --only v3_pay_sign,bare_rsa_sign --rounds 10
//! cargo run --release -p wechat-benches --bin pay-ops -- --op sign_md5 --iterations 10000
//! ```
//!
//! Besides the operations compared with wechatpy, it runs the bare hashes they are compared with
//! and the login middleware's per-request work (`session_decode`, `session_decode_uncached`,
//! `login_decide`); `--op` runs
//! one of them a fixed number of times, for `benches/count-instructions.sh`.
//!
//! The Pay v3 operations (`v3_authorization`, `v3_pay_sign`, `v3_notify_verify`) run beside the
//! bare ring operations they contain (`bare_rsa_sign`, `bare_rsa_verify_aes_gcm`), on the v3
//! test vectors ([`wechat_benches::fixtures::v3`]).
//!
//! `benches/wechatpy/compare.sh` runs it beside wechatpy, and `benches/v3-sdks/compare.sh`
//! beside the v3 SDKs, on the same inputs (read from `--dump-inputs`, and checked to give the
//! same results on both sides).

use std::hint::black_box;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::Parser;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::SystemRandom;
use ring::signature::{self, RsaKeyPair, UnparsedPublicKey};
use sha2::Sha256;
use wechat_benches::fixtures;
use wechat_benches::fixtures::v3;
use wechat_core::jssdk::sign_jssdk;
use wechat_core::pay::v2::{SignType, sign_pay_fields, verify_payment_notification};
use wechat_core::pay::v3::{PaymentNotification, authorization, pay_sign, request_message};

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
    /// Measure only these operations (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Split each operation's `--seconds` into this many rounds, the operations taking turns
    /// round by round, so that a machine that drifts during the run slows them alike.
    #[arg(long, default_value_t = 1)]
    rounds: u32,
    /// Print each round's operations per second (a list per operation) instead of the rate
    /// over all rounds: for ratios paired round by round.
    #[arg(long)]
    per_round: bool,
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
/// compared with, the per-request work of the login middleware, and the Pay v3 operations
/// with their bare ring baselines.
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
    let mut ops: Vec<(&'static str, Op)> = vec![
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
            axum_op(wechat_benches::apps::axum_bare(), &header),
        ),
        (
            "axum_router_noop_layer",
            axum_op(
                wechat_benches::apps::axum_bare().layer(tower::layer::layer_fn(|service| service)),
                &header,
            ),
        ),
        (
            "axum_router_layer",
            axum_op(
                wechat_benches::apps::axum_layer(
                    fixtures::login_flow("http://127.0.0.1:9").expect("constant configuration"),
                ),
                &header,
            ),
        ),
        (
            "axum_router_wrapped",
            axum_op(
                tower::Layer::layer(
                    &wechat_tower::WeChatLoginLayer::new(
                        fixtures::login_flow("http://127.0.0.1:9").expect("constant configuration"),
                    ),
                    wechat_benches::apps::axum_bare(),
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
    ];
    ops.extend(v3_ops());
    ops
}

/// The Pay v3 operations, each beside the bare ring operation it contains.
fn v3_ops() -> Vec<(&'static str, Op)> {
    let key = v3::merchant_key();
    let pay_key = key.clone();
    let config = v3::pay_config();
    let keys = v3::wechat_pay_keys();
    let headers = v3::notification_header_map();
    let body = v3::NOTIFICATION_BODY.as_bytes();

    // The bare sign: the request message of the Authorization header (the paySign message is
    // shorter: a few hundred bytes less to hash, next to a 2048-bit private-key operation).
    let bare_key =
        RsaKeyPair::from_pkcs8(&v3::pem_der(v3::MERCHANT_PRIVATE_KEY_PEM)).expect("PKCS#8");
    let rng = SystemRandom::new();
    let message = request_message(
        v3::PREPAY_METHOD,
        v3::PREPAY_URL,
        v3::PREPAY_TIMESTAMP,
        v3::PREPAY_NONCE,
        v3::PREPAY_BODY.as_bytes(),
    );

    // The bare verify + open: the notification's signed message and its resource's bytes.
    let spki = v3::pem_der(v3::WECHAT_PAY_PUBLIC_KEY_PEM);
    // The RSAPublicKey at the end of the SPKI (after its 24-byte header for a 2048-bit key).
    let rsa_public =
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, spki[24..].to_vec());
    let notification_message = v3::notification_message();
    let notification_signature = STANDARD
        .decode(v3::notification_header("Wechatpay-Signature"))
        .expect("base64");
    let envelope: serde_json::Value = serde_json::from_slice(body).expect("JSON");
    let resource = |k: &str| envelope["resource"][k].as_str().expect("resource field");
    let sealed = STANDARD.decode(resource("ciphertext")).expect("base64");
    let nonce: [u8; 12] = resource("nonce").as_bytes().try_into().expect("12 bytes");
    let aad = resource("associated_data").to_owned();
    let aes = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, v3::API_V3_KEY.as_bytes()).expect("32 bytes"),
    );

    vec![
        (
            "v3_authorization",
            Box::new(move || {
                authorization(
                    v3::MCHID,
                    &key,
                    v3::PREPAY_METHOD,
                    v3::PREPAY_URL,
                    v3::PREPAY_TIMESTAMP,
                    v3::PREPAY_NONCE,
                    black_box(v3::PREPAY_BODY.as_bytes()),
                )
                .is_ok_and(|h| !h.is_empty())
            }) as Op,
        ),
        (
            "v3_pay_sign",
            Box::new(move || {
                pay_sign(
                    &pay_key,
                    v3::PAY_APPID,
                    v3::PAY_TIMESTAMP,
                    v3::PAY_NONCE,
                    black_box(v3::PAY_PACKAGE),
                )
                .is_ok_and(|s| !s.is_empty())
            }),
        ),
        (
            "bare_rsa_sign",
            Box::new(move || {
                let mut out = vec![0u8; bare_key.public().modulus_len()];
                bare_key
                    .sign(
                        &signature::RSA_PKCS1_SHA256,
                        &rng,
                        black_box(&message),
                        &mut out,
                    )
                    .is_ok()
            }),
        ),
        (
            "v3_notify_verify",
            Box::new(move || {
                wechat_core::pay::v3::verify_payment_notification(
                    &config,
                    &keys,
                    black_box(&headers),
                    black_box(body),
                )
                .is_ok_and(|n| n.total == 100)
            }),
        ),
        (
            "bare_rsa_verify_aes_gcm",
            Box::new(move || {
                if rsa_public
                    .verify(black_box(&notification_message), &notification_signature)
                    .is_err()
                {
                    return false;
                }
                let mut buffer = sealed.clone();
                aes.open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad.as_bytes()),
                    &mut buffer,
                )
                .is_ok_and(|plain| !plain.is_empty())
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
    let hello = web::get().to(wechat_benches::apps::actix_hello);
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
    if !args.only.is_empty() {
        if let Some(unknown) = args
            .only
            .iter()
            .find(|name| !ops.iter().any(|(n, _)| n == name))
        {
            let names: Vec<_> = ops.iter().map(|(n, _)| *n).collect();
            eprintln!("pay-ops: unknown op {unknown}; one of {}", names.join(", "));
            std::process::exit(2);
        }
        ops.retain(|(name, _)| args.only.iter().any(|n| n == name));
    }
    let rounds = args.rounds.max(1);
    let budget = Duration::from_secs_f64(args.seconds.max(0.05) / f64::from(rounds));
    let mut meters: Vec<Meter> = ops.iter_mut().map(|(_, op)| Meter::new(op)).collect();
    for _ in 0..rounds {
        for ((_, op), meter) in ops.iter_mut().zip(&mut meters) {
            meter.measure(op, budget);
        }
    }
    let json: serde_json::Map<String, serde_json::Value> = ops
        .iter()
        .zip(&meters)
        .map(|((name, _), meter)| {
            let rates = if args.per_round {
                serde_json::json!(meter.rounds)
            } else {
                serde_json::json!(meter.ops_per_sec())
            };
            ((*name).to_owned(), rates)
        })
        .collect();
    println!("{}", serde_json::Value::Object(json));
}

/// What one operation has done so far: calls and time, in batches of a size that takes about
/// a millisecond (some thousand sub-microsecond hashes, or one RSA signature).
struct Meter {
    batch: u64,
    count: u64,
    elapsed: Duration,
    /// Operations per second in each round.
    rounds: Vec<f64>,
}

impl Meter {
    /// Warms `op` up (caches, branch predictor) for about 50 ms and sizes its batches.
    fn new(op: &mut Op) -> Self {
        let mut calls: u64 = 0;
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(50) || calls < 10 {
            black_box(op());
            calls += 1;
        }
        let per_call = start.elapsed().as_secs_f64() / calls as f64;
        Self {
            batch: ((1e-3 / per_call) as u64).clamp(1, 100_000),
            count: 0,
            elapsed: Duration::ZERO,
            rounds: Vec::new(),
        }
    }

    /// Runs `op` in batches until `budget` has passed: one round.
    fn measure(&mut self, op: &mut Op, budget: Duration) {
        let start = Instant::now();
        let mut count = 0;
        loop {
            for _ in 0..self.batch {
                black_box(op());
            }
            count += self.batch;
            let elapsed = start.elapsed();
            if elapsed >= budget {
                self.count += count;
                self.elapsed += elapsed;
                self.rounds.push(count as f64 / elapsed.as_secs_f64());
                return;
            }
        }
    }

    /// Operations per second over every round.
    fn ops_per_sec(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64()
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
        "v3": v3_inputs(),
    })
}

/// The Pay v3 inputs and wechat-core's results on them. RSA PKCS#1 v1.5 signatures are
/// deterministic, so both signatures are expected byte for byte; the notification's expected
/// value is what wechat-core decrypted and checked.
fn v3_inputs() -> serde_json::Value {
    let key = v3::merchant_key();
    let header = authorization(
        v3::MCHID,
        &key,
        v3::PREPAY_METHOD,
        v3::PREPAY_URL,
        v3::PREPAY_TIMESTAMP,
        v3::PREPAY_NONCE,
        v3::PREPAY_BODY.as_bytes(),
    )
    .expect("signs");
    let signature = header
        .rsplit_once("signature=\"")
        .and_then(|(_, s)| s.strip_suffix('"'))
        .expect("the header ends with the signature")
        .to_owned();
    let paid = wechat_core::pay::v3::verify_payment_notification(
        &v3::pay_config(),
        &v3::wechat_pay_keys(),
        &v3::notification_header_map(),
        v3::NOTIFICATION_BODY.as_bytes(),
    )
    .expect("the notification vector verifies");
    let headers: serde_json::Map<String, serde_json::Value> = v3::notification_headers()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.into()))
        .collect();
    let probes: Vec<serde_json::Value> = v3::notification_probes()
        .into_iter()
        .map(|probe| {
            let map: http::HeaderMap = probe
                .headers
                .iter()
                .map(|(name, value)| {
                    (
                        http::HeaderName::from_static(leak_lowercase(name)),
                        http::HeaderValue::from_str(value).expect("a header value"),
                    )
                })
                .collect();
            let verdict = match wechat_core::pay::v3::verify_payment_notification(
                &v3::pay_config(),
                &v3::wechat_pay_keys(),
                &map,
                probe.body.as_bytes(),
            ) {
                Ok(_) => "accepted".to_owned(),
                Err(e) => format!("refused: {e}"),
            };
            let headers: serde_json::Map<String, serde_json::Value> = probe
                .headers
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value.into()))
                .collect();
            serde_json::json!({
                "name": probe.name,
                "what": probe.what,
                "headers": headers,
                "body": probe.body,
                "wechat_core": verdict,
            })
        })
        .collect();
    serde_json::json!({
        "merchant_private_key_pem": v3::MERCHANT_PRIVATE_KEY_PEM,
        "mchid": v3::MCHID,
        "merchant_serial": v3::KEY_SERIAL,
        "prepay": {
            "method": v3::PREPAY_METHOD,
            "url": v3::PREPAY_URL,
            "timestamp": v3::PREPAY_TIMESTAMP,
            "nonce": v3::PREPAY_NONCE,
            "body": v3::PREPAY_BODY,
        },
        "pay_sign": {
            "appid": v3::PAY_APPID,
            "timestamp": v3::PAY_TIMESTAMP,
            "nonce": v3::PAY_NONCE,
            "package": v3::PAY_PACKAGE,
        },
        "notification": {
            "headers": headers,
            "body": v3::NOTIFICATION_BODY,
            "api_v3_key": v3::API_V3_KEY,
            "wechat_pay_public_key_pem": v3::WECHAT_PAY_PUBLIC_KEY_PEM,
            "wechat_pay_public_key_id": v3::KEY_SERIAL,
            "at": v3::NOTIFICATION_AT,
            "mchid": v3::NOTIFY_MCHID,
            "appid": v3::NOTIFY_APPID,
        },
        "probes": probes,
        "expected": {
            "authorization": header,
            "authorization_signature": signature,
            "pay_sign": pay_sign(&key, v3::PAY_APPID, v3::PAY_TIMESTAMP, v3::PAY_NONCE, v3::PAY_PACKAGE).expect("signs"),
            "notification": notification_json(&paid),
        },
    })
}

/// The fields of a verified payment notification, named as in the decrypted resource, for the
/// other side to compare with what it decrypted.
fn notification_json(paid: &PaymentNotification) -> serde_json::Value {
    let t = &paid.transaction;
    let amount = t.amount.as_ref();
    serde_json::json!({
        "id": paid.id,
        "resource": {
            "appid": paid.appid.as_str(),
            "mchid": paid.mchid.as_str(),
            "out_trade_no": paid.out_trade_no.as_str(),
            "transaction_id": paid.transaction_id.as_str(),
            "trade_type": t.trade_type,
            "trade_state": t.trade_state.to_string(),
            "trade_state_desc": t.trade_state_desc,
            "bank_type": t.bank_type,
            "attach": paid.attach,
            "success_time": paid.success_time,
            "payer": {"openid": paid.openid.as_ref().map(|o| o.as_str())},
            "amount": {
                "total": paid.total,
                "payer_total": paid.payer_total,
                "currency": amount.and_then(|a| a.currency.as_deref()),
                "payer_currency": amount.and_then(|a| a.payer_currency.as_deref()),
            },
        },
    })
}

/// `name` in lower case, for `HeaderName::from_static` (the probes' few names, once).
fn leak_lowercase(name: &str) -> &'static str {
    Box::leak(name.to_ascii_lowercase().into_boxed_str())
}
