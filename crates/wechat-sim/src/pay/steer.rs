//! The console's order actions under `/_sim/pay/orders/{out_trade_no}/`: pay, close, refund,
//! through the same code paths as the pay sheet and WeChat's own close and refund endpoints
//! (the order book, the notifications and their retries), without the merchant's signatures.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::book::{self, Api, Closing, Payment, Refund};
use super::control::{ControlError, error, find};
use super::{jsapi, merchant, notify, v3};
use crate::console::view::{OrderView, RefundView};
use crate::state::Sim;

/// The optional JSON body of the three actions.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Action {
    /// The merchant, when several have this out_trade_no.
    mch_id: Option<String>,
    /// refund: the amount in fen (default: everything still refundable).
    refund_fee: Option<u64>,
    /// refund: its number (default: `SIMREFUND` + 16 digits).
    out_refund_no: Option<String>,
    /// refund: the reason (v3 `reason`, v2 `refund_desc`).
    reason: Option<String>,
    /// refund: where its notification goes (default: the merchant's `refund_notify_url`).
    notify_url: Option<String>,
}

/// The body, `{}` when empty.
fn action(body: &[u8]) -> Result<Action, ControlError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Action::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            &format!("expected {{\"mch_id\"?, \"refund_fee\"?, \"out_refund_no\"?, \"reason\"?, \"notify_url\"?}}: {e}"),
        )
    })
}

/// `{"out_trade_no", "trade_state", …}`: what the order is after the action.
fn state_of(sim: &Sim, mch_id: &str, out_trade_no: &str) -> Value {
    let book = sim.pay.book();
    match book
        .orders
        .get(&(mch_id.to_owned(), out_trade_no.to_owned()))
    {
        Some(o) => json!({
            "mch_id": o.mch_id,
            "out_trade_no": o.out_trade_no,
            "api": o.api.as_str(),
            "trade_state": o.trade_state(),
            "transaction_id": o.transaction_id,
            "refunded_fee": o.refunded_fee,
        }),
        None => json!({ "out_trade_no": out_trade_no }),
    }
}

/// `POST /_sim/pay/orders/{out_trade_no}/pay`: pays an unpaid order as the pay sheet's confirm
/// does (without the page's signed parameters, and whatever the prepay_id's age; a Native or H5
/// order as the app's first user), then sends its notification with WeChat's retries; 409 when
/// paid or closed.
pub(super) async fn pay(
    State(sim): State<Arc<Sim>>,
    Path(out_trade_no): Path<String>,
    body: Bytes,
) -> Response {
    let result = (|| {
        let action = action(&body)?;
        let now = sim.now_secs();
        let mut book = sim.pay.book();
        let key = {
            let order = find(&book, &out_trade_no, action.mch_id.as_deref())?;
            match order.payment {
                Payment::Paid { .. } => {
                    return Err(error(StatusCode::CONFLICT, "the order is paid already"));
                }
                Payment::Closed => return Err(error(StatusCode::CONFLICT, "the order is closed")),
                Payment::NotPaid => (order.mch_id.clone(), order.out_trade_no.clone()),
            }
        };
        // A Native or H5 order has no payer until someone pays: the app's first user does.
        if let Some(order) = book.orders.get_mut(&key).filter(|o| o.openid.is_empty()) {
            if let Some(openid) = sim.users_of(&order.appid).find_map(|u| u.openid.clone()) {
                order.openid = openid;
            }
        }
        let order = book
            .pay(&key, now)
            .ok_or_else(|| error(StatusCode::NOT_FOUND, "no such order"))?;
        Ok((order, now))
    })();
    match result {
        Err(e) => e.into_response(),
        Ok((order, now)) => {
            jsapi::notify_paid(&sim, &order, now);
            Json(state_of(&sim, &order.mch_id, &order.out_trade_no)).into_response()
        }
    }
}

/// `POST /_sim/pay/orders/{out_trade_no}/close`: closes an unpaid order as closeorder (v2) or
/// close (v3) do; a closed order stays closed; 409 when paid.
pub(super) async fn close(
    State(sim): State<Arc<Sim>>,
    Path(out_trade_no): Path<String>,
    body: Bytes,
) -> Response {
    let result = (|| {
        let action = action(&body)?;
        let mut book = sim.pay.book();
        let key = {
            let order = find(&book, &out_trade_no, action.mch_id.as_deref())?;
            (order.mch_id.clone(), order.out_trade_no.clone())
        };
        let closing = book
            .orders
            .get_mut(&key)
            .map(book::Order::close)
            .ok_or_else(|| error(StatusCode::NOT_FOUND, "no such order"))?;
        match closing {
            Closing::Paid => Err(error(
                StatusCode::CONFLICT,
                "the order is paid: it cannot be closed",
            )),
            Closing::Closed | Closing::AlreadyClosed => Ok(key),
        }
    })();
    match result {
        Err(e) => e.into_response(),
        Ok((mch_id, out_trade_no)) => {
            tracing::info!(%mch_id, %out_trade_no, "order closed from the console");
            Json(state_of(&sim, &mch_id, &out_trade_no)).into_response()
        }
    }
}

