//! `quorum soak`: the stack of `quorum chaos`, no faults, a steady load at half the sustained
//! rate for a long time, every process sampled (resident memory, open files) and every query's
//! wait measured; then a burst at ten times the sustained rate. The tenant is admitted at the
//! sustained rate, as an operator sizes `rate.events_per_second`. It passes when memory and open
//! files stop growing after the warm-up, the p99 stays stable, admission control refuses the
//! burst with `Retry-After` rather than queueing it without bound, and nothing acknowledged was
//! lost.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use quorum_runtime::Shutdown;
use serde::Serialize;

use super::check::Verdict;
use super::faults;
use super::stack::{ChaosStack, Setup, base, parent_of, pid_listening};
use super::workload::{self, Ledger, Sent, Told, Workload};
use crate::bench::stats::Samples;

#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// How long the steady load runs (`1m`, `2h`); the first fifth is the warm-up.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Sends a second of the steady load (every fifth a query, waited for): half the sustained
    /// rate, which is twice this. The tenant is admitted at the sustained rate.
    #[arg(long, default_value_t = 50)]
    pub rate: u32,
    /// Then, for a tenth of the run (at least 10 s), this many times the sustained rate.
    #[arg(long, default_value_t = 10)]
    pub burst: u32,
    /// Processes of each service.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4))]
    pub replicas: u32,
    /// How many times the first half's p99 the second half's may be; 0 checks nothing (a run on
    /// a machine shared with other work, where latency says more about the neighbours).
    #[arg(long, default_value_t = 1.5)]
    pub max_p99_drift: f64,
    /// Where the stack keeps its data and logs (a temporary directory, removed after a pass).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Growth allowed between the end of the warm-up and the end of the steady load.
const MAX_GROWTH: f64 = 0.10;
/// Memory may at most double in the burst, against the end of the steady load.
const MAX_BURST_GROWTH: f64 = 1.0;

/// One process's samples: at the start, at the end of the warm-up, at the end of the steady load
/// and after the burst.
#[derive(Debug, Default, Serialize)]
pub struct Curve {
    pub rss_mb: [f64; 4],
    pub open_files: [u64; 4],
    pub rss_growth: f64,
    pub open_files_growth: f64,
}

#[derive(Debug, Serialize)]
pub struct SoakReport {
    pub duration_seconds: u64,
    pub rate: u32,
    pub processes: BTreeMap<String, Curve>,
    /// Queries' submit-to-answer time, ms: the first and second half after the warm-up.
    pub p50_ms: [f64; 2],
    pub p99_ms: [f64; 2],
    pub burst: Burst,
    pub verdict: Verdict,
    pub passed: bool,
    /// Why it did not pass.
    pub failures: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Burst {
    pub offered_per_sec: u32,
    pub sent: u64,
    pub acked: u64,
    /// 429 or 503 answers, and how many of them lacked `Retry-After`.
    pub refused: u64,
    pub refused_without_retry_after: u64,
    /// Sends that got no answer in time (the client gives up after 10 s).
    pub unanswered: u64,
}

pub async fn run(args: &SoakArgs, json: bool) -> anyhow::Result<()> {
    let temporary = args.dir.is_none();
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("quorum-soak-{}", uuid::Uuid::new_v4().simple()))
    });
    let shutdown = Shutdown::new();
    let setup = Setup {
        replicas: args.replicas,
        events_per_second: Some(sustained(args)),
    };
    let stack = ChaosStack::start(&dir, &shutdown, &setup).await?;
    let report = soak(&stack, args, json).await;
    stack.pool.close().await;
    shutdown.cancel();
    let _ = shutdown.wait(Duration::from_secs(40)).await;
    let ChaosStack { local, .. } = stack;
    local.stop().await;
    let report = report?;
    if temporary && report.passed {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if json {
        crate::outln!("{}", serde_json::to_string(&report)?)?;
    } else {
        crate::outln!("{report}")?;
    }
    anyhow::ensure!(
        report.passed,
        "the soak failed: {}; the stack's logs are in {}",
        report.failures.join("; "),
        dir.display()
    );
    Ok(())
}

