//! The baselines measured in the same run, on the same servers: what Postgres and JetStream do with
//! no Quorum code in the way.

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use quorum_domain::Event;
use sqlx::PgPool;

use super::stats::rate;

mod jetstream;
mod links;
mod reads;

pub use jetstream::{DeliveryStream, jetstream_pipelined};
pub use links::audit_links_batched;
pub use reads::ReadTable;

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

/// Runs `work(i)` for each of `n` tasks at once; returns how long they took, all of them.
async fn timed_tasks<F, Fut>(n: u64, work: F) -> anyhow::Result<Duration>
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(work(i))).collect();
    for t in tasks {
        t.await??;
    }
    Ok(started.elapsed())
}

/// The columns of a sample event, as the raw inserts bind them.
#[derive(Clone)]
struct SampleRow {
    tenant: String,
    source: String,
    ty: String,
    data: Bytes,
    attributes: std::sync::Arc<str>,
}

impl SampleRow {
    fn of(sample: &Event) -> Self {
        Self {
            tenant: sample
                .tenant
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            source: sample.source.clone(),
            ty: sample.ty.clone(),
            data: sample.data.clone().unwrap_or_default(),
            attributes: sample.attributes_json().to_string().into(),
        }
    }
}

/// A scratch table made afresh in the shape of `like` (columns, defaults, identity, constraints
/// and indexes; not triggers). Both names are the bench's own constants.
async fn scratch_table(
    pool: &PgPool,
    table: &'static str,
    like: &'static str,
) -> anyhow::Result<()> {
    drop_table(pool, table).await?;
    let sql = format!("CREATE TABLE {table} (LIKE {like} INCLUDING ALL)");
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
    Ok(())
}

/// Drops a scratch table, named by one of the bench's constants.
async fn drop_table(pool: &PgPool, table: &'static str) -> anyhow::Result<()> {
    let sql = format!("DROP TABLE IF EXISTS {table}");
    sqlx::query(sqlx::AssertSqlSafe(sql)).execute(pool).await?;
    Ok(())
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
    scratch_table(pool, "bench_raw_events", "events").await?;
    let per_writer = total / writers;
    let row = SampleRow::of(sample);
    let elapsed = timed_tasks(writers, |w| {
        let (pool, row) = (pool.clone(), row.clone());
        async move {
            let mut done = 0;
            while done < per_writer {
                let n = batch.min(per_writer - done);
                let ids: Vec<String> = (0..n).map(|_| uuid::Uuid::now_v7().to_string()).collect();
                let rows: Vec<&[u8]> = (0..n).map(|_| &row.data[..]).collect();
                let attrs: Vec<&str> = (0..n).map(|_| &row.attributes[..]).collect();
                let versions: Vec<i64> = (done..done + n).map(|v| v as i64 + 1).collect();
                sqlx::query(
                    "INSERT INTO bench_raw_events (tenant, stream_id, stream_version, event_id, source, type, data,
                                                   datacontenttype, attributes, occurred_at)
                     SELECT $1, $2, u.v, u.id, $3, $4, u.d, 'application/json', u.a::jsonb, now()
                     FROM UNNEST($5::bigint[], $6::text[], $7::bytea[], $8::text[]) AS u(v, id, d, a)",
                )
                .bind(&row.tenant)
                .bind(format!("bench/raw-{w}"))
                .bind(&row.source)
                .bind(&row.ty)
                .bind(&versions)
                .bind(&ids)
                .bind(&rows)
                .bind(&attrs)
                .execute(&pool)
                .await?;
                done += n;
            }
            Ok(())
        }
    })
    .await?;
    drop_table(pool, "bench_raw_events").await?;
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
    scratch_table(pool, "bench_raw_single", "events").await?;
    let per_connection = total / connections;
    let row = SampleRow::of(sample);
    let elapsed = timed_tasks(connections, |c| {
        let (pool, row) = (pool.clone(), row.clone());
        async move {
            for v in 1..=per_connection {
                sqlx::query(
                    "INSERT INTO bench_raw_single (tenant, stream_id, stream_version, event_id, source, type,
                                                   data, datacontenttype, attributes, occurred_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'application/json', $8::jsonb, now())",
                )
                .bind(&row.tenant)
                .bind(format!("bench/single-{c}"))
                .bind(v as i64)
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(&row.source)
                .bind(&row.ty)
                .bind(&row.data[..])
                .bind(&row.attributes[..])
                .execute(&pool)
                .await?;
            }
            Ok(())
        }
    })
    .await?;
    drop_table(pool, "bench_raw_single").await?;
    Ok(rate(per_connection * connections, elapsed))
}
