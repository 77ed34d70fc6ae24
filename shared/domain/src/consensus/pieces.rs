//! A text's raw pieces before they become tokens: words with their capitalization, digit numbers,
//! symbols and clause breaks, after NFKC and with abbreviations and powers of ten read as written.

use unicode_normalization::UnicodeNormalization;

/// The raw pieces of a text: words (with capitalization), digit numbers, symbols, and clause
/// breaks.
pub(super) enum Piece {
    Word(String, bool),
    Digits(String),
    Symbol(&'static str),
    Break,
}

pub(super) fn pieces(text: &str) -> Vec<Piece> {
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
        i = if c.is_ascii_digit() || minus {
            number(&chars, i, &mut out)
        } else if c.is_alphabetic() && is_initialism(&chars, i) {
            initialism(&chars, i, &mut out)
        } else if c.is_alphanumeric() {
            word(&chars, i, &mut out)
        } else {
            symbol(&chars, i, &mut out)
        };
    }
    out
}

/// The number at `i`, with a suffix written onto it (`100km`; not `3rd`'s). Returns where the
/// next piece starts.
fn number(chars: &[char], mut i: usize, out: &mut Vec<Piece>) -> usize {
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
    i
}

/// `U.S.`, `U.K.` at `i`: one word, not clauses of one letter.
fn initialism(chars: &[char], mut i: usize, out: &mut Vec<Piece>) -> usize {
    let start = i;
    let mut word = String::new();
    while i + 1 < chars.len() && chars[i].is_alphabetic() && chars[i + 1] == '.' {
        word.push(chars[i]);
        i += 2;
    }
    let capital = chars[start].is_uppercase();
    out.push(Piece::Word(word.to_lowercase(), capital));
    i
}

/// The word at `i`, an apostrophe inside it included (`don't`).
fn word(chars: &[char], mut i: usize, out: &mut Vec<Piece>) -> usize {
    let start = i;
    while i < chars.len() {
        let d = chars[i];
        let inner = d == '\'' && i > start && chars.get(i + 1).is_some_and(|n| n.is_alphabetic());
        if d.is_alphanumeric() || inner {
            i += 1;
        } else {
            break;
        }
    }
    let word: String = chars[start..i].iter().collect();
    let capital = word.chars().next().is_some_and(char::is_uppercase);
    out.push(Piece::Word(word.to_lowercase(), capital));
    i
}

/// The symbol or the clause break at `i`, if it is one; anything else is passed over.
fn symbol(chars: &[char], mut i: usize, out: &mut Vec<Piece>) -> usize {
    let c = chars[i];
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
        // Parentheses hold an apposition (`water (H₂O)`), not a reason: no break. The dot of a
        // title or an initial (`Mt. Everest`, `Franklin D. Roosevelt`) ends no clause.
        '.' if abbreviation(out) => {}
        ',' | ';' | ':' | '.' | '!' | '?' | '—' | '–' => out.push(Piece::Break),
        _ => {}
    }
    i
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
