//! `quorum bench tools`: sagas of three steps through tool-exec (the relay, the consumer, an event
//! per start and outcome) beside the same calls made directly, in the same run: `http` steps against
//! a local server, and no-op `exec` steps (`/bin/true` in the sandbox).

use std::time::{Duration, Instant};

use axum::routing::post;
use bytes::Bytes;
use quorum_domain::{Event, StreamId, TenantId, types};
use quorum_event_store::{EventStore, ExpectedVersion};
use quorum_runtime::{Readiness, Shutdown};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgPool;

use super::stats::{Samples, rate};

#[derive(Clone, Debug, clap::Args)]
pub struct ToolsBenchArgs {
    /// Sagas per kind.
    #[arg(long, default_value_t = 300)]
    pub sagas: u64,
}

#[derive(Debug, Serialize)]
pub struct ToolsReport {
    pub sagas: u64,
    pub http: KindReport,
    pub exec: KindReport,
}

#[derive(Debug, Serialize)]
pub struct KindReport {
    pub sagas_per_sec: f64,
    pub direct_sagas_per_sec: f64,
    pub direct_call_p50_ms: f64,
    pub direct_call_p99_ms: f64,
    /// A saga's submit-to-completed time over three, less a direct call at the same percentile.
    pub overhead_per_step_p50_ms: f64,
    pub overhead_per_step_p99_ms: f64,
}

impl std::fmt::Display for ToolsReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "tool sagas, 3 steps each, {} per kind", self.sagas)?;
        for (name, k) in [("http", &self.http), ("exec", &self.exec)] {
            writeln!(
                f,
                "  {name:<5} {:>7.1} sagas/s (direct {:>7.1}/s)  direct call p50 {:.2} ms p99 {:.2} ms  overhead/step p50 {:.2} ms p99 {:.2} ms",
                k.sagas_per_sec,
                k.direct_sagas_per_sec,
                k.direct_call_p50_ms,
                k.direct_call_p99_ms,
                k.overhead_per_step_p50_ms,
                k.overhead_per_step_p99_ms
            )?;
        }
        Ok(())
    }
}

pub async fn run(
    pool: &PgPool,
    js: &async_nats::jetstream::Context,
    nats_url: &str,
    database_url: &str,
    args: &ToolsBenchArgs,
) -> anyhow::Result<ToolsReport> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().route("/step", post(|| async { "{}" }));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let mut config = quorum_tool_exec::config::ToolExecConfig::default();
    config.common.nats_url = nats_url.to_owned();
    config.common.database_url = database_url.to_owned();
    config.http.allowed_hosts = vec![addr.to_string()];
    config.exec.allowed_programs = vec!["/bin/true".into()];
    config.default_policy.allowed_tools = vec!["http".into(), "exec".into()];
    config.concurrency = 32;
    config.exec_concurrency = 32;
    let shutdown = Shutdown::new();
    shutdown.spawn(quorum_relay::run(
        pool.clone(),
        js.clone(),
        Default::default(),
        shutdown.token(),
    ));
    quorum_tool_exec::start(
        &config,
        pool.clone(),
        js.clone(),
        &shutdown,
        &Readiness::new(),
    );

    let http_step = json!({ "tool": "http", "args": { "method": "POST", "url": format!("http://{addr}/step") } });
    let exec_step = json!({ "tool": "exec", "args": { "program": "/bin/true" } });
    let client = quorum_http_client::client();
    let url = format!("http://{addr}/step");
    let http = measure(pool, args.sagas, &http_step, || {
        let (client, url) = (client.clone(), url.clone());
        async move {
            client.post(url).send().await?.error_for_status()?;
            anyhow::Ok(())
        }
    })
    .await?;
    let policy = config.exec.clone();
    let workdir = std::env::temp_dir().join(format!("quorum-bench-exec-{}", std::process::id()));
    let workdir = quorum_sandbox::saga_workdir_for(
        &policy,
        &std::env::temp_dir(),
        workdir.file_name().unwrap().to_str().unwrap(),
    )?;
    let exec = measure(pool, args.sagas, &exec_step, || {
        let (policy, workdir) = (policy.clone(), workdir.clone());
        async move {
            let req = quorum_sandbox::ExecRequest {
                program: "/bin/true".into(),
                ..Default::default()
            };
            quorum_sandbox::run(&policy, &workdir, &req).await?;
            anyhow::Ok(())
        }
    })
    .await?;
    shutdown.cancel();
    shutdown.wait(Duration::from_secs(30)).await?;
    server.abort();
    Ok(ToolsReport {
        sagas: args.sagas,
        http,
        exec,
    })
}

