//! What every Quorum service runs on: the consumer loop (with the one place where acks happen and dead
//! letters are parked), the shutdown pattern, the admin server, typed config and telemetry.

pub mod consumer;
