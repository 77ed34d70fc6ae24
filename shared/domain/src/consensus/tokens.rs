//! Reading a text into tokens, the same way for a question and its answers, so that what is
//! written differently but says the same (NFKC forms, case, contractions, number words, unit
//! spellings, the dot of a title) is one token before anything is compared.

use unicode_normalization::UnicodeNormalization;

use super::numbers;
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

/// The raw pieces of a text: words (with capitalization), digit numbers, symbols, and clause
/// breaks.
enum Piece {
    Word(String, bool),
    Digits(String),
    Symbol(&'static str),
    Break,
}

fn pieces(text: &str) -> Vec<Piece> {
    let text = powers_of_ten(text);
    let text: String = text
        .nfkc()
        .map(|c| match c {
            '’' | '‘' | 'ʼ' | '`' => '\'',
            '−' => '-',
            c => c,
        })
        .collect();
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let minus = c == '-'
            && chars.get(i + 1).is_some_and(char::is_ascii_digit)
            && (i == 0 || chars[i - 1].is_whitespace());
        if c.is_ascii_digit() || minus {
            let start = i;
            i += 1;
            while i < chars.len() {
                let d = chars[i];
                let inner = (d == ',' || d == '.')
                    && chars.get(i + 1).is_some_and(char::is_ascii_digit)
                    && chars[i - 1].is_ascii_digit();
                if d.is_ascii_digit() || inner {
                    i += 1;
                } else {
                    break;
                }
            }
            out.push(Piece::Digits(chars[start..i].iter().collect()));
            // A suffix written onto the number: `100km`, `3rd`.
            let suffix_start = i;
            while i < chars.len() && chars[i].is_alphabetic() {
                i += 1;
            }
            let suffix: String = chars[suffix_start..i]
                .iter()
                .collect::<String>()
                .to_lowercase();
            if !suffix.is_empty() && !matches!(suffix.as_str(), "st" | "nd" | "rd" | "th") {
                out.push(Piece::Word(suffix, false));
            }
        } else if c.is_alphabetic() && is_initialism(&chars, i) {
            // `U.S.`, `U.K.`: one word, not clauses of one letter.
            let start = i;
            let mut word = String::new();
            while i + 1 < chars.len() && chars[i].is_alphabetic() && chars[i + 1] == '.' {
                word.push(chars[i]);
                i += 2;
            }
            let capital = chars[start].is_uppercase();
            out.push(Piece::Word(word.to_lowercase(), capital));
        } else if c.is_alphanumeric() {
            let start = i;
            while i < chars.len() {
                let d = chars[i];
                let inner =
                    d == '\'' && i > start && chars.get(i + 1).is_some_and(|n| n.is_alphabetic());
                if d.is_alphanumeric() || inner {
                    i += 1;
                } else {
                    break;
                }
            }
            let word: String = chars[start..i].iter().collect();
            let capital = word.chars().next().is_some_and(char::is_uppercase);
            out.push(Piece::Word(word.to_lowercase(), capital));
        } else {
            i += 1;
            match c {
                '%' => out.push(Piece::Symbol("%")),
                '$' => out.push(Piece::Symbol("$")),
                '€' => out.push(Piece::Symbol("€")),
                '£' => out.push(Piece::Symbol("£")),
                '°' => {
                    // `°C` and `° C` alike.
                    let mut j = i;
                    while chars.get(j).is_some_and(|c| *c == ' ') {
                        j += 1;
                    }
                    let next = chars.get(j).map(|c| c.to_ascii_lowercase());
                    let after = chars.get(j + 1).is_none_or(|c| !c.is_alphabetic());
                    match next {
                        Some('c') if after => {
                            out.push(Piece::Symbol("°c"));
                            i = j + 1;
                        }
                        Some('f') if after => {
                            out.push(Piece::Symbol("°f"));
                            i = j + 1;
                        }
                        _ => out.push(Piece::Symbol("°")),
                    }
                }
                // Parentheses hold an apposition (`water (H₂O)`), not a reason: no break.
                // The dot of a title or an initial (`Mt. Everest`, `Franklin D. Roosevelt`)
                // ends no clause.
                '.' if abbreviation(&out) => {}
                ',' | ';' | ':' | '.' | '!' | '?' | '—' | '–' => out.push(Piece::Break),
                _ => {}
            }
        }
    }
    out
}

/// `1.5 × 10⁸`, `1.5 x 10^8`, `1.5*10^8` as the plain number, before NFKC would read `10⁸` as
/// `108`.
fn powers_of_ten(text: &str) -> String {
    const SUPERSCRIPTS: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        // A mantissa, a times sign, `10`, and an exponent in superscript or after `^`.
        let start = i;
        let mut j = i;
        while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '.') {
            j += 1;
        }
        let mantissa: String = chars[start..j].iter().collect();
        let mut k = j;
        while chars.get(k) == Some(&' ') {
            k += 1;
        }
        let times = matches!(chars.get(k), Some('×' | 'x' | '*' | '·'));
        let mut m = k + 1;
        while chars.get(m) == Some(&' ') {
            m += 1;
        }
        let ten = times && chars.get(m) == Some(&'1') && chars.get(m + 1) == Some(&'0');
        let mut e = m + 2;
        let mut exponent = String::new();
        if ten && chars.get(e) == Some(&'^') {
            e += 1;
            while e < chars.len() && chars[e].is_ascii_digit() {
                exponent.push(chars[e]);
                e += 1;
            }
        } else if ten {
            while let Some(d) = chars
                .get(e)
                .and_then(|c| SUPERSCRIPTS.iter().position(|s| s == c))
            {
                exponent.push(char::from(b'0' + d as u8));
                e += 1;
            }
        }
        let value = mantissa
            .parse::<f64>()
            .ok()
            .zip(exponent.parse::<i32>().ok());
        match value {
            Some((v, x)) if j > start && (-30..=30).contains(&x) => {
                out.push_str(&format!("{}", v * 10f64.powi(x)));
                i = e;
            }
            _ => {
                out.push(chars[i]);
                i += 1;
            }
        }
    }
    out
}

/// Whether the word just read is a title or an initial, whose dot is no full stop.
fn abbreviation(out: &[Piece]) -> bool {
    const TITLES: &[&str] = &[
        "mt", "mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "gen", "col", "lt", "sgt", "ft",
        "vs", "no",
    ];
    match out.last() {
        Some(Piece::Word(w, capital)) => {
            (w != "no" && TITLES.contains(&w.as_str())) || (*capital && w.chars().count() == 1)
        }
        _ => false,
    }
}

/// A run of two or more single letters each followed by a dot, starting at `i`: `U.S.`.
fn is_initialism(chars: &[char], i: usize) -> bool {
    let single = |k: usize| {
        chars.get(k).is_some_and(|c| c.is_alphabetic())
            && chars.get(k + 1) == Some(&'.')
            && (k == 0 || !chars[k - 1].is_alphanumeric() || chars[k - 1] == '.')
    };
    single(i) && single(i + 2)
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
