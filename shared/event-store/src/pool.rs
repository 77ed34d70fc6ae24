//! How every Quorum process opens its Postgres pool.

use sqlx::pool::PoolOptions;
use sqlx::{Connection, PgConnection, PgPool, Postgres};

/// Pool options with `connections` at most.
///
/// No ping before each checkout (sqlx's default): it is a round trip of its own before nearly every
/// statement, which doubled the statements' cost in the pipeline. A connection that died is found
/// out by the statement that uses it instead: that statement fails with an I/O error, sqlx closes
/// the connection, and the caller's retry (a consumer's redelivery, a reader's next round) gets a
/// fresh one.
pub fn pool_options(connections: u32) -> PoolOptions<Postgres> {
    PoolOptions::new()
        .max_connections(connections)
        .test_before_acquire(false)
}

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
