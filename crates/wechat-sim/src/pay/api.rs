//! The merchant API (§4.2, §4.5–§4.8): unifiedorder, orderquery, closeorder, refund and
//! refundquery, XML in and out.

use std::collections::BTreeMap;
use std::future::poll_fn;
use std::sync::Arc;

use axum::body::{Body, HttpBody as _};
use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};

use super::book::{self, Order, OrderKey, Payment, Refund};
use super::fault::BusinessFault;
use super::sign::{self, SignType};
use super::tls::TlsPeer;
use super::xml::{self, MAX_BODY, XmlError};
use super::{MerchantConfig, merchant, notify};
use crate::state::Sim;

/// Bodies up to this size are read (and discarded past [`MAX_BODY`]) so that an oversized
/// request still gets an XML answer; larger ones are cut off.
const DRAIN_LIMIT: usize = 4 * 1024 * 1024;

/// An XML answer.
pub(super) fn xml_response(body: String) -> Response {
    ([(CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

/// A `return_code` `FAIL` answer: only `return_code` and `return_msg`, no sign.
pub(super) fn fail(return_msg: &str) -> Response {
    xml_response(xml::write(
        "xml",
        [("return_code", "FAIL"), ("return_msg", return_msg)],
    ))
}

/// Answer to any method other than POST on a merchant endpoint.
pub(super) async fn require_post() -> Response {
    fail("请使用post方法")
}

/// Reads a request body: at most [`MAX_BODY`] bytes are kept.
async fn read_body(body: Body) -> Result<Vec<u8>, XmlError> {
    let mut body = std::pin::pin!(body);
    let mut buf = Vec::new();
    let mut total = 0usize;
    while let Some(frame) = poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame = frame.map_err(|e| XmlError::Format(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            total = total.saturating_add(data.len());
            if total <= MAX_BODY {
                buf.extend_from_slice(&data);
            } else if total > DRAIN_LIMIT {
                break;
            }
        }
    }
    if total > MAX_BODY {
        Err(XmlError::TooLarge)
    } else {
        Ok(buf)
    }
}

/// A request whose merchant, sign and appid binding were checked.
pub(super) struct Call<'a> {
    pub(super) fields: BTreeMap<String, String>,
    pub(super) merchant: &'a MerchantConfig,
    pub(super) sign_type: SignType,
    /// The request's `Host` (the simulator as the caller reaches it; H5 links point there).
    pub(super) host: String,
}

impl Call<'_> {
    /// A request field, `""` when absent.
    pub(super) fn get(&self, name: &str) -> &str {
        self.fields.get(name).map(String::as_str).unwrap_or("")
    }

    fn appid(&self) -> &str {
        self.get("appid")
    }

    /// A signed `return_code` `SUCCESS` answer with `result` and the `extra` fields.
    fn answer(&self, result: Result<(), (&str, &str)>, extra: Vec<(&str, String)>) -> Response {
        let mut out: BTreeMap<String, String> = BTreeMap::new();
        out.insert("return_code".into(), "SUCCESS".into());
        out.insert("return_msg".into(), "OK".into());
        out.insert("appid".into(), self.appid().to_owned());
        out.insert("mch_id".into(), self.merchant.mch_id.clone());
        out.insert("nonce_str".into(), book::nonce());
        match result {
            Ok(()) => {
                out.insert("result_code".into(), "SUCCESS".into());
            }
            Err((code, des)) => {
                out.insert("result_code".into(), "FAIL".into());
                out.insert("err_code".into(), code.to_owned());
                out.insert("err_code_des".into(), des.to_owned());
            }
        }
        for (k, v) in extra {
            if !v.is_empty() {
                out.insert(k.to_owned(), v);
            }
        }
        let signature = sign::sign_map(&out, &self.merchant.api_key, self.sign_type);
        out.insert("sign".into(), signature);
        xml_response(xml::write_map(&out))
    }

    fn ok(&self, extra: Vec<(&str, String)>) -> Response {
        self.answer(Ok(()), extra)
    }

    fn err(&self, code: &str, des: &str) -> Response {
        self.answer(Err((code, des)), Vec::new())
    }
}

/// Whether this endpoint needs the merchant certificate (`/secapi`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cert {
    NotNeeded,
    Required,
}

/// Parses and authenticates a merchant request, or gives the `FAIL` answer.
async fn authenticate(sim: &Sim, req: Request, cert: Cert) -> Result<Call<'_>, Response> {
    let (parts, body) = req.into_parts();
    let body = read_body(body).await.map_err(|e| fail(e.return_msg()))?;
    let fields = xml::parse(&body, "xml").map_err(|e| fail(e.return_msg()))?;
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or("");
    if field("mch_id").is_empty() {
        return Err(fail("mch_id参数格式错误"));
    }
    // A merchant without an API v2 key is, for v2, no merchant.
    let Some(merchant) = merchant(sim, field("mch_id")).filter(|m| m.has_v2()) else {
        return Err(fail("商户号mch_id不存在"));
    };
    if cert == Cert::Required {
        super::tls::check_client_cert(&sim.pay, merchant, parts.extensions.get::<TlsPeer>())
            .map_err(fail)?;
    }
    let Some(sign_type) = SignType::from_field(fields.get("sign_type").map(String::as_str)) else {
        return Err(fail("sign_type参数格式错误"));
    };
    if field("nonce_str").is_empty() {
        return Err(fail("nonce_str参数格式错误"));
    }
    if field("sign").is_empty() || !sign::verify_fields(&fields, &merchant.api_key, sign_type) {
        return Err(fail("签名错误"));
    }
    let appid = field("appid");
    if appid.is_empty() {
        return Err(fail("appid参数格式错误"));
    }
    if !merchant.appids.iter().any(|a| a == appid) {
        return Err(fail("appid和mch_id不匹配"));
    }
    let host = parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let call = Call {
        fields,
        merchant,
        sign_type,
        host,
    };
    // An err_code injected by `/_sim/fail`, answered as WeChat would: signed, once the request
    // is known to be the merchant's.
    if let Some(fault) = parts.extensions.get::<BusinessFault>() {
        return Err(call.err(&fault.err_code, &fault.err_code_des));
    }
    Ok(call)
}

