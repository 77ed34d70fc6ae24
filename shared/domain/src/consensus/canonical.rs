//! An answer's canonical form: what is left of it to compare once the ways of writing the same
//! thing are taken out.
//!
//! Unicode NFKC (`H₂O` is `H2O`, `℃` is `°C`), case, punctuation, articles and hedges; the words
//! the question already says (`The capital of France is Paris.` to "What is the capital of
//! France?" says `paris`); number words and digit forms (`eight`, `8`, `1,000`, `1000`); unit
//! spellings (`100 °C`, `100°C`, `100 degrees Celsius`); and for a yes/no question, yes or no in
//! whatever form (`No.`, `Nope`, `The Earth is not flat`). What it keeps apart is as important:
//! a negation, a number or a chosen option is never canonicalized away.

use unicode_normalization::UnicodeNormalization;

use super::polarity::{drop_hedge_clauses, hedged, leading_yes_or_no, stated_polarity};
use super::quantity::{Quantity, dimension, quantities};
use super::question::{QuestionTerms, picked_letter};
use super::tokens::{Token, plain, tokenize};

/// An answer, canonicalized against its question.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Canon {
    /// Every content word, in order: lowercase, stemmed, numbers as their value, units unified.
    pub words: Vec<String>,
    /// The words the answer asserts that the question does not already say (all it asserts when
    /// that leaves none).
    pub core: Vec<String>,
    /// The words it denies: those after a negation in their clause.
    pub denied: Vec<String>,
    /// `core` of the first clause that has any: the answer before its reasons.
    pub head: Vec<String>,
    /// The quantities of the head (its reasons may cite other numbers), each in its dimension's
    /// base unit: `384,400 km` is 384,400,000 of length; `98.6 °F` is 37 of temperature.
    pub quantities: Vec<Quantity>,
    /// The answer only denies (`It is not Paris`): it asserts nothing of its own.
    pub negated: bool,
    /// For a yes/no question: whether the answer says yes (`Some(true)`) or no.
    pub polarity: Option<bool>,
    /// For a question that offers options (`Jupiter or Saturn?`): the first one the answer names.
    pub choice: Option<String>,
    /// Capitalized words of `core` (proper names, acronyms), lowercase.
    pub names: Vec<String>,
    /// Acronyms in the answer as written (`USA`), lowercase, to match names' initials.
    pub acronyms: Vec<String>,
    /// The initials of the runs of capitalized words (`United States` is `us`).
    pub initials: Vec<String>,
}

impl Canon {
    /// The canonical text: `yes`/`no` for a yes/no answer, else the core words.
    pub fn key(&self) -> String {
        match self.polarity {
            Some(true) => "yes".into(),
            Some(false) => "no".into(),
            None if self.denied.is_empty() => self.core.join(" "),
            None => format!("{} not {}", self.core.join(" "), self.denied.join(" "))
                .trim_start()
                .to_owned(),
        }
    }
}

/// Canonicalizes `answer` against `question`.
pub fn canonicalize(answer: &str, question: &QuestionTerms) -> Canon {
    let mut tokens = tokenize(answer);
    if let Some(option) = picked_letter(answer, question) {
        // The letter stands for its option: `(b)` is Mars.
        tokens.retain(|t| t.text.chars().count() > 1 || t.value.is_some());
        tokens.insert(0, plain(option, false, 0));
    }
    drop_hedge_clauses(&mut tokens);
    let (mut polarity, skip) = leading_yes_or_no(&tokens, question);
    let content = content(&tokens, skip);
    let words: Vec<String> = content.iter().map(|(t, _)| t.text.clone()).collect();
    let fresh: Vec<(&Token, bool)> = content
        .iter()
        .copied()
        .filter(|(t, _)| !question.says(&t.text))
        .collect();
    let kept = if fresh.is_empty() { content } else { fresh };
    let asserted: Vec<&Token> = kept.iter().filter(|(_, d)| !d).map(|(t, _)| *t).collect();
    let denied: Vec<String> = kept
        .iter()
        .filter(|(_, d)| *d)
        .map(|(t, _)| t.text.clone())
        .collect();
    let core: Vec<String> = asserted.iter().map(|t| t.text.clone()).collect();
    let head_clause = asserted.first().map(|t| t.clause);
    let head_tokens: Vec<&Token> = asserted
        .iter()
        .copied()
        .filter(|t| Some(t.clause) == head_clause)
        .collect();
    let head = head_tokens.iter().map(|t| t.text.clone()).collect();
    if question.yes_no && polarity.is_none() {
        polarity = stated_polarity(&tokens, question);
    }
    let names = asserted
        .iter()
        .filter(|t| t.capital && t.value.is_none() && dimension(&t.text).is_none())
        .map(|t| t.text.clone())
        .collect();
    Canon {
        negated: core.is_empty() && !denied.is_empty(),
        quantities: answer_quantities(&head_tokens, question),
        choice: choice(&words, &tokens, question),
        words,
        core,
        denied,
        head,
        polarity,
        names,
        acronyms: acronyms(answer),
        initials: initials(&tokens),
    }
}

/// The content words but the one at `skip`, each with whether a negation denies it: the words
/// after a negation in its clause (`Lyon, not Paris` asserts Lyon and denies Paris).
fn content(tokens: &[Token], skip: Option<usize>) -> Vec<(&Token, bool)> {
    let mut denying: Option<u32> = None;
    let mut content = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if Some(i) == skip {
            continue;
        }
        if t.negation {
            if !hedged(tokens, i) {
                denying = Some(t.clause);
            }
        } else if !t.stop {
            content.push((t, denying == Some(t.clause)));
        }
    }
    content
}

