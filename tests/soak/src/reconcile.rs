//! The reconciliation: WeChat's order book (the simulator's) against the app's, after the run.
//!
//! For every order anyone knows of (the buyers', the app's, and the orders WeChat "invented"
//! with `unknown_order` notifications):
//!
//! - every order WeChat considers paid (`SUCCESS` or `REFUND`) is paid in the app exactly once:
//!   one `unpaid → paid` transition in the app's log, the same transaction id, payer and amount;
//! - no order is paid in the app that WeChat did not see paid (nor any invented one stored);
//! - no refund is applied twice: at most one transition to `SUCCESS` per refund and one to
//!   `refunded` per order, never more refunded than paid, and only refunds WeChat made;
//! - every refund WeChat completed is in the app, and a fully refunded order reads `refunded`.

use std::collections::{BTreeMap, BTreeSet};

use super::ledger::{AppBook, SimOrder};

/// One disagreement between the two books.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// What is wrong (one of a fixed set of sentences).
    pub kind: &'static str,
    /// The order.
    pub out_trade_no: String,
    /// The values that disagree.
    pub detail: String,
}

/// The reconciliation's figures and disagreements.
#[derive(Debug, Clone, Default)]
pub struct Reconciliation {
    /// Orders compared.
    pub orders_checked: usize,
    /// Orders WeChat considers paid (`SUCCESS` or `REFUND`).
    pub sim_paid: usize,
    /// Orders paid (or paid and refunded) in the app.
    pub app_paid: usize,
    /// `unpaid → paid` transitions in the app's log.
    pub payment_applications: usize,
    /// Refunds WeChat completed.
    pub sim_refunds: usize,
    /// Refunds stored as `SUCCESS` in the app.
    pub app_refunds: usize,
    /// Transitions of a refund to `SUCCESS` in the app's log.
    pub refund_applications: usize,
    /// Orders `refunded` in the app.
    pub app_refunded_orders: usize,
    /// Every disagreement.
    pub mismatches: Vec<Mismatch>,
}

