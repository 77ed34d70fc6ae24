//! The baselines measured in the same run, on the same servers: what Postgres and JetStream do with
//! no Quorum code in the way.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use quorum_domain::Event;
use sqlx::PgPool;

use super::stats::rate;

/// The event the raw baselines write: 256 bytes of data, as `bench pipeline` prices a row.
pub fn sample_event() -> anyhow::Result<Event> {
    Ok(Event::new(
        "/bench",
        "com.example.bench",
        quorum_domain::StreamId::new("bench", "sample")?,
        quorum_domain::TenantId::new("bench")?,
        Bytes::from(vec![b'x'; 256]),
    ))
}

/// A pool with a connection for each of `writers`, all opened before the clock starts.
pub async fn writers_pool(database_url: &str, writers: u64) -> anyhow::Result<PgPool> {
    let writers = u32::try_from(writers.max(1))?;
    Ok(sqlx::postgres::PgPoolOptions::new()
        .max_connections(writers)
        .min_connections(writers)
        .connect(database_url)
        .await?)
}

/// The same rows the event store writes (same table shape, indexes and constraints, same data and
/// attributes), `batch` per INSERT from `writers` connections, with none of Quorum's logic: no version
/// check, no idempotency lookups, no notify. Returns rows/s.
pub async fn postgres_batched(
    pool: &PgPool,
    total: u64,
    writers: u64,
    batch: u64,
    sample: &Event,
) -> anyhow::Result<f64> {
    sqlx::query("DROP TABLE IF EXISTS bench_raw_events")
        .execute(pool)
        .await?;
    // LIKE ... INCLUDING ALL copies columns, defaults, identity, constraints and indexes, not triggers.
    sqlx::query("CREATE TABLE bench_raw_events (LIKE events INCLUDING ALL)")
        .execute(pool)
        .await?;
    let per_writer = total / writers;
    let attributes = sample.attributes_json().to_string();
    let data = sample.data.clone().unwrap_or_default().to_vec();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (pool, attributes, data) = (pool.clone(), attributes.clone(), data.clone());
        let tenant = sample
            .tenant
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let (source, ty) = (sample.source.clone(), sample.ty.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            while done < per_writer {
                let n = batch.min(per_writer - done);
                let ids: Vec<String> = (0..n).map(|_| uuid::Uuid::now_v7().to_string()).collect();
                let rows: Vec<Vec<u8>> = (0..n).map(|_| data.clone()).collect();
                let attrs: Vec<String> = (0..n).map(|_| attributes.clone()).collect();
                let versions: Vec<i64> = (done..done + n).map(|v| v as i64 + 1).collect();
                sqlx::query(
                    "INSERT INTO bench_raw_events (tenant, stream_id, stream_version, event_id, source, type, data,
                                                   datacontenttype, attributes, occurred_at)
                     SELECT $1, $2, u.v, u.id, $3, $4, u.d, 'application/json', u.a::jsonb, now()
                     FROM UNNEST($5::bigint[], $6::text[], $7::bytea[], $8::text[]) AS u(v, id, d, a)",
                )
                .bind(&tenant)
                .bind(format!("bench/raw-{w}"))
                .bind(&source)
                .bind(&ty)
                .bind(&versions)
                .bind(&ids)
                .bind(&rows)
                .bind(&attrs)
                .execute(&pool)
                .await?;
                done += n;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed();
    sqlx::query("DROP TABLE bench_raw_events")
        .execute(pool)
        .await?;
    Ok(rate(per_writer * writers, elapsed))
}

/// One row per INSERT, each its own commit, from `connections` connections: what a service doing
/// one write per request gets from Postgres. Returns rows/s.
pub async fn postgres_single(
    pool: &PgPool,
    total: u64,
    connections: u64,
    sample: &Event,
) -> anyhow::Result<f64> {
    sqlx::query("DROP TABLE IF EXISTS bench_raw_single")
        .execute(pool)
        .await?;
    sqlx::query("CREATE TABLE bench_raw_single (LIKE events INCLUDING ALL)")
        .execute(pool)
        .await?;
    let per_connection = total / connections;
    let attributes = sample.attributes_json().to_string();
    let data = sample.data.clone().unwrap_or_default().to_vec();
    let tenant = sample
        .tenant
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (pool, attributes, data, tenant) = (
            pool.clone(),
            attributes.clone(),
            data.clone(),
            tenant.clone(),
        );
        let (source, ty) = (sample.source.clone(), sample.ty.clone());
        tasks.push(tokio::spawn(async move {
            for v in 1..=per_connection {
                sqlx::query(
                    "INSERT INTO bench_raw_single (tenant, stream_id, stream_version, event_id, source, type,
                                                   data, datacontenttype, attributes, occurred_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'application/json', $8::jsonb, now())",
                )
                .bind(&tenant)
                .bind(format!("bench/single-{c}"))
                .bind(v as i64)
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(&source)
                .bind(&ty)
                .bind(&data)
                .bind(&attributes)
                .execute(&pool)
                .await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = started.elapsed();
    sqlx::query("DROP TABLE bench_raw_single")
        .execute(pool)
        .await?;
    Ok(rate(per_connection * connections, elapsed))
}

/// Pipelined JetStream publishes (acks awaited in order, as the relay does) into a scratch stream.
/// Returns msgs/s.
pub async fn jetstream_pipelined(
    js: &jetstream::Context,
    total: u64,
    payload: &[u8],
) -> anyhow::Result<f64> {
    let name = "QUORUM_BENCH_RAW";
    let _ = js.delete_stream(name).await;
    js.create_stream(stream::Config {
        name: name.into(),
        subjects: vec!["quorum.bench.raw".into()],
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await?;
    let payload = Bytes::copy_from_slice(payload);
    let started = Instant::now();
    let mut pending = std::collections::VecDeque::new();
    for i in 0..total {
        let msg = jetstream::message::PublishMessage::build()
            .payload(payload.clone())
            .message_id(i.to_string());
        pending.push_back(js.send_publish("quorum.bench.raw", msg).await?);
        if pending.len() >= 1000 {
            pending.pop_front().expect("non-empty").await?;
        }
    }
    for ack in pending {
        ack.await?;
    }
    let elapsed = started.elapsed();
    js.delete_stream(name).await?;
    Ok(rate(total, elapsed))
}
