//! The demos' order store: SQLite, implementing [`OrderBackend`].
//!
//! One file (WAL journal, `synchronous=FULL`, so a committed payment survives a crash or power
//! loss), one connection behind a mutex, every statement on the blocking thread pool. Payments are
//! recorded in an `IMMEDIATE` transaction that re-reads the order, so a notification and a status
//! query that race each other (or two demo processes sharing the file) record a payment exactly
//! once.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use rand::Rng as _;
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};
use wechat_core::pay::TradeType;
use wechat_core::routes::{OrderBackend, OrderDraft, OrderRecord, OrderStatus, ShopError};
use wechat_core::routes::{Payment, RefundStatus, RefundUpdate};
use wechat_core::{AppId, OpenId, OutTradeNo, TransactionId};

use crate::{DemoError, Result};

/// The shop's single product, as shown to the payer.
pub const PRODUCT_DESCRIPTION: &str = "Demo product";

/// The product's price in fen (0.01 yuan). The browser never sets it.
pub const PRODUCT_PRICE_FEN: u64 = 1;

/// The product's id, accepted (optionally) as `{"product": "demo"}` in `POST /wechat/pay/orders`.
pub const PRODUCT_ID: &str = "demo";

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS orders (
    out_trade_no   TEXT PRIMARY KEY NOT NULL,
    owner          TEXT NOT NULL,
    description    TEXT NOT NULL,
    total_fee      INTEGER NOT NULL CHECK (total_fee > 0),
    status         TEXT NOT NULL CHECK (status IN ('unpaid', 'paid', 'closed', 'refunded')),
    prepay_id      TEXT NOT NULL,
    transaction_id TEXT UNIQUE,
    created_at     INTEGER NOT NULL,
    paid_at        INTEGER
);
CREATE INDEX IF NOT EXISTS orders_by_owner ON orders (owner, created_at);
CREATE TABLE IF NOT EXISTS refunds (
    out_refund_no  TEXT PRIMARY KEY NOT NULL,
    out_trade_no   TEXT NOT NULL REFERENCES orders (out_trade_no),
    refund_id      TEXT NOT NULL,
    refund_fee     INTEGER NOT NULL CHECK (refund_fee > 0),
    status         TEXT NOT NULL,
    updated_at     INTEGER NOT NULL
);
";

/// One order as stored, with everything the store keeps (tests and admin pages read it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredOrder {
    /// The merchant order number.
    pub out_trade_no: OutTradeNo,
    /// The buyer.
    pub owner: OpenId,
    /// What was bought.
    pub description: String,
    /// The amount in fen.
    pub total_fee: u64,
    /// The status.
    pub status: OrderStatus,
    /// The `prepay_id` WeChat issued for it.
    pub prepay_id: String,
    /// WeChat Pay's transaction id, once paid.
    pub transaction_id: Option<TransactionId>,
    /// When it was created (unix seconds).
    pub created_at: u64,
    /// When it was recorded as paid (unix seconds).
    pub paid_at: Option<u64>,
}

/// The SQLite order store. Cheap to clone (an `Arc` inside); implements [`OrderBackend`] for
/// the app `appid`, so payments for another app or by another user than the buyer are refused.
#[derive(Clone)]
pub struct OrderStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Mutex<Connection>,
    path: PathBuf,
    appid: AppId,
}

