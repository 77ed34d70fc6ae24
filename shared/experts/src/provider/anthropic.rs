//! Anthropic's Messages API: `POST {base_url}/v1/messages`.

use quorum_domain::expert::{
    ANSWER_INSTRUCTIONS, ErrorClass, Extraction, FinalAnswer, TokenUsage, answer_schema,
};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;

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
    /// Have the model answer by calling a `final_answer` tool held to the answer schema. Set it
    /// false for an endpoint without tool use; the final answer is then read from the text.
    #[serde(default = "super::yes")]
    pub structured_output: bool,
}

fn default_key_env() -> String {
    "ANTHROPIC_API_KEY".into()
}

fn default_max_tokens() -> u32 {
    1024
}

const VERSION: &str = "2023-06-01";

/// The tool the model is made to call with its answer.
const TOOL: &str = "final_answer";

/// A Messages request, borrowing its parts and serialized straight into the request: a call
/// builds no JSON tree of its own.
#[derive(Serialize)]
struct MessagesRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    system: &'static str,
    messages: [UserMessage<'a>; 1],
    /// `tools` and `tool_choice`, flattened in.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    forced_tool: Option<&'static ForcedTool>,
}

#[derive(Serialize)]
struct UserMessage<'a> {
    role: &'static str,
    content: &'a str,
}

/// The final-answer tool and the choice that makes the model call it: the same for every call,
/// so it is built once.
#[derive(Serialize)]
struct ForcedTool {
    tools: Box<RawValue>,
    tool_choice: Box<RawValue>,
}

static FORCED_TOOL: LazyLock<ForcedTool> = LazyLock::new(|| {
    let raw = |v: serde_json::Value| {
        serde_json::value::to_raw_value(&v).expect("the answer tool serializes")
    };
    ForcedTool {
        tools: raw(json!([{
            "name": TOOL,
            "description": "Record your final answer, reasoning and confidence.",
            "input_schema": answer_schema(),
        }])),
        tool_choice: raw(json!({"type": "tool", "name": TOOL})),
    }
});

pub async fn ask(
    client: &reqwest::Client,
    config: &AnthropicConfig,
    question: &str,
) -> Result<Reply, ProviderError> {
    let url = format!("{}/v1/messages", config.base_url.trim_end_matches('/'));
    let body = MessagesRequest {
        model: &config.model,
        max_tokens: config.max_tokens,
        system: ANSWER_INSTRUCTIONS,
        messages: [UserMessage {
            role: "user",
            content: question,
        }],
        forced_tool: config.structured_output.then(|| &*FORCED_TOOL),
    };
    let mut request = client
        .post(url)
        .header("anthropic-version", VERSION)
        .json(&body);
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
    let mut text = String::new();
    let mut tool_input = None;
    for block in body.content {
        match block {
            Block::Text { text: t } => text.push_str(&t),
            Block::ToolUse { name, input } if name == TOOL => tool_input = Some(input.to_string()),
            Block::ToolUse { .. } | Block::Other => {}
        }
    }
    let structured = tool_input
        .as_deref()
        .and_then(|input| FinalAnswer::from_json(input, Extraction::ToolUse));
    let final_answer = match structured {
        Some(f) => f,
        // Tool input without a final answer in it is no better than none: the text decides.
        None if !text.trim().is_empty() => FinalAnswer::from_text(&text),
        None => {
            return Err(ProviderError::new(
                ErrorClass::Malformed,
                "a message with neither a final answer nor text",
            ));
        }
    };
    let answer = [text, tool_input.unwrap_or_default()]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    Ok(Reply {
        answer,
        final_answer,
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
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        text: String,
    },
    ToolUse {
        name: String,
        input: serde_json::Value,
    },
    /// Thinking and any block type added later: not part of the answer.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct Usage {
    input_tokens: u64,
    output_tokens: u64,
}
