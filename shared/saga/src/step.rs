//! What `quorum saga show` prints for one step.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    Pending,
    /// Started, or waiting for its next attempt after a retryable failure.
    Running,
    Succeeded,
    /// Failed for good: the step itself, or (for a step before the failed one) its compensation.
    Failed,
    /// Compensation started, or waiting for its next attempt.
    Compensating,
    Compensated,
    /// Undone without running anything because the step has no `compensate`.
    Skipped,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StepState {
    pub(crate) status: StepStatus,
    pub(crate) attempts: u32,
    pub(crate) compensation_attempts: u32,
    pub(crate) last_error: Option<String>,
    pub(crate) output: Option<Value>,
    pub(crate) compensation_output: Option<Value>,
    /// The compensation call returned; `StepCompensated` is still to be appended.
    pub(crate) undo_succeeded: bool,
}

impl StepState {
    pub(crate) fn new() -> Self {
        StepState {
            status: StepStatus::Pending,
            attempts: 0,
            compensation_attempts: 0,
            last_error: None,
            output: None,
            compensation_output: None,
            undo_succeeded: false,
        }
    }
    pub fn status(&self) -> StepStatus {
        self.status
    }
    /// Attempts of the step itself (the highest attempt number started).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
    pub fn compensation_attempts(&self) -> u32 {
        self.compensation_attempts
    }
    /// The most recent failure, of the step or of its compensation.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }
    pub fn output(&self) -> Option<&Value> {
        self.output.as_ref()
    }
    pub fn compensation_output(&self) -> Option<&Value> {
        self.compensation_output.as_ref()
    }
}
