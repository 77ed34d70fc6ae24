//! What every service binary does, once: read its config, start telemetry, handle signals, connect,
//! serve `/livez`, `/readyz` and `/metrics`, run until SIGTERM/SIGINT, and drain within the grace
//! period. A service's `main.rs` is one call to [`main`].

use std::future::Future;
use std::process::ExitCode;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::PgPool;

use crate::config::{CommonConfig, Validate, load_validated};
use crate::{Readiness, Shutdown, admin, metrics, telemetry};

pub mod args;

/// A service's config: it embeds the [`CommonConfig`].
pub trait ServiceConfig: DeserializeOwned + Serialize + Default + Validate {
    fn common(&self) -> &CommonConfig;
}

/// What a running service was given: its connections, and where to report readiness.
pub struct Context {
    pub pool: PgPool,
    pub nats: async_nats::Client,
    pub js: async_nats::jetstream::Context,
    pub shutdown: Shutdown,
    pub readiness: Readiness,
}

/// Connects to the stack `common` names (as its NATS user), applies migrations, and finds the
/// streams (making any that is missing).
pub async fn connect(common: &CommonConfig) -> Result<(PgPool, async_nats::Client), String> {
    let pool = quorum_event_store::pool_options(common.database_connections)
        .connect(&common.database_url)
        .await
        .map_err(|e| format!("connect to Postgres: {e}"))?;
    quorum_event_store::migrate(&pool)
        .await
        .map_err(|e| format!("migrate: {e}"))?;
    let nats = crate::nats::connect_common(common)
        .await
        .map_err(|e| format!("connect to NATS: {e}"))?;
    // Found, or made if missing; changing them is the relay's and the operator's (ADR 27).
    quorum_bus::find_or_create_streams(&async_nats::jetstream::new(nats.clone()))
        .await
        .map_err(|e| format!("find the streams: {}", crate::error_chain(&e)))?;
    Ok((pool, nats))
}

/// Runs a service binary: `[--config <file.toml>]` (or the `QUORUM_<NAME>_CONFIG` variable) and
/// `QUORUM__…` variables, which `--help` lists; `start` starts its tasks on the context's shutdown.
pub async fn main<C, F, Fut>(name: &'static str, start: F) -> ExitCode
where
    C: ServiceConfig,
    F: FnOnce(C, Context) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let file = args::config_file::<C>(name);
    let config: C = match load_validated(file.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let _telemetry = match telemetry::init(name, config.common().log_format) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: cannot start telemetry: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(name, config, start).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run<C, F, Fut>(name: &'static str, config: C, start: F) -> Result<(), String>
where
    C: ServiceConfig,
    F: FnOnce(C, Context) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let shutdown = Shutdown::new();
    shutdown
        .spawn_signal_handler()
        .map_err(|e| format!("cannot handle signals: {e}"))?;
    let common = config.common().clone();
    let (pool, nats) = connect(&common).await?;
    let readiness = Readiness::new();
    readiness.add_postgres("postgres", pool.clone());
    readiness.add_nats("nats", nats.clone());
    let listener = tokio::net::TcpListener::bind(common.admin_addr)
        .await
        .map_err(|e| format!("listen on {}: {e}", common.admin_addr))?;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(service = name, %addr, "admin listening");
    }
    // The recorder first: a metric recorded before it is installed is lost.
    let recorder = metrics::install_recorder();
    shutdown.spawn(admin::serve(
        listener,
        readiness.clone(),
        recorder,
        shutdown.token(),
    ));
    shutdown.spawn(crate::saturation::report_pool(
        pool.clone(),
        shutdown.token(),
    ));
    let context = Context {
        js: async_nats::jetstream::new(nats.clone()),
        pool,
        nats,
        shutdown: shutdown.clone(),
        readiness,
    };
    start(config, context).await?;
    shutdown.token().cancelled().await;
    tracing::info!(service = name, "stopping");
    shutdown
        .wait(common.shutdown_grace)
        .await
        .map_err(|e| e.to_string())
}
