//! WeChat Pay API v2 (XML) simulation: merchants, orders, refunds and notifications. API v3
//! (JSON, RSA) is in [`v3`], whose module doc states its contract; both share one order book
//! (an `out_trade_no` is one order whichever version made it) and the pay sheet below.
//!
//! Implements the protocol reference §4 (`api.mch.weixin.qq.com`): every merchant endpoint takes
//! a UTF-8 `<xml>` body (64 KiB at most; `<!DOCTYPE`/`<!ENTITY` refused), checks the sign
//! (§4.1, MD5 or HMAC-SHA256 as `sign_type` says) and answers `<xml>` with CDATA, signed with the
//! request's sign type whenever `return_code` is `SUCCESS`.
//!
//! # Merchant endpoints (all `POST`, XML in and out)
//!
//! | path | does |
//! | --- | --- |
//! | `/pay/unifiedorder` | creates an order, answers `prepay_id` (valid 2 h on the simulated clock); `JSAPI` needs an `openid` of that `appid` |
//! | `/pay/orderquery` | `trade_state` `NOTPAY`/`SUCCESS`/`REFUND`/`CLOSED` + the notification fields; `ORDERNOTEXIST` |
//! | `/pay/closeorder` | closes an unpaid order (the 5-minute rule is not enforced); `ORDERPAID`, `ORDERCLOSED` |
//! | `/secapi/pay/refund` | refunds a paid order (see TLS below); `out_refund_no` idempotent |
//! | `/pay/refundquery` | by `refund_id` > `out_refund_no` > `transaction_id` > `out_trade_no`; `refund_count` + `_$n` fields |
//!
//! Failures follow WeChat: `return_code` `FAIL` with only `return_msg` for a bad sign (`签名错误`),
//! an appid not bound to the merchant (`appid和mch_id不匹配`), an unknown merchant, a malformed
//! body (`XML格式错误`); otherwise `return_code` `SUCCESS`, `result_code` `FAIL` with `err_code`
//! (`LACK_PARAMS`, `PARAM_ERROR`, `OUT_TRADE_NO_USED`, `ORDERPAID`, `ORDERCLOSED`,
//! `ORDERNOTEXIST`, `REFUND_FEE_MISMATCH`, `INVALID_REQUEST`, `ERROR`, `REFUNDNOTEXIST`…) and
//! `err_code_des`, signed.
//!
//! # Paying (the WeChat client's side)
//!
//! Both take the `getBrandWCPayRequest` parameters as a JSON body
//! `{"appId","timeStamp","nonceStr","package","signType","paySign"}` and check them as the
//! WeChat client does: every parameter present, `package` = `prepay_id=…` of a known prepay_id
//! not older than 2 h whose order has this `appId` (else `调用支付JSAPI缺少参数：total_fee`),
//! `signType` equal to the order's sign type and `paySign` right (else `支付验证签名失败`), the
//! order neither paid nor closed.
//!
//! - `POST /_sim/pay/check`: checks without paying; answers
//!   `{"ok":true,"body":"…","total_fee":N,"mch_id":"…","api":"v2"|"v3"}` or
//!   `{"ok":false,"err_msg":"get_brand_wcpay_request:fail","err_desc":"…"}`.
//! - `POST /_sim/pay/confirm`: checks, marks the order paid (a `transaction_id` is generated,
//!   `time_end` is the simulated time) and answers `{"err_msg":"get_brand_wcpay_request:ok"}`, or
//!   `{"err_msg":"get_brand_wcpay_request:fail","err_desc":"…"}`; then the payment notification
//!   is delivered in the background.
//!
//! # Notifications
//!
//! The payment notification (§4.4 fields, signed with the order's sign type, `sign_type` present
//! when HMAC-SHA256) is POSTed to the order's `notify_url`; the refund notification (`return_code`,
//! `return_msg`, `appid`, `mch_id`, `nonce_str`, `req_info`, no sign; `req_info` =
//! base64(AES-256-ECB/PKCS#7, key = lowercase hex MD5 of the API key) of a `<root>` document)
//! goes to the refund request's `notify_url` or else the merchant's `refund_notify_url`. Each is
//! re-sent on WeChat's schedule 15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h multiplied
//! by the merchant's `notify_retry_scale`, until the receiver answers HTTP 200 with `<xml>` whose
//! `return_code` is `SUCCESS`. Every attempt counts in `/_sim/stats` `notifications.sent`, every
//! acknowledged one in `notifications.acknowledged`.
//!
//! # Test controls
//!
//! - `POST /_sim/pay/notify` with JSON `{"out_trade_no":"…","mode":"…"}` (optionally `"mch_id"`)
//!   sends notifications of an order now, once each, with no retries. `mode`: `duplicate` (the
//!   genuine notification again), `tamper_sign` (a wrong sign), `tamper_total_fee` (`total_fee`
//!   plus 1 with the original sign), `other_appid` (another appid, correctly signed with the
//!   merchant key), `no_sign` (the `sign` field removed); for both versions `result_code_fail`
//!   (a correctly signed failed payment), `unknown_order` (a correctly signed payment of an
//!   invented `SIMUNKNOWN…` order), `reordered` (its latest refund's notification, then the
//!   payment's) and `concurrent_duplicates` with `"count": N` (N identical deliveries at once).
//!   With `{"out_refund_no":"…","mode":…}` it sends refund notifications: `duplicate`,
//!   `tamper_req_info` (undecryptable `req_info`), `reordered`, `concurrent_duplicates`.
//!   Answers `{"notify_url":"…","mode":"…","status":200,"acknowledged":true,"deliveries":[…]}`
//!   (the first delivery's URL and status, `status` null when the receiver could not be
//!   reached, whether all were acknowledged, and each delivery); 404 `{"error":…}` for an
//!   unknown order or refund, 409 for an unpaid order.
//! - `GET /_sim/pay/orders/{out_trade_no}` (optionally `?mch_id=…`): the order as JSON:
//!   `api` (`v2`/`v3`), `mch_id, appid, out_trade_no, body, total_fee, fee_type, trade_type, openid, notify_url,
//!   attach, sign_type (RSA for v3), prepay_id, prepay_expires_at, time_expire, created_at,
//!   trade_state, transaction_id, paid_at, time_end, refunded_fee, refunds[{out_refund_no,
//!   refund_id, refund_fee, refund_status, api, notifications}], notifications{sent,
//!   acknowledged}`; 404 when unknown.
//! - `GET /_sim/pay/v3/public-key?mch_id=…`: `{"id","pem"}`, a v3 merchant's WeChat Pay public
//!   key; 404 otherwise. `POST /_sim/pay/notify` also takes the v3 modes (see [`v3`]).
//! - `POST /_sim/pay/orders/{out_trade_no}/pay`, `/close`, `/refund` (the console's actions):
//!   pay an unpaid order as the pay sheet does, close it as closeorder does, refund it in its
//!   API version as the refund endpoints do, notifications and retries included (`steer`).
//!
//! # TLS for `/secapi`
//!
//! At start the simulator makes its own CA and a server certificate for `127.0.0.1` and
//! `localhost` signed by it; `GET /_sim/tls/server-ca.pem` returns that CA (PEM) for clients to
//! trust. [`spawn_tls`] serves this router over TLS on `--tls-listen`. When a merchant's
//! `client_ca` names a PEM CA file, the TLS handshake requires a client certificate signed by one
//! of the configured CAs, `/secapi` requests of that merchant must carry a certificate signed by
//! its CA, and on the plain listener they are refused with `return_code` `FAIL`. A merchant with
//! an empty `client_ca` is served on both listeners without a certificate.

