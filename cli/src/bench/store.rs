//! `quorum bench store`: events appended through the event store by concurrent writers, relayed to
//! JetStream and received by a consumer, beside raw Postgres and raw JetStream on the same servers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use bytes::Bytes;
use chrono::Utc;
use futures::StreamExt;
use quorum_domain::{Event, StreamId, TenantId};
use quorum_event_store::{EventStore, ExpectedVersion};
use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::raw;
use super::stats::{Samples, rate, ratio};

/// What to measure.
#[derive(Clone, Debug, clap::Args)]
pub struct StoreBenchArgs {
    /// Events appended in the throughput phase.
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    /// Concurrent writers.
    #[arg(long, default_value_t = 8)]
    pub writers: u64,
    /// Events per append.
    #[arg(long, default_value_t = 100)]
    pub batch: u64,
    /// Data bytes per event.
    #[arg(long, default_value_t = 256)]
    pub payload: usize,
    /// Rate of the lag phase, events/s.
    #[arg(long, default_value_t = 5_000)]
    pub paced_rate: u64,
    /// Length of the lag phase.
    #[arg(long, default_value_t = 5)]
    pub paced_seconds: u64,
    /// Events the relay reads and publishes per batch.
    #[arg(long, default_value_t = 1000)]
    pub relay_batch: i64,
}

/// The figures, printed as a table or as one JSON object.
#[derive(Debug, Serialize)]
pub struct StoreReport {
    pub events: u64,
    pub writers: u64,
    pub batch: u64,
    pub append_alone_events_per_sec: f64,
    pub append_events_per_sec: f64,
    pub visible_events_per_sec: f64,
    pub relay_drain_events_per_sec: f64,
    pub paced_rate: u64,
    pub relay_lag_p50_ms: f64,
    pub relay_lag_p99_ms: f64,
    pub raw_postgres_batched_rows_per_sec: f64,
    pub raw_jetstream_publish_msgs_per_sec: f64,
    pub ratio_append_alone_to_raw_postgres: f64,
    pub ratio_visible_to_raw_postgres: f64,
    pub ratio_visible_to_raw_jetstream: f64,
}

pub(super) struct Receiver {
    pub(super) received: Arc<AtomicU64>,
    pub(super) last_at: Arc<Mutex<Instant>>,
    pub(super) lags: Arc<Mutex<Samples>>,
    pub(super) task: tokio::task::JoinHandle<()>,
}

/// Counts bench events arriving on JetStream and samples their lag (event time to receipt).
pub(super) async fn receive(
    js: &jetstream::Context,
    tenant: &TenantId,
) -> anyhow::Result<Receiver> {
    let stream = js.get_stream(quorum_bus::EVENTS_STREAM).await?;
    let consumer: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::New,
            ack_policy: consumer::AckPolicy::None,
            filter_subject: format!("quorum.evt.{tenant}.>"),
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        })
        .await?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(1000)
        .messages()
        .await?;
    let received = Arc::new(AtomicU64::new(0));
    let last_at = Arc::new(Mutex::new(Instant::now()));
    let lags = Arc::new(Mutex::new(Samples::default()));
    let (r, l, s) = (received.clone(), last_at.clone(), lags.clone());
    let task = tokio::spawn(async move {
        while let Some(Ok(msg)) = messages.next().await {
            let now = Utc::now();
            // Only the event time is read: the consumer measures the pipeline, it must not load it.
            if let Some(t) = msg.headers.as_ref().and_then(|h| h.get("ce-time"))
                && let Ok(t) = chrono::DateTime::parse_from_rfc3339(t.as_str())
            {
                let lag = now - t.with_timezone(&Utc);
                s.lock().await.push(lag.to_std().unwrap_or_default());
            }
            r.fetch_add(1, Ordering::Relaxed);
            *l.lock().await = Instant::now();
        }
    });
    Ok(Receiver {
        received,
        last_at,
        lags,
        task,
    })
}

