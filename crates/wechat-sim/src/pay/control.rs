//! Test controls under `/_sim/pay/` and `/_sim/tls/`: send notifications on demand (again,
//! tampered with, failed, for an unknown order, out of order, concurrently), read an order,
//! fetch the TLS CA.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use super::book::{self, Api, Book, Order, Payment, Refund};
use super::{MerchantConfig, crypto, merchant, notify, sign, v3};
use crate::state::Sim;

/// A control request that cannot be served: `status` with `{"error": msg}`.
#[derive(Debug)]
pub(super) struct ControlError {
    status: StatusCode,
    msg: String,
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.msg }))).into_response()
    }
}

pub(super) fn error(status: StatusCode, msg: &str) -> ControlError {
    ControlError {
        status,
        msg: msg.to_owned(),
    }
}

/// The body of `POST /_sim/pay/notify`.
#[derive(Debug, Deserialize)]
struct NotifyRequest {
    out_trade_no: Option<String>,
    out_refund_no: Option<String>,
    mch_id: Option<String>,
    mode: String,
    /// How many deliveries `concurrent_duplicates` sends at once.
    count: Option<u32>,
}

/// The most deliveries `concurrent_duplicates` sends at once.
const MAX_CONCURRENT: u32 = 50;

/// The modes of v2 payment notifications (besides [`ORDER_MODES`]).
const V2_MODES: &str = "duplicate, tamper_sign, tamper_total_fee, other_appid, no_sign";

/// The modes of v2 refund notifications (besides [`REFUND_MODES`]).
const V2_REFUND_MODES: &str = "duplicate, tamper_req_info";

/// The modes every order takes, v2 or v3.
const ORDER_MODES: &str =
    "result_code_fail, unknown_order, reordered or concurrent_duplicates (with count)";

/// The modes every refund takes, v2 or v3.
const REFUND_MODES: &str = "reordered or concurrent_duplicates (with count)";

/// What `POST /_sim/pay/notify` sends.
enum Plan {
    /// These deliveries, one after the other.
    Sequence(Vec<notify::Delivery>),
    /// The same delivery, this many times at once.
    Concurrent(notify::Delivery, u32),
}

/// `POST /_sim/pay/notify`: sends (possibly altered) notifications now, without retries, and
/// answers what was sent and how the receiver answered.
pub(super) async fn notify(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let req: NotifyRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("expected {{\"out_trade_no\"|\"out_refund_no\", \"mode\"}}: {e}"),
            )
            .into_response();
        }
    };
    let planned = {
        let book = sim.pay.book();
        plan(&sim, &book, &req)
    };
    let sent = match planned {
        Err(e) => return e.into_response(),
        Ok(Plan::Sequence(deliveries)) => {
            let mut sent = Vec::with_capacity(deliveries.len());
            for delivery in deliveries {
                let record = notify::journal_entry(&sim, &delivery, &req.mode);
                let attempt = notify::attempt(&sim, &delivery, record).await;
                sent.push((delivery, attempt));
            }
            sent
        }
        Ok(Plan::Concurrent(delivery, count)) => {
            let record = notify::journal_entry(&sim, &delivery, &req.mode);
            concurrently(&sim, delivery, count, record).await
        }
    };
    Json(answer(&req.mode, &sent)).into_response()
}

