//! Quorum's event store on Postgres: appends with optimistic concurrency and idempotency, stream reads,
//! and the commit-ordered catch-up reader every relay and projection uses.

mod append;
mod append_group;
mod batch;
mod checkpoint;
mod dead_letters;
mod error;
mod find;
mod migrate;
mod pool;
mod read;
mod recorded;
mod span;
mod store;
mod wake;

pub use append::{AppendResult, Appended, ExpectedVersion};
pub use batch::Batcher;
pub use checkpoint::{
    RelayCheckpoint, load_consumer_checkpoint, load_relay_checkpoint, save_consumer_checkpoint,
    save_relay_checkpoint,
};
pub use dead_letters::{DeadLetter, FailedAttempt, dead_letter_stream, park_dead_letter};
pub use error::{StoreError, is_transient};
pub use find::{Filter, Selection};
pub use migrate::migrate;
pub use pool::{
    CLOSE_AFTER_IDLE, KeptConnection, PING_AFTER_IDLE, generic_plan_connection,
    keyed_plan_connection, pool_options,
};
pub use read::{BEHIND_COUNTED, Behind, Committed, RelayRow};
pub use recorded::{CommitCursor, RecordedEvent, Unreadable};
pub use store::EventStore;
pub use wake::Wake;
