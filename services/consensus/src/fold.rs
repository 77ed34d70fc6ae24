//! A query's state, rebuilt from its stream every time: never held only in memory.

use chrono::{DateTime, Utc};
use quorum_domain::consensus::{self, Answer, Progress, SamePair};
use quorum_domain::expert::{ExpertFailed, ExpertResponded};
use quorum_domain::query::QuerySubmitted;
use quorum_domain::{Event, types};
use quorum_event_store::RecordedEvent;

/// What the stream says.
pub struct Query {
    pub submitted: Event,
    pub query: QuerySubmitted,
    pub submitted_at: DateTime<Utc>,
    /// The stream's version: a consensus is appended only at exactly this version.
    pub version: u64,
    pub decided: bool,
    answers: Vec<Answer>,
    failures: Vec<(String, String)>,
}

impl Query {
    /// Folds a query stream; `None` when it holds no readable submitted query.
    pub fn fold(events: &[RecordedEvent]) -> Option<Self> {
        let first = events
            .iter()
            .find(|r| r.event.ty == types::QUERY_SUBMITTED)?;
        let query: QuerySubmitted =
            serde_json::from_slice(first.event.data.as_deref().unwrap_or_default()).ok()?;
        let mut q = Query {
            submitted: first.event.clone(),
            query,
            submitted_at: first.recorded_at,
            version: events.last().map_or(0, |r| r.stream_version),
            decided: false,
            answers: Vec::new(),
            failures: Vec::new(),
        };
        for r in events {
            let data = r.event.data.as_deref().unwrap_or_default();
            match r.event.ty.as_str() {
                types::EXPERT_RESPONDED => {
                    if let Ok(a) = serde_json::from_slice::<ExpertResponded>(data) {
                        q.answers.push(Answer {
                            text: a.compared().to_owned(),
                            expert: a.expert,
                            weight: a.weight,
                        });
                    }
                }
                types::EXPERT_FAILED => {
                    if let Ok(f) = serde_json::from_slice::<ExpertFailed>(data) {
                        let why = format!("{:?}: {}", f.error_class, f.message).to_lowercase();
                        q.failures.push((f.expert, why));
                    }
                }
                types::CONSENSUS_REACHED | types::CONSENSUS_FAILED => q.decided = true,
                _ => {}
            }
        }
        Some(q)
    }

    /// The answers recorded so far, in the order they came.
    pub fn answers(&self) -> &[Answer] {
        &self.answers
    }

    pub fn deadline(&self) -> DateTime<Utc> {
        self.submitted_at + chrono::Duration::milliseconds(self.query.deadline_ms as i64)
    }

    /// What is known now, for deciding; `configured` names every expert, for a query that named
    /// none (`asked` holds them). `semantic` holds the pairs a semantic method found the same.
    pub fn progress<'a>(
        &'a self,
        asked: &'a [String],
        now: DateTime<Utc>,
        semantic: &'a [SamePair],
    ) -> Progress<'a> {
        let quorum = self
            .query
            .quorum
            .map_or_else(|| consensus::default_quorum(asked.len()), |k| k as usize);
        Progress {
            question: &self.query.question,
            asked,
            quorum,
            strategy: self.query.strategy,
            early: self.query.decides_early(),
            tolerance: self.query.tolerance.unwrap_or(0.0),
            answers: &self.answers,
            failures: &self.failures,
            deadline_passed: now >= self.deadline(),
            semantic,
        }
    }

    /// The experts asked: those the query names, or every configured one.
    pub fn asked(&self, configured: &[String]) -> Vec<String> {
        self.query
            .experts
            .clone()
            .unwrap_or_else(|| configured.to_vec())
    }
}
