//! What the fuzz targets share: ingest's way from an HTTP request or a NATS message to the events it
//! accepts, and the property every accepted event must have once the relay publishes it.
//!
//! The property, checked by [`check_accepted`] on each event ingest accepts:
//!
//! 0. it obeys the rules every event obeys however it came (`cloudevent::validate`: lengths, no
//!    control character);
//! 1. the store keeps it: its attributes read back (as the relay reads a row) to the same event;
//! 2. the relay can encode it: `encode_checked` takes it, and the message it publishes (the event's
//!    headers, the relay's own, `Nats-Msg-Id`) is syntactically one nats-server takes: header names
//!    are tokens (RFC 9110), no value holds CR, LF, NUL or any other control character, and the
//!    whole message, headers and payload counted as the server counts them, is at most
//!    `max_payload`; `quorum_bus::message_len` is that count;
//! 3. at the limit: ingest refuses the same event when `max_payload` is one byte less than its
//!    message, so nothing is accepted that the server would refuse, whatever the server's limit;
//! 4. consumers read what was stored: the header block, parsed as async-nats parses what it receives,
//!    gives back every header value as sent, and `quorum_bus::decode` gives back the event.
//!
//! Where ingest's step is a private function of the service (binary mode's header handling and the
//! trace inheritance of `services/ingest/src/http/events.rs`) or of async-nats (its parsing of a
//! received header block, `connection.rs`, and its serialisation, `HeaderMap::to_bytes`), it is
//! mirrored here; each mirror names what it copies, so that a change there is followed here.

use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::LazyLock;

use async_nats::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use quorum_domain::{Event, StreamId, TenantId, cloudevent};
use quorum_ingest::accept::{self, Bounds};
use quorum_schemas::Schemas;

/// The tenant every fuzzed request or message is sent as.
pub const TENANT: &str = "acme";
/// nats-server's default `max_payload`, which ingest reads from the server at start.
pub const MAX_PAYLOAD: usize = 1 << 20;
/// Ingest's default `limits.max_event_bytes`.
pub const MAX_EVENT_BYTES: usize = 1 << 20;
/// Ingest's default `limits.max_batch_events`.
pub const MAX_BATCH_EVENTS: usize = 1000;
/// The subject a NATS publisher of [`TENANT`] sends to.
pub const INGEST_SUBJECT: &str = "quorum.ingest.acme.com.example.fuzzed";

static SCHEMAS: LazyLock<Schemas> = LazyLock::new(Schemas::new);
static TENANT_ID: LazyLock<TenantId> =
    LazyLock::new(|| TenantId::new(TENANT).expect("a valid tenant"));

