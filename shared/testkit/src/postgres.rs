//! One Postgres cluster per test process, started from a cached initdb template, and a fresh migrated
//! database per test.

use std::fs::File;
use std::path::Path;
use std::process::Command;

use quorum_devstack::{Postgres, PostgresOptions};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::OnceCell;

/// The test process's cluster.
pub struct TestPostgres {
    server: Postgres,
}

/// A fresh database with the schema applied.
pub struct TestDb {
    pub pool: PgPool,
    pub url: String,
    pub name: String,
}

/// The cluster of this test process, started on first use. nextest runs each test in its own process,
/// so the cluster is as isolated as the test; starting it costs a directory copy and a server start,
/// because initdb runs once per machine into a cached template.
pub async fn postgres() -> &'static TestPostgres {
    static CLUSTER: OnceCell<TestPostgres> = OnceCell::const_new();
    CLUSTER
        .get_or_init(|| async {
            let dir = crate::scratch_dir("pg").expect("scratch dir");
            let data = dir.join("data");
            copy_template(&data)
                .await
                .expect("copy the initdb template");
            let server = Postgres::start(PostgresOptions {
                data_dir: data,
                port: 0,
                durable: false,
                log_file: Some(dir.join("postgres.log")),
            })
            .await
            .expect("start postgres");
            TestPostgres { server }
        })
        .await
}

impl TestPostgres {
    /// A new, uniquely named database with every migration applied.
    pub async fn fresh_db(&self) -> anyhow::Result<TestDb> {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        self.server.create_database(&name)?;
        let url = self.server.url(&name);
        let pool = PgPoolOptions::new()
            .max_connections(20)
            .connect(&url)
            .await?;
        quorum_event_store::migrate(&pool).await?;
        Ok(TestDb { pool, url, name })
    }

    /// The cluster's URL for database `db`.
    pub fn url(&self, db: &str) -> String {
        self.server.url(db)
    }
}

/// Copies an initdb'd data directory into `dest`, making the template first if no test process on
/// this machine has yet. A file lock serialises the making.
async fn copy_template(dest: &Path) -> anyhow::Result<()> {
    let bindir = quorum_devstack::find_pg_bindir()?;
    let version = bindir
        .parent()
        .and_then(Path::file_name)
        .map_or("pg".into(), |v| v.to_string_lossy().into_owned());
    let root = std::env::temp_dir().join(format!("quorum-testkit-{version}"));
    std::fs::create_dir_all(&root)?;
    let template = root.join("template");
    let lock = File::create(root.join("lock"))?;
    lock.lock()?;
    let ready = root.join("template.ready");
    if !ready.is_file() {
        let _ = std::fs::remove_dir_all(&template);
        let staging = root.join(format!("staging-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging)?;
        init_only(&staging.join("data")).await?;
        std::fs::rename(staging.join("data"), &template)?;
        let _ = std::fs::remove_dir_all(&staging);
        File::create(&ready)?;
    }
    lock.unlock()?;
    let status = Command::new("cp")
        .arg("-a")
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
