//! The local stack `quorum up` runs when no URLs are given: nats-server and Postgres as child
//! processes, their data under the data directory (kept for the next run).

use std::path::{Path, PathBuf};

use quorum_devstack::{NatsOptions, NatsServer, Postgres, PostgresOptions};

use crate::stack::Target;

/// The database Quorum uses in a local stack.
pub const DATABASE: &str = "quorum";

pub struct LocalStack {
    pub nats: NatsServer,
    pub postgres: Postgres,
    dir: PathBuf,
    /// Declared after the servers so that it drops after them: the directory goes once nothing
    /// writes to it.
    _scratch: Option<Scratch>,
}

/// A directory removed when dropped, whether the stack was stopped or not.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl LocalStack {
    /// Starts both servers with data under `dir`, a directory closed to others (it holds the stack
    /// file and the API key). `durable` keeps Postgres's fsync on.
    pub async fn start(dir: &Path, durable: bool) -> anyhow::Result<Self> {
        crate::stack::prepare_data_dir(dir)?;
        Self::start_in(dir, durable).await
    }

    async fn start_in(dir: &Path, durable: bool) -> anyhow::Result<Self> {
        let nats = NatsServer::start(NatsOptions {
            port: 0,
            store_dir: dir.join("nats"),
            log_file: Some(dir.join("nats-server.log")),
        })
        .await?;
        let postgres = Postgres::start(PostgresOptions {
            data_dir: dir.join("postgres"),
            port: 0,
            durable,
            log_file: Some(dir.join("postgres.log")),
        })
        .await?;
        postgres.create_database(DATABASE)?;
        Ok(Self {
            nats,
            postgres,
            dir: dir.to_path_buf(),
            _scratch: None,
        })
    }

    /// A throwaway stack in a temporary directory (for benchmarks), removed when the stack is
    /// stopped or dropped.
    pub async fn start_temporary() -> anyhow::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let dir =
            std::env::temp_dir().join(format!("quorum-stack-{}", uuid::Uuid::new_v4().simple()));
        // Owned before anything can fail, so a failed start removes it too.
        let scratch = Scratch(dir.clone());
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        // Open (unlike `start`'s) so that, as root, the `postgres` user reaches its cluster in place.
        let mut stack = Self::start_in(&dir, true).await?;
        stack._scratch = Some(scratch);
        Ok(stack)
    }

    pub fn database_url(&self) -> String {
        self.postgres.url(DATABASE)
    }

    /// A target that points at this stack.
    pub fn target(&self) -> Target {
        Target {
            nats_url: Some(self.nats.url()),
            database_url: Some(self.database_url()),
            data_dir: self.dir.clone(),
        }
    }

    /// Stops both servers cleanly.
    pub async fn stop(mut self) {
        self.postgres.stop().await;
        let _ = self.nats.stop().await;
    }
}
