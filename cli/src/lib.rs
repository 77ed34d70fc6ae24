//! The `quorum` operator's tool: runs the whole stack locally (`up`), inspects it (`status`), migrates
//! and benchmarks it. Everything lives here so that tests can drive it; `main.rs` only parses and exits.

pub mod api;
pub mod args;
pub mod bench;
pub mod chaos;
pub mod commands;
pub mod confirm;
pub mod exit;
pub mod help;
pub mod local;
pub mod output;
pub mod progress;
pub mod selection;
pub mod shape;
pub mod stack;
pub mod times;

use clap::{Parser, Subcommand};

use stack::Target;

/// Quorum: an event-sourced pipeline for AI expert orchestration.
#[derive(Debug, Parser)]
#[command(name = "quorum", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub target: Target,
    /// Print machine-readable JSON; an error is then one JSON object on standard error.
    #[arg(long, global = true, help_heading = help::GLOBAL)]
    pub json: bool,
    /// Log what the libraries and services do, on standard error (`RUST_LOG` for finer control).
    #[arg(long, short, global = true, help_heading = help::GLOBAL)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole stack on this machine; without URLs, start nats-server and Postgres too.
    #[command(after_help = help::UP)]
    Up(commands::up::UpArgs),
    /// Streams, consumers, relay, dead letters, and where every service listens.
    #[command(after_help = help::STATUS)]
    Status,
    /// Apply the database migrations.
    #[command(after_help = help::MIGRATE)]
    Migrate,
    /// API keys: create, list, revoke.
    #[command(subcommand, after_help = help::KEYS)]
    Keys(commands::keys::Keys),
    /// Ask the experts a question and show their answers and the consensus.
    #[command(after_help = help::ASK)]
    Ask(commands::ask::AskArgs),
    /// Send a CloudEvent to ingest, over HTTP or NATS.
    #[command(after_help = help::PUBLISH)]
    Publish(commands::publish::PublishArgs),
    /// Stored events: one stream, or by correlation id and time range, page by page.
    #[command(after_help = help::EVENTS)]
    Events(commands::events::EventsArgs),
    /// Committed events, live from JetStream.
    #[command(after_help = help::TAIL)]
    Tail(commands::tail::TailArgs),
    /// The audit chain: verify it, export chained history.
    #[command(subcommand, after_help = help::AUDIT)]
    Audit(commands::audit::Audit),
    /// Dead letters: list, show, replay, discard.
    #[command(after_help = help::DLQ)]
    Dlq(commands::dlq::DlqArgs),
    /// Send stored events again (to a subject, a consumer or a file), or rebuild a read model.
    #[command(after_help = help::REPLAY)]
    Replay(commands::replay::ReplayArgs),
    /// Tool plans as sagas: run one, show one.
    #[command(subcommand, after_help = help::SAGA)]
    Saga(commands::saga::Saga),
    /// The tools a plan may call.
    #[command(subcommand, after_help = help::TOOLS)]
    Tools(commands::saga::Tools),
    /// Measure throughput and latency beside raw baselines.
    #[command(subcommand, after_help = help::BENCH)]
    Bench(commands::bench::Bench),
    /// Kill, stop and restart the stack's parts under load, then check nothing acknowledged was
    /// lost or doubled.
    #[command(after_help = help::CHAOS)]
    Chaos(chaos::ChaosArgs),
    /// A steady load for a long time, then a burst: memory, open files and latency must hold.
    #[command(after_help = help::SOAK)]
    Soak(chaos::soak::SoakArgs),
    /// Shell completions for bash, zsh or fish, on standard output.
    #[command(after_help = help::COMPLETION)]
    Completion(commands::completion::CompletionArgs),
}

impl Cli {
    /// Whether this run writes log lines. Only `up` does by default: it runs services, whose logs
    /// an operator watches. Any other command's standard error is for its own messages; library
    /// notices (sqlx's on every migration check) would bury them, so they show only when asked.
    pub fn logs(&self) -> bool {
        matches!(self.command, Command::Up(_))
            || self.verbose
            || std::env::var_os("RUST_LOG").is_some_and(|v| !v.is_empty())
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Up(args) => commands::up::run(&cli.target, args).await,
        Command::Status => commands::status::run(&cli.target, cli.json).await,
        Command::Migrate => commands::migrate::run(&cli.target, cli.json).await,
        Command::Keys(k) => commands::keys::run(&cli.target, k, cli.json).await,
        Command::Ask(a) => commands::ask::run(&cli.target, a, cli.json).await,
        Command::Publish(a) => commands::publish::run(&cli.target, a, cli.json).await,
        Command::Events(a) => commands::events::run(&cli.target, a, cli.json).await,
        Command::Tail(a) => commands::tail::run(&cli.target, a, cli.json).await,
        Command::Audit(a) => commands::audit::run(&cli.target, a, cli.json).await,
        Command::Dlq(a) => commands::dlq::run(&cli.target, a, cli.json).await,
        Command::Replay(a) => commands::replay::run(&cli.target, a, cli.json).await,
        Command::Saga(a) => commands::saga::run(&cli.target, a, cli.json).await,
        Command::Tools(t) => commands::saga::tools(&cli.target, t, cli.json).await,
        Command::Bench(b) => commands::bench::run(&cli.target, b, cli.json).await,
        Command::Chaos(a) => chaos::run(a, cli.json).await,
        Command::Soak(a) => chaos::soak::run(a, cli.json).await,
        Command::Completion(a) => commands::completion::run(a),
    }
}
