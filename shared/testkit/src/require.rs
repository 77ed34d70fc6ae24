//! Prerequisites a test cannot provide itself (root, files kept beside the project): missing on a
//! developer's machine, the test is skipped and says so; missing under CI, it fails, because a green
//! CI run must mean every test ran.

/// What to do about a test's prerequisite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prerequisite {
    /// It holds: run the test.
    Met,
    /// It is missing outside CI: skip the test, saying why.
    Skip,
    /// It is missing under CI: fail the test, saying why.
    Fail,
}

/// The decision for a prerequisite that holds or not, given the value of the `CI` variable.
pub fn prerequisite(holds: bool, ci: Option<&str>) -> Prerequisite {
    if holds {
        Prerequisite::Met
    } else if ci.is_some_and(is_ci) {
        Prerequisite::Fail
    } else {
        Prerequisite::Skip
    }
}

/// Whether a `CI` value means "running under CI" (`true`, `1` or `yes`, any case, as CI systems set it).
fn is_ci(value: &str) -> bool {
    ["true", "1", "yes"]
        .iter()
        .any(|v| value.trim().eq_ignore_ascii_case(v))
}

/// Whether the test may run: `true` when `condition` holds. Otherwise it prints
/// `SKIPPED: <why>` and returns `false` (the test returns early), except with `CI=true`, where it
/// panics with `why`, so a missing prerequisite fails the run instead of passing silently.
///
/// ```no_run
/// # fn is_root() -> bool { true }
/// if !quorum_testkit::require(is_root(), "needs root to switch the child to a test uid") {
///     return;
/// }
/// ```
#[track_caller]
pub fn require(condition: bool, why: &str) -> bool {
    let ci = std::env::var("CI").ok();
    match prerequisite(condition, ci.as_deref()) {
        Prerequisite::Met => true,
        Prerequisite::Skip => {
            eprintln!("SKIPPED: {why} (with CI=true this fails)");
            false
        }
        Prerequisite::Fail => panic!("prerequisite missing under CI=true: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_prerequisite_fails_under_ci_and_skips_elsewhere() {
        for ci in ["true", "TRUE", "1", "yes"] {
            assert_eq!(prerequisite(false, Some(ci)), Prerequisite::Fail, "{ci}");
            assert_eq!(prerequisite(true, Some(ci)), Prerequisite::Met, "{ci}");
        }
        for ci in [None, Some(""), Some("false"), Some("0")] {
            assert_eq!(prerequisite(false, ci), Prerequisite::Skip, "{ci:?}");
            assert_eq!(prerequisite(true, ci), Prerequisite::Met, "{ci:?}");
        }
    }

    #[test]
    fn require_passes_a_met_prerequisite_whatever_the_environment() {
        assert!(require(true, "always met"));
    }
}
