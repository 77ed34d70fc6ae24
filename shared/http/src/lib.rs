//! What every Quorum HTTP API shares: errors as `application/problem+json` and who may call a route.

mod authorize;
mod internal;
pub mod observe;
mod problem;
mod serve;
pub mod time;

pub use authorize::authorize;
pub use problem::Problem;
pub use serve::{ServeLimits, serve};
