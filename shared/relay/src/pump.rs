//! The leader's loop: read committed events below the watermark, hold back any that would overtake
//! their stream predecessor, publish the rest with many acks in flight, await the acks in order, then
//! move the checkpoint.

use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::context::PublishAckFuture;
use chrono::Utc;
use quorum_bus::EVENTS_STREAM;
use quorum_event_store::{
    CommitCursor, Committed, EventStore, RelayCheckpoint, RelayRow, save_relay_checkpoint,
};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use quorum_event_store::Wake;

use crate::holds::Holds;
use crate::leader::still_leader;
use crate::reconcile::resume_point;
use crate::{RelayConfig, RelayError, park, publish};
use quorum_runtime::metrics as names;

pub(crate) struct Pump {
    pool: PgPool,
    js: jetstream::Context,
    config: RelayConfig,
    holds: Holds,
    /// Commit-order cursor of the last event read.
    read: CommitCursor,
    /// JetStream sequence of the last relayed message.
    last_seq: u64,
    republish_until: Option<CommitCursor>,
    inflight: Option<InFlight>,
    /// The checkpoint reached but not yet saved, and when one was last saved.
    unsaved: Option<RelayCheckpoint>,
    saved_at: Instant,
    /// The NATS server's `max_payload`: a larger message is parked, never sent.
    max_payload: usize,
}

/// How often, at most, the relay saves its checkpoint. Resuming never depends on it: a new leader
/// resumes from the cursor in the stream's last relayed message (docs/adr/0003), and the checkpoint
/// only tells it whether the stream lost messages it had. Saving it after every batch cost a commit
/// (a WAL flush) per batch; now it is saved at most this often while busy, and this long after the
/// relay goes idle at the latest.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

impl Pump {
    pub(crate) fn new(pool: PgPool, js: jetstream::Context, config: RelayConfig) -> Self {
        Self {
            pool,
            js,
            config,
            holds: Holds::default(),
            read: CommitCursor::START,
            last_seq: 0,
            republish_until: None,
            inflight: None,
            unsaved: None,
            saved_at: Instant::now(),
            max_payload: 0,
        }
    }

    /// Leads until `shutdown` or an error. Every read and checkpoint goes through `lock`, the
    /// connection that holds the leader's lock: once that connection is gone, so is the lock, and
    /// a relay that lost it can no longer move the checkpoint a new leader relies on.
    pub(crate) async fn run(
        mut self,
        lock: &mut PgConnection,
        shutdown: &CancellationToken,
    ) -> Result<(), RelayError> {
        self.max_payload = self.js.client().server_info().max_payload;
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen("quorum_events").await?;
        let resume = resume_point(&self.pool, &self.js, &self.config.name).await?;
        self.read = resume.cursor;
        self.last_seq = resume.stream_seq;
        self.republish_until = resume.republish_until;
        let mut next_check = Instant::now() + self.config.check_interval;
        let mut wake = Wake::new(self.config.poll_interval);
        loop {
            if shutdown.is_cancelled() {
                return self.finish(lock).await;
            }
            if Instant::now() >= next_check {
                still_leader(lock).await?;
                self.check_stream().await?;
                next_check = Instant::now() + self.config.check_interval;
            }
            wake.reading();
            if self.pump_batch(lock, &mut wake).await? {
                continue;
            }
            let save_at = self.saved_at + CHECKPOINT_EVERY;
            tokio::select! {
                _ = shutdown.cancelled() => return self.finish(lock).await,
                n = listener.try_recv() => {
                    n?;
                    wake.notified(&mut listener).await;
                }
                _ = tokio::time::sleep(wake.wait()) => {}
                _ = tokio::time::sleep_until(save_at), if self.unsaved.is_some() => {
                    self.save(lock).await?;
                }
            }
        }
    }

    /// Notices a stream that went back (NATS restarted without the data, or the stream was deleted)
    /// even when nothing new is published.
    async fn check_stream(&self) -> Result<(), RelayError> {
        let mut stream = self
            .js
            .get_stream(EVENTS_STREAM)
            .await
            .map_err(|e| RelayError::JetStream(e.to_string()))?;
        let last = stream
            .info()
            .await
            .map_err(|e| RelayError::JetStream(e.to_string()))?
            .state
            .last_sequence;
        if last < self.last_seq {
            return Err(RelayError::StreamBehind {
                recorded: self.last_seq,
                found: last,
            });
        }
        Ok(())
    }

    /// Reads the next batch, settles the previous one (acks in order, then the checkpoint), and
    /// sends the new one. A full batch is left in flight and true returned: the next call reads
    /// on while its acks come. A partial one is everything committed, so it is settled at once
    /// rather than by a read that would find nothing, and `wake` learns when to read again.
    async fn pump_batch(
        &mut self,
        conn: &mut PgConnection,
        wake: &mut Wake,
    ) -> Result<bool, RelayError> {
        let read =
            EventStore::read_committed_for_relay(conn, self.read, self.config.batch_size).await?;
        let full = read.events.len() as i64 == self.config.batch_size;
        let progressed = !read.events.is_empty();
        report_lag(&read);
        if let Some(previous) = self.inflight.take() {
            self.settle(conn, previous).await?;
        }
        if !read.events.is_empty() {
            let sent = self.send(read.events).await?;
            if full {
                self.inflight = Some(sent);
                return Ok(true);
            }
            self.settle(conn, sent).await?;
        }
        if read.held {
            wake.held(progressed);
        } else {
            wake.caught_up();
        }
        Ok(false)
    }