/// The deliveries `req` asks for.
fn plan(sim: &Sim, book: &Book, req: &NotifyRequest) -> Result<Plan, ControlError> {
    let mch_id = req.mch_id.as_deref();
    let mode = req.mode.as_str();
    if req.count.is_some() && mode != "concurrent_duplicates" {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "count goes with mode concurrent_duplicates",
        ));
    }
    let required = || {
        error(
            StatusCode::BAD_REQUEST,
            "out_trade_no or out_refund_no is required",
        )
    };
    match mode {
        "concurrent_duplicates" => {
            let count = req
                .count
                .filter(|n| (1..=MAX_CONCURRENT).contains(n))
                .ok_or_else(|| {
                    error(
                        StatusCode::BAD_REQUEST,
                        "concurrent_duplicates needs count, from 1 to 50",
                    )
                })?;
            let delivery = match (&req.out_refund_no, &req.out_trade_no) {
                (Some(no), _) => refund_delivery(sim, find_refund(book, no, mch_id)?)?,
                (None, Some(no)) => paid_order_delivery(sim, find(book, no, mch_id)?)?,
                (None, None) => return Err(required()),
            };
            Ok(Plan::Concurrent(delivery, count))
        }
        "reordered" => {
            let refund = match (&req.out_refund_no, &req.out_trade_no) {
                (Some(no), _) => find_refund(book, no, mch_id)?,
                (None, Some(no)) => {
                    let order = find(book, no, mch_id)?;
                    book.refunds_of(order).last().ok_or_else(|| {
                        error(
                            StatusCode::CONFLICT,
                            "the order has no refund: reordered sends a refund's notification before its payment's",
                        )
                    })?
                }
                (None, None) => return Err(required()),
            };
            let order = book
                .orders
                .get(&(refund.mch_id.clone(), refund.out_trade_no.clone()))
                .ok_or_else(|| error(StatusCode::NOT_FOUND, "the refund's order is gone"))?;
            Ok(Plan::Sequence(vec![
                refund_delivery(sim, refund)?,
                payment_delivery(sim, order)?,
            ]))
        }
        _ => {
            let delivery = match (&req.out_refund_no, &req.out_trade_no) {
                (Some(no), _) => refund_notification(sim, find_refund(book, no, mch_id)?, mode)?,
                (None, Some(no)) => payment_notification(sim, book, find(book, no, mch_id)?, mode)?,
                (None, None) => return Err(required()),
            };
            Ok(Plan::Sequence(vec![delivery]))
        }
    }
}

/// Sends `delivery` `count` times at once (each attempt waits for all to be ready).
async fn concurrently(
    sim: &Arc<Sim>,
    delivery: notify::Delivery,
    count: u32,
    record: u64,
) -> Vec<(notify::Delivery, notify::Attempt)> {
    let barrier = Arc::new(Barrier::new(count as usize));
    let mut tasks = JoinSet::new();
    for n in 0..count {
        let (sim, delivery, barrier) = (Arc::clone(sim), delivery.clone(), Arc::clone(&barrier));
        tasks.spawn(async move {
            barrier.wait().await;
            (n, notify::attempt(&sim, &delivery, record).await)
        });
    }
    let mut attempts = Vec::with_capacity(count as usize);
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(attempt) => attempts.push(attempt),
            Err(e) => tracing::error!(error = %e, "a concurrent delivery failed"),
        }
    }
    attempts.sort_by_key(|(n, _)| *n);
    attempts
        .into_iter()
        .map(|(_, attempt)| (delivery.clone(), attempt))
        .collect()
}

/// `{"notify_url", "mode", "status", "acknowledged", "deliveries": [...]}`: the first
/// delivery's URL and status, whether every delivery was acknowledged, and each delivery.
fn answer(mode: &str, sent: &[(notify::Delivery, notify::Attempt)]) -> Value {
    let deliveries: Vec<Value> = sent
        .iter()
        .map(|(delivery, attempt)| {
            let mut d = json!({
                "notify_url": delivery.url,
                "status": attempt.status,
                "acknowledged": attempt.acknowledged,
            });
            match &delivery.target {
                notify::Target::Order((_, no)) => {
                    d["kind"] = json!("payment");
                    d["out_trade_no"] = json!(no);
                }
                notify::Target::Refund((_, no)) => {
                    d["kind"] = json!("refund");
                    d["out_refund_no"] = json!(no);
                }
            }
            d
        })
        .collect();
    let first = sent.first();
    json!({
        "notify_url": first.map(|(d, _)| d.url.clone()),
        "mode": mode,
        "status": first.and_then(|(_, a)| a.status),
        "acknowledged": !sent.is_empty() && sent.iter().all(|(_, a)| a.acknowledged),
        "deliveries": deliveries,
    })
}

/// 400 for a mode `api`'s orders (or refunds) do not take, saying which they take.
fn unknown_mode(mode: &str, api: Api, refund: bool) -> ControlError {
    let (what, common) = if refund {
        ("refund", REFUND_MODES)
    } else {
        ("order", ORDER_MODES)
    };
    let v2 = if refund { V2_REFUND_MODES } else { V2_MODES };
    let (own, other, other_api) = match api {
        Api::V2 => (v2, v3::notify::MODES, Api::V3),
        Api::V3 => (v3::notify::MODES, v2, Api::V2),
    };
    let hint = if other.split(", ").any(|m| m == mode) {
        format!(
            " ({mode} is a {} mode; this is a {} {what})",
            other_api.as_str(),
            api.as_str()
        )
    } else if refund && matches!(mode, "result_code_fail" | "unknown_order") {
        format!(" ({mode} is for payments: give out_trade_no)")
    } else {
        String::new()
    };
    error(
        StatusCode::BAD_REQUEST,
        &format!(
            "mode must be {own}, {common} for a {} {what}{hint}",
            api.as_str()
        ),
    )
}

