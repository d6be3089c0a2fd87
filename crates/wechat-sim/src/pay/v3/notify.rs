//! v3 resources and notifications (§8): the transaction and refund objects, the encrypted
//! envelope, and the deliveries (genuine or altered for `/_sim/pay/notify`).

use serde_json::{Value, json};

use super::V3Merchant;
use super::keys::{self, KeyError};
use crate::pay::book::{self, Order, Refund};
use crate::pay::notify::{Delivery, Target, V3Signing};

/// The transaction object of an order (§8.2), as the query answers and the payment
/// notification carries it.
pub(crate) fn transaction(order: &Order) -> Value {
    let mut t = json!({
        "appid": order.appid,
        "mchid": order.mch_id,
        "out_trade_no": order.out_trade_no,
        "trade_type": order.trade_type,
        "trade_state": order.trade_state(),
        "trade_state_desc": order.trade_state_desc(),
        "attach": order.attach,
        "amount": {
            "total": order.total_fee,
            "currency": order.fee_type,
        },
    });
    // A Native or H5 order has a payer once someone paid it.
    if !order.openid.is_empty() {
        t["payer"] = json!({ "openid": order.openid });
    }
    if let Some(at) = order.paid_at() {
        t["transaction_id"] = json!(order.transaction_id);
        t["bank_type"] = json!("OTHERS");
        t["success_time"] = json!(book::rfc3339(at));
        t["amount"]["payer_total"] = json!(order.total_fee);
        t["amount"]["payer_currency"] = json!(order.fee_type);
    }
    t
}

/// `status` of a refund object: `SUCCESS` or `PROCESSING`.
pub(crate) fn refund_status(refund: &Refund) -> &'static str {
    if refund.succeeded.is_some() {
        "SUCCESS"
    } else {
        "PROCESSING"
    }
}

/// The refund object (§7.4) the refund and refund-query endpoints answer.
pub(crate) fn refund_object(refund: &Refund) -> Value {
    let mut r = json!({
        "refund_id": refund.refund_id,
        "out_refund_no": refund.out_refund_no,
        "transaction_id": refund.transaction_id,
        "out_trade_no": refund.out_trade_no,
        "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱",
        "create_time": book::rfc3339(refund.created),
        "status": refund_status(refund),
        "funds_account": "AVAILABLE",
        "amount": {
            "total": refund.total_fee,
            "refund": refund.refund_fee,
            "from": [],
            "payer_total": refund.total_fee,
            "payer_refund": refund.refund_fee,
            "settlement_refund": refund.refund_fee,
            "settlement_total": refund.total_fee,
            "discount_refund": 0,
            "currency": "CNY",
            "refund_fee": 0,
        },
        "promotion_detail": [],
    });
    if let Some(at) = refund.succeeded {
        r["success_time"] = json!(book::rfc3339(at));
    }
    r
}

/// The refund notification's resource (§8.3; `refund_status`, not `status`).
pub(crate) fn refund_resource(refund: &Refund) -> Value {
    let mut r = json!({
        "mchid": refund.mch_id,
        "transaction_id": refund.transaction_id,
        "out_trade_no": refund.out_trade_no,
        "refund_id": refund.refund_id,
        "out_refund_no": refund.out_refund_no,
        "refund_status": refund_status(refund),
        "user_received_account": "支付用户零钱",
        "amount": {
            "total": refund.total_fee,
            "refund": refund.refund_fee,
            "payer_total": refund.total_fee,
            "payer_refund": refund.refund_fee,
        },
    });
    if let Some(at) = refund.succeeded {
        r["success_time"] = json!(book::rfc3339(at));
    }
    r
}

