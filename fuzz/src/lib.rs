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
use std::sync::LazyLock;

use async_nats::{HeaderMap, HeaderValue};
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

mod http_request;
mod nats_message;

pub use http_request::*;
pub use nats_message::*;

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
