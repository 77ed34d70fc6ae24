//! An answer's canonical form: what is left of it to compare once the ways of writing the same
//! thing are taken out.
//!
//! Unicode NFKC (`H₂O` is `H2O`, `℃` is `°C`), case, punctuation, articles and hedges; the words
//! the question already says (`The capital of France is Paris.` to "What is the capital of
//! France?" says `paris`); number words and digit forms (`eight`, `8`, `1,000`, `1000`); unit
//! spellings (`100 °C`, `100°C`, `100 degrees Celsius`); and for a yes/no question, yes or no in
//! whatever form (`No.`, `Nope`, `The Earth is not flat`). What it keeps apart is as important:
//! a negation, a number or a chosen option is never canonicalized away.

use std::collections::BTreeSet;

use unicode_normalization::UnicodeNormalization;

use super::numbers;

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

/// A number and what it measures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quantity {
    /// In the base unit of its dimension (metres, grams, seconds, °C), or as written.
    pub value: f64,
    /// What it measures, when a unit says so.
    pub dimension: Option<Dimension>,
}

/// What a unit measures: quantities of one dimension compare after conversion; of two, never.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dimension {
    Length,
    Mass,
    Time,
    Temperature,
    Percent,
    Angle,
    /// Metres per second.
    Speed,
    /// Money, one per currency: no exchange rate is a fact.
    Currency(&'static str),
}

/// A unit's dimension and how to reach the base unit: `value * scale + offset`.
fn dimension(unit: &str) -> Option<(Dimension, f64, f64)> {
    use Dimension::*;
    Some(match unit {
        "m" => (Length, 1.0, 0.0),
        "km" => (Length, 1e3, 0.0),
        "cm" => (Length, 1e-2, 0.0),
        "mi" => (Length, 1609.344, 0.0),
        "g" => (Mass, 1.0, 0.0),
        "kg" => (Mass, 1e3, 0.0),
        "s" => (Time, 1.0, 0.0),
        "min" => (Time, 60.0, 0.0),
        "h" => (Time, 3600.0, 0.0),
        "°c" => (Temperature, 1.0, 0.0),
        "°f" => (Temperature, 5.0 / 9.0, -32.0 * 5.0 / 9.0),
        "%" => (Percent, 1.0, 0.0),
        "°" => (Angle, 1.0, 0.0),
        "$" => (Currency("$"), 1.0, 0.0),
        "€" => (Currency("€"), 1.0, 0.0),
        "£" => (Currency("£"), 1.0, 0.0),
        _ => return None,
    })
}

/// The quantities among `tokens`: each number with the unit right after it (`100 °C`, `5 km`), or
/// a currency sign right before it (`$5`).
fn quantities(tokens: &[&Token]) -> Vec<Quantity> {
    let mut out = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let Some(value) = t.value else { continue };
        let near = |k: Option<usize>| k.and_then(|k| tokens.get(k)).map(|t| t.text.as_str());
        // The day of a date (`14 October 1066`, `July 4`) is not the answer's number.
        let day = value.fract() == 0.0
            && (1.0..=31.0).contains(&value)
            && [near(i.checked_sub(1)), near(Some(i + 1))]
                .iter()
                .flatten()
                .any(|w| MONTHS.contains(w));
        if day {
            continue;
        }
        let after = near(Some(i + 1)).and_then(dimension);
        let before = near(i.checked_sub(1))
            .and_then(dimension)
            .filter(|(d, _, _)| matches!(d, Dimension::Currency(_)));
        // A length over a time is a speed: `km/h`, `metres per second`.
        let per = near(Some(i + 2)).and_then(dimension);
        out.push(match (after, per, before) {
            (Some((Dimension::Length, l, _)), Some((Dimension::Time, t, _)), _) => Quantity {
                value: value * l / t,
                dimension: Some(Dimension::Speed),
            },
            (Some((dimension, scale, offset)), _, _)
            | (None, _, Some((dimension, scale, offset))) => Quantity {
                value: value * scale + offset,
                dimension: Some(dimension),
            },
            (None, _, None) => Quantity {
                value,
                dimension: None,
            },
        });
    }
    out
}

