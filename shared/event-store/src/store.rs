//! `EventStore`: the handle services use to append and read.

use quorum_domain::{Event, StreamId};
use sqlx::{PgConnection, PgPool};

use crate::read::{Committed, RelayRow};
use crate::{AppendResult, CommitCursor, ExpectedVersion, RecordedEvent, StoreError, append, read};

/// The event store on one Postgres database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct EventStore {
    pool: PgPool,
}

impl EventStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The underlying pool, for handlers that commit their own rows with their appends.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Appends `events` to `stream`, atomically. All events must carry the same tenant.
    ///
    /// A version mismatch is [`StoreError::Conflict`]. An event whose (`source`, `id`) is stored already
    /// with the same stream, tenant, type and data is reported as a duplicate with its stored position;
    /// with other content it is [`StoreError::IdConflict`]. Nothing is ever updated or deleted.
    pub async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[Event],
    ) -> Result<AppendResult, StoreError> {
        let mut conn = self.pool.acquire().await?;
        append::append(&mut conn, stream, expected, events, append::Scope::Own).await
    }

    /// Appends inside the caller's transaction, so a handler commits its events together with its
    /// own rows (a checkpoint, a read model). On error the caller's transaction is still usable.
    pub async fn append_in(
        conn: &mut PgConnection,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[Event],
    ) -> Result<AppendResult, StoreError> {
        append::append(conn, stream, expected, events, append::Scope::Caller).await
    }

    /// Group commit: appends each `(stream, event)` as an `Any` append would, all in one statement and
    /// one commit. `None` when the group cannot apply as it is (a duplicate, or a concurrent writer
    /// of one of its streams); nothing is written then, and the caller appends each part on its own.
    pub async fn append_group(
        &self,
        events: &[(&StreamId, &Event)],
    ) -> Result<Option<Vec<crate::Appended>>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        crate::append_group::append_group(&mut conn, events).await
    }

    /// [`Self::append_group`] inside the caller's transaction, for a handler that records many
    /// streams' events with its own rows. A `None` (a unique constraint was hit) leaves the
    /// transaction aborted: the caller rolls back.
    pub async fn append_group_in(
        conn: &mut PgConnection,
        events: &[(&StreamId, &Event)],
    ) -> Result<Option<Vec<crate::Appended>>, StoreError> {
        crate::append_group::append_group(conn, events).await
    }

    /// Appends to several streams (`Any` each) in one transaction: all of it is stored, or nothing.
    pub async fn append_streams(
        &self,
        parts: &[(StreamId, Vec<Event>)],
    ) -> Result<Vec<AppendResult>, StoreError> {
        use sqlx::Acquire;
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let mut results = Vec::with_capacity(parts.len());
        for (stream, events) in parts {
            results.push(
                append::append(
                    &mut tx,
                    stream,
                    ExpectedVersion::Any,
                    events,
                    append::Scope::Caller,
                )
                .await?,
            );
        }
        tx.commit().await?;
        Ok(results)
    }

    /// A tenant's events matching `filter`, in position order.
    pub async fn find(&self, filter: &crate::Filter) -> Result<Vec<RecordedEvent>, StoreError> {
        crate::find::find(&mut *self.pool.acquire().await?, filter).await
    }

    /// The transaction-id watermark now: every transaction below it has ended, so the events they
    /// wrote are a fixed set (see [`Self::select`]).
    pub async fn watermark(&self) -> Result<u64, StoreError> {
        let xmin: String =
            sqlx::query_scalar("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")
                .fetch_one(&self.pool)
                .await?;
        Ok(xmin.parse().unwrap_or(0))
    }

    /// How many events `selection` takes below the watermark `upto_xmin`.
    pub async fn count_selected(
        &self,
        selection: &crate::Selection,
        upto_xmin: u64,
    ) -> Result<i64, StoreError> {
        selection.check_one_tenant(&self.pool).await?;
        crate::find::count_selected(&mut *self.pool.acquire().await?, selection, upto_xmin).await
    }

    /// Up to `limit` events of `selection` after `after` in commit order, below `upto_xmin`.
    pub async fn select(
        &self,
        selection: &crate::Selection,
        after: CommitCursor,
        upto_xmin: u64,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        crate::find::select(
            &mut *self.pool.acquire().await?,
            selection,
            after,
            upto_xmin,
            limit,
        )
        .await
    }

    /// The stream's current version, 0 when it has no events.
    pub async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        read::stream_version(&mut *self.pool.acquire().await?, stream).await
    }

    /// Up to `limit` events of `stream` from `from_version` on (versions start at 1).
    pub async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        Self::read_stream_on(
            &mut *self.pool.acquire().await?,
            stream,
            from_version,
            limit,
        )
        .await
    }

    /// [`Self::read_stream`] on the caller's connection.
    pub async fn read_stream_on(
        conn: &mut PgConnection,
        stream: &StreamId,
        from_version: u64,
        limit: i64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let _span = crate::span::store_span(crate::span::Operation::Select, 1);
        read::read_stream(conn, stream, from_version, limit).await
    }

    /// Up to `limit` events after `after` in commit order, below the transaction-id watermark: a
    /// reader that checkpoints on the last event's cursor never skips an event that commits late.
    pub async fn read_committed(
        &self,
        after: CommitCursor,
        limit: i64,
    ) -> Result<Committed<RecordedEvent>, StoreError> {
        Self::read_committed_on(&mut *self.pool.acquire().await?, after, limit).await
    }

    /// [`Self::read_committed`] on the caller's connection: a reader that loops keeps one.
    pub async fn read_committed_on(
        conn: &mut PgConnection,
        after: CommitCursor,
        limit: i64,
    ) -> Result<Committed<RecordedEvent>, StoreError> {
        read::read_committed(conn, after, limit).await
    }

    /// [`Self::read_committed`] for the relay: each row comes with whether its stream predecessor is
    /// later in commit order, in which case it must be held back until the predecessor is published;
    /// a row that does not read as an event comes in its place, for the relay to park.
    pub async fn read_committed_for_relay(
        conn: &mut PgConnection,
        after: CommitCursor,
        limit: i64,
    ) -> Result<Committed<(RelayRow, bool)>, StoreError> {
        read::read_committed_for_relay(conn, after, limit).await
    }

    /// The commit-order cursor of the newest stored event below the watermark, and its recording time:
    /// how far a reader could get right now (for lag).
    pub async fn head(
        &self,
    ) -> Result<Option<(CommitCursor, chrono::DateTime<chrono::Utc>)>, StoreError> {
        use sqlx::Row;
        let row = sqlx::query(
            // Qualified: an unqualified `ORDER BY tx_id` would sort by the text column of that
            // name (the wrong head once ids differ in length, and a sort of the whole table).
            "SELECT e.tx_id::text AS tx_id, e.position, e.recorded_at FROM events e
             WHERE e.tx_id < pg_snapshot_xmin(pg_current_snapshot())
             ORDER BY e.tx_id DESC, e.position DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let tx: String = r.try_get("tx_id")?;
            Ok((
                CommitCursor {
                    tx_id: tx.parse().unwrap_or(0),
                    position: r.try_get("position")?,
                },
                r.try_get("recorded_at")?,
            ))
        })
        .transpose()
    }
}
