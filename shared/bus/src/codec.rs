//! The CloudEvent ⇄ NATS message mapping. Binary mode: each attribute is a `ce-<name>` header, the data
//! is the payload and `datacontenttype` is `content-type` (the headers mode of the CloudEvents NATS
//! binding draft). `traceparent`/`tracestate` travel as the plain W3C headers, so any NATS-aware tracer
//! sees them. A structured JSON CloudEvent as the payload decodes too.

use async_nats::HeaderMap;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use quorum_domain::{Event, TenantId};
use serde_json::{Map, Value};

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
    h.insert("ce-specversion", "1.0");
    h.insert("ce-id", event.id.as_str());
    h.insert("ce-source", event.source.as_str());
    h.insert("ce-type", event.ty.as_str());
    if let Some(s) = &event.subject {
        h.insert("ce-subject", s.as_str());
    }
    if let Some(t) = &event.time {
        h.insert(
            "ce-time",
            t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                .as_str(),
        );
    }
    if let Some(v) = &event.dataschema {
        h.insert("ce-dataschema", v.as_str());
    }
    if let Some(v) = &event.datacontenttype {
        h.insert("content-type", v.as_str());
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
            h.insert(name, value);
        }
    }
    for (name, value) in &event.extensions {
        // Extension values travel in their canonical string form, as in the HTTP binding.
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        h.insert(format!("{PREFIX}{name}").as_str(), text.as_str());
    }
    (h, event.data.clone().unwrap_or_default())
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

fn parse_time(t: &str) -> Result<DateTime<Utc>, DecodeError> {
    DateTime::parse_from_rfc3339(t)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| invalid("time", e))
}

/// The headers as a JSON object of name to list of values (for dead letters and inspection).
pub fn headers_json(headers: Option<&HeaderMap>) -> Value {
    let mut out = Map::new();
    if let Some(h) = headers {
        for (name, values) in h.iter() {
            let values: Vec<Value> = values
                .iter()
                .map(|v| Value::String(v.as_str().to_owned()))
                .collect();
            out.insert(name.to_string(), Value::Array(values));
        }
    }
    Value::Object(out)
}

/// The headers [`headers_json`] wrote, back as NATS headers (for replaying a dead letter). Values
/// that are not strings are skipped: `headers_json` never writes them.
pub fn headers_from_json(json: &Value) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(map) = json.as_object() {
        for (name, values) in map {
            for v in values.as_array().into_iter().flatten() {
                if let Some(v) = v.as_str() {
                    headers.append(name.as_str(), v);
                }
            }
        }
    }
    headers
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
