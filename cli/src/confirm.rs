//! Asking before an action on many items or on everything: on a terminal the operator answers; with
//! no terminal to ask on (a script, a pipe) the action is refused unless `--yes` was given, so a
//! script never replays a whole history by omission.

use std::io::{BufRead, IsTerminal, Write};

use crate::exit::CliError;

/// Goes on when `yes`, or when the operator answers yes to `question` on the terminal. Refused
/// (exit 2) without a terminal; declined (exit 1) when the answer is anything but yes.
pub fn confirm(question: &str, yes: bool) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(CliError::usage(format!(
            "{question} Pass --yes to go on: there is no terminal to ask on"
        ))
        .into());
    }
    let mut stderr = std::io::stderr();
    write!(stderr, "{question} [y/N] ")?;
    stderr.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if is_yes(&answer) {
        Ok(())
    } else {
        Err(CliError::failed("not confirmed: nothing done").into())
    }
}

fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_yes_is_yes() {
        assert!(is_yes("y\n"));
        assert!(is_yes(" YES "));
        assert!(!is_yes("\n"));
        assert!(!is_yes("no"));
        assert!(!is_yes("yep"));
    }
}