/// A notification id shaped like a UUID (36 characters).
fn event_id() -> String {
    let hex: String = (0..16)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The §8.1 envelope around `resource` encrypted with the APIv3 key.
pub(crate) fn envelope(
    merchant: &V3Merchant,
    event_type: &str,
    summary: &str,
    original_type: &str,
    resource: &Value,
    now: u64,
) -> Result<String, KeyError> {
    let nonce = keys::gcm_nonce();
    let ciphertext = keys::aes_gcm_encrypt(
        merchant.apiv3_key(),
        &nonce,
        original_type,
        resource.to_string().as_bytes(),
    )?;
    Ok(json!({
        "id": event_id(),
        "create_time": book::rfc3339(now),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": summary,
        "resource": {
            "original_type": original_type,
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": ciphertext,
            "associated_data": original_type,
            "nonce": nonce,
        },
    })
    .to_string())
}

/// Genuine signing of a merchant's notifications: the platform certificate when it has one,
/// else the public key.
fn signing(merchant: &V3Merchant) -> V3Signing {
    V3Signing::new(merchant.pay_key.clone(), merchant.serial_for(None))
}

/// The genuine `TRANSACTION.SUCCESS` notification of a paid v3 order.
pub(crate) fn payment_delivery(
    merchant: &V3Merchant,
    order: &Order,
    now: u64,
) -> Result<Delivery, KeyError> {
    payment_delivery_with(merchant, order, &transaction(order), "支付成功", now)
}

/// A `TRANSACTION.SUCCESS` notification of `order` carrying this transaction object (the
/// genuine one, or one with another `trade_state`), correctly encrypted and signed.
pub(crate) fn payment_delivery_with(
    merchant: &V3Merchant,
    order: &Order,
    transaction: &Value,
    summary: &str,
    now: u64,
) -> Result<Delivery, KeyError> {
    let body = envelope(
        merchant,
        "TRANSACTION.SUCCESS",
        summary,
        "transaction",
        transaction,
        now,
    )?;
    Ok(Delivery {
        url: order.notify_url.clone(),
        body,
        target: Target::Order((order.mch_id.clone(), order.out_trade_no.clone())),
        v3: Some(signing(merchant)),
    })
}

/// The genuine `REFUND.SUCCESS` notification of a v3 refund.
pub(crate) fn refund_delivery(
    merchant: &V3Merchant,
    refund: &Refund,
    now: u64,
) -> Result<Delivery, KeyError> {
    let body = envelope(
        merchant,
        "REFUND.SUCCESS",
        "退款成功",
        "refund",
        &refund_resource(refund),
        now,
    )?;
    Ok(Delivery {
        url: refund.notify_url.clone(),
        body,
        target: Target::Refund((refund.mch_id.clone(), refund.out_refund_no.clone())),
        v3: Some(signing(merchant)),
    })
}

/// The `/_sim/pay/notify` modes of v3 notifications.
pub(crate) const MODES: &str =
    "duplicate, tampered_body, stale_timestamp, unknown_serial, signtest";

/// Alters a genuine delivery of `merchant`'s as `mode` says; `Err` with the valid modes for
/// another mode.
///
/// `unknown_serial` signs with a key no merchant knows, under an id of the kind the merchant
/// verifies with: an unknown platform-certificate serial (40 upper-case hex digits, like
/// [`keys::certificate_serial`]) for a merchant with a platform certificate, an unknown
/// `PUB_KEY_ID_…` for one in public-key mode (WeChat never sends either kind to the other).
pub(crate) fn alter(
    merchant: &V3Merchant,
    mut delivery: Delivery,
    mode: &str,
) -> Result<Delivery, String> {
    let Some(signing) = delivery.v3.as_mut() else {
        return Err("not a v3 notification".into());
    };
    match mode {
        "duplicate" => {}
        "tampered_body" => {
            signing.signed_body = Some(delivery.body.clone());
            delivery.body =
                delivery
                    .body
                    .replacen("\"summary\":\"", "\"summary\":\"(tampered) ", 1);
        }
        "stale_timestamp" => signing.backdate_secs = 600,
        "unknown_serial" => {
            signing.key = keys::stranger_key().map_err(|e| e.to_string())?;
            signing.serial = match &merchant.platform {
                Some(platform) => loop {
                    let serial = keys::certificate_serial();
                    if serial != platform.serial {
                        break serial;
                    }
                },
                None => format!("PUB_KEY_ID_UNKNOWN{}", book::random_digits(20)),
            };
        }
        "signtest" => {
            use base64::Engine as _;
            let random: Vec<u8> = (0..64).map(|_| rand::random::<u8>()).collect();
            signing.forged_signature = Some(format!(
                "WECHATPAY/SIGNTEST/{}",
                base64::engine::general_purpose::STANDARD.encode(random)
            ));
        }
        _ => return Err(format!("mode must be {MODES} for a v3 notification")),
    }
    Ok(delivery)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_look_like_uuids() {
        let id = event_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
    }
}