mod api;
mod book;
mod control;
mod crypto;
pub(crate) mod fault;
mod jsapi;
mod notify;
mod outside;
mod sign;
mod steer;
mod tls;
pub(crate) mod v3;
mod xml;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::routing::{get, post};
use serde::Deserialize;

use crate::config::SimConfig;
use crate::state::Sim;

pub(crate) use book::beijing;
pub(crate) use steer::{console_orders, notify_modes};
pub(crate) use tls::spawn_tls;

/// One WeChat Pay merchant: API v2 (`api_key`), API v3 (`apiv3_key` and the keys), or both.
/// Its `Debug` output hides the keys.
///
/// A PEM field may be given inline (`merchant_public_key`) or as a file (`merchant_public_key_file`;
/// a relative path is read from the directory of the configuration file, see
/// [`crate::Simulator::from_file`]).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MerchantConfig {
    /// The merchant id.
    pub mch_id: String,
    /// The 32-character API key (v2). Empty: the merchant does not use v2, and v2 endpoints
    /// answer as for an unknown merchant.
    #[serde(default)]
    pub api_key: String,
    /// App ids bound to this merchant.
    #[serde(default)]
    pub appids: Vec<String>,
    /// A CA file; when set, `/secapi` routes are served over TLS on `--tls-listen` and require a
    /// client certificate it signed. Empty: not required.
    #[serde(default)]
    pub client_ca: String,
    /// Where refund notifications go when a refund request has no `notify_url`.
    #[serde(default)]
    pub refund_notify_url: String,
    /// WeChat's notification retry schedule is multiplied by this (0.001 in tests).
    #[serde(default = "default_scale")]
    pub notify_retry_scale: f64,
    /// The APIv3 key: exactly 32 bytes, encrypts notification resources and certificates.
    /// Empty: the merchant does not use v3 (v3 endpoints answer 403 `NO_AUTH`).
    #[serde(default)]
    pub apiv3_key: String,
    /// Serial of the merchant API certificate, the `serial_no` of its `Authorization` headers.
    /// May be left empty when `merchant_public_key` is the certificate.
    #[serde(default)]
    pub merchant_serial: String,
    /// The merchant's public key that verifies its v3 signatures (request `Authorization`,
    /// JSAPI `paySign`): SPKI (`BEGIN PUBLIC KEY`), PKCS#1 (`BEGIN RSA PUBLIC KEY`) or its
    /// X.509 certificate (`BEGIN CERTIFICATE`), inline.
    #[serde(default)]
    pub merchant_public_key: String,
    /// The same as a PEM file.
    #[serde(default)]
    pub merchant_public_key_file: String,
    /// The id of the simulator's WeChat Pay public key (`PUB_KEY_ID_` + digits), the
    /// `Wechatpay-Serial` of what that key signs. May be empty with `platform_certificate`
    /// (one is then generated).
    #[serde(default)]
    pub pay_public_key_id: String,
    /// The simulator's WeChat Pay private key for this merchant (PKCS#8 or PKCS#1 PEM), inline.
    /// Empty (with `pay_private_key_file` empty too): one is generated at start.
    #[serde(default)]
    pub pay_private_key: String,
    /// The same as a PEM file.
    #[serde(default)]
    pub pay_private_key_file: String,
    /// Also give the merchant a platform certificate over its WeChat Pay key, served by
    /// `GET /v3/certificates` (merchants from before the WeChat Pay public key).
    #[serde(default)]
    pub platform_certificate: bool,
    /// The merchant's H5 payment domains (`host` or `host:port`, e.g. `"127.0.0.1:3000"`), as
    /// configured on the merchant platform: the H5 cashier page opens only from a page on one
    /// of them (its `Referer`) and returns only to one (`redirect_url`). Empty: the merchant
    /// has no H5 payment, and H5 orders are refused (v3 403 `NO_AUTH`, v2 `NO_AUTH`).
    #[serde(default)]
    pub h5_domains: Vec<String>,
}

