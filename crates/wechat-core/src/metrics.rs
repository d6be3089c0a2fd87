//! What this crate records through the [`metrics`](https://docs.rs/metrics) facade: WeChat calls,
//! token refreshes, refresh-lock waits, payment notifications, signature failures and logins.
//!
//! The crate installs no recorder and no exporter: an application picks one (e.g.
//! `metrics-exporter-prometheus`), installs it once at start, and calls [`describe`] so that
//! the exporter has each metric's help text and unit. Without a recorder every call here is a
//! no-op.
//!
//! Names and labels follow the Prometheus conventions (`_total` counters, `_seconds`
//! histograms, snake_case labels). Every label value is from a bounded set: a fixed endpoint
//! template (never a query string, an order number, an openid or a token), an error code, or a
//! fixed slug. The table is in the crate's README.
//!
//! ```
//! // At start, after installing the recorder of your choice:
//! wechat_core::describe_metrics();
//! ```

#[cfg(feature = "pay")]
use crate::pay::PayError;
use std::borrow::Cow;
use std::time::Duration;

use ::metrics::{Unit, counter, describe_counter, describe_histogram, histogram};

use crate::Error;

/// `wechat_api_requests_total{endpoint, outcome}`.
pub(crate) const API_REQUESTS: &str = "wechat_api_requests_total";
/// `wechat_api_request_duration_seconds{endpoint}`.
pub(crate) const API_DURATION: &str = "wechat_api_request_duration_seconds";
/// `wechat_token_refreshes_total{kind, reason}`.
pub(crate) const TOKEN_REFRESHES: &str = "wechat_token_refreshes_total";
/// `wechat_refresh_lock_wait_seconds{kind, lock}`.
pub(crate) const LOCK_WAIT: &str = "wechat_refresh_lock_wait_seconds";
/// `wechat_pay_notifications_total{version, kind, outcome, reason}`.
pub(crate) const NOTIFICATIONS: &str = "wechat_pay_notifications_total";
/// `wechat_signature_failures_total{kind}`.
pub(crate) const SIGNATURE_FAILURES: &str = "wechat_signature_failures_total";
/// `wechat_logins_total{outcome}`.
pub(crate) const LOGINS: &str = "wechat_logins_total";

/// Registers the help text and unit of every metric this crate records with the installed
/// recorder.
///
/// Call it once after installing a recorder (calling it again is harmless); metrics recorded
/// before still count, they only lack the description until then.
pub fn describe() {
    describe_counter!(
        API_REQUESTS,
        Unit::Count,
        "HTTP calls to WeChat and WeChat Pay by endpoint template and outcome (ok, an errcode, a Pay error code, bad_signature or transport)"
    );
    describe_histogram!(
        API_DURATION,
        Unit::Seconds,
        "Duration of one HTTP call to WeChat or WeChat Pay, by endpoint template"
    );
    describe_counter!(
        TOKEN_REFRESHES,
        Unit::Count,
        "Fetches of an access_token, stable_token or jsapi_ticket from WeChat, by kind and reason"
    );
    describe_histogram!(
        LOCK_WAIT,
        Unit::Seconds,
        "Time a caller waited for another caller's token refresh (process: the in-process single flight; store: the shared store's refresh lock)"
    );
    describe_counter!(
        NOTIFICATIONS,
        Unit::Count,
        "WeChat Pay notifications by API version, kind and outcome (accepted, duplicate, unpaid, refused with a reason)"
    );
    describe_counter!(
        SIGNATURE_FAILURES,
        Unit::Count,
        "Signatures or MACs that did not verify, by what carried them"
    );
    describe_counter!(LOGINS, Unit::Count, "OAuth login callbacks by outcome");
}