/// The quantities of the answer's head clause. A number the question gives is not the answer's,
/// unless the answer gives no other.
fn answer_quantities(head: &[&Token], question: &QuestionTerms) -> Vec<Quantity> {
    let mut quantities = quantities(head);
    if quantities
        .iter()
        .any(|q| !question.numbers.contains(&q.value))
    {
        quantities.retain(|q| q.dimension.is_some() || !question.numbers.contains(&q.value));
    }
    quantities
}

/// The option a choice question's answer picks; or its third answer, neither option or both
/// alike (`They weigh the same`).
fn choice(words: &[String], tokens: &[Token], question: &QuestionTerms) -> Option<String> {
    words
        .iter()
        .find(|w| question.options.contains(w))
        .cloned()
        .or_else(|| {
            let alike = tokens.iter().any(|t| {
                matches!(
                    t.text.as_str(),
                    "neither" | "both" | "same" | "equal" | "equally"
                )
            });
            (!question.options.is_empty() && alike).then(|| "neither".to_owned())
        })
}

/// Runs of two or more capital letters written as a word: `USA`, `NYC`.
fn acronyms(text: &str) -> Vec<String> {
    let text: String = text.nfkc().collect();
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 2 && w.len() <= 6 && w.chars().all(|c| c.is_ascii_uppercase()))
        .map(str::to_lowercase)
        .collect()
}

/// The initials of each run of capitalized words: `the United States of America` is `usa`
/// (`of` and `and` inside a run are passed over).
fn initials(tokens: &[Token]) -> Vec<String> {
    let mut out = Vec::new();
    let mut run = String::new();
    for t in tokens {
        if t.capital && t.value.is_none() && !t.stop {
            run.push(t.text.chars().next().unwrap_or_default());
        } else if t.stop && (run.is_empty() || matches!(t.text.as_str(), "of" | "and")) {
            continue;
        } else if !run.is_empty() {
            out.push(std::mem::take(&mut run));
        }
    }
    if !run.is_empty() {
        out.push(run);
    }
    out.retain(|r| r.len() >= 2);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(answer: &str, question: &str) -> Canon {
        canonicalize(answer, &QuestionTerms::new(question))
    }

    const CAPITAL: &str = "What is the capital of France?";

    #[test]
    fn yes_and_no_in_any_form() {
        let q = "Is the Earth flat?";
        for no in [
            "No.",
            "no",
            "Nope",
            "No, the Earth is roughly spherical.",
            "The Earth is not flat.",
            "It isn't flat.",
            "Probably not.",
            "False.",
        ] {
            assert_eq!(canon(no, q).polarity, Some(false), "{no}");
        }
        for yes in ["Yes.", "Yes, it is flat.", "The Earth is flat.", "Correct."] {
            assert_eq!(canon(yes, q).polarity, Some(true), "{yes}");
        }
        // Not yes/no in form: left to the other rules.
        assert_eq!(canon("The Earth is round.", q).polarity, None);
        // Not a yes/no question: no polarity.
        assert_eq!(canon("No idea", CAPITAL).polarity, None);
    }

    #[test]
    fn yes_and_no_stated_in_other_clauses() {
        assert_eq!(
            canon(
                "It is classified as a dwarf planet, not a planet.",
                "Is Pluto a planet?"
            )
            .polarity,
            Some(false)
        );
        assert_eq!(
            canon(
                "Botanically speaking, a tomato is a fruit.",
                "Is a tomato botanically a fruit?"
            )
            .polarity,
            Some(true)
        );
        assert_eq!(
            canon("It's chemically inert, so no.", "Is helium a reactive gas?").polarity,
            Some(false)
        );
        assert_eq!(
            canon(
                "Helium is not reactive — it's a noble gas.",
                "Is helium a reactive gas?"
            )
            .polarity,
            Some(false)
        );
        assert_eq!(
            canon(
                "Not really — it passes through the gut.",
                "Can humans digest cellulose?"
            )
            .polarity,
            Some(false)
        );
        assert_eq!(
            canon("Napoleon did lose.", "Did Napoleon lose at Waterloo?").polarity,
            Some(true)
        );
    }

    #[test]
    fn negation_is_kept_and_hedges_are_not_negations() {
        assert!(canon("The capital of France is not Paris.", CAPITAL).negated);
        assert!(!canon("Probably Paris, though I'm not certain.", CAPITAL).negated);
        assert!(!canon("Paris, but I'm not 100% sure.", CAPITAL).negated);
        assert!(canon("It isn't Lyon", CAPITAL).negated);
        let c = canon("Lyon, not Paris", CAPITAL);
        assert_eq!(
            (c.core, c.denied, c.negated),
            (vec!["lyon".to_owned()], vec!["paris".to_owned()], false)
        );
    }

    #[test]
    fn reasons_after_the_answer_are_not_its_head() {
        let c = canon(
            "It's Paris, which has been the French capital for centuries.",
            CAPITAL,
        );
        assert_eq!(c.head, ["paris"]);
        let c = canon("Paris because the king lived there", CAPITAL);
        assert_eq!(c.head, ["paris"]);
    }

    #[test]
    fn names_acronyms_and_initials() {
        let q = "Which country has the largest economy?";
        let c = canon("The United States of America", q);
        assert_eq!(c.initials, ["usa"]);
        assert_eq!(canon("USA", q).acronyms, ["usa"]);
        assert_eq!(canon("Paris", CAPITAL).names, ["paris"]);
    }
}
