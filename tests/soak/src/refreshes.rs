//! When the token and ticket endpoints were called: samples of the simulator's call counters
//! grouped into bursts (calls less than a few seconds apart belong to one refresh), so that
//! "one call per refresh" can be checked refresh by refresh, and outside Redis outages.

/// New calls to one credential's endpoint seen by one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// When, in seconds from the start.
    pub at: f64,
    /// Calls since the previous sample.
    pub calls: u64,
    /// Of those, calls an injected fault answered (not delays).
    pub faulted: u64,
}

/// Calls close together: one refresh (and its retries).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Burst {
    /// The first sample's time.
    pub start: f64,
    /// The last sample's time.
    pub end: f64,
    /// Calls.
    pub calls: u64,
    /// Calls an injected fault answered.
    pub faulted: u64,
}

impl Burst {
    /// Calls WeChat answered.
    pub fn answered(&self) -> u64 {
        self.calls - self.faulted.min(self.calls)
    }

    /// Whether it overlaps one of `outages` (start, end), the end extended by `slack`.
    pub fn during(&self, outages: &[(f64, f64)], slack: f64) -> bool {
        outages
            .iter()
            .any(|(down, up)| self.end >= *down && self.start <= up + slack)
    }
}

/// Groups `samples` (in time order) into bursts: a gap of more than `gap` seconds starts a new
/// one.
pub fn bursts(samples: &[Sample], gap: f64) -> Vec<Burst> {
    let mut out: Vec<Burst> = Vec::new();
    for s in samples.iter().filter(|s| s.calls > 0) {
        match out.last_mut() {
            Some(b) if s.at - b.end <= gap => {
                b.end = s.at;
                b.calls += s.calls;
                b.faulted += s.faulted;
            }
            _ => out.push(Burst {
                start: s.at,
                end: s.at,
                calls: s.calls,
                faulted: s.faulted,
            }),
        }
    }
    out
}

/// `0.5 s: 1; 60.5–62.0 s: 4 (Redis down); 110.5 s: 2 (1 faulted)`.
pub fn describe(bursts: &[Burst], outages: &[(f64, f64)], slack: f64) -> String {
    if bursts.is_empty() {
        return "none".to_owned();
    }
    bursts
        .iter()
        .map(|b| {
            let when = if b.end - b.start < 0.05 {
                format!("{:.1} s", b.start)
            } else {
                format!("{:.1}–{:.1} s", b.start, b.end)
            };
            let mut notes = Vec::new();
            if b.faulted > 0 {
                notes.push(format!("{} faulted", b.faulted));
            }
            if b.during(outages, slack) {
                notes.push("Redis down".to_owned());
            }
            if notes.is_empty() {
                format!("{when}: {}", b.calls)
            } else {
                format!("{when}: {} ({})", b.calls, notes.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(at: f64, calls: u64, faulted: u64) -> Sample {
        Sample { at, calls, faulted }
    }

    #[test]
    fn close_calls_are_one_burst() {
        let samples = [
            s(0.5, 1, 0),
            s(50.5, 1, 0),
            s(60.5, 2, 0),
            s(61.0, 0, 0),
            s(62.0, 2, 0),
            s(110.5, 2, 1),
        ];
        let b = bursts(&samples, 3.0);
        assert_eq!(b.len(), 4);
        assert_eq!((b[2].start, b[2].end, b[2].calls), (60.5, 62.0, 4));
        assert_eq!(b[3].answered(), 1);
        let outages = [(60.0, 65.0)];
        assert!(b[2].during(&outages, 2.0));
        assert!(!b[1].during(&outages, 2.0));
        assert!(!b[3].during(&outages, 2.0));
        assert_eq!(
            describe(&b, &outages, 2.0),
            "0.5 s: 1; 50.5 s: 1; 60.5–62.0 s: 4 (Redis down); 110.5 s: 2 (1 faulted)"
        );
        assert_eq!(describe(&[], &outages, 2.0), "none");
    }
}
