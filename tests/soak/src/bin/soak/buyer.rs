//! One simulated buyer: log in, load the shop page, order, pay through the pay sheet, poll,
//! sometimes ask for a refund; and the back office that issues the refund through the library.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wechat_core::PayError;

use demo_shop::CALLBACK_PATH;
use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};
use wechat_core::OutTradeNo;
use wechat_core::pay::{v2, v3};
use wechat_core::routes::PayApi;
use wechat_soak::rng::Rng;
use wechat_soak::world;
use wechat_test_support::{Answer, BrowseError, Browser, ConsentPage, Visit, WECHAT_USER_AGENT};

use crate::{Ctx, REQUEST_TIMEOUT, SESSION_COOKIE, STATUS_POLLS};

/// Why a round stopped early.
enum Stop {
    /// The session is gone (401): log in again.
    Login,
    /// This round failed; the buyer goes on with the next one.
    Round,
    /// The run is over.
    End,
}

/// At most `max` order requests in any `per` (the rate limit the library will enforce).
struct Limiter {
    sent: VecDeque<Instant>,
    max: usize,
    per: Duration,
}

impl Limiter {
    fn new(max: usize, per: Duration) -> Self {
        Self {
            sent: VecDeque::new(),
            max: max.max(1),
            per,
        }
    }

    /// Whether a request may be sent now without exceeding the limit (and counts it if so).
    fn try_take(&mut self) -> bool {
        let now = Instant::now();
        while self
            .sent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.per)
        {
            self.sent.pop_front();
        }
        if self.sent.len() < self.max {
            self.sent.push_back(now);
            true
        } else {
            false
        }
    }

    /// Waits for a free slot and takes it; `false` when that would be after `deadline`.
    async fn take(&mut self, deadline: Instant) -> bool {
        loop {
            if self.try_take() {
                return true;
            }
            let Some(oldest) = self.sent.front().copied() else {
                return true;
            };
            let free_at = oldest + self.per;
            if free_at >= deadline {
                return false;
            }
            tokio::time::sleep_until(free_at.into()).await;
        }
    }

    /// Pushes the next slot back to `until` (a 429's `Retry-After`).
    fn block_until(&mut self, until: Instant) {
        self.sent.clear();
        for _ in 0..self.max {
            self.sent.push_back(until - self.per);
        }
    }
}

/// A created order as the page gets it.
struct Created {
    out_trade_no: String,
    params: Value,
}

/// A buyer's state across rounds.
struct Buyer {
    ctx: Arc<Ctx>,
    index: usize,
    openid: String,
    browser: Browser,
    rng: Rng,
    limiter: Limiter,
    /// Order numbers this buyer was given (a number seen again is a reused order).
    mine: BTreeSet<String>,
}

/// Runs buyer `index` until the run's deadline.
pub(crate) async fn run(ctx: Arc<Ctx>, index: usize) {
    // WeChat's in-app browser, a new connection per request (so that the balancer spreads a
    // buyer's requests over every instance).
    let browser = match Browser::builder(WECHAT_USER_AGENT)
        .timeout(REQUEST_TIMEOUT)
        .fresh_connections()
        .build()
    {
        Ok(browser) => browser,
        Err(e) => {
            ctx.errors.add(format!("browser: cannot start ({e})"));
            return;
        }
    };
    let per_minute = ctx.args.orders_per_minute;
    let mut buyer = Buyer {
        openid: world::buyer_openid(index),
        rng: Rng::stream(ctx.args.seed, 1 + index as u64),
        limiter: Limiter::new(per_minute, Duration::from_secs(60)),
        mine: BTreeSet::new(),
        browser,
        index,
        ctx,
    };
    buyer.live().await;
}

