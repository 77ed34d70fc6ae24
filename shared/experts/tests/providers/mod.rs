//! The OpenAI and Anthropic providers against wire-level fakes of their HTTP APIs (wiremock):
//! success, 429 with Retry-After, 500, a timeout, malformed JSON, a refused request, and no server
//! at all; each classified, and retried or not, as documented (`wire`). And the final answer: asked for by
//! schema or forced tool call, read from it, and read from the text when a server answers in prose (`answers`).

mod answers;
mod wire;

use std::time::Duration;

use quorum_experts::provider::anthropic::AnthropicConfig;
use quorum_experts::provider::openai::OpenAiConfig;
use quorum_experts::provider::retry::RetryConfig;
use quorum_experts::{ExpertConfig, Panel, ProviderConfig};
use serde_json::json;

pub(super) fn openai(base_url: &str) -> ExpertConfig {
    expert(ProviderConfig::Openai(OpenAiConfig {
        base_url: base_url.into(),
        model: "gpt-test".into(),
        api_key_env: "QUORUM_TEST_NO_SUCH_KEY".into(),
        structured_output: true,
        max_tokens: None,
    }))
}

pub(super) fn anthropic(base_url: &str) -> ExpertConfig {
    expert(ProviderConfig::Anthropic(AnthropicConfig {
        base_url: base_url.into(),
        model: "claude-test".into(),
        api_key_env: "QUORUM_TEST_NO_SUCH_KEY".into(),
        max_tokens: 64,
        structured_output: true,
    }))
}

pub(super) fn expert(provider: ProviderConfig) -> ExpertConfig {
    ExpertConfig {
        name: "e".into(),
        provider,
        weight: 1.0,
        timeout: Duration::from_secs(20),
        breaker: Default::default(),
        retry: RetryConfig {
            max_retries: 2,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        },
        rate_per_second: None,
        concurrency: 8,
    }
}

pub(super) fn panel(experts: Vec<ExpertConfig>) -> Panel {
    Panel::new(experts)
}

pub(super) fn completion(content: &str) -> serde_json::Value {
    json!({"choices": [{"message": {"role": "assistant", "content": content}}],
           "usage": {"prompt_tokens": 7, "completion_tokens": 3}})
}
