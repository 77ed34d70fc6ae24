//! `quorum bench pipeline --tracing`: what tracing costs. The same pipeline bench runs four times,
//! each in a child process of this binary, on a database of its own on the stack's Postgres and a
//! nats-server of its own:
//! - `silent`: no subscriber at all, no logs either: the floor, for reference;
//! - `off`: tracing off, as a service runs without an exporter: logs at `info` (each line with its
//!   trace id, tenant and correlation id), trace context passed on, no span built;
//! - `on`: the same with every span exported over OTLP/HTTP to a collector this process runs,
//!   which decodes each export and counts its spans;
//! - `sampled`: the same with one trace in ten kept (`OTEL_TRACES_SAMPLER=parentbased_traceidratio`,
//!   the SDK's own variables), as a busy deployment would run.
//!
//! The reports, the CPU each child spent per query, and the ratios to `off` (and `off` to
//! `silent`: what the logs cost) come out together.

use std::collections::BTreeMap;
use std::process::Stdio;

use anyhow::Context as _;
use quorum_devstack::{NatsOptions, NatsServer};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;

use super::pipeline::PipelineBenchArgs;
use super::stats::ratio;

#[derive(Debug, Serialize)]
pub struct TracingReport {
    pub silent: Run,
    pub off: Run,
    pub on: Run,
    pub sampled: Run,
    /// Spans the collector received from the run with every span exported, and the exports they
    /// came in.
    pub spans_exported: u64,
    pub export_requests: u64,
    /// The spans of that run per query, by name (a send's subject left out).
    pub spans_per_query: BTreeMap<String, f64>,
    /// Spans the collector received from the run with one trace in ten exported.
    pub sampled_spans_exported: u64,
    /// On over off: the highest rate sustained (open loop) or queries/s (closed loop, first row);
    /// none with `--at`, where both were offered the same rate.
    pub throughput_ratio: Option<f64>,
    /// On over off: the overhead p99 (open loop, at half load) or the p99 (closed loop).
    pub p99_ratio: f64,
    pub cpu_per_query_ratio: f64,
    /// `off` over `silent`: what the logs cost, tracing off.
    pub logs_throughput_ratio: Option<f64>,
    pub logs_p99_ratio: f64,
    pub logs_cpu_per_query_ratio: f64,
    /// `sampled` over `off`.
    pub sampled_throughput_ratio: Option<f64>,
    pub sampled_p99_ratio: f64,
    pub sampled_cpu_per_query_ratio: f64,
}

/// One child's run.
#[derive(Debug, Serialize)]
pub struct Run {
    /// The child's `bench pipeline --json` report.
    pub report: Value,
    /// Queries it submitted, counted in the store.
    pub queries: u64,
    /// CPU the child spent (user and system) per query, ms.
    pub cpu_ms_per_query: f64,
}

pub async fn run(
    pool: &PgPool,
    database_url: &str,
    args: &PipelineBenchArgs,
) -> anyhow::Result<TracingReport> {
    let collector = super::otlp_collector::Collector::start().await?;
    let child = Child { database_url, args };
    let silent = child.run(pool, Tracing::Silent).await?;
    let off = child.run(pool, Tracing::Off).await?;
    let on = child
        .run(pool, Tracing::Exported(&collector.endpoint))
        .await?;
    let spans_exported = collector.spans();
    let export_requests = collector.requests();
    let spans_per_query = collector
        .by_name()
        .into_iter()
        .map(|(name, n)| (name, n as f64 / on.queries.max(1) as f64))
        .collect();
    let sampled = child
        .run(pool, Tracing::Sampled(&collector.endpoint))
        .await?;
    let sampled_spans_exported = collector.spans() - spans_exported;
    let (throughput, p99) = headline(&off.report, &on.report)?;
    let (sampled_throughput, sampled_p99) = headline(&off.report, &sampled.report)?;
    let (logs_throughput, logs_p99) = headline(&silent.report, &off.report)?;
    Ok(TracingReport {
        throughput_ratio: throughput,
        p99_ratio: p99,
        cpu_per_query_ratio: ratio(on.cpu_ms_per_query, off.cpu_ms_per_query),
        logs_throughput_ratio: logs_throughput,
        logs_p99_ratio: logs_p99,
        logs_cpu_per_query_ratio: ratio(off.cpu_ms_per_query, silent.cpu_ms_per_query),
        sampled_throughput_ratio: sampled_throughput,
        sampled_p99_ratio: sampled_p99,
        sampled_cpu_per_query_ratio: ratio(sampled.cpu_ms_per_query, off.cpu_ms_per_query),
        silent,
        sampled,
        spans_exported,
        export_requests,
        spans_per_query,
        sampled_spans_exported,
        off,
        on,
    })
}