    /// Settles what is in flight and saves the checkpoint; called before returning on shutdown.
    pub(crate) async fn finish(&mut self, conn: &mut PgConnection) -> Result<(), RelayError> {
        if let Some(previous) = self.inflight.take() {
            self.settle(conn, previous).await?;
        }
        self.save(conn).await
    }

    /// Saves the checkpoint reached, if it is not saved yet.
    async fn save(&mut self, conn: &mut PgConnection) -> Result<(), RelayError> {
        if let Some(checkpoint) = self.unsaved.take() {
            save_relay_checkpoint(&mut *conn, &self.config.name, &checkpoint).await?;
            debug!(cursor = %checkpoint.cursor, seq = checkpoint.stream_seq, "relay checkpoint");
        }
        self.saved_at = Instant::now();
        Ok(())
    }

    /// Sends every event of `batch` that may go now, without waiting for acks. What cannot be
    /// published is parked in its turn, and the rest goes on (`park`).
    async fn send(&mut self, batch: Vec<(RelayRow, bool)>) -> Result<InFlight, RelayError> {
        let mut acks = Vec::with_capacity(batch.len());
        for (row, predecessor_later) in batch {
            let before = self.read;
            let safe_before = self.holds.safe_cursor(before);
            let ready = match row {
                Ok(event) => {
                    self.read = event.cursor();
                    self.holds.admit(event, predecessor_later, before)
                }
                Err(unreadable) => {
                    self.read = unreadable.cursor;
                    park::unreadable(&self.pool, &unreadable).await?;
                    match (unreadable.stream_id, unreadable.stream_version) {
                        (Some(stream), Some(version)) => {
                            self.holds
                                .admit_parked(stream, version, predecessor_later, before)
                        }
                        _ => Vec::new(),
                    }
                }
            };
            let safe_after = self.holds.safe_cursor(self.read);
            let count = ready.len();
            for (i, e) in ready.into_iter().enumerate() {
                // Only the last message of a group may claim the cursor after it: if the relay dies
                // part-way through a group, a restart re-reads the group rather than skipping it.
                let cursor = if i + 1 == count {
                    safe_after
                } else {
                    safe_before
                };
                match publish::send(&self.js, &e, cursor, self.max_payload).await? {
                    Ok(ack) => {
                        acks.push((ack, e.cursor(), e.event.id.clone()));
                    }
                    Err(why) => park::unpublishable(&self.pool, &e, &why.to_string()).await?,
                }
            }
        }
        metrics::gauge!(names::RELAY_HELD_EVENTS).set(self.holds.len() as f64);
        Ok(InFlight {
            acks,
            checkpoint: self.holds.safe_cursor(self.read),
        })
    }

    /// Awaits a batch's acks in order, then moves the checkpoint (saved at most every
    /// [`CHECKPOINT_EVERY`]).
    async fn settle(&mut self, conn: &mut PgConnection, batch: InFlight) -> Result<(), RelayError> {
        let mut last_id = None;
        let mut published = 0u64;
        let mut republished = 0u64;
        for (ack, cursor, id) in batch.acks {
            let ack = ack
                .await
                .map_err(|e| RelayError::JetStream(e.to_string()))?;
            if !ack.duplicate && ack.sequence <= self.last_seq {
                return Err(RelayError::StreamBehind {
                    recorded: self.last_seq,
                    found: ack.sequence,
                });
            }
            self.last_seq = self.last_seq.max(ack.sequence);
            published += 1;
            if self.republish_until.is_some_and(|until| cursor <= until) {
                republished += 1;
            }
            last_id = Some(id);
        }
        if self
            .republish_until
            .is_some_and(|until| batch.checkpoint >= until)
        {
            self.republish_until = None;
        }
        metrics::counter!(names::RELAY_PUBLISHED_TOTAL).increment(published);
        metrics::counter!(names::RELAY_REPUBLISHED_TOTAL).increment(republished);
        let checkpoint = RelayCheckpoint {
            cursor: batch.checkpoint,
            stream_seq: self.last_seq,
            event_id: last_id,
        };
        debug!(published, cursor = %checkpoint.cursor, seq = self.last_seq, "relay batch");
        self.unsaved = Some(checkpoint);
        if self.saved_at.elapsed() >= CHECKPOINT_EVERY {
            self.save(conn).await?;
        }
        Ok(())
    }
}

/// The relay's lag as of a read: the age of the oldest committed event it has not published, the
/// batch's first or one the watermark holds back, whichever is older (0 when there is none).
fn report_lag(read: &Committed<(RelayRow, bool)>) {
    let first = read.events.iter().find_map(|(row, _)| row.as_ref().ok());
    let oldest = first
        .map(|e| e.recorded_at)
        .into_iter()
        .chain(read.behind.oldest)
        .min();
    let lag = oldest.map_or(0.0, |at| {
        (Utc::now() - at)
            .to_std()
            .unwrap_or(Duration::ZERO)
            .as_secs_f64()
    });
    metrics::gauge!(names::RELAY_LAG_SECONDS).set(lag);
    metrics::gauge!(names::RELAY_WATERMARK_HELD_EVENTS).set(read.behind.events as f64);
}

/// A batch sent and not yet acknowledged.
struct InFlight {
    acks: Vec<(PublishAckFuture, CommitCursor, String)>,
    /// The safe cursor once every ack is in.
    checkpoint: CommitCursor,
}
