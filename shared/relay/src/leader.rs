//! Leadership: one relay per name publishes at a time, elected through the runtime's one
//! leader-election helper ([`quorum_runtime::leader`]). When the leader dies its connection closes
//! and Postgres frees the lock, so a follower takes over within one check interval.

use async_nats::jetstream;
use quorum_runtime::leader::Election;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use crate::{RelayConfig, RelayError, pump};

/// Runs a relay until `shutdown`: competes for leadership, and while leading publishes. Errors while
/// leading are logged and the relay competes again after a pause; it returns only on shutdown.
pub async fn run(
    pool: PgPool,
    js: jetstream::Context,
    config: RelayConfig,
    shutdown: CancellationToken,
) {
    let election = Election {
        role: "relay",
        lock: format!("quorum-relay/{}", config.name),
        retry: config.check_interval,
    };
    election
        .run(pool.clone(), shutdown.clone(), move |mut lock| {
            let (pool, js, config, shutdown) =
                (pool.clone(), js.clone(), config.clone(), shutdown.clone());
            async move {
                pump::Pump::new(pool, js, config)
                    .run(&mut lock, &shutdown)
                    .await?;
                Ok(())
            }
        })
        .await;
}

/// Checks the lock connection is alive (so the lock is still ours).
pub(crate) async fn still_leader(lock: &mut PgConnection) -> Result<(), RelayError> {
    quorum_runtime::leader::still_leader(lock)
        .await
        .map_err(|_| RelayError::LostLock)
}

pub(crate) use quorum_runtime::error_chain;
