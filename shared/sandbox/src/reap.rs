//! Making sure nothing a run started outlives it.

use std::fs;
use std::time::{Duration, Instant};

/// How long to keep killing before giving up on processes that will not die (e.g. stuck in
/// uninterruptible sleep); they cannot run user code any more once SIGKILL is pending.
const KILL_DEADLINE: Duration = Duration::from_secs(10);

/// Kills the child's process group and session, and with `exclusive_uid` every process of
/// that uid, until none is left alive.
///
/// `leader` is the pid of the child, which made itself session and group leader with
/// `setsid`. The kernel does not hand out a pid while it still names a live group or
/// session, so signalling `-leader` cannot hit an unrelated process while any member lives.
pub(crate) async fn kill_all(leader: i32, exclusive_uid: Option<u32>) {
    if leader <= 1 {
        // kill(-1) or kill(0) would hit far more than the sandbox.
        return;
    }
    let deadline = Instant::now() + KILL_DEADLINE;
    loop {
        signal_group(leader);
        let left = survivors(leader, exclusive_uid);
        if left.is_empty() || Instant::now() >= deadline {
            return;
        }
        for pid in left {
            signal(pid);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Kills the group if a run is abandoned midway (its future dropped), where nothing can be
/// awaited any more.
pub(crate) struct GroupGuard(pub(crate) i32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.0 > 1 {
            signal_group(self.0);
        }
    }
}

fn signal_group(pgid: i32) {
    // SAFETY: kill has no memory-safety preconditions; pgid > 1 is checked by the callers.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

fn signal(pid: i32) {
    if pid > 1 {
        // SAFETY: as in signal_group.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// Live (non-zombie) processes in the leader's group or session, or owned by `uid`.
fn survivors(leader: i32, uid: Option<u32>) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Some(stat) = ProcStat::read(pid) else {
            continue;
        };
        if stat.state == 'Z' || stat.state == 'X' {
            continue;
        }
        let ours = stat.pgrp == leader
            || stat.session == leader
            || uid.is_some_and(|u| proc_uids(pid).contains(&u));
        if ours {
            found.push(pid);
        }
    }
    found
}

struct ProcStat {
    state: char,
    pgrp: i32,
    session: i32,
}

impl ProcStat {
    fn read(pid: i32) -> Option<Self> {
        let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may contain spaces and parentheses; fields resume after the last ')'.
        let rest = &text[text.rfind(')')? + 1..];
        let mut fields = rest.split_whitespace();
        let state = fields.next()?.chars().next()?;
        let _ppid = fields.next()?;
        let pgrp = fields.next()?.parse().ok()?;
        let session = fields.next()?.parse().ok()?;
        Some(Self {
            state,
            pgrp,
            session,
        })
    }
}

/// Real and effective uid of `pid`, or nothing if it is gone.
fn proc_uids(pid: i32) -> Vec<u32> {
    let Ok(text) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Vec::new();
    };
    text.lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .map(|ids| {
            ids.split_whitespace()
                .take(2)
                .filter_map(|s| s.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_own_stat() {
        let me = std::process::id() as i32;
        let stat = ProcStat::read(me).expect("own /proc stat");
        assert_ne!(stat.state, 'Z');
        assert!(stat.pgrp > 0 && stat.session >= 0);
        assert!(!proc_uids(me).is_empty());
    }
}
