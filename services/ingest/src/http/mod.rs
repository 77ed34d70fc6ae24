//! The public HTTP API: routes, the state they share, and who may call them.

// A `Problem` is built once per refused request, on the way out; boxing it to shrink `Result`s
// would buy nothing measurable.
#![allow(clippy::result_large_err)]

mod events;
mod history;
mod openapi;
pub mod problem;
mod queries;
mod shed;
pub mod waiters;

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use quorum_auth::{Authenticator, Principal, Role};
use quorum_event_store::EventStore;
use quorum_schemas::Schemas;

use crate::admission::Admission;
use crate::commit::Committer;
use crate::config::Limits;
use problem::Problem;

/// What every request handler shares.
#[derive(Clone)]
pub struct App(Arc<Inner>);

pub struct Inner {
    pub auth: Authenticator,
    pub admission: Admission,
    pub committer: Committer,
    pub schemas: Arc<Schemas>,
    pub store: EventStore,
    pub limits: Limits,
    pub bounds: crate::accept::Bounds,
    pub waiters: waiters::Waiters,
}

impl App {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }

    /// The caller, if its key is valid and has one of `roles`: 401 without a valid key, 403 without
    /// the role.
    async fn authorize(&self, headers: &HeaderMap, roles: &[Role]) -> Result<Principal, Problem> {
        quorum_http::authorize(&self.0.auth, headers, roles).await
    }
}

/// The routes. At most `max_concurrent` requests are served at once; above that a request is
/// answered 503 without keeping its body (see `shed`).
pub fn router(app: App, max_concurrent: usize) -> Router {
    let slots = shed::Slots::new(max_concurrent, app.0.limits.max_body_bytes);
    Router::new()
        .route("/v1/events", post(events::post).get(history::by_filter))
        .route("/v1/queries", post(queries::post))
        .route("/v1/queries/{id}", get(queries::get))
        .route("/v1/queries/{id}/watch", get(queries::watch))
        .route("/v1/streams/{stream}/events", get(history::by_stream))
        .route("/openapi.json", get(openapi::get))
        .layer(axum::middleware::from_fn_with_state(slots, shed::shed))
        .with_state(app)
}

/// Reads a body of at most `limit` bytes: 413 above it, told before reading when the length is
/// declared.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, Problem> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || Problem::too_large(format!("the body exceeds {limit} bytes"));
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        // A body that did not arrive within the server's body deadline is no size problem; a
        // broken connection is neither, but then nobody reads the answer.
        if timed_out(&e) {
            Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                "body-timeout",
                "Request body too slow",
                "the request body did not arrive in time",
            )
        } else {
            too_large()
        }
    })
}

fn timed_out(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// The media type of a request, lowercased, without parameters.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}
