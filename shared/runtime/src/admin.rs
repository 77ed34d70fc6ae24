//! The admin HTTP server every Quorum process runs: `/livez`, `/readyz` (the readiness checks
//! components register) and `/metrics` (Prometheus text).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long the Postgres check may take. Under Kubernetes' default probe timeout of one second,
/// so a slow database reads as "not ready" rather than as a probe that timed out.
pub const POSTGRES_CHECK_TIMEOUT: Duration = Duration::from_millis(500);

/// Content type of the Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The readiness checks of one process; `/readyz` answers 200 only when all of them pass (and
/// when none is registered).
///
/// Cloning is cheap and every clone shares the same checks, so components register their own
/// while the server already runs.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<Mutex<Vec<Check>>>,
    /// Vital tasks that ended before shutdown, with why (see [`crate::vital`]).
    deaths: Arc<Mutex<Vec<(String, String)>>>,
}

// By hand: the clients and pools would print their whole state; the names say what is checked.
impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let checks = self.checks.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_list()
            .entries(checks.iter().map(|c| &c.name))
            .finish()
    }
}

#[derive(Clone)]
struct Check {
    name: String,
    probe: Probe,
}

#[derive(Clone)]
enum Probe {
    Nats(async_nats::Client),
    Postgres(PgPool),
    Flag(Arc<AtomicBool>),
}

/// A readiness condition a component sets itself ("consumer bound"); starts not ready.
#[derive(Debug, Clone)]
pub struct ReadyFlag(Arc<AtomicBool>);

impl ReadyFlag {
    /// Marks the condition met (`true`) or not (`false`).
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }

    /// Whether the condition is currently met.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The outcome of every readiness check, as `/readyz` returns it in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadinessReport {
    /// Whether every check passed.
    pub ready: bool,
    /// Names of the checks that failed, in registration order.
    pub failing: Vec<String>,
    /// Every check with its outcome.
    pub checks: Vec<CheckResult>,
}

/// The outcome of one readiness check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// The name it was registered under.
    pub name: String,
    /// `nats`, `postgres`, `flag`, or `task` for a vital task that ended.
    pub kind: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Readiness {
    /// No checks yet: ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ready only while `client` is connected to a NATS server.
    pub fn add_nats(&self, name: impl Into<String>, client: async_nats::Client) {
        self.push(name.into(), Probe::Nats(client));
    }

    /// Ready only while `SELECT 1` on `pool` succeeds within [`POSTGRES_CHECK_TIMEOUT`].
    pub fn add_postgres(&self, name: impl Into<String>, pool: PgPool) {
        self.push(name.into(), Probe::Postgres(pool));
    }

    /// A condition the caller sets through the returned flag, initially not ready.
    pub fn flag(&self, name: impl Into<String>) -> ReadyFlag {
        let flag = Arc::new(AtomicBool::new(false));
        self.push(name.into(), Probe::Flag(flag.clone()));
        ReadyFlag(flag)
    }

    /// Records that the vital task `task` ended for `reason`: from now on `/livez` and `/readyz`
    /// fail, naming it, so the process is restarted.
    pub fn died(&self, task: impl Into<String>, reason: impl Into<String>) {
        self.deaths
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((task.into(), reason.into()));
    }

    /// The vital tasks that ended before shutdown, with why.
    pub fn deaths(&self) -> Vec<(String, String)> {
        self.deaths
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn push(&self, name: String, probe: Probe) {
        self.checks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Check { name, probe });
    }

    /// Runs every check, concurrently.
    pub async fn check(&self) -> ReadinessReport {
        // A snapshot, so the lock is not held across the checks' awaits.
        let checks = self
            .checks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut checks = futures::future::join_all(checks.into_iter().map(Check::run)).await;
        checks.extend(self.deaths().into_iter().map(|(name, reason)| CheckResult {
            name,
            kind: "task",
            ok: false,
            error: Some(format!("ended: {reason}")),
        }));
        let failing = checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.name.clone())
            .collect::<Vec<_>>();
        ReadinessReport {
            ready: failing.is_empty(),
            failing,
            checks,
        }
    }
}

impl Check {
    async fn run(self) -> CheckResult {
        let (kind, outcome) = match self.probe {
            Probe::Nats(client) => ("nats", nats_connected(&client)),
            Probe::Postgres(pool) => ("postgres", postgres_reachable(&pool).await),
            Probe::Flag(flag) => {
                let set = flag.load(Ordering::Relaxed);
                (
                    "flag",
                    if set {
                        Ok(())
                    } else {
                        Err("not set".to_owned())
                    },
                )
            }
        };
        CheckResult {
            name: self.name,
            kind,
            ok: outcome.is_ok(),
            error: outcome.err(),
        }
    }
}

fn nats_connected(client: &async_nats::Client) -> Result<(), String> {
    match client.connection_state() {
        async_nats::connection::State::Connected => Ok(()),
        state => Err(format!(
            "connection {}",
            format!("{state:?}").to_lowercase()
        )),
    }
}

async fn postgres_reachable(pool: &PgPool) -> Result<(), String> {
    match tokio::time::timeout(
        POSTGRES_CHECK_TIMEOUT,
        sqlx::query("SELECT 1").execute(pool),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {POSTGRES_CHECK_TIMEOUT:?}")),
    }
}

#[derive(Clone)]
struct AppState {
    readiness: Readiness,
    metrics: PrometheusHandle,
}

/// The admin routes, for a caller that serves them itself; [`serve`] is the usual entry point.
pub fn router(readiness: Readiness, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(AppState { readiness, metrics })
}

/// Serves the admin routes on `listener` until `shutdown` is cancelled, then finishes the requests
/// in flight and returns.
///
/// Pass the process's shutdown token to stop with everything else, or a token cancelled after
/// [`Shutdown::wait`](crate::shutdown::Shutdown::wait) to keep `/metrics` scrapable during the drain.
pub async fn serve(
    listener: TcpListener,
    readiness: Readiness,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "admin server listening");
    }
    axum::serve(listener, router(readiness, metrics))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Live unless a vital task ended: then 503 naming it, so that an orchestrator restarts the
/// process (a liveness probe restarts; a readiness probe only stops traffic).
async fn livez(State(state): State<AppState>) -> Response {
    let deaths = state.readiness.deaths();
    if deaths.is_empty() {
        return "ok\n".into_response();
    }
    let mut body = String::from("not live: vital tasks ended\n");
    for (task, reason) in deaths {
        body.push_str(&format!("{task}: {reason}\n"));
    }
    (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    let report = state.readiness.check().await;
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report)).into_response()
}

async fn render_metrics(State(state): State<AppState>) -> Response {
    // Histogram samples only reach their buckets on upkeep; running it here makes a scrape exact.
    state.metrics.run_upkeep();
    (
        [(header::CONTENT_TYPE, PROMETHEUS_TEXT)],
        state.metrics.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests;
