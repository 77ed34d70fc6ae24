//! quorum-runtime
