//! What the console shows of the simulator's history, in bounded memory: the recent requests
//! (path, status, errcode; never a query string, a body or a header) and every notification
//! delivery with its attempts (the app's HTTP status and the first KiB of its reply).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::state::lock;

/// How many requests [`Journal::requests`] keeps (the oldest go first).
pub(crate) const MAX_REQUESTS: usize = 200;
/// How many notification deliveries are kept (the oldest go first).
pub(crate) const MAX_DELIVERIES: usize = 100;
/// How many attempts of one delivery are kept (more are counted, not kept).
pub(crate) const MAX_ATTEMPTS: usize = 50;
/// How much of the app's reply to a notification is kept, in bytes.
pub(crate) const REPLY_BYTES: usize = 1024;

/// One request the simulator answered.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RequestRecord {
    /// The simulated unix time it was answered at.
    pub(crate) at: u64,
    /// `GET`, `POST`…
    pub(crate) method: String,
    /// The URL path, without the query string.
    pub(crate) path: String,
    /// The HTTP status answered.
    pub(crate) status: u16,
    /// The WeChat error of the answer, when it had one: a JSON `errcode` other than 0, a v3
    /// `code`, a v2 `err_code` or `return_code` `FAIL`.
    pub(crate) errcode: Option<String>,
}

/// What a notification delivery is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Subject {
    /// `payment` or `refund`.
    pub(crate) kind: &'static str,
    /// `v2` or `v3`.
    pub(crate) api: &'static str,
    /// The merchant.
    pub(crate) mch_id: String,
    /// The order's `out_trade_no`.
    pub(crate) out_trade_no: String,
    /// The refund's `out_refund_no`, for a refund notification.
    pub(crate) out_refund_no: Option<String>,
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AttemptRecord {
    /// The simulated unix time it was sent at.
    pub(crate) at: u64,
    /// The app's HTTP status; `None` when it could not be reached.
    pub(crate) status: Option<u16>,
    /// Whether it counted as acknowledged.
    pub(crate) acknowledged: bool,
    /// The first [`REPLY_BYTES`] of the app's reply (lossy UTF-8), or why there was none.
    pub(crate) reply: String,
    /// Whether the reply was longer than what is kept.
    pub(crate) truncated: bool,
}

/// One notification delivery: the scheduled one of a payment or refund (with its retries), or
/// one sent by `POST /_sim/pay/notify` in a mode.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DeliveryRecord {
    /// Unique in this simulator, increasing.
    pub(crate) id: u64,
    /// What it notifies.
    pub(crate) subject: Subject,
    /// `scheduled` (with WeChat's retries), or the mode of `POST /_sim/pay/notify`.
    pub(crate) mode: String,
    /// Where it is sent.
    pub(crate) notify_url: String,
    /// The simulated unix time it started at.
    pub(crate) created: u64,
    /// Attempts made, also those not kept.
    pub(crate) attempts_made: u64,
    /// The first [`MAX_ATTEMPTS`] attempts.
    pub(crate) attempts: Vec<AttemptRecord>,
}

/// The bounded history; one per simulator.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    requests: Mutex<VecDeque<RequestRecord>>,
    deliveries: Mutex<VecDeque<DeliveryRecord>>,
    next_id: AtomicU64,
}

impl Journal {
    /// Records a request, forgetting the oldest beyond [`MAX_REQUESTS`].
    pub(crate) fn request(&self, record: RequestRecord) {
        let mut requests = lock(&self.requests);
        if requests.len() == MAX_REQUESTS {
            requests.pop_front();
        }
        requests.push_back(record);
    }

    /// The recent requests, oldest first.
    pub(crate) fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.requests).iter().cloned().collect()
    }

    /// Starts recording a delivery and returns its id for [`Self::attempt`].
    pub(crate) fn delivery(&self, subject: Subject, mode: &str, notify_url: &str, now: u64) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut deliveries = lock(&self.deliveries);
        if deliveries.len() == MAX_DELIVERIES {
            deliveries.pop_front();
        }
        deliveries.push_back(DeliveryRecord {
            id,
            subject,
            mode: mode.to_owned(),
            notify_url: notify_url.to_owned(),
            created: now,
            attempts_made: 0,
            attempts: Vec::new(),
        });
        id
    }

    /// Records an attempt of delivery `id` (ignored when that delivery is no longer kept).
    pub(crate) fn attempt(&self, id: u64, attempt: AttemptRecord) {
        let mut deliveries = lock(&self.deliveries);
        if let Some(d) = deliveries.iter_mut().rev().find(|d| d.id == id) {
            d.attempts_made += 1;
            if d.attempts.len() < MAX_ATTEMPTS {
                d.attempts.push(attempt);
            }
        }
    }

    /// The deliveries kept, oldest first.
    pub(crate) fn deliveries(&self) -> Vec<DeliveryRecord> {
        lock(&self.deliveries).iter().cloned().collect()
    }
}

