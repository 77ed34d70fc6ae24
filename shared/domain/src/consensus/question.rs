//! What a question already says and offers, read once for all its answers, so that an answer is
//! compared on what it adds: not on the words it echoes, nor on the letter it picks an option by.

use std::collections::BTreeSet;

use super::tokens::{Token, tokenize};
use super::words::{AUXILIARIES, stem};

/// What the question says, for canonicalizing its answers.
#[derive(Clone, Debug, Default)]
pub struct QuestionTerms {
    words: BTreeSet<String>,
    pub(super) numbers: Vec<f64>,
    pub(super) yes_no: bool,
    pub(super) options: Vec<String>,
    /// Its content words after the first: what a yes/no question asks of its subject (`flat` in
    /// "Is the Earth flat?", `reactive` and `gas` in "Is helium a reactive gas?").
    pub(super) predicates: Vec<String>,
    /// Lettered options of a multiple-choice question (`(b) Mars`), by letter.
    lettered: Vec<(String, String)>,
}

impl QuestionTerms {
    pub fn new(question: &str) -> Self {
        let tokens = tokenize(question);
        let words: Vec<&Token> = tokens.iter().filter(|t| !t.stop).collect();
        let first = tokens.first().map(|t| t.text.as_str()).unwrap_or_default();
        let has_or = tokens.iter().any(|t| t.text == "or");
        // The content words right before and after each `or`: `Jupiter or Saturn`.
        let mut options = Vec::new();
        for (i, t) in tokens.iter().enumerate() {
            if t.text != "or" {
                continue;
            }
            // The words next to `or` on the left, and the last of the phrase on its right:
            // `a kilogram of feathers or a kilogram of steel` offers feathers and steel.
            let content = |t: &&Token| !t.stop && !t.negation;
            let before = tokens[..i].iter().rev().find(content);
            let clause = tokens.get(i + 1).map(|t| t.clause);
            let after = tokens[i + 1..]
                .iter()
                .take_while(|t| Some(t.clause) == clause)
                .filter(content)
                .last();
            for o in [before, after].into_iter().flatten() {
                if !options.contains(&o.text) {
                    options.push(o.text.clone());
                }
            }
        }
        let lettered = lettered_options(question);
        for (_, option) in &lettered {
            if !options.contains(option) {
                options.push(option.clone());
            }
        }
        QuestionTerms {
            words: words.iter().map(|t| t.text.clone()).collect(),
            numbers: words.iter().filter_map(|t| t.value).collect(),
            yes_no: AUXILIARIES.contains(&first) && !has_or,
            options,
            predicates: words.iter().skip(1).map(|t| t.text.clone()).collect(),
            lettered,
        }
    }

    /// Whether `word` is one the question says, in the same or another form (`japanese` for
    /// `Japan`, `lost` for `lose`).
    pub(super) fn says(&self, word: &str) -> bool {
        self.words.contains(word) || self.words.iter().any(|q| restated(q, word))
    }

    /// Whether the question is answered by yes or no.
    pub fn yes_no(&self) -> bool {
        self.yes_no
    }
}

/// Another form of the question's word: a shared stem of at least three letters (and all but two of
/// the shorter word), and endings of at most three letters.
pub(super) fn restated(question: &str, word: &str) -> bool {
    let shared = question
        .chars()
        .zip(word.chars())
        .take_while(|(a, b)| a == b)
        .count();
    let (lq, lw) = (question.chars().count(), word.chars().count());
    shared >= 3.max(lq.min(lw).saturating_sub(2)) && lq - shared <= 3 && lw - shared <= 3
}

/// `(a) Venus (b) Mars (c) Saturn`: each letter with the first word of its option, lowercase.
fn lettered_options(question: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = question;
    while let Some(open) = rest.find('(') {
        let after = &rest[open + 1..];
        let mut chars = after.chars();
        if let (Some(letter), Some(')')) = (chars.next(), chars.next())
            && letter.is_ascii_alphabetic()
        {
            let option = after[2..]
                .split(|c: char| !c.is_alphanumeric())
                .find(|w| !w.is_empty());
            if let Some(word) = option {
                out.push((
                    letter.to_ascii_lowercase().to_string(),
                    stem(&word.to_lowercase()),
                ));
            }
        }
        rest = after;
    }
    out
}

/// The option an answer picks by its letter: `b`, `(b)`, `Option B`, `B)`.
pub(super) fn picked_letter(answer: &str, question: &QuestionTerms) -> Option<String> {
    if question.lettered.is_empty() {
        return None;
    }
    let lower = answer.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let letter = if words.len() == 1 {
        words[0]
    } else if let Some(i) = words.iter().position(|w| *w == "option" || *w == "answer") {
        words.get(i + 1)?
    } else {
        let open = lower.trim_start().strip_prefix('(')?;
        open.split(')').next()?
    };
    question
        .lettered
        .iter()
        .find(|(l, _)| l == letter)
        .map(|(_, option)| option.clone())
}

#[cfg(test)]
mod tests {
    use super::super::canonical::{Canon, canonicalize};
    use super::*;

    fn canon(answer: &str, question: &str) -> Canon {
        canonicalize(answer, &QuestionTerms::new(question))
    }

    fn key(answer: &str, question: &str) -> String {
        canon(answer, question).key()
    }

    const CAPITAL: &str = "What is the capital of France?";

    #[test]
    fn restating_the_question_is_taken_out() {
        assert_eq!(key("The capital of France is Paris.", CAPITAL), "paris");
        assert_eq!(key("France's capital is Paris", CAPITAL), "paris");
        assert_eq!(key("I believe it's probably Paris.", CAPITAL), "paris");
    }

    #[test]
    fn speaker_clauses_and_lettered_options() {
        let c = canon(
            "If I remember right, it was Mozart, in 1791.",
            "Who composed The Magic Flute?",
        );
        assert_eq!(c.head, ["mozart"]);
        let q = "Which planet is known as the Red Planet? (a) Venus (b) Mars (c) Saturn";
        for answer in ["b", "Option B.", "(b) Mars — for its iron oxide.", "Mars"] {
            assert_eq!(canon(answer, q).choice.as_deref(), Some("mar"), "{answer}");
        }
        assert_eq!(canon("Venus", q).choice.as_deref(), Some("venus"));
    }

    #[test]
    fn options_in_the_question_are_choices() {
        let q = "Which is larger, Jupiter or Saturn?";
        assert_eq!(
            canon("Jupiter is larger than Saturn.", q).choice.as_deref(),
            Some("jupiter")
        );
        assert_eq!(canon("Saturn", q).choice.as_deref(), Some("saturn"));
        assert_eq!(
            canon("Definitely Jupiter", q).choice.as_deref(),
            Some("jupiter")
        );
        let q = "Which is heavier, a kilogram of feathers or a kilogram of steel?";
        assert_eq!(
            canon("Neither; they weigh the same.", q).choice.as_deref(),
            Some("neither")
        );
        assert_eq!(canon("Same weight.", q).choice.as_deref(), Some("neither"));
        assert_eq!(
            canon("They both weigh one kilogram.", q).choice.as_deref(),
            Some("neither")
        );
        assert_eq!(canon("The steel.", q).choice.as_deref(), Some("steel"));
    }
}
