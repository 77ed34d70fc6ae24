//! `export`: chained history, selected by tenant, correlation id, stream, type or time range, in
//! chain order (which is commit order), each record with its link's hash; as JSON lines or CSV.
//! Only chained events are exported: a record's hash is what an auditor checks it by.

use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use quorum_domain::{Event, cloudevent};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row};

pub use quorum_event_store::Selection;

/// How records are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Jsonl,
    Csv,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "jsonl" | "json" => Ok(Self::Jsonl),
            "csv" => Ok(Self::Csv),
            _ => Err(format!("format {s:?}: expected jsonl or csv")),
        }
    }
}

/// One exported event with its link.
#[derive(Clone, Debug, Serialize)]
pub struct Record {
    pub seq: i64,
    pub position: i64,
    pub hash: String,
    pub prev_hash: String,
    pub stream: String,
    pub version: i64,
    #[serde(serialize_with = "quorum_http::time::millis")]
    pub recorded_at: DateTime<Utc>,
    /// The CloudEvent, JSON format, as stored.
    pub event: serde_json::Value,
    #[serde(skip)]
    parsed: Event,
}

/// Queries with these optional filters (`$n IS NULL OR …`) are planned for their parameters each
/// time (`persistent(false)`): a cached generic plan of them scans the whole table on every page.
const WHERE: &str = "($1::text IS NULL OR e.tenant = $1)
           AND ($2::text IS NULL OR e.correlation_id = $2)
           AND ($3::text IS NULL OR e.stream_id = $3)
           AND ($4::text IS NULL OR e.type = $4)
           AND ($5::timestamptz IS NULL OR e.recorded_at >= $5)
           AND ($6::timestamptz IS NULL OR e.recorded_at < $6)";

/// How many records `selection` exports (for a progress bar).
pub async fn count(pool: &PgPool, s: &Selection) -> Result<i64, sqlx::Error> {
    let sql = format!(
        "SELECT count(*) FROM audit_chain c JOIN events e ON e.position = c.position WHERE {WHERE}"
    );
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .persistent(false)
        .bind(&s.tenant)
        .bind(&s.correlation_id)
        .bind(&s.stream)
        .bind(&s.ty)
        .bind(s.since)
        .bind(s.until)
        .fetch_one(pool)
        .await
}

