//! The error type of [`crate::run`], split into refusals and run-time failures.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::run::ExecOutput;

/// Why a request was not run, or did not finish.
///
/// Refusals (`ProgramNotAllowed`, `PathOutsideWorkdir`, `EnvNotAllowed`, `InvalidRequest`,
/// `InvalidWorkdir`, `Uncontained`) are decided before anything is spawned: retrying the same
/// request cannot succeed. The others happen while running and may go away on a retry.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("program not allowed: {program}: {reason}")]
    ProgramNotAllowed { program: String, reason: String },

    #[error("path argument {arg:?} outside workdir: {reason}")]
    PathOutsideWorkdir { arg: String, reason: String },

    #[error("environment variable not allowed: {name}")]
    EnvNotAllowed { name: String },

    #[error("invalid request: {reason}")]
    InvalidRequest { reason: String },

    #[error("invalid workdir {}: {source}", path.display())]
    InvalidWorkdir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The sandbox is `strict` and this machine cannot contain the child.
    #[error("sandbox cannot contain the program: {reason}")]
    Uncontained { reason: String },

    #[error("sandbox setup failed: {0}")]
    Setup(#[source] io::Error),

    #[error("spawn failed: {0}")]
    Spawn(#[source] io::Error),

    #[error("wait failed: {0}")]
    Wait(#[source] io::Error),

    /// The process group was killed; `partial` holds what it printed before that.
    #[error("timed out after {timeout:?}")]
    TimedOut {
        timeout: Duration,
        partial: Box<ExecOutput>,
    },
}

impl ExecError {
    /// True when the request was refused by policy before anything ran.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::ProgramNotAllowed { .. }
                | Self::PathOutsideWorkdir { .. }
                | Self::EnvNotAllowed { .. }
                | Self::InvalidRequest { .. }
                | Self::InvalidWorkdir { .. }
                | Self::Uncontained { .. }
        )
    }

    /// Whether the same request might succeed if sent again: refusals never do, while spawn
    /// failures (e.g. EAGAIN from a full process table) and timeouts on a loaded machine might.
    pub fn is_retryable(&self) -> bool {
        !self.is_refusal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_not_retryable_but_runtime_failures_are() {
        let refused = ExecError::PathOutsideWorkdir {
            arg: "../x".into(),
            reason: "contains a `..` component".into(),
        };
        assert!(refused.is_refusal());
        assert!(!refused.is_retryable());
        assert!(ExecError::Spawn(io::Error::from_raw_os_error(libc::EAGAIN)).is_retryable());
        let timed_out = ExecError::TimedOut {
            timeout: Duration::from_secs(1),
            partial: Box::default(),
        };
        assert!(timed_out.is_retryable());
        assert!(!timed_out.is_refusal());
    }

    #[test]
    fn display_is_a_lowercase_fragment() {
        let e = ExecError::EnvNotAllowed {
            name: "SECRET".into(),
        };
        let text = e.to_string();
        assert_eq!(text, "environment variable not allowed: SECRET");
        assert!(text.chars().next().unwrap().is_lowercase());
    }
}
