//! Runaway programs are stopped, and nothing they started outlives the run.
//!
//! These need root: the child is switched to a per-test uid, which is also how the checks
//! find every process it made.

use crate::common;

use std::time::Duration;

use common::{assert_no_survivors, exists, is_root, req, sandbox};
use quorum_sandbox::{ExecError, KillReason, run};

macro_rules! require_root {
    () => {
        if !quorum_testkit::require(
            is_root(),
            "the sandbox tests need root to switch the child to a test uid",
        ) {
            return;
        }
    };
}

#[tokio::test]
async fn timeout_kills_the_whole_group_even_when_term_is_ignored() {
    require_root!();
    let mut sb = sandbox("timeout", 10, &["/bin/sh"]);
    sb.policy.max_timeout = Duration::from_secs(1);
    let mut r = req(
        "/bin/sh",
        &[
            "-c",
            r#"echo started; trap "" TERM; sleep 1000 & sleep 1000"#,
        ],
    );
    // Capped by the policy's max_timeout.
    r.timeout = Some(Duration::from_secs(1000));

    let err = run(&sb.policy, &sb.workdir, &r).await.unwrap_err();
    let ExecError::TimedOut { timeout, partial } = &err else {
        panic!("expected a timeout, got {err:?}");
    };
    assert_eq!(*timeout, Duration::from_secs(1));
    assert_eq!(partial.killed, Some(KillReason::Timeout));
    assert_eq!(partial.signal, Some(libc::SIGKILL));
    assert_eq!(
        partial.stdout, b"started\n",
        "output before the kill is kept"
    );
    assert!(err.is_retryable());
    assert_no_survivors(sb.uid);
}

#[tokio::test]
async fn background_children_die_when_the_leader_exits() {
    require_root!();
    let sb = sandbox("background", 11, &["/bin/sh"]);
    let r = req("/bin/sh", &["-c", "sleep 1000 & sleep 1000 & echo done"]);
    let out = run(&sb.policy, &sb.workdir, &r).await.unwrap();
    assert_eq!(out.status, Some(0));
    assert_eq!(out.stdout, b"done\n");
    assert_eq!(out.killed, None);
    assert_no_survivors(sb.uid);
}

/// Starts a child in a session of its own and returns only once it is there, so the leader's
/// exit cannot kill it before it has escaped.
const ESCAPE: &str = "setsid sh -c 'echo $$ > escaped.pid; exec sleep 1000' >/dev/null 2>&1 </dev/null & \
     while [ ! -s escaped.pid ]; do sleep 0.1; done; echo done";

#[tokio::test]
async fn exclusive_uid_also_kills_children_that_left_the_session() {
    require_root!();
    let mut sb = sandbox("escape", 12, &["/bin/sh"]);
    sb.policy.run_as.exclusive = true;
    let r = req("/bin/sh", &["-c", ESCAPE]);
    let out = run(&sb.policy, &sb.workdir, &r).await.unwrap();
    assert_eq!(out.stdout, b"done\n");
    assert_no_survivors(sb.uid);
}

#[tokio::test]
async fn fork_bomb_stops_at_the_process_limit_and_the_service_stays_healthy() {
    require_root!();
    let mut sb = sandbox("forkbomb", 13, &["/bin/sh", "/bin/echo"]);
    sb.policy.limits.processes = 20;
    let mut bomb = req(
        "/bin/sh",
        &[
            "-c",
            "i=0; while [ $i -lt 500 ]; do sleep 1000 & i=$((i+1)); done; echo spawned $i",
        ],
    );
    bomb.timeout = Some(Duration::from_secs(20));

    // It may give up on its own when fork fails, or run into the timeout: both are fine,
    // as long as run returns and the limit held.
    let (stdout, stderr) = match run(&sb.policy, &sb.workdir, &bomb).await {
        Ok(out) => (out.stdout, out.stderr),
        Err(ExecError::TimedOut { partial, .. }) => (partial.stdout, partial.stderr),
        Err(e) => panic!("{e}"),
    };
    let stdout = String::from_utf8_lossy(&stdout);
    let stderr = String::from_utf8_lossy(&stderr);
    assert!(!stdout.contains("spawned 500"), "all 500 forks succeeded");
    assert!(stderr.contains("fork"), "no fork failure seen: {stderr}");
    assert_no_survivors(sb.uid);

    // Killed processes are reaped by init in its own time, and until then they still count
    // against the uid's limit: a spawn refused meanwhile is reported as retryable.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let out = loop {
        match run(&sb.policy, &sb.workdir, &req("/bin/echo", &["healthy"])).await {
            Ok(out) => break out,
            Err(e) if e.is_retryable() && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("service did not recover: {e}"),
        }
    };
    assert_eq!(out.stdout, b"healthy\n");
}

