//! `quorum migrate`: applies the schema to the target database.

use crate::stack::{Target, redact};

pub async fn run(target: &Target) -> anyhow::Result<()> {
    let (_, database_url) = target.urls()?;
    let pool = sqlx::PgPool::connect(&database_url).await?;
    quorum_event_store::migrate(&pool).await?;
    println!("migrated {}", redact(&database_url));
    Ok(())
}
