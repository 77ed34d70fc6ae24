//! The relay's settings, part of a service's typed config (`[relay]`, `QUORUM__RELAY__…`).

use std::time::Duration;

use quorum_runtime::config::{ConfigError, Secret, Validate, check_nats_login, duration};
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
    /// The NATS user the relay publishes as when it runs inside another service's process (ingest
    /// by default): the only user allowed to publish committed history (`quorum.evt.>`) and to
    /// change the streams (docs/adr/0027). Unset shares the process's own connection, which then
    /// needs those rights (a server without users).
    pub nats_user: Option<String>,
    /// Its password, from the environment (`QUORUM__RELAY__NATS_PASSWORD`) or a secret. Never
    /// logged.
    pub nats_password: Option<Secret>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            name: "default".to_owned(),
            batch_size: 1000,
            poll_interval: Duration::from_millis(200),
            check_interval: Duration::from_secs(1),
            nats_user: None,
            nats_password: None,
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
        check_nats_login(self.nats_user.as_deref(), self.nats_password.as_ref())
            .map_err(|(key, message)| ConfigError::invalid(key, message))?;
        if self.poll_interval.is_zero() || self.check_interval.is_zero() {
            return Err(ConfigError::invalid(
                "poll_interval",
                "intervals must be above zero",
            ));
        }
        Ok(())
    }
}
