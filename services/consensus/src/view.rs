//! The `queries` read model: a projection over every event in commit order. Each batch of rows is
//! committed with the projection's checkpoint, so a crash replays nothing twice and skips nothing;
//! rebuilding it is dropping the rows and the checkpoint.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use quorum_domain::types;
use quorum_event_store::{
    CommitCursor, EventStore, RecordedEvent, StoreError, Wake, load_consumer_checkpoint,
    save_consumer_checkpoint,
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::warn;

/// The projection's checkpoint name.
pub const NAME: &str = "queries-view";
const BATCH: i64 = 500;
/// How often the projection looks when no notification came.
const POLL: Duration = Duration::from_millis(200);

/// Runs the projection until `shutdown`. Replicas take turns: a batch runs under a transaction
/// advisory lock, and whoever does not get it waits for the next round.
pub async fn run(pool: PgPool, shutdown: CancellationToken) {
    let store = EventStore::new(pool.clone());
    // Woken by each append's notification, polling as a fallback (a lost listener connection).
    let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await.ok();
    if let Some(l) = listener.as_mut()
        && let Err(e) = l.listen("quorum_events").await
    {
        warn!(error = %e, "queries projection polls: cannot listen");
        listener = None;
    }
    let mut wake = Wake::new(POLL);
    // Where the projection was after its last step: an empty poll is then one short read, not a
    // transaction. Another replica may have moved the checkpoint further; the step finds out.
    let mut seen: Option<CommitCursor> = None;
    while !shutdown.is_cancelled() {
        let new = match seen {
            Some(at) => store.read_committed(at, 1).await.map(|e| !e.is_empty()),
            None => Ok(true),
        };
        let idle = match new {
            Ok(false) => true,
            Ok(true) => match step(&pool, &store).await {
                Ok(Stepped { applied, at }) => {
                    seen = at;
                    applied == 0
                }
                Err(e) => {
                    warn!(error = %e, "queries projection");
                    true
                }
            },
            Err(e) => {
                warn!(error = %e, "queries projection");
                true
            }
        };
        if !idle {
            wake.active();
            continue;
        }
        let notified = async {
            match listener.as_mut() {
                Some(l) => l.try_recv().await.map(|_| ()),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            n = notified => match n {
                Ok(()) => wake.active(),
                Err(e) => {
                    warn!(error = %e, "queries projection polls: listener lost");
                    listener = None;
                }
            },
            _ = tokio::time::sleep(wake.wait()) => {}
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
    loop {
        let applied = step(pool, &store).await?.applied;
        let at = load_consumer_checkpoint(pool, NAME).await?;
        progress(at.position);
        if applied == 0 {
            if head.is_none_or(|h| at >= h) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Applies the next batch; returns how many events it read. The batch is read and folded into
/// row changes first, then written in three statements: the transaction holds a transaction id
/// only briefly, and every commit-order reader (the relay first) waits behind an open one.
pub async fn step(pool: &PgPool, store: &EventStore) -> Result<Stepped, StoreError> {
    let mut tx = pool.begin().await?;
    let locked: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(NAME)
            .fetch_one(&mut *tx)
            .await?;
    if !locked {
        return Ok(Stepped {
            applied: 0,
            at: None,
        });
    }
    let after: CommitCursor = load_consumer_checkpoint(&mut *tx, NAME).await?;
    let events = store.read_committed(after, BATCH).await?;
    let Some(last) = events.last().map(RecordedEvent::cursor) else {
        return Ok(Stepped {
            applied: 0,
            at: Some(after),
        });
    };
    Changes::fold(&events).write(&mut tx).await?;
    save_consumer_checkpoint(&mut *tx, NAME, last).await?;
    tx.commit().await?;
    Ok(Stepped {
        applied: events.len(),
        at: Some(last),
    })
}

/// What a step did: events applied, and the checkpoint after it (none when another replica held
/// the projection).
pub struct Stepped {
    pub applied: usize,
    pub at: Option<CommitCursor>,
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
            sqlx::query(
                "INSERT INTO queries (query_id, stream_id, tenant, question, submitted_at)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
                 ON CONFLICT (query_id) DO NOTHING",
            )
            .bind(col(|s| s.query_id.clone()))
            .bind(col(|s| s.stream_id.clone()))
            .bind(col(|s| s.tenant.clone()))
            .bind(col(|s| s.question.clone()))
            .bind(at)
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