async fn soak(stack: &ChaosStack, args: &SoakArgs, json: bool) -> anyhow::Result<SoakReport> {
    let workload = stack.workload(args.rate, args.duration, true)?;
    let warm_up = args.duration / 5;
    let steady = Ledger::default();
    let mut samples = vec![sample(stack)];
    let started = Instant::now();
    let load = tokio::spawn(workload::drive(workload.clone(), steady.clone()));
    tokio::time::sleep(warm_up).await;
    samples.push(sample(stack));
    if !json {
        eprintln!("soak: warmed up after {}s", warm_up.as_secs());
    }
    load.await?;
    samples.push(sample(stack));
    let burst_ledger = Ledger::default();
    let burst_rate = sustained(args).saturating_mul(args.burst.max(1));
    if !json {
        eprintln!("soak: steady load done; a burst at {burst_rate}/s");
    }
    workload::drive(
        Workload {
            rate: burst_rate,
            duration: (args.duration / 10).max(Duration::from_secs(10)),
            wait_answers: false,
            ..workload
        },
        burst_ledger.clone(),
    )
    .await;
    samples.push(sample(stack));

    let steady = steady.entries();
    let burst = burst_ledger.entries();
    let history: Vec<Sent> = steady.iter().chain(&burst).cloned().collect();
    let verdict = stack
        .settled_verdict(&history, &[], super::QUIET_WITHIN)
        .await?;
    let half = warm_up + (args.duration - warm_up) / 2;
    let waits = |from: Duration, to: Duration| -> Samples {
        let mut samples = Samples::default();
        for wait in steady
            .iter()
            .filter(|s| s.at >= from && s.at < to)
            .filter_map(|s| s.answered_in)
        {
            samples.push(wait);
        }
        samples
    };
    let (mut first, mut second) = (waits(warm_up, half), waits(half, args.duration));
    let mut report = SoakReport {
        duration_seconds: started.elapsed().as_secs(),
        rate: args.rate,
        processes: curves(&samples),
        p50_ms: [first.percentile(50.0), second.percentile(50.0)],
        p99_ms: [first.percentile(99.0), second.percentile(99.0)],
        burst: burst_summary(&burst, burst_rate),
        verdict,
        passed: false,
        failures: Vec::new(),
    };
    report.failures = failures(&report, args.max_p99_drift);
    report.passed = report.failures.is_empty();
    Ok(report)
}

/// The rate the soak takes as sustained: twice its steady rate.
fn sustained(args: &SoakArgs) -> u32 {
    args.rate.saturating_mul(2).max(1)
}

fn burst_summary(burst: &[Sent], offered_per_sec: u32) -> Burst {
    let refused: Vec<&Sent> = burst
        .iter()
        .filter(|s| match &s.told {
            Told::Refused(status) => *status == 429,
            Told::Unknown(why) => why == "HTTP 503",
            Told::Acked => false,
        })
        .collect();
    Burst {
        offered_per_sec,
        sent: burst.len() as u64,
        acked: burst.iter().filter(|s| s.told == Told::Acked).count() as u64,
        refused: refused.len() as u64,
        refused_without_retry_after: refused.iter().filter(|s| !s.retry_after).count() as u64,
        unanswered: burst
            .iter()
            .filter(|s| matches!(&s.told, Told::Unknown(why) if !why.starts_with("HTTP ")))
            .count() as u64,
    }
}

/// Why the soak did not pass. Growth after the warm-up counts for Quorum's services: nats-server's
/// and Postgres's caches grow with the data they hold until their own limits, which a short soak
/// does not reach (they are reported, and bounded in the burst like every process).
fn failures(r: &SoakReport, max_p99_drift: f64) -> Vec<String> {
    let mut failures = Vec::new();
    for (name, c) in &r.processes {
        let ours = faults::SERVICES.contains(&base(name));
        if ours && c.rss_growth > MAX_GROWTH {
            failures.push(format!(
                "{name}'s memory grew {:.0}% after the warm-up",
                c.rss_growth * 100.0
            ));
        }
        if ours && c.open_files_growth > MAX_GROWTH {
            failures.push(format!(
                "{name}'s open files grew {:.0}% after the warm-up",
                c.open_files_growth * 100.0
            ));
        }
        if c.rss_mb[2] > 0.0 && c.rss_mb[3] / c.rss_mb[2] - 1.0 > MAX_BURST_GROWTH {
            failures.push(format!(
                "{name}'s memory went from {:.0} to {:.0} MB in the burst",
                c.rss_mb[2], c.rss_mb[3]
            ));
        }
    }
    if max_p99_drift > 0.0 && r.p99_ms[0] > 0.0 && r.p99_ms[1] > r.p99_ms[0] * max_p99_drift {
        failures.push(format!(
            "the p99 grew from {:.0} to {:.0} ms",
            r.p99_ms[0], r.p99_ms[1]
        ));
    }
    if r.burst.refused == 0 {
        failures.push(format!(
            "admission control refused nothing of a burst at {}/s",
            r.burst.offered_per_sec
        ));
    }
    if r.burst.refused_without_retry_after > 0 {
        failures.push(format!(
            "{} refusals in the burst without Retry-After",
            r.burst.refused_without_retry_after
        ));
    }
    if !r.verdict.passed() {
        failures.push("something acknowledged was lost or doubled".to_owned());
    }
    failures
}

