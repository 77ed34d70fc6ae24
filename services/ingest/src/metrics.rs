//! Ingest's metrics. Labels are bounded: the route template and the status code, never ids.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// Counter: HTTP requests answered. Labels: `route` (the template), `status`.
pub const REQUESTS_TOTAL: &str = "quorum_ingest_requests_total";
/// Counter: events accepted. Label: `outcome`, `stored` or `duplicate`.
pub const EVENTS_TOTAL: &str = "quorum_ingest_events_total";
/// Histogram: events per group commit (how well concurrent requests coalesce).
pub const GROUP_EVENTS: &str = "quorum_ingest_group_commit_events";

/// Counts every answer by route and status.
pub async fn count(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let response = next.run(request).await;
    metrics::counter!(REQUESTS_TOTAL, "route" => route, "status" => response.status().as_u16().to_string())
        .increment(1);
    response
}
