//! Parking a message a consumer gave up on. The row is committed before the message is terminated in
//! JetStream: Postgres, not the DLQ stream, is where a dead letter lives. The same transaction
//! appends `quorum.dlq.parked`, so every park is in the event history (and the audit chain).

use bytes::Bytes;
use chrono::{DateTime, Utc};
use quorum_domain::{Event, StreamId, TenantId, types};
use serde_json::json;
use sqlx::{Acquire, PgConnection};
use uuid::Uuid;

use crate::{EventStore, ExpectedVersion, StoreError};

/// One failed attempt at handling a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailedAttempt {
    pub at: DateTime<Utc>,
    pub error: String,
}

/// A message parked for an operator.
#[derive(Clone, Debug)]
pub struct DeadLetter {
    pub id: Uuid,
    pub consumer: String,
    pub tenant: Option<String>,
    pub subject: String,
    pub stream_seq: Option<u64>,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    /// NATS headers, name to values.
    pub headers: serde_json::Value,
    pub payload: Vec<u8>,
    pub attempts: Vec<FailedAttempt>,
    /// How many times JetStream delivered the message.
    pub deliveries: u32,
    /// The dead letter this message was replayed from, if it was a replay: the new letter carries
    /// that one's errors before its own, so the whole history stays in one place.
    pub replayed_from: Option<Uuid>,
}

/// The stream of one dead letter's events (parked, replayed, discarded).
pub fn dead_letter_stream(id: Uuid) -> StreamId {
    StreamId::new("dlq", id).expect("a uuid is a valid stream id")
}

const SOURCE: &str = "/quorum/dlq";

/// Stores a dead letter and appends its `quorum.dlq.parked`, in one transaction. Idempotent per
/// (consumer, subject, stream sequence): a consumer that crashes after parking and before
/// terminating parks the redelivered message once. Returns false when it was parked already.
pub async fn park_dead_letter(
    db: &mut PgConnection,
    letter: &DeadLetter,
) -> Result<bool, StoreError> {
    let mut tx = db.begin().await?;
    let mut errors: Vec<serde_json::Value> = Vec::new();
    if let Some(from) = letter.replayed_from {
        let earlier: Option<serde_json::Value> =
            sqlx::query_scalar("SELECT errors FROM dead_letters WHERE id = $1")
                .bind(from)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(serde_json::Value::Array(earlier)) = earlier {
            errors.extend(earlier);
        }
    }
    errors.extend(
        letter
            .attempts
            .iter()
            .map(|a| json!({ "at": a.at, "error": a.error })),
    );
    let first = letter.attempts.first().map_or_else(Utc::now, |a| a.at);
    let last = letter.attempts.last().map_or_else(Utc::now, |a| a.at);
    let done = sqlx::query(
        "INSERT INTO dead_letters (id, consumer, tenant, subject, stream_seq, event_id, event_type, headers,
                                   payload, errors, attempts, first_failed_at, last_failed_at, replayed_from)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (consumer, subject, stream_seq) DO NOTHING",
    )
    .bind(letter.id)
    .bind(&letter.consumer)
    .bind(&letter.tenant)
    .bind(&letter.subject)
    .bind(letter.stream_seq.map(|s| s as i64))
    .bind(&letter.event_id)
    .bind(&letter.event_type)
    .bind(&letter.headers)
    .bind(&letter.payload)
    .bind(serde_json::Value::Array(errors))
    .bind(letter.deliveries as i32)
    .bind(first)
    .bind(last)
    .bind(letter.replayed_from)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    let stream = dead_letter_stream(letter.id);
    let tenant = letter
        .tenant
        .as_deref()
        .and_then(|t| TenantId::new(t).ok())
        .unwrap_or_else(TenantId::system);
    let data = json!({
        "dead_letter_id": letter.id,
        "consumer": letter.consumer,
        "subject": letter.subject,
        "event_id": letter.event_id,
        "event_type": letter.event_type,
        "deliveries": letter.deliveries,
        "error": letter.attempts.last().map(|a| a.error.as_str()),
        "replayed_from": letter.replayed_from,
    });
    let mut event = Event::new(
        SOURCE,
        types::DLQ_PARKED,
        stream.clone(),
        tenant,
        Bytes::from(data.to_string()),
    );
    event.id = letter.id.to_string();
    // A letter may be parked because its event id cannot travel as a header: then the notice
    // goes without it, or it would be unpublishable in turn.
    event.correlationid = letter
        .event_id
        .clone()
        .filter(|id| id.len() <= 256 && !id.chars().any(char::is_control));
    EventStore::append_in(&mut tx, &stream, ExpectedVersion::NoStream, &[event]).await?;
    tx.commit().await?;
    Ok(true)
}
