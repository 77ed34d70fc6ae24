//! What HTTP and NATS share once an event is parsed: it is checked against its tenant and its
//! schema, given its stream, and appended (group commit). A request is all or nothing: one refused
//! event refuses it, and nothing of it is stored.

use std::collections::HashMap;

use quorum_domain::{Event, StreamId, TenantId, cloudevent};
use quorum_event_store::StoreError;
use quorum_schemas::Schemas;
use serde::Serialize;

use crate::commit::{Committer, Parts};
use crate::streams::stream_for;

/// Why a request was refused, naming the event and the attribute at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The event breaks a rule: 400.
    #[error("{}{attribute}: {reason}", index_prefix(*index))]
    Invalid {
        index: Option<usize>,
        attribute: String,
        reason: String,
    },
    /// The event names another tenant than the caller's: 403.
    #[error("{}{attribute}: {reason}", index_prefix(*index))]
    Forbidden {
        index: Option<usize>,
        attribute: String,
        reason: String,
    },
    /// An event with this (source, id) is stored already with other content: 409.
    #[error("event {id} from {source_uri} is stored already with different content")]
    IdConflict { source_uri: String, id: String },
    /// The store failed. `transient` when a retry can cure it (503 with `Retry-After`); otherwise a
    /// failure that is ours to fix (500). Callers over HTTP see an error id, never `cause`.
    #[error("the event store failed: {cause}")]
    Store { transient: bool, cause: String },
}

fn index_prefix(index: Option<usize>) -> String {
    index.map(|i| format!("event {i}: ")).unwrap_or_default()
}

impl Rejection {
    pub fn invalid(attribute: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            index: None,
            attribute: attribute.into(),
            reason: reason.into(),
        }
    }

    /// The attribute at fault, if one is.
    pub fn attribute(&self) -> &str {
        match self {
            Self::Invalid { attribute, .. } | Self::Forbidden { attribute, .. } => attribute,
            _ => "",
        }
    }

    /// The same rejection, about the event at `index` of a batch.
    pub fn at(self, i: usize) -> Self {
        match self {
            Self::Invalid {
                attribute, reason, ..
            } => Self::Invalid {
                index: Some(i),
                attribute,
                reason,
            },
            Self::Forbidden {
                attribute, reason, ..
            } => Self::Forbidden {
                index: Some(i),
                attribute,
                reason,
            },
            other => other,
        }
    }
}

impl From<cloudevent::CeError> for Rejection {
    fn from(e: cloudevent::CeError) -> Self {
        Self::Invalid {
            index: e.index,
            attribute: e.attribute,
            reason: e.reason,
        }
    }
}

impl From<StoreError> for Rejection {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::IdConflict { event_source, id } => Self::IdConflict {
                source_uri: event_source,
                id,
            },
            StoreError::Invalid { id, reason } => Self::Invalid {
                index: None,
                attribute: String::new(),
                reason: format!("event {id}: {reason}"),
            },
            other => Self::Store {
                transient: other.is_transient(),
                cause: quorum_runtime::error_chain(&other),
            },
        }
    }
}

/// One stored event, as the caller is told.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Accepted {
    pub id: String,
    pub source: String,
    pub stream: String,
    pub position: i64,
    pub version: u64,
    /// The event was stored already (same source, id and content): nothing new was written.
    pub duplicate: bool,
}

/// Events checked and grouped by stream, ready to append.
pub struct Prepared {
    parts: Parts,
    /// For each event in the order received, where it went.
    slots: Vec<Slot>,
}

/// Where one received event is among the parts.
#[derive(Clone, Copy, Debug)]
struct Slot {
    part: usize,
    /// Its index within the part.
    index: usize,
    /// It repeats an event earlier in the same request, and is answered as that one.
    repeat: bool,
}

/// What a caller is told of an event besides where it was stored, kept while the parts are in
/// the committer.
struct Named {
    id: String,
    source: String,
    stream: String,
}

impl Prepared {
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// How large an accepted event may be.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Its data, as configured.
    pub max_event_bytes: usize,
    /// Its whole NATS message once the relay publishes it: the server's `max_payload`, read at
    /// start. An event over it would be stored and then never published.
    pub max_message_bytes: usize,
}

/// Checks a request's events for `tenant`: the tenant extension, reserved types, the data schema of
/// Quorum's types, the size of each event's data and of its message on the bus; names their
/// streams. All or nothing.
pub fn prepare(
    tenant: &TenantId,
    events: Vec<Event>,
    schemas: &Schemas,
    bounds: Bounds,
) -> Result<Prepared, Rejection> {
    let batch = events.len() > 1;
    let at = |i: usize, r: Rejection| if batch { r.at(i) } else { r };
    let mut parts: Parts = Vec::new();
    let mut part_of: HashMap<StreamId, usize> = HashMap::new();
    // (source, id) to the slot of its first occurrence.
    let mut seen: HashMap<(String, String), Slot> = HashMap::new();
    let mut slots = Vec::with_capacity(events.len());
    // An event that comes without a trace of its own continues the request's (or the message's),
    // so what Quorum does with it is one trace from the caller on.
    let here = quorum_runtime::trace::current();
    for (i, mut event) in events.into_iter().enumerate() {
        if event.traceparent.is_none()
            && let Some(cx) = &here
        {
            event.traceparent = Some(cx.traceparent.clone());
            event.tracestate.clone_from(&cx.tracestate);
        }
        let stream = check(tenant, &mut event, schemas, bounds).map_err(|r| at(i, r))?;
        // The same event twice in one request is stored once, as if sent twice; the same identity
        // with other content is refused, as the store would refuse it.
        let identity = (event.source.clone(), event.id.clone());
        if let Some(&slot) = seen.get(&identity) {
            let (first_stream, first) = (&parts[slot.part].0, &parts[slot.part].1[slot.index]);
            if *first_stream != stream || first.ty != event.ty || first.data != event.data {
                return Err(at(
                    i,
                    Rejection::invalid(
                        "id",
                        "repeats an earlier event of this batch with other content",
                    ),
                ));
            }
            slots.push(Slot {
                repeat: true,
                ..slot
            });
            continue;
        }
        let part = *part_of.entry(stream.clone()).or_insert_with(|| {
            parts.push((stream, Vec::new()));
            parts.len() - 1
        });
        let slot = Slot {
            part,
            index: parts[part].1.len(),
            repeat: false,
        };
        seen.insert(identity, slot);
        slots.push(slot);
        parts[part].1.push(event);
    }
    Ok(Prepared { parts, slots })
}

