//! What `quorum saga show` prints: a saga's state rebuilt from its events, each step's status and
//! attempts, the events in order, and the dead letter of a saga that needs attention. An operator
//! who discards that letter has taken the saga in hand: it no longer needs attention, and the view
//! says who closed it and why (the discard's reason).

use quorum_domain::StreamId;
use quorum_event_store::EventStore;
use quorum_saga::{SagaState, SagaStatus};
use serde::Serialize;
use serde_json::{Value, json};

use crate::driver::{self, DriveError};

#[derive(Debug, Serialize)]
pub struct SagaView {
    pub saga: String,
    pub status: String,
    pub needs_attention: bool,
    pub reason: Option<String>,
    pub steps: Vec<Value>,
    /// Event types in order.
    pub events: Vec<String>,
    /// The dead letter an operator looks at, when the saga needs (or needed) attention.
    pub dead_letter: Option<uuid::Uuid>,
    /// How a call for attention was closed: the dead letter discarded, with the reason given.
    pub resolution: Option<String>,
}

/// The saga `saga/<id>`, or `None` when it has no events.
pub async fn show(store: &EventStore, id: &str) -> Result<Option<SagaView>, DriveError> {
    let stream = StreamId::new("saga", id).map_err(|e| DriveError::Corrupt(e.to_string()))?;
    let (recorded, events) = driver::load(store, &stream).await?;
    if recorded.is_empty() {
        return Ok(None);
    }
    let state = SagaState::fold(id, &events).map_err(|e| DriveError::Corrupt(e.to_string()))?;
    let (status, needs_attention) = match state.status() {
        SagaStatus::Running => ("running", false),
        SagaStatus::Compensating => ("compensating", false),
        SagaStatus::Completed => ("completed", false),
        SagaStatus::Compensated => ("compensated", false),
        SagaStatus::Failed { needs_attention } => ("failed", needs_attention),
    };
    let steps = state
        .steps()
        .iter()
        .zip(&state.plan().steps)
        .map(|(s, p)| {
            json!({
                "name": p.name, "tool": p.tool.tool, "status": format!("{:?}", s.status()).to_lowercase(),
                "attempts": s.attempts(), "compensation_attempts": s.compensation_attempts(),
                "error": s.last_error(), "output": s.output(),
            })
        })
        .collect();
    let plan_event = recorded[0].event.id.clone();
    let letter: Option<(uuid::Uuid, String, Option<String>)> = if needs_attention {
        sqlx::query_as(
            "SELECT id, status, resolution FROM dead_letters WHERE event_id = $1
             ORDER BY created_at DESC LIMIT 1",
        )
        .bind(&plan_event)
        .fetch_optional(store.pool())
        .await
        .map_err(|e| DriveError::Store(e.into()))?
    } else {
        None
    };
    let dead_letter = letter.as_ref().map(|l| l.0);
    // The discard is the operator's word that the saga's leftovers are dealt with.
    let resolution =
        letter
            .filter(|(_, status, _)| status == "discarded")
            .map(|(id, _, reason)| {
                format!(
                    "dead letter {id} discarded: {}",
                    reason.as_deref().unwrap_or("no reason given")
                )
            });
    let needs_attention = needs_attention && resolution.is_none();
    Ok(Some(SagaView {
        saga: id.to_owned(),
        status: status.to_owned(),
        needs_attention,
        reason: state.failure_reason().map(str::to_owned),
        steps,
        events: recorded.iter().map(|r| r.event.ty.clone()).collect(),
        dead_letter,
        resolution,
    }))
}
