//! quorum-relay
