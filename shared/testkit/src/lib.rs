//! quorum-testkit
