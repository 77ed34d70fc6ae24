//! The event → NATS message encoder (`quorum_bus::encode_checked`, as the relay calls it), on events
//! built field by field rather than parsed, so that every attribute takes any text.
//!
//! - Any event, as a stored row may hold (written by hand, or by an older version): the encoder
//!   refuses it or encodes it without panicking, and what it encodes is a header block NATS takes
//!   (names of printable ASCII without `:`, values without CR, LF or any control character) that
//!   a consumer's client parses, counted by `message_len` as the wire counts it.
//! - The same event sent to ingest, as a structured event (its JSON rendering) and in binary mode
//!   (its attributes as `ce-` values): whatever ingest accepts must travel (see the quorum-fuzz
//!   crate).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use quorum_domain::{Event, TenantId, cloudevent};
use quorum_fuzz::{check, header_block, parse_header_block};

#[derive(Arbitrary, Debug)]
enum Value {
    Str(String),
    Bool(bool),
    Int(i64),
    Float(f64),
    Null,
}

#[derive(Arbitrary, Debug)]
struct Input {
    id: String,
    source: String,
    ty: String,
    subject: Option<String>,
    time: Option<(i64, u32)>,
    datacontenttype: Option<String>,
    dataschema: Option<String>,
    tenant: Option<String>,
    correlationid: Option<String>,
    causationid: Option<String>,
    traceparent: Option<String>,
    tracestate: Option<String>,
    replayof: Option<String>,
    extensions: Vec<(String, Value)>,
    data: Option<Vec<u8>>,
}

impl Input {
    fn event(self) -> Event {
        Event {
            id: self.id,
            source: self.source,
            ty: self.ty,
            subject: self.subject,
            time: self
                .time
                .and_then(|(s, n)| chrono::DateTime::from_timestamp(s, n)),
            datacontenttype: self.datacontenttype,
            dataschema: self.dataschema,
            tenant: self.tenant.and_then(|t| TenantId::new(t).ok()),
            correlationid: self.correlationid,
            causationid: self.causationid,
            traceparent: self.traceparent,
            tracestate: self.tracestate,
            replayof: self.replayof,
            extensions: self
                .extensions
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::Str(s) => serde_json::Value::String(s),
                        Value::Bool(b) => b.into(),
                        Value::Int(i) => i.into(),
                        Value::Float(f) => f.into(),
                        Value::Null => serde_json::Value::Null,
                    };
                    (k, v)
                })
                .collect(),
            data: self.data.map(Bytes::from),
        }
    }
}

/// Any event: refused, or encoded into a header block NATS and a consumer's client take.
fn encoder_contract(event: &Event) {
    let Ok((headers, payload)) = quorum_bus::encode_checked(event) else {
        return;
    };
    for (name, values) in headers.iter() {
        let name: &str = name.as_ref();
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':'),
            "encode_checked passed header name {name:?}"
        );
        for v in values {
            let v = v.as_str();
            assert!(
                !v.chars().any(char::is_control),
                "encode_checked passed {name}: {v:?}"
            );
        }
    }
    let block = header_block(&headers);
    assert_eq!(
        quorum_bus::message_len(&headers, payload.len()),
        block.len() + payload.len(),
        "message_len counts other than the wire"
    );
    assert!(
        parse_header_block(&block).is_some(),
        "a consumer cannot parse the header block encode_checked passed: {:?}",
        String::from_utf8_lossy(&block)
    );
}

/// The event as ingest would receive it in binary mode: each attribute as a `ce-` value.
fn as_binary(e: &Event) -> Option<Event> {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut attributes: Vec<(String, String)> = vec![
        ("specversion".into(), "1.0".into()),
        ("id".into(), e.id.clone()),
        ("source".into(), e.source.clone()),
        ("type".into(), e.ty.clone()),
    ];
    let optional = [
        ("subject", e.subject.clone()),
        (
            "time",
            e.time
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        ),
        ("dataschema", e.dataschema.clone()),
        ("tenant", e.tenant.as_ref().map(|t| t.as_str().to_owned())),
        ("correlationid", e.correlationid.clone()),
        ("causationid", e.causationid.clone()),
        ("traceparent", e.traceparent.clone()),
        ("tracestate", e.tracestate.clone()),
        ("replayof", e.replayof.clone()),
    ];
    attributes.extend(
        optional
            .into_iter()
            .filter_map(|(n, v)| v.map(|v| (n.to_owned(), v))),
    );
    attributes.extend(e.extensions.iter().map(|(k, v)| (k.clone(), text(v))));
    cloudevent::parse_binary(
        attributes.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        e.datacontenttype.as_deref(),
        e.data.clone().unwrap_or_default(),
    )
    .ok()
}

fuzz_target!(|input: Input| {
    let event = input.event();
    encoder_contract(&event);
    let rendered = cloudevent::to_structured(&event).to_string();
    if let Ok(parsed) = cloudevent::parse_structured(rendered.as_bytes()) {
        check(std::slice::from_ref(&parsed));
    }
    if let Some(parsed) = as_binary(&event) {
        check(std::slice::from_ref(&parsed));
    }
});
