//! The relay: publishes committed events from Postgres to JetStream in commit order (`Nats-Msg-Id` =
//! the event's position in the store), one leader at a time through a Postgres advisory lock, and refills JetStream from
//! Postgres when the stream lost data. Any service process can run it. See docs/adr/0002 and 0003.

mod config;
mod holds;
mod leader;
mod park;
mod publish;
mod pump;
mod reconcile;

pub use config::RelayConfig;
pub use holds::Holds;
pub use leader::run;
pub use park::CONSUMER;
pub use reconcile::{CURSOR_HEADER, POSITION_HEADER};

/// Why the relay stopped leading (it then competes for the lock again).
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("event store")]
    Store(#[from] quorum_event_store::StoreError),
    #[error("database")]
    Database(#[from] sqlx::Error),
    #[error("jetstream: {0}")]
    JetStream(String),
    #[error("lost the leader lock")]
    LostLock,
    #[error("the stream went back from sequence {recorded} to {found}")]
    StreamBehind { recorded: u64, found: u64 },
}
