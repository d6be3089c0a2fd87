//! The WeChat client's side of a JSAPI payment (§4.3; v3 §9): `getBrandWCPayRequest`
//! parameters are checked as the client checks them (a v2 order by its MD5/HMAC sign, a v3
//! order by the merchant's RSA `paySign`), and confirming pays the order.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::book::{Api, Book, Order, OrderKey, Payment};
use super::sign::{self, SignType};
use super::{merchant, notify, v3};
use crate::state::Sim;

/// The `err_msg` of a failed `getBrandWCPayRequest`.
const FAIL: &str = "get_brand_wcpay_request:fail";

/// What the client says for an unknown or expired prepay_id or another appId.
const PREPAY_INVALID: &str = "调用支付JSAPI缺少参数：total_fee";

/// What the client says for a wrong paySign or signType.
const BAD_SIGN: &str = "支付验证签名失败";

/// The parameters, in the order the client checks their presence.
const PARAMS: [&str; 6] = [
    "appId",
    "timeStamp",
    "nonceStr",
    "package",
    "signType",
    "paySign",
];

/// Reads the JSON parameters: every one present as a non-empty string.
fn parse_params(body: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut out = BTreeMap::new();
    for name in PARAMS {
        match value.get(name).and_then(Value::as_str) {
            Some(v) if !v.is_empty() => {
                out.insert(name.to_owned(), v.to_owned());
            }
            _ => return Err(format!("调用支付JSAPI缺少参数：{name}")),
        }
    }
    Ok(out)
}

/// Checks the parameters against the ledger; the order they pay.
fn verify(
    sim: &Sim,
    book: &Book,
    params: &BTreeMap<String, String>,
    now: u64,
) -> Result<OrderKey, String> {
    let get = |name: &str| params.get(name).map(String::as_str).unwrap_or("");
    let prepay_id = get("package")
        .strip_prefix("prepay_id=")
        .ok_or(PREPAY_INVALID)?;
    let key = book.by_prepay.get(prepay_id).ok_or(PREPAY_INVALID)?;
    let order = book.orders.get(key).ok_or(PREPAY_INVALID)?;
    if now >= order.prepay_expires || order.appid != get("appId") {
        return Err(PREPAY_INVALID.to_owned());
    }
    if order.time_expire.is_some_and(|t| now > t) {
        return Err("订单已过期，请重新下单".to_owned());
    }
    if order.api == Api::V3 {
        // v3 (§9): RSA over appId\ntimeStamp\nnonceStr\npackage\n by the merchant's key.
        if get("signType") != "RSA" {
            return Err(BAD_SIGN.to_owned());
        }
        let merchant = v3::merchant(sim, &order.mch_id).ok_or(BAD_SIGN)?;
        let message = format!(
            "{}\n{}\n{}\n{}\n",
            get("appId"),
            get("timeStamp"),
            get("nonceStr"),
            get("package")
        );
        if !merchant
            .merchant_key
            .verify(message.as_bytes(), get("paySign"))
        {
            return Err(BAD_SIGN.to_owned());
        }
    } else {
        if SignType::from_field(Some(get("signType"))) != Some(order.sign_type) {
            return Err(BAD_SIGN.to_owned());
        }
        let merchant = merchant(sim, &order.mch_id).ok_or(BAD_SIGN)?;
        let signed = ["appId", "nonceStr", "package", "signType", "timeStamp"].map(|k| (k, get(k)));
        let expected = sign::sign(signed, &merchant.api_key, order.sign_type);
        let given = get("paySign").to_ascii_uppercase();
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_bytes(),
            given.as_bytes(),
        )) {
            return Err(BAD_SIGN.to_owned());
        }
    }
    match order.payment {
        Payment::Paid { .. } => Err("该订单已支付，请勿重复支付".to_owned()),
        Payment::Closed => Err("该订单已关闭".to_owned()),
        Payment::NotPaid => Ok(key.clone()),
    }
}

