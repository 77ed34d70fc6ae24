//! How full a process's database pool is, sampled every few seconds: connections in use and idle,
//! against the pool's size. A pool always in use is what queues work behind it.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::metrics as names;

const EVERY: Duration = Duration::from_secs(5);

/// Reports `pool`'s connections until `shutdown`.
pub async fn report_pool(pool: PgPool, shutdown: CancellationToken) {
    let max = f64::from(pool.options().get_max_connections());
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (size, idle) = (pool.size(), pool.num_idle() as u32);
        metrics::gauge!(names::DB_CONNECTIONS_MAX).set(max);
        metrics::gauge!(names::DB_CONNECTIONS, names::LABEL_STATE => "in_use")
            .set(f64::from(size.saturating_sub(idle)));
        metrics::gauge!(names::DB_CONNECTIONS, names::LABEL_STATE => "idle").set(f64::from(idle));
    }
}
