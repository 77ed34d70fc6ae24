//! quorum-devstack
