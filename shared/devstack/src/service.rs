//! A Quorum service binary as a child process, for `quorum up --processes` and tests: its output
//! to a log file, and stopped (SIGTERM, so that it drains) when the process that started it dies.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use crate::process::{self, DevstackError, io};

/// A running service process.
pub struct ServiceProcess {
    name: String,
    child: Child,
    log: PathBuf,
}

impl ServiceProcess {
    /// Starts `cmd` (its program, arguments and environment as the caller set them), with its
    /// standard output and error appended to `log`.
    pub fn start(name: &str, mut cmd: Command, log: &Path) -> Result<Self, DevstackError> {
        process::configure(&mut cmd, None, log, libc::SIGTERM)?;
        let program = cmd.get_program().to_string_lossy().into_owned();
        let child = process::spawn(cmd).map_err(io(format!("start {program}")))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log: log.to_path_buf(),
        })
    }

    /// The service's name, as given to [`start`](Self::start).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where its output goes.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// How it exited, if it has.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last lines of its log.
    pub fn tail(&self) -> String {
        process::tail(&self.log)
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    pub async fn stop(&mut self, grace: Duration) {
        process::stop(&mut self.child, libc::SIGTERM, grace).await;
    }

    /// SIGKILL, and waits for it.
    pub fn kill(&mut self) {
        process::stop_blocking(&mut self.child, libc::SIGKILL, Duration::ZERO);
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if self.exited().is_none() {
            process::stop_blocking(&mut self.child, libc::SIGTERM, Duration::from_secs(10));
        }
    }
}
