//! `quorum bench pipeline`: queries submitted through ingest, answered by three experts through
//! fan-out and consensus into the read model. The experts are zero-latency scripted ones, or
//! (`--experts openai`) `openai` providers calling an OpenAI-compatible stub in a process of its
//! own. Open loop (the default): the highest rate sustained and, at half of it, the overhead from
//! submit to consensus, beside raw Postgres batched inserts. Closed loop (`--clients 32,256`): N
//! clients each submit and wait with `?wait=`, as users of the API do, beside a bare HTTP client
//! making the same three calls per query at the same concurrency. All measured in the same run.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::StreamExt;
use quorum_auth::Role;
use quorum_domain::{StreamId, TenantId};
use quorum_runtime::{Readiness, Shutdown};
use serde::Serialize;
use sqlx::PgPool;

use super::closed::{self, LoopResult};
use super::codec::{self, CodecReport};
use super::raw;
use super::stats::{Samples, ratio};
use super::stub::Stub;

#[derive(Clone, Debug, clap::Args)]
pub struct PipelineBenchArgs {
    /// Seconds each rate is offered.
    #[arg(long, default_value_t = 5)]
    pub step_seconds: u64,
    /// The highest rate tried, queries/s (rates double from 50 up to it, then the gap between the
    /// last sustained rate and the first that was not is halved three times).
    #[arg(long, default_value_t = 3200)]
    pub max_rate: u64,
    /// Skip the search: offer only this rate, and measure the overhead at it.
    #[arg(long)]
    pub at: Option<u64>,
    /// Who answers: three scripted experts, or three `openai` experts calling a stub.
    #[arg(long, value_enum, default_value_t = Experts::Scripted)]
    pub experts: Experts,
    /// Closed loop instead of the rate search: run with each of these client counts (`32,256`).
    #[arg(long, value_delimiter = ',')]
    pub clients: Vec<usize>,
    /// Seconds each closed-loop run lasts (after a warm-up of a tenth of it).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
}

/// Which experts answer the benchmark's queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Experts {
    /// Three scripted experts, answering at once.
    Scripted,
    /// Three `openai` experts calling an OpenAI-compatible stub started as a separate process.
    Openai,
}

#[derive(Debug, Serialize)]
pub struct PipelineReport {
    pub experts: Experts,
    /// The open-loop rate search; absent in closed-loop mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_loop: Option<OpenLoopReport>,
    /// Closed-loop runs, one per client count asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub closed_loop: Vec<ClosedLoopRow>,
    /// JSON against MessagePack on the data of the events this run stored.
    pub codec: CodecReport,
}