fn default_scale() -> f64 {
    1.0
}

impl Default for MerchantConfig {
    /// A merchant with no id, no keys and the real retry schedule (`notify_retry_scale` 1).
    fn default() -> Self {
        Self {
            mch_id: String::new(),
            api_key: String::new(),
            appids: Vec::new(),
            client_ca: String::new(),
            refund_notify_url: String::new(),
            notify_retry_scale: 1.0,
            apiv3_key: String::new(),
            merchant_serial: String::new(),
            merchant_public_key: String::new(),
            merchant_public_key_file: String::new(),
            pay_public_key_id: String::new(),
            pay_private_key: String::new(),
            pay_private_key_file: String::new(),
            platform_certificate: false,
            h5_domains: Vec::new(),
        }
    }
}

impl MerchantConfig {
    /// Whether the merchant uses API v2 (has an `api_key`).
    pub fn has_v2(&self) -> bool {
        !self.api_key.is_empty()
    }

    /// Whether the merchant uses API v3 (has an `apiv3_key`).
    pub fn has_v3(&self) -> bool {
        !self.apiv3_key.is_empty()
    }
}

impl std::fmt::Debug for MerchantConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |s: &str| if s.is_empty() { "" } else { "[redacted]" };
        f.debug_struct("MerchantConfig")
            .field("mch_id", &self.mch_id)
            .field("api_key", &redacted(&self.api_key))
            .field("appids", &self.appids)
            .field("client_ca", &self.client_ca)
            .field("refund_notify_url", &self.refund_notify_url)
            .field("notify_retry_scale", &self.notify_retry_scale)
            .field("apiv3_key", &redacted(&self.apiv3_key))
            .field("merchant_serial", &self.merchant_serial)
            .field("merchant_public_key_file", &self.merchant_public_key_file)
            .field("pay_public_key_id", &self.pay_public_key_id)
            .field("pay_private_key", &redacted(&self.pay_private_key))
            .field("pay_private_key_file", &self.pay_private_key_file)
            .field("platform_certificate", &self.platform_certificate)
            .field("h5_domains", &self.h5_domains)
            .finish_non_exhaustive()
    }
}