fn failed(err_desc: &str) -> Value {
    json!({ "err_msg": FAIL, "err_desc": err_desc })
}

/// `POST /_sim/pay/check`: the client's checks, without paying.
pub(super) async fn check(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let params = match parse_params(&body) {
        Ok(p) => p,
        Err(desc) => {
            return Json(json!({ "ok": false, "err_msg": FAIL, "err_desc": desc })).into_response();
        }
    };
    let now = sim.clock.now_secs();
    let book = sim.pay.book();
    let answer = match verify(&sim, &book, &params, now).map(|key| book.orders.get(&key).cloned()) {
        Ok(Some(order)) => json!({
            "ok": true,
            "body": order.body,
            "total_fee": order.total_fee,
            "mch_id": order.mch_id,
            "api": order.api.as_str(),
        }),
        Ok(None) => json!({ "ok": false, "err_msg": FAIL, "err_desc": PREPAY_INVALID }),
        Err(desc) => json!({ "ok": false, "err_msg": FAIL, "err_desc": desc }),
    };
    drop(book);
    Json(answer).into_response()
}

/// `POST /_sim/pay/confirm`: checks, pays the order, then delivers the payment notification.
pub(super) async fn confirm(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let params = match parse_params(&body) {
        Ok(p) => p,
        Err(desc) => return Json(failed(&desc)).into_response(),
    };
    let now = sim.clock.now_secs();
    let paid = {
        let mut guard = sim.pay.book();
        let book = &mut *guard;
        match verify(&sim, book, &params, now) {
            Err(desc) => Err(desc),
            Ok(key) => book.pay(&key, now).ok_or_else(|| PREPAY_INVALID.to_owned()),
        }
    };
    match paid {
        Err(desc) => Json(failed(&desc)).into_response(),
        Ok(order) => {
            notify_paid(&sim, &order, now);
            Json(json!({ "err_msg": "get_brand_wcpay_request:ok" })).into_response()
        }
    }
}

/// After an order was paid: logs it and delivers its payment notification (with WeChat's
/// retries) in the background.
pub(super) fn notify_paid(sim: &Arc<Sim>, order: &Order, now: u64) {
    tracing::info!(mch_id = %order.mch_id, out_trade_no = %order.out_trade_no, api = order.api.as_str(), "order paid");
    if let Some(m) = merchant(sim, &order.mch_id) {
        let delivery = match order.api {
            Api::V2 => Some(notify::payment_delivery(m, order)),
            Api::V3 => v3::merchant(sim, &order.mch_id).and_then(|v| {
                v3::notify::payment_delivery(v, order, now)
                    .map_err(
                        |e| tracing::error!(error = %e, "cannot build the v3 payment notification"),
                    )
                    .ok()
            }),
        };
        if let Some(delivery) = delivery {
            notify::spawn(sim, delivery, m.notify_retry_scale);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_must_all_be_strings() {
        let full = json!({
            "appId": "wx1", "timeStamp": "1414561699", "nonceStr": "n", "package": "prepay_id=wx1",
            "signType": "MD5", "paySign": "X"
        });
        assert!(parse_params(full.to_string().as_bytes()).is_ok());
        let mut numeric = full.clone();
        numeric["timeStamp"] = json!(1414561699);
        assert_eq!(
            parse_params(numeric.to_string().as_bytes()).unwrap_err(),
            "调用支付JSAPI缺少参数：timeStamp"
        );
        let mut missing = full.clone();
        missing.as_object_mut().map(|o| o.remove("paySign"));
        assert_eq!(
            parse_params(missing.to_string().as_bytes()).unwrap_err(),
            "调用支付JSAPI缺少参数：paySign"
        );
        assert_eq!(
            parse_params(b"not json").unwrap_err(),
            "调用支付JSAPI缺少参数：appId"
        );
    }
}
