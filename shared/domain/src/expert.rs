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
    /// The whole reply, as the provider gave it.
    pub answer: String,
    /// The short final answer the consensus compares, and how it was taken from the reply. Absent
    /// from events recorded before final answers were asked for: the whole reply stands then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_answer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extraction: Option<Extraction>,
    /// The expert's reasoning, where it gave it apart from its answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
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

impl ExpertResponded {
    /// What the consensus compares: the final answer, or the whole reply when there is none.
    pub fn compared(&self) -> &str {
        self.final_answer.as_deref().unwrap_or(&self.answer)
    }
}

/// How an expert's final answer was taken from its reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Extraction {
    /// The provider's structured output (`response_format` with a JSON schema).
    JsonSchema,
    /// A forced tool call (Anthropic's tool use).
    ToolUse,
    /// A `Final answer:` line in free text.
    FinalAnswerLine,
    /// Nothing extractable: the whole reply is the answer.
    WholeText,
}

/// A reply's final answer, reasoning and confidence, and how they were found.
#[derive(Clone, Debug, PartialEq)]
pub struct FinalAnswer {
    pub text: String,
    pub extraction: Extraction,
    pub reasoning: Option<String>,
    pub confidence: Option<f64>,
}

/// Longest final answer kept, in characters: a final answer is a few words, and one longer than
/// this is prose that named no answer.
pub const MAX_FINAL_ANSWER_CHARS: usize = 500;

impl FinalAnswer {
    /// Reads a final answer out of free text: a JSON object with `final_answer` (a server that
    /// answered in JSON without being held to a schema), else the last `Final answer:` line
    /// (any case, Markdown emphasis allowed), else the whole text, trimmed.
    pub fn from_text(text: &str) -> Self {
        if let Some(structured) = Self::from_json(text, Extraction::JsonSchema) {
            return structured;
        }
        let line = text.lines().rev().find_map(|line| {
            let l = line.trim().trim_start_matches(['*', '_', '#', '>', ' ']);
            let lower = l.to_lowercase();
            let rest = lower.strip_prefix("final answer")?;
            let rest = rest.trim_start_matches(['*', '_', ' ']);
            rest.strip_prefix(':')?;
            // The same offset in the original: lowercasing may change lengths, so count chars.
            let skip = lower.chars().count() - rest.chars().count() + 1;
            let answer: String = l.chars().skip(skip).collect();
            let answer = answer.trim().trim_matches(['*', '_', '`']).trim();
            (!answer.is_empty()).then(|| answer.to_owned())
        });
        match line {
            Some(answer) => FinalAnswer {
                text: clip(&answer),
                extraction: Extraction::FinalAnswerLine,
                reasoning: None,
                confidence: None,
            },
            None => FinalAnswer {
                text: clip(text.trim()),
                extraction: Extraction::WholeText,
                reasoning: None,
                confidence: None,
            },
        }
    }

    /// Reads `{"final_answer": …, "reasoning": …, "confidence": …}` (the shape experts are asked
    /// for); `None` when `json` is not such an object or its final answer is blank.
    pub fn from_json(json: &str, extraction: Extraction) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(json.trim()).ok()?;
        let text = v.get("final_answer")?.as_str()?.trim();
        if text.is_empty() {
            return None;
        }
        Some(FinalAnswer {
            text: clip(text),
            extraction,
            reasoning: v
                .get("reasoning")
                .and_then(|r| r.as_str())
                .map(str::to_owned)
                .filter(|r| !r.trim().is_empty()),
            confidence: v
                .get("confidence")
                .and_then(serde_json::Value::as_f64)
                .filter(|c| (0.0..=1.0).contains(c)),
        })
    }
}

/// Longest whole reply kept in `quorum.expert.responded`, in bytes, and longest reasoning: an
/// event must stay well within what the bus carries (NATS's `max_payload`, 1 MiB by default),
/// whatever a model returns.
pub const MAX_REPLY_BYTES: usize = 256 * 1024;
pub const MAX_REASONING_BYTES: usize = 64 * 1024;

/// `text` cut to at most `max` bytes (on a character boundary), saying so and how much was cut:
/// what is stored says it is not the whole.
pub fn bounded(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… [truncated: {} more bytes]",
        &text[..end],
        text.len() - end
    )
}

fn clip(text: &str) -> String {
    text.chars().take(MAX_FINAL_ANSWER_CHARS).collect()
}

/// The JSON Schema of the object experts are asked to answer with, for providers that hold a
/// reply to a schema (`response_format` on OpenAI-compatible endpoints, tool input on Anthropic).
pub fn answer_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "properties": {
            "final_answer": {
                "type": "string",
                "description": "The answer alone, as short as it can be: a name, a number, yes or no, a few words."
            },
            "reasoning": {"type": "string", "description": "Why, briefly."},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1}
        },
        "required": ["final_answer", "reasoning", "confidence"],
        "additionalProperties": false
    })
}

/// What every expert is told before the question: answer briefly, then say the final answer on
/// a line of its own (providers without structured output are read by that line).
pub const ANSWER_INSTRUCTIONS: &str = "Answer the question. Give your reasoning briefly, then \
your final answer as short as it can be (a name, a number, yes or no, a few words) on a last line \
of its own that starts with \"Final answer:\".";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_replies_are_cut_and_say_so() {
        assert_eq!(bounded("short".into(), 10), "short");
        let cut = bounded("é".repeat(10), 5);
        assert!(cut.starts_with("éé…"), "{cut}");
        assert!(cut.ends_with("[truncated: 16 more bytes]"), "{cut}");
    }

    #[test]
    fn final_answers_are_read_from_the_reply() {
        let f = FinalAnswer::from_text("Because reasons.\n**Final answer:** Paris");
        assert_eq!(
            (f.text.as_str(), f.extraction),
            ("Paris", Extraction::FinalAnswerLine)
        );
        let f =
            FinalAnswer::from_text(r#"{"final_answer": "8", "reasoning": "r", "confidence": 0.9}"#);
        assert_eq!(
            (f.text.as_str(), f.extraction, f.confidence),
            ("8", Extraction::JsonSchema, Some(0.9))
        );
        let f = FinalAnswer::from_text("  It is Paris.  ");
        assert_eq!(
            (f.text.as_str(), f.extraction),
            ("It is Paris.", Extraction::WholeText)
        );
    }
}