/// The `endpoint` label of an endpoint path: the path without its leading `/`
/// (`/cgi-bin/token` → `cgi-bin/token`). Paths are `&'static str` templates, never with a
/// query string or an identifier in them.
fn endpoint_label(endpoint: &'static str) -> &'static str {
    endpoint.strip_prefix('/').unwrap_or(endpoint)
}

/// Records one HTTP call to `endpoint` (a static path template) that took `elapsed` and ended in
/// `outcome` (see [`outcome_of`]).
pub(crate) fn record_api_call(
    endpoint: &'static str,
    outcome: Cow<'static, str>,
    elapsed: Duration,
) {
    let endpoint = endpoint_label(endpoint);
    counter!(API_REQUESTS, "endpoint" => endpoint, "outcome" => outcome).increment(1);
    histogram!(API_DURATION, "endpoint" => endpoint).record(elapsed.as_secs_f64());
}

/// The `outcome` label of a call's result: `ok`; WeChat's `errcode` in decimal; the WeChat Pay
/// code (v2 `err_code`, `FAIL` for a v2 `return_code` FAIL, v3 `code`); `bad_signature` for a
/// reply whose signature does not verify; `transport` for no answer or one that cannot be read.
pub(crate) fn outcome_of<T>(result: &crate::Result<T>) -> Cow<'static, str> {
    match result {
        Ok(_) => Cow::Borrowed("ok"),
        Err(error) => error_outcome(error),
    }
}

fn error_outcome(error: &Error) -> Cow<'static, str> {
    let errcode = |code: i64| Cow::Owned(code.to_string());
    match error {
        Error::WeChat(api) => errcode(api.errcode),
        #[cfg(feature = "pay")]
        Error::Pay(error) => match error {
            PayError::Return { .. } => Cow::Borrowed("FAIL"),
            PayError::Business { code, .. } => pay_code(code.as_str()),
            PayError::Api(e) => pay_code(e.code.as_str()),
            PayError::BadSignature(_)
            | PayError::ForgedReply { .. }
            | PayError::UnknownSerial { .. }
            | PayError::CertificateNotValid { .. } => Cow::Borrowed("bad_signature"),
            _ => Cow::Borrowed("transport"),
        },
        _ => Cow::Borrowed("transport"),
    }
}

/// A WeChat Pay error code as a label: WeChat Pay's codes are a finite set of upper-case
/// names; anything else (an empty code, free text from a broken gateway) is `other`, so that
/// the label set stays bounded.
#[cfg(feature = "pay")]
fn pay_code(code: &str) -> Cow<'static, str> {
    if code.is_empty()
        || code.len() > 40
        || !code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return Cow::Borrowed("other");
    }
    Cow::Owned(code.to_owned())
}

/// Why a token refresh asked WeChat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefreshReason {
    /// No credential in process (first use, or forgotten after a rejection by another caller).
    Missing,
    /// The in-process credential has expired (or is too close to its expiry to hand out).
    Expired,
    /// The credential is still usable but due: refreshed ahead of its expiry in the background.
    Ahead,
    /// WeChat rejected the credential (40001, 40014, 42001): invalidated and fetched anew.
    Invalidated,
}

impl RefreshReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Expired => "expired",
            Self::Ahead => "ahead",
            Self::Invalidated => "invalidated",
        }
    }
}

/// Records a fetch of a `kind` credential (`access_token`, `stable_token`, `jsapi_ticket`).
pub(crate) fn record_token_refresh(kind: &'static str, reason: RefreshReason) {
    counter!(TOKEN_REFRESHES, "kind" => kind, "reason" => reason.as_str()).increment(1);
}

/// Which refresh lock a caller waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefreshLock {
    /// The in-process single flight.
    Process,
    /// The shared store's lock (another process refreshing).
    Store,
}

/// Records that a caller waited `waited` for the `lock` of a `kind` credential (only waits that
/// found the lock held are recorded).
pub(crate) fn record_lock_wait(kind: &'static str, lock: RefreshLock, waited: Duration) {
    let lock = match lock {
        RefreshLock::Process => "process",
        RefreshLock::Store => "store",
    };
    histogram!(LOCK_WAIT, "kind" => kind, "lock" => lock).record(waited.as_secs_f64());
}

#[cfg(feature = "pay")]
/// How a notification that the application's handler accepted was new or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// Recorded now (or the handler cannot tell).
    First,
    /// Already recorded before (WeChat re-sent it): acknowledged again.
    Duplicate,
}

