//! Lanes: messages with the same key (the event's stream: `Quorum-Stream`, else `ce-subject`) always go to the same
//! lane, and a lane handles one message at a time, so one stream's events are handled in order while
//! different streams run in parallel.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use quorum_bus::decode;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::settle::Settler;
use super::{ConsumerConfig, Delivery, Handler, Outcome};
use crate::metrics as names;

pub(crate) struct Lanes {
    senders: Vec<mpsc::Sender<jetstream::Message>>,
    tasks: JoinSet<()>,
}

impl Lanes {
    pub(crate) fn start<H: Handler>(
        config: &ConsumerConfig,
        handler: Arc<H>,
        settler: Arc<Settler>,
    ) -> Self {
        let mut senders = Vec::new();
        let mut tasks = JoinSet::new();
        for _ in 0..config.concurrency.max(1) {
            // Capacity 1: a lane holds at most the message it runs and one waiting, so a slow stream
            // blocks dispatch (backpressure) instead of piling up fetched messages.
            let (tx, rx) = mpsc::channel(1);
            senders.push(tx);
            let lane = Lane {
                handler: handler.clone(),
                settler: settler.clone(),
                consumer: config.name.clone(),
                progress_every: config.ack_wait / 3,
                max_deliver: config.max_deliver,
            };
            tasks.spawn(lane.run(rx));
        }
        Self { senders, tasks }
    }

    /// Hands `msg` to its lane, waiting while the lane is busy. On shutdown the message is given
    /// back, unstarted.
    pub(crate) async fn dispatch(
        &self,
        msg: jetstream::Message,
        shutdown: &CancellationToken,
    ) -> Result<(), jetstream::Message> {
        let key = msg
            .headers
            .as_ref()
            .and_then(|h| {
                h.get(quorum_bus::STREAM_HEADER)
                    .or_else(|| h.get("ce-subject"))
            })
            .map(|v| v.as_str().to_owned());
        let mut hasher = DefaultHasher::new();
        key.as_deref()
            .unwrap_or(msg.subject.as_str())
            .hash(&mut hasher);
        let lane = &self.senders[(hasher.finish() % self.senders.len() as u64) as usize];
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => Err(msg),
            permit = lane.reserve() => {
                // A closed lane only happens if its task panicked; the message is then redelivered.
                if let Ok(permit) = permit {
                    permit.send(msg);
                }
                Ok(())
            }
        }
    }

    /// Closes the lanes and waits until each has settled what it holds.
    pub(crate) async fn drain(mut self) {
        self.senders.clear();
        while self.tasks.join_next().await.is_some() {}
    }
}

struct Lane<H> {
    handler: Arc<H>,
    settler: Arc<Settler>,
    consumer: String,
    progress_every: Duration,
    max_deliver: u32,
}

impl<H: Handler> Lane<H> {
    async fn run(self, mut rx: mpsc::Receiver<jetstream::Message>) {
        while let Some(msg) = rx.recv().await {
            self.process(msg).await;
        }
    }

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
        let outcome = match &event {
            _ if delivered > self.max_deliver => Outcome::dead(format!(
                "delivered {delivered} times without an outcome (the handler crashed or exceeded ack_wait)"
            )),
            Err(e) => Outcome::dead(format!("undecodable message: {e}")),
            Ok(event) => {
                let delivery = Delivery {
                    event: event.clone(),
                    subject: msg.subject.to_string(),
                    stream_seq,
                    delivered,
                };
                self.handle_with_progress(&msg, &delivery).await
            }
        };
        let label = self
            .settler
            .settle(&msg, event.as_ref().ok(), outcome, stream_seq, delivered)
            .await;
        let label = if label == "dead" && event.is_err() {
            "undecodable"
        } else {
            label
        };
        ::metrics::histogram!(names::HANDLER_DURATION_SECONDS, names::LABEL_CONSUMER => self.consumer.clone())
            .record(started.elapsed().as_secs_f64());
        ::metrics::counter!(names::MESSAGES_TOTAL, names::LABEL_CONSUMER => self.consumer.clone(), names::LABEL_OUTCOME => label)
            .increment(1);
    }

    /// Runs the handler, telling JetStream the message is in progress every third of `ack_wait`, so a
    /// long handler is not redelivered under it.
    async fn handle_with_progress(&self, msg: &jetstream::Message, delivery: &Delivery) -> Outcome {
        let handling = self.handler.handle(delivery);
        tokio::pin!(handling);
        let mut ticker = tokio::time::interval(self.progress_every.max(Duration::from_millis(100)));
        ticker.tick().await;
        loop {
            tokio::select! {
                outcome = &mut handling => return outcome,
                _ = ticker.tick() => {
                    super::settle::in_progress(msg).await;
                }
            }
        }
    }
}
