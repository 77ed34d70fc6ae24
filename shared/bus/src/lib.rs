//! Quorum on NATS: subject names, the JetStream streams and consumers, and the CloudEvent ⇄ NATS
//! message mapping (binary mode with `ce-` headers; a structured JSON payload also decodes).

pub mod access;
mod codec;
mod inspect;
mod streams;
pub mod subjects;

/// Header with the event's stream id, set by the relay. Consumers order by it: an upstream event's
/// `subject` is its own and need not name its stream.
pub const STREAM_HEADER: &str = "Quorum-Stream";

pub use codec::{
    DecodeError, RELAY_HEADROOM, Unpublishable, check_size, decode, encode, encode_checked,
    message_len, relayed_len,
};
pub use inspect::{headers_from_json, headers_json};
pub use streams::{
    DLQ_STREAM, EVENTS_STREAM, INGEST_STREAM, StreamsError, ensure_streams, find_or_create_streams,
};
