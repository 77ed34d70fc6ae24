//! What the event store's tests share.

use bytes::Bytes;
use quorum_domain::{Event, StreamId, TenantId};

/// A test event of tenant `acme` on `stream` carrying `data`.
pub fn event(stream: &StreamId, data: &str) -> Event {
    Event::new(
        "/quorum/test",
        "quorum.test.happened",
        stream.clone(),
        TenantId::new("acme").unwrap(),
        Bytes::from(data.to_owned()),
    )
}
