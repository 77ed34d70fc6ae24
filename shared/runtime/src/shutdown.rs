//! The one shutdown pattern of every Quorum process: a cancellation token, a task tracker, the
//! signal handler that cancels, and the grace-period wait at the end of `main`.
//!
//! ```no_run
//! # async fn run(_: &quorum_runtime::Shutdown) {}
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use quorum_runtime::Shutdown;
//!
//! let shutdown = Shutdown::new();
//! shutdown.spawn_signal_handler()?;
//! run(&shutdown).await; // returns once `shutdown.token()` is cancelled
//! shutdown.wait(Duration::from_secs(30)).await?;
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Exit code of a process stopped by a second signal: 128 + SIGINT, what a shell reports for Ctrl-C.
pub const FORCED_EXIT_CODE: i32 = 130;

/// The shutdown state of one process: cancel the token to ask every task to stop; tasks that must
/// finish before the process exits (consumers holding unacked messages, the relay) are spawned on
/// the tracker.
///
/// Cloning is cheap and every clone shares the same token and tracker.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    tracker: TaskTracker,
}

/// The grace period ran out before every tracked task returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("shutdown grace period of {grace:?} expired with {remaining} task(s) still running")]
pub struct GraceExpired {
    /// The grace period that was given.
    pub grace: Duration,
    /// How many tracked tasks had not returned.
    pub remaining: usize,
}

impl Shutdown {
    /// A fresh shutdown state: token not cancelled, tracker open and empty.
    pub fn new() -> Self {
        Self::default()
    }

    /// The token every loop selects on; cancelled on the first SIGTERM/SIGINT.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// The tracker whose tasks [`Shutdown::wait`] waits for.
    pub fn tracker(&self) -> TaskTracker {
        self.tracker.clone()
    }

    /// Whether shutdown has begun.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Begins shutdown, as a signal would; for a fatal error found by the process itself.
    pub fn cancel(&self) {
        self.token.cancel();
    }

    /// Spawns `task` on the tracker, so that [`Shutdown::wait`] waits for it.
    #[track_caller]
    pub fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.tracker.spawn(task)
    }

    /// Installs the process's SIGTERM/SIGINT handling: the first signal cancels the token, a signal
    /// that arrives once shutdown has begun exits the process at once with [`FORCED_EXIT_CODE`].
    ///
    /// The handlers are registered before this returns, so a signal that arrives right after cannot
    /// kill the process with the default action. Must be called inside a Tokio runtime; the task it
    /// spawns is not tracked, so it never holds up [`Shutdown::wait`].
    pub fn spawn_signal_handler(&self) -> std::io::Result<()> {
        let mut signals = Signals::register()?;
        let token = self.token.clone();
        tokio::spawn(async move {
            loop {
                let signal = signals.recv().await;
                if token.is_cancelled() {
                    // The operator asked twice (or once after an internal shutdown): stop waiting.
                    tracing::warn!(signal, "signal received while shutting down, exiting now");
                    std::process::exit(FORCED_EXIT_CODE);
                }
                tracing::info!(signal, "shutting down");
                token.cancel();
            }
        });
        Ok(())
    }

    /// Cancels the token (if nothing did yet), closes the tracker and waits for every tracked task
    /// to return, for at most `grace`.
    ///
    /// Cancelling here too means a `run` that returned early on an error still stops its siblings
    /// instead of leaving them running until the grace period runs out.
    pub async fn wait(self, grace: Duration) -> Result<(), GraceExpired> {
        self.token.cancel();
        self.tracker.close();
        match tokio::time::timeout(grace, self.tracker.wait()).await {
            Ok(()) => Ok(()),
            Err(_) => Err(GraceExpired {
                grace,
                remaining: self.tracker.len(),
            }),
        }
    }
}

#[cfg(unix)]
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn register() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn register() -> std::io::Result<Self> {
        Ok(Self)
    }

    async fn recv(&mut self) -> &'static str {
        // Without unix signals only Ctrl-C can be awaited; an error means no handler could be
        // installed, and then no signal will ever come.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        "ctrl-c"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn wait_returns_once_tracked_tasks_finish() {
        let shutdown = Shutdown::new();
        let token = shutdown.token();
        let finished = shutdown.spawn(async move {
            token.cancelled().await;
            // Work that outlives the cancellation, as a consumer acking what it holds.
            tokio::time::sleep(Duration::from_secs(2)).await;
            "acked"
        });

        shutdown
            .clone()
            .wait(Duration::from_secs(30))
            .await
            .expect("task finishes within the grace period");
        assert_eq!(finished.await.unwrap(), "acked");
        assert!(shutdown.is_cancelled());
    }

    #[tokio::test(start_paused = true)]
    async fn wait_gives_up_after_the_grace_period() {
        let shutdown = Shutdown::new();
        shutdown.spawn(std::future::pending::<()>());
        shutdown.spawn(async {});

        let err = shutdown
            .wait(Duration::from_secs(5))
            .await
            .expect_err("a task that never returns outlives the grace period");
        assert_eq!(
            err,
            GraceExpired {
                grace: Duration::from_secs(5),
                remaining: 1
            }
        );
    }

    #[tokio::test]
    async fn wait_with_no_tasks_returns_at_once() {
        Shutdown::new().wait(Duration::ZERO).await.unwrap();
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn first_sigterm_cancels_the_token() {
        let shutdown = Shutdown::new();
        shutdown.spawn_signal_handler().unwrap();
        // Safe to signal our own process: the handler above is registered, so SIGTERM is caught.
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());

        tokio::time::timeout(Duration::from_secs(10), shutdown.token().cancelled())
            .await
            .expect("the signal cancels the token");
    }
}
