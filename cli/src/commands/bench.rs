//! `quorum bench <what>`: against the given stack, or a throwaway local one.

use crate::bench::store::{self, StoreBenchArgs};
use crate::stack::Target;

#[derive(Debug, clap::Subcommand)]
pub enum Bench {
    /// Event store + relay throughput and lag, beside raw Postgres and raw JetStream.
    Store(StoreBenchArgs),
}

pub async fn run(target: &Target, bench: &Bench, json: bool) -> anyhow::Result<()> {
    let local;
    let target = if target.urls().is_ok() {
        target.clone()
    } else {
        eprintln!("no stack given: starting a throwaway one");
        local = crate::local::LocalStack::start_temporary().await?;
        local.target()
    };
    let stack = target.connect().await?;
    quorum_event_store::migrate(&stack.pool).await?;
    match bench {
        Bench::Store(args) => {
            let report = store::run(&stack.pool, &stack.js, args).await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{report}");
            }
        }
    }
    Ok(())
}
