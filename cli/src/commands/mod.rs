//! One module per subcommand.

pub mod bench;
pub mod migrate;
pub mod status;
pub mod up;
pub mod up_config;
