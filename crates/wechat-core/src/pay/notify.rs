//! What both API versions do with a notification once it arrives, written once: refuse a body
//! that is too large, verify it (the version's part), hand a verified one to the application,
//! and answer WeChat Pay so that it stops sending only when the application recorded it.

use std::fmt::Display;
use std::future::Future;

use super::v2::MAX_NOTIFICATION_BODY;
use super::{ApiVersion, NotificationReply};
use crate::metrics::{Delivery, NotificationOutcome, refusal_reason};

/// What the version's verification made of a notification.
pub(crate) enum Opened<N> {
    /// Verified: the application must record it. The string names it in logs (its
    /// `out_trade_no` or `out_refund_no`).
    Deliver(N, String),
    /// Verified, and nothing to record (a payment that did not succeed): acknowledged so that
    /// WeChat Pay stops sending it.
    Unpaid,
    /// Verified, but it cannot be confirmed right now (v2's `refundquery` failed): refused with
    /// a 500, so that WeChat Pay sends it again.
    NotConfirmed,
}

/// Which notification, for logs and the `kind` label of `wechat_pay_notifications_total`.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    /// A payment (`TRANSACTION.SUCCESS`, v2's payment result).
    Payment,
    /// A refund's outcome.
    Refund,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Self::Payment => "payment",
            Self::Refund => "refund",
        }
    }
}

/// Runs one notification: refuses a body over [`MAX_NOTIFICATION_BODY`] before anything reads
/// it, awaits `open` (the version's verification, which logs its own `Unpaid`/`NotConfirmed`
/// detail), calls `handler` with a verified notification, answers WeChat Pay in `version`'s
/// format (the success only after the handler's `Ok`), and counts the outcome.
pub(crate) async fn deliver<N, F, Fut, E>(
    version: ApiVersion,
    kind: Kind,
    body_len: usize,
    open: impl Future<Output = crate::Result<Opened<N>>>,
    handler: F,
) -> NotificationReply
where
    F: FnOnce(N) -> Fut,
    Fut: Future<Output = Result<Delivery, E>>,
    E: Display,
{
    let what = kind.label();
    let (reply, outcome) = if body_len > MAX_NOTIFICATION_BODY {
        tracing::warn!(
            bytes = body_len,
            "{what} notification refused: body too large"
        );
        (
            NotificationReply::too_large(version),
            NotificationOutcome::Refused("too_large"),
        )
    } else {
        match open.await {
            Ok(Opened::Deliver(notification, subject)) => match handler(notification).await {
                Ok(delivery) => (NotificationReply::success(version), delivery.into()),
                Err(e) => {
                    tracing::error!(subject = %subject, error = %e, "{what} notification handler failed; WeChat Pay will send it again");
                    (
                        NotificationReply::fail(
                            version,
                            http::StatusCode::INTERNAL_SERVER_ERROR,
                            "not processed",
                        ),
                        NotificationOutcome::Refused("backend_error"),
                    )
                }
            },
            Ok(Opened::Unpaid) => (
                NotificationReply::success(version),
                NotificationOutcome::Unpaid,
            ),
            Ok(Opened::NotConfirmed) => (
                NotificationReply::fail(
                    version,
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "not confirmed",
                ),
                NotificationOutcome::Refused("not_confirmed"),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "{what} notification refused");
                (
                    NotificationReply::refused(version, &e),
                    NotificationOutcome::Refused(refusal_reason(&e)),
                )
            }
        }
    };
    crate::metrics::record_notification(version.as_str(), what, outcome);
    reply
}

/// A handler that returns `()` as one whose delivery is counted as the first.
pub(crate) async fn first<Fut, E>(handled: Fut) -> Result<Delivery, E>
where
    Fut: Future<Output = Result<(), E>>,
{
    handled.await.map(|()| Delivery::First)
}
