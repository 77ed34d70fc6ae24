//! A Postgres cluster of our own: initdb on first use, then `postgres` on loopback TCP only. As root
//! (CI runs as root, Postgres refuses it) both run as the unprivileged `postgres` user.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use crate::process::{self, DevstackError, RunAs, io};

/// How to start Postgres.
#[derive(Clone, Debug)]
pub struct PostgresOptions {
    /// The cluster's data directory; initialised if it has no `PG_VERSION`.
    pub data_dir: PathBuf,
    /// The TCP port; 0 picks a free one.
    pub port: u16,
    /// Off for tests and benchmarks of our own code paths: no fsync. On for `quorum up`.
    pub durable: bool,
    /// Where the server's output goes; defaults to `postgres.log` beside the data directory.
    pub log_file: Option<PathBuf>,
}

/// A running cluster, stopped when dropped. Its superuser is `quorum`, trusted on loopback.
pub struct Postgres {
    options: PostgresOptions,
    bindir: PathBuf,
    child: Option<Child>,
    log: PathBuf,
}

/// The superuser initdb creates.
pub const SUPERUSER: &str = "quorum";
const READY: Duration = Duration::from_secs(90);

/// Where the Postgres server binaries are: `QUORUM_PG_BINDIR`, else `pg_config --bindir` if it has
/// `postgres` (Debian's pg_config may belong to the client package alone), else the newest
/// `/usr/lib/postgresql/*/bin`. Debian does not put the server binaries on PATH.
pub fn find_pg_bindir() -> Result<PathBuf, DevstackError> {
    let has_server = |d: &Path| d.join("postgres").is_file() && d.join("initdb").is_file();
    if let Some(d) = std::env::var_os("QUORUM_PG_BINDIR").map(PathBuf::from) {
        return if has_server(&d) {
            Ok(d)
        } else {
            Err(DevstackError::NotFound {
                what: "postgres",
                hint: format!("QUORUM_PG_BINDIR={} has no initdb/postgres", d.display()),
            })
        };
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_server(&d) {
            return Ok(d);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, d)| has_server(d))
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, d)| d)
        .ok_or(DevstackError::NotFound {
            what: "postgres",
            hint: "run scripts/setup.sh (apt-get install postgresql), or set QUORUM_PG_BINDIR"
                .into(),
        })
}

impl Postgres {
    /// Initialises the data directory if needed, starts the server and waits until it accepts
    /// connections.
    pub async fn start(mut options: PostgresOptions) -> Result<Self, DevstackError> {
        let bindir = find_pg_bindir()?;
        let run_as = RunAs::unprivileged_if_root()?;
        let auto_port = options.port == 0;
        let log = options.log_file.clone().unwrap_or_else(|| {
            options
                .data_dir
                .parent()
                .map_or_else(|| PathBuf::from("postgres.log"), |p| p.join("postgres.log"))
        });
        if !options.data_dir.join("PG_VERSION").is_file() {
            init(&bindir, &options.data_dir, run_as, &log)?;
        }
        let mut attempt = 1;
        loop {
            if auto_port {
                options.port = process::free_port()?;
            }
            let mut pg = Self {
                options: options.clone(),
                bindir: bindir.clone(),
                child: None,
                log: log.clone(),
            };
            match pg.start_server(run_as).await {
                Err(DevstackError::Exited { .. })
                    if auto_port && attempt < process::PORT_ATTEMPTS =>
                {
                    tracing::debug!(
                        port = pg.port(),
                        attempt,
                        "postgres exited at start, trying another port"
                    );
                    attempt += 1;
                }
                Err(e) => return Err(e),
                Ok(()) => return Ok(pg),
            }
        }
    }

    async fn start_server(&mut self, run_as: Option<RunAs>) -> Result<(), DevstackError> {
        let o = &self.options;
        // The link's target, not the link: the `postgres` user may not pass through the directory
        // holding the link (`quorum up` closes its data directory to others).
        let data_dir = std::fs::canonicalize(&o.data_dir).unwrap_or_else(|_| o.data_dir.clone());
        let mut cmd = Command::new(self.bindir.join("postgres"));
        cmd.arg("-D")
            .arg(&data_dir)
            .args(["-p", &o.port.to_string()]);
        let mut settings = vec![
            "listen_addresses=127.0.0.1",
            // TCP only: no socket directory to create, own and clean up, and none of Debian's
            // /var/run/postgresql, which belongs to the system cluster.
            "unix_socket_directories=",
            "max_connections=200",
            // A transaction left open holds the relay's watermark (docs/adr/0002).
            "idle_in_transaction_session_timeout=60s",
        ];
        if o.durable {
            // The local stack and the benchmarks: room for the working set of a benchmark run
            // (the default 128MB is smaller than the events it appends), so reads of recent
            // history are memory reads, as on a server sized for its load.
            settings.push("shared_buffers=512MB");
        } else {
            settings.extend([
                "fsync=off",
                "synchronous_commit=off",
                "full_page_writes=off",
            ]);
        }
        for s in settings {
            cmd.args(["-c", s]);
        }
        // SIGQUIT, not SIGKILL, when our process dies: an immediate shutdown, which still removes
        // the cluster's System V shared memory segment. SIGKILL leaks one per cluster, and the
        // kernel allows only a few thousand.
        process::configure(&mut cmd, run_as, &self.log, libc::SIGQUIT)?;
        let mut child = process::spawn(cmd).map_err(io("start postgres"))?;
        let (pid, port) = (child.id(), o.port);
        let pidfile = o.data_dir.join("postmaster.pid");
        let ready = process::wait_ready("postgres", &self.log, READY, &mut child, || {
            accepts(&pidfile, pid, port)
        })
        .await;
        if let Err(e) = ready {
            process::stop_blocking(&mut child, libc::SIGQUIT, Duration::from_secs(10));
            return Err(e);
        }
        self.child = Some(child);
        Ok(())
    }

