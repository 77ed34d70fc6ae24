//! Reads: one stream in version order, and all events in commit order below the watermark.

use quorum_domain::StreamId;
use sqlx::{PgConnection, Row};

use crate::recorded::{COLUMNS, Unreadable, decode, decode_or_unreadable};
use crate::{CommitCursor, RecordedEvent, StoreError};

/// The stream's current version (0 when it has no events).
pub(crate) async fn stream_version(
    conn: &mut PgConnection,
    stream: &StreamId,
) -> Result<u64, StoreError> {
    let row = sqlx::query(
        "SELECT coalesce(max(stream_version), 0) AS v FROM events WHERE stream_id = $1",
    )
    .bind(stream.as_str())
    .fetch_one(conn)
    .await?;
    Ok(row.try_get::<i64, _>("v")? as u64)
}

pub(crate) async fn read_stream(
    conn: &mut PgConnection,
    stream: &StreamId,
    from_version: u64,
    limit: i64,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events e WHERE e.stream_id = $1 AND e.stream_version >= $2
         ORDER BY e.stream_version LIMIT $3"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(stream.as_str())
        .bind(from_version as i64)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(decode).collect()
}

/// Whole streams, many at once: for handlers that fold small streams (a query's). The rows of each
/// stream come in version order.
pub(crate) async fn read_streams(
    conn: &mut PgConnection,
    streams: &[&str],
) -> Result<Vec<RecordedEvent>, StoreError> {
    // One index scan per stream, whatever the statistics: the plan is cached on the connection,
    // and `stream_id = ANY($1)` was planned as a scan of the whole table while it was small.
    let sql = format!(
        "SELECT {COLUMNS} FROM UNNEST($1::text[]) AS s(id)
         CROSS JOIN LATERAL (
             SELECT * FROM events x WHERE x.stream_id = s.id ORDER BY x.stream_version) e"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(streams)
        .fetch_all(conn)
        .await?;
    let mut events = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
    // Within a stream the index gives version order; the sort makes it a promise.
    events.sort_by(|a, b| {
        (a.stream_id.as_str(), a.stream_version).cmp(&(b.stream_id.as_str(), b.stream_version))
    });
    Ok(events)
}

/// A commit-order read: the events, and whether committed events wait behind the watermark.
#[derive(Debug)]
pub struct Committed<T> {
    pub events: Vec<T>,
    /// Some transaction still running holds back events that committed after it started: they
    /// become readable when it ends, and it may end without notifying (any write, not only an
    /// append, holds the watermark). The reader reads again soon. When false, everything committed
    /// has been read (or `events` is a full batch): the next event to read sends a notification.
    pub held: bool,
    /// Rows of the batch that do not read as events, in commit order: the reader parks them.
    pub unreadable: Vec<Unreadable>,
    /// The cursor of the last row of the batch, readable or not: where the reader goes on from.
    pub last: Option<CommitCursor>,
    /// Relay reads only: how many committed events after the cursor the watermark holds back
    /// (counted up to [`BEHIND_COUNTED`]), and when the oldest of them was recorded. With the
    /// batch's own first event, this is what the relay's lag is measured from: a transaction left
    /// open shows as lag growing, not as a relay with nothing to do.
    pub behind: Behind,
}

/// Committed events past the watermark, not yet readable in commit order.
#[derive(Debug, Default, Clone, Copy)]
pub struct Behind {
    /// How many, up to [`BEHIND_COUNTED`].
    pub events: i64,
    /// When the oldest of them was recorded.
    pub oldest: Option<chrono::DateTime<chrono::Utc>>,
}

/// Held-back events are counted up to this many, so that a read behind a long-held watermark
/// stays cheap.
pub const BEHIND_COUNTED: i64 = 100_000;

/// Events after `after` in commit order, only those whose transaction id is below the oldest
/// transaction still running (the snapshot's xmin). An event written by a transaction that is still
/// open, or that commits late with a lower position, is never skipped: the watermark waits for it.
/// See docs/adr/0002.
pub(crate) async fn read_committed(
    conn: &mut PgConnection,
    after: CommitCursor,
    limit: i64,
) -> Result<Committed<RecordedEvent>, StoreError> {
    let read = committed_rows(conn, after, limit, false).await?;
    let mut events = Vec::with_capacity(read.events.len());
    let mut unreadable = Vec::new();
    for (row, _) in read.events {
        match row {
            Ok(e) => events.push(e),
            Err(u) => unreadable.push(u),
        }
    }
    Ok(Committed {
        events,
        held: read.held,
        unreadable,
        last: read.last,
        behind: read.behind,
    })
}

/// One row of a relay read: an event, or a row that does not read as one, in commit order.
pub type RelayRow = Result<RecordedEvent, Unreadable>;

/// Like [`read_committed`], with the unreadable rows in their place, and for each row whether its
/// stream predecessor comes later in commit order (so it must wait for it; see docs/adr/0003).
pub(crate) async fn read_committed_for_relay(
    conn: &mut PgConnection,
    after: CommitCursor,
    limit: i64,
) -> Result<Committed<(RelayRow, bool)>, StoreError> {
    committed_rows(conn, after, limit, true).await
}

async fn committed_rows(
    conn: &mut PgConnection,
    after: CommitCursor,
    limit: i64,
    predecessor_flag: bool,
) -> Result<Committed<(RelayRow, bool)>, StoreError> {
    // A predecessor always has the lower position; only its transaction id can be the larger.
    let (flag, behind) = if predecessor_flag {
        (
            "e.stream_version > 1 AND EXISTS (
                 SELECT 1 FROM events p
                 WHERE p.stream_id = e.stream_id AND p.stream_version = e.stream_version - 1
                   AND p.tx_id > e.tx_id)",
            // Visible rows at or above the snapshot's xmin are committed (the statement writes
            // nothing of its own) and wait behind the watermark.
            format!(
                "SELECT count(*) AS behind, min(h.recorded_at) AS behind_oldest
                 FROM (SELECT recorded_at FROM events h
                       WHERE h.tx_id >= pg_snapshot_xmin(pg_current_snapshot())
                         AND (h.tx_id, h.position) > ($1::text::xid8, $2)
                       LIMIT {BEHIND_COUNTED}) h"
            ),
        )
    } else {
        (
            "false",
            "SELECT 0::bigint AS behind, NULL::timestamptz AS behind_oldest".to_owned(),
        )
    };
    // One statement, so one snapshot: `held` looks past the same watermark the batch stops at. The
    // outer row always exists, so an empty batch is one row of NULL event columns. `max` is
    // planned as one step down the commit-order index whatever the statistics say; an `EXISTS`
    // with a range condition was planned as a scan of the table while it was small, and that plan
    // stayed cached on the connection as the table grew.
    let sql = format!(
        "SELECT {COLUMNS}, {flag} AS predecessor_later, w.held, b.behind, b.behind_oldest
         FROM (SELECT coalesce(
                 (SELECT max(x.tx_id) FROM events x) >= pg_snapshot_xmin(pg_current_snapshot()),
                 false) AS held) w
         CROSS JOIN LATERAL ({behind}) b
         LEFT JOIN LATERAL (
             SELECT * FROM events e
             WHERE (e.tx_id, e.position) > ($1::text::xid8, $2)
               AND e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
             ORDER BY e.tx_id, e.position LIMIT $3) e ON true
         ORDER BY e.tx_id, e.position"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(after.tx_id.to_string())
        .bind(after.position)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    let (held, behind) = match rows.first() {
        Some(r) => (
            r.try_get("held")?,
            Behind {
                events: r.try_get("behind")?,
                oldest: r.try_get("behind_oldest")?,
            },
        ),
        None => (false, Behind::default()),
    };
    let events = rows
        .iter()
        .filter(|r| matches!(r.try_get::<Option<i64>, _>("position"), Ok(Some(_))))
        .map(|r| Ok((decode_or_unreadable(r)?, r.try_get("predecessor_later")?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let last = events.last().map(|(row, _): &(RelayRow, bool)| match row {
        Ok(e) => e.cursor(),
        Err(u) => u.cursor,
    });
    Ok(Committed {
        events,
        held,
        unreadable: Vec::new(),
        last,
        behind,
    })
}
