//! OpenAI-compatible chat completions (OpenAI, vLLM, Ollama, llama.cpp server): `POST
//! {base_url}/chat/completions`.

use quorum_domain::expert::{ErrorClass, TokenUsage};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ProviderError, Reply, api_key, from_response, from_transport};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpenAiConfig {
    /// Up to the version segment: `https://api.openai.com/v1`, `http://localhost:11434/v1`.
    pub base_url: String,
    pub model: String,
    /// The environment variable holding the API key (none is sent when it is unset, as local
    /// servers expect).
    #[serde(default = "default_key_env")]
    pub api_key_env: String,
}

fn default_key_env() -> String {
    "OPENAI_API_KEY".into()
}

pub async fn ask(
    client: &reqwest::Client,
    config: &OpenAiConfig,
    question: &str,
) -> Result<Reply, ProviderError> {
    let url = format!("{}/chat/completions", config.base_url.trim_end_matches('/'));
    let mut request = client.post(url).json(&json!({
        "model": config.model,
        "messages": [{"role": "user", "content": question}],
    }));
    if let Some(key) = api_key(&config.api_key_env) {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.map_err(from_transport)?;
    if !response.status().is_success() {
        return Err(from_response(response).await);
    }
    let body: Completion = response.json().await.map_err(|e| {
        ProviderError::new(ErrorClass::Malformed, format!("unreadable completion: {e}"))
    })?;
    let answer = body
        .choices
        .into_iter()
        .next()
        .and_then(|c| c.message.content)
        .ok_or_else(|| ProviderError::new(ErrorClass::Malformed, "a completion without content"))?;
    Ok(Reply {
        answer,
        usage: body.usage.map(|u| TokenUsage {
            prompt: u.prompt_tokens,
            completion: u.completion_tokens,
        }),
    })
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
}
