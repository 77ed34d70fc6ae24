//! The data of `quorum.expert.responded` and `quorum.expert.failed`: what one expert answered to one
//! query, or why it could not, with enough provenance to audit it later.

use serde::{Deserialize, Serialize};

/// Tokens an answer cost, as the provider reported them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub prompt: u64,
    pub completion: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpertResponded {
    /// The expert's name in the config.
    pub expert: String,
    /// `openai`, `anthropic` or `scripted` (a scripted expert is never a model, and says so).
    pub provider: String,
    pub model: String,
    pub answer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    /// The expert's weight in a majority vote.
    #[serde(default = "one")]
    pub weight: f64,
    pub latency_ms: u64,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<TokenUsage>,
}

fn one() -> f64 {
    1.0
}

/// Why an expert gave no answer, in classes an operator can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// No answer within the expert's timeout.
    Timeout,
    /// Could not connect.
    Connect,
    /// 429, after the retries allowed.
    RateLimited,
    /// 5xx, after the retries allowed.
    Server,
    /// Any other 4xx: a request the provider will never accept (a bad key, an unknown model).
    Client,
    /// An answer that could not be read.
    Malformed,
    /// The circuit breaker was open: the expert was not asked.
    CircuitOpen,
    /// The query named an expert the config does not have.
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpertFailed {
    pub expert: String,
    pub provider: String,
    pub model: String,
    pub error_class: ErrorClass,
    pub message: String,
    pub latency_ms: u64,
    pub attempts: u32,
}
