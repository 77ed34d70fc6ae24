//! Audit chain links with no Quorum code in the way: the chain's rows, written as its writer writes
//! them (many links per statement), with no hashing and no read of the chain's head.

use sqlx::PgPool;

use super::{drop_table, scratch_table, timed_tasks};
use crate::bench::stats::rate;

/// Links in a table shaped as `audit_chain` (same columns, keys and indexes), `batch` per INSERT
/// from `writers` connections. Returns rows/s.
pub async fn audit_links_batched(
    pool: &PgPool,
    total: u64,
    writers: u64,
    batch: u64,
) -> anyhow::Result<f64> {
    scratch_table(pool, "bench_raw_links", "audit_chain").await?;
    let per_writer = total / writers;
    let elapsed = timed_tasks(writers, |w| {
        let pool = pool.clone();
        async move {
            let mut done = 0;
            while done < per_writer {
                let n = batch.min(per_writer - done);
                let first = (w * per_writer + done) as i64 + 1;
                let seqs: Vec<i64> = (first..first + n as i64).collect();
                let ids: Vec<String> = (0..n).map(|_| uuid::Uuid::now_v7().to_string()).collect();
                // Distinct hashes, as a chain's are; their values cost Postgres nothing more.
                let hashes: Vec<Vec<u8>> = seqs
                    .iter()
                    .map(|s| {
                        let mut h = [0u8; 32];
                        h[..8].copy_from_slice(&s.to_be_bytes());
                        h.to_vec()
                    })
                    .collect();
                sqlx::query(
                    "INSERT INTO bench_raw_links (seq, position, tx_id, event_id, tenant, prev_hash, hash)
                     SELECT u.s, u.s, pg_current_xact_id(), u.id, 'bench', u.h, u.h
                     FROM UNNEST($1::bigint[], $2::text[], $3::bytea[]) AS u(s, id, h)",
                )
                .bind(&seqs)
                .bind(&ids)
                .bind(&hashes)
                .execute(&pool)
                .await?;
                done += n;
            }
            Ok(())
        }
    })
    .await?;
    drop_table(pool, "bench_raw_links").await?;
    Ok(rate(per_writer * writers, elapsed))
}
