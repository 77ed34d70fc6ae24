//! One module per subcommand.

pub mod ask;
pub mod audit;
pub mod bench;
pub mod completion;
pub mod dlq;
pub mod events;
pub mod keys;
pub mod migrate;
pub mod publish;
pub mod replay;
pub mod saga;
pub mod status;
pub mod tail;
pub mod up;
pub mod up_config;
mod up_in_process;
pub mod up_processes;
