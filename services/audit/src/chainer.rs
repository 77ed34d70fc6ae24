//! The chainer: reads every event in commit order below the transaction-id watermark (the same order
//! and the same never-skip rule as the relay, docs/adr/0002) and appends one link per event. A batch
//! of links commits in one statement; the chain's head is the checkpoint, so a crash re-reads from
//! the last committed link and a second replica (or a redelivery) can never link an event twice: the
//! `seq` and `position` keys refuse it and the transaction rolls back.
//!
//! It reads Postgres, not JetStream: after downtime it catches up on everything stored, whatever the
//! stream still holds, and the chain's order is one a verifier can recompute from Postgres alone.

use sqlx::{PgConnection, PgPool, Row};

use crate::canonical::{GENESIS, StoredRow, link_hash};

/// The chain's head: the last link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub tx_id: u64,
    pub position: i64,
    pub hash: [u8; 32],
}

/// What one [`step`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Linked {
    /// Links appended.
    pub links: usize,
    /// Of them, links of events other than the chain's own checkpoints.
    pub others: usize,
    pub head: Option<Head>,
}

/// Only one chainer links at a time, across replicas.
const LOCK: &str = "quorum-audit-chain";

/// The last link, if any.
pub async fn head(db: &mut PgConnection) -> Result<Option<Head>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT seq, tx_id::text AS tx_id, position, hash FROM audit_chain ORDER BY seq DESC LIMIT 1",
    )
    .fetch_optional(db)
    .await?;
    row.map(|r| {
        let hash: Vec<u8> = r.try_get("hash")?;
        let tx: String = r.try_get("tx_id")?;
        Ok(Head {
            seq: r.try_get("seq")?,
            tx_id: tx.parse().unwrap_or(0),
            position: r.try_get("position")?,
            hash: hash.try_into().unwrap_or(GENESIS),
        })
    })
    .transpose()
}

/// Links the next `batch` committed events; returns what it linked (nothing when another replica
/// holds the chain, or when there is nothing new).
pub async fn step(pool: &PgPool, batch: i64, checkpoint_type: &str) -> Result<Linked, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let locked: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(LOCK)
            .fetch_one(&mut *tx)
            .await?;
    if !locked {
        return Ok(Linked::default());
    }
    let head = head(&mut tx).await?;
    let (after_tx, after_pos) = head.as_ref().map_or((0, 0), |h| (h.tx_id, h.position));
    let rows = sqlx::query(
        "SELECT position, tx_id::text AS tx_id, tenant, stream_id, stream_version, event_id, type,
                attributes::text AS attributes, data
         FROM events
         WHERE (tx_id, position) > ($1::text::xid8, $2)
           AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
         ORDER BY tx_id, position LIMIT $3",
    )
    .bind(after_tx.to_string())
    .bind(after_pos)
    .bind(batch)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(Linked {
            head,
            ..Linked::default()
        });
    }
    let mut seq = head.as_ref().map_or(0, |h| h.seq);
    let mut prev = head.as_ref().map_or(GENESIS, |h| h.hash);
    let mut cols = Columns::with_capacity(rows.len());
    let mut others = 0;
    for r in &rows {
        let stored = StoredRow {
            position: r.try_get("position")?,
            tenant: r.try_get("tenant")?,
            stream_id: r.try_get("stream_id")?,
            stream_version: r.try_get("stream_version")?,
            attributes: r.try_get("attributes")?,
            data: r.try_get("data")?,
        };
        let hash = link_hash(&prev, &stored);
        seq += 1;
        if r.try_get::<&str, _>("type")? != checkpoint_type {
            others += 1;
        }
        cols.seq.push(seq);
        cols.position.push(stored.position);
        cols.tx_id.push(r.try_get("tx_id")?);
        cols.event_id.push(r.try_get("event_id")?);
        cols.tenant.push(stored.tenant);
        cols.prev.push(prev.to_vec());
        cols.hash.push(hash.to_vec());
        prev = hash;
    }
    sqlx::query(
        "INSERT INTO audit_chain (seq, position, tx_id, event_id, tenant, prev_hash, hash)
         SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[]::xid8[], $4::text[], $5::text[],
                              $6::bytea[], $7::bytea[])",
    )
    .bind(&cols.seq)
    .bind(&cols.position)
    .bind(&cols.tx_id)
    .bind(&cols.event_id)
    .bind(&cols.tenant)
    .bind(&cols.prev)
    .bind(&cols.hash)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let last = cols.seq.len() - 1;
    Ok(Linked {
        links: rows.len(),
        others,
        head: Some(Head {
            seq,
            tx_id: cols.tx_id[last].parse().unwrap_or(0),
            position: cols.position[last],
            hash: prev,
        }),
    })
}

/// The links of a batch, column by column, for one `UNNEST` insert.
struct Columns {
    seq: Vec<i64>,
    position: Vec<i64>,
    tx_id: Vec<String>,
    event_id: Vec<String>,
    tenant: Vec<String>,
    prev: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
}

impl Columns {
    fn with_capacity(n: usize) -> Self {
        Self {
            seq: Vec::with_capacity(n),
            position: Vec::with_capacity(n),
            tx_id: Vec::with_capacity(n),
            event_id: Vec::with_capacity(n),
            tenant: Vec::with_capacity(n),
            prev: Vec::with_capacity(n),
            hash: Vec::with_capacity(n),
        }
    }
}
