//! Quorum's domain model: the CloudEvent envelope, typed identifiers and the rules that give derived
//! events their ids. This crate does no I/O; it knows nothing of NATS or SQL.

pub mod cloudevent;
pub mod consensus;
mod event;
mod event_de;
pub mod expert;
mod ids;
pub mod query;
pub mod types;

pub use event::{Event, EventError};
pub use ids::{SYSTEM_TENANT, StreamId, TenantId, derived_event_id, new_event_id};
