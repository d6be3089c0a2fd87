//! Injected faults (`POST /_sim/fail`): which faults a path can get, how often, and how the
//! middleware applies the one a request takes.
//!
//! A fault is registered for a path (exact, or a prefix when it ends in `*`) and answers the
//! next `times` matching calls, or each matching call with a probability (seedable). Some
//! faults are answered by the middleware alone (an errcode, a bare HTTP status, a delay, a
//! dropped connection, a malformed or re-signed v2 body); the others are handed to the handler
//! in the request's extensions because only it knows the merchant whose key signs the answer
//! (a v2 `err_code`, every signed v3 fault).

use std::cmp::Reverse;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{Value, json};

use crate::pay::v3::V3Fault;
use crate::pay::v3::auth::V3Error;
use crate::reply::{Params, WxError, errmsg};
use crate::serve::Connection;

/// The most calls one `POST /_sim/fail` may queue a fault for.
const MAX_TIMES: u32 = 100_000;

/// The longest `delay_ms`.
const MAX_DELAY_MS: u64 = 60_000;

/// Answers are read whole to be altered; the simulator's are a few KiB.
const MAX_ANSWER: usize = 1024 * 1024;

/// What a malformed JSON answer is when the genuine one is too short to cut.
pub(crate) const JSON_FRAGMENT: &str = r#"{"code":"SYSTEM_ERR"#;

/// What a malformed XML answer is when the genuine one is too short to cut.
pub(crate) const XML_FRAGMENT: &str = "<xml><return_code><![CDATA[SUCC";

/// The WeChat host a path belongs to, which decides the faults it can get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Area {
    /// `api.weixin.qq.com`: `/cgi-bin/…`, `/sns/…` (JSON with `errcode`, unsigned).
    Weixin,
    /// WeChat Pay v2: `/pay/…`, `/secapi/…` (XML, `return_code`/`result_code`, MD5/HMAC sign).
    PayV2,
    /// WeChat Pay v3: `/v3/…` (JSON, RSA-signed answers).
    PayV3,
}

impl Area {
    /// The area of a request path (or path prefix).
    pub(crate) fn of(path: &str) -> Option<Self> {
        if path.starts_with("/cgi-bin/") || path.starts_with("/sns/") {
            Some(Self::Weixin)
        } else if path.starts_with("/pay/") || path.starts_with("/secapi/") {
            Some(Self::PayV2)
        } else if path.starts_with("/v3/") {
            Some(Self::PayV3)
        } else {
            None
        }
    }
}

/// One injected fault.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fault {
    /// `errcode`: an `api.weixin.qq.com` JSON error.
    Errcode(WxError),
    /// `err_code`: a v2 business failure (`result_code` `FAIL`), signed by the handler.
    ErrCode {
        /// e.g. `SYSTEMERROR`.
        err_code: String,
        /// Its description.
        err_code_des: String,
    },
    /// `return_code=FAIL`: a v2 communication failure, unsigned.
    ReturnFail {
        /// The `return_msg`.
        return_msg: String,
    },
    /// `status` without `code`: a bare HTTP status with a gateway's page.
    Status(StatusCode),
    /// `status` with `code` on a v3 path: a signed v3 JSON error.
    V3Error(V3Error),
    /// `fault=delay`: the genuine answer, this much later.
    Delay(Duration),
    /// `fault=drop`: the connection is closed without an answer.
    Drop,
    /// `fault=malformed`: a 200 whose body (of the endpoint's content type) does not parse.
    Malformed,
    /// `fault=bad_signature`: the genuine answer with a signature that does not verify.
    BadSignature,
    /// `fault=unsigned`: the genuine answer without its signature.
    Unsigned,
}

