//! The event store's errors: typed, so callers branch on what happened rather than on SQL codes.

use quorum_domain::StreamId;

/// Why an append or a read failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stream is not at the version the caller expected: someone else appended first.
    #[error("stream {stream} is at version {actual}, expected {expected}")]
    Conflict {
        stream: StreamId,
        expected: String,
        actual: u64,
    },
    /// An event with this (`source`, `id`) is stored already with other content.
    #[error("event {id} from {event_source} is stored already with different content")]
    IdConflict { event_source: String, id: String },
    /// The event cannot be stored as it is.
    #[error("invalid event {id}: {reason}")]
    Invalid { id: String, reason: String },
    /// A stored row could not be read back as an event.
    #[error("stored event at position {position} is unreadable: {reason}")]
    Corrupt { position: i64, reason: String },
    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// True for errors worth retrying as they are (a lost connection, a serialization failure).
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Database(e) => is_transient(e),
            _ => false,
        }
    }
}

/// Whether a database error is one a retry can cure.
pub fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            // serialization_failure, deadlock_detected, admin_shutdown, crash_shutdown, cannot_connect_now
            Some("40001" | "40P01" | "57P01" | "57P02" | "57P03")
        ),
        _ => false,
    }
}

/// The name of the unique constraint a database error violated, if it is a unique violation.
pub(crate) fn violated_constraint(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => db.constraint().map(str::to_owned),
        _ => None,
    }
}
