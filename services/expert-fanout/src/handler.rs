//! The handler: for a submitted query, ask each selected expert once, concurrently, and record each
//! answer or failure in the query's stream as soon as it comes.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{FuturesUnordered, Stream, StreamExt};
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
/// How long the first of a query's answers waits for others to share its append. Experts asked
/// together often answer within this of each other; one commit then records them all, and
/// consensus folds them at once rather than deciding on some and finding the rest late.
const GATHER: Duration = Duration::from_millis(2);

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
        while let Some(ready) = gathered(&mut asking).await {
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

/// The next answers to record together: the first to come, and those that come within [`GATHER`]
/// after it. A slower expert's answer is left for the next call. `None` once every answer is in.
async fn gathered<T>(asking: &mut (impl Stream<Item = T> + Unpin)) -> Option<Vec<T>> {
    let mut ready = vec![asking.next().await?];
    let gather = tokio::time::sleep(GATHER);
    tokio::pin!(gather);
    loop {
        tokio::select! {
            biased;
            next = asking.next() => match next {
                Some(answer) => ready.push(answer),
                None => return Some(ready),
            },
            _ = &mut gather => return Some(ready),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers that come at the given milliseconds after the experts were asked.
    fn answering_at(ms: &[u64]) -> FuturesUnordered<impl Future<Output = u64>> {
        ms.iter()
            .map(|&at| async move {
                tokio::time::sleep(Duration::from_millis(at)).await;
                at
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn answers_a_moment_apart_share_an_append_and_a_slow_one_waits_for_no_one() {
        // 0 and 1 ms come together; 30 ms is too late for them, and 31 ms comes with it.
        let start = tokio::time::Instant::now();
        let mut asking = answering_at(&[0, 1, 30, 31]);
        let mut appends = Vec::new();
        while let Some(mut ready) = gathered(&mut asking).await {
            ready.sort();
            appends.push((ready, (tokio::time::Instant::now() - start).as_millis()));
        }
        assert_eq!(
            appends,
            [
                // The first waits out its window, since more answers are still to come.
                (vec![0, 1], 2),
                // The last answer of the set ends the wait: nothing lingers once all are in.
                (vec![30, 31], 31),
            ]
        );
    }
}
