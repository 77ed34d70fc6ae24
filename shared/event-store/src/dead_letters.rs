//! Parking a message a consumer gave up on. The row is committed before the message is terminated in
//! JetStream: Postgres, not the DLQ stream, is where a dead letter lives.

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::StoreError;

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
}

/// Stores a dead letter. Idempotent per (consumer, subject, stream sequence): a consumer that crashes
/// after parking and before terminating parks the redelivered message once. Returns false when the
/// message was parked already.
pub async fn park_dead_letter(
    db: impl PgExecutor<'_>,
    letter: &DeadLetter,
) -> Result<bool, StoreError> {
    let first = letter.attempts.first().map_or_else(Utc::now, |a| a.at);
    let last = letter.attempts.last().map_or_else(Utc::now, |a| a.at);
    let errors: Vec<_> = letter
        .attempts
        .iter()
        .map(|a| json!({ "at": a.at, "error": a.error }))
        .collect();
    let done = sqlx::query(
        "INSERT INTO dead_letters (id, consumer, tenant, subject, stream_seq, event_id, event_type, headers,
                                   payload, errors, attempts, first_failed_at, last_failed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
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
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}
