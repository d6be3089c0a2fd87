//! What the payment routes remember between requests, per process: recent unpaid orders (a
//! double click makes one order), when each order was last asked about (one `orderquery` per
//! few seconds, however fast a page polls), and how many orders each buyer made this minute.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use moka::future::Cache;

use crate::{OpenId, OutTradeNo};

/// The limits the payment routes apply; [`PayRoutes::with_limits`](super::PayRoutes::with_limits)
/// sets them.
///
/// They are kept in each process's memory (bounded, forgotten when idle): behind a load balancer
/// without sticky sessions each instance applies them on its own, which still bounds what one
/// buyer can make WeChat do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderLimits {
    /// How many new orders one buyer may place per minute (default 10); above it,
    /// `POST …/pay/orders` answers 429 with `Retry-After`. Reused orders do not count.
    pub orders_per_minute: u32,
    /// For how long an unpaid order is handed out again to the same buyer asking for the same
    /// order (the same [`OrderDraft::reuse_key`](super::OrderDraft::reuse_key): by default the
    /// same request body and amount), instead of a new one (default 5 minutes; zero turns reuse
    /// off). WeChat keeps a `prepay_id` valid for 2 hours.
    pub reuse_window: Duration,
    /// The least time between two `orderquery` calls for one order while its status is polled
    /// (default 3 s); in between, the stored status is reported.
    pub query_interval: Duration,
}

impl Default for OrderLimits {
    fn default() -> Self {
        Self {
            orders_per_minute: 10,
            reuse_window: Duration::from_secs(300),
            query_interval: Duration::from_secs(3),
        }
    }
}

/// The most buyers (and orders) whose state is remembered at once.
const CAPACITY: u64 = 100_000;
/// The rate window.
const MINUTE: Duration = Duration::from_secs(60);

/// An order placed with WeChat and not yet known to be paid.
#[derive(Debug, Clone)]
pub(super) struct Placed {
    pub(super) out_trade_no: OutTradeNo,
    pub(super) prepay_id: String,
}

/// What identifies "the same order again": the buyer and the draft's reuse key (by default the
/// canonical request body and the amount).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct ItemKey {
    buyer: String,
    reuse: String,
}

impl ItemKey {
    pub(super) fn new(
        buyer: &OpenId,
        request: &serde_json::Value,
        draft: &super::OrderDraft,
    ) -> Self {
        let reuse = match &draft.reuse_key {
            Some(key) => format!("key:{key}"),
            None => {
                let mut reuse = format!("body:{}:", draft.total_fee);
                canonical_json(request, &mut reuse);
                reuse
            }
        };
        Self {
            buyer: buyer.as_str().to_owned(),
            reuse,
        }
    }
}

