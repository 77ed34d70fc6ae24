//! Errors as `application/problem+json`: how ingest's refusals map onto the shared `Problem`.

use axum::http::StatusCode;
pub use quorum_http::Problem;

use crate::accept::Rejection;
use crate::admission::Refusal;

impl From<Rejection> for Problem {
    fn from(r: Rejection) -> Self {
        let detail = r.to_string();
        match r {
            Rejection::Invalid {
                index, attribute, ..
            } => Problem {
                attribute: (!attribute.is_empty()).then_some(attribute),
                index,
                ..Problem::new(
                    StatusCode::BAD_REQUEST,
                    "invalid-event",
                    "Invalid event",
                    detail,
                )
            },
            Rejection::Forbidden {
                index, attribute, ..
            } => Problem {
                attribute: Some(attribute),
                index,
                ..Problem::forbidden(detail)
            },
            Rejection::IdConflict { .. } => Problem {
                attribute: Some("id".into()),
                ..Problem::new(
                    StatusCode::CONFLICT,
                    "id-conflict",
                    "Event id already used",
                    detail,
                )
            },
            Rejection::Store { transient, cause } => Problem::failure(transient, &cause),
        }
    }
}

impl From<Refusal> for Problem {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::RateLimited { retry_after } => Problem {
                retry_after: Some(retry_after),
                ..Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate-limited",
                    "Tenant over its rate limit",
                    "the tenant sends events faster than its rate limit; retry after the delay given",
                )
            },
            Refusal::Saturated => Problem::unavailable(
                "ingest has as many events in flight as it admits; retry after the delay given",
            ),
            Refusal::TenantBusy => Problem {
                retry_after: Some(std::time::Duration::from_secs(1)),
                ..Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "tenant-busy",
                    "Tenant at its share of events in flight",
                    "the tenant has its whole share of ingest's events in flight; retry after the delay given",
                )
            },
        }
    }
}
