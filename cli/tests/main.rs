//! The package's integration tests as one binary: each file is a module of it, so the
//! workspace links one test binary per package rather than one per file (ADR 34).

mod breakers;
mod chaos_checker;
mod common;
mod consensus_bench;
mod dead_letters;
mod exit_codes;
mod help;
mod ingest_bench;
mod keys;
mod paging;
mod pipeline_bench;
mod replay;
mod schemathesis;
mod shapes;
mod tools;
mod tracing_bench;
mod up;
