//! Consensus: folds the expert results of a query (rebuilt from the event store each time) and
//! appends exactly one `quorum.consensus.reached` or `quorum.consensus.failed` per query: when the
//! quorum is met and the rest answered, when all answered, or when the deadline passes. A timer
//! over the deadlines the `queries` read model holds ends queries whose experts never answer.
//! Answers are compared by their final answers, canonicalized (`quorum_domain::consensus`); what
//! those rules leave open goes to the strategy's semantic method (`semantic`): embeddings for
//! `similarity`, the judge for `judge`, which also merges the answers (`judge`). An agreed answer that is a
//! tool plan, on a query whose tool policy allows it, is requested as a saga (`proposal`). The
//! `queries` read model is a projection here too (`view`).

pub mod config;
pub mod decider;
pub mod fold;
pub mod judge;
pub mod proposal;
pub mod semantic;
pub mod view;

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quorum_domain::{StreamId, types};
use quorum_event_store::{Batcher, EventStore, StoreError};
use quorum_runtime::consumer::{self, ConsumerConfig, Delivery, Handler, Outcome};
use quorum_runtime::{Readiness, Shutdown, spawn_vital};
use sqlx::PgPool;
use tracing::warn;

use decider::{Decider, Step};
use judge::Judge;
use quorum_experts::ExpertConfig;
use quorum_experts::embeddings::{Embedder, EmbeddingsConfig};

/// The durable consumer's name, shared by replicas.
pub const CONSUMER: &str = "consensus";
/// How often the timer looks for queries past their deadline.
pub const TIMER_INTERVAL: Duration = Duration::from_millis(250);
/// Folds a handler makes at once after its consensus found the stream moved on, before it leaves
/// the message to a redelivery: a stream that keeps moving is someone else's busy query, not this
/// message's problem, and waiting lets them finish.
const REFOLDS: u32 = 3;

struct ConsensusHandler {
    decider: Arc<Decider>,
    /// Queries this process saw decided. A decision is final, so a result that arrives after it
    /// (most results: the first fold that sees them all decides) is settled without reading the
    /// stream again. A miss only costs that read.
    decided: Mutex<Recent>,
}

/// The most recent `CAPACITY` query streams seen decided.
#[derive(Default)]
struct Recent {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl Recent {
    const CAPACITY: usize = 65_536;

    fn insert(&mut self, stream: &str) {
        if self.set.insert(stream.to_owned()) {
            self.order.push_back(stream.to_owned());
            if self.order.len() > Self::CAPACITY
                && let Some(old) = self.order.pop_front()
            {
                self.set.remove(&old);
            }
        }
    }
}

impl ConsensusHandler {
    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.decided
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
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
        if self.recent().set.contains(stream.as_str()) {
            return Outcome::Done;
        }
        let mut refolds = 0;
        loop {
            match self.decider.step(&stream).await {
                Ok(Step::Decided) => {
                    self.recent().insert(stream.as_str());
                    return Outcome::Done;
                }
                Ok(_) => return Outcome::Done,
                // Someone appended meanwhile (the last answer, another replica's consensus). What
                // they appended is committed (a conflict is only found once it is), so a fold now
                // sees it: at once, rather than after a redelivery that would keep the asker
                // waiting and count against the message's deliveries.
                Err(StoreError::Conflict { .. }) if refolds < REFOLDS => refolds += 1,
                Err(e @ StoreError::Conflict { .. }) => {
                    return Outcome::retry(Duration::from_millis(50), e);
                }
                Err(e) => return Outcome::store_failed(Duration::from_secs(1), &e),
            }
        }
    }
}

/// The semantic methods a consensus may use, as configured: none means the offline rules alone.
#[derive(Clone, Debug, Default)]
pub struct Methods {
    /// Decides which answers of `judge` queries mean the same, and merges them.
    pub judge: Option<ExpertConfig>,
    /// Decides which answers of `similarity` queries (and of `judge` queries, with no judge)
    /// mean the same.
    pub embeddings: Option<EmbeddingsConfig>,
}

/// Starts the consumer, the read model's projection and the deadline timer as tasks of
/// `shutdown`. `experts` names every configured expert (a query that names none asks them all).
pub fn start(
    pool: PgPool,
    js: async_nats::jetstream::Context,
    experts: Vec<String>,
    methods: Methods,
    shutdown: &Shutdown,
    readiness: &Readiness,
) {
    let decider = Arc::new(Decider {
        pool: pool.clone(),
        store: Batcher::start(EventStore::new(pool.clone()), &shutdown.tracker()),
        experts,
        judge: methods.judge.map(Judge::new),
        embedder: methods.embeddings.map(Embedder::new),
    });
    // Not the submissions: a submission alone decides nothing, and its deadline reaches the
    // timer through the read model.
    let filters = [types::EXPERT_RESPONDED, types::EXPERT_FAILED]
        .map(quorum_bus::subjects::event_type_filter)
        .to_vec();
    let mut config = ConsumerConfig::new(CONSUMER, filters);
    // Each message is a few short database round trips; many lanes keep the database busy.
    config.concurrency = 64;
    let handler = Arc::new(ConsensusHandler {
        decider: decider.clone(),
        decided: Mutex::default(),
    });
    consumer::spawn(shutdown, readiness, js, pool, config, handler);
    let projection = view::run(decider.pool.clone(), shutdown.token());
    spawn_vital(shutdown, readiness, "queries projection", projection);
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