/// A positive integer amount in fen.
fn positive_int(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|n| *n > 0)
}

/// `out_trade_no` / `out_refund_no` syntax: 1..=max of `[0-9A-Za-z_-|*@]`.
fn valid_merchant_no(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-|*@".contains(&b))
}

/// A notify_url WeChat accepts: absolute http(s), no query string.
fn valid_notify_url(s: &str) -> Result<(), &'static str> {
    if s.len() > 256 {
        return Err("notify_url参数长度有误");
    }
    match url::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            if u.query().is_some() {
                Err("notify_url不能携带参数")
            } else {
                Ok(())
            }
        }
        _ => Err("notify_url参数格式错误，请填写以http或https开头的完整URL"),
    }
}

/// `POST /pay/unifiedorder`.
pub(super) async fn unifiedorder(State(sim): State<Arc<Sim>>, req: Request) -> Response {
    let call = match authenticate(&sim, req, Cert::NotNeeded).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    for name in [
        "body",
        "out_trade_no",
        "total_fee",
        "spbill_create_ip",
        "notify_url",
        "trade_type",
    ] {
        if call.get(name).is_empty() {
            return call.err("LACK_PARAMS", &format!("缺少参数{name}"));
        }
    }
    let body = call.get("body");
    if body.len() > 128 {
        return call.err("PARAM_ERROR", "body参数长度有误");
    }
    let out_trade_no = call.get("out_trade_no");
    if !valid_merchant_no(out_trade_no, 32) {
        return call.err(
            "PARAM_ERROR",
            "out_trade_no参数格式错误，只能是数字、大小写字母_-|*@，且不超过32位",
        );
    }
    let Some(total_fee) = positive_int(call.get("total_fee")) else {
        return call.err(
            "PARAM_ERROR",
            "total_fee参数格式错误，应为大于0的整数（单位为分）",
        );
    };
    if let Err(des) = valid_notify_url(call.get("notify_url")) {
        return call.err("PARAM_ERROR", des);
    }
    let fee_type = match call.get("fee_type") {
        "" | "CNY" => "CNY",
        _ => return call.err("PARAM_ERROR", "fee_type参数错误，仅支持CNY"),
    };
    let trade_type = call.get("trade_type");
    if !matches!(trade_type, "JSAPI" | "NATIVE" | "APP" | "MWEB") {
        return call.err("PARAM_ERROR", "trade_type参数错误");
    }
    let openid = call.get("openid");
    match trade_type {
        "JSAPI" => {
            if openid.is_empty() {
                return call.err("PARAM_ERROR", "JSAPI支付必须传openid");
            }
            if !super::openid_belongs(&sim, call.appid(), openid) {
                return call.err("PARAM_ERROR", "appid和openid不匹配");
            }
        }
        "NATIVE" => {
            let product_id = call.get("product_id");
            if product_id.is_empty() {
                return call.err("LACK_PARAMS", "缺少参数product_id");
            }
            if product_id.len() > 32 {
                return call.err("PARAM_ERROR", "product_id参数长度有误");
            }
        }
        "MWEB" => {
            if call.merchant.h5_domains.is_empty() {
                return call.err("NO_AUTH", "商户无此接口权限");
            }
            if let Err(des) = valid_h5_scene_info(call.get("scene_info")) {
                return call.err("PARAM_ERROR", des);
            }
        }
        _ => {}
    }
    // WeChat refuses an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) too.
    match call.get("spbill_create_ip").parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => {
            return call.err("PARAM_ERROR", "invalid spbill_create_ip");
        }
        Ok(_) => {}
        Err(_) => return call.err("PARAM_ERROR", "invalid spbill_create_ip"),
    }

    let now = sim.clock.now_secs();
    let params = book::order_params(&call.fields);
    let key: OrderKey = (call.merchant.mch_id.clone(), out_trade_no.to_owned());
    let (prepay_id, code_url, mweb_url) = {
        let mut book = sim.pay.book();
        let book = &mut *book;
        let prepay_id = match book.orders.get_mut(&key) {
            Some(order) => match order.payment {
                Payment::Paid { .. } => return call.err("ORDERPAID", "该订单已支付"),
                Payment::Closed => return call.err("ORDERCLOSED", "该订单已关闭"),
                Payment::NotPaid if order.params != params => {
                    return call.err("OUT_TRADE_NO_USED", "商户订单号重复");
                }
                Payment::NotPaid => {
                    if now >= order.prepay_expires {
                        book.by_prepay.remove(&order.prepay_id);
                        order.prepay_id = book::new_prepay_id(now);
                        order.prepay_expires = now.saturating_add(book::PREPAY_TTL_SECS);
                        book.by_prepay.insert(order.prepay_id.clone(), key.clone());
                        if order.trade_type == "NATIVE" {
                            book.by_code_url.remove(&order.code_url);
                            order.code_url = book::new_code_url();
                            book.by_code_url.insert(order.code_url.clone(), key.clone());
                        }
                    }
                    order.prepay_id.clone()
                }
            },
            None => {
                let prepay_id = book::new_prepay_id(now);
                let order = Order {
                    api: book::Api::V2,
                    time_expire: None,
                    mch_id: key.0.clone(),
                    appid: call.appid().to_owned(),
                    out_trade_no: key.1.clone(),
                    body: body.to_owned(),
                    total_fee,
                    fee_type: fee_type.to_owned(),
                    trade_type: trade_type.to_owned(),
                    openid: if trade_type == "JSAPI" {
                        openid.to_owned()
                    } else {
                        String::new()
                    },
                    payer_client_ip: call.get("spbill_create_ip").to_owned(),
                    code_url: if trade_type == "NATIVE" {
                        book::new_code_url()
                    } else {
                        String::new()
                    },
                    notify_url: call.get("notify_url").to_owned(),
                    attach: call.get("attach").to_owned(),
                    device_info: call.get("device_info").to_owned(),
                    sign_type: call.sign_type,
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
                if !order.code_url.is_empty() {
                    book.by_code_url.insert(order.code_url.clone(), key.clone());
                }
                book.orders.insert(key.clone(), order);
                prepay_id
            }
        };
        let code_url = book
            .orders
            .get(&key)
            .map(|o| o.code_url.clone())
            .unwrap_or_default();
        let mweb_url =
            (trade_type == "MWEB").then(|| book.issue_h5_link(&key, &prepay_id, &call.host, now));
        (prepay_id, code_url, mweb_url)
    };
    let mut extra = vec![
        ("trade_type", trade_type.to_owned()),
        ("device_info", call.get("device_info").to_owned()),
        ("prepay_id", prepay_id.clone()),
    ];
    if !code_url.is_empty() {
        extra.push(("code_url", code_url));
    }
    if let Some(mweb_url) = mweb_url {
        extra.push(("mweb_url", mweb_url));
    }
    call.ok(extra)
}