impl Fault {
    /// The kind, as `/_sim/stats` counts it: the query parameter that chose it (`errcode`,
    /// `err_code`, `return_code`, `status`) or the value of `fault`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Errcode(_) => "errcode",
            Self::ErrCode { .. } => "err_code",
            Self::ReturnFail { .. } => "return_code",
            Self::Status(_) | Self::V3Error(_) => "status",
            Self::Delay(_) => "delay",
            Self::Drop => "drop",
            Self::Malformed => "malformed",
            Self::BadSignature => "bad_signature",
            Self::Unsigned => "unsigned",
        }
    }

    /// The fault as `GET /_sim/fail` lists it: `{"kind", …its parameters}`.
    fn describe(&self) -> Value {
        let mut out = json!({ "kind": self.kind() });
        let details = match self {
            Self::Errcode(e) => json!({ "errcode": e.code, "errmsg": e.msg }),
            Self::ErrCode {
                err_code,
                err_code_des,
            } => json!({ "err_code": err_code, "err_code_des": err_code_des }),
            Self::ReturnFail { return_msg } => {
                json!({ "return_code": "FAIL", "return_msg": return_msg })
            }
            Self::Status(status) => json!({ "status": status.as_u16() }),
            Self::V3Error(e) => {
                json!({ "status": e.status.as_u16(), "code": e.code, "message": e.message })
            }
            Self::Delay(d) => json!({ "delay_ms": d.as_millis() }),
            Self::Drop | Self::Malformed | Self::BadSignature | Self::Unsigned => json!({}),
        };
        if let (Some(out), Value::Object(details)) = (out.as_object_mut(), details) {
            out.extend(details);
        }
        out
    }
}

/// How often a registered fault answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Frequency {
    /// The next `n` matching calls.
    Times(u32),
    /// Each matching call with this probability, until cleared; seeded when `seed` is given.
    Probability {
        /// Between 0 and 1.
        probability: f64,
        /// The seed of the draws, for reproducible runs.
        seed: Option<u64>,
    },
}

/// A parsed `POST /_sim/fail`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FaultRequest {
    /// The path as given: exact, or a prefix when it ends in `*`.
    pub(crate) path: String,
    /// What to inject.
    pub(crate) fault: Fault,
    /// How often.
    pub(crate) frequency: Frequency,
}

/// The parameters that choose the fault: exactly one per request.
const SELECTORS: [&str; 5] = ["errcode", "err_code", "return_code", "status", "fault"];

/// Parameters every request may carry.
const COMMON: [&str; 4] = ["path", "times", "probability", "seed"];

/// The message for a path outside every area.
const PATH_HELP: &str = "path must be an api.weixin.qq.com path (/cgi-bin/…, /sns/…), a WeChat Pay v2 path \
     (/pay/…, /secapi/…) or a WeChat Pay v3 path (/v3/…); a trailing * makes it a prefix";

impl FaultRequest {
    /// Reads and checks the query of `POST /_sim/fail`; the error says what is wrong.
    pub(crate) fn parse(p: &Params) -> Result<Self, String> {
        let path = p.get("path").ok_or(PATH_HELP)?;
        if path.contains('?') {
            return Err("path is matched without its query: drop the ?…".into());
        }
        let prefix = path.strip_suffix('*').unwrap_or(path);
        if prefix.contains('*') {
            return Err("* is only allowed at the end of path (a prefix match)".into());
        }
        let area = Area::of(prefix).ok_or(PATH_HELP)?;
        let chosen: Vec<&str> = SELECTORS
            .into_iter()
            .filter(|s| p.get(s).is_some())
            .collect();
        let [selector] = chosen.as_slice() else {
            return Err(
                "give exactly one of errcode, err_code, return_code, status or fault".into(),
            );
        };
        let (fault, extra) = parse_fault(p, selector, area)?;
        if let Some(unknown) = p
            .names()
            .find(|n| !COMMON.contains(n) && *n != *selector && !extra.contains(n))
        {
            return Err(format!(
                "parameter {unknown} does not go with {selector} (see the README's fault table)"
            ));
        }
        let frequency = parse_frequency(p)?;
        Ok(Self {
            path: path.to_owned(),
            fault,
            frequency,
        })
    }
}

