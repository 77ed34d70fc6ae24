//! Numbers with what they measure, brought to one base unit per dimension, so that `5 km` and
//! `5000 m` are one value while a length and a time, or two currencies, never are.

use super::tokens::Token;

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
pub(super) fn dimension(unit: &str) -> Option<(Dimension, f64, f64)> {
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
pub(super) fn quantities(tokens: &[&Token]) -> Vec<Quantity> {
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

#[cfg(test)]
mod tests {
    use super::super::canonical::{Canon, canonicalize};
    use super::super::question::QuestionTerms;
    use super::*;

    fn canon(answer: &str, question: &str) -> Canon {
        canonicalize(answer, &QuestionTerms::new(question))
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
}
