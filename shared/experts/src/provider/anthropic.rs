//! Anthropic's Messages API: `POST {base_url}/v1/messages`.

use quorum_domain::expert::{ErrorClass, TokenUsage};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ProviderError, Reply, api_key, from_response, from_transport};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnthropicConfig {
    /// `https://api.anthropic.com`.
    pub base_url: String,
    pub model: String,
    #[serde(default = "default_key_env")]
    pub api_key_env: String,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
}

fn default_key_env() -> String {
    "ANTHROPIC_API_KEY".into()
}

fn default_max_tokens() -> u32 {
    1024
}

const VERSION: &str = "2023-06-01";

pub async fn ask(
    client: &reqwest::Client,
    config: &AnthropicConfig,
    question: &str,
) -> Result<Reply, ProviderError> {
    let url = format!("{}/v1/messages", config.base_url.trim_end_matches('/'));
    let mut request = client
        .post(url)
        .header("anthropic-version", VERSION)
        .json(&json!({
            "model": config.model,
            "max_tokens": config.max_tokens,
            "messages": [{"role": "user", "content": question}],
        }));
    if let Some(key) = api_key(&config.api_key_env) {
        request = request.header("x-api-key", key);
    }
    let response = request.send().await.map_err(from_transport)?;
    if !response.status().is_success() {
        return Err(from_response(response).await);
    }
    let body: MessageReply = response.json().await.map_err(|e| {
        ProviderError::new(ErrorClass::Malformed, format!("unreadable message: {e}"))
    })?;
    let answer: String = body
        .content
        .into_iter()
        .filter(|b| b.kind == "text")
        .filter_map(|b| b.text)
        .collect::<Vec<_>>()
        .join("");
    if answer.is_empty() {
        return Err(ProviderError::new(
            ErrorClass::Malformed,
            "a message without text",
        ));
    }
    Ok(Reply {
        answer,
        usage: body.usage.map(|u| TokenUsage {
            prompt: u.input_tokens,
            completion: u.output_tokens,
        }),
    })
}

#[derive(Deserialize)]
struct MessageReply {
    content: Vec<Block>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    input_tokens: u64,
    output_tokens: u64,
}
