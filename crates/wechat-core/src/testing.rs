//! Fixtures for testing an app's WeChat integration (feature `testing`): an in-memory
//! [`OrderBackend`] and the test merchant of WeChat's documentation, as a `wechat-sim` knows it.
//!
//! They are what this workspace's own tests use; an application's tests can use them too, with
//! `wechat-core = { …, features = ["testing"] }` under `[dev-dependencies]`. Not for production:
//! orders live in memory and are lost on restart.
//!
//! ```
//! use std::sync::Arc;
//! use wechat_core::OpenId;
//! use wechat_core::routes::{OrderBackend, OrderStatus, PayRoutes};
//! use wechat_core::pay::v2::PayClient;
//! use wechat_core::testing::{self, MemoryOrders};
//!
//! let shop = Arc::new(MemoryOrders::new(101)); // every order costs 1.01 yuan
//! let config = testing::pay_config("http://127.0.0.1:9000", "https://shop.example.com/wechat/pay/notify")
//!     .build()?;
//! let routes = PayRoutes::new(PayClient::new(config)?, shop.clone());
//! # let _ = routes;
//! assert!(shop.status("T000001").is_none());
//! # Ok::<(), wechat_core::Error>(())
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::pay::v2::{PayConfig, PayConfigBuilder};
use crate::routes::{
    BoxFuture, OrderBackend, OrderDraft, OrderRecord, OrderStatus, Payment, RefundUpdate, ShopError,
};
use crate::{BaseUrls, OpenId, OutTradeNo};

/// The app id of the examples in WeChat Pay's documentation.
pub const TEST_APPID: &str = "wx1234567890abcdef";
/// The merchant id of the examples in WeChat Pay's documentation.
pub const TEST_MCH_ID: &str = "1900000109";
/// The API v2 key of the examples in WeChat Pay's documentation (a published test value).
pub const TEST_API_KEY: &str = "192006250b4c09247ec02edce69f6a2d";

/// The Redis server for tests, from `WECHAT_TEST_REDIS_URL` (e.g. `redis://127.0.0.1:6379/`),
/// or `None` to skip: then one line on stderr says how to run them, once per test binary.
///
/// # Panics
/// Under `CI=true` without `WECHAT_TEST_REDIS_URL`: in CI the Redis tests must run, not skip.
pub fn test_redis_url() -> Option<String> {
    match std::env::var("WECHAT_TEST_REDIS_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                !is_ci(),
                "CI=true but WECHAT_TEST_REDIS_URL is not set: the Redis tests must run in CI \
                 (.ci/run starts redis-server and sets it)"
            );
            static SKIP: std::sync::Once = std::sync::Once::new();
            SKIP.call_once(|| {
                skip_line(
                    "skipping the Redis tests: run them with \
                     WECHAT_TEST_REDIS_URL=redis://127.0.0.1:6379/",
                );
            });
            None
        }
    }
}

/// The path of `program` on `PATH`, for a test that runs it (e.g. `redis-server`), or `None` to
/// skip: then one line on stderr names the program, the test and `install` (what to install),
/// once per program and test binary.
///
/// # Panics
/// Under `CI=true` (or `CI=1`) when `program` is not on `PATH`: in CI such tests must run, not
/// skip.
pub fn test_program(program: &str, test: &str, install: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(found) = std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
    {
        return Some(found);
    }
    assert!(
        !is_ci(),
        "CI=true but {program} is not on PATH: {test} must run in CI ({install})"
    );
    static SKIPPED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut skipped = lock(&SKIPPED);
    if !skipped.iter().any(|p| p == program) {
        skipped.push(program.to_owned());
        skip_line(&format!(
            "skipping {test} (and any other test that needs {program}): {program} is not on \
             PATH; {install} to run them"
        ));
    }
    None
}

