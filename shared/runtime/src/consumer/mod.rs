//! The consumer loop every service runs: a durable pull consumer, messages of one event stream handled
//! in order and different streams in parallel, in-progress acks for long handlers, and every outcome
//! settled in one place (`settle`).

mod config;
pub mod lag;
mod lanes;
mod outcome;
mod settle;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::PullConsumer};
use futures::{FutureExt, StreamExt};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub use config::ConsumerConfig;
pub use outcome::{Delivery, Handler, Outcome};
pub use settle::REPLAY_OF_HEADER;

use crate::{Readiness, Shutdown, spawn_vital};
use lanes::Lanes;
use settle::Settler;

/// On shutdown, naks the messages fetched but not started, so another replica gets them now rather
/// than after `ack_wait`.
async fn give_back_fetched(messages: &mut jetstream::consumer::pull::Stream) {
    while let Some(Some(Ok(msg))) = messages.next().now_or_never() {
        settle::give_back(&msg).await;
    }
}

/// Why a consumer could not start.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("cannot set up consumer {name}: {reason}")]
    Setup { name: String, reason: String },
}

/// Runs [`run`] as the vital task `<name> consumer` of `shutdown`: `/readyz` waits until the
/// consumer is bound, and a consumer that ends before shutdown (it could not be set up, or it
/// panicked) makes the process not live, so it is restarted (see [`crate::vital`]).
pub fn spawn<H: Handler>(
    shutdown: &Shutdown,
    readiness: &Readiness,
    js: jetstream::Context,
    pool: PgPool,
    config: ConsumerConfig,
    handler: Arc<H>,
) {
    let task = format!("{} consumer", config.name);
    let bound = readiness.flag(task.clone());
    let token = shutdown.token();
    // The lag is reported once the consumer exists on the server, from then on.
    let reporter = shutdown.clone();
    let lag = lag::report(
        js.clone(),
        config.stream.clone(),
        config.name.clone(),
        token.clone(),
    );
    spawn_vital(shutdown, readiness, &task, async move {
        run(js, pool, config, handler, token, move || {
            bound.set(true);
            reporter.spawn(lag);
        })
        .await
    });
}

/// The streams and this durable consumer, created if missing (creating an existing one with the
/// same settings returns it).
async fn bind(js: &jetstream::Context, config: &ConsumerConfig) -> Result<PullConsumer, String> {
    quorum_bus::find_or_create_streams(js)
        .await
        .map_err(|e| e.to_string())?;
    js.get_stream(&config.stream)
        .await
        .map_err(|e| e.to_string())?
        .create_consumer(config.jetstream())
        .await
        .map_err(|e| e.to_string())
}

/// After a pause, binds again until it succeeds; `false` once `shutdown` is cancelled.
async fn rebind(
    js: &jetstream::Context,
    config: &ConsumerConfig,
    consumer: &mut PullConsumer,
    shutdown: &CancellationToken,
) -> bool {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        match bind(js, config).await {
            Ok(bound) => {
                *consumer = bound;
                return true;
            }
            Err(error) => warn!(consumer = %config.name, %error, "cannot bind; retrying"),
        }
    }
}

/// Runs `handler` on the durable consumer `config` until `shutdown`. On shutdown it stops fetching,
/// naks what it fetched but did not start (so another replica takes it at once), lets every message
/// being handled finish and settle, and returns. Transient NATS errors are retried, not returned.
///
/// `on_bound` is called once the consumer exists on the server (for readiness).
pub async fn run<H: Handler>(
    js: jetstream::Context,
    pool: PgPool,
    config: ConsumerConfig,
    handler: Arc<H>,
    shutdown: CancellationToken,
    on_bound: impl FnOnce() + Send,
) -> Result<(), ConsumerError> {
    let setup = |reason: String| ConsumerError::Setup {
        name: config.name.clone(),
        reason,
    };
    let mut consumer = bind(&js, &config).await.map_err(setup)?;
    on_bound();
    info!(consumer = %config.name, concurrency = config.concurrency, "consumer bound");
    let settler = Arc::new(Settler {
        js: js.clone(),
        pool,
        consumer: config.name.clone(),
        max_deliver: config.max_deliver,
        notify: config.notify_dead_letters,
    });
    let lanes = Lanes::start(&config, handler, settler, &shutdown);
    // Fetch a little ahead of what the lanes can take: enough to keep them busy, no more, since a
    // fetched message waits for a lane while its ack_wait runs.
    let batch = (config.concurrency * 2).max(1);
    'outer: while !shutdown.is_cancelled() {
        let mut messages = match consumer
            .stream()
            .max_messages_per_batch(batch)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
        {
            Ok(m) => m,
            Err(e) => {
                warn!(consumer = %config.name, error = %e, "cannot fetch; binding again");
                if !rebind(&js, &config, &mut consumer, &shutdown).await {
                    break;
                }
                continue;
            }
        };
        loop {
            let msg = tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    give_back_fetched(&mut messages).await;
                    break 'outer;
                }
                next = messages.next() => match next {
                    Some(Ok(msg)) => msg,
                    Some(Err(e)) => {
                        // Missed heartbeats or no responders: the server restarted, and may have
                        // lost the consumer or its stream with its store. Bind again (creating
                        // them if they are gone), or this loop would wait on nothing forever.
                        warn!(consumer = %config.name, error = %e, "fetch error; binding again");
                        give_back_fetched(&mut messages).await;
                        if !rebind(&js, &config, &mut consumer, &shutdown).await {
                            break 'outer;
                        }
                        continue 'outer;
                    }
                    None => continue 'outer,
                },
            };
            if let Err(unstarted) = lanes.dispatch(msg, &shutdown).await {
                settle::give_back(&unstarted).await;
                give_back_fetched(&mut messages).await;
                break 'outer;
            }
        }
    }
    info!(consumer = %config.name, "consumer draining");
    lanes.drain().await;
    // Acks are sent without waiting for the server: send what is buffered before saying stopped,
    // so a clean stop redelivers nothing it handled.
    if let Err(e) = js.client().flush().await {
        warn!(consumer = %config.name, error = %e, "acks not flushed; expect redeliveries");
    }
    info!(consumer = %config.name, "consumer stopped");
    Ok(())
}