const MONTHS: &[&str] = &[
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// What the question says, for canonicalizing its answers.
#[derive(Clone, Debug, Default)]
pub struct QuestionTerms {
    words: BTreeSet<String>,
    numbers: Vec<f64>,
    yes_no: bool,
    options: Vec<String>,
    /// Its content words after the first: what a yes/no question asks of its subject (`flat` in
    /// "Is the Earth flat?", `reactive` and `gas` in "Is helium a reactive gas?").
    predicates: Vec<String>,
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
    fn says(&self, word: &str) -> bool {
        self.words.contains(word) || self.words.iter().any(|q| restated(q, word))
    }

    /// Whether the question is answered by yes or no.
    pub fn yes_no(&self) -> bool {
        self.yes_no
    }
}

/// Another form of the question's word: a shared stem of at least three letters (and all but two of
/// the shorter word), and endings of at most three letters.
fn restated(question: &str, word: &str) -> bool {
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
fn picked_letter(answer: &str, question: &QuestionTerms) -> Option<String> {
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

/// Canonicalizes `answer` against `question`.
pub fn canonicalize(answer: &str, question: &QuestionTerms) -> Canon {
    let mut tokens = tokenize(answer);
    if let Some(option) = picked_letter(answer, question) {
        // The letter stands for its option: `(b)` is Mars.
        tokens.retain(|t| t.text.chars().count() > 1 || t.value.is_some());
        tokens.insert(0, plain(option, false, 0));
    }
    drop_hedge_clauses(&mut tokens);
    // A leading yes or no (after hedges: `Probably not.`) answers a yes/no question and is not a
    // negation of what follows.
    let mut polarity = None;
    let mut skip = None;
    let lead = tokens
        .iter()
        .position(|t| !HEDGES.contains(&t.text.as_str()));
    if let Some(i) = lead.filter(|_| question.yes_no) {
        let w = tokens[i].text.as_str();
        // `Not really`, `Not at all`: a no, when nothing else is in its clause.
        let bare = tokens[i + 1..]
            .iter()
            .take_while(|t| t.clause == tokens[i].clause)
            .all(|t| t.stop || matches!(t.text.as_str(), "really" | "all" | "quite"));
        if YES.contains(&w) {
            polarity = Some(true);
            skip = Some(i);
        } else if NO.contains(&w) || (w == "not" && bare) {
            polarity = Some(false);
            skip = Some(i);
        }
    }
    // Which words a negation denies: those after it in its clause (`Lyon, not Paris` asserts
    // Lyon and denies Paris).
    let mut denying: Option<u32> = None;
    let mut content: Vec<(&Token, bool)> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if Some(i) == skip {
            continue;
        }
        if t.negation {
            if !hedged(&tokens, i) {
                denying = Some(t.clause);
            }
        } else if !t.stop {
            content.push((t, denying == Some(t.clause)));
        }
    }
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
    let head = asserted
        .iter()
        .filter(|t| Some(t.clause) == head_clause)
        .map(|t| t.text.clone())
        .collect();
    let head_tokens: Vec<&Token> = asserted
        .iter()
        .copied()
        .filter(|t| Some(t.clause) == head_clause)
        .collect();
    let mut quantities = quantities(&head_tokens);
    // A number the question gives is not the answer's, unless the answer gives no other.
    if quantities
        .iter()
        .any(|q| !question.numbers.contains(&q.value))
    {
        quantities.retain(|q| q.dimension.is_some() || !question.numbers.contains(&q.value));
    }
    if question.yes_no && polarity.is_none() {
        polarity = stated_polarity(&tokens, question);
    }
    // A choice question's third answer: neither option, or both alike (`They weigh the same`).
    let choice = words
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
        });
    let names = asserted
        .iter()
        .filter(|t| t.capital && t.value.is_none() && dimension(&t.text).is_none())
        .map(|t| t.text.clone())
        .collect();
    Canon {
        negated: core.is_empty() && !denied.is_empty(),
        words,
        core,
        denied,
        head,
        quantities,
        polarity,
        choice,
        names,
        acronyms: acronyms(answer),
        initials: initials(&tokens),
    }
}

