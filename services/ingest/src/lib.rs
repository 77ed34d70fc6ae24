//! Ingest: accepts CloudEvents over HTTP and NATS, authenticates and validates them, and appends them
//! to the event store exactly once. Upstream systems are its users: what they send is stored once or
//! refused with a reason, never lost and never half-stored.

pub mod accept;
pub mod admission;
pub mod callout;
pub mod commit;
pub mod config;
pub mod http;
pub mod lookups;
pub mod metrics;
pub mod nats;
pub mod streams;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use quorum_auth::Authenticator;
use quorum_event_store::EventStore;
use quorum_runtime::consumer::{self, ConsumerConfig};
use quorum_runtime::{Readiness, Shutdown, spawn_vital};
use quorum_schemas::Schemas;
use tracing::info;

pub use config::IngestConfig;

impl quorum_runtime::service::ServiceConfig for IngestConfig {
    fn common(&self) -> &quorum_runtime::config::CommonConfig {
        &self.common
    }
}

/// A started ingest: where its API listens. Its tasks run on the [`Shutdown`] it was given.
#[derive(Debug, Clone, Copy)]
pub struct Running {
    pub http_addr: SocketAddr,
}

/// Connects, migrates, and starts the HTTP API, the `QUORUM_INGEST` consumer and (if configured)
/// a relay, each as a task of `shutdown`. They stop when its token is cancelled: the HTTP server
/// finishes the requests in flight, the consumer settles what it started, and the group committer
/// commits what it was handed before it returns.
pub async fn start(
    config: &IngestConfig,
    shutdown: &Shutdown,
    readiness: &Readiness,
) -> anyhow::Result<Running> {
    let pool = quorum_event_store::pool_options(config.common.database_connections)
        .connect(&config.common.database_url)
        .await
        .context("connect to Postgres")?;
    quorum_event_store::migrate(&pool)
        .await
        .context("migrate")?;
    let client = quorum_runtime::nats::connect_common(&config.common)
        .await
        .context("connect to NATS")?;
    let js = async_nats::jetstream::new(client.clone());
    // Found, or made if missing; only the relay and the operator may change them (ADR 27).
    quorum_bus::find_or_create_streams(&js).await?;
    // The server's limit, not an assumed one: an event whose message would exceed it is refused
    // here rather than stored and never published.
    let bounds = accept::Bounds {
        max_event_bytes: config.limits.max_event_bytes,
        max_message_bytes: client.server_info().max_payload,
    };
    readiness.add_postgres("postgres", pool.clone());
    readiness.add_nats("nats", client);

    let store = EventStore::new(pool.clone());
    let committer = commit::Committer::start(
        store.clone(),
        config.flow.group_max_events,
        config.flow.group_concurrency,
        config.flow.group_alone_from,
        &shutdown.tracker(),
    );
    let schemas = Arc::new(Schemas::new());
    let waiters = http::waiters::Waiters::new(
        config.waits.max_per_tenant,
        config.waits.recheck,
        shutdown.token(),
    );
    let wakeups = waiters.clone().listen(pool.clone(), shutdown.token());
    spawn_vital(shutdown, readiness, "wait listener", wakeups);
    let auth = Authenticator::start(pool.clone(), shutdown.token());
    // One admission for HTTP and NATS: a tenant's rate is the same budget whichever way it sends.
    let admission = admission::Admission::new(config);
    let app = http::App::new(http::Inner {
        auth: auth.clone(),
        admission: admission.clone(),
        committer: committer.clone(),
        schemas: schemas.clone(),
        store,
        limits: config.limits.clone(),
        bounds,
        waiters,
    });

    let http_addr = serve_api(config, app, shutdown, readiness).await?;
    if config.nats.enabled {
        let handler = nats::IngestHandler {
            committer: committer.clone(),
            admission,
            schemas,
            bounds,
        };
        spawn_nats_ingest(config, shutdown, readiness, &js, &pool, handler);
    }
    if config.nats_auth.issuer_seed.is_some() {
        spawn_callout(config, shutdown, readiness, auth)?;
    }
    if config.run_relay {
        spawn_relay(config, shutdown, readiness, pool, js).await?;
    }
    Ok(Running { http_addr })
}

/// Binds the HTTP API and serves it as a task of `shutdown`; returns where it listens.
async fn serve_api(
    config: &IngestConfig,
    app: http::App,
    shutdown: &Shutdown,
    readiness: &Readiness,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("listen on {}", config.http_addr))?;
    let http_addr = listener.local_addr()?;
    let server = quorum_http::serve(
        listener,
        http::router(app, config.flow.max_concurrent_requests),
        quorum_http::ServeLimits {
            buffer_bytes: config.limits.connection_buffer_bytes,
            ..quorum_http::ServeLimits::default()
        },
        shutdown.token(),
        "ingest",
    );
    spawn_vital(shutdown, readiness, "ingest api", server);
    info!(%http_addr, "ingest listening");
    Ok(http_addr)
}

/// The `QUORUM_INGEST` consumer: events upstream systems publish over NATS.
fn spawn_nats_ingest(
    config: &IngestConfig,
    shutdown: &Shutdown,
    readiness: &Readiness,
    js: &async_nats::jetstream::Context,
    pool: &sqlx::PgPool,
    handler: nats::IngestHandler,
) {
    let mut consumer_config = ConsumerConfig::new(nats::CONSUMER, vec![nats::FILTER.to_owned()]);
    consumer_config.stream = quorum_bus::INGEST_STREAM.to_owned();
    consumer_config.concurrency = config.nats.concurrency;
    consumer_config.max_deliver = nats::MAX_DELIVER;
    consumer::spawn(
        shutdown,
        readiness,
        js.clone(),
        pool.clone(),
        consumer_config,
        Arc::new(handler),
    );
}

/// The NATS auth callout responder, which lets upstream systems connect with their API keys.
fn spawn_callout(
    config: &IngestConfig,
    shutdown: &Shutdown,
    readiness: &Readiness,
    auth: Authenticator,
) -> anyhow::Result<()> {
    let decider = callout::Decider::new(&config.nats_auth, auth).map_err(anyhow::Error::msg)?;
    let responder = callout::run(
        config.common.nats_url.clone(),
        config.nats_auth.clone(),
        decider,
        // Not ready until it answers: upstream systems could not connect to NATS before.
        readiness.flag("nats auth callout"),
        shutdown.token(),
    );
    spawn_vital(shutdown, readiness, "nats auth callout", responder);
    Ok(())
}

/// The relay, run inside ingest. It publishes as its own NATS user when it has one: the only
/// user that may publish committed history, which ingest's own may not (ADR 27).
async fn spawn_relay(
    config: &IngestConfig,
    shutdown: &Shutdown,
    readiness: &Readiness,
    pool: sqlx::PgPool,
    js: async_nats::jetstream::Context,
) -> anyhow::Result<()> {
    let relay_js = match &config.relay.nats_user {
        Some(user) => async_nats::jetstream::new(
            quorum_runtime::nats::connect(
                &config.common.nats_url,
                Some(user),
                config.relay.nats_password.as_ref(),
            )
            .await
            .with_context(|| format!("connect to NATS as the relay's user {user}"))?,
        ),
        None => js,
    };
    let relay = quorum_relay::run(pool, relay_js, config.relay.clone(), shutdown.token());
    spawn_vital(shutdown, readiness, "relay", relay);
    Ok(())
}
