//! Paired load: two servers measured in short alternating slices by the same connections, so
//! that the machine's drift hits both alike and their ratio can be read to a few percent.
//!
//! Every connection slot of the generator holds one keep-alive connection to each server and
//! sends its requests to the server of the current slice ([`loadgen::run_schedule`]). Slices
//! come in blocks of four, A B B A: over a block, a drift that is linear in time adds as much to
//! A as to B. Each slice starts with a settling time (not counted) in which the other server's
//! last responses arrive. The servers' CPU time is read per slice from their own threads (see
//! [`RunningServer::threads`](crate::servers::RunningServer::threads)), so that the idle one
//! and the generator do not count.
//!
//! Each block gives a ratio B/A of requests per second, and one of CPU time per request; the
//! report is their median, quartiles and the 95 % bootstrap interval of the median
//! ([`Spread`]).

use std::time::{Duration, Instant};

use crate::cpu::{self, ThreadsCpu};
use crate::loadgen::{self, LoadReport, Slice, Target};
use crate::stats::{self, Spread};

/// The order of the targets within a block: A B B A.
const BLOCK: [usize; 4] = [0, 1, 1, 0];

/// How to drive a pair.
#[derive(Debug, Clone, Copy)]
pub struct PairOptions {
    /// Concurrent keep-alive connection slots (each with one connection to each server).
    pub connections: usize,
    /// OS threads of the generator.
    pub threads: usize,
    /// Load before the first block, alternating between the servers (not counted).
    pub warmup: Duration,
    /// The length of a slice.
    pub slice: Duration,
    /// The start of each slice that is not counted.
    pub settle: Duration,
    /// How many A B B A blocks are measured.
    pub blocks: usize,
}

/// The slices of a paired run starting at `start`: warm-up slices alternating A and B (at
/// least one of each, so that every connection is open before counting starts), then
/// `options.blocks` blocks of A B B A, each slice counted after its settling time.
pub fn abba_schedule(start: Instant, options: &PairOptions) -> Vec<Slice> {
    let slice = options.slice.max(Duration::from_millis(1));
    let settle = options.settle.min(slice);
    let warmup_slices = options.warmup.div_duration_f64(slice).ceil().max(2.0) as usize;
    let warmup = (0..warmup_slices).map(|i| (i % 2, false));
    let measured = (0..options.blocks).flat_map(|_| BLOCK.map(|target| (target, true)));
    let mut slices = Vec::with_capacity(warmup_slices + 4 * options.blocks);
    let mut from = start;
    for (target, counted) in warmup.chain(measured) {
        let end = from + slice;
        slices.push(Slice {
            target,
            measure_from: if counted { from + settle } else { end },
            end,
        });
        from = end;
    }
    slices
}

/// What one server did in one block (its two slices).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockSide {
    /// Responses with the expected status.
    pub ok: u64,
    /// The measured time.
    pub measured: Duration,
    /// The server's CPU time meanwhile.
    pub cpu: ThreadsCpu,
}

impl BlockSide {
    /// Requests per second.
    pub fn requests_per_sec(&self) -> f64 {
        loadgen::per_second(self.ok as f64, self.measured)
    }

    /// CPU time (on a CPU, from `schedstat`) per request, in seconds; 0 without requests.
    pub fn cpu_per_request(&self) -> f64 {
        if self.ok > 0 {
            self.cpu.on_cpu.as_secs_f64() / self.ok as f64
        } else {
            0.0
        }
    }
}

/// What a paired run measured.
#[derive(Debug, Clone, Default)]
pub struct PairReport {
    /// Per block, A's and B's share.
    pub blocks: Vec<[BlockSide; 2]>,
    /// A's and B's totals over all blocks (the CPU time is their own threads', user and kernel
    /// from `stat`; the generator's is left at zero).
    pub totals: [LoadReport; 2],
    /// A's and B's time on a CPU over all blocks, from `schedstat`.
    pub on_cpu: [Duration; 2],
    /// How many consecutive blocks the bootstrap intervals resample together: a second's
    /// worth, so that a disturbance lasting about as long counts once (see
    /// [`stats::bootstrap_interval`]).
    pub bootstrap_run: usize,
}

impl PairReport {
    /// Per block, B's requests per second over A's.
    pub fn rate_ratios(&self) -> Vec<f64> {
        self.ratios(BlockSide::requests_per_sec)
    }

    /// Per block, B's CPU time per request over A's.
    pub fn cpu_ratios(&self) -> Vec<f64> {
        self.ratios(BlockSide::cpu_per_request)
    }

    fn ratios(&self, figure: impl Fn(&BlockSide) -> f64) -> Vec<f64> {
        self.blocks
            .iter()
            .filter_map(|[a, b]| {
                let a = figure(a);
                (a > 0.0).then(|| figure(b) / a)
            })
            .collect()
    }

    /// The spread of the blocks' req/s ratios.
    pub fn rate_spread(&self) -> Spread {
        Spread::of(&self.rate_ratios(), self.bootstrap_run)
    }

    /// The spread of the blocks' CPU-per-request ratios.
    pub fn cpu_spread(&self) -> Spread {
        Spread::of(&self.cpu_ratios(), self.bootstrap_run)
    }

    /// B's summed requests over A's (their measured times are equal), with the 95 % bootstrap
    /// interval over the blocks.
    pub fn summed_ratio(&self) -> (f64, (f64, f64)) {
        let ratio = |blocks: &mut dyn Iterator<Item = &[BlockSide; 2]>| {
            let (a, b) = blocks.fold((0, 0), |(a, b), [x, y]| (a + x.ok, b + y.ok));
            if a > 0 { b as f64 / a as f64 } else { 0.0 }
        };
        let run = self.bootstrap_run;
        let interval = stats::bootstrap_interval(self.blocks.len(), run, 2000, |indices| {
            ratio(&mut indices.iter().map(|&i| &self.blocks[i]))
        });
        (ratio(&mut self.blocks.iter()), interval)
    }
}