/// Quorum and the bare client at one concurrency.
#[derive(Debug, Serialize)]
pub struct ClosedLoopRow {
    pub quorum: LoopResult,
    /// CPU this process spent per query during Quorum's run: ingest, fan-out, consensus and the
    /// benchmark's own clients (Postgres, NATS and the stub are other processes).
    pub quorum_cpu_ms_per_query: f64,
    /// The same three calls per query made by a bare HTTP client (openai experts only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bare_client: Option<LoopResult>,
    /// Quorum's queries/s over the bare client's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct OpenLoopReport {
    pub max_sustained_queries_per_sec: u64,
    pub half_load_queries_per_sec: u64,
    pub overhead_p50_ms: f64,
    pub overhead_p99_ms: f64,
    /// At half load: from the submit to the last expert result stored (relay, fan-out).
    pub results_p50_ms: f64,
    pub results_p99_ms: f64,
    /// At half load: from the last result stored to the consensus (relay, consensus).
    pub consensus_p50_ms: f64,
    pub consensus_p99_ms: f64,
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

pub async fn run(
    pool: &PgPool,
    _js: &jetstream::Context,
    nats_url: &str,
    database_url: &str,
    args: &PipelineBenchArgs,
) -> anyhow::Result<PipelineReport> {
    let since: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT now()").fetch_one(pool).await?;
    let pipeline = Pipeline::start(pool, nats_url, database_url, args.experts).await?;
    let mut report = PipelineReport {
        experts: args.experts,
        open_loop: None,
        closed_loop: Vec::new(),
        codec: codec::measure(pool, since).await?,
    };
    if args.clients.is_empty() {
        report.open_loop = Some(open_loop(pool, &pipeline, args).await?);
    }
    for &clients in &args.clients {
        let duration = Duration::from_secs(args.seconds.max(1));
        let bare_client = match &pipeline.stub {
            Some(stub) => Some(bare_client(&stub.base_url, clients, duration).await?),
            None => None,
        };
        let cpu_before = process_cpu()?;
        let quorum = closed_loop(&pipeline, clients, duration).await?;
        let cpu = process_cpu()? - cpu_before;
        report.closed_loop.push(ClosedLoopRow {
            quorum_cpu_ms_per_query: cpu * 1000.0 / (quorum.queries.max(1) as f64),
            ratio: bare_client
                .as_ref()
                .map(|b| ratio(quorum.queries_per_sec, b.queries_per_sec)),
            quorum,
            bare_client,
        });
    }
    report.codec = codec::measure(pool, since).await?;
    pipeline.shutdown.cancel();
    pipeline.shutdown.wait(Duration::from_secs(30)).await?;
    Ok(report)
}

/// CPU seconds this process has spent, user and system (`/proc/self/stat`, in the kernel's fixed
/// USER_HZ of 100 ticks a second).
fn process_cpu() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow::anyhow!("unreadable /proc/self/stat"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name and state.
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

/// Ingest, fan-out and consensus running in this process, with their experts.
struct Pipeline {
    shutdown: Shutdown,
    http: reqwest::Client,
    /// `http://<ingest>`.
    base: String,
    key: String,
    /// The OpenAI-compatible stub the experts call, if they are `openai` experts.
    stub: Option<Stub>,
}

impl Pipeline {
    async fn start(
        pool: &PgPool,
        nats_url: &str,
        database_url: &str,
        experts: Experts,
    ) -> anyhow::Result<Self> {
        let stub = match experts {
            Experts::Scripted => None,
            Experts::Openai => Some(Stub::start().await?),
        };
        let experts = match &stub {
            None => quorum_experts::default_experts(),
            Some(stub) => openai_experts(&stub.base_url),
        };
        let shutdown = Shutdown::new();
        let readiness = Readiness::new();
        let config = super::ingest::bench_config(nats_url, database_url);
        let running = quorum_ingest::start(&config, &shutdown, &readiness).await?;
        let js = async_nats::jetstream::new(async_nats::connect(nats_url).await?);
        let names: Vec<String> = experts.iter().map(|e| e.name.clone()).collect();
        quorum_expert_fanout::start(pool.clone(), js.clone(), experts, &shutdown, &readiness);
        quorum_consensus::start(
            pool.clone(),
            js,
            names,
            Default::default(),
            &shutdown,
            &readiness,
        );
        let key = quorum_auth::create(pool, &TenantId::new("bench")?, &[Role::Publisher], None)
            .await?
            .key;
        Ok(Self {
            shutdown,
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(1024)
                .build()?,
            base: format!("http://{}", running.http_addr),
            key,
            stub,
        })
    }
}

/// Three `openai` experts at `base_url`, with the limits of an expert that may take as many
/// calls as are asked of it (the stub answers at once; a real endpoint sets its own).
fn openai_experts(base_url: &str) -> Vec<quorum_experts::ExpertConfig> {
    quorum_experts::default_experts()
        .into_iter()
        .map(|mut e| {
            e.provider = quorum_experts::ProviderConfig::Openai(
                quorum_experts::provider::openai::OpenAiConfig {
                    base_url: base_url.to_owned(),
                    model: format!("bench-{}", e.name),
                    api_key_env: "QUORUM_BENCH_NO_KEY".into(),
                    structured_output: true,
                    max_tokens: None,
                },
            );
            e.concurrency = 1024;
            e
        })
        .collect()
}

/// The rate search, then the overhead at half the highest rate sustained.
async fn open_loop(
    pool: &PgPool,
    pipeline: &Pipeline,
    args: &PipelineBenchArgs,
) -> anyhow::Result<OpenLoopReport> {
    let sample = quorum_domain::Event::new(
        "/bench",
        "com.example.bench",
        StreamId::new("bench", "sample")?,
        TenantId::new("bench")?,
        bytes::Bytes::from(vec![b'x'; 256]),
    );
    let raw_batched = raw::postgres_batched(pool, 50_000, 8, 100, &sample).await?;
    let (client, key) = (&pipeline.http, pipeline.key.as_str());
    let url = format!("{}/v1/queries", pipeline.base);

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
    let (mut overhead, mut to_results, mut to_consensus) = Default::default();
    type At = chrono::DateTime<chrono::Utc>;
    let rows: Vec<(At, At, At)> = sqlx::query_as(
        "SELECT s.recorded_at, max(e.recorded_at), c.recorded_at
         FROM events s
         JOIN events c ON c.stream_id = s.stream_id AND c.type LIKE 'quorum.consensus.%'
         JOIN events e ON e.stream_id = s.stream_id AND e.type LIKE 'quorum.expert.%'
         WHERE s.type = 'quorum.query.submitted' AND s.recorded_at >= $1
         GROUP BY s.position, c.position",
    )
    .bind(started_at)
    .fetch_all(pool)
    .await?;
    let ms = |d: chrono::TimeDelta| d.to_std().unwrap_or_default();
    for (submitted, results, decided) in rows {
        Samples::push(&mut overhead, ms(decided - submitted));
        Samples::push(&mut to_results, ms(results - submitted));
        Samples::push(&mut to_consensus, ms(decided - results));
    }
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
        overhead_p50_ms: overhead.percentile(50.0),
        overhead_p99_ms: overhead.percentile(99.0),
        results_p50_ms: to_results.percentile(50.0),
        results_p99_ms: to_results.percentile(99.0),
        consensus_p50_ms: to_consensus.percentile(50.0),
        consensus_p99_ms: to_consensus.percentile(99.0),
        pipeline_events_per_sec: events_per_sec.round() as u64,
        raw_postgres_batched_rows_per_sec: raw_batched.round(),
        rates,
    })
}