/// v2's `scene_info` for MWEB: WeChat's JSON string, `{"h5_info":{"type":"Wap"|"IOS"|"Android",…}}`,
/// at most 256 bytes.
fn valid_h5_scene_info(scene_info: &str) -> Result<(), &'static str> {
    if scene_info.is_empty() {
        return Err("MWEB支付必须传scene_info");
    }
    if scene_info.len() > 256 {
        return Err("scene_info参数长度有误");
    }
    let value: serde_json::Value =
        serde_json::from_str(scene_info).map_err(|_| "scene_info参数格式错误，应为JSON字符串")?;
    match value
        .pointer("/h5_info/type")
        .and_then(serde_json::Value::as_str)
    {
        Some("Wap" | "IOS" | "Android") => Ok(()),
        _ => Err("scene_info中h5_info.type应为Wap、IOS或Android"),
    }
}

/// The notification fields of a paid order (also used by orderquery).
pub(super) fn paid_fields(order: &Order) -> Vec<(&'static str, String)> {
    vec![
        ("openid", order.openid.clone()),
        ("is_subscribe", "N".to_owned()),
        ("trade_type", order.trade_type.clone()),
        ("bank_type", "OTHERS".to_owned()),
        ("total_fee", order.total_fee.to_string()),
        ("fee_type", order.fee_type.clone()),
        ("cash_fee", order.total_fee.to_string()),
        ("cash_fee_type", order.fee_type.clone()),
        ("transaction_id", order.transaction_id.clone()),
        ("out_trade_no", order.out_trade_no.clone()),
        ("attach", order.attach.clone()),
        ("device_info", order.device_info.clone()),
        (
            "time_end",
            order
                .paid_at()
                .map(|t| book::beijing(t, false))
                .unwrap_or_default(),
        ),
    ]
}

