//! Pure saga decider for Quorum tool plans: fold a saga's events, then decide the next call,
//! compensation or terminal event. No I/O; the `tool-exec` service owns the stream and the calls.

mod decide;
mod event;
mod plan;
mod policy;
mod state;
mod step;

pub use decide::{Decision, decide, idempotency_key};
pub use event::{
    Origin, PlanCompensated, PlanCompleted, PlanFailed, PlanRequested, SagaEvent, StepCompensated,
    StepFailed, StepStarted, StepSucceeded,
};
pub use plan::{
    DEFAULT_MAX_ATTEMPTS, MAX_ATTEMPTS_CAP, MAX_TIMEOUT_MS, Plan, PlanError, Step, ToolCall,
};
pub use policy::ToolPolicy;
pub use state::{FoldError, SagaState, SagaStatus};
pub use step::{StepState, StepStatus};
