//! One child of `quorum bench pipeline --tracing`: this binary's `bench pipeline --json`, tracing
//! as its mode says, on a database and a nats-server of its own; what it reports, and the CPU it
//! spent per query.

use std::process::Stdio;

use anyhow::Context as _;
use quorum_devstack::{NatsOptions, NatsServer};
use serde_json::Value;
use sqlx::PgPool;

use super::pipeline::PipelineBenchArgs;
use super::procs;
use super::tracing::Run;

/// How a child traces.
#[derive(Clone, Copy, Debug)]
pub(super) enum Tracing<'a> {
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
pub(super) struct Child<'a> {
    pub database_url: &'a str,
    pub args: &'a PipelineBenchArgs,
}

impl Child<'_> {
    /// Runs the child, tracing as `tracing` says, on a database of its own (made on the stack's
    /// server, dropped after) and a nats-server of its own (started here, stopped after): each
    /// run starts from the same empty store and bus, so a later run is not slowed by the events
    /// of the ones before. (Both must be new together: the relay resumes from the cursor the
    /// stream's last message carries, and JetStream drops a message id it saw lately.)
    pub async fn run(&self, pool: &PgPool, tracing: Tracing<'_>) -> anyhow::Result<Run> {
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
        let (cpu_before, own_before) = (procs::reaped_children_cpu(), procs::own_cpu());
        let output = command.output().await?;
        let cpu = procs::reaped_children_cpu() - cpu_before;
        let collector_cpu = procs::own_cpu() - own_before;
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
            collector_cpu_ms_per_query: collector_cpu * 1000.0 / queries.max(1) as f64,
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