/// The order of this call (its appid included), by `transaction_id` else `out_trade_no`.
fn find_order<'b>(book: &'b book::Book, call: &Call<'_>) -> Option<&'b Order> {
    book.find_order(
        &call.merchant.mch_id,
        call.get("transaction_id"),
        call.get("out_trade_no"),
    )
    .filter(|o| o.appid == call.appid())
}

/// `POST /pay/orderquery`.
pub(super) async fn orderquery(State(sim): State<Arc<Sim>>, req: Request) -> Response {
    let call = match authenticate(&sim, req, Cert::NotNeeded).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if call.get("transaction_id").is_empty() && call.get("out_trade_no").is_empty() {
        return call.err("LACK_PARAMS", "缺少参数transaction_id或out_trade_no");
    }
    let extra = {
        let book = sim.pay.book();
        let Some(order) = find_order(&book, &call) else {
            drop(book);
            return call.err("ORDERNOTEXIST", "订单不存在");
        };
        let mut extra = vec![
            ("trade_state", order.trade_state().to_owned()),
            ("trade_state_desc", order.trade_state_desc().to_owned()),
        ];
        if order.paid_at().is_some() {
            extra.extend(paid_fields(order));
        } else {
            extra.extend([
                ("out_trade_no", order.out_trade_no.clone()),
                ("total_fee", order.total_fee.to_string()),
                ("fee_type", order.fee_type.clone()),
                ("trade_type", order.trade_type.clone()),
                ("attach", order.attach.clone()),
                ("device_info", order.device_info.clone()),
            ]);
        }
        extra
    };
    call.ok(extra)
}

