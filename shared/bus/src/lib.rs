//! Quorum on NATS: subject names, the JetStream streams and consumers, and the CloudEvent ⇄ NATS
//! message mapping (binary mode with `ce-` headers; a structured JSON payload also decodes).

mod codec;
mod streams;
pub mod subjects;

pub use codec::{DecodeError, decode, encode, headers_json};
pub use streams::{DLQ_STREAM, EVENTS_STREAM, INGEST_STREAM, StreamsError, ensure_streams};
