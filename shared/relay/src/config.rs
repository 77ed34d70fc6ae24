//! The relay's settings, part of a service's typed config (`[relay]`, `QUORUM__RELAY__…`).

use std::time::Duration;

use quorum_runtime::config::{ConfigError, Validate, duration};
use serde::{Deserialize, Serialize};

/// How the relay reads, publishes and competes for leadership.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RelayConfig {
    /// The checkpoint name, and the advisory lock key's seed: relays of one name elect one leader.
    pub name: String,
    /// Events read and published per round trip. The acks of a batch are awaited in order before the
    /// checkpoint moves.
    pub batch_size: i64,
    /// How long to sleep when nothing is notified (LISTEN/NOTIFY is the fast path; polling is the
    /// fallback for a lost notification or a watermark held back by another transaction).
    #[serde(with = "duration")]
    pub poll_interval: Duration,
    /// How often a follower tries the lock, and how often the leader checks it still holds it and
    /// that the stream has not gone back.
    #[serde(with = "duration")]
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

impl Validate for RelayConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.name.is_empty() {
            return Err(ConfigError::invalid("name", "must not be empty"));
        }
        if !(1..=10_000).contains(&self.batch_size) {
            return Err(ConfigError::invalid(
                "batch_size",
                "must be between 1 and 10000",
            ));
        }
        if self.poll_interval.is_zero() || self.check_interval.is_zero() {
            return Err(ConfigError::invalid(
                "poll_interval",
                "intervals must be above zero",
            ));
        }
        Ok(())
    }
}
