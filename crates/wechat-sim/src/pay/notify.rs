//! Notification delivery (§4.4, §4.8): building the payment and refund notifications and
//! POSTing them to the merchant on WeChat's retry schedule until it answers SUCCESS (v2) or any
//! 2xx (v3, whose notifications [`super::v3::notify`] builds).

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::http::header::CONTENT_TYPE;

use super::book::{self, Order, Refund};
use super::sign::{self, SignType};
use super::v3::keys::SignKey;
use super::{MerchantConfig, crypto, xml};
use crate::journal::{self, AttemptRecord, Subject};
use crate::state::Sim;

/// WeChat's redelivery delays after a failed attempt, in seconds (≈ 24 h 4 min in all).
pub(crate) const RETRY_SCHEDULE_SECS: [u64; 15] = [
    15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10_800, 10_800, 10_800, 21_600, 21_600,
];

/// Whose counters an attempt updates.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A payment notification of `(mch_id, out_trade_no)`.
    Order(book::OrderKey),
    /// A refund notification of `(mch_id, out_refund_no)`.
    Refund((String, String)),
}

/// One notification: where it goes and the exact body.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub(crate) url: String,
    pub(crate) body: String,
    pub(crate) target: Target,
    /// How a v3 notification is signed (at each attempt); `None` for v2 (XML).
    pub(crate) v3: Option<V3Signing>,
}

/// The signing of a v3 notification, redone at each attempt (fresh timestamp and nonce).
#[derive(Debug, Clone)]
pub(crate) struct V3Signing {
    /// The WeChat Pay key that signs.
    pub(crate) key: Arc<SignKey>,
    /// Its `Wechatpay-Serial`.
    pub(crate) serial: String,
    /// The bytes signed when they are not the body sent (`tampered_body`).
    pub(crate) signed_body: Option<String>,
    /// Seconds the `Wechatpay-Timestamp` is moved into the past (`stale_timestamp`).
    pub(crate) backdate_secs: u64,
    /// A `Wechatpay-Signature` sent instead of the real one (`signtest`).
    pub(crate) forged_signature: Option<String>,
}

impl V3Signing {
    /// Genuine signing with `key` under `serial`.
    pub(crate) fn new(key: Arc<SignKey>, serial: &str) -> Self {
        Self {
            key,
            serial: serial.to_owned(),
            signed_body: None,
            backdate_secs: 0,
            forged_signature: None,
        }
    }

    /// The headers for one attempt of `body`.
    fn headers(&self, body: &str) -> Vec<(&'static str, String)> {
        let signed = self.signed_body.as_deref().unwrap_or(body);
        let timestamp = super::v3::auth::wall_secs().saturating_sub(self.backdate_secs);
        let mut headers = super::v3::auth::signature_headers(
            &self.key,
            &self.serial,
            timestamp,
            signed.as_bytes(),
        );
        if let Some(forged) = &self.forged_signature {
            for (name, value) in &mut headers {
                if *name == "Wechatpay-Signature" {
                    value.clone_from(forged);
                }
            }
        }
        headers
    }
}

/// What one attempt gave.
#[derive(Debug, Clone)]
pub(crate) struct Attempt {
    /// The receiver's HTTP status; `None` when it could not be reached or timed out.
    pub(crate) status: Option<u16>,
    /// Whether the receiver answered 200 with `return_code` SUCCESS.
    pub(crate) acknowledged: bool,
}

/// The payment notification fields of a paid order, unsigned.
pub(crate) fn payment_fields(order: &Order) -> BTreeMap<String, String> {
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    fields.insert("return_code".into(), "SUCCESS".into());
    fields.insert("appid".into(), order.appid.clone());
    fields.insert("mch_id".into(), order.mch_id.clone());
    fields.insert("nonce_str".into(), book::nonce());
    fields.insert("result_code".into(), "SUCCESS".into());
    if order.sign_type == SignType::HmacSha256 {
        fields.insert("sign_type".into(), order.sign_type.as_str().into());
    }
    for (k, v) in super::api::paid_fields(order) {
        if !v.is_empty() {
            fields.insert(k.to_owned(), v);
        }
    }
    fields
}

/// Signs `fields` in place with the merchant key.
pub(crate) fn sign_in_place(fields: &mut BTreeMap<String, String>, key: &str, sign_type: SignType) {
    fields.remove("sign");
    let signature = sign::sign_map(fields, key, sign_type);
    fields.insert("sign".into(), signature);
}

