//! Publishing one event: subject, CloudEvent headers, the relay's headers, and `Nats-Msg-Id`; and
//! its `send` span, whose context the message carries in place of the appender's (so a consumer's
//! span is a child of the relay's, which is a child of the span that appended the event).

use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage};
use quorum_bus::{Unpublishable, check_size, encode_checked, subjects};
use quorum_event_store::{CommitCursor, RecordedEvent};

use crate::{CURSOR_HEADER, POSITION_HEADER, RelayError};

/// Sends `event` without waiting for its ack; `cursor` is the safe cursor once this message is
/// stored. An event that cannot travel (a header NATS refuses, a message over the server's
/// `max_payload`) is not sent: the inner error says why, for the relay to park it.
pub(crate) async fn send(
    js: &jetstream::Context,
    event: &RecordedEvent,
    cursor: CommitCursor,
    max_payload: usize,
) -> Result<Result<PublishAckFuture, Unpublishable>, RelayError> {
    let (mut headers, payload) = match encode_checked(&event.event) {
        Ok(message) => message,
        Err(e) => return Ok(Err(e)),
    };
    headers.insert(CURSOR_HEADER, cursor.to_string().as_str());
    headers.insert(POSITION_HEADER, event.position.to_string().as_str());
    headers.insert(quorum_bus::STREAM_HEADER, event.stream_id.as_str());
    // JetStream drops a message whose id it saw within the duplicate window, so a republish after a
    // failover cannot double an event. The id is the event's position in the store: one per stored
    // event, the same on every republish, and never shared by two tenants' events that happen to
    // carry the same CloudEvents id (docs/adr/0019).
    let msg_id = event.position.to_string();
    let mut sized = headers.clone();
    sized.insert("Nats-Msg-Id", msg_id.as_str());
    if let Err(e) = check_size(&sized, payload.len(), max_payload) {
        return Ok(Err(e));
    }
    let subject = subjects::event(&event.tenant, &event.event.ty);
    // An event appended outside any trace is sent outside one too, rather than starting a trace
    // of its own here. The new traceparent has the length of the old, so the size checked above
    // still holds.
    let span = match event.event.traceparent.as_deref() {
        Some(traceparent) => {
            let span = quorum_trace::producer_span(
                &subject,
                &event.event.id,
                traceparent,
                event.event.tracestate.as_deref(),
            );
            if let Some(cx) = span.context() {
                headers.insert("traceparent", cx.traceparent.as_str());
            }
            span
        }
        None => quorum_trace::Leaf::none(),
    };
    let message = PublishMessage::build()
        .headers(headers)
        .payload(payload)
        .message_id(&msg_id);
    let sent = js
        .send_publish(subject, message)
        .await
        .map(Ok)
        .map_err(|e| RelayError::JetStream(e.to_string()));
    // The send span covers handing the message to the server (the ack is awaited elsewhere).
    drop(span);
    sent
}
