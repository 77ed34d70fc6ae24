//! Retries with jittered exponential backoff (backon), on retryable failures only, honouring a
//! server's `Retry-After`.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use quorum_config::duration;
use serde::{Deserialize, Serialize};

use super::ProviderError;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetryConfig {
    /// Attempts after the first.
    pub max_retries: u32,
    #[serde(with = "duration")]
    pub min_delay: Duration,
    #[serde(with = "duration")]
    pub max_delay: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 2,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

/// Calls `attempt` until it succeeds, fails for good, or the retries run out, counting the attempts
/// in `attempts` (readable even when the caller gives up waiting).
pub async fn with_retries<T, F, Fut>(
    config: &RetryConfig,
    attempts: &AtomicU32,
    attempt: F,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let mut attempt = attempt;
    let counted = || {
        attempts.fetch_add(1, Ordering::Relaxed);
        attempt()
    };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(config.min_delay)
        .with_max_delay(config.max_delay)
        .with_max_times(config.max_retries as usize)
        .with_jitter();
    counted
        .retry(backoff)
        .when(ProviderError::retryable)
        // A server that says when to come back is believed (within reason); `None` means the
        // retries are spent, and stays so.
        .adjust(|e, next| next.map(|d| e.retry_after.map_or(d, |r| r.min(Duration::from_secs(60)))))
        .await
}
