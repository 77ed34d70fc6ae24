//! The test harness: a real Postgres per test process with a fresh, migrated database per test, a real
//! nats-server per test, and a helper that waits for a condition under a generous deadline. Tests never
//! assert on timing: the machine is shared and slow. A prerequisite a test cannot provide itself goes
//! through [`require`]: skipped with a reason on a developer's machine, a failure under `CI=true`.

#![warn(missing_docs)]

mod gate;
mod postgres;
mod require;
mod scratch;
mod wait;

pub use gate::Gate;
pub use postgres::{TestDb, TestPostgres, postgres};
pub use require::{Prerequisite, prerequisite, require};
pub use wait::{Condition, DEADLINE, wait_until};

use scratch::scratch_dir;

/// A fresh nats-server with JetStream on a free port and a temporary store, killed on drop (and when
/// the test process dies).
pub async fn nats() -> anyhow::Result<quorum_devstack::NatsServer> {
    let dir = scratch_dir("nats")?;
    Ok(
        quorum_devstack::NatsServer::start(quorum_devstack::NatsOptions {
            log_file: Some(dir.join("nats-server.log")),
            ..quorum_devstack::NatsOptions::new(0, dir.join("store"))
        })
        .await?,
    )
}

/// A nats-server with the users and permissions Quorum ships (docs/adr/0027) and credentials of
/// its own: no anonymous client, one user per service, the auth callout for API keys.
pub struct SecureNats {
    /// The server, killed on drop.
    pub server: quorum_devstack::NatsServer,
    /// Every user's password and the callout's issuer seed.
    pub credentials: quorum_devstack::NatsCredentials,
}

/// A fresh [`SecureNats`] on a free port with a temporary store.
pub async fn secure_nats() -> anyhow::Result<SecureNats> {
    let dir = scratch_dir("nats")?;
    let credentials = quorum_devstack::NatsCredentials::load_or_create(&dir)?;
    let server = quorum_devstack::NatsServer::start(quorum_devstack::NatsOptions {
        log_file: Some(dir.join("nats-server.log")),
        config_file: Some(credentials.server_config_file(&dir)?),
        ..quorum_devstack::NatsOptions::new(0, dir.join("store"))
    })
    .await?;
    Ok(SecureNats {
        server,
        credentials,
    })
}

/// Logs for tests: `RUST_LOG` (default `warn`), captured by the test harness. Idempotent.
pub fn init_tracing() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}
