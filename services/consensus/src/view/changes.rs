//! What a batch of events changes in the `queries` read model, folded in memory and laid out as
//! the columns the projection's one statement writes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use quorum_domain::types;
use quorum_event_store::RecordedEvent;

use crate::fold::Query;

/// What a batch of events changes in `queries`, by query.
#[derive(Default)]
pub(super) struct Changes(BTreeMap<String, Change>);

#[derive(Default)]
struct Change {
    /// The submission, when it is in this batch: the row is new.
    submitted: Option<Submitted>,
    /// The results in this batch, as one object of expert -> result.
    experts: serde_json::Map<String, serde_json::Value>,
    /// (status, consensus, decided at).
    decided: Option<(&'static str, serde_json::Value, DateTime<Utc>)>,
}

struct Submitted {
    stream_id: String,
    tenant: String,
    question: String,
    at: DateTime<Utc>,
    /// When the deadline timer ends the query, as its fold computes it; none for a submission
    /// the fold cannot read either (consensus can never decide it, so it is never due).
    deadline: Option<DateTime<Utc>>,
}

/// The columns of new rows, and of changes to rows already there, as arrays for `UNNEST`.
#[derive(Default)]
pub(super) struct Columns {
    pub(super) new_ids: Vec<String>,
    pub(super) streams: Vec<String>,
    pub(super) tenants: Vec<String>,
    pub(super) questions: Vec<String>,
    pub(super) submitted_at: Vec<DateTime<Utc>>,
    pub(super) deadlines: Vec<Option<DateTime<Utc>>>,
    pub(super) new_experts: Vec<serde_json::Value>,
    pub(super) new_status: Vec<Option<&'static str>>,
    pub(super) new_consensus: Vec<Option<serde_json::Value>>,
    pub(super) new_decided_at: Vec<Option<DateTime<Utc>>>,
    pub(super) old_ids: Vec<String>,
    pub(super) old_experts: Vec<serde_json::Value>,
    pub(super) old_status: Vec<Option<&'static str>>,
    pub(super) old_consensus: Vec<Option<serde_json::Value>>,
    pub(super) old_decided_at: Vec<Option<DateTime<Utc>>>,
}

impl Changes {
    fn change(&mut self, query_id: &str) -> &mut Change {
        self.0.entry(query_id.to_owned()).or_default()
    }

    pub(super) fn fold(events: &[RecordedEvent]) -> Self {
        let mut c = Changes::default();
        for r in events {
            let Some(query_id) = r.stream_id.as_str().strip_prefix("query/") else {
                continue;
            };
            let data = || -> serde_json::Value {
                r.event
                    .data
                    .as_deref()
                    .and_then(|d| serde_json::from_slice(d).ok())
                    .unwrap_or_default()
            };
            match r.event.ty.as_str() {
                types::QUERY_SUBMITTED => {
                    c.change(query_id).submitted = Some(Submitted {
                        stream_id: r.stream_id.as_str().to_owned(),
                        tenant: r.tenant.as_str().to_owned(),
                        question: data()["question"].as_str().unwrap_or_default().to_owned(),
                        at: r.recorded_at,
                        deadline: Query::fold(std::slice::from_ref(r)).map(|q| q.deadline()),
                    })
                }
                ty @ (types::EXPERT_RESPONDED | types::EXPERT_FAILED) => {
                    let mut result = data();
                    let expert = result["expert"].as_str().unwrap_or_default().to_owned();
                    result["outcome"] = if ty == types::EXPERT_RESPONDED {
                        "responded".into()
                    } else {
                        "failed".into()
                    };
                    let change = c.change(query_id);
                    // After the consensus in this batch: late. One decided in an earlier batch
                    // is seen by the write, which marks what comes after it.
                    if change.decided.is_some() {
                        result["late"] = true.into();
                    }
                    change.experts.insert(expert, result);
                }
                ty @ (types::CONSENSUS_REACHED | types::CONSENSUS_FAILED) => {
                    let status = if ty == types::CONSENSUS_REACHED {
                        "reached"
                    } else {
                        "failed"
                    };
                    c.change(query_id).decided = Some((status, data(), r.recorded_at));
                }
                _ => {}
            }
        }
        c
    }

    pub(super) fn columns(self) -> Columns {
        let mut k = Columns::default();
        for (id, c) in self.0 {
            let (status, consensus, at) = match c.decided {
                Some((s, c, at)) => (Some(s), Some(c), Some(at)),
                None => (None, None, None),
            };
            let experts = serde_json::Value::Object(c.experts);
            match c.submitted {
                Some(s) => {
                    k.new_ids.push(id);
                    k.streams.push(s.stream_id);
                    k.tenants.push(s.tenant);
                    k.questions.push(s.question);
                    k.submitted_at.push(s.at);
                    k.deadlines.push(s.deadline);
                    k.new_experts.push(experts);
                    k.new_status.push(status);
                    k.new_consensus.push(consensus);
                    k.new_decided_at.push(at);
                }
                None => {
                    k.old_ids.push(id);
                    k.old_experts.push(experts);
                    k.old_status.push(status);
                    k.old_consensus.push(consensus);
                    k.old_decided_at.push(at);
                }
            }
        }
        k
    }
}
