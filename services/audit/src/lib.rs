//! Audit: every stored event, in commit order, in a hash chain (`audit_chain`); the chain's head
//! recorded as `quorum.audit.checkpoint` events; `verify` to find the first broken link; `export` of
//! history with each record's link, for the CLI and, tenant-scoped, for auditors over HTTP.

pub mod canonical;
pub mod chainer;
pub mod config;
pub mod export;
pub mod http;
pub mod verify;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use quorum_domain::{Event, StreamId, TenantId, types};
use quorum_event_store::{EventStore, ExpectedVersion};
use quorum_runtime::{Readiness, Shutdown};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use chainer::Head;
use config::{AuditConfig, ChainConfig};

/// The stream of the chain's checkpoints.
pub const CHECKPOINT_STREAM: &str = "audit/chain";
const SOURCE: &str = "/quorum/audit";

/// Metric: links appended.
pub const LINKS_TOTAL: &str = "quorum_audit_links_total";

/// What [`start`] started.
pub struct Running {
    pub http_addr: SocketAddr,
}

/// Starts the chainer and the auditors' API as tasks of `shutdown`.
pub async fn start(
    config: &AuditConfig,
    pool: PgPool,
    shutdown: &Shutdown,
    readiness: &Readiness,
) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind(config.http_addr).await?;
    let http_addr = listener.local_addr()?;
    let auth = quorum_auth::Authenticator::start(pool.clone(), shutdown.token());
    let app = http::router(http::App {
        pool: pool.clone(),
        auth,
    });
    let token = shutdown.token();
    shutdown.spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(token.cancelled_owned())
            .await;
        if let Err(e) = served {
            warn!(error = %e, "audit api stopped");
        }
    });
    let ready = readiness.flag("audit chainer");
    ready.set(true);
    shutdown.spawn(run(pool, config.chain.clone(), shutdown.token()));
    Ok(Running { http_addr })
}

/// Links events until `shutdown`, recording checkpoints as configured. Replicas take turns per
/// batch (an advisory lock); errors are logged and retried, the chain only ever moves forward.
pub async fn run(pool: PgPool, config: ChainConfig, shutdown: CancellationToken) {
    let store = EventStore::new(pool.clone());
    // Woken at each commit of events (the relay's channel); the poll covers a lost notification.
    let mut listener = match PgListener::connect_with(&pool).await {
        Ok(mut l) => l.listen("quorum_events").await.ok().map(|()| l),
        Err(_) => None,
    };
    let mut since_checkpoint = 0u64;
    let mut others_since = 0u64;
    let mut last_checkpoint = Instant::now();
    while !shutdown.is_cancelled() {
        let linked = match chainer::step(&pool, config.batch, types::AUDIT_CHECKPOINT).await {
            Ok(l) => l,
            Err(e) => {
                warn!(error = %e, "audit chain step failed; retrying");
                idle(&shutdown, &mut None, Duration::from_secs(1)).await;
                continue;
            }
        };
        ::metrics::counter!(LINKS_TOTAL).increment(linked.links as u64);
        since_checkpoint += linked.links as u64;
        others_since += linked.others as u64;
        let due = since_checkpoint >= config.checkpoint_every
            || (others_since > 0 && last_checkpoint.elapsed() >= config.checkpoint_interval);
        if due && let Some(head) = &linked.head {
            match checkpoint(&store, head).await {
                Ok(()) => {
                    since_checkpoint = 0;
                    others_since = 0;
                    last_checkpoint = Instant::now();
                }
                Err(e) => warn!(error = %e, "audit checkpoint not recorded; will retry"),
            }
        }
        if linked.links < config.batch as usize {
            idle(&shutdown, &mut listener, config.idle_poll).await;
        }
    }
    info!("audit chainer stopped");
}

async fn idle(shutdown: &CancellationToken, listener: &mut Option<PgListener>, poll: Duration) {
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = tokio::time::sleep(poll) => {}
        _ = async {
            match listener {
                Some(l) => { let _ = l.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

/// Appends the head as a `quorum.audit.checkpoint`. Its id derives from the head's link number, so
/// two replicas recording the same head store it once.
async fn checkpoint(store: &EventStore, head: &Head) -> Result<(), quorum_event_store::StoreError> {
    let stream = StreamId::parse(CHECKPOINT_STREAM).expect("valid stream id");
    let data = serde_json::json!({
        "seq": head.seq,
        "position": head.position,
        "hash": hex::encode(head.hash),
    });
    let mut event = Event::new(
        SOURCE,
        types::AUDIT_CHECKPOINT,
        stream.clone(),
        TenantId::system(),
        Bytes::from(data.to_string()),
    );
    event.id = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("audit-checkpoint:{}", head.seq).as_bytes(),
    )
    .to_string();
    store
        .append(&stream, ExpectedVersion::Any, &[event])
        .await?;
    info!(seq = head.seq, position = head.position, "audit checkpoint");
    Ok(())
}
