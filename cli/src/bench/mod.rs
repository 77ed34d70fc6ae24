//! `quorum bench`: throughput and latency figures, each beside the raw baseline measured in the same
//! run on the same servers. Benchmarks print figures; they never pass or fail on timing.

pub mod audit;
mod closed;
pub mod codec;
pub mod consensus;
mod floor;
pub mod ingest;
pub mod open_loop;
mod otlp_collector;
pub mod pipeline;
mod procs;
mod raw;
pub mod stats;
pub mod store;
pub mod stub;
pub mod tools;
pub mod tracing;
mod tracing_child;