/// The fault `selector` chooses, with the other parameters it takes.
fn parse_fault(
    p: &Params,
    selector: &str,
    area: Area,
) -> Result<(Fault, &'static [&'static str]), String> {
    let only = |wanted: Area, what: &str| {
        if area == wanted {
            Ok(())
        } else {
            Err(format!("{selector} is only for {what}"))
        }
    };
    match selector {
        "errcode" => {
            only(Area::Weixin, "api.weixin.qq.com paths (/cgi-bin/…, /sns/…)")?;
            let code = p
                .get("errcode")
                .and_then(|c| c.parse::<i64>().ok())
                .filter(|c| *c != 0)
                .ok_or("errcode must be a non-zero integer, e.g. -1 or 45009")?;
            let msg = p.get("errmsg").unwrap_or(errmsg(code));
            Ok((Fault::Errcode(WxError::with_msg(code, msg)), &["errmsg"]))
        }
        "err_code" => {
            only(Area::PayV2, "WeChat Pay v2 paths (/pay/…, /secapi/…)")?;
            let err_code = p.get("err_code").unwrap_or_default();
            if err_code.len() > 32
                || !err_code
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err("err_code must be a v2 error code, e.g. SYSTEMERROR".into());
            }
            let err_code_des = p
                .get("err_code_des")
                .unwrap_or(err_code_des(err_code))
                .to_owned();
            let fault = Fault::ErrCode {
                err_code: err_code.to_owned(),
                err_code_des,
            };
            Ok((fault, &["err_code_des"]))
        }
        "return_code" => {
            only(Area::PayV2, "WeChat Pay v2 paths (/pay/…, /secapi/…)")?;
            if p.get("return_code") != Some("FAIL") {
                return Err("return_code must be FAIL (a communication failure)".into());
            }
            let return_msg = p.get("return_msg").unwrap_or("系统繁忙，请稍后再试");
            let fault = Fault::ReturnFail {
                return_msg: return_msg.to_owned(),
            };
            Ok((fault, &["return_msg"]))
        }
        "status" => {
            let status = p
                .get("status")
                .and_then(|s| s.parse::<u16>().ok())
                .filter(|s| (400..=599).contains(s))
                .and_then(|s| StatusCode::from_u16(s).ok())
                .ok_or("status must be an HTTP error status (400-599), e.g. 500")?;
            match (p.get("code"), p.get("message")) {
                (None, None) => Ok((Fault::Status(status), &[])),
                (None, Some(_)) => Err("message goes with code (a v3 error)".into()),
                (Some(code), message) => {
                    only(
                        Area::PayV3,
                        "bare statuses here; code and message are for v3 paths (/v3/…)",
                    )?;
                    let message = message.unwrap_or("系统错误");
                    let error = V3Error::new(status, code, message);
                    Ok((Fault::V3Error(error), &["code", "message"]))
                }
            }
        }
        _ => {
            let fault = match p.get("fault").unwrap_or_default() {
                "delay" => {
                    let ms = p
                        .get("delay_ms")
                        .and_then(|d| d.parse::<u64>().ok())
                        .filter(|d| *d <= MAX_DELAY_MS)
                        .ok_or("fault=delay needs delay_ms, 0 to 60000")?;
                    return Ok((Fault::Delay(Duration::from_millis(ms)), &["delay_ms"]));
                }
                "drop" => Fault::Drop,
                "malformed" => Fault::Malformed,
                "bad_signature" => Fault::BadSignature,
                "unsigned" => Fault::Unsigned,
                _ => {
                    return Err(
                        "fault must be delay, drop, malformed, bad_signature or unsigned".into(),
                    );
                }
            };
            if area == Area::Weixin && matches!(fault, Fault::BadSignature | Fault::Unsigned) {
                return Err(
                    "bad_signature and unsigned are for WeChat Pay paths (api.weixin.qq.com answers are not signed)"
                        .into(),
                );
            }
            Ok((fault, &[]))
        }
    }
}

