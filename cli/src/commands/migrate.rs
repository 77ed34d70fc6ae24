//! `quorum migrate`: applies the schema to the target database.

use crate::outln;
use crate::stack::{Target, redact};

pub async fn run(target: &Target, json: bool) -> anyhow::Result<()> {
    let pool = target.connect_postgres().await?;
    quorum_event_store::migrate(&pool).await?;
    let database_url = target.database_url()?;
    if json {
        outln!(
            "{}",
            serde_json::json!({ "migrated": redact(&database_url) })
        )?;
    } else {
        outln!("migrated {}", redact(&database_url))?;
    }
    Ok(())
}