/// Drives `targets` (A, B) in the [A B B A schedule](abba_schedule), reading the CPU time of
/// the slice's server's `threads` at the edges of its measured part (the other server is idle).
/// Blocks for the whole schedule.
///
/// # Errors
/// When a generator thread cannot start its runtime.
pub fn run_pair(
    targets: [&Target; 2],
    threads: [&[u32]; 2],
    options: &PairOptions,
) -> std::io::Result<PairReport> {
    let slices = abba_schedule(Instant::now(), options);
    let run = loadgen::run_schedule(
        &[targets[0].clone(), targets[1].clone()],
        options.connections,
        options.threads,
        &slices,
        |slice| cpu::threads_cpu(threads[slice.target]),
    )?;
    let block = options.slice * BLOCK.len() as u32;
    let mut report = PairReport {
        bootstrap_run: Duration::from_secs(1)
            .div_duration_f64(block)
            .round()
            .max(1.0) as usize,
        ..PairReport::default()
    };
    let measured = slices.iter().zip(&run.slices).zip(&run.samples);
    let mut block = [BlockSide::default(); 2];
    let mut in_block = 0;
    for ((slice, count), (before, after)) in measured.filter(|((s, _), _)| s.measure_from < s.end) {
        let side = slice.target;
        let cpu = after.since(*before);
        block[side].ok += count.ok;
        block[side].measured += slice.measured();
        block[side].cpu.add(cpu);
        let total = &mut report.totals[side];
        total.ok += count.ok;
        total.errors += count.errors;
        total.elapsed += slice.measured();
        total.server_cpu.add(cpu.split);
        report.on_cpu[side] += cpu.on_cpu;
        in_block += 1;
        if in_block == BLOCK.len() {
            report.blocks.push(std::mem::take(&mut block));
            in_block = 0;
        }
    }
    for (total, latencies) in report.totals.iter_mut().zip(run.latencies_ns) {
        total.latencies_ns = latencies;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(blocks: usize) -> PairOptions {
        PairOptions {
            connections: 2,
            threads: 1,
            warmup: Duration::from_millis(250),
            slice: Duration::from_millis(100),
            settle: Duration::from_millis(10),
            blocks,
        }
    }

    #[test]
    fn the_schedule_warms_both_up_then_alternates_abba() {
        let start = Instant::now();
        let slices = abba_schedule(start, &options(2));
        let targets: Vec<usize> = slices.iter().map(|s| s.target).collect();
        assert_eq!(targets, [0, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0]);
        let counted: Vec<bool> = slices.iter().map(|s| s.measure_from < s.end).collect();
        assert_eq!(
            counted,
            [
                false, false, false, true, true, true, true, true, true, true, true
            ]
        );
        for (i, slice) in slices.iter().enumerate() {
            assert_eq!(
                slice.end,
                start + Duration::from_millis(100) * (i as u32 + 1)
            );
        }
        assert_eq!(slices[3].measured(), Duration::from_millis(90));
        assert_eq!(
            abba_schedule(
                start,
                &PairOptions {
                    warmup: Duration::ZERO,
                    ..options(0)
                }
            )
            .len(),
            2
        );
    }

    #[test]
    fn ratios_are_b_over_a_per_block() {
        let side = |ok, on_cpu_ms| BlockSide {
            ok,
            measured: Duration::from_millis(180),
            cpu: ThreadsCpu {
                on_cpu: Duration::from_millis(on_cpu_ms),
                ..ThreadsCpu::default()
            },
        };
        let report = PairReport {
            blocks: vec![
                [side(100, 100), side(90, 99)],
                [side(200, 100), side(200, 110)],
            ],
            ..PairReport::default()
        };
        let rates = report.rate_ratios();
        assert!(
            (rates[0] - 0.9).abs() < 1e-9 && (rates[1] - 1.0).abs() < 1e-9,
            "{rates:?}"
        );
        let cpu = report.cpu_ratios();
        assert!(
            (cpu[0] - 1.1).abs() < 1e-9 && (cpu[1] - 1.1).abs() < 1e-9,
            "{cpu:?}"
        );
        let (summed, (low, high)) = report.summed_ratio();
        assert!((summed - 290.0 / 300.0).abs() < 1e-9);
        assert!(low <= summed && summed <= high);
    }

    #[tokio::test]
    async fn two_servers_are_driven_in_turn() {
        let mut targets = Vec::new();
        for answer in ["a", "b"] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let app =
                axum::Router::new().route("/", axum::routing::get(move || async move { answer }));
            tokio::spawn(async move { axum::serve(listener, app).await });
            targets.push(Target::new(addr, "GET", "/", &[], b"", 200));
        }
        // A functional check, not a measurement: 2 blocks of 4 slices of 20 ms.
        let options = PairOptions {
            warmup: Duration::from_millis(40),
            slice: Duration::from_millis(20),
            settle: Duration::from_millis(2),
            ..options(2)
        };
        let report = tokio::task::spawn_blocking(move || {
            run_pair([&targets[0], &targets[1]], [&[], &[]], &options)
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(report.blocks.len(), 2);
        for [a, b] in &report.blocks {
            assert!(a.ok > 0 && b.ok > 0, "{report:?}");
            assert_eq!(a.measured, Duration::from_millis(36));
        }
        for total in &report.totals {
            assert_eq!(total.errors, 0);
            assert_eq!(total.latencies_ns.len() as u64, total.ok);
        }
        assert_eq!(report.rate_ratios().len(), 2);
    }
}
