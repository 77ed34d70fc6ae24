//! The audit service's chainer: one writer at a time across replicas (a session advisory lock, which
//! holds no snapshot and so never holds back the watermark), reading the next batch while the last
//! one is hashed and inserted, and recording checkpoints as configured.

use std::time::{Duration, Instant};

use quorum_runtime::leader::Election;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::chainer::{self, Committed};
use crate::config::ChainConfig;

/// After a commit wakes the reader, it waits this long so that commits coming together are linked
/// in one batch rather than one small transaction each.
const COALESCE: Duration = Duration::from_millis(20);

/// Metric: links appended.
pub const LINKS_TOTAL: &str = "quorum_audit_links_total";

/// When to record the head as a checkpoint.
struct Checkpoints {
    since: u64,
    others_since: u64,
    last: Instant,
}

/// Links events until `shutdown`, one leader across replicas (the runtime's election helper);
/// after an error the next leader resumes from the chain's head.
pub async fn run(pool: PgPool, config: ChainConfig, shutdown: CancellationToken) {
    let election = Election {
        role: "audit chainer",
        lock: chainer::LOCK.to_owned(),
        retry: config.idle_poll,
    };
    election
        .run(pool.clone(), shutdown.clone(), move |mut conn| {
            let (pool, config, shutdown) = (pool.clone(), config.clone(), shutdown.clone());
            async move {
                // Counted from the start of each term: a new leader checkpoints on its own clock.
                let mut checkpoints = Checkpoints {
                    since: 0,
                    others_since: 0,
                    last: Instant::now(),
                };
                lead(&pool, &mut conn, &config, &shutdown, &mut checkpoints).await
            }
        })
        .await;
}

async fn sleep(shutdown: &CancellationToken, d: Duration) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(d) => {}
    }
}

/// Writes links while holding the lock on `conn`; a reader task reads ahead on the pool.
async fn lead(
    pool: &PgPool,
    conn: &mut sqlx::PgConnection,
    config: &ChainConfig,
    shutdown: &CancellationToken,
    checkpoints: &mut Checkpoints,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut head = chainer::head(&mut *conn).await?;
    let (tx, mut rx) = mpsc::channel(2);
    let stop = shutdown.child_token();
    let reader = tokio::spawn(read_ahead(
        pool.clone(),
        chainer::cursor(head.as_ref()),
        config.clone(),
        tx,
        stop.clone(),
    ));
    let _stop_reader = stop.clone().drop_guard();
    let store = quorum_event_store::EventStore::new(pool.clone());
    loop {
        let events: Vec<Committed> = tokio::select! {
            _ = shutdown.cancelled() => break,
            next = rx.recv() => match next {
                Some(Ok(e)) => e,
                Some(Err(e)) => return Err(e.into()),
                None => break,
            },
        };
        let links = chainer::link(
            head.as_ref(),
            &events,
            quorum_domain::types::AUDIT_CHECKPOINT,
        );
        chainer::insert(conn, &links).await?;
        ::metrics::counter!(LINKS_TOTAL).increment(links.len() as u64);
        head = links.head.clone();
        checkpoints.since += links.len() as u64;
        checkpoints.others_since += links.others as u64;
        let due = checkpoints.since >= config.checkpoint_every
            || (checkpoints.others_since > 0
                && checkpoints.last.elapsed() >= config.checkpoint_interval);
        if due && let Some(h) = &head {
            match crate::checkpoint(&store, h).await {
                Ok(()) => {
                    *checkpoints = Checkpoints {
                        since: 0,
                        others_since: 0,
                        last: Instant::now(),
                    };
                }
                Err(e) => warn!(error = %e, "audit checkpoint not recorded; will retry"),
            }
        }
    }
    stop.cancel();
    let _ = reader.await;
    Ok(())
}

/// Reads batches after `after` and hands them to the writer, waiting for commits when caught up.
async fn read_ahead(
    pool: PgPool,
    mut after: (u64, i64),
    config: ChainConfig,
    tx: mpsc::Sender<Result<Vec<Committed>, sqlx::Error>>,
    stop: CancellationToken,
) {
    // Woken at each commit of events (the relay's channel); the poll covers a lost notification.
    let mut listener = match PgListener::connect_with(&pool).await {
        Ok(mut l) => l.listen("quorum_events").await.ok().map(|()| l),
        Err(_) => None,
    };
    while !stop.is_cancelled() {
        let events = match chainer::read(&pool, after, config.batch).await {
            Ok(e) => e,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        let full = events.len() as i64 == config.batch;
        if let Some(last) = events.last() {
            after = (last.tx_id.parse().unwrap_or(0), last.row.position);
            if tx.send(Ok(events)).await.is_err() {
                return;
            }
        }
        if !full {
            idle(&stop, &mut listener, config.idle_poll).await;
        }
    }
}

async fn idle(stop: &CancellationToken, listener: &mut Option<PgListener>, poll: Duration) {
    tokio::select! {
        _ = stop.cancelled() => return,
        _ = tokio::time::sleep(poll) => return,
        _ = async {
            match listener {
                Some(l) => { let _ = l.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
    sleep(stop, COALESCE).await;
}
