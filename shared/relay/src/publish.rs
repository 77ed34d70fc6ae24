//! Publishing one event: subject, CloudEvent headers, the relay's headers, and `Nats-Msg-Id`.

use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage};
use quorum_bus::{encode, subjects};
use quorum_event_store::{CommitCursor, RecordedEvent};

use crate::{CURSOR_HEADER, POSITION_HEADER, RelayError};

/// Sends `event` without waiting for its ack; `cursor` is the safe cursor once this message is stored.
pub(crate) async fn send(
    js: &jetstream::Context,
    event: &RecordedEvent,
    cursor: CommitCursor,
) -> Result<PublishAckFuture, RelayError> {
    let (mut headers, payload) = encode(&event.event);
    headers.insert(CURSOR_HEADER, cursor.to_string().as_str());
    headers.insert(POSITION_HEADER, event.position.to_string().as_str());
    headers.insert(quorum_bus::STREAM_HEADER, event.stream_id.as_str());
    // JetStream drops a message whose id it saw within the duplicate window: a republish after a
    // failover cannot double an event.
    let message = PublishMessage::build()
        .headers(headers)
        .payload(payload)
        .message_id(&event.event.id);
    let subject = subjects::event(&event.tenant, &event.event.ty);
    js.send_publish(subject, message)
        .await
        .map_err(|e| RelayError::JetStream(e.to_string()))
}
