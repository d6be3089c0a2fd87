//! The two order books the soak reconciles: the app's (the demo's SQLite database, with a log
//! of every status change that the soak's triggers write inside the store's own transactions)
//! and WeChat's (the simulator's `GET /_sim/pay/orders/{out_trade_no}`).
//!
//! The demo store keeps one row per order and per refund, so "paid exactly once" cannot be read
//! from the rows alone: a payment applied twice leaves the same row. The triggers record each
//! transition instead (`unpaid → paid`, `paid → refunded`, a refund row inserted or its status
//! changed), in the same transaction as the change, whichever of the instances made it.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, params};
use serde_json::Value;

/// The soak's log table and triggers, added to the demo's schema (which must exist already).
const INSTRUMENTATION: &str = "
CREATE TABLE IF NOT EXISTS soak_transitions (
    id            INTEGER PRIMARY KEY,
    entity        TEXT NOT NULL,
    out_trade_no  TEXT NOT NULL,
    out_refund_no TEXT,
    old_status    TEXT,
    new_status    TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS soak_order_status AFTER UPDATE OF status ON orders
WHEN NEW.status IS NOT OLD.status
BEGIN
    INSERT INTO soak_transitions (entity, out_trade_no, old_status, new_status)
    VALUES ('order', NEW.out_trade_no, OLD.status, NEW.status);
END;
CREATE TRIGGER IF NOT EXISTS soak_refund_insert AFTER INSERT ON refunds
BEGIN
    INSERT INTO soak_transitions (entity, out_trade_no, out_refund_no, old_status, new_status)
    VALUES ('refund', NEW.out_trade_no, NEW.out_refund_no, NULL, NEW.status);
END;
CREATE TRIGGER IF NOT EXISTS soak_refund_status AFTER UPDATE OF status ON refunds
WHEN NEW.status IS NOT OLD.status
BEGIN
    INSERT INTO soak_transitions (entity, out_trade_no, out_refund_no, old_status, new_status)
    VALUES ('refund', NEW.out_trade_no, NEW.out_refund_no, OLD.status, NEW.status);
END;
";

/// Adds the transition log and its triggers to the demo database at `path` (created by the
/// demo's `OrderStore::open` first).
///
/// # Errors
/// A SQLite error (e.g. the demo's tables are missing).
pub fn instrument(path: &Path) -> rusqlite::Result<()> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(INSTRUMENTATION)
}

/// One order as the app stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppOrder {
    /// The buyer's openid.
    pub owner: String,
    /// The amount in fen.
    pub total_fee: u64,
    /// `unpaid`, `paid`, `closed` or `refunded`.
    pub status: String,
    /// WeChat Pay's transaction id, once paid.
    pub transaction_id: Option<String>,
}

/// One refund as the app stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRefund {
    /// The order refunded.
    pub out_trade_no: String,
    /// The amount in fen.
    pub refund_fee: u64,
    /// The status WeChat reported (`SUCCESS`, `PROCESSING`…).
    pub status: String,
}

/// One status change the triggers logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// `order` or `refund`.
    pub entity: String,
    /// The order.
    pub out_trade_no: String,
    /// The refund, for a refund's transition.
    pub out_refund_no: Option<String>,
    /// The status before (`None`: a refund row inserted).
    pub old_status: Option<String>,
    /// The status after.
    pub new_status: String,
}

/// The app's order book, read in one transaction.
#[derive(Debug, Clone, Default)]
pub struct AppBook {
    /// Orders by `out_trade_no`.
    pub orders: BTreeMap<String, AppOrder>,
    /// Refunds by `out_refund_no`.
    pub refunds: BTreeMap<String, AppRefund>,
    /// Every logged transition, in order.
    pub transitions: Vec<Transition>,
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// Reads the app's order book from the database at `path`.
///
/// # Errors
/// A SQLite error.
pub fn read_app_book(path: &Path) -> rusqlite::Result<AppBook> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let tx = conn.transaction()?;
    let mut book = AppBook::default();
    {
        let mut orders = tx
            .prepare("SELECT out_trade_no, owner, total_fee, status, transaction_id FROM orders")?;
        let rows = orders.query_map(params![], |row| {
            Ok((
                row.get::<_, String>(0)?,
                AppOrder {
                    owner: row.get(1)?,
                    total_fee: to_u64(row.get(2)?),
                    status: row.get(3)?,
                    transaction_id: row.get(4)?,
                },
            ))
        })?;
        for row in rows {
            let (no, order) = row?;
            book.orders.insert(no, order);
        }
        let mut refunds =
            tx.prepare("SELECT out_refund_no, out_trade_no, refund_fee, status FROM refunds")?;
        let rows = refunds.query_map(params![], |row| {
            Ok((
                row.get::<_, String>(0)?,
                AppRefund {
                    out_trade_no: row.get(1)?,
                    refund_fee: to_u64(row.get(2)?),
                    status: row.get(3)?,
                },
            ))
        })?;
        for row in rows {
            let (no, refund) = row?;
            book.refunds.insert(no, refund);
        }
        let mut transitions = tx.prepare(
            "SELECT entity, out_trade_no, out_refund_no, old_status, new_status
             FROM soak_transitions ORDER BY id",
        )?;
        let rows = transitions.query_map(params![], |row| {
            Ok(Transition {
                entity: row.get(0)?,
                out_trade_no: row.get(1)?,
                out_refund_no: row.get(2)?,
                old_status: row.get(3)?,
                new_status: row.get(4)?,
            })
        })?;
        for row in rows {
            book.transitions.push(row?);
        }
    }
    tx.commit()?;
    Ok(book)
}

/// One refund as the simulator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRefund {
    /// The merchant's refund number.
    pub out_refund_no: String,
    /// The amount in fen.
    pub refund_fee: u64,
    /// `PROCESSING` or `SUCCESS`.
    pub status: String,
}

