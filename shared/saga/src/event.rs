//! The events a saga's stream (`saga/<id>`) holds; they are the saga's only memory.

use serde::{Deserialize, Serialize};

use crate::plan::Plan;
use crate::policy::ToolPolicy;

/// Who asked for the plan; consensus-proposed plans need the policy's explicit consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Origin {
    Upstream,
    Consensus { query_id: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRequested {
    pub plan: Plan,
    pub origin: Origin,
    /// The asking query's own tool policy, which narrows the tenant's (never widens it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<ToolPolicy>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepStarted {
    pub step: usize,
    pub attempt: u32,
    pub compensation: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSucceeded {
    pub step: usize,
    pub attempt: u32,
    pub compensation: bool,
    pub output: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepFailed {
    pub step: usize,
    pub attempt: u32,
    pub compensation: bool,
    pub error: String,
    pub retryable: bool,
}

/// Step `step` is undone: its compensation succeeded, or it had none to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepCompensated {
    pub step: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanCompleted {}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanCompensated {
    pub failed_step: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFailed {
    pub reason: String,
    /// Effects may be left in place: the service parks a dead letter for a human.
    pub needs_attention: bool,
}

/// Serialized as `{"type": "<event type>", "data": {...}}`; [`SagaEvent::from_parts`] and
/// [`SagaEvent::data`] map to a store that keeps type and data apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", deny_unknown_fields)]
pub enum SagaEvent {
    #[serde(rename = "quorum.tool.plan.requested")]
    PlanRequested(PlanRequested),
    #[serde(rename = "quorum.tool.step.started")]
    StepStarted(StepStarted),
    #[serde(rename = "quorum.tool.step.succeeded")]
    StepSucceeded(StepSucceeded),
    #[serde(rename = "quorum.tool.step.failed")]
    StepFailed(StepFailed),
    #[serde(rename = "quorum.tool.step.compensated")]
    StepCompensated(StepCompensated),
    #[serde(rename = "quorum.tool.plan.completed")]
    PlanCompleted(PlanCompleted),
    #[serde(rename = "quorum.tool.plan.compensated")]
    PlanCompensated(PlanCompensated),
    #[serde(rename = "quorum.tool.plan.failed")]
    PlanFailed(PlanFailed),
}

impl SagaEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            SagaEvent::PlanRequested(_) => "quorum.tool.plan.requested",
            SagaEvent::StepStarted(_) => "quorum.tool.step.started",
            SagaEvent::StepSucceeded(_) => "quorum.tool.step.succeeded",
            SagaEvent::StepFailed(_) => "quorum.tool.step.failed",
            SagaEvent::StepCompensated(_) => "quorum.tool.step.compensated",
            SagaEvent::PlanCompleted(_) => "quorum.tool.plan.completed",
            SagaEvent::PlanCompensated(_) => "quorum.tool.plan.compensated",
            SagaEvent::PlanFailed(_) => "quorum.tool.plan.failed",
        }
    }

    /// Terminal events end the saga: nothing may be appended after one.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            SagaEvent::PlanCompleted(_) | SagaEvent::PlanCompensated(_) | SagaEvent::PlanFailed(_)
        )
    }

    /// The event's data alone, for a store that records the type separately.
    pub fn data(&self) -> serde_json::Value {
        let mut tagged = serde_json::to_value(self).expect("saga events always serialize");
        tagged
            .get_mut("data")
            .map(serde_json::Value::take)
            .unwrap_or_else(|| serde_json::json!({}))
    }

    /// Rebuilds an event from a stored type string and data; unknown types are refused.
    pub fn from_parts(event_type: &str, data: serde_json::Value) -> serde_json::Result<Self> {
        serde_json::from_value(serde_json::json!({ "type": event_type, "data": data }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_strings_match_serde_tags_and_round_trip_through_parts() {
        let events = [
            SagaEvent::PlanRequested(PlanRequested {
                plan: Plan {
                    steps: vec![],
                    max_attempts: None,
                },
                origin: Origin::Consensus {
                    query_id: "q1".into(),
                },
                policy: None,
            }),
            SagaEvent::StepStarted(StepStarted {
                step: 0,
                attempt: 1,
                compensation: false,
            }),
            SagaEvent::StepSucceeded(StepSucceeded {
                step: 0,
                attempt: 1,
                compensation: true,
                output: serde_json::json!({"ok": true}),
            }),
            SagaEvent::StepFailed(StepFailed {
                step: 0,
                attempt: 2,
                compensation: false,
                error: "boom".into(),
                retryable: true,
            }),
            SagaEvent::StepCompensated(StepCompensated { step: 0 }),
            SagaEvent::PlanCompleted(PlanCompleted {}),
            SagaEvent::PlanCompensated(PlanCompensated { failed_step: 1 }),
            SagaEvent::PlanFailed(PlanFailed {
                reason: "r".into(),
                needs_attention: true,
            }),
        ];
        for event in events {
            let json = serde_json::to_value(&event).unwrap();
            assert_eq!(json["type"], event.event_type());
            let back = SagaEvent::from_parts(event.event_type(), event.data()).unwrap();
            assert_eq!(back, event);
        }
    }

    #[test]
    fn unknown_types_and_fields_are_refused() {
        assert!(SagaEvent::from_parts("quorum.tool.step.paused", serde_json::json!({})).is_err());
        let extra = serde_json::json!({"step": 0, "why": "x"});
        assert!(SagaEvent::from_parts("quorum.tool.step.compensated", extra).is_err());
        // serde cannot deny extra keys on an internally tagged unit variant, so `upstream` is
        // lenient; the variant that carries data is strict.
        let origin = serde_json::json!({"kind": "consensus", "query_id": "q", "x": 1});
        assert!(serde_json::from_value::<Origin>(origin).is_err());
    }
}
