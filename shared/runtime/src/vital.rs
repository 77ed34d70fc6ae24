//! Vital tasks: the loops a process exists to run (a consumer, the relay, a projection). One that
//! ends before shutdown (an error it cannot get past, a panic, an early return) is not retried in
//! place: it is logged, counted and reported on `/livez` and `/readyz`, so the orchestrator
//! restarts the process, which starts every loop afresh. A live process with a dead loop inside
//! is the one state this rules out.

use std::any::Any;
use std::fmt::Display;
use std::future::Future;

use crate::metrics as names;
use crate::{Readiness, Shutdown};

/// Spawns `future` as the vital task `task` (a short fixed name, `consensus consumer`).
///
/// It runs in a task of its own, so a panic inside is caught here rather than lost with the task;
/// the watcher is on the shutdown tracker, so [`Shutdown::wait`] waits for the task as before.
pub fn spawn_vital<F>(shutdown: &Shutdown, readiness: &Readiness, task: &str, future: F)
where
    F: Future + Send + 'static,
    F::Output: Ended + Send + 'static,
{
    let inner = tokio::spawn(future);
    let token = shutdown.token();
    let readiness = readiness.clone();
    let task = task.to_owned();
    shutdown.spawn(async move {
        let reason = match inner.await.map(Ended::failure) {
            Ok(None) if token.is_cancelled() => return,
            Ok(None) => "returned before shutdown".to_owned(),
            Ok(Some(error)) => error,
            Err(join) if join.is_panic() => {
                format!("panicked: {}", panic_message(&*join.into_panic()))
            }
            Err(join) => join.to_string(),
        };
        tracing::error!(%task, %reason, "a vital task ended; this process is no longer live");
        ::metrics::counter!(names::TASK_DEATHS_TOTAL, names::LABEL_TASK => task.clone())
            .increment(1);
        readiness.died(task, reason);
    });
}

/// What a vital task returns: `()` for a loop that only ends on shutdown, or a `Result` whose
/// error says why it could not go on.
pub trait Ended {
    /// Why the task failed, if it did.
    fn failure(self) -> Option<String>;
}

impl Ended for () {
    fn failure(self) -> Option<String> {
        None
    }
}

impl<E: Display> Ended for Result<(), E> {
    fn failure(self) -> Option<String> {
        self.err().map(|e| e.to_string())
    }
}

/// The message a panic carries, when it is a string (as `panic!` and `expect` make it).
pub fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn wait_dead(readiness: &Readiness) -> Vec<(String, String)> {
        for _ in 0..500 {
            let dead = readiness.deaths();
            if !dead.is_empty() {
                return dead;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the task was never reported dead");
    }

    #[tokio::test]
    async fn a_panic_is_reported_with_its_message() {
        let (shutdown, readiness) = (Shutdown::new(), Readiness::new());
        spawn_vital(&shutdown, &readiness, "loop", async {
            if readiness_never() {
                return Ok::<(), String>(());
            }
            panic!("boom at row 7");
        });
        let dead = wait_dead(&readiness).await;
        assert_eq!(dead[0].0, "loop");
        assert!(dead[0].1.contains("boom at row 7"), "{dead:?}");
        assert!(!readiness.check().await.ready);
    }

    #[tokio::test]
    async fn an_error_or_an_early_return_is_a_death() {
        let (shutdown, readiness) = (Shutdown::new(), Readiness::new());
        spawn_vital(&shutdown, &readiness, "failing", async {
            Err::<(), _>("stream gone")
        });
        let dead = wait_dead(&readiness).await;
        assert_eq!(dead, vec![("failing".into(), "stream gone".into())]);

        let (shutdown, readiness) = (Shutdown::new(), Readiness::new());
        spawn_vital(&shutdown, &readiness, "quitter", async {
            Ok::<(), String>(())
        });
        assert_eq!(wait_dead(&readiness).await[0].1, "returned before shutdown");
    }

    #[tokio::test]
    async fn returning_on_shutdown_is_not_a_death() {
        let (shutdown, readiness) = (Shutdown::new(), Readiness::new());
        let token = shutdown.token();
        spawn_vital(&shutdown, &readiness, "loop", async move {
            token.cancelled().await;
            Ok::<(), String>(())
        });
        shutdown
            .clone()
            .wait(std::time::Duration::from_secs(30))
            .await
            .unwrap();
        assert!(readiness.deaths().is_empty());
        assert!(readiness.check().await.ready);
    }

    /// Keeps the compiler from seeing the panic as the block's only way out.
    fn readiness_never() -> bool {
        std::hint::black_box(false)
    }
}
