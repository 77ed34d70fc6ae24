//! `quorum bench audit`: the audit chain keeping up with the event store. Events are appended by
//! concurrent writers while the chainer runs; the chain's rate is the events it linked from the
//! first append until it caught up with the last, against the store's rate over the appends alone,
//! so 1.0× means the chain never fell behind. Then export and verify speed, and raw Postgres
//! batched inserts on the same server as the baseline.

use std::io::Write;
use std::time::Instant;

use bytes::Bytes;
use quorum_audit::export::{self, Format, Selection};
use quorum_domain::{Event, StreamId, TenantId};
use quorum_event_store::{EventStore, ExpectedVersion};
use serde::Serialize;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::raw;
use super::stats::{rate, ratio};

#[derive(Clone, Debug, clap::Args)]
pub struct AuditBenchArgs {
    /// Events appended while the chainer runs.
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
}

#[derive(Debug, Serialize)]
pub struct AuditReport {
    pub events: u64,
    pub store_events_per_sec: f64,
    pub chain_events_per_sec: f64,
    pub ratio_chain_to_store: f64,
    /// How long after the last append the chain held it.
    pub chain_behind_at_end_ms: f64,
    /// The chain alone, catching up on a backlog of as many events appended while it was stopped:
    /// its headroom over the store.
    pub chain_catch_up_events_per_sec: f64,
    pub ratio_catch_up_to_store: f64,
    pub export_events_per_sec: f64,
    pub verify_links_per_sec: f64,
    pub raw_postgres_batched_rows_per_sec: f64,
}

impl std::fmt::Display for AuditReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "audit chain, {} events", self.events)?;
        writeln!(
            f,
            "  store appends            {:>10.0} events/s",
            self.store_events_per_sec
        )?;
        writeln!(
            f,
            "  chain (same run)         {:>10.0} events/s  {:.2}x the store, {:.0} ms behind at the end",
            self.chain_events_per_sec, self.ratio_chain_to_store, self.chain_behind_at_end_ms
        )?;
        writeln!(
            f,
            "  chain catching up alone  {:>10.0} events/s  {:.2}x the store",
            self.chain_catch_up_events_per_sec, self.ratio_catch_up_to_store
        )?;
        writeln!(
            f,
            "  export to a file (jsonl) {:>10.0} events/s",
            self.export_events_per_sec
        )?;
        writeln!(
            f,
            "  verify                   {:>10.0} links/s",
            self.verify_links_per_sec
        )?;
        write!(
            f,
            "  raw postgres batched     {:>10.0} rows/s",
            self.raw_postgres_batched_rows_per_sec
        )
    }
}

fn sample(tenant: &TenantId, stream: &StreamId, payload: usize) -> Event {
    Event::new(
        "/quorum/bench",
        "quorum.bench.audited",
        stream.clone(),
        tenant.clone(),
        Bytes::from(format!(
            "{{\"pad\":\"{}\"}}",
            "x".repeat(payload.saturating_sub(10))
        )),
    )
}

/// Appends `args.events` events of `tenant` from `args.writers` writers; returns how many.
async fn append(
    store: &EventStore,
    tenant: &TenantId,
    args: &AuditBenchArgs,
) -> anyhow::Result<u64> {
    let per_writer = args.events / args.writers;
    let mut writers = Vec::new();
    for w in 0..args.writers {
        let (store, tenant, batch, payload) =
            (store.clone(), tenant.clone(), args.batch, args.payload);
        writers.push(tokio::spawn(async move {
            let stream = StreamId::new("bench", format!("audit-{w}"))?;
            let mut left = per_writer;
            while left > 0 {
                let n = left.min(batch);
                let events: Vec<_> = (0..n).map(|_| sample(&tenant, &stream, payload)).collect();
                store.append(&stream, ExpectedVersion::Any, &events).await?;
                left -= n;
            }
            anyhow::Ok(())
        }));
    }
    for w in writers {
        w.await??;
    }
    Ok(per_writer * args.writers)
}

