//! What an operator does with dead letters: replay them or discard them. Each action changes the
//! letters and appends its events (`quorum.dlq.replayed`, `quorum.dlq.discarded`, naming the
//! operator and the reason) in one transaction, so the history says exactly what was done. A replay
//! only marks the letters; the pump publishes them at the job's rate (see `pump`).

use bytes::Bytes;
use quorum_domain::{Event, SYSTEM_TENANT, TenantId, types};
use quorum_event_store::{EventStore, StoreError, dead_letter_stream};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::letters::{LetterFilter, WHERE, bind_filter};

const SOURCE: &str = "/quorum/dlq-replayer";

/// Who acts: the API key, and its tenant (the only tenant it can act on, with `_system` when the
/// operator asks for it: ADR 21).
#[derive(Clone, Debug)]
pub struct Operator {
    pub key_id: Uuid,
    pub tenant: TenantId,
    /// Whether the letters of `_system` (those no tenant can be named for) are in reach too.
    pub system: bool,
}

impl Operator {
    /// The tenants whose letters this operator reaches.
    pub fn tenants(&self) -> Vec<String> {
        let mut tenants = vec![self.tenant.to_string()];
        if self.system {
            tenants.push(SYSTEM_TENANT.to_owned());
        }
        tenants
    }
}

/// Why an action was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("{0}")]
    Invalid(String),
    #[error("no parked dead letter {0}")]
    NotFound(Uuid),
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("event store")]
    Store(#[from] StoreError),
}

/// A replay: the letters named, or those the filter selects (parked ones only, whatever its
/// `status`), published at `rate` per second.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    #[serde(default)]
    pub ids: Vec<Uuid>,
    pub filter: Option<LetterFilter>,
    #[serde(default)]
    pub reason: String,
    pub rate: Option<f64>,
    #[serde(default)]
    pub dry_run: bool,
}

/// What a replay request did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReplayPlan {
    /// The job publishing the letters; none on a dry run or when nothing matched.
    pub job: Option<Uuid>,
    pub count: i64,
    pub dry_run: bool,
}

/// The most letters one request replays; a larger backlog is replayed by filter in several jobs.
pub const MAX_REPLAY: i64 = 100_000;
/// The default and the highest publish rate, per second.
pub const DEFAULT_RATE: f64 = 100.0;
pub const MAX_RATE: f64 = 100_000.0;

/// Plans (and unless `dry_run`, starts) a replay.
pub async fn replay(
    pool: &PgPool,
    op: &Operator,
    req: &ReplayRequest,
) -> Result<ReplayPlan, ActionError> {
    let (rate, filter) = req.checked()?;
    let mut tx = pool.begin().await?;
    let rows = req.letters(&mut tx, &op.tenants(), &filter).await?;
    let count = rows.len() as i64;
    if req.dry_run || count == 0 {
        return Ok(ReplayPlan {
            job: None,
            count,
            dry_run: req.dry_run,
        });
    }
    let job = Uuid::now_v7();
    start_job(&mut tx, op, req, job, rate, &rows).await?;
    tx.commit().await?;
    Ok(ReplayPlan {
        job: Some(job),
        count,
        dry_run: false,
    })
}

impl ReplayRequest {
    /// The rate and the filter, once the request is found whole: a reason unless a dry run, a
    /// rate in bounds, the letters named one way.
    fn checked(&self) -> Result<(f64, LetterFilter), ActionError> {
        if !self.dry_run && self.reason.trim().is_empty() {
            return Err(ActionError::Invalid("a replay needs a reason".into()));
        }
        let rate = self.rate.unwrap_or(DEFAULT_RATE);
        if !(rate.is_finite() && rate > 0.0 && rate <= MAX_RATE) {
            return Err(ActionError::Invalid(format!(
                "rate must be above 0 and at most {MAX_RATE}"
            )));
        }
        if self.ids.is_empty() == self.filter.is_none() {
            return Err(ActionError::Invalid(
                "name the letters by ids or by a filter, not both".into(),
            ));
        }
        let mut filter = self.filter.clone().unwrap_or_default();
        filter.check().map_err(ActionError::Invalid)?;
        filter.status = Some("parked".into());
        Ok((rate, filter))
    }

