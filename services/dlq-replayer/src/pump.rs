//! The replay pump: publishes the letters operators asked to replay, at each job's rate, to the
//! redeliver subject of the consumer that parked them (`quorum.redeliver.<consumer>.…`), so only that
//! consumer sees them again. The letters' `replaying` status is the outbox: a letter is marked
//! `replayed` only after JetStream acked it, so a crash republishes at worst, and the message id
//! (`replay:<job>:<letter>`) makes JetStream drop such a republish within its duplicate window;
//! past it, the consumer's idempotent handler absorbs it.
//!
//! One pump publishes at a time (a session advisory lock, which holds no snapshot and so never holds
//! back the relay's watermark), so a job's rate holds however many replicas run.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use quorum_bus::{headers_from_json, subjects};
use quorum_domain::TenantId;
use quorum_runtime::consumer::REPLAY_OF_HEADER;
use quorum_runtime::leader::{Election, still_leader};
use sqlx::{PgPool, Row};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const LOCK: &str = "quorum-dlq-replay-pump";
const BATCH: i64 = 200;

/// Metric: letters published again.
pub const REPLAYED_TOTAL: &str = "quorum_dlq_replayed_total";

/// Runs the pump until `shutdown`, one leader across replicas (the runtime's election helper). A
/// leader publishes until no letter waits, then lets go, so that another replica may lead next.
pub async fn run(
    pool: PgPool,
    js: jetstream::Context,
    poll: Duration,
    shutdown: CancellationToken,
) {
    let election = Election {
        role: "dead-letter pump",
        lock: LOCK.to_owned(),
        retry: poll,
    };
    election
        .run(pool.clone(), shutdown.clone(), move |mut lock| {
            let (pool, js, shutdown) = (pool.clone(), js.clone(), shutdown.clone());
            async move {
                let mut limiters = HashMap::new();
                while !shutdown.is_cancelled() {
                    still_leader(&mut lock).await?;
                    if step(&pool, &js, &mut limiters, &shutdown).await? == 0 {
                        break;
                    }
                }
                Ok(())
            }
        })
        .await;
}

/// Publishes one batch of the oldest job's letters; returns how many it published.
async fn step(
    pool: &PgPool,
    js: &jetstream::Context,
    limiters: &mut HashMap<Uuid, Arc<DefaultDirectRateLimiter>>,
    shutdown: &CancellationToken,
) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    let rows = sqlx::query(
        "SELECT d.id, d.consumer, d.tenant, d.subject, d.event_id, d.event_type, d.headers, d.payload,
                d.replay_job, j.rate
         FROM dead_letters d JOIN replay_jobs j ON j.id = d.replay_job
         WHERE d.status = 'replaying'
           AND d.replay_job = (SELECT replay_job FROM dead_letters WHERE status = 'replaying'
                               ORDER BY replay_job LIMIT 1)
         ORDER BY d.id LIMIT $1",
    )
    .bind(BATCH)
    .fetch_all(pool)
    .await?;
    let Some(first) = rows.first() else {
        return Ok(0);
    };
    let job: Uuid = first.try_get("replay_job")?;
    let rate: f64 = first.try_get("rate")?;
    let limiter = limiters
        .entry(job)
        .or_insert_with(|| Arc::new(limiter(rate)))
        .clone();
    let mut acks = Vec::with_capacity(rows.len());
    let mut ids = Vec::with_capacity(rows.len());
    for r in &rows {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = limiter.until_ready() => {}
        }
        let id: Uuid = r.try_get("id")?;
        let mut headers = headers_from_json(&r.try_get("headers")?);
        // Replaces the original message id, which would make JetStream take the replay for the
        // original.
        headers.insert("Nats-Msg-Id", format!("replay:{job}:{id}").as_str());
        headers.insert(REPLAY_OF_HEADER, id.to_string().as_str());
        if let Some(event_id) = r.try_get::<Option<String>, _>("event_id")? {
            headers.insert("ce-replayof", event_id.as_str());
        }
        let payload: Vec<u8> = r.try_get("payload")?;
        let subject = target_subject(
            r.try_get("consumer")?,
            r.try_get("tenant")?,
            r.try_get("event_type")?,
            r.try_get("subject")?,
        );
        acks.push(
            js.publish_with_headers(subject, headers, payload.into())
                .await?,
        );
        ids.push(id);
    }
    for ack in acks {
        ack.await?;
    }
    if ids.is_empty() {
        return Ok(0);
    }
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "UPDATE dead_letters SET status = 'replayed', replayed_at = now()
         WHERE id = ANY($1) AND status = 'replaying'",
    )
    .bind(&ids)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query(
        "UPDATE replay_jobs SET done = done + $2, updated_at = now(),
                status = CASE WHEN done + $2 >= total THEN 'completed' ELSE status END
         WHERE id = $1",
    )
    .bind(job)
    .bind(done as i64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    ::metrics::counter!(REPLAYED_TOTAL).increment(done);
    if (rows.len() as i64) < BATCH && ids.len() == rows.len() {
        limiters.remove(&job);
    }
    Ok(ids.len())
}

/// Where a letter goes back to: the redeliver subject of its consumer on the events stream, or, for
/// a letter of the ingest work queue (which has no redeliver subject), the subject it came on.
fn target_subject(
    consumer: String,
    tenant: Option<String>,
    ty: Option<String>,
    subject: String,
) -> String {
    if subject.starts_with("quorum.ingest.") {
        return subject;
    }
    let tenant = tenant
        .and_then(|t| TenantId::new(t).ok())
        .unwrap_or_else(TenantId::system);
    subjects::redeliver(&consumer, &tenant, ty.as_deref().unwrap_or("_"))
}

/// A limiter of `rate` per second with no burst beyond one, so the rate holds from the first letter.
fn limiter(rate: f64) -> DefaultDirectRateLimiter {
    let period = Duration::from_secs_f64(1.0 / rate);
    let quota = Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
        .allow_burst(NonZeroU32::MIN);
    RateLimiter::direct(quota)
}
