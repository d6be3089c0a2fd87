//! CPU time of this process's threads, from `/proc/self/task/*/stat` (Linux).

use std::time::Duration;

/// Linux's `USER_HZ`: the unit of `utime` and `stime` in `/proc/*/stat` (100 on every
/// mainstream configuration).
const CLOCK_TICKS_PER_SEC: u64 = 100;

/// CPU time, split into user space and kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTime {
    /// Time in user space.
    pub user: Duration,
    /// Time in the kernel (system calls, here mostly the loopback TCP stack).
    pub system: Duration,
}

impl CpuTime {
    /// User plus system time.
    pub fn total(self) -> Duration {
        self.user + self.system
    }

    /// `self - earlier`, saturating at zero.
    pub fn since(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }

    /// Adds `other`.
    pub fn add(&mut self, other: CpuTime) {
        self.user += other.user;
        self.system += other.system;
    }
}

/// The CPU time of this process's threads: `(threads not named `name`, threads named `name`)`;
/// `None` where `/proc` cannot be read.
pub fn process_cpu_split(name: &str) -> Option<(CpuTime, CpuTime)> {
    let mut others = [0u64; 2];
    let mut named = [0u64; 2];
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(entry) = entry else { continue };
        // A thread that ended meanwhile has no stat any more: skip it.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((thread, user, system)) = parse_stat(&stat) {
            let sums = if thread == name {
                &mut named
            } else {
                &mut others
            };
            sums[0] += user;
            sums[1] += system;
        }
    }
    let to_cpu = |[user, system]: [u64; 2]| CpuTime {
        user: Duration::from_millis(user * 1000 / CLOCK_TICKS_PER_SEC),
        system: Duration::from_millis(system * 1000 / CLOCK_TICKS_PER_SEC),
    };
    Some((to_cpu(others), to_cpu(named)))
}

/// The thread name, `utime` and `stime` (clock ticks) of a `/proc/…/stat` line.
fn parse_stat(stat: &str) -> Option<(&str, u64, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?;
    // After the name: state (field 3) … utime (14), stime (15).
    let mut fields = stat.get(close + 1..)?.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((name, utime, stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_are_parsed() {
        let line =
            "1234 (actix-rt|system:0|arbiter:1) S 1 2 3 4 5 6 7 8 9 10 250 35 0 0 20 0 1 0 5 0 0";
        assert_eq!(
            parse_stat(line),
            Some(("actix-rt|system:0|arbiter:1", 250, 35))
        );
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn this_process_has_a_cpu_time() {
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(30) {}
        let (others, named) = process_cpu_split("no such thread").unwrap();
        assert_eq!(named, CpuTime::default());
        assert!(others.total() > Duration::ZERO || cfg!(not(target_os = "linux")));
    }
}