/// Runs `sagas` plans of three `step`s at once through tool-exec, then the same number of
/// three-call sequences directly with the same concurrency.
async fn measure<F, Fut>(
    pool: &PgPool,
    sagas: u64,
    step: &Value,
    direct: F,
) -> anyhow::Result<KindReport>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    const CONCURRENCY: u64 = 32;
    // Direct: the same calls, 32 sequences of three at a time.
    let mut calls = Samples::default();
    let started = Instant::now();
    for _ in 0..sagas.div_ceil(CONCURRENCY) {
        let mut batch = Vec::new();
        for _ in 0..CONCURRENCY {
            let mut seq = Vec::new();
            for _ in 0..3 {
                seq.push(direct());
            }
            batch.push(tokio::spawn(async move {
                let mut times = Vec::new();
                for call in seq {
                    let t = Instant::now();
                    call.await?;
                    times.push(t.elapsed());
                }
                anyhow::Ok(times)
            }));
        }
        for b in batch {
            for t in b.await?? {
                calls.push(t);
            }
        }
    }
    let direct_rate = rate(sagas.div_ceil(CONCURRENCY) * CONCURRENCY, started.elapsed());
    let (call_p50, call_p99) = (calls.percentile(50.0), calls.percentile(99.0));

    let store = EventStore::new(pool.clone());
    let plan = json!({ "steps": [
        { "name": "a", "tool": step }, { "name": "b", "tool": step }, { "name": "c", "tool": step },
    ]});
    let data = json!({ "plan": plan, "origin": { "kind": "upstream" } }).to_string();
    let tenant = TenantId::new("bench")?;
    let first = uuid::Uuid::now_v7();
    let started = Instant::now();
    for _ in 0..sagas {
        let stream = StreamId::new("saga", uuid::Uuid::now_v7())?;
        let event = Event::new(
            "/bench",
            types::TOOL_PLAN_REQUESTED,
            stream.clone(),
            tenant.clone(),
            Bytes::from(data.clone()),
        );
        store
            .append(&stream, ExpectedVersion::NoStream, &[event])
            .await?;
    }
    let since = format!("saga/{first}");
    loop {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE type = 'quorum.tool.plan.completed' AND stream_id > $1",
        )
        .bind(&since)
        .fetch_one(pool)
        .await?;
        if done as u64 >= sagas {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "sagas did not complete"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let saga_rate = rate(sagas, started.elapsed());
    let rows: Vec<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT s.recorded_at, c.recorded_at FROM events s JOIN events c ON c.stream_id = s.stream_id
         WHERE s.type = 'quorum.tool.plan.requested' AND c.type = 'quorum.tool.plan.completed' AND s.stream_id > $1",
    )
    .bind(&since)
    .fetch_all(pool)
    .await?;
    let mut per_step = Samples::default();
    for (a, b) in rows {
        per_step.push((b - a).to_std().unwrap_or_default() / 3);
    }
    Ok(KindReport {
        sagas_per_sec: saga_rate,
        direct_sagas_per_sec: direct_rate,
        direct_call_p50_ms: call_p50,
        direct_call_p99_ms: call_p99,
        overhead_per_step_p50_ms: (per_step.percentile(50.0) - call_p50).max(0.0),
        overhead_per_step_p99_ms: (per_step.percentile(99.0) - call_p99).max(0.0),
    })
}
