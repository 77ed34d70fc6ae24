//! A keyed-plan connection's generic plan finds rows by key even when it is made while the table
//! is empty, as a projection's first write is; a plain generic plan made then scans the table,
//! and would go on scanning it whole as it grows.

use quorum_event_store::{generic_plan_connection, keyed_plan_connection};
use sqlx::{Executor, PgConnection};

/// The plan `conn` runs for a batch of updates joined by key from an array, on `queries` while it
/// is empty.
async fn update_plan(conn: &mut PgConnection) -> anyhow::Result<String> {
    conn.execute(
        "PREPARE batch(text[], jsonb[]) AS
         UPDATE queries q SET experts = q.experts || u.e
         FROM UNNEST($1, $2) AS u(id, e) WHERE q.query_id = u.id",
    )
    .await?;
    let lines: Vec<String> = sqlx::query_scalar(r#"EXPLAIN EXECUTE batch('{a,b}', '{"{}","{}"}')"#)
        .fetch_all(&mut *conn)
        .await?;
    Ok(lines.join("\n"))
}

#[tokio::test]
async fn a_keyed_plan_made_on_an_empty_table_looks_rows_up_by_key() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let keyed = update_plan(&mut keyed_plan_connection(&db.pool).await?).await?;
    assert!(
        keyed.contains("Index Scan using queries_pkey") && !keyed.contains("Seq Scan"),
        "keyed:\n{keyed}"
    );
    let plain = update_plan(&mut generic_plan_connection(&db.pool).await?).await?;
    assert!(
        plain.contains("Seq Scan on queries"),
        "without the settings the plan made now scans the table, which is what they prevent:\n{plain}"
    );
    Ok(())
}
