//! Checkpoints on the commit-order cursor: the relay's (with the JetStream sequence it reached) and
//! those of catch-up readers.

use sqlx::{PgExecutor, Row};

use crate::{CommitCursor, StoreError};

/// Where the relay stands: everything up to `cursor` is published, the last of it at `stream_seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayCheckpoint {
    pub cursor: CommitCursor,
    pub stream_seq: u64,
    pub event_id: Option<String>,
}

pub async fn load_relay_checkpoint(
    db: impl PgExecutor<'_>,
    name: &str,
) -> Result<Option<RelayCheckpoint>, StoreError> {
    let row = sqlx::query(
        "SELECT tx_id::text AS tx_id, position, stream_seq, event_id FROM relay_checkpoints WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(db)
    .await?;
    row.map(|r| {
        let tx: String = r.try_get("tx_id")?;
        Ok(RelayCheckpoint {
            cursor: CommitCursor {
                tx_id: tx.parse().unwrap_or(0),
                position: r.try_get("position")?,
            },
            stream_seq: r.try_get::<i64, _>("stream_seq")? as u64,
            event_id: r.try_get("event_id")?,
        })
    })
    .transpose()
}

pub async fn save_relay_checkpoint(
    db: impl PgExecutor<'_>,
    name: &str,
    cp: &RelayCheckpoint,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO relay_checkpoints (name, tx_id, position, stream_seq, event_id, updated_at)
         VALUES ($1, $2::text::xid8, $3, $4, $5, now())
         ON CONFLICT (name) DO UPDATE SET tx_id = EXCLUDED.tx_id, position = EXCLUDED.position,
             stream_seq = EXCLUDED.stream_seq, event_id = EXCLUDED.event_id, updated_at = now()",
    )
    .bind(name)
    .bind(cp.cursor.tx_id.to_string())
    .bind(cp.cursor.position)
    .bind(cp.stream_seq as i64)
    .bind(&cp.event_id)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn load_consumer_checkpoint(
    db: impl PgExecutor<'_>,
    name: &str,
) -> Result<CommitCursor, StoreError> {
    let row = sqlx::query(
        "SELECT tx_id::text AS tx_id, position FROM consumer_checkpoints WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(db)
    .await?;
    match row {
        None => Ok(CommitCursor::START),
        Some(r) => {
            let tx: String = r.try_get("tx_id")?;
            Ok(CommitCursor {
                tx_id: tx.parse().unwrap_or(0),
                position: r.try_get("position")?,
            })
        }
    }
}

/// Saves a reader's cursor; call it in the same transaction as the rows the reader wrote, so the two
/// cannot disagree after a crash.
pub async fn save_consumer_checkpoint(
    db: impl PgExecutor<'_>,
    name: &str,
    cursor: CommitCursor,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO consumer_checkpoints (name, tx_id, position, updated_at) VALUES ($1, $2::text::xid8, $3, now())
         ON CONFLICT (name) DO UPDATE SET tx_id = EXCLUDED.tx_id, position = EXCLUDED.position, updated_at = now()",
    )
    .bind(name)
    .bind(cursor.tx_id.to_string())
    .bind(cursor.position)
    .execute(db)
    .await?;
    Ok(())
}