/// Checks one event as `tenant` sends it, and gives it its tenant and its stream: the tenant it
/// names (if any) must be the credential's, its data and its message on the bus within `bounds`,
/// and its data valid against its type's schema (if Quorum has one).
fn check(
    tenant: &TenantId,
    event: &mut Event,
    schemas: &Schemas,
    bounds: Bounds,
) -> Result<StreamId, Rejection> {
    match &event.tenant {
        Some(t) if t != tenant => {
            return Err(Rejection::Forbidden {
                index: None,
                attribute: "tenant".into(),
                reason: format!("names tenant {t}, but the credential is for {tenant}"),
            });
        }
        _ => event.tenant = Some(tenant.clone()),
    }
    let max_event_bytes = bounds.max_event_bytes;
    if let Some(data) = &event.data
        && data.len() > max_event_bytes
    {
        return Err(Rejection::invalid(
            "data",
            format!("{} bytes; at most {max_event_bytes}", data.len()),
        ));
    }
    let stream = stream_for(tenant, event)?;
    let on_the_bus = quorum_bus::relayed_len(event, stream.as_str().len());
    if on_the_bus > bounds.max_message_bytes {
        return Err(Rejection::invalid(
            "data",
            format!(
                "the event would be {on_the_bus} bytes on the bus with its attributes; the NATS server takes at most {}",
                bounds.max_message_bytes
            ),
        ));
    }
    if schemas.has(&event.ty) {
        check_schema(event, schemas)?;
    }
    Ok(stream)
}

/// Checks what upstream publishers send (over HTTP or NATS) for what they may not claim: a source
/// under `/quorum/` (Quorum's own services), or `replayof`, which marks a delivery Quorum
/// replayed. Either would let a publisher pass its events off as Quorum's.
pub fn from_upstream(events: &[Event]) -> Result<(), Rejection> {
    let batch = events.len() > 1;
    for (i, event) in events.iter().enumerate() {
        upstream_only(event).map_err(|r| if batch { r.at(i) } else { r })?;
    }
    Ok(())
}

fn upstream_only(event: &Event) -> Result<(), Rejection> {
    if event.source == "/quorum" || event.source.starts_with("/quorum/") {
        return Err(Rejection::Forbidden {
            index: None,
            attribute: "source".into(),
            reason: "sources under /quorum/ are Quorum's own".into(),
        });
    }
    if event.replayof.is_some() {
        return Err(Rejection::Forbidden {
            index: None,
            attribute: "replayof".into(),
            reason: "set by Quorum on a replayed delivery, never by a publisher".into(),
        });
    }
    Ok(())
}

fn check_schema(event: &Event, schemas: &Schemas) -> Result<(), Rejection> {
    if !cloudevent::is_json_content_type(event.datacontenttype.as_deref()) {
        return Err(Rejection::invalid(
            "datacontenttype",
            format!("{} carries JSON data (application/json)", event.ty),
        ));
    }
    let data = event.data.as_deref().unwrap_or_default();
    schemas.validate(&event.ty, data).map_err(|e| {
        Rejection::invalid(
            format!("data{}", e.pointer),
            format!(
                "does not match the schema of {}: {}",
                e.event_type, e.message
            ),
        )
    })
}

/// Appends prepared events through the group committer; one answer per event, in order.
pub async fn store(committer: &Committer, prepared: Prepared) -> Result<Vec<Accepted>, Rejection> {
    if prepared.is_empty() {
        return Ok(Vec::new());
    }
    // Kept for the answer, since the parts move into the committer.
    let names: Vec<Vec<Named>> = prepared
        .parts
        .iter()
        .map(|(stream, events)| {
            events
                .iter()
                .map(|e| Named {
                    id: e.id.clone(),
                    source: e.source.clone(),
                    stream: stream.to_string(),
                })
                .collect()
        })
        .collect();
    let results = committer.append(prepared.parts).await?;
    let duplicates = prepared
        .slots
        .iter()
        .filter(|s| s.repeat || results[s.part].events[s.index].duplicate)
        .count();
    metrics::counter!(crate::metrics::EVENTS_TOTAL, "outcome" => "duplicate")
        .increment(duplicates as u64);
    metrics::counter!(crate::metrics::EVENTS_TOTAL, "outcome" => "stored")
        .increment((prepared.slots.len() - duplicates) as u64);
    Ok(prepared
        .slots
        .iter()
        .map(|s| {
            let named = &names[s.part][s.index];
            let appended = results[s.part].events[s.index];
            Accepted {
                id: named.id.clone(),
                source: named.source.clone(),
                stream: named.stream.clone(),
                position: appended.position,
                version: appended.stream_version,
                duplicate: appended.duplicate || s.repeat,
            }
        })
        .collect())
}
