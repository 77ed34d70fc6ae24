//! Waiting for a condition, never for a fixed time.

use std::future::Future;
use std::time::{Duration, Instant};

/// The default deadline: generous, because the machine is shared and a slow run must not fail.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// How often a condition is polled: often enough that a test does not idle, seldom enough that a
/// condition that queries Postgres does not load the machine.
const POLL: Duration = Duration::from_millis(25);

/// What a polled condition returns: `bool`, or `Option<T>` to hand back the value it waited for.
pub trait Condition {
    /// What [`wait_until`] returns once the condition holds.
    type Value;
    /// `Some` once the condition holds.
    fn holds(self) -> Option<Self::Value>;
}

impl Condition for bool {
    type Value = ();
    fn holds(self) -> Option<()> {
        self.then_some(())
    }
}

impl<T> Condition for Option<T> {
    type Value = T;
    fn holds(self) -> Option<T> {
        self
    }
}

/// Polls `condition` until it holds, and returns its value (`()` for a `bool`), failing with a
/// message that names `what` after `deadline`.
///
/// The deadline is wall-clock time, so it means the same under paused tokio time; the condition is
/// polled once more after the deadline, so a slow poll cannot make it fail without a last look.
pub async fn wait_until<F, Fut, C>(
    what: &str,
    deadline: Duration,
    mut condition: F,
) -> anyhow::Result<C::Value>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = C>,
    C: Condition,
{
    let until = Instant::now() + deadline;
    loop {
        let late = Instant::now() > until;
        if let Some(value) = condition().await.holds() {
            return Ok(value);
        }
        if late {
            anyhow::bail!("timed out after {:?} waiting for: {what}", deadline);
        }
        tokio::time::sleep(POLL).await;
    }
}