impl Buyer {
    async fn live(&mut self) {
        // Buyers arrive over the first two seconds.
        let arrival = self.rng.between(0.0, 2.0);
        tokio::time::sleep(Duration::from_secs_f64(arrival)).await;
        let cycle = 60.0 / self.ctx.args.orders_per_minute.max(1) as f64;
        let mut logged_in = false;
        while self.ctx.running() {
            let round_start = Instant::now();
            if logged_in && self.rng.chance(self.ctx.args.relogin_rate) {
                self.ctx
                    .traffic
                    .add("logins: again, in a new browser session");
                self.browser.clear_cookies();
                logged_in = false;
            }
            if !logged_in {
                logged_in = self.login().await;
                if !logged_in {
                    let wait = self.rng.between(1.0, 3.0);
                    self.pause(wait).await;
                    continue;
                }
            }
            match self.round().await {
                Ok(()) | Err(Stop::Round) => {}
                Err(Stop::Login) => logged_in = false,
                Err(Stop::End) => break,
            }
            // About `cycle` seconds per round on average; the limiter enforces the cap.
            let target = Duration::from_secs_f64(cycle * self.rng.between(0.6, 1.4));
            let spent = round_start.elapsed();
            self.pause((target.saturating_sub(spent)).as_secs_f64().max(0.5))
                .await;
        }
    }

    async fn pause(&self, secs: f64) {
        let until = (Instant::now() + Duration::from_secs_f64(secs)).min(self.ctx.deadline);
        tokio::time::sleep_until(until.into()).await;
    }

    fn url(&self, path: &str) -> Url {
        self.ctx
            .public
            .join(path)
            .unwrap_or_else(|_| self.ctx.public.clone())
    }

    fn sim_url(&self, path: &str) -> Url {
        self.ctx
            .sim
            .join(path)
            .unwrap_or_else(|_| self.ctx.sim.clone())
    }

    /// Logs in through the consent page; up to 3 attempts.
    async fn login(&mut self) -> bool {
        for _ in 0..3 {
            if !self.ctx.running() {
                return false;
            }
            self.ctx.traffic.add("logins: attempts");
            match self.login_once().await {
                Ok(()) => {
                    self.ctx.traffic.add("logins: completed");
                    return true;
                }
                Err(kind) => {
                    self.ctx.errors.add(format!("login: {kind}"));
                    let wait = self.rng.between(0.5, 1.5);
                    self.pause(wait).await;
                }
            }
        }
        false
    }

    async fn login_once(&self) -> Result<(), String> {
        let page = self.shop_page().await.map_err(|e| e.to_string())?;
        if page.status == StatusCode::OK && page.url.path() == "/" {
            return Ok(()); // the session is still valid
        }
        let Some(form) = ConsentPage::read(&page) else {
            return Err(format!(
                "{} at {} instead of WeChat's consent page",
                page.status.as_u16(),
                page.url.path()
            ));
        };
        let done = self
            .browser
            .consent(&form, Some(&self.openid), "allow")
            .try_follow()
            .await
            .map_err(|e| e.to_string())?;
        let callbacks = done
            .redirects
            .iter()
            .map(|(from, _)| from)
            .chain(std::iter::once(&done.url))
            .filter(|u| u.path() == CALLBACK_PATH)
            .count();
        self.ctx
            .traffic
            .add_n("logins: OAuth callbacks reached", callbacks as u64);
        if done.status == StatusCode::OK
            && done.url.path() == "/"
            && self.browser.has_cookie(SESSION_COOKIE)
        {
            if !done.body.contains(&world::buyer_nickname(self.index)) {
                return Err("the shop page shows another user".into());
            }
            return Ok(());
        }
        if done.url.path() == CALLBACK_PATH {
            return Err(format!("{} from the OAuth callback", done.status.as_u16()));
        }
        if ConsentPage::read(&done).is_some() {
            return Err("the code was refused; WeChat's consent page again".into());
        }
        Err(format!("{} at {}", done.status.as_u16(), done.url.path()))
    }

    /// One purchase: page, order, pay sheet, polls, maybe a refund.
    async fn round(&mut self) -> Result<(), Stop> {
        self.page().await?;
        let Some(order) = self.create_order().await? else {
            return Err(Stop::Round);
        };
        if self.rng.chance(self.ctx.args.double_click_rate) && self.limiter.try_take() {
            self.ctx.traffic.add("orders: double clicks");
            if let Some(second) = self.post_order().await? {
                if second.out_trade_no != order.out_trade_no {
                    self.ctx
                        .traffic
                        .add("orders: second orders of a double click (left unpaid)");
                    self.ctx.book().unpaid.push(second.out_trade_no);
                }
            }
        }
        if self.rng.chance(self.ctx.args.abandon_rate) {
            self.ctx.traffic.add("orders: abandoned (not paid)");
            self.ctx.book().unpaid.push(order.out_trade_no);
            return Ok(());
        }
        if !self.pay_sheet(&order).await {
            return Err(Stop::Round);
        }
        if !self.poll(&order.out_trade_no, "paid").await? {
            self.ctx
                .errors
                .add(format!("status: not paid after {STATUS_POLLS} polls"));
            return Err(Stop::Round);
        }
        self.ctx
            .traffic
            .add("orders: paid, as the status route says");
        self.ctx.book().paid.push(order.out_trade_no.clone());
        if self.rng.chance(self.ctx.args.refund_rate) {
            self.refund(&order.out_trade_no).await?;
        }
        Ok(())
    }

