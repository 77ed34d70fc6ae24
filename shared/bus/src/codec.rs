//! The CloudEvent ⇄ NATS message mapping. Binary mode: each attribute is a `ce-<name>` header, the data
//! is the payload and `datacontenttype` is `content-type` (the headers mode of the CloudEvents NATS
//! binding draft). `traceparent`/`tracestate` travel as the plain W3C headers, so any NATS-aware tracer
//! sees them. A structured JSON CloudEvent as the payload decodes too.

use async_nats::HeaderMap;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use quorum_domain::{Event, TenantId};
use serde_json::Value;

/// Why a message is not a CloudEvent Quorum can take.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("missing attribute {0}")]
    Missing(&'static str),
    #[error("invalid attribute {name}: {reason}")]
    Invalid { name: String, reason: String },
    #[error("payload is not a structured CloudEvent: {0}")]
    Structured(String),
}

const PREFIX: &str = "ce-";

/// The message for `event`: its headers and payload.
pub fn encode(event: &Event) -> (HeaderMap, Bytes) {
    let mut h = HeaderMap::new();
    each_header(event, |name, value| h.insert(name, value));
    (h, event.data.clone().unwrap_or_default())
}

/// Every header of `event`'s message, in order, as `(name, value)`.
fn each_header(event: &Event, mut put: impl FnMut(&str, &str)) {
    put("ce-specversion", "1.0");
    put("ce-id", &event.id);
    put("ce-source", &event.source);
    put("ce-type", &event.ty);
    if let Some(s) = &event.subject {
        put("ce-subject", s);
    }
    if let Some(t) = &event.time {
        put(
            "ce-time",
            &t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        );
    }
    if let Some(v) = &event.dataschema {
        put("ce-dataschema", v);
    }
    if let Some(v) = &event.datacontenttype {
        put("content-type", v);
    }
    let known = [
        ("ce-tenant", event.tenant.as_ref().map(TenantId::as_str)),
        ("ce-correlationid", event.correlationid.as_deref()),
        ("ce-causationid", event.causationid.as_deref()),
        ("ce-replayof", event.replayof.as_deref()),
        ("traceparent", event.traceparent.as_deref()),
        ("tracestate", event.tracestate.as_deref()),
    ];
    for (name, value) in known {
        if let Some(value) = value {
            put(name, value);
        }
    }
    for (name, value) in &event.extensions {
        // Extension values travel in their canonical string form, as in the HTTP binding.
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        put(&format!("{PREFIX}{name}"), &text);
    }
}

/// Why an event cannot travel as a NATS message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{attribute}: {reason}")]
pub struct Unpublishable {
    /// The attribute at fault (`data` for the size).
    pub attribute: String,
    pub reason: String,
}

/// [`encode`], for an event that may not be fit to travel (a stored row from before ingest checked
/// headers, or one written by hand): every header value checked first, since NATS refuses, and
/// async-nats panics on, a line break in a header. The size is checked by [`check_size`] once the
/// caller has added its own headers.
pub fn encode_checked(event: &Event) -> Result<(HeaderMap, Bytes), Unpublishable> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut values: Vec<(String, String)> = vec![
        ("id".into(), event.id.clone()),
        ("source".into(), event.source.clone()),
        ("type".into(), event.ty.clone()),
    ];
    let optional = [
        ("subject", event.subject.as_deref()),
        ("dataschema", event.dataschema.as_deref()),
        ("datacontenttype", event.datacontenttype.as_deref()),
        ("correlationid", event.correlationid.as_deref()),
        ("causationid", event.causationid.as_deref()),
        ("replayof", event.replayof.as_deref()),
        ("traceparent", event.traceparent.as_deref()),
        ("tracestate", event.tracestate.as_deref()),
    ];
    values.extend(
        optional
            .into_iter()
            .filter_map(|(n, v)| v.map(|v| (n.to_owned(), v.to_owned()))),
    );
    for (name, value) in &event.extensions {
        let header_name = format!("{PREFIX}{name}");
        if header_name
            .bytes()
            .any(|b| !b.is_ascii_graphic() || b == b':')
        {
            return Err(Unpublishable {
                attribute: name.clone(),
                reason: "not a header name".into(),
            });
        }
        values.push((name.clone(), text(value)));
    }
    for (attribute, value) in values {
        if let Some(c) = value.chars().find(|c| c.is_control()) {
            return Err(Unpublishable {
                attribute,
                reason: format!("holds a control character (U+{:04X})", c as u32),
            });
        }
    }
    Ok(encode(event))
}

/// The size of a message as the NATS server counts it against `max_payload`: the header block
/// (`NATS/1.0`, each `name: value` line, the blank line) and the payload.
pub fn message_len(headers: &HeaderMap, payload_len: usize) -> usize {
    let mut len = "NATS/1.0\r\n".len() + "\r\n".len();
    for (name, values) in headers.iter() {
        for v in values {
            let name: &str = name.as_ref();
            len += name.len() + ": ".len() + v.as_str().len() + "\r\n".len();
        }
    }
    len + payload_len
}

