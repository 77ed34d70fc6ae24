//! The `queries` read model: a projection over every event in commit order. Each batch of rows is
//! committed with the projection's checkpoint, so a crash replays nothing twice and skips nothing;
//! rebuilding it is dropping the rows and the checkpoint.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use quorum_domain::types;

use crate::fold::Query;
use quorum_event_store::{
    CommitCursor, EventStore, RecordedEvent, StoreError, Wake, load_consumer_checkpoint,
    save_consumer_checkpoint,
};
use sqlx::pool::PoolConnection;
use sqlx::{Acquire, PgConnection, PgPool, Postgres};
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// The projection's checkpoint name.
pub const NAME: &str = "queries-view";
const BATCH: i64 = 500;
/// How often the projection looks when no notification came.
const POLL: Duration = Duration::from_millis(200);

/// Runs the projection until `shutdown`. Replicas take turns: a batch is written under a
/// transaction advisory lock, and whoever does not get it waits for the next round.
pub async fn run(pool: PgPool, shutdown: CancellationToken) {
    // Woken by each append's notification, polling as a fallback (a lost listener connection).
    let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await.ok();
    if let Some(l) = listener.as_mut()
        && let Err(e) = l.listen("quorum_events").await
    {
        warn!(error = %e, "queries projection polls: cannot listen");
        listener = None;
    }
    let mut wake = Wake::new(POLL);
    // One connection for every round, so a round costs only its own statements; a failed round
    // drops it and the next takes a fresh one.
    let mut conn: Option<PoolConnection<Postgres>> = None;
    // Where the projection was after its last round: reads start there without loading the
    // checkpoint. Another replica may have moved the checkpoint further; the write finds out.
    let mut seen: Option<CommitCursor> = None;
    while !shutdown.is_cancelled() {
        let round = async {
            let c = match conn.as_mut() {
                Some(c) => c,
                None => conn.insert(pool.acquire().await?),
            };
            step(c, seen).await
        };
        match round.await {
            Ok(stepped) => {
                seen = Some(stepped.at);
                if stepped.more {
                    continue;
                }
                if stepped.held {
                    wake.held();
                } else {
                    wake.caught_up();
                }
            }
            Err(e) => {
                warn!(error = %e, "queries projection");
                conn = None;
                seen = None;
                wake.held();
            }
        }
        let notified = async {
            match listener.as_mut() {
                Some(l) => l.try_recv().await.map(|_| ()),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            n = notified => if let Err(e) = n {
                warn!(error = %e, "queries projection polls: listener lost");
                listener = None;
            },
            _ = tokio::time::sleep(wake.wait()) => {}
        }
        // One read takes every commit notified so far.
        if let Some(l) = listener.as_mut() {
            while l.next_buffered().is_some() {}
        }
    }
}

/// Drops the read model and builds it again from the first event: the rows and the checkpoint go
/// in one transaction under the projection's lock, so a running projection sees the old state or
/// none of it; then batches are applied here until the model reaches the store's head (a running
/// projection may apply some of them, which is as good). `progress` gets the checkpoint's position.
pub async fn rebuild(pool: &PgPool, mut progress: impl FnMut(i64)) -> Result<(), StoreError> {
    let store = EventStore::new(pool.clone());
    let head = store.head().await?.map(|(c, _)| c);
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(NAME)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM queries").execute(&mut *tx).await?;
    sqlx::query("DELETE FROM consumer_checkpoints WHERE name = $1")
        .bind(NAME)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let mut conn = pool.acquire().await?;
    loop {
        let stepped = step(&mut conn, None).await?;
        progress(stepped.at.position);
        if !stepped.more {
            if head.is_none_or(|h| stepped.at >= h) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// One round: reads the next batch after `seen` (the checkpoint when `None`), and applies it.
///
/// The read comes first, outside any transaction: a round that finds nothing is that one read.
/// A batch is folded into row changes, then written in three statements with the checkpoint:
/// the transaction holds a transaction id only briefly, since every commit-order reader (the
/// relay first) waits behind an open one. If the checkpoint is not where the read started
/// (another replica applied those events, or a rebuild reset it), nothing is written and the
/// round reports where it is.
pub async fn step(
    conn: &mut PgConnection,
    seen: Option<CommitCursor>,
) -> Result<Stepped, StoreError> {
    let after = match seen {
        Some(at) => at,
        None => load_consumer_checkpoint(&mut *conn, NAME).await?,
    };
    let read = EventStore::read_committed_on(conn, after, BATCH).await?;
    let Some(last) = read.events.last().map(RecordedEvent::cursor) else {
        return Ok(Stepped {
            applied: 0,
            at: after,
            more: false,
            held: read.held,
        });
    };
    let mut tx = conn.begin().await?;
    let locked: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(NAME)
            .fetch_one(&mut *tx)
            .await?;
    let at = load_consumer_checkpoint(&mut *tx, NAME).await?;
    if !locked || at != after {
        // Another replica holds the lock or has moved on: read again from where it stands.
        return Ok(Stepped {
            applied: 0,
            at,
            more: locked,
            held: !locked,
        });
    }
    Changes::fold(&read.events).write(&mut tx).await?;
    save_consumer_checkpoint(&mut *tx, NAME, last).await?;
    tx.commit().await?;
    Ok(Stepped {
        applied: read.events.len(),
        at: last,
        more: read.events.len() as i64 == BATCH,
        held: read.held,
    })
}

/// What a round did.
pub struct Stepped {
    /// Events applied.
    pub applied: usize,
    /// The checkpoint after it.
    pub at: CommitCursor,
    /// Read again at once: the batch was full, or another replica had moved the checkpoint.
    pub more: bool,
    /// Events wait behind the watermark (or another replica holds the projection): read again
    /// soon even without a notification.
    pub held: bool,
}

/// What a batch of events changes in `queries`, by query. A query submitted in this batch is
/// inserted before its results and consensus apply, since commit order puts its submission first.
#[derive(Default)]
struct Changes {
    submitted: Vec<Submitted>,
    /// Each query's results in this batch, as one object of expert -> result.
    experts: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
    /// (query, status, consensus, decided at).
    decided: BTreeMap<String, (&'static str, serde_json::Value, DateTime<Utc>)>,
}

struct Submitted {
    query_id: String,
    stream_id: String,
    tenant: String,
    question: String,
    at: DateTime<Utc>,
    /// When the deadline timer ends the query, as its fold computes it; none for a submission
    /// the fold cannot read either (consensus can never decide it, so it is never due).
    deadline: Option<DateTime<Utc>>,
}

impl Changes {
    fn fold(events: &[RecordedEvent]) -> Self {
        let mut c = Changes::default();
        for r in events {
            let Some(query_id) = r.stream_id.as_str().strip_prefix("query/") else {
                continue;
            };
            let data = || -> serde_json::Value {
                r.event
                    .data
                    .as_deref()
                    .and_then(|d| serde_json::from_slice(d).ok())
                    .unwrap_or_default()
            };
            match r.event.ty.as_str() {
                types::QUERY_SUBMITTED => c.submitted.push(Submitted {
                    query_id: query_id.to_owned(),
                    stream_id: r.stream_id.as_str().to_owned(),
                    tenant: r.tenant.as_str().to_owned(),
                    question: data()["question"].as_str().unwrap_or_default().to_owned(),
                    at: r.recorded_at,
                    deadline: Query::fold(std::slice::from_ref(r)).map(|q| q.deadline()),
                }),
                ty @ (types::EXPERT_RESPONDED | types::EXPERT_FAILED) => {
                    let mut result = data();
                    let expert = result["expert"].as_str().unwrap_or_default().to_owned();
                    result["outcome"] = if ty == types::EXPERT_RESPONDED {
                        "responded".into()
                    } else {
                        "failed".into()
                    };
                    c.experts
                        .entry(query_id.to_owned())
                        .or_default()
                        .insert(expert, result);
                }
                ty @ (types::CONSENSUS_REACHED | types::CONSENSUS_FAILED) => {
                    let status = if ty == types::CONSENSUS_REACHED {
                        "reached"
                    } else {
                        "failed"
                    };
                    c.decided
                        .insert(query_id.to_owned(), (status, data(), r.recorded_at));
                }
                _ => {}
            }
        }
        c
    }

    async fn write(self, tx: &mut sqlx::PgConnection) -> Result<(), StoreError> {
        if !self.submitted.is_empty() {
            let col = |f: fn(&Submitted) -> String| -> Vec<String> {
                self.submitted.iter().map(f).collect()
            };
            let at: Vec<DateTime<Utc>> = self.submitted.iter().map(|s| s.at).collect();
            let deadline: Vec<Option<DateTime<Utc>>> =
                self.submitted.iter().map(|s| s.deadline).collect();
            sqlx::query(
                "INSERT INTO queries (query_id, stream_id, tenant, question, submitted_at, deadline_at)
                 SELECT q, s, t, x, a, coalesce(d, 'infinity')
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
                             $6::timestamptz[]) AS u(q, s, t, x, a, d)
                 ON CONFLICT (query_id) DO NOTHING",
            )
            .bind(col(|s| s.query_id.clone()))
            .bind(col(|s| s.stream_id.clone()))
            .bind(col(|s| s.tenant.clone()))
            .bind(col(|s| s.question.clone()))
            .bind(at)
            .bind(deadline)
            .execute(&mut *tx)
            .await?;
        }
        if !self.experts.is_empty() {
            let (ids, results): (Vec<String>, Vec<serde_json::Value>) = self
                .experts
                .into_iter()
                .map(|(id, m)| (id, serde_json::Value::Object(m)))
                .unzip();
            sqlx::query(
                "UPDATE queries q SET experts = q.experts || u.results
                 FROM UNNEST($1::text[], $2::jsonb[]) AS u(query_id, results)
                 WHERE q.query_id = u.query_id",
            )
            .bind(ids)
            .bind(results)
            .execute(&mut *tx)
            .await?;
        }
        if !self.decided.is_empty() {
            let mut ids = Vec::new();
            let mut statuses = Vec::new();
            let mut consensus = Vec::new();
            let mut at = Vec::new();
            for (id, (status, data, when)) in self.decided {
                ids.push(id);
                statuses.push(status);
                consensus.push(data);
                at.push(when);
            }
            sqlx::query(
                "UPDATE queries q SET status = u.status, consensus = u.consensus, decided_at = u.at
                 FROM UNNEST($1::text[], $2::text[], $3::jsonb[], $4::timestamptz[])
                   AS u(query_id, status, consensus, at)
                 WHERE q.query_id = u.query_id",
            )
            .bind(ids)
            .bind(statuses)
            .bind(consensus)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
}
