//! The printed summary (Markdown tables, as BENCHMARKS.md shows them) and the checks that
//! decide the exit status.

use std::collections::BTreeMap;
use std::time::Duration;

use demo_shop::PayVersion;
use wechat_loadtest::report::{loadavg, machine};
use wechat_sim::StatsSnapshot;
use wechat_soak::applog::AppLog;
use wechat_soak::faults;
use wechat_soak::reconcile::Reconciliation;
use wechat_soak::refreshes;
use wechat_soak::tally::inline;

use crate::chaos::Outage;
use crate::{Args, Ctx};

/// Everything the summary reports.
pub(crate) struct Report<'a> {
    pub(crate) args: &'a Args,
    pub(crate) version: PayVersion,
    pub(crate) instances: Vec<String>,
    pub(crate) connections: Vec<u64>,
    pub(crate) buying: Duration,
    pub(crate) drained: Duration,
    /// From the buyers' start to the final statistics.
    pub(crate) elapsed: Duration,
    pub(crate) cut: usize,
    pub(crate) phases: usize,
    pub(crate) outages: Vec<Outage>,
    pub(crate) stats: StatsSnapshot,
    pub(crate) ctx: &'a Ctx,
    pub(crate) log: &'a AppLog,
    pub(crate) reconciliation: &'a Reconciliation,
    pub(crate) load_before: String,
}

/// Calls to a token endpoint less than this many seconds apart belong to one refresh.
const BURST_GAP: f64 = 3.0;
/// A refresh up to this long after Redis answers again still counts as during the outage (the
/// store is skipped for a second after a failure, and a call may have been under way).
const OUTAGE_SLACK: f64 = 2.0;

/// The mismatch kinds of each reconciliation check.
const PAID_ONCE: [&str; 4] = [
    "paid at WeChat, not paid in the app",
    "payment applied more than once in the app",
    "paid with another transaction id in the app",
    "payer or amount differs",
];
const PAID_ONLY_IF_WECHAT: [&str; 2] = [
    "paid in the app, not at WeChat",
    "an order WeChat never had is stored by the app",
];
const REFUNDS: [&str; 7] = [
    "refund applied twice in the app",
    "order refunded more than once in the app",
    "refunded more than paid in the app",
    "refund applied in the app that WeChat did not make",
    "refunded in the app, not at WeChat",
    "refunded at WeChat, not in the app",
    "fully refunded at WeChat, not refunded in the app",
];