    /// The parked letters the request names, locked until the transaction ends: every id named
    /// must be one (`NotFound` otherwise), or those `filter` selects.
    async fn letters(
        &self,
        tx: &mut sqlx::PgConnection,
        tenants: &[String],
        filter: &LetterFilter,
    ) -> Result<Vec<PgRow>, ActionError> {
        if self.ids.is_empty() {
            let sql = format!(
                "SELECT id, event_id, tenant FROM dead_letters WHERE {WHERE} ORDER BY id LIMIT $8 FOR UPDATE"
            );
            return Ok(bind_filter!(
                sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false),
                tenants,
                filter
            )
            .bind(MAX_REPLAY)
            .fetch_all(&mut *tx)
            .await?);
        }
        let rows = sqlx::query(
            "SELECT id, event_id, tenant FROM dead_letters
             WHERE (tenant = ANY($1) OR (tenant IS NULL AND '_system' = ANY($1)))
               AND status = 'parked' AND id = ANY($2)
             ORDER BY id FOR UPDATE",
        )
        .bind(tenants)
        .bind(&self.ids)
        .fetch_all(&mut *tx)
        .await?;
        if let Some(missing) = self
            .ids
            .iter()
            .find(|id| !rows.iter().any(|r| r.get::<Uuid, _>("id") == **id))
        {
            return Err(ActionError::NotFound(*missing));
        }
        Ok(rows)
    }
}

/// Records replay `job` of the letters `rows` in `tx`: the job, the letters marked as replaying
/// in it, and a `quorum.dlq.replayed` for each.
async fn start_job(
    tx: &mut sqlx::PgConnection,
    op: &Operator,
    req: &ReplayRequest,
    job: Uuid,
    rate: f64,
    rows: &[PgRow],
) -> Result<(), ActionError> {
    sqlx::query(
        "INSERT INTO replay_jobs (id, kind, tenant, operator, reason, rate, total)
         VALUES ($1, 'dead-letters', $2, $3, $4, $5, $6)",
    )
    .bind(job)
    .bind(op.tenant.as_str())
    .bind(op.key_id.to_string())
    .bind(req.reason.trim())
    .bind(rate)
    .bind(rows.len() as i64)
    .execute(&mut *tx)
    .await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.get("id")).collect();
    sqlx::query("UPDATE dead_letters SET status = 'replaying', replay_job = $1 WHERE id = ANY($2)")
        .bind(job)
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    let events: Vec<_> = rows
        .iter()
        .map(|r| {
            let id: Uuid = r.get("id");
            let data = json!({
                "dead_letter_id": id, "job": job, "operator": op.key_id,
                "reason": req.reason.trim(), "rate": rate,
            });
            let mut e = action_event(types::DLQ_REPLAYED, id, &letter_tenant(r), data);
            e.id = Uuid::new_v5(&job, id.as_bytes()).to_string();
            e.correlationid = r.get("event_id");
            (dead_letter_stream(id), e)
        })
        .collect();
    let refs: Vec<_> = events.iter().map(|(s, e)| (s, e)).collect();
    if EventStore::append_group_in(tx, &refs).await?.is_none() {
        return Err(ActionError::Invalid(
            "the letters changed meanwhile; try again".into(),
        ));
    }
    Ok(())
}

/// Discards a parked letter for good, with a reason.
pub async fn discard(
    pool: &PgPool,
    op: &Operator,
    id: Uuid,
    reason: &str,
) -> Result<(), ActionError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ActionError::Invalid("a discard needs a reason".into()));
    }
    let mut tx = pool.begin().await?;
    let row = sqlx::query(
        "UPDATE dead_letters SET status = 'discarded', discarded_at = now(), resolution = $3
         WHERE id = $1 AND (tenant = ANY($2) OR (tenant IS NULL AND '_system' = ANY($2)))
           AND status = 'parked'
         RETURNING event_id, tenant",
    )
    .bind(id)
    .bind(op.tenants())
    .bind(reason)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Err(ActionError::NotFound(id));
    };
    let event_id: Option<String> = row.get("event_id");
    let data = json!({ "dead_letter_id": id, "operator": op.key_id, "reason": reason });
    let mut event = action_event(types::DLQ_DISCARDED, id, &letter_tenant(&row), data);
    event.correlationid = event_id;
    let stream = dead_letter_stream(id);
    EventStore::append_in(
        &mut tx,
        &stream,
        quorum_event_store::ExpectedVersion::Any,
        &[event],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The tenant of a letter's row: its events stay in its tenant, whoever acts on it.
fn letter_tenant(row: &sqlx::postgres::PgRow) -> TenantId {
    row.get::<Option<String>, _>("tenant")
        .and_then(|t| TenantId::new(t).ok())
        .unwrap_or_else(TenantId::system)
}

fn action_event(ty: &str, letter: Uuid, tenant: &TenantId, data: serde_json::Value) -> Event {
    let mut e = Event::new(
        SOURCE,
        ty,
        dead_letter_stream(letter),
        tenant.clone(),
        Bytes::from(data.to_string()),
    );
    e.causationid = Some(letter.to_string());
    e
}
