//! Reading history back: one stream, or a tenant's events by correlation id and time range. Always
//! scoped to the caller's tenant; another tenant's stream is "not found", not "forbidden", so that
//! its existence is not told either.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use quorum_auth::Role;
use quorum_domain::{StreamId, cloudevent};
use quorum_event_store::{Filter, RecordedEvent};
use serde::{Deserialize, Serialize};

use super::App;
use super::problem::Problem;

const READERS: &[Role] = &[Role::Auditor, Role::Operator];
const MAX_LIMIT: i64 = 1000;
/// Most bytes of event data and attributes one page carries: a page of large events ends early,
/// with `next`, rather than build an answer of a thousand megabyte events.
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

#[derive(Serialize)]
pub struct Page {
    pub events: Vec<Stored>,
    /// Pass as `after` (by filter) or `from_version` (by stream) for the next page; absent on the
    /// last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<i64>,
}

/// A stored event: where it stands, and the CloudEvent itself (JSON format) as it was received.
#[derive(Serialize)]
pub struct Stored {
    pub position: i64,
    pub stream: String,
    pub version: u64,
    #[serde(serialize_with = "quorum_http::time::millis")]
    pub recorded_at: DateTime<Utc>,
    pub event: serde_json::Value,
}

impl From<RecordedEvent> for Stored {
    fn from(r: RecordedEvent) -> Self {
        Self {
            position: r.position,
            stream: r.stream_id.to_string(),
            version: r.stream_version,
            recorded_at: r.recorded_at,
            event: cloudevent::to_structured(&r.event),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    #[serde(default = "one")]
    from_version: u64,
    #[serde(default = "hundred")]
    limit: i64,
}

fn one() -> u64 {
    1
}

fn hundred() -> i64 {
    100
}

/// Text Postgres cannot hold (NUL), or that no identifier contains.
pub(crate) fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

fn check_limit(limit: i64) -> Result<(), Problem> {
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(())
    } else {
        Err(Problem::bad_request(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )))
    }
}

pub async fn by_stream(
    State(app): State<App>,
    headers: HeaderMap,
    Path(stream): Path<String>,
    params: Result<Query<StreamParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page>, Problem> {
    let principal = app.authorize(&headers, READERS).await?;
    let Query(params) = params.map_err(|e| Problem::bad_request(e.body_text()))?;
    check_limit(params.limit)?;
    let not_found = || Problem::not_found(format!("no stream {stream} for this tenant"));
    let id = StreamId::parse(stream.clone()).map_err(|_| not_found())?;
    let from = params.from_version.max(1);
    let events = app
        .0
        .store
        .read_stream(&id, from, params.limit + 1)
        .await
        .map_err(|e| store_problem(&e))?;
    // A stream belongs to one tenant (docs/adr/0006); any event of another means not ours.
    if events.iter().any(|e| e.tenant != principal.tenant) {
        return Err(not_found());
    }
    if events.is_empty() && (from == 1 || !exists(&app, &id, &principal.tenant).await?) {
        return Err(not_found());
    }
    Ok(Json(page(events, params.limit, |e| {
        e.stream_version as i64 + 1
    })))
}

async fn exists(
    app: &App,
    id: &StreamId,
    tenant: &quorum_domain::TenantId,
) -> Result<bool, Problem> {
    let first = app
        .0
        .store
        .read_stream(id, 1, 1)
        .await
        .map_err(|e| store_problem(&e))?;
    Ok(first.first().is_some_and(|e| &e.tenant == tenant))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterParams {
    correlation_id: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    #[serde(default)]
    after: i64,
    #[serde(default = "hundred")]
    limit: i64,
}

pub async fn by_filter(
    State(app): State<App>,
    headers: HeaderMap,
    params: Result<Query<FilterParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Page>, Problem> {
    let principal = app.authorize(&headers, READERS).await?;
    let Query(params) = params.map_err(|e| Problem::bad_request(e.body_text()))?;
    check_limit(params.limit)?;
    if params.correlation_id.as_deref().is_some_and(has_control) {
        return Err(Problem::bad_request(
            "correlation_id: control characters are not allowed",
        ));
    }
    let filter = Filter {
        tenant: principal.tenant,
        correlation_id: params.correlation_id,
        since: params.since,
        until: params.until,
        after_position: params.after.max(0),
        limit: params.limit + 1,
    };
    let events = app
        .0
        .store
        .find(&filter)
        .await
        .map_err(|e| store_problem(&e))?;
    Ok(Json(page(events, params.limit, |e| e.position)))
}

/// A store error as an answer: the database's own words go to the log under an id, never to the
/// caller.
fn store_problem(e: &quorum_event_store::StoreError) -> Problem {
    match e {
        quorum_event_store::StoreError::Database(db) => Problem::database(db),
        other => Problem::internal(other),
    }
}

/// One more than `limit` was read, to know whether a next page exists without counting. A page
/// also ends once it holds [`MAX_PAGE_BYTES`] (always with at least one event).
fn page(
    mut events: Vec<RecordedEvent>,
    limit: i64,
    cursor: impl Fn(&RecordedEvent) -> i64,
) -> Page {
    let mut bytes = 0;
    let fit = events
        .iter()
        .take(limit as usize)
        .position(|e| {
            bytes += e.event.data.as_ref().map_or(0, |d| d.len())
                + e.event.attributes_json().to_string().len();
            bytes > MAX_PAGE_BYTES
        })
        .map_or(limit as usize, |i| i.max(1));
    let more = events.len() > fit;
    events.truncate(fit);
    let next = more.then(|| events.last().map(&cursor)).flatten();
    Page {
        events: events.into_iter().map(Stored::from).collect(),
        next,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use quorum_domain::{Event, TenantId};

    use super::*;

    fn recorded(position: i64, data_bytes: usize) -> RecordedEvent {
        let stream = StreamId::parse("sub-t/x").unwrap();
        let tenant = TenantId::new("t").unwrap();
        let data = Bytes::from(vec![b'x'; data_bytes]);
        RecordedEvent {
            position,
            tx_id: position as u64,
            stream_id: stream.clone(),
            stream_version: position as u64,
            tenant: tenant.clone(),
            recorded_at: Utc::now(),
            event: Event::new("/s", "t.x", stream, tenant, data),
        }
    }

    #[test]
    fn a_page_ends_at_its_byte_budget_and_says_where_to_go_on() {
        let big: Vec<RecordedEvent> = (1..=10).map(|p| recorded(p, 1024 * 1024)).collect();
        let p = page(big, 100, |e| e.position);
        assert!(
            p.events.len() < 10 && !p.events.is_empty(),
            "{}",
            p.events.len()
        );
        assert_eq!(p.next, Some(p.events.len() as i64));
        // One event over the whole budget still makes a page of one.
        let p = page(
            vec![recorded(1, 5 * 1024 * 1024), recorded(2, 1)],
            100,
            |e| e.position,
        );
        assert_eq!((p.events.len(), p.next), (1, Some(1)));
        // Small events: the count decides, as before.
        let small: Vec<RecordedEvent> = (1..=11).map(|p| recorded(p, 10)).collect();
        let p = page(small, 10, |e| e.position);
        assert_eq!((p.events.len(), p.next), (10, Some(10)));
    }
}