/// `times` or `probability` (with its optional `seed`).
fn parse_frequency(p: &Params) -> Result<Frequency, String> {
    match (p.get("times"), p.get("probability")) {
        (Some(_), Some(_)) => Err("give times or probability, not both".into()),
        (times, None) => {
            if p.get("seed").is_some() {
                return Err("seed goes with probability".into());
            }
            match times.map(str::parse::<u32>) {
                None => Ok(Frequency::Times(1)),
                Some(Ok(n)) if (1..=MAX_TIMES).contains(&n) => Ok(Frequency::Times(n)),
                Some(_) => Err("times must be between 1 and 100000".into()),
            }
        }
        (None, Some(probability)) => {
            let probability = probability
                .parse::<f64>()
                .ok()
                .filter(|x| (0.0..=1.0).contains(x))
                .ok_or("probability must be a number from 0 to 1, e.g. 0.25")?;
            let seed = p
                .get("seed")
                .map(|s| {
                    s.parse::<u64>()
                        .map_err(|_| "seed must be an unsigned integer")
                })
                .transpose()?;
            Ok(Frequency::Probability { probability, seed })
        }
    }
}

/// WeChat's `err_code_des` for the codes tests inject most.
fn err_code_des(err_code: &str) -> &'static str {
    match err_code {
        "SYSTEMERROR" => "系统超时，请稍后再试",
        "BIZERR_NEED_RETRY" => "退款业务流程错误，需要商户触发重试来解决",
        "FREQUENCY_LIMITED" => "请求频率过高，请降低频率后重试",
        "INVALID_REQ_TOO_MUCH" => "无效请求过多，请一分钟后再试",
        "NOTENOUGH" => "余额不足",
        _ => "系统繁忙，请稍后再试",
    }
}

/// A fault drawn at random for each matching call.
#[derive(Debug)]
struct Random {
    probability: f64,
    seed: Option<u64>,
    rng: StdRng,
    fault: Fault,
}

/// What is registered for one path (or prefix).
#[derive(Debug, Default)]
struct Rule {
    /// Queued faults, oldest first, each with the number of calls it still answers.
    queue: VecDeque<(Fault, u32)>,
    /// The random fault, if any.
    random: Option<Random>,
}

impl Rule {
    fn queued(&self) -> u64 {
        self.queue.iter().map(|(_, n)| u64::from(*n)).sum()
    }

    fn pop(&mut self) -> Option<Fault> {
        let (fault, left) = self.queue.front_mut()?;
        let fault = fault.clone();
        *left -= 1;
        if *left == 0 {
            self.queue.pop_front();
        }
        Some(fault)
    }
}

/// Whether `pattern` (a path, or a prefix ending in `*`) matches `path`.
fn matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

/// Every registered fault, by path as given.
#[derive(Debug, Default)]
pub(crate) struct Faults(BTreeMap<String, Rule>);

impl Faults {
    /// Registers a fault; answers `{"path", "queued"[, "probability"]}` for the control route.
    pub(crate) fn add(&mut self, request: FaultRequest) -> Value {
        let rule = self.0.entry(request.path.clone()).or_default();
        match request.frequency {
            Frequency::Times(n) => match rule.queue.back_mut() {
                Some((last, left)) if *last == request.fault => {
                    *left = left.saturating_add(n);
                }
                _ => rule.queue.push_back((request.fault, n)),
            },
            Frequency::Probability { probability, seed } => {
                let rng = match seed {
                    Some(seed) => StdRng::seed_from_u64(seed),
                    None => StdRng::from_rng(&mut rand::rng()),
                };
                rule.random = Some(Random {
                    probability,
                    seed,
                    rng,
                    fault: request.fault,
                });
            }
        }
        let mut answer = json!({ "path": request.path, "queued": rule.queued() });
        if let Some(random) = &rule.random {
            answer["probability"] = json!(random.probability);
        }
        answer
    }

