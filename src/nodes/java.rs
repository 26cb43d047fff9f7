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
//! plausibly uses, `\Q…\E` quoting and the POSIX classes `\p{Alpha}` and the like, and refuses
//! the Java constructs it would read differently, so that no pattern silently means something
//! else. `regex-lite` matches in time proportional to the pattern times the text, with no lazy
//! DFA in front: the size and groups of a pattern are bounded for that reason.

use std::borrow::Cow;
use std::cmp::Ordering;

use regex_lite::{Regex, RegexBuilder};

/// The compiled size allowed for one regular expression from a job or a filter
/// (`regex-lite`'s default is 10 MiB). With [`MAX_GROUPS`] it bounds a match:
/// `regex-lite` keeps capture slots for every state of the pattern, and walks
/// every state for each byte in the worst case.
const MAX_REGEX: usize = 32 << 10;
/// The capture groups allowed in one regular expression.
const MAX_GROUPS: usize = 32;

/// Why a Java pattern was not compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    /// Not a pattern in Java either (a filter value then compares as text).
    Invalid(String),
    /// Java would compile it, sortie does not: an error wherever it is used,
    /// so that no filter silently selects what Java would not.
    Unsupported(String),
    /// Over one of sortie's limits (an error wherever it is used, too).
    Limit(String),
}

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PatternError::Invalid(e) => f.write_str(e),
            PatternError::Unsupported(what) => {
                write!(f, "{what}: Java's, but not supported by sortie")
            }
            PatternError::Limit(what) => write!(f, "{what}, over sortie's limit"),
        }
    }
}

impl std::error::Error for PatternError {}

/// A Java pattern compiled to be found anywhere in a value (`Matcher.find`).
pub(crate) fn regex(pattern: &str) -> Result<Regex, PatternError> {
    build(&rust_syntax(pattern)?)
}

/// A Java pattern compiled to match a whole value (`String.matches`). It is
/// compiled on its own first: `a)|(?:.*` would otherwise close the anchoring
/// group and match anything, where Java refuses the pattern.
pub(crate) fn whole_regex(pattern: &str) -> Result<Regex, PatternError> {
    let rust = rust_syntax(pattern)?;
    build(&rust)?;
    build(&format!(r"\A(?:{rust})\z"))
}

fn build(rust: &str) -> Result<Regex, PatternError> {
    let regex = RegexBuilder::new(rust)
        .size_limit(MAX_REGEX)
        .build()
        .map_err(|e| {
            // Java compiles both: past `regex-lite`'s limits is not "no
            // pattern in Java either", which a filter would compare as text.
            let e = e.to_string();
            if e.contains("size limit") {
                PatternError::Limit(format!(
                    "a pattern larger than {} KiB compiled",
                    MAX_REGEX >> 10
                ))
            } else if e.contains("too much nesting") {
                PatternError::Limit("a pattern nested more than 50 deep".into())
            } else {
                PatternError::Invalid(e)
            }
        })?;
    if regex.captures_len() > MAX_GROUPS + 1 {
        return Err(PatternError::Limit(format!(
            "more than {MAX_GROUPS} groups"
        )));
    }
    Ok(regex)
}

