//! `quorum dlq replay`: letters chosen by id or by filter (a filter's count confirmed first), the
//! replay job started, and its progress followed until it completes.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Filter, Replayer};
use crate::api::answer;
use crate::outln;
use crate::progress;

#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// Letters by id; or select them with the filter flags.
    pub ids: Vec<String>,
    #[command(flatten)]
    pub filter: Filter,
    /// Why (recorded with the replay).
    #[arg(long)]
    pub reason: Option<String>,
    /// Letters per second (above 0; as fast as the replayer goes when not given).
    #[arg(long, value_parser = crate::args::rate)]
    pub rate: Option<f64>,
    /// Only count what would be replayed.
    #[arg(long)]
    pub dry_run: bool,
    /// Return once the replay is accepted, without waiting for it.
    #[arg(long)]
    pub no_wait: bool,
    /// Replay letters selected by filter (not by id) without asking; without a terminal to
    /// ask on, such a replay is refused unless given.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

pub(super) async fn run(api: &Replayer, args: &ReplayArgs, json_out: bool) -> anyhow::Result<()> {
    let ReplayArgs {
        ids,
        filter,
        reason,
        rate,
        dry_run,
        no_wait,
        yes,
    } = args;
    let mut req = json!({ "dry_run": dry_run, "reason": reason.clone().unwrap_or_default() });
    if ids.is_empty() {
        req["filter"] = filter.json();
    } else {
        req["ids"] = json!(ids);
    }
    if let Some(rate) = rate {
        req["rate"] = json!(rate);
    }
    // Letters chosen by a filter are as many as it matches: counted first, then confirmed.
    if ids.is_empty() && !dry_run && !yes {
        confirm_count(api, &req).await?;
    }
    let plan = answer(api.post("/v1/dead-letters/replay", &req).send().await?).await?;
    let count = plan["count"].as_u64().unwrap_or(0);
    let Some(job) = plan["job"].as_str().map(str::to_owned) else {
        if json_out {
            outln!("{plan}")?;
        } else if *dry_run {
            outln!("{count} dead letters would be replayed")?;
        } else {
            outln!("nothing to replay")?;
        }
        return Ok(());
    };
    if *no_wait {
        if json_out {
            outln!("{plan}")?;
        } else {
            outln!("replay {job}: {count} letters")?;
        }
        return Ok(());
    }
    let status = follow(api, &job, count).await?;
    if json_out {
        outln!("{status}")?;
    } else {
        outln!(
            "replayed {} of {count} dead letters (job {job})",
            status["done"]
        )?;
    }
    Ok(())
}

/// Asks the replayer how many letters `req` selects and has the operator confirm that many.
async fn confirm_count(api: &Replayer, req: &Value) -> anyhow::Result<()> {
    let mut counting = req.clone();
    counting["dry_run"] = true.into();
    let plan = answer(
        api.post("/v1/dead-letters/replay", &counting)
            .send()
            .await?,
    )
    .await?;
    let count = plan["count"].as_u64().unwrap_or(0);
    if count > 0 {
        crate::confirm::confirm(
            &format!("This replays every parked letter the filter selects ({count})."),
            false,
        )?;
    }
    Ok(())
}

/// Polls the job with a progress bar until it completes, and returns its last status.
async fn follow(api: &Replayer, job: &str, count: u64) -> anyhow::Result<Value> {
    let bar = progress::bar(count, "replaying");
    let status = loop {
        let status = answer(api.get(&format!("/v1/replays/{job}")).send().await?).await?;
        bar.set_position(status["done"].as_u64().unwrap_or(0));
        if status["status"] == "completed" {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    bar.finish_and_clear();
    Ok(status)
}
