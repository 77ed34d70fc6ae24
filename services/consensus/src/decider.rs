//! Deciding one query: fold its stream, decide, and append the consensus at exactly the version
//! folded. Two replicas, a redelivery, or the deadline timer racing a late answer can all try; the
//! version check lets one win, and the loser finds the query decided when it looks again.

use bytes::Bytes;
use chrono::Utc;
use quorum_domain::consensus::{Decision, decide, may_decide_now, undecided_pairs};
use quorum_domain::query::Strategy;
use quorum_domain::{Event, StreamId, types};
use quorum_event_store::{Batcher, EventStore, ExpectedVersion, StoreError};
use quorum_experts::embeddings::Embedder;
use sqlx::{Acquire, PgPool};
use tracing::Instrument as _;

use crate::fold::Query;
use crate::judge::{self, Judge};
use crate::proposal;
use crate::semantic::Semantic;

/// Names this handler in derived ids: never change it.
pub const HANDLER: &str = "consensus";
pub const SOURCE: &str = "/quorum/consensus";

/// Histogram, seconds: from a query's submission (its event's `time`) to its consensus being
/// stored, as its asker waits for it. Label: `outcome` (`reached`, `failed`).
pub const DECISION_SECONDS: &str = "quorum_query_decision_seconds";

/// What deciding a query came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Decided now, or before.
    Decided,
    /// Experts still pending, before the deadline.
    Waiting,
    /// No submitted query in the stream (yet).
    NoQuery,
}

impl Step {
    /// How spans name it.
    pub fn label(&self) -> &'static str {
        match self {
            Step::Decided => "decided",
            Step::Waiting => "waiting",
            Step::NoQuery => "no query",
        }
    }
}

/// A decided query's consensus, not yet appended.
struct Decided {
    ty: &'static str,
    event: Event,
    /// The saga the agreed answer proposes, to start in the same transaction.
    plan: Option<(StreamId, Event)>,
}

pub struct Decider {
    pub pool: PgPool,
    /// Reads and appends go in groups with those of the other queries being decided.
    pub store: Batcher,
    /// Every configured expert, for queries that name none.
    pub experts: Vec<String>,
    /// Decides which answers of a `judge` query mean the same, and merges them; none configured,
    /// the offline rules group and the plainest answer of the majority stands.
    pub judge: Option<Judge>,
    /// Decides which answers of a `similarity` query mean the same, by their embeddings.
    pub embedder: Option<Embedder>,
}

impl Decider {
    /// Folds `stream` and appends its consensus if it is decided. A version conflict (someone
    /// appended meanwhile) is returned for the caller to retry; nothing was written then.
    /// The step is the span `decide`, recording what it came to.
    pub async fn step(&self, stream: &StreamId) -> Result<Step, StoreError> {
        if !quorum_runtime::trace::recording() {
            return self.step_traced(stream).await;
        }
        let span = tracing::info_span!(
            "decide",
            otel.name = "decide",
            otel.status_code = tracing::field::Empty,
            quorum.stream = %stream,
            quorum.step = tracing::field::Empty,
        );
        let step = self.step_traced(stream).instrument(span.clone()).await;
        match &step {
            Ok(s) => span.record("quorum.step", s.label()),
            Err(_) => span.record("otel.status_code", "error"),
        };
        step
    }

    async fn step_traced(&self, stream: &StreamId) -> Result<Step, StoreError> {
        let events = self.store.read_stream(stream).await?;
        let Some(query) = Query::fold(&events) else {
            return Ok(Step::NoQuery);
        };
        if query.decided {
            return Ok(Step::Decided);
        }
        // Nothing to write on a wait: the read model holds the query's deadline, and the timer
        // comes back to it then if no other message does.
        let Some(decided) = self.decision(stream, &query).await else {
            return Ok(Step::Waiting);
        };
        self.record(stream, &query, decided).await?;
        Ok(Step::Decided)
    }

