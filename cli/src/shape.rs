//! One JSON shape per resource, whichever command and path shows it. An event is
//!
//! ```json
//! {"status": "stored", "stream": "query/…", "version": 3, "position": 1042,
//!  "recorded_at": "2026-05-01T12:00:00.000Z", "event": { …the CloudEvent, structured… }}
//! ```
//!
//! for `events`, `tail` and `publish` (over HTTP and NATS) alike: `status` is `stored`, `duplicate`
//! (the same `source` and `id` was stored before) or `queued` (published to the ingest queue, not
//! yet stored); a field the path cannot know is `null` (a tailed message carries no version or
//! record time, a queued event nothing of the store). Times as [`crate::times`] writes them.

use serde_json::{Value, json};

/// Where an event stands, as far as the command that shows it knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Stored,
    Duplicate,
    Queued,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::Duplicate => "duplicate",
            Self::Queued => "queued",
        }
    }
}

/// What the store says of an event, each part when known.
#[derive(Clone, Debug, Default)]
pub struct Stored {
    pub stream: Option<String>,
    pub version: Option<i64>,
    pub position: Option<i64>,
    pub recorded_at: Option<String>,
}

/// An event in the one shape: `event` is the structured CloudEvent.
pub fn event(event: Value, status: Status, stored: Stored) -> Value {
    crate::times::normalized_json(json!({
        "status": status.as_str(),
        "stream": stored.stream,
        "version": stored.version,
        "position": stored.position,
        "recorded_at": stored.recorded_at,
        "event": event,
    }))
}

/// An event as ingest's history API answers it (`{position, stream, version, recorded_at, event}`).
pub fn from_history(stored: &Value) -> Value {
    event(
        stored["event"].clone(),
        Status::Stored,
        Stored {
            stream: stored["stream"].as_str().map(str::to_owned),
            version: stored["version"].as_i64(),
            position: stored["position"].as_i64(),
            recorded_at: stored["recorded_at"].as_str().map(str::to_owned),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_gives_the_same_keys() {
        let history = from_history(&json!({
            "position": 7, "stream": "s/1", "version": 1,
            "recorded_at": "2026-05-01T12:00:00.123456Z", "event": {"id": "a"},
        }));
        let queued = event(json!({"id": "a"}), Status::Queued, Stored::default());
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&history), keys(&queued));
        assert_eq!(history["recorded_at"], "2026-05-01T12:00:00.123Z");
        assert_eq!(queued["position"], Value::Null);
    }
}