impl std::fmt::Debug for OrderStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderStore")
            .field("path", &self.inner.path)
            .field("appid", &self.inner.appid)
            .finish()
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// SQLite integers are `i64`; amounts and times here are far below `i64::MAX`.
fn to_sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn from_sql(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn status_from_sql(text: &str) -> OrderStatus {
    match text {
        "paid" => OrderStatus::Paid,
        "closed" => OrderStatus::Closed,
        "refunded" => OrderStatus::Refunded,
        _ => OrderStatus::Unpaid,
    }
}

/// A new merchant order number: the UTC time (`yyyyMMddHHmmss`) then 12 random letters and
/// digits, 26 characters of `[0-9A-Za-z]`.
pub fn new_out_trade_no() -> OutTradeNo {
    let format = time::macros::format_description!("[year][month][day][hour][minute][second]");
    let stamp = time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_else(|_| now_unix().to_string());
    let random: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(12)
        .map(char::from)
        .collect();
    OutTradeNo::new(format!("{stamp}{random}"))
}

impl OrderStore {
    /// Opens (or creates, with its folder) the database at `path` for the app `appid`: WAL
    /// journal, `synchronous=FULL`, a 5 s busy timeout, the schema created when missing.
    ///
    /// # Errors
    /// [`DemoError::Io`] when the folder cannot be created, [`DemoError::Database`] when the file
    /// cannot be opened or is not this demo's database.
    pub async fn open(path: impl Into<PathBuf>, appid: AppId) -> Result<Self> {
        let path = path.into();
        let open_path = path.clone();
        let conn = tokio::task::spawn_blocking(move || open_connection(&open_path))
            .await
            .map_err(|e| DemoError::Task(e.to_string()))??;
        tracing::info!(path = %path.display(), "order database open");
        Ok(Self {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                path,
                appid,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The app whose payments this store accepts.
    pub fn appid(&self) -> &AppId {
        &self.inner.appid
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn with_conn<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &AppId) -> rusqlite::Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock leaves no open transaction (rusqlite rolls back on
            // drop), so the connection is still usable.
            let mut conn = inner
                .conn
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut conn, &inner.appid).map_err(|source| DemoError::Database {
                path: inner.path.display().to_string(),
                source,
            })
        })
        .await
        .map_err(|e| DemoError::Task(e.to_string()))?
    }

    /// How many orders are recorded as paid (refunded ones excluded).
    ///
    /// # Errors
    /// [`DemoError::Database`].
    pub async fn paid_count(&self) -> Result<u64> {
        self.with_conn(|conn, _| {
            conn.query_row(
                "SELECT COUNT(*) FROM orders WHERE status = 'paid'",
                [],
                |row| row.get::<_, i64>(0),
            )
        })
        .await
        .map(from_sql)
    }

    /// One order with everything stored about it.
    ///
    /// # Errors
    /// [`DemoError::Database`].
    pub async fn get(&self, out_trade_no: &OutTradeNo) -> Result<Option<StoredOrder>> {
        let key = out_trade_no.as_str().to_owned();
        self.with_conn(move |conn, _| {
            conn.query_row(
                "SELECT out_trade_no, owner, description, total_fee, status, prepay_id,
                        transaction_id, created_at, paid_at
                 FROM orders WHERE out_trade_no = ?1",
                params![key],
                |row| {
                    Ok(StoredOrder {
                        out_trade_no: OutTradeNo::new(row.get::<_, String>(0)?),
                        owner: OpenId::new(row.get::<_, String>(1)?),
                        description: row.get(2)?,
                        total_fee: from_sql(row.get(3)?),
                        status: status_from_sql(&row.get::<_, String>(4)?),
                        prepay_id: row.get(5)?,
                        transaction_id: row.get::<_, Option<String>>(6)?.map(TransactionId::new),
                        created_at: from_sql(row.get(7)?),
                        paid_at: row.get::<_, Option<i64>>(8)?.map(from_sql),
                    })
                },
            )
            .optional()
        })
        .await
    }
}

fn open_connection(path: &Path) -> Result<Connection> {
    let db_error = |source| DemoError::Database {
        path: path.display().to_string(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| DemoError::io(format!("cannot create {}", parent.display()), e))?;
    }
    let mut conn = Connection::open(path).map_err(db_error)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(db_error)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(db_error)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(db_error)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(db_error)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_error)?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(db_error)?;
    if version > SCHEMA_VERSION {
        return Err(DemoError::Config(format!(
            "{} has schema version {version}, newer than this demo's {SCHEMA_VERSION}; use another DEMO_DB",
            path.display()
        )));
    }
    tx.execute_batch(SCHEMA).map_err(db_error)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(db_error)?;
    tx.commit().map_err(db_error)?;
    Ok(conn)
}

