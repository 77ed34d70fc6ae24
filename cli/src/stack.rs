//! Finding the stack a command talks to: URLs given on the command line or in the environment, else the
//! stack `quorum up` recorded in its data directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

use crate::exit::CliError;

mod redact;
pub use redact::redact;

/// Where the stack's servers and services listen; `quorum up` writes it to `<data dir>/stack.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StackFile {
    pub nats_url: String,
    pub database_url: String,
    pub pid: u32,
    pub services: Vec<ServiceAddr>,
    /// The config file `up` runs with (absolute), so commands that read settings (`tools list`)
    /// see what the running stack sees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<PathBuf>,
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
    #[arg(long, env = "QUORUM_NATS_URL", global = true, help_heading = crate::help::GLOBAL)]
    pub nats_url: Option<String>,
    /// The NATS user the command connects as: `admin` in the shipped configs (docs/adr/0027).
    /// The local stack's URL carries its own.
    #[arg(long, env = "QUORUM_NATS_USER", global = true, help_heading = crate::help::GLOBAL)]
    pub nats_user: Option<String>,
    /// That user's password (from the environment rather than the command line, which others on
    /// the machine can read).
    #[arg(
        long,
        env = "QUORUM_NATS_PASSWORD",
        hide_env_values = true,
        global = true,
        help_heading = crate::help::GLOBAL
    )]
    pub nats_password: Option<String>,
    /// Postgres URL; defaults to the stack `quorum up` runs.
    #[arg(long, env = "QUORUM_DATABASE_URL", global = true, help_heading = crate::help::GLOBAL)]
    pub database_url: Option<String>,
    /// Where `quorum up` keeps its servers' data and its stack file.
    #[arg(
        long,
        env = "QUORUM_DATA_DIR",
        default_value = ".quorum",
        global = true,
        help_heading = crate::help::GLOBAL
    )]
    pub data_dir: PathBuf,
}

impl Target {
    pub fn stack_file(&self) -> PathBuf {
        self.data_dir.join("stack.json")
    }

    /// The config file a command reads settings from: the one given (`--config` or
    /// `QUORUM_CONFIG`), else the one the running stack was started with, else none (defaults and
    /// `QUORUM__…` variables).
    pub fn config_file(&self, given: Option<&Path>) -> Option<PathBuf> {
        given
            .map(Path::to_path_buf)
            .or_else(|| self.recorded().and_then(|s| s.config))
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

    /// Connects to `nats_url` as `--nats-user`, if given (else as the URL says).
    pub async fn connect_nats(&self, nats_url: &str) -> anyhow::Result<async_nats::Client> {
        let password = self
            .nats_password
            .clone()
            .map(quorum_runtime::config::Secret::new);
        quorum_runtime::nats::connect(nats_url, self.nats_user.as_deref(), password.as_ref())
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to nats at {}: {e}", redact(nats_url)))
    }

    /// Postgres only (for commands that need no NATS).
    pub async fn connect_postgres(&self) -> anyhow::Result<PgPool> {
        pool(&self.database_url()?, 4).await
    }

    pub async fn connect(&self) -> anyhow::Result<Connected> {
        let (nats_url, database_url) = self.urls()?;
        let pool = pool(&database_url, 16).await?;
        let client = self.connect_nats(&nats_url).await?;
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

/// Writes the stack file readable by its owner only (it names the database, and a URL given with
/// `--database-url` may hold a password), into a data directory [`prepare_data_dir`] closed to
/// others. Written beside and renamed over, so a reader never sees half a file and a file left by
/// an older version with wider permissions is replaced, not reused.
pub fn write_stack_file(path: &Path, stack: &StackFile) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        prepare_data_dir(dir)?;
    }
    let partial = path.with_extension("json.partial");
    let _ = std::fs::remove_file(&partial);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)?;
    file.write_all(&serde_json::to_vec_pretty(stack)?)?;
    file.sync_all()?;
    std::fs::rename(&partial, path)
}

/// Creates the data directory closed to others (0700), or closes an existing one. Owned by root,
/// it is left searchable (0711) but not listable: as root the local Postgres runs as the `postgres`
/// user, which must pass through to its cluster (made here, or linked from here), and every file
/// in it that matters is closed by its own mode (the stack file 0600).
pub fn prepare_data_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let owner = std::fs::metadata(dir)?.uid();
    // symlink_metadata: a cluster living elsewhere behind a link needs no passage through here.
    let foreign_cluster = std::fs::symlink_metadata(dir.join("postgres"))
        .is_ok_and(|m| m.is_dir() && m.uid() != owner);
    let mode = if owner == 0 || foreign_cluster {
        0o711
    } else {
        0o700
    };
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stack_file_and_its_directory_are_closed_to_others() {
        use std::os::unix::fs::PermissionsExt;
        let root = std::env::temp_dir().join(format!("quorum-stack-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join(".quorum");
        // A directory and a file left open by an older version are closed too.
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.join("stack.json");
        std::fs::write(&path, "{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let stack = StackFile {
            nats_url: "nats://127.0.0.1:4222".into(),
            database_url: "postgres://q:hunter2@127.0.0.1/quorum".into(),
            pid: 1,
            services: Vec::new(),
            config: None,
        };
        write_stack_file(&path, &stack).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        // Nobody else lists or reads it (as root it stays searchable, for the postgres user).
        assert_eq!(mode(&dir) & 0o066, 0, "{:o}", mode(&dir));
        assert_eq!(
            read_stack_file(&path).unwrap().database_url,
            stack.database_url
        );
        std::fs::remove_dir_all(&root).unwrap();
        // A fresh one is made closed.
        write_stack_file(&path, &stack).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir) & 0o066, 0, "{:o}", mode(&dir));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
