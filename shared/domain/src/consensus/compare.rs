//! Whether two canonical answers say the same, say opposite things, or cannot be told apart
//! offline. Contradictions are checked first and always win: no rule, and no semantic method
//! after them, merges a yes with a no, an answer with its negation, two different numbers or two
//! different options.

use serde::{Deserialize, Serialize};

use super::canonical::Canon;
use super::numbers::same_value;

/// Why two answers were taken as one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SameBy {
    /// Their canonical forms are equal.
    Canonical,
    /// Both say yes, or both say no.
    YesNo,
    /// Both pick the same of the options the question offers.
    Choice,
    /// What one asserts is all within what the other does, or their first clauses agree so.
    Containment,
    /// The same quantity (within the tolerance, after converting units), and nothing else said
    /// that the other does not say.
    Numbers,
    /// One is the other's acronym: `USA` and `the United States of America`.
    Acronym,
    /// Their embeddings are at least as similar as the threshold.
    Embeddings,
    /// The judge said each means what the other means.
    Judge,
}

/// Why two answers can never be one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Contradiction {
    /// One says yes, the other no.
    YesNo,
    /// One denies what the other asserts.
    Negation,
    /// Their numbers differ beyond the tolerance.
    Numbers,
    /// They pick different options of the question's.
    Choice,
    /// They name different proper names (and neither is the other's acronym). Weaker than the
    /// others: a judge may still find two names the same thing; embeddings, which are known to
    /// confuse entities of one kind, may not.
    Names,
}

impl Contradiction {
    /// Whether no method may override it. Only [`Contradiction::Names`] is left to a judge.
    pub fn is_hard(self) -> bool {
        self != Contradiction::Names
    }
}

/// What comparing two answers offline came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Same(SameBy),
    Contradicts(Contradiction),
    /// Neither: a semantic method may decide.
    Unknown,
}

/// Compares two answers canonicalized against the same question. `tolerance` is relative (0:
/// exact).
pub fn compare(a: &Canon, b: &Canon, tolerance: f64) -> Verdict {
    if let (Some(x), Some(y)) = (a.polarity, b.polarity) {
        return if x == y {
            Verdict::Same(SameBy::YesNo)
        } else {
            Verdict::Contradicts(Contradiction::YesNo)
        };
    }
    if let (Some(x), Some(y)) = (&a.choice, &b.choice)
        && x != y
    {
        return Verdict::Contradicts(Contradiction::Choice);
    }
    let denies = |x: &Canon, y: &Canon| x.core.iter().any(|w| y.denied.contains(w));
    if a.negated != b.negated || denies(a, b) || denies(b, a) {
        return Verdict::Contradicts(Contradiction::Negation);
    }
    let quantities = match (a.quantities.first(), b.quantities.first()) {
        (Some(x), Some(y)) => {
            let comparable =
                x.dimension.is_none() || y.dimension.is_none() || x.dimension == y.dimension;
            if !comparable || !same_value(x.value, y.value, tolerance) {
                return Verdict::Contradicts(Contradiction::Numbers);
            }
            true
        }
        _ => false,
    };
    if a.choice.is_some() && a.choice == b.choice {
        return Verdict::Same(SameBy::Choice);
    }
    if a.key() == b.key() {
        return Verdict::Same(SameBy::Canonical);
    }
    if spells(a, b) || spells(b, a) {
        return Verdict::Same(SameBy::Acronym);
    }
    if quantities && (words_within(a, b) || words_within(b, a)) {
        return Verdict::Same(SameBy::Numbers);
    }
    if names_differ(a, b) {
        return Verdict::Contradicts(Contradiction::Names);
    }
    if said_first(a, b) || said_first(b, a) || heads_within(a, b) {
        return Verdict::Same(SameBy::Containment);
    }
    Verdict::Unknown
}

/// What `a` says besides its numbers and units is all said by `b` too: `about 13.8 billion
/// years` and `13.8 billion years old`.
fn words_within(a: &Canon, b: &Canon) -> bool {
    a.head
        .iter()
        .filter(|w| w.parse::<f64>().is_err() && !is_unit(w))
        .all(|w| b.core.contains(w))
}

