//! An expert's config: its name, how it is reached, its weight, and the layers around its calls.

use std::time::Duration;

use quorum_config::{ConfigError, duration};
use serde::{Deserialize, Serialize};

/// One expert: a name, how to reach it, and how much its answer weighs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExpertConfig {
    pub name: String,
    #[serde(flatten)]
    pub provider: ProviderConfig,
    #[serde(default = "one")]
    pub weight: f64,
    /// How long one call may take.
    #[serde(default = "thirty_seconds", with = "duration")]
    pub timeout: Duration,
    #[serde(default)]
    pub breaker: crate::breaker::BreakerConfig,
    /// Retries of an HTTP provider, on connect errors, 5xx and 429 only.
    #[serde(default)]
    pub retry: crate::provider::retry::RetryConfig,
    /// Calls per second at most (every attempt counts); none when absent.
    #[serde(default)]
    pub rate_per_second: Option<u32>,
    /// Calls in flight at once.
    #[serde(default = "eight")]
    pub concurrency: usize,
}

fn eight() -> usize {
    8
}

fn one() -> f64 {
    1.0
}

fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

/// How an expert is reached.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "provider", rename_all = "lowercase")]
pub enum ProviderConfig {
    /// A local, deterministic expert that answers from rules: for running with no model at hand,
    /// and for tests. Shown as `scripted` wherever it appears.
    Scripted(crate::scripted::ScriptedConfig),
    /// Any OpenAI-compatible chat completions endpoint.
    Openai(crate::provider::openai::OpenAiConfig),
    /// Anthropic's Messages API.
    Anthropic(crate::provider::anthropic::AnthropicConfig),
}

impl ProviderConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderConfig::Scripted(_) => "scripted",
            ProviderConfig::Openai(_) => "openai",
            ProviderConfig::Anthropic(_) => "anthropic",
        }
    }

    /// The model asked (`scripted` for a scripted expert).
    pub fn model(&self) -> &str {
        match self {
            ProviderConfig::Scripted(_) => "scripted",
            ProviderConfig::Openai(c) => &c.model,
            ProviderConfig::Anthropic(c) => &c.model,
        }
    }
}

/// Three scripted experts, so that `quorum up` answers end to end with no model at hand. Like
/// models, they agree in different words: on the capital of France all three say Paris, each its
/// own way; on anything else one of them dissents, so a consensus shows both.
pub fn default_experts() -> Vec<ExpertConfig> {
    [
        ("alpha", "Paris", "42"),
        (
            "beta",
            "The capital of France is Paris.",
            "The answer is forty-two.",
        ),
        (
            "gamma",
            "It's Paris, which has been the French capital for centuries.",
            "Probably 41, though I'm not certain.",
        ),
    ]
    .into_iter()
    .map(|(name, paris, default_answer)| ExpertConfig {
        name: name.to_owned(),
        provider: ProviderConfig::Scripted(crate::scripted::ScriptedConfig {
            rules: vec![crate::scripted::Rule {
                contains: "capital of france".into(),
                answer: paris.into(),
            }],
            default_answer: default_answer.into(),
            ..Default::default()
        }),
        weight: 1.0,
        timeout: thirty_seconds(),
        breaker: Default::default(),
        retry: Default::default(),
        rate_per_second: None,
        concurrency: eight(),
    })
    .collect()
}

/// Checks a list of experts: names valid and unique, weights positive, timeouts above zero.
pub fn validate_experts(experts: &[ExpertConfig]) -> Result<(), ConfigError> {
    {
        for (i, e) in experts.iter().enumerate() {
            let key = |field: &str| format!("experts[{i}].{field}");
            let ok = !e.name.is_empty()
                && e.name.len() <= 64
                && e.name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !ok {
                return Err(ConfigError::invalid(
                    key("name"),
                    "1-64 characters of a-z, 0-9, '_' or '-'",
                ));
            }
            if experts[..i].iter().any(|o| o.name == e.name) {
                return Err(ConfigError::invalid(
                    key("name"),
                    format!("{} is configured twice", e.name),
                ));
            }
            if !(e.weight > 0.0 && e.weight.is_finite()) {
                return Err(ConfigError::invalid(key("weight"), "a positive number"));
            }
            if e.concurrency == 0 || e.rate_per_second == Some(0) {
                return Err(ConfigError::invalid(
                    key("concurrency"),
                    "concurrency and rate_per_second must be above zero",
                ));
            }
            if e.timeout.is_zero() {
                return Err(ConfigError::invalid(key("timeout"), "above zero"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_reads_from_its_config() {
        let experts: Vec<ExpertConfig> = serde_json::from_value(serde_json::json!([
            {"name": "llama", "provider": "openai", "base_url": "http://127.0.0.1:11434/v1",
             "model": "llama3.1", "timeout": "60s", "rate_per_second": 2, "concurrency": 2,
             "retry": {"max_retries": 1, "min_delay": "100ms", "max_delay": "1s"}},
            {"name": "claude", "provider": "anthropic", "base_url": "https://api.anthropic.com",
             "model": "claude-test"},
            {"name": "alpha", "provider": "scripted", "default_answer": "42"}
        ]))
        .expect("valid experts");
        validate_experts(&experts).expect("valid");
        assert_eq!(
            experts
                .iter()
                .map(|e| e.provider.kind())
                .collect::<Vec<_>>(),
            ["openai", "anthropic", "scripted"]
        );
        assert_eq!(experts[0].provider.model(), "llama3.1");
        assert_eq!(experts[0].timeout, Duration::from_secs(60));
        assert_eq!(experts[1].concurrency, 8, "the default");

        let twice = vec![experts[2].clone(), experts[2].clone()];
        assert!(validate_experts(&twice).is_err());
    }
}
