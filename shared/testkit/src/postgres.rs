//! One Postgres cluster per test process, started from a cached initdb template, and a fresh migrated
//! database per test.

use std::fs::File;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use quorum_devstack::{Postgres, PostgresOptions};
use sqlx::PgPool;
use tokio::sync::OnceCell;

/// The test process's cluster: fsync, synchronous commit and full-page writes off.
pub struct TestPostgres {
    server: Postgres,
}

/// A fresh database with every migration applied, for one test.
pub struct TestDb {
    /// A pool on the database (up to 20 connections).
    pub pool: PgPool,
    /// `postgres://quorum@127.0.0.1:<port>/<name>`, for code under test that connects itself.
    pub url: String,
    /// The database's name, unique on the cluster.
    pub name: String,
}

/// The cluster of this test process, started on first use; panics if it cannot start (the error
/// includes the server's log).
///
/// nextest runs each test in its own process, so the cluster is as isolated as the test. Starting it
/// costs a directory copy and a server start, because initdb runs once per machine, user and
/// Postgres major version into a cached template. The server gets SIGQUIT when the test process
/// exits, however it exits.
pub async fn postgres() -> &'static TestPostgres {
    static CLUSTER: OnceCell<TestPostgres> = OnceCell::const_new();
    CLUSTER
        .get_or_init(|| async {
            match start().await {
                Ok(server) => TestPostgres { server },
                Err(e) => panic!("cannot start the test Postgres: {e:#}"),
            }
        })
        .await
}

async fn start() -> anyhow::Result<Postgres> {
    let dir = crate::scratch_dir("pg")?;
    let data = dir.join("data");
    copy_template(&data)
        .await
        .context("copy the initdb template")?;
    Ok(Postgres::start(PostgresOptions {
        data_dir: data,
        port: 0,
        durable: false,
        log_file: Some(dir.join("postgres.log")),
    })
    .await?)
}

impl TestPostgres {
    /// A new, uniquely named database with every migration applied.
    pub async fn fresh_db(&self) -> anyhow::Result<TestDb> {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        self.server.create_database(&name)?;
        let url = self.server.url(&name);
        let pool = quorum_event_store::pool_options(20)
            .connect(&url)
            .await
            .with_context(|| format!("connect to {url}"))?;
        quorum_event_store::migrate(&pool)
            .await
            .context("migrate a fresh database")?;
        Ok(TestDb { pool, url, name })
    }

    /// The cluster's URL for database `db`.
    pub fn url(&self, db: &str) -> String {
        self.server.url(db)
    }

    /// The server itself: its port, data directory, log and pid.
    pub fn server(&self) -> &Postgres {
        &self.server
    }
}

/// Copies an initdb'd data directory into `dest`, making the template first if no test process has
/// yet. A file lock serialises the making; the template is never changed once made.
async fn copy_template(dest: &Path) -> anyhow::Result<()> {
    let root = template_root()?;
    let template = root.join("template");
    let ready = root.join("template.ready");
    {
        let lock = File::create(root.join("lock"))?;
        // Blocks the runtime thread while another process runs initdb: the test has nothing else
        // to do meanwhile, and the lock is dropped (released) at the end of this block.
        lock.lock()?;
        if !ready.is_file() {
            let staging = root.join(format!("staging-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&template);
            let _ = std::fs::remove_dir_all(&staging);
            open_dir(&staging)?;
            init_only(&staging.join("data")).await?;
            // A symlink here would make every copy share one data directory (devstack links the
            // data directory when its parent is closed to the postgres user; open_dir rules that out).
            anyhow::ensure!(
                !std::fs::symlink_metadata(staging.join("data"))?.is_symlink(),
                "the template's data directory is a symlink"
            );
            std::fs::rename(staging.join("data"), &template)?;
            let _ = std::fs::remove_dir_all(&staging);
            File::create(&ready)?;
        }
    }
    let status = Command::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(&template)
        .arg(dest)
        .status()?;
    anyhow::ensure!(
        status.success(),
        "cp -a {} {} failed",
        template.display(),
        dest.display()
    );
    Ok(())
}

/// `<temp>/quorum-testkit-<pg major>-<uid>`: per major version because a data directory only works
/// with its own, per user because another user could neither use nor replace root's template.
fn template_root() -> anyhow::Result<PathBuf> {
    let bindir = quorum_devstack::find_pg_bindir()?;
    let out = Command::new(bindir.join("postgres")).arg("-V").output()?;
    // "postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)"
    let text = String::from_utf8_lossy(&out.stdout);
    let major = text
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.split('.').next())
        .filter(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
        .with_context(|| format!("cannot read the version of {}: {text}", bindir.display()))?;
    let uid = std::fs::metadata("/proc/self")?.uid();
    let root = std::env::temp_dir().join(format!("quorum-testkit-{major}-{uid}"));
    open_dir(&root)?;
    Ok(root)
}

/// Creates `dir`, traversable by others: as root, initdb and the server run as `postgres`.
fn open_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// initdb into `data` by starting and stopping a server there (devstack initialises on start).
async fn init_only(data: &Path) -> anyhow::Result<()> {
    let options = PostgresOptions {
        data_dir: data.to_path_buf(),
        port: 0,
        durable: false,
        log_file: None,
    };
    let mut pg = Postgres::start(options).await?;
    pg.stop().await;
    Ok(())
}