/// Compares the books. `sim` holds the simulator's answer for every number in `known`, in the
/// app's book and in `invented` (`None`: WeChat has no such order).
pub fn reconcile(
    known: &BTreeSet<String>,
    invented: &BTreeSet<String>,
    app: &AppBook,
    sim: &BTreeMap<String, Option<SimOrder>>,
) -> Reconciliation {
    let mut all: BTreeSet<&str> = known.iter().map(String::as_str).collect();
    all.extend(app.orders.keys().map(String::as_str));
    all.extend(invented.iter().map(String::as_str));

    let mut payments: BTreeMap<&str, usize> = BTreeMap::new();
    let mut refunded_transitions: BTreeMap<&str, usize> = BTreeMap::new();
    let mut refund_successes: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
    for t in &app.transitions {
        match (t.entity.as_str(), t.new_status.as_str()) {
            ("order", "paid") => *payments.entry(&t.out_trade_no).or_default() += 1,
            ("order", "refunded") => *refunded_transitions.entry(&t.out_trade_no).or_default() += 1,
            ("refund", "SUCCESS") => {
                if let Some(no) = &t.out_refund_no {
                    refund_successes.entry(no).or_insert((0, &t.out_trade_no)).0 += 1;
                }
            }
            _ => {}
        }
    }

    let mut r = Reconciliation {
        orders_checked: all.len(),
        payment_applications: payments.values().sum(),
        refund_applications: refund_successes.values().map(|(n, _)| n).sum(),
        ..Reconciliation::default()
    };
    let mut miss = |kind: &'static str, no: &str, detail: String| {
        r.mismatches.push(Mismatch {
            kind,
            out_trade_no: no.to_owned(),
            detail,
        });
    };
    let mut counts = (0, 0, 0, 0, 0);
    for no in all {
        let wechat = sim.get(no).and_then(Option::as_ref);
        let shop = app.orders.get(no);
        let applied = payments.get(no).copied().unwrap_or(0);
        let shop_paid = shop.is_some_and(|o| matches!(o.status.as_str(), "paid" | "refunded"));
        let wechat_paid = wechat.is_some_and(SimOrder::is_paid);
        counts.0 += usize::from(wechat_paid);
        counts.1 += usize::from(shop_paid);
        counts.4 += usize::from(shop.is_some_and(|o| o.status == "refunded"));
        if invented.contains(no) && shop.is_some() {
            miss(
                "an order WeChat never had is stored by the app",
                no,
                format!("app status {}", shop.map_or("", |o| o.status.as_str())),
            );
        }
        if wechat_paid {
            let w = wechat.expect("paid at WeChat");
            match shop {
                Some(o) if shop_paid => {
                    if o.transaction_id != w.transaction_id {
                        miss(
                            "paid with another transaction id in the app",
                            no,
                            format!("app {:?}, WeChat {:?}", o.transaction_id, w.transaction_id),
                        );
                    }
                    if o.owner != w.openid || o.total_fee != w.total_fee {
                        miss(
                            "payer or amount differs",
                            no,
                            format!(
                                "app {} / {} fen, WeChat {} / {} fen",
                                o.owner, o.total_fee, w.openid, w.total_fee
                            ),
                        );
                    }
                }
                _ => miss(
                    "paid at WeChat, not paid in the app",
                    no,
                    format!(
                        "app status {}, WeChat {} ({} notifications sent, {} acknowledged)",
                        shop.map_or("missing", |o| o.status.as_str()),
                        w.trade_state,
                        w.notifications.0,
                        w.notifications.1
                    ),
                ),
            }
            if applied != 1 && shop_paid {
                miss(
                    "payment applied more than once in the app",
                    no,
                    format!("{applied} unpaid → paid transitions"),
                );
            }
        } else if shop_paid || applied > 0 {
            miss(
                "paid in the app, not at WeChat",
                no,
                format!(
                    "app status {} ({applied} payment transitions), WeChat {}",
                    shop.map_or("missing", |o| o.status.as_str()),
                    wechat.map_or("has no such order", |w| w.trade_state.as_str())
                ),
            );
        }
        if refunded_transitions.get(no).copied().unwrap_or(0) > 1 {
            miss(
                "order refunded more than once in the app",
                no,
                format!("{} paid → refunded transitions", refunded_transitions[no]),
            );
        }
        // Refunds.
        let app_success: Vec<(&String, u64)> = app
            .refunds
            .iter()
            .filter(|(_, refund)| refund.out_trade_no == no && refund.status == "SUCCESS")
            .map(|(refund_no, refund)| (refund_no, refund.refund_fee))
            .collect();
        counts.3 += app_success.len();
        let app_refunded: u64 = app_success.iter().map(|(_, fee)| fee).sum();
        if let Some(o) = shop {
            if app_refunded > o.total_fee {
                miss(
                    "refunded more than paid in the app",
                    no,
                    format!("{app_refunded} fen refunded of {} fen", o.total_fee),
                );
            }
        }
        let wechat_success: Vec<_> = wechat
            .map(|w| w.refunds.iter().filter(|x| x.status == "SUCCESS").collect())
            .unwrap_or_default();
        counts.2 += wechat_success.len();
        for (refund_no, fee) in &app_success {
            if !wechat_success
                .iter()
                .any(|w| &w.out_refund_no == *refund_no && w.refund_fee == *fee)
            {
                miss(
                    "refund applied in the app that WeChat did not make",
                    no,
                    format!("{refund_no}: {fee} fen"),
                );
            }
        }
        for w in &wechat_success {
            if !app_success
                .iter()
                .any(|(refund_no, _)| **refund_no == w.out_refund_no)
            {
                miss(
                    "refunded at WeChat, not in the app",
                    no,
                    format!("{}: {} fen", w.out_refund_no, w.refund_fee),
                );
            }
        }
        if let (Some(w), Some(o)) = (wechat, shop) {
            let fully = w.total_fee > 0 && w.refunded_fee() >= w.total_fee;
            if fully && shop_paid && o.status != "refunded" {
                miss(
                    "fully refunded at WeChat, not refunded in the app",
                    no,
                    format!("app status {}", o.status),
                );
            }
            if o.status == "refunded" && !fully {
                miss(
                    "refunded in the app, not at WeChat",
                    no,
                    format!(
                        "WeChat refunded {} of {} fen",
                        w.refunded_fee(),
                        w.total_fee
                    ),
                );
            }
        }
    }
    for (refund_no, (n, order)) in &refund_successes {
        if *n > 1 {
            miss(
                "refund applied twice in the app",
                order,
                format!("{refund_no}: {n} transitions to SUCCESS"),
            );
        }
    }
    r.sim_paid = counts.0;
    r.app_paid = counts.1;
    r.sim_refunds = counts.2;
    r.app_refunds = counts.3;
    r.app_refunded_orders = counts.4;
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{AppOrder, AppRefund, SimRefund, Transition};

    fn sim_order(state: &str, refunds: &[(&str, &str)]) -> Option<SimOrder> {
        Some(SimOrder {
            trade_state: state.into(),
            transaction_id: (state != "NOTPAY").then(|| "42".into()),
            openid: "o1".into(),
            total_fee: 1,
            refunds: refunds
                .iter()
                .map(|(no, status)| SimRefund {
                    out_refund_no: (*no).into(),
                    refund_fee: 1,
                    status: (*status).into(),
                })
                .collect(),
            notifications: (1, 1),
        })
    }

    fn app_order(status: &str) -> AppOrder {
        AppOrder {
            owner: "o1".into(),
            total_fee: 1,
            status: status.into(),
            transaction_id: (status != "unpaid").then(|| "42".into()),
        }
    }

    fn transition(entity: &str, no: &str, refund: Option<&str>, new: &str) -> Transition {
        Transition {
            entity: entity.into(),
            out_trade_no: no.into(),
            out_refund_no: refund.map(Into::into),
            old_status: None,
            new_status: new.into(),
        }
    }

    fn kinds(r: &Reconciliation) -> Vec<&'static str> {
        r.mismatches.iter().map(|m| m.kind).collect()
    }

    #[test]
    fn consistent_books_have_no_mismatch() {
        let mut app = AppBook::default();
        app.orders.insert("T1".into(), app_order("paid"));
        app.orders.insert("T2".into(), app_order("refunded"));
        app.orders.insert("T3".into(), app_order("unpaid"));
        app.refunds.insert(
            "R2".into(),
            AppRefund {
                out_trade_no: "T2".into(),
                refund_fee: 1,
                status: "SUCCESS".into(),
            },
        );
        app.transitions = vec![
            transition("order", "T1", None, "paid"),
            transition("order", "T2", None, "paid"),
            transition("refund", "T2", Some("R2"), "SUCCESS"),
            transition("order", "T2", None, "refunded"),
        ];
        let sim: BTreeMap<String, Option<SimOrder>> = [
            ("T1".to_owned(), sim_order("SUCCESS", &[])),
            ("T2".to_owned(), sim_order("REFUND", &[("R2", "SUCCESS")])),
            ("T3".to_owned(), sim_order("NOTPAY", &[])),
            ("SIMUNKNOWN1".to_owned(), None),
        ]
        .into_iter()
        .collect();
        let known = ["T1", "T2", "T3"].map(String::from).into_iter().collect();
        let invented = ["SIMUNKNOWN1".to_owned()].into_iter().collect();
        let r = reconcile(&known, &invented, &app, &sim);
        assert!(r.mismatches.is_empty(), "{:?}", r.mismatches);
        assert_eq!((r.orders_checked, r.sim_paid, r.app_paid), (4, 2, 2));
        assert_eq!((r.payment_applications, r.refund_applications), (2, 1));
        assert_eq!(
            (r.sim_refunds, r.app_refunds, r.app_refunded_orders),
            (1, 1, 1)
        );
    }

    #[test]
    fn every_kind_of_disagreement_is_reported() {
        let mut app = AppBook::default();
        app.orders.insert("LOST".into(), app_order("unpaid"));
        app.orders.insert("TWICE".into(), app_order("paid"));
        app.orders.insert("FAKE".into(), app_order("paid"));
        app.orders.insert("SIMUNKNOWN1".into(), app_order("unpaid"));
        app.orders.insert("DOUBLE".into(), app_order("refunded"));
        app.refunds.insert(
            "RD".into(),
            AppRefund {
                out_trade_no: "DOUBLE".into(),
                refund_fee: 1,
                status: "SUCCESS".into(),
            },
        );
        app.transitions = vec![
            transition("order", "TWICE", None, "paid"),
            transition("order", "TWICE", None, "paid"),
            transition("order", "FAKE", None, "paid"),
            transition("order", "DOUBLE", None, "paid"),
            transition("refund", "DOUBLE", Some("RD"), "SUCCESS"),
            transition("refund", "DOUBLE", Some("RD"), "SUCCESS"),
        ];
        let sim: BTreeMap<String, Option<SimOrder>> = [
            ("LOST".to_owned(), sim_order("SUCCESS", &[])),
            ("TWICE".to_owned(), sim_order("SUCCESS", &[])),
            ("FAKE".to_owned(), sim_order("NOTPAY", &[])),
            ("SIMUNKNOWN1".to_owned(), None),
            (
                "DOUBLE".to_owned(),
                sim_order("REFUND", &[("RD", "PROCESSING")]),
            ),
        ]
        .into_iter()
        .collect();
        let invented = ["SIMUNKNOWN1".to_owned()].into_iter().collect();
        let r = reconcile(&BTreeSet::new(), &invented, &app, &sim);
        let found = kinds(&r);
        for expected in [
            "paid at WeChat, not paid in the app",
            "payment applied more than once in the app",
            "paid in the app, not at WeChat",
            "an order WeChat never had is stored by the app",
            "refund applied in the app that WeChat did not make",
            "refunded in the app, not at WeChat",
            "refund applied twice in the app",
        ] {
            assert!(
                found.contains(&expected),
                "{expected} missing from {found:?}"
            );
        }
    }
}
