//! Driving one saga: rebuild its state from its events, let the pure decider say what comes next,
//! do it, append the outcome at the version it was decided on, and go again until the saga ends.
//! Nothing is kept in memory between steps, so a tool-exec killed anywhere resumes where the events
//! say it was, on restart or on another replica; the checked version means two drivers of the same
//! saga never both append (the loser reloads and finds the work done or in flight).

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use quorum_domain::{Event, StreamId};
use quorum_event_store::{EventStore, ExpectedVersion, RecordedEvent, StoreError};
use quorum_saga::{
    Decision, PlanFailed, SagaEvent, SagaState, StepFailed, StepStarted, StepSucceeded, decide,
};
use tracing::{Instrument as _, info, warn};

use crate::tools::{Call, Tools};

/// The handler name in derived event ids.
const HANDLER: &str = "tool-exec";
const SOURCE: &str = "/quorum/tool-exec";
/// A step with no timeout of its own gets this.
const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// How a saga's drive ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// Completed, compensated, or failed without anything left to undo.
    Done,
    /// Failed with effects that could not be undone: an operator must look.
    NeedsAttention(String),
}

/// Why driving stopped before the saga ended.
#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error("event store")]
    Store(#[from] StoreError),
    #[error("the saga's history cannot be read: {0}")]
    Corrupt(String),
}

