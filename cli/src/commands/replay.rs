//! `quorum replay`: stored events, selected by stream, correlation id, type, tenant or time range, sent
//! again in commit order: to a subject (republished with `replayof`), to one consumer (its redeliver
//! subject, so no other consumer sees them), or to a JSON-lines file. Or `--rebuild <projection>`:
//! a read model dropped and built again from the first event.
//!
//! A replay is a job in `replay_jobs`, with its reason recorded as `quorum.replay.requested`. The
//! selection is fixed when it starts (events below the watermark then), and its cursor is saved after
//! each acknowledged page, so after Ctrl-C `--resume <job>` goes on where it stopped; the message id
//! `replay:<job>:<position>` makes JetStream drop what the interrupted page had already sent.

use std::io::Write;
use std::num::NonZeroU32;
use std::path::PathBuf;

use bytes::Bytes;
use governor::{Quota, RateLimiter};
use quorum_domain::{Event, StreamId, TenantId, cloudevent, types};
use quorum_event_store::{CommitCursor, EventStore, ExpectedVersion, RecordedEvent, Selection};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::exit::CliError;
use crate::outln;
use crate::progress;
use crate::selection::SelectionArgs;
use crate::shape::{self, Status, Stored};
use crate::stack::{Connected, Target};

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
mod rebuild;

use asked::{Asked, asked, known_consumer};
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
            let loaded = load(&connected.pool, job).await?;
            return send_all(&connected, loaded, args.rate, json_out).await;
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
    let loaded = (
        job,
        selection,
        destination,
        upto,
        CommitCursor::START,
        0,
        total,
    );
    send_all(&connected, loaded, args.rate, json_out).await
}

/// Sends a job's events from its cursor on, saving the cursor after each acknowledged page.
async fn send_all(
    connected: &Connected,
    loaded: Loaded,
    rate: Option<u32>,
    json_out: bool,
) -> anyhow::Result<()> {
    let (job, selection, destination, upto, mut cursor, mut done, total) = loaded;
    let store = EventStore::new(connected.pool.clone());
    let rate = match rate {
        Some(r) => Some(r),
        None => sqlx::query_scalar::<_, Option<f64>>("SELECT rate FROM replay_jobs WHERE id = $1")
            .bind(job)
            .fetch_one(&connected.pool)
            .await?
            .map(|r| r as u32),
    };
    let limiter = rate
        .and_then(NonZeroU32::new)
        .map(|r| RateLimiter::direct(Quota::per_second(r).allow_burst(NonZeroU32::MIN)));
    // A new job writes the file afresh, as `audit export -o` does; a resumed one goes on where
    // it stopped, after what it wrote before.
    let mut file = match &destination {
        Destination::File { path } => Some(std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(done > 0)
                .truncate(done == 0)
                .open(path)?,
        )),
        _ => None,
    };
    let bar = progress::bar(total as u64, "replaying");
    bar.set_position(done as u64);
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let mut stopped = false;
    loop {
        let events = store.select(&selection, cursor, upto, PAGE).await?;
        if events.is_empty() {
            break;
        }
        let mut acks = Vec::new();
        let mut sent = None;
        for r in &events {
            if let Some(l) = &limiter {
                l.until_ready().await;
            }
            // Checked before each event, so Ctrl-C stops at once; what was sent is saved below.
            if futures::FutureExt::now_or_never(&mut interrupted).is_some() {
                stopped = true;
                break;
            }
            match &destination {
                Destination::File { .. } => {
                    // The one event shape, as `events --json` prints it.
                    let stored = Stored {
                        stream: Some(r.stream_id.as_str().to_owned()),
                        version: i64::try_from(r.stream_version).ok(),
                        position: Some(r.position),
                        recorded_at: Some(crate::times::rfc3339(r.recorded_at)),
                    };
                    let line =
                        shape::event(cloudevent::to_structured(&r.event), Status::Stored, stored);
                    let f = file.as_mut().expect("a file destination has its file");
                    serde_json::to_writer(&mut *f, &line)?;
                    f.write_all(b"\n")?;
                }
                Destination::Subject { subject } => {
                    acks.push(send(&connected.js, subject.clone(), job, r).await?);
                }
                Destination::Consumer { consumer } => {
                    let subject = quorum_bus::subjects::redeliver(consumer, &r.tenant, &r.event.ty);
                    acks.push(send(&connected.js, subject, job, r).await?);
                }
            }
            sent = Some(r.cursor());
            done += 1;
        }
        for ack in acks {
            ack.await?;
        }
        if let Some(f) = file.as_mut() {
            f.flush()?;
        }
        if let Some(last) = sent {
            cursor = last;
            save(&connected.pool, job, cursor, done, "running").await?;
            bar.set_position(done as u64);
        }
        if stopped {
            break;
        }
    }
    bar.finish_and_clear();
    if stopped {
        save(&connected.pool, job, cursor, done, "interrupted").await?;
        return Err(CliError::interrupted(format!(
            "interrupted after {done} of {total}; go on with `quorum replay --resume {job}`"
        ))
        .into());
    }
    save(&connected.pool, job, cursor, done, "completed").await?;
    record(
        &store,
        job,
        types::REPLAY_COMPLETED,
        json!({ "job": job, "events": done }),
    )
    .await?;
    if json_out {
        outln!("{}", json!({ "job": job, "replayed": done }))?;
    } else {
        outln!("replayed {done} events (job {job})")?;
    }
    Ok(())
}