/// Up to `limit` records after link `after_seq`; page on with the last record's `seq`.
pub async fn page(
    pool: &PgPool,
    s: &Selection,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<Record>, sqlx::Error> {
    let sql = format!(
        "SELECT c.seq, c.position, c.hash, c.prev_hash, e.stream_id, e.stream_version, e.recorded_at,
                e.attributes::text AS attributes, e.data
         FROM audit_chain c JOIN events e ON e.position = c.position
         WHERE {WHERE} AND c.seq > $7 ORDER BY c.seq LIMIT $8"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .persistent(false)
        .bind(&s.tenant)
        .bind(&s.correlation_id)
        .bind(&s.stream)
        .bind(&s.ty)
        .bind(s.since)
        .bind(s.until)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| {
            let attributes: String = r.try_get("attributes")?;
            let data: Option<Vec<u8>> = r.try_get("data")?;
            let parsed = Event::from_attributes_text(&attributes, data.map(Bytes::from))
                .map_err(|e| sqlx::Error::Decode(e.into()))?;
            let hash: Vec<u8> = r.try_get("hash")?;
            let prev: Vec<u8> = r.try_get("prev_hash")?;
            Ok(Record {
                seq: r.try_get("seq")?,
                position: r.try_get("position")?,
                hash: hex::encode(hash),
                prev_hash: hex::encode(prev),
                stream: r.try_get("stream_id")?,
                version: r.try_get("stream_version")?,
                recorded_at: r.try_get("recorded_at")?,
                event: cloudevent::to_structured(&parsed),
                parsed,
            })
        })
        .collect()
}

const CSV_HEADER: [&str; 18] = [
    "seq",
    "position",
    "hash",
    "prev_hash",
    "stream",
    "version",
    "recorded_at",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "tenant",
    "correlationid",
    "causationid",
    "datacontenttype",
    "data_encoding",
    "data",
];

/// Writes `records` to `out` in `format`; `first` adds the CSV header.
pub fn write(format: Format, records: &[Record], first: bool, out: &mut Vec<u8>) {
    match format {
        Format::Jsonl => {
            for r in records {
                // A Record always serializes: its fields are plain values.
                serde_json::to_writer(&mut *out, r).expect("record serializes");
                out.push(b'\n');
            }
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            if first {
                let _ = w.write_record(CSV_HEADER);
            }
            for r in records {
                let mut row = csv_row(r);
                row.iter_mut().for_each(neutralize);
                let _ = w.write_record(&row);
            }
            let _ = w.flush();
        }
    }
}

/// What makes a spreadsheet read a cell as a formula (OWASP, CSV injection): `=`, `+`, `-`, `@`, and
/// tab or carriage return, which some spreadsheets skip before looking for one of the others.
const FORMULA_TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Makes `cell` one a spreadsheet shows rather than runs: a cell starting with a formula trigger
/// gets a leading `'`. Events hold whatever a publisher sent, and an auditor opens the export in a
/// spreadsheet; the JSONL export keeps every value verbatim for tools.
pub(crate) fn neutralize(cell: &mut String) {
    if cell.starts_with(FORMULA_TRIGGERS) {
        cell.insert(0, '\'');
    }
}

fn csv_row(r: &Record) -> Vec<String> {
    let e = &r.parsed;
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let (encoding, data) = match e.data.as_deref() {
        None => ("", String::new()),
        Some(d) => match std::str::from_utf8(d) {
            Ok(text) => ("text", text.to_owned()),
            Err(_) => (
                "base64",
                base64::engine::general_purpose::STANDARD.encode(d),
            ),
        },
    };
    vec![
        r.seq.to_string(),
        r.position.to_string(),
        r.hash.clone(),
        r.prev_hash.clone(),
        r.stream.clone(),
        r.version.to_string(),
        r.recorded_at
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        e.id.clone(),
        e.source.clone(),
        e.ty.clone(),
        opt(&e.subject),
        e.time.map(|t| t.to_rfc3339()).unwrap_or_default(),
        e.tenant.as_ref().map(|t| t.to_string()).unwrap_or_default(),
        opt(&e.correlationid),
        opt(&e.causationid),
        opt(&e.datacontenttype),
        encoding.to_owned(),
        data,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_a_spreadsheet_would_run_get_a_leading_quote() {
        for cell in [
            "=HYPERLINK(\"http://x\")",
            "+1+1",
            "-2+3",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
        ] {
            let mut neutral = cell.to_owned();
            neutralize(&mut neutral);
            assert_eq!(neutral, format!("'{cell}"), "{cell:?}");
        }
        for cell in ["", "plain", "1.5", "a=b", "'quoted", " =1"] {
            let mut kept = cell.to_owned();
            neutralize(&mut kept);
            assert_eq!(kept, cell, "{cell:?}");
        }
    }

    #[test]
    fn a_hostile_event_exports_as_text_in_csv() {
        let subject = quorum_domain::StreamId::parse("order/1").unwrap();
        let tenant = quorum_domain::TenantId::new("acme").unwrap();
        let mut e = Event::new(
            "=cmd|' /C calc'!A0",
            "com.example.x",
            subject,
            tenant,
            Bytes::from_static(b"@SUM(1+1)*cmd|' /C calc'!A0"),
        );
        e.id = "+1".into();
        let record = Record {
            seq: 1,
            position: 1,
            hash: "00".into(),
            prev_hash: "00".into(),
            stream: "order/1".into(),
            version: 1,
            recorded_at: Utc::now(),
            event: cloudevent::to_structured(&e),
            parsed: e,
        };
        let mut out = Vec::new();
        write(Format::Csv, &[record], false, &mut out);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(out.as_slice());
        let row = reader.records().next().unwrap().unwrap();
        let cell = |name: &str| &row[CSV_HEADER.iter().position(|h| *h == name).unwrap()];
        assert_eq!(cell("source"), "'=cmd|' /C calc'!A0");
        assert_eq!(cell("id"), "'+1");
        assert_eq!(cell("data"), "'@SUM(1+1)*cmd|' /C calc'!A0");
        assert!(
            row.iter().all(|c| !c.starts_with(FORMULA_TRIGGERS)),
            "{row:?}"
        );
    }
}
