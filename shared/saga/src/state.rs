//! Saga state rebuilt from the saga's events alone, refusing histories the decider
//! could not have produced.

use crate::decide::{Next, next};
use crate::event::{
    Origin, PlanFailed, PlanRequested, SagaEvent, StepFailed, StepStarted, StepSucceeded,
};
use crate::plan::Plan;
use crate::step::{StepState, StepStatus};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SagaStatus {
    Running,
    Compensating,
    Completed,
    Compensated,
    Failed { needs_attention: bool },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FoldError {
    #[error("saga history is empty")]
    Empty,
    #[error("event {index} ({event_type}) refused: {reason}")]
    Refused {
        index: usize,
        event_type: &'static str,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct SagaState {
    saga_id: String,
    plan: Plan,
    origin: Origin,
    steps: Vec<StepState>,
    in_flight: Option<StepStarted>,
    failed_step: Option<usize>,
    terminal: Option<SagaStatus>,
    failure_reason: Option<String>,
    len: usize,
}

impl SagaState {
    /// Rebuilds the state of saga `saga_id` from its whole stream, first event first.
    pub fn fold(saga_id: &str, events: &[SagaEvent]) -> Result<SagaState, FoldError> {
        let (first, rest) = events.split_first().ok_or(FoldError::Empty)?;
        let SagaEvent::PlanRequested(PlanRequested { plan, origin, .. }) = first else {
            return Err(FoldError::Refused {
                index: 0,
                event_type: first.event_type(),
                reason: "a saga must begin with quorum.tool.plan.requested".into(),
            });
        };
        let mut state = SagaState {
            saga_id: saga_id.to_owned(),
            steps: vec![StepState::new(); plan.steps.len()],
            plan: plan.clone(),
            origin: origin.clone(),
            in_flight: None,
            failed_step: None,
            terminal: None,
            failure_reason: None,
            len: 1,
        };
        for event in rest {
            state.apply(event)?;
        }
        Ok(state)
    }

    /// Folds one more event; on error the state is unchanged, so a service can check an
    /// event before appending it.
    pub fn apply(&mut self, event: &SagaEvent) -> Result<(), FoldError> {
        let applied = match (&self.terminal, event) {
            (Some(status), _) => Err(format!("the saga already ended as {status:?}")),
            (None, SagaEvent::PlanRequested(_)) => Err("the plan was already requested".into()),
            (None, SagaEvent::StepStarted(started)) => self.start(started),
            (None, SagaEvent::StepSucceeded(done)) => self.succeed(done),
            (None, SagaEvent::StepFailed(failed)) => self.fail(failed),
            (
                None,
                SagaEvent::StepCompensated(_)
                | SagaEvent::PlanCompleted(_)
                | SagaEvent::PlanCompensated(_),
            ) => self.settle(event),
            (None, SagaEvent::PlanFailed(failed)) => self.give_up(failed),
        };
        applied.map_err(|reason| FoldError::Refused {
            index: self.len,
            event_type: event.event_type(),
            reason,
        })?;
        self.len += 1;
        Ok(())
    }

    /// A step (or its compensation) starts: only the one due, or a repeat of the one in flight.
    fn start(&mut self, started: &StepStarted) -> Result<(), String> {
        match next(self) {
            Next::Run { started: want, .. } if want == *started => {
                // A repeat of the in-flight start is a re-run after a crash: same attempt.
                self.in_flight = Some(*started);
                let step = &mut self.steps[started.step];
                if started.compensation {
                    step.status = StepStatus::Compensating;
                    step.compensation_attempts = started.attempt;
                } else {
                    step.status = StepStatus::Running;
                    step.attempts = started.attempt;
                }
                Ok(())
            }
            Next::Run { started: want, .. } if self.in_flight.is_some() => {
                Err(format!("{} is still running", describe(&want)))
            }
            Next::Run { started: want, .. } => {
                Err(format!("expected {} to start", describe(&want)))
            }
            other => Err(expected(&other)),
        }
    }

    /// The step in flight succeeded.
    fn succeed(&mut self, done: &StepSucceeded) -> Result<(), String> {
        self.check_in_flight(&StepStarted {
            step: done.step,
            attempt: done.attempt,
            compensation: done.compensation,
        })?;
        self.in_flight = None;
        let step = &mut self.steps[done.step];
        if done.compensation {
            step.undo_succeeded = true;
            step.compensation_output = Some(done.output.clone());
        } else {
            step.status = StepStatus::Succeeded;
            step.output = Some(done.output.clone());
        }
        Ok(())
    }

    /// The step in flight failed; it has failed for good once it may not be tried again.
    fn fail(&mut self, failed: &StepFailed) -> Result<(), String> {
        self.check_in_flight(&StepStarted {
            step: failed.step,
            attempt: failed.attempt,
            compensation: failed.compensation,
        })?;
        let exhausted = !failed.retryable || failed.attempt >= self.plan.attempts_for(failed.step);
        self.in_flight = None;
        let step = &mut self.steps[failed.step];
        step.last_error = Some(failed.error.clone());
        if exhausted {
            step.status = StepStatus::Failed;
            if !failed.compensation {
                self.failed_step = Some(failed.step);
            }
        }
        Ok(())
    }

    /// A step compensated, or the saga completed or compensated: only when it is what is due.
    fn settle(&mut self, event: &SagaEvent) -> Result<(), String> {
        match next(self) {
            Next::Append(want) if want == *event => {}
            other => return Err(expected(&other)),
        }
        match event {
            SagaEvent::StepCompensated(c) => {
                let has_undo = self.plan.steps[c.step].compensate.is_some();
                self.steps[c.step].status = if has_undo {
                    StepStatus::Compensated
                } else {
                    StepStatus::Skipped
                };
            }
            SagaEvent::PlanCompleted(_) => self.terminal = Some(SagaStatus::Completed),
            _ => self.terminal = Some(SagaStatus::Compensated),
        }
        Ok(())
    }

    /// The service gave up on the saga: at any point, but not quietly while effects remain.
    fn give_up(&mut self, failed: &PlanFailed) -> Result<(), String> {
        if let Some(i) = self.unresolved_step().filter(|_| !failed.needs_attention) {
            return Err(format!(
                "needs_attention must be true: effects of step {i} are not undone"
            ));
        }
        self.terminal = Some(SagaStatus::Failed {
            needs_attention: failed.needs_attention,
        });
        self.failure_reason = Some(failed.reason.clone());
        Ok(())
    }

    fn check_in_flight(&self, got: &StepStarted) -> Result<(), String> {
        match &self.in_flight {
            Some(running) if running == got => Ok(()),
            Some(running) => Err(format!(
                "{} is running, not {}",
                describe(running),
                describe(got)
            )),
            None => Err(format!("{} was not started", describe(got))),
        }
    }

    fn unresolved_step(&self) -> Option<usize> {
        self.steps.iter().enumerate().find_map(|(i, s)| {
            let undo_failed =
                s.status == StepStatus::Failed && self.failed_step.is_some_and(|f| i < f);
            let live = matches!(
                s.status,
                StepStatus::Running | StepStatus::Succeeded | StepStatus::Compensating
            );
            (live || undo_failed).then_some(i)
        })
    }

    pub fn saga_id(&self) -> &str {
        &self.saga_id
    }
    pub fn plan(&self) -> &Plan {
        &self.plan
    }
    pub fn origin(&self) -> &Origin {
        &self.origin
    }
    pub fn steps(&self) -> &[StepState] {
        &self.steps
    }
    /// The call started but not yet answered, if any (after a crash, the one to re-run).
    pub fn in_flight(&self) -> Option<StepStarted> {
        self.in_flight
    }
    /// The step that failed for good and started the compensation walk.
    pub fn failed_step(&self) -> Option<usize> {
        self.failed_step
    }
    pub fn failure_reason(&self) -> Option<&str> {
        self.failure_reason.as_deref()
    }
    /// Events folded so far: the stream version the next append should expect.
    pub fn event_count(&self) -> usize {
        self.len
    }
    pub fn is_terminal(&self) -> bool {
        self.terminal.is_some()
    }
    pub fn status(&self) -> SagaStatus {
        match (&self.terminal, self.failed_step) {
            (Some(status), _) => status.clone(),
            (None, Some(_)) => SagaStatus::Compensating,
            (None, None) => SagaStatus::Running,
        }
    }
}

fn describe(s: &StepStarted) -> String {
    let undo = if s.compensation {
        " (compensation)"
    } else {
        ""
    };
    format!("step {} attempt {}{undo}", s.step, s.attempt)
}

fn expected(next: &Next<'_>) -> String {
    match next {
        Next::Run { started, .. } => format!("expected {} to start", describe(started)),
        Next::Append(event) => format!("expected {} next", event.event_type()),
        Next::Done => "the saga already ended".into(),
    }
}