#[tokio::test]
async fn memory_hog_fails_instead_of_growing() {
    require_root!();
    let mut sb = sandbox("memory", 14, &["/usr/bin/python3"]);
    sb.policy.limits.address_space_bytes = 256 << 20;
    let r = req("/usr/bin/python3", &["-c", "b = bytearray(1 << 31)"]);
    let out = run(&sb.policy, &sb.workdir, &r).await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status, Some(0));
    assert!(out.status.is_some(), "died by signal {:?}", out.signal);
    assert!(stderr.contains("MemoryError"), "{stderr}");

    // The limit applied to the child only: this process can still allocate as much.
    let mine = vec![1u8; 300 << 20];
    assert_eq!(mine.iter().map(|&b| b as usize).sum::<usize>(), 300 << 20);
}

#[tokio::test]
async fn output_is_capped_without_blocking_the_child() {
    require_root!();
    let mut sb = sandbox("output", 15, &["/bin/sh"]);
    sb.policy.max_output_bytes = 4096;
    let r = req(
        "/bin/sh",
        &[
            "-c",
            "head -c 1048576 /dev/zero; head -c 1048576 /dev/zero >&2; echo tail >&2",
        ],
    );
    let out = run(&sb.policy, &sb.workdir, &r).await.unwrap();
    assert_eq!(out.status, Some(0), "the child finished writing everything");
    assert_eq!(out.stdout, vec![0u8; 4096]);
    assert_eq!(out.stderr, vec![0u8; 4096]);
    assert!(out.stdout_truncated && out.stderr_truncated);

    let small = run(&sb.policy, &sb.workdir, &req("/bin/sh", &["-c", "echo hi"]))
        .await
        .unwrap();
    assert!(!small.stdout_truncated);
}

#[tokio::test]
async fn child_runs_unprivileged_and_writes_only_in_its_workdir() {
    require_root!();
    let sb = sandbox("confined", 16, &["/usr/bin/id", "/usr/bin/touch"]);
    let wd = &sb.workdir;
    let out = run(&sb.policy, wd, &req("/usr/bin/id", &[])).await.unwrap();
    let id = String::from_utf8(out.stdout).unwrap();
    assert!(
        id.starts_with(&format!("uid={} gid={} groups={}", sb.uid, sb.uid, sb.uid)),
        "{id}"
    );

    let out = run(&sb.policy, wd, &req("/usr/bin/touch", &["inside"]))
        .await
        .unwrap();
    assert_eq!(
        out.status,
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(exists(wd, "inside"));

    // /tmp is world-writable, so only Landlock keeps the child out of it.
    let outside = std::env::temp_dir().join(format!("quorum-sandbox-outside-{}", sb.uid));
    let _ = std::fs::remove_file(&outside);
    let r = req("/usr/bin/touch", &[outside.to_str().unwrap()]);
    let out = run(&sb.policy, wd, &r).await.unwrap();
    // A strict sandbox runs nothing without Landlock, so a run that happened was confined.
    assert!(out.landlock);
    assert_ne!(out.status, Some(0));
    assert!(!outside.exists(), "landlock let the child write outside");
}

#[tokio::test]
async fn abandoning_a_run_midway_kills_its_group() {
    require_root!();
    let sb = sandbox("cancel", 17, &["/bin/sh"]);
    let r = req("/bin/sh", &["-c", "sleep 1000 & sleep 1000"]);
    // The caller gives up (e.g. its saga was cancelled) and drops the future.
    let res =
        tokio::time::timeout(Duration::from_millis(500), run(&sb.policy, &sb.workdir, &r)).await;
    assert!(res.is_err(), "the run should still have been going");
    assert_no_survivors(sb.uid);
}