/// `pattern` with Java's `\Q…\E` (everything between, or to the end, taken
/// literally) and POSIX classes (`\p{Lower}`, `\P{Alnum}`, …, US-ASCII in
/// Java) spelled as `regex-lite` spells them. The Java constructs
/// `regex-lite` lacks, or would read differently, are refused: Unicode
/// classes, backreferences, lookaround, atomic groups, possessive
/// quantifiers, nested classes and intersections, `(?U)` (Unicode classes in
/// Java, lazy by default here), and a negated POSIX class inside brackets
/// under `(?i)` (which `regex-lite` case-folds after negating). Anything else
/// neither engine knows fails to compile.
fn rust_syntax(pattern: &str) -> Result<Cow<'_, str>, PatternError> {
    let unsupported = |what: &str| Err(PatternError::Unsupported(what.to_string()));
    if !pattern.contains(['\\', '[', '(', '+']) {
        return Ok(Cow::Borrowed(pattern));
    }
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    // Inside `[…]`: a POSIX class is written without its own brackets there.
    let mut in_class = false;
    // The position right after a class's `[` or `[^`, where `]` is literal.
    let mut class_start = false;
    // The last character outside a class was a quantifier (`a*+` is possessive).
    let mut quantified = false;
    // A `{` that starts a repetition (`a{2}`) is open.
    let mut repetition = false;
    let mut folds = false;
    // `(?x)` was turned on: from there, `#` starts a comment.
    let mut verbose = false;
    let mut negated_class_in_brackets = false;
    while let Some(c) = chars.next() {
        let at_class_start = std::mem::take(&mut class_start);
        let after_quantifier = std::mem::take(&mut quantified);
        match c {
            '\\' => match chars.next() {
                Some('Q') => {
                    while let Some(q) = chars.next() {
                        if q == '\\' && chars.peek() == Some(&'E') {
                            chars.next();
                            break;
                        }
                        // Blanks too, which `(?x)` would otherwise drop.
                        if q.is_whitespace() {
                            out.push_str(&format!("\\x{{{:x}}}", u32::from(q)));
                        } else {
                            out.push_str(&regex_lite::escape(q.encode_utf8(&mut [0; 4])));
                        }
                    }
                }
                Some(p @ ('p' | 'P')) => {
                    let Some(name) = posix_class_name(&mut chars) else {
                        return unsupported("a Unicode class (\\p{…})");
                    };
                    match (p == 'P', in_class) {
                        (false, false) => out.push_str(&format!("[[:{name}:]]")),
                        (true, false) => out.push_str(&format!("[^[:{name}:]]")),
                        (false, true) => out.push_str(&format!("[:{name}:]")),
                        (true, true) => {
                            negated_class_in_brackets = true;
                            out.push_str(&format!("[:^{name}:]"));
                        }
                    }
                }
                Some('1'..='9' | 'k') => return unsupported("a backreference"),
                Some(e) => {
                    out.push('\\');
                    out.push(e);
                }
                None => out.push('\\'),
            },
            '[' if in_class => return unsupported("a class inside a class"),
            '&' if in_class && chars.peek() == Some(&'&') => {
                return unsupported("a class intersection (&&)")
            }
            '[' => {
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
            _ if in_class => out.push(c),
            // A comment under `(?x)`: nothing in it is syntax.
            '#' if verbose => {
                out.push(c);
                let comment: String = chars.by_ref().take_while(|c| *c != '\n').collect();
                out.push_str(&comment);
                // Ended, so that what [`whole_regex`] adds after it is not comment.
                out.push('\n');
            }
            '+' if after_quantifier => return unsupported("a possessive quantifier"),
            '(' if chars.peek() == Some(&'?') => {
                out.push_str("(?");
                chars.next();
                let rest: String = chars.clone().take(2).collect();
                if rest.starts_with(['=', '!']) || rest == "<=" || rest == "<!" {
                    return unsupported("lookaround");
                }
                if rest.starts_with('>') {
                    return unsupported("an atomic group");
                }
                if !rest.starts_with(['<', 'P']) {
                    // Flags, as in `(?i)`, `(?-i)` or `(?is:…)`.
                    let flags: String = chars
                        .clone()
                        .take_while(|f| f.is_ascii_alphabetic() || *f == '-')
                        .collect();
                    let on = flags.split('-').next().unwrap_or("");
                    if flags.contains('U') {
                        return unsupported("the flag U");
                    }
                    folds |= on.contains('i');
                    verbose |= on.contains('x');
                }
            }
            '{' => {
                repetition = chars.peek().is_some_and(char::is_ascii_digit);
                out.push(c);
            }
            '}' => {
                quantified = std::mem::take(&mut repetition);
                out.push(c);
            }
            '*' | '+' | '?' => {
                quantified = true;
                out.push(c);
            }
            c => out.push(c),
        }
    }
    if folds && negated_class_in_brackets {
        return unsupported("a negated POSIX class inside brackets under (?i)");
    }
    Ok(Cow::Owned(out))
}

