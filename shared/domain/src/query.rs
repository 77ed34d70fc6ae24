//! The data of `quorum.query.submitted`: what is asked, of whom, and how the answer is decided.
//! `schemas/quorum.query.submitted.json` describes the same shape; a test keeps them in step.

use serde::{Deserialize, Serialize};

/// Longest question accepted, in bytes.
pub const MAX_QUESTION_BYTES: usize = 32 * 1024;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuerySubmitted {
    pub question: String,
    /// Free-form context handed to every expert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
    /// The experts to ask, by name; all configured experts when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experts: Option<Vec<String>>,
    /// Answers that must agree (k of n); a simple majority of the experts asked when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<u32>,
    /// How long the consensus waits for answers.
    #[serde(default = "default_deadline_ms")]
    pub deadline_ms: u64,
    #[serde(default)]
    pub strategy: Strategy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_policy: Option<ToolPolicy>,
}

fn default_deadline_ms() -> u64 {
    30_000
}

/// How a consensus is built (DESIGN §7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    #[default]
    Majority,
    Similarity,
    Judge,
}

/// Whether the consensus may call for tools.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolPolicy {
    #[serde(default)]
    pub allowed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_steps: Option<u32>,
}

/// A rule a query breaks, naming the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct QueryError {
    pub field: String,
    pub reason: String,
}

fn err(field: &str, reason: impl Into<String>) -> Result<(), QueryError> {
    Err(QueryError {
        field: field.to_owned(),
        reason: reason.into(),
    })
}

impl QuerySubmitted {
    /// The rules serde cannot express.
    pub fn validate(&self) -> Result<(), QueryError> {
        if self.question.trim().is_empty() {
            return err("question", "must not be empty");
        }
        if self.question.len() > MAX_QUESTION_BYTES {
            return err("question", format!("at most {MAX_QUESTION_BYTES} bytes"));
        }
        if let Some(experts) = &self.experts {
            if experts.is_empty() {
                return err(
                    "experts",
                    "name at least one expert, or leave it out for all",
                );
            }
            for (i, name) in experts.iter().enumerate() {
                let ok = !name.is_empty()
                    && name.len() <= 64
                    && name.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                    });
                if !ok {
                    return err(
                        &format!("experts/{i}"),
                        "1-64 characters of a-z, 0-9, '_' or '-'",
                    );
                }
                if experts[..i].contains(name) {
                    return err(&format!("experts/{i}"), format!("{name} is named twice"));
                }
            }
        }
        if self.quorum == Some(0) {
            return err("quorum", "at least 1");
        }
        if let (Some(q), Some(experts)) = (self.quorum, &self.experts)
            && q as usize > experts.len()
        {
            return err(
                "quorum",
                format!("{q} of {} experts can never agree", experts.len()),
            );
        }
        if !(100..=600_000).contains(&self.deadline_ms) {
            return err("deadline_ms", "between 100 and 600000");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<QuerySubmitted, String> {
        let q: QuerySubmitted = serde_json::from_str(json).map_err(|e| e.to_string())?;
        q.validate().map_err(|e| e.to_string())?;
        Ok(q)
    }

    #[test]
    fn defaults_and_rules() {
        let q = parse(r#"{"question":"Why?"}"#).unwrap();
        assert_eq!((q.deadline_ms, q.strategy), (30_000, Strategy::Majority));
        for bad in [
            r#"{"question":" "}"#,
            r#"{"question":"q","extra":1}"#,
            r#"{"question":"q","deadline_ms":5}"#,
            r#"{"question":"q","quorum":0}"#,
            r#"{"question":"q","experts":["A"]}"#,
            r#"{"question":"q","experts":["a","a"]}"#,
            r#"{"question":"q","experts":["a"],"quorum":2}"#,
            r#"{"question":"q","strategy":"vote"}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
