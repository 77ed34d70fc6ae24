//! Where a benchmark's CPU goes, process by process, read from `/proc` (Linux): this process, and
//! the servers of a local stack found by the port they listen on, each with its children (a
//! Postgres server is a postmaster and a backend per connection). A closed loop that is CPU-bound
//! says so here, and which process to make cheaper.

use std::collections::BTreeMap;

use serde::Serialize;

/// The kernel's fixed USER_HZ: `/proc` counts CPU time in these ticks.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds spent so far, by what was measured, and the machine's busy and total time.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub by_process: BTreeMap<&'static str, f64>,
    machine_busy: f64,
    machine_total: f64,
}

/// What a stretch of the benchmark cost, per query.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CpuPerQuery {
    /// CPU ms per query, by process (`quorum` is this process; others absent if not found).
    pub ms: BTreeMap<&'static str, f64>,
    /// Share of all the machine's cores that was busy, 0 to 1, whatever the process.
    pub machine_busy: f64,
}

/// The processes measured: this one, and those listening on `ports` (name, port).
pub fn sample(ports: &[(&'static str, u16)]) -> Sample {
    let mut by_process = BTreeMap::new();
    if let Some(own) = cpu_of_tree(std::process::id(), false) {
        by_process.insert("quorum", own);
    }
    for &(name, port) in ports {
        if let Some(cpu) = listener_pid(port).and_then(|pid| cpu_of_tree(pid, true)) {
            by_process.insert(name, cpu);
        }
    }
    let (machine_busy, machine_total) = machine().unwrap_or_default();
    Sample {
        by_process,
        machine_busy,
        machine_total,
    }
}

/// What happened between `before` and `after`, spread over `queries`.
pub fn per_query(before: &Sample, after: &Sample, queries: u64) -> CpuPerQuery {
    let queries = queries.max(1) as f64;
    let ms = after
        .by_process
        .iter()
        .filter_map(|(name, end)| {
            let start = before.by_process.get(name)?;
            Some((*name, (end - start) * 1000.0 / queries))
        })
        .collect();
    let total = after.machine_total - before.machine_total;
    CpuPerQuery {
        ms,
        machine_busy: if total > 0.0 {
            (after.machine_busy - before.machine_busy) / total
        } else {
            0.0
        },
    }
}

/// CPU seconds the whole machine has been busy so far, all cores and processes together.
pub fn machine_busy_seconds() -> f64 {
    machine().map_or(0.0, |(busy, _)| busy / TICKS_PER_SECOND)
}

/// User and system CPU seconds of this process, so far.
pub fn own_cpu() -> f64 {
    stat(std::process::id()).map_or(0.0, |s| (s.utime + s.stime) / TICKS_PER_SECOND)
}

/// User and system CPU seconds of this process's children that have ended and been waited for.
pub fn reaped_children_cpu() -> f64 {
    stat(std::process::id()).map_or(0.0, |s| (s.cutime + s.cstime) / TICKS_PER_SECOND)
}

/// User and system CPU seconds of `pid`, with those of its children when `children` (living ones,
/// and those it has reaped).
fn cpu_of_tree(pid: u32, children: bool) -> Option<f64> {
    let own = stat(pid)?;
    let mut ticks = own.utime + own.stime;
    if children {
        ticks += own.cutime + own.cstime;
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            if let Some(s) = stat(child).filter(|s| s.ppid == pid) {
                ticks += s.utime + s.stime;
            }
        }
    }
    Some(ticks / TICKS_PER_SECOND)
}

struct Stat {
    ppid: u32,
    utime: f64,
    stime: f64,
    cutime: f64,
    cstime: f64,
}

/// Fields of `/proc/<pid>/stat` (proc(5)); the command name, in parentheses, may hold spaces.
fn stat(pid: u32) -> Option<Stat> {
    let line = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = line.rsplit_once(')')?;
    // After the name: state (3), ppid (4), … utime (14), stime (15), cutime (16), cstime (17).
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| f.get(n - 3)?.parse::<f64>().ok();
    Some(Stat {
        ppid: f.get(1)?.parse().ok()?,
        utime: field(14)?,
        stime: field(15)?,
        cutime: field(16)?,
        cstime: field(17)?,
    })
}

/// Busy and total CPU ticks of the machine, all cores (`/proc/stat`'s first line).
fn machine() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|t| t.parse().ok())
        .collect();
    let total: f64 = ticks.iter().sum();
    // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
    let idle = ticks.get(3)? + ticks.get(4)?;
    Some((total - idle, total))
}

/// The process listening on TCP `port`: the socket's inode from `/proc/net/tcp{,6}`, then the
/// process holding a descriptor of it.
fn listener_pid(port: u16) -> Option<u32> {
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .find_map(|table| {
            std::fs::read_to_string(table)
                .ok()?
                .lines()
                .skip(1)
                .find_map(|line| listening_inode(line, port))
        })?;
    let socket = format!("socket:[{inode}]");
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let fds = std::fs::read_dir(entry.path().join("fd")).ok()?;
            fds.flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == &*socket))
                .then_some(pid)
        })
}

/// The inode of a `/proc/net/tcp` line's socket if it listens on `port`.
fn listening_inode(line: &str, port: u16) -> Option<u64> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let local_port = u16::from_str_radix(f.get(1)?.rsplit_once(':')?.1, 16).ok()?;
    // State 0A is LISTEN.
    (local_port == port && *f.get(3)? == "0A")
        .then(|| f.get(9)?.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_socket_is_found_with_its_process_and_cpu() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(listener_pid(port), Some(std::process::id()));
        let before = sample(&[("self", port)]);
        // Some CPU to count.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let after = sample(&[("self", port)]);
        let cost = per_query(&before, &after, 1);
        assert!(cost.ms.contains_key("quorum") && cost.ms.contains_key("self"));
        assert!((0.0..=1.0).contains(&cost.machine_busy));
        assert_eq!(listener_pid(1), None, "nothing listens on port 1");
    }
}