    /// The fault for a call to `path`, if any: the oldest queued one of the most specific
    /// matching rule that has one (the exact path, then the longest prefix); else a draw of the
    /// most specific matching random fault.
    pub(crate) fn take(&mut self, path: &str) -> Option<Fault> {
        let mut keys: Vec<String> = self
            .0
            .keys()
            .filter(|k| matches(k, path))
            .cloned()
            .collect();
        if keys.is_empty() {
            return None;
        }
        keys.sort_by_key(|k| (k.ends_with('*'), Reverse(k.len())));
        for key in &keys {
            let Some(rule) = self.0.get_mut(key) else {
                continue;
            };
            if let Some(fault) = rule.pop() {
                if rule.queue.is_empty() && rule.random.is_none() {
                    self.0.remove(key);
                }
                return Some(fault);
            }
        }
        let key = keys
            .iter()
            .find(|k| self.0.get(*k).is_some_and(|r| r.random.is_some()))?;
        let random = self.0.get_mut(key)?.random.as_mut()?;
        let hit = random.rng.random_bool(random.probability);
        hit.then(|| random.fault.clone())
    }

    /// Removes the faults of `path` (as registered, `*` included), or all of them; answers how
    /// many paths were cleared.
    pub(crate) fn clear(&mut self, path: Option<&str>) -> usize {
        match path {
            Some(path) => usize::from(self.0.remove(path).is_some()),
            None => {
                let n = self.0.len();
                self.0.clear();
                n
            }
        }
    }

    /// `GET /_sim/fail`: every registered fault.
    pub(crate) fn list(&self) -> Value {
        let faults: Vec<Value> = self
            .0
            .iter()
            .map(|(path, rule)| {
                let queue: Vec<Value> = rule
                    .queue
                    .iter()
                    .map(|(fault, left)| json!({ "times": left, "fault": fault.describe() }))
                    .collect();
                let random = rule.random.as_ref().map(|r| {
                    json!({
                        "probability": r.probability,
                        "seed": r.seed,
                        "fault": r.fault.describe(),
                    })
                });
                json!({
                    "path": path,
                    "match": if path.ends_with('*') { "prefix" } else { "exact" },
                    "queued": rule.queued(),
                    "queue": queue,
                    "random": random,
                })
            })
            .collect();
        json!({ "faults": faults })
    }
}

/// Answers `request` with `fault` applied (the fault was taken for its path).
pub(crate) async fn apply(fault: Fault, mut request: Request, next: Next) -> Response {
    let area = Area::of(request.uri().path());
    match fault {
        Fault::Errcode(e) => e.into_response(),
        Fault::ReturnFail { return_msg } => crate::pay::fault::return_fail(&return_msg),
        Fault::Status(status) => gateway(status),
        Fault::Delay(delay) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
        Fault::Drop => match request.extensions().get::<Connection>().cloned() {
            Some(connection) => connection.drop_now().await,
            None => {
                tracing::warn!("fault=drop on a request without a connection; answering 502");
                gateway(StatusCode::BAD_GATEWAY)
            }
        },
        Fault::ErrCode {
            err_code,
            err_code_des,
        } => {
            request
                .extensions_mut()
                .insert(crate::pay::fault::BusinessFault {
                    err_code,
                    err_code_des,
                });
            next.run(request).await
        }
        Fault::V3Error(e) => {
            request.extensions_mut().insert(V3Fault::Error(e));
            next.run(request).await
        }
        fault @ (Fault::Malformed | Fault::BadSignature | Fault::Unsigned)
            if area == Some(Area::PayV3) =>
        {
            let v3 = match fault {
                Fault::Malformed => V3Fault::Malformed,
                Fault::BadSignature => V3Fault::BadSignature,
                _ => V3Fault::Unsigned,
            };
            request.extensions_mut().insert(v3);
            next.run(request).await
        }
        Fault::Malformed => malformed(next.run(request).await).await,
        Fault::BadSignature => crate::pay::fault::resign(next.run(request).await, false).await,
        Fault::Unsigned => crate::pay::fault::resign(next.run(request).await, true).await,
    }
}

