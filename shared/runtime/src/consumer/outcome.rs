//! What a handler is given and what it answers. The handler decides; the runtime acts (see `settle`).

use std::future::Future;
use std::time::Duration;

use quorum_domain::Event;
use quorum_event_store::StoreError;

use crate::error_chain;

/// The longest pause between two runs of a handler whose store is unreachable.
pub const HOLD_MAX: Duration = Duration::from_secs(5);

/// One delivery of one message.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub event: Event,
    /// The NATS subject it was delivered on.
    pub subject: String,
    /// Its sequence in the JetStream stream.
    pub stream_seq: u64,
    /// How many times JetStream has delivered it, this time included (1 on the first delivery).
    pub delivered: u32,
}

/// A handler's verdict on a delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Handled, and everything it wrote is committed: the message is acked.
    Done,
    /// Failed in a way that may pass later: the message is redelivered after `after` (nak with delay),
    /// or parked as a dead letter once it has been delivered `max_deliver` times.
    Retry { after: Duration, error: String },
    /// Not a failure, and not now: the message is redelivered after `after` (nak with delay),
    /// with no failed attempt recorded, and parked only once it has been delivered `max_deliver`
    /// times. For a message whose only copy is on the stream and that must wait its turn (a
    /// tenant over its rate, a store that is down), however often it comes back.
    Wait { after: Duration, reason: String },
    /// What every message needs is unreachable (the store is down or its pool exhausted): not
    /// this message's failure, and no other message would fare better. The runtime keeps the
    /// message (in progress, not redelivered) and runs the handler again after a pause growing to
    /// [`HOLD_MAX`]; nothing is recorded or counted against the message. A shutdown meanwhile
    /// gives it back for a redelivery.
    Unavailable { reason: String },
    /// Will never succeed as it is: parked as a dead letter for an operator, then terminated.
    Dead { error: String },
}

impl Outcome {
    /// A retry after `after` with the error's display chain as the reason.
    pub fn retry(after: Duration, error: impl std::fmt::Display) -> Self {
        Outcome::Retry {
            after,
            error: error.to_string(),
        }
    }

    /// A wait of `after` for `reason`.
    pub fn wait(after: Duration, reason: impl std::fmt::Display) -> Self {
        Outcome::Wait {
            after,
            reason: reason.to_string(),
        }
    }

    /// The store unreachable, for `reason`.
    pub fn unavailable(reason: impl std::fmt::Display) -> Self {
        Outcome::Unavailable {
            reason: reason.to_string(),
        }
    }

    /// What a failed store call means: the store unreachable holds the message
    /// ([`Outcome::Unavailable`]); any other failure is a retry after `after`. Every handler maps
    /// its store errors through here, so a Postgres restart parks nothing (each of a pool's idle
    /// connections fails once after one).
    pub fn store_failed(after: Duration, error: &StoreError) -> Self {
        if error.is_transient() {
            Outcome::unavailable(error_chain(error))
        } else {
            Outcome::retry(after, error_chain(error))
        }
    }

    /// A dead letter with the error's display as the reason.
    pub fn dead(error: impl std::fmt::Display) -> Self {
        Outcome::Dead {
            error: error.to_string(),
        }
    }

    /// The label this outcome has in metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Retry { .. } => "retry",
            Outcome::Wait { .. } => "wait",
            Outcome::Unavailable { .. } => "unavailable",
            Outcome::Dead { .. } => "dead",
        }
    }
}

/// A service's message handler. It must be idempotent: a message can be delivered again after the
/// handler committed (a crash before the ack). Deriving event ids with
/// [`quorum_domain::derived_event_id`] makes the second append a no-op.
pub trait Handler: Send + Sync + 'static {
    /// Handles one delivery. Return [`Outcome::Done`] only after the handler's writes are committed.
    fn handle(&self, delivery: &Delivery) -> impl Future<Output = Outcome> + Send;
}
