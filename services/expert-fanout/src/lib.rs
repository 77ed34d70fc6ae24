//! Expert fan-out: for each submitted query, asks every selected expert concurrently and appends one
//! `quorum.expert.responded` or `quorum.expert.failed` per expert to the query's stream.
//!
//! This session's scope (issue 4, in progress): the scripted provider, a timeout per call, and
//! exactly-once results per expert. Providers over HTTP, retries, breakers and rate limits come next.

pub mod breaker;
pub mod config;
pub mod handler;
pub mod provider;
pub mod scripted;

use std::sync::Arc;

use quorum_event_store::EventStore;
use quorum_runtime::consumer::{self, ConsumerConfig};
use quorum_runtime::{Readiness, Shutdown};
use sqlx::PgPool;

pub use config::{ExpertConfig, default_experts};

/// The durable consumer's name, shared by replicas.
pub const CONSUMER: &str = "expert-fanout";

/// Starts the consumer as a task of `shutdown`.
pub fn start(
    pool: PgPool,
    js: async_nats::jetstream::Context,
    experts: Vec<ExpertConfig>,
    shutdown: &Shutdown,
    readiness: &Readiness,
) {
    let handler = Arc::new(handler::Fanout::new(EventStore::new(pool.clone()), experts));
    let mut config = ConsumerConfig::new(
        CONSUMER,
        vec![quorum_bus::subjects::event_type_filter(
            quorum_domain::types::QUERY_SUBMITTED,
        )],
    );
    // Experts answer slowly; many queries are asked at once.
    config.concurrency = 64;
    let bound = readiness.flag("expert-fanout consumer");
    let token = shutdown.token();
    shutdown.spawn(async move {
        if let Err(e) =
            consumer::run(js, pool, config, handler, token, move || bound.set(true)).await
        {
            tracing::error!(error = %e, "expert-fanout consumer failed");
        }
    });
}
