//! The pure decision: given a folded saga, what the service does next.

use crate::event::{
    PlanCompensated, PlanCompleted, PlanFailed, SagaEvent, StepCompensated, StepStarted,
};
use crate::plan::ToolCall;
use crate::state::SagaState;
use crate::step::StepStatus;

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Append `StepStarted { step, attempt, compensation }`, call the tool with
    /// `idempotency_key`, then append its outcome.
    Run {
        step: usize,
        attempt: u32,
        compensation: bool,
        call: ToolCall,
        idempotency_key: String,
    },
    /// Append this event without calling anything.
    Append(SagaEvent),
    /// The saga has ended.
    Done,
}

/// The key a tool uses to apply a step once. It ignores the attempt on purpose: a retry or a
/// re-run after a crash must look like the same request to a tool that deduplicates.
pub fn idempotency_key(saga_id: &str, step: usize, compensation: bool) -> String {
    let side = if compensation { "undo" } else { "do" };
    format!("{saga_id}:{step}:{side}")
}

pub fn decide(state: &SagaState) -> Decision {
    match next(state) {
        Next::Run { started, call } => Decision::Run {
            step: started.step,
            attempt: started.attempt,
            compensation: started.compensation,
            call: call.clone(),
            idempotency_key: idempotency_key(state.saga_id(), started.step, started.compensation),
        },
        Next::Append(event) => Decision::Append(event),
        Next::Done => Decision::Done,
    }
}

/// What may come next. Shared with the fold, which accepts only what this would produce,
/// so a history the decider could not have written is refused rather than misread.
pub(crate) enum Next<'a> {
    Run {
        started: StepStarted,
        call: &'a ToolCall,
    },
    Append(SagaEvent),
    Done,
}

pub(crate) fn next(state: &SagaState) -> Next<'_> {
    if state.is_terminal() {
        return Next::Done;
    }
    let run = |step: usize, attempt: u32, compensation: bool| {
        let spec = &state.plan().steps[step];
        let call = if compensation {
            spec.compensate.as_ref()
        } else {
            Some(&spec.tool)
        };
        // Only steps with a `compensate` are ever run backwards.
        call.map(|call| Next::Run {
            started: StepStarted {
                step,
                attempt,
                compensation,
            },
            call,
        })
    };
    if let Some(f) = state.in_flight()
        && let Some(again) = run(f.step, f.attempt, f.compensation)
    {
        return again;
    }
    let Some(failed_step) = state.failed_step() else {
        let pending = state
            .steps()
            .iter()
            .enumerate()
            .find(|(_, s)| s.status() != StepStatus::Succeeded);
        return match pending {
            // Pending has 0 attempts, so this is attempt 1; after a retryable failure, the next.
            Some((i, s)) => run(i, s.attempts() + 1, false).unwrap_or(Next::Done),
            None => Next::Append(SagaEvent::PlanCompleted(PlanCompleted {})),
        };
    };
    for j in (0..failed_step).rev() {
        let s = &state.steps()[j];
        match s.status() {
            StepStatus::Compensated | StepStatus::Skipped => continue,
            StepStatus::Failed => {
                let reason = format!(
                    "compensation of step {j} ({:?}) failed after {} attempt(s): {}",
                    state.plan().steps[j].name,
                    s.compensation_attempts(),
                    s.last_error().unwrap_or("unknown error"),
                );
                return Next::Append(SagaEvent::PlanFailed(PlanFailed {
                    reason,
                    needs_attention: true,
                }));
            }
            _ => {
                if !s.undo_succeeded
                    && let Some(undo) = run(j, s.compensation_attempts() + 1, true)
                {
                    return undo;
                }
                return Next::Append(SagaEvent::StepCompensated(StepCompensated { step: j }));
            }
        }
    }
    Next::Append(SagaEvent::PlanCompensated(PlanCompensated { failed_step }))
}
