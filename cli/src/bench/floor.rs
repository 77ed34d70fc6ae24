//! The floor under a query's cost on this machine, measured in the same run: the work the contract
//! cannot do without, each part priced at what the raw servers and a bare HTTP client pay for it
//! here, with none of Quorum's code. A rate above what this floor allows is beyond the machine,
//! whatever the implementation.
//!
//! What a query needs at the least, and how it is priced:
//! - five events stored (the submission, three results, the consensus) and two writes of the read
//!   model (the query's row, its decision): seven rows at raw Postgres's cost per row, in 100-row
//!   batches from eight connections ([`raw::postgres_batched`]);
//! - the five events published to JetStream, at raw JetStream's cost per pipelined publish;
//! - five HTTP exchanges (the client's `POST` and `GET`, the three expert calls), at the bare
//!   client's cost per call against the same stub.
//!
//! Left out, so that the floor stays under the truth: the four deliveries to the consumers and
//! their acks, every read (the consumers' folds, the relay's and the projection's reads), and the
//! waits. Each part's cost is the whole machine's CPU while it ran, divided by what it did.

use async_nats::jetstream;
use serde::Serialize;
use sqlx::PgPool;

use super::closed::LoopResult;
use super::{procs, raw};

/// Rows a query writes at the least: five events, the read model's row and its decision.
const ROWS: f64 = 7.0;
/// Events a query publishes.
const PUBLISHES: f64 = 5.0;
/// HTTP exchanges a query makes: `POST`, `GET`, three expert calls.
const EXCHANGES: f64 = 5.0;
/// Calls the bare client makes per query.
const BARE_CALLS: f64 = 3.0;

/// The machine's CPU ms per unit of raw work, measured in this run.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct RawCosts {
    pub postgres_row_ms: f64,
    pub jetstream_publish_ms: f64,
}

/// The least CPU a query can cost here, and the rate that allows.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Floor {
    pub raw: RawCosts,
    /// The machine's CPU ms per call of the bare client.
    pub http_exchange_ms: f64,
    pub ms_per_query: f64,
    /// Queries/s the machine's cores allow at `ms_per_query`.
    pub max_queries_per_sec: f64,
}

/// Raw Postgres inserts and raw JetStream publishes, each priced by the machine's CPU while it ran.
pub async fn raw_costs(pool: &PgPool, js: &jetstream::Context) -> anyhow::Result<RawCosts> {
    const ROWS_RUN: u64 = 50_000;
    const PUBLISHES_RUN: u64 = 100_000;
    let sample = raw::sample_event()?;
    let before = procs::machine_busy_seconds();
    raw::postgres_batched(pool, ROWS_RUN, 8, 100, &sample).await?;
    let postgres = procs::machine_busy_seconds() - before;
    let payload = sample.data.clone().unwrap_or_default();
    let before = procs::machine_busy_seconds();
    raw::jetstream_pipelined(js, PUBLISHES_RUN, &payload).await?;
    let jetstream = procs::machine_busy_seconds() - before;
    Ok(RawCosts {
        postgres_row_ms: postgres * 1000.0 / ROWS_RUN as f64,
        jetstream_publish_ms: jetstream * 1000.0 / PUBLISHES_RUN as f64,
    })
}

impl Floor {
    /// The floor with the HTTP exchanges priced by `bare`, a bare client's closed loop.
    pub fn new(raw: RawCosts, bare: &LoopResult, cores: usize) -> Self {
        let calls = bare.queries.max(1) as f64 * BARE_CALLS;
        let http_exchange_ms = bare.machine_cpu_seconds * 1000.0 / calls;
        let ms_per_query = ROWS * raw.postgres_row_ms
            + PUBLISHES * raw.jetstream_publish_ms
            + EXCHANGES * http_exchange_ms;
        Self {
            raw,
            http_exchange_ms,
            ms_per_query,
            max_queries_per_sec: cores as f64 * 1000.0 / ms_per_query.max(1e-9),
        }
    }
}

impl std::fmt::Display for Floor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "floor: {:.3} ms CPU/query ({ROWS} rows x {:.4}, {PUBLISHES} publishes x {:.4}, {EXCHANGES} HTTP exchanges x {:.4}), at most {:.0} queries/s",
            self.ms_per_query,
            self.raw.postgres_row_ms,
            self.raw.jetstream_publish_ms,
            self.http_exchange_ms,
            self.max_queries_per_sec
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_adds_each_part_at_its_count_and_divides_the_cores_by_it() {
        let raw = RawCosts {
            postgres_row_ms: 0.02,
            jetstream_publish_ms: 0.01,
        };
        let bare = LoopResult {
            clients: 256,
            queries: 1000,
            queries_per_sec: 100.0,
            p50_ms: 1.0,
            p99_ms: 2.0,
            // 0.1 ms of the machine's CPU per call.
            machine_cpu_seconds: 0.3,
        };
        let floor = Floor::new(raw, &bare, 2);
        assert!((floor.http_exchange_ms - 0.1).abs() < 1e-9);
        // 7 x 0.02 + 5 x 0.01 + 5 x 0.1
        assert!((floor.ms_per_query - 0.69).abs() < 1e-9);
        assert!((floor.max_queries_per_sec - 2000.0 / 0.69).abs() < 1e-6);
    }
}