/// Waits until the chain holds every event of `tenant` appended so far: the chain follows commit
/// order, so once the last of them in commit order is linked, all are. (The check is one index
/// lookup, so polling does not slow the chain it waits for.)
async fn caught_up(pool: &PgPool, tenant: &TenantId) -> anyhow::Result<()> {
    let last: i64 = sqlx::query_scalar(
        "SELECT position FROM events WHERE tenant = $1 ORDER BY tx_id DESC, position DESC LIMIT 1",
    )
    .bind(tenant.as_str())
    .fetch_one(pool)
    .await?;
    loop {
        let linked: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM audit_chain WHERE position = $1)")
                .bind(last)
                .fetch_one(pool)
                .await?;
        if linked {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

pub async fn run(pool: &PgPool, args: &AuditBenchArgs) -> anyhow::Result<AuditReport> {
    let tenant = TenantId::new(format!("bench-audit-{}", std::process::id()))?;
    let raw = raw::postgres_batched(
        pool,
        args.events,
        args.writers,
        args.batch,
        &sample(&tenant, &StreamId::new("bench", "raw")?, args.payload),
    )
    .await?;
    let store = EventStore::new(pool.clone());
    let stop = CancellationToken::new();
    // Catch up on whatever is stored already, so the run measures only its own events.
    while quorum_audit::chainer::step(pool, 2000, "").await?.links > 0 {}
    let chainer = tokio::spawn(quorum_audit::run(
        pool.clone(),
        Default::default(),
        stop.clone(),
    ));
    let started = Instant::now();
    let total = append(&store, &tenant, args).await?;
    let appended = started.elapsed();
    caught_up(pool, &tenant).await?;
    let chained = started.elapsed();
    stop.cancel();
    chainer.await?;

    // The same again with the chain stopped, then the chain alone over that backlog.
    append(&store, &tenant, args).await?;
    let stop = CancellationToken::new();
    let catch_up_started = Instant::now();
    let chainer = tokio::spawn(quorum_audit::run(
        pool.clone(),
        Default::default(),
        stop.clone(),
    ));
    caught_up(pool, &tenant).await?;
    let catch_up = catch_up_started.elapsed();
    stop.cancel();
    chainer.await?;

    // Export and verify read rows written a moment ago; the first read of each sets its hint bits
    // (a write). Vacuum first, so these figures are the steady state an auditor meets, not the
    // one-time cost right after a bulk load.
    sqlx::query("VACUUM (ANALYZE) events, audit_chain")
        .execute(pool)
        .await?;
    let selection = Selection {
        tenant: Some(tenant.to_string()),
        ..Default::default()
    };
    let path =
        std::env::temp_dir().join(format!("quorum-bench-export-{}.jsonl", std::process::id()));
    let export_started = Instant::now();
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let (mut after, mut exported, mut buf) = (0i64, 0u64, Vec::new());
    loop {
        let records = export::page(pool, &selection, after, 2000).await?;
        buf.clear();
        export::write(Format::Jsonl, &records, false, &mut buf);
        out.write_all(&buf)?;
        exported += records.len() as u64;
        match records.last() {
            Some(r) if records.len() == 2000 => after = r.seq,
            _ => break,
        }
    }
    out.flush()?;
    let export_elapsed = export_started.elapsed();
    let _ = std::fs::remove_file(&path);
    let verify_started = Instant::now();
    let report = quorum_audit::verify::verify(pool, Default::default(), |_| {}).await?;
    anyhow::ensure!(report.ok(), "the chain does not verify: {report:?}");
    let verify_elapsed = verify_started.elapsed();

    let store_rate = rate(total, appended);
    let catch_up_rate = rate(total, catch_up);
    let chain_rate = rate(total, chained);
    Ok(AuditReport {
        events: total,
        store_events_per_sec: store_rate,
        chain_events_per_sec: chain_rate,
        ratio_chain_to_store: ratio(chain_rate, store_rate),
        chain_behind_at_end_ms: (chained - appended).as_secs_f64() * 1000.0,
        chain_catch_up_events_per_sec: catch_up_rate,
        ratio_catch_up_to_store: ratio(catch_up_rate, store_rate),
        export_events_per_sec: rate(exported, export_elapsed),
        verify_links_per_sec: rate(report.checked, verify_elapsed),
        raw_postgres_batched_rows_per_sec: raw,
    })
}
