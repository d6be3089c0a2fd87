//! Test controls under `/_sim/pay/` and `/_sim/tls/`: re-send (or tamper with) a notification,
//! read an order, fetch the TLS CA.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::book::{self, Api, Book, Order, Payment};
use super::{crypto, merchant, notify, sign, v3, xml};
use crate::state::Sim;

/// A control request that cannot be served: `status` with `{"error": msg}`.
#[derive(Debug)]
struct ControlError {
    status: StatusCode,
    msg: String,
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.msg }))).into_response()
    }
}

fn error(status: StatusCode, msg: &str) -> ControlError {
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
}

/// The order with this out_trade_no (of `mch_id` when given).
fn find<'a>(
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

/// `POST /_sim/pay/notify`: sends one (possibly tampered) notification now, without retries.
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
    let delivery = {
        let book = sim.pay.book();
        let built = if let Some(out_refund_no) = &req.out_refund_no {
            refund_notification(&sim, &book, out_refund_no, req.mch_id.as_deref(), &req.mode)
        } else if let Some(out_trade_no) = &req.out_trade_no {
            payment_notification(&sim, &book, out_trade_no, req.mch_id.as_deref(), &req.mode)
        } else {
            Err(error(
                StatusCode::BAD_REQUEST,
                "out_trade_no or out_refund_no is required",
            ))
        };
        match built {
            Ok(d) => d,
            Err(e) => return e.into_response(),
        }
    };
    let attempt = notify::attempt(&sim, &delivery).await;
    Json(json!({
        "notify_url": delivery.url,
        "mode": req.mode,
        "status": attempt.status,
        "acknowledged": attempt.acknowledged,
    }))
    .into_response()
}

/// The v2 modes of payment notifications.
const V2_MODES: &str = "duplicate, tamper_sign, tamper_total_fee, other_appid or no_sign";

fn payment_notification(
    sim: &Sim,
    book: &Book,
    out_trade_no: &str,
    mch_id: Option<&str>,
    mode: &str,
) -> Result<notify::Delivery, ControlError> {
    let order = find(book, out_trade_no, mch_id)?;
    if order.paid_at().is_none() {
        return Err(error(StatusCode::CONFLICT, "the order is not paid"));
    }
    if order.api == Api::V3 {
        let Some(merchant) = v3::merchant(sim, &order.mch_id) else {
            return Err(error(
                StatusCode::NOT_FOUND,
                "the order's merchant has no API v3 keys",
            ));
        };
        let delivery = v3::notify::payment_delivery(merchant, order, sim.now_secs())
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?;
        return v3::notify::alter(delivery, mode).map_err(|e| {
            let hint = if V2_MODES.contains(mode) {
                " (that is a v2 mode; this is a v3 order)"
            } else {
                ""
            };
            error(StatusCode::BAD_REQUEST, &format!("{e}{hint}"))
        });
    }
    let Some(merchant) = merchant(sim, &order.mch_id) else {
        return Err(error(StatusCode::NOT_FOUND, "the order's merchant is gone"));
    };
    let mut delivery = notify::payment_delivery(merchant, order);
    let mut fields = notify::payment_fields(order);
    let key = merchant.api_key.as_str();
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
        _ => {
            let hint = if v3::notify::MODES.contains(mode) {
                " (that is a v3 mode; this is a v2 order)"
            } else {
                ""
            };
            return Err(error(
                StatusCode::BAD_REQUEST,
                &format!("mode must be {V2_MODES} for a v2 order{hint}"),
            ));
        }
    }
    delivery.body = xml::write_map(&fields);
    Ok(delivery)
}

fn refund_notification(
    sim: &Sim,
    book: &Book,
    out_refund_no: &str,
    mch_id: Option<&str>,
    mode: &str,
) -> Result<notify::Delivery, ControlError> {
    let mut found = book
        .refunds
        .values()
        .filter(|r| r.out_refund_no == out_refund_no && mch_id.is_none_or(|m| m == r.mch_id));
    let refund = match (found.next(), found.next()) {
        (Some(r), None) => r,
        (None, _) => return Err(error(StatusCode::NOT_FOUND, "no such refund")),
        (Some(_), Some(_)) => {
            return Err(error(
                StatusCode::CONFLICT,
                "several merchants have this out_refund_no; add mch_id",
            ));
        }
    };
    if refund.notify_url.is_empty() {
        return Err(error(
            StatusCode::CONFLICT,
            "the refund has no notify_url (nor the merchant a refund_notify_url)",
        ));
    }
    if refund.api == Api::V3 {
        let Some(merchant) = v3::merchant(sim, &refund.mch_id) else {
            return Err(error(
                StatusCode::NOT_FOUND,
                "the refund's merchant has no API v3 keys",
            ));
        };
        if refund.succeeded.is_none() {
            return Err(error(
                StatusCode::CONFLICT,
                "the refund is still PROCESSING",
            ));
        }
        let delivery = v3::notify::refund_delivery(merchant, refund, sim.now_secs())
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?;
        return v3::notify::alter(delivery, mode).map_err(|e| {
            let hint = if mode == "tamper_req_info" {
                " (that is a v2 mode; this is a v3 refund)"
            } else {
                ""
            };
            error(StatusCode::BAD_REQUEST, &format!("{e}{hint}"))
        });
    }
    let Some(merchant) = merchant(sim, &refund.mch_id) else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "the refund's merchant is gone",
        ));
    };
    match mode {
        "duplicate" => Ok(notify::refund_delivery(merchant, refund)),
        "tamper_req_info" => {
            let forged = crypto::encrypt_req_info(
                "not the merchant's api key",
                &notify::refund_info(refund),
            );
            Ok(notify::refund_delivery_with(refund, &forged))
        }
        _ => {
            let hint = if v3::notify::MODES.contains(mode) {
                " (that is a v3 mode; this is a v2 refund)"
            } else {
                ""
            };
            Err(error(
                StatusCode::BAD_REQUEST,
                &format!("mode must be duplicate or tamper_req_info for a v2 refund{hint}"),
            ))
        }
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
