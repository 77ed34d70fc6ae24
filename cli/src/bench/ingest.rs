//! `quorum bench ingest`: CloudEvents POSTed to ingest (single events from many keep-alive clients,
//! then 100-event batches), through group commit into the store and through the relay onto
//! JetStream; beside raw Postgres inserts on the same server in the same run.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use bytes::Bytes;
use futures::StreamExt;
use quorum_auth::Role;
use quorum_domain::{Event, StreamId, TenantId};
use quorum_ingest::IngestConfig;
use quorum_runtime::{Readiness, Shutdown};
use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::Mutex;

use super::raw;
use super::stats::{Samples, rate, ratio};
use super::store::{Receiver, receive, wait_for};

#[derive(Clone, Debug, clap::Args)]
pub struct IngestBenchArgs {
    /// Events sent in each phase.
    #[arg(long, default_value_t = 50_000)]
    pub events: u64,
    /// Concurrent keep-alive clients sending single events.
    #[arg(long, default_value_t = 64)]
    pub clients: u64,
    /// Concurrent clients sending batches.
    #[arg(long, default_value_t = 8)]
    pub batch_clients: u64,
    /// Events per batch.
    #[arg(long, default_value_t = 100)]
    pub batch: u64,
    /// Data bytes per event.
    #[arg(long, default_value_t = 256)]
    pub payload: usize,
}

#[derive(Debug, Serialize)]
pub struct IngestReport {
    pub events: u64,
    pub clients: u64,
    pub single_accepted_events_per_sec: f64,
    pub single_visible_events_per_sec: f64,
    pub single_latency_p50_ms: f64,
    pub single_latency_p99_ms: f64,
    pub batch: u64,
    pub batch_clients: u64,
    pub batch_accepted_events_per_sec: f64,
    pub batch_visible_events_per_sec: f64,
    pub batch_latency_p50_ms: f64,
    pub batch_latency_p99_ms: f64,
    pub raw_postgres_single_rows_per_sec: f64,
    pub raw_postgres_batched_rows_per_sec: f64,
    pub ratio_single_to_raw_single: f64,
    pub ratio_batch_to_raw_batched: f64,
}

pub async fn run(
    pool: &PgPool,
    js: &jetstream::Context,
    nats_url: &str,
    database_url: &str,
    args: &IngestBenchArgs,
) -> anyhow::Result<IngestReport> {
    let tenant = TenantId::new("bench")?;
    let payload = Bytes::from(vec![b'x'; args.payload]);
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let (raw_single, raw_batched) = baselines(database_url, args, &tenant, &payload).await?;

    let config = bench_config(nats_url, database_url);
    let shutdown = Shutdown::new();
    let running = quorum_ingest::start(&config, &shutdown, &Readiness::new()).await?;
    let target = Target {
        key: quorum_auth::create(pool, &tenant, &[Role::Publisher], Some("bench"))
            .await?
            .key,
        url: format!("http://{}/v1/events", running.http_addr),
        client: quorum_http_client::builder()
            .pool_max_idle_per_host(args.clients.max(args.batch_clients) as usize)
            .build()?,
    };
    let receiver = receive(js, &tenant).await?;

    // Single events: each a structured POST of its own.
    let body = |i: u64, phase: &str| {
        serde_json::json!({"specversion": "1.0", "id": format!("{run_id}-{phase}-{i}"),
            "source": "https://bench.example/upstream", "type": "com.example.bench",
            "datacontenttype": "text/plain", "data": std::str::from_utf8(&payload).unwrap_or("")})
    };
    let singles = (0..args.events)
        .map(|i| body(i, "single").to_string())
        .collect();
    let mut single = phase(
        &target,
        &receiver,
        STRUCTURED,
        args.clients,
        singles,
        args.events,
    )
    .await?;

    // Batches.
    let batches: Vec<String> = (0..args.events / args.batch)
        .map(|b| {
            let events: Vec<_> = (0..args.batch)
                .map(|i| body(b * args.batch + i, "batch"))
                .collect();
            serde_json::Value::from(events).to_string()
        })
        .collect();
    let events = batches.len() as u64 * args.batch;
    let mut batched = phase(
        &target,
        &receiver,
        BATCH,
        args.batch_clients,
        batches,
        events,
    )
    .await?;

    shutdown.cancel();
    shutdown.wait(Duration::from_secs(30)).await?;
    receiver.task.abort();
    let single_rate = rate(single.events, single.visible);
    let batch_rate = rate(batched.events, batched.visible);
    Ok(IngestReport {
        events: args.events,
        clients: args.clients,
        single_accepted_events_per_sec: rate(single.events, single.accepted).round(),
        single_visible_events_per_sec: single_rate.round(),
        single_latency_p50_ms: single.latency.percentile(50.0),
        single_latency_p99_ms: single.latency.percentile(99.0),
        batch: args.batch,
        batch_clients: args.batch_clients,
        batch_accepted_events_per_sec: rate(batched.events, batched.accepted).round(),
        batch_visible_events_per_sec: batch_rate.round(),
        batch_latency_p50_ms: batched.latency.percentile(50.0),
        batch_latency_p99_ms: batched.latency.percentile(99.0),
        raw_postgres_single_rows_per_sec: raw_single.round(),
        raw_postgres_batched_rows_per_sec: raw_batched.round(),
        ratio_single_to_raw_single: ratio(single_rate, raw_single),
        ratio_batch_to_raw_batched: ratio(batch_rate, raw_batched),
    })
}