    /// The query's consensus, if it is decided now: its event, and the saga it proposes.
    async fn decision(&self, stream: &StreamId, query: &Query) -> Option<Decided> {
        let now = Utc::now();
        let asked = query.asked(&self.experts);
        // A semantic method is asked only when the answers in hand may decide the query, and
        // only about the pairs the offline rules leave open. Finding those pairs compares every
        // answer, so it is done only for a strategy that asks a method.
        let offline = query.progress(&asked, now, &[]);
        if !may_decide_now(&offline) {
            return None;
        }
        let methods = Semantic {
            embedder: self.embedder.as_ref(),
            judge: self.judge.as_ref(),
        };
        let strategy = query.query.strategy;
        let pairs = if methods.asks(strategy) {
            undecided_pairs(&offline).unwrap_or_default()
        } else {
            Vec::new()
        };
        let (semantic, mut info) = methods
            .settle(strategy, &query.query.question, &pairs)
            .await;
        let mut plan = None;
        let (ty, data) = match decide(&query.progress(&asked, now, &semantic)) {
            Decision::Wait => return None,
            Decision::Reached(mut r) => {
                if let Some(decided) = r.grouping.take() {
                    info.links = decided.links;
                }
                r.grouping = Some(info);
                if r.strategy == Strategy::Judge {
                    match &self.judge {
                        Some(judge) => {
                            judge
                                .merge(&query.query.question, query.answers(), &mut r)
                                .await
                        }
                        None => r.judge = Some(judge::unconfigured()),
                    }
                }
                let query_id = stream.as_str().trim_start_matches("query/");
                let policy = query.query.tool_policy.as_ref();
                plan = proposal::propose(&query.submitted, query_id, policy, &r.answer);
                r.saga = plan.as_ref().map(|(saga, _)| saga.to_string());
                (types::CONSENSUS_REACHED, serde_json::to_vec(&r))
            }
            Decision::Failed(f) => (types::CONSENSUS_FAILED, serde_json::to_vec(&f)),
        };
        let mut event = Event::derived(
            &query.submitted,
            HANDLER,
            0,
            SOURCE,
            ty,
            stream.clone(),
            Bytes::from(data.expect("a consensus serializes")),
        );
        // The consensus continues the trace from this decision, not from the submission.
        if let Some(cx) = quorum_runtime::trace::current() {
            event.traceparent = Some(cx.traceparent);
            event.tracestate = cx.tracestate;
        }
        Some(Decided { ty, event, plan })
    }

    /// Appends the consensus at exactly the version folded, with the saga it proposes in the
    /// same transaction, and records how long the asker waited for it.
    async fn record(
        &self,
        stream: &StreamId,
        query: &Query,
        decided: Decided,
    ) -> Result<(), StoreError> {
        let Decided { ty, event, plan } = decided;
        let expected = ExpectedVersion::Exact(query.version);
        let appended = match plan {
            // One statement: the common case stays cheap.
            None => self.store.append(stream, expected, &[event]).await?,
            // The consensus and the plan it proposes commit together, or neither does.
            Some((saga, request)) => {
                let mut conn = self.pool.acquire().await?;
                let mut tx = conn.begin().await?;
                let appended = EventStore::append_in(&mut tx, stream, expected, &[event]).await?;
                EventStore::append_in(&mut tx, &saga, ExpectedVersion::Exact(0), &[request])
                    .await?;
                tx.commit().await?;
                appended
            }
        };
        if !appended.all_duplicates()
            && let Some(submitted_at) = query.submitted.time
        {
            let outcome = if ty == types::CONSENSUS_REACHED {
                "reached"
            } else {
                "failed"
            };
            let took = (Utc::now() - submitted_at).to_std().unwrap_or_default();
            metrics::histogram!(DECISION_SECONDS, "outcome" => outcome).record(took.as_secs_f64());
        }
        Ok(())
    }

    /// Queries past their deadline that the read model still shows pending, oldest first. One
    /// just decided stays there until the projection applies its consensus; a fold finds it
    /// decided meanwhile.
    pub async fn due(&self, limit: i64) -> Result<Vec<StreamId>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT stream_id FROM queries WHERE status = 'pending' AND deadline_at <= now()
             ORDER BY deadline_at LIMIT $1",
        )
        // Planned each time: a plan cached while `queries` was small would scan it whole.
        .persistent(false)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|s| StreamId::parse(s).ok())
            .collect())
    }
}
