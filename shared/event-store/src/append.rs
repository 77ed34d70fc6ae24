//! Appending to a stream: optimistic concurrency on the stream version, idempotency on (`source`, `id`).
//!
//! The fast path is one statement: it reads the stream's version and inserts the whole batch only if
//! that version is the expected one, skipping events already stored. Anything unusual (a version
//! mismatch, a duplicate, a concurrent writer) falls to the slow path, which finds out which it was.

use std::collections::HashMap;

use quorum_domain::{Event, StreamId};
use sqlx::{Acquire, PgConnection, Row};

use crate::StoreError;
use crate::error::violated_constraint;

/// What the caller believes the stream's version to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the version (the store still numbers the events without gaps).
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be at exactly this version.
    Exact(u64),
}

impl ExpectedVersion {
    /// The version the stream must be at, as the statements take it; `None` for any.
    pub(crate) fn as_param(self) -> Option<i64> {
        match self {
            ExpectedVersion::Any => None,
            ExpectedVersion::NoStream => Some(0),
            ExpectedVersion::Exact(v) => Some(v as i64),
        }
    }
}

impl std::fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::Exact(v) => write!(f, "{v}"),
        }
    }
}

/// One event's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    pub position: i64,
    pub stream_version: u64,
    /// The event was stored already (same source, id and content); nothing new was written.
    pub duplicate: bool,
}

/// The outcome of an append, one entry per event in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendResult {
    pub events: Vec<Appended>,
}

impl AppendResult {
    /// True when every event was stored already.
    pub fn all_duplicates(&self) -> bool {
        self.events.iter().all(|e| e.duplicate)
    }
}

/// Whose transaction an append runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The caller's: attempts run in savepoints, and the caller commits.
    Caller,
    /// Its own: a version-checked append is one autocommitted statement (one round trip, atomic by
    /// itself); an `Any` append takes a short transaction for the stream lock.
    Own,
}

/// How often an `Any` append retries when a concurrent writer takes its version.
const ANY_RETRIES: usize = 16;

/// Appends `events` to `stream` on `conn`, inside the caller's transaction if there is one (a savepoint
/// keeps a failed attempt from poisoning it). Commit is the caller's business.
pub(crate) async fn append(
    conn: &mut PgConnection,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: &[Event],
    scope: Scope,
) -> Result<AppendResult, StoreError> {
    let _span = crate::span::store_span(crate::span::Operation::Insert, events.len());
    append_traced(conn, stream, expected, events, scope).await
}

async fn append_traced(
    conn: &mut PgConnection,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: &[Event],
    scope: Scope,
) -> Result<AppendResult, StoreError> {
    let rows = Rows::new(events)?;
    for _ in 0..ANY_RETRIES {
        match try_fast(conn, stream, expected, &rows, scope).await? {
            Some(appended) => return Ok(AppendResult { events: appended }),
            None => match slow_path(conn, stream, expected, events, &rows, scope).await? {
                Some(result) => return Ok(result),
                None => continue, // `Any` lost a race for its version: go again.
            },
        }
    }
    Err(StoreError::Conflict {
        stream: stream.clone(),
        expected: expected.to_string(),
        actual: 0,
    })
}

/// The columns of a batch, as arrays for one `UNNEST` insert.
struct Rows {
    tenant: String,
    ids: Vec<String>,
    sources: Vec<String>,
    types: Vec<String>,
    data: Vec<Option<Vec<u8>>>,
    content_types: Vec<Option<String>>,
    attributes: Vec<String>,
    correlations: Vec<Option<String>>,
    causations: Vec<Option<String>>,
    times: Vec<Option<chrono::DateTime<chrono::Utc>>>,
}