/// A bare status with the short HTML page of WeChat's gateway (nginx).
fn gateway(status: StatusCode) -> Response {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    let page = format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    );
    (status, [(CONTENT_TYPE, "text/html")], page).into_response()
}

/// The first half of `body`, cut on a character boundary: no JSON or XML parser accepts a
/// proper prefix of an object or a document. `fallback` when the body is too short to cut.
pub(crate) fn truncated(body: &[u8], fallback: &str) -> Vec<u8> {
    let half = body.len() / 2;
    let cut = match std::str::from_utf8(body) {
        Ok(text) => (0..=half)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0),
        Err(_) => half,
    };
    if cut == 0 {
        fallback.as_bytes().to_vec()
    } else {
        body[..cut].to_vec()
    }
}

/// `response` as a 200 of the same content type whose body is cut in half.
async fn malformed(response: Response) -> Response {
    let content_type = response.headers().get(CONTENT_TYPE).cloned();
    let body = axum::body::to_bytes(response.into_body(), MAX_ANSWER)
        .await
        .unwrap_or_default();
    let is_xml = content_type
        .as_ref()
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| c.contains("xml"));
    let fallback = if is_xml { XML_FRAGMENT } else { JSON_FRAGMENT };
    let mut answer = (StatusCode::OK, truncated(&body, fallback)).into_response();
    if let Some(content_type) = content_type {
        answer.headers_mut().insert(CONTENT_TYPE, content_type);
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> Result<FaultRequest, String> {
        FaultRequest::parse(&Params::parse(query))
    }

    #[test]
    fn each_area_takes_its_faults() {
        let ok = [
            "path=/cgi-bin/token&errcode=-1&times=2&errmsg=busy",
            "path=/sns/*&status=503",
            "path=/pay/orderquery&err_code=SYSTEMERROR",
            "path=/secapi/pay/refund&err_code=BIZERR_NEED_RETRY&err_code_des=x",
            "path=/pay/unifiedorder&return_code=FAIL&return_msg=x",
            "path=/pay/*&fault=bad_signature&probability=0.5&seed=3",
            "path=/v3/pay/transactions/jsapi&status=500&code=SYSTEM_ERROR&message=x",
            "path=/v3/*&status=502",
            "path=/v3/x&fault=unsigned",
            "path=/cgi-bin/token&fault=delay&delay_ms=60000",
            "path=/cgi-bin/token&fault=drop",
            "path=/v3/x&fault=malformed",
        ];
        for query in ok {
            assert!(parse(query).is_ok(), "{query}: {:?}", parse(query));
        }
        let bad = [
            "errcode=-1",
            "path=/connect/oauth2/authorize&errcode=-1",
            "path=/_sim/stats&status=500",
            "path=/cgi-bin/*/x&errcode=-1",
            "path=/cgi-bin/token?x=1&errcode=-1",
            "path=/cgi-bin/token",
            "path=/cgi-bin/token&errcode=-1&status=500",
            "path=/cgi-bin/token&errcode=0",
            "path=/cgi-bin/token&err_code=SYSTEMERROR",
            "path=/pay/orderquery&errcode=-1",
            "path=/pay/orderquery&err_code=lowercase",
            "path=/pay/orderquery&return_code=SUCCESS",
            "path=/cgi-bin/token&fault=bad_signature",
            "path=/cgi-bin/token&status=500&code=SYSTEM_ERROR",
            "path=/v3/x&status=500&message=x",
            "path=/v3/x&status=200&code=X",
            "path=/v3/x&fault=other",
            "path=/v3/x&fault=delay",
            "path=/v3/x&fault=delay&delay_ms=60001",
            "path=/v3/x&fault=drop&delay_ms=5",
            "path=/cgi-bin/token&errcode=-1&message=x",
            "path=/cgi-bin/token&errcode=-1&times=2&probability=0.5",
            "path=/cgi-bin/token&errcode=-1&seed=1",
            "path=/cgi-bin/token&errcode=-1&probability=1.5",
            "path=/cgi-bin/token&errcode=-1&times=0",
            "path=/cgi-bin/token&errcode=-1&surprise=1",
        ];
        for query in bad {
            assert!(parse(query).is_err(), "{query} should be refused");
        }
    }

    #[test]
    fn queued_faults_go_exact_first_then_longest_prefix() {
        let mut faults = Faults::default();
        for query in [
            "path=/v3/*&status=502",
            "path=/v3/pay/*&status=503&times=2",
            "path=/v3/pay/transactions/jsapi&fault=drop",
        ] {
            faults.add(parse(query).expect("valid"));
        }
        let next = |f: &mut Faults| f.take("/v3/pay/transactions/jsapi").map(|f| f.describe());
        assert_eq!(next(&mut faults), Some(json!({ "kind": "drop" })));
        let status = |s: u16| Some(json!({ "kind": "status", "status": s }));
        assert_eq!(next(&mut faults), status(503));
        assert_eq!(next(&mut faults), status(503));
        assert_eq!(next(&mut faults), status(502));
        assert_eq!(next(&mut faults), None);
        assert_eq!(faults.take("/cgi-bin/token"), None);
        assert_eq!(faults.list(), json!({ "faults": [] }));
    }

    #[test]
    fn identical_faults_are_counted_not_copied() {
        let mut faults = Faults::default();
        let query = "path=/cgi-bin/token&errcode=-1&times=100000";
        faults.add(parse(query).expect("valid"));
        let answer = faults.add(parse(query).expect("valid"));
        assert_eq!(
            answer,
            json!({ "path": "/cgi-bin/token", "queued": 200_000 })
        );
        assert_eq!(faults.list()["faults"][0]["queue"][0]["times"], 200_000);
        assert_eq!(faults.clear(Some("/cgi-bin/token")), 1);
        assert_eq!(faults.take("/cgi-bin/token"), None);
    }

    #[test]
    fn random_faults_are_reproducible_with_a_seed() {
        let draws = || {
            let mut faults = Faults::default();
            faults.add(parse("path=/sns/*&status=500&probability=0.5&seed=42").expect("valid"));
            (0..64)
                .map(|_| faults.take("/sns/userinfo").is_some())
                .collect::<Vec<_>>()
        };
        let first = draws();
        assert_eq!(first, draws());
        let hits = first.iter().filter(|hit| **hit).count();
        assert!((8..56).contains(&hits), "{hits} of 64 at p = 0.5");
        let mut never = Faults::default();
        never.add(parse("path=/sns/*&status=500&probability=0").expect("valid"));
        assert!((0..100).all(|_| never.take("/sns/auth").is_none()));
        assert_eq!(never.clear(None), 1);
    }

    #[test]
    fn truncation_never_parses() {
        let json = r#"{"errmsg":"中文中文中文中文中文中文"}"#;
        let cut = truncated(json.as_bytes(), JSON_FRAGMENT);
        assert!(std::str::from_utf8(&cut).is_ok(), "cut on a char boundary");
        assert!(serde_json::from_slice::<Value>(&cut).is_err());
        assert_eq!(truncated(b"{", JSON_FRAGMENT), JSON_FRAGMENT.as_bytes());
        assert!(serde_json::from_str::<Value>(JSON_FRAGMENT).is_err());
    }
}
