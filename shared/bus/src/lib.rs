//! quorum-bus
