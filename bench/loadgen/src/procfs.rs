//! Server (and own) resource readings from /proc.

/// Resident set size of `pid` in bytes (`VmRSS` of /proc/<pid>/status).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// User + system CPU seconds of `pid` (all threads), from /proc/<pid>/stat.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = if ticks > 0 { ticks as f64 } else { 100.0 };
    Some((utime + stime) as f64 / ticks)
}

/// Raises this process's RLIMIT_NOFILE soft limit to the hard limit; returns it.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: `lim` is a valid rlimit with cur <= max.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    lim.rlim_cur
}

/// CPU seconds of `pid` from the scheduler's nanosecond run time: the sum
/// of the first field of /proc/<pid>/task/*/schedstat. Precise, unlike the
/// 10 ms ticks of /proc/<pid>/stat, but blind to threads that have exited.
pub fn cpu_seconds_precise(pid: u32) -> Option<f64> {
    let mut ns: u64 = 0;
    let mut any = false;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(task) = task else { continue };
        let Ok(s) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue; // the thread just ended
        };
        ns += s.split_whitespace().next()?.parse::<u64>().ok()?;
        any = true;
    }
    any.then(|| ns as f64 / 1e9)
}

/// One reading of a process's CPU time, both ways.
#[derive(Debug, Clone, Copy)]
struct Reading {
    ticks: Option<f64>,
    precise: Option<f64>,
}

impl Reading {
    fn of(pid: Option<u32>) -> Reading {
        Reading {
            ticks: pid.and_then(cpu_seconds),
            precise: pid.and_then(cpu_seconds_precise),
        }
    }

    /// CPU seconds from `self` to `later`: the precise difference, unless a
    /// thread ended in between (the precise sum then lags the tick count by
    /// more than the tick rounding), then the tick difference.
    fn to(self, later: Reading) -> Option<f64> {
        let ticks = Some(later.ticks? - self.ticks?);
        match (later.precise, self.precise) {
            (Some(b), Some(a)) => {
                let p = b - a;
                match ticks {
                    Some(t) if p < t - 0.025 => Some(t),
                    _ => Some(p),
                }
            }
            _ => ticks,
        }
    }
}

/// CPU seconds of the server and of this process between two points.
#[derive(Debug, Clone, Copy)]
pub struct CpuMark {
    server: Reading,
    own: Reading,
}

impl CpuMark {
    pub fn now(server_pid: Option<u32>) -> CpuMark {
        CpuMark {
            server: Reading::of(server_pid),
            own: Reading::of(Some(std::process::id())),
        }
    }

    /// (server CPU-seconds, load generator CPU-seconds) since `self`.
    pub fn since(&self, server_pid: Option<u32>) -> (Option<f64>, Option<f64>) {
        let later = CpuMark::now(server_pid);
        (self.server.to(later.server), self.own.to(later.own))
    }
}
