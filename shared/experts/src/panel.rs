//! The configured experts and the layers around every call to one of them, in the order ADR 10
//! writes down: breaker, then the expert's whole timeout, then retries (HTTP providers), then the
//! rate and concurrency limits on every attempt. Fan-out asks its experts through a panel; the
//! consensus service asks its judge through one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};

use quorum_domain::expert::{ErrorClass, FinalAnswer};
use quorum_trace::{KeyValue, Leaf, SpanKind};

use crate::breaker::Breaker;
use crate::config::{ExpertConfig, ProviderConfig};
use crate::provider::retry::with_retries;
use crate::provider::{ProviderError, Reply, anthropic, openai};

pub struct Panel {
    experts: Vec<ExpertConfig>,
    /// One per configured expert, by name.
    pub breakers: HashMap<String, Breaker>,
    /// Each expert's rate and concurrency limits, by name.
    limits: HashMap<String, Limits>,
    http: reqwest::Client,
}

impl Panel {
    pub fn new(experts: Vec<ExpertConfig>) -> Self {
        let breakers = experts
            .iter()
            .map(|e| (e.name.clone(), Breaker::new(&e.name, e.breaker.clone())))
            .collect();
        let limits = experts
            .iter()
            .map(|e| (e.name.clone(), Limits::new(e)))
            .collect();
        Self {
            experts,
            breakers,
            limits,
            http: quorum_http_client::client(),
        }
    }

    /// Every configured expert, in config order.
    pub fn experts(&self) -> &[ExpertConfig] {
        &self.experts
    }

    pub fn get(&self, name: &str) -> Option<&ExpertConfig> {
        self.experts.iter().find(|e| e.name == name)
    }

    /// Asks `expert` within its timeout, with the retries its config allows, and tells its breaker
    /// how it went. Returns the outcome and the attempts made. The call is one GenAI client span
    /// (see [`call_span`]), a child of the caller's.
    pub async fn ask(
        &self,
        expert: &ExpertConfig,
        question: &str,
    ) -> (Result<Reply, ProviderError>, u32) {
        let mut span = call_span(expert);
        let (outcome, attempts) = self.ask_within(expert, question).await;
        span.set(KeyValue::new("quorum.attempts", i64::from(attempts)));
        match &outcome {
            Ok(reply) => {
                if let Some(usage) = &reply.usage {
                    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                    span.set(KeyValue::new(
                        "gen_ai.usage.input_tokens",
                        count(usage.prompt),
                    ));
                    span.set(KeyValue::new(
                        "gen_ai.usage.output_tokens",
                        count(usage.completion),
                    ));
                }
            }
            Err(e) => {
                span.set(KeyValue::new("error.type", class_label(e)));
                span.error();
            }
        }
        (outcome, attempts)
    }

    async fn ask_within(
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
            record(&expert.name, std::time::Duration::ZERO, &Err(open.clone()));
            return (Err(open), 0);
        }
        let attempts = AtomicU32::new(0);
        let started = std::time::Instant::now();
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
        record(&expert.name, started.elapsed(), &outcome);
        (outcome, attempts.load(Ordering::Relaxed))
    }

    /// One call to the expert's provider, with the retries its config allows.
    async fn call(
        &self,
        expert: &ExpertConfig,
        question: &str,
        attempts: &AtomicU32,
    ) -> Result<Reply, ProviderError> {
        let Some(limits) = self.limits.get(&expert.name) else {
            return Err(ProviderError::new(
                ErrorClass::Unknown,
                format!("{} is not one of this panel's experts", expert.name),
            ));
        };
        match &expert.provider {
            ProviderConfig::Scripted(s) => {
                attempts.fetch_add(1, Ordering::Relaxed);
                let _slot = limits.take().await;
                s.ask(&expert.name, question)
                    .await
                    .map(|answer| Reply {
                        final_answer: FinalAnswer::from_text(&answer),
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

/// Histogram, seconds: an expert asked, from the call to its outcome, retries included. Labels:
/// `expert`, `outcome` (`ok` or the error class: `timeout`, `rate_limited`, `circuit_open`, …).
pub const CALL_DURATION_SECONDS: &str = "quorum_expert_call_duration_seconds";

/// Counter: tokens the experts' providers reported. Labels: `expert`, `kind` (`prompt`,
/// `completion`).
pub const TOKENS_TOTAL: &str = "quorum_expert_tokens_total";

/// The span of one expert asked, as the OpenTelemetry GenAI conventions name a client's chat call:
/// `chat {model}`, the provider, the model, and (set when the call is done) the tokens used and
/// the error class of a failure. [`Leaf::none`] in a trace not recorded.
pub fn call_span(expert: &ExpertConfig) -> Leaf {
    if !quorum_trace::recording() {
        return Leaf::none();
    }
    let provider = match &expert.provider {
        ProviderConfig::Scripted(_) => "quorum.scripted",
        ProviderConfig::Openai(_) => "openai",
        ProviderConfig::Anthropic(_) => "anthropic",
    };
    let model = expert.provider.model();
    Leaf::child(
        format!("chat {model}"),
        SpanKind::Client,
        vec![
            KeyValue::new("gen_ai.operation.name", "chat"),
            KeyValue::new("gen_ai.provider.name", provider),
            KeyValue::new("gen_ai.request.model", model.to_owned()),
            KeyValue::new("quorum.expert", expert.name.clone()),
        ],
    )
}

/// An error's class as metrics and spans name it (`timeout`, `rate_limited`, `circuit_open`, …).
fn class_label(e: &ProviderError) -> String {
    serde_json::to_value(e.class)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

fn record(expert: &str, took: std::time::Duration, outcome: &Result<Reply, ProviderError>) {
    let class = match outcome {
        Ok(_) => "ok".to_owned(),
        Err(e) => class_label(e),
    };
    metrics::histogram!(CALL_DURATION_SECONDS, "expert" => expert.to_owned(), "outcome" => class)
        .record(took.as_secs_f64());
    if let Ok(Reply {
        usage: Some(usage), ..
    }) = outcome
    {
        metrics::counter!(TOKENS_TOTAL, "expert" => expert.to_owned(), "kind" => "prompt")
            .increment(usage.prompt);
        metrics::counter!(TOKENS_TOTAL, "expert" => expert.to_owned(), "kind" => "completion")
            .increment(usage.completion);
    }
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
