//! Failures that are not the caller's to see: a database error or a bug is logged with an error id,
//! and the answer carries only that id, so a person can find the log line and a caller learns
//! nothing about the schema, the query or the server behind it.

use std::error::Error;
use std::time::Duration;

use axum::http::StatusCode;
use tracing::{error, warn};

use crate::Problem;

/// A new id for one logged failure.
fn new_error_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `error` and every error it wraps, for a log line.
fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// How a database error is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// A retry can cure it (connection lost, pool exhausted, serialization failure): 503.
    Transient,
    /// Postgres refused the values the request led to (a data exception, a constraint, a limit):
    /// the same request fails again, so 422 and no `Retry-After`.
    Refused,
    /// Anything else is ours to fix (a missing column, a decode error): 500, no `Retry-After`.
    Internal,
}

fn kind(error: &sqlx::Error) -> Kind {
    if quorum_event_store::is_transient(error) {
        return Kind::Transient;
    }
    match error {
        // SQLSTATE classes 22 (data exception), 23 (integrity constraint violation) and 54
        // (program limit exceeded): what the request asked for cannot be stored or computed.
        sqlx::Error::Database(db)
            if db.code().is_some_and(|c| {
                c.starts_with("22") || c.starts_with("23") || c.starts_with("54")
            }) =>
        {
            Kind::Refused
        }
        _ => Kind::Internal,
    }
}

impl Problem {
    /// The answer to a failed database call, the error logged under a new id and only the id
    /// returned (`error_id`): 503 with `Retry-After` when a retry can cure it
    /// ([`quorum_event_store::is_transient`]), 422 when Postgres refused what the request led to,
    /// 500 otherwise. Never the database's own words.
    pub fn database(error: &sqlx::Error) -> Self {
        let error_id = new_error_id();
        let problem = match kind(error) {
            Kind::Transient => {
                warn!(error_id = %error_id, error = %chain(error), "database unavailable");
                let mut p = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Service unavailable",
                    format!(
                        "the database is unavailable; retry after the delay given (error id {error_id})"
                    ),
                );
                p.retry_after = Some(Duration::from_secs(1));
                p
            }
            Kind::Refused => {
                warn!(error_id = %error_id, error = %chain(error), "database refused a request");
                Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unprocessable",
                    "Request cannot be processed",
                    format!(
                        "the request cannot be stored or answered as it is; retrying it will not help (error id {error_id})"
                    ),
                )
            }
            Kind::Internal => return Self::internal(error),
        };
        Self {
            error_id: Some(error_id),
            ..problem
        }
    }

    /// The answer to a failure described by `cause` (already a full chain): logged under a new
    /// id, 503 with `Retry-After` when `transient`, else 500; only the id is returned.
    pub fn failure(transient: bool, cause: &str) -> Self {
        let error_id = new_error_id();
        if !transient {
            error!(error_id = %error_id, error = %cause, "internal error answered with 500");
            return Self::internal_with_id(error_id);
        }
        warn!(error_id = %error_id, error = %cause, "unavailable");
        let mut p = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            format!(
                "the service is unavailable; retry after the delay given (error id {error_id})"
            ),
        );
        p.retry_after = Some(Duration::from_secs(1));
        p.error_id = Some(error_id);
        p
    }

    /// A 500 for a failure that is ours to fix, logged (with its chain) under a new id that the
    /// answer carries as `error_id`; no `Retry-After`, since the same request would fail again.
    pub fn internal(error: &(dyn Error + 'static)) -> Self {
        let error_id = new_error_id();
        error!(error_id = %error_id, error = %chain(error), "internal error answered with 500");
        Self::internal_with_id(error_id)
    }

    fn internal_with_id(error_id: String) -> Self {
        Self {
            error_id: Some(error_id.clone()),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
                format!("an internal error occurred; quote error id {error_id} when reporting it"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transient_database_error_is_a_503_with_retry_after_and_an_id_only() {
        let p = Problem::database(&sqlx::Error::PoolTimedOut);
        assert_eq!(p.status, 503);
        assert!(p.retry_after.is_some());
        let id = p.error_id.clone().unwrap();
        assert!(p.detail.contains(&id), "{}", p.detail);
        assert!(!p.detail.contains("pool"), "{}", p.detail);
        let body = serde_json::to_value(&p).unwrap();
        assert_eq!(body["error_id"], id.as_str());
    }

    #[test]
    fn a_permanent_database_error_is_not_a_503_and_says_nothing_of_the_database() {
        let raw = sqlx::Error::ColumnNotFound("secret_column".into());
        let p = Problem::database(&raw);
        assert_eq!(p.status, 500);
        assert!(p.retry_after.is_none());
        assert!(p.error_id.is_some());
        let body = serde_json::to_string(&p).unwrap();
        assert!(!body.contains("secret_column"), "{body}");
    }
}
