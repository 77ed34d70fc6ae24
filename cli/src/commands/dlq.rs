//! `quorum dlq list|show|replay|discard`: dead letters through the dlq-replayer's API, as an
//! operator key of one tenant sees them, with `--system` the letters of no tenant too (ADR 21). A
//! replay waits for its job and shows its progress.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::api::{Api, answer, service_url};
use crate::exit::CliError;
use crate::outln;
use crate::stack::Target;

mod replay;
mod show;

pub use replay::ReplayArgs;

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
    Replay(ReplayArgs),
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
    if let DlqCommand::Replay(ReplayArgs {
        reason: None,
        dry_run: false,
        ..
    }) = &args.command
    {
        return Err(CliError::usage(
            "a replay needs --reason \"why\" (it is recorded with the replay)",
        )
        .into());
    }
    let api = Replayer {
        http: quorum_http_client::client(),
        base: service_url(target, "dlq-replayer", args.dlq_url.as_deref(), "--dlq-url")?,
        key: args.api.key(target)?,
        system: args.system,
    };
    match &args.command {
        DlqCommand::List {
            filter,
            status,
            limit,
        } => list(&api, filter, status.as_deref(), *limit, json_out).await,
        DlqCommand::Show { id } => {
            let body = crate::times::normalized_json(
                answer(api.get(&format!("/v1/dead-letters/{id}")).send().await?).await?,
            );
            if json_out {
                outln!("{}", serde_json::to_string_pretty(&body)?)?;
            } else {
                show::print(&body)?;
            }
            Ok(())
        }
        DlqCommand::Discard { id, reason } => {
            let path = format!("/v1/dead-letters/{id}/discard");
            let body = answer(api.post(&path, &json!({ "reason": reason })).send().await?).await?;
            if json_out {
                outln!("{body}")?;
            } else {
                outln!("discarded {id}")?;
            }
            Ok(())
        }
        DlqCommand::Replay(chosen) => replay::run(&api, chosen, json_out).await,
    }
}

/// The dlq-replayer's API as this operator calls it: every request with the key and the
/// `--system` scope.
struct Replayer {
    http: reqwest::Client,
    base: String,
    key: String,
    system: bool,
}

impl Replayer {
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .query(&[("system", self.system)])
    }

    fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .query(&[("system", self.system)])
            .json(body)
    }
}

/// `dlq list`: a line per letter, then the counts per consumer.
async fn list(
    api: &Replayer,
    filter: &Filter,
    status: Option<&str>,
    limit: i64,
    json_out: bool,
) -> anyhow::Result<()> {
    let mut q = filter.json();
    if let Some(s) = status {
        q["status"] = s.into();
    }
    q["limit"] = limit.into();
    let body = crate::times::normalized_json(
        answer(api.get("/v1/dead-letters").query(&q).send().await?).await?,
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
