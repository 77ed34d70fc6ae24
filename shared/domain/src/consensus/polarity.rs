//! Yes and no, and what only hedges: the polarity an answer states to a yes/no question, and the
//! clauses and negations that qualify the speaker's certainty rather than the answer.

use super::question::{QuestionTerms, restated};
use super::tokens::Token;
use super::words::{HEDGES, NO, YES};

/// A leading yes or no (after hedges: `Probably not.`) answers a yes/no question and is not a
/// negation of what follows: the polarity it states, and the index of its token.
pub(super) fn leading_yes_or_no(
    tokens: &[Token],
    question: &QuestionTerms,
) -> (Option<bool>, Option<usize>) {
    let lead = tokens
        .iter()
        .position(|t| !HEDGES.contains(&t.text.as_str()));
    let Some(i) = lead.filter(|_| question.yes_no) else {
        return (None, None);
    };
    let w = tokens[i].text.as_str();
    // `Not really`, `Not at all`: a no, when nothing else is in its clause.
    let bare = tokens[i + 1..]
        .iter()
        .take_while(|t| t.clause == tokens[i].clause)
        .all(|t| t.stop || matches!(t.text.as_str(), "really" | "all" | "quite"));
    if YES.contains(&w) {
        (Some(true), Some(i))
    } else if NO.contains(&w) || (w == "not" && bare) {
        (Some(false), Some(i))
    } else {
        (None, None)
    }
}

/// What an answer without a leading yes or no says to a yes/no question: a clause of its own that
/// is only a yes or a no (`It's inert, so no`), else the clauses that speak of what the question
/// asks (`Penguins cannot fly`, `Botanically, a tomato is a fruit`). One that denies it wins: `a
/// dwarf planet, not a planet` says no. An answer that speaks of something else (`The Earth is
/// round`) says neither, and is left to the other rules.
pub(super) fn stated_polarity(tokens: &[Token], question: &QuestionTerms) -> Option<bool> {
    let last = tokens.last().map_or(0, |t| t.clause);
    let clauses: Vec<Vec<&Token>> = (0..=last)
        .map(|c| tokens.iter().filter(|t| t.clause == c).collect())
        .collect();
    for clause in &clauses {
        let words: Vec<&&Token> = clause.iter().filter(|t| !t.stop).collect();
        if let [only] = words.as_slice() {
            if YES.contains(&only.text.as_str()) {
                return Some(true);
            }
            if matches!(only.text.as_str(), "no" | "nope" | "false" | "incorrect") {
                return Some(false);
            }
        }
    }
    let mut said = None;
    for clause in &clauses {
        let speaks = clause.iter().any(|t| {
            !t.stop
                && question
                    .predicates
                    .iter()
                    .any(|p| p == &t.text || restated(p, &t.text))
        });
        if speaks {
            let denials = clause.iter().filter(|t| t.negation).count();
            if denials % 2 == 1 {
                return Some(false);
            }
            said = Some(true);
        }
    }
    said
}

/// Marks as stop words the clauses that only qualify the speaker's certainty: `If I remember
/// right, it was Mozart`.
pub(super) fn drop_hedge_clauses(tokens: &mut [Token]) {
    const SPEAKER: &[&str] = &[
        "if",
        "remember",
        "recall",
        "correctly",
        "right",
        "memory",
        "serve",
        "far",
        "know",
        "knowledge",
        "best",
        "opinion",
        "honest",
        "honestly",
        "understand",
        "mistaken",
        "speaking",
    ];
    let last = tokens.last().map_or(0, |t| t.clause);
    for c in 0..=last {
        let content: Vec<&Token> = tokens.iter().filter(|t| t.clause == c && !t.stop).collect();
        let speaker = !content.is_empty()
            && content.iter().all(|t| SPEAKER.contains(&t.text.as_str()))
            && content.iter().any(|t| {
                matches!(
                    t.text.as_str(),
                    "remember"
                        | "recall"
                        | "know"
                        | "knowledge"
                        | "opinion"
                        | "memory"
                        | "understand"
                        | "mistaken"
                )
            });
        if speaker {
            for t in tokens.iter_mut().filter(|t| t.clause == c) {
                t.stop = true;
            }
        }
    }
}

/// A negation that qualifies confidence, not the answer: `not sure`, `not 100% certain`.
pub(super) fn hedged(tokens: &[Token], i: usize) -> bool {
    tokens[i + 1..].iter().take(3).any(|t| {
        matches!(
            t.text.as_str(),
            "sure" | "certain" | "confident" | "positive"
        )
    })
}
