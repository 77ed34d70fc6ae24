//! The handler: for a submitted query, ask each selected expert once, concurrently, and record each
//! answer or failure in the query's stream as soon as it comes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use quorum_domain::expert::{ErrorClass, ExpertFailed, ExpertResponded};
use quorum_domain::query::QuerySubmitted;
use quorum_domain::{Event, StreamId, derived_event_id, types};
use quorum_event_store::{EventStore, ExpectedVersion};
use quorum_runtime::consumer::{Delivery, Handler, Outcome};

use crate::breaker::Breaker;
use crate::config::{ExpertConfig, ProviderConfig};
use crate::provider::retry::with_retries;
use crate::provider::{ProviderError, Reply, anthropic, openai};

/// Names this handler in derived event ids: never change it.
pub const HANDLER: &str = "expert-fanout";
/// Where its events say they come from.
pub const SOURCE: &str = "/quorum/expert-fanout";

pub struct Fanout {
    pub store: EventStore,
    pub experts: Arc<Vec<ExpertConfig>>,
    /// One per configured expert, by name.
    pub breakers: HashMap<String, Breaker>,
    /// Each expert's rate and concurrency limits, by name.
    limits: HashMap<String, Limits>,
    pub http: reqwest::Client,
}

impl Fanout {
    pub fn new(store: EventStore, experts: Vec<ExpertConfig>) -> Self {
        let breakers = experts
            .iter()
            .map(|e| (e.name.clone(), Breaker::new(&e.name, e.breaker.clone())))
            .collect();
        let limits = experts
            .iter()
            .map(|e| (e.name.clone(), Limits::new(e)))
            .collect();
        Self {
            store,
            experts: Arc::new(experts),
            breakers,
            limits,
            http: reqwest::Client::new(),
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
        let asked: Vec<String> = query
            .experts
            .clone()
            .unwrap_or_else(|| self.experts.iter().map(|e| e.name.clone()).collect());
        // A redelivery asks only those whose result is not stored yet: the ids are derived, so a
        // stored result is found by id.
        let stored: HashSet<String> = match self.store.read_stream(&stream, 1, 100_000).await {
            Ok(events) => events.into_iter().map(|r| r.event.id).collect(),
            Err(e) => return Outcome::retry(Duration::from_secs(1), e),
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
        // Every expert at once: the config bounds how many there are.
        let calls = pending.into_iter().map(|(index, name)| {
            let (stream, question) = (&stream, query.question.as_str());
            async move {
                let event = self.ask(cause, stream, index, name, question).await;
                self.store
                    .append(stream, ExpectedVersion::Any, &[event])
                    .await
                    .map(|_| ())
            }
        });
        let results = futures::future::join_all(calls).await;
        match results.into_iter().find_map(Result::err) {
            None => Outcome::Done,
            Some(e) => Outcome::retry(Duration::from_secs(1), e),
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
        let expert = self.experts.iter().find(|e| e.name == name);
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
                let (outcome, attempts) = self.ask_expert(e, question).await;
                let latency_ms = started.elapsed().as_millis() as u64;
                let (provider, model) = (e.provider.kind(), e.provider.model());
                match outcome {
                    Ok(reply) => {
                        let data = ExpertResponded {
                            expert: e.name.clone(),
                            provider: provider.into(),
                            model: model.into(),
                            answer: reply.answer,
                            confidence: None,
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

    /// Asks `expert` within its timeout, with the retries its config allows, and tells its breaker
    /// how it went. Returns the outcome and the attempts made.
    pub async fn ask_expert(
        &self,
        expert: &ExpertConfig,
        question: &str,
    ) -> (Result<Reply, ProviderError>, u32) {
        let breaker = self.breakers.get(&expert.name);
        if breaker.is_some_and(|b| b.acquire().is_err()) {
            let open = ProviderError::new(
                ErrorClass::CircuitOpen,
                "the circuit breaker is open after repeated failures; not asked",
            );
            return (Err(open), 0);
        }
        let attempts = AtomicU32::new(0);
        let outcome = tokio::time::timeout(expert.timeout, self.call(expert, question, &attempts))
            .await
            .unwrap_or_else(|_| {
                Err(ProviderError::new(
                    ErrorClass::Timeout,
                    format!("no answer within {:?}", expert.timeout),
                ))
            });
        if let Some(b) = breaker {
            b.record(outcome.is_ok());
        }
        (outcome, attempts.load(Ordering::Relaxed))
    }

    /// One call to the expert's provider, with the retries its config allows.
    async fn call(
        &self,
        expert: &ExpertConfig,
        question: &str,
        attempts: &AtomicU32,
    ) -> Result<Reply, ProviderError> {
        let limits = &self.limits[&expert.name];
        match &expert.provider {
            ProviderConfig::Scripted(s) => {
                attempts.fetch_add(1, Ordering::Relaxed);
                let _slot = limits.take().await;
                s.ask(&expert.name, question)
                    .await
                    .map(|answer| Reply {
                        answer,
                        usage: None,
                    })
                    .map_err(|e| ProviderError::new(ErrorClass::Server, e.to_string()))
            }
            ProviderConfig::Openai(c) => {
                with_retries(&expert.retry, attempts, || async {
                    let _slot = limits.take().await;
                    openai::ask(&self.http, c, question).await
                })
                .await
            }
            ProviderConfig::Anthropic(c) => {
                with_retries(&expert.retry, attempts, || async {
                    let _slot = limits.take().await;
                    anthropic::ask(&self.http, c, question).await
                })
                .await
            }
        }
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

/// An expert's rate and concurrency limits. Every attempt waits for both (an outgoing call is
/// delayed, not refused), inside the expert's timeout, so a throttled expert times out instead of
/// piling up.
struct Limits {
    rate: Option<governor::DefaultDirectRateLimiter>,
    slots: tokio::sync::Semaphore,
}

impl Limits {
    fn new(expert: &ExpertConfig) -> Self {
        Self {
            rate: expert
                .rate_per_second
                .and_then(std::num::NonZeroU32::new)
                .map(|r| governor::RateLimiter::direct(governor::Quota::per_second(r))),
            slots: tokio::sync::Semaphore::new(expert.concurrency.max(1)),
        }
    }

    async fn take(&self) -> tokio::sync::SemaphorePermit<'_> {
        if let Some(rate) = &self.rate {
            rate.until_ready().await;
        }
        self.slots.acquire().await.expect("never closed")
    }
}
