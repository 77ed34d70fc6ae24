//! The one leader-election helper: loops that must run once across every replica (the relay, the
//! audit chainer, the dead-letter pump) lead under a Postgres session advisory lock held on a
//! connection of their own.
//!
//! A session lock holds no snapshot, so it never holds back the relay's watermark (ADR 2), and it
//! needs no lease: when the leader's process dies, its connection closes and Postgres frees the
//! lock, so a follower takes over within one retry interval. A term runs in a task of its own, so
//! a panic ends the term, not the loop, which competes for the lock again as after any error.

use std::future::Future;
use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::metrics as names;
use crate::vital::panic_message;

/// The longest pause between terms after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Why a term failed, for the log.
pub type TermError = Box<dyn std::error::Error + Send + Sync>;

/// One leader-elected loop.
#[derive(Clone, Debug)]
pub struct Election {
    /// What leads (`relay`, `audit chainer`): the metrics' `loop` label and the logs' name.
    pub role: &'static str,
    /// The advisory lock's key, hashed by Postgres; loops of one key elect one leader.
    pub lock: String,
    /// How often a follower tries the lock, and the pause after a term that ended.
    pub retry: Duration,
}

impl Election {
    /// Runs until `shutdown`: takes the lock when it is free and runs `term` with the connection
    /// that holds it. A term returns `Ok` when it lets go on its own (on shutdown, or when it has
    /// nothing to do, so that another replica may lead); the connection is then closed, which
    /// releases the lock. After an error or a panic the next attempt backs off, doubling up to
    /// ten seconds.
    ///
    /// The term must check, before each write that relies on leading, that its connection still
    /// answers ([`still_leader`]): a connection Postgres dropped has lost the lock with it.
    pub async fn run<F, Fut>(self, pool: PgPool, shutdown: CancellationToken, mut term: F)
    where
        F: FnMut(PgConnection) -> Fut,
        Fut: Future<Output = Result<(), TermError>> + Send + 'static,
    {
        let role = self.role;
        let mut backoff = self.retry;
        // Whether the last term ended by letting go: a loop that leads again at once (the pump,
        // between jobs) says so once, not at every term.
        let mut let_go = false;
        while !shutdown.is_cancelled() {
            match self.try_lock(&pool).await {
                Ok(Some(conn)) => {
                    if !let_go {
                        info!(role, "leading");
                    }
                    ::metrics::gauge!(names::LEADER, names::LABEL_LOOP => role).set(1.0);
                    let ended = tokio::spawn(term(conn)).await;
                    ::metrics::gauge!(names::LEADER, names::LABEL_LOOP => role).set(0.0);
                    let_go = matches!(ended, Ok(Ok(())));
                    match ended {
                        Ok(Ok(())) => backoff = self.retry,
                        Ok(Err(e)) => {
                            warn!(role, error = %crate::error_chain(&*e), "stopped leading");
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                        }
                        Err(join) => {
                            let why = match join.try_into_panic() {
                                Ok(panic) => panic_message(&*panic).to_owned(),
                                Err(join) => join.to_string(),
                            };
                            tracing::error!(role, panic = %why, "a term panicked; leading again");
                            ::metrics::counter!(names::LEADER_PANICS_TOTAL, names::LABEL_LOOP => role)
                                .increment(1);
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                        }
                    }
                }
                Ok(None) => let_go = false,
                Err(e) => {
                    let_go = false;
                    warn!(role, error = %e, "cannot try the leader lock");
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(backoff) => {}
            }
        }
        info!(role, "stopped");
    }

    /// A connection of its own holding the lock, or `None` when another process leads.
    async fn try_lock(&self, pool: &PgPool) -> Result<Option<PgConnection>, sqlx::Error> {
        // The statements a leader runs on this connection (commit-order reads, checkpoints, the
        // liveness check) plan as index lookups: their generic plans are safe to keep.
        let mut conn = quorum_event_store::generic_plan_connection(pool).await?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
            .bind(&self.lock)
            .fetch_one(&mut conn)
            .await?;
        if got {
            return Ok(Some(conn));
        }
        let _ = conn.close().await;
        Ok(None)
    }
}

/// Whether the connection that took the lock still answers, so the lock is still held.
pub async fn still_leader(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(conn).await.map(|_| ())
}