/// Everything the Pay simulation keeps: orders, refunds, prepay ids, the TLS material and the
/// background notification tasks. Shared by every request through [`Sim`].
pub(crate) struct PayState {
    book: Mutex<book::Book>,
    /// Sends notifications: short timeouts, no redirects, no proxy.
    http: reqwest::Client,
    /// The simulator's own CA and server certificate for the TLS listener.
    server_tls: Option<tls::ServerTls>,
    /// Per merchant with a `client_ca`: its CA certificates and verifier, or why they failed.
    client_cas: HashMap<String, Result<tls::ClientCa, String>>,
    /// Background tasks (deliveries, the TLS accept loop), aborted when the state is dropped.
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
    /// The keys of each v3 merchant, by mch_id.
    v3: HashMap<String, v3::V3Merchant>,
}

impl std::fmt::Debug for PayState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let book = self.book();
        f.debug_struct("PayState")
            .field("orders", &book.orders.len())
            .field("refunds", &book.refunds.len())
            .field("client_cas", &self.client_cas.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl PayState {
    /// Builds the Pay state for `cfg`: loads each merchant's `client_ca` (a failure is logged and
    /// makes that merchant's `/secapi` calls fail) and generates the server certificate.
    pub(crate) fn new(cfg: &SimConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .connect_timeout(std::time::Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent("wechat-sim (Mozilla/4.0)")
            .build()
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot build the notification client; using defaults");
                reqwest::Client::default()
            });
        let server_tls = match tls::ServerTls::generate() {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!(error = %e, "cannot generate the TLS server certificate");
                None
            }
        };
        let client_cas = cfg
            .merchants
            .iter()
            .filter(|m| !m.client_ca.is_empty())
            .map(|m| {
                let ca = tls::ClientCa::load(&m.client_ca);
                if let Err(e) = &ca {
                    tracing::error!(mch_id = %m.mch_id, error = %e, "cannot load the merchant's client_ca");
                }
                (m.mch_id.clone(), ca)
            })
            .collect();
        let now = crate::clock::Clock::default().now_secs();
        let v3 = cfg
            .merchants
            .iter()
            .filter_map(|m| match v3::load(m, now) {
                Ok(loaded) => loaded.map(|v| (m.mch_id.clone(), v)),
                Err(e) => {
                    tracing::error!(mch_id = %m.mch_id, error = %e, "cannot load the merchant's API v3 keys; v3 is off for it");
                    None
                }
            })
            .collect();
        Self {
            book: Mutex::new(book::Book::default()),
            http,
            server_tls,
            client_cas,
            tasks: Mutex::new(Vec::new()),
            v3,
        }
    }

    /// The simulator's TLS CA certificate (PEM), which signs the `/secapi` server certificate;
    /// clients add it to their trusted roots. `None` when generating it failed.
    #[allow(dead_code)]
    pub(crate) fn server_ca_pem(&self) -> Option<&str> {
        self.server_tls.as_ref().map(|t| t.ca_pem.as_str())
    }

    /// Stops every background notification delivery and the TLS listener.
    pub(crate) fn shutdown(&self) {
        for task in self.tasks().drain(..) {
            task.abort();
        }
    }

    fn book(&self) -> MutexGuard<'_, book::Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn tasks(&self) -> MutexGuard<'_, Vec<tokio::task::AbortHandle>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers a background task so that [`Self::shutdown`] (or dropping the state) stops it.
    fn track(&self, task: tokio::task::AbortHandle) {
        let mut tasks = self.tasks();
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }
}

