//! Lanes: one stream's messages (keyed by `Quorum-Stream`, else `ce-subject`) are handled one at a
//! time and in order; different streams run in parallel on up to `concurrency` workers.
//!
//! A message whose stream is already being handled waits behind it, and a message that finds every
//! worker busy waits for the first free one; neither holds up messages of other streams. (Hashing
//! streams onto fixed lanes did: a query's four events, all of one stream, queued on one lane and
//! stalled dispatch for everyone behind them.) At most `2 × concurrency` messages wait at once;
//! beyond that, dispatch waits, which stops fetching (backpressure).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::panic::AssertUnwindSafe;

use async_nats::jetstream;
use futures::FutureExt;
use quorum_bus::decode;
use tokio::sync::mpsc;
use tokio::task::{Id, JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, info, warn};

use super::outcome::HOLD_MAX;
use super::settle::{self, Settler};
use super::{ConsumerConfig, Delivery, Handler, Outcome};
use crate::metrics as names;
use crate::vital::panic_message;

/// How long a message whose handler panicked waits before its next delivery.
const PANIC_RETRY: Duration = Duration::from_secs(1);

pub(crate) struct Lanes {
    tx: mpsc::Sender<jetstream::Message>,
    dispatcher: JoinHandle<()>,
}

impl Lanes {
    pub(crate) fn start<H: Handler>(
        config: &ConsumerConfig,
        handler: Arc<H>,
        settler: Arc<Settler>,
        shutdown: &CancellationToken,
    ) -> Self {
        let worker = Arc::new(Worker {
            handler,
            settler,
            consumer: config.name.clone(),
            progress_every: config.ack_wait / 3,
            max_deliver: config.max_deliver,
            shutdown: shutdown.clone(),
        });
        let (tx, rx) = mpsc::channel(1);
        let dispatcher = tokio::spawn(dispatch_loop(rx, worker, config.concurrency.max(1)));
        Self { tx, dispatcher }
    }

    /// Hands `msg` over, waiting while too many messages wait already. On shutdown the message is
    /// given back, unstarted.
    pub(crate) async fn dispatch(
        &self,
        msg: jetstream::Message,
        shutdown: &CancellationToken,
    ) -> Result<(), jetstream::Message> {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => Err(msg),
            permit = self.tx.reserve() => match permit {
                Ok(permit) => {
                    permit.send(msg);
                    Ok(())
                }
                // Only if the dispatcher panicked; the message is then redelivered.
                Err(_) => Err(msg),
            },
        }
    }

    /// Stops taking messages, gives back those not started, and waits until every running one
    /// has settled.
    pub(crate) async fn drain(self) {
        drop(self.tx);
        let _ = self.dispatcher.await;
    }
}

fn key_of(msg: &jetstream::Message) -> String {
    msg.headers
        .as_ref()
        .and_then(|h| {
            h.get(quorum_bus::STREAM_HEADER)
                .or_else(|| h.get("ce-subject"))
        })
        .map_or_else(|| msg.subject.to_string(), |v| v.as_str().to_owned())
}

/// Who runs what. A key in `queued` has a message running, or is in `ready` waiting for a worker;
/// its queue holds the messages that follow, in order.
struct Dispatch<H> {
    worker: Arc<Worker<H>>,
    concurrency: usize,
    running: JoinSet<()>,
    running_keys: HashMap<Id, String>,
    queued: HashMap<String, VecDeque<jetstream::Message>>,
    ready: VecDeque<String>,
    waiting: usize,
}

impl<H: Handler> Dispatch<H> {
    fn arrive(&mut self, msg: jetstream::Message) {
        let key = key_of(&msg);
        if let Some(queue) = self.queued.get_mut(&key) {
            queue.push_back(msg);
            self.waiting += 1;
        } else if self.running.len() < self.concurrency {
            self.queued.insert(key.clone(), VecDeque::new());
            self.spawn(key, msg);
        } else {
            self.queued.insert(key.clone(), VecDeque::from([msg]));
            self.ready.push_back(key);
            self.waiting += 1;
        }
    }

