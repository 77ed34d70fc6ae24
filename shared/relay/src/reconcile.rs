//! Where to resume publishing. JetStream's own last relayed message says how far publishing got: it
//! carries the relay's cursor in a header. Resuming from it neither repeats what the stream holds
//! (a leader that died between publish and checkpoint) nor skips what it lost (a NATS restart that
//! dropped unflushed data, or a deleted stream): Postgres refills the gap. See docs/adr/0003.

use async_nats::jetstream::{self, stream::RawMessageErrorKind};
use quorum_bus::{EVENTS_STREAM, ensure_streams};
use quorum_event_store::{CommitCursor, load_relay_checkpoint};
use sqlx::PgPool;
use tracing::{info, warn};

use crate::RelayError;

/// Header with the relay's safe cursor after this message (`tx_id:position`).
pub const CURSOR_HEADER: &str = "Quorum-Cursor";
/// Header with the event's position in the event store.
pub const POSITION_HEADER: &str = "Quorum-Position";

/// How far back to look past messages that are not the relay's (replays aimed at one consumer).
const MAX_SCAN: u64 = 10_000;

/// The point to resume from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resume {
    pub cursor: CommitCursor,
    pub stream_seq: u64,
    /// Set when the stream holds less than the relay recorded: events up to here are republished.
    pub republish_until: Option<CommitCursor>,
}

pub(crate) async fn resume_point(
    pool: &PgPool,
    js: &jetstream::Context,
    name: &str,
) -> Result<Resume, RelayError> {
    ensure_streams(js)
        .await
        .map_err(|e| RelayError::JetStream(crate::leader::error_chain(&e)))?;
    let stream = js
        .get_stream(EVENTS_STREAM)
        .await
        .map_err(|e| RelayError::JetStream(e.to_string()))?;
    let state = stream
        .get_info()
        .await
        .map_err(|e| RelayError::JetStream(e.to_string()))?
        .state;
    let mut found = None;
    let mut seq = state.last_sequence;
    let floor = state.first_sequence.max(1);
    while seq >= floor && state.messages > 0 && state.last_sequence - seq < MAX_SCAN {
        match stream.get_raw_message(seq).await {
            Ok(msg) => {
                if let Some(value) = msg.headers.get(CURSOR_HEADER) {
                    let cursor = value
                        .as_str()
                        .parse::<CommitCursor>()
                        .map_err(RelayError::JetStream)?;
                    found = Some((cursor, seq));
                    break;
                }
            }
            Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => {}
            Err(e) => return Err(RelayError::JetStream(e.to_string())),
        }
        seq -= 1;
    }
    let recorded = load_relay_checkpoint(pool, name).await?;
    let (last_relayed, stream_seq) = found.unwrap_or((CommitCursor::START, 0));
    // Sequences never go back on a stream; one behind the checkpoint's is a stream made anew
    // (a store wiped, a stream deleted and created again by whoever bound to it first). What it
    // holds was published after that, so it says nothing of what came before: publish again from
    // the start, up to whichever of its last message and the checkpoint is further.
    let remade = recorded.as_ref().is_some_and(|r| stream_seq < r.stream_seq);
    let cursor = if remade {
        CommitCursor::START
    } else {
        last_relayed
    };
    let republish_until = recorded
        .as_ref()
        .map(|r| r.cursor.max(last_relayed))
        .filter(|until| *until > cursor);
    match (&recorded, republish_until) {
        (Some(r), Some(_)) => warn!(
            relay = name,
            recorded_seq = r.stream_seq,
            stream_seq,
            from = %cursor,
            to = %r.cursor,
            "stream holds less than the relay published: republishing from postgres"
        ),
        _ => info!(relay = name, from = %cursor, stream_seq, "relay resuming"),
    }
    Ok(Resume {
        cursor,
        stream_seq,
        republish_until,
    })
}
