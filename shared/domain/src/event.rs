//! The CloudEvents 1.0 envelope as Quorum carries it, with the extensions Quorum knows as typed fields.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{StreamId, TenantId};

/// Why an event or an identifier was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("invalid tenant {0:?}: 1-64 characters of a-z, 0-9, '_' or '-'")]
    InvalidTenant(String),
    #[error("invalid stream id {0:?}: expected <category>/<id>")]
    InvalidStream(String),
    #[error("missing required attribute {0}")]
    Missing(&'static str),
    #[error("invalid attribute {name}: {reason}")]
    Invalid { name: String, reason: String },
}

/// One CloudEvent. Attributes Quorum relies on are typed; any other extension is kept, with its JSON
/// type, in `extensions` so that an upstream event is stored and relayed exactly as it was sent.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub ty: String,
    /// As sent. For Quorum's own events it is the stream id; an upstream event keeps its own
    /// subject, and ingest names its stream (docs/adr/0006).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacontenttype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataschema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<TenantId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlationid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causationid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayof: Option<String>,
    /// Extensions Quorum does not interpret, kept with their JSON type.
    #[serde(flatten)]
    pub extensions: BTreeMap<String, serde_json::Value>,
    /// The data exactly as received (absent is not the same as empty).
    #[serde(skip)]
    pub data: Option<Bytes>,
}

impl Event {
    /// A new event of Quorum's own: a UUIDv7 id, the current time, JSON data.
    pub fn new(source: &str, ty: &str, subject: StreamId, tenant: TenantId, data: Bytes) -> Self {
        Self {
            id: crate::new_event_id().to_string(),
            source: source.to_owned(),
            ty: ty.to_owned(),
            subject: Some(subject.into()),
            time: Some(Utc::now()),
            datacontenttype: Some("application/json".to_owned()),
            tenant: Some(tenant),
            data: Some(data),
            ..Self::empty()
        }
    }

    /// An event with every attribute empty, for parsers to fill in.
    pub(crate) fn empty() -> Self {
        Self {
            id: String::new(),
            source: String::new(),
            ty: String::new(),
            subject: None,
            time: None,
            datacontenttype: None,
            dataschema: None,
            tenant: None,
            correlationid: None,
            causationid: None,
            traceparent: None,
            tracestate: None,
            replayof: None,
            extensions: BTreeMap::new(),
            data: None,
        }
    }

    /// An event `handler` derives from `cause`: a deterministic id (see [`crate::derived_event_id`]),
    /// the cause's tenant, correlation and trace, and the cause as its causation.
    pub fn derived(
        cause: &Event,
        handler: &str,
        index: u32,
        source: &str,
        ty: &str,
        subject: StreamId,
        data: Bytes,
    ) -> Self {
        let mut event = Self::new(
            source,
            ty,
            subject,
            cause
                .tenant
                .clone()
                .unwrap_or_else(|| TenantId::new("default").expect("valid")),
            data,
        );
        event.id = crate::derived_event_id(&cause.source, &cause.id, handler, index).to_string();
        event.correlationid = Some(
            cause
                .correlationid
                .clone()
                .unwrap_or_else(|| cause.id.clone()),
        );
        event.causationid = Some(cause.id.clone());
        event.traceparent.clone_from(&cause.traceparent);
        event.tracestate.clone_from(&cause.tracestate);
        event
    }

    /// The attributes other than `data`, as the JSON object stored beside the data and hashed by audit.
    pub fn attributes_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).expect("an event always serializes");
        if let Some(map) = value.as_object_mut() {
            map.insert("specversion".to_owned(), "1.0".into());
        }
        value
    }

    /// Rebuilds an event from its stored attributes and data.
    pub fn from_attributes(
        attributes: serde_json::Value,
        data: Option<Bytes>,
    ) -> Result<Self, EventError> {
        Self::finish(serde_json::from_value(attributes), data)
    }

    /// [`Self::from_attributes`] from the attributes' JSON text, without building a JSON tree first
    /// (the relay decodes every event it publishes).
    pub fn from_attributes_text(attributes: &str, data: Option<Bytes>) -> Result<Self, EventError> {
        Self::finish(serde_json::from_str(attributes), data)
    }

    fn finish(
        parsed: Result<Event, serde_json::Error>,
        data: Option<Bytes>,
    ) -> Result<Self, EventError> {
        let mut event = parsed.map_err(|e| EventError::Invalid {
            name: "attributes".to_owned(),
            reason: e.to_string(),
        })?;
        event.extensions.remove("specversion");
        event.data = data;
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip_with_unknown_extensions() {
        let mut e = Event::new(
            "/quorum/test",
            "quorum.test.happened",
            StreamId::parse("test/1").unwrap(),
            TenantId::new("acme").unwrap(),
            Bytes::from_static(b"{\"a\":1}"),
        );
        e.extensions.insert("priority".into(), 5.into());
        let back = Event::from_attributes(e.attributes_json(), e.data.clone()).unwrap();
        assert_eq!(back, e);
        assert_eq!(e.attributes_json()["specversion"], "1.0");
    }

    #[test]
    fn derived_events_are_deterministic_and_linked() {
        let cause = Event::new(
            "/quorum/ingest",
            "quorum.query.submitted",
            StreamId::parse("query/1").unwrap(),
            TenantId::new("acme").unwrap(),
            Bytes::new(),
        );
        let s = StreamId::parse("query/1").unwrap();
        let a = Event::derived(
            &cause,
            "h",
            0,
            "/quorum/x",
            "quorum.x.done",
            s.clone(),
            Bytes::new(),
        );
        let b = Event::derived(
            &cause,
            "h",
            0,
            "/quorum/x",
            "quorum.x.done",
            s,
            Bytes::new(),
        );
        assert_eq!(a.id, b.id);
        assert_eq!(a.causationid.as_deref(), Some(cause.id.as_str()));
        assert_eq!(a.correlationid.as_deref(), Some(cause.id.as_str()));
        assert_eq!(a.tenant, cause.tenant);
    }
}