    /// `postgres://quorum@127.0.0.1:<port>/<db>`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@127.0.0.1:{}/{db}",
            self.options.port
        )
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.options.port
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.options.data_dir
    }

    /// The server's output.
    pub fn log_file(&self) -> &Path {
        &self.log
    }

    /// The postmaster's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Creates database `name` unless it exists.
    pub fn create_database(&self, name: &str) -> Result<(), DevstackError> {
        let exists = self.psql(&format!(
            "SELECT 1 FROM pg_database WHERE datname = '{}'",
            name.replace('\'', "''")
        ))?;
        if exists.trim() != "1" {
            self.psql(&format!(
                "CREATE DATABASE \"{}\"",
                name.replace('"', "\"\"")
            ))?;
        }
        Ok(())
    }

    fn psql(&self, sql: &str) -> Result<String, DevstackError> {
        let out = Command::new(self.bindir.join("psql"))
            .args([
                "-X",
                "-qAt",
                "-h",
                "127.0.0.1",
                "-p",
                &self.options.port.to_string(),
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
                "-c",
                sql,
            ])
            .output()
            .map_err(io("run psql"))?;
        if !out.status.success() {
            return Err(DevstackError::Failed {
                what: "psql",
                detail: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// An immediate stop, as a crash or `pg_ctl stop -m immediate` would (SIGQUIT: no checkpoint;
    /// the next start recovers from the WAL), then a start on the same port and data.
    pub async fn crash_and_restart(&mut self) -> Result<(), DevstackError> {
        if let Some(mut child) = self.child.take() {
            process::stop(&mut child, libc::SIGQUIT, Duration::from_secs(30)).await;
        }
        self.start_server(RunAs::unprivileged_if_root()?).await
    }

    /// Fast shutdown (SIGINT: abort open transactions, checkpoint, exit).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            process::stop(&mut child, libc::SIGINT, Duration::from_secs(30)).await;
        }
    }
}

impl Drop for Postgres {
    /// Immediate shutdown (SIGQUIT): no checkpoint, but the shared memory segment is removed.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            process::stop_blocking(&mut child, libc::SIGQUIT, Duration::from_secs(10));
        }
    }
}

/// True once the postmaster we started (not another that took the port) says in its pid file that
/// it accepts connections, and the port answers.
async fn accepts(pidfile: &Path, pid: u32, port: u16) -> bool {
    let Ok(text) = tokio::fs::read_to_string(pidfile).await else {
        return false;
    };
    // Lines: pid, data dir, start time, port, socket dir, listen address, shmem key, status.
    let lines: Vec<&str> = text.lines().collect();
    lines.first().map(|l| l.trim()) == Some(pid.to_string().as_str())
        && lines.get(7).map(|l| l.trim()) == Some("ready")
        && tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
}

/// initdb into `data_dir`. As root, the cluster belongs to the `postgres` user, and the directory
/// must be reachable by it: when an ancestor is closed to others (a home directory), the data lives
/// in `/var/tmp` and `data_dir` is a symlink to it.
fn init(
    bindir: &Path,
    data_dir: &Path,
    run_as: Option<RunAs>,
    log: &Path,
) -> Result<(), DevstackError> {
    if let Some(parent) = data_dir.parent() {
        std::fs::create_dir_all(parent).map_err(io(format!("create {}", parent.display())))?;
    }
    let target = match run_as {
        Some(_) if !reachable_by_others(data_dir) => {
            let abs = std::path::absolute(data_dir).map_err(io("resolve the data directory"))?;
            let hash = process::fnv(&abs.to_string_lossy());
            let real = PathBuf::from(format!("/var/tmp/quorum-postgres-{hash:016x}"));
            let _ = std::fs::remove_dir_all(&real);
            let _ = std::fs::remove_file(data_dir);
            std::os::unix::fs::symlink(&real, data_dir).map_err(io("link the data directory"))?;
            real
        }
        _ => data_dir.to_path_buf(),
    };
    std::fs::create_dir_all(&target).map_err(io(format!("create {}", target.display())))?;
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o700))
        .map_err(io("chmod the data directory"))?;
    if let Some(u) = run_as {
        u.chown(&target)?;
    }
    let mut cmd = Command::new(bindir.join("initdb"));
    cmd.arg("-D").arg(&target).args([
        "-U",
        SUPERUSER,
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
        "--no-instructions",
    ]);
    process::configure(&mut cmd, run_as, log, libc::SIGKILL)?;
    let status = process::spawn(cmd)
        .map_err(io("run initdb"))?
        .wait()
        .map_err(io("wait for initdb"))?;
    if !status.success() {
        return Err(DevstackError::Failed {
            what: "initdb",
            detail: format!("exited {status}; log:\n{}", process::tail(log)),
        });
    }
    Ok(())
}

/// Whether every existing ancestor of `path` lets others through (mode o+x).
fn reachable_by_others(path: &Path) -> bool {
    let Ok(abs) = std::path::absolute(path) else {
        return false;
    };
    abs.ancestors()
        .skip(1)
        .filter_map(|a| std::fs::metadata(a).ok())
        .all(|m| m.mode() & 0o001 != 0)
}
