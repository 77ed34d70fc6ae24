//! The `judge` strategy's merge: one configured expert, behind the same breaker, timeout, retry and
//! limit layers as every expert, is asked to merge the answers into one. The grouping (agreement,
//! majority, dissent) is similarity's; the judge only writes the answer. When it cannot (none
//! configured, or its call fails), the most central answer of the largest group stands, and the
//! consensus says why.

use std::time::Instant;

use quorum_domain::consensus::{Answer, ConsensusReached, Judged, judge_prompt};
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
            Ok(reply) if !reply.answer.trim().is_empty() => reached.answer = reply.answer,
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
        error: Some("no judge is configured; the most central answer stands".into()),
    }
}
