//! `quorum bench pipeline`'s open loop: queries submitted at rising rates (every 10 ms what the
//! rate owes), the highest rate the pipeline sustains, and at half of it the overhead from submit
//! to consensus; beside raw Postgres batched inserts measured in the same run.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;
use sqlx::PgPool;

use super::pipeline::PipelineBenchArgs;
use super::raw;
use super::stats::Samples;

#[derive(Debug, Serialize)]
pub struct OpenLoopReport {
    pub max_sustained_queries_per_sec: u64,
    pub half_load_queries_per_sec: u64,
    /// At half load, from the stored events.
    #[serde(flatten)]
    pub stages: Stages,
    /// Events the pipeline stored per second at the highest rate sustained, counted in the store.
    pub pipeline_events_per_sec: u64,
    pub raw_postgres_batched_rows_per_sec: f64,
    pub rates: Vec<RateResult>,
}

#[derive(Debug, Serialize)]
pub struct RateResult {
    pub offered_queries_per_sec: u64,
    pub decided: u64,
    /// From the last submit until the last consensus was in the read model.
    pub drain_ms: u64,
    /// Queries decided per second, from the first submit until the last was decided.
    pub decided_per_sec: f64,
    /// Events stored per second over the same time, counted in the store.
    pub events_per_sec: f64,
    pub sustained: bool,
}

/// A rate is sustained when every query it offered is decided, and they were decided at no less
/// than this share of the offered rate over the whole step, drain included: the pipeline kept up
/// instead of building a backlog it worked off after the submits stopped.
const KEPT_UP: f64 = 0.95;

/// The rate search, then the overhead at half the highest rate sustained.
pub(super) async fn open_loop(
    pool: &PgPool,
    client: &reqwest::Client,
    base: &str,
    key: &str,
    args: &PipelineBenchArgs,
) -> anyhow::Result<OpenLoopReport> {
    let sample = raw::sample_event()?;
    let raw_batched = raw::postgres_batched(pool, 50_000, 8, 100, &sample).await?;
    let url = format!("{base}/v1/queries");

    // Rates double until one is not sustained, then the gap between the last two is halved a few
    // times, so the figure is within an eighth of the doubling step.
    let mut rates: Vec<RateResult> = Vec::new();
    let mut max_sustained = 0;
    let mut failed = None;
    let mut rate = 50;
    while rate <= args.max_rate && args.at.is_none() {
        let result = offer(client, &url, key, pool, rate, args.step_seconds).await?;
        let sustained = result.sustained;
        rates.push(result);
        if !sustained {
            failed = Some(rate);
            break;
        }
        max_sustained = rate;
        rate *= 2;
    }
    if let Some(mut hi) = failed.filter(|_| args.at.is_none()) {
        for _ in 0..3 {
            let mid = (max_sustained + hi) / 2;
            if mid <= max_sustained {
                break;
            }
            let result = offer(client, &url, key, pool, mid, args.step_seconds).await?;
            if result.sustained {
                max_sustained = mid;
            } else {
                hi = mid;
            }
            rates.push(result);
        }
    }
    let half = args.at.unwrap_or((max_sustained / 2).max(1));
    let started_at = chrono::Utc::now();
    let at_half = offer(client, &url, key, pool, half, args.step_seconds).await?;
    let stages = stored_stages(pool, started_at).await?;
    // Counted in the store, at the highest rate sustained (or the one rate asked for).
    let events_per_sec = rates
        .iter()
        .filter(|r| r.sustained)
        .max_by_key(|r| r.offered_queries_per_sec)
        .unwrap_or(&at_half)
        .events_per_sec;
    Ok(OpenLoopReport {
        max_sustained_queries_per_sec: max_sustained,
        half_load_queries_per_sec: half,
        stages,
        pipeline_events_per_sec: events_per_sec.round() as u64,
        raw_postgres_batched_rows_per_sec: raw_batched.round(),
        rates,
    })
}

/// Where a query's time goes inside the pipeline, from the stored events' commit times: submission
/// to consensus (the overhead), split at the last expert result.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Stages {
    pub overhead_p50_ms: f64,
    pub overhead_p99_ms: f64,
    /// From the submit to the last expert result stored (relay, fan-out).
    pub results_p50_ms: f64,
    pub results_p99_ms: f64,
    /// From the last result stored to the consensus (relay, consensus).
    pub consensus_p50_ms: f64,
    pub consensus_p99_ms: f64,
}

