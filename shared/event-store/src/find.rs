//! History queries for people and tools: a tenant's events by correlation id and time range.

use chrono::{DateTime, Utc};
use quorum_domain::TenantId;
use sqlx::PgConnection;

use crate::recorded::{COLUMNS, decode};
use crate::{RecordedEvent, StoreError};

/// Which of a tenant's events to read. Every field narrows; results come in position order, from
/// just after `after_position`, so a reader pages by passing the last position it got.
#[derive(Clone, Debug)]
pub struct Filter {
    pub tenant: TenantId,
    pub correlation_id: Option<String>,
    /// Recorded at or after.
    pub since: Option<DateTime<Utc>>,
    /// Recorded before.
    pub until: Option<DateTime<Utc>>,
    pub after_position: i64,
    pub limit: i64,
}

pub(crate) async fn find(
    conn: &mut PgConnection,
    filter: &Filter,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let _span = crate::span::store_span(crate::span::Operation::Select, 1);
    find_traced(conn, filter).await
}

async fn find_traced(
    conn: &mut PgConnection,
    filter: &Filter,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events e
         WHERE e.tenant = $1
           AND ($2::text IS NULL OR e.correlation_id = $2)
           AND ($3::timestamptz IS NULL OR e.recorded_at >= $3)
           AND ($4::timestamptz IS NULL OR e.recorded_at < $4)
           AND e.position > $5
         ORDER BY e.position LIMIT $6"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .persistent(false)
        .bind(filter.tenant.as_str())
        .bind(filter.correlation_id.as_deref())
        .bind(filter.since)
        .bind(filter.until)
        .bind(filter.after_position)
        .bind(filter.limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(decode).collect()
}

/// Which events a replay or an export takes, across tenants. Every field narrows.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Selection {
    pub tenant: Option<String>,
    pub correlation_id: Option<String>,
    pub stream: Option<String>,
    #[serde(rename = "type")]
    pub ty: Option<String>,
    /// Recorded at or after.
    pub since: Option<DateTime<Utc>>,
    /// Recorded before.
    pub until: Option<DateTime<Utc>>,
}

impl Selection {
    /// Refuses a selection by correlation id, with no tenant named, whose events belong to more
    /// than one tenant: correlation ids come from publishers, and two tenants may use the same,
    /// so a replay or an export by one must never carry another tenant's events along. Names
    /// the tenants, for the caller to choose one.
    pub async fn check_one_tenant(&self, pool: &sqlx::PgPool) -> Result<(), StoreError> {
        let (Some(cid), None) = (&self.correlation_id, &self.tenant) else {
            return Ok(());
        };
        let tenants: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT tenant FROM events WHERE correlation_id = $1 ORDER BY tenant LIMIT 10",
        )
        .bind(cid)
        .fetch_all(pool)
        .await?;
        if tenants.len() > 1 {
            return Err(StoreError::Invalid {
                id: cid.clone(),
                reason: format!(
                    "correlation id {cid} is used by tenants {}: name one with --tenant",
                    tenants.join(", ")
                ),
            });
        }
        Ok(())
    }
}

/// Queries with these optional filters (`$n IS NULL OR …`) are planned for their parameters each
/// time (`persistent(false)`): a cached generic plan of them scans the whole table on every page.
const SELECTED: &str = "($1::text IS NULL OR e.tenant = $1)
           AND ($2::text IS NULL OR e.correlation_id = $2)
           AND ($3::text IS NULL OR e.stream_id = $3)
           AND ($4::text IS NULL OR e.type = $4)
           AND ($5::timestamptz IS NULL OR e.recorded_at >= $5)
           AND ($6::timestamptz IS NULL OR e.recorded_at < $6)
           AND e.tx_id < $7::text::xid8";

/// How many selected events were committed by transactions below `upto_xmin`.
pub(crate) async fn count_selected(
    conn: &mut PgConnection,
    s: &Selection,
    upto_xmin: u64,
) -> Result<i64, StoreError> {
    let sql = format!("SELECT count(*) FROM events e WHERE {SELECTED}");
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .persistent(false)
        .bind(&s.tenant)
        .bind(&s.correlation_id)
        .bind(&s.stream)
        .bind(&s.ty)
        .bind(s.since)
        .bind(s.until)
        .bind(upto_xmin.to_string())
        .fetch_one(conn)
        .await?)
}

/// Selected events after `after` in commit order, committed below `upto_xmin`: a fixed set, so a
/// replay that resumes sees the same events it would have seen in one go.
pub(crate) async fn select(
    conn: &mut PgConnection,
    s: &Selection,
    after: crate::CommitCursor,
    upto_xmin: u64,
    limit: i64,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events e
         WHERE {SELECTED} AND (e.tx_id, e.position) > ($8::text::xid8, $9)
         ORDER BY e.tx_id, e.position LIMIT $10"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .persistent(false)
        .bind(&s.tenant)
        .bind(&s.correlation_id)
        .bind(&s.stream)
        .bind(&s.ty)
        .bind(s.since)
        .bind(s.until)
        .bind(upto_xmin.to_string())
        .bind(after.tx_id.to_string())
        .bind(after.position)
        .bind(limit)
        .fetch_all(conn)
        .await?;
    rows.iter().map(decode).collect()
}
