//! An event as the store holds it: the CloudEvent plus where it stands in its stream and in commit order.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use quorum_domain::{Event, StreamId, TenantId};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::StoreError;

/// A point in commit order: events are totally ordered by (`tx_id`, `position`), and a reader that has
/// handled everything up to a cursor resumes strictly after it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CommitCursor {
    pub tx_id: u64,
    pub position: i64,
}

impl CommitCursor {
    /// Before every event.
    pub const START: CommitCursor = CommitCursor {
        tx_id: 0,
        position: 0,
    };
}

impl std::fmt::Display for CommitCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.tx_id, self.position)
    }
}

impl std::str::FromStr for CommitCursor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (tx, pos) = s
            .split_once(':')
            .ok_or_else(|| format!("cursor {s:?} is not tx:position"))?;
        Ok(Self {
            tx_id: tx.parse().map_err(|e| format!("cursor tx {tx:?}: {e}"))?,
            position: pos
                .parse()
                .map_err(|e| format!("cursor position {pos:?}: {e}"))?,
        })
    }
}

/// A stored event.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedEvent {
    pub position: i64,
    pub tx_id: u64,
    pub stream_id: StreamId,
    pub stream_version: u64,
    pub tenant: TenantId,
    pub recorded_at: DateTime<Utc>,
    pub event: Event,
}

impl RecordedEvent {
    /// Where this event stands in commit order.
    pub fn cursor(&self) -> CommitCursor {
        CommitCursor {
            tx_id: self.tx_id,
            position: self.position,
        }
    }
}

/// The column list every read selects, in the order [`decode`] expects.
pub(crate) const COLUMNS: &str = "e.position, e.tx_id::text AS tx_id, e.stream_id, e.stream_version, e.tenant, \
     e.recorded_at, e.attributes::text AS attributes, e.data";

/// A stored row that does not read back as an event (its attributes were written by hand, or by a
/// version that wrote what this one refuses). Commit-order readers park it and read on: one row
/// must not stop every tenant's relay or read model.
#[derive(Clone, Debug, PartialEq)]
pub struct Unreadable {
    pub cursor: CommitCursor,
    /// The stream and version as stored, when they read: the relay lets the stream's next
    /// version go after it.
    pub stream_id: Option<StreamId>,
    pub stream_version: Option<u64>,
    pub tenant: Option<TenantId>,
    /// The attributes column as text, and the data, as stored.
    pub attributes: String,
    pub data: Option<Bytes>,
    pub reason: String,
}

/// Reads a row as an event, or says why it cannot; `Err` only when the row is not one of the
/// store's at all (a column missing).
pub(crate) fn decode_or_unreadable(
    row: &PgRow,
) -> Result<Result<RecordedEvent, Unreadable>, StoreError> {
    match decode(row) {
        Ok(e) => Ok(Ok(e)),
        Err(StoreError::Corrupt { position, reason }) => {
            let tx_id: String = row.try_get("tx_id")?;
            let stream: String = row.try_get("stream_id")?;
            let tenant: String = row.try_get("tenant")?;
            let version: i64 = row.try_get("stream_version")?;
            let data: Option<Vec<u8>> = row.try_get("data")?;
            Ok(Err(Unreadable {
                cursor: CommitCursor {
                    tx_id: tx_id.parse().unwrap_or_default(),
                    position,
                },
                stream_id: StreamId::parse(stream).ok(),
                stream_version: u64::try_from(version).ok(),
                tenant: TenantId::new(tenant).ok(),
                attributes: row.try_get("attributes")?,
                data: data.map(Bytes::from),
                reason,
            }))
        }
        Err(e) => Err(e),
    }
}

pub(crate) fn decode(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let position: i64 = row.try_get("position")?;
    let corrupt = |reason: String| StoreError::Corrupt { position, reason };
    let tx_id: String = row.try_get("tx_id")?;
    let stream_id: String = row.try_get("stream_id")?;
    let tenant: String = row.try_get("tenant")?;
    let version: i64 = row.try_get("stream_version")?;
    let data: Option<Vec<u8>> = row.try_get("data")?;
    let attributes: String = row.try_get("attributes")?;
    Ok(RecordedEvent {
        position,
        tx_id: tx_id
            .parse()
            .map_err(|e| corrupt(format!("tx_id {tx_id:?}: {e}")))?,
        stream_id: StreamId::parse(stream_id).map_err(|e| corrupt(e.to_string()))?,
        stream_version: u64::try_from(version).map_err(|e| corrupt(e.to_string()))?,
        tenant: TenantId::new(tenant).map_err(|e| corrupt(e.to_string()))?,
        recorded_at: row.try_get("recorded_at")?,
        event: Event::from_attributes_text(&attributes, data.map(Bytes::from))
            .map_err(|e| corrupt(e.to_string()))?,
    })
}
