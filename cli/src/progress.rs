//! Progress bars for long commands: drawn on standard error when it is a terminal, hidden otherwise
//! (indicatif decides), so scripts and tests see only the output.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `total` steps, labelled `what`.
pub fn bar(total: u64, what: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let style =
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what);
    bar
}

/// A spinner for a wait of unknown length, with a message and the time spent; hidden when `quiet`
/// (output a script reads) or when standard error is not a terminal.
pub fn spinner(quiet: bool) -> ProgressBar {
    let spinner = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new_spinner()
    };
    let style = ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    spinner.set_style(style);
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    spinner
}
