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
    Some((ticks_to_cpu(others), ticks_to_cpu(named)))
}

/// The ids of this process's threads (Linux thread ids), in no particular order; empty where
/// `/proc` cannot be read.
pub fn thread_ids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The id of the calling thread (its Linux thread id), as [`thread_ids`] lists it; `None` where
/// `/proc` cannot be read.
pub fn current_thread_id() -> Option<u32> {
    // `/proc/thread-self` links to `<pid>/task/<tid>`.
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// The CPU time of a group of threads, both ways the kernel tells it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThreadsCpu {
    /// User space and kernel, from `stat` (in clock ticks: 10 ms steps per thread, so only
    /// meaningful summed over long windows).
    pub split: CpuTime,
    /// Time on a CPU, user and kernel together, from `schedstat` (nanoseconds: precise over
    /// short windows too); `split`'s total where `schedstat` is not available.
    pub on_cpu: Duration,
}

impl ThreadsCpu {
    /// `self - earlier`, saturating at zero.
    pub fn since(self, earlier: ThreadsCpu) -> ThreadsCpu {
        ThreadsCpu {
            split: self.split.since(earlier.split),
            on_cpu: self.on_cpu.saturating_sub(earlier.on_cpu),
        }
    }

    /// Adds `other`.
    pub fn add(&mut self, other: ThreadsCpu) {
        self.split.add(other.split);
        self.on_cpu += other.on_cpu;
    }
}

/// The CPU time of the threads `tids` of this process (see [`thread_ids`]); a thread that has
/// ended counts nothing.
pub fn threads_cpu(tids: &[u32]) -> ThreadsCpu {
    let mut ticks = [0u64; 2];
    let mut on_cpu_ns = 0u64;
    let mut schedstat_everywhere = true;
    for tid in tids {
        let dir = format!("/proc/self/task/{tid}");
        let Ok(stat) = std::fs::read_to_string(format!("{dir}/stat")) else {
            continue;
        };
        if let Some((_, user, system)) = parse_stat(&stat) {
            ticks[0] += user;
            ticks[1] += system;
        }
        match std::fs::read_to_string(format!("{dir}/schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        {
            Some(ns) => on_cpu_ns += ns,
            None => schedstat_everywhere = false,
        }
    }
    let split = ticks_to_cpu(ticks);
    ThreadsCpu {
        split,
        on_cpu: if schedstat_everywhere {
            Duration::from_nanos(on_cpu_ns)
        } else {
            split.total()
        },
    }
}

fn ticks_to_cpu([user, system]: [u64; 2]) -> CpuTime {
    CpuTime {
        user: Duration::from_millis(user * 1000 / CLOCK_TICKS_PER_SEC),
        system: Duration::from_millis(system * 1000 / CLOCK_TICKS_PER_SEC),
    }
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

    /// Spins until this thread has been on a CPU for `cpu` (so that a busy machine, which
    /// gives it less than the wall-clock time, cannot fail the tests), at most 10 s.
    fn spin_for(cpu: Duration) {
        let tid = current_thread_id();
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_secs(10) {
            let own = tid.map_or(spin.elapsed(), |tid| threads_cpu(&[tid]).on_cpu);
            if own >= cpu {
                break;
            }
        }
    }

    #[test]
    fn this_process_has_a_cpu_time() {
        spin_for(Duration::from_millis(30));
        let (others, named) = process_cpu_split("no such thread").unwrap();
        assert_eq!(named, CpuTime::default());
        assert!(others.total() > Duration::ZERO || cfg!(not(target_os = "linux")));
    }

    #[test]
    fn a_thread_is_told_apart_by_its_id() {
        if !cfg!(target_os = "linux") {
            return;
        }
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let spinner = std::thread::spawn(move || {
            spin_for(Duration::from_millis(30));
            tid_tx.send(current_thread_id()).unwrap();
            let _ = done_rx.recv();
        });
        let tid = tid_rx.recv().unwrap().unwrap();
        assert!(thread_ids().contains(&tid));
        let cpu = threads_cpu(&[tid]);
        assert!(cpu.on_cpu >= Duration::from_millis(20), "{cpu:?}");
        assert_eq!(threads_cpu(&[]), ThreadsCpu::default());
        drop(done_tx);
        spinner.join().unwrap();
    }
}
