//! Quorum's event store on Postgres: appends with optimistic concurrency and idempotency, stream reads,
//! and the commit-ordered catch-up reader every relay and projection uses.

mod migrate;

pub use migrate::migrate;
