//! The relay's settings.

use std::time::Duration;

/// How the relay reads, publishes and competes for leadership.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// The checkpoint name, and the advisory lock key's seed: relays of one name elect one leader.
    pub name: String,
    /// Events read and published per round trip. The acks of a batch are awaited in order before the
    /// checkpoint moves.
    pub batch_size: i64,
    /// How long to sleep when nothing is notified (LISTEN/NOTIFY is the fast path; polling is the
    /// fallback for a lost notification or a watermark held back by another transaction).
    pub poll_interval: Duration,
    /// How often a follower tries the lock, and how often the leader checks it still holds it and
    /// that the stream has not gone back.
    pub check_interval: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            name: "default".to_owned(),
            batch_size: 1000,
            poll_interval: Duration::from_millis(200),
            check_interval: Duration::from_secs(1),
        }
    }
}
