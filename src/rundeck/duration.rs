//! Durations as Rundeck reads `timeout` and retry `delay`.
//!
//! Rundeck's `Sizes.parseTimeDuration` scans the string for `(\d+)(.)?`: each
//! number followed by a unit letter `s m h d w y` adds that many units, a
//! number at the very end (or before a line break) adds seconds, and a number
//! followed by any other character adds nothing. So `'6h 30m'` is 23400 s,
//! `'120'` is 120 s, but `'10 s'` is 0 and `'1.5h'` is 5 h. Units are
//! case-sensitive. A value holding `${…}` is resolved only at run time.

use crate::rundeck::model::Timeout;

/// Seconds per unit letter.
fn unit_seconds(c: char) -> Option<u64> {
    match c {
        's' => Some(1),
        'm' => Some(60),
        'h' => Some(3600),
        'd' => Some(86_400),
        'w' => Some(7 * 86_400),
        'y' => Some(365 * 86_400),
        _ => None,
    }
}

/// Java regex `.`: any char except a line terminator.
fn is_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// `Sizes.parseTimeDuration(s)` in seconds; `None` when the sum overflows
/// (Rundeck raises an error then).
pub fn parse_duration_seconds(s: &str) -> Option<u64> {
    let chars: Vec<char> = s.chars().collect();
    let mut total: u64 = 0;
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && chars[i].is_ascii_digit() {
            i += 1;
        }
        let digits: String = chars[start..i].iter().collect();
        let val: u64 = digits.parse().ok()?;
        match chars.get(i).copied().filter(|c| !is_line_terminator(*c)) {
            None => total = total.checked_add(val)?,
            Some(c) => {
                if let Some(mult) = unit_seconds(c) {
                    total = total.checked_add(val.checked_mul(mult)?)?;
                }
                i += 1;
            }
        }
    }
    Some(total)
}

impl Timeout {
    /// A duration as written; seconds are computed unless it refers to `${…}`.
    pub fn from_raw(raw: impl Into<String>) -> Self {
        let raw = raw.into();
        let seconds = if raw.contains("${") {
            None
        } else {
            parse_duration_seconds(&raw)
        };
        Timeout { raw, seconds }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rundeck_duration_examples() {
        assert_eq!(parse_duration_seconds("48h"), Some(48 * 3600));
        assert_eq!(parse_duration_seconds("6h 30m"), Some(6 * 3600 + 1800));
        assert_eq!(parse_duration_seconds("10800"), Some(10800));
        assert_eq!(parse_duration_seconds("1d 1h 1m 1s"), Some(86400 + 3661));
        assert_eq!(parse_duration_seconds("1h1m1s"), Some(3661));
        assert_eq!(parse_duration_seconds("10s"), Some(10));
        assert_eq!(parse_duration_seconds("10 s"), Some(0));
        assert_eq!(parse_duration_seconds("1.5h"), Some(5 * 3600));
        assert_eq!(parse_duration_seconds("2H"), Some(0));
        assert_eq!(parse_duration_seconds("1w"), Some(7 * 86400));
        assert_eq!(parse_duration_seconds("99999999999999999999"), None);
    }

    #[test]
    fn dynamic_timeouts_are_not_computed() {
        let t = Timeout::from_raw("${option.timeout}");
        assert!(t.raw.contains("${"));
        assert_eq!(t.seconds, None);
    }
}
