//! The judge: one configured expert, behind the same breaker, timeout, retry and limit layers as
//! every expert. Under the `judge` strategy it decides which differently worded answers mean the
//! same (`equivalent`, one call per query for every pair the offline rules leave open), and then
//! merges the answers into one (`merge`). When it cannot (none configured, or its call fails),
//! the offline rules group and the plainest answer of the largest group stands, and the consensus
//! says why.

use std::time::Instant;

use quorum_domain::consensus::{
    Answer, ConsensusReached, Judged, equivalence_prompt, judge_prompt, parse_equivalence,
};
use quorum_experts::{ExpertConfig, Panel};

pub struct Judge {
    panel: Panel,
}

impl Judge {
    pub fn new(expert: ExpertConfig) -> Self {
        Self {
            panel: Panel::new(vec![expert]),
        }
    }

    /// The judge's model, for provenance.
    pub fn model(&self) -> &str {
        self.panel.experts()[0].provider.model()
    }

    /// Asks the judge whether each pair of answers means the same, both ways: one verdict per
    /// pair, or why there are none.
    pub async fn equivalent(
        &self,
        question: &str,
        pairs: &[(String, String)],
    ) -> Result<Vec<bool>, String> {
        let expert = &self.panel.experts()[0];
        let (outcome, _) = self
            .panel
            .ask(expert, &equivalence_prompt(question, pairs))
            .await;
        let reply = outcome.map_err(|e| format!("{:?}: {}", e.class, e.message).to_lowercase())?;
        parse_equivalence(&[&reply.final_answer.text, &reply.answer], pairs.len()).ok_or_else(
            || {
                format!(
                    "the judge gave no array of {} true/false verdicts",
                    pairs.len()
                )
            },
        )
    }

    /// Asks the judge to merge `answers` and writes its merge into `reached`.
    pub async fn merge(&self, question: &str, answers: &[Answer], reached: &mut ConsensusReached) {
        let expert = &self.panel.experts()[0];
        let started = Instant::now();
        let (outcome, attempts) = self
            .panel
            .ask(expert, &judge_prompt(question, answers))
            .await;
        let mut judged = Judged {
            expert: expert.name.clone(),
            provider: expert.provider.kind().into(),
            model: expert.provider.model().into(),
            latency_ms: started.elapsed().as_millis() as u64,
            attempts,
            error: None,
        };
        match outcome {
            Ok(reply) if !reply.final_answer.text.trim().is_empty() => {
                reached.answer = reply.final_answer.text
            }
            Ok(_) => judged.error = Some("the judge answered nothing".into()),
            Err(e) => {
                judged.error = Some(format!("{:?}: {}", e.class, e.message).to_lowercase());
            }
        }
        reached.judge = Some(judged);
    }
}

/// What a `judge` consensus says when no judge is configured.
pub fn unconfigured() -> Judged {
    Judged {
        expert: String::new(),
        provider: String::new(),
        model: String::new(),
        latency_ms: 0,
        attempts: 0,
        error: Some("no judge is configured; the plainest answer of the majority stands".into()),
    }
}
