//! How `bench pipeline`'s report reads on a terminal.

use super::{Experts, PipelineReport};

impl std::fmt::Display for PipelineReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let experts = match self.experts {
            Experts::Scripted => "3 scripted experts",
            Experts::Openai => "3 openai experts -> stub process",
        };
        writeln!(
            f,
            "pipeline: ingest -> fan-out ({experts}) -> consensus -> read model"
        )?;
        if let Some(open) = &self.open_loop {
            write!(f, "{open}")?;
        }
        if !self.closed_loop.is_empty() {
            writeln!(
                f,
                "  closed loop (each client submits, then GET ?wait=30s, then the next):"
            )?;
        }
        for row in &self.closed_loop {
            let q = &row.quorum;
            write!(
                f,
                "  {:>4} clients  quorum {:>7.0} queries/s, p50 {:>6.1} ms, p99 {:>6.1} ms",
                q.clients, q.queries_per_sec, q.p50_ms, q.p99_ms
            )?;
            if let (Some(b), Some(r)) = (&row.bare_client, row.ratio) {
                write!(
                    f,
                    "  | bare client {:>7.0} queries/s, p50 {:>6.1} ms, p99 {:>6.1} ms  | ratio {r:.2}",
                    b.queries_per_sec, b.p50_ms, b.p99_ms
                )?;
            }
            writeln!(f, "  | {:.2} ms CPU/query", row.quorum_cpu_ms_per_query)?;
            if let Some(floor) = &row.floor {
                write!(f, "        {floor}")?;
                match row.floor_ratio {
                    Some(r) => writeln!(f, ", ratio {r:.2} at most")?,
                    None => writeln!(f)?,
                }
            }
            let by_process: Vec<String> = row
                .cpu
                .ms
                .iter()
                .map(|(name, ms)| format!("{name} {ms:.2}"))
                .collect();
            writeln!(
                f,
                "        CPU ms/query by process: {} (total {:.2}); machine {:.0} % busy",
                by_process.join(", "),
                row.cpu.ms.values().sum::<f64>(),
                row.cpu.machine_busy * 100.0
            )?;
            let s = &row.stored;
            writeln!(
                f,
                "        stored: submit to consensus p50 {:.1} ms (to last result {:.1}, then consensus {:.1}); the rest of a client's wait is the read model and the wake-up",
                s.overhead_p50_ms, s.results_p50_ms, s.consensus_p50_ms
            )?;
        }
        let c = &self.codec;
        writeln!(
            f,
            "  event data per query ({} queries sampled): JSON {:.0} bytes, {:.1} us to encode and decode; MessagePack {:.0} bytes, {:.1} us",
            c.queries_sampled,
            c.json_bytes_per_query,
            c.json_us_per_query,
            c.msgpack_bytes_per_query,
            c.msgpack_us_per_query
        )
    }
}
