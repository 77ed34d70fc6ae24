//! `quorum replay --rebuild <projection>`: a read model dropped and built again from the first
//! event, with the request and its completion recorded like any replay's.

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use quorum_domain::types;
use quorum_event_store::EventStore;

use super::{operator, record};
use crate::outln;
use crate::progress;

/// The projections `--rebuild` knows.
pub(super) const PROJECTIONS: [&str; 1] = ["queries"];

/// Rebuilds `projection`; a dry run when `reason` is `None`.
pub(super) async fn run(
    pool: &PgPool,
    projection: &str,
    reason: Option<&str>,
    json_out: bool,
) -> anyhow::Result<()> {
    let Some(reason) = reason else {
        if json_out {
            outln!("{}", json!({ "dry_run": true, "rebuild": projection }))?;
        } else {
            outln!("{projection} would be rebuilt from every stored event")?;
        }
        return Ok(());
    };
    let store = EventStore::new(pool.clone());
    let job = Uuid::now_v7();
    let data =
        json!({ "job": job, "rebuild": projection, "reason": reason, "operator": operator() });
    record(&store, job, types::REPLAY_REQUESTED, data).await?;
    let head = store.head().await?.map_or(0, |(c, _)| c.position);
    let bar = progress::bar(head as u64, "rebuilding");
    quorum_consensus::view::rebuild(pool, |at| bar.set_position(at as u64)).await?;
    bar.finish_and_clear();
    record(
        &store,
        job,
        types::REPLAY_COMPLETED,
        json!({ "job": job, "rebuild": projection }),
    )
    .await?;
    if json_out {
        outln!("{}", json!({ "job": job, "rebuilt": projection }))?;
    } else {
        outln!("rebuilt {projection} (job {job})")?;
    }
    Ok(())
}
