//! `quorum dlq list|show|replay|discard`: dead letters through the dlq-replayer's API, as an
//! operator key of one tenant sees them, with `--system` the letters of no tenant too (ADR 21). A
//! replay waits for its job and shows its progress.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::api::{Api, answer, service_url};
use crate::exit::CliError;
use crate::outln;
use crate::progress;
use crate::stack::Target;

mod show;

#[derive(Debug, Clone, clap::Args)]
pub struct DlqArgs {
    #[command(flatten)]
    pub api: Api,
    /// The dlq-replayer's base URL; defaults to the stack `quorum up` runs.
    #[arg(
        long,
        env = "QUORUM_DLQ_URL",
        global = true,
        help_heading = crate::help::CONNECTION
    )]
    pub dlq_url: Option<String>,
    /// Reach the letters of `_system` too: those no tenant can be named for (a message on an
    /// ingest subject whose tenant token is invalid, one that did not decode). `quorum status`
    /// counts them with the rest.
    #[arg(long, global = true)]
    pub system: bool,
    #[command(subcommand)]
    pub command: DlqCommand,
}

#[derive(Debug, Clone, Default, clap::Args)]
pub struct Filter {
    /// Letters parked by this consumer (`ingest`, `consensus`, `expert-fanout`, `tool-exec`, …).
    #[arg(long)]
    pub consumer: Option<String>,
    /// Letters of events of this type (`quorum.query.submitted`).
    #[arg(long = "type")]
    pub ty: Option<String>,
    /// Letters whose errors contain this text.
    #[arg(long)]
    pub error: Option<String>,
    /// Parked at or after: a duration ago (`1h`, `30m`, `2d`) or an RFC 3339 date.
    #[arg(long, value_parser = crate::args::time)]
    pub since: Option<DateTime<Utc>>,
    /// Parked before: a duration ago (`1h`, `30m`, `2d`) or an RFC 3339 date.
    #[arg(long, value_parser = crate::args::time)]
    pub until: Option<DateTime<Utc>>,
}