    /// `key`'s message settled: its next one runs, or a waiting stream gets the worker.
    fn finished(&mut self, key: String) {
        let next = self.queued.get_mut(&key).and_then(VecDeque::pop_front);
        let (key, msg) = match next {
            Some(msg) => (key, msg),
            None => {
                self.queued.remove(&key);
                let Some(key) = self.ready.pop_front() else {
                    return;
                };
                let msg = self
                    .queued
                    .get_mut(&key)
                    .and_then(VecDeque::pop_front)
                    .expect("a ready stream has a message");
                (key, msg)
            }
        };
        self.waiting -= 1;
        self.spawn(key, msg);
    }

    fn spawn(&mut self, key: String, msg: jetstream::Message) {
        let worker = self.worker.clone();
        let handle = self.running.spawn(async move { worker.process(msg).await });
        self.running_keys.insert(handle.id(), key);
    }

    /// On shutdown: every message not started goes back to JetStream for another replica.
    async fn give_back_waiting(&mut self) {
        for (_, queue) in self.queued.drain() {
            for msg in queue {
                settle::give_back(&msg).await;
            }
        }
        self.ready.clear();
        self.waiting = 0;
    }
}

async fn dispatch_loop<H: Handler>(
    mut rx: mpsc::Receiver<jetstream::Message>,
    worker: Arc<Worker<H>>,
    concurrency: usize,
) {
    let mut d = Dispatch {
        worker,
        concurrency,
        running: JoinSet::new(),
        running_keys: HashMap::new(),
        queued: HashMap::new(),
        ready: VecDeque::new(),
        waiting: 0,
    };
    let most_waiting = 2 * concurrency;
    let mut open = true;
    loop {
        tokio::select! {
            msg = rx.recv(), if open && d.waiting < most_waiting => match msg {
                Some(msg) => d.arrive(msg),
                None => {
                    open = false;
                    d.give_back_waiting().await;
                }
            },
            Some(done) = d.running.join_next_with_id(), if !d.running.is_empty() => {
                // Handler panics are caught in `process`; an error here is a panic in settling,
                // whose message is redelivered after ack_wait.
                let id = match done {
                    Ok((id, ())) => id,
                    Err(e) => e.id(),
                };
                if let Some(key) = d.running_keys.remove(&id) {
                    d.finished(key);
                }
            },
            else => break,
        }
    }
}

struct Worker<H> {
    handler: Arc<H>,
    settler: Arc<Settler>,
    consumer: String,
    progress_every: Duration,
    max_deliver: u32,
    /// Ends a hold (a handler whose store is unreachable) so that draining does not wait on it.
    shutdown: CancellationToken,
}

impl<H: Handler> Worker<H> {
    async fn process(&self, msg: jetstream::Message) {
        let (stream_seq, delivered) = match msg.info() {
            Ok(info) => (
                info.stream_sequence,
                u32::try_from(info.delivered).unwrap_or(u32::MAX),
            ),
            Err(_) => (0, 1),
        };
        let started = Instant::now();
        let event = decode(msg.headers.as_ref(), &msg.payload);
        let span = self.span(&msg, event.as_ref().ok());
        let outcome = match &event {
            _ if delivered > self.max_deliver => Outcome::dead(format!(
                "delivered {delivered} times without an outcome (the handler crashed or exceeded ack_wait)"
            )),
            Err(e) => Outcome::dead(format!("undecodable message: {e}")),
            Ok(event) => {
                let mut event = event.clone();
                // What the handler derives continues the trace from this span, not from the
                // relay's: the handler's own spans and events are children of its processing.
                if let Some(cx) = quorum_trace::of(&span) {
                    event.traceparent = Some(cx.traceparent);
                    event.tracestate = cx.tracestate;
                }
                let delivery = Delivery {
                    event,
                    subject: msg.subject.to_string(),
                    stream_seq,
                    delivered,
                };
                self.handle_holding(&msg, &delivery)
                    .instrument(span.clone())
                    .await
            }
        };
        let label = self
            .settler
            .settle(&msg, event.as_ref().ok(), outcome, stream_seq, delivered)
            .instrument(span.clone())
            .await;
        let label = if label == "dead" && event.is_err() {
            "undecodable"
        } else {
            label
        };
        if label != "done" {
            quorum_trace::record_error(&span);
        }
        ::metrics::histogram!(names::HANDLER_DURATION_SECONDS, names::LABEL_CONSUMER => self.consumer.clone(), names::LABEL_OUTCOME => label)
            .record(started.elapsed().as_secs_f64());
        ::metrics::counter!(names::MESSAGES_TOTAL, names::LABEL_CONSUMER => self.consumer.clone(), names::LABEL_OUTCOME => label)
            .increment(1);
    }

