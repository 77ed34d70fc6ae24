//! `quorum chaos`: the whole stack, every service its own OS process, under a steady workload
//! while its parts are killed, stopped and restarted on a schedule; then, once healed and quiet,
//! a check that nothing acknowledged was lost or doubled (see `check`).

pub mod check;
pub mod faults;
mod held;
mod recorder;
pub mod sagas;
pub mod soak;
mod stack;
pub mod workload;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use quorum_runtime::Shutdown;
use serde::Serialize;

use check::Verdict;
use faults::{Fault, FaultKind};
use stack::{ChaosStack, Setup};
use workload::Ledger;

#[derive(Debug, Clone, clap::Args)]
pub struct ChaosArgs {
    /// How long the workload runs while faults strike (`90s`, `10m`).
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Sends a second: events (three publishers over HTTP, one over NATS), every fifth a query
    /// instead, one query in two asking for a saga.
    #[arg(long, default_value_t = 20)]
    pub rate: u32,
    /// Which faults strike, in turn.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "kill,stop,nats,nats-wipe,postgres"
    )]
    pub faults: Vec<FaultKind>,
    /// The schedule's seed: the same seed strikes the same targets at the same times.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Processes of each service, as a deployment scales them: a struck replica's work goes on
    /// in the others.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=4))]
    pub replicas: u32,
    /// Where the stack keeps its data and logs (a temporary directory, removed after a pass).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// What a run did and found.
#[derive(Debug, Serialize)]
pub struct ChaosReport {
    pub seed: u64,
    pub duration_seconds: u64,
    pub rate: u32,
    pub faults: Vec<Fault>,
    pub verdict: Verdict,
    /// From the end of the workload until the pipeline was quiet (or the wait gave up).
    pub quiet_after_seconds: f64,
}

/// The workload's tenant.
pub(crate) const TENANT: &str = "chaos";
/// How long the pipeline may take to settle after the workload, faults healed.
const QUIET_WITHIN: Duration = Duration::from_secs(180);

pub async fn run(args: &ChaosArgs, json: bool) -> anyhow::Result<()> {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    let temporary = args.dir.is_none();
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("quorum-chaos-{}", uuid::Uuid::new_v4().simple()))
    });
    let schedule = faults::schedule(&args.faults, args.duration, seed, args.replicas);
    if !json {
        eprintln!(
            "chaos: seed {seed}, {} faults over {}s, stack in {}",
            schedule.len(),
            args.duration.as_secs(),
            dir.display()
        );
    }
    let outcome = run_in(&dir, args, &schedule, json).await;
    if temporary && outcome.as_ref().is_ok_and(|s| s.verdict.passed()) {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let settled = outcome?;
    let report = ChaosReport {
        seed,
        duration_seconds: args.duration.as_secs(),
        rate: args.rate,
        faults: schedule,
        verdict: settled.verdict,
        quiet_after_seconds: settled.quiet_after_seconds,
    };
    if json {
        crate::outln!("{}", serde_json::to_string(&report)?)?;
    } else {
        for fault in &report.faults {
            crate::outln!("  {fault}")?;
        }
        crate::outln!("{}", report.verdict)?;
    }
    anyhow::ensure!(
        report.verdict.passed(),
        "chaos found loss, duplicates or a broken chain (seed {seed}); the stack's logs are in {}",
        dir.display()
    );
    Ok(())
}

/// How the run ended.
struct Settled {
    verdict: Verdict,
    quiet_after_seconds: f64,
}

/// The run itself: the stack up, workload and faults side by side, heal, quiet, check.
async fn run_in(
    dir: &Path,
    args: &ChaosArgs,
    schedule: &[Fault],
    json: bool,
) -> anyhow::Result<Settled> {
    let shutdown = Shutdown::new();
    let setup = Setup {
        replicas: args.replicas,
        events_per_second: None,
    };
    let mut stack = ChaosStack::start(dir, &shutdown, &setup).await?;
    let ledger = Ledger::default();
    let workload = tokio::spawn(workload::drive(
        stack.workload(args.rate, args.duration, false)?,
        ledger.clone(),
    ));
    let started = Instant::now();
    let mut stopped = tokio::task::JoinSet::new();
    for fault in schedule {
        tokio::time::sleep(fault.at.saturating_sub(started.elapsed())).await;
        let struck = stack.strike(fault, &mut stopped).await?;
        if !json {
            eprintln!("chaos: {fault} ({struck})");
        }
    }
    workload.await?;
    // Heal: every stopped process resumed; the servers run.
    while stopped.join_next().await.is_some() {}
    let workload_ended = Instant::now();
    let verdict = stack
        .settled_verdict(&ledger.entries(), schedule, QUIET_WITHIN)
        .await?;
    let quiet_after_seconds = workload_ended.elapsed().as_secs_f64();
    stack.pool.close().await;
    shutdown.cancel();
    let _ = shutdown.wait(Duration::from_secs(40)).await;
    stack.local.stop().await;
    Ok(Settled {
        verdict,
        quiet_after_seconds,
    })
}