/// The event republished with `replayof`, to `subject`.
async fn send(
    js: &async_nats::jetstream::Context,
    subject: String,
    job: Uuid,
    r: &RecordedEvent,
) -> anyhow::Result<async_nats::jetstream::context::PublishAckFuture> {
    let mut event = r.event.clone();
    event.replayof = Some(r.event.id.clone());
    let (mut headers, payload) = quorum_bus::encode(&event);
    headers.insert(quorum_bus::STREAM_HEADER, r.stream_id.as_str());
    headers.insert(
        "Nats-Msg-Id",
        format!("replay:{job}:{}", r.position).as_str(),
    );
    Ok(js.publish_with_headers(subject, headers, payload).await?)
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

type Loaded = (Uuid, Selection, Destination, u64, CommitCursor, i64, i64);

async fn load(pool: &PgPool, job: Uuid) -> anyhow::Result<Loaded> {
    let row = sqlx::query(
        "SELECT selection, target, upto_xmin::text AS upto, cursor_tx::text AS ctx, cursor_pos, done, total, status
         FROM replay_jobs WHERE id = $1 AND kind = 'history'",
    )
    .bind(job)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| anyhow::anyhow!("no history replay {job}"))?;
    if row.try_get::<String, _>("status")? == "completed" {
        anyhow::bail!("replay {job} is complete already");
    }
    let cursor = match row.try_get::<Option<String>, _>("ctx")? {
        Some(tx) => CommitCursor {
            tx_id: tx.parse()?,
            position: row.try_get("cursor_pos")?,
        },
        None => CommitCursor::START,
    };
    Ok((
        job,
        serde_json::from_value(row.try_get("selection")?)?,
        serde_json::from_value(row.try_get("target")?)?,
        row.try_get::<String, _>("upto")?.parse()?,
        cursor,
        row.try_get("done")?,
        row.try_get("total")?,
    ))
}

async fn save(
    pool: &PgPool,
    job: Uuid,
    cursor: CommitCursor,
    done: i64,
    status: &str,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE replay_jobs SET cursor_tx = $2::text::xid8, cursor_pos = $3, done = $4, status = $5,
                updated_at = now() WHERE id = $1",
    )
    .bind(job)
    .bind(cursor.tx_id.to_string())
    .bind(cursor.position)
    .bind(done)
    .bind(status)
    .execute(pool)
    .await?;
    Ok(())
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
