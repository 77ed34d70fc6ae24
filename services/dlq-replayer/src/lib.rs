//! The dead-letter replayer: what consumers parked, for operators to inspect, replay or discard over
//! HTTP (`quorum dlq …`), each action an event; the pump that publishes replays at their rate; and a
//! watch on the dead-letter notices.

pub mod actions;
pub mod config;
pub mod http;
pub mod letters;
pub mod notices;
pub mod pump;

use std::net::SocketAddr;

use quorum_runtime::{Readiness, Shutdown, spawn_vital};
use sqlx::PgPool;

use config::DlqConfig;

/// What [`start`] started.
pub struct Running {
    pub http_addr: SocketAddr,
}

/// Starts the API, the pump and the notice watch as tasks of `shutdown`.
pub async fn start(
    config: &DlqConfig,
    pool: PgPool,
    js: async_nats::jetstream::Context,
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
        "dlq",
    );
    spawn_vital(shutdown, readiness, "dlq api", server);
    let pump = pump::run(pool, js.clone(), config.pump_poll, shutdown.token());
    spawn_vital(shutdown, readiness, "dead-letter pump", pump);
    let notices = notices::run(js, shutdown.token());
    spawn_vital(shutdown, readiness, "dead-letter notices", notices);
    Ok(Running { http_addr })
}
