//! The v3 merchant endpoints (§7): prepay, query, close, refund, refund query, certificates.
//! The behaviour contract is in the [module doc](super).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::auth::{Call, V3Error, authenticate};
use super::{keys, notify as v3notify};
use crate::pay::book::{self, Api, Order, OrderKey, Payment, Refund};
use crate::pay::sign::SignType;
use crate::pay::{notify, openid_belongs};
use crate::state::Sim;

/// The 404 message of `/v3/certificates` for a merchant without platform certificates.
const NO_CERTIFICATE: &str = "无可用的平台证书，请在商户平台-API安全申请使用微信支付公钥。可参考：https://pay.weixin.qq.com/doc/v3/merchant/4012153196";

type Answer = Result<(StatusCode, Vec<u8>), V3Error>;

fn ok_json(value: &Value) -> Answer {
    Ok((StatusCode::OK, value.to_string().into_bytes()))
}

/// WeChat's message for a missing required field.
fn missing(field: &str) -> V3Error {
    V3Error::param(
        &format!("/{}", field.replace('.', "/")),
        format!("输入源“/body/{field}”映射到字段“{field}”必填性规则校验失败，此字段为必填项"),
    )
}

/// The value at a dotted path of a JSON object.
fn at<'v>(body: &'v Map<String, Value>, path: &str) -> Option<&'v Value> {
    let mut parts = path.split('.');
    let mut value = body.get(parts.next()?)?;
    for part in parts {
        value = value.get(part)?;
    }
    Some(value)
}

/// A required non-empty string.
fn required_str<'v>(body: &'v Map<String, Value>, path: &str) -> Result<&'v str, V3Error> {
    match at(body, path) {
        None | Some(Value::Null) => Err(missing(path)),
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(missing(path)),
        Some(_) => Err(V3Error::param(
            &format!("/{}", path.replace('.', "/")),
            format!("{path}应为字符串"),
        )),
    }
}

/// An optional string (`""` when absent).
fn optional_str<'v>(body: &'v Map<String, Value>, path: &str) -> Result<&'v str, V3Error> {
    match at(body, path) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(V3Error::param(
            &format!("/{}", path.replace('.', "/")),
            format!("{path}应为字符串"),
        )),
    }
}

/// A required integer amount > 0, in fen.
fn amount(body: &Map<String, Value>, path: &str) -> Result<u64, V3Error> {
    match at(body, path) {
        None | Some(Value::Null) => Err(missing(path)),
        Some(v) => v.as_u64().filter(|n| *n > 0).ok_or_else(|| {
            V3Error::param(
                &format!("/{}", path.replace('.', "/")),
                format!("{path}应为大于0的整数（单位为分）"),
            )
        }),
    }
}

/// `out_trade_no` / `out_refund_no` syntax.
fn valid_no(s: &str, min: usize, max: usize, extra: &[u8]) -> bool {
    (min..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-|*".contains(&b) || extra.contains(&b))
}

/// A notify_url WeChat accepts: https (http on a loopback host), no query, ≤ `max`.
fn check_notify_url(url: &str, max: usize) -> Result<(), V3Error> {
    let bad = |msg: &str| V3Error::param("/notify_url", msg.to_owned());
    if url.len() > max {
        return Err(bad("notify_url长度超过限制"));
    }
    let parsed =
        url::Url::parse(url).map_err(|_| bad("notify_url格式错误，请填写以https开头的完整URL"))?;
    let Some(host) = parsed.host() else {
        return Err(bad("notify_url格式错误，请填写以https开头的完整URL"));
    };
    if parsed.query().is_some() {
        return Err(bad("notify_url不能携带参数"));
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = match host {
                url::Host::Domain(d) => d == "localhost",
                url::Host::Ipv4(ip) => ip.is_loopback(),
                url::Host::Ipv6(ip) => ip.is_loopback(),
            };
            if loopback {
                tracing::info!(%url, "accepting an http:// notify_url on a loopback host; WeChat Pay requires https");
                Ok(())
            } else {
                Err(bad("notify_url必须为https地址"))
            }
        }
        _ => Err(bad("notify_url格式错误，请填写以https开头的完整URL")),
    }
}

