//! Consensus: folds the expert results of a query (rebuilt from the event store each time) and
//! appends exactly one `quorum.consensus.reached` or `quorum.consensus.failed` per query: when the
//! quorum is met and the rest answered, when all answered, or when the deadline passes. A timer
//! over `query_deadlines` in Postgres ends queries whose experts never answer.
//!
//! This session's scope (issue 4, in progress): majority and similarity, the deadline timer, one
//! consensus per query under races. The judge strategy and the read model come next.

pub mod config;
pub mod decider;
pub mod fold;
pub mod view;

use std::sync::Arc;
use std::time::Duration;

use quorum_domain::{StreamId, types};
use quorum_event_store::{EventStore, StoreError};
use quorum_runtime::consumer::{self, ConsumerConfig, Delivery, Handler, Outcome};
use quorum_runtime::{Readiness, Shutdown};
use sqlx::PgPool;
use tracing::warn;

use decider::{Decider, Step};

/// The durable consumer's name, shared by replicas.
pub const CONSUMER: &str = "consensus";
/// How often the timer looks for queries past their deadline.
pub const TIMER_INTERVAL: Duration = Duration::from_millis(250);

struct ConsensusHandler {
    decider: Arc<Decider>,
}

impl Handler for ConsensusHandler {
    async fn handle(&self, delivery: &Delivery) -> Outcome {
        let Some(stream) = delivery
            .event
            .subject
            .as_deref()
            .and_then(|s| StreamId::parse(s).ok())
        else {
            return Outcome::dead("a query event without its query stream as subject");
        };
        match self.decider.step(&stream).await {
            Ok(_) => Outcome::Done,
            // Someone appended meanwhile (a late answer, another replica): fold again soon.
            Err(e @ StoreError::Conflict { .. }) => Outcome::retry(Duration::from_millis(50), e),
            Err(e) => Outcome::retry(Duration::from_secs(1), e),
        }
    }
}

/// Starts the consumer and the deadline timer as tasks of `shutdown`. `experts` names every
/// configured expert (a query that names none asks them all).
pub fn start(
    pool: PgPool,
    js: async_nats::jetstream::Context,
    experts: Vec<String>,
    shutdown: &Shutdown,
    readiness: &Readiness,
) {
    let decider = Arc::new(Decider {
        store: EventStore::new(pool.clone()),
        pool: pool.clone(),
        experts,
    });
    let filters = [
        types::QUERY_SUBMITTED,
        types::EXPERT_RESPONDED,
        types::EXPERT_FAILED,
    ]
    .map(quorum_bus::subjects::event_type_filter)
    .to_vec();
    let mut config = ConsumerConfig::new(CONSUMER, filters);
    // Each message is a few short database round trips; many lanes keep the database busy.
    config.concurrency = 64;
    let handler = Arc::new(ConsensusHandler {
        decider: decider.clone(),
    });
    let bound = readiness.flag("consensus consumer");
    let token = shutdown.token();
    shutdown.spawn(async move {
        if let Err(e) =
            consumer::run(js, pool, config, handler, token, move || bound.set(true)).await
        {
            tracing::error!(error = %e, "consensus consumer failed");
        }
    });
    shutdown.spawn(view::run(decider.pool.clone(), shutdown.token()));
    let token = shutdown.token();
    shutdown.spawn(async move {
        while !token.is_cancelled() {
            if let Err(e) = end_due(&decider).await {
                warn!(error = %e, "deadline timer");
            }
            tokio::select! {
                _ = token.cancelled() => break,
                _ = tokio::time::sleep(TIMER_INTERVAL) => {}
            }
        }
    });
}

/// Decides every query past its deadline. A conflict means an answer came meanwhile: the next
/// round folds it in.
async fn end_due(decider: &Decider) -> Result<(), StoreError> {
    for stream in decider.due(100).await? {
        match decider.step(&stream).await {
            Ok(Step::Waiting) => {
                warn!(%stream, "a query past its deadline is still waiting (clock skew?)")
            }
            Ok(_) | Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