    /// Loads the shop page and runs its script's JS-SDK part.
    async fn page(&self) -> Result<(), Stop> {
        let page = self
            .shop_page()
            .await
            .map_err(|e| self.step_error("page", &e))?;
        if page.url.path() != "/" || page.status != StatusCode::OK {
            if ConsentPage::read(&page).is_some() {
                self.ctx.errors.add("page: sent to WeChat's login again");
                return Err(Stop::Login);
            }
            self.ctx.errors.add(format!(
                "page: {} at {}",
                page.status.as_u16(),
                page.url.path()
            ));
            return Err(Stop::Round);
        }
        self.ctx.traffic.add("pages loaded");
        let page_url = self.url("/");
        let config_url = {
            let mut url = self.url("/wechat/jssdk/config");
            url.query_pairs_mut().append_pair("url", page_url.as_str());
            url
        };
        let config = self
            .fetch(Method::GET, &config_url, None)
            .await
            .map_err(|e| self.step_error("jssdk config", &e))?;
        match config.status {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED => {
                self.ctx.errors.add("jssdk config: 401");
                return Err(Stop::Login);
            }
            status => {
                // The page still works without the JS-SDK's extras; pay goes on.
                self.ctx
                    .errors
                    .add(format!("jssdk config: {}", status.as_u16()));
                return Ok(());
            }
        }
        self.ctx.traffic.add("jssdk: configs served");
        let c = &config.json_or_null();
        let verify = json!({
            "appId": c["appId"], "timestamp": c["timestamp"], "nonceStr": c["nonceStr"],
            "signature": c["signature"], "url": page_url.as_str(),
        });
        match self
            .bridge_post(&self.sim_url("/_sim/jssdk/verify"), &verify)
            .await
        {
            Ok(reply) if reply.json_or_null()["ok"] == true => {
                self.ctx.traffic.add("jssdk: signatures accepted by WeChat")
            }
            Ok(reply) => {
                self.ctx.traffic.add("jssdk: signatures refused by WeChat");
                self.ctx.errors.add(format!(
                    "jssdk verify: {}",
                    reply.json_or_null()["errMsg"].as_str().unwrap_or("not ok")
                ));
            }
            Err(e) => {
                let _ = self.step_error("jssdk verify", &e);
            }
        }
        Ok(())
    }

    /// Loads the shop page (`/`), redirects followed.
    async fn shop_page(&self) -> Result<Visit, BrowseError> {
        self.browser.page(self.url("/").as_str()).try_follow().await
    }

    /// A `fetch()` from the app's page to the app itself (same origin): for a body, JSON with
    /// `Origin`.
    async fn fetch(
        &self,
        method: Method,
        url: &Url,
        body: Option<&str>,
    ) -> Result<Answer, BrowseError> {
        let mut request = self.browser.fetch(method, url.as_str()).site("same-origin");
        if let Some(body) = body {
            request = request.origin(&self.ctx.origin).json(body);
        }
        request.try_send().await
    }

    /// What the simulator's JS-SDK script does from the app's page: a cross-origin `POST` of
    /// JSON to the simulator (`/_sim/jssdk/verify`, `/_sim/pay/check`, `/_sim/pay/confirm`),
    /// without credentials (no cookies).
    async fn bridge_post(&self, url: &Url, body: &Value) -> Result<Answer, BrowseError> {
        self.browser
            .fetch(Method::POST, url.as_str())
            .site("same-site")
            .origin(&self.ctx.origin)
            .json(&body.to_string())
            .without_cookies()
            .try_send()
            .await
    }

