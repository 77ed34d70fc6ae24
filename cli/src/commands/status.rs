//! `quorum status`: streams, consumers, the relay, dead letters and where each service listens.

use futures::TryStreamExt;
use serde::Serialize;
use sqlx::Row;

use crate::outln;
use crate::stack::{ServiceAddr, Target, redact};

#[derive(Debug, Serialize)]
pub struct Status {
    pub nats_url: String,
    pub database_url: String,
    pub streams: Vec<StreamStatus>,
    pub relay: Option<RelayStatus>,
    pub dead_letters: DeadLetterStatus,
    /// Each expert's circuit breaker, per fan-out process that reported lately.
    pub breakers: Vec<BreakerStatus>,
    pub services: Vec<ServiceAddr>,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct BreakerStatus {
    pub expert: String,
    /// `closed`, `open` or `half_open`.
    pub state: String,
    /// Failures in a row while closed.
    pub failures: i32,
    /// The fan-out process (host:pid) whose breaker this is.
    pub instance: String,
}

#[derive(Debug, Serialize)]
pub struct StreamStatus {
    pub name: String,
    pub messages: u64,
    pub bytes: u64,
    pub last_sequence: u64,
    pub consumers: Vec<ConsumerStatus>,
}

#[derive(Debug, Serialize)]
pub struct ConsumerStatus {
    pub name: String,
    pub pending: u64,
    pub ack_pending: usize,
    pub redelivered: usize,
    /// Age of the oldest message it has not finished (pending or awaiting its ack); none when it
    /// has caught up.
    pub oldest_pending_seconds: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct RelayStatus {
    pub cursor: String,
    pub stream_sequence: u64,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Committed events not yet published, those behind the watermark included.
    pub lag_events: i64,
    /// Of those, the ones an older open transaction holds back (docs/adr/0002).
    pub held_events: i64,
    /// Age of the oldest committed event not yet published.
    pub lag_seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct DeadLetterStatus {
    pub parked: i64,
    pub by_consumer: Vec<(String, i64)>,
    /// Parked letters per tenant: `quorum dlq` reaches a tenant's with an operator key of that
    /// tenant, `_system`'s (those of no tenant, ADR 21) with `--system`.
    pub by_tenant: Vec<(String, i64)>,
}

pub async fn gather(target: &Target) -> anyhow::Result<Status> {
    let stack = target.connect().await?;
    let mut streams = Vec::new();
    for name in [
        quorum_bus::EVENTS_STREAM,
        quorum_bus::INGEST_STREAM,
        quorum_bus::DLQ_STREAM,
    ] {
        let Ok(mut stream) = stack.js.get_stream(name).await else {
            continue;
        };
        let state = stream.info().await?.state.clone();
        let infos: Vec<_> = stream.consumers().try_collect().await?;
        let mut consumers = Vec::with_capacity(infos.len());
        for c in infos {
            let lag = quorum_runtime::consumer::lag::lag(&stream, &c).await?;
            consumers.push(ConsumerStatus {
                pending: c.num_pending,
                ack_pending: c.num_ack_pending,
                redelivered: c.num_redelivered,
                oldest_pending_seconds: lag.oldest.map(|d| d.as_secs_f64()),
                name: c.name,
            });
        }
        streams.push(StreamStatus {
            name: name.to_owned(),
            messages: state.messages,
            bytes: state.bytes,
            last_sequence: state.last_sequence,
            consumers,
        });
    }
    let relay = match quorum_event_store::load_relay_checkpoint(&stack.pool, "default").await? {
        None => None,
        Some(cp) => {
            let row = sqlx::query(
                // Every visible row past the cursor is committed; those at or above the snapshot's
                // xmin wait behind the watermark, and count as lag all the same.
                "SELECT count(*) AS n,
                        count(*) FILTER (WHERE tx_id >= pg_snapshot_xmin(pg_current_snapshot())) AS held,
                        coalesce(extract(epoch FROM now() - min(recorded_at)), 0)::float8 AS age,
                        (SELECT updated_at FROM relay_checkpoints WHERE name = 'default') AS updated_at
                 FROM events WHERE (tx_id, position) > ($1::text::xid8, $2)",
            )
            .bind(cp.cursor.tx_id.to_string())
            .bind(cp.cursor.position)
            .fetch_one(&stack.pool)
            .await?;
            Some(RelayStatus {
                cursor: cp.cursor.to_string(),
                stream_sequence: cp.stream_seq,
                updated_at: row.try_get("updated_at")?,
                lag_events: row.try_get("n")?,
                held_events: row.try_get("held")?,
                lag_seconds: row.try_get("age")?,
            })
        }
    };
    let by_consumer: Vec<(String, i64)> = sqlx::query_as(
        "SELECT consumer, count(*) FROM dead_letters WHERE status = 'parked' GROUP BY consumer ORDER BY consumer",
    )
    .fetch_all(&stack.pool)
    .await?;
    let by_tenant: Vec<(String, i64)> = sqlx::query_as(
        "SELECT coalesce(tenant, '_system') AS t, count(*) FROM dead_letters WHERE status = 'parked'
         GROUP BY t ORDER BY t",
    )
    .fetch_all(&stack.pool)
    .await?;
    // A process reports every 2 s; one silent for 30 s has died without removing its rows.
    let breakers: Vec<BreakerStatus> = sqlx::query_as(
        "SELECT expert, state, failures, instance FROM expert_breakers
         WHERE seen_at > now() - interval '30 seconds' ORDER BY expert, instance",
    )
    .fetch_all(&stack.pool)
    .await?;
    Ok(Status {
        breakers,
        // The local stack's URL carries the admin user's password.
        nats_url: redact(&stack.nats_url),
        database_url: redact(&stack.database_url),
        streams,
        relay,
        dead_letters: DeadLetterStatus {
            parked: by_consumer.iter().map(|c| c.1).sum(),
            by_consumer,
            by_tenant,
        },
        services: target.recorded().map(|s| s.services).unwrap_or_default(),
    })
}

pub async fn run(target: &Target, json: bool) -> anyhow::Result<()> {
    let status = gather(target).await?;
    if json {
        let status = crate::times::normalized_json(serde_json::to_value(&status)?);
        outln!("{}", serde_json::to_string_pretty(&status)?)?;
        return Ok(());
    }
    outln!("nats      {}", status.nats_url)?;
    outln!("postgres  {}", status.database_url)?;
    for s in &status.services {
        let show = |a: Option<std::net::SocketAddr>| a.map_or("-".to_owned(), |a| a.to_string());
        outln!(
            "service   {:<14} http {:<22} admin {}",
            s.name,
            show(s.http),
            show(s.admin)
        )?;
    }
    for s in &status.streams {
        outln!(
            "stream    {:<14} {:>10} messages  last seq {}",
            s.name,
            s.messages,
            s.last_sequence
        )?;
        for c in &s.consumers {
            let oldest = c
                .oldest_pending_seconds
                .map_or("-".to_owned(), |s| format!("{s:.1} s"));
            outln!(
                "  consumer  {:<22} pending {:>8}  ack pending {:>6}  oldest {:>8}  redelivered {}",
                c.name,
                c.pending,
                c.ack_pending,
                oldest,
                c.redelivered
            )?;
        }
    }
    match &status.relay {
        Some(r) => outln!(
            "relay     cursor {}  stream seq {}  lag {} events ({} behind the watermark) / {:.3} s",
            r.cursor,
            r.stream_sequence,
            r.lag_events,
            r.held_events,
            r.lag_seconds
        )?,
        None => outln!("relay     has not published yet")?,
    }
    for b in &status.breakers {
        outln!(
            "breaker   {:<14} {:<10} failures in a row {}  ({})",
            b.expert,
            b.state,
            b.failures,
            b.instance
        )?;
    }
    outln!("dlq       {} parked", status.dead_letters.parked)?;
    for (consumer, n) in &status.dead_letters.by_consumer {
        outln!("  {consumer:<22} {n}")?;
    }
    for (tenant, n) in &status.dead_letters.by_tenant {
        let reach = if tenant == quorum_domain::SYSTEM_TENANT {
            "quorum dlq list --system".to_owned()
        } else {
            format!("quorum dlq list, with an operator key of {tenant}")
        };
        outln!("  tenant {tenant:<15} {n}  ({reach})")?;
    }
    Ok(())
}
