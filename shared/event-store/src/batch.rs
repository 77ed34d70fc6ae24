//! Batching: the stream reads and the appends of many concurrent handlers, each kind gathered into
//! one statement on a connection the batcher keeps.
//!
//! A consumer handler (fan-out, consensus) reads one small stream, and later appends to it at the
//! version it read. Sixty-four of them run at once. Made one by one, each read and each append is a
//! round trip, a pool checkout and return (sqlx pings on return), and for an append a commit; that
//! per-statement cost, not the rows, was most of Postgres's work in the pipeline.
//!
//! Each kind has a task and a connection of its own. While its statement runs, requests queue; the
//! next statement takes all of them (up to a bound). Idle, a lone request goes at once; loaded, the
//! groups grow by themselves, so the cost per request falls as the load rises.
//!
//! A group never changes what a request means. A read returns the stream as a read of its own would.
//! An append keeps its expected version: a part whose stream is not at it is left out of the insert,
//! and its caller appends it on its own, where a conflict and a duplicate are told apart as usual.
//! When a whole statement fails (a unique constraint, a lost connection), every caller of the group
//! does its work on its own: one request's problem never becomes another's.

use std::collections::{HashMap, VecDeque};

use quorum_domain::{Event, StreamId};
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;
use tracing::debug;

use crate::{AppendResult, EventStore, ExpectedVersion, KeptConnection, RecordedEvent, StoreError};

/// Streams one read takes at most.
const MAX_READS: usize = 256;
/// Appends one statement takes at most.
const MAX_APPENDS: usize = 256;

/// A handle to the batching tasks. Cheap to clone; the tasks end once every handle is dropped and the
/// requests they hold are answered.
#[derive(Clone, Debug)]
pub struct Batcher {
    store: EventStore,
    reads: mpsc::UnboundedSender<ReadJob>,
    appends: mpsc::UnboundedSender<AppendJob>,
}

#[derive(Debug)]
struct ReadJob {
    stream: StreamId,
    /// `None`: the group failed, read on your own.
    reply: oneshot::Sender<Option<Vec<RecordedEvent>>>,
}

#[derive(Debug)]
struct AppendJob {
    stream: StreamId,
    expected: ExpectedVersion,
    events: Vec<Event>,
    /// `None`: not appended in the group, append on your own.
    reply: oneshot::Sender<Option<AppendResult>>,
}

impl Batcher {
    /// Starts the reading and the appending task on `tracker`; each opens a connection to
    /// `store`'s database, outside its pool, at its first request and keeps it.
    pub fn start(store: EventStore, tracker: &TaskTracker) -> Self {
        let (reads, read_rx) = mpsc::unbounded_channel();
        let (appends, append_rx) = mpsc::unbounded_channel();
        tracker.spawn(read_loop(store.clone(), read_rx));
        tracker.spawn(append_loop(store.clone(), append_rx));
        Self {
            store,
            reads,
            appends,
        }
    }

    /// The store underneath, for what is not batched.
    pub fn store(&self) -> &EventStore {
        &self.store
    }

    /// The whole of `stream`, in version order: for small streams (a query's).
    pub async fn read_stream(&self, stream: &StreamId) -> Result<Vec<RecordedEvent>, StoreError> {
        let _span = crate::span::store_span(crate::span::Operation::Select, 1);
        self.read_stream_traced(stream).await
    }

    async fn read_stream_traced(
        &self,
        stream: &StreamId,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = ReadJob {
            stream: stream.clone(),
            reply,
        };
        if self.reads.send(job).is_ok()
            && let Ok(Some(events)) = answer.await
        {
            return Ok(events);
        }
        self.store.read_stream(stream, 1, i64::MAX).await
    }

    /// [`EventStore::append`], in a group when it can be.
    pub async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[Event],
    ) -> Result<AppendResult, StoreError> {
        let _span = crate::span::store_span(crate::span::Operation::Insert, events.len());
        self.append_traced(stream, expected, events).await
    }

    async fn append_traced(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[Event],
    ) -> Result<AppendResult, StoreError> {
        // What an append of its own would refuse (no events, no tenant, several tenants) goes
        // there, to be refused with its reason instead of failing a group.
        let tenant = events.first().and_then(|e| e.tenant.as_ref());
        if tenant.is_none() || events.iter().any(|e| e.tenant.as_ref() != tenant) {
            return self.store.append(stream, expected, events).await;
        }
        let (reply, answer) = oneshot::channel();
        let job = AppendJob {
            stream: stream.clone(),
            expected,
            events: events.to_vec(),
            reply,
        };
        if self.appends.send(job).is_ok()
            && let Ok(Some(result)) = answer.await
        {
            return Ok(result);
        }
        self.store.append(stream, expected, events).await
    }
}

