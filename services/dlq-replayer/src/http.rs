//! The operators' API. Every route needs the `operator` role and sees only the key's tenant: another
//! tenant's letter or job is "not found". `?system=true` on a letter route widens that to the
//! letters of `_system` too, those no tenant can be named for (ADR 21).
//!
//! - `GET  /v1/dead-letters?consumer=&type=&error=&since=&until=&status=&after=&limit=`
//! - `GET  /v1/dead-letters/{id}`: headers, payload, every attempt's error
//! - `POST /v1/dead-letters/replay` `{ids | filter, reason, rate, dry_run}`
//! - `POST /v1/dead-letters/{id}/discard` `{reason}`
//! - `GET  /v1/replays/{job}`: how far a replay got
//! - `GET  /openapi.json`: this API's description, written by hand beside this code and checked
//!   against the live service by schemathesis

// A `Problem` is built once per refused request, on the way out; boxing it to shrink `Result`s
// would buy nothing measurable.
#![allow(clippy::result_large_err)]

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use quorum_auth::{Authenticator, Role};
use quorum_http::Problem;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::actions::{self, ActionError, Operator, ReplayRequest};
use crate::letters::{self, LetterFilter};

#[derive(Clone)]
pub struct App {
    pub pool: PgPool,
    pub auth: Authenticator,
}

pub fn router(app: App) -> Router {
    Router::new()
        .route("/v1/dead-letters", get(list))
        .route("/v1/dead-letters/replay", post(replay))
        .route("/v1/dead-letters/{id}", get(show))
        .route("/v1/dead-letters/{id}/discard", post(discard))
        .route("/v1/replays/{id}", get(job))
        .route("/openapi.json", get(openapi))
        .fallback(no_route)
        .with_state(app)
}

static OPENAPI: &str = include_str!("../openapi.json");

async fn openapi() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
}

/// A path no route serves (`/v1/replays` without a job): a problem like every other refusal, not
/// an empty 404.
async fn no_route(uri: axum::http::Uri) -> Problem {
    Problem::not_found(format!("no route {}", uri.path()))
}

type Answer = Result<Response, Problem>;

async fn operator(app: &App, headers: &HeaderMap, scope: Scope) -> Result<Operator, Problem> {
    let p = quorum_http::authorize(&app.auth, headers, &[Role::Operator]).await?;
    Ok(Operator {
        key_id: p.key_id,
        tenant: p.tenant,
        system: scope.system,
    })
}

/// Whose letters a request reaches besides the key's tenant's.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
struct Scope {
    /// The letters of `_system` too.
    #[serde(default)]
    system: bool,
}

fn scope(query: Result<Query<Scope>, QueryRejection>) -> Result<Scope, Problem> {
    query
        .map(|Query(s)| s)
        .map_err(|e| Problem::bad_request(e.body_text()))
}

fn db(e: sqlx::Error) -> Problem {
    Problem::database(&e)
}

fn id(raw: &str) -> Result<Uuid, Problem> {
    raw.parse()
        .map_err(|_| Problem::not_found(format!("no dead letter {raw:?}")))
}

#[derive(Deserialize)]
struct ListParams {
    #[serde(flatten)]
    filter: LetterFilter,
    after: Option<Uuid>,
    limit: Option<i64>,
    #[serde(default)]
    system: bool,
}

#[derive(Serialize)]
struct ListPage {
    letters: Vec<letters::Summary>,
    /// Letters matching, per consumer (all pages).
    counts: serde_json::Map<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<Uuid>,
}