/// The first [`REPLY_BYTES`] of a reply as text, and whether it was cut.
pub(crate) fn reply_text(body: &[u8]) -> (String, bool) {
    let kept = &body[..body.len().min(REPLY_BYTES)];
    let text = match std::str::from_utf8(kept) {
        Ok(text) => text.to_owned(),
        // Cut inside a character, or not UTF-8 at all.
        Err(e) if e.error_len().is_none() => {
            String::from_utf8_lossy(&kept[..e.valid_up_to()]).into_owned()
        }
        Err(_) => String::from_utf8_lossy(kept).into_owned(),
    };
    (text, body.len() > REPLY_BYTES)
}

/// The WeChat error in an answer body of this content type, cheaply: a JSON `errcode` other
/// than 0 or a v3 `code`; a v2 `err_code`, else `return_code` `FAIL`.
pub(crate) fn errcode_of(content_type: &str, body: &[u8]) -> Option<String> {
    if content_type.contains("json") {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        if let Some(code) = value.get("errcode").and_then(serde_json::Value::as_i64) {
            return (code != 0).then(|| code.to_string());
        }
        return value
            .get("code")
            .and_then(|c| c.as_str())
            .map(str::to_owned);
    }
    if content_type.contains("xml") {
        let text = std::str::from_utf8(body).ok()?;
        return xml_field(text, "err_code").or_else(|| {
            xml_field(text, "return_code")
                .filter(|c| c == "FAIL")
                .map(|_| "return_code FAIL".to_owned())
        });
    }
    None
}

/// The text of `<name>…</name>` in a flat XML document, CDATA unwrapped.
fn xml_field(text: &str, name: &str) -> Option<String> {
    let start = text.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + text[start..].find(&format!("</{name}>"))?;
    let value = text[start..end].trim();
    let value = value
        .strip_prefix("<![CDATA[")
        .and_then(|v| v.strip_suffix("]]>"))
        .unwrap_or(value);
    (!value.is_empty()).then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject() -> Subject {
        Subject {
            kind: "payment",
            api: "v2",
            mch_id: "1".into(),
            out_trade_no: "A".into(),
            out_refund_no: None,
        }
    }

    fn attempt(status: u16) -> AttemptRecord {
        AttemptRecord {
            at: 0,
            status: Some(status),
            acknowledged: true,
            reply: String::new(),
            truncated: false,
        }
    }

    #[test]
    fn memory_is_bounded() {
        let journal = Journal::default();
        for n in 0..MAX_REQUESTS + 5 {
            journal.request(RequestRecord {
                at: n as u64,
                method: "GET".into(),
                path: "/x".into(),
                status: 200,
                errcode: None,
            });
        }
        let requests = journal.requests();
        assert_eq!(requests.len(), MAX_REQUESTS);
        assert_eq!(requests[0].at, 5);

        let first = journal.delivery(subject(), "scheduled", "http://a/", 0);
        for _ in 0..MAX_ATTEMPTS + 3 {
            journal.attempt(first, attempt(500));
        }
        let kept = &journal.deliveries()[0];
        assert_eq!(
            (kept.attempts.len(), kept.attempts_made),
            (MAX_ATTEMPTS, 53)
        );
        for _ in 0..MAX_DELIVERIES {
            journal.delivery(subject(), "duplicate", "http://a/", 1);
        }
        let deliveries = journal.deliveries();
        assert_eq!(deliveries.len(), MAX_DELIVERIES);
        assert!(deliveries.iter().all(|d| d.id != first));
        // An attempt of a forgotten delivery is dropped.
        journal.attempt(first, attempt(200));
    }

    #[test]
    fn replies_are_cut_at_a_kibibyte_on_a_character() {
        assert_eq!(
            reply_text(b"<xml>ok</xml>"),
            ("<xml>ok</xml>".into(), false)
        );
        let long = "微".repeat(400); // 1200 bytes
        let (text, truncated) = reply_text(long.as_bytes());
        assert!(truncated);
        assert_eq!(text, "微".repeat(341)); // 1023 bytes: the 342nd character is cut
        assert_eq!(reply_text(&[0xff, b'a']).0, "\u{fffd}a");
    }

    #[test]
    fn errcodes() {
        let json = "application/json";
        assert_eq!(
            errcode_of(json, br#"{"errcode":40001,"errmsg":"x"}"#),
            Some("40001".into())
        );
        assert_eq!(errcode_of(json, br#"{"errcode":0,"errmsg":"ok"}"#), None);
        assert_eq!(errcode_of(json, br#"{"access_token":"T"}"#), None);
        assert_eq!(
            errcode_of(json, br#"{"code":"SIGN_ERROR"}"#),
            Some("SIGN_ERROR".into())
        );
        assert_eq!(errcode_of(json, b"{\"code\":\"SYS"), None);
        let xml = "text/xml; charset=utf-8";
        assert_eq!(
            errcode_of(xml, b"<xml><return_code><![CDATA[SUCCESS]]></return_code><err_code><![CDATA[ORDERPAID]]></err_code></xml>"),
            Some("ORDERPAID".into())
        );
        assert_eq!(
            errcode_of(
                xml,
                b"<xml><return_code><![CDATA[FAIL]]></return_code></xml>"
            ),
            Some("return_code FAIL".into())
        );
        assert_eq!(
            errcode_of(xml, b"<xml><return_code>SUCCESS</return_code></xml>"),
            None
        );
        assert_eq!(errcode_of("text/html", b"<h1>502</h1>"), None);
    }
}