/// Writes `value` as JSON with every object's keys sorted, so that two bodies that differ only
/// in key order or whitespace are the same request. Iterative, so a deeply nested body cannot
/// exhaust the stack; linear in the body's size but for the sorting of each object's keys.
fn canonical_json(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    enum Step<'v> {
        Value(&'v Value),
        Key(&'v str),
        Text(&'static str),
    }
    let mut stack = vec![Step::Value(value)];
    while let Some(step) = stack.pop() {
        match step {
            Step::Text(text) => out.push_str(text),
            Step::Key(key) => {
                out.push_str(&Value::from(key).to_string());
                out.push(':');
            }
            Step::Value(Value::Array(items)) => {
                out.push('[');
                stack.push(Step::Text("]"));
                for (i, item) in items.iter().enumerate().rev() {
                    stack.push(Step::Value(item));
                    if i > 0 {
                        stack.push(Step::Text(","));
                    }
                }
            }
            Step::Value(Value::Object(map)) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                stack.push(Step::Text("}"));
                for (i, (name, item)) in entries.into_iter().enumerate().rev() {
                    stack.push(Step::Value(item));
                    stack.push(Step::Key(name));
                    if i > 0 {
                        stack.push(Step::Text(","));
                    }
                }
            }
            Step::Value(scalar) => out.push_str(&scalar.to_string()),
        }
    }
}

/// One buyer's orders in the current minute.
#[derive(Debug)]
struct Window {
    started: Instant,
    count: u32,
}

/// The payment routes' memory; cheap to clone (clones share it).
#[derive(Clone)]
pub(super) struct Guards {
    pub(super) limits: OrderLimits,
    /// Recent unpaid orders by item; concurrent requests for one item wait for one placement.
    pub(super) recent: Option<Cache<ItemKey, Arc<Placed>>>,
    /// Orders whose status was asked of WeChat within the query interval.
    queried: Cache<String, ()>,
    /// Orders per buyer in the current minute.
    windows: Cache<String, Arc<Mutex<Window>>>,
}

impl std::fmt::Debug for Guards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guards")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Guards {
    pub(super) fn new(limits: OrderLimits) -> Self {
        let recent = (!limits.reuse_window.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(limits.reuse_window)
                .build()
        });
        Self {
            limits,
            recent,
            queried: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(limits.query_interval.max(Duration::from_millis(1)))
                .build(),
            windows: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_idle(MINUTE * 2)
                .build(),
        }
    }

    /// Counts a new order by `buyer`, or says in how many seconds they may place the next one.
    pub(super) async fn admit(&self, buyer: &OpenId) -> Result<(), u64> {
        let window = self
            .windows
            .get_with_by_ref(buyer.as_str(), async {
                Arc::new(Mutex::new(Window {
                    started: Instant::now(),
                    count: 0,
                }))
            })
            .await;
        let mut window = window.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if now.duration_since(window.started) >= MINUTE {
            *window = Window {
                started: now,
                count: 0,
            };
        }
        if window.count >= self.limits.orders_per_minute {
            let left = MINUTE.saturating_sub(now.duration_since(window.started));
            return Err(left.as_secs().max(1));
        }
        window.count += 1;
        Ok(())
    }

    /// Whether the status of `out_trade_no` may be asked of WeChat now (and notes that it is).
    pub(super) async fn may_query(&self, out_trade_no: &OutTradeNo) -> bool {
        self.queried
            .entry_by_ref(out_trade_no.as_str())
            .or_insert(())
            .await
            .is_fresh()
    }

    /// Forgets a recent order that cannot be paid any more (paid, closed).
    pub(super) async fn forget(&self, key: &ItemKey) {
        if let Some(recent) = &self.recent {
            recent.invalidate(key).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::OrderDraft;

    fn key(buyer: &str, body: serde_json::Value, draft: &OrderDraft) -> ItemKey {
        ItemKey::new(&OpenId::new(buyer), &body, draft)
    }

    #[test]
    fn the_default_reuse_key_is_the_canonical_body_and_the_amount() {
        let draft = OrderDraft::new("T1", "Coffee", 100);
        let a = key(
            "o1",
            serde_json::json!({"sku": "red", "n": [1, {"b": 2, "a": 1}]}),
            &draft,
        );
        let reordered = serde_json::from_str(r#"{ "n":[1,{"a":1,"b":2}], "sku":"red" }"#).unwrap();
        assert_eq!(a, key("o1", reordered, &draft));
        assert_eq!(a.reuse, r#"body:100:{"n":[1,{"a":1,"b":2}],"sku":"red"}"#);
        // Another item at the same price and description, another buyer, another amount.
        assert_ne!(
            a,
            key(
                "o1",
                serde_json::json!({"sku": "blue", "n": [1, {"b": 2, "a": 1}]}),
                &draft
            )
        );
        assert_ne!(
            a,
            key(
                "o2",
                serde_json::json!({"sku": "red", "n": [1, {"b": 2, "a": 1}]}),
                &draft
            )
        );
        let dearer = OrderDraft::new("T2", "Coffee", 101);
        assert_ne!(
            a,
            key(
                "o1",
                serde_json::json!({"sku": "red", "n": [1, {"b": 2, "a": 1}]}),
                &dearer
            )
        );
        // Keys that would read the same when joined naively stay apart.
        assert_ne!(
            key("o1", serde_json::json!({"a": "b,c"}), &draft),
            key("o1", serde_json::json!({"a": "b", "c": null}), &draft)
        );
    }

    #[test]
    fn a_reuse_key_set_by_the_backend_replaces_the_body() {
        let draft = OrderDraft::new("T1", "Coffee", 100).with_reuse_key("sku=red");
        assert_eq!(
            key("o1", serde_json::json!({"sku": "red"}), &draft),
            key("o1", serde_json::json!({"sku": "red", "utm": "x"}), &draft)
        );
        let blue = OrderDraft::new("T2", "Coffee", 100).with_reuse_key("sku=blue");
        assert_ne!(
            key("o1", serde_json::json!({"sku": "red"}), &draft),
            key("o1", serde_json::json!({"sku": "red"}), &blue)
        );
    }

    #[test]
    fn deep_bodies_do_not_exhaust_the_stack() {
        let mut body = serde_json::json!(1);
        for _ in 0..100_000 {
            body = serde_json::Value::Array(vec![body]);
        }
        let mut out = String::new();
        canonical_json(&body, &mut out);
        assert_eq!(out.len(), 200_001);
        // Dropping a value this deep recurses in serde_json itself; leak it in the test only.
        std::mem::forget(body);
    }
}
