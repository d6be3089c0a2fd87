//! What both versions' `PayClient`s do the same way, written once: the calls that only build a
//! request value and send it, the notification handlers around the shared delivery
//! ([`notify::deliver`](super::notify::deliver)), and the retry of a call that may not have
//! reached WeChat Pay.

use std::future::Future;
use std::time::Duration;

use crate::Result;

/// How many times a call that failed transiently (a 5xx, WeChat Pay's system error, no answer
/// at all) is sent in all.
pub const RETRY_ATTEMPTS: u32 = 3;
/// The wait before the first retry; doubled for each further retry.
const RETRY_BACKOFF: Duration = Duration::from_millis(200);

/// Sends a call with `once` (one attempt: its result, and whether a failure is transient) until
/// it is not transient or [`RETRY_ATTEMPTS`] were made, 200 ms then 400 ms apart, and returns the
/// last result. Every WeChat Pay call is idempotent by its rules (a prepay with the same
/// parameters, a refund with the same `out_refund_no`, queries, close), so the same request is
/// sent again unchanged. Each retry is logged with its error; the caller logs the outcome.
pub(crate) async fn with_retries<T, Once, Fut>(endpoint: &'static str, mut once: Once) -> Result<T>
where
    Once: FnMut() -> Fut,
    Fut: Future<Output = (Result<T>, bool)>,
{
    let mut attempt = 1;
    loop {
        let (result, transient) = once().await;
        if !transient || attempt >= RETRY_ATTEMPTS {
            return result;
        }
        let wait = RETRY_BACKOFF * 2u32.pow(attempt - 1);
        if let Err(e) = &result {
            tracing::warn!(endpoint, attempt, ?wait, error = %e, "WeChat Pay call failed, sending the same request again");
        }
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

/// The methods both versions' `PayClient` have with the same signature and body, expanded
/// inside `impl PayClient` of `pay::v2` and of `pay::v3`. The names it uses (`PayConfig`,
/// `JsapiOrder`, `PrepayResponse`, `Transaction`, `RefundRequest`, `RefundRecord`,
/// `PaymentNotification`, `RefundNotification`, `BrandWcPayParams`, `OrderRef`, `HeaderMap`)
/// are that version's imports. Each version writes what differs: `with_http_client`, `config`,
/// `send`, `brand_wcpay_params`, `query_refund`, `verify_payment`/`verify_refund` (its
/// verification of a notification) and `open_payment`/`open_refund` (what the verification
/// makes of it for the delivery).
macro_rules! pay_client_methods {
    (version: $version:expr) => {
        /// A client with its own HTTP client (no redirects, the configured timeouts and root
        /// certificates; in v2 also the one that presents the client certificate to
        /// `/secapi/…`).
        ///
        /// # Errors
        /// [`Error::Config`](crate::Error::Config) for an invalid configuration or certificate.
        pub fn new(config: PayConfig) -> crate::Result<Self> {
            let http = config.http_client()?;
            Self::with_http_client(config, http)
        }

        /// Places a JSAPI order ([`JsapiOrder`]; v2 `unifiedorder`, v3
        /// `POST /v3/pay/transactions/jsapi`) and returns its prepay id (valid for 2 hours).
        /// The server prices the order: never take the amount from the browser.
        ///
        /// # Errors
        /// [`PayError::InvalidRequest`](crate::pay::PayError::InvalidRequest) before sending;
        /// WeChat Pay's refusal: in v2 [`PayError::Business`](crate::pay::PayError::Business)
        /// (`OUT_TRADE_NO_USED`: the same number with other parameters, `ORDERPAID`,
        /// `ORDERCLOSED`, `PARAM_ERROR`…) or [`PayError::Return`](crate::pay::PayError::Return)
        /// (a wrong key: `签名错误`), in v3 [`PayError::Api`](crate::pay::PayError::Api)
        /// (`OUT_TRADE_NO_USED`, `ORDER_CLOSED`, `APPID_MCHID_NOT_MATCH`, `OPENID_MISMATCH`…);
        /// and the errors of [`send`](Self::send).
        pub async fn prepay(&self, order: &JsapiOrder) -> crate::Result<PrepayResponse> {
            self.send(order).await
        }

        /// [`prepay`](Self::prepay), then [`brand_wcpay_params`](Self::brand_wcpay_params):
        /// everything the page needs to call `getBrandWCPayRequest`.
        ///
        /// # Errors
        /// As both.
        pub async fn create_jsapi_order(
            &self,
            order: &JsapiOrder,
        ) -> crate::Result<(PrepayResponse, BrandWcPayParams)> {
            let prepay = self.prepay(order).await?;
            let params = self.brand_wcpay_params(&prepay.prepay_id)?;
            Ok((prepay, params))
        }

        /// Asks WeChat Pay for an order's state ([`QueryOrder`](crate::pay::QueryOrder); v2
        /// `orderquery`, v3 `GET /v3/pay/transactions/…`). This, not the page's
        /// `get_brand_wcpay_request:ok`, is proof of payment when no notification arrived. An
        /// unpaid order is found only by its `out_trade_no`.
        ///
        /// # Errors
        /// WeChat Pay's "no such order" (v2 `ORDERNOTEXIST`, v3 `ORDER_NOT_EXIST`); as
        /// [`prepay`](Self::prepay).
        pub async fn query_order(&self, order: &OrderRef) -> crate::Result<Transaction> {
            self.send(&crate::pay::QueryOrder(order.clone())).await
        }

        /// Closes an unpaid order ([`CloseOrder`](crate::pay::CloseOrder); v2 `closeorder`, v3
        /// `POST /v3/pay/transactions/out-trade-no/{…}/close`) so that it can no longer be
        /// paid.
        ///
        /// # Errors
        /// WeChat Pay's refusal (v2 `ORDERPAID`: mark it paid instead, `ORDERCLOSED`); as
        /// [`prepay`](Self::prepay).
        pub async fn close_order(&self, out_trade_no: &crate::OutTradeNo) -> crate::Result<()> {
            self.send(&crate::pay::CloseOrder(out_trade_no.clone()))
                .await
        }

        /// Requests a refund ([`RefundRequest`]; v2 `secapi/pay/refund` over mutual TLS with
        /// the merchant client certificate, v3 `POST /v3/refund/domestic/refunds`). The answer
        /// usually says the refund is processing: the refund notification or
        /// [`query_refund`](Self::query_refund) tells the outcome. Sending the same
        /// `out_refund_no` again never refunds twice.
        ///
        /// # Errors
        /// [`Error::Config`](crate::Error::Config) in v2 without a client certificate; WeChat
        /// Pay's refusal (v2 `NOTENOUGH`, `TRADE_OVERDUE`, `INVALID_TRANSACTIONID`; v3
        /// `NOT_ENOUGH`, `INVALID_REQUEST`, `USER_ACCOUNT_ABNORMAL`…); as
        /// [`prepay`](Self::prepay).
        pub async fn refund(&self, refund: &RefundRequest) -> crate::Result<RefundRecord> {
            self.send(refund).await
        }

        /// Verifies a payment notification (the request's headers and its raw body,
        /// unmodified): the signature (v2: `sign` over every field, with the configured sign
        /// type; v3: the `Wechatpay-*` headers with WeChat Pay's key, downloading platform
        /// certificates again first if they name an unknown serial, and the timestamp), the
        /// merchant and app, and that the order is paid. v2 does not read the headers, whose
        /// signature is inside the body; both versions take them so that a handler calls either
        /// alike. [`handle_payment_notification`](Self::handle_payment_notification) does this
        /// and the rest of the answer to WeChat Pay.
        ///
        /// # Errors
        /// As the version's `verify_payment_notification` function;
        /// [`PayError::NotificationMismatch`](crate::pay::PayError::NotificationMismatch) for
        /// another merchant or app or an unpaid order.
        pub async fn verify_payment_notification(
            &self,
            headers: &HeaderMap,
            body: &[u8],
        ) -> crate::Result<PaymentNotification> {
            self.verify_payment(headers, body).await
        }

        /// Verifies a refund notification as
        /// [`verify_payment_notification`](Self::verify_payment_notification) does. v2's
        /// `req_info` is encrypted without a MAC (AES-256-ECB), so its content is not
        /// authenticated: [`handle_refund_notification`](Self::handle_refund_notification) also
        /// confirms it with a signed `refundquery`.
        ///
        /// # Errors
        /// As the version's `verify_refund_notification` function.
        pub async fn verify_refund_notification(
            &self,
            headers: &HeaderMap,
            body: &[u8],
        ) -> crate::Result<RefundNotification> {
            self.verify_refund(headers, body).await
        }

        /// Verifies a payment notification (the request's headers and its raw body,
        /// unmodified), hands it to `handler`, and says what to answer WeChat Pay.
        ///
        /// - Not verifiable (forged, altered, stale, another merchant or app, malformed, too
        ///   large): the handler is not called; a refusal (v2 `FAIL`, v3 4xx), and a
        ///   `tracing::warn!` without secrets.
        /// - Verified, but the payment did not succeed: nothing to record; the handler is not
        ///   called; acknowledged, so that WeChat Pay stops sending it.
        /// - Verified and paid: `handler` is called; acknowledged (v2 `SUCCESS`, v3 204) only if
        ///   it returned `Ok`, a 500 otherwise, so that WeChat Pay sends it again until the
        ///   payment is recorded. Duplicates are normal.
        ///
        /// # Security
        /// The handler must compare the amount (v2 `total_fee`, v3 `total`) with its own
        /// order's and record idempotently.
        pub async fn handle_payment_notification<F, Fut, E>(
            &self,
            headers: &HeaderMap,
            body: &[u8],
            handler: F,
        ) -> crate::pay::NotificationReply
        where
            F: FnOnce(PaymentNotification) -> Fut,
            Fut: std::future::Future<Output = std::result::Result<(), E>>,
            E: std::fmt::Display,
        {
            self.handle_payment(headers, body, |n| crate::pay::notify::first(handler(n)))
                .await
        }

        /// [`handle_payment_notification`](Self::handle_payment_notification) with a handler
        /// that says whether the payment was already recorded, for
        /// `wechat_pay_notifications_total`.
        pub(crate) async fn handle_payment<F, Fut, E>(
            &self,
            headers: &HeaderMap,
            body: &[u8],
            handler: F,
        ) -> crate::pay::NotificationReply
        where
            F: FnOnce(PaymentNotification) -> Fut,
            Fut: std::future::Future<Output = std::result::Result<crate::metrics::Delivery, E>>,
            E: std::fmt::Display,
        {
            let open = self.open_payment(headers, body);
            crate::pay::notify::deliver(
                $version,
                crate::pay::notify::Kind::Payment,
                body.len(),
                open,
                handler,
            )
            .await
        }

        /// Verifies a refund notification, hands it to `handler`, and says what to answer
        /// WeChat Pay (acknowledged only after `Ok`; refused when it cannot be verified, a 500
        /// when the handler failed). In v2, whose `req_info` is encrypted without a MAC
        /// (AES-256-ECB: blocks of a genuine notification can be cut into another), the refund
        /// is first confirmed with a signed `refundquery` of its `out_refund_no` (the same
        /// refund, order, amount and status, or WeChat Pay is refused and sends it again); v3's
        /// is signed and authenticated (AES-256-GCM).
        ///
        /// # Security
        /// The handler must match `out_refund_no` and the amount with a refund it requested.
        pub async fn handle_refund_notification<F, Fut, E>(
            &self,
            headers: &HeaderMap,
            body: &[u8],
            handler: F,
        ) -> crate::pay::NotificationReply
        where
            F: FnOnce(RefundNotification) -> Fut,
            Fut: std::future::Future<Output = std::result::Result<(), E>>,
            E: std::fmt::Display,
        {
            let open = self.open_refund(headers, body);
            crate::pay::notify::deliver(
                $version,
                crate::pay::notify::Kind::Refund,
                body.len(),
                open,
                |n| crate::pay::notify::first(handler(n)),
            )
            .await
        }
    };
}

pub(crate) use pay_client_methods;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn failure() -> Error {
        Error::UnexpectedResponse {
            endpoint: "/x",
            detail: "down".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_sent_again_up_to_the_limit() {
        let calls = &AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let result: Result<()> = with_retries("/x", || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            (Err(failure()), true)
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), RETRY_ATTEMPTS);
        // 200 ms, then 400 ms.
        assert_eq!(started.elapsed(), Duration::from_millis(600));
    }

    #[tokio::test(start_paused = true)]
    async fn a_final_answer_is_returned_at_once() {
        let calls = &AtomicU32::new(0);
        let result = with_retries("/x", || async move {
            match calls.fetch_add(1, Ordering::SeqCst) + 1 {
                1 => (Err(failure()), true),
                n => (Ok(n), false),
            }
        })
        .await;
        assert_eq!(result.unwrap(), 2);
        let calls = &AtomicU32::new(0);
        let refused: Result<()> = with_retries("/x", || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            (Err(failure()), false)
        })
        .await;
        assert!(refused.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