/// Whether a message fits the server's `max_payload`.
pub fn check_size(
    headers: &HeaderMap,
    payload_len: usize,
    max_payload: usize,
) -> Result<(), Unpublishable> {
    let len = message_len(headers, payload_len);
    if len > max_payload {
        return Err(Unpublishable {
            attribute: "data".into(),
            reason: format!(
                "the message would be {len} bytes with its headers; the NATS server takes at most {max_payload}"
            ),
        });
    }
    Ok(())
}

/// What the relay adds to an event's message at most, beyond the stream id: its cursor and
/// position headers and `Nats-Msg-Id` (the position), with room to spare. Ingest keeps an
/// event's message this far under `max_payload`, so the relay can always publish what was
/// accepted.
pub const RELAY_HEADROOM: usize = 256;

/// The size of `event`'s message once the relay has added its headers, for a stream id of
/// `stream_len` bytes.
///
/// Counted from the attributes, without building the message: ingest asks this of every event
/// it takes. A header name given twice is counted twice, so the figure never falls short.
pub fn relayed_len(event: &Event, stream_len: usize) -> usize {
    let mut len = "NATS/1.0\r\n".len() + "\r\n".len() + event.data.as_ref().map_or(0, Bytes::len);
    each_header(event, |name, value| {
        len += name.len() + ": ".len() + value.len() + "\r\n".len();
    });
    len + RELAY_HEADROOM + "Quorum-Stream: \r\n".len() + stream_len
}

/// Decodes a message: binary mode when it has `ce-specversion`, else a structured JSON CloudEvent.
/// Either way the CloudEvents rules apply (`quorum_domain::cloudevent`), so a consumer never handles
/// an event ingest over HTTP would have refused.
pub fn decode(headers: Option<&HeaderMap>, payload: &Bytes) -> Result<Event, DecodeError> {
    match headers {
        Some(h) if h.get("ce-specversion").is_some() => {
            let event = decode_binary(h, payload)?;
            quorum_domain::cloudevent::validate(&event)
                .map_err(|e| invalid(&e.attribute, e.reason))?;
            Ok(event)
        }
        _ => quorum_domain::cloudevent::parse_structured(payload)
            .map_err(|e| invalid(&e.attribute, e.reason)),
    }
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).map(|v| v.as_str().to_owned())
}

fn required(h: &HeaderMap, name: &'static str) -> Result<String, DecodeError> {
    header(h, name)
        .filter(|v| !v.is_empty())
        .ok_or(DecodeError::Missing(name))
}

fn invalid(name: &str, reason: impl ToString) -> DecodeError {
    DecodeError::Invalid {
        name: name.to_owned(),
        reason: reason.to_string(),
    }
}

fn decode_binary(h: &HeaderMap, payload: &Bytes) -> Result<Event, DecodeError> {
    let version = required(h, "ce-specversion")?;
    if version != "1.0" {
        return Err(invalid("specversion", format!("unsupported {version:?}")));
    }
    let mut event = Event {
        id: required(h, "ce-id")?,
        source: required(h, "ce-source")?,
        ty: required(h, "ce-type")?,
        subject: header(h, "ce-subject"),
        time: header(h, "ce-time").map(|t| parse_time(&t)).transpose()?,
        datacontenttype: header(h, "content-type").or_else(|| header(h, "ce-datacontenttype")),
        dataschema: header(h, "ce-dataschema"),
        tenant: header(h, "ce-tenant")
            .map(TenantId::new)
            .transpose()
            .map_err(|e| invalid("tenant", e))?,
        correlationid: header(h, "ce-correlationid"),
        causationid: header(h, "ce-causationid"),
        traceparent: header(h, "traceparent").or_else(|| header(h, "ce-traceparent")),
        tracestate: header(h, "tracestate").or_else(|| header(h, "ce-tracestate")),
        replayof: header(h, "ce-replayof"),
        extensions: Default::default(),
        data: (!payload.is_empty() || h.get("content-type").is_some()).then(|| payload.clone()),
    };
    const TYPED: [&str; 14] = [
        "specversion",
        "id",
        "source",
        "type",
        "subject",
        "time",
        "datacontenttype",
        "dataschema",
        "tenant",
        "correlationid",
        "causationid",
        "traceparent",
        "tracestate",
        "replayof",
    ];
    for (name, values) in h.iter() {
        let name: &str = name.as_ref();
        let Some(attr) = name
            .to_ascii_lowercase()
            .strip_prefix(PREFIX)
            .map(str::to_owned)
        else {
            continue;
        };
        if TYPED.contains(&attr.as_str()) {
            continue;
        }
        if let Some(v) = values.first() {
            event
                .extensions
                .insert(attr, Value::String(v.as_str().to_owned()));
        }
    }
    Ok(event)
}

