//! The one `LISTEN` of a process's waits: each notification of the `queries` projection wakes the
//! waiters of the queries it names, and the rows of those decided are read once, in one
//! statement, and handed to every waiter they wake. A lost connection is replaced, and every
//! waiter then reads again, since what changed meanwhile was notified to nobody.
//!
//! The rows are read on a connection the listener keeps, which runs the statement's generic plan,
//! a probe of the primary key per id (ADR 44). Through the pool, most reads were planned anew:
//! Postgres plans a prepared statement's first five runs on each connection for their values,
//! and then keeps doing so when those plans looked cheaper than the generic one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use quorum_event_store::KeptConnection;
use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::{CHANNEL, Read, Waiters};

impl Waiters {
    /// The decisions in a notification's payload that this process waits for.
    pub(super) fn waited_decisions(&self, payload: &str) -> Vec<String> {
        let state = self.state();
        tokens(payload)
            .filter(|&(id, decision)| decision && state.queries.contains_key(id))
            .map(|(id, _)| id.to_owned())
            .collect()
    }

    /// Wakes the waiters of each id in a notification's payload, handing those of a decision its
    /// row from `rows` (read after the notification arrived) when it is there.
    pub(super) fn wake(&self, payload: &str, rows: &mut HashMap<String, Read>) {
        let mut guard = self.state();
        let state = &mut *guard;
        for (id, decision) in tokens(payload) {
            if decision {
                state.fresh.decided(id);
            }
            if let Some(changes) = state.queries.get(id) {
                let row = rows.remove(id).map(Arc::new);
                changes.send_modify(|news| {
                    news.decisions += u64::from(decision);
                    news.row = row;
                });
            }
        }
    }

    /// The listener (re)subscribed: wakes every waiter, since what changed while nobody listened
    /// was notified to nobody, a decision included; from now on every decision is seen here.
    pub(super) fn wake_all(&self) {
        let mut state = self.state();
        state.fresh.listening(true);
        for changes in state.queries.values() {
            changes.send_modify(|news| {
                news.decisions += 1;
                news.row = None;
            });
        }
    }

    /// Reads, in one statement on `reader`, the rows of the decided queries in `payload` that
    /// this process waits for. Nothing when the read fails: each waiter then reads its own.
    async fn read_decided(
        &self,
        reader: &mut KeptConnection,
        payload: &str,
    ) -> HashMap<String, Read> {
        let ids = self.waited_decisions(payload);
        if ids.is_empty() {
            return HashMap::new();
        }
        let rows = async {
            sqlx::query_as::<_, (String, String, Value)>(crate::lookups::QUERY_VIEWS)
                .bind(&ids)
                .bind(crate::lookups::TIME_FORMAT)
                .fetch_all(reader.get().await?)
                .await
        };
        match rows.await {
            Ok(rows) => rows
                .into_iter()
                .map(|(id, tenant, view)| (id, Read { tenant, view }))
                .collect(),
            Err(e) => {
                debug!(error = %e, "query waits read their rows themselves");
                reader.release();
                HashMap::new()
            }
        }
    }

    /// Listens on [`CHANNEL`] until `shutdown`, and wakes the waiters of each notified query. A
    /// lost connection is replaced (after a pause that grows while connecting fails), and every
    /// waiter then reads again.
    pub async fn listen(self, pool: PgPool, shutdown: CancellationToken) {
        let mut pause = Duration::from_millis(100);
        let mut reader = KeptConnection::generic(pool.clone());
        while !shutdown.is_cancelled() {
            let subscribed = tokio::select! {
                _ = shutdown.cancelled() => break,
                l = subscribe(&pool) => l,
            };
            let mut listener = match subscribed {
                Ok(l) => l,
                Err(e) => {
                    warn!(error = %e, "query waits re-check slowly: cannot listen");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(self.0.recheck).min(Duration::from_secs(5));
                    continue;
                }
            };
            pause = Duration::from_millis(100);
            self.wake_all();
            loop {
                let received = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    r = listener.try_recv() => r,
                };
                match received {
                    Ok(Some(n)) => {
                        let mut rows = self.read_decided(&mut reader, n.payload()).await;
                        self.wake(n.payload(), &mut rows);
                    }
                    Ok(None) => {
                        warn!("query waits listen again: the listener's connection was lost");
                        break;
                    }
                    Err(e) => {
                        warn!(error = %e, "query waits listen again");
                        break;
                    }
                }
            }
            // Decisions made until the next subscription reach nobody.
            self.state().fresh.listening(false);
        }
        reader.close().await;
    }
}

/// A payload's query ids, each with whether its change is a decision (no `~` mark).
fn tokens(payload: &str) -> impl Iterator<Item = (&str, bool)> {
    payload
        .split(' ')
        .map(|token| match token.strip_suffix('~') {
            Some(id) => (id, false),
            None => (token, true),
        })
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    debug!(channel = CHANNEL, "query waits listening");
    Ok(listener)
}
