//! The HTTP side: a fuzz input read as a request, and the events ingest takes from it in each of
//! its three modes.

use bytes::Bytes;
use quorum_domain::{Event, cloudevent};

use crate::*;

/// The three ways `POST /v1/events` takes events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Binary,
    Structured,
    Batch,
}

/// A request as fuzz input: header lines `name: value` (ending in LF or CRLF), an empty line, the
/// body. `None` when hyper would refuse the request before ingest sees it: a header name that is
/// not a token, a value with a byte HTTP does not allow (httparse and `http::HeaderValue` take
/// the same set: HTAB, SP, visible ASCII, 0x80-0xFF).
pub fn request(input: &[u8]) -> Option<(http::HeaderMap, Bytes)> {
    let mut headers = http::HeaderMap::new();
    let mut rest = input;
    loop {
        let (line, after) = match rest.iter().position(|&b| b == b'\n') {
            Some(at) => (&rest[..at], &rest[at + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        rest = after;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let colon = line.iter().position(|&b| b == b':')?;
        let name = http::HeaderName::from_bytes(&line[..colon]).ok()?;
        let value = line[colon + 1..].trim_ascii();
        headers.append(name, http::HeaderValue::from_bytes(value).ok()?);
        if rest.is_empty() {
            break;
        }
    }
    Some((headers, Bytes::copy_from_slice(rest)))
}

/// The mode ingest reads from a request's headers, `None` for a 415. Mirrors `mode` and
/// `media_type` of `services/ingest/src/http`.
pub fn mode(headers: &http::HeaderMap) -> Option<Mode> {
    let media = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    match media.as_deref() {
        Some("application/cloudevents+json") => Some(Mode::Structured),
        Some("application/cloudevents-batch+json") => Some(Mode::Batch),
        Some(m) if m.starts_with("application/cloudevents") => None,
        _ if headers.contains_key("ce-specversion") => Some(Mode::Binary),
        _ => None,
    }
}

/// The events of a request, as `POST /v1/events` parses them before its checks: `None` if the
/// request is refused or is not of `expected` mode. Mirrors `post` of
/// `services/ingest/src/http/events.rs` up to `accept::from_upstream`.
pub fn http_events(expected: Mode, input: &[u8]) -> Option<Vec<Event>> {
    let (headers, body) = request(input)?;
    if mode(&headers)? != expected {
        return None;
    }
    let mut events = match expected {
        Mode::Structured => vec![cloudevent::parse_structured(&body).ok()?],
        Mode::Batch => cloudevent::parse_batch(&body).ok()?,
        Mode::Binary => vec![binary(&headers, body)?],
    };
    if events.len() > MAX_BATCH_EVENTS {
        return None;
    }
    inherit_trace(&headers, &mut events);
    Some(events)
}

/// Mirrors `binary` of `services/ingest/src/http/events.rs`.
fn binary(headers: &http::HeaderMap, body: Bytes) -> Option<Event> {
    let mut attributes = Vec::new();
    for (name, value) in headers {
        let Some(attribute) = name.as_str().strip_prefix("ce-") else {
            continue;
        };
        let raw = value.to_str().ok()?;
        let value = cloudevent::decode_http_header_value(raw).ok()?;
        attributes.push((attribute.to_owned(), value));
    }
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    cloudevent::parse_binary(
        attributes.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        content_type,
        body,
    )
    .ok()
}

/// Mirrors ingest: the request's span continues the headers' trace by `quorum_trace`'s rules
/// (as `quorum_http`'s `observe` does), and an event without a trace of its own gets the span's
/// (as `accept::prepare` does). A hostile header must never put into an event what an attribute
/// may not hold.
fn inherit_trace(headers: &http::HeaderMap, events: &mut [Event]) {
    static TRACING: std::sync::Once = std::sync::Once::new();
    TRACING.call_once(|| {
        let (subscriber, provider) = quorum_trace::test_subscriber();
        // Kept for the life of the fuzz process, as a service keeps its own.
        std::mem::forget(provider);
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let span = quorum_trace::http_server_span(
        "ingest",
        "POST",
        "/v1/events",
        header("traceparent"),
        header("tracestate"),
    );
    let Some(cx) = quorum_trace::of(&span) else {
        return;
    };
    for e in events.iter_mut().filter(|e| e.traceparent.is_none()) {
        e.traceparent = Some(cx.traceparent.clone());
        e.tracestate.clone_from(&cx.tracestate);
    }
}