/// A store failure as the routes report it: 500 "internal error", the detail logged.
fn internal(error: DemoError) -> ShopError {
    ShopError::internal(error)
}

/// What `on_paid` decided inside its transaction.
fn record_payment(
    conn: &mut Connection,
    appid: &AppId,
    payment: &Payment,
) -> rusqlite::Result<Result<(), ShopError>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let row = tx
        .query_row(
            "SELECT owner, total_fee, status, transaction_id FROM orders WHERE out_trade_no = ?1",
            params![payment.out_trade_no.as_str()],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    from_sql(row.get(1)?),
                    row.get::<_, String>(2)?,
                    row.get::<_, Option<String>>(3)?,
                ))
            },
        )
        .optional()?;
    let Some((owner, total_fee, status, transaction_id)) = row else {
        return Ok(Err(ShopError::not_found("unknown order")));
    };
    if payment.appid != *appid {
        return Ok(Err(ShopError::conflict(format!(
            "the payment is for app {}, this shop is {appid}",
            payment.appid
        ))));
    }
    // A JSAPI payment is made by the openid the order was placed for; a Native or H5 order
    // may be paid by whoever scans or opens it: the order stays the buyer's.
    let jsapi = matches!(payment.trade_type, None | Some(TradeType::Jsapi));
    if jsapi && payment.openid.as_ref().map(OpenId::as_str) != Some(owner.as_str()) {
        return Ok(Err(ShopError::conflict(
            "the payer is not the order's buyer",
        )));
    }
    if payment.total_fee != total_fee {
        return Ok(Err(ShopError::conflict(format!(
            "paid total_fee {} differs from the order's {total_fee}",
            payment.total_fee
        ))));
    }
    match status.as_str() {
        "paid" | "refunded" => {
            return Ok(
                if transaction_id.as_deref() == Some(payment.transaction_id.as_str()) {
                    Ok(()) // a duplicate notification, or the query after the notification
                } else {
                    Err(ShopError::conflict(
                        "the order is already paid by another transaction",
                    ))
                },
            );
        }
        "closed" => {
            tracing::warn!(out_trade_no = %payment.out_trade_no, "a closed order was paid; recording the payment");
        }
        _ => {}
    }
    let updated = tx.execute(
        "UPDATE orders SET status = 'paid', transaction_id = ?2, paid_at = ?3
         WHERE out_trade_no = ?1 AND status IN ('unpaid', 'closed')",
        params![
            payment.out_trade_no.as_str(),
            payment.transaction_id.as_str(),
            to_sql(now_unix())
        ],
    )?;
    if updated != 1 {
        return Ok(Err(ShopError::internal(format!(
            "order {} changed during the payment transaction",
            payment.out_trade_no
        ))));
    }
    // A refund notification that arrived before this payment's: the order is refunded.
    let refunded: i64 = tx.query_row(
        "SELECT COALESCE(SUM(refund_fee), 0) FROM refunds WHERE out_trade_no = ?1 AND status = 'SUCCESS'",
        params![payment.out_trade_no.as_str()],
        |row| row.get(0),
    )?;
    if from_sql(refunded) >= total_fee {
        tx.execute(
            "UPDATE orders SET status = 'refunded' WHERE out_trade_no = ?1 AND status = 'paid'",
            params![payment.out_trade_no.as_str()],
        )?;
    }
    tx.commit()?;
    tracing::info!(out_trade_no = %payment.out_trade_no, transaction_id = %payment.transaction_id, "order paid");
    Ok(Ok(()))
}

