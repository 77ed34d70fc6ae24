//! How every Quorum process opens its Postgres pool.

use sqlx::Postgres;
use sqlx::pool::PoolOptions;

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
