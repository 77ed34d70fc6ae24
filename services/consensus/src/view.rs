//! The `queries` read model: a projection over every event in commit order. Each batch of rows is
//! committed with the projection's checkpoint, so a crash replays nothing twice and skips nothing;
//! rebuilding it is dropping the rows and the checkpoint. Each row carries its query's deadline,
//! which the deadline timer reads. An expert's result recorded after the consensus (a query
//! decided when a quorum agreed) is marked `late`.

use std::time::Duration;

use quorum_event_store::{
    CommitCursor, EventStore, KeptConnection, StoreError, Wake, keyed_plan_connection,
    load_consumer_checkpoint,
};
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::warn;

mod changes;
use changes::Changes;

/// The projection's checkpoint name.
pub const NAME: &str = "queries-view";
const BATCH: i64 = 500;
/// How often the projection looks when no notification came.
const POLL: Duration = Duration::from_millis(200);

/// Runs the projection until `shutdown`. Replicas may run side by side: each batch is written
/// with a move of the checkpoint from where its read started, so only one replica's write of a
/// batch applies, and the other reads on from where the winner left the checkpoint.
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
    // Connections kept for every round, so a round costs only its own statements; a failed round
    // drops them and the next takes fresh ones. Each keeps its generic plans on a connection of
    // its own: the read like the relay's (ADR 17), the write with plans held to key lookups
    // (ADR 41).
    let mut reader = KeptConnection::generic(pool.clone());
    let mut writer = KeptConnection::keyed(pool.clone());
    // Where the projection was after its last round: reads start there without loading the
    // checkpoint. Another replica may have moved the checkpoint further; the write finds out.
    let mut seen: Option<CommitCursor> = None;
    while !shutdown.is_cancelled() {
        wake.reading();
        let round = async {
            let r = reader.get().await?;
            let w = writer.get().await?;
            step(r, w, seen).await
        };
        match round.await {
            Ok(stepped) => {
                seen = Some(stepped.at);
                if stepped.more {
                    continue;
                }
                if stepped.held {
                    wake.held(stepped.applied > 0);
                } else {
                    wake.caught_up();
                }
            }
            Err(e) => {
                warn!(error = %e, "queries projection");
                reader.release();
                writer.release();
                seen = None;
                wake.held(false);
            }
        }
        let notified = async {
            match listener.as_mut() {
                Some(l) => l.try_recv().await.map(|_| ()),
                None => std::future::pending().await,
            }
        };
        let was_notified = tokio::select! {
            _ = shutdown.cancelled() => break,
            n = notified => match n {
                Ok(()) => true,
                Err(e) => {
                    warn!(error = %e, "queries projection polls: listener lost");
                    listener = None;
                    false
                }
            },
            _ = tokio::time::sleep(wake.wait()) => false,
        };
        if was_notified && let Some(l) = listener.as_mut() {
            wake.notified(l).await;
        }
    }
    reader.close().await;
    writer.close().await;
}

