//! A consumer's settings, and the JetStream consumer they describe.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, pull};

/// How one durable consumer reads. Replicas of a service share it by name.
#[derive(Clone, Debug)]
pub struct ConsumerConfig {
    /// The durable consumer's name, shared by a service's replicas; also names its dead letters.
    pub name: String,
    /// The JetStream stream read.
    pub stream: String,
    /// Subjects read (a consumer's own redeliver subject is added to these).
    pub filter_subjects: Vec<String>,
    /// Messages handled at once. Messages of one event stream are always handled one at a time, in
    /// order; different streams in parallel.
    pub concurrency: usize,
    /// Messages delivered and not yet acked, across all replicas: the backpressure bound.
    pub max_ack_pending: i64,
    /// How long JetStream waits for an ack before redelivering. Set above the handler's p99; long
    /// handlers are kept alive by in-progress acks every third of it.
    pub ack_wait: Duration,
    /// Deliveries before a failing message is parked as a dead letter.
    pub max_deliver: u32,
    /// Whether a dead letter is announced on `quorum.dlq.<consumer>.<tenant>`. Off only for the
    /// consumer of those notices.
    pub notify_dead_letters: bool,
}

impl ConsumerConfig {
    /// A consumer `name` on the events stream, filtered to `filter_subjects`, with the defaults.
    pub fn new(name: impl Into<String>, filter_subjects: Vec<String>) -> Self {
        Self {
            name: name.into(),
            stream: quorum_bus::EVENTS_STREAM.to_owned(),
            filter_subjects,
            concurrency: 16,
            max_ack_pending: 1024,
            ack_wait: Duration::from_secs(30),
            max_deliver: 5,
            notify_dead_letters: true,
        }
    }

    pub(crate) fn jetstream(&self) -> pull::Config {
        let mut filters = self.filter_subjects.clone();
        if self.stream == quorum_bus::EVENTS_STREAM {
            filters.push(quorum_bus::subjects::redeliver_filter(&self.name));
        }
        pull::Config {
            durable_name: Some(self.name.clone()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            // One delivery more than the handler gets: if the last attempt died without an outcome
            // (a crash, an ack timeout), that extra delivery parks the message instead of JetStream
            // silently giving up on it.
            max_deliver: i64::from(self.max_deliver) + 1,
            max_ack_pending: self.max_ack_pending,
            filter_subjects: filters,
            ..Default::default()
        }
    }
}
