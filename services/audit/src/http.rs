//! The auditors' API: `GET /v1/audit/export`, the caller's tenant's chained history, streamed page by
//! page so an export of any size holds one page in memory. `GET /openapi.json` describes it
//! (written by hand beside this code, checked against the live service by schemathesis).

// A `Problem` is built once per refused request, on the way out; boxing it to shrink `Result`s
// would buy nothing measurable.
#![allow(clippy::result_large_err)]

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use quorum_auth::{Authenticator, Role};
use quorum_http::Problem;
use serde::Deserialize;
use sqlx::PgPool;

use crate::export::{self, Format, Selection};

const PAGE: i64 = 1000;

#[derive(Clone)]
pub struct App {
    pub pool: PgPool,
    pub auth: Authenticator,
}

pub fn router(app: App) -> Router {
    Router::new()
        .route("/v1/audit/export", get(export_route))
        .route("/openapi.json", get(openapi))
        .fallback(no_route)
        .with_state(app)
}

static OPENAPI: &str = include_str!("../openapi.json");

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// A path no route serves: a problem like every other refusal, not an empty 404.
async fn no_route(uri: axum::http::Uri) -> Problem {
    Problem::not_found(format!("no route {}", uri.path()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    correlation_id: Option<String>,
    stream: Option<String>,
    #[serde(rename = "type")]
    ty: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    #[serde(default)]
    format: Format,
}

async fn export_route(
    State(app): State<App>,
    headers: HeaderMap,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let principal = match quorum_http::authorize(&app.auth, &headers, &[Role::Auditor]).await {
        Ok(p) => p,
        Err(p) => return p.into_response(),
    };
    let Query(p) = match params {
        Ok(p) => p,
        Err(e) => return Problem::bad_request(e.body_text()).into_response(),
    };
    let text = [&p.correlation_id, &p.stream, &p.ty];
    if text.iter().any(|v| {
        v.as_deref()
            .is_some_and(|s| s.chars().any(char::is_control))
    }) {
        return Problem::bad_request("parameters may not hold control characters").into_response();
    }
    let selection = Selection {
        tenant: Some(principal.tenant.to_string()),
        correlation_id: p.correlation_id,
        stream: p.stream,
        ty: p.ty,
        since: p.since,
        until: p.until,
    };
    let format = p.format;
    // (after, first page?, done)
    let pages = futures::stream::unfold((0i64, true, false), move |(after, first, done)| {
        let pool = app.pool.clone();
        let selection = selection.clone();
        async move {
            if done {
                return None;
            }
            match export::page(&pool, &selection, after, PAGE).await {
                Ok(records) => {
                    let mut out = Vec::new();
                    export::write(format, &records, first, &mut out);
                    let last = records.last().map_or(after, |r| r.seq);
                    let done = records.len() < PAGE as usize;
                    Some((Ok::<_, std::io::Error>(out), (last, false, done)))
                }
                // The status is sent already: cutting the body short is how the client learns.
                Err(e) => Some((Err(std::io::Error::other(e)), (after, false, true))),
            }
        }
    });
    let content_type = match format {
        Format::Jsonl => "application/jsonl",
        Format::Csv => "text/csv",
    };
    let mut response = Body::from_stream(pages).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