pub(super) async fn wait_for(received: &AtomicU64, n: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while received.load(Ordering::Relaxed) < n {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {n} events arrived",
            received.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// `args.writers` writers, each appending `args.events / args.writers` events in batches to a stream of
/// its own (version-checked, as services append). Returns how long it took.
async fn append_concurrently(
    store: &EventStore,
    args: &StoreBenchArgs,
    tenant: &TenantId,
    prefix: &str,
    payload: &Bytes,
) -> anyhow::Result<Duration> {
    let per_writer = args.events / args.writers;
    let started = Instant::now();
    let mut writers = Vec::new();
    for w in 0..args.writers {
        let (store, tenant, payload) = (store.clone(), tenant.clone(), payload.clone());
        let stream = StreamId::new("bench", format!("{prefix}-{w}"))?;
        let batch = args.batch;
        writers.push(tokio::spawn(async move {
            let mut version = 0;
            while version < per_writer {
                let n = batch.min(per_writer - version);
                let batch = events(&tenant, &stream, n, &payload);
                store
                    .append(&stream, ExpectedVersion::Exact(version), &batch)
                    .await?;
                version += n;
            }
            anyhow::Ok(())
        }));
    }
    for w in writers {
        w.await??;
    }
    Ok(started.elapsed())
}

fn events(tenant: &TenantId, stream: &StreamId, n: u64, payload: &Bytes) -> Vec<Event> {
    (0..n)
        .map(|_| {
            Event::new(
                "/quorum/bench",
                "quorum.bench.appended",
                stream.clone(),
                tenant.clone(),
                payload.clone(),
            )
        })
        .collect()
}

pub async fn run(
    pool: &PgPool,
    js: &jetstream::Context,
    args: &StoreBenchArgs,
) -> anyhow::Result<StoreReport> {
    let store = EventStore::new(pool.clone());
    let tenant = TenantId::new("bench")?;
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let payload = Bytes::from(vec![b'x'; args.payload]);
    quorum_bus::ensure_streams(js).await?;

    // Baselines first, while the relay is idle.
    let sample = events(&tenant, &StreamId::new("bench", "sample")?, 1, &payload).remove(0);
    let raw_pg = raw::postgres_batched(pool, args.events, args.writers, 100, &sample).await?;
    let raw_js = raw::jetstream_pipelined(js, args.events, &sample).await?;

    let receiver = receive(js, &tenant).await?;

    // Append alone: the same writers and batches, no relay running.
    let total = (args.events / args.writers) * args.writers;
    let alone =
        append_concurrently(&store, args, &tenant, &format!("{run_id}-alone"), &payload).await?;

    // Relay alone: drains that backlog.
    let drain_started = Instant::now();
    let shutdown = CancellationToken::new();
    let config = quorum_relay::RelayConfig {
        batch_size: args.relay_batch,
        ..Default::default()
    };
    let relay = tokio::spawn(quorum_relay::run(
        pool.clone(),
        js.clone(),
        config,
        shutdown.clone(),
    ));
    wait_for(&receiver.received, total).await?;
    let drain = rate(
        total,
        receiver.last_at.lock().await.duration_since(drain_started),
    );
    receiver.received.store(0, Ordering::Relaxed);

    // End to end: appends while the relay publishes, until a consumer has seen every event.
    let started = Instant::now();
    let append_elapsed =
        append_concurrently(&store, args, &tenant, &format!("{run_id}-e2e"), &payload).await?;
    wait_for(&receiver.received, total).await?;
    let visible_elapsed = receiver.last_at.lock().await.duration_since(started);

    // Lag at a steady rate: 100 appends a second.
    *receiver.lags.lock().await = Samples::default();
    let per_tick = (args.paced_rate / 100).max(1);
    let ticks = args.paced_seconds * 100;
    let stream = StreamId::new("bench", format!("{run_id}-paced"))?;
    let mut interval = tokio::time::interval(Duration::from_millis(10));
    let mut version = 0;
    for _ in 0..ticks {
        interval.tick().await;
        store
            .append(
                &stream,
                ExpectedVersion::Exact(version),
                &events(&tenant, &stream, per_tick, &payload),
            )
            .await?;
        version += per_tick;
    }
    wait_for(&receiver.received, total + version).await?;
    let mut lags = std::mem::take(&mut *receiver.lags.lock().await);

    shutdown.cancel();
    relay.await?;
    receiver.task.abort();
    let visible = rate(total, visible_elapsed);
    Ok(StoreReport {
        events: total,
        writers: args.writers,
        batch: args.batch,
        append_alone_events_per_sec: rate(total, alone).round(),
        append_events_per_sec: rate(total, append_elapsed).round(),
        relay_drain_events_per_sec: drain.round(),
        visible_events_per_sec: visible.round(),
        paced_rate: per_tick * 100,
        relay_lag_p50_ms: lags.percentile(50.0),
        relay_lag_p99_ms: lags.percentile(99.0),
        raw_postgres_batched_rows_per_sec: raw_pg.round(),
        raw_jetstream_publish_msgs_per_sec: raw_js.round(),
        ratio_append_alone_to_raw_postgres: ratio(rate(total, alone), raw_pg),
        ratio_visible_to_raw_postgres: ratio(visible, raw_pg),
        ratio_visible_to_raw_jetstream: ratio(visible, raw_js),
    })
}

impl std::fmt::Display for StoreReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "store + relay: {} events, {} writers, {} events per append",
            self.events, self.writers, self.batch
        )?;
        writeln!(
            f,
            "  append alone                {:>10.0} events/s   ({:.2}x raw postgres)",
            self.append_alone_events_per_sec, self.ratio_append_alone_to_raw_postgres
        )?;
        writeln!(
            f,
            "  append, relay running      {:>10.0} events/s",
            self.append_events_per_sec
        )?;
        writeln!(
            f,
            "  visible on a consumer       {:>10.0} events/s",
            self.visible_events_per_sec
        )?;
        writeln!(
            f,
            "  relay alone, draining       {:>10.0} events/s",
            self.relay_drain_events_per_sec
        )?;
        writeln!(
            f,
            "  raw postgres, 100-row batch {:>10.0} rows/s   (store+relay = {:.2}x)",
            self.raw_postgres_batched_rows_per_sec, self.ratio_visible_to_raw_postgres
        )?;
        writeln!(
            f,
            "  raw jetstream, pipelined    {:>10.0} msgs/s   (store+relay = {:.2}x)",
            self.raw_jetstream_publish_msgs_per_sec, self.ratio_visible_to_raw_jetstream
        )?;
        write!(
            f,
            "  lag at {} events/s (event time to consumer): p50 {:.1} ms, p99 {:.1} ms",
            self.paced_rate, self.relay_lag_p50_ms, self.relay_lag_p99_ms
        )
    }
}