/// The ratios of on over off for the figures a user compares: throughput (unless both were
/// offered one rate) and p99.
fn headline(off: &Value, on: &Value) -> anyhow::Result<(Option<f64>, f64)> {
    let figure = |report: &Value, open: &str, closed: &str| -> anyhow::Result<f64> {
        report["open_loop"][open]
            .as_f64()
            .or_else(|| report["closed_loop"][0]["quorum"][closed].as_f64())
            .with_context(|| format!("no {open} or {closed} in {report}"))
    };
    let throughput = |r| figure(r, "max_sustained_queries_per_sec", "queries_per_sec");
    let p99 = |r| figure(r, "overhead_p99_ms", "p99_ms");
    let (on_rate, off_rate) = (throughput(on)?, throughput(off)?);
    // The rate search did not run (`--at`): a sustained rate of 0 is no measurement.
    let searched = on_rate > 0.0 && off_rate > 0.0;
    Ok((
        searched.then(|| ratio(on_rate, off_rate)),
        ratio(p99(on)?, p99(off)?),
    ))
}

/// How a child traces.
#[derive(Clone, Copy, Debug)]
enum Tracing<'a> {
    /// No subscriber.
    Silent,
    /// Logs, no exporter.
    Off,
    /// To this OTLP/HTTP endpoint.
    Exported(&'a str),
    /// To this endpoint, one trace in ten.
    Sampled(&'a str),
}

/// How a child is started: this binary, `bench pipeline --json` with the parent's flags, on the
/// parent's Postgres.
struct Child<'a> {
    database_url: &'a str,
    args: &'a PipelineBenchArgs,
}