impl Rows {
    fn new(events: &[Event]) -> Result<Self, StoreError> {
        let invalid = |e: &Event, reason: &str| StoreError::Invalid {
            id: e.id.clone(),
            reason: reason.to_owned(),
        };
        let first = events.first().ok_or_else(|| StoreError::Invalid {
            id: String::new(),
            reason: "empty batch".into(),
        })?;
        let tenant = first
            .tenant
            .clone()
            .ok_or_else(|| invalid(first, "no tenant"))?;
        let mut rows = Rows {
            tenant: tenant.to_string(),
            ids: Vec::with_capacity(events.len()),
            sources: Vec::with_capacity(events.len()),
            types: Vec::with_capacity(events.len()),
            data: Vec::with_capacity(events.len()),
            content_types: Vec::with_capacity(events.len()),
            attributes: Vec::with_capacity(events.len()),
            correlations: Vec::with_capacity(events.len()),
            causations: Vec::with_capacity(events.len()),
            times: Vec::with_capacity(events.len()),
        };
        for e in events {
            if e.tenant.as_ref() != Some(&tenant) {
                return Err(invalid(
                    e,
                    "every event of one append must have the same tenant",
                ));
            }
            if e.id.is_empty() || e.source.is_empty() || e.ty.is_empty() {
                return Err(invalid(e, "id, source and type must be non-empty"));
            }
            // Stored as sent: an upstream event's subject is its own, not its stream's name.
            let attributes = e.attributes_json();
            rows.ids.push(e.id.clone());
            rows.sources.push(e.source.clone());
            rows.types.push(e.ty.clone());
            rows.data.push(e.data.as_ref().map(|d| d.to_vec()));
            rows.content_types.push(e.datacontenttype.clone());
            rows.attributes.push(attributes.to_string());
            rows.correlations.push(e.correlationid.clone());
            rows.causations.push(e.causationid.clone());
            rows.times.push(e.time);
        }
        Ok(rows)
    }
}