impl Drop for PayState {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The merchant with this `mch_id`.
fn merchant<'a>(sim: &'a Sim, mch_id: &str) -> Option<&'a MerchantConfig> {
    sim.config.merchants.iter().find(|m| m.mch_id == mch_id)
}

/// Whether `openid` is one of `appid`'s users (users' openids are resolved by [`Sim::new`]).
fn openid_belongs(sim: &Sim, appid: &str, openid: &str) -> bool {
    sim.user(appid, openid).is_some()
}

/// Every Pay route: the merchant API (XML), the pay sheet's endpoints and the test controls.
pub(crate) fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route(
            "/pay/unifiedorder",
            post(api::unifiedorder).fallback(api::require_post),
        )
        .route(
            "/pay/orderquery",
            post(api::orderquery).fallback(api::require_post),
        )
        .route(
            "/pay/closeorder",
            post(api::closeorder).fallback(api::require_post),
        )
        .route(
            "/pay/refundquery",
            post(api::refundquery).fallback(api::require_post),
        )
        .route(
            "/secapi/pay/refund",
            post(api::refund).fallback(api::require_post),
        )
        .route(
            "/_sim/pay/scan",
            get(outside::scan_page).post(outside::scan_confirm),
        )
        .route(
            book::H5_CASHIER_PATH,
            get(outside::cashier_page).post(outside::cashier_confirm),
        )
        .route("/_sim/pay/check", post(jsapi::check))
        .route("/_sim/pay/confirm", post(jsapi::confirm))
        .route("/_sim/pay/notify", post(control::notify))
        .route("/_sim/pay/orders/{out_trade_no}", get(control::order))
        .route("/_sim/pay/orders/{out_trade_no}/pay", post(steer::pay))
        .route("/_sim/pay/orders/{out_trade_no}/close", post(steer::close))
        .route(
            "/_sim/pay/orders/{out_trade_no}/refund",
            post(steer::refund),
        )
        .route("/_sim/tls/server-ca.pem", get(control::server_ca))
        .route("/_sim/pay/v3/public-key", get(control::public_key))
        .merge(v3::router())
}

/// The WeChat Pay public key of a v3 merchant: its id and SPKI PEM.
pub(crate) fn pay_public_key(sim: &Sim, mch_id: &str) -> Option<(String, String)> {
    let m = sim.pay.v3.get(mch_id)?;
    Some((
        m.pay_public_key_id.clone(),
        m.pay_key.public.spki_pem.clone(),
    ))
}
