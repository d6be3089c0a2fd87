//! Summaries of repeated measurements: quantiles, and percentile-bootstrap intervals (with a
//! fixed seed, so that a run's figures print the same from the same measurements).

/// The `q` quantile (0..=1) of `sorted` (ascending), interpolated linearly between the two
/// nearest ranks (so the median of an even count is the mean of the middle two); 0 for none.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let Some(last) = sorted.len().checked_sub(1) else {
        return 0.0;
    };
    let position = q.clamp(0.0, 1.0) * last as f64;
    let (low, high) = (position.floor() as usize, position.ceil() as usize);
    sorted[low] + (sorted[high] - sorted[low]) * (position - low as f64)
}

/// `values`, sorted ascending.
pub fn sorted(values: &[f64]) -> Vec<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
}

/// The median of `values`; 0 for none.
pub fn median(values: &[f64]) -> f64 {
    quantile_sorted(&sorted(values), 0.5)
}

/// The 95 % moving-block bootstrap interval of `statistic` over `n` samples taken in sequence:
/// `statistic` is evaluated on `resamples` resamples, each the indices of `n` samples made of
/// runs of `run` consecutive samples from random starts (wrapping around), and the 2.5th and
/// 97.5th percentiles of the results are returned. With `run` 1 it is the plain bootstrap;
/// longer runs keep together the samples a lasting disturbance made alike, so that the
/// interval does not take them for independent evidence. `(0, 0)` for no samples.
pub fn bootstrap_interval(
    n: usize,
    run: usize,
    resamples: usize,
    mut statistic: impl FnMut(&[usize]) -> f64,
) -> (f64, f64) {
    if n == 0 {
        return (0.0, 0.0);
    }
    let run = run.clamp(1, n);
    let mut random = SplitMix64(0x5eed_5eed_b007_57a9);
    let mut indices = Vec::with_capacity(n + run);
    let mut results: Vec<f64> = (0..resamples.max(1))
        .map(|_| {
            indices.clear();
            while indices.len() < n {
                let start = random.below(n);
                indices.extend((start..start + run).map(|i| i % n));
            }
            indices.truncate(n);
            statistic(&indices)
        })
        .collect();
    results.sort_by(f64::total_cmp);
    (
        quantile_sorted(&results, 0.025),
        quantile_sorted(&results, 0.975),
    )
}

/// The median of some values, how widely they spread, and how precisely the median is known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// How many values.
    pub n: usize,
    /// Their median.
    pub median: f64,
    /// Their first and third quartiles (the interquartile range: where the middle half of the
    /// values lie).
    pub quartiles: (f64, f64),
    /// The 95 % bootstrap interval of the median (see [`bootstrap_interval`]).
    pub median_interval: (f64, f64),
}

impl Spread {
    /// The spread of `values` (measured in this order), with the median's interval from 2,000
    /// resamples in runs of `run` (see [`bootstrap_interval`]).
    pub fn of(values: &[f64], run: usize) -> Self {
        let all = sorted(values);
        let mut resample = Vec::with_capacity(values.len());
        let median_interval = bootstrap_interval(values.len(), run, 2000, |indices| {
            resample.clear();
            resample.extend(indices.iter().map(|&i| values[i]));
            resample.sort_by(f64::total_cmp);
            quantile_sorted(&resample, 0.5)
        });
        Self {
            n: values.len(),
            median: quantile_sorted(&all, 0.5),
            quartiles: (quantile_sorted(&all, 0.25), quantile_sorted(&all, 0.75)),
            median_interval,
        }
    }
}

/// A small, fast pseudo-random generator (SplitMix64): enough to draw bootstrap resamples.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0; the modulo bias is negligible for the small `n` used here).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_ranks() {
        let values = sorted(&[4.0, 1.0, 3.0, 2.0]);
        assert_eq!(values, [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(quantile_sorted(&values, 0.5), 2.5);
        assert_eq!(quantile_sorted(&values, 0.0), 1.0);
        assert_eq!(quantile_sorted(&values, 1.0), 4.0);
        assert_eq!(quantile_sorted(&values, 0.25), 1.75);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn the_median_interval_holds_the_median_and_narrows_with_more_values() {
        // 0.90, 0.91, … 1.10 repeated: a median of 1.0.
        let few: Vec<f64> = (0..21).map(|i| 0.9 + f64::from(i) / 100.0).collect();
        let many: Vec<f64> = few.iter().cycle().take(21 * 20).copied().collect();
        let (a, b) = (Spread::of(&few, 1), Spread::of(&many, 1));
        for spread in [a, b] {
            assert!((spread.median - 1.0).abs() < 1e-9, "{spread:?}");
            let (low, high) = spread.median_interval;
            assert!(low <= spread.median && spread.median <= high, "{spread:?}");
            assert!((spread.quartiles.0 - 0.95).abs() < 1e-9, "{spread:?}");
        }
        let width = |s: Spread| s.median_interval.1 - s.median_interval.0;
        assert!(width(b) < width(a), "{a:?} {b:?}");
        assert_eq!(bootstrap_interval(0, 1, 10, |_| 1.0), (0.0, 0.0));
    }

    #[test]
    fn runs_keep_alike_neighbours_together() {
        // 20 runs of 20 equal values (0.8 or 1.2 in turn): independent draws would pin the
        // mean near 1.0; runs of 20 see that there are only 20 independent values.
        let values: Vec<f64> = (0..400)
            .map(|i| if (i / 20) % 2 == 0 { 0.8 } else { 1.2 })
            .collect();
        let mean = |indices: &[usize]| {
            indices.iter().map(|&i| values[i]).sum::<f64>() / indices.len() as f64
        };
        let width = |(low, high): (f64, f64)| high - low;
        let plain = width(bootstrap_interval(values.len(), 1, 2000, mean));
        let runs = width(bootstrap_interval(values.len(), 20, 2000, mean));
        assert!(runs > 2.5 * plain, "{plain} {runs}");
    }
}
