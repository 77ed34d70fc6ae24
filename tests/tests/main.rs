//! The package's integration tests as one binary: each file is a module of it, so the
//! workspace links one test binary per package rather than one per file (ADR 34).

mod agreement;
mod common;
mod consumer;
mod consumer_lag;
mod deploy_stack;
mod dlq;
mod hostile;
mod leader;
mod pipeline;
mod pipeline_methods;
mod process;
mod relay;
mod relay_lag;
mod waits;
