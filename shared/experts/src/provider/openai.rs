//! OpenAI-compatible chat completions (OpenAI, vLLM, Ollama, llama.cpp server): `POST
//! {base_url}/chat/completions`.

use quorum_domain::expert::{
    ANSWER_INSTRUCTIONS, ErrorClass, Extraction, FinalAnswer, TokenUsage, answer_schema,
};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;

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
    /// Hold the reply to the answer schema (`response_format`). Servers that reject
    /// `response_format` set it false; their final answer is then read from the text.
    #[serde(default = "super::yes")]
    pub structured_output: bool,
    /// Sent as `max_tokens` when set; the server's own limit applies otherwise.
    #[serde(default)]
    pub max_tokens: Option<u32>,
}

fn default_key_env() -> String {
    "OPENAI_API_KEY".into()
}

/// The chat completion request an expert sends for `question`: the answer instructions, the
/// question, the answer schema when the server holds replies to one. It borrows its parts and is
/// serialized straight into the request: a call builds no JSON tree of its own.
#[derive(Debug, Serialize)]
pub struct ChatRequest<'a> {
    model: &'a str,
    messages: [ChatMessage<'a>; 2],
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<&'static RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
}

#[derive(Debug, Serialize)]
struct ChatMessage<'a> {
    role: &'static str,
    content: &'a str,
}

/// `response_format` holding the reply to the answer schema: the same for every call, so it is
/// serialized once.
static RESPONSE_FORMAT: LazyLock<Box<RawValue>> = LazyLock::new(|| {
    serde_json::value::to_raw_value(&json!({
        "type": "json_schema",
        "json_schema": {"name": "expert_answer", "strict": true, "schema": answer_schema()},
    }))
    .expect("the answer schema serializes")
});

pub fn request_body<'a>(config: &'a OpenAiConfig, question: &'a str) -> ChatRequest<'a> {
    ChatRequest {
        model: &config.model,
        messages: [
            ChatMessage {
                role: "system",
                content: ANSWER_INSTRUCTIONS,
            },
            ChatMessage {
                role: "user",
                content: question,
            },
        ],
        response_format: config.structured_output.then(|| &**RESPONSE_FORMAT),
        max_tokens: config.max_tokens,
    }
}

pub async fn ask(
    client: &reqwest::Client,
    config: &OpenAiConfig,
    question: &str,
) -> Result<Reply, ProviderError> {
    let url = format!("{}/chat/completions", config.base_url.trim_end_matches('/'));
    let mut request = client.post(url).json(&request_body(config, question));
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
    let message = body.choices.into_iter().next().map(|c| c.message);
    let answer = match message {
        Some(Message {
            content: Some(content),
            ..
        }) => content,
        // A model held to a schema may decline to answer in it, and says why instead.
        Some(Message {
            refusal: Some(refusal),
            ..
        }) => {
            return Err(ProviderError::new(
                ErrorClass::Malformed,
                format!("the model refused: {refusal}"),
            ));
        }
        _ => {
            return Err(ProviderError::new(
                ErrorClass::Malformed,
                "a completion without content",
            ));
        }
    };
    // A server may accept `response_format` and still answer in prose; the text is read then, and
    // `extraction` says which way the answer was found.
    let final_answer = config
        .structured_output
        .then(|| FinalAnswer::from_json(&answer, Extraction::JsonSchema))
        .flatten()
        .unwrap_or_else(|| FinalAnswer::from_text(&answer));
    Ok(Reply {
        answer,
        final_answer,
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
    refusal: Option<String>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
}
