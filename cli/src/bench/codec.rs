//! JSON against MessagePack (rmp-serde) for the data of Quorum's own events, on the very events a
//! `bench pipeline` run stored: what each format costs per query to encode and decode, beside the
//! CPU the pipeline spent per query. MessagePack is worth adopting only if it would cut that CPU by
//! a tenth or more (ADR 25).

use std::time::Instant;

use quorum_domain::consensus::ConsensusReached;
use quorum_domain::expert::ExpertResponded;
use quorum_domain::query::QuerySubmitted;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::PgPool;

/// How many times the pipeline decodes each event's data at most, per query: a submission is read
/// by fan-out, by each of up to three consensus folds and by the projection; a result by up to two
/// folds and the projection; a consensus by the projection. Each is encoded once.
const DECODES: [(&str, u32); 3] = [
    ("quorum.query.submitted", 5),
    ("quorum.expert.responded", 3),
    ("quorum.consensus.reached", 1),
];

/// Per query, both formats, on the same typed values.
#[derive(Debug, Serialize)]
pub struct CodecReport {
    pub queries_sampled: usize,
    pub json_bytes_per_query: f64,
    pub msgpack_bytes_per_query: f64,
    /// Encoding once and decoding as often as the pipeline does, in microseconds per query.
    pub json_us_per_query: f64,
    pub msgpack_us_per_query: f64,
}

/// Rounds over the sample, so that each figure is a mean over many runs of each codec.
const ROUNDS: u32 = 50;

/// Measures both formats on the data of up to 300 queries of tenant `bench` stored since `since`.
pub async fn measure(
    pool: &PgPool,
    since: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<CodecReport> {
    let mut report = CodecReport {
        queries_sampled: 0,
        json_bytes_per_query: 0.0,
        msgpack_bytes_per_query: 0.0,
        json_us_per_query: 0.0,
        msgpack_us_per_query: 0.0,
    };
    let queries: Vec<String> = sqlx::query_scalar(
        "SELECT stream_id FROM events
         WHERE tenant = 'bench' AND type = 'quorum.consensus.reached' AND recorded_at >= $1
         LIMIT 300",
    )
    .bind(since)
    .fetch_all(pool)
    .await?;
    report.queries_sampled = queries.len();
    if queries.is_empty() {
        return Ok(report);
    }
    for (ty, decodes) in DECODES {
        let data: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT data FROM events
             WHERE tenant = 'bench' AND type = $1 AND stream_id = ANY($2)",
        )
        .bind(ty)
        .bind(&queries)
        .fetch_all(pool)
        .await?;
        let figures = match ty {
            "quorum.query.submitted" => compare::<QuerySubmitted>(&data, decodes)?,
            "quorum.expert.responded" => compare::<ExpertResponded>(&data, decodes)?,
            _ => compare::<ConsensusReached>(&data, decodes)?,
        };
        let per_query = |x: f64| x / queries.len() as f64;
        report.json_bytes_per_query += per_query(figures.json_bytes);
        report.msgpack_bytes_per_query += per_query(figures.msgpack_bytes);
        report.json_us_per_query += per_query(figures.json_us);
        report.msgpack_us_per_query += per_query(figures.msgpack_us);
    }
    Ok(report)
}

/// Totals over every value of the sample, for one round.
struct Figures {
    json_bytes: f64,
    msgpack_bytes: f64,
    json_us: f64,
    msgpack_us: f64,
}

fn compare<T: Serialize + DeserializeOwned>(
    stored: &[Vec<u8>],
    decodes: u32,
) -> anyhow::Result<Figures> {
    let values: Vec<T> = stored
        .iter()
        .map(|d| serde_json::from_slice(d))
        .collect::<Result<_, _>>()?;
    // Maps with field names, as the JSON has them: the same schema evolution rules
    // (`skip_serializing_if`, `default`) hold in both.
    let packed: Vec<Vec<u8>> = values
        .iter()
        .map(rmp_serde::to_vec_named)
        .collect::<Result<_, _>>()?;
    let json: Vec<Vec<u8>> = values
        .iter()
        .map(serde_json::to_vec)
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    for _ in 0..ROUNDS {
        for value in &values {
            std::hint::black_box(serde_json::to_vec(value)?);
        }
        for bytes in &json {
            for _ in 0..decodes {
                std::hint::black_box(serde_json::from_slice::<T>(bytes)?);
            }
        }
    }
    let json_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(ROUNDS);
    let started = Instant::now();
    for _ in 0..ROUNDS {
        for value in &values {
            std::hint::black_box(rmp_serde::to_vec_named(value)?);
        }
        for bytes in &packed {
            for _ in 0..decodes {
                std::hint::black_box(rmp_serde::from_slice::<T>(bytes)?);
            }
        }
    }
    let msgpack_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(ROUNDS);
    Ok(Figures {
        json_bytes: json.iter().map(Vec::len).sum::<usize>() as f64,
        msgpack_bytes: packed.iter().map(Vec::len).sum::<usize>() as f64,
        json_us,
        msgpack_us,
    })
}
