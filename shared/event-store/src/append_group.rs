//! Group commit: the events of many callers, to many streams, in one statement and one commit.
//!
//! Ingest receives many small, independent appends at once (one event per HTTP request). Committing
//! each on its own costs a round trip and a WAL flush per event; one statement for the whole group
//! costs one of each. The statement is all or nothing: when it cannot apply as it is (a duplicate, or
//! a concurrent writer took a version), the caller falls back to appending each request on its own,
//! where the usual rules sort out which it was.
//!
//! Handlers that append at a version they folded (fan-out, consensus) are grouped the same way by
//! [`crate::Batcher`]: each part carries its expected version, and a part whose stream is not at it
//! is left out of the insert while the rest goes in.

use std::collections::HashMap;

use quorum_domain::{Event, StreamId};
use sqlx::{PgConnection, Row};

use crate::error::violated_constraint;
use crate::{Appended, ExpectedVersion, StoreError};

/// The columns of a group, one array each, for one `UNNEST` insert.
#[derive(Default)]
struct Columns {
    streams: Vec<String>,
    tenants: Vec<String>,
    ids: Vec<String>,
    sources: Vec<String>,
    types: Vec<String>,
    data: Vec<Option<Vec<u8>>>,
    content_types: Vec<Option<String>>,
    attributes: Vec<String>,
    correlations: Vec<Option<String>>,
    causations: Vec<Option<String>>,
    times: Vec<Option<chrono::DateTime<chrono::Utc>>>,
    /// The version the event's stream must be at; `None` for any.
    expected: Vec<Option<i64>>,
}

/// Appends every `(stream, event)` as if by an `Any` append each, in one autocommitted statement:
/// events of one stream get consecutive versions in the order given. Returns one [`Appended`] per
/// event, in order, or `None` when the statement did not apply because a unique constraint was hit
/// (nothing was written then).
pub(crate) async fn append_group(
    conn: &mut PgConnection,
    events: &[(&StreamId, &Event)],
) -> Result<Option<Vec<Appended>>, StoreError> {
    let _span = crate::span::store_span(crate::span::Operation::Insert, events.len());
    append_group_traced(conn, events).await
}

async fn append_group_traced(
    conn: &mut PgConnection,
    events: &[(&StreamId, &Event)],
) -> Result<Option<Vec<Appended>>, StoreError> {
    let any: Vec<_> = events
        .iter()
        .map(|&(s, e)| (s, ExpectedVersion::Any, e))
        .collect();
    let Some(appended) = append_checked(conn, &any).await? else {
        return Ok(None);
    };
    appended
        .into_iter()
        .zip(events)
        .map(|(a, (_, e))| {
            a.ok_or_else(|| StoreError::Invalid {
                id: e.id.clone(),
                reason: "not returned by the group insert".into(),
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// [`append_group`] with an expected version per event: the events of a stream that is not at its
/// expected version are left out, and come back as `None`. The caller puts at
/// most one expecting part per stream in a group: every part of a stream is checked against the
/// version before the statement. `None` as a whole when a unique constraint was hit (nothing was
/// written then).
pub(crate) async fn append_checked(
    conn: &mut PgConnection,
    events: &[(&StreamId, ExpectedVersion, &Event)],
) -> Result<Option<Vec<Option<Appended>>>, StoreError> {
    let columns = columns(events)?;
    // Each stream's current version is read once; `row_number` numbers the group's events within
    // their stream. A concurrent writer of the same stream makes the insert hit the
    // (stream_id, stream_version) constraint, and then nothing of the group is written. `cur` is
    // materialized: inlined, its version lookup ran once for each place `cur.v` is used.
    const SQL: &str = "
        WITH u AS (
            SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                 $6::bytea[], $7::text[], $8::text[], $9::text[], $10::text[],
                                 $11::timestamptz[], $12::bigint[])
                WITH ORDINALITY AS u(stream_id, tenant, event_id, source, type, data, dct, attrs,
                                     corr, caus, occ, expected, ord)
        ), cur AS MATERIALIZED (
            SELECT s.stream_id,
                   coalesce((SELECT max(e.stream_version) FROM events e
                             WHERE e.stream_id = s.stream_id), 0) AS v
            FROM (SELECT DISTINCT stream_id FROM u) s
        )
        INSERT INTO events (tenant, stream_id, stream_version, event_id, source, type, data,
                            datacontenttype, attributes, correlation_id, causation_id, occurred_at)
        SELECT u.tenant, u.stream_id,
               cur.v + row_number() OVER (PARTITION BY u.stream_id ORDER BY u.ord),
               u.event_id, u.source, u.type, u.data, u.dct, u.attrs::jsonb, u.corr, u.caus, u.occ
        FROM u JOIN cur USING (stream_id)
        WHERE u.expected IS NULL OR u.expected = cur.v
        ORDER BY u.ord
        RETURNING stream_id, source, event_id, position, stream_version";
    let result = sqlx::query(SQL)
        .bind(&columns.streams)
        .bind(&columns.tenants)
        .bind(&columns.ids)
        .bind(&columns.sources)
        .bind(&columns.types)
        .bind(&columns.data)
        .bind(&columns.content_types)
        .bind(&columns.attributes)
        .bind(&columns.correlations)
        .bind(&columns.causations)
        .bind(&columns.times)
        .bind(&columns.expected)
        .fetch_all(&mut *conn)
        .await;
    let rows = match result {
        Ok(rows) => rows,
        Err(e) if violated_constraint(&e).is_some() => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    // RETURNING promises no order: match rows to events by stream and identity (an identity
    // inserted twice would have hit the constraint; one left out may repeat in another stream).
    let mut by_id: HashMap<(&str, &str, &str), Appended> = HashMap::with_capacity(rows.len());
    for row in &rows {
        let stream: &str = row.try_get("stream_id")?;
        let source: &str = row.try_get("source")?;
        let id: &str = row.try_get("event_id")?;
        let appended = Appended {
            position: row.try_get("position")?,
            stream_version: row.try_get::<i64, _>("stream_version")? as u64,
            duplicate: false,
        };
        by_id.insert((stream, source, id), appended);
    }
    Ok(Some(
        events
            .iter()
            .map(|(s, _, e)| {
                by_id
                    .get(&(s.as_str(), e.source.as_str(), e.id.as_str()))
                    .copied()
            })
            .collect(),
    ))
}

fn columns(events: &[(&StreamId, ExpectedVersion, &Event)]) -> Result<Columns, StoreError> {
    let mut c = Columns::default();
    for &(stream, expected, e) in events {
        let invalid = |reason: &str| StoreError::Invalid {
            id: e.id.clone(),
            reason: reason.to_owned(),
        };
        let tenant = e.tenant.as_ref().ok_or_else(|| invalid("no tenant"))?;
        if e.id.is_empty() || e.source.is_empty() || e.ty.is_empty() {
            return Err(invalid("id, source and type must be non-empty"));
        }
        c.streams.push(stream.as_str().to_owned());
        c.tenants.push(tenant.as_str().to_owned());
        c.ids.push(e.id.clone());
        c.sources.push(e.source.clone());
        c.types.push(e.ty.clone());
        c.data.push(e.data.as_ref().map(|d| d.to_vec()));
        c.content_types.push(e.datacontenttype.clone());
        c.attributes.push(e.attributes_json().to_string());
        c.correlations.push(e.correlationid.clone());
        c.causations.push(e.causationid.clone());
        c.times.push(e.time);
        c.expected.push(expected.as_param());
    }
    Ok(c)
}
