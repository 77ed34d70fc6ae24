//! Audit: every stored event, in commit order, in a hash chain (`audit_chain`); the chain's head
//! recorded as `quorum.audit.checkpoint` events; `verify` to find the first broken link; `export` of
//! history with each record's link, for the CLI and, tenant-scoped, for auditors over HTTP.

pub mod canonical;
pub mod chainer;
pub mod config;
pub mod export;
pub mod http;
mod lead;
pub mod verify;

use std::net::SocketAddr;

use bytes::Bytes;
use quorum_domain::{Event, StreamId, TenantId, types};
use quorum_event_store::{EventStore, ExpectedVersion};
use quorum_runtime::{Readiness, Shutdown, spawn_vital};
use sqlx::PgPool;
use tracing::info;

use chainer::Head;
use config::AuditConfig;

/// The stream of the chain's checkpoints.
pub const CHECKPOINT_STREAM: &str = "audit/chain";
const SOURCE: &str = "/quorum/audit";

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
    let server = quorum_http::serve(
        listener,
        app,
        quorum_http::ServeLimits::default(),
        shutdown.token(),
        "audit",
    );
    spawn_vital(shutdown, readiness, "audit api", server);
    let chainer = run(pool, config.chain.clone(), shutdown.token());
    spawn_vital(shutdown, readiness, "audit chainer", chainer);
    Ok(Running { http_addr })
}

pub use lead::{LINKS_TOTAL, run};

/// Appends the head as a `quorum.audit.checkpoint`. Its id derives from the head's link number, so
/// two replicas recording the same head store it once.
pub(crate) async fn checkpoint(
    store: &EventStore,
    head: &Head,
) -> Result<(), quorum_event_store::StoreError> {
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
