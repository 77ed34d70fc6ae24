//! `quorum saga run|show` and `quorum tools list`: submit a tool plan (appended as
//! `quorum.tool.plan.requested` to a new `saga/<id>`), show a saga rebuilt from its events, and the
//! tools `quorum up`'s config allows.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use quorum_domain::{Event, StreamId, TenantId, types};
use quorum_event_store::{EventStore, ExpectedVersion};
use serde_json::json;

use crate::exit::CliError;
use crate::outln;
use crate::stack::Target;

#[derive(Debug, clap::Subcommand)]
pub enum Saga {
    /// Submit a plan (JSON: `{"steps": [...]}`) and wait for the saga to end.
    #[command(after_help = crate::help::SAGA_RUN)]
    Run {
        /// The plan file: `{"steps": [{"name", "tool": {"tool", "args"}, "compensate"?}], "max_attempts"?}`.
        plan: PathBuf,
        /// The tenant the saga runs for (its tool policy applies).
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Return once submitted.
        #[arg(long)]
        no_wait: bool,
    },
    /// A saga's steps, state, compensations and, when it needs attention, its dead letter.
    #[command(after_help = crate::help::SAGA_SHOW)]
    Show {
        /// The saga's id, bare or as its stream (`saga/<id>`).
        id: String,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum Tools {
    /// The tools and policies `quorum up` runs with: the config given, else the running stack's.
    #[command(after_help = crate::help::TOOLS_LIST)]
    List {
        /// A config file (deploy/quorum.example.toml shows every setting); by default the one
        /// the running stack was started with, else the defaults.
        #[arg(long, env = "QUORUM_CONFIG")]
        config: Option<PathBuf>,
    },
}

pub async fn run(target: &Target, saga: &Saga, json_out: bool) -> anyhow::Result<()> {
    let pool = target.connect_postgres().await?;
    let store = EventStore::new(pool);
    match saga {
        Saga::Run {
            plan,
            tenant,
            no_wait,
        } => {
            let text = std::fs::read_to_string(plan)
                .with_context(|| format!("cannot read the plan {}", plan.display()))?;
            let plan: quorum_saga::Plan = serde_json::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}: not a plan: {e}", plan.display()))?;
            let id = uuid::Uuid::now_v7().to_string();
            let stream = StreamId::new("saga", &id)?;
            let data = json!({ "plan": plan, "origin": { "kind": "upstream" } });
            let mut event = Event::new(
                "/quorum/cli",
                types::TOOL_PLAN_REQUESTED,
                stream.clone(),
                TenantId::new(tenant.clone())?,
                Bytes::from(data.to_string()),
            );
            event.correlationid = Some(id.clone());
            store
                .append(&stream, ExpectedVersion::NoStream, &[event])
                .await?;
            // Under --json standard error is kept for the one error object a failure writes.
            if !json_out {
                eprintln!("saga {id} submitted");
            }
            if *no_wait {
                outln!(
                    "{}",
                    if json_out {
                        json!({ "saga": id }).to_string()
                    } else {
                        id
                    }
                )?;
                return Ok(());
            }
            loop {
                let view = quorum_tool_exec::show::show(&store, &id).await?;
                if let Some(v) =
                    view.filter(|v| !matches!(v.status.as_str(), "running" | "compensating"))
                {
                    print(&v, json_out)?;
                    return match v.status.as_str() {
                        "completed" => Ok(()),
                        // Compensated is undone, not done: the plan did not happen either.
                        status => {
                            let attention = if v.needs_attention {
                                format!(", and needs attention (quorum saga show {})", v.saga)
                            } else {
                                String::new()
                            };
                            Err(
                                CliError::failed(format!("saga {} {status}{attention}", v.saga))
                                    .into(),
                            )
                        }
                    };
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        // The id as `quorum ask` and the events name it (`saga/<id>`) or bare.
        Saga::Show { id } => {
            match quorum_tool_exec::show::show(&store, id.trim_start_matches("saga/")).await? {
                Some(v) => print(&v, json_out),
                None => anyhow::bail!("no saga {id}"),
            }
        }
    }
}

fn print(v: &quorum_tool_exec::show::SagaView, json_out: bool) -> anyhow::Result<()> {
    if json_out {
        outln!("{}", serde_json::to_string_pretty(v)?)?;
        return Ok(());
    }
    let attention = if v.needs_attention {
        "  NEEDS ATTENTION"
    } else {
        ""
    };
    outln!("saga {}: {}{attention}", v.saga, v.status)?;
    if let Some(r) = &v.reason {
        outln!("  reason: {r}")?;
    }
    match (&v.resolution, &v.dead_letter) {
        (Some(r), _) => outln!("  resolved: {r}")?,
        (None, Some(d)) => outln!("  dead letter: {d}  (quorum dlq show {d})")?,
        (None, None) => {}
    }
    for (i, s) in v.steps.iter().enumerate() {
        outln!(
            "  {i}. {:<16} {:<6} {:<12} attempts {} (undo {}){}",
            s["name"].as_str().unwrap_or(""),
            s["tool"].as_str().unwrap_or(""),
            s["status"].as_str().unwrap_or(""),
            s["attempts"],
            s["compensation_attempts"],
            s["error"]
                .as_str()
                .map(|e| format!("  {e}"))
                .unwrap_or_default()
        )?;
    }
    outln!("  events: {}", v.events.join(" → "))?;
    Ok(())
}

pub async fn tools(target: &Target, tools: &Tools, json_out: bool) -> anyhow::Result<()> {
    let Tools::List { config } = tools;
    let config = target.config_file(config.as_deref());
    let up: super::up_config::UpConfig = quorum_runtime::config::load_validated(config.as_deref())?;
    let t = &up.tool_exec;
    // Each MCP server is asked for its tools, so the listing is what a plan can call right now.
    let live = quorum_tool_exec::tools::Tools::new(t);
    let mut mcp = serde_json::Map::new();
    for name in live.mcp_servers() {
        let listed = match live.mcp_tools(&name).await {
            Ok(tools) => json!(tools
                .iter()
                .map(|tool| json!({ "name": format!("mcp:{name}/{}", tool.name), "description": tool.description }))
                .collect::<Vec<_>>()),
            Err(e) => json!({ "error": e.message }),
        };
        mcp.insert(name, listed);
    }
    // What confines exec steps on this machine: a weaker mode than strict is shown, as is a
    // strict mode that will refuse every run for want of kernel support.
    let sandbox = live.exec_containment().await;
    let listing = json!({
        "http": { "allowed_hosts": t.http.allowed_hosts, "concurrency": t.http.concurrency },
        "exec": { "allowed_programs": t.exec.allowed_programs, "limits": t.exec.limits,
                  "sandbox": sandbox },
        "mcp": mcp,
        "config": config,
        "default_policy": t.default_policy,
        "tenants": t.tenants,
    });
    if json_out {
        outln!("{}", serde_json::to_string_pretty(&listing)?)?;
        return Ok(());
    }
    outln!(
        "config {}",
        config.as_deref().map_or_else(
            || "none: the defaults and QUORUM__… variables".to_owned(),
            |c| c.display().to_string()
        )
    )?;
    outln!("http   hosts: {}", t.http.allowed_hosts.join(", "))?;
    let programs: Vec<String> = t
        .exec
        .allowed_programs
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    outln!("exec   programs: {}", programs.join(", "))?;
    outln!(
        "       sandbox: {:?}, filesystem confined {}, network namespace {}{}",
        sandbox.mode,
        sandbox.filesystem,
        sandbox.network_namespace,
        sandbox
            .refused
            .as_deref()
            .map(|why| format!(": REFUSES EVERY RUN ({why})"))
            .unwrap_or_default()
    )?;
    for (name, tools) in &mcp {
        match tools.as_array() {
            Some(list) => {
                outln!("mcp    {name}:")?;
                for tool in list {
                    outln!(
                        "         {:<40} {}",
                        tool["name"].as_str().unwrap_or(""),
                        tool["description"].as_str().unwrap_or("")
                    )?;
                }
            }
            None => outln!(
                "mcp    {name}: unreachable: {}",
                tools["error"].as_str().unwrap_or("")
            )?,
        }
    }
    outln!(
        "policy default: {}",
        t.default_policy.allowed_tools.join(", ")
    )?;
    for (tenant, p) in &t.tenants {
        outln!("policy {tenant}: {}", p.allowed_tools.join(", "))?;
    }
    Ok(())
}