/// Drops the read model and builds it again from the first event. The checkpoint is deleted
/// first, in the same transaction as the rows: that takes the row every projection write moves,
/// so a running projection's write either commits before (and its rows are deleted here) or
/// waits and then finds the checkpoint gone and writes nothing. Batches are then applied here
/// until the model reaches the store's head (a running projection may apply some of them, which
/// is as good). `progress` gets the checkpoint's position.
pub async fn rebuild(pool: &PgPool, mut progress: impl FnMut(i64)) -> Result<(), StoreError> {
    let store = EventStore::new(pool.clone());
    let head = store.head().await?.map(|(c, _)| c);
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM consumer_checkpoints WHERE name = $1")
        .bind(NAME)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM queries").execute(&mut *tx).await?;
    tx.commit().await?;
    let mut reader = pool.acquire().await?;
    let mut writer = keyed_plan_connection(pool).await?;
    let result = async {
        loop {
            let stepped = step(&mut reader, &mut writer, None).await?;
            progress(stepped.at.position);
            if !stepped.more {
                if head.is_none_or(|h| stepped.at >= h) {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    .await;
    let _ = writer.close().await;
    result
}

/// One round: reads the next batch after `seen` (the checkpoint when `None`) on `reader`, and
/// applies it on `writer`, a [`keyed_plan_connection`]: the write is a prepared statement whose
/// generic plan must be key lookups.
///
/// A round that finds nothing is that one read. A batch is folded into row changes and written
/// with the checkpoint in one statement, so no transaction stays open across round trips (every
/// commit-order reader, the relay first, waits behind an open one). If the checkpoint is not
/// where the read started (another replica applied those events, or a rebuild reset it),
/// nothing is written and the round reports where it is.
pub async fn step(
    reader: &mut PgConnection,
    writer: &mut PgConnection,
    seen: Option<CommitCursor>,
) -> Result<Stepped, StoreError> {
    let after = match seen {
        Some(at) => at,
        None => load_consumer_checkpoint(&mut *writer, NAME).await?,
    };
    let read = EventStore::read_committed_on(reader, after, BATCH).await?;
    for u in &read.unreadable {
        // The relay parks it as a dead letter of its own; the read model passes over it.
        warn!(position = u.cursor.position, reason = %u.reason, "queries projection skips an unreadable event");
    }
    let rows = read.events.len() + read.unreadable.len();
    let Some(last) = read.last else {
        return Ok(Stepped {
            applied: 0,
            at: after,
            more: false,
            held: read.held,
        });
    };
    if !Changes::fold(&read.events)
        .write(writer, after, last)
        .await?
    {
        // Another replica applied these, or a rebuild started over: read on from where it is.
        return Ok(Stepped {
            applied: 0,
            at: load_consumer_checkpoint(&mut *writer, NAME).await?,
            more: true,
            held: false,
        });
    }
    Ok(Stepped {
        applied: read.events.len(),
        at: last,
        more: rows as i64 == BATCH,
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
    /// Events wait behind the watermark: read again soon even without a notification.
    pub held: bool,
}

impl Changes {
    /// Writes the batch read after `after` and moves the checkpoint to `to`, in one statement:
    /// atomic by itself, one round trip. The checkpoint moves only from where the read started
    /// (or is created, for a read from the start); otherwise another replica or a rebuild moved
    /// it, and nothing is written. Returns whether it was written.
    ///
    /// The sub-statements of one statement do not see each other's rows, so a query submitted in
    /// this batch is inserted with its results and decision from this batch, and the update
    /// touches only rows that were there before. It runs its generic plan on a connection that
    /// holds plans to key lookups (ADR 41).
    ///
    /// The same statement notifies `quorum_queries` with the ids of the rows it changed, space
    /// separated, in payloads under Postgres's 8000-byte limit (ids over 200 bytes are left out:
    /// their waiters find the change by their slow re-check). An id whose change is not a
    /// decision (the row added, an expert's result) ends in `~`: a `?wait=` that waits only for
    /// the decision is not woken by it, while `/watch` is woken by every change. A notification
    /// is delivered at commit, so a waiter it wakes (ingest's `?wait=` and `/watch`, ADR 22) reads
    /// the row as written; the notification cannot leave before the row, nor be sent for a write
    /// that lost.
    async fn write(
        self,
        conn: &mut PgConnection,
        after: CommitCursor,
        to: CommitCursor,
    ) -> Result<bool, StoreError> {
        let k = self.columns();
        let (written, _notified): (i64, i64) = sqlx::query_as(
            "WITH moved AS (
                 UPDATE consumer_checkpoints
                 SET tx_id = $2::text::xid8, position = $3, updated_at = now()
                 WHERE name = $1 AND tx_id = $4::text::xid8 AND position = $5
                 RETURNING 1
             ), started AS (
                 INSERT INTO consumer_checkpoints (name, tx_id, position, updated_at)
                 SELECT $1, $2::text::xid8, $3, now() WHERE $4 = '0' AND $5 = 0
                 ON CONFLICT (name) DO NOTHING
                 RETURNING 1
             ), won AS (
                 SELECT 1 FROM moved UNION ALL SELECT 1 FROM started
             ), new AS (
                 INSERT INTO queries (query_id, stream_id, tenant, question, submitted_at,
                                      deadline_at, experts, status, consensus, decided_at)
                 SELECT q, s, t, x, a, coalesce(d, 'infinity'), e, coalesce(st, 'pending'), c, da
                 FROM UNNEST($6::text[], $7::text[], $8::text[], $9::text[], $10::timestamptz[],
                             $11::timestamptz[], $12::jsonb[], $13::text[], $14::jsonb[],
                             $15::timestamptz[]) AS u(q, s, t, x, a, d, e, st, c, da)
                 WHERE EXISTS (SELECT 1 FROM won)
                 ON CONFLICT (query_id) DO UPDATE SET
                     experts = queries.experts || EXCLUDED.experts,
                     status = CASE WHEN EXCLUDED.status = 'pending' THEN queries.status
                                   ELSE EXCLUDED.status END,
                     consensus = coalesce(EXCLUDED.consensus, queries.consensus),
                     decided_at = coalesce(EXCLUDED.decided_at, queries.decided_at)
             ), old AS (
                 UPDATE queries q SET
                     experts = q.experts || CASE WHEN q.status = 'pending' THEN u.e ELSE
                         coalesce((SELECT jsonb_object_agg(k, v || jsonb_build_object('late', true))
                                   FROM jsonb_each(u.e) AS x(k, v)), '{}') END,
                     status = coalesce(u.st, q.status),
                     consensus = coalesce(u.c, q.consensus),
                     decided_at = coalesce(u.da, q.decided_at)
                 FROM UNNEST($16::text[], $17::jsonb[], $18::text[], $19::jsonb[],
                             $20::timestamptz[]) AS u(q, e, st, c, da)
                 WHERE q.query_id = u.q AND EXISTS (SELECT 1 FROM won)
             ), ids AS (
                 SELECT q || CASE WHEN coalesce(st, 'pending') = 'pending' THEN '~' ELSE '' END AS q,
                        sum(octet_length(q) + 2) OVER (ORDER BY n) AS upto
                 FROM UNNEST($6::text[] || $16::text[], $13::text[] || $18::text[])
                      WITH ORDINALITY AS x(q, st, n)
                 WHERE octet_length(q) <= 200
             ), notified AS (
                 SELECT pg_notify('quorum_queries', string_agg(q, ' '))
                 FROM ids WHERE EXISTS (SELECT 1 FROM won)
                 GROUP BY upto / 7000
             )
             SELECT (SELECT count(*) FROM won), (SELECT count(*) FROM notified)",
        )
        .bind(NAME)
        .bind(to.tx_id.to_string())
        .bind(to.position)
        .bind(after.tx_id.to_string())
        .bind(after.position)
        .bind(k.new_ids)
        .bind(k.streams)
        .bind(k.tenants)
        .bind(k.questions)
        .bind(k.submitted_at)
        .bind(k.deadlines)
        .bind(k.new_experts)
        .bind(k.new_status)
        .bind(k.new_consensus)
        .bind(k.new_decided_at)
        .bind(k.old_ids)
        .bind(k.old_experts)
        .bind(k.old_status)
        .bind(k.old_consensus)
        .bind(k.old_decided_at)
        .fetch_one(&mut *conn)
        .await?;
        Ok(written == 1)
    }
}
