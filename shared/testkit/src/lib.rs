//! The test harness: a real Postgres per test process with a fresh, migrated database per test, a real
//! nats-server per test, and a helper that waits for a condition under a generous deadline. Tests never
//! assert on timing: the machine is shared and slow.

mod postgres;
mod wait;

use std::path::PathBuf;

pub use postgres::{TestDb, TestPostgres, postgres};
pub use wait::{DEADLINE, wait_until};

/// A fresh nats-server with JetStream on a free port and a temporary store, killed on drop (and when
/// the test process dies).
pub async fn nats() -> anyhow::Result<quorum_devstack::NatsServer> {
    let dir = scratch_dir("nats")?;
    Ok(
        quorum_devstack::NatsServer::start(quorum_devstack::NatsOptions {
            port: 0,
            store_dir: dir.join("store"),
            log_file: Some(dir.join("nats-server.log")),
        })
        .await?,
    )
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

/// A new directory under the system temp dir, open to others (Postgres may run as another user).
pub(crate) fn scratch_dir(what: &str) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!(
        "quorum-test-{what}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}
