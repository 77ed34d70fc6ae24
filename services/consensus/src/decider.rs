//! Deciding one query: fold its stream, decide, and append the consensus at exactly the version
//! folded. Two replicas, a redelivery, or the deadline timer racing a late answer can all try; the
//! version check lets one win, and the loser finds the query decided when it looks again.

use bytes::Bytes;
use chrono::Utc;
use quorum_domain::consensus::Decision;
use quorum_domain::{Event, StreamId, types};
use quorum_event_store::{EventStore, ExpectedVersion, StoreError};
use sqlx::PgPool;

use crate::fold::Query;

/// Names this handler in derived ids: never change it.
pub const HANDLER: &str = "consensus";
pub const SOURCE: &str = "/quorum/consensus";

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

pub struct Decider {
    pub store: EventStore,
    pub pool: PgPool,
    /// Every configured expert, for queries that name none.
    pub experts: Vec<String>,
}

impl Decider {
    /// Folds `stream` and appends its consensus if it is decided. A version conflict (someone
    /// appended meanwhile) is returned for the caller to retry; nothing was written then.
    pub async fn step(&self, stream: &StreamId) -> Result<Step, StoreError> {
        let events = self.store.read_stream(stream, 1, 100_000).await?;
        let Some(query) = Query::fold(&events) else {
            return Ok(Step::NoQuery);
        };
        let tenant = events[0].tenant.clone();
        // The timer's row: written once, before any decision, so the deadline holds even if no
        // other message about this query ever comes.
        sqlx::query(
            "INSERT INTO query_deadlines (stream_id, tenant, deadline_at) VALUES ($1, $2, $3)
             ON CONFLICT (stream_id) DO NOTHING",
        )
        .bind(stream.as_str())
        .bind(tenant.as_str())
        .bind(query.deadline())
        .execute(&self.pool)
        .await?;
        if query.decided {
            self.mark_decided(stream).await?;
            return Ok(Step::Decided);
        }
        let (ty, data) = match query.decide(&self.experts, Utc::now()) {
            Decision::Wait => return Ok(Step::Waiting),
            Decision::Reached(r) => (types::CONSENSUS_REACHED, serde_json::to_vec(&r)),
            Decision::Failed(f) => (types::CONSENSUS_FAILED, serde_json::to_vec(&f)),
        };
        let event = Event::derived(
            &query.submitted,
            HANDLER,
            0,
            SOURCE,
            ty,
            stream.clone(),
            Bytes::from(data.expect("a consensus serializes")),
        );
        match self
            .store
            .append(stream, ExpectedVersion::Exact(query.version), &[event])
            .await
        {
            Ok(_) => {
                self.mark_decided(stream).await?;
                Ok(Step::Decided)
            }
            Err(e) => Err(e),
        }
    }

    async fn mark_decided(&self, stream: &StreamId) -> Result<(), StoreError> {
        sqlx::query("UPDATE query_deadlines SET decided_at = now() WHERE stream_id = $1 AND decided_at IS NULL")
            .bind(stream.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Queries whose deadline passed undecided, oldest first.
    pub async fn due(&self, limit: i64) -> Result<Vec<StreamId>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT stream_id FROM query_deadlines WHERE decided_at IS NULL AND deadline_at <= now()
             ORDER BY deadline_at LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|s| StreamId::parse(s).ok())
            .collect())
    }
}
