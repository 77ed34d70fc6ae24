//! The lookups every `GET /v1/queries/{id}` makes read one row however long the tenant's history.
//! Each is planned as Postgres plans a prepared statement from its sixth call on (the generic
//! plan, knowing no parameter's value), over a tenant with thousands of queries and statistics
//! that favour reading the tenant's rows, and run: it must probe its unique index alone and touch
//! a handful of pages per unique probe. (The lookups as they were, with `AND tenant = $2`, read the tenant's
//! index here, as they did in `bench pipeline`.)

use quorum_ingest::lookups::{QUERY_VIEW, QUERY_VIEWS, SUBMISSION_AND_VIEW};
use serde_json::Value;

#[tokio::test]
async fn a_query_lookup_reads_one_row_however_many_the_tenant_has() -> anyhow::Result<()> {
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    // 5,000 queries of one tenant, each a stream of five events, and a few of another.
    for (tenant, queries) in [("big", 5_000), ("small", 3)] {
        sqlx::query(
            "INSERT INTO events (tenant, stream_id, stream_version, event_id, source, type, attributes)
             SELECT $1, 'query/' || $1 || (i / 5), i % 5 + 1, 'e' || i, '/bench', 'quorum.query.submitted', '{}'
             FROM generate_series(0, $2 * 5 - 1) AS i",
        )
        .bind(tenant)
        .bind(queries)
        .execute(&db.pool)
        .await?;
        sqlx::query(
            "INSERT INTO queries (query_id, stream_id, tenant, question, submitted_at, deadline_at)
             SELECT $1 || i, 'query/' || $1 || i, $1, 'Why?', now(), now()
             FROM generate_series(0, $2 - 1) AS i",
        )
        .bind(tenant)
        .bind(queries)
        .execute(&db.pool)
        .await?;
    }
    // Statistics as misleading as a young deployment's: the tenant looks rare and a query's id
    // common, so reading the tenant's rows looks cheaper than probing the unique key.
    for (table, column, distinct) in [
        ("events", "tenant", 10_000),
        ("events", "stream_id", 2),
        ("queries", "tenant", 10_000),
        ("queries", "query_id", 2),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "ALTER TABLE {table} ALTER COLUMN {column} SET (n_distinct = {distinct}); ANALYZE {table}"
        )))
        .execute(&db.pool)
        .await?;
    }

    let mut conn = db.pool.acquire().await?;
    sqlx::query("SET plan_cache_mode = force_generic_plan")
        .execute(&mut *conn)
        .await?;
    // Each lookup with how many unique probes it makes: one index descent and one heap page per
    // probe is about four pages, eight leaves room for a split or a hint bit.
    for (name, sql, types, args, probes) in [
        (
            "submission_and_view",
            SUBMISSION_AND_VIEW,
            "text, text",
            "'big42', 'YYYY'",
            2,
        ),
        ("query_view", QUERY_VIEW, "text, text", "'big42', 'YYYY'", 1),
        (
            "query_views",
            QUERY_VIEWS,
            "text[], text",
            "ARRAY['big42'], 'YYYY'",
            1,
        ),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PREPARE {name}({types}) AS {sql}"
        )))
        .execute(&mut *conn)
        .await?;
        let explained: Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE {name}({args})"
        )))
        .fetch_one(&mut *conn)
        .await?;
        let plan = &explained[0]["Plan"];
        let text = plan.to_string();
        assert!(
            !text.contains("by_tenant"),
            "{name} reads a tenant index: {plan:#}"
        );
        assert_eq!(plan["Actual Rows"], 1, "{name}: {plan:#}");
        let pages = plan["Shared Hit Blocks"].as_u64().unwrap_or(0)
            + plan["Shared Read Blocks"].as_u64().unwrap_or(0);
        assert!(
            pages <= 8 * probes,
            "{name} touched {pages} pages: {plan:#}"
        );
    }
    Ok(())
}

/// The waits' listener reads [`QUERY_VIEWS`] on a connection of its own that runs generic plans
/// (ADR 44), and makes that plan at its first read, which may come while `queries` is still empty.
/// Made then, the plan must still probe the primary key: the test above shows the same plan on a
/// large table, this one shows that it is not a scan for being made on an empty one.
#[tokio::test]
async fn the_listeners_plan_made_on_an_empty_table_probes_the_key() -> anyhow::Result<()> {
    use sqlx::Executor;
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let mut conn = quorum_event_store::generic_plan_connection(&db.pool).await?;
    conn.execute(sqlx::AssertSqlSafe(format!(
        "PREPARE views(text[], text) AS {QUERY_VIEWS}"
    )))
    .await?;
    let lines: Vec<String> = sqlx::query_scalar("EXPLAIN EXECUTE views('{a,b}', 'YYYY')")
        .fetch_all(&mut conn)
        .await?;
    let plan = lines.join("\n");
    assert!(
        plan.contains("Index Cond: (query_id = ANY ($1))") && !plan.contains("Seq Scan"),
        "{plan}"
    );
    Ok(())
}
