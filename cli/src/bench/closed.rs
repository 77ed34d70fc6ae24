//! Closed loop: N clients, each starting its next query when the last one is answered, for a fixed
//! time. What a user of the API sees: queries/s at that concurrency, and each query's latency.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::stats::{Samples, rate};

/// One closed-loop run.
#[derive(Debug, Serialize)]
pub struct LoopResult {
    pub clients: usize,
    pub queries: u64,
    pub queries_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// CPU seconds the whole machine was busy while the counted queries ran (all processes).
    pub machine_cpu_seconds: f64,
}

/// Runs `one` from `clients` clients in a closed loop for `duration` after a warm-up of a tenth of
/// it (connections opened, caches filled; not counted). Any failed query stops the run.
pub async fn run<F, Fut>(clients: usize, duration: Duration, one: F) -> anyhow::Result<LoopResult>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let one = Arc::new(one);
    let samples = Arc::new(Mutex::new(Samples::default()));
    let warm_up = duration / 10;
    let started = Instant::now();
    let (measure_from, until) = (started + warm_up, started + warm_up + duration);
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let (one, samples) = (one.clone(), samples.clone());
        tasks.spawn(async move {
            let mut n = 0u64;
            loop {
                let begun = Instant::now();
                if begun >= until {
                    return anyhow::Ok(n);
                }
                one((client as u64) << 32 | n).await?;
                if begun >= measure_from {
                    samples.lock().expect("samples").push(begun.elapsed());
                    n += 1;
                }
            }
        });
    }
    let busy_from = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        super::procs::machine_busy_seconds()
    });
    let mut queries = 0;
    while let Some(done) = tasks.join_next().await {
        queries += done??;
    }
    let machine_cpu_seconds = super::procs::machine_busy_seconds() - busy_from.await?;
    // Measured over the window the counted queries started in, which the last ones overrun.
    let elapsed = Instant::now().saturating_duration_since(measure_from);
    let mut samples = samples.lock().expect("samples");
    Ok(LoopResult {
        clients,
        queries,
        queries_per_sec: rate(queries, elapsed),
        p50_ms: samples.percentile(50.0),
        p99_ms: samples.percentile(99.0),
        machine_cpu_seconds,
    })
}
