//! Shared fixtures: a private workdir and a uid of its own for each test.
//!
//! RLIMIT_NPROC and the "nothing survives" checks count every process of a uid on the
//! machine, so two tests sharing a uid would disturb each other. Each test takes a distinct
//! slot; the pid term keeps concurrent runs of the suite apart. These uids have no passwd
//! entry, which setuid does not need.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use quorum_sandbox::{ExecRequest, Policy, RunAs, saga_workdir_for};

pub struct Sandbox {
    pub policy: Policy,
    pub workdir: PathBuf,
    pub uid: u32,
    root: PathBuf,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

/// A sandbox allowing `programs`, running as a uid nobody else uses.
pub fn sandbox(name: &str, slot: u32, programs: &[&str]) -> Sandbox {
    assert!(slot < 20);
    let uid = 61_000 + (std::process::id() % 200) * 20 + slot;
    let left = live_procs_of_uid(uid);
    assert!(left.is_empty(), "uid {uid} is already in use: {left:?}");
    let policy = Policy {
        allowed_programs: programs.iter().map(PathBuf::from).collect(),
        max_timeout: Duration::from_secs(120),
        default_timeout: Duration::from_secs(60),
        run_as: RunAs {
            uid,
            gid: uid,
            exclusive: false,
        },
        ..Policy::default()
    };
    let root =
        std::env::temp_dir().join(format!("quorum-sandbox-it-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    let workdir = saga_workdir_for(&policy, &root, name).unwrap();
    Sandbox {
        policy,
        workdir,
        uid,
        root,
    }
}

pub fn req(program: &str, args: &[&str]) -> ExecRequest {
    ExecRequest {
        program: program.to_owned(),
        args: args.iter().map(|a| a.to_string()).collect(),
        ..ExecRequest::default()
    }
}

/// Live (non-zombie) processes whose real or effective uid is `uid`, with their command.
pub fn live_procs_of_uid(uid: u32) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .unwrap_or("")
                .trim()
                .to_owned()
        };
        if field("State:").starts_with('Z') {
            continue;
        }
        let ids = field("Uid:");
        let mut ids = ids.split_whitespace().take(2);
        if ids.any(|id| id == uid.to_string()) {
            let cmd = fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            found.push((pid, cmd.replace('\0', " ")));
        }
    }
    found
}

/// Waits, generously, for every process of `uid` to be gone, and says what is left if not.
/// `run` already waits for its kills to land; the slack is for a loaded machine.
pub fn assert_no_survivors(uid: u32) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = live_procs_of_uid(uid);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes of uid {uid} survived: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn exists(dir: &Path, name: &str) -> bool {
    dir.join(name).symlink_metadata().is_ok()
}
