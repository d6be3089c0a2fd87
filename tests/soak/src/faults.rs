//! The faults the soak injects: which endpoints, which kinds, how often, registered with the
//! simulator's `POST /_sim/fail` in phases.
//!
//! The simulator draws one random fault per path (a new `probability` for a path replaces the
//! old one), so the soak rotates: in phase `k`, target `i` gets kind `(i + k) mod 5` of its
//! area, with a seed derived from `--seed`, `k` and `i`. Every endpoint thus meets every kind in
//! a run of five phases or more, and the same seed makes the same draws (which calls they hit
//! still depends on the order concurrent calls arrive in).

use std::time::Duration;

use demo_shop::PayVersion;

/// Where an endpoint is, for the kinds of fault it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// `api.weixin.qq.com`: tokens, tickets, `sns/*`.
    Weixin,
    /// WeChat Pay API v3.
    PayV3,
    /// WeChat Pay API v2.
    PayV2,
}

/// One endpoint that gets faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The path as `/_sim/fail` takes it (`*` at the end: a prefix).
    pub path: &'static str,
    /// Its area.
    pub area: Area,
}

impl Target {
    /// Whether it is a token or ticket endpoint (`/cgi-bin/…`), which a run calls only a few
    /// times (once per refresh), so that it has its own fault rate.
    pub fn is_token(&self) -> bool {
        self.path.starts_with("/cgi-bin/")
    }
}

/// The endpoints the demo's server calls, for the Pay API `version`.
pub fn targets(version: PayVersion) -> Vec<Target> {
    let weixin = |path| Target {
        path,
        area: Area::Weixin,
    };
    let mut targets = vec![
        weixin("/cgi-bin/stable_token"),
        weixin("/cgi-bin/token"),
        weixin("/cgi-bin/ticket/getticket"),
        weixin("/sns/oauth2/access_token"),
        weixin("/sns/userinfo"),
    ];
    let (area, paths): (Area, &[&'static str]) = match version {
        PayVersion::V3 => (
            Area::PayV3,
            &[
                "/v3/pay/transactions/jsapi",
                "/v3/pay/transactions/out-trade-no/*",
                "/v3/refund/domestic/refunds",
            ],
        ),
        PayVersion::V2 => (
            Area::PayV2,
            &["/pay/unifiedorder", "/pay/orderquery", "/secapi/pay/refund"],
        ),
    };
    targets.extend(paths.iter().map(|&path| Target { path, area }));
    targets
}

/// The kinds the soak injects (the labels used in its output), in rotation order.
pub const KINDS: [&str; 5] = ["busy", "502", "503", "delay", "drop"];

/// The `/_sim/fail` parameters of `kind` (one of [`KINDS`]) in `area`: busy is WeChat's
/// "system busy" of the area (api.weixin `errcode=-1`, v3 `500 SYSTEM_ERROR`, v2
/// `err_code=SYSTEMERROR`); `502`/`503` the gateway's page; `delay` the genuine answer after
/// `delay`; `drop` the connection closed without an answer.
pub fn fault_params(area: Area, kind: &str, delay: Duration) -> Vec<(&'static str, String)> {
    match (kind, area) {
        ("busy", Area::Weixin) => vec![("errcode", "-1".into())],
        ("busy", Area::PayV3) => vec![("status", "500".into()), ("code", "SYSTEM_ERROR".into())],
        ("busy", Area::PayV2) => vec![("err_code", "SYSTEMERROR".into())],
        ("502", _) => vec![("status", "502".into())],
        ("503", _) => vec![("status", "503".into())],
        ("delay", _) => vec![
            ("fault", "delay".into()),
            ("delay_ms", delay.as_millis().to_string()),
        ],
        _ => vec![("fault", "drop".into())],
    }
}

/// The kind target `index` gets in `phase`.
pub fn kind_in_phase(index: usize, phase: usize) -> &'static str {
    KINDS[(index + phase) % KINDS.len()]
}