/// [`Stages`] of the queries submitted since `since`.
pub(super) async fn stored_stages(
    pool: &PgPool,
    since: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Stages> {
    let (mut overhead, mut to_results, mut to_consensus) = <(Samples, Samples, Samples)>::default();
    type At = chrono::DateTime<chrono::Utc>;
    let rows: Vec<(At, At, At)> = sqlx::query_as(
        "SELECT s.recorded_at, max(e.recorded_at), c.recorded_at
         FROM events s
         JOIN events c ON c.stream_id = s.stream_id AND c.type LIKE 'quorum.consensus.%'
         JOIN events e ON e.stream_id = s.stream_id AND e.type LIKE 'quorum.expert.%'
         WHERE s.type = 'quorum.query.submitted' AND s.recorded_at >= $1
         GROUP BY s.position, c.position",
    )
    .bind(since)
    .fetch_all(pool)
    .await?;
    let ms = |d: chrono::TimeDelta| d.to_std().unwrap_or_default();
    for (submitted, results, decided) in rows {
        Samples::push(&mut overhead, ms(decided - submitted));
        Samples::push(&mut to_results, ms(results - submitted));
        Samples::push(&mut to_consensus, ms(decided - results));
    }
    Ok(Stages {
        overhead_p50_ms: overhead.percentile(50.0),
        overhead_p99_ms: overhead.percentile(99.0),
        results_p50_ms: to_results.percentile(50.0),
        results_p99_ms: to_results.percentile(99.0),
        consensus_p50_ms: to_consensus.percentile(50.0),
        consensus_p99_ms: to_consensus.percentile(99.0),
    })
}

/// Submits `rate` queries a second for `seconds`, then waits for them all to be decided in the read
/// model.
async fn offer(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    pool: &PgPool,
    rate: u64,
    seconds: u64,
) -> anyhow::Result<RateResult> {
    // Counted by the database's clock, which stamps `submitted_at`.
    let since: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT now()").fetch_one(pool).await?;
    let total = rate * seconds;
    // Open loop: every 10 ms, as many submits as the rate owes by then, each its own task, so a
    // slow response never holds back the next submit.
    let mut interval = tokio::time::interval(Duration::from_millis(10));
    let mut sent = 0;
    let mut inflight = futures::stream::FuturesUnordered::new();
    let first_submit = Instant::now();
    while sent < total {
        interval.tick().await;
        let due = ((first_submit.elapsed().as_secs_f64() * rate as f64).ceil() as u64).min(total);
        while sent < due {
            let req = client
                .post(url)
                .bearer_auth(key)
                .header("content-type", "application/json")
                .body(format!(r#"{{"question":"bench {sent}?"}}"#));
            inflight.push(tokio::spawn(async move {
                req.send().await.map(|r| r.status().as_u16())
            }));
            sent += 1;
        }
        while let Some(Some(r)) = futures::FutureExt::now_or_never(inflight.next()) {
            anyhow::ensure!(r?? == 202, "a query was refused");
        }
    }
    while let Some(r) = inflight.next().await {
        anyhow::ensure!(r?? == 202, "a query was refused");
    }
    let last_submit = Instant::now();
    let deadline = last_submit + Duration::from_secs(60);
    let mut done = decided(pool, since).await?;
    while (done as u64) < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        done = decided(pool, since).await?;
    }
    let drain = last_submit.elapsed();
    let elapsed = first_submit.elapsed().as_secs_f64();
    let decided_per_sec = done as f64 / elapsed;
    let events: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE tenant = 'bench' AND recorded_at >= $1",
    )
    .bind(since)
    .fetch_one(pool)
    .await?;
    Ok(RateResult {
        offered_queries_per_sec: rate,
        decided: done as u64,
        drain_ms: drain.as_millis() as u64,
        decided_per_sec,
        events_per_sec: events as f64 / elapsed,
        sustained: done as u64 >= total && decided_per_sec >= KEPT_UP * rate as f64,
    })
}

/// Queries of this step decided so far. Only the step's rows are looked at, through the
/// `(tenant, submitted_at)` index: a count over the whole table, polled every 20 ms, grows with
/// every step and would take the very CPU the pipeline is being measured for.
async fn decided(pool: &PgPool, since: chrono::DateTime<chrono::Utc>) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM queries
         WHERE tenant = 'bench' AND submitted_at >= $1 AND status <> 'pending'",
    )
    .bind(since)
    .fetch_one(pool)
    .await?)
}

impl std::fmt::Display for OpenLoopReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for r in &self.rates {
            writeln!(
                f,
                "  {:>5} queries/s offered: {} decided at {:.0}/s ({:.0} events/s), drained {} ms after the last  {}",
                r.offered_queries_per_sec,
                r.decided,
                r.decided_per_sec,
                r.events_per_sec,
                r.drain_ms,
                if r.sustained {
                    "sustained"
                } else {
                    "NOT sustained"
                }
            )?;
        }
        writeln!(
            f,
            "  max sustained {} queries/s ({} events/s stored); at {} queries/s overhead p50 {:.1} ms, p99 {:.1} ms",
            self.max_sustained_queries_per_sec,
            self.pipeline_events_per_sec,
            self.half_load_queries_per_sec,
            self.stages.overhead_p50_ms,
            self.stages.overhead_p99_ms
        )?;
        writeln!(
            f,
            "    of which submit -> last result p50 {:.1} ms, p99 {:.1} ms; last result -> consensus p50 {:.1} ms, p99 {:.1} ms",
            self.stages.results_p50_ms,
            self.stages.results_p99_ms,
            self.stages.consensus_p50_ms,
            self.stages.consensus_p99_ms
        )?;
        writeln!(
            f,
            "  raw postgres: {:.0} rows/s in 100-row batches",
            self.raw_postgres_batched_rows_per_sec
        )
    }
}