/// `POST /pay/closeorder` (the 5-minute rule is not enforced).
pub(super) async fn closeorder(State(sim): State<Arc<Sim>>, req: Request) -> Response {
    let call = match authenticate(&sim, req, Cert::NotNeeded).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if call.get("out_trade_no").is_empty() {
        return call.err("LACK_PARAMS", "缺少参数out_trade_no");
    }
    let key: OrderKey = (
        call.merchant.mch_id.clone(),
        call.get("out_trade_no").to_owned(),
    );
    let outcome = {
        let mut book = sim.pay.book();
        match book
            .orders
            .get_mut(&key)
            .filter(|o| o.appid == call.appid())
        {
            None => Err(("ORDERNOTEXIST", "订单不存在")),
            Some(order) => match order.close() {
                book::Closing::Paid => Err((
                    "ORDERPAID",
                    "订单已支付，不能发起关单，请当作已支付的正常交易",
                )),
                book::Closing::AlreadyClosed => Err(("ORDERCLOSED", "订单已关闭，无法重复关闭")),
                book::Closing::Closed => Ok(()),
            },
        }
    };
    match outcome {
        Ok(()) => call.ok(vec![("result_msg", "OK".to_owned())]),
        Err((code, des)) => call.err(code, des),
    }
}

/// The reply fields of an accepted refund.
fn refund_fields(refund: &Refund) -> Vec<(&'static str, String)> {
    vec![
        ("transaction_id", refund.transaction_id.clone()),
        ("out_trade_no", refund.out_trade_no.clone()),
        ("out_refund_no", refund.out_refund_no.clone()),
        ("refund_id", refund.refund_id.clone()),
        ("refund_fee", refund.refund_fee.to_string()),
        ("total_fee", refund.total_fee.to_string()),
        ("fee_type", "CNY".to_owned()),
        ("cash_fee", refund.total_fee.to_string()),
        ("cash_refund_fee", refund.refund_fee.to_string()),
        ("coupon_refund_fee", "0".to_owned()),
        ("coupon_refund_count", "0".to_owned()),
    ]
}