fn bounds(max_message_bytes: usize) -> Bounds {
    Bounds {
        max_event_bytes: MAX_EVENT_BYTES,
        max_message_bytes,
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP

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

/// Mirrors `inherit_trace` of `services/ingest/src/http`, with ingest's own `trace_context`.
fn inherit_trace(headers: &http::HeaderMap, events: &mut [Event]) {
    let (traceparent, tracestate) = quorum_ingest::http::trace_context(headers);
    let Some(traceparent) = traceparent else {
        return;
    };
    for e in events.iter_mut().filter(|e| e.traceparent.is_none()) {
        e.traceparent = Some(traceparent.clone());
        e.tracestate.clone_from(&tracestate);
    }
}

// ---------------------------------------------------------------------------------------------
// NATS

/// A message as fuzz input: a header block (`NATS/1.0` … an empty line, as an `HMSG` carries it)
/// then the payload, or with no header block, the payload alone (a `MSG`). `None` when async-nats
/// would not hand the message to a consumer.
pub fn nats_message(input: &[u8]) -> Option<(Option<HeaderMap>, Bytes)> {
    if !input.starts_with(b"NATS/1.0") {
        return Some((None, Bytes::copy_from_slice(input)));
    }
    let end = input.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let headers = parse_header_block(&input[..end])?;
    Some((Some(headers), Bytes::copy_from_slice(&input[end..])))
}

/// A header block as async-nats 0.51 parses what it receives (`Connection::try_read_op`, `HMSG`).
/// `None` where it returns an error (not UTF-8, no version line, a line without `:`, an invalid
/// name). A status after `NATS/1.0` is ignored: a publisher's status line on a message in a stream
/// reaches the pull consumer as an ordinary message (seen with nats-server 2.15.1).
///
/// One departure: where a value holds a CR that is not at its end, async-nats panics
/// (`HeaderValue: From<String>` asserts), killing the client's connection task; upstream knows
/// (nats-io/nats.rs pull request 1612). Here that message is dropped instead, so the fuzzer goes on
/// to what Quorum's own code does.
pub fn parse_header_block(block: &[u8]) -> Option<HeaderMap> {
    let mut lines = std::str::from_utf8(block).ok()?.lines().peekable();
    let version_line = lines.next()?;
    version_line.strip_prefix("NATS/1.0")?;
    let mut headers = HeaderMap::new();
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        let (name, value) = line.split_once(':')?;
        let name = HeaderName::from_str(name).ok()?;
        let mut value = value.trim_start().to_owned();
        while let Some(v) = lines.next_if(|s| s.starts_with(char::is_whitespace)) {
            value.push_str(v);
        }
        value.truncate(value.trim_end().len());
        let value = HeaderValue::from_str(&value).ok()?;
        headers.append(name, value);
    }
    Some(headers)
}

/// The event NATS ingest takes from a message: what the runtime's consumer decodes and hands to
/// ingest's handler (`None` if it parks the message as undecodable).
pub fn nats_event(headers: Option<&HeaderMap>, payload: &Bytes) -> Option<Event> {
    quorum_bus::decode(headers, payload).ok()
}

/// A header block as async-nats serialises it (`HeaderMap::to_bytes`).
pub fn header_block(headers: &HeaderMap) -> Vec<u8> {
    let mut buf = b"NATS/1.0\r\n".to_vec();
    for (name, values) in headers.iter() {
        for v in values {
            let name: &str = name.as_ref();
            buf.extend_from_slice(name.as_bytes());
            buf.extend_from_slice(b": ");
            buf.extend_from_slice(v.as_str().as_bytes());
            buf.extend_from_slice(b"\r\n");
        }
    }
    buf.extend_from_slice(b"\r\n");
    buf
}

// ---------------------------------------------------------------------------------------------
// Ingest's checks, and the property

/// Ingest's checks once events are parsed, the same for HTTP and NATS: what upstream may not claim,
/// then `accept::prepare` for [`TENANT`] with the default bounds. The events as they are stored
/// (tenant set, subject of a query or plan named) with their streams; `None` if refused.
pub fn ingest(events: &[Event]) -> Option<Vec<(StreamId, Event)>> {
    accept::from_upstream(events).ok()?;
    accept::prepare(&TENANT_ID, events.to_vec(), &SCHEMAS, bounds(MAX_PAYLOAD)).ok()?;
    // The prepared events are private to `Prepared`: the same steps again, on copies.
    let stored = events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e.tenant = Some(TENANT_ID.clone());
            let stream = quorum_ingest::streams::stream_for(&TENANT_ID, &mut e)
                .expect("prepare named this event's stream");
            (stream, e)
        })
        .collect();
    Some(stored)
}

/// The whole path: ingest's checks on `events` as parsed, then the property on each it accepts.
/// Returns whether they were accepted.
pub fn check(events: &[Event]) -> bool {
    let Some(stored) = ingest(events) else {
        return false;
    };
    for ((stream, event), sent) in stored.iter().zip(events) {
        check_accepted(sent, stream, event);
    }
    true
}

/// Panics, saying which part failed, unless the accepted event `stored` (parsed as `sent`) travels:
/// see the crate's documentation.
pub fn check_accepted(sent: &Event, stream: &StreamId, stored: &Event) {
    // 0. It obeys the rules every event obeys, whichever way it came (lengths, no control character).
    if let Err(e) = cloudevent::validate(stored) {
        panic!("accepted, and breaks the CloudEvents rules: {e}\nevent: {stored:?}");
    }

    // 1. The store keeps it: attributes as JSON (the `attributes` column), read back by the relay.
    let attributes = stored.attributes_json().to_string();
    let read = Event::from_attributes_text(&attributes, stored.data.clone())
        .unwrap_or_else(|e| panic!("accepted, stored, unreadable: {e}\nattributes: {attributes}"));
    assert_eq!(
        &read, stored,
        "accepted, stored, read back as another event"
    );

    // 2. The relay's message: encode_checked, then its headers (shared/relay/src/publish.rs).
    let (headers, payload) = relay_message(stream, &read)
        .unwrap_or_else(|e| panic!("accepted but unpublishable: {e}\nevent: {read:?}"));
    let block = header_block(&headers);
    if let Err(why) = header_syntax(&headers) {
        panic!(
            "accepted, and its message has a header nats-server refuses: {why}\nblock: {:?}",
            String::from_utf8_lossy(&block)
        );
    }
    let len = block.len() + payload.len();
    assert_eq!(
        quorum_bus::message_len(&headers, payload.len()),
        len,
        "message_len counts other than the wire"
    );
    assert!(
        len <= MAX_PAYLOAD,
        "accepted, and its message is {len} bytes, over max_payload {MAX_PAYLOAD}"
    );

    // 3. At the limit: with max_payload one byte under this message, ingest refuses the event.
    let refused = accept::prepare(&TENANT_ID, vec![sent.clone()], &SCHEMAS, bounds(len - 1));
    assert!(
        refused.is_err(),
        "accepted under max_payload {}, but its message is {len} bytes",
        len - 1
    );

    // 4. Consumers read what was stored.
    let received = parse_header_block(&block).unwrap_or_else(|| {
        panic!(
            "accepted, and a consumer cannot parse its header block: {:?}",
            String::from_utf8_lossy(&block)
        )
    });
    for (name, values) in headers.iter() {
        let got: Vec<&str> = received
            .get_all(name.clone())
            .map(HeaderValue::as_str)
            .collect();
        let sent: Vec<&str> = values.iter().map(HeaderValue::as_str).collect();
        assert_eq!(
            got, sent,
            "accepted, and a consumer receives header {name} other than sent"
        );
    }
    let decoded = quorum_bus::decode(Some(&received), &payload)
        .unwrap_or_else(|e| panic!("accepted, published, and undecodable by consumers: {e}"));
    if let Err(diff) = same_event(&read, &decoded) {
        panic!("accepted, published, and consumers decode another event: {diff}");
    }
}

