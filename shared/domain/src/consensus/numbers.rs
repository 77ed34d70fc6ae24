//! Numbers as answers write them: digits with thousands separators and decimals (`1,000`, `3.14`),
//! English number words (`eight`, `forty-two`, `one thousand two hundred`), and a digit with a
//! scale word (`1.5 million`). Each becomes one value, so `eight` and `8` compare equal.

/// The value of a number written in digits: `1,000` and `1000.0` are 1000. Commas count as
/// thousands separators only in groups of three.
pub fn parse_digits(token: &str) -> Option<f64> {
    let (int, frac) = match token.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (token, None),
    };
    let (sign, int) = match int.strip_prefix('-') {
        Some(rest) => (-1.0, rest),
        None => (1.0, int),
    };
    let mut groups = int.split(',');
    let first = groups.next()?;
    if first.is_empty() || first.len() > 3 && int.contains(',') {
        return None;
    }
    let mut digits = first.to_owned();
    for g in groups {
        if g.len() != 3 {
            return None;
        }
        digits.push_str(g);
    }
    if let Some(f) = frac {
        if f.is_empty() {
            return None;
        }
        digits.push('.');
        digits.push_str(f);
    }
    if !digits.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    digits.parse::<f64>().ok().map(|v| sign * v)
}

fn unit_word(word: &str) -> Option<u64> {
    const UNITS: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 8] = [
        "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    if let Some(i) = UNITS.iter().position(|u| *u == word) {
        return Some(i as u64);
    }
    TENS.iter()
        .position(|t| *t == word)
        .map(|i| (i as u64 + 2) * 10)
}

/// The multiplier a scale word stands for.
pub fn scale_word(word: &str) -> Option<f64> {
    match word {
        "hundred" => Some(1e2),
        "thousand" => Some(1e3),
        "million" => Some(1e6),
        "billion" => Some(1e9),
        "trillion" => Some(1e12),
        _ => None,
    }
}

/// Reads the longest run of number words at the start of `words` (with `and` inside, as in
/// `one hundred and five`), returning its value and how many words it took. `None` when the
/// first word is not a number word.
pub fn parse_words(words: &[&str]) -> Option<(f64, usize)> {
    let mut total = 0u64;
    let mut current = 0u64;
    let mut taken = 0;
    let mut any = false;
    for (i, w) in words.iter().enumerate() {
        if let Some(u) = unit_word(w) {
            current += u;
        } else if *w == "hundred" {
            current = current.max(1) * 100;
        } else if let Some(scale) = scale_word(w) {
            total += current.max(1) * scale as u64;
            current = 0;
        } else if *w == "and" && any && words.get(i + 1).is_some_and(|n| unit_word(n).is_some()) {
            continue;
        } else {
            break;
        }
        any = true;
        taken = i + 1;
    }
    any.then_some(((total + current) as f64, taken))
}

/// Whether two values are the same within `tolerance`, relative to the larger (0 is exact, up to
/// floating-point noise).
pub fn same_value(a: f64, b: f64, tolerance: f64) -> bool {
    let scale = a.abs().max(b.abs()).max(f64::MIN_POSITIVE);
    (a - b).abs() <= scale * tolerance.max(1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_with_separators_and_decimals() {
        assert_eq!(parse_digits("1,000"), Some(1000.0));
        assert_eq!(parse_digits("1000"), Some(1000.0));
        assert_eq!(parse_digits("1,234,567.5"), Some(1_234_567.5));
        assert_eq!(parse_digits("1.25"), Some(1.25));
        assert_eq!(parse_digits("-40"), Some(-40.0));
        assert_eq!(parse_digits("1,00"), None, "not a thousands group");
        assert_eq!(parse_digits("1000,000"), None);
        assert_eq!(parse_digits("abc"), None);
    }

    #[test]
    fn number_words() {
        let read = |s: &str| parse_words(&s.split(' ').collect::<Vec<_>>());
        assert_eq!(read("eight"), Some((8.0, 1)));
        assert_eq!(read("forty two legs"), Some((42.0, 2)));
        assert_eq!(read("one thousand"), Some((1000.0, 2)));
        assert_eq!(read("one hundred and five"), Some((105.0, 4)));
        assert_eq!(
            read("two million three hundred thousand"),
            Some((2_300_000.0, 5))
        );
        assert_eq!(read("and one"), None);
        assert_eq!(read("paris"), None);
    }

    #[test]
    fn tolerance_is_relative() {
        assert!(same_value(1000.0, 1000.0, 0.0));
        assert!(!same_value(8.0, 9.0, 0.0));
        assert!(same_value(1.25, 1.2533, 0.01));
        assert!(!same_value(1.25, 3.5, 0.01));
        assert!(same_value(0.0, 0.0, 0.0));
    }
}