impl Child<'_> {
    /// Runs the child, tracing as `tracing` says, on a database of its own (made on the stack's
    /// server, dropped after) and a nats-server of its own (started here, stopped after): each
    /// run starts from the same empty store and bus, so a later run is not slowed by the events
    /// of the ones before. (Both must be new together: the relay resumes from the cursor the
    /// stream's last message carries, and JetStream drops a message id it saw lately.)
    async fn run(&self, pool: &PgPool, tracing: Tracing<'_>) -> anyhow::Result<Run> {
        let store = std::env::temp_dir().join(format!(
            "quorum-tracing-nats-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let mut nats = NatsServer::start(NatsOptions::new(0, &store)).await?;
        let run = self.run_with(pool, &nats.url(), tracing).await;
        nats.stop().await?;
        let _ = std::fs::remove_dir_all(&store);
        run
    }

    async fn run_with(
        &self,
        pool: &PgPool,
        nats_url: &str,
        tracing: Tracing<'_>,
    ) -> anyhow::Result<Run> {
        let name = format!("quorum_tracing_{}", uuid::Uuid::new_v4().simple());
        // The name is ours: a fixed prefix and hex digits.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(pool)
            .await?;
        let mut url = url::Url::parse(self.database_url)?;
        url.set_path(&name);
        let run = self.run_on(url.as_str(), nats_url, tracing).await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(pool)
        .await?;
        run
    }

    async fn run_on(
        &self,
        database_url: &str,
        nats_url: &str,
        tracing: Tracing<'_>,
    ) -> anyhow::Result<Run> {
        let mut command = tokio::process::Command::new(std::env::current_exe()?);
        command
            .args(["--json", "bench", "pipeline"])
            .args(self.flags())
            .env("QUORUM_NATS_URL", nats_url)
            .env("QUORUM_DATABASE_URL", database_url)
            .env_remove("RUST_LOG")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_TRACES_SAMPLER")
            .env_remove("OTEL_TRACES_SAMPLER_ARG")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        // As a service runs: its default filter; spans exported as they end, when exported.
        if !matches!(tracing, Tracing::Silent) {
            command.env("RUST_LOG", "info,async_nats=warn");
        }
        if let Tracing::Exported(endpoint) | Tracing::Sampled(endpoint) = tracing {
            command.env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint);
        }
        if let Tracing::Sampled(_) = tracing {
            command
                .env("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
                .env("OTEL_TRACES_SAMPLER_ARG", "0.1");
        }
        let cpu_before = super::procs::reaped_children_cpu();
        let output = command.output().await?;
        let cpu = super::procs::reaped_children_cpu() - cpu_before;
        anyhow::ensure!(
            output.status.success(),
            "the child bench failed: {}",
            output.status
        );
        let report: Value = serde_json::from_slice(&output.stdout)
            .context("the child bench's report is not JSON")?;
        let pool = crate::stack::pool(database_url, 1).await?;
        let queries: i64 =
            sqlx::query_scalar("SELECT count(*) FROM events WHERE type = 'quorum.query.submitted'")
                .fetch_one(&pool)
                .await?;
        pool.close().await;
        let queries = u64::try_from(queries).unwrap_or(0);
        Ok(Run {
            report,
            queries,
            cpu_ms_per_query: cpu * 1000.0 / queries.max(1) as f64,
        })
    }

    fn flags(&self) -> Vec<String> {
        let a = self.args;
        let mut flags = vec![
            format!("--step-seconds={}", a.step_seconds),
            format!("--max-rate={}", a.max_rate),
            format!("--seconds={}", a.seconds),
            format!(
                "--experts={}",
                serde_json::to_value(a.experts)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_else(|| "scripted".to_owned())
            ),
        ];
        if let Some(at) = a.at {
            flags.push(format!("--at={at}"));
        }
        if !a.clients.is_empty() {
            let clients: Vec<String> = a.clients.iter().map(ToString::to_string).collect();
            flags.push(format!("--clients={}", clients.join(",")));
        }
        flags
    }
}

impl std::fmt::Display for TracingReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "pipeline silent (no subscriber, no logs), with tracing off (logs, no exporter), on (every span exported over OTLP/HTTP) and 1/10 (one trace in ten exported), one child process each:"
        )?;
        for (name, run) in [
            ("silent", &self.silent),
            ("off", &self.off),
            ("on", &self.on),
            ("1/10", &self.sampled),
        ] {
            let open = &run.report["open_loop"];
            let closed = &run.report["closed_loop"][0]["quorum"];
            if open.is_object() {
                writeln!(
                    f,
                    "  {name:>6}: max sustained {} queries/s; at half load overhead p50 {:.1} ms, p99 {:.1} ms; {:.2} ms CPU/query ({} queries)",
                    open["max_sustained_queries_per_sec"],
                    ms(&open["overhead_p50_ms"]),
                    ms(&open["overhead_p99_ms"]),
                    run.cpu_ms_per_query,
                    run.queries
                )?;
            } else {
                writeln!(
                    f,
                    "  {name:>6}: {} clients, {} queries/s, p50 {:.1} ms, p99 {:.1} ms; {:.2} ms CPU/query ({} queries)",
                    closed["clients"],
                    closed["queries_per_sec"],
                    ms(&closed["p50_ms"]),
                    ms(&closed["p99_ms"]),
                    run.cpu_ms_per_query,
                    run.queries
                )?;
            }
        }
        let shown =
            |r: Option<f64>| r.map_or_else(|| "n/a (--at)".to_owned(), |r| format!("{r:.2}"));
        writeln!(
            f,
            "  off/silent (what the logs cost): throughput {}, p99 {:.2}, CPU per query {:.2}",
            shown(self.logs_throughput_ratio),
            self.logs_p99_ratio,
            self.logs_cpu_per_query_ratio
        )?;
        writeln!(
            f,
            "  on/off: throughput {}, p99 {:.2}, CPU per query {:.2}; {} spans exported in {} requests",
            shown(self.throughput_ratio),
            self.p99_ratio,
            self.cpu_per_query_ratio,
            self.spans_exported,
            self.export_requests
        )?;
        let per_query: Vec<String> = self
            .spans_per_query
            .iter()
            .map(|(name, n)| format!("{name} {n:.2}"))
            .collect();
        writeln!(f, "  spans per query (on): {}", per_query.join(", "))?;
        writeln!(
            f,
            "  1/10 sampled/off: throughput {}, p99 {:.2}, CPU per query {:.2}; {} spans exported",
            shown(self.sampled_throughput_ratio),
            self.sampled_p99_ratio,
            self.sampled_cpu_per_query_ratio,
            self.sampled_spans_exported
        )
    }
}

/// A latency from a report, for printing with a precision (a JSON number prints all its digits).
fn ms(value: &serde_json::Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}