/// One order as the simulator (WeChat) sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOrder {
    /// `SUCCESS`, `REFUND`, `NOTPAY` or `CLOSED`.
    pub trade_state: String,
    /// The transaction id, once paid.
    pub transaction_id: Option<String>,
    /// The payer.
    pub openid: String,
    /// The amount in fen.
    pub total_fee: u64,
    /// Its refunds.
    pub refunds: Vec<SimRefund>,
    /// Payment notification attempts made and acknowledged.
    pub notifications: (u64, u64),
}

impl SimOrder {
    /// Whether WeChat considers it paid (`SUCCESS`, or `REFUND`: paid, then refunded).
    pub fn is_paid(&self) -> bool {
        matches!(self.trade_state.as_str(), "SUCCESS" | "REFUND")
    }

    /// The total of its refunds that succeeded.
    pub fn refunded_fee(&self) -> u64 {
        self.refunds
            .iter()
            .filter(|r| r.status == "SUCCESS")
            .map(|r| r.refund_fee)
            .sum()
    }

    fn from_json(value: &Value) -> Self {
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let deliveries = |v: &Value| {
            (
                v["sent"].as_u64().unwrap_or(0),
                v["acknowledged"].as_u64().unwrap_or(0),
            )
        };
        Self {
            trade_state: text(&value["trade_state"]).unwrap_or_default(),
            transaction_id: text(&value["transaction_id"]),
            openid: text(&value["openid"]).unwrap_or_default(),
            total_fee: value["total_fee"].as_u64().unwrap_or(0),
            refunds: value["refunds"]
                .as_array()
                .map(|refunds| {
                    refunds
                        .iter()
                        .map(|r| SimRefund {
                            out_refund_no: text(&r["out_refund_no"]).unwrap_or_default(),
                            refund_fee: r["refund_fee"].as_u64().unwrap_or(0),
                            status: text(&r["refund_status"]).unwrap_or_default(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            notifications: deliveries(&value["notifications"]),
        }
    }
}

/// Reads order `out_trade_no` from the simulator's order book: `None` when it has no such order
/// (404).
///
/// # Errors
/// A transport failure or another status.
pub async fn read_sim_order(
    http: &reqwest::Client,
    sim_base: &str,
    out_trade_no: &str,
) -> Result<Option<SimOrder>, String> {
    let response = http
        .get(format!("{sim_base}/_sim/pay/orders/{out_trade_no}"))
        .send()
        .await
        .map_err(|e| format!("GET /_sim/pay/orders: {}", e.without_url()))?;
    match response.status() {
        reqwest::StatusCode::NOT_FOUND => Ok(None),
        status if status.is_success() => {
            let value: Value = response
                .json()
                .await
                .map_err(|e| format!("GET /_sim/pay/orders: {}", e.without_url()))?;
            Ok(Some(SimOrder::from_json(&value)))
        }
        status => Err(format!("GET /_sim/pay/orders/{out_trade_no}: {status}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_simulators_order() {
        let order = SimOrder::from_json(&serde_json::json!({
            "trade_state": "REFUND", "transaction_id": "42", "openid": "o1", "total_fee": 1,
            "refunds": [{"out_refund_no": "R1", "refund_fee": 1, "refund_status": "SUCCESS"}],
            "notifications": {"sent": 2, "acknowledged": 1}
        }));
        assert!(order.is_paid());
        assert_eq!(order.refunded_fee(), 1);
        assert_eq!(order.notifications, (2, 1));
        let unpaid = SimOrder::from_json(&serde_json::json!({
            "trade_state": "NOTPAY", "transaction_id": null, "refunds": []
        }));
        assert!(!unpaid.is_paid());
        assert_eq!(unpaid.transaction_id, None);
    }

    #[test]
    fn triggers_log_every_transition_of_the_demo_schema() {
        let dir = std::env::temp_dir().join(format!("soak-ledger-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("orders.sqlite3");
        let _ = std::fs::remove_file(&path);
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE orders (out_trade_no TEXT PRIMARY KEY, owner TEXT, total_fee INTEGER,
                    status TEXT, transaction_id TEXT);
                 CREATE TABLE refunds (out_refund_no TEXT PRIMARY KEY, out_trade_no TEXT,
                    refund_fee INTEGER, status TEXT);
                 INSERT INTO orders VALUES ('T1', 'o1', 1, 'unpaid', NULL);",
            )
            .unwrap();
        }
        instrument(&path).unwrap();
        instrument(&path).unwrap(); // idempotent
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "UPDATE orders SET status = 'paid', transaction_id = '42' WHERE out_trade_no = 'T1';
                 UPDATE orders SET status = 'paid' WHERE out_trade_no = 'T1';
                 INSERT INTO refunds VALUES ('R1', 'T1', 1, 'PROCESSING');
                 UPDATE refunds SET status = 'SUCCESS' WHERE out_refund_no = 'R1';
                 UPDATE orders SET status = 'refunded' WHERE out_trade_no = 'T1';",
            )
            .unwrap();
        }
        let book = read_app_book(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(book.orders["T1"].status, "refunded");
        assert_eq!(book.refunds["R1"].status, "SUCCESS");
        let summary: Vec<(String, Option<String>, String)> = book
            .transitions
            .iter()
            .map(|t| (t.entity.clone(), t.old_status.clone(), t.new_status.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                ("order".into(), Some("unpaid".into()), "paid".into()),
                ("refund".into(), None, "PROCESSING".into()),
                ("refund".into(), Some("PROCESSING".into()), "SUCCESS".into()),
                ("order".into(), Some("paid".into()), "refunded".into()),
            ]
        );
    }
}
