//! The one place where acks happen: a handler's outcome becomes an ack, a nak with delay, or a dead
//! letter committed to Postgres followed by a notice on the DLQ stream and a terminate.
//!
//! Order matters. The ack comes after the handler's commit (the handler returns only then), so a crash
//! between the two redelivers a message whose effects are stored, and the idempotent append makes the
//! second run a no-op. The dead letter is committed before the terminate, so a crash between them
//! parks the message twice at worst (the insert is idempotent), never zero times.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use chrono::Utc;
use quorum_bus::{headers_json, subjects};
use quorum_domain::Event;
use quorum_event_store::{DeadLetter, FailedAttempt, park_dead_letter};
use sqlx::{PgPool, Row};
use tracing::{debug, error, info, warn};

use super::Outcome;
use crate::metrics as names;

/// Where settling needs to reach.
pub(crate) struct Settler {
    pub js: jetstream::Context,
    pub pool: PgPool,
    pub consumer: String,
    pub max_deliver: u32,
    /// Whether parking publishes a notice on the DLQ stream.
    pub notify: bool,
}

/// The header a replayed dead letter carries: the id of the letter it was replayed from.
pub const REPLAY_OF_HEADER: &str = "Quorum-Replay-Of";

/// When parking fails (Postgres down), the message is redelivered after this rather than terminated.
const PARK_RETRY: Duration = Duration::from_secs(5);

/// When a message held for an unreachable store is given back at shutdown, it is redelivered
/// after this, to another replica or this one restarted.
const HOLD_GIVE_BACK: Duration = Duration::from_secs(1);

