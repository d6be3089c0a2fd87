//! What happens to the app while buyers buy: the fault plan's phases, the Redis restarts, and
//! the notifications WeChat sends again, out of order, concurrently, or for orders the app never
//! made.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wechat_soak::faults::{self, Target};
use wechat_soak::redis::RedisServer;
use wechat_soak::refreshes::Sample;
use wechat_soak::rng::Rng;

use crate::Ctx;

/// When Redis was down, as seconds from the start: (killed, answering again).
pub(crate) type Outage = (f64, f64);

/// Registers phase after phase of the fault plan until the deadline.
///
/// # Errors
/// The simulator refused a fault: the plan is wrong, and the run stops.
pub(crate) async fn fault_phases(ctx: Arc<Ctx>, targets: Vec<Target>) -> Result<usize, String> {
    let phase_len = Duration::from_secs(ctx.args.fault_phase_seconds.max(1));
    let delay = Duration::from_millis(ctx.args.delay_ms);
    let mut phase = 0;
    while ctx.running() {
        faults::register_phase(
            &ctx.control,
            &ctx.sim_base,
            &targets,
            phase,
            faults::Rates {
                calls: ctx.args.fault_rate,
                token_calls: ctx.args.token_fault_rate,
            },
            ctx.args.seed,
            delay,
        )
        .await?;
        phase += 1;
        let next =
            (ctx.started + phase_len * u32::try_from(phase).unwrap_or(u32::MAX)).min(ctx.deadline);
        tokio::time::sleep_until(next.into()).await;
    }
    Ok(phase)
}

/// Kills and restarts `redis` `--redis-restarts` times, evenly spread over the run; gives it
/// back with the outages.
pub(crate) async fn redis_restarts(
    ctx: Arc<Ctx>,
    mut redis: RedisServer,
) -> (RedisServer, Vec<Outage>, Option<String>) {
    let restarts = ctx.args.redis_restarts;
    let run = ctx.deadline.duration_since(ctx.started);
    let mut outages = Vec::new();
    for k in 1..=restarts {
        let at = ctx.started + run.mul_f64(f64::from(k) / f64::from(restarts + 1));
        tokio::time::sleep_until(at.into()).await;
        if !ctx.running() {
            break;
        }
        let killed = ctx.started.elapsed().as_secs_f64();
        redis.kill();
        tokio::time::sleep(Duration::from_secs_f64(
            ctx.args.redis_down_seconds.max(0.0),
        ))
        .await;
        if let Err(e) = redis.restart().await {
            return (redis, outages, Some(e));
        }
        outages.push((killed, ctx.started.elapsed().as_secs_f64()));
    }
    (redis, outages, None)
}

/// The notification modes replayed, with their weights.
const MODES: [(&str, u32); 6] = [
    ("duplicate", 30),
    ("concurrent_duplicates", 25),
    ("reordered", 15),
    ("refund duplicate", 10),
    ("result_code_fail", 10),
    ("unknown_order", 10),
];

/// Replays notifications until the deadline.
pub(crate) async fn replays(ctx: Arc<Ctx>) {
    if ctx.args.replays_per_second <= 0.0 {
        return;
    }
    let interval = Duration::from_secs_f64(1.0 / ctx.args.replays_per_second);
    let mut rng = Rng::stream(ctx.args.seed, 0xFEED);
    let total: u32 = MODES.iter().map(|(_, w)| w).sum();
    let mut next = Instant::now() + interval;
    while ctx.running() {
        tokio::time::sleep_until(next.into()).await;
        next += interval;
        if !ctx.running() {
            break;
        }
        let mut draw = u32::try_from(rng.below(total as usize)).unwrap_or(0);
        let mode = MODES
            .iter()
            .find(|(_, w)| {
                if draw < *w {
                    true
                } else {
                    draw -= w;
                    false
                }
            })
            .map_or("duplicate", |(m, _)| m);
        let Some(body) = pick(&ctx, &mut rng, mode) else {
            ctx.replays
                .add(format!("{mode}: skipped, no order for it yet"));
            continue;
        };
        replay(&ctx, mode, &body).await;
    }
}

