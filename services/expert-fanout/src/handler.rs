//! The handler: for a submitted query, ask each selected expert once, concurrently, and record each
//! answer or failure in the query's stream as soon as it comes.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use quorum_domain::expert::{
    ErrorClass, ExpertFailed, ExpertResponded, MAX_REASONING_BYTES, MAX_REPLY_BYTES, bounded,
};
use quorum_domain::query::QuerySubmitted;
use quorum_domain::{Event, StreamId, derived_event_id, types};
use quorum_event_store::{Batcher, ExpectedVersion, StoreError};
use quorum_runtime::consumer::{Delivery, Handler, Outcome};

use quorum_experts::{ExpertConfig, Panel};

/// Names this handler in derived event ids: never change it.
pub const HANDLER: &str = "expert-fanout";
/// Where its events say they come from.
pub const SOURCE: &str = "/quorum/expert-fanout";

pub struct Fanout {
    /// Reads and appends go in groups with those of the other queries in flight.
    pub store: Batcher,
    /// The configured experts, each behind its breaker, timeout, retries and limits.
    pub panel: Arc<Panel>,
}

impl Fanout {
    pub fn new(store: Batcher, experts: Vec<ExpertConfig>) -> Self {
        Self {
            store,
            panel: Arc::new(Panel::new(experts)),
        }
    }
}

impl Handler for Fanout {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        let cause = &delivery.event;
        if cause.ty != types::QUERY_SUBMITTED {
            return Outcome::Done;
        }
        let Some(stream) = cause
            .subject
            .as_deref()
            .and_then(|s| StreamId::parse(s).ok())
        else {
            return Outcome::dead("a submitted query without a query stream as its subject");
        };
        let query: QuerySubmitted =
            match serde_json::from_slice(cause.data.as_deref().unwrap_or_default()) {
                Ok(q) => q,
                Err(e) => return Outcome::dead(format!("unreadable query: {e}")),
            };
        let asked: Vec<String> = query.experts.clone().unwrap_or_else(|| {
            self.panel
                .experts()
                .iter()
                .map(|e| e.name.clone())
                .collect()
        });
        // A redelivery asks only those whose result is not stored yet: the ids are derived, so a
        // stored result is found by id.
        let (stored, mut version): (HashSet<String>, u64) =
            match self.store.read_stream(&stream).await {
                Ok(events) => (
                    events.iter().map(|r| r.event.id.clone()).collect(),
                    events.last().map_or(0, |r| r.stream_version),
                ),
                Err(e) => return Outcome::store_failed(Duration::from_secs(1), &e),
            };
        let pending: Vec<(u32, &String)> = asked
            .iter()
            .enumerate()
            .map(|(i, name)| (i as u32, name))
            .filter(|(i, _)| {
                !stored
                    .contains(&derived_event_id(&cause.source, &cause.id, HANDLER, *i).to_string())
            })
            .collect();
        // Every expert at once (the config bounds how many there are). Each result is recorded
        // as soon as it comes, together with those that came at the same moment: one commit for
        // experts that answer together, and a slow expert holds up no one else's result.
        let question = query.question.as_str();
        let mut asking: FuturesUnordered<_> = pending
            .into_iter()
            .map(|(index, name)| self.ask(cause, &stream, index, name, question))
            .collect();
        while let Some(first) = asking.next().await {
            let mut ready = vec![first];
            while let Some(Some(event)) = asking.next().now_or_never() {
                ready.push(event);
            }
            // At the version last seen: one statement, no stream lock. Someone else appended
            // meanwhile (a consensus at the deadline, a redelivery elsewhere): append after them.
            let appended = match self
                .store
                .append(&stream, ExpectedVersion::Exact(version), &ready)
                .await
            {
                Err(StoreError::Conflict { .. }) => {
                    self.store
                        .store()
                        .append(&stream, ExpectedVersion::Any, &ready)
                        .await
                }
                other => other,
            };
            match appended {
                Ok(result) => {
                    let last = result.events.iter().map(|a| a.stream_version).max();
                    version = version.max(last.unwrap_or(version));
                }
                // What is not recorded is asked again on the redelivery.
                Err(e) => return Outcome::store_failed(Duration::from_secs(1), &e),
            }
        }
        Outcome::Done
    }
}

impl Fanout {
    /// Asks one expert and returns the event that records what happened.
    async fn ask(
        &self,
        cause: &Event,
        stream: &StreamId,
        index: u32,
        name: &str,
        question: &str,
    ) -> Event {
        let started = Instant::now();
        let expert = self.panel.get(name);
        let (ty, data) = match expert {
            None => failed(
                name,
                "unknown",
                "",
                ErrorClass::Unknown,
                "no such expert in the config".into(),
                0,
                0,
            ),
            Some(e) => {
                let (outcome, attempts) = self.panel.ask(e, question).await;
                let latency_ms = started.elapsed().as_millis() as u64;
                let (provider, model) = (e.provider.kind(), e.provider.model());
                match outcome {
                    Ok(reply) => {
                        let data = ExpertResponded {
                            expert: e.name.clone(),
                            provider: provider.into(),
                            model: model.into(),
                            // Bounded, and saying so: a model's reply of any size must not
                            // make an event the bus cannot carry.
                            answer: bounded(reply.answer, MAX_REPLY_BYTES),
                            final_answer: Some(reply.final_answer.text),
                            extraction: Some(reply.final_answer.extraction),
                            reasoning: reply
                                .final_answer
                                .reasoning
                                .map(|r| bounded(r, MAX_REASONING_BYTES)),
                            confidence: reply.final_answer.confidence,
                            weight: e.weight,
                            latency_ms,
                            attempts,
                            usage: reply.usage,
                        };
                        (
                            types::EXPERT_RESPONDED,
                            serde_json::to_vec(&data).expect("serializes"),
                        )
                    }
                    Err(err) => failed(
                        &e.name,
                        provider,
                        model,
                        err.class,
                        err.message,
                        latency_ms,
                        attempts,
                    ),
                }
            }
        };
        Event::derived(
            cause,
            HANDLER,
            index,
            SOURCE,
            ty,
            stream.clone(),
            Bytes::from(data),
        )
    }
}

fn failed(
    expert: &str,
    provider: &str,
    model: &str,
    error_class: ErrorClass,
    message: String,
    latency_ms: u64,
    attempts: u32,
) -> (&'static str, Vec<u8>) {
    let data = ExpertFailed {
        expert: expert.into(),
        provider: provider.into(),
        model: model.into(),
        error_class,
        message,
        latency_ms,
        attempts,
    };
    (
        types::EXPERT_FAILED,
        serde_json::to_vec(&data).expect("serializes"),
    )
}