/// Whether `CI` asks for CI behaviour (`true` or `1`, any case): missing programs and services
/// then fail the tests instead of skipping them.
fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Whether `path` is a file this process may execute.
fn is_executable(path: &std::path::Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

/// One line straight to stderr (not `eprintln!`, which the test harness captures).
fn skip_line(line: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Encrypts a refund notification's `req_info` as WeChat Pay API v2 does (AES-256-ECB under the
/// MD5 of the API key, base64), to make refund notifications in tests.
pub fn encrypt_refund_req_info(plaintext: &[u8], api_key: &crate::PayApiKey) -> String {
    crate::pay::v2::encrypt_refund_req_info(plaintext, api_key)
}

/// Encrypts a notification `resource` as WeChat Pay API v3 does (AES-256-GCM under the APIv3
/// key, base64 of ciphertext and tag), to make v3 notifications in tests.
///
/// # Errors
/// [`crate::Error::Config`] for a key that is not 32 bytes; an error for a nonce that is not 12.
pub fn encrypt_resource(
    api_v3_key: &crate::ApiV3Key,
    nonce: &str,
    associated_data: &str,
    plaintext: &[u8],
) -> crate::Result<String> {
    crate::pay::v3::encrypt_resource(api_v3_key, nonce, associated_data, plaintext)
}

/// Return paths an attacker puts in a login link (`?r=…`) to be sent off the site after login:
/// absolute and protocol-relative URLs, a backslash that browsers read as a slash, a scheme
/// without slashes. The login flow must turn each into `/`.
pub const HOSTILE_RETURN_PATHS: [&str; 4] = [
    "https://evil.example/steal",
    "//evil.example/steal",
    "/\\evil.example",
    "http:/evil.example",
];

/// The headers of a shop page's `fetch` that creates an order (`Content-Type:
/// application/json`), as `PayRoutes::create_order` requires.
pub fn json_request_headers() -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers
}

/// A [`PayConfig`] builder for the documentation's test merchant ([`TEST_MCH_ID`],
/// [`TEST_APPID`], [`TEST_API_KEY`]) with every WeChat host at `base_url` (a `wechat-sim`), MD5
/// signing, and `notify_url`.
pub fn pay_config(base_url: &str, notify_url: impl Into<String>) -> PayConfigBuilder {
    PayConfig::builder(TEST_MCH_ID, TEST_APPID, TEST_API_KEY, notify_url)
        .base_urls(&BaseUrls::all(base_url))
}

/// An in-memory shop: one product, orders numbered `T0001`, `T0002`, …, and a record of every
/// payment and refund notification it was given.
///
/// - [`price`](OrderBackend::price): a body without `product`, or with `"product": "coffee"`,
///   buys the product at the configured price, whatever its `"item"` (say the SKUs `"red"` and
///   `"blue"`, which share the price and the description "Coffee"); another product is refused
///   (400); `"reuse": "T000001"` places that order number again (to test a number WeChat has
///   seen). A shop made
///   with [`without_products`](Self::without_products) refuses every order.
/// - [`on_paid`](OrderBackend::on_paid) marks the order paid (idempotent), after recording the
///   call; it refuses an unknown order (404) or another amount (409), and fails (500) as often
///   as [`fail_next_payments`](Self::fail_next_payments) says, like a database outage.
#[derive(Debug)]
pub struct MemoryOrders {
    price: Option<u64>,
    orders: Mutex<HashMap<String, OrderRecord>>,
    next_no: AtomicU32,
    payments: Mutex<Vec<Payment>>,
    refunds: Mutex<Vec<RefundUpdate>>,
    fail_next_paid: AtomicU32,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryOrders {
    /// A shop whose product costs `price` fen.
    pub fn new(price: u64) -> Self {
        Self::with_price(Some(price))
    }

    /// A shop that refuses every order (400 `no products`).
    pub fn without_products() -> Self {
        Self::with_price(None)
    }

    fn with_price(price: Option<u64>) -> Self {
        Self {
            price,
            orders: Mutex::default(),
            next_no: AtomicU32::new(1),
            payments: Mutex::default(),
            refunds: Mutex::default(),
            fail_next_paid: AtomicU32::new(0),
        }
    }

    /// Adds (or replaces) an order, e.g. one created before the test.
    pub fn insert(&self, record: OrderRecord) {
        lock(&self.orders).insert(record.out_trade_no.to_string(), record);
    }

    /// An unpaid order of `owner` for `total_fee` fen.
    pub fn insert_unpaid(&self, out_trade_no: &str, owner: &str, total_fee: u64) {
        self.insert(OrderRecord {
            out_trade_no: OutTradeNo::new(out_trade_no),
            owner: OpenId::new(owner),
            total_fee,
            status: OrderStatus::Unpaid,
        });
    }

    /// Sets an order's status; `false` when there is no such order.
    pub fn set_status(&self, out_trade_no: &str, status: OrderStatus) -> bool {
        lock(&self.orders)
            .get_mut(out_trade_no)
            .map(|order| order.status = status)
            .is_some()
    }

    /// An order's status.
    pub fn status(&self, out_trade_no: &str) -> Option<OrderStatus> {
        lock(&self.orders).get(out_trade_no).map(|o| o.status)
    }

    /// How many orders [`record_created`](OrderBackend::record_created) recorded.
    pub fn order_count(&self) -> usize {
        lock(&self.orders).len()
    }

    /// Every payment [`on_paid`](OrderBackend::on_paid) was called with, accepted or not.
    pub fn payments(&self) -> Vec<Payment> {
        lock(&self.payments).clone()
    }

    /// How many times [`on_paid`](OrderBackend::on_paid) was called.
    pub fn payment_count(&self) -> usize {
        lock(&self.payments).len()
    }

    /// Every refund [`on_refund`](OrderBackend::on_refund) was called with.
    pub fn refunds(&self) -> Vec<RefundUpdate> {
        lock(&self.refunds).clone()
    }

    /// Makes the next `count` calls of [`on_paid`](OrderBackend::on_paid) fail.
    pub fn fail_next_payments(&self, count: u32) {
        self.fail_next_paid.store(count, Ordering::SeqCst);
    }
}

impl OrderBackend for MemoryOrders {
    fn price<'a>(
        &'a self,
        _buyer: &'a OpenId,
        request: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<OrderDraft, ShopError>> {
        Box::pin(async move {
            let Some(price) = self.price else {
                return Err(ShopError::bad_request("no products"));
            };
            if let Some(no) = request.get("reuse").and_then(serde_json::Value::as_str) {
                return Ok(OrderDraft::new(no, "Coffee", price));
            }
            match request.get("product").and_then(serde_json::Value::as_str) {
                None | Some("coffee") => {
                    let n = self.next_no.fetch_add(1, Ordering::SeqCst);
                    Ok(OrderDraft::new(format!("T{n:06}"), "Coffee", price))
                }
                Some(_) => Err(ShopError::bad_request("unknown product")),
            }
        })
    }

    fn record_created<'a>(
        &'a self,
        buyer: &'a OpenId,
        draft: &'a OrderDraft,
        prepay_id: &'a str,
    ) -> BoxFuture<'a, Result<(), ShopError>> {
        Box::pin(async move {
            if prepay_id.is_empty() {
                return Err(ShopError::internal("the order has no prepay_id"));
            }
            lock(&self.orders)
                .entry(draft.out_trade_no.to_string())
                .or_insert(OrderRecord {
                    out_trade_no: draft.out_trade_no.clone(),
                    owner: buyer.clone(),
                    total_fee: draft.total_fee,
                    status: OrderStatus::Unpaid,
                });
            Ok(())
        })
    }

    fn on_paid<'a>(&'a self, payment: &'a Payment) -> BoxFuture<'a, Result<(), ShopError>> {
        Box::pin(async move {
            lock(&self.payments).push(payment.clone());
            if self
                .fail_next_paid
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(ShopError::internal("simulated database outage"));
            }
            let mut orders = lock(&self.orders);
            let order = orders
                .get_mut(payment.out_trade_no.as_str())
                .ok_or_else(|| ShopError::not_found("unknown order"))?;
            if order.total_fee != payment.total_fee {
                return Err(ShopError::conflict("amount mismatch"));
            }
            // Forward only: a late duplicate never turns a refunded order back into paid.
            if order.status == OrderStatus::Unpaid {
                order.status = OrderStatus::Paid;
            }
            Ok(())
        })
    }

    fn on_refund<'a>(&'a self, refund: &'a RefundUpdate) -> BoxFuture<'a, Result<(), ShopError>> {
        Box::pin(async move {
            lock(&self.refunds).push(refund.clone());
            Ok(())
        })
    }

    fn order<'a>(
        &'a self,
        out_trade_no: &'a OutTradeNo,
    ) -> BoxFuture<'a, Result<Option<OrderRecord>, ShopError>> {
        Box::pin(async move { Ok(lock(&self.orders).get(out_trade_no.as_str()).cloned()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_return_paths_become_root() {
        for path in HOSTILE_RETURN_PATHS {
            assert_eq!(crate::session::safe_return_path(path), "/", "{path}");
        }
    }

    #[tokio::test]
    async fn prices_records_and_pays() {
        let shop = MemoryOrders::new(101);
        let buyer = OpenId::new("oBuyer");
        let draft = shop.price(&buyer, &serde_json::json!({})).await.unwrap();
        assert_eq!(draft.out_trade_no.as_str(), "T000001");
        assert_eq!(draft.total_fee, 101);
        let refused = shop
            .price(&buyer, &serde_json::json!({"product": "tea"}))
            .await
            .unwrap_err();
        assert_eq!(refused.status(), http::StatusCode::BAD_REQUEST);
        assert!(shop.record_created(&buyer, &draft, "").await.is_err());
        shop.record_created(&buyer, &draft, "wx201410272009395522657a690389285100")
            .await
            .unwrap();
        assert_eq!(shop.status("T000001"), Some(OrderStatus::Unpaid));
        assert!(shop.set_status("T000001", OrderStatus::Paid));
        assert!(!shop.set_status("T9999", OrderStatus::Paid));
        let none = MemoryOrders::without_products();
        let err = none
            .price(&buyer, &serde_json::json!({}))
            .await
            .unwrap_err();
        assert_eq!(err.message(), "no products");
    }
}
