//! nats-server and Postgres as child processes, for `quorum up` and for tests: free ports, data in a
//! directory of the caller's, readiness waits with generous deadlines, and servers that die with the
//! process that started them; and Quorum's own service binaries the same way (`quorum up --processes`).

#![warn(missing_docs)]

mod auth;
mod nats;
mod postgres;
mod process;
mod service;

pub use auth::{CREDENTIALS_FILE, NatsCredentials, SERVER_CONFIG_FILE};
pub use nats::{NatsOptions, NatsServer};
pub use postgres::{Postgres, PostgresOptions, find_pg_bindir};
pub use process::{DevstackError, PORT_ATTEMPTS, free_port};
pub use service::ServiceProcess;