/// The genuine payment notification of a paid order.
pub(crate) fn payment_delivery(merchant: &MerchantConfig, order: &Order) -> Delivery {
    let mut fields = payment_fields(order);
    sign_in_place(&mut fields, &merchant.api_key, order.sign_type);
    payment_delivery_with(order, &fields)
}

/// A v2 payment notification of `order` with these (signed or tampered) fields.
pub(crate) fn payment_delivery_with(order: &Order, fields: &BTreeMap<String, String>) -> Delivery {
    Delivery {
        url: order.notify_url.clone(),
        body: xml::write_map(fields),
        target: Target::Order((order.mch_id.clone(), order.out_trade_no.clone())),
        v3: None,
    }
}

/// The `<root>` document encrypted into a refund notification's `req_info`.
pub(crate) fn refund_info(refund: &Refund) -> String {
    let total = refund.total_fee.to_string();
    let fee = refund.refund_fee.to_string();
    let time = book::beijing(refund.created, true);
    xml::write(
        "root",
        [
            ("transaction_id", refund.transaction_id.as_str()),
            ("out_trade_no", refund.out_trade_no.as_str()),
            ("refund_id", refund.refund_id.as_str()),
            ("out_refund_no", refund.out_refund_no.as_str()),
            ("total_fee", total.as_str()),
            ("settlement_total_fee", total.as_str()),
            ("refund_fee", fee.as_str()),
            ("settlement_refund_fee", fee.as_str()),
            ("refund_status", "SUCCESS"),
            ("success_time", time.as_str()),
            ("refund_recv_accout", "支付用户的零钱"),
            ("refund_account", refund.refund_account.as_str()),
            ("refund_request_source", "API"),
        ],
    )
}

/// A refund notification with this `req_info`.
pub(crate) fn refund_delivery_with(refund: &Refund, req_info: &str) -> Delivery {
    let nonce = book::nonce();
    let body = xml::write(
        "xml",
        [
            ("return_code", "SUCCESS"),
            ("return_msg", "OK"),
            ("appid", refund.appid.as_str()),
            ("mch_id", refund.mch_id.as_str()),
            ("nonce_str", nonce.as_str()),
            ("req_info", req_info),
        ],
    );
    Delivery {
        url: refund.notify_url.clone(),
        body,
        target: Target::Refund((refund.mch_id.clone(), refund.out_refund_no.clone())),
        v3: None,
    }
}

/// The genuine refund notification.
pub(crate) fn refund_delivery(merchant: &MerchantConfig, refund: &Refund) -> Delivery {
    let req_info = crypto::encrypt_req_info(&merchant.api_key, &refund_info(refund));
    refund_delivery_with(refund, &req_info)
}

/// The delay before retry `n` (0-based), scaled; a scale that is not a finite non-negative
/// number counts as 1.
pub(crate) fn retry_delay(n: usize, scale: f64) -> Option<Duration> {
    let secs = *RETRY_SCHEDULE_SECS.get(n)? as f64;
    let scale = if scale.is_finite() && scale >= 0.0 {
        scale
    } else {
        1.0
    };
    Some(Duration::try_from_secs_f64(secs * scale).unwrap_or(Duration::from_secs(secs as u64)))
}

/// Delivers in the background: one attempt now, then the retry schedule until acknowledged.
/// The task holds only a weak reference, so it ends when the simulator is dropped.
pub(crate) fn spawn(sim: &Arc<Sim>, delivery: Delivery, scale: f64) {
    let record = journal_entry(sim, &delivery, "scheduled");
    let weak: Weak<Sim> = Arc::downgrade(sim);
    let task = tokio::spawn(async move {
        for n in 0..=RETRY_SCHEDULE_SECS.len() {
            if n > 0 {
                let Some(delay) = retry_delay(n - 1, scale) else {
                    return;
                };
                tokio::time::sleep(delay).await;
            }
            let Some(sim) = weak.upgrade() else { return };
            if attempt(&sim, &delivery, record).await.acknowledged {
                return;
            }
        }
        tracing::info!(url = %delivery.url, "notification never acknowledged; giving up as WeChat does");
    });
    sim.pay.track(task.abort_handle());
}

