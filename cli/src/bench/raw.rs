//! The baselines measured in the same run, on the same servers: what Postgres and JetStream do with
//! no Quorum code in the way.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use sqlx::PgPool;

use super::stats::rate;

/// Rows of `batch` inserted per statement by `writers` concurrent connections, like the event store's
/// rows (same columns and sizes), into a scratch table. Returns rows/s.
pub async fn postgres_batched(
    pool: &PgPool,
    total: u64,
    writers: u64,
    batch: u64,
    payload: &[u8],
) -> anyhow::Result<f64> {
    sqlx::query("DROP TABLE IF EXISTS bench_raw_events")
        .execute(pool)
        .await?;
    sqlx::query(
        "CREATE TABLE bench_raw_events (position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant text, stream_id text, stream_version bigint, event_id text, source text, type text,
            data bytea, attributes jsonb, UNIQUE (stream_id, stream_version), UNIQUE (source, event_id))",
    )
    .execute(pool)
    .await?;
    let per_writer = total / writers;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let pool = pool.clone();
        let payload = payload.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            while done < per_writer {
                let n = batch.min(per_writer - done);
                let ids: Vec<String> = (0..n).map(|_| uuid::Uuid::now_v7().to_string()).collect();
                let data: Vec<Vec<u8>> = (0..n).map(|_| payload.clone()).collect();
                let versions: Vec<i64> = (done..done + n).map(|v| v as i64 + 1).collect();
                sqlx::query(
                    "INSERT INTO bench_raw_events (tenant, stream_id, stream_version, event_id, source, type, data, attributes)
                     SELECT 'bench', $1, v, id, '/bench', 'bench.raw', d, '{\"specversion\":\"1.0\"}'::jsonb
                     FROM UNNEST($2::bigint[], $3::text[], $4::bytea[]) AS u(v, id, d)",
                )
                .bind(format!("bench/raw-{w}"))
                .bind(&versions)
                .bind(&ids)
                .bind(&data)
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
