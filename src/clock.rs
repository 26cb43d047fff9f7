//! Wall-clock timestamps in the protocol's form (RFC 3339, UTC, milliseconds),
//! and durations as a person reads them.

use std::time::{Duration, SystemTime};

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

pub fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// `850 ms`, `3.1 s`, `2 min 4 s`, `1 h 5 min`: exact enough to compare, short
/// enough to read at a glance.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0..=999 => format!("{ms} ms"),
        1_000..=59_999 => format!("{}.{} s", ms / 1000, ms % 1000 / 100),
        60_000..=3_599_999 => format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000),
        _ => format!("{} h {} min", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_a_person_says_them() {
        for (ms, text) in [
            (0, "0 ms"),
            (850, "850 ms"),
            (3_140, "3.1 s"),
            (59_999, "59.9 s"),
            (124_000, "2 min 4 s"),
            (3_900_000, "1 h 5 min"),
        ] {
            assert_eq!(human(Duration::from_millis(ms)), text);
        }
    }
}