fn is_unit(word: &str) -> bool {
    matches!(
        word,
        "%" | "°c"
            | "°f"
            | "km"
            | "m"
            | "cm"
            | "kg"
            | "g"
            | "mi"
            | "$"
            | "€"
            | "£"
            | "h"
            | "min"
            | "s"
            | "°"
    )
}

/// An acronym of `a` is exactly the initials of a run of capitalized words in `b`.
fn spells(a: &Canon, b: &Canon) -> bool {
    a.acronyms.iter().any(|ac| b.initials.contains(ac))
}

/// All that `a` asserts, `b` says before its reasons (`Paris` and `It's Paris, which has been
/// the capital for centuries`), and `a` asserts something. A word inflected differently counts
/// (`mitochondrion`, `mitochondria`).
fn said_first(a: &Canon, b: &Canon) -> bool {
    !a.core.is_empty()
        && a.core
            .iter()
            .all(|w| b.head.iter().any(|h| same_word(w, h)))
}

/// The smaller first clause is all within the larger: two answers that agree before their
/// reasons.
fn heads_within(a: &Canon, b: &Canon) -> bool {
    let (small, large) = if a.head.len() <= b.head.len() {
        (&a.head, &b.head)
    } else {
        (&b.head, &a.head)
    };
    !small.is_empty() && small.iter().all(|w| large.iter().any(|h| same_word(w, h)))
}

/// The same word, or the same long word with another ending of at most two letters: an
/// inflection (`mitochondrion`, `mitochondria`), not another word (`methane`, `methanol` share
/// too short a stem).
fn same_word(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let shared = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    let (la, lb) = (a.chars().count(), b.chars().count());
    shared >= 8 && la - shared <= 2 && lb - shared <= 2
}

/// Both name proper names, neither names one the other says, and no acronym of one spells the other's initials.
fn names_differ(a: &Canon, b: &Canon) -> bool {
    let shared = |x: &Canon, y: &Canon| x.names.iter().any(|n| y.core.contains(n));
    if a.names.is_empty() || b.names.is_empty() || shared(a, b) || shared(b, a) {
        return false;
    }
    let spells = |x: &Canon, y: &Canon| {
        x.acronyms.iter().any(|ac| {
            y.initials
                .iter()
                .any(|i| ac.starts_with(i.as_str()) || i.starts_with(ac.as_str()))
        })
    };
    !(spells(a, b) || spells(b, a))
}

#[cfg(test)]
mod tests {
    use super::super::canonical::canonicalize;
    use super::super::question::QuestionTerms;
    use super::*;

    fn verdict(question: &str, a: &str, b: &str) -> Verdict {
        verdict_within(question, a, b, 0.0)
    }

    fn verdict_within(question: &str, a: &str, b: &str, tolerance: f64) -> Verdict {
        let q = QuestionTerms::new(question);
        compare(&canonicalize(a, &q), &canonicalize(b, &q), tolerance)
    }

    const CAPITAL: &str = "What is the capital of France?";

    #[test]
    fn the_three_paris_answers_are_one() {
        let answers = [
            "Paris",
            "The capital of France is Paris.",
            "It's Paris, which has been the French capital for centuries.",
        ];
        for a in answers {
            for b in answers {
                assert!(
                    matches!(verdict(CAPITAL, a, b), Verdict::Same(_)),
                    "{a} / {b}: {:?}",
                    verdict(CAPITAL, a, b)
                );
            }
        }
    }

