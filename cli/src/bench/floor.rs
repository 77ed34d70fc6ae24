//! The floor under a query's cost on this machine, measured in the same run: the work the contract
//! cannot do without, each part priced at what the raw servers and a bare HTTP client pay for it
//! here, with none of Quorum's code. A rate above what this floor allows is beyond the machine,
//! whatever the implementation.
//!
//! What a query needs at the least (DESIGN.md §1, §3, §4), and how it is priced:
//! - five events stored (the submission, three results, the consensus), at raw Postgres's cost per
//!   row of the events table, in 100-row batches from eight connections ([`raw::postgres_batched`]);
//! - five links of the audit chain (audit chains every event) and two writes of the read model (the
//!   query's row, its decision): seven rows at the cost of a row of the audit chain, the narrowest
//!   table Quorum writes ([`raw::audit_links_batched`]), or of an event's if that is cheaper;
//! - the five events published to JetStream, at raw JetStream's cost per pipelined publish of the
//!   sample event in binary mode (its `ce-` headers, fewer than a query's events carry);
//! - four deliveries with their acks (the submission to fan-out, the three results to consensus,
//!   which must see each to know when its quorum is met), at a raw pull consumer's cost per acked
//!   message;
//! - seven rows read: the five events by the relay (it publishes from the store) and the two
//!   results consensus decides on at the least (it rebuilds a query's state from the store; two is
//!   a majority of three), at raw Postgres's cost per row read in commit order, 100 to a page
//!   ([`raw::ReadTable`]);
//! - five HTTP exchanges (the client's `POST` and `GET`, the three expert calls), at the bare
//!   client's cost per call against the same stub: the cheapest it paid in this run at any
//!   concurrency so far, since a call costs more among more connections and Quorum's exchanges are
//!   not all made at the clients' concurrency.
//!
//! Left out, so that the floor stays under the truth: every other read (the chain's, the
//! projection's, the answer's, the results consensus reads before it can decide), the headers the
//! sample lacks (correlation, causation, trace), the hashing, and the waits. Each part's cost is
//! the whole machine's CPU while it ran, divided by what it did.

use async_nats::jetstream;
use serde::Serialize;
use sqlx::PgPool;

use super::closed::LoopResult;
use super::{procs, raw};

/// Events a query stores.
const EVENT_ROWS: f64 = 5.0;
/// Narrow rows a query writes: five links of the audit chain, the read model's row and its
/// decision.
const NARROW_ROWS: f64 = 7.0;
/// Events a query publishes.
const PUBLISHES: f64 = 5.0;
/// Rows a query reads: five events by the relay, two results by consensus. Not the answer's row:
/// a decision's notification could carry it to the waiter.
const ROWS_READ: f64 = 7.0;
/// Events delivered to a consumer and acked: the submission to fan-out, three results to consensus.
const DELIVERIES: f64 = 4.0;
/// HTTP exchanges a query makes: `POST`, `GET`, three expert calls.
const EXCHANGES: f64 = 5.0;
/// Calls the bare client makes per query.
const BARE_CALLS: f64 = 3.0;

/// The machine's CPU ms per unit of raw work, measured in this run.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct RawCosts {
    pub event_row_ms: f64,
    pub link_row_ms: f64,
    pub row_read_ms: f64,
    pub jetstream_publish_ms: f64,
    pub jetstream_delivery_ms: f64,
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

impl RawCosts {
    /// The price of a narrow row: a link's, or an event's if that is cheaper.
    pub fn narrow_row_ms(&self) -> f64 {
        self.link_row_ms.min(self.event_row_ms)
    }
}

