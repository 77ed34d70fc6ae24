//! What every Quorum service runs on: the consumer loop (with the one place where acks happen and dead
//! letters are parked), the shutdown pattern, the admin server, typed config and telemetry.

pub mod admin;
pub mod config;
pub mod consumer;
pub mod metrics;
pub mod shutdown;
pub mod telemetry;

pub use admin::{Readiness, ReadyFlag};
pub use config::{CommonConfig, ConfigError, Validate};
pub use shutdown::{GraceExpired, Shutdown};
pub use telemetry::{LogFormat, TelemetryGuard};
