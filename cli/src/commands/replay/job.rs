//! A history replay job as `replay_jobs` keeps it, and its sending: from the job's cursor on, page
//! by page, the cursor saved after each page is acknowledged, so an interrupted job goes on where
//! it stopped (`quorum replay --resume`).

use std::io::Write;
use std::num::NonZeroU32;

use governor::{Quota, RateLimiter};
use quorum_domain::{cloudevent, types};
use quorum_event_store::{CommitCursor, EventStore, RecordedEvent, Selection};
use serde_json::json;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::{Destination, PAGE, record};
use crate::exit::CliError;
use crate::outln;
use crate::progress;
use crate::shape::{self, Status, Stored};
use crate::stack::Connected;

/// A replay job: what it replays, where to, and how far it got.
pub(super) struct Job {
    pub id: Uuid,
    pub selection: Selection,
    pub destination: Destination,
    /// The commit watermark the selection was counted at: later events are not replayed.
    pub upto: u64,
    /// The last event sent and acknowledged.
    pub cursor: CommitCursor,
    /// Events sent so far, of `total`.
    pub done: i64,
    pub total: i64,
}

impl Job {
    /// The job `id` as stored, unless it is complete.
    pub async fn load(pool: &PgPool, id: Uuid) -> anyhow::Result<Self> {
        let row = sqlx::query(
            "SELECT selection, target, upto_xmin::text AS upto, cursor_tx::text AS ctx, cursor_pos, done, total, status
             FROM replay_jobs WHERE id = $1 AND kind = 'history'",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no history replay {id}"))?;
        if row.try_get::<String, _>("status")? == "completed" {
            anyhow::bail!("replay {id} is complete already");
        }
        let cursor = match row.try_get::<Option<String>, _>("ctx")? {
            Some(tx) => CommitCursor {
                tx_id: tx.parse()?,
                position: row.try_get("cursor_pos")?,
            },
            None => CommitCursor::START,
        };
        Ok(Self {
            id,
            selection: serde_json::from_value(row.try_get("selection")?)?,
            destination: serde_json::from_value(row.try_get("target")?)?,
            upto: row.try_get::<String, _>("upto")?.parse()?,
            cursor,
            done: row.try_get("done")?,
            total: row.try_get("total")?,
        })
    }

    /// Saves how far the job got, and its status.
    async fn save(&self, pool: &PgPool, status: &str) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE replay_jobs SET cursor_tx = $2::text::xid8, cursor_pos = $3, done = $4, status = $5,
                    updated_at = now() WHERE id = $1",
        )
        .bind(self.id)
        .bind(self.cursor.tx_id.to_string())
        .bind(self.cursor.position)
        .bind(self.done)
        .bind(status)
        .execute(pool)
        .await?;
        Ok(())
    }

    /// The rate asked now, else the job's own.
    async fn rate(&self, pool: &PgPool, asked: Option<u32>) -> anyhow::Result<Option<u32>> {
        if asked.is_some() {
            return Ok(asked);
        }
        let stored: Option<f64> = sqlx::query_scalar("SELECT rate FROM replay_jobs WHERE id = $1")
            .bind(self.id)
            .fetch_one(pool)
            .await?;
        Ok(stored.map(|r| r as u32))
    }

    /// Sends the job's events from its cursor on, at `rate` per second (the job's own when
    /// `None`), saving the cursor after each acknowledged page. Ctrl-C stops it at once, saved
    /// as interrupted.
    pub async fn send_all(
        mut self,
        connected: &Connected,
        rate: Option<u32>,
        json_out: bool,
    ) -> anyhow::Result<()> {
        let store = EventStore::new(connected.pool.clone());
        let limiter = self
            .rate(&connected.pool, rate)
            .await?
            .and_then(NonZeroU32::new)
            .map(|r| RateLimiter::direct(Quota::per_second(r).allow_burst(NonZeroU32::MIN)));
        let mut sink = Sink::open(connected, &self)?;
        let bar = progress::bar(self.total as u64, "replaying");
        bar.set_position(self.done as u64);
        let interrupted = tokio::signal::ctrl_c();
        tokio::pin!(interrupted);
        let mut stopped = false;
        while !stopped {
            let events = store
                .select(&self.selection, self.cursor, self.upto, PAGE)
                .await?;
            if events.is_empty() {
                break;
            }
            let mut sent = None;
            for r in &events {
                if let Some(l) = &limiter {
                    l.until_ready().await;
                }
                // Checked before each event, so Ctrl-C stops at once; what was sent is saved
                // below.
                if futures::FutureExt::now_or_never(&mut interrupted).is_some() {
                    stopped = true;
                    break;
                }
                sink.put(self.id, r).await?;
                sent = Some(r.cursor());
                self.done += 1;
            }
            sink.settle().await?;
            if let Some(last) = sent {
                self.cursor = last;
                self.save(&connected.pool, "running").await?;
                bar.set_position(self.done as u64);
            }
        }
        bar.finish_and_clear();
        let (job, done, total) = (self.id, self.done, self.total);
        if stopped {
            self.save(&connected.pool, "interrupted").await?;
            return Err(CliError::interrupted(format!(
                "interrupted after {done} of {total}; go on with `quorum replay --resume {job}`"
            ))
            .into());
        }
        self.save(&connected.pool, "completed").await?;
        let data = json!({ "job": job, "events": done });
        record(&store, job, types::REPLAY_COMPLETED, data).await?;
        if json_out {
            outln!("{}", json!({ "job": job, "replayed": done }))?;
        } else {
            outln!("replayed {done} events (job {job})")?;
        }
        Ok(())
    }
}

/// Where a page of events goes, and what it waits for before the page counts as sent.
struct Sink<'a> {
    destination: Destination,
    js: &'a async_nats::jetstream::Context,
    file: Option<std::io::BufWriter<std::fs::File>>,
    acks: Vec<async_nats::jetstream::context::PublishAckFuture>,
}

impl<'a> Sink<'a> {
    /// A new job writes its file afresh, as `audit export -o` does; a resumed one goes on where
    /// it stopped, after what it wrote before.
    fn open(connected: &'a Connected, job: &Job) -> anyhow::Result<Self> {
        let file = match &job.destination {
            Destination::File { path } => Some(std::io::BufWriter::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .write(true)
                    .append(job.done > 0)
                    .truncate(job.done == 0)
                    .open(path)?,
            )),
            _ => None,
        };
        Ok(Self {
            destination: job.destination.clone(),
            js: &connected.js,
            file,
            acks: Vec::new(),
        })
    }

    /// Writes or publishes one event of job `job`.
    async fn put(&mut self, job: Uuid, r: &RecordedEvent) -> anyhow::Result<()> {
        match &self.destination {
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
                let f = self.file.as_mut().expect("a file destination has its file");
                serde_json::to_writer(&mut *f, &line)?;
                f.write_all(b"\n")?;
            }
            Destination::Subject { subject } => {
                let ack = send(self.js, subject.clone(), job, r).await?;
                self.acks.push(ack);
            }
            Destination::Consumer { consumer } => {
                let subject = quorum_bus::subjects::redeliver(consumer, &r.tenant, &r.event.ty);
                let ack = send(self.js, subject, job, r).await?;
                self.acks.push(ack);
            }
        }
        Ok(())
    }

    /// Waits until what was put is acknowledged (JetStream) or flushed (a file).
    async fn settle(&mut self) -> anyhow::Result<()> {
        for ack in self.acks.drain(..) {
            ack.await?;
        }
        if let Some(f) = self.file.as_mut() {
            f.flush()?;
        }
        Ok(())
    }
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
