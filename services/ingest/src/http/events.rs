//! `POST /v1/events`: one CloudEvent in binary or structured mode, or a batch.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use quorum_auth::Role;
use quorum_domain::{Event, cloudevent};
use serde::Serialize;

use super::problem::Problem;
use super::{App, media_type, read_body};
use crate::accept::{self, Accepted};

const STRUCTURED: &str = "application/cloudevents+json";
const BATCH: &str = "application/cloudevents-batch+json";

#[derive(Serialize)]
pub struct Answer {
    pub events: Vec<Accepted>,
}

#[derive(Debug, PartialEq, Eq)]
enum Mode {
    Binary,
    Structured,
    Batch,
}

fn mode(headers: &HeaderMap) -> Result<Mode, Problem> {
    let media = media_type(headers);
    match media.as_deref() {
        Some(STRUCTURED) => Ok(Mode::Structured),
        Some(BATCH) => Ok(Mode::Batch),
        Some(m) if m.starts_with("application/cloudevents") => Err(Problem::unsupported_media(
            format!("{m}: only the JSON event format is supported ({STRUCTURED}, {BATCH})"),
        )),
        _ if headers.contains_key("ce-specversion") => Ok(Mode::Binary),
        _ => Err(Problem::unsupported_media(format!(
            "send {STRUCTURED}, {BATCH}, or binary mode (ce- headers, the data as the body)"
        ))),
    }
}

pub async fn post(
    State(app): State<App>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Answer>), Problem> {
    let principal = app.authorize(&headers, &[Role::Publisher]).await?;
    let mode = mode(&headers)?;
    let limits = &app.0.limits;
    let limit = match mode {
        Mode::Batch => limits.max_body_bytes,
        // One event: its whole body is at most an event (and never above a request body).
        _ => limits.max_event_bytes.min(limits.max_body_bytes),
    };
    let body = read_body(&headers, body, limit).await?;
    let events = match mode {
        Mode::Structured => vec![cloudevent::parse_structured(&body).map_err(problem)?],
        Mode::Batch => cloudevent::parse_batch(&body).map_err(problem)?,
        Mode::Binary => vec![binary(&headers, body)?],
    };
    if events.len() > limits.max_batch_events {
        return Err(Problem::too_large(format!(
            "{} events in the batch; at most {}",
            events.len(),
            limits.max_batch_events
        )));
    }
    accept::from_upstream(&events)?;
    let prepared = accept::prepare(&principal.tenant, events, &app.0.schemas, app.0.bounds)?;
    let _admitted = app.0.admission.admit(&principal.tenant, prepared.len())?;
    let events = accept::store(&app.0.committer, prepared).await?;
    Ok((StatusCode::ACCEPTED, Json(Answer { events })))
}

fn problem(e: cloudevent::CeError) -> Problem {
    Problem::from(crate::accept::Rejection::from(e))
}

/// Binary mode: the attributes are the `ce-` headers (percent-encoded, HTTP binding §3.1.3.2), the
/// content type is `datacontenttype`, the body is the data.
fn binary(headers: &HeaderMap, body: axum::body::Bytes) -> Result<Event, Problem> {
    let mut attributes = Vec::new();
    for (name, value) in headers {
        let Some(attribute) = name.as_str().strip_prefix("ce-") else {
            continue;
        };
        let raw = value.to_str().map_err(|_| {
            Problem::from(crate::accept::Rejection::invalid(
                attribute,
                "header value is not visible ASCII (percent-encode it)",
            ))
        })?;
        let value = cloudevent::decode_http_header_value(raw).map_err(|e| {
            problem(cloudevent::CeError {
                attribute: attribute.to_owned(),
                ..e
            })
        })?;
        attributes.push((attribute.to_owned(), value));
    }
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    cloudevent::parse_binary(
        attributes.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        content_type,
        body,
    )
    .map_err(problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_mode_follows_the_content_type_then_the_headers() {
        let m = |pairs| mode(&headers(pairs)).map_err(|p| p.status);
        assert_eq!(
            m(&[(
                "content-type",
                "application/cloudevents+json; charset=utf-8"
            )]),
            Ok(Mode::Structured)
        );
        assert_eq!(
            m(&[("content-type", "Application/CloudEvents-Batch+JSON")]),
            Ok(Mode::Batch)
        );
        assert_eq!(
            m(&[
                ("content-type", "application/json"),
                ("ce-specversion", "1.0")
            ]),
            Ok(Mode::Binary)
        );
        assert_eq!(m(&[("ce-specversion", "1.0")]), Ok(Mode::Binary));
        assert_eq!(m(&[("content-type", "application/json")]), Err(415));
        assert_eq!(
            m(&[("content-type", "application/cloudevents+avro")]),
            Err(415)
        );
    }
}
