//! API keys (DESIGN §9): each bound to one tenant and a set of roles. The key is shown once, when
//! made; only its SHA-256 is stored, found by a non-secret prefix and compared in constant time.
//! Revoking a key takes effect at once in every process: they cache keys, and a revocation is
//! notified to them. Making and revoking a key, and refusing one, are events in the store.

mod audit;
mod authenticator;
mod key;
mod role;
mod store;

pub use audit::{AUTH_REFUSED, KEY_CREATED, KEY_REVOKED, SOURCE, key_stream, refusals_stream};
pub use authenticator::{AuthError, Authenticator};
pub use key::PresentedKey;
pub use role::{Principal, Role};
pub use store::{KeyInfo, NewKey, create, list, revoke};

/// The Postgres channel revocations are notified on (the payload is the key's prefix).
pub const REVOKED_CHANNEL: &str = "quorum_api_keys";