/// Starts the journal's record of `delivery`, sent in `mode` (`scheduled`: with WeChat's
/// retries), for [`attempt`].
pub(crate) fn journal_entry(sim: &Sim, delivery: &Delivery, mode: &str) -> u64 {
    let api = if delivery.v3.is_some() { "v3" } else { "v2" };
    let subject = match &delivery.target {
        Target::Order((mch_id, out_trade_no)) => Subject {
            kind: "payment",
            api,
            mch_id: mch_id.clone(),
            out_trade_no: out_trade_no.clone(),
            out_refund_no: None,
        },
        Target::Refund(key) => Subject {
            kind: "refund",
            api,
            mch_id: key.0.clone(),
            out_trade_no: sim
                .pay
                .book()
                .refunds
                .get(key)
                .map(|r| r.out_trade_no.clone())
                .unwrap_or_default(),
            out_refund_no: Some(key.1.clone()),
        },
    };
    sim.journal
        .delivery(subject, mode, &delivery.url, sim.now_secs())
}

/// Sends one attempt and counts it (stats, the order's or refund's counters, and the journal's
/// record `record` with the app's status and the start of its reply).
pub(crate) async fn attempt(sim: &Sim, delivery: &Delivery, record: u64) -> Attempt {
    let at = sim.now_secs();
    sim.stats.notification_sent();
    count(sim, &delivery.target, false);
    let mut request = sim.pay.http.post(&delivery.url);
    match &delivery.v3 {
        None => request = request.header(CONTENT_TYPE, "text/xml; charset=utf-8"),
        Some(v3) => {
            request = request.header(CONTENT_TYPE, "application/json");
            for (name, value) in v3.headers(&delivery.body) {
                request = request.header(name, value);
            }
        }
    }
    let sent = request.body(delivery.body.clone()).send().await;
    let (result, reply) = match sent {
        Err(e) => {
            let e = e.without_url();
            tracing::info!(url = %delivery.url, error = %e, "notification not delivered");
            let attempt = Attempt {
                status: None,
                acknowledged: false,
            };
            (attempt, (format!("not delivered: {e}"), false))
        }
        Ok(response) => {
            let status = response.status().as_u16();
            let body = response.bytes().await.unwrap_or_default();
            // v3: any 2xx (§8.4); v2: 200 with return_code SUCCESS.
            let acknowledged = if delivery.v3.is_some() {
                (200..300).contains(&status)
            } else {
                status == 200
                    && xml::parse(&body, "xml")
                        .is_ok_and(|m| m.get("return_code").is_some_and(|c| c == "SUCCESS"))
            };
            tracing::info!(url = %delivery.url, status, acknowledged, "notification delivered");
            let attempt = Attempt {
                status: Some(status),
                acknowledged,
            };
            (attempt, journal::reply_text(&body))
        }
    };
    sim.journal.attempt(
        record,
        AttemptRecord {
            at,
            status: result.status,
            acknowledged: result.acknowledged,
            reply: reply.0,
            truncated: reply.1,
        },
    );
    if result.acknowledged {
        sim.stats.notification_acknowledged();
        count(sim, &delivery.target, true);
    }
    result
}

fn count(sim: &Sim, target: &Target, acknowledged: bool) {
    let mut book = sim.pay.book();
    let deliveries = match target {
        Target::Order(key) => book.orders.get_mut(key).map(|o| &mut o.deliveries),
        Target::Refund(key) => book.refunds.get_mut(key).map(|r| &mut r.deliveries),
    };
    if let Some(d) = deliveries {
        if acknowledged {
            d.acknowledged += 1;
        } else {
            d.sent += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_wechats() {
        assert_eq!(RETRY_SCHEDULE_SECS.iter().sum::<u64>(), 24 * 3600 + 4 * 60);
        assert_eq!(retry_delay(0, 1.0), Some(Duration::from_secs(15)));
        assert_eq!(retry_delay(14, 0.001).map(|d| d.as_millis()), Some(21_600));
        assert_eq!(retry_delay(15, 1.0), None);
        assert_eq!(retry_delay(3, f64::NAN), Some(Duration::from_secs(180)));
        assert_eq!(retry_delay(3, -2.0), Some(Duration::from_secs(180)));
        assert_eq!(retry_delay(3, 0.0), Some(Duration::ZERO));
        assert_eq!(retry_delay(14, 1e300), Some(Duration::from_secs(21_600)));
    }
}