impl Report<'_> {
    fn traffic(&self, key: &str) -> u64 {
        self.ctx.traffic.get(key)
    }

    /// Calls to `path` that an injected fault answered instead of WeChat (delays excepted:
    /// a delayed call is answered).
    fn faulted(&self, path: &str) -> u64 {
        self.stats.faults.by_path.get(path).map_or(0, |kinds| {
            kinds
                .iter()
                .filter(|(kind, _)| kind.as_str() != "delay")
                .map(|(_, n)| n)
                .sum()
        })
    }

    fn mismatches_of(&self, kinds: &[&str]) -> usize {
        self.reconciliation
            .mismatches
            .iter()
            .filter(|m| kinds.contains(&m.kind))
            .count()
    }

    /// Prints everything; `true` when every check passed.
    pub(crate) fn print(&self) -> bool {
        self.print_conditions();
        self.print_traffic();
        self.print_replays();
        self.print_faults();
        self.print_errors();
        self.print_checks()
    }

    fn print_conditions(&self) {
        let a = self.args;
        println!(
            "soak: {} s of buying, {} buyers ({} rounds still running {} s later were cut), then {:.1} s until the books agreed; {} instances ({}) behind one balancer; WeChat Pay {}",
            a.seconds,
            a.buyers,
            self.cut,
            crate::ROUND_GRACE.as_secs(),
            self.drained.as_secs_f64(),
            self.instances.len(),
            self.instances.join(", "),
            self.version.as_str(),
        );
        println!(
            "buying took {:.1} s in all, the last rounds included",
            self.buying.as_secs_f64()
        );
        let outages = if self.outages.is_empty() {
            "never".to_owned()
        } else {
            self.outages
                .iter()
                .map(|(down, up)| format!("down {down:.1}–{up:.1} s"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "faults: probability {} per call on {} endpoints ({} on the token and ticket endpoints), kinds {} rotating over {} phases of {} s (delay {} ms), seed {}; Redis killed {} time(s): {outages}; access tokens and tickets live {} s",
            a.fault_rate,
            faults::targets(self.version).len(),
            a.token_fault_rate,
            faults::KINDS.join("/"),
            self.phases,
            a.fault_phase_seconds,
            a.delay_ms,
            a.seed,
            self.outages.len(),
            a.token_ttl_seconds,
        );
        println!(
            "machine: {} | load average before: {}, after: {}",
            machine(),
            self.load_before,
            loadavg()
        );
        println!();
    }

    fn print_traffic(&self) {
        let t = |k| self.traffic(k);
        println!("| traffic | count |");
        println!("| --- | ---: |");
        println!(
            "| logins completed (attempts; OAuth callbacks reached; new browser sessions) | {} ({}; {}; {}) |",
            t("logins: completed"),
            t("logins: attempts"),
            t("logins: OAuth callbacks reached"),
            t("logins: again, in a new browser session")
        );
        println!(
            "| shop pages loaded (wx.config signatures accepted by WeChat) | {} ({}) |",
            t("pages loaded"),
            t("jssdk: signatures accepted by WeChat")
        );
        println!(
            "| orders created (requests; reused numbers; 429s; double clicks) | {} ({}; {}; {}; {}) |",
            t("orders: created"),
            t("orders: requests"),
            t("orders: reused (same out_trade_no again)"),
            t("orders: 429 (rate limited)"),
            t("orders: double clicks")
        );
        println!(
            "| orders left unpaid on purpose (abandoned; second orders of double clicks) | {} ({}; {}) |",
            t("orders: abandoned (not paid)")
                + t("orders: second orders of a double click (left unpaid)"),
            t("orders: abandoned (not paid)"),
            t("orders: second orders of a double click (left unpaid)")
        );
        println!(
            "| paid on the pay sheet (then seen paid by the status route; status polls) | {} ({}; {}) |",
            t("orders: paid on the pay sheet"),
            t("orders: paid, as the status route says"),
            t("status: polls")
        );
        println!(
            "| refunds requested (accepted by WeChat; seen refunded; requested again; back-office retries) | {} ({}; {}; {}; {}) |",
            t("refunds: requested"),
            t("refunds: accepted by WeChat"),
            t("refunds: refunded, as the status route says"),
            t("refunds: requested again, same out_refund_no"),
            t("refunds: retried by the back office")
        );
        println!(
            "| notifications WeChat sent, retries and replays included (acknowledged) | {} ({}) |",
            self.stats.notifications.sent, self.stats.notifications.acknowledged
        );
        println!(
            "| connections per instance (balancer) | {} |",
            self.connections
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!();
    }

    fn print_replays(&self) {
        let replays = self.ctx.replays.snapshot();
        let mut modes: BTreeMap<&str, [u64; 5]> = BTreeMap::new();
        for (key, n) in &replays {
            let Some((mode, outcome)) = key.split_once(": ") else {
                continue;
            };
            let slot = match outcome {
                "requested" => 0,
                "deliveries" => 1,
                "acknowledged" => 2,
                o if o.starts_with("refused") || o.starts_with("no answer") => 3,
                _ => 4,
            };
            modes.entry(mode).or_default()[slot] += n;
        }
        println!(
            "| notifications replayed | requested | deliveries | acknowledged | refused by the simulator | skipped (no order yet) |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: |");
        for (mode, [requested, deliveries, acked, refused, skipped]) in &modes {
            println!("| {mode} | {requested} | {deliveries} | {acked} | {refused} | {skipped} |");
        }
        println!();
    }

    fn print_faults(&self) {
        println!("| faults injected (wechat-sim `/_sim/stats`) | count |");
        println!("| --- | ---: |");
        let injected = &self.stats.faults.injected;
        println!("| all kinds | {} |", injected.values().sum::<u64>());
        for (kind, n) in injected {
            println!("| {kind} | {n} |");
        }
        println!();
        println!("| endpoint | calls | faults injected, by kind | library retries (its log) |");
        println!("| --- | ---: | --- | ---: |");
        let retries = self.log.retries.snapshot();
        let mut groups: BTreeMap<String, (u64, BTreeMap<String, u64>)> = BTreeMap::new();
        for (path, calls) in &self.stats.calls {
            if ["/_sim/", "/connect/", "/open/"]
                .iter()
                .any(|p| path.starts_with(p))
            {
                continue; // the simulator's own pages and controls
            }
            let entry = groups.entry(group_path(path)).or_default();
            entry.0 += calls;
            for (kind, n) in self.stats.faults.by_path.get(path).into_iter().flatten() {
                *entry.1.entry(kind.clone()).or_default() += n;
            }
        }
        for (path, (calls, kinds)) in &groups {
            let retried: u64 = retries
                .iter()
                .filter(|(endpoint, _)| group_path(endpoint) == *path)
                .map(|(_, n)| n)
                .sum();
            println!("| `{path}` | {calls} | {} | {retried} |", inline(kinds));
        }
        println!();
    }

    fn print_errors(&self) {
        println!("| errors seen by buyers (and the back office) | count |");
        println!("| --- | ---: |");
        let errors = self.ctx.errors.snapshot();
        if errors.is_empty() {
            println!("| none | 0 |");
        }
        for (kind, n) in &errors {
            println!("| {kind} | {n} |");
        }
        println!();
        println!("| warnings and errors the processes logged | count |");
        println!("| --- | ---: |");
        let mut events: Vec<(String, u64)> = self.log.events.snapshot().into_iter().collect();
        events.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        if events.is_empty() {
            println!("| none | 0 |");
        }
        for (event, n) in events.iter().take(20) {
            println!("| {} | {n} |", event.replace('|', "\\|"));
        }
        if events.len() > 20 {
            let rest: u64 = events[20..].iter().map(|(_, n)| n).sum();
            println!("| {} other messages | {rest} |", events.len() - 20);
        }
        println!();
    }

    /// The most upstream calls one credential may cost: its refreshes during the run (one per
    /// lifetime less the refresh-ahead window, the clock not moving otherwise), plus, per Redis
    /// outage, one refresh per instance for each such interval it lasted (each instance refreshes
    /// alone while the store is down or empty), times `per_refresh` calls (the ticket endpoint
    /// answers the same ticket until it expires, so a ticket refresh may ask ahead, at the
    /// expiry margin and at expiry). With the figures it is made of.
    fn refresh_bound(&self, per_refresh: u64) -> (u64, String) {
        let lifetime = self.args.token_ttl_seconds.max(1);
        let interval = (lifetime - (lifetime / 6).min(300)).max(1);
        let secs = self.elapsed.as_secs();
        let refreshes = 1 + secs / interval;
        let instances = self.instances.len() as u64;
        let outage: u64 = self
            .outages
            .iter()
            // The store is skipped for about a second after it failed, and calls time out.
            .map(|(down, up)| 1 + ((up - down) + 2.0) as u64 / interval)
            .sum::<u64>()
            * instances;
        let bound = (refreshes + outage) * per_refresh;
        (
            bound,
            format!(
                "(({refreshes} refreshes of a {lifetime} s credential in {secs} s + {outage} for {} Redis outage(s) × {instances} instances) × {per_refresh})",
                self.outages.len()
            ),
        )
    }

    fn print_checks(&self) -> bool {
        let r = self.reconciliation;
        let mut checks: Vec<(String, String, bool)> = Vec::new();
        let n = self.mismatches_of(&PAID_ONCE);
        checks.push((
            "every order paid at WeChat is paid in the app exactly once".into(),
            format!(
                "{} paid at WeChat, {} paid in the app, {} payments applied; {n} mismatches",
                r.sim_paid, r.app_paid, r.payment_applications
            ),
            n == 0,
        ));
        let invented = self.ctx.book().invented.len();
        let n = self.mismatches_of(&PAID_ONLY_IF_WECHAT);
        checks.push((
            "no order is paid in the app that WeChat did not see paid".into(),
            format!(
                "{n} (of {} orders compared, {invented} made up by WeChat)",
                r.orders_checked
            ),
            n == 0,
        ));
        let n = self.mismatches_of(&REFUNDS);
        checks.push((
            "no refund applied twice, none WeChat did not make, none missing".into(),
            format!(
                "{} refunds at WeChat, {} in the app, {} applied, {} orders refunded; {n} mismatches",
                r.sim_refunds, r.app_refunds, r.refund_applications, r.app_refunded_orders
            ),
            n == 0,
        ));
        for (name, paths, per_refresh) in [
            (
                "access_token",
                &["/cgi-bin/stable_token", "/cgi-bin/token"][..],
                1,
            ),
            ("jsapi_ticket", &["/cgi-bin/ticket/getticket"][..], 3),
        ] {
            let calls: u64 = paths.iter().map(|p| self.stats.calls_to(p)).sum();
            let faulted: u64 = paths.iter().map(|p| self.faulted(p)).sum();
            let answered = calls - faulted.min(calls);
            let (bound, how) = self.refresh_bound(per_refresh);
            checks.push((
                format!("{name}: at most one upstream call per refresh"),
                format!(
                    "{calls} calls, {faulted} answered by an injected fault, {answered} answered by WeChat ≤ {bound} {how}"
                ),
                answered <= bound,
            ));
        }
        let outages: Vec<(f64, f64)> = self.outages.clone();
        let token_calls = self
            .ctx
            .token_calls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut timelines = Vec::new();
        for (i, (name, _)) in crate::chaos::CREDENTIALS.iter().enumerate() {
            // A ticket refresh at its expiry margin and the one at expiry fall together.
            let allowed = if i == 0 { 1 } else { 2 };
            let bursts = refreshes::bursts(&token_calls[i].2, BURST_GAP);
            let over: Vec<_> = bursts
                .iter()
                .filter(|b| !b.during(&outages, OUTAGE_SLACK) && b.answered() > allowed)
                .collect();
            checks.push((
                format!("{name}: one call per refresh while Redis is up"),
                format!(
                    "{} refreshes, {} of them outside Redis outages with more than {allowed} call(s) answered",
                    bursts.len(),
                    over.len()
                ),
                over.is_empty(),
            ));
            timelines.push(format!(
                "{name} calls, by refresh (seconds from the start: calls): {}",
                refreshes::describe(&bursts, &outages, OUTAGE_SLACK)
            ));
        }
        let exchanges = self.stats.calls_to("/sns/oauth2/access_token");
        let callbacks = self.traffic("logins: OAuth callbacks reached");
        checks.push((
            "every OAuth code exchanged at most once".into(),
            format!("{exchanges} code exchanges for {callbacks} callbacks"),
            exchanges <= callbacks,
        ));
        let refused = self.traffic("jssdk: signatures refused by WeChat");
        checks.push((
            "WeChat accepts every wx.config signature".into(),
            format!(
                "{refused} refused of {}",
                refused + self.traffic("jssdk: signatures accepted by WeChat")
            ),
            refused == 0,
        ));
        println!("| reconciliation | figure | result |");
        println!("| --- | --- | --- |");
        println!("| orders compared | {} | |", r.orders_checked);
        let mut all = true;
        for (name, figure, ok) in &checks {
            all &= ok;
            println!(
                "| {name} | {figure} | {} |",
                if *ok { "ok" } else { "**FAILED**" }
            );
        }
        println!();
        for line in &timelines {
            println!("{line}");
        }
        println!("mismatches: {}", r.mismatches.len());
        for m in r.mismatches.iter().take(20) {
            println!("  {}: {} ({})", m.out_trade_no, m.kind, m.detail);
        }
        if r.mismatches.len() > 20 {
            println!("  … and {} more", r.mismatches.len() - 20);
        }
        all && r.mismatches.is_empty()
    }
}

/// `path` with its order or refund number replaced by a placeholder, so that the calls of
/// one endpoint add up (`/v3/pay/transactions/out-trade-no/{out_trade_no}`); the library logs
/// its retries under these names already.
fn group_path(path: &str) -> String {
    for prefix in [
        "/v3/pay/transactions/out-trade-no/",
        "/v3/pay/transactions/id/",
        "/v3/refund/domestic/refunds/",
    ] {
        if let Some(rest) = path.strip_prefix(prefix) {
            let placeholder = if prefix.contains("refund") {
                "{out_refund_no}"
            } else if prefix.ends_with("id/") {
                "{transaction_id}"
            } else {
                "{out_trade_no}"
            };
            let tail = rest.find('/').map_or("", |i| &rest[i..]);
            return format!("{prefix}{placeholder}{tail}");
        }
    }
    path.to_owned()
}

#[cfg(test)]
mod tests {
    use super::group_path;

    #[test]
    fn order_numbers_are_grouped() {
        assert_eq!(
            group_path("/v3/pay/transactions/out-trade-no/2024ABC"),
            "/v3/pay/transactions/out-trade-no/{out_trade_no}"
        );
        assert_eq!(
            group_path("/v3/pay/transactions/out-trade-no/2024ABC/close"),
            "/v3/pay/transactions/out-trade-no/{out_trade_no}/close"
        );
        assert_eq!(
            group_path("/v3/pay/transactions/out-trade-no/{out_trade_no}"),
            "/v3/pay/transactions/out-trade-no/{out_trade_no}"
        );
        assert_eq!(group_path("/pay/orderquery"), "/pay/orderquery");
    }
}