impl Settler {
    /// Acts on `outcome` for `msg`. `event` is the decoded event, if the message decoded.
    pub(crate) async fn settle(
        &self,
        msg: &jetstream::Message,
        event: Option<&Event>,
        outcome: Outcome,
        stream_seq: u64,
        delivered: u32,
    ) -> &'static str {
        match outcome {
            Outcome::Done => {
                // Not confirmed (no double ack): the server's answer would cost a message and hold
                // the lane for a round trip per delivery, and would change nothing, since a lost
                // ack means a redelivery, which the idempotent handler absorbs (ADR 38).
                if let Err(e) = msg.ack().await {
                    warn!(consumer = %self.consumer, stream_seq, error = %e, "ack not sent; expect a redelivery");
                }
                names::OUTCOME_DONE
            }
            Outcome::Retry { after, error } => {
                self.record_attempt(stream_seq, delivered, &error).await;
                if delivered >= self.max_deliver {
                    let reason = format!("gave up after {delivered} deliveries: {error}");
                    return self.park(msg, event, stream_seq, delivered, reason).await;
                }
                info!(consumer = %self.consumer, stream_seq, delivered, error = %error, "handler will retry");
                if let Err(e) = msg.ack_with(AckKind::Nak(Some(after))).await {
                    warn!(consumer = %self.consumer, stream_seq, error = %e, "nak failed; redelivery after ack_wait");
                }
                names::OUTCOME_RETRY
            }
            Outcome::Wait { after, reason } => {
                if delivered >= self.max_deliver {
                    let reason = format!("still waiting after {delivered} deliveries: {reason}");
                    return self.park(msg, event, stream_seq, delivered, reason).await;
                }
                debug!(consumer = %self.consumer, stream_seq, delivered, reason = %reason, "waits its turn");
                if let Err(e) = msg.ack_with(AckKind::Nak(Some(after))).await {
                    warn!(consumer = %self.consumer, stream_seq, error = %e, "nak failed; redelivery after ack_wait");
                }
                names::OUTCOME_WAIT
            }
            Outcome::Unavailable { reason } => {
                // Settled only when a shutdown ended the hold (`lanes`): given back, counted
                // against nothing but JetStream's deliveries.
                debug!(consumer = %self.consumer, stream_seq, reason = %reason, "given back while the store is unreachable");
                if let Err(e) = msg.ack_with(AckKind::Nak(Some(HOLD_GIVE_BACK))).await {
                    warn!(consumer = %self.consumer, stream_seq, error = %e, "nak failed; redelivery after ack_wait");
                }
                names::OUTCOME_UNAVAILABLE
            }
            Outcome::Dead { error } => {
                self.record_attempt(stream_seq, delivered, &error).await;
                self.park(msg, event, stream_seq, delivered, error).await
            }
        }
    }

    async fn record_attempt(&self, stream_seq: u64, delivered: u32, error: &str) {
        let result = sqlx::query(
            "INSERT INTO failed_attempts (consumer, stream_seq, delivered, error) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
        )
        .bind(&self.consumer)
        .bind(stream_seq as i64)
        .bind(delivered as i32)
        .bind(error)
        .execute(&self.pool)
        .await;
        if let Err(e) = result {
            warn!(consumer = %self.consumer, stream_seq, error = %e, "could not record a failed attempt");
        }
    }

    async fn attempts(&self, stream_seq: u64) -> Result<Vec<FailedAttempt>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT error, failed_at FROM failed_attempts WHERE consumer = $1 AND stream_seq = $2 ORDER BY delivered",
        )
        .bind(&self.consumer)
        .bind(stream_seq as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FailedAttempt {
                    at: r.try_get("failed_at")?,
                    error: r.try_get("error")?,
                })
            })
            .collect()
    }

    async fn park(
        &self,
        msg: &jetstream::Message,
        event: Option<&Event>,
        stream_seq: u64,
        delivered: u32,
        reason: String,
    ) -> &'static str {
        let mut attempts = self.attempts(stream_seq).await.unwrap_or_default();
        // Every path records its attempt before parking; the reason stands alone only if that record
        // could not be read back.
        if attempts.is_empty() {
            attempts.push(FailedAttempt {
                at: Utc::now(),
                error: reason.clone(),
            });
        }
        // Every letter has a tenant whose operators can reach it (ADR 21).
        let tenant = subjects::letter_tenant(&msg.subject, event.and_then(|e| e.tenant.as_ref()));
        let letter = DeadLetter {
            id: uuid::Uuid::now_v7(),
            consumer: self.consumer.clone(),
            tenant: Some(tenant.to_string()),
            subject: msg.subject.to_string(),
            stream_seq: Some(stream_seq),
            event_id: event.map(|e| e.id.clone()),
            event_type: event.map(|e| e.ty.clone()),
            headers: headers_json(msg.headers.as_ref()),
            payload: msg.payload.to_vec(),
            attempts,
            deliveries: delivered,
            replayed_from: msg
                .headers
                .as_ref()
                .and_then(|h| h.get(REPLAY_OF_HEADER))
                .and_then(|v| v.as_str().parse().ok()),
        };
        let parked = match self.pool.acquire().await {
            Ok(mut conn) => park_dead_letter(&mut conn, &letter).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = parked {
            // Not parked, so not terminated: the message stays in JetStream and comes back.
            error!(consumer = %self.consumer, stream_seq, error = %e, "cannot park dead letter; will retry");
            let _ = msg.ack_with(AckKind::Nak(Some(PARK_RETRY))).await;
            return names::OUTCOME_RETRY;
        }
        warn!(consumer = %self.consumer, stream_seq, reason = %reason, "message parked as a dead letter");
        ::metrics::counter!(names::DEAD_LETTERS_TOTAL, names::LABEL_CONSUMER => self.consumer.clone())
            .increment(1);
        // The notice only tells the dlq-replayer; the row above is the dead letter. A consumer of the
        // notices gets none of its own, which would otherwise feed back into it.
        if !self.notify {
            return self.terminate(msg, stream_seq).await;
        }
        let mut headers = msg.headers.clone().unwrap_or_default();
        headers.insert("Quorum-Dead-Letter-Id", letter.id.to_string().as_str());
        headers.insert(
            "Quorum-Error",
            reason.chars().take(512).collect::<String>().as_str(),
        );
        let notice = self
            .js
            .publish_with_headers(
                subjects::dlq(&self.consumer, Some(&tenant)),
                headers,
                msg.payload.clone(),
            )
            .await;
        match notice {
            Ok(ack) => {
                if let Err(e) = ack.await {
                    warn!(consumer = %self.consumer, error = %e, "dead-letter notice not confirmed");
                }
            }
            Err(e) => warn!(consumer = %self.consumer, error = %e, "dead-letter notice not sent"),
        }
        self.terminate(msg, stream_seq).await
    }

    async fn terminate(&self, msg: &jetstream::Message, stream_seq: u64) -> &'static str {
        if let Err(e) = msg.double_ack_with(AckKind::Term).await {
            warn!(consumer = %self.consumer, stream_seq, error = %e, "terminate not confirmed; a redelivery parks once");
        }
        names::OUTCOME_DEAD
    }
}

/// Hands back a message that was fetched but never started (shutdown): redelivered at once, to
/// whichever replica asks next, instead of after `ack_wait`.
pub(crate) async fn give_back(msg: &jetstream::Message) {
    let _ = msg.ack_with(AckKind::Nak(None)).await;
}

/// Tells JetStream a message is still being handled, so `ack_wait` starts again. Best effort: a lost
/// one at worst lets the message be redelivered, which handlers absorb.
pub(crate) async fn in_progress(msg: &jetstream::Message) {
    let _ = msg.ack_with(AckKind::Progress).await;
}