/// `POST /secapi/pay/refund` (needs the merchant certificate when the merchant has `client_ca`).
pub(super) async fn refund(State(sim): State<Arc<Sim>>, req: Request) -> Response {
    let call = match authenticate(&sim, req, Cert::Required).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if call.get("transaction_id").is_empty() && call.get("out_trade_no").is_empty() {
        return call.err("LACK_PARAMS", "缺少参数transaction_id或out_trade_no");
    }
    for name in ["out_refund_no", "total_fee", "refund_fee"] {
        if call.get(name).is_empty() {
            return call.err("LACK_PARAMS", &format!("缺少参数{name}"));
        }
    }
    let out_refund_no = call.get("out_refund_no");
    if !valid_merchant_no(out_refund_no, 64) {
        return call.err(
            "PARAM_ERROR",
            "out_refund_no参数格式错误，只能是数字、大小写字母_-|*@，且不超过64位",
        );
    }
    let Some(total_fee) = positive_int(call.get("total_fee")) else {
        return fail("invalid total_fee");
    };
    let Some(refund_fee) = positive_int(call.get("refund_fee")) else {
        return fail("invalid refund_fee");
    };
    if refund_fee > total_fee {
        return fail("invalid refund_fee");
    }
    let notify_url = match call.get("notify_url") {
        "" => call.merchant.refund_notify_url.clone(),
        url => {
            if let Err(des) = valid_notify_url(url) {
                return call.err("PARAM_ERROR", des);
            }
            url.to_owned()
        }
    };
    let refund_account = match call.get("refund_account") {
        "" => "REFUND_SOURCE_UNSETTLED_FUNDS",
        a @ ("REFUND_SOURCE_UNSETTLED_FUNDS" | "REFUND_SOURCE_RECHARGE_FUNDS") => a,
        _ => return call.err("PARAM_ERROR", "refund_account参数错误"),
    };

    let now = sim.clock.now_secs();
    let mch_id = call.merchant.mch_id.clone();
    let outcome: Result<(Refund, bool), (&str, &str)> = {
        let mut guard = sim.pay.book();
        let book = &mut *guard;
        let by_transaction = !call.get("transaction_id").is_empty();
        match find_order(book, &call).map(|o| (o.mch_id.clone(), o.out_trade_no.clone())) {
            None if by_transaction => Err(("INVALID_TRANSACTIONID", "无效transaction_id")),
            None => Err(("ORDERNOTEXIST", "订单不存在")),
            Some(key) => {
                let refund_key = (mch_id.clone(), out_refund_no.to_owned());
                match (book.refunds.get(&refund_key), book.orders.get_mut(&key)) {
                    (_, None) => Err(("ORDERNOTEXIST", "订单不存在")),
                    (Some(existing), Some(_)) if existing.out_trade_no != key.1 => {
                        Err(("PARAM_ERROR", "out_refund_no已用于其他订单"))
                    }
                    (Some(existing), Some(_)) => {
                        if existing.refund_fee == refund_fee && existing.total_fee == total_fee {
                            Ok((existing.clone(), false))
                        } else {
                            Err((
                                "REFUND_FEE_MISMATCH",
                                "订单金额或退款金额与之前请求不一致，请核实后再试",
                            ))
                        }
                    }
                    (None, Some(order)) => {
                        if order.paid_at().is_none() {
                            Err(("ERROR", "订单状态错误，订单未支付"))
                        } else if total_fee != order.total_fee {
                            Err((
                                "REFUND_FEE_MISMATCH",
                                "订单金额或退款金额与之前请求不一致，请核实后再试",
                            ))
                        } else if order.refunded_fee >= order.total_fee {
                            Err(("ERROR", "订单已全额退款"))
                        } else if refund_fee > order.total_fee - order.refunded_fee {
                            Err(("INVALID_REQUEST", "refund_fee大于可退金额"))
                        } else {
                            let refund = Refund {
                                api: book::Api::V2,
                                succeeded: Some(now),
                                mch_id: mch_id.clone(),
                                appid: order.appid.clone(),
                                out_trade_no: order.out_trade_no.clone(),
                                transaction_id: order.transaction_id.clone(),
                                out_refund_no: out_refund_no.to_owned(),
                                refund_id: book::new_refund_id(now),
                                total_fee,
                                refund_fee,
                                refund_account: refund_account.to_owned(),
                                refund_desc: call.get("refund_desc").to_owned(),
                                notify_url: notify_url.clone(),
                                created: now,
                                deliveries: book::Deliveries::default(),
                            };
                            book.add_refund(&key, refund.clone());
                            Ok((refund, true))
                        }
                    }
                }
            }
        }
    };
    match outcome {
        Err((code, des)) => call.err(code, des),
        Ok((refund, created)) => {
            if created && !refund.notify_url.is_empty() {
                let delivery = notify::refund_delivery(call.merchant, &refund);
                notify::spawn(&sim, delivery, call.merchant.notify_retry_scale);
            }
            call.ok(refund_fields(&refund))
        }
    }
}

