//! The Java library behaviours that Rundeck's node semantics silently depend on.
//!
//! Why it exists: Rundeck's parsers and matchers call `String.split`, `String.compareTo`,
//! `Double.toString` and `Object.toString` on collections, and each differs from the obvious Rust
//! equivalent in a way that changes results (trailing empty pieces, UTF-16 order, `1.0` versus
//! `1`, `[a, b]`). Keeping them in one small module lets the other files say "Java split" and mean
//! exactly that.
//!
//! The regular expressions of jobs and node filters are Java's too. They are compiled with
//! `regex-lite`, whose ASCII-only `\d`, `\w`, `\s`, `\b` and `(?i)` are what Java's are without
//! `UNICODE_CHARACTER_CLASS` (the full `regex` crate's are Unicode-aware, and it made the static
//! binary 1.3 MB larger). [`regex`] first rewrites the two Java spellings it lacks and that a job
//! plausibly uses: `\Q…\E` quoting and the POSIX classes `\p{Alpha}` and the like.

use std::borrow::Cow;
use std::cmp::Ordering;

use regex_lite::{Regex, RegexBuilder};

/// The compiled size allowed for one regular expression from a job or a filter
/// (`regex-lite`'s default is 10 MiB).
const MAX_REGEX: usize = 256 << 10;

/// A Java pattern compiled to be found anywhere in a value (`Matcher.find`).
pub(crate) fn regex(pattern: &str) -> Result<Regex, regex_lite::Error> {
    RegexBuilder::new(&rust_syntax(pattern))
        .size_limit(MAX_REGEX)
        .build()
}

/// A Java pattern compiled to match a whole value (`String.matches`). It is
/// compiled on its own first: `a)|(?:.*` would otherwise close the anchoring
/// group and match anything, where Java refuses the pattern.
pub(crate) fn whole_regex(pattern: &str) -> Result<Regex, regex_lite::Error> {
    regex(pattern)?;
    RegexBuilder::new(&format!(r"\A(?:{})\z", rust_syntax(pattern)))
        .size_limit(MAX_REGEX)
        .build()
}

/// `pattern` with Java's `\Q…\E` (everything between, or to the end, taken
/// literally) and POSIX classes (`\p{Lower}`, `\P{Alnum}`, …, US-ASCII in
/// Java) spelled as `regex-lite` spells them. Everything else is left as
/// written: what neither engine knows fails to compile.
fn rust_syntax(pattern: &str) -> Cow<'_, str> {
    if !pattern.contains('\\') {
        return Cow::Borrowed(pattern);
    }
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    // Inside `[…]`: a POSIX class is written without its own brackets there.
    let mut in_class = false;
    // The position right after a class's `[` or `[^`, where `]` is literal.
    let mut class_start = false;
    while let Some(c) = chars.next() {
        let at_class_start = std::mem::take(&mut class_start);
        match c {
            '\\' => match chars.next() {
                Some('Q') => {
                    let mut literal = String::new();
                    while let Some(q) = chars.next() {
                        if q == '\\' && chars.peek() == Some(&'E') {
                            chars.next();
                            break;
                        }
                        literal.push(q);
                    }
                    out.push_str(&regex_lite::escape(&literal));
                }
                Some(p @ ('p' | 'P')) => {
                    let name = posix_class_name(&mut chars);
                    match name {
                        Some(name) => {
                            let not = if p == 'P' { "^" } else { "" };
                            if in_class {
                                out.push_str(&format!("[:{not}{name}:]"));
                            } else {
                                out.push_str(&format!("[[:{not}{name}:]]"));
                            }
                        }
                        None => {
                            out.push('\\');
                            out.push(p);
                        }
                    }
                }
                Some(e) => {
                    out.push('\\');
                    out.push(e);
                }
                None => out.push('\\'),
            },
            '[' if !in_class => {
                in_class = true;
                class_start = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
            }
            ']' if in_class && !at_class_start => {
                in_class = false;
                out.push(']');
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// After `\p`: the POSIX class `{Name}` names, as `regex-lite` names it,
/// consumed; `None` (nothing consumed) for any other class.
fn posix_class_name(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<&'static str> {
    const NAMES: [(&str, &str); 13] = [
        ("Lower", "lower"),
        ("Upper", "upper"),
        ("ASCII", "ascii"),
        ("Alpha", "alpha"),
        ("Digit", "digit"),
        ("Alnum", "alnum"),
        ("Punct", "punct"),
        ("Graph", "graph"),
        ("Print", "print"),
        ("Blank", "blank"),
        ("Cntrl", "cntrl"),
        ("XDigit", "xdigit"),
        ("Space", "space"),
    ];
    let rest: String = chars.clone().take(8).collect();
    let (java, rust) = NAMES
        .iter()
        .find(|(java, _)| rest.starts_with(&format!("{{{java}}}")))?;
    for _ in 0..java.len() + 2 {
        chars.next();
    }
    Some(rust)
}

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
    fn java_patterns_keep_java_meaning() {
        let whole = |p: &str, v: &str| whole_regex(p).unwrap().is_match(v);
        // \Q…\E quotes up to \E, or to the end.
        assert!(whole(r"\Qa.b\E+", "a.bbb"));
        assert!(!whole(r"\Qa.b\E", "axb"));
        assert!(whole(r"x\Q(*)", "x(*)"));
        // POSIX classes are US-ASCII, outside and inside brackets, negated with \P.
        assert!(whole(r"\p{Alpha}+", "abcXYZ"));
        assert!(!whole(r"\p{Alpha}+", "abé"));
        assert!(whole(r"[\p{Digit}_-]+", "1_2-3"));
        assert!(whole(r"[^\p{Space}]+", "a,b"));
        assert!(whole(r"\P{Digit}\p{XDigit}", "xF"));
        assert!(!whole(r"\P{Digit}", "7"));
        // A `]` first in a class is literal: the class goes on.
        assert!(whole(r"[]\p{Lower}]+", "a]b"));
        // An escaped backslash is not the start of an escape.
        assert!(whole(r"\\Q", r"\Q"));
        // \w, \d, \s and (?i) are ASCII, as in Java.
        assert!(!whole(r"\w", "é"));
        assert!(!whole(r"\d", "٣"));
        assert!(whole(r"(?i)abc", "ABC"));
        // Found anywhere, or whole; a pattern invalid on its own stays invalid.
        assert!(regex(r"b\p{Digit}").unwrap().is_match("ab1c"));
        assert!(whole_regex("a)|(?:.*").is_err());
        // What neither engine knows fails to compile (a filter then compares).
        assert!(whole_regex(r"\p{L}").is_err());
        assert!(whole_regex(r"(a)\1").is_err());
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
