//! Argument parsers shared by several commands, so that a value is refused by clap (exit 2, before
//! anything is sent) with a message that says what would be accepted.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

/// What `--since`/`--until` accept, for help texts and errors.
pub const TIME_FORMATS: &str = "a duration ago (30s, 30m, 1h, 2d, 1w, or combined: 1h30m) or an \
     RFC 3339 date (2025-05-01T12:00:00Z, 2025-05-01)";

/// A point in time: a duration before now (`1h`, `30m`, `1h30m`) or an RFC 3339 date, with or
/// without its time of day (midnight UTC when without).
pub fn time(text: &str) -> Result<DateTime<Utc>, String> {
    time_at(text, Utc::now())
}

fn time_at(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).map_or(now, |t| t.and_utc()));
    }
    match ago(text) {
        Some(delta) => now
            .checked_sub_signed(delta)
            .ok_or_else(|| format!("{text} ago is before any date this can represent")),
        None => Err(format!("expected {TIME_FORMATS}")),
    }
}

/// `1h30m` as a duration: numbers each followed by s, m, h, d or w.
fn ago(text: &str) -> Option<TimeDelta> {
    let mut total = TimeDelta::zero();
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: i64 = digits.parse().ok()?;
        digits.clear();
        let part = match c {
            's' => TimeDelta::try_seconds(n),
            'm' => TimeDelta::try_minutes(n),
            'h' => TimeDelta::try_hours(n),
            'd' => TimeDelta::try_days(n),
            'w' => TimeDelta::try_weeks(n),
            _ => None,
        }?;
        total = total.checked_add(&part)?;
    }
    // A trailing number without its unit is ambiguous (minutes? seconds?): refused.
    (digits.is_empty() && !text.is_empty()).then_some(total)
}

/// A rate in items per second: a number above 0 (zero would never send anything), checked before
/// a replay is requested rather than left to the database's check constraint.
pub fn rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err("expected a number of items per second above 0, like 50 or 0.5".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_dates_are_read_and_anything_else_says_what_is_accepted() {
        let now = DateTime::parse_from_rfc3339("2025-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |s| time_at(s, now).map(|t| t.to_rfc3339());
        assert_eq!(at("1h").unwrap(), "2025-05-01T11:00:00+00:00");
        assert_eq!(at("1h30m").unwrap(), "2025-05-01T10:30:00+00:00");
        assert_eq!(at("2d").unwrap(), "2025-04-29T12:00:00+00:00");
        assert_eq!(at("2025-04-30").unwrap(), "2025-04-30T00:00:00+00:00");
        assert_eq!(
            at("2025-04-30T10:00:00+02:00").unwrap(),
            "2025-04-30T08:00:00+00:00"
        );
        for bad in ["", "1", "h", "1y", "yesterday", "1h 30m"] {
            let e = at(bad).unwrap_err();
            assert!(e.contains("1h") && e.contains("RFC 3339"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_rate_is_a_positive_number() {
        assert_eq!(rate("0.5"), Ok(0.5));
        for bad in ["0", "-1", "NaN", "inf", "fast"] {
            assert!(rate(bad).is_err(), "{bad}");
        }
    }
}
