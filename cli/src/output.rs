//! Standard output, written so that a reader that goes away (`quorum events --json | head`) ends
//! the command quietly instead of panicking.
//!
//! Rust ignores SIGPIPE, so a write to a closed pipe fails with `BrokenPipe`, and `println!`
//! panics on it. Restoring the default SIGPIPE action (death by signal, as C tools die) would also
//! apply to every socket and child pipe of the process: `quorum up` writes to Postgres, NATS, HTTP
//! peers and sandboxed programs, where a peer that hangs up must be an error to handle, not the end
//! of the stack. So, as ripgrep does, output goes through [`outln!`], which turns a closed
//! standard output into [`StdoutClosed`]; it travels up like any error, so destructors run, and
//! [`crate::exit`] ends the process with 0.

use std::io::Write;

/// Standard output's reader went away: the command ends, successfully and silently.
#[derive(Debug, thiserror::Error)]
#[error("standard output closed")]
pub struct StdoutClosed;

/// The error for a failed write to standard output: [`StdoutClosed`] when its reader went away.
pub fn stdout_error(error: std::io::Error) -> anyhow::Error {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        anyhow::Error::new(StdoutClosed)
    } else {
        anyhow::Error::new(error).context("cannot write to standard output")
    }
}

/// Writes one line to standard output. Use through [`outln!`].
pub fn line(args: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{args}").map_err(stdout_error)
}

/// `println!` that returns an error instead of panicking: `outln!("{x}")?`.
#[macro_export]
macro_rules! outln {
    () => {
        $crate::output::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}