/// The body's `mchid`: present and that of the `Authorization`.
fn check_mchid(call: &Call<'_>, body: &Map<String, Value>) -> Result<(), V3Error> {
    let mchid = required_str(body, "mchid")?;
    if mchid != call.config.mch_id {
        return Err(V3Error::param("/mchid", "mchid与请求签名的商户号不一致"));
    }
    Ok(())
}

/// `POST /v3/pay/transactions/jsapi`.
/// The trade type a prepay endpoint places.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trade {
    /// `/v3/pay/transactions/jsapi`: `payer.openid` required; answers `prepay_id`.
    Jsapi,
    /// `/v3/pay/transactions/native`: no payer; answers `code_url`.
    Native,
    /// `/v3/pay/transactions/h5`: `scene_info.payer_client_ip` and `scene_info.h5_info.type`
    /// required, the merchant must have H5 domains; answers `h5_url`.
    H5,
}

/// `POST /v3/pay/transactions/jsapi`.
pub(crate) async fn prepay(State(sim): State<Arc<Sim>>, req: Request) -> Response {
    prepay_of(&sim, req, Trade::Jsapi).await
}

/// `POST /v3/pay/transactions/native`.
pub(crate) async fn prepay_native(State(sim): State<Arc<Sim>>, req: Request) -> Response {
    prepay_of(&sim, req, Trade::Native).await
}

/// `POST /v3/pay/transactions/h5`.
pub(crate) async fn prepay_h5(State(sim): State<Arc<Sim>>, req: Request) -> Response {
    prepay_of(&sim, req, Trade::H5).await
}

