//! Reading dead letters: a tenant's letters by filter with counts per consumer, and one letter whole.
//! Every query is scoped to a set of tenants (the key's, and `_system` when asked, ADR 21): another
//! tenant's letter is not found. Letters parked before every letter had a tenant (tenant NULL) are
//! `_system`'s.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use sqlx::{PgExecutor, Row};
use uuid::Uuid;

/// Which letters. Every field narrows; `status` defaults to `parked`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LetterFilter {
    pub consumer: Option<String>,
    #[serde(rename = "type")]
    pub ty: Option<String>,
    /// Text any of the letter's errors contains (case-insensitive).
    pub error: Option<String>,
    /// Parked at or after.
    pub since: Option<DateTime<Utc>>,
    /// Parked before.
    pub until: Option<DateTime<Utc>>,
    pub status: Option<String>,
}

impl LetterFilter {
    /// Why the filter cannot be run, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        let text = [&self.consumer, &self.ty, &self.error, &self.status];
        if text.iter().any(|v| {
            v.as_deref()
                .is_some_and(|s| s.chars().any(char::is_control))
        }) {
            return Err("filters may not hold control characters".into());
        }
        match self.status.as_deref() {
            None | Some("parked" | "replaying" | "replayed" | "discarded" | "any") => Ok(()),
            Some(s) => Err(format!(
                "status {s:?}: expected parked, replaying, replayed, discarded or any"
            )),
        }
    }
}

/// A letter in a list.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub id: Uuid,
    pub consumer: String,
    pub subject: String,
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub status: String,
    pub attempts: i32,
    /// The last error.
    pub error: Option<String>,
    #[serde(serialize_with = "quorum_http::time::millis")]
    pub first_failed_at: DateTime<Utc>,
    #[serde(serialize_with = "quorum_http::time::millis")]
    pub last_failed_at: DateTime<Utc>,
    pub replayed_from: Option<Uuid>,
}

/// A letter whole.
#[derive(Clone, Debug, Serialize)]
pub struct Letter {
    #[serde(flatten)]
    pub summary: Summary,
    pub tenant: Option<String>,
    pub stream_seq: Option<i64>,
    pub headers: serde_json::Value,
    #[serde(skip)]
    pub payload: Vec<u8>,
    /// Every failed attempt, oldest first, including those of the letter it was replayed from.
    pub errors: serde_json::Value,
    pub resolution: Option<String>,
    pub replay_job: Option<Uuid>,
}

/// Queries with these optional filters (`$n IS NULL OR …`) are planned for their parameters each
/// time (`persistent(false)`): a cached generic plan of them scans the whole table on every page.
pub(crate) const WHERE: &str = "(tenant = ANY($1) OR (tenant IS NULL AND '_system' = ANY($1)))
       AND ($2::text IS NULL OR consumer = $2)
       AND ($3::text IS NULL OR event_type = $3)
       AND ($4::text IS NULL OR errors::text ILIKE '%' || $4 || '%')
       AND ($5::timestamptz IS NULL OR created_at >= $5)
       AND ($6::timestamptz IS NULL OR created_at < $6)
       AND (coalesce($7, 'parked') = 'any' OR status = coalesce($7, 'parked'))";

const SUMMARY: &str = "id, consumer, subject, event_id, event_type, status, attempts, errors -> -1 ->> 'error' AS error,
       first_failed_at, last_failed_at, replayed_from";

/// Binds the tenants (a `&[String]`) and the filter to a query written with [`WHERE`].
macro_rules! bind_filter {
    ($q:expr, $tenant:expr, $f:expr) => {
        $q.bind($tenant)
            .bind(&$f.consumer)
            .bind(&$f.ty)
            .bind(&$f.error)
            .bind($f.since)
            .bind($f.until)
            .bind(&$f.status)
    };
}
pub(crate) use bind_filter;

/// Up to `limit` letters after `after` (ids are time-ordered), oldest first.
pub async fn list(
    db: impl PgExecutor<'_>,
    tenants: &[String],
    filter: &LetterFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Summary>, sqlx::Error> {
    let sql = format!(
        "SELECT {SUMMARY} FROM dead_letters WHERE {WHERE} AND ($8::uuid IS NULL OR id > $8)
         ORDER BY id LIMIT $9"
    );
    let rows = bind_filter!(
        sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false),
        tenants,
        filter
    )
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.iter().map(summary).collect()
}

/// How many letters match, per consumer.
pub async fn counts(
    db: impl PgExecutor<'_>,
    tenants: &[String],
    filter: &LetterFilter,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let sql = format!(
        "SELECT consumer, count(*) FROM dead_letters WHERE {WHERE} GROUP BY consumer ORDER BY consumer"
    );
    bind_filter!(
        sqlx::query_as(sqlx::AssertSqlSafe(sql)).persistent(false),
        tenants,
        filter
    )
    .fetch_all(db)
    .await
}

/// One letter of one of `tenants`.
pub async fn get(
    db: impl PgExecutor<'_>,
    tenants: &[String],
    id: Uuid,
) -> Result<Option<Letter>, sqlx::Error> {
    let sql = format!(
        "SELECT {SUMMARY}, tenant, stream_seq, headers, payload, errors, resolution, replay_job
         FROM dead_letters WHERE id = $1
           AND (tenant = ANY($2) OR (tenant IS NULL AND '_system' = ANY($2)))"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .persistent(false)
        .bind(id)
        .bind(tenants)
        .fetch_optional(db)
        .await?;
    row.map(|r| {
        Ok(Letter {
            summary: summary(&r)?,
            tenant: r.try_get("tenant")?,
            stream_seq: r.try_get("stream_seq")?,
            headers: r.try_get("headers")?,
            payload: r.try_get("payload")?,
            errors: r.try_get("errors")?,
            resolution: r.try_get("resolution")?,
            replay_job: r.try_get("replay_job")?,
        })
    })
    .transpose()
}

fn summary(r: &PgRow) -> Result<Summary, sqlx::Error> {
    Ok(Summary {
        id: r.try_get("id")?,
        consumer: r.try_get("consumer")?,
        subject: r.try_get("subject")?,
        event_id: r.try_get("event_id")?,
        event_type: r.try_get("event_type")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        error: r.try_get("error")?,
        first_failed_at: r.try_get("first_failed_at")?,
        last_failed_at: r.try_get("last_failed_at")?,
        replayed_from: r.try_get("replayed_from")?,
    })
}
