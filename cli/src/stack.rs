//! Finding the stack a command talks to: URLs given on the command line or in the environment, else the
//! stack `quorum up` recorded in its data directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

use crate::exit::CliError;

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

    /// The Postgres URL alone (for commands that need no NATS): the given one, else the recorded
    /// stack's.
    pub fn database_url(&self) -> anyhow::Result<String> {
        match &self.database_url {
            Some(url) => Ok(url.clone()),
            None => Ok(self.urls()?.1),
        }
    }

    /// Postgres only (for commands that need no NATS).
    pub async fn connect_postgres(&self) -> anyhow::Result<PgPool> {
        pool(&self.database_url()?, 4).await
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

/// How long a command waits for Postgres to take its first connection. sqlx's pool retries a
/// refused connection for 30 s, which suits a service waiting out a database restart, not an
/// operator who mistyped `--database-url`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A pool of up to `connections` to `database_url`, with one connection made before it is
/// returned, so a wrong URL fails here, within [`CONNECT_TIMEOUT`], naming the host but never the
/// password.
pub async fn pool(database_url: &str, connections: u32) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = database_url.parse().map_err(|e| {
        // The URL is not repeated: it may hold a password.
        CliError::usage(format!(
            "the database URL is not a Postgres URL like postgres://user:password@host:5432/quorum ({e}); \
             check --database-url or QUORUM_DATABASE_URL"
        ))
    })?;
    let place = format!(
        "{}:{}{}",
        options.get_host(),
        options.get_port(),
        options
            .get_database()
            .map(|d| format!(" (database {d})"))
            .unwrap_or_default()
    );
    let hint = "check --database-url or QUORUM_DATABASE_URL, or start a stack with `quorum up`";
    // Lazy, then one connection under our own deadline: the pool keeps its usual acquire timeout
    // for the command's work, where waiting for a busy connection is normal.
    let pool = quorum_event_store::pool_options(connections).connect_lazy_with(options);
    match tokio::time::timeout(CONNECT_TIMEOUT, pool.acquire()).await {
        Ok(Ok(_first)) => Ok(pool),
        Ok(Err(e)) => anyhow::bail!("cannot connect to postgres at {place}: {e}; {hint}"),
        Err(_) => anyhow::bail!(
            "postgres at {place} did not accept a connection within {} s; {hint}",
            CONNECT_TIMEOUT.as_secs()
        ),
    }
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