/// Resident memory (MB, shared memory left out) and open files of every process of the stack, by
/// name. Postgres is its postmaster and every backend.
fn sample(stack: &ChaosStack) -> BTreeMap<String, (f64, u64)> {
    let mut out = BTreeMap::new();
    for service in &stack.services {
        if let Some(Ok(pid)) = service.admin.map(pid_listening) {
            out.insert(service.name.clone(), usage(&[pid]));
        }
    }
    if let Some(pid) = stack.local.nats.pid() {
        out.insert("nats-server".to_owned(), usage(&[pid]));
    }
    if let Some(pid) = stack.local.postgres.pid() {
        let mut pids = children(pid);
        pids.push(pid);
        out.insert("postgres".to_owned(), usage(&pids));
    }
    out
}

fn usage(pids: &[u32]) -> (f64, u64) {
    pids.iter().fold((0.0, 0), |(rss, files), pid| {
        // Private and file-backed pages, not shared memory: Postgres's shared buffers are
        // touched a page at a time and would look like growth.
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let kb = field("RssAnon:") + field("RssFile:");
        let open = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64);
        (rss + kb / 1024.0, files + open)
    })
}

/// The processes whose parent is `parent`.
fn children(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| parent_of(*pid) == Some(parent))
        .collect()
}

fn curves(samples: &[BTreeMap<String, (f64, u64)>]) -> BTreeMap<String, Curve> {
    let mut curves: BTreeMap<String, Curve> = BTreeMap::new();
    for (i, sample) in samples.iter().enumerate().take(4) {
        for (name, (rss, files)) in sample {
            let c = curves.entry(name.clone()).or_default();
            c.rss_mb[i] = *rss;
            c.open_files[i] = *files;
        }
    }
    let growth = |from: f64, to: f64| if from > 0.0 { to / from - 1.0 } else { 0.0 };
    for c in curves.values_mut() {
        c.rss_growth = growth(c.rss_mb[1], c.rss_mb[2]);
        c.open_files_growth = growth(c.open_files[1] as f64, c.open_files[2] as f64);
    }
    curves
}

impl std::fmt::Display for SoakReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "soak: {} sends/s for {}s, then a burst at {}/s",
            self.rate, self.duration_seconds, self.burst.offered_per_sec
        )?;
        writeln!(
            f,
            "  {:<14} {:>34} {:>22}",
            "process", "RSS MB: start, warm, end, burst", "open files"
        )?;
        for (name, c) in &self.processes {
            writeln!(
                f,
                "  {name:<14} {:>7.1} {:>7.1} {:>7.1} {:>7.1} ({:+.0}%) {:>5} {:>5} {:>5} {:>5}",
                c.rss_mb[0],
                c.rss_mb[1],
                c.rss_mb[2],
                c.rss_mb[3],
                c.rss_growth * 100.0,
                c.open_files[0],
                c.open_files[1],
                c.open_files[2],
                c.open_files[3]
            )?;
        }
        writeln!(
            f,
            "  query answered in: p50 {:.1} then {:.1} ms, p99 {:.1} then {:.1} ms",
            self.p50_ms[0], self.p50_ms[1], self.p99_ms[0], self.p99_ms[1]
        )?;
        let b = &self.burst;
        writeln!(
            f,
            "  burst: {} sent, {} acknowledged, {} refused (429/503), {} of them without Retry-After, {} unanswered",
            b.sent, b.acked, b.refused, b.refused_without_retry_after, b.unanswered
        )?;
        writeln!(f, "{}", self.verdict)?;
        if self.passed {
            write!(f, "PASS")
        } else {
            write!(f, "FAIL: {}", self.failures.join("; "))
        }
    }
}
