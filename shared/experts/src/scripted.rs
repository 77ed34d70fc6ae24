//! The scripted expert: answers from rules, with an optional delay and failure rate. Deterministic
//! (the same question gets the same answer, and fails or not the same way), so tests can rely on
//! it and a local stack answers without any model.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A rule: when the question contains `contains` (case-insensitive), answer `answer`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub contains: String,
    pub answer: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScriptedConfig {
    pub rules: Vec<Rule>,
    /// The answer when no rule matches.
    pub default_answer: String,
    /// How long it "thinks".
    pub latency_ms: u64,
    /// Fraction of questions (0 to 1) it fails on, chosen by the question's hash.
    pub failure_rate: f64,
}

impl Default for ScriptedConfig {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            default_answer: "42".into(),
            latency_ms: 0,
            failure_rate: 0.0,
        }
    }
}

/// Why a scripted expert failed: it was told to, for this question.
#[derive(Debug, thiserror::Error)]
#[error("scripted failure (failure_rate {0})")]
pub struct ScriptedFailure(pub f64);

impl ScriptedConfig {
    pub async fn ask(&self, expert: &str, question: &str) -> Result<String, ScriptedFailure> {
        if self.latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.latency_ms)).await;
        }
        // FNV-1a of expert and question: stable across runs and platforms.
        let hash = format!("{expert}\0{question}")
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        if (hash % 10_000) as f64 / 10_000.0 < self.failure_rate {
            return Err(ScriptedFailure(self.failure_rate));
        }
        let q = question.to_lowercase();
        Ok(self
            .rules
            .iter()
            .find(|r| q.contains(&r.contains.to_lowercase()))
            .map_or_else(|| self.default_answer.clone(), |r| r.answer.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rules_answer_and_failures_are_deterministic() {
        let s = ScriptedConfig {
            rules: vec![Rule {
                contains: "France".into(),
                answer: "Paris".into(),
            }],
            ..Default::default()
        };
        assert_eq!(s.ask("a", "Capital of france?").await.unwrap(), "Paris");
        assert_eq!(s.ask("a", "Meaning of life?").await.unwrap(), "42");
        let always = ScriptedConfig {
            failure_rate: 1.0,
            ..Default::default()
        };
        assert!(always.ask("a", "q").await.is_err());
    }
}