/// The connection each loop keeps. Both statements plan as one index lookup per stream even on an
/// empty table (the group read is written for it), so their generic plans are safe to keep.
fn kept(store: &EventStore) -> KeptConnection {
    KeptConnection::generic(store.pool().clone())
}

async fn read_loop(store: EventStore, mut rx: mpsc::UnboundedReceiver<ReadJob>) {
    let mut kept = kept(&store);
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        while group.len() < MAX_READS {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        // Sorted, so the callers of one stream are side by side: the last of them takes its
        // events, and only the others (rare: one stream asked twice at once) get a copy.
        group.sort_unstable_by(|a, b| a.stream.as_str().cmp(b.stream.as_str()));
        let mut streams: Vec<&str> = group.iter().map(|j| j.stream.as_str()).collect();
        streams.dedup();
        let read = match kept.get().await {
            Ok(conn) => crate::read::read_streams(conn, &streams).await,
            Err(e) => Err(e.into()),
        };
        match read {
            Ok(events) => {
                let mut by_stream: HashMap<String, Vec<RecordedEvent>> = HashMap::new();
                for e in events {
                    by_stream
                        .entry(e.stream_id.as_str().to_owned())
                        .or_default()
                        .push(e);
                }
                let mut jobs = group.into_iter().peekable();
                while let Some(job) = jobs.next() {
                    let key = job.stream.as_str();
                    let events = if jobs.peek().is_some_and(|next| next.stream == job.stream) {
                        by_stream.get(key).cloned()
                    } else {
                        by_stream.remove(key)
                    };
                    let _ = job.reply.send(Some(events.unwrap_or_default()));
                }
            }
            Err(e) => {
                debug!(error = %e, reads = group.len(), "batched read failed; reading each alone");
                kept.release();
                for job in group {
                    let _ = job.reply.send(None);
                }
            }
        }
    }
    kept.close().await;
}

async fn append_loop(store: EventStore, mut rx: mpsc::UnboundedReceiver<AppendJob>) {
    let mut kept = kept(&store);
    // Jobs for a stream that already had one in the group: the next group takes them first. Each
    // part is checked against its stream's version before the statement, so two parts of one
    // stream cannot go in one group.
    let mut deferred: VecDeque<AppendJob> = VecDeque::new();
    loop {
        let first = match deferred.pop_front() {
            Some(job) => job,
            None => match rx.recv().await {
                Some(job) => job,
                None => break,
            },
        };
        let mut group = vec![first];
        let mut pending = std::mem::take(&mut deferred);
        while group.len() < MAX_APPENDS {
            let job = match pending.pop_front() {
                Some(job) => job,
                None => match rx.try_recv() {
                    Ok(job) => job,
                    Err(_) => break,
                },
            };
            if group.iter().any(|g| g.stream == job.stream) {
                deferred.push_back(job);
            } else {
                group.push(job);
            }
        }
        deferred.extend(pending);
        let parts: Vec<(&StreamId, ExpectedVersion, &Event)> = group
            .iter()
            .flat_map(|job| job.events.iter().map(|e| (&job.stream, job.expected, e)))
            .collect();
        let applied = match kept.get().await {
            Ok(conn) => crate::append_group::append_checked(conn, &parts).await,
            Err(e) => Err(e.into()),
        };
        drop(parts);
        match applied {
            Ok(Some(appended)) => {
                let mut appended = appended.into_iter();
                for job in group {
                    let mine: Vec<_> = appended.by_ref().take(job.events.len()).collect();
                    // A part goes in whole or not at all: its events share the version check.
                    let result = mine
                        .into_iter()
                        .collect::<Option<Vec<_>>>()
                        .map(|events| AppendResult { events });
                    let _ = job.reply.send(result);
                }
            }
            Ok(None) | Err(_) => {
                if let Err(e) = &applied {
                    debug!(error = %e, "batched append failed; appending each alone");
                    kept.release();
                }
                for job in group {
                    let _ = job.reply.send(None);
                }
            }
        }
    }
    kept.close().await;
}