/// The relay's message for a stored event: `encode_checked`, then its cursor, position, stream and
/// `Nats-Msg-Id` headers at their longest (shared/relay/src/publish.rs).
pub fn relay_message(
    stream: &StreamId,
    event: &Event,
) -> Result<(HeaderMap, Bytes), quorum_bus::Unpublishable> {
    let (mut headers, payload) = quorum_bus::encode_checked(event)?;
    let position = i64::MAX.to_string();
    headers.insert(
        quorum_relay::CURSOR_HEADER,
        format!("{}:{position}", u64::MAX).as_str(),
    );
    headers.insert(quorum_relay::POSITION_HEADER, position.as_str());
    headers.insert(quorum_bus::STREAM_HEADER, stream.as_str());
    headers.insert("Nats-Msg-Id", position.as_str());
    Ok((headers, payload))
}

/// Header lines as the NATS protocol has them: a name is a token (RFC 9110 tchar), a value holds no
/// CR, LF or NUL (which would end or corrupt the line); Quorum's rule is stricter (no control
/// character at all), and checked too.
pub fn header_syntax(headers: &HeaderMap) -> Result<(), String> {
    fn tchar(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
    }
    for (name, values) in headers.iter() {
        let name: &str = name.as_ref();
        if name.is_empty() || !name.bytes().all(tchar) {
            return Err(format!("header name {name:?} is not a token"));
        }
        for v in values {
            let v = v.as_str();
            if v.contains(['\r', '\n', '\0']) {
                return Err(format!("{name}: {v:?} holds CR, LF or NUL"));
            }
            if let Some(c) = v.chars().find(|c| c.is_control()) {
                return Err(format!(
                    "{name}: {v:?} holds a control character U+{:04X}",
                    c as u32
                ));
            }
        }
    }
    Ok(())
}

/// Whether a consumer's decoded event is the stored one, allowing only what the binary mapping
/// cannot carry: an extension's JSON type (its value travels as text) and empty data versus none.
pub fn same_event(stored: &Event, decoded: &Event) -> Result<(), String> {
    let mut diff = String::new();
    let mut field = |name: &str, a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug, same: bool| {
        if !same {
            let _ = write!(diff, "\n  {name}: stored {a:?}, decoded {b:?}");
        }
    };
    field("id", &stored.id, &decoded.id, stored.id == decoded.id);
    field(
        "source",
        &stored.source,
        &decoded.source,
        stored.source == decoded.source,
    );
    field("type", &stored.ty, &decoded.ty, stored.ty == decoded.ty);
    macro_rules! same {
        ($($f:ident),*) => {$(
            field(stringify!($f), &stored.$f, &decoded.$f, stored.$f == decoded.$f);
        )*};
    }
    same!(
        subject,
        time,
        datacontenttype,
        dataschema,
        tenant,
        correlationid,
        causationid,
        traceparent,
        tracestate,
        replayof
    );
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let ext = |e: &Event| {
        e.extensions
            .iter()
            .map(|(k, v)| (k.clone(), text(v)))
            .collect::<Vec<_>>()
    };
    let (a, b) = (ext(stored), ext(decoded));
    field("extensions", &a, &b, a == b);
    let data = |e: &Event| e.data.clone().filter(|d| !d.is_empty());
    let (a, b) = (data(stored), data(decoded));
    field("data", &a, &b, a == b);
    if diff.is_empty() { Ok(()) } else { Err(diff) }
}
