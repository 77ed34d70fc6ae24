//! How every Quorum process opens its Postgres pool.

use sqlx::pool::PoolOptions;
use sqlx::{Connection, PgConnection, PgPool, Postgres};

/// Pool options with `connections` at most.
///
/// No ping before each checkout (sqlx's default): it is a round trip of its own before nearly every
/// statement, which doubled the statements' cost in the pipeline. A connection is pinged only when
/// it sat idle for [`PING_AFTER_IDLE`] or longer, as HikariCP does: under load connections come
/// back far sooner and are never pinged, and after a Postgres restart every idle connection is dead,
/// which without the ping each failed the next statement that used it, one per consumer delivery
/// (a message parked after five; seen in `quorum chaos`). A connection that died while busy is
/// still found out by the statement that uses it; the caller holds or retries (ADR 35).
pub fn pool_options(connections: u32) -> PoolOptions<Postgres> {
    PoolOptions::new()
        .max_connections(connections)
        .test_before_acquire(false)
        .idle_timeout(Some(CLOSE_AFTER_IDLE))
        .before_acquire(|conn: &mut PgConnection, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_AFTER_IDLE {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

/// How long a pooled connection may sit idle before the pool closes it (sqlx's default is ten
/// minutes). A burst, such as every held message retried at once after a Postgres restart, fills
/// each process's pool; kept for ten minutes, those connections left other processes' pools none
/// to open (`too many clients`; seen in `quorum chaos` with two replicas of each service).
pub const CLOSE_AFTER_IDLE: std::time::Duration = std::time::Duration::from_secs(60);

/// How long a pooled connection may sit idle before it is pinged on checkout.
pub const PING_AFTER_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// A connection of its own, outside `pool`, for a loop that runs the same few statements for ever
/// (the relay, a batcher). Its prepared statements always run their cached generic plan.
///
/// Left to choose, Postgres planned the commit-order read and the group read anew on every
/// execution (about a quarter of a millisecond each; a fifth of its CPU in the pipeline), because
/// a custom plan looked cheaper than the generic one. Only statements whose generic plan is index
/// lookups even on an empty table may run here: a generic plan is made once, while the table may
/// be small, and then kept. Outside the pool, the setting never reaches another caller.
pub async fn generic_plan_connection(pool: &PgPool) -> Result<PgConnection, sqlx::Error> {
    let mut conn = PgConnection::connect_with(&pool.connect_options()).await?;
    sqlx::query("SET plan_cache_mode = force_generic_plan")
        .execute(&mut conn)
        .await?;
    Ok(conn)
}

/// [`generic_plan_connection`] for statements that reach every row they touch by a key, joined from
/// a parameter array (a projection's batch of updates). Hash and merge joins and sequential scans
/// are priced out, so the generic plan, made once and kept, is index lookups per key however
/// small the table was when it was made. Left to cost them, a generic plan made while the table
/// was new would scan it whole ever after; planned anew each time, the write spent about a third
/// of its time planning (docs/adr/0041).
pub async fn keyed_plan_connection(pool: &PgPool) -> Result<PgConnection, sqlx::Error> {
    let mut conn = generic_plan_connection(pool).await?;
    sqlx::raw_sql(
        "SET enable_seqscan = off; SET enable_hashjoin = off; SET enable_mergejoin = off",
    )
    .execute(&mut conn)
    .await?;
    Ok(conn)
}

/// A connection outside the pool, opened at its first use and kept across statements by a loop
/// that runs the same few statements for ever: no checkout and return (and sqlx's ping on return)
/// per statement, and each statement's generic plan made once ([`generic_plan_connection`], or
/// [`keyed_plan_connection`]). After a failed statement the loop gives it up ([`Self::release`]),
/// since it may be broken; the next use opens a fresh one.
pub struct KeptConnection {
    pool: PgPool,
    keyed: bool,
    conn: Option<PgConnection>,
}

impl KeptConnection {
    /// Kept as a [`generic_plan_connection`].
    pub fn generic(pool: PgPool) -> Self {
        Self {
            pool,
            keyed: false,
            conn: None,
        }
    }

    /// Kept as a [`keyed_plan_connection`].
    pub fn keyed(pool: PgPool) -> Self {
        Self {
            pool,
            keyed: true,
            conn: None,
        }
    }

    /// The connection, opened if there is none.
    pub async fn get(&mut self) -> Result<&mut PgConnection, sqlx::Error> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None if self.keyed => keyed_plan_connection(&self.pool).await?,
            None => generic_plan_connection(&self.pool).await?,
        };
        Ok(self.conn.insert(conn))
    }

    /// Gives the connection up after a failure: the next [`Self::get`] opens a fresh one.
    pub fn release(&mut self) {
        self.conn = None;
    }

    /// Says goodbye to Postgres once the work is done, rather than dropping the socket.
    pub async fn close(mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = conn.close().await;
        }
    }
}
