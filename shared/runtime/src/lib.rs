//! What every Quorum service runs on: the consumer loop (with the one place where acks happen and dead
//! letters are parked), the shutdown pattern, the admin server, typed config and telemetry.

pub mod admin;
/// Typed configuration (the `quorum-config` crate, which libraries without I/O use alone).
pub use quorum_config as config;
pub use quorum_trace as trace;
pub mod consumer;
pub mod leader;
pub mod metrics;
pub mod nats;
pub mod saturation;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod vital;

pub use admin::{Readiness, ReadyFlag};

/// An error with its chain of causes, `a: b: c`, for logs and for answers people read.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
pub use config::{CommonConfig, ConfigError, Validate};
pub use shutdown::{GraceExpired, Shutdown};
pub use telemetry::{LogFormat, TelemetryGuard};
pub use vital::spawn_vital;
