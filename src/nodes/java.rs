//! The Java library behaviours that Rundeck's node semantics silently depend on.
//!
//! Why it exists: Rundeck's parsers and matchers call `String.split`, `String.compareTo`,
//! `Double.toString` and `Object.toString` on collections, and each differs from the obvious Rust
//! equivalent in a way that changes results (trailing empty pieces, UTF-16 order, `1.0` versus
//! `1`, `[a, b]`). Keeping them in one small module lets the other files say "Java split" and mean
//! exactly that.

use std::cmp::Ordering;

use regex::Regex;

/// `String.trim()`: removes every character `<= U+0020` at both ends (control characters
/// included, Unicode spaces such as U+00A0 not), unlike `str::trim`.
pub(crate) fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= '\u{20}')
}

/// `String.split(sep)` with a one-character literal separator and limit 0: when the separator
/// does not occur the result is the whole input (even an empty one), otherwise trailing empty
/// pieces are removed (so `","` gives no pieces at all) while leading and inner ones stay.
pub(crate) fn split(s: &str, sep: char) -> Vec<&str> {
    if !s.contains(sep) {
        return vec![s];
    }
    trim_trailing_empty(s.split(sep).collect())
}

/// `String.split(regex)` with limit 0, for a regex whose matches are never empty (such as `, *`):
/// same rules as [`split`].
pub(crate) fn split_regex<'a>(s: &'a str, re: &Regex) -> Vec<&'a str> {
    if !re.is_match(s) {
        return vec![s];
    }
    trim_trailing_empty(re.split(s).collect())
}

fn trim_trailing_empty(mut pieces: Vec<&str>) -> Vec<&str> {
    while pieces.last() == Some(&"") {
        pieces.pop();
    }
    pieces
}

/// `String.compareTo`: lexicographic over UTF-16 code units. It differs from Rust's byte order
/// only when a character outside the Basic Multilingual Plane meets one in U+E000..=U+FFFF (the
/// surrogate code units sort below those).
pub(crate) fn compare_strings(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// `Double.toString`: the shortest digits that identify the value (as Java 19 and later print
/// them), in plain notation for magnitudes in `[1e-3, 1e7)` and in `d.dddE±n` notation
/// otherwise, always with at least one fractional digit (`1.0`, `1.0E10`).
pub(crate) fn double_to_string(d: f64) -> String {
    if d.is_nan() {
        return "NaN".to_string();
    }
    if d.is_infinite() {
        return if d > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    let sign = if d.is_sign_negative() { "-" } else { "" };
    if d == 0.0 {
        return format!("{sign}0.0");
    }
    let abs = d.abs();
    // Rust's `{:e}` prints the shortest round-trip digits as `d.ddde±n`.
    let sci = format!("{abs:e}");
    let (mantissa, exponent) = sci
        .split_once('e')
        .expect("LowerExp always has an exponent");
    let exponent: i32 = exponent.parse().expect("LowerExp exponent is an integer");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (1e-3..1e7).contains(&abs) {
        let point = exponent + 1;
        if point <= 0 {
            let zeros = "0".repeat(point.unsigned_abs() as usize);
            format!("{sign}0.{zeros}{digits}")
        } else {
            let point = point as usize;
            if point >= digits.len() {
                let zeros = "0".repeat(point - digits.len());
                format!("{sign}{digits}{zeros}.0")
            } else {
                format!("{sign}{}.{}", &digits[..point], &digits[point..])
            }
        }
    } else {
        let fraction = if digits.len() > 1 { &digits[1..] } else { "0" };
        format!("{sign}{}.{fraction}E{exponent}", &digits[..1])
    }
}

/// `AbstractCollection.toString`: `[a, b]`.
pub(crate) fn list_to_string(items: impl IntoIterator<Item = String>) -> String {
    format!("[{}]", items.into_iter().collect::<Vec<_>>().join(", "))
}

/// `AbstractMap.toString`: `{k=v, k2=v2}`.
pub(crate) fn map_to_string(entries: impl IntoIterator<Item = (String, String)>) -> String {
    let parts: Vec<String> = entries
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// `Object.toString` of a value Jackson produced when it read JSON into plain Java objects
/// (`LinkedHashMap`, `ArrayList`, `String`, `Integer`/`Long`/`BigInteger`, `Double`, `Boolean`,
/// `null`). Integers too large for `u64`/`i64` were read as `f64` by serde_json, so they print as
/// a double where Jackson would print a `BigInteger`.
pub(crate) fn json_to_string(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                double_to_string(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => s.clone(),
        Value::Array(items) => list_to_string(items.iter().map(json_to_string)),
        Value::Object(map) => {
            map_to_string(map.iter().map(|(k, v)| (k.clone(), json_to_string(v))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_is_java_trim() {
        assert_eq!(trim("\u{1} a \t"), "a");
        assert_eq!(trim("\u{a0}a"), "\u{a0}a");
    }

    #[test]
    fn split_drops_trailing_empties_only() {
        assert_eq!(split("a,b", ','), ["a", "b"]);
        assert_eq!(split("a,", ','), ["a"]);
        assert_eq!(split(",a", ','), ["", "a"]);
        assert_eq!(split("a,,b", ','), ["a", "", "b"]);
        assert_eq!(split(",", ','), Vec::<&str>::new());
        assert_eq!(split("", ','), [""]);
        assert_eq!(split("abc", ','), ["abc"]);
    }

    #[test]
    fn split_regex_comma_spaces() {
        let re = Regex::new(", *").unwrap();
        assert_eq!(split_regex("a, b,c", &re), ["a", "b", "c"]);
        assert_eq!(split_regex("a ,b", &re), ["a ", "b"]);
        assert_eq!(split_regex("a,  ", &re), ["a"]);
        assert_eq!(split_regex(" a", &re), [" a"]);
    }

    #[test]
    fn utf16_order_differs_from_byte_order_outside_the_bmp() {
        let astral = "\u{1F600}"; // surrogates D83D DE00
        let private_use = "\u{E000}";
        assert_eq!(astral.cmp(private_use), Ordering::Greater);
        assert_eq!(compare_strings(astral, private_use), Ordering::Less);
        assert_eq!(compare_strings("abc", "abd"), Ordering::Less);
        assert_eq!(compare_strings("ab", "abc"), Ordering::Less);
    }

    #[test]
    fn double_to_string_matches_java() {
        let cases = [
            (1.0, "1.0"),
            (10.1, "10.1"),
            (-2.5, "-2.5"),
            (0.001, "0.001"),
            (0.0001, "1.0E-4"),
            (1234567.0, "1234567.0"),
            (1e7, "1.0E7"),
            (12345678.9, "1.23456789E7"),
            (100.0, "100.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e21, "1.0E21"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (f64::NAN, "NaN"),
            (0.1 + 0.2, "0.30000000000000004"),
        ];
        for (value, expected) in cases {
            assert_eq!(double_to_string(value), expected, "{value:?}");
        }
    }

    #[test]
    fn json_to_string_matches_java_collections() {
        let v: serde_json::Value = serde_json::json!({"a": [1, 2.0, null, true], "b": "x"});
        assert_eq!(json_to_string(&v), "{a=[1, 2.0, null, true], b=x}");
    }
}