async fn prepay_of(sim: &Arc<Sim>, req: Request, trade: Trade) -> Response {
    let call = match authenticate(sim, req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    call.respond(prepay_answer(sim, &call, trade))
}

/// `scene_info`: optional for JSAPI and Native (then `payer_client_ip` is required in it),
/// required for H5 with `h5_info.type` one of `Wap`, `iOS`, `Android`.
fn scene_info(body: &Map<String, Value>, trade: Trade) -> Result<String, V3Error> {
    if trade != Trade::H5 && at(body, "scene_info").is_none() {
        return Ok(String::new());
    }
    let ip = required_str(body, "scene_info.payer_client_ip")?;
    if ip.parse::<std::net::IpAddr>().is_err() || ip.len() > 45 {
        return Err(V3Error::param(
            "/scene_info/payer_client_ip",
            "payer_client_ip应为IPv4或IPv6地址",
        ));
    }
    if trade == Trade::H5 {
        let kind = required_str(body, "scene_info.h5_info.type")?;
        if !matches!(kind, "Wap" | "iOS" | "Android") {
            return Err(V3Error::param(
                "/scene_info/h5_info/type",
                "h5_info.type应为Wap、iOS或Android",
            ));
        }
    }
    Ok(ip.to_owned())
}

fn prepay_answer(sim: &Sim, call: &Call<'_>, trade: Trade) -> Answer {
    let body = call.json()?;
    let appid = required_str(&body, "appid")?;
    check_mchid(call, &body)?;
    let description = required_str(&body, "description")?;
    let out_trade_no = required_str(&body, "out_trade_no")?;
    let notify_url = required_str(&body, "notify_url")?;
    let total = amount(&body, "amount.total")?;
    let openid = match trade {
        Trade::Jsapi => required_str(&body, "payer.openid")?,
        Trade::Native | Trade::H5 => "",
    };
    let payer_client_ip = scene_info(&body, trade)?;
    if trade == Trade::H5 && call.config.h5_domains.is_empty() {
        return Err(V3Error::new(
            StatusCode::FORBIDDEN,
            "NO_AUTH",
            "商户号该产品权限未开通，请前往商户平台>产品中心检查后重试",
        ));
    }
    if !call.config.appids.iter().any(|a| a == appid) {
        return Err(V3Error::new(
            StatusCode::BAD_REQUEST,
            "APPID_MCHID_NOT_MATCH",
            "AppID和mch_id不匹配",
        ));
    }
    if description.chars().count() > 127 {
        return Err(V3Error::param(
            "/description",
            "description长度超过127个字符",
        ));
    }
    if !valid_no(out_trade_no, 6, 32, b"") {
        return Err(V3Error::param(
            "/out_trade_no",
            "out_trade_no应为6-32位数字、大小写字母或_-|*",
        ));
    }
    check_notify_url(notify_url, 255)?;
    let currency = optional_str(&body, "amount.currency")?;
    if !currency.is_empty() && currency != "CNY" {
        return Err(V3Error::param("/amount/currency", "货币类型仅支持CNY"));
    }
    let attach = optional_str(&body, "attach")?;
    if attach.chars().count() > 128 {
        return Err(V3Error::param("/attach", "attach长度超过128个字符"));
    }
    let time_expire = match optional_str(&body, "time_expire")? {
        "" => None,
        text => Some(parse_rfc3339(text).ok_or_else(|| {
            V3Error::param(
                "/time_expire",
                "time_expire应为RFC 3339格式，如2018-06-08T10:34:56+08:00",
            )
        })?),
    };
    if trade == Trade::Jsapi && !openid_belongs(sim, appid, openid) {
        return Err(V3Error::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "OPENID_MISMATCH",
            "openid和appid不匹配",
        ));
    }
    // The parameters that must match when the same out_trade_no comes again.
    let mut params_value = body.clone();
    params_value.remove("time_expire");
    let mut params = book::OrderParams::new();
    params.insert("v3".into(), Value::Object(params_value).to_string());

    let now = sim.now_secs();
    let key: OrderKey = (call.config.mch_id.clone(), out_trade_no.to_owned());
    let mut guard = sim.pay.book();
    let book = &mut *guard;
    let (prepay_id, code_url) = match book.orders.get_mut(&key) {
        Some(order) => match order.payment {
            Payment::Paid { .. } => {
                return Err(V3Error::new(
                    StatusCode::FORBIDDEN,
                    "OUT_TRADE_NO_USED",
                    "该订单已支付",
                ));
            }
            Payment::Closed => {
                return Err(V3Error::new(
                    StatusCode::BAD_REQUEST,
                    "ORDER_CLOSED",
                    "订单已关闭，请使用新的商户订单号下单",
                ));
            }
            Payment::NotPaid if order.params != params => {
                return Err(V3Error::new(
                    StatusCode::FORBIDDEN,
                    "OUT_TRADE_NO_USED",
                    "商户订单号重复",
                ));
            }
            Payment::NotPaid => {
                if now >= order.prepay_expires {
                    book.by_prepay.remove(&order.prepay_id);
                    order.prepay_id = book::new_prepay_id(now);
                    order.prepay_expires = now.saturating_add(book::PREPAY_TTL_SECS);
                    book.by_prepay.insert(order.prepay_id.clone(), key.clone());
                    if trade == Trade::Native {
                        book.by_code_url.remove(&order.code_url);
                        order.code_url = book::new_code_url();
                        book.by_code_url.insert(order.code_url.clone(), key.clone());
                    }
                }
                (order.prepay_id.clone(), order.code_url.clone())
            }
        },
        None => {
            let prepay_id = book::new_prepay_id(now);
            let code_url = match trade {
                Trade::Native => book::new_code_url(),
                Trade::Jsapi | Trade::H5 => String::new(),
            };
            let order = Order {
                api: Api::V3,
                time_expire,
                mch_id: key.0.clone(),
                appid: appid.to_owned(),
                out_trade_no: key.1.clone(),
                body: description.to_owned(),
                total_fee: total,
                fee_type: "CNY".to_owned(),
                trade_type: match trade {
                    Trade::Jsapi => "JSAPI",
                    Trade::Native => "NATIVE",
                    Trade::H5 => "MWEB",
                }
                .to_owned(),
                openid: openid.to_owned(),
                payer_client_ip,
                code_url: code_url.clone(),
                notify_url: notify_url.to_owned(),
                attach: attach.to_owned(),
                device_info: String::new(),
                sign_type: SignType::Md5,
                params,
                prepay_id: prepay_id.clone(),
                prepay_expires: now.saturating_add(book::PREPAY_TTL_SECS),
                created: now,
                payment: Payment::NotPaid,
                transaction_id: String::new(),
                refunds: Vec::new(),
                refunded_fee: 0,
                deliveries: book::Deliveries::default(),
            };
            book.by_prepay.insert(prepay_id.clone(), key.clone());
            if !code_url.is_empty() {
                book.by_code_url.insert(code_url.clone(), key.clone());
            }
            book.orders.insert(key.clone(), order);
            (prepay_id, code_url)
        }
    };
    let answer = match trade {
        Trade::Jsapi => json!({ "prepay_id": prepay_id }),
        Trade::Native => json!({ "code_url": code_url }),
        Trade::H5 => json!({ "h5_url": book.issue_h5_link(&key, &prepay_id, &call.host, now) }),
    };
    drop(guard);
    ok_json(&answer)
}