/// `POST /_sim/pay/orders/{out_trade_no}/refund`: refunds a paid order in its API version, as
/// `/secapi/pay/refund` (v2: `SUCCESS` at once) or `/v3/refund/domestic/refunds` (v3:
/// `PROCESSING`, then `SUCCESS`) do, with the refund notification and its retries; 409 when
/// unpaid or nothing is left to refund, 400 for an amount above what is left.
pub(super) async fn refund(
    State(sim): State<Arc<Sim>>,
    Path(out_trade_no): Path<String>,
    body: Bytes,
) -> Response {
    let result = (|| {
        let action = action(&body)?;
        let now = sim.now_secs();
        let mut book = sim.pay.book();
        let order = find(&book, &out_trade_no, action.mch_id.as_deref())?;
        if order.paid_at().is_none() {
            return Err(error(StatusCode::CONFLICT, "the order is not paid"));
        }
        let left = order.total_fee.saturating_sub(order.refunded_fee);
        if left == 0 {
            return Err(error(StatusCode::CONFLICT, "the order is refunded in full"));
        }
        let refund_fee = action.refund_fee.unwrap_or(left);
        if refund_fee == 0 || refund_fee > left {
            return Err(error(
                StatusCode::BAD_REQUEST,
                &format!("refund_fee must be from 1 to {left} (what is left to refund)"),
            ));
        }
        let out_refund_no = match action.out_refund_no.filter(|n| !n.is_empty()) {
            Some(no)
                if book
                    .refunds
                    .contains_key(&(order.mch_id.clone(), no.clone())) =>
            {
                return Err(error(
                    StatusCode::CONFLICT,
                    "this out_refund_no is used already",
                ));
            }
            Some(no) => no,
            None => format!("SIMREFUND{}", book::random_digits(16)),
        };
        let scale = merchant(&sim, &order.mch_id).map_or(1.0, |m| m.notify_retry_scale);
        let notify_url = action.notify_url.unwrap_or_else(|| {
            merchant(&sim, &order.mch_id)
                .map(|m| m.refund_notify_url.clone())
                .unwrap_or_default()
        });
        let refund = Refund {
            api: order.api,
            succeeded: (order.api == Api::V2).then_some(now),
            mch_id: order.mch_id.clone(),
            appid: order.appid.clone(),
            out_trade_no: order.out_trade_no.clone(),
            transaction_id: order.transaction_id.clone(),
            out_refund_no,
            refund_id: book::new_refund_id(now),
            total_fee: order.total_fee,
            refund_fee,
            refund_account: "REFUND_SOURCE_UNSETTLED_FUNDS".to_owned(),
            refund_desc: action.reason.unwrap_or_default(),
            notify_url,
            created: now,
            deliveries: book::Deliveries::default(),
        };
        let key = (order.mch_id.clone(), order.out_trade_no.clone());
        book.add_refund(&key, refund.clone());
        Ok((refund, scale))
    })();
    let (refund, scale) = match result {
        Err(e) => return e.into_response(),
        Ok(done) => done,
    };
    tracing::info!(mch_id = %refund.mch_id, out_refund_no = %refund.out_refund_no, api = refund.api.as_str(), "refund from the console");
    match refund.api {
        Api::V2 => {
            if let Some(m) =
                merchant(&sim, &refund.mch_id).filter(|_| !refund.notify_url.is_empty())
            {
                notify::spawn(&sim, notify::refund_delivery(m, &refund), scale);
            }
        }
        Api::V3 => v3::api::complete_refund(
            &sim,
            (refund.mch_id.clone(), refund.out_refund_no.clone()),
            scale,
        ),
    }
    let mut answer = state_of(&sim, &refund.mch_id, &refund.out_trade_no);
    answer["out_refund_no"] = json!(refund.out_refund_no);
    answer["refund_fee"] = json!(refund.refund_fee);
    Json(answer).into_response()
}

/// The `/_sim/pay/notify` modes a notification of this API version takes (payments, or
/// refunds when `refund`), as the console offers them.
pub(crate) fn notify_modes(api: &str, refund: bool) -> Vec<&'static str> {
    let own: &[&'static str] = match (api, refund) {
        ("v3", _) => &[
            "duplicate",
            "tampered_body",
            "stale_timestamp",
            "unknown_serial",
            "signtest",
        ],
        (_, false) => &[
            "duplicate",
            "tamper_sign",
            "tamper_total_fee",
            "other_appid",
            "no_sign",
        ],
        (_, true) => &["duplicate", "tamper_req_info"],
    };
    let common: &[&'static str] = if refund {
        &["reordered", "concurrent_duplicates"]
    } else {
        &[
            "result_code_fail",
            "unknown_order",
            "reordered",
            "concurrent_duplicates",
        ]
    };
    own.iter().chain(common).copied().collect()
}

/// The console's view of the order book: at most `max` orders, newest first.
pub(crate) fn console_orders(sim: &Sim, max: usize) -> Vec<OrderView> {
    let book = sim.pay.book();
    let mut orders: Vec<&book::Order> = book.orders.values().collect();
    orders.sort_by(|a, b| (b.created, &b.out_trade_no).cmp(&(a.created, &a.out_trade_no)));
    orders
        .into_iter()
        .take(max)
        .map(|o| OrderView {
            api: o.api.as_str(),
            mch_id: o.mch_id.clone(),
            appid: o.appid.clone(),
            out_trade_no: o.out_trade_no.clone(),
            description: o.body.clone(),
            total_fee: o.total_fee,
            trade_state: o.trade_state(),
            trade_type: o.trade_type.clone(),
            code_url: o.code_url.clone(),
            payer: o.openid.clone(),
            created: o.created,
            paid_at: o.paid_at(),
            refunded_fee: o.refunded_fee,
            refunds: book
                .refunds_of(o)
                .map(|r| RefundView {
                    out_refund_no: r.out_refund_no.clone(),
                    refund_fee: r.refund_fee,
                    status: v3::notify::refund_status(r),
                    created: r.created,
                    modes: notify_modes(r.api.as_str(), true),
                })
                .collect(),
            notifications_sent: o.deliveries.sent,
            notifications_acknowledged: o.deliveries.acknowledged,
            modes: notify_modes(o.api.as_str(), false),
        })
        .collect()
}
