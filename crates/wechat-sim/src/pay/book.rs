//! The merchant ledger: orders, refunds and the indexes to find them, plus the identifiers and
//! time formats WeChat uses.

use std::collections::{BTreeMap, HashMap};

use rand::Rng as _;
use rand::distr::Alphanumeric;
use serde::Serialize;

use super::sign::SignType;

/// How long a prepay_id can be paid, on the simulated clock (WeChat: 2 h).
pub(crate) const PREPAY_TTL_SECS: u64 = 2 * 3600;

/// `(mch_id, out_trade_no)`: orders are unique per merchant.
pub(crate) type OrderKey = (String, String);

/// What a unified order asked for, kept to detect `OUT_TRADE_NO_USED`.
pub(crate) type OrderParams = BTreeMap<String, String>;

/// Request fields that may differ between two unifiedorder calls for the same order.
const VOLATILE_FIELDS: &[&str] = &[
    "sign",
    "nonce_str",
    "spbill_create_ip",
    "time_start",
    "time_expire",
];

/// The fields of a unifiedorder request that must match for the same out_trade_no.
pub(crate) fn order_params(fields: &BTreeMap<String, String>) -> OrderParams {
    let mut params: OrderParams = fields
        .iter()
        .filter(|(k, v)| !VOLATILE_FIELDS.contains(&k.as_str()) && !v.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // An absent sign_type is MD5.
    params
        .entry("sign_type".to_owned())
        .or_insert_with(|| "MD5".to_owned());
    params
}

/// Payment state of an order (refunds are recorded separately).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Payment {
    /// Created, not paid.
    NotPaid,
    /// Paid at this simulated time.
    Paid {
        /// Unix time of payment.
        at: u64,
    },
    /// Closed by closeorder.
    Closed,
}

/// The API version that made an order or a refund; its notifications and pay sheet use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// XML, MD5/HMAC-SHA256 signs.
    V2,
    /// JSON, RSA signatures.
    V3,
}

impl Api {
    /// `"v2"` or `"v3"`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Api::V2 => "v2",
            Api::V3 => "v3",
        }
    }
}

/// Delivery counters for one order's or refund's notifications.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct Deliveries {
    /// Attempts made.
    pub(crate) sent: u64,
    /// Attempts answered with SUCCESS.
    pub(crate) acknowledged: u64,
}

/// One order.
#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub(crate) api: Api,
    /// v3 `time_expire` (unix time): the last moment the order can be paid.
    pub(crate) time_expire: Option<u64>,
    pub(crate) mch_id: String,
    pub(crate) appid: String,
    pub(crate) out_trade_no: String,
    pub(crate) body: String,
    pub(crate) total_fee: u64,
    pub(crate) fee_type: String,
    pub(crate) trade_type: String,
    /// JSAPI: the payer the order was placed for; NATIVE and MWEB: who paid (empty until then).
    pub(crate) openid: String,
    /// The buyer's IP as the merchant sent it (`spbill_create_ip`, v3
    /// `scene_info.payer_client_ip`); the H5 cashier page compares it with its visitor's.
    pub(crate) payer_client_ip: String,
    /// NATIVE: the `code_url` handed out; empty otherwise.
    pub(crate) code_url: String,
    pub(crate) notify_url: String,
    pub(crate) attach: String,
    pub(crate) device_info: String,
    pub(crate) sign_type: SignType,
    pub(crate) params: OrderParams,
    pub(crate) prepay_id: String,
    pub(crate) prepay_expires: u64,
    pub(crate) created: u64,
    pub(crate) payment: Payment,
    pub(crate) transaction_id: String,
    /// out_refund_no of each refund, oldest first.
    pub(crate) refunds: Vec<String>,
    pub(crate) refunded_fee: u64,
    pub(crate) deliveries: Deliveries,
}

impl Order {
    /// `trade_state` as orderquery reports it.
    pub(crate) fn trade_state(&self) -> &'static str {
        match self.payment {
            Payment::NotPaid => "NOTPAY",
            Payment::Closed => "CLOSED",
            Payment::Paid { .. } if !self.refunds.is_empty() => "REFUND",
            Payment::Paid { .. } => "SUCCESS",
        }
    }

    /// `trade_state_desc` for [`Self::trade_state`].
    pub(crate) fn trade_state_desc(&self) -> &'static str {
        match self.trade_state() {
            "NOTPAY" => "订单未支付",
            "CLOSED" => "订单已关闭",
            "REFUND" => "订单发生过退款，退款详情请查询退款单",
            _ => "支付成功",
        }
    }

    /// Unix time of payment, when paid.
    pub(crate) fn paid_at(&self) -> Option<u64> {
        match self.payment {
            Payment::Paid { at } => Some(at),
            _ => None,
        }
    }
}