    #[test]
    fn each_rule_that_merges() {
        let q = "How many legs does a spider have?";
        assert_eq!(verdict(q, "eight", "8"), Verdict::Same(SameBy::Canonical));
        assert_eq!(
            verdict(q, "A spider has 8 legs.", "Eight."),
            Verdict::Same(SameBy::Canonical)
        );
        let far = "How far is the Moon?";
        assert_eq!(
            verdict_within(
                far,
                "Approximately 384,400 km.",
                "Around 384,000 kilometres, I think.",
                0.01
            ),
            Verdict::Same(SameBy::Numbers)
        );
        assert_eq!(
            verdict(
                "How warm is a human body?",
                "Roughly 98.6°F (about 37°C).",
                "Around 37 °C."
            ),
            Verdict::Same(SameBy::Numbers),
            "units of one dimension convert"
        );
        assert_eq!(
            verdict(
                "What is the speed of light?",
                "299,792,458 m/s",
                "299,792.458 km per second"
            ),
            Verdict::Same(SameBy::Numbers)
        );
        assert_eq!(
            verdict("Which city is it in?", "NYC", "New York City"),
            Verdict::Same(SameBy::Acronym)
        );
        assert_eq!(
            verdict("Is the Earth flat?", "No.", "The Earth is not flat."),
            Verdict::Same(SameBy::YesNo)
        );
        assert_eq!(
            verdict(
                "Which is larger, Jupiter or Saturn?",
                "Jupiter",
                "Jupiter is larger than Saturn."
            ),
            Verdict::Same(SameBy::Choice)
        );
        assert_eq!(
            verdict(CAPITAL, "Paris", "Probably Paris, though I'm not certain."),
            Verdict::Same(SameBy::Canonical)
        );
        assert_eq!(
            verdict(CAPITAL, "Paris, the City of Light", "Paris."),
            Verdict::Same(SameBy::Containment)
        );
        assert_eq!(
            verdict(
                "What is the powerhouse of the cell?",
                "Mitochondria",
                "The mitochondrion"
            ),
            Verdict::Same(SameBy::Containment),
            "an inflection"
        );
        assert_eq!(
            verdict(
                "Which country has the largest economy?",
                "USA",
                "The United States"
            ),
            Verdict::Unknown,
            "a partial acronym is no contradiction; a semantic method decides"
        );
    }

    #[test]
    fn numbers_within_a_tolerance() {
        let q = "What is pi to two decimal places?";
        assert_eq!(
            verdict_within(q, "3.14", "3.1416", 0.01),
            Verdict::Same(SameBy::Numbers)
        );
        assert_eq!(
            verdict_within(q, "3.14", "3.1416", 0.0),
            Verdict::Contradicts(Contradiction::Numbers)
        );
    }

    #[test]
    fn each_refusal_to_merge() {
        assert_eq!(
            verdict("Is the Earth flat?", "Yes.", "No, it is round."),
            Verdict::Contradicts(Contradiction::YesNo)
        );
        assert_eq!(
            verdict(
                CAPITAL,
                "The capital of France is Paris.",
                "The capital of France is not Paris."
            ),
            Verdict::Contradicts(Contradiction::Negation)
        );
        assert_eq!(
            verdict(CAPITAL, "Lyon, not Paris.", "Paris"),
            Verdict::Contradicts(Contradiction::Negation)
        );
        assert_eq!(
            verdict("How many legs does a spider have?", "8", "9"),
            Verdict::Contradicts(Contradiction::Numbers)
        );
        assert_eq!(
            verdict(
                "How many legs does a spider have?",
                "eight",
                "Spiders have six legs."
            ),
            Verdict::Contradicts(Contradiction::Numbers)
        );
        assert_eq!(
            verdict(
                "Which is larger, Jupiter or Saturn?",
                "Jupiter",
                "Saturn is larger."
            ),
            Verdict::Contradicts(Contradiction::Choice)
        );
        assert_eq!(
            verdict(CAPITAL, "Paris", "Lyon"),
            Verdict::Contradicts(Contradiction::Names)
        );
        assert_eq!(
            verdict(
                "What is the largest desert?",
                "The Sahara",
                "The Antarctic Desert is the largest, though the Sahara is the largest hot desert."
            ),
            Verdict::Unknown,
            "a name in the reasons is not the answer"
        );
        assert_eq!(
            verdict("Which compound?", "methane", "methanol"),
            Verdict::Unknown,
            "too short a shared stem"
        );
        assert_eq!(
            verdict("At what temperature does water boil?", "100 °C", "100 °F"),
            Verdict::Contradicts(Contradiction::Numbers),
            "the same number in different units is not the same answer"
        );
        assert_eq!(
            verdict("How long is it?", "5 km", "5 kg"),
            Verdict::Contradicts(Contradiction::Numbers),
            "different dimensions"
        );
    }
}
