//! `quorum bench <what>`: against the given stack, or a throwaway local one.

use crate::bench::audit::{self, AuditBenchArgs};
use crate::bench::consensus::{self, ConsensusBenchArgs};
use crate::bench::ingest::{self, IngestBenchArgs};
use crate::bench::pipeline::{self, PipelineBenchArgs};
use crate::bench::store::{self, StoreBenchArgs};
use crate::bench::stub::{self, StubArgs};
use crate::bench::tools::{self, ToolsBenchArgs};
use crate::outln;
use crate::stack::Target;

#[derive(Debug, clap::Subcommand)]
pub enum Bench {
    /// Event store + relay throughput and lag, beside raw Postgres and raw JetStream.
    #[command(after_help = crate::help::BENCH_ONE)]
    Store(StoreBenchArgs),
    /// Ingest over HTTP (single events and batches) through the store and relay, beside raw
    /// Postgres single and batched inserts.
    #[command(after_help = crate::help::BENCH_ONE)]
    Ingest(IngestBenchArgs),
    /// Queries through ingest, fan-out, consensus and the read model at rising rates.
    #[command(after_help = crate::help::BENCH_ONE)]
    Pipeline(PipelineBenchArgs),
    /// The audit chain keeping up with store appends, export and verify speed, beside raw
    /// Postgres batched inserts.
    #[command(after_help = crate::help::BENCH_ONE)]
    Audit(AuditBenchArgs),
    /// Three-step sagas of http and exec steps through tool-exec, beside the same calls made
    /// directly.
    #[command(after_help = crate::help::BENCH_ONE)]
    Tools(ToolsBenchArgs),
    /// How well each way of grouping answers decides the labelled sets of `eval/` (precision,
    /// recall, sets decided right), beside the methods of before. Needs no stack; embeddings and
    /// a judge are measured when their endpoints are given.
    #[command(after_help = crate::help::BENCH_ONE)]
    Consensus(ConsensusBenchArgs),
    /// An OpenAI-compatible endpoint answering at once, which `bench pipeline --experts openai`
    /// starts as a process of its own.
    #[command(
        hide = true,
        after_help = "Examples:\n  quorum bench openai-stub --listen 127.0.0.1:0"
    )]
    OpenaiStub(StubArgs),
}

pub async fn run(target: &Target, bench: &Bench, json: bool) -> anyhow::Result<()> {
    match bench {
        Bench::Consensus(args) => return print(&consensus::run(args).await?, json),
        Bench::OpenaiStub(args) => return stub::serve(args).await,
        _ => {}
    }
    if target.urls().is_ok() {
        return measure(target, bench, json).await;
    }
    if !json {
        eprintln!("no stack given: starting a throwaway one");
    }
    let local = crate::local::LocalStack::start_temporary().await?;
    // Ctrl-C ends the run through here, so the throwaway stack is stopped and its directory
    // removed instead of left in the temp dir.
    let local_target = local.target();
    let outcome = tokio::select! {
        r = measure(&local_target, bench, json) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    local.stop().await;
    outcome
}

async fn measure(target: &Target, bench: &Bench, json: bool) -> anyhow::Result<()> {
    let stack = target.connect().await?;
    quorum_event_store::migrate(&stack.pool).await?;
    match bench {
        Bench::Consensus(_) | Bench::OpenaiStub(_) => unreachable!("run without a stack"),
        Bench::Store(args) => print(&store::run(&stack.pool, &stack.js, args).await?, json),
        Bench::Audit(args) => print(&audit::run(&stack.pool, args).await?, json),
        Bench::Tools(args) => print(
            &tools::run(
                &stack.pool,
                &stack.js,
                &stack.nats_url,
                &stack.database_url,
                args,
            )
            .await?,
            json,
        ),
        Bench::Pipeline(args) if args.tracing => print(
            &crate::bench::tracing::run(&stack.pool, &stack.database_url, args).await?,
            json,
        ),
        Bench::Pipeline(args) => print(
            &pipeline::run(
                &stack.pool,
                &stack.js,
                &stack.nats_url,
                &stack.database_url,
                args,
            )
            .await?,
            json,
        ),
        Bench::Ingest(args) => print(
            &ingest::run(
                &stack.pool,
                &stack.js,
                &stack.nats_url,
                &stack.database_url,
                args,
            )
            .await?,
            json,
        ),
    }
}

fn print<R: serde::Serialize + std::fmt::Display>(report: &R, json: bool) -> anyhow::Result<()> {
    if json {
        outln!("{}", serde_json::to_string(report)?)?;
    } else {
        outln!("{report}")?;
    }
    Ok(())
}