/// The seed of target `index` in `phase` for a run seeded with `seed`.
pub fn phase_seed(seed: u64, phase: usize, index: usize) -> u64 {
    seed.wrapping_mul(1_000_003)
        .wrapping_add((phase as u64) << 8)
        .wrapping_add(index as u64)
}

/// The fault probabilities of a run: `calls` for every endpoint but the token and ticket ones,
/// which get `token_calls`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Every endpoint but `/cgi-bin/…`.
    pub calls: f64,
    /// `/cgi-bin/…` (tokens and tickets).
    pub token_calls: f64,
}

impl Rates {
    /// The probability for `target`.
    pub fn of(&self, target: &Target) -> f64 {
        if target.is_token() {
            self.token_calls
        } else {
            self.calls
        }
    }
}

/// Registers phase `phase` of the plan on the simulator at `sim_base`: each target gets its
/// kind with its probability in `rates`. Answers the kinds registered, as `(path, kind)`.
///
/// # Errors
/// The simulator's refusal (status and body) or a transport failure.
pub async fn register_phase(
    http: &reqwest::Client,
    sim_base: &str,
    targets: &[Target],
    phase: usize,
    rates: Rates,
    seed: u64,
    delay: Duration,
) -> Result<Vec<(&'static str, &'static str)>, String> {
    let mut registered = Vec::with_capacity(targets.len());
    for (index, target) in targets.iter().enumerate() {
        let kind = kind_in_phase(index, phase);
        let mut query: Vec<(&str, String)> = vec![("path", target.path.to_owned())];
        query.extend(fault_params(target.area, kind, delay));
        query.push(("probability", rates.of(target).to_string()));
        query.push(("seed", phase_seed(seed, phase, index).to_string()));
        let response = http
            .post(format!("{sim_base}/_sim/fail"))
            .query(&query)
            .send()
            .await
            .map_err(|e| format!("POST /_sim/fail: {}", e.without_url()))?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(format!(
                "POST /_sim/fail for {} ({kind}) refused: {status} {body}",
                target.path
            ));
        }
        registered.push((target.path, kind));
    }
    Ok(registered)
}

/// Clears every injected fault (`DELETE /_sim/fail`).
///
/// # Errors
/// A transport failure or a refusal.
pub async fn clear(http: &reqwest::Client, sim_base: &str) -> Result<(), String> {
    let response = http
        .delete(format!("{sim_base}/_sim/fail"))
        .send()
        .await
        .map_err(|e| format!("DELETE /_sim/fail: {}", e.without_url()))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("DELETE /_sim/fail: {}", response.status()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_meets_every_kind_in_five_phases() {
        for version in [PayVersion::V3, PayVersion::V2] {
            let targets = targets(version);
            for index in 0..targets.len() {
                let mut kinds: Vec<_> = (0..5).map(|phase| kind_in_phase(index, phase)).collect();
                kinds.sort_unstable();
                kinds.dedup();
                assert_eq!(kinds.len(), KINDS.len());
            }
        }
        assert_ne!(phase_seed(7, 0, 1), phase_seed(7, 1, 0));
        let rates = Rates {
            calls: 0.05,
            token_calls: 0.25,
        };
        let all = targets(PayVersion::V3);
        assert_eq!(rates.of(&all[0]), 0.25);
        assert_eq!(rates.of(all.last().unwrap()), 0.05);
        let delay = Duration::from_millis(250);
        assert_eq!(
            fault_params(Area::PayV3, "busy", delay),
            [
                ("status", "500".to_owned()),
                ("code", "SYSTEM_ERROR".to_owned())
            ]
        );
        assert_eq!(fault_params(Area::Weixin, "delay", delay)[1].1, "250");
        assert_eq!(fault_params(Area::PayV2, "drop", delay)[0].1, "drop");
    }
}