/// The order with this out_trade_no (of `mch_id` when given).
pub(super) fn find<'a>(
    book: &'a Book,
    out_trade_no: &str,
    mch_id: Option<&str>,
) -> Result<&'a Order, ControlError> {
    let mut found = book
        .orders
        .values()
        .filter(|o| o.out_trade_no == out_trade_no && mch_id.is_none_or(|m| m == o.mch_id));
    match (found.next(), found.next()) {
        (Some(order), None) => Ok(order),
        (None, _) => Err(error(StatusCode::NOT_FOUND, "no such order")),
        (Some(_), Some(_)) => Err(error(
            StatusCode::CONFLICT,
            "several merchants have this out_trade_no; add mch_id",
        )),
    }
}

/// The refund with this out_refund_no (of `mch_id` when given).
fn find_refund<'a>(
    book: &'a Book,
    out_refund_no: &str,
    mch_id: Option<&str>,
) -> Result<&'a Refund, ControlError> {
    let mut found = book
        .refunds
        .values()
        .filter(|r| r.out_refund_no == out_refund_no && mch_id.is_none_or(|m| m == r.mch_id));
    match (found.next(), found.next()) {
        (Some(r), None) => Ok(r),
        (None, _) => Err(error(StatusCode::NOT_FOUND, "no such refund")),
        (Some(_), Some(_)) => Err(error(
            StatusCode::CONFLICT,
            "several merchants have this out_refund_no; add mch_id",
        )),
    }
}

/// A v3 merchant's keys, or 404.
fn v3_merchant<'a>(sim: &'a Sim, mch_id: &str) -> Result<&'a v3::V3Merchant, ControlError> {
    v3::merchant(sim, mch_id).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "the merchant has no API v3 keys any more",
        )
    })
}

/// A v2 merchant, or 404.
fn v2_merchant<'a>(sim: &'a Sim, mch_id: &str) -> Result<&'a MerchantConfig, ControlError> {
    merchant(sim, mch_id).ok_or_else(|| error(StatusCode::NOT_FOUND, "the merchant is gone"))
}

/// A v3 notification that could not be encrypted or signed.
fn key_error(e: &v3::keys::KeyError) -> ControlError {
    error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
}

/// The genuine payment notification of `order` (paid or not: the caller decides), in its API
/// version.
fn payment_delivery(sim: &Sim, order: &Order) -> Result<notify::Delivery, ControlError> {
    match order.api {
        Api::V2 => Ok(notify::payment_delivery(
            v2_merchant(sim, &order.mch_id)?,
            order,
        )),
        Api::V3 => {
            v3::notify::payment_delivery(v3_merchant(sim, &order.mch_id)?, order, sim.now_secs())
                .map_err(|e| key_error(&e))
        }
    }
}

/// The genuine payment notification of a paid order; 409 for an unpaid one.
fn paid_order_delivery(sim: &Sim, order: &Order) -> Result<notify::Delivery, ControlError> {
    if order.paid_at().is_none() {
        return Err(error(StatusCode::CONFLICT, "the order is not paid"));
    }
    payment_delivery(sim, order)
}

/// The genuine refund notification of `refund`, in its API version; 409 when it has nowhere to
/// go or (v3) is still `PROCESSING`.
fn refund_delivery(sim: &Sim, refund: &Refund) -> Result<notify::Delivery, ControlError> {
    if refund.notify_url.is_empty() {
        return Err(error(
            StatusCode::CONFLICT,
            "the refund has no notify_url (nor the merchant a refund_notify_url)",
        ));
    }
    match refund.api {
        Api::V2 => Ok(notify::refund_delivery(
            v2_merchant(sim, &refund.mch_id)?,
            refund,
        )),
        Api::V3 => {
            if refund.succeeded.is_none() {
                return Err(error(
                    StatusCode::CONFLICT,
                    "the refund is still PROCESSING",
                ));
            }
            v3::notify::refund_delivery(v3_merchant(sim, &refund.mch_id)?, refund, sim.now_secs())
                .map_err(|e| key_error(&e))
        }
    }
}

