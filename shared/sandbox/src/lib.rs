//! Sandboxed `exec` tool runner: runs one allowlisted program with literal argv, a cleared environment, rlimits, dropped privileges and (where the kernel has it) Landlock, inside a per-saga workdir.
//!
//! The entry point is [`run`]; [`Policy`] says what is allowed, [`ExecRequest`] what is asked.

mod capture;
mod checks;
mod error;
mod landlock;
mod limits;
mod paths;
mod policy;
mod reap;
mod run;
mod workdir;

pub use error::ExecError;
pub use paths::resolve_path_arg;
pub use policy::{Limits, Policy, RunAs};
pub use run::{ExecOutput, ExecRequest, KillReason, run};
pub use workdir::{saga_workdir, saga_workdir_for, sanitize_saga_id};
