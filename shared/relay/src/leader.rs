//! Leadership: one relay per name publishes at a time, chosen by a session-level advisory lock on a
//! connection of its own. When the leader dies its connection closes and Postgres frees the lock, so a
//! follower takes over within one check interval.

use std::time::Duration;

use async_nats::jetstream;
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{RelayConfig, RelayError, pump};
use quorum_runtime::metrics::RELAY_LEADER;

/// Runs a relay until `shutdown`: competes for leadership, and while leading publishes. Errors while
/// leading are logged and the relay competes again after a pause; it returns only on shutdown.
pub async fn run(
    pool: PgPool,
    js: jetstream::Context,
    config: RelayConfig,
    shutdown: CancellationToken,
) {
    let mut backoff = config.check_interval;
    while !shutdown.is_cancelled() {
        // Each term in a task of its own: a panic ends the term, not the relay, which competes
        // for the lock again as after any error (a dead relay in a live process would stop every
        // tenant's events without a sign).
        let term = tokio::spawn({
            let (pool, js, config, shutdown) =
                (pool.clone(), js.clone(), config.clone(), shutdown.clone());
            async move { try_lead(&pool, &js, &config, &shutdown).await }
        });
        match term.await {
            Ok(Ok(true)) => backoff = config.check_interval,
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                warn!(relay = %config.name, error = %error_chain(&e), "relay stopped leading");
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            Err(e) => {
                tracing::error!(relay = %config.name, error = %e, "relay term panicked; leading again");
                metrics::counter!(quorum_runtime::metrics::RELAY_PANICS_TOTAL).increment(1);
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
        metrics::gauge!(RELAY_LEADER).set(0.0);
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(backoff) => {}
        }
    }
}

/// Takes the lock if it is free and leads until shutdown or an error. Ok(false): someone else leads.
async fn try_lead(
    pool: &PgPool,
    js: &jetstream::Context,
    config: &RelayConfig,
    shutdown: &CancellationToken,
) -> Result<bool, RelayError> {
    // Every statement the relay runs here (its commit-order read, its checkpoint, the liveness
    // check) plans as index lookups on an empty table: their generic plans are safe to keep.
    let mut lock = quorum_event_store::generic_plan_connection(pool).await?;
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(lock_name(&config.name))
        .fetch_one(&mut lock)
        .await?;
    if !got {
        return Ok(false);
    }
    info!(relay = %config.name, "relay leading");
    metrics::gauge!(RELAY_LEADER).set(1.0);
    let result = pump::Pump::new(pool.clone(), js.clone(), config.clone())
        .run(&mut lock, shutdown)
        .await;
    // Closing the connection releases the lock even if the unlock below is never reached.
    let _ = lock.close().await;
    result.map(|()| true)
}

fn lock_name(name: &str) -> String {
    format!("quorum-relay/{name}")
}

/// Checks the lock connection is alive (so the lock is still ours).
pub(crate) async fn still_leader(lock: &mut PgConnection) -> Result<(), RelayError> {
    sqlx::query("SELECT 1")
        .execute(lock)
        .await
        .map(|_| ())
        .map_err(|_| RelayError::LostLock)
}

pub(crate) use quorum_runtime::error_chain;
