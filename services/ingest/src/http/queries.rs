//! `/v1/queries`: submit a question to the experts (appends `quorum.query.submitted` to the
//! query's own stream and answers with where to follow it), read its view, wait for it, watch it.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use quorum_auth::Role;
use quorum_domain::query::QuerySubmitted;
use quorum_domain::{Event, types};
use serde::Serialize;
use uuid::Uuid;

use super::problem::Problem;
use super::waiters::TooManyWaits;
use super::{App, media_type, read_body};
use crate::accept::{self, Rejection};
use crate::streams::query_stream;

/// Where ingest's own events say they come from.
pub const SOURCE: &str = "/quorum/ingest";

/// Seeds event ids derived from an `Idempotency-Key`; must never change.
const IDEMPOTENCY: Uuid = Uuid::from_u128(0x1b7e_4f0a_96c2_4e55_8d3b_52a9_70c4_e611);

#[derive(Serialize)]
pub struct Submitted {
    pub query_id: String,
    pub stream: String,
    pub event_id: String,
    /// The query's history.
    pub url: String,
    /// The same query (by `Idempotency-Key`) was submitted before; nothing new was stored.
    pub duplicate: bool,
}

pub async fn post(
    State(app): State<App>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let principal = app.authorize(&headers, &[Role::Publisher]).await?;
    if media_type(&headers).as_deref() != Some("application/json") {
        return Err(Problem::unsupported_media(
            "send the query as application/json",
        ));
    }
    let limits = &app.0.limits;
    let body = read_body(
        &headers,
        body,
        limits.max_event_bytes.min(limits.max_body_bytes),
    )
    .await?;
    let query: QuerySubmitted = serde_json::from_slice(&body)
        .map_err(|e| Problem::from(Rejection::invalid("", format!("not a query: {e}"))))?;
    query
        .validate()
        .map_err(|e| Problem::from(Rejection::invalid(e.field.clone(), e.reason.clone())))?;
    let tenant = principal.tenant;
    // A client that retries with the same key gets the same event id, hence the same query.
    let id = match headers.get("idempotency-key").map(|v| v.as_bytes()) {
        Some(key) if !key.is_empty() && key.len() <= 255 => {
            let mut seed = tenant.as_str().as_bytes().to_vec();
            seed.push(0);
            seed.extend_from_slice(key);
            Uuid::new_v5(&IDEMPOTENCY, &seed)
        }
        Some(_) => {
            return Err(Problem::bad_request(
                "Idempotency-Key must be 1 to 255 bytes",
            ));
        }
        None => Uuid::now_v7(),
    };
    let data = serde_json::to_vec(&query).expect("a query serializes");
    // Named as a query sent as a CloudEvent would be; every event that follows from it carries
    // the query id as its correlation id.
    let stream = query_stream(&tenant, SOURCE, &id.to_string());
    let mut event = Event::new(
        SOURCE,
        types::QUERY_SUBMITTED,
        stream.clone(),
        tenant.clone(),
        Bytes::from(data),
    );
    event.id = id.to_string();
    event.correlationid = stream.as_str().strip_prefix("query/").map(str::to_owned);
    let prepared = accept::prepare(&tenant, vec![event], &app.0.schemas, app.0.bounds)?;
    let _admitted = app.0.admission.admit(&tenant, 1)?;
    // Recorded before it commits, so that no decision of it can come first (ADR 39).
    let submitting = stream
        .as_str()
        .strip_prefix("query/")
        .map(|query| app.0.waiters.submitting(&tenant, query));
    let accepted = accept::store(&app.0.committer, prepared)
        .await?
        .pop()
        .expect("one event, one answer");
    if let Some(s) = submitting {
        s.stored(accepted.duplicate);
    }
    let query_id = accepted
        .stream
        .strip_prefix("query/")
        .unwrap_or(&accepted.stream)
        .to_owned();
    let url = format!("/v1/streams/query%2F{query_id}/events");
    let mut response = (
        StatusCode::ACCEPTED,
        Json(Submitted {
            query_id,
            stream: accepted.stream,
            event_id: accepted.id,
            url: url.clone(),
            duplicate: accepted.duplicate,
        }),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&url) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetParams {
    /// Wait up to this long (`30s`, at most 60 s) for the consensus.
    wait: Option<String>,
}

/// Longest a `GET /v1/queries/{id}?wait=…` waits.
const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// `GET /v1/queries/{id}`: the query's status, each expert's result and the consensus, from the
/// `queries` read model; with `?wait=30s`, answered once the query is decided or the wait is over.
/// A wait is woken by the projection's notification of the row's change (ADR 22), and counts
/// against the tenant's `waits.max_per_tenant`.
pub async fn get(
    State(app): State<App>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
    params: Result<axum::extract::Query<GetParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, Problem> {
    let principal = app
        .authorize(&headers, &[Role::Publisher, Role::Auditor, Role::Operator])
        .await?;
    let axum::extract::Query(params) = params.map_err(|e| Problem::bad_request(e.body_text()))?;
    let wait = match params.wait.as_deref() {
        None => std::time::Duration::ZERO,
        Some(w) => humantime::parse_duration(w)
            .map_err(|e| Problem::bad_request(format!("wait: {e}")))?
            .min(MAX_WAIT),
    };
    if super::history::has_control(&id) {
        return Err(Problem::not_found(format!(
            "no query {id:?} for this tenant"
        )));
    }
    let not_found = || Problem::not_found(format!("no query {id} for this tenant"));
    if wait.is_zero() {
        return first_read(&app, &id, &principal.tenant)
            .await?
            .map(Json)
            .ok_or_else(not_found);
    }
    // Open before the first read: a change after that read wakes it.
    let mut waiter = app.0.waiters.wait_for(&principal.tenant, &id)?;
    let until = tokio::time::Instant::now() + wait;
    // `None` until read: a query submitted here and not seen decided is not read before its
    // decision wakes the wait (ADR 39).
    let mut row = if app.0.waiters.undecided(&principal.tenant, &id) {
        None
    } else {
        Some(first_read(&app, &id, &principal.tenant).await?)
    };
    loop {
        let decided = row.as_ref().is_some_and(is_decided);
        if decided || tokio::time::Instant::now() >= until || waiter.stopping() {
            let row = match row {
                Some(row) => row,
                None => first_read(&app, &id, &principal.tenant).await?,
            };
            // A query just submitted may not be in the read model yet: with a wait it is waited
            // for; without, it is not found (yet).
            return row.map(Json).ok_or_else(not_found);
        }
        let handed = waiter.decided(until).await;
        row = Some(after_wake(&app, &id, &principal.tenant, handed).await?);
    }
}

impl From<TooManyWaits> for Problem {
    fn from(e: TooManyWaits) -> Self {
        Problem {
            retry_after: Some(std::time::Duration::from_secs(1)),
            ..Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-waits",
                "Tenant at its limit of open waits",
                format!("{e}; retry after the delay given, or ask without waiting"),
            )
        }
    }
}

/// A `GET`'s first look at query `id`, in one round trip: 404 unless `tenant` submitted it (it is
/// in the store, whether or not the read model has it yet: a query never submitted is not waited
/// for); then its row in the read model, `None` when the read model does not have it yet.
async fn first_read(
    app: &App,
    id: &str,
    tenant: &quorum_domain::TenantId,
) -> Result<Option<serde_json::Value>, Problem> {
    let row: Option<(String, Option<serde_json::Value>)> =
        sqlx::query_as(crate::lookups::SUBMISSION_AND_VIEW)
            .bind(id)
            .bind(crate::lookups::TIME_FORMAT)
            .fetch_optional(app.0.store.pool())
            .await
            .map_err(|e| Problem::database(&e))?;
    match row {
        Some((owner, view)) if owner == tenant.as_str() => Ok(view),
        _ => Err(Problem::not_found(format!("no query {id} for this tenant"))),
    }
}

/// The row after a wake-up: the one the listener read and `handed` over, as `tenant` may see it,
/// or, when it handed none, read here.
async fn after_wake(
    app: &App,
    id: &str,
    tenant: &quorum_domain::TenantId,
    handed: Option<std::sync::Arc<super::waiters::Read>>,
) -> Result<Option<serde_json::Value>, Problem> {
    match handed {
        Some(read) => Ok(read.view_for(tenant)),
        None => view(app, id, tenant).await,
    }
}

/// Whether a row read shows the query decided.
fn is_decided(row: &Option<serde_json::Value>) -> bool {
    row.as_ref().is_some_and(|r| r["status"] != "pending")
}

/// The query's row in the read model, as the API shows it; `None` when the read model does not
/// have it (yet), or it is another tenant's.
async fn view(
    app: &App,
    id: &str,
    tenant: &quorum_domain::TenantId,
) -> Result<Option<serde_json::Value>, Problem> {
    let row: Option<(String, serde_json::Value)> = sqlx::query_as(crate::lookups::QUERY_VIEW)
        .bind(id)
        .bind(crate::lookups::TIME_FORMAT)
        .fetch_optional(app.0.store.pool())
        .await
        .map_err(|e| Problem::database(&e))?;
    Ok(row
        .filter(|(owner, _)| owner == tenant.as_str())
        .map(|(_, view)| view))
}

/// `GET /v1/queries/{id}/watch`: server-sent events, one `progress` event each time the query's
/// view changes (an expert's result, the consensus), ending with a `decided` event. Each change is
/// read when the projection notifies it (ADR 22). Gives up after `MAX_WATCH`, at shutdown, and
/// whenever the client goes away; a watch counts against the tenant's `waits.max_per_tenant`.
pub async fn watch(
    State(app): State<App>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<
    axum::response::sse::Sse<
        impl futures::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
    >,
    Problem,
> {
    use axum::response::sse::{Event as Sse, KeepAlive};
    let principal = app
        .authorize(&headers, &[Role::Publisher, Role::Auditor, Role::Operator])
        .await?;
    if super::history::has_control(&id) {
        return Err(Problem::not_found(format!(
            "no query {id:?} for this tenant"
        )));
    }
    let tenant = principal.tenant;
    // Open before the first read, and held by the stream: it closes when the client goes away.
    let waiter = app.0.waiters.wait_for(&tenant, &id)?;
    let first = first_read(&app, &id, &tenant).await?;
    let until = tokio::time::Instant::now() + MAX_WATCH;
    let stream = futures::stream::unfold(
        (
            app,
            id,
            tenant,
            waiter,
            None::<serde_json::Value>,
            Some(first),
        ),
        move |(app, id, tenant, mut waiter, mut last, mut read)| async move {
            // The decision was the last event sent.
            if is_decided(&last) {
                return None;
            }
            loop {
                // The first read came with the check above; each later one follows a wake: the
                // row the listener read for a decision, or read here.
                let row = match read.take() {
                    Some(row) => row,
                    None => {
                        if tokio::time::Instant::now() >= until || waiter.stopping() {
                            return None;
                        }
                        let handed = waiter.changed(until).await;
                        after_wake(&app, &id, &tenant, handed).await.ok().flatten()
                    }
                };
                if row.is_some() && row != last {
                    let kind = if is_decided(&row) {
                        "decided"
                    } else {
                        "progress"
                    };
                    last = row.clone();
                    let event = Sse::default()
                        .event(kind)
                        .data(row.unwrap_or_default().to_string());
                    return Some((Ok(event), (app, id, tenant, waiter, last, None)));
                }
            }
        },
    );
    Ok(axum::response::sse::Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Longest a watch stays open.
const MAX_WATCH: std::time::Duration = std::time::Duration::from_secs(600);
