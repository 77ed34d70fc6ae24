//! Running one request: checks, spawn, timeout, capture and cleanup.

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

use crate::capture::{Capture, read_open};
use crate::checks::{build_env, canonical_workdir, check_path_args, check_program};
use crate::containment::{Support, decide, netns_flags, support};
use crate::error::ExecError;
use crate::landlock::Allowed;
use crate::limits::{ChildSetup, is_root};
use crate::policy::Policy;
use crate::reap::{GroupGuard, kill_all};

/// After the leader exits and its group is killed, how long to wait for the pipes to close.
/// Only a process that escaped the group with `setsid` can hold them open longer; its output
/// is then cut off rather than letting it stall the service.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// One program invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecRequest {
    /// Absolute path; must be on [`Policy::allowed_programs`].
    pub program: String,
    /// Passed as argv, never through a shell.
    pub args: Vec<String>,
    /// Indexes into `args` of file paths, which must stay beneath the workdir.
    pub path_args: Vec<usize>,
    /// Variables for the child. A name not on [`Policy::env_allowlist`] refuses the whole
    /// request rather than being dropped, so a caller never runs with an environment other
    /// than the one it asked for.
    pub env: BTreeMap<String, String>,
    /// Wall-clock limit, capped by [`Policy::max_timeout`]; `None` means the policy default.
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KillReason {
    Timeout,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExecOutput {
    /// Exit code, when the program exited rather than being killed by a signal.
    pub status: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    /// Set when the sandbox killed the program, e.g. in the partial output of a timeout.
    pub killed: Option<KillReason>,
    pub duration: Duration,
    /// Whether Landlock confined the child's reads and writes (workdir, program, read paths).
    pub landlock: bool,
    /// Whether the child ran in a network namespace of its own.
    pub network_namespace: bool,
    /// Whether Landlock also refused the child every TCP connect and bind.
    pub landlock_tcp: bool,
}

/// Runs `req` in `workdir` under `policy`.
///
/// Every check is done before anything is spawned, so a refusal means nothing ran; in `strict`
/// mode a machine that cannot contain the child refuses every run. On return
/// the child's process group and session have been killed, including anything it left in the
/// background. A timeout is `Err(ExecError::TimedOut)` carrying the partial output.
pub async fn run(
    policy: &Policy,
    workdir: &Path,
    req: &ExecRequest,
) -> Result<ExecOutput, ExecError> {
    run_on(support().await, policy, workdir, req).await
}

/// [`run`] as on a machine offering `support`, which may claim less than this one has (never
/// more: what the kernel lacks fails the run). Shows what a machine without Landlock or
/// namespaces does under each mode.
pub async fn run_on(
    support: &Support,
    policy: &Policy,
    workdir: &Path,
    req: &ExecRequest,
) -> Result<ExecOutput, ExecError> {
    let program = check_program(policy, &req.program)?;
    let workdir = canonical_workdir(workdir)?;
    check_path_args(&workdir, req)?;
    let env = build_env(policy, &req.env)?;
    let timeout = req
        .timeout
        .unwrap_or(policy.default_timeout)
        .min(policy.max_timeout);

    let creds =
        (policy.drop_privileges && is_root()).then_some((policy.run_as.uid, policy.run_as.gid));
    let contained = decide(policy.mode, support);
    if let Some(reason) = contained.refused {
        return Err(ExecError::Uncontained { reason });
    }
    let ruleset = match contained.filesystem {
        true => ruleset(policy, &workdir, &program)?,
        false => None,
    };
    let netns = contained.network_namespace.then(netns_flags);
    let setup = ChildSetup::new(
        &policy.limits,
        creds,
        ruleset.as_ref().map(|r| r.fd.as_raw_fd()),
        netns,
    );
    let landlock = ruleset.as_ref().is_some();
    let landlock_tcp = ruleset.as_ref().is_some_and(|r| r.tcp_denied);

    let mut cmd = command(&program, req, env, &workdir, setup);
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(ExecError::Spawn)?;
    // The child holds its own copy until exec, which closes it (CLOEXEC).
    drop(ruleset);
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .ok_or_else(|| ExecError::Spawn(std::io::Error::other("spawned child has no pid")))?;
    let mut guard = GroupGuard(pid);
    let exclusive_uid = creds
        .filter(|_| policy.run_as.exclusive)
        .map(|(uid, _)| uid);

    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let outcome = supervise(
        &mut child,
        stdout,
        stderr,
        timeout,
        policy.max_output_bytes,
        pid,
        exclusive_uid,
    )
    .await;
    // Everything is dead and reaped; the pgid may be reused from here on.
    guard.0 = 0;

    let Supervised {
        status,
        stdout,
        stderr,
        timed_out,
    } = outcome?;
    let output = ExecOutput {
        status: status.code(),
        signal: status.signal(),
        stdout: stdout.bytes,
        stderr: stderr.bytes,
        stdout_truncated: stdout.truncated,
        stderr_truncated: stderr.truncated,
        killed: timed_out.then_some(KillReason::Timeout),
        duration: started.elapsed(),
        landlock,
        network_namespace: netns.is_some(),
        landlock_tcp,
    };
    if timed_out {
        return Err(ExecError::TimedOut {
            timeout,
            partial: Box::new(output),
        });
    }
    Ok(output)
}

/// The Landlock ruleset confining the child to `workdir`, `program` and the policy's read paths;
/// `None` when the kernel has no Landlock.
fn ruleset(
    policy: &Policy,
    workdir: &Path,
    program: &Path,
) -> Result<Option<crate::landlock::Ruleset>, ExecError> {
    let allowed = Allowed {
        workdir,
        program,
        read_paths: &policy.read_paths,
    };
    // Best effort is only about what the kernel lacks; a ruleset that fails to build on a kernel
    // that has Landlock is a fault, and no run goes on unconfined for it.
    crate::landlock::prepare(&allowed).map_err(ExecError::Setup)
}

/// The child's command: `program` run as `req` asks, with `env` alone, in `workdir`, nothing on
/// its standard input, its output piped, and `setup` applied between fork and exec.
fn command(
    program: &Path,
    req: &ExecRequest,
    env: Vec<(String, String)>,
    workdir: &Path,
    setup: ChildSetup,
) -> Command {
    let mut cmd = Command::new(program);
    cmd.arg0(&req.program)
        .args(&req.args)
        .env_clear()
        .envs(env)
        .current_dir(workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // SAFETY: the closure runs between fork and exec in the child, where only
    // async-signal-safe calls are sound. `apply_in_child` makes only raw syscalls (setsid,
    // setrlimit, unshare, prctl, landlock_restrict_self, setgroups, setgid, setuid) on a Copy value
    // moved in here, with no allocation, locking or panicking.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(move || setup.apply_in_child());
    }
    cmd
}

struct Supervised {
    status: ExitStatus,
    stdout: Capture,
    stderr: Capture,
    timed_out: bool,
}

/// Reads both pipes while waiting for the leader, enforcing the timeout, then kills what is
/// left of the group so the pipes close.
async fn supervise(
    child: &mut Child,
    mut stdout: Option<ChildStdout>,
    mut stderr: Option<ChildStderr>,
    timeout: Duration,
    cap: usize,
    pid: i32,
    exclusive_uid: Option<u32>,
) -> Result<Supervised, ExecError> {
    let mut out = Capture::new(cap);
    let mut err = Capture::new(cap);
    let mut out_buf = vec![0u8; 16 * 1024];
    let mut err_buf = vec![0u8; 16 * 1024];
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let drain = tokio::time::sleep(Duration::MAX / 4);
    tokio::pin!(drain);
    let mut status: Option<ExitStatus> = None;
    let mut timed_out = false;

    loop {
        if status.is_some() && stdout.is_none() && stderr.is_none() {
            break;
        }
        tokio::select! {
            r = read_open(&mut stdout, &mut out_buf) => match r {
                Ok(n) if n > 0 => out.push(&out_buf[..n]),
                _ => stdout = None,
            },
            r = read_open(&mut stderr, &mut err_buf) => match r {
                Ok(n) if n > 0 => err.push(&err_buf[..n]),
                _ => stderr = None,
            },
            st = child.wait(), if status.is_none() => {
                match st {
                    Ok(st) => status = Some(st),
                    Err(e) => {
                        kill_all(pid, exclusive_uid).await;
                        return Err(ExecError::Wait(e));
                    }
                }
                // Background children must not outlive the run, and they hold the pipes.
                kill_all(pid, exclusive_uid).await;
                drain.as_mut().reset(tokio::time::Instant::now() + DRAIN_GRACE);
            },
            () = &mut deadline, if status.is_none() && !timed_out => {
                timed_out = true;
                // The leader is left as a zombie for the wait branch above to reap.
                kill_all(pid, exclusive_uid).await;
            },
            () = &mut drain, if status.is_some() => break,
        }
    }
    Ok(Supervised {
        status: status.unwrap_or_else(|| ExitStatus::from_raw(0)),
        stdout: out,
        stderr: err,
        timed_out,
    })
}
