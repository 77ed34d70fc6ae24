//! `quorum audit verify|export`: the hash chain checked from the stored events, and chained history
//! written out for an auditor. Both read Postgres directly (an operator's tool); auditors without
//! database access use the audit service's `GET /v1/audit/export`.

use std::io::Write;
use std::path::PathBuf;

use quorum_audit::export::{self, Format};
use quorum_audit::verify::{self, Range};

use crate::exit::CliError;
use crate::outln;
use crate::output;
use crate::progress;
use crate::selection::SelectionArgs;
use crate::stack::Target;

#[derive(Debug, clap::Subcommand)]
pub enum Audit {
    /// Recompute the chain and report the first broken link; exits 1 when it is broken.
    #[command(after_help = crate::help::AUDIT_VERIFY)]
    Verify {
        /// The first event position to check (default: the chain's start).
        #[arg(long)]
        from: Option<i64>,
        /// The last event position to check (default: the chain's head).
        #[arg(long)]
        to: Option<i64>,
    },
    /// Chained events in commit order, each with its link's hash, as JSON lines or CSV.
    #[command(after_help = crate::help::AUDIT_EXPORT)]
    Export(ExportArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub select: SelectionArgs,
    /// `jsonl` or `csv`.
    #[arg(long, default_value = "jsonl")]
    pub format: Format,
    /// Write here instead of standard output (a progress bar shows on a terminal).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

const PAGE: i64 = 2000;

pub async fn run(target: &Target, audit: &Audit, json: bool) -> anyhow::Result<()> {
    if let Audit::Verify {
        from: Some(from),
        to: Some(to),
    } = audit
        && from > to
    {
        // Checked before connecting: an empty range would verify nothing and look like success.
        return Err(CliError::usage(format!(
            "--from {from} is after --to {to}: give the lower event position first"
        ))
        .into());
    }
    let pool = target.connect_postgres().await?;
    match audit {
        Audit::Verify { from, to } => verify_chain(&pool, *from, *to, json).await,
        Audit::Export(args) => export_to(&pool, args, json).await,
    }
}

async fn verify_chain(
    pool: &sqlx::PgPool,
    from: Option<i64>,
    to: Option<i64>,
    json: bool,
) -> anyhow::Result<()> {
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_chain")
        .fetch_one(pool)
        .await?;
    let bar = progress::bar(total as u64, "verifying");
    let range = Range {
        from_position: from,
        to_position: to,
    };
    let report = verify::verify(pool, range, |n| bar.set_position(n)).await?;
    bar.finish_and_clear();
    // A range asked for and nothing in it has verified nothing: a failure, never "chain ok".
    let empty = (report.checked == 0 && (from.is_some() || to.is_some())).then(|| {
        format!(
            "no chained events between positions {} and {}; the chain may not have reached them yet",
            from.map_or("the start".to_owned(), |p| p.to_string()),
            to.map_or("the head".to_owned(), |p| p.to_string()),
        )
    });
    if json {
        outln!("{}", serde_json::to_string_pretty(&verify_json(&report))?)?;
    } else if let Some(b) = &report.broken {
        outln!(
            "chain BROKEN at link {} (event position {}, id {})",
            b.seq,
            b.position,
            b.event_id
        )?;
        outln!("  {}", b.reason)?;
        outln!("  expected {}", b.expected)?;
        outln!("  found    {}", b.found)?;
    } else if let Some(n) = report.missing.filter(|n| *n > 0) {
        outln!("chain BROKEN: {n} events committed before its head are not in it")?;
    } else if empty.is_none() {
        outln!(
            "chain ok: {} links checked ({}..{})",
            report.checked,
            report.first_seq.unwrap_or(0),
            report.last_seq.unwrap_or(0)
        )?;
    }
    if !report.ok() {
        return Err(CliError::failed("the audit chain is broken").into());
    }
    match empty {
        Some(message) => Err(CliError::failed(message).into()),
        None => Ok(()),
    }
}

/// `audit verify --json`: the same keys and types on every run. `missing` is a count (0 when none
/// were found or, for a range, none were looked for); `missing_checked` says whether they were
/// (over the whole chain only).
fn verify_json(report: &verify::Report) -> serde_json::Value {
    serde_json::json!({
        "ok": report.ok(),
        "checked": report.checked,
        "first_seq": report.first_seq,
        "last_seq": report.last_seq,
        "broken": report.broken,
        "missing": report.missing.unwrap_or(0),
        "missing_checked": report.missing.is_some(),
    })
}

async fn export_to(pool: &sqlx::PgPool, args: &ExportArgs, json: bool) -> anyhow::Result<()> {
    let selection = args.select.selection();
    // Never one tenant's records carried along with another's under a shared correlation id.
    selection.check_one_tenant(pool).await?;
    let total = export::count(pool, &selection).await?;
    if total == 0
        && let Some(asked) = args.select.specific()
    {
        return Err(CliError::failed(format!("no chained events with {asked}")).into());
    }
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(path)?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    // A reader of standard output that goes away ends the export quietly (`crate::output`).
    let failed_write = |e: std::io::Error| match args.output {
        Some(_) => anyhow::Error::new(e),
        None => output::stdout_error(e),
    };
    let bar = match args.output {
        Some(_) => progress::bar(total as u64, "exporting"),
        None => indicatif::ProgressBar::hidden(),
    };
    let (mut after, mut first, mut written) = (0i64, true, 0u64);
    let mut buf = Vec::new();
    loop {
        let records = export::page(pool, &selection, after, PAGE).await?;
        buf.clear();
        export::write(args.format, &records, first, &mut buf);
        out.write_all(&buf).map_err(failed_write)?;
        first = false;
        written += records.len() as u64;
        bar.set_position(written);
        match records.last() {
            Some(r) if records.len() as i64 == PAGE => after = r.seq,
            _ => break,
        }
    }
    out.flush().map_err(failed_write)?;
    bar.finish_and_clear();
    if args.output.is_some() && !json {
        eprintln!("exported {written} events");
    }
    Ok(())
}
