//! How `quorum bench consensus` prints its report.

use std::fmt;

use super::{Collection, ConsensusReport};

impl fmt::Display for ConsensusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.collections.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Collection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: {} labelled sets", self.name, self.sets)?;
        writeln!(
            f,
            "  {:<32} {:>13} {:>10} {:>8} {:>12} {:>7}",
            "method", "decided right", "precision", "recall", "false merges", "calls"
        )?;
        for m in &self.methods {
            writeln!(
                f,
                "  {:<32} {:>5}/{:<3} {:>3.0}% {:>10.3} {:>8.3} {:>12} {:>7}",
                m.method,
                m.decided_right,
                m.sets,
                m.share_right * 100.0,
                m.pair_precision,
                m.pair_recall,
                m.false_merges,
                m.calls
            )?;
        }
        // The misses of the methods of now; those of before are most of the sets.
        for m in self
            .methods
            .iter()
            .filter(|m| !m.method.starts_with("before"))
        {
            if m.wrong.is_empty() {
                continue;
            }
            writeln!(f, "  {} decided {} sets wrong:", m.method, m.wrong.len())?;
            for w in &m.wrong {
                writeln!(
                    f,
                    "    {:<40} {:<13} expected {}, got {}",
                    w.id, w.category, w.expected, w.got
                )?;
            }
        }
        Ok(())
    }
}
