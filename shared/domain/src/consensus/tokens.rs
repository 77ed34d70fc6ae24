//! Reading a text into tokens, the same way for a question and its answers, so that what is
//! written differently but says the same (NFKC forms, case, contractions, number words, unit
//! spellings, the dot of a title) is one token before anything is compared.

use super::numbers;
use super::pieces::{Piece, pieces};
use super::words::{AUXILIARIES, CLAUSE_WORDS, HEDGES, NEGATIONS, NO, STOP, YES, stem, unit};

/// One token of an answer or a question.
#[derive(Clone, Debug)]
pub(super) struct Token {
    /// Lowercase, stemmed; a number's value as text; a unit's one spelling.
    pub(super) text: String,
    pub(super) value: Option<f64>,
    /// Written with a capital first letter.
    pub(super) capital: bool,
    pub(super) stop: bool,
    pub(super) negation: bool,
    /// Which clause of the answer it is in (clauses end at `,;:.!?()—` and before `because`).
    pub(super) clause: u32,
}

pub(super) fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens: Vec<Token> = Vec::new();
    let mut clause = 0u32;
    // Words awaiting the number-word reader: `forty two`, `one thousand`.
    let pieces = pieces(text);
    let mut words: Vec<(String, bool, u32)> = Vec::new();
    let flush = |words: &mut Vec<(String, bool, u32)>, tokens: &mut Vec<Token>| {
        let mut i = 0;
        while i < words.len() {
            let slice: Vec<&str> = words[i..].iter().map(|(w, _, _)| w.as_str()).collect();
            match numbers::parse_words(&slice) {
                // `one` alone is as often a pronoun as a number: `the one on the left`.
                Some((value, taken)) if !(taken == 1 && slice[0] == "one" && slice.len() > 1) => {
                    tokens.push(number_token(value, words[i].2));
                    i += taken;
                }
                _ => {
                    let (w, capital, clause) = &words[i];
                    push_word(tokens, w, *capital, *clause);
                    i += 1;
                }
            }
        }
        words.clear();
    };
    for piece in pieces {
        match piece {
            Piece::Word(w, capital) => {
                if CLAUSE_WORDS.contains(&w.as_str()) {
                    flush(&mut words, &mut tokens);
                    clause += 1;
                    continue;
                }
                // A scale word right after digits: `1.5 million`.
                if words.is_empty()
                    && let Some(scale) = numbers::scale_word(&w)
                    && let Some(last) = tokens.last_mut()
                    && let Some(v) = last.value
                    && last.clause == clause
                {
                    *last = number_token(v * scale, clause);
                    continue;
                }
                words.push((w, capital, clause));
            }
            Piece::Digits(d) => {
                flush(&mut words, &mut tokens);
                if let Some(v) = numbers::parse_digits(&d) {
                    tokens.push(number_token(v, clause));
                }
            }
            Piece::Symbol(s) => {
                flush(&mut words, &mut tokens);
                tokens.push(plain(s.to_owned(), false, clause));
            }
            Piece::Break => {
                flush(&mut words, &mut tokens);
                clause += 1;
            }
        }
    }
    flush(&mut words, &mut tokens);
    // A clause that gives another name for what came before (`Eric Blair, better known as George
    // Orwell`; `Everest, also called Sagarmatha`) is part of that clause, not a reason.
    for i in 0..tokens.len() {
        let alias = matches!(
            tokens[i].text.as_str(),
            "known" | "called" | "named" | "aka"
        );
        let clause = tokens[i].clause;
        let opens = tokens[..i]
            .iter()
            .rev()
            .take_while(|t| t.clause == clause)
            .all(|t| {
                matches!(
                    t.text.as_str(),
                    "also" | "better" | "more" | "commonly" | "often" | "sometimes" | "widely"
                )
            });
        if alias && opens && clause > 0 {
            for t in tokens.iter_mut().filter(|t| t.clause == clause) {
                t.clause = clause - 1;
            }
        }
    }
    // `degrees Celsius` is one unit: the `degree` before a temperature scale goes.
    let mut i = 0;
    while i + 1 < tokens.len() {
        if tokens[i].text == "°" && matches!(tokens[i + 1].text.as_str(), "°c" | "°f") {
            tokens.remove(i);
        } else {
            i += 1;
        }
    }
    tokens
}

fn number_token(value: f64, clause: u32) -> Token {
    Token {
        text: format!("{value}"),
        value: Some(value),
        capital: false,
        stop: false,
        negation: false,
        clause,
    }
}

