//! Group commit: requests that arrive together are appended together.
//!
//! Each request hands its events to the committer and waits for its own answer. While a group is
//! being committed, the next requests queue; the committer then takes all of them at once (up to a
//! bound) as one statement and one commit. Under load, groups grow by themselves; when idle, a lone
//! request is committed at once, without waiting for company.
//!
//! A group is all or nothing. When it does not apply as it is (a duplicate, a concurrent writer),
//! each request of it is appended on its own, in its own transaction, where duplicates are told
//! apart from conflicts: one request's problem never becomes another's.

use std::sync::{Arc, Mutex, PoisonError};

use futures::StreamExt;
use quorum_domain::{Event, StreamId};
use quorum_event_store::{AppendResult, Appended, EventStore, KeptConnection, StoreError};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::task::TaskTracker;
use tracing::debug;

/// The parts of one request: events per stream, stored together or not at all.
pub type Parts = Vec<(StreamId, Vec<Event>)>;

/// A handle to the committer task. Cheap to clone; the task ends once every handle is dropped and
/// the requests it holds are committed.
#[derive(Clone)]
pub struct Committer {
    jobs: mpsc::UnboundedSender<Job>,
    store: EventStore,
    alone_from: usize,
}

struct Job {
    parts: Parts,
    events: usize,
    reply: oneshot::Sender<Result<Vec<AppendResult>, StoreError>>,
}

/// Requests handled on their own at once when a group falls back.
const FALLBACK_CONCURRENCY: usize = 8;

impl Committer {
    /// Starts the committer on `tracker`. `max_events` bounds a group; `concurrency` groups commit
    /// at once; a request of `alone_from` events or more is a group by itself and commits at once,
    /// beside the groups (batches gain nothing from waiting, and would make a group one backend's
    /// work). The queue needs no bound: admission control bounds what is in flight.
    pub fn start(
        store: EventStore,
        max_events: usize,
        concurrency: usize,
        alone_from: usize,
        tracker: &TaskTracker,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tracker.spawn(run(store.clone(), rx, max_events, concurrency));
        Self {
            jobs: tx,
            store,
            alone_from,
        }
    }

    /// Appends a request's parts (each an `Any` append to its stream), atomically, and answers once
    /// they are committed: one [`AppendResult`] per part, in order.
    pub async fn append(&self, parts: Parts) -> Result<Vec<AppendResult>, StoreError> {
        let events = parts.iter().map(|(_, e)| e.len()).sum();
        let (reply, answer) = oneshot::channel();
        if events >= self.alone_from {
            commit(
                &self.store,
                None,
                vec![Job {
                    parts,
                    events,
                    reply,
                }],
            )
            .await;
            return answer
                .await
                .unwrap_or(Err(StoreError::Database(sqlx::Error::PoolClosed)));
        }
        self.jobs
            .send(Job {
                parts,
                events,
                reply,
            })
            .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))?;
        answer
            .await
            .unwrap_or(Err(StoreError::Database(sqlx::Error::PoolClosed)))
    }
}

async fn run(
    store: EventStore,
    mut rx: mpsc::UnboundedReceiver<Job>,
    max_events: usize,
    concurrency: usize,
) {
    let slots = Arc::new(Semaphore::new(concurrency));
    // A connection for each slot, kept: a group's statement costs its own round trip only, with
    // no pool checkout and return (and sqlx's ping on return), and runs its generic plan, made
    // once, as the handlers' batcher does (ADR 44).
    let kept: Arc<Mutex<Vec<KeptConnection>>> = Arc::default();
    let groups = TaskTracker::new();
    while let Some(first) = rx.recv().await {
        // Waiting for a slot before gathering is what makes groups: while every slot commits,
        // requests pile up in the channel, and the next group takes them all.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let mut events = first.events;
        let mut group = vec![first];
        while events < max_events {
            match rx.try_recv() {
                Ok(job) => {
                    events += job.events;
                    group.push(job);
                }
                Err(_) => break,
            }
        }
        let (store, kept) = (store.clone(), kept.clone());
        groups.spawn(async move {
            let mut conn = take(&kept, &store);
            commit(&store, Some(&mut conn), group).await;
            kept.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
            drop(slot);
        });
    }
    groups.close();
    groups.wait().await;
    let left = std::mem::take(&mut *kept.lock().unwrap_or_else(PoisonError::into_inner));
    for conn in left {
        conn.close().await;
    }
}

/// A free slot's connection: one kept, or a new one (at first, or after a group that panicked
/// took its own along).
fn take(kept: &Mutex<Vec<KeptConnection>>, store: &EventStore) -> KeptConnection {
    let conn = kept.lock().unwrap_or_else(PoisonError::into_inner).pop();
    conn.unwrap_or_else(|| KeptConnection::generic(store.pool().clone()))
}

/// Commits `group` in one statement, on `kept` when given (a group of its own otherwise goes
/// through the pool); when it does not apply, each request on its own.
async fn commit(store: &EventStore, kept: Option<&mut KeptConnection>, group: Vec<Job>) {
    let flat: Vec<(&StreamId, &Event)> = group
        .iter()
        .flat_map(|job| job.parts.iter())
        .flat_map(|(stream, events)| events.iter().map(move |e| (stream, e)))
        .collect();
    metrics::histogram!(crate::metrics::GROUP_EVENTS).record(flat.len() as f64);
    let appended = match kept {
        Some(kept) => {
            let appended = match kept.get().await {
                Ok(conn) => EventStore::append_group_in(conn, &flat).await,
                Err(e) => Err(e.into()),
            };
            if appended.is_err() {
                // The connection may be broken: the next group opens a fresh one.
                kept.release();
            }
            appended
        }
        None => store.append_group(&flat).await,
    };
    let applied = match appended {
        Ok(applied) => applied,
        Err(e) => {
            // Each request then meets the error (or recovers) on its own.
            debug!(error = %e, "group commit failed; appending each request alone");
            None
        }
    };
    drop(flat);
    match applied {
        Some(appended) => answer_group(group, appended),
        None => {
            debug!(
                requests = group.len(),
                "group did not apply; appending each request alone"
            );
            futures::stream::iter(group)
                .for_each_concurrent(FALLBACK_CONCURRENCY, |job| async move {
                    let result = store.append_streams(&job.parts).await;
                    let _ = job.reply.send(result);
                })
                .await;
        }
    }
}

/// Splits a group's results back into each request's answer.
fn answer_group(group: Vec<Job>, appended: Vec<Appended>) {
    let mut appended = appended.into_iter();
    for job in group {
        let results = job
            .parts
            .iter()
            .map(|(_, events)| AppendResult {
                events: appended.by_ref().take(events.len()).collect(),
            })
            .collect();
        // The caller may have gone (a client that hung up); its events are committed regardless.
        let _ = job.reply.send(Ok(results));
    }
}
