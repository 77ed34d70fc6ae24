//! `quorum bench pipeline`: queries submitted through ingest, answered by three experts through
//! fan-out and consensus into the read model. The experts are zero-latency scripted ones, or
//! (`--experts openai`) `openai` providers calling an OpenAI-compatible stub in a process of its
//! own. Open loop (the default): the highest rate sustained and, at half of it, the overhead from
//! submit to consensus, beside raw Postgres batched inserts. Closed loop (`--clients 32,256`): N
//! clients each submit and wait with `?wait=`, as users of the API do, beside a bare HTTP client
//! making the same three calls per query at the same concurrency. All measured in the same run.

use std::time::Duration;

use async_nats::jetstream;
use quorum_auth::Role;
use quorum_domain::TenantId;
use quorum_experts::provider::openai::{self, OpenAiConfig};
use quorum_runtime::{Readiness, Shutdown};
use serde::Serialize;
use sqlx::PgPool;

use super::closed::{self, LoopResult};
use super::codec::{self, CodecReport};
use super::floor::{self, Floor};
use super::open_loop::{self, OpenLoopReport};
use super::procs::{self, CpuPerQuery};
use super::stats::ratio;
use super::stub::Stub;

mod report;

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
    /// Measure what tracing costs: run the bench in child processes with no logs, with tracing
    /// off, with every span exported over OTLP/HTTP to a collector this process runs, and with
    /// one trace in ten exported.
    #[arg(long)]
    pub tracing: bool,
    /// With `--tracing`: how many times to run each mode compared with `off`, in turn; the
    /// ratios reported are the medians of the rounds'.
    #[arg(long, default_value_t = 1, requires = "tracing")]
    pub rounds: u32,
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
    /// CPU per query of every process of the run that could be found (Postgres and nats-server
    /// only when they run on this machine), and how busy the machine was.
    pub cpu: CpuPerQuery,
    /// Inside the pipeline, from the stored events: what of a client's wait was not the read
    /// model and the wake-up.
    pub stored: open_loop::Stages,
    /// The same three calls per query made by a bare HTTP client (openai experts only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bare_client: Option<LoopResult>,
    /// Quorum's queries/s over the bare client's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    /// The least a query can cost on this machine, with the bare client's calls as its HTTP
    /// price: the rate no implementation passes here (openai experts only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<Floor>,
    /// The highest ratio the floor allows: its rate over the bare client's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor_ratio: Option<f64>,
}

pub async fn run(
    pool: &PgPool,
    js: &jetstream::Context,
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
        report.open_loop = Some(
            open_loop::open_loop(pool, &pipeline.http, &pipeline.base, &pipeline.key, args).await?,
        );
    }
    // Priced once, before the closed loops, while the pipeline is idle.
    let raw_costs = match (&pipeline.stub, args.clients.is_empty()) {
        (Some(_), false) => Some(floor::raw_costs(pool, js).await?),
        _ => None,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The cheapest a bare call has cost so far: the floor's price of an HTTP exchange.
    let mut exchange_ms: Option<f64> = None;
    for &clients in &args.clients {
        let duration = Duration::from_secs(args.seconds.max(1));
        let bare_client = match &pipeline.stub {
            Some(stub) => Some(bare_client(&stub.base_url, clients, duration).await?),
            None => None,
        };
        if let Some(own) = bare_client.as_ref().map(Floor::exchange_ms) {
            exchange_ms = Some(exchange_ms.map_or(own, |seen| seen.min(own)));
        }
        let ports = servers(nats_url, database_url, pipeline.stub.as_ref());
        let before = procs::sample(&ports);
        let started_at = chrono::Utc::now();
        let quorum = closed_loop(&pipeline, clients, duration).await?;
        let cpu = procs::per_query(&before, &procs::sample(&ports), quorum.queries);
        let floor = raw_costs
            .zip(exchange_ms)
            .map(|(raw, ms)| Floor::new(raw, ms, cores));
        report.closed_loop.push(ClosedLoopRow {
            stored: open_loop::stored_stages(pool, started_at).await?,
            quorum_cpu_ms_per_query: cpu.ms.get("quorum").copied().unwrap_or_default(),
            cpu,
            ratio: bare_client
                .as_ref()
                .map(|b| ratio(quorum.queries_per_sec, b.queries_per_sec)),
            floor_ratio: floor
                .zip(bare_client.as_ref())
                .map(|(floor, b)| ratio(floor.max_queries_per_sec, b.queries_per_sec)),
            floor,
            quorum,
            bare_client,
        });
    }
    report.codec = codec::measure(pool, since).await?;
    pipeline.shutdown.cancel();
    pipeline.shutdown.wait(Duration::from_secs(30)).await?;
    Ok(report)
}

/// The servers whose CPU a closed loop reports, by the port each listens on.
fn servers(nats_url: &str, database_url: &str, stub: Option<&Stub>) -> Vec<(&'static str, u16)> {
    let port = |url: &str, default: u16| {
        url::Url::parse(url)
            .ok()
            .map(|u| u.port().unwrap_or(default))
    };
    [
        ("postgres", port(database_url, 5432)),
        ("nats-server", port(nats_url, 4222)),
        ("stub", stub.and_then(|s| port(&s.base_url, 80))),
    ]
    .into_iter()
    .filter_map(|(name, port)| Some((name, port?)))
    .collect()
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
            http: quorum_http_client::builder()
                .pool_max_idle_per_host(1024)
                .build()?,
            base: format!("http://{}", running.http_addr),
            key,
            stub,
        })
    }
}

/// The three experts' names, as the scripted ones have them.
fn expert_names() -> Vec<String> {
    quorum_experts::default_experts()
        .into_iter()
        .map(|e| e.name)
        .collect()
}

/// How the expert `name` calls the stub at `base_url`.
fn stub_config(base_url: &str, name: &str) -> OpenAiConfig {
    OpenAiConfig {
        base_url: base_url.to_owned(),
        model: format!("bench-{name}"),
        api_key_env: "QUORUM_BENCH_NO_KEY".into(),
        structured_output: true,
        max_tokens: None,
    }
}

/// Three `openai` experts at `base_url`, with the limits of an expert that may take as many
/// calls as are asked of it (the stub answers at once; a real endpoint sets its own).
fn openai_experts(base_url: &str) -> Vec<quorum_experts::ExpertConfig> {
    quorum_experts::default_experts()
        .into_iter()
        .map(|mut e| {
            e.provider = quorum_experts::ProviderConfig::Openai(stub_config(base_url, &e.name));
            e.concurrency = 1024;
            e
        })
        .collect()
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
    let http = quorum_http_client::client();
    let url = format!("{base_url}/chat/completions");
    let configs: Vec<OpenAiConfig> = expert_names()
        .iter()
        .map(|name| stub_config(base_url, name))
        .collect();
    closed::run(clients, duration, move |n| {
        let (http, url) = (http.clone(), url.clone());
        let question = format!("What is the capital of France? ({n})");
        let bodies: Vec<Vec<u8>> = configs
            .iter()
            .map(|c| serde_json::to_vec(&openai::request_body(c, &question)))
            .collect::<Result<_, _>>()
            .expect("a request serializes");
        async move {
            let calls = bodies.iter().map(|body| async {
                let reply: serde_json::Value = http
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
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
