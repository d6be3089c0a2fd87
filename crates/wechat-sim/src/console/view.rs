//! What the console shows, as plain values gathered under each lock in turn. Nothing here
//! holds a secret: no app secret, merchant key, access token, ticket, refresh token or session
//! key is ever copied into these types (tokens and tickets appear by owner and times only, an
//! OAuth code by its first characters).

use serde::Serialize;
use serde_json::Value;

use crate::journal::{DeliveryRecord, RequestRecord};
use crate::stats::StatsSnapshot;

/// How many characters of an OAuth code the console shows.
pub(crate) const CODE_PREFIX_CHARS: usize = 4;

/// `valid` until `expires_at` (unix seconds on the simulated clock), then `expired`: the state
/// the console shows for a ticket or an OAuth token.
pub(crate) fn validity(now: u64, expires_at: u64) -> &'static str {
    if now < expires_at { "valid" } else { "expired" }
}

/// Everything the console shows, also served as JSON by `GET /_sim/console/state`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Snapshot {
    /// The simulated unix time.
    pub(crate) now: u64,
    /// The same in Beijing time, `yyyy-MM-dd HH:mm:ss`.
    pub(crate) now_beijing: String,
    /// How far the clock was moved forward, in seconds.
    pub(crate) offset_secs: u64,
    /// The configured apps.
    pub(crate) apps: Vec<AppView>,
    /// The configured users.
    pub(crate) users: Vec<UserView>,
    /// The configured merchants.
    pub(crate) merchants: Vec<MerchantView>,
    /// Basic and stable access tokens, newest first.
    pub(crate) tokens: Vec<TokenView>,
    /// jsapi tickets.
    pub(crate) tickets: Vec<TicketView>,
    /// OAuth codes, newest first.
    pub(crate) codes: Vec<CodeView>,
    /// OAuth user access tokens, newest first.
    pub(crate) user_tokens: Vec<UserTokenView>,
    /// Orders, newest first (at most [`super::MAX_ORDERS`]).
    pub(crate) orders: Vec<OrderView>,
    /// Notification deliveries, newest first.
    pub(crate) deliveries: Vec<DeliveryView>,
    /// The counters of `GET /_sim/stats`.
    pub(crate) stats: StatsSnapshot,
    /// The faults registered, as `GET /_sim/fail` lists them.
    pub(crate) faults: Value,
    /// The recent requests, newest first.
    pub(crate) requests: Vec<RequestRecord>,
}

/// A configured app, without its secret.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AppView {
    pub(crate) appid: String,
    /// `official account` or `website`.
    pub(crate) kind: &'static str,
    pub(crate) oauth_domains: Vec<String>,
    pub(crate) js_domains: Vec<String>,
    pub(crate) ip_whitelist: Vec<String>,
    pub(crate) token_daily_quota: u32,
}

/// A configured user.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct UserView {
    pub(crate) appid: String,
    pub(crate) openid: String,
    pub(crate) unionid: Option<String>,
    pub(crate) nickname: String,
    pub(crate) is_snapshotuser: bool,
}

/// A configured merchant, without any key.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MerchantView {
    pub(crate) mch_id: String,
    pub(crate) appids: Vec<String>,
    pub(crate) v2: bool,
    pub(crate) v3: bool,
    pub(crate) notify_retry_scale: f64,
    /// Its H5 payment domains (none: no H5 product).
    pub(crate) h5_domains: Vec<String>,
}

/// A basic or stable access token: whose, and its times; never its value.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TokenView {
    pub(crate) appid: String,
    /// `cgi-bin/token (latest)`, `stable_token (current)` or `older`.
    pub(crate) kind: &'static str,
    pub(crate) issued_at: u64,
    pub(crate) expires_at: u64,
    /// When a newer token replaced it (it works 300 s more).
    pub(crate) replaced_at: Option<u64>,
    pub(crate) revoked: bool,
    /// `valid`, `replaced`, `retired`, `revoked` or `expired`, on the simulated clock.
    pub(crate) state: &'static str,
}

/// An app's jsapi ticket: its expiry, never its value.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TicketView {
    pub(crate) appid: String,
    pub(crate) expires_at: u64,
    /// `valid` or `expired`.
    pub(crate) state: &'static str,
}

/// An OAuth code, by its first [`CODE_PREFIX_CHARS`] characters (it is a single-use credential).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CodeView {
    /// The first characters and `…`.
    pub(crate) prefix: String,
    pub(crate) appid: String,
    pub(crate) openid: String,
    pub(crate) scope: &'static str,
    pub(crate) issued_at: u64,
    pub(crate) expires_at: u64,
    /// `unused`, `used` or `expired`.
    pub(crate) state: &'static str,
}

/// An OAuth user access token: whose, its scope and expiry; never its value.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct UserTokenView {
    pub(crate) appid: String,
    pub(crate) openid: String,
    pub(crate) scope: &'static str,
    pub(crate) expires_at: u64,
    /// `valid` or `expired`.
    pub(crate) state: &'static str,
}

/// An order (v2 or v3).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct OrderView {
    pub(crate) api: &'static str,
    pub(crate) mch_id: String,
    pub(crate) appid: String,
    pub(crate) out_trade_no: String,
    /// The description (`body` in v2, `description` in v3).
    pub(crate) description: String,
    /// In fen.
    pub(crate) total_fee: u64,
    /// `NOTPAY`, `SUCCESS`, `REFUND` or `CLOSED`.
    pub(crate) trade_state: &'static str,
    /// `JSAPI`, `NATIVE` or `MWEB`.
    pub(crate) trade_type: String,
    /// A Native order's `code_url` (empty otherwise): the console links its scan page.
    pub(crate) code_url: String,
    /// The payer's openid.
    pub(crate) payer: String,
    pub(crate) created: u64,
    pub(crate) paid_at: Option<u64>,
    pub(crate) refunded_fee: u64,
    pub(crate) refunds: Vec<RefundView>,
    /// Notification attempts of the payment, and those acknowledged.
    pub(crate) notifications_sent: u64,
    pub(crate) notifications_acknowledged: u64,
    /// The `/_sim/pay/notify` modes its payment notification takes.
    pub(crate) modes: Vec<&'static str>,
}

/// A refund of an order.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RefundView {
    pub(crate) out_refund_no: String,
    pub(crate) refund_fee: u64,
    /// `PROCESSING` or `SUCCESS`.
    pub(crate) status: &'static str,
    pub(crate) created: u64,
    /// The `/_sim/pay/notify` modes its notification takes.
    pub(crate) modes: Vec<&'static str>,
}

/// A notification delivery with the modes it can be re-sent in.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DeliveryView {
    #[serde(flatten)]
    pub(crate) record: DeliveryRecord,
    /// The `/_sim/pay/notify` modes its subject takes.
    pub(crate) modes: Vec<&'static str>,
}