/// The single-statement append: all of the batch or nothing. `None` when it did not apply (the
/// version was not the expected one, or a unique constraint was hit: a concurrent writer or a
/// duplicate); the slow path finds out which.
async fn try_fast(
    conn: &mut PgConnection,
    stream: &StreamId,
    expected: ExpectedVersion,
    rows: &Rows,
    scope: Scope,
) -> Result<Option<Vec<Appended>>, StoreError> {
    // The expected version is checked in the same statement that inserts, so there is no window
    // between the check and the write; a concurrent writer of the same version hits the
    // (stream_id, stream_version) unique constraint instead, and a stored (tenant, source, id) the
    // identity one. Either fails the whole statement: nothing is half-appended.
    const SQL: &str = "
        WITH cur AS (
            SELECT coalesce(max(stream_version), 0) AS v FROM events WHERE stream_id = $1
        )
        INSERT INTO events (tenant, stream_id, stream_version, event_id, source, type, data,
                            datacontenttype, attributes, correlation_id, causation_id, occurred_at)
        SELECT $2, $1, cur.v + u.ord, u.event_id, u.source, u.type, u.data, u.dct, u.attrs::jsonb,
               u.corr, u.caus, u.occ
        FROM cur, UNNEST($3::text[], $4::text[], $5::text[], $6::bytea[], $7::text[], $8::text[],
                         $9::text[], $10::text[], $11::timestamptz[])
             WITH ORDINALITY AS u(event_id, source, type, data, dct, attrs, corr, caus, occ, ord)
        WHERE $12::bigint IS NULL OR cur.v = $12::bigint
        RETURNING position, stream_version";
    let insert = sqlx::query(SQL)
        .bind(stream.as_str())
        .bind(&rows.tenant)
        .bind(&rows.ids)
        .bind(&rows.sources)
        .bind(&rows.types)
        .bind(&rows.data)
        .bind(&rows.content_types)
        .bind(&rows.attributes)
        .bind(&rows.correlations)
        .bind(&rows.causations)
        .bind(&rows.times)
        .bind(expected.as_param());
    let result = if scope == Scope::Own && expected != ExpectedVersion::Any {
        insert.fetch_all(&mut *conn).await
    } else {
        // A transaction of our own, or a savepoint in the caller's, so a failed attempt leaves the
        // caller's transaction usable.
        let mut tx = conn.begin().await?;
        if expected == ExpectedVersion::Any {
            // Appenders that do not check versions queue on the stream instead of racing for the
            // next version and retrying: under contention the retries could starve. The lock is
            // taken before the insert statement, whose snapshot must see the previous holder's rows.
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(stream.as_str())
                .execute(&mut *tx)
                .await?;
        }
        let result = insert.fetch_all(&mut *tx).await;
        if matches!(&result, Ok(rows_in) if rows_in.len() == rows.ids.len()) {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        result
    };
    match result {
        Ok(inserted) if inserted.len() == rows.ids.len() => {
            let mut appended = inserted
                .iter()
                .map(|r| {
                    Ok(Appended {
                        position: r.try_get("position")?,
                        stream_version: r.try_get::<i64, _>("stream_version")? as u64,
                        duplicate: false,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            appended.sort_by_key(|a| a.stream_version);
            Ok(Some(appended))
        }
        Ok(_) => Ok(None),
        Err(e) if violated_constraint(&e).is_some() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Looks at what is stored already. Returns the result when every event is a duplicate, appends the
/// rest when some are, and reports a conflict otherwise. `None` asks an `Any` append to retry.
async fn slow_path(
    conn: &mut PgConnection,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: &[Event],
    rows: &Rows,
    scope: Scope,
) -> Result<Option<AppendResult>, StoreError> {
    let stored = sqlx::query(
        "SELECT e.source, e.event_id, e.position, e.stream_id, e.stream_version, e.tenant, e.type,
                e.datacontenttype, e.data
         FROM events e JOIN UNNEST($1::text[], $2::text[]) AS k(source, event_id) USING (source, event_id)
         WHERE e.tenant = $3",
    )
    .bind(&rows.sources)
    .bind(&rows.ids)
    .bind(&rows.tenant)
    .fetch_all(&mut *conn)
    .await?;
    let mut found: HashMap<(String, String), Appended> = HashMap::new();
    for row in &stored {
        let key: (String, String) = (row.try_get("source")?, row.try_get("event_id")?);
        let event = events
            .iter()
            .find(|e| e.source == key.0 && e.id == key.1)
            .expect("selected by key");
        // "Same content" is what a redelivered handler reproduces: stream, tenant, type and data.
        // Attributes such as `time` or `traceparent` may differ between two runs of one handler.
        let same = row.try_get::<String, _>("stream_id")? == stream.as_str()
            && row.try_get::<String, _>("tenant")? == rows.tenant
            && row.try_get::<String, _>("type")? == event.ty
            && row.try_get::<Option<String>, _>("datacontenttype")? == event.datacontenttype
            && row.try_get::<Option<Vec<u8>>, _>("data")?.as_deref() == event.data.as_deref();
        if !same {
            return Err(StoreError::IdConflict {
                event_source: key.0,
                id: key.1,
            });
        }
        let appended = Appended {
            position: row.try_get("position")?,
            stream_version: row.try_get::<i64, _>("stream_version")? as u64,
            duplicate: true,
        };
        found.insert(key, appended);
    }
    if found.len() == events.len() {
        let events = events
            .iter()
            .map(|e| found[&(e.source.clone(), e.id.clone())])
            .collect();
        return Ok(Some(AppendResult { events }));
    }
    if !found.is_empty() {
        // Some were stored by an earlier append: append the others.
        let rest: Vec<Event> = events
            .iter()
            .filter(|e| !found.contains_key(&(e.source.clone(), e.id.clone())))
            .cloned()
            .collect();
        let rest_rows = Rows::new(&rest)?;
        return match try_fast(conn, stream, expected, &rest_rows, scope).await? {
            Some(appended) => {
                let mut fresh = appended.into_iter();
                let events = events
                    .iter()
                    .map(|e| {
                        found
                            .get(&(e.source.clone(), e.id.clone()))
                            .copied()
                            .unwrap_or_else(|| fresh.next().expect("one per event"))
                    })
                    .collect();
                Ok(Some(AppendResult { events }))
            }
            _ if expected == ExpectedVersion::Any => Ok(None),
            _ => Err(conflict(conn, stream, expected).await),
        };
    }
    if expected == ExpectedVersion::Any {
        return Ok(None);
    }
    Err(conflict(conn, stream, expected).await)
}

async fn conflict(
    conn: &mut PgConnection,
    stream: &StreamId,
    expected: ExpectedVersion,
) -> StoreError {
    match crate::read::stream_version(conn, stream).await {
        Ok(actual) => StoreError::Conflict {
            stream: stream.clone(),
            expected: expected.to_string(),
            actual,
        },
        Err(e) => e,
    }
}