/// An RFC 3339 time whose UTC year is 0000-9999: the time is sent in UTC, and a year outside
/// those would be written in a form no consumer reads back.
fn parse_time(t: &str) -> Result<DateTime<Utc>, DecodeError> {
    let utc = DateTime::parse_from_rfc3339(t)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| invalid("time", e))?;
    if !(0..=9999).contains(&chrono::Datelike::year(&utc)) {
        return Err(invalid("time", "outside years 0000-9999 in UTC"));
    }
    Ok(utc)
}

#[cfg(test)]
mod checked {
    use super::*;
    use quorum_domain::StreamId;

    fn event() -> Event {
        let s = StreamId::parse("sub-t/x").unwrap();
        Event::new(
            "/shop",
            "com.example.x",
            s,
            TenantId::new("t").unwrap(),
            Bytes::from_static(b"{}"),
        )
    }

    #[test]
    fn a_header_nats_refuses_is_named_not_panicked_on() {
        let mut e = event();
        e.id = "poison\n1".into();
        assert_eq!(encode_checked(&e).unwrap_err().attribute, "id");
        let mut e = event();
        e.extensions.insert("x".into(), "a\u{0}b".into());
        assert_eq!(encode_checked(&e).unwrap_err().attribute, "x");
        let mut e = event();
        e.extensions.insert("bad name".into(), "v".into());
        assert_eq!(encode_checked(&e).unwrap_err().attribute, "bad name");
        assert!(encode_checked(&event()).is_ok());
    }

    #[test]
    fn the_size_counts_headers_as_the_server_does() {
        let (h, p) = encode(&event());
        let len = message_len(&h, p.len());
        assert!(check_size(&h, p.len(), len).is_ok());
        assert_eq!(
            check_size(&h, p.len(), len - 1).unwrap_err().attribute,
            "data"
        );
        assert!(relayed_len(&event(), 7) > len + RELAY_HEADROOM);
    }

    #[test]
    fn the_relayed_length_counts_what_encode_writes() {
        let mut e = event();
        e.subject = Some("orders/1".into());
        e.time = Some(chrono::Utc::now());
        e.extensions.insert("region".into(), "eu".into());
        e.extensions.insert("priority".into(), serde_json::json!(3));
        let (h, p) = encode(&e);
        let stream = "Quorum-Stream: sub-t/x\r\n".len();
        assert_eq!(
            relayed_len(&e, "sub-t/x".len()),
            message_len(&h, p.len()) + RELAY_HEADROOM + stream
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        let mut e = Event::new(
            "/quorum/test",
            "quorum.test.happened",
            quorum_domain::StreamId::parse("test/1").unwrap(),
            TenantId::new("acme").unwrap(),
            Bytes::from_static(b"{\"q\":\"why\"}"),
        );
        e.correlationid = Some("c1".into());
        e.traceparent = Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into());
        e.extensions
            .insert("priority".into(), Value::String("high".into()));
        e
    }

    #[test]
    fn binary_round_trip() {
        let e = sample();
        let (h, p) = encode(&e);
        assert_eq!(
            h.get("traceparent").unwrap().as_str(),
            e.traceparent.as_deref().unwrap()
        );
        assert_eq!(decode(Some(&h), &p).unwrap(), e);
    }

    #[test]
    fn structured_json_decodes() {
        let payload = Bytes::from_static(
            br#"{"specversion":"1.0","id":"1","source":"/up","type":"com.example.x","data":{"a":1}}"#,
        );
        let e = decode(None, &payload).unwrap();
        assert_eq!(e.ty, "com.example.x");
        assert_eq!(e.data.as_deref(), Some(&br#"{"a":1}"#[..]));
        let b64 = Bytes::from_static(
            br#"{"specversion":"1.0","id":"1","source":"/up","type":"x","data_base64":"AAE="}"#,
        );
        assert_eq!(
            decode(None, &b64).unwrap().data.as_deref(),
            Some(&[0u8, 1][..])
        );
    }

    #[test]
    fn bad_messages_are_refused() {
        assert!(decode(None, &Bytes::from_static(b"not json")).is_err());
        let no_id = Bytes::from_static(br#"{"specversion":"1.0","source":"/up","type":"x"}"#);
        assert!(
            matches!(decode(None, &no_id), Err(DecodeError::Invalid { name, .. }) if name == "id")
        );
        let bad_time = Bytes::from_static(
            br#"{"specversion":"1.0","id":"1","source":"/up","type":"x","time":"noon"}"#,
        );
        assert!(
            matches!(decode(None, &bad_time), Err(DecodeError::Invalid { name, .. }) if name == "time")
        );
        let mut h = HeaderMap::new();
        h.insert("ce-specversion", "1.0");
        h.insert("ce-id", "1");
        h.insert("ce-type", "x");
        assert_eq!(
            decode(Some(&h), &Bytes::new()),
            Err(DecodeError::Missing("ce-source"))
        );
    }
}
