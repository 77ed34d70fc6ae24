//! The consumer runtime against real NATS and Postgres: dead letters, retries and panics
//! (`failures`), per-stream order and long handlers (`order`), and a store that goes away (`store`).

mod failures;
mod order;
mod store;

use std::sync::Arc;

use quorum_e2e::{Env, SOURCE_TYPE};
use quorum_runtime::consumer::{self, ConsumerConfig, Handler};

pub(super) fn config(name: &str) -> ConsumerConfig {
    let mut c = ConsumerConfig::new(
        name,
        vec![quorum_bus::subjects::event_type_filter(SOURCE_TYPE)],
    );
    c.max_deliver = 4;
    c.concurrency = 8;
    c
}

pub(super) fn start<H: Handler>(
    env: &Env,
    config: ConsumerConfig,
    handler: H,
) -> tokio::task::JoinHandle<()> {
    let (js, pool, shutdown) = (env.js.clone(), env.db.pool.clone(), env.shutdown.clone());
    tokio::spawn(async move {
        consumer::run(js, pool, config, Arc::new(handler), shutdown, || {})
            .await
            .expect("consumer runs");
    })
}