/// A payment notification of `order` in `mode` (one delivery).
fn payment_notification(
    sim: &Sim,
    book: &Book,
    order: &Order,
    mode: &str,
) -> Result<notify::Delivery, ControlError> {
    match mode {
        "result_code_fail" => return failed_payment(sim, order),
        "unknown_order" => return unknown_order(sim, book, order),
        _ => {}
    }
    let delivery = paid_order_delivery(sim, order)?;
    if order.api == Api::V3 {
        let merchant = v3_merchant(sim, &order.mch_id)?;
        return v3::notify::alter(merchant, delivery, mode)
            .map_err(|_| unknown_mode(mode, Api::V3, false));
    }
    let key = v2_merchant(sim, &order.mch_id)?.api_key.as_str();
    let mut fields = notify::payment_fields(order);
    match mode {
        "duplicate" => return Ok(delivery),
        "tamper_sign" => {
            // Signed with another key: well-formed, but wrong.
            notify::sign_in_place(&mut fields, sign::WRONG_KEY, order.sign_type);
        }
        "tamper_total_fee" => {
            notify::sign_in_place(&mut fields, key, order.sign_type);
            fields.insert(
                "total_fee".into(),
                order.total_fee.wrapping_add(1).to_string(),
            );
        }
        "other_appid" => {
            let other = sim
                .config
                .merchants
                .iter()
                .flat_map(|m| m.appids.iter())
                .find(|a| **a != order.appid)
                .cloned()
                .unwrap_or_else(|| "wx00000000000000ff".to_owned());
            fields.insert("appid".into(), other);
            notify::sign_in_place(&mut fields, key, order.sign_type);
        }
        "no_sign" => {
            fields.remove("sign");
        }
        _ => return Err(unknown_mode(mode, Api::V2, false)),
    }
    Ok(notify::payment_delivery_with(order, &fields))
}

/// `result_code_fail`: a correctly signed (v3: encrypted and signed) notification that the
/// payment of `order` failed. v2: `result_code` `FAIL`, `err_code` `NOTENOUGH`, no
/// `transaction_id` nor `time_end`. v3: `event_type` `TRANSACTION.SUCCESS` (v3 has no other
/// payment event), `trade_state` `PAYERROR`, no `transaction_id`, `success_time` nor
/// `bank_type`. The order itself is not changed.
fn failed_payment(sim: &Sim, order: &Order) -> Result<notify::Delivery, ControlError> {
    match order.api {
        Api::V2 => {
            let merchant = v2_merchant(sim, &order.mch_id)?;
            let mut fields = notify::payment_fields(order);
            fields.remove("transaction_id");
            fields.remove("time_end");
            fields.insert("result_code".into(), "FAIL".into());
            fields.insert("err_code".into(), "NOTENOUGH".into());
            fields.insert("err_code_des".into(), "余额不足".into());
            notify::sign_in_place(&mut fields, &merchant.api_key, order.sign_type);
            Ok(notify::payment_delivery_with(order, &fields))
        }
        Api::V3 => {
            let merchant = v3_merchant(sim, &order.mch_id)?;
            let mut transaction = v3::notify::transaction(order);
            if let Some(t) = transaction.as_object_mut() {
                for paid_only in ["transaction_id", "success_time", "bank_type"] {
                    t.remove(paid_only);
                }
                t.insert("trade_state".into(), json!("PAYERROR"));
                t.insert("trade_state_desc".into(), json!("支付失败，请重新下单支付"));
            }
            v3::notify::payment_delivery_with(
                merchant,
                order,
                &transaction,
                "支付失败",
                sim.now_secs(),
            )
            .map_err(|e| key_error(&e))
        }
    }
}

/// `unknown_order`: the genuine notification of a paid order the app never made: a copy of
/// `order` (merchant, appid, payer, amount, notify_url) under a new `SIMUNKNOWN…` out_trade_no
/// and transaction_id, paid now. Nothing is added to the book.
fn unknown_order(sim: &Sim, book: &Book, order: &Order) -> Result<notify::Delivery, ControlError> {
    let now = sim.now_secs();
    let out_trade_no = std::iter::repeat_with(|| format!("SIMUNKNOWN{}", book::random_digits(16)))
        .find(|no| {
            !book
                .orders
                .contains_key(&(order.mch_id.clone(), no.clone()))
        })
        .unwrap_or_default();
    let stranger = Order {
        out_trade_no,
        transaction_id: book::new_transaction_id(now),
        payment: Payment::Paid { at: now },
        refunds: Vec::new(),
        refunded_fee: 0,
        ..order.clone()
    };
    payment_delivery(sim, &stranger)
}