#[cfg(feature = "pay")]
/// What became of one WeChat Pay notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotificationOutcome {
    /// Verified and accepted by the handler (first delivery).
    Accepted,
    /// Verified, and the order was already recorded as paid.
    Duplicate,
    /// Verified, but it reports a payment that did not succeed: acknowledged, nothing recorded.
    Unpaid,
    /// Not acknowledged (WeChat Pay sends it again), with a reason slug.
    Refused(&'static str),
}

#[cfg(feature = "pay")]
impl From<Delivery> for NotificationOutcome {
    fn from(delivery: Delivery) -> Self {
        match delivery {
            Delivery::First => Self::Accepted,
            Delivery::Duplicate => Self::Duplicate,
        }
    }
}

#[cfg(feature = "pay")]
/// The `reason` of a notification refused because it did not verify: `bad_signature`,
/// `mismatch` (another merchant, app, event or order), `malformed`, or `keys_unavailable` (the
/// v3 keys to verify it could not be had).
pub(crate) fn refusal_reason(error: &Error) -> &'static str {
    match error {
        Error::Pay(
            PayError::BadSignature(_)
            | PayError::UnknownSerial { .. }
            | PayError::CertificateNotValid { .. },
        ) => "bad_signature",
        Error::Pay(PayError::NotificationMismatch(_)) => "mismatch",
        Error::Pay(PayError::Xml(_) | PayError::Return { .. })
        | Error::UnexpectedResponse { .. } => "malformed",
        _ => "keys_unavailable",
    }
}

#[cfg(feature = "pay")]
/// Records one notification of `kind` (`payment`, `refund`) for API `version` (`v2`, `v3`).
/// A refusal for a bad signature also counts in `wechat_signature_failures_total`.
pub(crate) fn record_notification(
    version: &'static str,
    kind: &'static str,
    outcome: NotificationOutcome,
) {
    let (outcome, reason) = match outcome {
        NotificationOutcome::Accepted => ("accepted", ""),
        NotificationOutcome::Duplicate => ("duplicate", ""),
        NotificationOutcome::Unpaid => ("unpaid", ""),
        NotificationOutcome::Refused(reason) => ("refused", reason),
    };
    counter!(
        NOTIFICATIONS,
        "version" => version,
        "kind" => kind,
        "outcome" => outcome,
        "reason" => reason
    )
    .increment(1);
    if reason == "bad_signature" {
        record_signature_failure(SignatureKind::PayNotification);
    }
}

/// What carried a signature that did not verify.
#[cfg_attr(not(feature = "pay"), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignatureKind {
    /// A WeChat Pay notification (v2 `sign`, v3 `Wechatpay-Signature`).
    PayNotification,
    /// A WeChat Pay reply (v2 `sign`, v3 `Wechatpay-Signature`).
    PayReply,
    /// The OAuth `state` of a login callback (its MAC).
    OAuthState,
}

/// Records a signature (or MAC) that did not verify.
pub(crate) fn record_signature_failure(kind: SignatureKind) {
    let kind = match kind {
        SignatureKind::PayNotification => "pay_notification",
        SignatureKind::PayReply => "pay_reply",
        SignatureKind::OAuthState => "oauth_state",
    };
    counter!(SIGNATURE_FAILURES, "kind" => kind).increment(1);
}

/// How an OAuth callback ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginOutcome {
    /// Logged in: the session cookie is set.
    Success,
    /// The user declined (no `code`).
    Denied,
    /// The `state` is missing, malformed, forged, expired, or not this browser's.
    BadState,
    /// The back button after a completed login: sent on without a new login.
    Repeated,
    /// WeChat refused the code (40029, 40163, 42003): restarted once, or shown as failed.
    CodeInvalid,
    /// The code exchange or `sns/userinfo` failed otherwise, or the cookie could not be made.
    Error,
}

/// Records the outcome of one OAuth callback.
pub(crate) fn record_login(outcome: LoginOutcome) {
    let outcome = match outcome {
        LoginOutcome::Success => "success",
        LoginOutcome::Denied => "denied",
        LoginOutcome::BadState => "bad_state",
        LoginOutcome::Repeated => "repeated",
        LoginOutcome::CodeInvalid => "code_invalid",
        LoginOutcome::Error => "error",
    };
    counter!(LOGINS, "outcome" => outcome).increment(1);
}

#[cfg(test)]
mod tests;