/// Text every match of the Java `pattern` contains, the longest found, when
/// the pattern is one sequence at its top level (no `|` outside groups): a
/// line without it cannot match, and finding text is hundreds of times faster
/// than `regex-lite`'s walk. Conservative: no flags that fold case or allow
/// blanks, and only characters outside groups and classes that no `?`, `*` or
/// `{…}` makes optional.
pub(crate) fn required_text(pattern: &str) -> Option<String> {
    let rust = rust_syntax(pattern).ok()?;
    let mut chars = rust.chars().peekable();
    let (mut best, mut run) = (String::new(), String::new());
    let mut depth = 0usize;
    let end_run = |run: &mut String, best: &mut String| {
        if run.chars().count() > best.chars().count() {
            *best = std::mem::take(run);
        }
        run.clear();
    };
    while let Some(c) = chars.next() {
        match c {
            '(' => {
                if chars.peek() == Some(&'?') {
                    let flags: String = chars
                        .clone()
                        .skip(1)
                        .take_while(|f| f.is_ascii_alphabetic() || *f == '-')
                        .collect();
                    if flags.contains(['i', 'x']) {
                        return None;
                    }
                }
                end_run(&mut run, &mut best);
                depth += 1;
            }
            ')' => depth = depth.checked_sub(1)?,
            '|' if depth == 0 => return None,
            '[' => {
                end_run(&mut run, &mut best);
                // To the class's end: `]` first (after `[` or `[^`) is literal.
                if chars.peek() == Some(&'^') {
                    chars.next();
                }
                let mut first = true;
                while let Some(k) = chars.next() {
                    match k {
                        '\\' => {
                            chars.next();
                        }
                        '[' if chars.peek() == Some(&':') => {
                            chars.by_ref().find(|k| *k == ']');
                        }
                        ']' if !first => break,
                        _ => {}
                    }
                    first = false;
                }
            }
            '?' | '*' | '{' => {
                // What came before is optional (or repeated a counted number of times).
                run.pop();
                end_run(&mut run, &mut best);
                if c == '{' {
                    chars.by_ref().find(|k| *k == '}');
                }
            }
            '+' => end_run(&mut run, &mut best),
            _ if depth > 0 => {
                if c == '\\' {
                    chars.next();
                }
            }
            '\\' => match chars.next() {
                Some(e) if e.is_ascii_punctuation() => run.push(e),
                Some('x') => {
                    end_run(&mut run, &mut best);
                    if chars.peek() == Some(&'{') {
                        chars.by_ref().find(|k| *k == '}');
                    } else {
                        chars.next();
                        chars.next();
                    }
                }
                _ => end_run(&mut run, &mut best),
            },
            '.' | '^' | '$' => end_run(&mut run, &mut best),
            c => run.push(c),
        }
    }
    end_run(&mut run, &mut best);
    (!best.is_empty()).then_some(best)
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
        // Under (?x): a comment is not syntax, and blanks inside \Q…\E stay.
        assert!(whole("(?x)a # [\n\\p{Digit}", "a5"));
        assert!(!whole("(?x)a # [\n\\p{Digit}", "a:"));
        assert!(whole(r"(?x)\Qa b\E", "a b"));
        assert!(!whole(r"(?x)\Qa b\E", "ab"));
        assert!(whole(r"(?x) a b ", "ab"));
        assert!(whole("(?x)a # to the end", "a"));
        assert!(!whole("(?x)a # to the end", "ab"));
        // Found anywhere, or whole; a pattern invalid on its own stays invalid.
        assert!(regex(r"b\p{Digit}").unwrap().is_match("ab1c"));
        assert!(whole_regex("a)|(?:.*").is_err());
        // \P{…} outside brackets is negated after folding, as in Java.
        assert!(!whole(r"(?i)\P{Lower}", "A"));
        assert!(whole(r"(?i)\P{Lower}", "1"));
        // `}` that closes no repetition is a literal, and `+` after it a quantifier.
        assert!(whole(r"a}+", "a}}"));
        assert!(whole(r"a{2}b+", "aabb"));
        // Not a pattern in Java either: a filter compares it as text.
        assert!(matches!(whole_regex("a(b"), Err(PatternError::Invalid(_))));
    }

    #[test]
    fn java_constructs_read_differently_here_are_refused() {
        for pattern in [
            r"\p{L}+",
            r"\pL",
            r"(a)\1",
            r"(?<n>a)\k<n>",
            r"a(?=b)",
            r"a(?!b)",
            r"(?<=a)b",
            r"(?<!a)b",
            r"(?>a)",
            r"a*+a",
            r"a++",
            r"a?+",
            r"a{2}+",
            r"[a-z[A-Z]]",
            r"[[:alpha:]]",
            r"[a-z&&[^d]]",
            r"(?U)\w",
            r"(?iU:a)",
            r"(?i)[\P{Lower}x]",
        ] {
            let error = whole_regex(pattern).expect_err(pattern);
            assert!(
                matches!(error, PatternError::Unsupported(_)),
                "{pattern}: {error}"
            );
            assert!(matches!(regex(pattern), Err(PatternError::Unsupported(_))));
        }
        // Named groups, non-capturing groups and flags stay.
        assert!(whole_regex(r"(?<n>a)(?:b)(?i:c)(?s).").is_ok());
        assert!(whole_regex(r"[\P{Lower}x]").is_ok());
    }

    #[test]
    fn required_text_is_in_every_match() {
        assert_eq!(required_text(r"ERROR: (.*)").as_deref(), Some("ERROR: "));
        assert_eq!(
            required_text(r"^RUNDECK:DATA:\s*([^\s]+?)\s*=\s*(.+)$").as_deref(),
            Some("RUNDECK:DATA:")
        );
        assert_eq!(required_text(r"(\w+)=(\S+)").as_deref(), Some("="));
        assert_eq!(required_text(r"ab?c").as_deref(), Some("a"));
        assert_eq!(required_text(r"a\.b+c").as_deref(), Some("a.b"));
        assert_eq!(required_text(r"\Qk=v\E\d").as_deref(), Some("k=v"));
        for none in [
            r"a|b", r"(?i)abc", r"(?x)a b", r".*", r"[ab]+", r"(abc)", r"a?",
        ] {
            assert_eq!(required_text(none), None, "{none}");
        }
        // Random patterns and lines: whenever the pattern matches, the text is there.
        let atoms = [
            "a", "b", "=", r"\.", ".", "[ab]", "[^a]", "[]a]", "(a|b)", "(?:ab)", r"\d", r"\x{61}",
            "ab", "^", "$", "(b)", r"\Qa.\E",
        ];
        let quantifiers = ["", "", "", "?", "*", "+", "{0,2}", "{2}", "+?", "??"];
        let mut rng = crate::testing::Rng(0x5eed_1234_abcd);
        let mut matched = 0;
        for _ in 0..3000 {
            let mut pattern = String::new();
            for _ in 0..1 + rng.below(6) {
                pattern.push_str(atoms[rng.below(atoms.len())]);
                pattern.push_str(quantifiers[rng.below(quantifiers.len())]);
            }
            let (Some(text), Ok(re)) = (required_text(&pattern), regex(&pattern)) else {
                continue;
            };
            for _ in 0..40 {
                let n = rng.below(12);
                let line = String::from_utf8(rng.bytes(n, b"ab=.1x")).unwrap();
                if re.is_match(&line) {
                    assert!(
                        line.contains(&text),
                        "{pattern} matched {line:?} without {text:?}"
                    );
                    matched += 1;
                }
            }
        }
        assert!(matched > 1000, "only {matched} matching lines were tried");
    }

    #[test]
    fn a_pattern_s_cost_is_bounded() {
        // regex-lite keeps capture slots for every state, and may walk every
        // state for each byte: both the states and the groups are limited.
        let many_states = "x?".repeat(2000);
        let groups = "()".repeat(MAX_GROUPS + 1);
        for pattern in [many_states.as_str(), groups.as_str()] {
            let error = regex(pattern).expect_err("over a limit");
            assert!(matches!(error, PatternError::Limit(_)), "{error}");
        }
        let deep = format!("{}a{}", "(?:".repeat(60), ")".repeat(60));
        let error = whole_regex(&deep).expect_err("nested too deep");
        assert!(matches!(error, PatternError::Limit(_)), "{error}");
        assert!(regex(&"()".repeat(MAX_GROUPS)).is_ok());
        assert!(regex(&"x?".repeat(200)).is_ok());
        let error = regex(&many_states).unwrap_err().to_string();
        assert!(error.contains("larger than 32 KiB"), "{error}");
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