/// `POST /pay/refundquery`.
pub(super) async fn refundquery(State(sim): State<Arc<Sim>>, req: Request) -> Response {
    let call = match authenticate(&sim, req, Cert::NotNeeded).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let offset = match call.get("offset") {
        "" => None,
        s => match s.parse::<usize>() {
            Ok(n) => Some(n),
            Err(_) => return call.err("PARAM_ERROR", "offset参数格式错误"),
        },
    };
    let mch_id = call.merchant.mch_id.clone();
    let extra = {
        let book = sim.pay.book();
        let single = if !call.get("refund_id").is_empty() {
            Some(
                book.by_refund_id
                    .get(call.get("refund_id"))
                    .and_then(|k| book.refunds.get(k)),
            )
        } else if !call.get("out_refund_no").is_empty() {
            Some(
                book.refunds
                    .get(&(mch_id.clone(), call.get("out_refund_no").to_owned())),
            )
        } else {
            None
        };
        let (order, refunds): (Option<&Order>, Vec<&Refund>) = match single {
            Some(r) => {
                let r = r.filter(|r| r.mch_id == mch_id && r.appid == call.appid());
                (
                    r.and_then(|r| book.orders.get(&(r.mch_id.clone(), r.out_trade_no.clone()))),
                    r.into_iter().collect(),
                )
            }
            None if call.get("transaction_id").is_empty()
                && call.get("out_trade_no").is_empty() =>
            {
                drop(book);
                return call.err(
                    "LACK_PARAMS",
                    "缺少参数refund_id、out_refund_no、transaction_id或out_trade_no",
                );
            }
            None => {
                let order = find_order(&book, &call);
                (
                    order,
                    order
                        .map(|o| book.refunds_of(o).collect())
                        .unwrap_or_default(),
                )
            }
        };
        let total = refunds.len();
        let start = offset.unwrap_or(0);
        let page: Vec<&Refund> = refunds.into_iter().skip(start).take(10).collect();
        let Some(order) = order.filter(|_| !page.is_empty()) else {
            drop(book);
            return call.err("REFUNDNOTEXIST", "退款订单查询失败");
        };
        let mut extra: Vec<(String, String)> = vec![
            ("transaction_id".into(), order.transaction_id.clone()),
            ("out_trade_no".into(), order.out_trade_no.clone()),
            ("total_fee".into(), order.total_fee.to_string()),
            ("cash_fee".into(), order.total_fee.to_string()),
            ("fee_type".into(), order.fee_type.clone()),
            (
                "refund_fee".into(),
                page.iter().map(|r| r.refund_fee).sum::<u64>().to_string(),
            ),
            ("refund_count".into(), page.len().to_string()),
        ];
        if offset.is_some() {
            extra.push(("total_refund_count".into(), total.to_string()));
        }
        for (n, r) in page.iter().enumerate() {
            extra.extend([
                (format!("out_refund_no_{n}"), r.out_refund_no.clone()),
                (format!("refund_id_{n}"), r.refund_id.clone()),
                (format!("refund_channel_{n}"), "ORIGINAL".to_owned()),
                (format!("refund_fee_{n}"), r.refund_fee.to_string()),
                (format!("refund_status_{n}"), "SUCCESS".to_owned()),
                (format!("refund_account_{n}"), r.refund_account.clone()),
                (
                    format!("refund_recv_accout_{n}"),
                    "支付用户的零钱".to_owned(),
                ),
                (
                    format!("refund_success_time_{n}"),
                    book::beijing(r.created, true),
                ),
            ]);
        }
        extra
    };
    call.ok(extra.iter().map(|(k, v)| (k.as_str(), v.clone())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_positive_integers() {
        assert_eq!(positive_int("1"), Some(1));
        assert_eq!(positive_int("0100"), Some(100));
        for bad in [
            "",
            "0",
            "-1",
            "1.5",
            "+1",
            " 1",
            "1e3",
            "99999999999999999999999",
        ] {
            assert_eq!(positive_int(bad), None, "{bad}");
        }
    }

    #[test]
    fn merchant_numbers() {
        assert!(valid_merchant_no("T-1_a|b*c@d", 32));
        assert!(!valid_merchant_no("", 32));
        assert!(!valid_merchant_no("a b", 32));
        assert!(!valid_merchant_no(&"x".repeat(33), 32));
        assert!(valid_merchant_no(&"x".repeat(64), 64));
    }

    #[test]
    fn notify_urls() {
        assert!(valid_notify_url("http://127.0.0.1:3000/wechat/pay/notify").is_ok());
        assert!(valid_notify_url("https://shop.example/notify").is_ok());
        assert!(valid_notify_url("https://shop.example/notify?a=1").is_err());
        assert!(valid_notify_url("/notify").is_err());
        assert!(valid_notify_url("ftp://x/notify").is_err());
    }
}
