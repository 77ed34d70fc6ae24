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
        .map_err(|e| Problem::unavailable(e.to_string()))?;
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
        .map_err(|e| Problem::unavailable(e.to_string()))?;
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
        .map_err(|e| Problem::unavailable(e.to_string()))?;
    Ok(Json(page(events, params.limit, |e| e.position)))
}

/// One more than `limit` was read, to know whether a next page exists without counting.
fn page(
    mut events: Vec<RecordedEvent>,
    limit: i64,
    cursor: impl Fn(&RecordedEvent) -> i64,
) -> Page {
    let more = events.len() as i64 > limit;
    events.truncate(limit as usize);
    let next = more.then(|| events.last().map(&cursor)).flatten();
    Page {
        events: events.into_iter().map(Stored::from).collect(),
        next,
    }
}
