//! The package's integration tests as one binary: each file is a module of it, so the
//! workspace links one test binary per package rather than one per file (ADR 34).

mod binary;
mod conflict;
mod crash;
mod support;