const STRUCTURED: &str = "application/cloudevents+json";
const BATCH: &str = "application/cloudevents-batch+json";

/// The raw Postgres baselines, rows/s single and batched. Measured first, on the same rows the
/// store writes, with nothing else running, and like for like: as many writers as Quorum has
/// clients, each with a connection of its own (what a service doing one write per request would
/// hold), and the same batch size.
async fn baselines(
    database_url: &str,
    args: &IngestBenchArgs,
    tenant: &TenantId,
    payload: &Bytes,
) -> anyhow::Result<(f64, f64)> {
    let mut sample = Event::new(
        "https://bench.example/upstream",
        "com.example.bench",
        StreamId::new("bench", "sample")?,
        tenant.clone(),
        payload.clone(),
    );
    sample.subject = None;
    let raw_pool = raw::writers_pool(database_url, args.clients.max(args.batch_clients)).await?;
    let single = raw::postgres_single(&raw_pool, args.events, args.clients, &sample).await?;
    let batched = raw::postgres_batched(
        &raw_pool,
        args.events,
        args.batch_clients,
        args.batch,
        &sample,
    )
    .await?;
    raw_pool.close().await;
    Ok((single, batched))
}

/// Where the bench POSTs: ingest's events URL, with a publisher's key.
struct Target {
    client: reqwest::Client,
    url: String,
    key: String,
}

/// What one phase measured, from its first send.
struct Phase {
    events: u64,
    /// Until the last send was answered.
    accepted: Duration,
    /// Until the last event arrived on JetStream.
    visible: Duration,
    latency: Samples,
}

/// Sends `bodies` from `clients` concurrent clients and waits until the `events` they hold have
/// arrived on JetStream.
async fn phase(
    target: &Target,
    receiver: &Receiver,
    content_type: &'static str,
    clients: u64,
    bodies: Vec<String>,
    events: u64,
) -> anyhow::Result<Phase> {
    let latencies = Mutex::new(Samples::default());
    let started = Instant::now();
    send(target, content_type, clients, &latencies, bodies).await?;
    let accepted = started.elapsed();
    wait_for(&receiver.received, events).await?;
    let visible = receiver.last_at.lock().await.duration_since(started);
    receiver.received.store(0, Ordering::Relaxed);
    Ok(Phase {
        events,
        accepted,
        visible,
        latency: latencies.into_inner(),
    })
}

/// Ingest on a free port of the bench's stack, over HTTP only, with no rate limit in the way: the
/// benches measure throughput, not the limit.
pub(super) fn bench_config(nats_url: &str, database_url: &str) -> IngestConfig {
    let mut config = IngestConfig::default();
    config.common.nats_url = nats_url.to_owned();
    config.common.database_url = database_url.to_owned();
    config.http_addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.nats.enabled = false;
    config.rate.events_per_second = 10_000_000;
    config.rate.burst = 10_000_000;
    config
}

/// POSTs every body from `clients` concurrent clients, recording each request's latency; any
/// answer but 202 stops the bench.
async fn send(
    target: &Target,
    content_type: &'static str,
    clients: u64,
    latencies: &Mutex<Samples>,
    bodies: Vec<String>,
) -> anyhow::Result<()> {
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(bodies)
        .map(|body| async move {
            let started = Instant::now();
            let r = target
                .client
                .post(&target.url)
                .bearer_auth(&target.key)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await?;
            let status = r.status();
            let text = r.bytes().await?;
            anyhow::ensure!(
                status.as_u16() == 202,
                "{status}: {}",
                String::from_utf8_lossy(&text)
            );
            latencies.lock().await.push(started.elapsed());
            Ok(())
        })
        .buffer_unordered(clients as usize)
        .collect()
        .await;
    results.into_iter().collect()
}

impl std::fmt::Display for IngestReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "ingest: {} events per phase, through group commit and the relay",
            self.events
        )?;
        writeln!(
            f,
            "  single events, {} clients   accepted {:>8.0}/s  visible {:>8.0}/s  p50 {:.1} ms  p99 {:.1} ms  ({:.2}x raw single inserts)",
            self.clients,
            self.single_accepted_events_per_sec,
            self.single_visible_events_per_sec,
            self.single_latency_p50_ms,
            self.single_latency_p99_ms,
            self.ratio_single_to_raw_single
        )?;
        writeln!(
            f,
            "  batches of {}, {} clients   accepted {:>8.0}/s  visible {:>8.0}/s  p50 {:.1} ms  p99 {:.1} ms  ({:.2}x raw batched)",
            self.batch,
            self.batch_clients,
            self.batch_accepted_events_per_sec,
            self.batch_visible_events_per_sec,
            self.batch_latency_p50_ms,
            self.batch_latency_p99_ms,
            self.ratio_batch_to_raw_batched
        )?;
        writeln!(
            f,
            "  raw postgres: {:.0} rows/s single inserts ({} connections), {:.0} rows/s in batches of {} ({} connections)",
            self.raw_postgres_single_rows_per_sec,
            self.clients,
            self.raw_postgres_batched_rows_per_sec,
            self.batch,
            self.batch_clients
        )
    }
}