/// What `on_refund` decided inside its transaction.
fn record_refund(
    conn: &mut Connection,
    refund: &RefundUpdate,
) -> rusqlite::Result<Result<(), ShopError>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let row = tx
        .query_row(
            "SELECT total_fee, transaction_id FROM orders WHERE out_trade_no = ?1",
            params![refund.out_trade_no.as_str()],
            |row| Ok((from_sql(row.get(0)?), row.get::<_, Option<String>>(1)?)),
        )
        .optional()?;
    let Some((total_fee, transaction_id)) = row else {
        return Ok(Err(ShopError::not_found("unknown order")));
    };
    if transaction_id
        .as_deref()
        .is_some_and(|t| t != refund.transaction_id.as_str())
    {
        return Ok(Err(ShopError::conflict(
            "the refund names another transaction than the order's",
        )));
    }
    if refund.total_fee != total_fee || refund.refund_fee == 0 || refund.refund_fee > total_fee {
        return Ok(Err(ShopError::conflict(format!(
            "refund of {} fen on an order of {} fen does not match the order's {total_fee} fen",
            refund.refund_fee, refund.total_fee
        ))));
    }
    let existing = tx
        .query_row(
            "SELECT out_trade_no, refund_fee FROM refunds WHERE out_refund_no = ?1",
            params![refund.out_refund_no.as_str()],
            |row| Ok((row.get::<_, String>(0)?, from_sql(row.get(1)?))),
        )
        .optional()?;
    if let Some((order, fee)) = existing {
        if order != refund.out_trade_no.as_str() || fee != refund.refund_fee {
            return Ok(Err(ShopError::conflict(
                "this refund number was recorded for another order or amount",
            )));
        }
    }
    tx.execute(
        "INSERT INTO refunds (out_refund_no, out_trade_no, refund_id, refund_fee, status, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (out_refund_no) DO UPDATE
         SET refund_id = excluded.refund_id, status = excluded.status, updated_at = excluded.updated_at
         WHERE refunds.status NOT IN ('SUCCESS', 'CLOSED')
           AND (excluded.status <> 'PROCESSING' OR refunds.status = 'PROCESSING')",
        params![
            refund.out_refund_no.as_str(),
            refund.out_trade_no.as_str(),
            refund.refund_id,
            to_sql(refund.refund_fee),
            refund.status.as_str(),
            to_sql(now_unix())
        ],
    )?;
    let refunded: i64 = tx.query_row(
        "SELECT COALESCE(SUM(refund_fee), 0) FROM refunds WHERE out_trade_no = ?1 AND status = 'SUCCESS'",
        params![refund.out_trade_no.as_str()],
        |row| row.get(0),
    )?;
    if refund.status == RefundStatus::Success && from_sql(refunded) >= total_fee {
        tx.execute(
            "UPDATE orders SET status = 'refunded' WHERE out_trade_no = ?1 AND status = 'paid'",
            params![refund.out_trade_no.as_str()],
        )?;
    }
    tx.commit()?;
    tracing::info!(out_trade_no = %refund.out_trade_no, out_refund_no = %refund.out_refund_no, status = %refund.status, "refund recorded");
    Ok(Ok(()))
}