/// What an answer without a leading yes or no says to a yes/no question: a clause of its own that
/// is only a yes or a no (`It's inert, so no`), else the clauses that speak of what the question
/// asks (`Penguins cannot fly`, `Botanically, a tomato is a fruit`). One that denies it wins: `a
/// dwarf planet, not a planet` says no. An answer that speaks of something else (`The Earth is
/// round`) says neither, and is left to the other rules.
fn stated_polarity(tokens: &[Token], question: &QuestionTerms) -> Option<bool> {
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
fn drop_hedge_clauses(tokens: &mut [Token]) {
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

/// One token of an answer or a question.
#[derive(Clone, Debug)]
struct Token {
    /// Lowercase, stemmed; a number's value as text; a unit's one spelling.
    text: String,
    value: Option<f64>,
    /// Written with a capital first letter.
    capital: bool,
    stop: bool,
    negation: bool,
    /// Which clause of the answer it is in (clauses end at `,;:.!?()—` and before `because`).
    clause: u32,
}

/// Words that carry no answer: articles, copulas and auxiliaries, pronouns, prepositions, hedges.
const STOP: &[&str] = &[
    "a", "an", "the", "is", "are", "was", "were", "be", "been", "being", "am", "it", "its", "this",
    "that", "these", "those", "they", "there", "he", "she", "we", "you", "of", "in", "on", "at",
    "to", "for", "by", "with", "from", "and", "or", "as", "than", "has", "have", "had", "do",
    "does", "did", "can", "could", "will", "would", "shall", "should", "may", "might", "must",
    "answer", "final", "which", "what", "who", "whom", "whose", "so", "called", "known", "named",
    "just", "well", "also", "very", "here", "per", "option",
];
/// Words that qualify an answer without changing it.
const HEDGES: &[&str] = &[
    "i",
    "me",
    "my",
    "think",
    "believe",
    "guess",
    "probably",
    "likely",
    "most",
    "approximately",
    "about",
    "around",
    "roughly",
    "nearly",
    "almost",
    "maybe",
    "perhaps",
    "exactly",
    "precisely",
    "pretty",
    "quite",
    "fairly",
    "sure",
    "certain",
    "certainly",
    "confident",
    "say",
    "would",
    "estimate",
    "estimated",
    "some",
    "though",
    "although",
    "however",
    "actually",
    "generally",
    "typically",
    "usually",
    "answer",
    "simply",
    "basically",
    "essentially",
    "really",
    "highly",
    "definitely",
    "clearly",
    "obviously",
    "indeed",
    "overall",
    "short",
    "brief",
    "briefly",
    "often",
    "commonly",
    "widely",
    "better",
    "sometimes",
];
/// Negations; `nor` is not one, since the `neither` before it already denies.
const NEGATIONS: &[&str] = &[
    "not", "no", "never", "none", "nothing", "nobody", "neither", "nope",
];
const YES: &[&str] = &[
    "yes",
    "yeah",
    "yep",
    "yup",
    "correct",
    "true",
    "right",
    "absolutely",
    "affirmative",
    "definitely",
    "certainly",
    "indeed",
    "sure",
];
const NO: &[&str] = &[
    "no",
    "nope",
    "nah",
    "false",
    "incorrect",
    "wrong",
    "negative",
    "never",
];
/// The words a yes/no question starts with.
const AUXILIARIES: &[&str] = &[
    "is", "are", "was", "were", "do", "does", "did", "can", "could", "will", "would", "should",
    "has", "have", "had", "may", "might", "must", "shall",
];
/// Words that end a clause before them: what follows is a reason, not the answer.
const CLAUSE_WORDS: &[&str] = &["because", "since", "but", "though", "although", "while"];

/// A negation that qualifies confidence, not the answer: `not sure`, `not 100% certain`.
fn hedged(tokens: &[Token], i: usize) -> bool {
    tokens[i + 1..].iter().take(3).any(|t| {
        matches!(
            t.text.as_str(),
            "sure" | "certain" | "confident" | "positive"
        )
    })
}

/// One spelling per unit: `percent` is `%`, `degrees Celsius` is `°c`.
fn unit(word: &str) -> Option<&'static str> {
    Some(match word {
        "%" | "percent" | "pct" | "percentage" => "%",
        "°c" | "celsius" | "centigrade" => "°c",
        "°f" | "fahrenheit" => "°f",
        "km" | "kilometer" | "kilometre" => "km",
        "m" | "meter" | "metre" => "m",
        "cm" | "centimeter" | "centimetre" => "cm",
        "kg" | "kilogram" | "kilo" => "kg",
        "g" | "gram" => "g",
        "mi" | "mile" => "mi",
        "$" | "dollar" | "usd" => "$",
        "€" | "euro" | "eur" => "€",
        "£" | "pound" | "gbp" => "£",
        "h" | "hr" | "hour" => "h",
        "min" | "minute" => "min",
        "sec" | "second" => "s",
        "°" | "degree" => "°",
        _ => return None,
    })
}

/// A light stem: plural `-s` off words of four letters or more (`legs`, `degrees`), so a
/// restatement in the singular still matches. Applied to question and answer alike.
fn stem(word: &str) -> String {
    if word.len() > 3
        && word.ends_with('s')
        && !word.ends_with("ss")
        && !word.ends_with("us")
        && !word.ends_with("is")
        && word.chars().all(char::is_alphabetic)
    {
        word[..word.len() - 1].to_owned()
    } else {
        word.to_owned()
    }
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

fn tokenize(text: &str) -> Vec<Token> {
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

fn plain(text: String, capital: bool, clause: u32) -> Token {
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
    fn restating_the_question_is_taken_out() {
        assert_eq!(key("The capital of France is Paris.", CAPITAL), "paris");
        assert_eq!(key("France's capital is Paris", CAPITAL), "paris");
        assert_eq!(key("I believe it's probably Paris.", CAPITAL), "paris");
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
    fn dates_speeds_and_powers_of_ten() {
        let q = "In what year did the Battle of Hastings take place?";
        assert_eq!(
            canon("It was fought on 14 October 1066.", q).quantities[0].value,
            1066.0
        );
        let speed = canon("Approximately 1,235 km/h (343 m/s).", "How fast is sound?");
        assert_eq!(speed.quantities[0].dimension, Some(Dimension::Speed));
        assert!((speed.quantities[0].value - 343.06).abs() < 0.01);
        let far = "How far is the Sun?";
        assert_eq!(
            canon("Approximately 1.5 × 10⁸ km.", far).quantities[0].value,
            1.5e11
        );
        assert_eq!(canon("1.5 x 10^8 km", far).quantities[0].value, 1.5e11);
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
    fn sub_and_superscripts() {
        let q = "What is the chemical formula of water?";
        assert_eq!(key("H₂O", q), key("H2O", q));
        assert_eq!(
            key("E = mc²", "What is Einstein's equation?"),
            key("E=mc2", "What is Einstein's equation?")
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

    #[test]
    fn names_acronyms_and_initials() {
        let q = "Which country has the largest economy?";
        let c = canon("The United States of America", q);
        assert_eq!(c.initials, ["usa"]);
        assert_eq!(canon("USA", q).acronyms, ["usa"]);
        assert_eq!(canon("Paris", CAPITAL).names, ["paris"]);
    }
}