    fn step_error(&self, step: &str, error: &BrowseError) -> Stop {
        self.ctx.errors.add(format!("{step}: {error}"));
        Stop::Round
    }

    /// Creates an order: up to 3 attempts, honouring 429s; `None` when it could not be made.
    async fn create_order(&mut self) -> Result<Option<Created>, Stop> {
        for _ in 0..3 {
            if !self.limiter.take(self.ctx.deadline).await {
                return Err(Stop::End);
            }
            if let Some(created) = self.post_order().await? {
                return Ok(Some(created));
            }
            if !self.ctx.running() {
                return Err(Stop::End);
            }
        }
        Ok(None)
    }

    /// One `POST /wechat/pay/orders`; `None` when it failed (counted).
    async fn post_order(&mut self) -> Result<Option<Created>, Stop> {
        self.ctx.traffic.add("orders: requests");
        let reply = self
            .fetch(Method::POST, &self.url("/wechat/pay/orders"), Some("{}"))
            .await;
        let reply = match reply {
            Ok(reply) => reply,
            Err(e) => {
                self.ctx.errors.add(format!("order: {e}"));
                self.pause(1.0).await;
                return Ok(None);
            }
        };
        match reply.status {
            StatusCode::OK => {}
            StatusCode::TOO_MANY_REQUESTS => {
                self.ctx.traffic.add("orders: 429 (rate limited)");
                let wait = reply.retry_after().unwrap_or(60).min(120);
                self.limiter
                    .block_until(Instant::now() + Duration::from_secs(wait));
                return Ok(None);
            }
            StatusCode::UNAUTHORIZED => {
                self.ctx.errors.add("order: 401");
                return Err(Stop::Login);
            }
            status => {
                self.ctx.errors.add(format!("order: {}", status.as_u16()));
                let wait = self.rng.between(0.5, 1.5);
                self.pause(wait).await;
                return Ok(None);
            }
        }
        let json = reply.json_or_null();
        let Some(no) = json["out_trade_no"].as_str().map(str::to_owned) else {
            self.ctx.errors.add("order: 200 without out_trade_no");
            return Ok(None);
        };
        if self.mine.insert(no.clone()) {
            self.ctx.traffic.add("orders: created");
            self.ctx.book().known.insert(no.clone());
        } else {
            self.ctx
                .traffic
                .add("orders: reused (same out_trade_no again)");
        }
        Ok(Some(Created {
            out_trade_no: no,
            params: json["params"].clone(),
        }))
    }

    /// What the pay sheet does: check, then confirm. `true` when WeChat says paid.
    async fn pay_sheet(&self, order: &Created) -> bool {
        let check = self
            .bridge_post(&self.sim_url("/_sim/pay/check"), &order.params)
            .await;
        match check {
            Ok(reply) if reply.json_or_null()["ok"] == true => {}
            Ok(reply) => {
                self.ctx.errors.add(format!(
                    "pay sheet: refused ({})",
                    reply.json_or_null()["err_desc"]
                        .as_str()
                        .unwrap_or("no reason")
                ));
                return false;
            }
            Err(e) => {
                self.ctx.errors.add(format!("pay sheet: {e}"));
                return false;
            }
        }
        let confirm = self
            .bridge_post(&self.sim_url("/_sim/pay/confirm"), &order.params)
            .await;
        match confirm {
            Ok(reply) if reply.json_or_null()["err_msg"] == "get_brand_wcpay_request:ok" => {
                self.ctx.traffic.add("orders: paid on the pay sheet");
                true
            }
            Ok(reply) => {
                self.ctx.errors.add(format!(
                    "pay sheet: confirm failed ({})",
                    reply.json_or_null()["err_desc"]
                        .as_str()
                        .unwrap_or("no reason")
                ));
                false
            }
            Err(e) => {
                self.ctx.errors.add(format!("pay sheet: {e}"));
                false
            }
        }
    }