    /// The span of this message's processing, continuing the trace its publisher sent.
    fn span(
        &self,
        msg: &jetstream::Message,
        event: Option<&quorum_domain::Event>,
    ) -> tracing::Span {
        quorum_trace::consumer_span(quorum_trace::Received {
            consumer: &self.consumer,
            subject: msg.subject.as_str(),
            message_id: event.map_or("", |e| e.id.as_str()),
            event_type: event.map_or("", |e| e.ty.as_str()),
            tenant: event.and_then(|e| e.tenant.as_ref()).map(|t| t.as_str()),
            correlation_id: event.and_then(|e| e.correlationid.as_deref()),
            traceparent: event.and_then(|e| e.traceparent.as_deref()),
            tracestate: event.and_then(|e| e.tracestate.as_deref()),
        })
    }

    /// Runs the handler until it answers anything but [`Outcome::Unavailable`], pausing between
    /// runs (250 ms, doubling up to [`HOLD_MAX`]) with the message kept in progress: a store that is
    /// down costs no delivery, no failed attempt and no dead letter, and every lane waits for it
    /// (nothing else could be handled meanwhile either). A shutdown ends the hold; the message is
    /// then given back.
    async fn handle_holding(&self, msg: &jetstream::Message, delivery: &Delivery) -> Outcome {
        let mut pause = Duration::from_millis(250);
        let mut held = 0u32;
        loop {
            let outcome = self.handle_with_progress(msg, delivery).await;
            let Outcome::Unavailable { reason } = &outcome else {
                if held > 0 {
                    info!(consumer = %self.consumer, stream_seq = delivery.stream_seq, held, "store reachable again; handled");
                }
                return outcome;
            };
            ::metrics::counter!(names::HANDLER_HOLDS_TOTAL, names::LABEL_CONSUMER => self.consumer.clone())
                .increment(1);
            if held == 0 {
                warn!(consumer = %self.consumer, stream_seq = delivery.stream_seq, reason = %reason, "store unreachable; holding the message");
            }
            held += 1;
            if !self.in_progress_for(msg, pause).await {
                return outcome;
            }
            pause = (pause * 2).min(HOLD_MAX);
        }
    }

    /// Keeps `msg` in progress for `pause`; false if a shutdown came first.
    async fn in_progress_for(&self, msg: &jetstream::Message, pause: Duration) -> bool {
        let until = tokio::time::Instant::now() + pause;
        let every = self.progress_every.max(Duration::from_millis(100));
        loop {
            let next = until.min(tokio::time::Instant::now() + every);
            tokio::select! {
                _ = self.shutdown.cancelled() => return false,
                _ = tokio::time::sleep_until(next) => {}
            }
            if tokio::time::Instant::now() >= until {
                return true;
            }
            settle::in_progress(msg).await;
        }
    }

    /// Runs the handler, telling JetStream the message is in progress every third of `ack_wait`, so a
    /// long handler is not redelivered under it. A panic is a failed attempt like any error: recorded,
    /// retried after [`PANIC_RETRY`], parked after `max_deliver` (not a silent redelivery).
    async fn handle_with_progress(&self, msg: &jetstream::Message, delivery: &Delivery) -> Outcome {
        let handling = AssertUnwindSafe(self.handler.handle(delivery))
            .catch_unwind()
            .map(|caught| {
                caught.unwrap_or_else(|panic| {
                    ::metrics::counter!(names::HANDLER_PANICS_TOTAL, names::LABEL_CONSUMER => self.consumer.clone())
                        .increment(1);
                    Outcome::retry(PANIC_RETRY, format!("handler panicked: {}", panic_message(&*panic)))
                })
            });
        tokio::pin!(handling);
        let mut ticker = tokio::time::interval(self.progress_every.max(Duration::from_millis(100)));
        ticker.tick().await;
        loop {
            tokio::select! {
                outcome = &mut handling => return outcome,
                _ = ticker.tick() => {
                    settle::in_progress(msg).await;
                }
            }
        }
    }
}