async fn list(
    State(app): State<App>,
    headers: HeaderMap,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Answer {
    let Query(p) = params.map_err(|e| Problem::bad_request(e.body_text()))?;
    let op = operator(&app, &headers, Scope { system: p.system }).await?;
    p.filter.check().map_err(Problem::bad_request)?;
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::bad_request("limit must be between 1 and 1000"));
    }
    let tenants = op.tenants();
    let page = letters::list(&app.pool, &tenants, &p.filter, p.after, limit)
        .await
        .map_err(db)?;
    let counts = letters::counts(&app.pool, &tenants, &p.filter)
        .await
        .map_err(db)?;
    let next = (page.len() as i64 == limit)
        .then(|| page.last().map(|l| l.id))
        .flatten();
    Ok(Json(ListPage {
        letters: page,
        counts: counts.into_iter().map(|(c, n)| (c, n.into())).collect(),
        next,
    })
    .into_response())
}

async fn show(
    State(app): State<App>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    query: Result<Query<Scope>, QueryRejection>,
) -> Answer {
    let op = operator(&app, &headers, scope(query)?).await?;
    let id = id(&raw)?;
    let letter = letters::get(&app.pool, &op.tenants(), id)
        .await
        .map_err(db)?
        .ok_or_else(|| Problem::not_found(format!("no dead letter {id}")))?;
    let (encoding, payload) = match std::str::from_utf8(&letter.payload) {
        Ok(text) => ("text", text.to_owned()),
        Err(_) => (
            "base64",
            base64::engine::general_purpose::STANDARD.encode(&letter.payload),
        ),
    };
    let mut body = serde_json::to_value(&letter).unwrap_or_default();
    body["payload"] = payload.into();
    body["payload_encoding"] = encoding.into();
    Ok(Json(body).into_response())
}

fn action_problem(e: ActionError) -> Problem {
    match e {
        ActionError::Invalid(m) => Problem::bad_request(m),
        ActionError::NotFound(_) => Problem::not_found(e.to_string()),
        ActionError::Database(e) => db(e),
        ActionError::Store(e) => {
            Problem::failure(e.is_transient(), &quorum_runtime::error_chain(&e))
        }
    }
}

async fn replay(
    State(app): State<App>,
    headers: HeaderMap,
    query: Result<Query<Scope>, QueryRejection>,
    body: Result<Json<ReplayRequest>, JsonRejection>,
) -> Answer {
    let op = operator(&app, &headers, scope(query)?).await?;
    let Json(req) = body.map_err(|e| Problem::bad_request(e.body_text()))?;
    let plan = actions::replay(&app.pool, &op, &req)
        .await
        .map_err(action_problem)?;
    let status = if plan.job.is_some() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(plan)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiscardBody {
    #[serde(default)]
    reason: String,
}

async fn discard(
    State(app): State<App>,
    headers: HeaderMap,
    Path(raw): Path<String>,
    query: Result<Query<Scope>, QueryRejection>,
    body: Result<Json<DiscardBody>, JsonRejection>,
) -> Answer {
    let op = operator(&app, &headers, scope(query)?).await?;
    let id = id(&raw)?;
    let Json(b) = body.map_err(|e| Problem::bad_request(e.body_text()))?;
    actions::discard(&app.pool, &op, id, &b.reason)
        .await
        .map_err(action_problem)?;
    Ok(Json(json!({ "id": id, "status": "discarded" })).into_response())
}

async fn job(State(app): State<App>, headers: HeaderMap, Path(raw): Path<String>) -> Answer {
    let op = operator(&app, &headers, Scope::default()).await?;
    let id: Uuid = raw
        .parse()
        .map_err(|_| Problem::not_found(format!("no replay {raw:?}")))?;
    let row: Option<(i64, i64, String, String, Option<f64>)> = sqlx::query_as(
        "SELECT total, done, status, reason, rate FROM replay_jobs WHERE id = $1 AND tenant = $2",
    )
    .bind(id)
    .bind(op.tenant.as_str())
    .fetch_optional(&app.pool)
    .await
    .map_err(db)?;
    let (total, done, status, reason, rate) =
        row.ok_or_else(|| Problem::not_found(format!("no replay {id}")))?;
    Ok(Json(json!({
        "job": id, "total": total, "done": done, "status": status, "reason": reason, "rate": rate,
    }))
    .into_response())
}
