//! Waiting for a condition, never for a fixed time.

use std::future::Future;
use std::time::Duration;

/// The default deadline: generous, because the machine is shared and a slow run must not fail.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Polls `condition` until it holds, failing with `what` after `deadline`.
pub async fn wait_until<F, Fut>(
    what: &str,
    deadline: Duration,
    mut condition: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if condition().await {
            return Ok(());
        }
        if tokio::time::Instant::now() > until {
            anyhow::bail!(
                "timed out after {}s waiting for: {what}",
                deadline.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