/// `clients` users each submitting a query and waiting for its consensus with `?wait=30s`, then
/// the next.
async fn closed_loop(
    pipeline: &Pipeline,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<LoopResult> {
    let (http, base, key) = (
        pipeline.http.clone(),
        pipeline.base.clone(),
        pipeline.key.clone(),
    );
    closed::run(clients, duration, move |n| {
        let (http, base, key) = (http.clone(), base.clone(), key.clone());
        async move {
            let submitted: serde_json::Value = http
                .post(format!("{base}/v1/queries"))
                .bearer_auth(&key)
                .json(&serde_json::json!({ "question": format!("What is the capital of France? ({n})") }))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let id = submitted["query_id"]
                .as_str()
                .ok_or_else(|| anyhow::anyhow!("no query_id in {submitted}"))?;
            let view: serde_json::Value = http
                .get(format!("{base}/v1/queries/{id}?wait=30s"))
                .bearer_auth(&key)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            anyhow::ensure!(view["status"] != "pending", "query {id} not decided in 30 s");
            Ok(())
        }
    })
    .await
}

/// A bare HTTP client making, for each query, the three calls Quorum's experts make (the same
/// request body), concurrently, and reading each reply's JSON: what calling the experts costs
/// without Quorum.
async fn bare_client(
    base_url: &str,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<LoopResult> {
    let http = reqwest::Client::new();
    let url = format!("{base_url}/chat/completions");
    let experts = openai_experts(base_url);
    closed::run(clients, duration, move |n| {
        let (http, url) = (http.clone(), url.clone());
        let question = format!("What is the capital of France? ({n})");
        let bodies: Vec<serde_json::Value> = experts
            .iter()
            .map(|e| match &e.provider {
                quorum_experts::ProviderConfig::Openai(c) => {
                    quorum_experts::provider::openai::request_body(c, &question)
                }
                _ => unreachable!("openai experts only"),
            })
            .collect();
        async move {
            let calls = bodies.iter().map(|body| async {
                let reply: serde_json::Value = http
                    .post(&url)
                    .json(body)
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                anyhow::ensure!(reply["choices"][0]["message"]["content"].is_string());
                anyhow::Ok(())
            });
            futures::future::try_join_all(calls).await?;
            Ok(())
        }
    })
    .await
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

impl std::fmt::Display for PipelineReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let experts = match self.experts {
            Experts::Scripted => "3 scripted experts",
            Experts::Openai => "3 openai experts -> stub process",
        };
        writeln!(
            f,
            "pipeline: ingest -> fan-out ({experts}) -> consensus -> read model"
        )?;
        if let Some(open) = &self.open_loop {
            write!(f, "{open}")?;
        }
        if !self.closed_loop.is_empty() {
            writeln!(
                f,
                "  closed loop (each client submits, then GET ?wait=30s, then the next):"
            )?;
        }
        for row in &self.closed_loop {
            let q = &row.quorum;
            write!(
                f,
                "  {:>4} clients  quorum {:>7.0} queries/s, p50 {:>6.1} ms, p99 {:>6.1} ms",
                q.clients, q.queries_per_sec, q.p50_ms, q.p99_ms
            )?;
            if let (Some(b), Some(r)) = (&row.bare_client, row.ratio) {
                write!(
                    f,
                    "  | bare client {:>7.0} queries/s, p50 {:>6.1} ms, p99 {:>6.1} ms  | ratio {r:.2}",
                    b.queries_per_sec, b.p50_ms, b.p99_ms
                )?;
            }
            writeln!(f, "  | {:.2} ms CPU/query", row.quorum_cpu_ms_per_query)?;
        }
        let c = &self.codec;
        writeln!(
            f,
            "  event data per query ({} queries sampled): JSON {:.0} bytes, {:.1} us to encode and decode; MessagePack {:.0} bytes, {:.1} us",
            c.queries_sampled,
            c.json_bytes_per_query,
            c.json_us_per_query,
            c.msgpack_bytes_per_query,
            c.msgpack_us_per_query
        )
    }
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
            self.overhead_p50_ms,
            self.overhead_p99_ms
        )?;
        writeln!(
            f,
            "    of which submit -> last result p50 {:.1} ms, p99 {:.1} ms; last result -> consensus p50 {:.1} ms, p99 {:.1} ms",
            self.results_p50_ms, self.results_p99_ms, self.consensus_p50_ms, self.consensus_p99_ms
        )?;
        writeln!(
            f,
            "  raw postgres: {:.0} rows/s in 100-row batches",
            self.raw_postgres_batched_rows_per_sec
        )
    }
}
