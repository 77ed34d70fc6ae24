//! Finding the stack a command talks to: URLs given on the command line or in the environment, else the
//! stack `quorum up` recorded in its data directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sqlx::PgPool;

/// Where the stack's servers and services listen; `quorum up` writes it to `<data dir>/stack.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StackFile {
    pub nats_url: String,
    pub database_url: String,
    pub pid: u32,
    pub services: Vec<ServiceAddr>,
}

/// One service of the stack and its addresses.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServiceAddr {
    pub name: String,
    pub http: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
}

/// The connection options every command shares.
#[derive(Clone, Debug, clap::Args)]
pub struct Target {
    /// NATS server URL; defaults to the stack `quorum up` runs.
    #[arg(long, env = "QUORUM_NATS_URL", global = true)]
    pub nats_url: Option<String>,
    /// Postgres URL; defaults to the stack `quorum up` runs.
    #[arg(long, env = "QUORUM_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Where `quorum up` keeps its servers' data and its stack file.
    #[arg(
        long,
        env = "QUORUM_DATA_DIR",
        default_value = ".quorum",
        global = true
    )]
    pub data_dir: PathBuf,
}

impl Target {
    pub fn stack_file(&self) -> PathBuf {
        self.data_dir.join("stack.json")
    }

    /// The running stack's record, if `quorum up` is running with this data directory.
    pub fn recorded(&self) -> Option<StackFile> {
        read_stack_file(&self.stack_file())
    }

    /// The NATS and Postgres URLs: given ones first, else the recorded stack's.
    pub fn urls(&self) -> anyhow::Result<(String, String)> {
        let recorded = self.recorded();
        let nats = self
            .nats_url
            .clone()
            .or_else(|| recorded.as_ref().map(|s| s.nats_url.clone()));
        let db = self
            .database_url
            .clone()
            .or_else(|| recorded.as_ref().map(|s| s.database_url.clone()));
        match (nats, db) {
            (Some(n), Some(d)) => Ok((n, d)),
            _ => anyhow::bail!(
                "no stack to talk to: start one with `quorum up`, or pass --nats-url and --database-url"
            ),
        }
    }

    /// Postgres only (for commands that need no NATS).
    pub async fn connect_postgres(&self) -> anyhow::Result<PgPool> {
        let database_url = match &self.database_url {
            Some(url) => url.clone(),
            None => self.urls()?.1,
        };
        pool(&database_url, 4).await
    }

    pub async fn connect(&self) -> anyhow::Result<Connected> {
        let (nats_url, database_url) = self.urls()?;
        let pool = pool(&database_url, 16).await?;
        let client = async_nats::connect(&nats_url)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to nats at {nats_url}: {e}"))?;
        Ok(Connected {
            js: async_nats::jetstream::new(client),
            pool,
            nats_url,
            database_url,
        })
    }
}

/// Open connections to a stack.
pub struct Connected {
    pub js: async_nats::jetstream::Context,
    pub pool: PgPool,
    pub nats_url: String,
    pub database_url: String,
}

async fn pool(database_url: &str, connections: u32) -> anyhow::Result<PgPool> {
    quorum_event_store::pool_options(connections)
        .connect(database_url)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot connect to postgres at {}: {e}",
                redact(database_url)
            )
        })
}

pub fn read_stack_file(path: &Path) -> Option<StackFile> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// A URL with its password replaced, for printing.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("redacted"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}
