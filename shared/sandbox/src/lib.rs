//! Sandboxed `exec` tool runner: runs one allowlisted program with literal argv, a cleared environment, rlimits, no-new-privs, dropped privileges, Landlock on its reads and writes and a network namespace of its own, inside a per-saga workdir; where the kernel cannot, it refuses unless the policy says `best_effort`.
//!
//! The entry point is [`run`]; [`Policy`] says what is allowed, [`ExecRequest`] what is asked.

mod capture;
mod checks;
mod containment;
mod error;
mod landlock;
mod limits;
mod paths;
mod policy;
mod reap;
mod run;
mod workdir;

pub use containment::{Containment, Support, containment, support};
pub use error::ExecError;
pub use paths::resolve_path_arg;
pub use policy::{DEFAULT_READ_PATHS, Limits, Policy, RunAs, SandboxMode};
pub use run::{ExecOutput, ExecRequest, KillReason, run, run_on};
pub use workdir::{saga_workdir, saga_workdir_for, sanitize_saga_id};