/// One refund.
#[derive(Debug, Clone)]
pub(crate) struct Refund {
    pub(crate) api: Api,
    /// When it succeeded (simulated time); `None` while `PROCESSING` (v3 only).
    pub(crate) succeeded: Option<u64>,
    pub(crate) mch_id: String,
    pub(crate) appid: String,
    pub(crate) out_trade_no: String,
    pub(crate) transaction_id: String,
    pub(crate) out_refund_no: String,
    pub(crate) refund_id: String,
    pub(crate) total_fee: u64,
    pub(crate) refund_fee: u64,
    pub(crate) refund_account: String,
    pub(crate) refund_desc: String,
    pub(crate) notify_url: String,
    pub(crate) created: u64,
    pub(crate) deliveries: Deliveries,
}

/// Everything the Pay simulation remembers, behind one lock.
#[derive(Debug, Default)]
pub(crate) struct Book {
    pub(crate) orders: HashMap<OrderKey, Order>,
    pub(crate) by_prepay: HashMap<String, OrderKey>,
    /// NATIVE orders by their `code_url`.
    pub(crate) by_code_url: HashMap<String, OrderKey>,
    /// H5 cashier links by their `package`: the order and when the link was handed out.
    pub(crate) h5_links: HashMap<String, (OrderKey, u64)>,
    pub(crate) by_transaction: HashMap<String, OrderKey>,
    /// `(mch_id, out_refund_no)` -> refund.
    pub(crate) refunds: HashMap<(String, String), Refund>,
    pub(crate) by_refund_id: HashMap<String, (String, String)>,
}

impl Book {
    /// The order `transaction_id` names, else the one `out_trade_no` names, for `mch_id`.
    pub(crate) fn find_order(
        &self,
        mch_id: &str,
        transaction_id: &str,
        out_trade_no: &str,
    ) -> Option<&Order> {
        let key = if !transaction_id.is_empty() {
            self.by_transaction.get(transaction_id)?.clone()
        } else {
            (mch_id.to_owned(), out_trade_no.to_owned())
        };
        self.orders.get(&key).filter(|o| o.mch_id == mch_id)
    }

    /// The refunds of an order, oldest first.
    pub(crate) fn refunds_of<'a>(
        &'a self,
        order: &'a Order,
    ) -> impl Iterator<Item = &'a Refund> + 'a {
        order
            .refunds
            .iter()
            .filter_map(move |no| self.refunds.get(&(order.mch_id.clone(), no.clone())))
    }
}

impl Book {
    /// Pays the unpaid order `key` at `now` (a new `transaction_id`, indexed), as the pay sheet
    /// does once the payment is confirmed, and returns a copy of it; `None` when there is no
    /// such order. The caller checks that it may be paid.
    pub(crate) fn pay(&mut self, key: &OrderKey, now: u64) -> Option<Order> {
        let order = self.orders.get_mut(key)?;
        order.payment = Payment::Paid { at: now };
        order.transaction_id = new_transaction_id(now);
        self.by_transaction
            .insert(order.transaction_id.clone(), key.clone());
        Some(order.clone())
    }

    /// Records a new refund of the order `key` (whose refundable amount the caller checked):
    /// the order's refunded amount and list, the indexes, the refund itself.
    pub(crate) fn add_refund(&mut self, key: &OrderKey, refund: Refund) {
        if let Some(order) = self.orders.get_mut(key) {
            order.refunded_fee += refund.refund_fee;
            order.refunds.push(refund.out_refund_no.clone());
        }
        let refund_key = (refund.mch_id.clone(), refund.out_refund_no.clone());
        self.by_refund_id
            .insert(refund.refund_id.clone(), refund_key.clone());
        self.refunds.insert(refund_key, refund);
    }
}

/// What closing an order did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Closing {
    /// It was unpaid and is now closed.
    Closed,
    /// It was closed already.
    AlreadyClosed,
    /// It is paid: it cannot be closed.
    Paid,
}

impl Order {
    /// Closes the order if it is unpaid (closeorder, v3 close, the console).
    pub(crate) fn close(&mut self) -> Closing {
        match self.payment {
            Payment::Paid { .. } => Closing::Paid,
            Payment::Closed => Closing::AlreadyClosed,
            Payment::NotPaid => {
                self.payment = Payment::Closed;
                Closing::Closed
            }
        }
    }
}

