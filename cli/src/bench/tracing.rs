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
//! `off`, `on` and `sampled` run once each per round (`--rounds`), in an order that turns by one
//! each round: on a shared machine whose speed drifts by more than tracing costs, the median of
//! ratios taken run beside run is what can be compared. The reports, the CPU each child spent
//! per query, and the ratios to `off` (and `off` to `silent`: what the logs cost) come out
//! together.

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;

use super::pipeline::PipelineBenchArgs;
use super::stats::ratio;
use super::tracing_child::{Child, Tracing};

#[derive(Debug, Serialize)]
pub struct TracingReport {
    pub silent: Run,
    /// `off`, `on` and `sampled`, once each per round, in an order that turns by one each round,
    /// so that a machine growing faster or slower during the bench weighs on each alike.
    pub rounds: Vec<Round>,
    /// Spans the collector received from the runs with every span exported, and the exports
    /// they came in.
    pub spans_exported: u64,
    pub export_requests: u64,
    /// The spans of those runs per query, by name.
    pub spans_per_query: BTreeMap<String, f64>,
    /// Spans the collector received from the runs with one trace in ten exported.
    pub sampled_spans_exported: u64,
    /// On over off, the median of the rounds': the highest rate sustained (open loop) or
    /// queries/s (closed loop, first row); none with `--at`, where both were offered one rate.
    pub throughput_ratio: Option<f64>,
    /// On over off, the median of the rounds': the overhead p99 (open loop, at half load) or the
    /// p99 (closed loop).
    pub p99_ratio: f64,
    pub cpu_per_query_ratio: f64,
    /// `off` (of the first round) over `silent`: what the logs cost, tracing off.
    pub logs_throughput_ratio: Option<f64>,
    pub logs_p99_ratio: f64,
    pub logs_cpu_per_query_ratio: f64,
    /// `sampled` over `off`, the median of the rounds'.
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
    /// CPU this process spent meanwhile per query, ms: the collector receiving and decoding the
    /// child's spans, on the same cores (none when nothing is exported).
    pub collector_cpu_ms_per_query: f64,
}

/// One run of each mode compared, and their ratios to `off`.
#[derive(Debug, Serialize)]
pub struct Round {
    pub off: Run,
    pub on: Run,
    pub sampled: Run,
    /// `on` over `off`.
    pub on_off: Ratios,
    /// `sampled` over `off`.
    pub sampled_off: Ratios,
}

/// One run's figures over another's.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Ratios {
    /// None when both were offered one rate (`--at`).
    pub throughput: Option<f64>,
    pub p99: f64,
    pub cpu_per_query: f64,
}

impl Ratios {
    fn of(run: &Run, base: &Run) -> anyhow::Result<Self> {
        let (throughput, p99) = headline(&base.report, &run.report)?;
        Ok(Ratios {
            throughput,
            p99,
            cpu_per_query: ratio(run.cpu_ms_per_query, base.cpu_ms_per_query),
        })
    }

    /// Each figure's median over `all`.
    fn median(all: impl Iterator<Item = Ratios> + Clone) -> Ratios {
        Ratios {
            throughput: all
                .clone()
                .map(|r| r.throughput)
                .collect::<Option<Vec<_>>>()
                .map(median),
            p99: median(all.clone().map(|r| r.p99).collect()),
            cpu_per_query: median(all.map(|r| r.cpu_per_query).collect()),
        }
    }
}

/// The median (of an even count, the mean of the middle two); 0 for none.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => ratio(values[n / 2 - 1] + values[n / 2], 2.0),
    }
}