/// The `/_sim/pay/notify` body for `mode`, on an order (or refund) the run has in that state.
fn pick(ctx: &Ctx, rng: &mut Rng, mode: &str) -> Option<Value> {
    let book = ctx.book();
    Some(match mode {
        "duplicate" | "unknown_order" => {
            json!({"out_trade_no": rng.pick(&book.paid)?, "mode": mode})
        }
        "concurrent_duplicates" => json!({
            "out_trade_no": rng.pick(&book.paid)?,
            "mode": mode,
            "count": 2 + rng.below(7),
        }),
        "reordered" => json!({"out_trade_no": rng.pick(&book.refunded)?.0, "mode": mode}),
        "refund duplicate" => {
            json!({"out_refund_no": rng.pick(&book.refunded)?.1, "mode": "duplicate"})
        }
        _ => {
            // A failed payment, for an unpaid order as often as for a paid one.
            let from = if rng.chance(0.5) && !book.unpaid.is_empty() {
                &book.unpaid
            } else {
                &book.paid
            };
            json!({"out_trade_no": rng.pick(from)?, "mode": mode})
        }
    })
}

async fn replay(ctx: &Ctx, mode: &str, body: &Value) {
    let response = ctx
        .control
        .post(format!("{}/_sim/pay/notify", ctx.sim_base))
        .json(body)
        .send()
        .await;
    let response = match response {
        Ok(response) => response,
        Err(e) => {
            ctx.replays.add(format!(
                "{mode}: no answer from the simulator ({})",
                e.without_url()
            ));
            return;
        }
    };
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        // 409: e.g. a v3 refund still PROCESSING; the simulator sent nothing.
        ctx.replays.add(format!(
            "{mode}: refused by the simulator ({})",
            status.as_u16()
        ));
        return;
    }
    ctx.replays.add(format!("{mode}: requested"));
    let deliveries = answer["deliveries"].as_array().cloned().unwrap_or_default();
    let acknowledged = deliveries
        .iter()
        .filter(|d| d["acknowledged"] == true)
        .count();
    ctx.replays
        .add_n(format!("{mode}: deliveries"), deliveries.len() as u64);
    ctx.replays
        .add_n(format!("{mode}: acknowledged"), acknowledged as u64);
    if mode == "unknown_order" {
        if let Some(no) = deliveries.first().and_then(|d| d["out_trade_no"].as_str()) {
            ctx.book().invented.insert(no.to_owned());
        }
    }
}

/// The credentials and the endpoints that fetch them.
pub(crate) const CREDENTIALS: [(&str, &[&str]); 2] = [
    ("access_token", &["/cgi-bin/stable_token", "/cgi-bin/token"]),
    ("jsapi_ticket", &["/cgi-bin/ticket/getticket"]),
];

/// Samples the simulator's counters of the token and ticket endpoints every half second, until
/// aborted.
pub(crate) async fn watch_token_calls(ctx: Arc<Ctx>) {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        sample_token_calls(&ctx).await;
    }
}

/// Reads `GET /_sim/stats` once and records the new calls to each credential's endpoints.
pub(crate) async fn sample_token_calls(ctx: &Ctx) {
    let Ok(response) = ctx
        .control
        .get(format!("{}/_sim/stats", ctx.sim_base))
        .send()
        .await
    else {
        return;
    };
    let Ok(stats) = response.json::<wechat_sim::StatsSnapshot>().await else {
        return;
    };
    let at = ctx.started.elapsed().as_secs_f64();
    let mut calls = ctx
        .token_calls
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for (i, (_, paths)) in CREDENTIALS.iter().enumerate() {
        let total: u64 = paths.iter().map(|p| stats.calls_to(p)).sum();
        let faulted: u64 = paths
            .iter()
            .filter_map(|p| stats.faults.by_path.get(*p))
            .flat_map(|kinds| kinds.iter())
            .filter(|(kind, _)| kind.as_str() != "delay")
            .map(|(_, n)| n)
            .sum();
        let (seen_calls, seen_faulted, samples) = &mut calls[i];
        if total > *seen_calls {
            samples.push(Sample {
                at,
                calls: total - *seen_calls,
                faulted: faulted.saturating_sub(*seen_faulted),
            });
            *seen_calls = total;
            *seen_faulted = faulted;
        }
    }
}
