//! A tiny in-test driver: plays the `tool-exec` service against scripted tool outcomes.

#![allow(dead_code)]

use quorum_saga::*;
use serde_json::json;

pub enum Outcome {
    Ok,
    Fail { retryable: bool },
}

pub fn call(tool: &str, arg: &str) -> ToolCall {
    ToolCall {
        tool: tool.into(),
        args: json!({ "target": arg }),
    }
}

/// Steps named a, b, c, ... each with a compensation unless listed in `no_undo`.
pub fn plan(n: usize, no_undo: &[usize]) -> Plan {
    Plan {
        steps: (0..n)
            .map(|i| {
                let name = ((b'a' + i as u8) as char).to_string();
                Step {
                    tool: call("http", &name),
                    compensate: (!no_undo.contains(&i))
                        .then(|| call("http", &format!("undo-{name}"))),
                    name,
                    timeout_ms: None,
                    max_attempts: None,
                }
            })
            .collect(),
        max_attempts: None,
    }
}

pub fn requested(plan: Plan) -> SagaEvent {
    SagaEvent::PlanRequested(PlanRequested {
        plan,
        origin: Origin::Upstream,
        policy: None,
    })
}

/// Folds and decides until `Done`, appending what each decision asks for. `script` answers a
/// Run given (step, attempt, compensation). Also returns every Run decision seen.
pub fn drive(
    saga_id: &str,
    mut events: Vec<SagaEvent>,
    mut script: impl FnMut(usize, u32, bool) -> Outcome,
) -> (Vec<SagaEvent>, Vec<Decision>) {
    let mut runs = Vec::new();
    for _ in 0..200 {
        let state = SagaState::fold(saga_id, &events).expect("driver wrote a valid history");
        let decision = decide(&state);
        match &decision {
            Decision::Run {
                step,
                attempt,
                compensation,
                ..
            } => {
                let (step, attempt, compensation) = (*step, *attempt, *compensation);
                events.push(SagaEvent::StepStarted(StepStarted {
                    step,
                    attempt,
                    compensation,
                }));
                events.push(match script(step, attempt, compensation) {
                    Outcome::Ok => SagaEvent::StepSucceeded(StepSucceeded {
                        step,
                        attempt,
                        compensation,
                        output: json!({ "step": step, "attempt": attempt }),
                    }),
                    Outcome::Fail { retryable } => SagaEvent::StepFailed(StepFailed {
                        step,
                        attempt,
                        compensation,
                        error: format!("step {step} attempt {attempt} broke"),
                        retryable,
                    }),
                });
                runs.push(decision);
            }
            Decision::Append(event) => events.push(event.clone()),
            Decision::Done => return (events, runs),
        }
    }
    panic!("saga did not finish: {events:#?}");
}

pub fn types(events: &[SagaEvent]) -> Vec<&'static str> {
    events.iter().map(SagaEvent::event_type).collect()
}

pub const REQUESTED: &str = "quorum.tool.plan.requested";
pub const STARTED: &str = "quorum.tool.step.started";
pub const SUCCEEDED: &str = "quorum.tool.step.succeeded";
pub const FAILED: &str = "quorum.tool.step.failed";
pub const COMPENSATED: &str = "quorum.tool.step.compensated";
pub const PLAN_COMPLETED: &str = "quorum.tool.plan.completed";
pub const PLAN_COMPENSATED: &str = "quorum.tool.plan.compensated";
pub const PLAN_FAILED: &str = "quorum.tool.plan.failed";

pub fn started(step: usize, attempt: u32, compensation: bool) -> SagaEvent {
    SagaEvent::StepStarted(StepStarted {
        step,
        attempt,
        compensation,
    })
}

pub fn succeeded(step: usize, attempt: u32) -> SagaEvent {
    SagaEvent::StepSucceeded(StepSucceeded {
        step,
        attempt,
        compensation: false,
        output: serde_json::json!(null),
    })
}