/// `len` random digits.
pub(crate) fn random_digits(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// A 32-character nonce_str.
pub(crate) fn nonce() -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// A prepay_id in WeChat's shape: `wx` + Beijing time `yyyyMMddHHmmss` + 20 hex digits.
pub(crate) fn new_prepay_id(now: u64) -> String {
    let mut rng = rand::rng();
    let hex: String = (0..10)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect();
    format!("wx{}{hex}", beijing(now, false))
}

/// How long an H5 cashier link (`h5_url`, v2 `mweb_url`) can be opened: 5 minutes.
pub(crate) const H5_LINK_TTL_SECS: u64 = 5 * 60;

/// WeChat's path of the H5 cashier page, served by the simulator.
pub(crate) const H5_CASHIER_PATH: &str = "/cgi-bin/mmpayweb-bin/checkmweb";

impl Book {
    /// Hands out a fresh H5 cashier link for an order (each prepay call gives a new one, valid
    /// for [`H5_LINK_TTL_SECS`]), on the simulator at `host`.
    pub(crate) fn issue_h5_link(
        &mut self,
        key: &OrderKey,
        prepay_id: &str,
        host: &str,
        now: u64,
    ) -> String {
        let package = random_digits(10);
        self.h5_links.insert(package.clone(), (key.clone(), now));
        format!("http://{host}{H5_CASHIER_PATH}?prepay_id={prepay_id}&package={package}")
    }
}

/// A fresh Native `code_url` in WeChat's form, `weixin://wxpay/bizpayurl?pr=` and 9 letters and
/// digits.
pub(crate) fn new_code_url() -> String {
    let token: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(9)
        .map(char::from)
        .collect();
    format!("weixin://wxpay/bizpayurl?pr={token}")
}

/// A 28-digit transaction_id like `4200000560202005168434734774`.
pub(crate) fn new_transaction_id(now: u64) -> String {
    format!("4200000{}{}", &beijing(now, false)[..8], random_digits(13))
}

/// A 29-digit refund_id like `50300604212020051600550537447`.
pub(crate) fn new_refund_id(now: u64) -> String {
    format!("503000{}{}", &beijing(now, false)[..8], random_digits(15))
}

/// RFC 3339 Beijing time of a unix time: `yyyy-MM-ddTHH:mm:ss+08:00`.
pub(crate) fn rfc3339(unix: u64) -> String {
    format!("{}+08:00", beijing(unix, true).replacen(' ', "T", 1))
}

/// Beijing time (UTC+8) of a unix time: `yyyyMMddHHmmss`, or `yyyy-MM-dd HH:mm:ss` when
/// `dashed`.
pub(crate) fn beijing(unix: u64, dashed: bool) -> String {
    let secs = i64::try_from(unix)
        .unwrap_or(i64::MAX)
        .saturating_add(8 * 3600);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    if dashed {
        format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02}")
    } else {
        format!("{y:04}{m:02}{d:02}{hh:02}{mm:02}{ss:02}")
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beijing_time() {
        // 1414561699 = 2014-10-29 05:48:19 UTC = 13:48:19 in Beijing.
        assert_eq!(beijing(1_414_561_699, false), "20141029134819");
        assert_eq!(beijing(1_414_561_699, true), "2014-10-29 13:48:19");
        assert_eq!(beijing(0, true), "1970-01-01 08:00:00");
        // 2000-02-29 16:00:00 UTC is 2000-03-01 00:00:00 in Beijing.
        assert_eq!(beijing(951_840_000, true), "2000-03-01 00:00:00");
        assert_eq!(rfc3339(1_414_561_699), "2014-10-29T13:48:19+08:00");
    }

    #[test]
    fn identifiers_have_wechat_shapes() {
        let now = 1_414_561_699;
        let prepay = new_prepay_id(now);
        assert_eq!(prepay.len(), 36);
        assert!(prepay.starts_with("wx20141029134819"));
        let txn = new_transaction_id(now);
        assert_eq!(txn.len(), 28);
        assert!(txn.bytes().all(|b| b.is_ascii_digit()));
        let refund = new_refund_id(now);
        assert_eq!(refund.len(), 29);
        assert!(refund.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(nonce().len(), 32);
    }

    #[test]
    fn order_params_ignore_volatile_fields() {
        let mut a = BTreeMap::new();
        a.insert("body".to_owned(), "x".to_owned());
        a.insert("nonce_str".to_owned(), "n1".to_owned());
        a.insert("sign".to_owned(), "S1".to_owned());
        let mut b = a.clone();
        b.insert("nonce_str".to_owned(), "n2".to_owned());
        b.insert("sign".to_owned(), "S2".to_owned());
        b.insert("sign_type".to_owned(), "MD5".to_owned());
        b.insert("attach".to_owned(), String::new());
        assert_eq!(order_params(&a), order_params(&b));
        b.insert("body".to_owned(), "y".to_owned());
        assert_ne!(order_params(&a), order_params(&b));
    }
}
