//! Reading events with no Quorum code in the way: pages of stored rows in commit order, as the relay
//! and every catch-up reader read them, with no watermark, no decoding into events and no work
//! after.

use quorum_domain::Event;
use sqlx::PgPool;

use super::{SampleRow, drop_table, scratch_table, timed_tasks};
use crate::bench::stats::rate;

/// A table shaped as `events` (same columns, keys and indexes), filled before the clock starts so
/// that [`ReadTable::read`] times the reads alone.
pub struct ReadTable {
    pool: PgPool,
    total: u64,
    /// The one transaction id every row has.
    tx_id: String,
}

impl ReadTable {
    /// A table holding `total` rows like `sample`, analyzed.
    pub async fn filled(pool: &PgPool, total: u64, sample: &Event) -> anyhow::Result<Self> {
        scratch_table(pool, "bench_raw_reads", "events").await?;
        let row = SampleRow::of(sample);
        sqlx::query(
            "INSERT INTO bench_raw_reads (tenant, stream_id, stream_version, event_id, source, type, data,
                                          datacontenttype, attributes, occurred_at)
             SELECT $1, 'bench/read', g, 'read-' || g, $2, $3, $4, 'application/json', $5::jsonb, now()
             FROM generate_series(1, $6::bigint) AS g",
        )
        .bind(&row.tenant)
        .bind(&row.source)
        .bind(&row.ty)
        .bind(&row.data[..])
        .bind(&row.attributes[..])
        .bind(total as i64)
        .execute(pool)
        .await?;
        sqlx::query("VACUUM ANALYZE bench_raw_reads")
            .execute(pool)
            .await?;
        let tx_id = sqlx::query_scalar("SELECT min(tx_id)::text FROM bench_raw_reads")
            .fetch_one(pool)
            .await?;
        Ok(Self {
            pool: pool.clone(),
            total,
            tx_id,
        })
    }

    /// Every row read once, `batch` per page in commit order by the `(tx_id, position)` index
    /// (a keyset page, as the relay reads), each of `readers` connections reading its own slice.
    /// Returns rows/s. The table is dropped after.
    pub async fn read(self, readers: u64, batch: u64) -> anyhow::Result<f64> {
        let per_reader = self.total / readers;
        let elapsed = timed_tasks(readers, |r| {
            let (pool, tx_id) = (self.pool.clone(), self.tx_id.clone());
            async move {
                // Positions are 1..=total: the reader's slice starts after `after`.
                let mut after = (r * per_reader) as i64;
                let end = after + per_reader as i64;
                while after < end {
                    let n = batch.min((end - after) as u64) as i64;
                    let rows = sqlx::query(
                        "SELECT * FROM bench_raw_reads
                         WHERE (tx_id, position) > ($1::text::xid8, $2)
                         ORDER BY tx_id, position LIMIT $3",
                    )
                    .bind(&tx_id)
                    .bind(after)
                    .bind(n)
                    .fetch_all(&pool)
                    .await?;
                    anyhow::ensure!(rows.len() as i64 == n, "a page came back short");
                    after += n;
                }
                Ok(())
            }
        })
        .await?;
        drop_table(&self.pool, "bench_raw_reads").await?;
        Ok(rate(per_reader * readers, elapsed))
    }
}
