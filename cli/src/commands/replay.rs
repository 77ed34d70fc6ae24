//! `quorum replay`: stored events, selected by stream, correlation id, type, tenant or time range, sent
//! again in commit order: to a subject (republished with `replayof`), to one consumer (its redeliver
//! subject, so no other consumer sees them), or to a JSON-lines file. Or `--rebuild <projection>`:
//! a read model dropped and built again from the first event.
//!
//! A replay is a job in `replay_jobs`, with its reason recorded as `quorum.replay.requested`. The
//! selection is fixed when it starts (events below the watermark then), and its cursor is saved after
//! each acknowledged page, so after Ctrl-C `--resume <job>` goes on where it stopped; the message id
//! `replay:<job>:<position>` makes JetStream drop what the interrupted page had already sent.

use std::path::PathBuf;

use bytes::Bytes;
use quorum_domain::{Event, StreamId, TenantId, types};
use quorum_event_store::{CommitCursor, EventStore, ExpectedVersion, Selection};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::exit::CliError;
use crate::outln;
use crate::selection::SelectionArgs;
use crate::stack::Target;

#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub select: SelectionArgs,
    /// Republish to this subject (any subject of a JetStream stream, or a plain NATS subject).
    #[arg(long, group = "to")]
    pub to_subject: Option<String>,
    /// Redeliver to this consumer only.
    #[arg(long, group = "to")]
    pub to_consumer: Option<String>,
    /// Write JSON lines to this file (a new replay writes it afresh, as `audit export -o` does;
    /// `--resume` goes on after what it wrote).
    #[arg(long, group = "to")]
    pub to_file: Option<PathBuf>,
    /// Drop a read model and build it again from the first event.
    #[arg(long, group = "to", value_parser = PROJECTIONS)]
    pub rebuild: Option<String>,
    /// Why (required; recorded as an event).
    #[arg(long)]
    pub reason: Option<String>,
    /// Events per second (1 or more; as fast as possible when not given).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: Option<u32>,
    /// Only count what would be replayed.
    #[arg(long)]
    pub dry_run: bool,
    /// Replay without asking when no flag selects events (every stored event); without a
    /// terminal to ask on, such a replay is refused unless given.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Go on with an interrupted replay.
    #[arg(long, conflicts_with_all = ["to_subject", "to_consumer", "to_file", "rebuild"])]
    pub resume: Option<Uuid>,
}

/// Where a replay sends events.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Destination {
    Subject { subject: String },
    Consumer { consumer: String },
    File { path: PathBuf },
}

mod asked;
mod job;
mod rebuild;

use asked::{Asked, asked, known_consumer};
use job::Job;
use rebuild::PROJECTIONS;

const PAGE: i64 = 200;
const SOURCE: &str = "/quorum/cli";

pub async fn run(target: &Target, args: &ReplayArgs, json_out: bool) -> anyhow::Result<()> {
    let (destination, reason) = match asked(args)? {
        Asked::Rebuild { projection, reason } => {
            let pool = target.connect_postgres().await?;
            return rebuild::run(&pool, &projection, reason.as_deref(), json_out).await;
        }
        Asked::Resume(job) => {
            let connected = target.connect().await?;
            let job = Job::load(&connected.pool, job).await?;
            return job.send_all(&connected, args.rate, json_out).await;
        }
        Asked::Replay {
            destination,
            reason,
        } => (destination, reason),
    };
    let connected = target.connect().await?;
    if let Destination::Consumer { consumer } = &destination {
        known_consumer(&connected.js, consumer).await?;
    }
    let store = EventStore::new(connected.pool.clone());
    let selection = args.select.selection();
    let upto = store.watermark().await?;
    let total = store.count_selected(&selection, upto).await?;
    let Some(reason) = reason else {
        if json_out {
            outln!("{}", json!({ "dry_run": true, "count": total }))?;
        } else {
            outln!("{total} events would be replayed")?;
        }
        return Ok(());
    };
    if total == 0
        && let Some(asked) = args.select.specific()
    {
        return Err(CliError::failed(format!("no stored events with {asked}")).into());
    }
    if args.select.is_everything() {
        crate::confirm::confirm(
            &format!(
                "No --stream, --correlation-id, --tenant, --type, --since or --until: this replays every stored event ({total})."
            ),
            args.yes,
        )?;
    }
    let job = start(
        &connected.pool,
        &selection,
        &destination,
        upto,
        total,
        &reason,
        args.rate,
    )
    .await?;
    // Under --json standard error is kept for the one error object a failure writes.
    if !json_out {
        eprintln!("replay {job}: {total} events");
    }
    let job = Job {
        id: job,
        selection,
        destination,
        upto,
        cursor: CommitCursor::START,
        done: 0,
        total,
    };
    job.send_all(&connected, args.rate, json_out).await
}

async fn start(
    pool: &PgPool,
    selection: &Selection,
    destination: &Destination,
    upto: u64,
    total: i64,
    reason: &str,
    rate: Option<u32>,
) -> anyhow::Result<Uuid> {
    let job = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO replay_jobs (id, kind, tenant, operator, reason, rate, total, selection, target, upto_xmin)
         VALUES ($1, 'history', $2, $3, $4, $5, $6, $7, $8, $9::text::xid8)",
    )
    .bind(job)
    .bind(&selection.tenant)
    .bind(operator())
    .bind(reason)
    .bind(rate.map(f64::from))
    .bind(total)
    .bind(serde_json::to_value(selection)?)
    .bind(serde_json::to_value(destination)?)
    .bind(upto.to_string())
    .execute(pool)
    .await?;
    let data = json!({
        "job": job, "selection": selection, "target": destination, "events": total,
        "reason": reason, "operator": operator(),
    });
    record(
        &EventStore::new(pool.clone()),
        job,
        types::REPLAY_REQUESTED,
        data,
    )
    .await?;
    Ok(job)
}

/// Appends one of the job's events to `replay/<job>`; its id derives from the job and the type, so
/// recording twice (a resumed job) stores it once.
async fn record(
    store: &EventStore,
    job: Uuid,
    ty: &str,
    data: serde_json::Value,
) -> anyhow::Result<()> {
    let stream = StreamId::new("replay", job)?;
    let mut event = Event::new(
        SOURCE,
        ty,
        stream.clone(),
        TenantId::system(),
        Bytes::from(data.to_string()),
    );
    event.id = Uuid::new_v5(&job, ty.as_bytes()).to_string();
    event.correlationid = Some(job.to_string());
    store
        .append(&stream, ExpectedVersion::Any, &[event])
        .await?;
    Ok(())
}

/// Who runs the command, as the operating system says.
fn operator() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}