/// The saga's events, decoded.
pub async fn load(
    store: &EventStore,
    stream: &StreamId,
) -> Result<(Vec<RecordedEvent>, Vec<SagaEvent>), DriveError> {
    let recorded = store.read_stream(stream, 1, 100_000).await?;
    let events = recorded
        .iter()
        .map(|r| {
            let data: serde_json::Value = r
                .event
                .data
                .as_deref()
                .map(serde_json::from_slice)
                .transpose()
                .map_err(|e| DriveError::Corrupt(format!("version {}: {e}", r.stream_version)))?
                .unwrap_or_default();
            SagaEvent::from_parts(&r.event.ty, data).map_err(|e| {
                DriveError::Corrupt(format!(
                    "version {} ({}): {e}",
                    r.stream_version, r.event.ty
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((recorded, events))
}

/// What a driver knows of its saga: loaded once, then kept current by applying what it appends;
/// reloaded only when an append finds that someone else moved the saga.
struct Loaded {
    /// The plan request, which every event of the saga derives its id from.
    cause: Event,
    version: u64,
    state: SagaState,
}

impl Loaded {
    async fn load(
        store: &EventStore,
        stream: &StreamId,
        saga_id: &str,
    ) -> Result<Self, DriveError> {
        let (recorded, events) = load(store, stream).await?;
        let Some(cause) = recorded.first().map(|r| r.event.clone()) else {
            return Err(DriveError::Corrupt("the saga has no events".into()));
        };
        let state =
            SagaState::fold(saga_id, &events).map_err(|e| DriveError::Corrupt(e.to_string()))?;
        Ok(Loaded {
            cause,
            version: recorded.len() as u64,
            state,
        })
    }

    /// Appends `event` at the version loaded and applies it; false when another driver appended
    /// first (the caller reloads).
    async fn record(
        &mut self,
        store: &EventStore,
        stream: &StreamId,
        event: &SagaEvent,
    ) -> Result<bool, DriveError> {
        if !appended(append(store, stream, &self.cause, self.version, event).await)? {
            return Ok(false);
        }
        self.version += 1;
        self.state
            .apply(event)
            .map_err(|e| DriveError::Corrupt(e.to_string()))?;
        Ok(true)
    }
}

/// Drives the saga of `stream` until it ends. A conflict (another driver appended) reloads.
pub async fn drive(
    store: &EventStore,
    tools: &Tools,
    stream: &StreamId,
    workdir: &Path,
    policy_refusal: Option<String>,
) -> Result<Ended, DriveError> {
    let saga_id = stream.as_str().trim_start_matches("saga/").to_owned();
    let mut refusal = policy_refusal;
    let mut loaded: Option<Loaded> = None;
    loop {
        let saga = match &mut loaded {
            Some(l) => l,
            None => loaded.insert(Loaded::load(store, stream, &saga_id).await?),
        };
        // A plan the policy refuses ends before anything runs, with the reason on record.
        if let Some(reason) = refusal.take()
            && saga.version == 1
        {
            let failed = SagaEvent::PlanFailed(PlanFailed {
                reason,
                needs_attention: false,
            });
            if !saga.record(store, stream, &failed).await? {
                loaded = None;
            }
            continue;
        }
        let recorded = match decide(&saga.state) {
            Decision::Done => return Ok(ended(&saga.state)),
            Decision::Append(event) => {
                let recorded = saga.record(store, stream, &event).await?;
                if recorded {
                    info!(saga = %saga_id, event = event.event_type(), "saga");
                }
                recorded
            }
            Decision::Run {
                step,
                attempt,
                compensation,
                call,
                idempotency_key,
            } => {
                let started = StepStarted {
                    step,
                    attempt,
                    compensation,
                };
                // After a crash the start is on record already: run the same call again, with the
                // same key, without recording a second start.
                if saga.state.in_flight() != Some(started)
                    && !saga
                        .record(store, stream, &SagaEvent::StepStarted(started))
                        .await?
                {
                    false
                } else {
                    let timeout = saga.state.plan().steps[step]
                        .timeout_ms
                        .map_or(DEFAULT_STEP_TIMEOUT, Duration::from_millis);
                    let call = Call {
                        call: &call,
                        idempotency_key: &idempotency_key,
                        workdir,
                        timeout,
                    };
                    let event = run(tools, &saga_id, started, call).await;
                    saga.record(store, stream, &event).await?
                }
            }
        };
        if !recorded {
            loaded = None;
        }
    }
}

/// How a saga that is done ended.
fn ended(state: &SagaState) -> Ended {
    match state.status() {
        quorum_saga::SagaStatus::Failed {
            needs_attention: true,
        } => Ended::NeedsAttention(
            state
                .failure_reason()
                .unwrap_or("a compensation failed")
                .to_owned(),
        ),
        _ => Ended::Done,
    }
}

/// Runs one attempt at a step (or its compensation) and says how it went, as the event to record.
async fn run(tools: &Tools, saga_id: &str, started: StepStarted, call: Call<'_>) -> SagaEvent {
    let StepStarted {
        step,
        attempt,
        compensation,
    } = started;
    let span = step_span(saga_id, &call.call.tool, step, attempt, compensation);
    let outcome = tools.call(call).instrument(span.clone()).await;
    match outcome {
        Ok(output) => SagaEvent::StepSucceeded(StepSucceeded {
            step,
            attempt,
            compensation,
            output: bounded_output(output),
        }),
        Err(e) => {
            span.record("otel.status_code", "error");
            warn!(saga = %saga_id, step, attempt, compensation, error = %e, retryable = e.retryable, "step failed");
            SagaEvent::StepFailed(StepFailed {
                step,
                attempt,
                compensation,
                error: e.message,
                retryable: e.retryable,
            })
        }
    }
}

/// The span of one attempt at a saga step or at its compensation.
fn step_span(
    saga: &str,
    tool: &str,
    step: usize,
    attempt: u32,
    compensation: bool,
) -> tracing::Span {
    if !quorum_runtime::trace::recording() {
        return tracing::Span::none();
    }
    let what = if compensation { "compensate" } else { "step" };
    tracing::info_span!(
        "step",
        otel.name = %format_args!("{what} {step} {tool}"),
        otel.status_code = tracing::field::Empty,
        quorum.saga = saga,
        quorum.step = step,
        quorum.attempt = attempt,
        quorum.compensation = compensation,
        quorum.tool = tool,
    )
}

/// Most bytes of a step's output kept in its event: every tool (exec, http, MCP) can return more
/// than the bus carries in one message, and what is stored must be publishable.
pub const MAX_STEP_OUTPUT_BYTES: usize = 256 * 1024;

/// A step's output as stored: whole when it fits, else its first part as text, saying how large
/// it was.
fn bounded_output(output: serde_json::Value) -> serde_json::Value {
    let text = output.to_string();
    if text.len() <= MAX_STEP_OUTPUT_BYTES {
        return output;
    }
    let mut end = MAX_STEP_OUTPUT_BYTES / 2;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    serde_json::json!({
        "truncated": true,
        "bytes": text.len(),
        "head": &text[..end],
    })
}

/// Ok(false) on a version conflict: someone else moved the saga, so reload.
fn appended(r: Result<(), StoreError>) -> Result<bool, DriveError> {
    match r {
        Ok(()) => Ok(true),
        Err(StoreError::Conflict { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Appends `event` as version `version + 1`. Its id derives from the plan request and the version,
/// so the same event written twice (a redelivery) is stored once.
async fn append(
    store: &EventStore,
    stream: &StreamId,
    cause: &Event,
    version: u64,
    event: &SagaEvent,
) -> Result<(), StoreError> {
    let data = Bytes::from(serde_json::to_vec(&event.data()).unwrap_or_default());
    let e = Event::derived(
        cause,
        HANDLER,
        version as u32,
        SOURCE,
        event.event_type(),
        stream.clone(),
        data,
    );
    store
        .append(stream, ExpectedVersion::Exact(version), &[e])
        .await
        .map(|_| ())
}

#[cfg(test)]
mod bounded_tests {
    use super::*;

    #[test]
    fn a_large_output_is_stored_as_its_head_and_its_size() {
        let small = serde_json::json!({"stdout": "ok"});
        assert_eq!(bounded_output(small.clone()), small);
        let big = serde_json::json!({"stdout": "x".repeat(2 * MAX_STEP_OUTPUT_BYTES)});
        let kept = bounded_output(big);
        assert_eq!(kept["truncated"], true);
        assert!(kept["bytes"].as_u64().unwrap() > 2 * MAX_STEP_OUTPUT_BYTES as u64);
        assert!(kept.to_string().len() <= MAX_STEP_OUTPUT_BYTES);
    }
}
