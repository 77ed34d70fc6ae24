//! `verify`: recomputes the chain from the stored events and reports the first link that does not
//! hold: its hash differs from the recomputed one (the event was changed), its previous hash is not
//! the link before it (links were removed or reordered), or its number skips. It also checks that the
//! chain holds every event committed up to its head.

use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use crate::canonical::{GENESIS, StoredRow, link_hash};

/// Which links to check, by the positions of their events; both ends are included. Links of events
/// outside the range that lie between its links in commit order are checked for linkage only.
#[derive(Clone, Copy, Debug, Default)]
pub struct Range {
    pub from_position: Option<i64>,
    pub to_position: Option<i64>,
}

/// The first link that does not hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Broken {
    pub seq: i64,
    pub position: i64,
    pub event_id: String,
    /// What the link's hash should be, recomputed from the stored event and the previous link.
    pub expected: String,
    /// What the link holds.
    pub found: String,
    pub reason: String,
}

/// What `verify` found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Links checked.
    pub checked: u64,
    /// The first and last link numbers checked.
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    pub broken: Option<Broken>,
    /// Events committed at or before the chain's head that no link holds (checked over the whole
    /// chain only).
    pub missing: Option<i64>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.broken.is_none() && self.missing.unwrap_or(0) == 0
    }
}

const PAGE: i64 = 5000;

/// Checks the links of `range` (all of them by default), page by page, stopping at the first broken
/// one. `progress` is told how many links were checked so far.
pub async fn verify(
    pool: &PgPool,
    range: Range,
    mut progress: impl FnMut(u64),
) -> Result<Report, sqlx::Error> {
    let (first, last): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT min(seq), max(seq) FROM audit_chain
         WHERE ($1::bigint IS NULL OR position >= $1) AND ($2::bigint IS NULL OR position <= $2)",
    )
    .bind(range.from_position)
    .bind(range.to_position)
    .fetch_one(pool)
    .await?;
    let mut report = Report {
        checked: 0,
        first_seq: first,
        last_seq: last,
        broken: None,
        missing: None,
    };
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(report);
    };
    let mut prev = anchor(pool, first).await?;
    let mut expect_seq = first;
    while expect_seq <= last {
        let rows = page(pool, expect_seq, last).await?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            match check(r, &prev, expect_seq, &range)? {
                Ok(link) => {
                    prev = link.hash;
                    expect_seq += 1;
                    report.checked += u64::from(link.in_range);
                }
                Err(broken) => {
                    report.broken = Some(broken);
                    return Ok(report);
                }
            }
        }
        progress(report.checked);
    }
    if range.from_position.is_none() && range.to_position.is_none() {
        report.missing = Some(missing(pool).await?);
    }
    Ok(report)
}

/// The hash the link `first` follows: the link before it, or the genesis hash.
async fn anchor(pool: &PgPool, first: i64) -> Result<Vec<u8>, sqlx::Error> {
    if first == 1 {
        return Ok(GENESIS.to_vec());
    }
    Ok(
        sqlx::query_scalar("SELECT hash FROM audit_chain WHERE seq = $1")
            .bind(first - 1)
            .fetch_optional(pool)
            .await?
            .unwrap_or_else(|| GENESIS.to_vec()),
    )
}

/// Up to [`PAGE`] links from `from` to `last`, each with its event (none if it is gone).
async fn page(pool: &PgPool, from: i64, last: i64) -> Result<Vec<PgRow>, sqlx::Error> {
    sqlx::query(
        "SELECT c.seq, c.position, c.event_id, c.prev_hash, c.hash,
                e.position AS event_position, e.tenant, e.stream_id, e.stream_version,
                e.attributes::text AS attributes, e.data
         FROM audit_chain c LEFT JOIN events e ON e.position = c.position
         WHERE c.seq >= $1 AND c.seq <= $2 ORDER BY c.seq LIMIT $3",
    )
    // Planned for its range each time: a generic plan of an unknown range joins the tables whole.
    .persistent(false)
    .bind(from)
    .bind(last)
    .bind(PAGE)
    .fetch_all(pool)
    .await
}

/// A link that holds.
struct Held {
    hash: Vec<u8>,
    /// Whether its event is in the range asked about (and so was checked, not only its linkage).
    in_range: bool,
}

/// Checks the link in row `r`, which should be number `expect_seq` and follow `prev`.
fn check(
    r: &PgRow,
    prev: &[u8],
    expect_seq: i64,
    range: &Range,
) -> Result<Result<Held, Broken>, sqlx::Error> {
    let seq: i64 = r.try_get("seq")?;
    let position: i64 = r.try_get("position")?;
    let found: Vec<u8> = r.try_get("hash")?;
    let stored_prev: Vec<u8> = r.try_get("prev_hash")?;
    let broken = |expected: String, reason: String| -> Result<Broken, sqlx::Error> {
        Ok(Broken {
            seq,
            position,
            event_id: r.try_get("event_id")?,
            expected,
            found: hex::encode(&found),
            reason,
        })
    };
    if r.try_get::<Option<i64>, _>("event_position")?.is_none() {
        return Ok(Err(broken(
            String::new(),
            "the chained event is gone".to_owned(),
        )?));
    }
    let row = StoredRow {
        position,
        tenant: r.try_get("tenant")?,
        stream_id: r.try_get("stream_id")?,
        stream_version: r.try_get("stream_version")?,
        attributes: r.try_get("attributes")?,
        data: r.try_get("data")?,
    };
    let expected = link_hash(prev, &row);
    // The chain is in commit order, the range in positions: links of events outside the range lie
    // between those inside it. Their linkage is checked (the chain must hold together), their
    // events are not: the range was not asked about them.
    let in_range = range.from_position.is_none_or(|from| position >= from)
        && range.to_position.is_none_or(|to| position <= to);
    let reason = if seq != expect_seq {
        Some(format!("link {expect_seq} is missing"))
    } else if stored_prev != prev {
        Some("the previous hash is not the hash of the link before".to_owned())
    } else if in_range && found != expected {
        Some("the event differs from what was chained".to_owned())
    } else {
        None
    };
    Ok(match reason {
        Some(reason) => Err(broken(hex::encode(expected), reason)?),
        None => Ok(Held {
            hash: found,
            in_range,
        }),
    })
}

/// Events at or before the chain's head in commit order that the chain does not hold.
async fn missing(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "WITH head AS (SELECT tx_id, position FROM audit_chain ORDER BY seq DESC LIMIT 1)
         SELECT count(*) FROM events e, head h
         WHERE (e.tx_id, e.position) <= (h.tx_id, h.position)
           AND NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.position = e.position)",
    )
    .fetch_one(pool)
    .await
}