/// Parses RFC 3339 into unix time.
fn parse_rfc3339(text: &str) -> Option<u64> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp()).ok()
}

/// The `mchid` query parameter, required and the caller's.
fn query_mchid(call: &Call<'_>) -> Result<(), V3Error> {
    match call.query_param("mchid") {
        None => Err(V3Error {
            detail: Some(json!({ "field": "mchid", "location": "query" })),
            ..V3Error::new(
                StatusCode::BAD_REQUEST,
                "PARAM_ERROR",
                "输入源“/query/mchid”映射到字段“mchid”必填性规则校验失败，此字段为必填项",
            )
        }),
        Some(m) if m != call.config.mch_id => Err(V3Error::new(
            StatusCode::BAD_REQUEST,
            "PARAM_ERROR",
            "mchid与请求签名的商户号不一致",
        )),
        Some(_) => Ok(()),
    }
}

fn order_not_exist() -> V3Error {
    V3Error::new(StatusCode::NOT_FOUND, "ORDER_NOT_EXIST", "订单不存在")
}

/// `GET /v3/pay/transactions/out-trade-no/{out_trade_no}?mchid=…`.
pub(crate) async fn query_by_out_trade_no(
    State(sim): State<Arc<Sim>>,
    Path(out_trade_no): Path<String>,
    req: Request,
) -> Response {
    let call = match authenticate(&sim, req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let answer = query_mchid(&call).and_then(|()| {
        let book = sim.pay.book();
        let order = book
            .find_order(&call.config.mch_id, "", &out_trade_no)
            .ok_or_else(order_not_exist)?;
        ok_json(&v3notify::transaction(order))
    });
    call.respond(answer)
}

/// `GET /v3/pay/transactions/id/{transaction_id}?mchid=…`.
pub(crate) async fn query_by_id(
    State(sim): State<Arc<Sim>>,
    Path(transaction_id): Path<String>,
    req: Request,
) -> Response {
    let call = match authenticate(&sim, req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let answer = query_mchid(&call).and_then(|()| {
        let book = sim.pay.book();
        let order = if transaction_id.is_empty() {
            None
        } else {
            book.find_order(&call.config.mch_id, &transaction_id, "")
        };
        ok_json(&v3notify::transaction(order.ok_or_else(order_not_exist)?))
    });
    call.respond(answer)
}

/// `POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close`.
pub(crate) async fn close(
    State(sim): State<Arc<Sim>>,
    Path(out_trade_no): Path<String>,
    req: Request,
) -> Response {
    let call = match authenticate(&sim, req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let answer = (|| {
        let body = call.json()?;
        check_mchid(&call, &body)?;
        let key: OrderKey = (call.config.mch_id.clone(), out_trade_no.clone());
        let mut book = sim.pay.book();
        let order = book.orders.get_mut(&key).ok_or_else(order_not_exist)?;
        match order.close() {
            book::Closing::Paid => Err(V3Error::new(
                StatusCode::FORBIDDEN,
                "TRADE_ERROR",
                "订单已支付，不能关闭，请当作已支付的正常交易",
            )),
            book::Closing::Closed | book::Closing::AlreadyClosed => {
                Ok((StatusCode::NO_CONTENT, Vec::new()))
            }
        }
    })();
    call.respond(answer)
}

fn refund_not_exist(what: &str) -> V3Error {
    V3Error::new(
        StatusCode::NOT_FOUND,
        "RESOURCE_NOT_EXISTS",
        format!("{what}不存在"),
    )
}

/// `POST /v3/refund/domestic/refunds`.
pub(crate) async fn refund(State(sim): State<Arc<Sim>>, req: Request) -> Response {
    let call = match authenticate(&sim, req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let answer = refund_answer(&sim, &call);
    let response = call.respond(
        answer
            .as_ref()
            .map(|(s, b, _)| (*s, b.clone()))
            .map_err(Clone::clone),
    );
    if let Ok((_, _, Some(key))) = answer {
        complete_refund(&sim, key, call.config.notify_retry_scale);
    }
    response
}

/// A refund answer: status, body, and the `(mch_id, out_refund_no)` to complete when the
/// refund was just created.
type RefundAnswer = (StatusCode, Vec<u8>, Option<(String, String)>);

/// The answer, and the refund to complete when it was just created.
fn refund_answer(sim: &Sim, call: &Call<'_>) -> Result<RefundAnswer, V3Error> {
    let body = call.json()?;
    let out_refund_no = required_str(&body, "out_refund_no")?;
    if !valid_no(out_refund_no, 1, 64, b"@") {
        return Err(V3Error::param(
            "/out_refund_no",
            "out_refund_no应为不超过64位的数字、大小写字母或_-|*@",
        ));
    }
    let transaction_id = optional_str(&body, "transaction_id")?;
    let out_trade_no = optional_str(&body, "out_trade_no")?;
    if transaction_id.is_empty() && out_trade_no.is_empty() {
        return Err(V3Error::param(
            "/out_trade_no",
            "transaction_id和out_trade_no必须填写其中一个",
        ));
    }
    let refund_fee = amount(&body, "amount.refund")?;
    let total = amount(&body, "amount.total")?;
    if required_str(&body, "amount.currency")? != "CNY" {
        return Err(V3Error::param("/amount/currency", "货币类型仅支持CNY"));
    }
    let reason = optional_str(&body, "reason")?;
    if reason.chars().count() > 80 {
        return Err(V3Error::param("/reason", "reason长度超过80个字符"));
    }
    let notify_url = optional_str(&body, "notify_url")?;
    if !notify_url.is_empty() {
        check_notify_url(notify_url, 256)?;
    }
    let notify_url = if notify_url.is_empty() {
        call.config.refund_notify_url.clone()
    } else {
        notify_url.to_owned()
    };
    let invalid =
        |msg: &str| V3Error::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", msg.to_owned());
    let mch_id = call.config.mch_id.clone();
    let now = sim.now_secs();
    let mut guard = sim.pay.book();
    let book = &mut *guard;
    let order_key = book
        .find_order(&mch_id, transaction_id, out_trade_no)
        .map(|o| (o.mch_id.clone(), o.out_trade_no.clone()))
        .ok_or_else(|| refund_not_exist("订单"))?;
    let refund_key = (mch_id.clone(), out_refund_no.to_owned());
    if let Some(existing) = book.refunds.get(&refund_key) {
        if existing.out_trade_no != order_key.1 || existing.refund_fee != refund_fee {
            return Err(invalid(
                "out_refund_no已用于另一笔退款，请使用新的商户退款单号",
            ));
        }
        let body = v3notify::refund_object(existing).to_string().into_bytes();
        return Ok((StatusCode::OK, body, None));
    }
    let Some(order) = book.orders.get_mut(&order_key) else {
        return Err(refund_not_exist("订单"));
    };
    if order.paid_at().is_none() {
        return Err(invalid("订单未支付，不能退款"));
    }
    if total != order.total_fee {
        return Err(V3Error::param(
            "/amount/total",
            "订单金额与原订单金额不一致",
        ));
    }
    if refund_fee > order.total_fee.saturating_sub(order.refunded_fee) {
        return Err(invalid("申请退款金额超过订单可退金额"));
    }
    let refund = Refund {
        api: Api::V3,
        succeeded: None,
        mch_id: mch_id.clone(),
        appid: order.appid.clone(),
        out_trade_no: order.out_trade_no.clone(),
        transaction_id: order.transaction_id.clone(),
        out_refund_no: out_refund_no.to_owned(),
        refund_id: book::new_refund_id(now),
        total_fee: total,
        refund_fee,
        refund_account: "REFUND_SOURCE_UNSETTLED_FUNDS".to_owned(),
        refund_desc: reason.to_owned(),
        notify_url,
        created: now,
        deliveries: book::Deliveries::default(),
    };
    let answer = v3notify::refund_object(&refund).to_string().into_bytes();
    book.add_refund(&order_key, refund);
    Ok((StatusCode::OK, answer, Some(refund_key)))
}

/// Marks a new refund `SUCCESS` one second (times `scale`) later and delivers its
/// notification, in the background.
pub(crate) fn complete_refund(sim: &Arc<Sim>, key: (String, String), scale: f64) {
    let weak = Arc::downgrade(sim);
    let delay = notify::retry_delay(0, scale)
        .map(|d| d / 15)
        .unwrap_or(Duration::from_secs(1));
    let task = tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let Some(sim) = weak.upgrade() else { return };
        let now = sim.now_secs();
        let refund = {
            let mut book = sim.pay.book();
            let Some(refund) = book.refunds.get_mut(&key) else {
                return;
            };
            refund.succeeded = Some(now);
            refund.clone()
        };
        tracing::info!(mch_id = %refund.mch_id, out_refund_no = %refund.out_refund_no, "refund succeeded");
        if refund.notify_url.is_empty() {
            return;
        }
        let Some(merchant) = super::merchant(&sim, &refund.mch_id) else {
            return;
        };
        let scale = crate::pay::merchant(&sim, &refund.mch_id)
            .map(|m| m.notify_retry_scale)
            .unwrap_or(1.0);
        match v3notify::refund_delivery(merchant, &refund, now) {
            Ok(delivery) => notify::spawn(&sim, delivery, scale),
            Err(e) => tracing::error!(error = %e, "cannot build the refund notification"),
        }
    });
    sim.pay.track(task.abort_handle());
}

/// `GET /v3/refund/domestic/refunds/{out_refund_no}`.
pub(crate) async fn refund_query(
    State(sim): State<Arc<Sim>>,
    Path(out_refund_no): Path<String>,
    req: Request,
) -> Response {
    let call = match authenticate(&sim, req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let answer = {
        let book = sim.pay.book();
        book.refunds
            .get(&(call.config.mch_id.clone(), out_refund_no))
            .map(v3notify::refund_object)
            .ok_or_else(|| refund_not_exist("退款单"))
            .and_then(|r| ok_json(&r))
    };
    call.respond(answer)
}

/// `GET /v3/certificates`.
pub(crate) async fn certificates(State(sim): State<Arc<Sim>>, req: Request) -> Response {
    let call = match authenticate(&sim, req).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let answer = match &call.merchant.platform {
        None => Err(V3Error::new(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_EXISTS",
            NO_CERTIFICATE,
        )),
        Some(platform) => {
            let nonce = keys::gcm_nonce();
            match keys::aes_gcm_encrypt(
                call.merchant.apiv3_key(),
                &nonce,
                "certificate",
                platform.pem.as_bytes(),
            ) {
                Ok(ciphertext) => ok_json(&json!({
                    "data": [{
                        "serial_no": platform.serial,
                        "effective_time": book::rfc3339(platform.not_before),
                        "expire_time": book::rfc3339(platform.not_after),
                        "encrypt_certificate": {
                            "algorithm": "AEAD_AES_256_GCM",
                            "nonce": nonce,
                            "associated_data": "certificate",
                            "ciphertext": ciphertext,
                        },
                    }],
                })),
                Err(e) => Err(V3Error::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "SYSTEM_ERROR",
                    e.to_string(),
                )),
            }
        }
    };
    // The certificate list is signed with the certificate itself.
    let signer = super::auth::Signer {
        merchant: call.merchant,
        serial: match &call.merchant.platform {
            Some(p) => &p.serial,
            None => call.signer().serial,
        },
    };
    call.respond_with(signer, answer)
}