/// Raw Postgres inserts, JetStream publishes and deliveries, each priced by the machine's CPU while
/// it ran.
pub async fn raw_costs(pool: &PgPool, js: &jetstream::Context) -> anyhow::Result<RawCosts> {
    const ROWS_RUN: u64 = 50_000;
    const MESSAGES_RUN: u64 = 100_000;
    let sample = raw::sample_event()?;
    let events = busy_seconds(raw::postgres_batched(pool, ROWS_RUN, 8, 100, &sample)).await?;
    let links = busy_seconds(raw::audit_links_batched(pool, ROWS_RUN, 8, 100)).await?;
    let table = raw::ReadTable::filled(pool, ROWS_RUN, &sample).await?;
    let reads = busy_seconds(table.read(8, 100)).await?;
    let publishes = busy_seconds(raw::jetstream_pipelined(js, MESSAGES_RUN, &sample)).await?;
    let stream = raw::DeliveryStream::filled(js, MESSAGES_RUN, &sample).await?;
    let deliveries = busy_seconds(stream.consume()).await?;
    let per = |seconds: f64, n: u64| seconds * 1000.0 / n as f64;
    Ok(RawCosts {
        event_row_ms: per(events, ROWS_RUN),
        link_row_ms: per(links, ROWS_RUN),
        row_read_ms: per(reads, ROWS_RUN),
        jetstream_publish_ms: per(publishes, MESSAGES_RUN),
        jetstream_delivery_ms: per(deliveries, MESSAGES_RUN),
    })
}

/// The machine's busy CPU seconds while `work` ran.
async fn busy_seconds(work: impl Future<Output = anyhow::Result<f64>>) -> anyhow::Result<f64> {
    let before = procs::machine_busy_seconds();
    work.await?;
    Ok(procs::machine_busy_seconds() - before)
}

impl Floor {
    /// The machine's CPU ms per call of the bare client in `bare`, its closed loop.
    pub fn exchange_ms(bare: &LoopResult) -> f64 {
        let calls = bare.queries.max(1) as f64 * BARE_CALLS;
        bare.machine_cpu_seconds * 1000.0 / calls
    }

    /// The floor with the HTTP exchanges priced at `http_exchange_ms` each.
    pub fn new(raw: RawCosts, http_exchange_ms: f64, cores: usize) -> Self {
        let ms_per_query = EVENT_ROWS * raw.event_row_ms
            + NARROW_ROWS * raw.narrow_row_ms()
            + ROWS_READ * raw.row_read_ms
            + PUBLISHES * raw.jetstream_publish_ms
            + DELIVERIES * raw.jetstream_delivery_ms
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
            "floor: {:.3} ms CPU/query ({EVENT_ROWS} event rows x {:.4}, {NARROW_ROWS} narrow rows x {:.4}, {ROWS_READ} rows read x {:.4}, {PUBLISHES} publishes x {:.4}, {DELIVERIES} deliveries x {:.4}, {EXCHANGES} HTTP exchanges x {:.4}), at most {:.0} queries/s",
            self.ms_per_query,
            self.raw.event_row_ms,
            self.raw.narrow_row_ms(),
            self.raw.row_read_ms,
            self.raw.jetstream_publish_ms,
            self.raw.jetstream_delivery_ms,
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
            event_row_ms: 0.02,
            link_row_ms: 0.01,
            row_read_ms: 0.0025,
            jetstream_publish_ms: 0.01,
            jetstream_delivery_ms: 0.005,
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
        let floor = Floor::new(raw, Floor::exchange_ms(&bare), 2);
        assert!((floor.http_exchange_ms - 0.1).abs() < 1e-9);
        // 5 x 0.02 + 7 x 0.01 + 7 x 0.0025 + 5 x 0.01 + 4 x 0.005 + 5 x 0.1
        assert!((floor.ms_per_query - 0.7575).abs() < 1e-9);
        assert!((floor.max_queries_per_sec - 2000.0 / 0.7575).abs() < 1e-6);
    }

    #[test]
    fn narrow_rows_cost_no_more_than_an_event_row() {
        let raw = RawCosts {
            event_row_ms: 0.02,
            link_row_ms: 0.05,
            row_read_ms: 0.0,
            jetstream_publish_ms: 0.0,
            jetstream_delivery_ms: 0.0,
        };
        // 12 rows, all at the event's price.
        assert!((Floor::new(raw, 0.0, 2).ms_per_query - 0.24).abs() < 1e-9);
    }
}
