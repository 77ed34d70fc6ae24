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
