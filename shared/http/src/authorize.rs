//! Who may call a route: a valid API key (401 without one) that has one of the route's roles (403).

// A `Problem` is built once per refused request, on the way out; boxing it to shrink `Result`s
// would buy nothing measurable.
#![allow(clippy::result_large_err)]

use axum::http::{HeaderMap, header};
use quorum_auth::{AuthError, Authenticator, Principal, Role};

use crate::Problem;

/// The caller, if its key is valid and has one of `roles`. A database outage is a 503, so a client
/// retries instead of concluding its key is bad; any other database failure is a 500. Either way the
/// database's error is logged under an id and only the id is answered ([`Problem::database`]).
pub async fn authorize(
    auth: &Authenticator,
    headers: &HeaderMap,
    roles: &[Role],
) -> Result<Principal, Problem> {
    // A header that is not visible ASCII can never be a key; NUL makes it fail as a bad key would.
    let value = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let principal = auth.authenticate(value).await.map_err(|e| match e {
        AuthError::Database(db) => Problem::database(&db),
        _ => Problem::unauthorized(e.to_string()),
    })?;
    // The request's span (see `observe`) and so every log line in it name the caller's tenant.
    tracing::Span::current().record("tenant", principal.tenant.as_str());
    if !roles.iter().any(|r| principal.has(*r)) {
        let names: Vec<String> = roles.iter().map(ToString::to_string).collect();
        return Err(Problem::forbidden(format!(
            "this route needs a key with the role {}",
            names.join(" or ")
        )));
    }
    Ok(principal)
}