/// A refund notification of `refund` in `mode` (one delivery).
fn refund_notification(
    sim: &Sim,
    refund: &Refund,
    mode: &str,
) -> Result<notify::Delivery, ControlError> {
    let delivery = refund_delivery(sim, refund)?;
    match (refund.api, mode) {
        (Api::V3, _) => {
            let merchant = v3_merchant(sim, &refund.mch_id)?;
            v3::notify::alter(merchant, delivery, mode)
                .map_err(|_| unknown_mode(mode, Api::V3, true))
        }
        (Api::V2, "duplicate") => Ok(delivery),
        (Api::V2, "tamper_req_info") => {
            let forged = crypto::encrypt_req_info(
                "not the merchant's api key",
                &notify::refund_info(refund),
            );
            Ok(notify::refund_delivery_with(refund, &forged))
        }
        (Api::V2, _) => Err(unknown_mode(mode, Api::V2, true)),
    }
}

/// The query of `GET /_sim/pay/orders/{out_trade_no}`.
#[derive(Debug, Deserialize)]
pub(super) struct OrderQuery {
    mch_id: Option<String>,
}

/// `GET /_sim/pay/orders/{out_trade_no}`: the order as JSON.
pub(super) async fn order(
    State(sim): State<Arc<Sim>>,
    Path(out_trade_no): Path<String>,
    Query(query): Query<OrderQuery>,
) -> Response {
    let book = sim.pay.book();
    let order = match find(&book, &out_trade_no, query.mch_id.as_deref()) {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    let refunds: Vec<Value> = book
        .refunds_of(order)
        .map(|r| {
            json!({
                "out_refund_no": r.out_refund_no,
                "refund_id": r.refund_id,
                "refund_fee": r.refund_fee,
                "refund_desc": r.refund_desc,
                "refund_status": v3::notify::refund_status(r),
                "api": r.api.as_str(),
                "notify_url": r.notify_url,
                "notifications": r.deliveries,
            })
        })
        .collect();
    let non_empty = |s: &str| {
        if s.is_empty() {
            Value::Null
        } else {
            Value::String(s.to_owned())
        }
    };
    let answer = json!({
        "api": order.api.as_str(),
        "mch_id": order.mch_id,
        "appid": order.appid,
        "out_trade_no": order.out_trade_no,
        "body": order.body,
        "total_fee": order.total_fee,
        "fee_type": order.fee_type,
        "trade_type": order.trade_type,
        "openid": order.openid,
        "payer_client_ip": non_empty(&order.payer_client_ip),
        "code_url": non_empty(&order.code_url),
        "notify_url": order.notify_url,
        "attach": order.attach,
        "sign_type": if order.api == Api::V3 { "RSA" } else { order.sign_type.as_str() },
        "prepay_id": order.prepay_id,
        "prepay_expires_at": order.prepay_expires,
        "time_expire": order.time_expire,
        "created_at": order.created,
        "trade_state": order.trade_state(),
        "closed": order.payment == Payment::Closed,
        "transaction_id": non_empty(&order.transaction_id),
        "paid_at": order.paid_at(),
        "time_end": order.paid_at().map(|t| book::beijing(t, false)),
        "refunded_fee": order.refunded_fee,
        "refunds": refunds,
        "notifications": order.deliveries,
    });
    drop(book);
    Json(answer).into_response()
}

/// The query of `GET /_sim/pay/v3/public-key`.
#[derive(Debug, Deserialize)]
pub(super) struct PublicKeyQuery {
    mch_id: Option<String>,
}

/// `GET /_sim/pay/v3/public-key?mch_id=…`: `{"id":"PUB_KEY_ID_…","pem":"-----BEGIN PUBLIC KEY-----…"}`.
pub(super) async fn public_key(
    State(sim): State<Arc<Sim>>,
    Query(query): Query<PublicKeyQuery>,
) -> Response {
    let Some(mch_id) = query.mch_id.filter(|m| !m.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "mch_id is required").into_response();
    };
    match super::pay_public_key(&sim, &mch_id) {
        Some((id, pem)) => Json(json!({ "id": id, "pem": pem })).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "no merchant with API v3 has this mch_id",
        )
        .into_response(),
    }
}

/// `GET /_sim/tls/server-ca.pem`: the CA that signs the TLS listener's certificate.
pub(super) async fn server_ca(State(sim): State<Arc<Sim>>) -> Response {
    match &sim.pay.server_tls {
        Some(tls) => (
            [(CONTENT_TYPE, "application/x-pem-file")],
            tls.ca_pem.clone(),
        )
            .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "the TLS certificate could not be generated",
        )
        .into_response(),
    }
}