impl OrderBackend for OrderStore {
    /// The single product, whatever the buyer: a new order number, "Demo product", 1 fen. The
    /// request must be a JSON object; its `product`, when given, must be `"demo"`.
    fn price<'a>(
        &'a self,
        _buyer: &'a OpenId,
        request: &'a serde_json::Value,
    ) -> BoxFuture<'a, Result<OrderDraft, ShopError>> {
        Box::pin(async move {
            let Some(object) = request.as_object() else {
                return Err(ShopError::bad_request(
                    "the request body must be a JSON object, e.g. {}",
                ));
            };
            match object.get("product") {
                None => {}
                Some(serde_json::Value::String(id)) if id == PRODUCT_ID => {}
                Some(_) => {
                    return Err(ShopError::bad_request(format!(
                        "unknown product; this shop sells only {PRODUCT_ID:?}"
                    )));
                }
            }
            Ok(OrderDraft::new(
                new_out_trade_no(),
                PRODUCT_DESCRIPTION,
                PRODUCT_PRICE_FEN,
            ))
        })
    }

    fn record_created<'a>(
        &'a self,
        buyer: &'a OpenId,
        draft: &'a OrderDraft,
        prepay_id: &'a str,
    ) -> BoxFuture<'a, Result<(), ShopError>> {
        let values = (
            draft.out_trade_no.as_str().to_owned(),
            buyer.as_str().to_owned(),
            draft.description.clone(),
            to_sql(draft.total_fee),
            prepay_id.to_owned(),
        );
        Box::pin(async move {
            let inserted = self
                .with_conn(move |conn, _| {
                    conn.execute(
                        "INSERT OR IGNORE INTO orders
                         (out_trade_no, owner, description, total_fee, status, prepay_id, created_at)
                         VALUES (?1, ?2, ?3, ?4, 'unpaid', ?5, ?6)",
                        params![values.0, values.1, values.2, values.3, values.4, to_sql(now_unix())],
                    )
                })
                .await
                .map_err(internal)?;
            if inserted == 1 {
                Ok(())
            } else {
                Err(ShopError::conflict("this order number is already used"))
            }
        })
    }

    fn on_paid<'a>(&'a self, payment: &'a Payment) -> BoxFuture<'a, Result<(), ShopError>> {
        let payment = payment.clone();
        Box::pin(async move {
            let outcome = self
                .with_conn(move |conn, appid| record_payment(conn, appid, &payment))
                .await
                .map_err(internal)?;
            outcome.inspect_err(|e| tracing::error!(error = %e, "payment refused by the store"))
        })
    }

    fn on_refund<'a>(&'a self, refund: &'a RefundUpdate) -> BoxFuture<'a, Result<(), ShopError>> {
        let refund = refund.clone();
        Box::pin(async move {
            let outcome = self
                .with_conn(move |conn, _| record_refund(conn, &refund))
                .await
                .map_err(internal)?;
            outcome.inspect_err(|e| tracing::error!(error = %e, "refund refused by the store"))
        })
    }

    fn order<'a>(
        &'a self,
        out_trade_no: &'a OutTradeNo,
    ) -> BoxFuture<'a, Result<Option<OrderRecord>, ShopError>> {
        Box::pin(async move {
            let stored = self.get(out_trade_no).await.map_err(internal)?;
            Ok(stored.map(|o| OrderRecord {
                out_trade_no: o.out_trade_no,
                owner: o.owner,
                total_fee: o.total_fee,
                status: o.status,
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use wechat_core::OutRefundNo;

    use super::*;

    const APPID: &str = "wx1234567890abcdef";

    /// A database file in a fresh temporary folder, removed on drop.
    struct TempDb(PathBuf);

    impl TempDb {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!(
                "demo-shop-test-{}-{}",
                std::process::id(),
                new_out_trade_no()
            ));
            Self(dir)
        }
        fn file(&self) -> PathBuf {
            self.0.join("nested").join("orders.sqlite3")
        }
    }

    impl Drop for TempDb {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn payment(no: &OutTradeNo, openid: &str, fee: u64, txn: &str) -> Payment {
        Payment {
            appid: AppId::new(APPID),
            out_trade_no: no.clone(),
            transaction_id: TransactionId::new(txn),
            trade_type: Some(TradeType::Jsapi),
            openid: Some(OpenId::new(openid)),
            total_fee: fee,
            currency: None,
            paid_at: Some("20240101120000".into()),
            attach: None,
        }
    }

    fn refund_of(
        no: &OutTradeNo,
        refund_no: &str,
        fee: u64,
        txn: &str,
        status: RefundStatus,
    ) -> RefundUpdate {
        RefundUpdate {
            out_trade_no: no.clone(),
            transaction_id: TransactionId::new(txn),
            out_refund_no: OutRefundNo::new(refund_no),
            refund_id: "5000".into(),
            total_fee: 1,
            refund_fee: fee,
            status,
        }
    }

    async fn created(store: &OrderStore, buyer: &str) -> OrderDraft {
        let buyer = OpenId::new(buyer);
        let draft = store.price(&buyer, &serde_json::json!({})).await.unwrap();
        store
            .record_created(&buyer, &draft, "wx_prepay")
            .await
            .unwrap();
        draft
    }

    #[test]
    fn order_numbers_are_valid_and_distinct() {
        let a = new_out_trade_no();
        let b = new_out_trade_no();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 26);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_alphanumeric()));
        assert!(a.as_str().starts_with("20"));
    }

    #[tokio::test]
    async fn pricing_ignores_the_browser_and_refuses_unknown_products() {
        let tmp = TempDb::new();
        let store = OrderStore::open(tmp.file(), AppId::new(APPID))
            .await
            .unwrap();
        let buyer = OpenId::new("oBuyer");
        let draft = store
            .price(
                &buyer,
                &serde_json::json!({"total_fee": 100000, "product": "demo"}),
            )
            .await
            .unwrap();
        assert_eq!(draft.total_fee, 1);
        assert_eq!(draft.description, "Demo product");
        for bad in [
            serde_json::json!({"product": "tea"}),
            serde_json::json!([1]),
        ] {
            let e = store.price(&buyer, &bad).await.unwrap_err();
            assert_eq!(e.status(), http::StatusCode::BAD_REQUEST);
        }
    }

    #[tokio::test]
    async fn a_payment_is_recorded_once_and_survives_a_reopen() {
        let tmp = TempDb::new();
        let store = OrderStore::open(tmp.file(), AppId::new(APPID))
            .await
            .unwrap();
        let draft = created(&store, "oBuyer").await;
        let no = &draft.out_trade_no;
        let record = store.order(no).await.unwrap().unwrap();
        assert_eq!(record.status, OrderStatus::Unpaid);
        assert_eq!(record.owner.as_str(), "oBuyer");
        assert_eq!(store.paid_count().await.unwrap(), 0);

        // Duplicate order numbers are refused.
        let again = store
            .record_created(&OpenId::new("oBuyer"), &draft, "wx_prepay2")
            .await
            .unwrap_err();
        assert_eq!(again.status(), http::StatusCode::CONFLICT);

        // Concurrent duplicates (notification retries, a status query) record it once.
        let p = payment(no, "oBuyer", 1, "4200001");
        let results = futures_util::future::join_all((0..8).map(|_| store.on_paid(&p))).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(store.paid_count().await.unwrap(), 1);
        let stored = store.get(no).await.unwrap().unwrap();
        assert_eq!(stored.status, OrderStatus::Paid);
        assert_eq!(stored.transaction_id.unwrap().as_str(), "4200001");
        assert!(stored.paid_at.is_some());

        // Another transaction for the same order is refused.
        let other = store
            .on_paid(&payment(no, "oBuyer", 1, "4200002"))
            .await
            .unwrap_err();
        assert_eq!(other.status(), http::StatusCode::CONFLICT);

        drop(store);
        let reopened = OrderStore::open(tmp.file(), AppId::new(APPID))
            .await
            .unwrap();
        assert_eq!(reopened.paid_count().await.unwrap(), 1);
        assert_eq!(
            reopened.order(no).await.unwrap().unwrap().status,
            OrderStatus::Paid
        );
    }

    #[tokio::test]
    async fn mismatched_payments_are_refused() {
        let tmp = TempDb::new();
        let store = OrderStore::open(tmp.file(), AppId::new(APPID))
            .await
            .unwrap();
        let no = created(&store, "oBuyer").await.out_trade_no;
        let mut other_app = payment(&no, "oBuyer", 1, "1");
        other_app.appid = AppId::new("wx0000000000000000");
        for bad in [
            payment(&no, "oBuyer", 2, "1"),
            payment(&no, "oSomeoneElse", 1, "1"),
            other_app,
        ] {
            let e = store.on_paid(&bad).await.unwrap_err();
            assert_eq!(e.status(), http::StatusCode::CONFLICT, "{e}");
        }
        let unknown = store
            .on_paid(&payment(&OutTradeNo::new("nope"), "oBuyer", 1, "1"))
            .await
            .unwrap_err();
        assert_eq!(unknown.status(), http::StatusCode::NOT_FOUND);
        assert_eq!(store.paid_count().await.unwrap(), 0);
        assert!(
            store
                .order(&OutTradeNo::new("nope"))
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn refunds_are_matched_and_idempotent() {
        let tmp = TempDb::new();
        let store = OrderStore::open(tmp.file(), AppId::new(APPID))
            .await
            .unwrap();
        let no = created(&store, "oBuyer").await.out_trade_no;
        store
            .on_paid(&payment(&no, "oBuyer", 1, "42"))
            .await
            .unwrap();
        let refund = |fee: u64, txn: &str| refund_of(&no, "R1", fee, txn, RefundStatus::Success);
        assert_eq!(
            store
                .on_refund(&refund(2, "42"))
                .await
                .unwrap_err()
                .status(),
            http::StatusCode::CONFLICT
        );
        assert_eq!(
            store
                .on_refund(&refund(1, "43"))
                .await
                .unwrap_err()
                .status(),
            http::StatusCode::CONFLICT
        );
        store.on_refund(&refund(1, "42")).await.unwrap();
        store.on_refund(&refund(1, "42")).await.unwrap();
        assert_eq!(
            store.order(&no).await.unwrap().unwrap().status,
            OrderStatus::Refunded
        );
        assert_eq!(store.paid_count().await.unwrap(), 0);
        // A late duplicate payment notification is still acknowledged.
        store
            .on_paid(&payment(&no, "oBuyer", 1, "42"))
            .await
            .unwrap();
    }

    /// The refund's status as stored.
    async fn refund_status(store: &OrderStore, out_refund_no: &str) -> String {
        let no = out_refund_no.to_owned();
        store
            .with_conn(move |conn, _| {
                conn.query_row(
                    "SELECT status FROM refunds WHERE out_refund_no = ?1",
                    params![no],
                    |row| row.get::<_, String>(0),
                )
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn statuses_only_move_forward_whatever_order_notifications_arrive_in() {
        let tmp = TempDb::new();
        let store = OrderStore::open(tmp.file(), AppId::new(APPID))
            .await
            .unwrap();
        let no = created(&store, "oBuyer").await.out_trade_no;

        // The refund's notification overtakes the payment's: recorded, the order still unpaid…
        store
            .on_refund(&refund_of(&no, "R1", 1, "42", RefundStatus::Success))
            .await
            .unwrap();
        assert_eq!(
            store.order(&no).await.unwrap().unwrap().status,
            OrderStatus::Unpaid
        );
        // …and the payment that follows leaves it refunded, not paid.
        store
            .on_paid(&payment(&no, "oBuyer", 1, "42"))
            .await
            .unwrap();
        assert_eq!(
            store.order(&no).await.unwrap().unwrap().status,
            OrderStatus::Refunded
        );

        // A late or replayed notification with another status never overwrites SUCCESS.
        for late in [
            RefundStatus::Processing,
            RefundStatus::Closed,
            RefundStatus::Abnormal,
        ] {
            store
                .on_refund(&refund_of(&no, "R1", 1, "42", late))
                .await
                .unwrap();
            assert_eq!(refund_status(&store, "R1").await, "SUCCESS");
        }
        assert_eq!(
            store.order(&no).await.unwrap().unwrap().status,
            OrderStatus::Refunded
        );
    }
}
