//! How `quorum` ends: the exit codes scripts rely on and how an error is reported, decided here
//! only. Commands return errors; `main` hands them to [`report`].
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (also when the reader of standard output went away, as `cat` does) |
//! | 1 | the operation failed on its own terms, or could not be carried out |
//! | 2 | the command line cannot be run as given |
//! | 130 | interrupted (Ctrl-C) where the command can go on later |

use std::process::ExitCode;

use crate::output::StdoutClosed;

/// An exit code with a meaning scripts may rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The operation ran and failed on its own terms (no consensus, a failed saga, a broken chain,
    /// nothing matched), or could not be carried out (a server unreachable): 1. Also the code of
    /// every error that does not say otherwise.
    Failure,
    /// The arguments cannot be run as given; clap exits with the same code for its own checks: 2.
    Usage,
    /// Interrupted by the operator where the work can be resumed: 130, the shell's code for
    /// SIGINT.
    Interrupted,
}

impl Code {
    pub fn as_u8(self) -> u8 {
        match self {
            Self::Failure => 1,
            Self::Usage => 2,
            Self::Interrupted => 130,
        }
    }
}

/// An error that chooses its exit code; any other error exits with [`Code::Failure`].
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    code: Code,
    message: String,
}

impl CliError {
    /// The operation's own failure, after its result was shown.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            code: Code::Failure,
            message: message.into(),
        }
    }

    /// Arguments that cannot be run as given; `message` says what to do instead.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: Code::Usage,
            message: message.into(),
        }
    }

    /// Stopped by the operator; `message` says how to go on.
    pub fn interrupted(message: impl Into<String>) -> Self {
        Self {
            code: Code::Interrupted,
            message: message.into(),
        }
    }

    pub fn code(&self) -> Code {
        self.code
    }
}

/// The exit code an error ends `quorum` with, `None` for a closed standard output (a success).
/// Found as the error itself, a context added to it, or a cause anywhere in its chain.
pub fn code_of(error: &anyhow::Error) -> Option<Code> {
    if error.is::<StdoutClosed>() || error.chain().any(|e| e.is::<StdoutClosed>()) {
        return None;
    }
    let own = error
        .downcast_ref::<CliError>()
        .or_else(|| error.chain().find_map(|e| e.downcast_ref::<CliError>()));
    Some(own.map_or(Code::Failure, CliError::code))
}

/// Writes `error` to standard error, as one line of text or, under `--json`, as one JSON object
/// (`{"error": {"message": …, "exit_code": N}}`), and returns its exit code. Standard error, so
/// that standard output holds only a command's result, which a failing command may still have
/// printed (the report of a broken chain, a consensus that failed).
pub fn report(error: &anyhow::Error, json: bool) -> ExitCode {
    let Some(code) = code_of(error) else {
        return ExitCode::SUCCESS;
    };
    print_error(&format!("{error:#}"), code.as_u8(), json);
    ExitCode::from(code.as_u8())
}

/// Reports a command line clap refused (exit 2) or a `--help`/`--version` it answers (exit 0).
/// Under `--json` a refusal is the same JSON object as any other error; clap cannot tell us
/// whether `--json` was given, since parsing is what failed, so the raw arguments are asked.
pub fn clap_error(error: &clap::Error) -> ExitCode {
    let json = std::env::args_os()
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    if !error.use_stderr() || !json {
        // clap prints help and version on stdout, refusals on stderr, and ignores a closed pipe.
        let _ = error.print();
        return ExitCode::from(error.exit_code() as u8);
    }
    let rendered = error.render().to_string();
    // The message and its hints; the usage line and the pointer to --help are for a person.
    let message = rendered
        .split("\n\nUsage:")
        .next()
        .unwrap_or(&rendered)
        .split("\n\nFor more information")
        .next()
        .unwrap_or(&rendered)
        .trim()
        .trim_start_matches("error: ")
        .to_owned();
    print_error(&message, Code::Usage.as_u8(), true);
    ExitCode::from(Code::Usage.as_u8())
}

fn print_error(message: &str, code: u8, json: bool) {
    if json {
        eprintln!(
            "{}",
            serde_json::json!({ "error": { "message": message, "exit_code": code } })
        );
    } else {
        eprintln!("error: {message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_without_a_code_is_a_failure_and_a_wrapped_one_keeps_its_code() {
        assert_eq!(code_of(&anyhow::anyhow!("boom")), Some(Code::Failure));
        let usage = anyhow::Error::new(CliError::usage("--from after --to")).context("audit");
        assert_eq!(code_of(&usage), Some(Code::Usage));
        let closed = anyhow::Error::new(StdoutClosed).context("events");
        assert_eq!(code_of(&closed), None);
        let as_context = anyhow::anyhow!("refused").context(CliError::usage("bad --since"));
        assert_eq!(code_of(&as_context), Some(Code::Usage));
    }
}