    /// Polls the order's status once a second until it reads `wanted`; `false` after
    /// [`STATUS_POLLS`] polls.
    async fn poll(&self, out_trade_no: &str, wanted: &str) -> Result<bool, Stop> {
        let url = self.url(&format!("/wechat/pay/orders/{out_trade_no}"));
        for attempt in 0..STATUS_POLLS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            self.ctx.traffic.add("status: polls");
            match self.fetch(Method::GET, &url, None).await {
                Ok(reply) if reply.status == StatusCode::OK => {
                    if reply.json_or_null()["status"] == wanted {
                        return Ok(true);
                    }
                }
                Ok(reply) if reply.status == StatusCode::UNAUTHORIZED => {
                    self.ctx.errors.add("status: 401");
                    return Err(Stop::Login);
                }
                Ok(reply) => self
                    .ctx
                    .errors
                    .add(format!("status: {}", reply.status.as_u16())),
                Err(e) => self.ctx.errors.add(format!("status: {e}")),
            }
        }
        Ok(false)
    }

    /// The buyer asks for a refund; the back office issues it, then the buyer watches the
    /// order's status turn `refunded`.
    async fn refund(&mut self, out_trade_no: &str) -> Result<(), Stop> {
        self.ctx.traffic.add("refunds: requested");
        let out_refund_no = format!("R{out_trade_no}");
        let mut accepted = false;
        for attempt in 0..3 {
            if attempt > 0 {
                self.ctx.traffic.add("refunds: retried by the back office");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let instance = self.rng.below(self.ctx.pay.len());
            match back_office_refund(&self.ctx.pay[instance], out_trade_no, &out_refund_no).await {
                Ok(()) => {
                    accepted = true;
                    break;
                }
                Err(kind) => self.ctx.errors.add(format!("refund: {kind}")),
            }
        }
        if !accepted {
            return Err(Stop::Round);
        }
        self.ctx.traffic.add("refunds: accepted by WeChat");
        self.ctx
            .book()
            .refunded
            .push((out_trade_no.to_owned(), out_refund_no.clone()));
        if self.rng.chance(0.2) {
            // The same refund again (a back office that lost the answer): WeChat must answer
            // the same refund, and nothing may be refunded twice.
            self.ctx
                .traffic
                .add("refunds: requested again, same out_refund_no");
            let instance = self.rng.below(self.ctx.pay.len());
            if let Err(kind) =
                back_office_refund(&self.ctx.pay[instance], out_trade_no, &out_refund_no).await
            {
                self.ctx.errors.add(format!("refund (again): {kind}"));
            }
        }
        if self.poll(out_trade_no, "refunded").await? {
            self.ctx
                .traffic
                .add("refunds: refunded, as the status route says");
        } else {
            self.ctx
                .errors
                .add(format!("status: not refunded after {STATUS_POLLS} polls"));
        }
        Ok(())
    }
}

/// The shop's back office refunds an order in full (1 fen) through an instance's Pay client.
async fn back_office_refund(
    pay: &PayApi,
    out_trade_no: &str,
    out_refund_no: &str,
) -> Result<(), String> {
    let total = demo_shop::PRODUCT_PRICE_FEN;
    let result = match pay {
        PayApi::V3(client) => client
            .refund(&v3::RefundRequest::new(
                OutTradeNo::new(out_trade_no),
                out_refund_no,
                total,
                total,
            ))
            .await
            .map(drop),
        PayApi::V2(client) => client
            .refund(&v2::RefundRequest::new(
                v2::OrderRef::OutTradeNo(OutTradeNo::new(out_trade_no)),
                out_refund_no,
                total,
                total,
            ))
            .await
            .map(drop),
        _ => return Err("unknown Pay API".into()),
    };
    result.map_err(|e| pay_error_kind(&e))
}

/// A short, secret-free name for a library error.
fn pay_error_kind(error: &wechat_core::Error) -> String {
    match error {
        wechat_core::Error::Pay(PayError::Api(e)) => format!("{} {}", e.status, e.code.as_str()),
        wechat_core::Error::Pay(PayError::Business { code, .. }) => code.as_str().to_owned(),
        wechat_core::Error::Pay(PayError::Return { .. }) => "return_code FAIL".to_owned(),
        wechat_core::Error::Http { .. } => "no answer from WeChat Pay".to_owned(),
        wechat_core::Error::UnexpectedResponse { endpoint, detail } => {
            // "HTTP 503 Service Unavailable, not XML (…)": the status is what matters.
            let status = detail.split(',').next().unwrap_or(detail);
            format!("unexpected answer from {endpoint} ({status})")
        }
        other => {
            let text = other.to_string();
            text.chars().take(80).collect()
        }
    }
}
