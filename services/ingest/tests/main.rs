//! The package's integration tests as one binary: each file is a module of it, so the
//! workspace links one test binary per package rather than one per file (ADR 34).

mod clients;
mod common;
mod conformance;
mod http;
mod lookups;
mod nats;
mod nats_auth;
mod overload;
mod waits;
