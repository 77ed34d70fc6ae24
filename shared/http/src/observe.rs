//! What every API records of each request: its duration by route and status, how many are in
//! flight, and its `http.server` span, which continues the trace of the request's `traceparent`
//! header. The route is the matched pattern (`/v1/queries/{id}`), never the path itself, so the
//! labels and span names stay bounded whatever clients ask for.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;

/// Histogram, seconds: time from a request's head to its response's head. Labels: `api`, `route`,
/// `method`, `status`.
pub const REQUEST_DURATION_SECONDS: &str = "quorum_http_request_duration_seconds";

/// Gauge: requests being handled. Label: `api`.
pub const REQUESTS_IN_FLIGHT: &str = "quorum_http_requests_in_flight";

/// The middleware: `api` names the server (`ingest`, `audit`, `dead letters`).
pub(crate) async fn record(api: &'static str, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let _in_flight = InFlight::enter(api);
    let started = Instant::now();
    let span = {
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
        quorum_trace::http_server_span(
            api,
            &method,
            &route,
            header("traceparent"),
            header("tracestate"),
        )
    };
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        quorum_trace::record_error(&span);
    }
    metrics::histogram!(
        REQUEST_DURATION_SECONDS,
        "api" => api,
        "route" => route,
        "method" => method,
        "status" => status.as_u16().to_string(),
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// Counts a request in flight until dropped, so that one whose client went away mid-way (its
/// future dropped) is counted out too.
struct InFlight(metrics::Gauge);

impl InFlight {
    fn enter(api: &'static str) -> Self {
        let gauge = metrics::gauge!(REQUESTS_IN_FLIGHT, "api" => api);
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}