impl Filter {
    fn json(&self) -> Value {
        let mut m = serde_json::Map::new();
        let time = |t: &Option<DateTime<Utc>>| t.map(crate::times::rfc3339);
        let fields = [
            ("consumer", &self.consumer),
            ("type", &self.ty),
            ("error", &self.error),
            ("since", &time(&self.since)),
            ("until", &time(&self.until)),
        ];
        for (k, v) in fields {
            if let Some(v) = v {
                m.insert(k.into(), v.clone().into());
            }
        }
        Value::Object(m)
    }
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum DlqCommand {
    /// Letters with counts per consumer.
    #[command(after_help = crate::help::DLQ_LIST)]
    List {
        #[command(flatten)]
        filter: Filter,
        /// parked (default), replaying, replayed, discarded or any.
        #[arg(long, value_parser = ["parked", "replaying", "replayed", "discarded", "any"])]
        status: Option<String>,
        /// At most this many letters (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// One letter: headers, payload and every attempt's error (as text; the API's JSON with --json).
    #[command(after_help = crate::help::DLQ_SHOW)]
    Show {
        /// The letter's id (from `quorum dlq list`, `saga show` or `status`).
        id: String,
    },
    /// Publish letters again to the consumer that parked them.
    #[command(after_help = crate::help::DLQ_REPLAY)]
    Replay {
        /// Letters by id; or select them with the filter flags.
        ids: Vec<String>,
        #[command(flatten)]
        filter: Filter,
        /// Why (recorded with the replay).
        #[arg(long)]
        reason: Option<String>,
        /// Letters per second (above 0; as fast as the replayer goes when not given).
        #[arg(long, value_parser = crate::args::rate)]
        rate: Option<f64>,
        /// Only count what would be replayed.
        #[arg(long)]
        dry_run: bool,
        /// Return once the replay is accepted, without waiting for it.
        #[arg(long)]
        no_wait: bool,
        /// Replay letters selected by filter (not by id) without asking; without a terminal to
        /// ask on, such a replay is refused unless given.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Give up on a letter for good; a saga that needed attention for it no longer does.
    #[command(after_help = crate::help::DLQ_DISCARD)]
    Discard {
        /// The letter's id.
        id: String,
        /// Why (recorded with the discard).
        #[arg(long)]
        reason: String,
    },
}

pub async fn run(target: &Target, args: &DlqArgs, json_out: bool) -> anyhow::Result<()> {
    if let DlqCommand::Replay {
        reason: None,
        dry_run: false,
        ..
    } = &args.command
    {
        return Err(CliError::usage(
            "a replay needs --reason \"why\" (it is recorded with the replay)",
        )
        .into());
    }
    let base = service_url(target, "dlq-replayer", args.dlq_url.as_deref(), "--dlq-url")?;
    let key = args.api.key(target)?;
    let http = quorum_http_client::client();
    let scope = [("system", args.system)];
    let get = |path: String| {
        http.get(format!("{base}{path}"))
            .bearer_auth(&key)
            .query(&scope)
    };
    match &args.command {
        DlqCommand::List {
            filter,
            status,
            limit,
        } => {
            let mut q = filter.json();
            if let Some(s) = status {
                q["status"] = s.clone().into();
            }
            q["limit"] = (*limit).into();
            let body = crate::times::normalized_json(
                answer(get("/v1/dead-letters".into()).query(&q).send().await?).await?,
            );
            if json_out {
                outln!("{}", serde_json::to_string_pretty(&body)?)?;
                return Ok(());
            }
            for l in body["letters"].as_array().into_iter().flatten() {
                outln!(
                    "{}  {:<14} {:<9} {:<28} {} attempts  {}",
                    l["id"].as_str().unwrap_or(""),
                    l["consumer"].as_str().unwrap_or(""),
                    l["status"].as_str().unwrap_or(""),
                    l["event_type"].as_str().unwrap_or("-"),
                    l["attempts"],
                    l["error"].as_str().unwrap_or("")
                )?;
            }
            let counts = body["counts"].as_object().cloned().unwrap_or_default();
            let total: i64 = counts.values().filter_map(Value::as_i64).sum();
            let per: Vec<String> = counts.iter().map(|(c, n)| format!("{c}: {n}")).collect();
            outln!("{total} dead letters ({})", per.join(", "))?;
            Ok(())
        }
        DlqCommand::Show { id } => {
            let body = crate::times::normalized_json(
                answer(get(format!("/v1/dead-letters/{id}")).send().await?).await?,
            );
            if json_out {
                outln!("{}", serde_json::to_string_pretty(&body)?)?;
            } else {
                show::print(&body)?;
            }
            Ok(())
        }
        DlqCommand::Discard { id, reason } => {
            let response = http
                .post(format!("{base}/v1/dead-letters/{id}/discard"))
                .bearer_auth(&key)
                .query(&scope)
                .json(&json!({ "reason": reason }))
                .send()
                .await?;
            let body = answer(response).await?;
            if json_out {
                outln!("{body}")?;
            } else {
                outln!("discarded {id}")?;
            }
            Ok(())
        }
        DlqCommand::Replay {
            ids,
            filter,
            reason,
            rate,
            dry_run,
            no_wait,
            yes,
        } => {
            let mut req =
                json!({ "dry_run": dry_run, "reason": reason.clone().unwrap_or_default() });
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
                let mut counting = req.clone();
                counting["dry_run"] = true.into();
                let plan = answer(
                    http.post(format!("{base}/v1/dead-letters/replay"))
                        .bearer_auth(&key)
                        .query(&scope)
                        .json(&counting)
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
            }
            let response = http
                .post(format!("{base}/v1/dead-letters/replay"))
                .bearer_auth(&key)
                .query(&scope)
                .json(&req)
                .send()
                .await?;
            let plan = answer(response).await?;
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
                outln!(
                    "{}",
                    if json_out {
                        plan.to_string()
                    } else {
                        format!("replay {job}: {count} letters")
                    }
                )?;
                return Ok(());
            }
            let bar = progress::bar(count, "replaying");
            let status = loop {
                let status = answer(get(format!("/v1/replays/{job}")).send().await?).await?;
                bar.set_position(status["done"].as_u64().unwrap_or(0));
                if status["status"] == "completed" {
                    break status;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            bar.finish_and_clear();
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
    }
}