pub async fn run(
    pool: &PgPool,
    database_url: &str,
    args: &PipelineBenchArgs,
) -> anyhow::Result<TracingReport> {
    let collector = super::otlp_collector::Collector::start().await?;
    let child = Child { database_url, args };
    let silent = child.run(pool, Tracing::Silent).await?;
    let mut rounds = Vec::new();
    // What the runs with every span exported sent, by name; the sampled runs' spans apart.
    let mut exported: BTreeMap<String, u64> = BTreeMap::new();
    let (mut export_requests, mut sampled_spans_exported, mut on_queries) = (0, 0, 0);
    for round in 0..args.rounds.max(1) {
        let mut runs: [Option<Run>; 3] = Default::default();
        for i in 0..3 {
            let mode = (i + round as usize) % 3;
            let (spans, requests, before) =
                (collector.spans(), collector.requests(), collector.by_name());
            let run = match mode {
                0 => child.run(pool, Tracing::Off).await?,
                1 => {
                    child
                        .run(pool, Tracing::Exported(&collector.endpoint))
                        .await?
                }
                _ => {
                    child
                        .run(pool, Tracing::Sampled(&collector.endpoint))
                        .await?
                }
            };
            if mode == 1 {
                for (name, n) in collector.by_name() {
                    *exported.entry(name.clone()).or_default() +=
                        n - before.get(&name).copied().unwrap_or(0);
                }
                export_requests += collector.requests() - requests;
                on_queries += run.queries;
            } else if mode == 2 {
                sampled_spans_exported += collector.spans() - spans;
            }
            runs[mode] = Some(run);
        }
        let [Some(off), Some(on), Some(sampled)] = runs else {
            unreachable!("each mode runs once a round")
        };
        rounds.push(Round {
            on_off: Ratios::of(&on, &off)?,
            sampled_off: Ratios::of(&sampled, &off)?,
            off,
            on,
            sampled,
        });
    }
    let logs = Ratios::of(&rounds[0].off, &silent)?;
    let on = Ratios::median(rounds.iter().map(|r| r.on_off));
    let sampled = Ratios::median(rounds.iter().map(|r| r.sampled_off));
    Ok(TracingReport {
        throughput_ratio: on.throughput,
        p99_ratio: on.p99,
        cpu_per_query_ratio: on.cpu_per_query,
        logs_throughput_ratio: logs.throughput,
        logs_p99_ratio: logs.p99,
        logs_cpu_per_query_ratio: logs.cpu_per_query,
        sampled_throughput_ratio: sampled.throughput,
        sampled_p99_ratio: sampled.p99,
        sampled_cpu_per_query_ratio: sampled.cpu_per_query,
        silent,
        rounds,
        spans_exported: exported.values().sum(),
        export_requests,
        spans_per_query: exported
            .into_iter()
            .map(|(name, n)| (name, n as f64 / on_queries.max(1) as f64))
            .collect(),
        sampled_spans_exported,
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

impl std::fmt::Display for TracingReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "pipeline silent (no subscriber, no logs), with tracing off (logs, no exporter), on (every span exported over OTLP/HTTP) and 1/10 (one trace in ten exported), one child process each:"
        )?;
        write_run(f, "silent", &self.silent)?;
        for (i, round) in self.rounds.iter().enumerate() {
            writeln!(f, "  round {}:", i + 1)?;
            write_run(f, "off", &round.off)?;
            write_run(f, "on", &round.on)?;
            write_run(f, "1/10", &round.sampled)?;
            writeln!(
                f,
                "    on/off {}; 1/10 sampled/off {}",
                round.on_off, round.sampled_off
            )?;
        }
        let logs = Ratios {
            throughput: self.logs_throughput_ratio,
            p99: self.logs_p99_ratio,
            cpu_per_query: self.logs_cpu_per_query_ratio,
        };
        writeln!(f, "  off/silent (what the logs cost): {logs}")?;
        let over = if self.rounds.len() > 1 {
            format!(" (median of {} rounds)", self.rounds.len())
        } else {
            String::new()
        };
        let on = Ratios {
            throughput: self.throughput_ratio,
            p99: self.p99_ratio,
            cpu_per_query: self.cpu_per_query_ratio,
        };
        writeln!(
            f,
            "  on/off{over}: {on}; {} spans exported in {} requests",
            self.spans_exported, self.export_requests
        )?;
        let per_query: Vec<String> = self
            .spans_per_query
            .iter()
            .map(|(name, n)| format!("{name} {n:.2}"))
            .collect();
        writeln!(f, "  spans per query (on): {}", per_query.join(", "))?;
        let sampled = Ratios {
            throughput: self.sampled_throughput_ratio,
            p99: self.sampled_p99_ratio,
            cpu_per_query: self.sampled_cpu_per_query_ratio,
        };
        writeln!(
            f,
            "  1/10 sampled/off{over}: {sampled}; {} spans exported",
            self.sampled_spans_exported
        )
    }
}

impl std::fmt::Display for Ratios {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.throughput {
            Some(t) => write!(f, "throughput {t:.2}")?,
            None => write!(f, "throughput n/a (--at)")?,
        }
        write!(
            f,
            ", p99 {:.2}, CPU per query {:.2}",
            self.p99, self.cpu_per_query
        )
    }
}

/// One child's figures, a line.
fn write_run(f: &mut std::fmt::Formatter<'_>, name: &str, run: &Run) -> std::fmt::Result {
    let open = &run.report["open_loop"];
    let closed = &run.report["closed_loop"][0]["quorum"];
    if open.is_object() {
        writeln!(
            f,
            "  {name:>6}: max sustained {} queries/s; at half load overhead p50 {:.1} ms, p99 {:.1} ms; {:.2} ms CPU/query, collector {:.2} ({} queries)",
            open["max_sustained_queries_per_sec"],
            figure(&open["overhead_p50_ms"]),
            figure(&open["overhead_p99_ms"]),
            run.cpu_ms_per_query,
            run.collector_cpu_ms_per_query,
            run.queries
        )
    } else {
        writeln!(
            f,
            "  {name:>6}: {} clients, {:.0} queries/s, p50 {:.1} ms, p99 {:.1} ms; {:.2} ms CPU/query, collector {:.2} ({} queries)",
            closed["clients"],
            figure(&closed["queries_per_sec"]),
            figure(&closed["p50_ms"]),
            figure(&closed["p99_ms"]),
            run.cpu_ms_per_query,
            run.collector_cpu_ms_per_query,
            run.queries
        )
    }
}

/// A figure from a report, for printing with a precision (a JSON number prints all its digits).
fn figure(value: &serde_json::Value) -> f64 {
    value.as_f64().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn the_median_is_the_middle_value_or_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![1.30, 1.05, 1.08]), 1.08);
        assert_eq!(median(vec![1.10, 1.04]), 1.07);
        assert_eq!(median(vec![]), 0.0);
    }
}
