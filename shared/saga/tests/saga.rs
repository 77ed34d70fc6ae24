//! Whole sagas driven to their end: completion, retries, compensation.

use crate::common;

use common::*;
use quorum_saga::*;

#[test]
fn failed_step_compensates_earlier_steps_in_reverse_order() {
    let (events, runs) = drive("s1", vec![requested(plan(4, &[]))], |step, _, comp| {
        if step == 2 && !comp {
            Outcome::Fail { retryable: true }
        } else {
            Outcome::Ok
        }
    });
    #[rustfmt::skip]
    let want = [
        REQUESTED,
        STARTED, SUCCEEDED, // 0
        STARTED, SUCCEEDED, // 1
        STARTED, FAILED, STARTED, FAILED, STARTED, FAILED, // 2, three attempts
        STARTED, SUCCEEDED, COMPENSATED, // undo 1
        STARTED, SUCCEEDED, COMPENSATED, // undo 0
        PLAN_COMPENSATED,
    ];
    assert_eq!(types(&events), want);

    let undo: Vec<(usize, String)> = runs
        .iter()
        .filter_map(|d| match d {
            Decision::Run {
                step,
                compensation: true,
                call,
                idempotency_key,
                ..
            } => {
                assert_eq!(call.tool, "http");
                Some((*step, idempotency_key.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(undo, [(1, "s1:1:undo".into()), (0, "s1:0:undo".into())]);
    assert_eq!(
        events.last(),
        Some(&SagaEvent::PlanCompensated(PlanCompensated {
            failed_step: 2
        }))
    );

    let state = SagaState::fold("s1", &events).unwrap();
    assert_eq!(state.status(), SagaStatus::Compensated);
    let statuses: Vec<_> = state.steps().iter().map(StepState::status).collect();
    use StepStatus::*;
    assert_eq!(statuses, [Compensated, Compensated, Failed, Pending]);
    assert_eq!(state.steps()[2].attempts(), 3);
    assert_eq!(
        state.steps()[2].last_error(),
        Some("step 2 attempt 3 broke")
    );
    assert_eq!(decide(&state), Decision::Done);
}

#[test]
fn successful_plan_completes_once_then_is_done() {
    let (events, runs) = drive("s1", vec![requested(plan(2, &[]))], |_, _, _| Outcome::Ok);
    let want = [
        REQUESTED,
        STARTED,
        SUCCEEDED,
        STARTED,
        SUCCEEDED,
        PLAN_COMPLETED,
    ];
    assert_eq!(types(&events), want);
    assert_eq!(runs.len(), 2);
    let state = SagaState::fold("s1", &events).unwrap();
    assert_eq!(state.status(), SagaStatus::Completed);
    assert_eq!(decide(&state), Decision::Done);
    assert_eq!(decide(&state), Decision::Done);
    let output = state.steps()[1].output().unwrap();
    assert_eq!(output, &serde_json::json!({"step": 1, "attempt": 1}));

    // A second completion would be a duplicate terminal event.
    let mut twice = events.clone();
    twice.push(SagaEvent::PlanCompleted(PlanCompleted {}));
    let err = SagaState::fold("s1", &twice).unwrap_err();
    assert!(matches!(err, FoldError::Refused { index: 6, .. }), "{err}");
}

#[test]
fn retryable_failures_retry_with_the_next_attempt_then_complete() {
    let (events, runs) = drive("s1", vec![requested(plan(1, &[]))], |_, attempt, _| {
        if attempt < 3 {
            Outcome::Fail { retryable: true }
        } else {
            Outcome::Ok
        }
    });
    let attempts: Vec<(u32, &str)> = runs
        .iter()
        .map(|d| match d {
            Decision::Run {
                attempt,
                idempotency_key,
                ..
            } => (*attempt, idempotency_key.as_str()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(attempts, [(1, "s1:0:do"), (2, "s1:0:do"), (3, "s1:0:do")]);
    assert_eq!(types(&events).last(), Some(&PLAN_COMPLETED));
    let state = SagaState::fold("s1", &events).unwrap();
    assert_eq!(state.steps()[0].attempts(), 3);
    assert_eq!(state.steps()[0].status(), StepStatus::Succeeded);
}

#[test]
fn non_retryable_failure_is_not_retried() {
    let (events, runs) = drive("s1", vec![requested(plan(2, &[]))], |_, _, _| {
        Outcome::Fail { retryable: false }
    });
    assert_eq!(runs.len(), 1);
    assert_eq!(
        types(&events),
        [REQUESTED, STARTED, FAILED, PLAN_COMPENSATED]
    );
    let state = SagaState::fold("s1", &events).unwrap();
    assert_eq!(state.steps()[0].attempts(), 1);
    assert_eq!(state.failed_step(), Some(0));
}

#[test]
fn compensation_that_keeps_failing_needs_attention() {
    let (events, runs) = drive("s1", vec![requested(plan(3, &[]))], |step, _, comp| match (
        step, comp,
    ) {
        (1, false) => Outcome::Fail { retryable: false },
        (0, true) => Outcome::Fail { retryable: true },
        _ => Outcome::Ok,
    });
    let undo_attempts: Vec<u32> = runs
        .iter()
        .filter_map(|d| match d {
            Decision::Run {
                step: 0,
                attempt,
                compensation: true,
                ..
            } => Some(*attempt),
            _ => None,
        })
        .collect();
    assert_eq!(undo_attempts, [1, 2, 3]);
    assert_eq!(types(&events).last(), Some(&PLAN_FAILED));
    let Some(SagaEvent::PlanFailed(failed)) = events.last() else {
        unreachable!()
    };
    assert!(failed.needs_attention);
    assert!(
        failed.reason.contains("compensation of step 0"),
        "{}",
        failed.reason
    );

    let state = SagaState::fold("s1", &events).unwrap();
    assert_eq!(
        state.status(),
        SagaStatus::Failed {
            needs_attention: true
        }
    );
    assert_eq!(state.steps()[0].status(), StepStatus::Failed);
    assert_eq!(state.steps()[0].compensation_attempts(), 3);
    assert_eq!(decide(&state), Decision::Done);
}

#[test]
fn step_without_compensation_is_recorded_as_compensated_and_skipped() {
    // b (index 1) has nothing to undo; c (index 2) fails.
    let (events, runs) = drive("s1", vec![requested(plan(3, &[1]))], |step, _, comp| {
        if step == 2 && !comp {
            Outcome::Fail { retryable: false }
        } else {
            Outcome::Ok
        }
    });
    #[rustfmt::skip]
    let want = [
        REQUESTED, STARTED, SUCCEEDED, STARTED, SUCCEEDED, STARTED, FAILED,
        COMPENSATED, // b: nothing ran
        STARTED, SUCCEEDED, COMPENSATED, // a
        PLAN_COMPENSATED,
    ];
    assert_eq!(types(&events), want);
    assert_eq!(
        events[7],
        SagaEvent::StepCompensated(StepCompensated { step: 1 })
    );
    assert!(!runs.iter().any(|d| matches!(
        d,
        Decision::Run {
            step: 1,
            compensation: true,
            ..
        }
    )));
    let state = SagaState::fold("s1", &events).unwrap();
    assert_eq!(state.steps()[1].status(), StepStatus::Skipped);
    assert_eq!(state.steps()[0].status(), StepStatus::Compensated);
}

#[test]
fn fresh_plan_runs_step_zero_attempt_one() {
    let state = SagaState::fold("s9", &[requested(plan(2, &[]))]).unwrap();
    assert_eq!(state.status(), SagaStatus::Running);
    assert_eq!(
        decide(&state),
        Decision::Run {
            step: 0,
            attempt: 1,
            compensation: false,
            call: call("http", "a"),
            idempotency_key: "s9:0:do".into(),
        }
    );
}
