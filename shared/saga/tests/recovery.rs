//! Recovery after a crash, and the histories the fold refuses.

use crate::common;

use common::*;
use quorum_saga::*;

#[test]
fn decision_after_a_retryable_failure_carries_the_next_attempt() {
    let events = vec![
        requested(plan(1, &[])),
        started(0, 1, false),
        SagaEvent::StepFailed(StepFailed {
            step: 0,
            attempt: 1,
            compensation: false,
            error: "503".into(),
            retryable: true,
        }),
    ];
    let state = SagaState::fold("s1", &events).unwrap();
    assert_eq!(state.steps()[0].status(), StepStatus::Running);
    assert!(matches!(
        decide(&state),
        Decision::Run {
            step: 0,
            attempt: 2,
            compensation: false,
            ..
        }
    ));
    // Restarting attempt 1 after its failure is not a retry the decider asked for.
    let mut wrong = events.clone();
    wrong.push(started(0, 1, false));
    assert!(SagaState::fold("s1", &wrong).is_err());
}

#[test]
fn crash_mid_step_reruns_the_same_attempt_with_the_same_key() {
    let first = SagaState::fold(
        "s1",
        &[
            requested(plan(3, &[])),
            started(0, 1, false),
            succeeded(0, 1),
        ],
    )
    .unwrap();
    let Decision::Run {
        idempotency_key: first_key,
        ..
    } = decide(&first)
    else {
        panic!("expected a run");
    };
    let crashed = vec![
        requested(plan(3, &[])),
        started(0, 1, false),
        succeeded(0, 1),
        started(1, 1, false),
    ];
    let state = SagaState::fold("s1", &crashed).unwrap();
    assert_eq!(state.status(), SagaStatus::Running);
    assert_eq!(state.steps()[1].status(), StepStatus::Running);
    let decision = decide(&state);
    let Decision::Run {
        step,
        attempt,
        compensation,
        idempotency_key,
        call,
    } = &decision
    else {
        panic!("expected a run, got {decision:?}");
    };
    assert_eq!((*step, *attempt, *compensation), (1, 1, false));
    assert_eq!(idempotency_key, "s1:1:do");
    assert_eq!(idempotency_key, &first_key);
    assert_eq!(call, &state.plan().steps[1].tool);
    // Deciding again is stable, and re-recording the start (the driver does) is accepted.
    assert_eq!(decide(&state), decision);
    let (events, _) = drive("s1", crashed, |_, _, _| Outcome::Ok);
    assert_eq!(
        types(&events)[4..],
        [STARTED, SUCCEEDED, STARTED, SUCCEEDED, PLAN_COMPLETED]
    );
    assert_eq!(
        SagaState::fold("s1", &events).unwrap().steps()[1].attempts(),
        1
    );
}

#[test]
fn quietly_failing_a_saga_with_live_effects_is_refused() {
    let events = vec![
        requested(plan(2, &[])),
        started(0, 1, false),
        succeeded(0, 1),
        SagaEvent::PlanFailed(PlanFailed {
            reason: "operator abort".into(),
            needs_attention: false,
        }),
    ];
    let err = SagaState::fold("s1", &events).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("event 3 (quorum.tool.plan.failed)"),
        "{err}"
    );
}

#[test]
fn fold_refuses_impossible_histories_naming_the_event() {
    let refused_at = |events: &[SagaEvent]| match SagaState::fold("s1", events) {
        Err(FoldError::Refused { index, .. }) => index,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let p = || requested(plan(2, &[]));
    // Before the plan.
    assert_eq!(refused_at(&[started(0, 1, false), p()]), 0);
    // Succeeded without started.
    assert_eq!(refused_at(&[p(), succeeded(0, 1)]), 1);
    // Out of order: step 1 before step 0.
    assert_eq!(refused_at(&[p(), started(1, 1, false)]), 1);
    // Skipping an attempt number.
    assert_eq!(refused_at(&[p(), started(0, 2, false)]), 1);
    // A compensation nobody asked for.
    assert_eq!(
        refused_at(&[
            p(),
            started(0, 1, false),
            succeeded(0, 1),
            started(0, 1, true)
        ]),
        3
    );
    // A second plan.
    assert_eq!(refused_at(&[p(), p()]), 1);
    // Anything after a terminal event.
    let done = SagaEvent::PlanFailed(PlanFailed {
        reason: "rejected".into(),
        needs_attention: false,
    });
    assert_eq!(refused_at(&[p(), done, started(0, 1, false)]), 2);
    assert_eq!(SagaState::fold("s1", &[]), Err(FoldError::Empty));

    let err = SagaState::fold("s1", &[p(), succeeded(0, 1)]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "event 1 (quorum.tool.step.succeeded) refused: step 0 attempt 1 was not started"
    );
}
