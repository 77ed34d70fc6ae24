//! A worker process for end-to-end tests: runs the relay or a consumer with the recording handler,
//! until SIGTERM/SIGINT, so tests can kill it at any point.

use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use quorum_e2e::RecordingHandler;
use quorum_relay::RelayConfig;
use quorum_runtime::consumer::{self, ConsumerConfig};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    database_url: String,
    #[arg(long)]
    nats_url: String,
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    Relay,
    Consume {
        #[arg(long)]
        consumer: String,
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
        #[arg(long)]
        crash_after_commit: bool,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[arg(long, default_value_t = 5000)]
        ack_wait_ms: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter("info")
        .init();
    let args = Args::parse();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect(&args.database_url)
        .await?;
    let js = async_nats::jetstream::new(async_nats::connect(&args.nats_url).await?);
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal");
        tokio::select! { _ = term.recv() => {}, _ = tokio::signal::ctrl_c() => {} }
        signals.cancel();
    });
    match args.role {
        Role::Relay => {
            let config = RelayConfig {
                poll_interval: Duration::from_millis(50),
                ..RelayConfig::default()
            };
            quorum_relay::run(pool, js, config, shutdown).await;
        }
        Role::Consume {
            consumer: name,
            delay_ms,
            crash_after_commit,
            concurrency,
            ack_wait_ms,
        } => {
            let mut handler = RecordingHandler::new(pool.clone(), &name);
            handler.delay = Duration::from_millis(delay_ms);
            handler.crash_after_commit = crash_after_commit;
            let mut config = ConsumerConfig::new(
                &name,
                vec![quorum_bus::subjects::event_type_filter(
                    quorum_e2e::SOURCE_TYPE,
                )],
            );
            config.concurrency = concurrency;
            config.ack_wait = Duration::from_millis(ack_wait_ms);
            consumer::run(js, pool, config, Arc::new(handler), shutdown, || {
                eprintln!("consumer bound")
            })
            .await?;
        }
    }
    Ok(())
}
