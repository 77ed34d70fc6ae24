//! Expert fan-out: for each submitted query, asks every selected expert concurrently and appends one
//! `quorum.expert.responded` or `quorum.expert.failed` per expert to the query's stream.
//! The experts themselves, and the layers around each call, are in `quorum-experts`.

pub mod breakers;
pub mod config;
pub mod handler;

use std::sync::Arc;

use quorum_event_store::{Batcher, EventStore};
use quorum_runtime::consumer::{self, ConsumerConfig};
use quorum_runtime::{Readiness, Shutdown};
use sqlx::PgPool;

pub use quorum_experts::{ExpertConfig, default_experts};

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
    let store = Batcher::start(EventStore::new(pool.clone()), &shutdown.tracker());
    let handler = Arc::new(handler::Fanout::new(store, experts));
    shutdown.spawn(breakers::report(
        pool.clone(),
        handler.panel.clone(),
        shutdown.token(),
    ));
    let mut config = ConsumerConfig::new(
        CONSUMER,
        vec![quorum_bus::subjects::event_type_filter(
            quorum_domain::types::QUERY_SUBMITTED,
        )],
    );
    // Experts answer slowly; many queries are asked at once.
    config.concurrency = 64;
    consumer::spawn(shutdown, readiness, js, pool, config, handler);
}
