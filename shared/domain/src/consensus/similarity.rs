//! Text similarity for the `similarity` strategy: word-set overlap, with negation deciding.
//!
//! Word overlap (Jaccard over normalised content words) groups paraphrases: the same facts in
//! another order. It cannot see that "X is not Y" contradicts "X is Y", which differ by one word;
//! so answers whose negation differs are never similar.

use std::collections::BTreeSet;

/// Answers at least this similar are one group.
pub const SAME: f64 = 0.6;

const NEGATIONS: &[&str] = &[
    "not", "no", "never", "none", "cannot", "isn't", "aren't", "wasn't", "don't", "doesn't",
    "didn't", "won't", "false",
];
const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "is", "are", "was", "of", "in", "on", "to", "and", "it", "that", "this",
];

/// 0 (nothing shared, or one denies what the other says) to 1 (the same words).
pub fn similarity(a: &str, b: &str) -> f64 {
    let (wa, na) = words(a);
    let (wb, nb) = words(b);
    if na != nb {
        return 0.0;
    }
    if wa.is_empty() && wb.is_empty() {
        return 1.0;
    }
    let shared = wa.intersection(&wb).count() as f64;
    let all = wa.union(&wb).count() as f64;
    shared / all
}

/// The content words, and whether the text negates (an odd number of negations).
fn words(text: &str) -> (BTreeSet<String>, bool) {
    let mut negations = 0;
    let mut set = BTreeSet::new();
    for raw in text.split(|c: char| c.is_whitespace() || (c.is_ascii_punctuation() && c != '\'')) {
        let w = raw.trim_matches('\'').to_lowercase();
        if w.is_empty() {
            continue;
        }
        if NEGATIONS.contains(&w.as_str()) || w.ends_with("n't") {
            negations += 1;
        } else if !STOP_WORDS.contains(&w.as_str()) {
            set.insert(w);
        }
    }
    (set, negations % 2 == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paraphrases_are_close_and_contradictions_far() {
        assert!(similarity("The sky is blue", "Blue is the sky") >= SAME);
        assert_eq!(similarity("The sky is blue", "The sky is not blue"), 0.0);
        assert!(similarity("The sky is blue", "Grass is green") < SAME);
        assert_eq!(similarity("It is not red", "It isn't red"), 1.0);
    }
}
