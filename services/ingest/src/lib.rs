//! Ingest: accepts CloudEvents over HTTP and NATS, authenticates and validates them, and appends them
//! to the event store exactly once.
