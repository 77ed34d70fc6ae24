//! The JetStream streams: brought up to date at start by the relay and the operator (idempotent);
//! found, or made when missing, by every other service, which may not change them (ADR 27).

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::subjects;

pub const EVENTS_STREAM: &str = "QUORUM_EVENTS";
pub const INGEST_STREAM: &str = "QUORUM_INGEST";
pub const DLQ_STREAM: &str = "QUORUM_DLQ";

#[derive(Debug, thiserror::Error)]
#[error("cannot find, create or update stream {stream}")]
pub struct StreamsError {
    pub stream: &'static str,
    #[source]
    pub source: jetstream::context::CreateStreamError,
}

/// The stream configs. `duplicate_window` is what makes the relay's republish after a failover
/// idempotent (`Nats-Msg-Id` = the event's position in the store); the relay also resumes from the stream's own last message,
/// so correctness does not rest on the window alone (docs/adr/0003).
fn configs() -> [(&'static str, stream::Config); 3] {
    let events = stream::Config {
        name: EVENTS_STREAM.into(),
        subjects: vec![subjects::ALL_EVENTS.into(), "quorum.redeliver.>".into()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        duplicate_window: Duration::from_secs(120),
        allow_direct: true,
        ..Default::default()
    };
    let ingest = stream::Config {
        name: INGEST_STREAM.into(),
        subjects: vec!["quorum.ingest.>".into()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::WorkQueue,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    };
    let dlq = stream::Config {
        name: DLQ_STREAM.into(),
        subjects: vec!["quorum.dlq.>".into()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        max_age: Duration::from_secs(7 * 24 * 3600),
        ..Default::default()
    };
    [
        (EVENTS_STREAM, events),
        (INGEST_STREAM, ingest),
        (DLQ_STREAM, dlq),
    ]
}

/// Creates the streams, or updates them to the config above. Needs the right to change a stream
/// (the relay's and the operator's NATS users have it).
pub async fn ensure_streams(js: &jetstream::Context) -> Result<(), StreamsError> {
    for (name, config) in configs() {
        js.create_or_update_stream(config)
            .await
            .map_err(|source| StreamsError {
                stream: name,
                source,
            })?;
    }
    Ok(())
}

/// Finds the streams, creating any that does not exist yet with the config above; an existing one
/// is left as it is. What a service without the right to change a stream runs at start: a stream's
/// config decides what becomes history, so only the relay and the operator may change one.
pub async fn find_or_create_streams(js: &jetstream::Context) -> Result<(), StreamsError> {
    for (name, config) in configs() {
        js.get_or_create_stream(config)
            .await
            .map_err(|source| StreamsError {
                stream: name,
                source,
            })?;
    }
    Ok(())
}
