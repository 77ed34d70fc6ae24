//! The comparisons the strategies made before final answers and canonical forms, and the
//! grouping they made, kept as the baseline the new ones are measured against.

use std::collections::BTreeSet;

use quorum_domain::consensus::default_quorum;

use super::{MethodReport, Set, Tally, expert};

/// The grouping of before: each answer joins the first group whose first answer it matches.
pub(super) fn evaluate_legacy(
    sets: &[Set],
    method: &str,
    same: fn(&str, &str) -> bool,
) -> MethodReport {
    let mut tally = Tally::new(method);
    for set in sets {
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (i, a) in set.answers.iter().enumerate() {
            match groups
                .iter_mut()
                .find(|g| same(&set.answers[g[0]].text, &a.text))
            {
                Some(g) => g.push(i),
                None => groups.push(vec![i]),
            }
        }
        let quorum = default_quorum(set.answers.len());
        let got = groups
            .iter()
            .max_by(|a, b| a.len().cmp(&b.len()).then(b[0].cmp(&a[0])))
            .filter(|g| g.len() >= quorum)
            .map(|g| g.iter().map(|&i| expert(i)).collect());
        tally.record(set, &groups, got);
    }
    tally.report()
}

/// `majority`: lowercase, whitespace collapsed, surrounding punctuation removed.
pub(super) fn same_text(a: &str, b: &str) -> bool {
    normalize(a) == normalize(b)
}

fn normalize(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    joined
        .to_lowercase()
        .trim_matches(|c: char| c.is_ascii_punctuation() || "“”‘’".contains(c))
        .to_owned()
}

/// `similarity`: Jaccard over content words at least 0.6, the negation parity equal.
pub(super) fn similar(a: &str, b: &str) -> bool {
    let (wa, na) = words(a);
    let (wb, nb) = words(b);
    if na != nb {
        return false;
    }
    if wa.is_empty() && wb.is_empty() {
        return true;
    }
    let shared = wa.intersection(&wb).count() as f64;
    shared / wa.union(&wb).count() as f64 >= 0.6
}

fn words(text: &str) -> (BTreeSet<String>, bool) {
    const NEGATIONS: &[&str] = &[
        "not", "no", "never", "none", "cannot", "isn't", "aren't", "wasn't", "don't", "doesn't",
        "didn't", "won't", "false",
    ];
    const STOP: &[&str] = &[
        "a", "an", "the", "is", "are", "was", "of", "in", "on", "to", "and", "it", "that", "this",
    ];
    let mut negations = 0;
    let mut set = BTreeSet::new();
    for raw in text.split(|c: char| c.is_whitespace() || (c.is_ascii_punctuation() && c != '\'')) {
        let w = raw.trim_matches('\'').to_lowercase();
        if w.is_empty() {
            continue;
        }
        if NEGATIONS.contains(&w.as_str()) || w.ends_with("n't") {
            negations += 1;
        } else if !STOP.contains(&w.as_str()) {
            set.insert(w);
        }
    }
    (set, negations % 2 == 1)
}
