//! Reports this process's circuit breakers to Postgres (`expert_breakers`), where `quorum status`
//! reads them: a breaker lives in the memory of each fan-out replica, and Postgres is the one
//! place every replica and the operator's tool reach. Reported every few seconds (a report is
//! also the replica's heartbeat) and removed on a clean stop.

use std::sync::Arc;
use std::time::Duration;

use quorum_experts::Panel;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// How often the states are written.
pub const REPORT_EVERY: Duration = Duration::from_secs(2);

/// This process, as the rows name it: host and pid.
pub fn instance() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}:{}", std::process::id())
}

pub async fn report(pool: PgPool, panel: Arc<Panel>, shutdown: CancellationToken) {
    let instance = instance();
    loop {
        if let Err(e) = write(&pool, &panel, &instance).await {
            tracing::debug!(error = %e, "cannot report breaker states");
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(REPORT_EVERY) => {}
        }
    }
    let _ = sqlx::query("DELETE FROM expert_breakers WHERE instance = $1")
        .bind(&instance)
        .execute(&pool)
        .await;
}

async fn write(pool: &PgPool, panel: &Panel, instance: &str) -> Result<(), sqlx::Error> {
    let (mut experts, mut states, mut failures) = (Vec::new(), Vec::new(), Vec::new());
    for b in panel.breakers.values() {
        experts.push(b.expert().to_owned());
        states.push(b.state());
        failures.push(b.failures() as i32);
    }
    sqlx::query(
        "INSERT INTO expert_breakers (instance, expert, state, failures, seen_at)
         SELECT $1, e, s, f, now() FROM UNNEST($2::text[], $3::text[], $4::int[]) AS t(e, s, f)
         ON CONFLICT (instance, expert) DO UPDATE
           SET state = EXCLUDED.state, failures = EXCLUDED.failures, seen_at = now()",
    )
    .bind(instance)
    .bind(&experts)
    .bind(&states)
    .bind(&failures)
    .execute(pool)
    .await?;
    Ok(())
}