pub(super) fn plain(text: String, capital: bool, clause: u32) -> Token {
    let stop = STOP.contains(&text.as_str()) || HEDGES.contains(&text.as_str());
    let negation = NEGATIONS.contains(&text.as_str());
    Token {
        text,
        value: None,
        capital,
        stop: stop && !negation,
        negation,
        clause,
    }
}

/// Pushes a word, splitting contractions (`isn't` is `is not`, `it's` is `it is`) and unifying
/// units and plurals.
fn push_word(tokens: &mut Vec<Token>, word: &str, capital: bool, clause: u32) {
    let (base, not) = if let Some(b) = word.strip_suffix("n't") {
        let b = match b {
            "ca" => "can",
            "wo" => "will",
            "sha" => "shall",
            b => b,
        };
        (b.to_owned(), true)
    } else if let Some((b, _)) = word.split_once('\'') {
        (b.to_owned(), false)
    } else if word == "cannot" {
        ("can".to_owned(), true)
    } else {
        (word.to_owned(), false)
    };
    if !base.is_empty() {
        // Function words keep their form: `does` is not a plural.
        let function = [STOP, HEDGES, NEGATIONS, YES, NO, AUXILIARIES]
            .iter()
            .any(|list| list.contains(&base.as_str()));
        let stemmed = if function { base } else { stem(&base) };
        let text = match stemmed.as_str() {
            "mt" => "mount".to_owned(),
            _ => unit(&stemmed).map_or(stemmed, str::to_owned),
        };
        tokens.push(plain(text, capital, clause));
    }
    if not {
        tokens.push(plain("not".into(), false, clause));
    }
}

#[cfg(test)]
mod tests {
    use super::super::canonical::{Canon, canonicalize};
    use super::super::question::QuestionTerms;

    fn canon(answer: &str, question: &str) -> Canon {
        canonicalize(answer, &QuestionTerms::new(question))
    }

    fn key(answer: &str, question: &str) -> String {
        canon(answer, question).key()
    }

    const CAPITAL: &str = "What is the capital of France?";

    #[test]
    fn nfkc_case_punctuation_and_articles() {
        assert_eq!(key("Paris", CAPITAL), "paris");
        assert_eq!(key("  PARIS.  ", CAPITAL), "paris");
        assert_eq!(key("**Paris**", CAPITAL), "paris");
        assert_eq!(
            key("The Eiffel Tower", "What is Paris's best-known landmark?"),
            key("Eiffel tower!", "What is Paris's best-known landmark?")
        );
        // Full-width letters are NFKC's: `Ｐａｒｉｓ` is `Paris`.
        assert_eq!(key("Ｐａｒｉｓ", CAPITAL), "paris");
    }

    #[test]
    fn number_words_and_digit_forms() {
        let q = "How many legs does a spider have?";
        assert_eq!(key("eight", q), "8");
        assert_eq!(key("8", q), "8");
        assert_eq!(key("A spider has eight legs.", q), "8");
        assert_eq!(key("1,000", "How many?"), key("1000", "How many?"));
        assert_eq!(key("one thousand", "How many?"), "1000");
        assert_eq!(key("1.5 million", "How many?"), "1500000");
        assert_eq!(key("forty-two", "What is the answer?"), "42");
        assert_eq!(key("8.0", q), "8");
    }

    #[test]
    fn trivially_equal_units() {
        let q = "At what temperature does water boil at sea level?";
        assert_eq!(key("100 °C", q), key("100°C", q));
        assert_eq!(key("100 degrees Celsius", q), key("100°C", q));
        assert_eq!(key("100 ℃", q), key("100°C", q));
        assert_eq!(key("25%", "What share?"), key("25 percent", "What share?"));
        assert_ne!(key("100 °C", q), key("100 °F", q));
    }

    #[test]
    fn abbreviations_are_words() {
        let q = "What is the tallest peak on Earth?";
        assert_eq!(canon("Mt. Everest", q).head, ["mount", "everest"]);
        let c = canon("Mt. Everest, also called Sagarmatha.", q);
        assert_eq!(
            c.head,
            ["mount", "everest", "sagarmatha"],
            "an alias is part of the head"
        );
        let q = "Who was the first President of the United States?";
        assert_eq!(
            canon("The first U.S. president was George Washington.", q).head,
            ["us", "george", "washington"]
        );
    }

    #[test]
    fn sub_and_superscripts() {
        let q = "What is the chemical formula of water?";
        assert_eq!(key("H₂O", q), key("H2O", q));
        assert_eq!(
            key("E = mc²", "What is Einstein's equation?"),
            key("E=mc2", "What is Einstein's equation?")
        );
    }
}
