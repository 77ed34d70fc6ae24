//! What this machine lets the sandbox do (Landlock, a network namespace for the child), found
//! once per process, and what a policy's mode makes of it.

use std::io;
use std::process::Stdio;

use serde::Serialize;
use tokio::sync::OnceCell;

use crate::limits::is_root;
use crate::policy::{Policy, SandboxMode};

/// What the kernel offers the sandbox, probed once per process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Support {
    /// The Landlock ABI version, or `None` when the kernel has no Landlock or it is disabled.
    pub landlock_abi: Option<u32>,
    /// Why the child cannot have a network namespace of its own, if it cannot.
    pub netns_unavailable: Option<String>,
}

/// How runs under a policy are contained on this machine, as `quorum tools list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Containment {
    pub mode: SandboxMode,
    /// Reads and writes confined by Landlock to the workdir and the read paths.
    pub filesystem: bool,
    /// The child has a network namespace of its own (no interface but a down loopback).
    pub network_namespace: bool,
    /// TCP connect and bind refused by Landlock too (ABI 4 and later).
    pub landlock_tcp: bool,
    /// Why, in `strict` mode, nothing will run; `None` when runs are allowed.
    pub refused: Option<String>,
}

static SUPPORT: OnceCell<Support> = OnceCell::const_new();

/// The machine's support, probed on first use.
pub async fn support() -> &'static Support {
    SUPPORT
        .get_or_init(|| async {
            let landlock_abi = crate::landlock::abi().ok().flatten();
            let netns_unavailable = probe_netns().await.err().map(|e| e.to_string());
            Support {
                landlock_abi,
                netns_unavailable,
            }
        })
        .await
}

/// How `policy` contains runs on this machine.
pub async fn containment(policy: &Policy) -> Containment {
    decide(policy.mode, support().await)
}

/// The pure part: what a mode makes of what the machine offers.
pub(crate) fn decide(mode: SandboxMode, support: &Support) -> Containment {
    let mut missing = Vec::new();
    if support.landlock_abi.is_none() {
        missing.push("Landlock (kernel 5.13 or later, with landlock among the LSMs)".to_owned());
    }
    if let Some(why) = &support.netns_unavailable {
        missing.push(format!("a network namespace for the child ({why})"));
    }
    let refused = (mode == SandboxMode::Strict && !missing.is_empty()).then(|| {
        format!(
            "the sandbox is strict and this machine lacks {}; set exec.mode = \"best_effort\" to run without it",
            missing.join(" and ")
        )
    });
    Containment {
        mode,
        filesystem: support.landlock_abi.is_some(),
        network_namespace: support.netns_unavailable.is_none(),
        landlock_tcp: support.landlock_abi.is_some_and(|abi| abi >= 4),
        refused,
    }
}

/// The `unshare` flags that give the child a network namespace: root may make one directly;
/// anyone else needs a user namespace around it (where the kernel allows unprivileged ones).
/// The child's files still belong to its real uid, which is all the workdir needs.
pub(crate) fn netns_flags() -> libc::c_int {
    if is_root() {
        libc::CLONE_NEWNET
    } else {
        libc::CLONE_NEWUSER | libc::CLONE_NEWNET
    }
}

/// Forks a child that makes the namespace and exits before exec: the only faithful test, since
/// container runtimes, seccomp profiles and sysctls each may refuse it, and the service itself
/// must not change namespace.
async fn probe_netns() -> io::Result<()> {
    let flags = netns_flags();
    // Never executed: the hook exits first.
    let mut cmd = tokio::process::Command::new("/");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: between fork and exec only unshare and _exit are called, both async-signal-safe,
    // on an integer copied in; nothing allocates or locks.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(move || {
            if libc::unshare(flags) != 0 {
                return Err(io::Error::last_os_error());
            }
            libc::_exit(0)
        });
    }
    let status = cmd
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("unshare: {e}")))?
        .wait()
        .await?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("probe child ended with {status}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Support {
        Support {
            landlock_abi: Some(4),
            netns_unavailable: None,
        }
    }

    #[test]
    fn strict_refuses_when_anything_is_missing_and_says_what() {
        assert_eq!(decide(SandboxMode::Strict, &full()).refused, None);
        let no_netns = Support {
            netns_unavailable: Some("unshare: Operation not permitted".into()),
            ..full()
        };
        let c = decide(SandboxMode::Strict, &no_netns);
        let why = c.refused.unwrap();
        assert!(
            why.contains("network namespace") && why.contains("best_effort"),
            "{why}"
        );
        assert!(c.filesystem && !c.network_namespace);

        let no_landlock = Support {
            landlock_abi: None,
            ..full()
        };
        let why = decide(SandboxMode::Strict, &no_landlock).refused.unwrap();
        assert!(why.contains("Landlock"), "{why}");
    }

    #[test]
    fn best_effort_runs_with_what_there_is() {
        let nothing = Support {
            landlock_abi: None,
            netns_unavailable: Some("x".into()),
        };
        let c = decide(SandboxMode::BestEffort, &nothing);
        assert_eq!(c.refused, None);
        assert!(!c.filesystem && !c.network_namespace && !c.landlock_tcp);
    }
}
