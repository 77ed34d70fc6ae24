//! What the relay cannot publish is parked, not retried: a stored row that does not read as an
//! event, or an event NATS would refuse (a header it cannot carry, a message over its
//! `max_payload`). Retrying would stop the relay, and so every tenant, on one event forever
//! (docs/adr/0003). The letter is a dead letter of consumer `relay`, keyed by the event's position
//! in the store so that a relay that re-reads it after a restart parks it once.

use chrono::Utc;
use quorum_event_store::{DeadLetter, FailedAttempt, RecordedEvent, Unreadable, park_dead_letter};
use sqlx::PgPool;
use tracing::warn;
use uuid::Uuid;

use crate::RelayError;
use quorum_runtime::metrics as names;

/// The consumer name the relay's dead letters carry.
pub const CONSUMER: &str = "relay";

/// Parks a row that does not read as an event.
pub(crate) async fn unreadable(pool: &PgPool, row: &Unreadable) -> Result<(), RelayError> {
    let letter = DeadLetter {
        id: Uuid::now_v7(),
        consumer: CONSUMER.into(),
        tenant: row.tenant.as_ref().map(|t| t.as_str().to_owned()),
        subject: subject(row.stream_id.as_ref().map(|s| s.as_str())),
        stream_seq: Some(row.cursor.position as u64),
        event_id: None,
        event_type: None,
        headers: serde_json::json!({ "attributes": row.attributes }),
        payload: row.data.as_deref().unwrap_or_default().to_vec(),
        attempts: vec![FailedAttempt {
            at: Utc::now(),
            error: format!("unreadable: {}", row.reason),
        }],
        deliveries: 0,
        replayed_from: None,
    };
    park(pool, &letter, row.cursor.position).await
}

/// Parks an event NATS would refuse, saying why.
pub(crate) async fn unpublishable(
    pool: &PgPool,
    event: &RecordedEvent,
    why: &str,
) -> Result<(), RelayError> {
    let letter = DeadLetter {
        id: Uuid::now_v7(),
        consumer: CONSUMER.into(),
        tenant: Some(event.tenant.as_str().to_owned()),
        subject: subject(Some(event.stream_id.as_str())),
        stream_seq: Some(event.position as u64),
        event_id: Some(event.event.id.clone()),
        event_type: Some(event.event.ty.clone()),
        headers: event.event.attributes_json(),
        payload: event.event.data.as_deref().unwrap_or_default().to_vec(),
        attempts: vec![FailedAttempt {
            at: Utc::now(),
            error: format!("unpublishable: {why}"),
        }],
        deliveries: 0,
        replayed_from: None,
    };
    park(pool, &letter, event.position).await
}

/// Where the event was to go: its stream, by which an operator finds it.
fn subject(stream: Option<&str>) -> String {
    format!("store:{}", stream.unwrap_or("unknown"))
}

async fn park(pool: &PgPool, letter: &DeadLetter, position: i64) -> Result<(), RelayError> {
    let mut conn = pool.acquire().await?;
    if park_dead_letter(&mut conn, letter).await? {
        let error = letter.attempts.last().map_or("", |a| a.error.as_str());
        warn!(position, %error, "relay parked an event it cannot publish");
        metrics::counter!(names::DEAD_LETTERS_TOTAL, names::LABEL_CONSUMER => CONSUMER)
            .increment(1);
    }
    Ok(())
}
