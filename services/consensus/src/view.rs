//! The `queries` read model: a projection over every event in commit order. Each batch of rows is
//! committed with the projection's checkpoint, so a crash replays nothing twice and skips nothing;
//! rebuilding it is dropping the rows and the checkpoint.

use std::time::Duration;

use quorum_domain::types;
use quorum_event_store::{
    CommitCursor, EventStore, RecordedEvent, StoreError, load_consumer_checkpoint,
    save_consumer_checkpoint,
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// The projection's checkpoint name.
pub const NAME: &str = "queries-view";
const BATCH: i64 = 500;

/// Runs the projection until `shutdown`. Replicas take turns: a batch runs under a transaction
/// advisory lock, and whoever does not get it waits for the next round.
pub async fn run(pool: PgPool, shutdown: CancellationToken) {
    let store = EventStore::new(pool.clone());
    while !shutdown.is_cancelled() {
        let idle = match step(&pool, &store).await {
            Ok(applied) => applied == 0,
            Err(e) => {
                warn!(error = %e, "queries projection");
                true
            }
        };
        if idle {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }
}

/// Drops the read model and builds it again from the first event: the rows and the checkpoint go
/// in one transaction under the projection's lock, so a running projection sees the old state or
/// none of it; then batches are applied here until the model reaches the store's head (a running
/// projection may apply some of them, which is as good). `progress` gets the checkpoint's position.
pub async fn rebuild(pool: &PgPool, mut progress: impl FnMut(i64)) -> Result<(), StoreError> {
    let store = EventStore::new(pool.clone());
    let head = store.head().await?.map(|(c, _)| c);
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(NAME)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM queries").execute(&mut *tx).await?;
    sqlx::query("DELETE FROM consumer_checkpoints WHERE name = $1")
        .bind(NAME)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    loop {
        let applied = step(pool, &store).await?;
        let at = load_consumer_checkpoint(pool, NAME).await?;
        progress(at.position);
        if applied == 0 {
            if head.is_none_or(|h| at >= h) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Applies the next batch; returns how many events it read.
pub async fn step(pool: &PgPool, store: &EventStore) -> Result<usize, StoreError> {
    let mut tx = pool.begin().await?;
    let locked: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(NAME)
            .fetch_one(&mut *tx)
            .await?;
    if !locked {
        return Ok(0);
    }
    let after: CommitCursor = load_consumer_checkpoint(&mut *tx, NAME).await?;
    let events = store.read_committed(after, BATCH).await?;
    let Some(last) = events.last().map(RecordedEvent::cursor) else {
        return Ok(0);
    };
    for r in &events {
        apply(&mut tx, r).await?;
    }
    save_consumer_checkpoint(&mut *tx, NAME, last).await?;
    tx.commit().await?;
    Ok(events.len())
}

async fn apply(tx: &mut sqlx::PgConnection, r: &RecordedEvent) -> Result<(), StoreError> {
    let stream = r.stream_id.as_str();
    let Some(query_id) = stream.strip_prefix("query/") else {
        return Ok(());
    };
    let data: serde_json::Value = r
        .event
        .data
        .as_deref()
        .and_then(|d| serde_json::from_slice(d).ok())
        .unwrap_or_default();
    match r.event.ty.as_str() {
        types::QUERY_SUBMITTED => {
            sqlx::query(
                "INSERT INTO queries (query_id, stream_id, tenant, question, submitted_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (query_id) DO NOTHING",
            )
            .bind(query_id)
            .bind(stream)
            .bind(r.tenant.as_str())
            .bind(data["question"].as_str().unwrap_or_default())
            .bind(r.recorded_at)
            .execute(&mut *tx)
            .await?;
        }
        types::EXPERT_RESPONDED | types::EXPERT_FAILED => {
            let mut result = data.clone();
            result["outcome"] = if r.event.ty == types::EXPERT_RESPONDED {
                "responded".into()
            } else {
                "failed".into()
            };
            sqlx::query(
                "UPDATE queries SET experts = experts || jsonb_build_object($2::text, $3::jsonb)
                 WHERE query_id = $1",
            )
            .bind(query_id)
            .bind(data["expert"].as_str().unwrap_or_default())
            .bind(result)
            .execute(&mut *tx)
            .await?;
        }
        types::CONSENSUS_REACHED | types::CONSENSUS_FAILED => {
            let status = if r.event.ty == types::CONSENSUS_REACHED {
                "reached"
            } else {
                "failed"
            };
            sqlx::query(
                "UPDATE queries SET status = $2, consensus = $3, decided_at = $4 WHERE query_id = $1",
            )
            .bind(query_id)
            .bind(status)
            .bind(&data)
            .bind(r.recorded_at)
            .execute(&mut *tx)
            .await?;
        }
        _ => {}
    }
    Ok(())
}
