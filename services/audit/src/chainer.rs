//! Linking events into the chain: read the next committed events in commit order below the
//! transaction-id watermark (the same order and never-skip rule as the relay, docs/adr/0002), hash
//! each onto the previous link, and insert the links in one statement. The chain's head is the
//! checkpoint, so a crash re-reads from the last committed link, and a second writer (or a stale
//! read) can never link an event twice: the `seq` and `position` keys refuse it and the statement
//! fails.
//!
//! It reads Postgres, not JetStream: after downtime it catches up on everything stored, whatever the
//! stream still holds, and the chain's order is one a verifier can recompute from Postgres alone.

use sqlx::{PgConnection, PgExecutor, PgPool, Row};

use crate::canonical::{GENESIS, StoredRow, link_hash};

/// The chain's head: the last link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub tx_id: u64,
    pub position: i64,
    pub hash: [u8; 32],
}

/// Where reading resumes after `head`.
pub fn cursor(head: Option<&Head>) -> (u64, i64) {
    head.map_or((0, 0), |h| (h.tx_id, h.position))
}

/// A committed event as the chain reads it.
#[derive(Clone, Debug)]
pub struct Committed {
    pub row: StoredRow,
    pub tx_id: String,
    pub event_id: String,
    pub event_type: String,
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

/// Only one writer links at a time, across replicas.
pub const LOCK: &str = "quorum-audit-chain";

/// The last link, if any.
pub async fn head(db: impl PgExecutor<'_>) -> Result<Option<Head>, sqlx::Error> {
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

/// Up to `limit` committed events after `after` in commit order.
pub async fn read(
    db: impl PgExecutor<'_>,
    after: (u64, i64),
    limit: i64,
) -> Result<Vec<Committed>, sqlx::Error> {
    let rows = sqlx::query(
        // Qualified: an unqualified `ORDER BY tx_id` would sort by the text column of that name
        // (wrong order for ids of different lengths, and no index to walk).
        "SELECT e.position, e.tx_id::text AS tx_id, e.tenant, e.stream_id, e.stream_version, e.event_id,
                e.type, e.attributes::text AS attributes, e.data
         FROM events e
         WHERE (e.tx_id, e.position) > ($1::text::xid8, $2)
           AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
         ORDER BY e.tx_id, e.position LIMIT $3",
    )
    .bind(after.0.to_string())
    .bind(after.1)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Committed {
                row: StoredRow {
                    position: r.try_get("position")?,
                    tenant: r.try_get("tenant")?,
                    stream_id: r.try_get("stream_id")?,
                    stream_version: r.try_get("stream_version")?,
                    attributes: r.try_get("attributes")?,
                    data: r.try_get("data")?,
                },
                tx_id: r.try_get("tx_id")?,
                event_id: r.try_get("event_id")?,
                event_type: r.try_get("type")?,
            })
        })
        .collect()
}

/// The links of `events` after `head`, column by column, ready for [`insert`].
pub struct Links {
    seq: Vec<i64>,
    position: Vec<i64>,
    tx_id: Vec<String>,
    event_id: Vec<String>,
    tenant: Vec<String>,
    prev: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
    /// The head once these links are in.
    pub head: Option<Head>,
    /// Links of events that are not of `checkpoint_type`.
    pub others: usize,
}

impl Links {
    pub fn len(&self) -> usize {
        self.seq.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seq.is_empty()
    }
}

/// Hashes `events` onto `head`. Pure.
pub fn link(head: Option<&Head>, events: &[Committed], checkpoint_type: &str) -> Links {
    let n = events.len();
    let mut links = Links {
        seq: Vec::with_capacity(n),
        position: Vec::with_capacity(n),
        tx_id: Vec::with_capacity(n),
        event_id: Vec::with_capacity(n),
        tenant: Vec::with_capacity(n),
        prev: Vec::with_capacity(n),
        hash: Vec::with_capacity(n),
        head: head.cloned(),
        others: 0,
    };
    let mut seq = head.map_or(0, |h| h.seq);
    let mut prev = head.map_or(GENESIS, |h| h.hash);
    for e in events {
        let hash = link_hash(&prev, &e.row);
        seq += 1;
        if e.event_type != checkpoint_type {
            links.others += 1;
        }
        links.seq.push(seq);
        links.position.push(e.row.position);
        links.tx_id.push(e.tx_id.clone());
        links.event_id.push(e.event_id.clone());
        links.tenant.push(e.row.tenant.clone());
        links.prev.push(prev.to_vec());
        links.hash.push(hash.to_vec());
        prev = hash;
    }
    if let Some(last) = events.last() {
        links.head = Some(Head {
            seq,
            tx_id: last.tx_id.parse().unwrap_or(0),
            position: last.row.position,
            hash: prev,
        });
    }
    links
}

/// Inserts `links` in one statement and commits. The chain is derived from `events` and its head is
/// its checkpoint, so a commit lost in a crash is linked again from the same rows: it need not wait
/// for its WAL flush.
pub async fn insert(conn: &mut PgConnection, links: &Links) -> Result<(), sqlx::Error> {
    use sqlx::Acquire;
    let mut tx = conn.begin().await?;
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO audit_chain (seq, position, tx_id, event_id, tenant, prev_hash, hash)
         SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[]::xid8[], $4::text[], $5::text[],
                              $6::bytea[], $7::bytea[])",
    )
    .bind(&links.seq)
    .bind(&links.position)
    .bind(&links.tx_id)
    .bind(&links.event_id)
    .bind(&links.tenant)
    .bind(&links.prev)
    .bind(&links.hash)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Links the next `batch` committed events in one transaction under the chain's lock; returns what
/// it linked (nothing when another writer holds the chain, or when there is nothing new). For
/// tools and tests; the service pipelines reads and inserts (see `lead`).
pub async fn step(pool: &PgPool, batch: i64, checkpoint_type: &str) -> Result<Linked, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
        .bind(LOCK)
        .fetch_one(&mut *conn)
        .await?;
    if !locked {
        return Ok(Linked::default());
    }
    let result = async {
        let head = head(&mut *conn).await?;
        let events = read(&mut *conn, cursor(head.as_ref()), batch).await?;
        let links = link(head.as_ref(), &events, checkpoint_type);
        if !links.is_empty() {
            insert(&mut conn, &links).await?;
        }
        Ok(Linked {
            links: links.len(),
            others: links.others,
            head: links.head,
        })
    }
    .await;
    let _ = sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
        .bind(LOCK)
        .execute(&mut *conn)
        .await;
    result
}
