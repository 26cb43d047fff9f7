//! Rundeck's node-filter language: tokenizing, parsing into include/exclude maps, and matching.
//!
//! Why it exists: a job's `filter` (and optional `filterExclude`) string decides which nodes a
//! step runs on, and teams have years of these strings. They must select exactly what Rundeck
//! selects, so this follows `NodeSet.parseFilter`, `NodeSet.SetSelector.matches`,
//! `NodeSet.matchesInput[Set]`, `NodeSet.matchRegexOrEquals` and `NodeSet.shouldExclude`, plus
//! `BaseNodeFilters.asIncludeMap/asExcludeMap` for the exclude filter and
//! `QuotedStringTokenizer` for splitting.
//!
//! How it is shaped: parsing yields the two string maps Rundeck builds (kept for tests and
//! diagnostics), and each map is compiled once into a selector whose patterns are already
//! compiled regexes. Rundeck compiles patterns on every comparison and throws on a broken
//! `/regex/` only when a node's evaluation reaches that clause; here [`Filter::parse`] reports a
//! broken `/regex/` up front, so a typo cannot pass unnoticed because no node happened to reach
//! it. The matching primitives ([`match_regex_or_equals`], [`matches_input`],
//! [`matches_input_set`]) keep Rundeck's lazy order and fail only when the bad pattern is
//! evaluated.
//!
//! # Java regex versus Rust regex
//! Selectors are Java regular expressions matched against the whole value (`String.matches`).
//! They are compiled by [`java::whole_regex`], anchored as `\A(?:…)\z` after checking that the
//! pattern is valid on its own (so `a)(b` stays invalid); `\Q…\E` and the POSIX classes
//! (`\p{Alpha}`) are rewritten first, and `\d`, `\w`, `\s` and `(?i)` are ASCII there, as in
//! Java. A selector that is no pattern in Java either falls back to string equality exactly as a
//! Java `PatternSyntaxException` would (a `/…/` selector is then an error). Java features
//! `regex-lite` lacks or reads differently — backreferences, lookaround, possessive quantifiers,
//! atomic groups, nested and intersected classes, Unicode classes (`\p{L}`), `(?U)` — make the
//! filter an error instead: Java would compile them, and comparing them as text would select
//! nodes Java does not (`!name: \p{L}+1` would exclude nothing). Semantics still differ
//! slightly where both compile: `.` excludes only `\n` here but all line terminators in Java,
//! and `\b` is ASCII here and in Java 19 and later but Unicode-aware in earlier Java.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use regex_lite::Regex;

use crate::nodes::java::{self, PatternError};
use crate::nodes::node::{attr, Node};

/// Bounds on a filter (Rundeck has none; a filter comes from a job, and each
/// clause compiles into regular expressions).
pub const MAX_FILTER: usize = 16 << 10;
pub const MAX_CLAUSES: usize = 256;

/// The key a bare token (one without `key:`) is filed under.
pub const DEFAULT_KEY: &str = "name";

/// A parsed, compiled node filter: the job's `filter` plus its optional exclude filter.
#[derive(Debug, Clone)]
pub struct Filter {
    include: Selector,
    exclude: Selector,
}

/// The include and exclude maps of one filter string, as `NodeSet.parseFilter` returns them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedFilter {
    /// Clauses without `!`.
    pub include: BTreeMap<String, String>,
    /// Clauses whose key started with `!` (the `!` removed).
    pub exclude: BTreeMap<String, String>,
}

impl Filter {
    /// Parse a job's node filter and optional exclude filter (`filterExclude`).
    ///
    /// The exclude filter uses the same grammar with the sides swapped
    /// (`BaseNodeFilters.asExcludeMap/asIncludeMap`): its positive clauses go into the exclude
    /// map and its `!` clauses into the include map, each *overwriting* (not joining) a clause
    /// of the main filter with the same key. An empty exclude filter is ignored, like an absent
    /// one. Option references (`${option.x}`) must already be expanded.
    ///
    /// # Errors
    /// When a `/…/` selector is not a valid regular expression (Rundeck throws
    /// `PatternSyntaxException` when it first evaluates it).
    pub fn parse(filter: &str, exclude_filter: Option<&str>) -> Result<Filter> {
        let length = filter.len() + exclude_filter.map_or(0, str::len);
        if length > MAX_FILTER {
            bail!("node filter: {length} bytes, more than {MAX_FILTER}");
        }
        let ParsedFilter { include, exclude } = combined(filter, exclude_filter);
        let clauses = include.len() + exclude.len();
        if clauses > MAX_CLAUSES {
            bail!("node filter: {clauses} clauses, more than {MAX_CLAUSES}");
        }
        let filter = Filter {
            include: Selector::compile(&include),
            exclude: Selector::compile(&exclude),
        };
        for (side, selector) in [("include", &filter.include), ("exclude", &filter.exclude)] {
            if let Some((key, error)) = selector.first_error() {
                bail!("node filter: {side} clause {key:?}: {error}");
            }
        }
        Ok(filter)
    }

    /// Whether the node is selected (`!NodeSet.shouldExclude`).
    ///
    /// | exclude side | include side | node excluded when |
    /// |---|---|---|
    /// | blank | any | it does not match the include side (so a blank filter selects nothing) |
    /// | not blank | blank | it matches the exclude side |
    /// | not blank | not blank, `exclude_precedence` | it misses the include side or matches the exclude side |
    /// | not blank | not blank, `!exclude_precedence` | it misses the include side *and* matches the exclude side — so a node matching neither side is selected |
    ///
    /// `exclude_precedence` is the job's `excludePrecedence`, `true` by default in Rundeck.
    pub fn matches(&self, node: &Node, exclude_precedence: bool) -> bool {
        let included = self.include.matches(node);
        let excluded = self.exclude.matches(node);
        let should_exclude = if self.exclude.blank {
            !included
        } else if self.include.blank {
            excluded
        } else if !exclude_precedence {
            !included && excluded
        } else {
            !included || excluded
        };
        !should_exclude
    }

    /// The selected nodes, in node-set order (by name, Java `String` order). This does not
    /// apply ranking; see [`crate::rank`].
    pub fn select<'a>(&self, nodes: &'a [Node], exclude_precedence: bool) -> Vec<&'a Node> {
        let mut selected: Vec<&Node> = nodes
            .iter()
            .filter(|node| self.matches(node, exclude_precedence))
            .collect();
        selected.sort_by(|a, b| java::compare_strings(&a.name, &b.name));
        selected
    }
}

/// The include and exclude maps of a filter and its exclude filter, as
/// [`Filter::parse`] combines them.
pub fn combined(filter: &str, exclude_filter: Option<&str>) -> ParsedFilter {
    let mut parsed = parse_filter(filter);
    if let Some(extra) = exclude_filter.filter(|s| !s.is_empty()) {
        let swapped = parse_filter(extra);
        parsed.exclude.extend(swapped.include);
        parsed.include.extend(swapped.exclude);
    }
    parsed
}

/// Split a filter string the way Rundeck's `QuotedStringTokenizer` does.
///
/// - Tokens are separated by runs of characters `<= U+0020` (space, tab, CR, LF, …).
/// - A token that *starts* with `'` or `"` is quoted with that character: blanks inside are
///   kept, a doubled quote is a literal quote, and after the closing quote the same quote
///   character opens a new quoted section within the same token (`'a b'c' d'` is `a bc d`). A
///   quote that appears later in a token that did not start with one is an ordinary character
///   (`name:'a b'` is the two tokens `name:'a` and `b'`). An unclosed quote runs to the end.
/// - `''` is an empty token, and so — a quirk of the delimiter handling — is an input made only
///   of two or more blanks.
pub fn tokenize(input: &str) -> Vec<String> {
    let chars: Vec<char> = input.chars().collect();
    let len = chars.len();
    let is_delim = |c: char| c <= '\u{20}';
    // `consumeDelimiters`: starting on a delimiter, skip delimiters but never past the last char.
    let consume = |mut pos: usize| {
        while is_delim(chars[pos]) && pos + 1 < len {
            pos += 1;
        }
        pos
    };
    let mut tokens = Vec::new();
    let mut pos = 0;
    while pos < len {
        if is_delim(chars[pos]) {
            pos += 1;
            if pos >= len {
                break;
            }
        }
        if is_delim(chars[pos]) {
            pos = consume(pos);
        }
        let quote = Some(chars[pos]).filter(|c| *c == '\'' || *c == '"');
        let mut token = String::new();
        let mut quoting = quote.is_some();
        if quoting {
            pos += 1;
        }
        let mut finished = false;
        while pos < len {
            let c = chars[pos];
            if quoting {
                if Some(c) == quote {
                    if pos + 1 < len && chars[pos + 1] == c {
                        token.push(c);
                        pos += 2;
                    } else {
                        quoting = false;
                        pos += 1;
                    }
                    continue;
                }
                token.push(c);
                pos += 1;
            } else {
                if is_delim(c) {
                    pos = consume(pos);
                    finished = true;
                    break;
                }
                if Some(c) == quote {
                    quoting = true;
                    pos += 1;
                    continue;
                }
                token.push(c);
                pos += 1;
            }
        }
        tokens.push(token);
        if !finished {
            break;
        }
    }
    tokens
}

/// Parse one filter string into include and exclude maps (`NodeSet.parseFilter`).
///
/// Tokens (see [`tokenize`]) are read left to right with a pending key:
/// - with no key pending, a token ending in `:` becomes the key (only that last `:` is removed,
///   so `as:test:` is the key `as:test`);
/// - with no key pending, a token containing `:` is split at its *first* `:` into key and value
///   (`'!test:xyz:money pants'` is key `!test`, value `xyz:money pants`);
/// - with no key pending, any other token is a value for the key `name`;
/// - with a key pending, the next token is its value verbatim, colons and all;
/// - a key starting with `!` files the clause in the exclude map, without the `!`;
/// - a key seen twice in the same map has its values joined with `,`.
///
/// A key left pending at the end is dropped. A space inside a comma list ends the token, so
/// `tags: a, b` is `{tags: "a,", name: "b"}`, as in Rundeck.
pub fn parse_filter(filter: &str) -> ParsedFilter {
    let mut parsed = ParsedFilter::default();
    let mut pending: Option<String> = None;
    for token in tokenize(filter) {
        let (key, value) = match pending.take() {
            Some(key) => (key, token),
            None => {
                if token.ends_with(':') {
                    pending = Some(token[..token.len() - 1].to_string());
                    continue;
                } else if let Some((key, value)) = token.split_once(':') {
                    (key.to_string(), value.to_string())
                } else {
                    (DEFAULT_KEY.to_string(), token)
                }
            }
        };
        let (map, key) = match key.strip_prefix('!') {
            Some(rest) => (&mut parsed.exclude, rest.to_string()),
            None => (&mut parsed.include, key),
        };
        map.entry(key)
            .and_modify(|v| {
                v.push(',');
                v.push_str(&value);
            })
            .or_insert(value);
    }
    parsed
}

#[cfg(test)]
/// `NodeSet.matchRegexOrEquals(selector, item)`.
///
/// A selector wrapped in `/…/` (at least two characters) is a regular expression only: its
/// trimmed inside must match the whole item, and an invalid pattern is an error. Any other
/// selector is trimmed, tried as a whole-item regex, and on a syntax error or no match compared
/// for equality with the item. Matching is case-sensitive.
///
/// # Errors
/// When a `/…/` selector is not a valid regular expression.
pub fn match_regex_or_equals(selector: &str, item: &str) -> Result<bool> {
    Pattern::new(selector).matches(item)
}

#[cfg(test)]
/// `NodeSet.matchesInput(selector, value)`, used for `hostname`, `name`, the `os-*` keys and
/// every attribute: false when the value is absent or blank, or the selector is blank;
/// otherwise true when the whole selector matches ([`match_regex_or_equals`]) or one of its
/// comma-separated parts *equals* the value (parts are neither regexes nor trimmed).
///
/// # Errors
/// As [`match_regex_or_equals`], when the comparison is reached.
pub fn matches_input(selector: &str, value: Option<&str>) -> Result<bool> {
    ValueSelector::new(selector).matches(value)
}

#[cfg(test)]
/// `NodeSet.matchesInputSet(selector, tags)`: false for an empty tag set or a blank selector.
/// A selector containing `+` or `,` is split on `,` into alternatives and each alternative on
/// `+` into terms that must all hold; a term holds when the tag set contains it trimmed or some
/// tag matches it ([`match_regex_or_equals`]). Otherwise the whole selector must be contained
/// (untrimmed) or match some tag. So a regex quantifier `+` in a tag selector is read as AND.
///
/// # Errors
/// As [`match_regex_or_equals`], when the comparison is reached.
pub fn matches_input_set<'a, I>(selector: &str, tags: I) -> Result<bool>
where
    I: IntoIterator<Item = &'a str>,
{
    let tags: Vec<&str> = tags.into_iter().collect();
    TagSelector::new(selector).matches(&tags)
}

/// One compiled `matchRegexOrEquals` selector.
#[derive(Debug, Clone)]
enum Pattern {
    /// `/…/`: regex only; an invalid one is kept as its error until evaluated.
    Slash(Result<Regex, String>),
    /// Regex (if it compiles) or equality with the trimmed selector.
    Plain {
        regex: Option<Regex>,
        trimmed: String,
    },
}

impl Pattern {
    fn new(selector: &str) -> Pattern {
        let slash_wrapped = selector.chars().count() >= 2
            && selector.find('/') == Some(0)
            && selector.rfind('/') == Some(selector.len() - 1);
        if slash_wrapped {
            let inner = java::trim(&selector[1..selector.len() - 1]);
            Pattern::Slash(
                java::whole_regex(inner).map_err(|e| format!("invalid regex /{inner}/: {e}")),
            )
        } else {
            let trimmed = java::trim(selector).to_string();
            match java::whole_regex(&trimmed) {
                // Java would compile it: comparing it as text would select
                // what Java does not.
                Err(e @ (PatternError::Unsupported(_) | PatternError::Limit(_))) => {
                    Pattern::Slash(Err(format!("regex {trimmed}: {e}")))
                }
                regex => Pattern::Plain {
                    regex: regex.ok(),
                    trimmed,
                },
            }
        }
    }

    fn matches(&self, item: &str) -> Result<bool> {
        match self {
            Pattern::Slash(Ok(regex)) => Ok(regex.is_match(item)),
            Pattern::Slash(Err(error)) => bail!("{error}"),
            Pattern::Plain { regex, trimmed } => {
                Ok(regex.as_ref().is_some_and(|r| r.is_match(item)) || trimmed == item)
            }
        }
    }

    fn error(&self) -> Option<&str> {
        match self {
            Pattern::Slash(Err(error)) => Some(error),
            _ => None,
        }
    }
}

/// A compiled `matchesInput` selector.
#[derive(Debug, Clone)]
struct ValueSelector {
    blank: bool,
    whole: Pattern,
    parts: Vec<String>,
}

impl ValueSelector {
    fn new(selector: &str) -> ValueSelector {
        ValueSelector {
            blank: java::trim(selector).is_empty(),
            whole: Pattern::new(selector),
            parts: java::split(selector, ',')
                .into_iter()
                .map(str::to_string)
                .collect(),
        }
    }

    fn matches(&self, value: Option<&str>) -> Result<bool> {
        let Some(value) = value.filter(|v| !java::trim(v).is_empty()) else {
            return Ok(false);
        };
        if self.blank {
            return Ok(false);
        }
        Ok(self.whole.matches(value)? || self.parts.iter().any(|p| p == value))
    }

    fn error(&self) -> Option<&str> {
        self.whole.error()
    }
}

/// A compiled `matchesInputSet` selector.
#[derive(Debug, Clone)]
enum TagSelector {
    Blank,
    /// No `+` or `,`: contained as is, or matched.
    Single {
        raw: String,
        pattern: Pattern,
    },
    /// Alternatives of conjunctions of `(trimmed term, pattern)`.
    Clauses(Vec<Vec<(String, Pattern)>>),
}

impl TagSelector {
    fn new(selector: &str) -> TagSelector {
        if java::trim(selector).is_empty() {
            TagSelector::Blank
        } else if selector.contains(['+', ',']) {
            TagSelector::Clauses(
                java::split(selector, ',')
                    .into_iter()
                    .map(|clause| {
                        java::split(clause, '+')
                            .into_iter()
                            .map(|term| (java::trim(term).to_string(), Pattern::new(term)))
                            .collect()
                    })
                    .collect(),
            )
        } else {
            TagSelector::Single {
                raw: selector.to_string(),
                pattern: Pattern::new(selector),
            }
        }
    }

    fn matches(&self, tags: &[&str]) -> Result<bool> {
        if tags.is_empty() {
            return Ok(false);
        }
        let any_tag = |pattern: &Pattern| -> Result<bool> {
            for tag in tags {
                if pattern.matches(tag)? {
                    return Ok(true);
                }
            }
            Ok(false)
        };
        match self {
            TagSelector::Blank => Ok(false),
            TagSelector::Single { raw, pattern } => {
                Ok(any_tag(pattern)? || tags.contains(&raw.as_str()))
            }
            TagSelector::Clauses(clauses) => {
                for clause in clauses {
                    let mut all = true;
                    for (trimmed, pattern) in clause {
                        if !tags.contains(&trimmed.as_str()) && !any_tag(pattern)? {
                            all = false;
                        }
                    }
                    if all {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
        }
    }

    fn error(&self) -> Option<&str> {
        match self {
            TagSelector::Blank => None,
            TagSelector::Single { pattern, .. } => pattern.error(),
            TagSelector::Clauses(clauses) => clauses.iter().flatten().find_map(|(_, p)| p.error()),
        }
    }
}

/// Where a special filter key reads its value from.
#[derive(Debug, Clone, Copy)]
enum Field {
    Hostname,
    Name,
    OsName,
    OsFamily,
    OsArch,
    OsVersion,
}

impl Field {
    fn from_key(key: &str) -> Option<Field> {
        Some(match key {
            "hostname" => Field::Hostname,
            "name" => Field::Name,
            "os-name" => Field::OsName,
            "os-family" => Field::OsFamily,
            "os-arch" => Field::OsArch,
            "os-version" => Field::OsVersion,
            _ => return None,
        })
    }

    fn value(self, node: &Node) -> Option<&str> {
        let key = match self {
            Field::Name => return Some(&node.name),
            Field::Hostname => attr::HOSTNAME,
            Field::OsName => attr::OS_NAME,
            Field::OsFamily => attr::OS_FAMILY,
            Field::OsArch => attr::OS_ARCH,
            Field::OsVersion => attr::OS_VERSION,
        };
        node.attributes.get(key).map(String::as_str)
    }
}

/// One side of a filter (`NodeSet.SetSelector`): every non-blank clause must match.
#[derive(Debug, Clone)]
struct Selector {
    blank: bool,
    /// Special keys with a non-blank selector (blank ones are ignored, as Rundeck ignores them).
    fields: Vec<(Field, String, ValueSelector)>,
    tags: Option<TagSelector>,
    /// Every other key: an attribute. A blank selector here is kept and matches nothing.
    attributes: Vec<(String, ValueSelector)>,
}

impl Selector {
    fn compile(map: &BTreeMap<String, String>) -> Selector {
        let mut selector = Selector {
            blank: true,
            fields: Vec::new(),
            tags: None,
            attributes: Vec::new(),
        };
        for (key, value) in map {
            let value_blank = java::trim(value).is_empty();
            if key == "tags" {
                if !value_blank {
                    selector.tags = Some(TagSelector::new(value));
                    selector.blank = false;
                }
            } else if let Some(field) = Field::from_key(key) {
                if !value_blank {
                    selector
                        .fields
                        .push((field, key.clone(), ValueSelector::new(value)));
                    selector.blank = false;
                }
            } else {
                selector
                    .attributes
                    .push((key.clone(), ValueSelector::new(value)));
                selector.blank = false;
            }
        }
        selector
    }

    fn first_error(&self) -> Option<(&str, &str)> {
        let fields = self.fields.iter().map(|(_, k, s)| (k.as_str(), s.error()));
        let tags = self.tags.iter().map(|t| ("tags", t.error()));
        let attrs = self.attributes.iter().map(|(k, s)| (k.as_str(), s.error()));
        fields
            .chain(tags)
            .chain(attrs)
            .find_map(|(key, error)| error.map(|e| (key, e)))
    }

    /// `SetSelector.matches`. Patterns were checked at parse time, so evaluation cannot fail.
    fn matches(&self, node: &Node) -> bool {
        if self.blank {
            return false;
        }
        let ok = |r: Result<bool>| r.unwrap_or(false);
        self.fields
            .iter()
            .all(|(field, _, sel)| ok(sel.matches(field.value(node))))
            && self.tags.as_ref().is_none_or(|sel| {
                let tags: Vec<&str> = node.tags.iter().map(String::as_str).collect();
                ok(sel.matches(&tags))
            })
            && self
                .attributes
                .iter()
                .all(|(key, sel)| ok(sel.matches(node.attribute(key).as_deref())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// QuotedStringTokenizerTest, every case.
    #[test]
    fn tokenizer_matches_quoted_string_tokenizer_test() {
        let cases: &[(&str, &[&str])] = &[
            ("abc", &["abc"]),
            ("abc def", &["abc", "def"]),
            ("\"abc\"", &["abc"]),
            ("\"abc def\"", &["abc def"]),
            ("\"ab\"\"c def\"", &["ab\"c def"]),
            ("'abc'", &["abc"]),
            ("'abc def'", &["abc def"]),
            ("'a''bc def'", &["a'bc def"]),
            (
                "abc \"123 45\" elbow 'sized' 'shrimp food' \"scurry 'donut' slef\"",
                &[
                    "abc",
                    "123 45",
                    "elbow",
                    "sized",
                    "shrimp food",
                    "scurry 'donut' slef",
                ],
            ),
            ("abc \"\" def '' xyz", &["abc", "", "def", "", "xyz"]),
            (
                "-whitespaces     \"string    with   white space\" -arg1 one   ",
                &[
                    "-whitespaces",
                    "string    with   white space",
                    "-arg1",
                    "one",
                ],
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(tokenize(input), *expected, "tokenize({input:?})");
        }
    }

    #[test]
    fn tokenizer_quote_rules() {
        // A quote only groups when the token starts with it.
        assert_eq!(tokenize("name:'a b'"), ["name:'a", "b'"]);
        // After closing, the same quote reopens within the token; the other quote is literal.
        assert_eq!(tokenize("'a b'c' d'"), ["a bc d"]);
        assert_eq!(tokenize("\"a\"'b c'"), ["a'b", "c'"]);
        // Unclosed quote runs to the end.
        assert_eq!(tokenize("'a b"), ["a b"]);
        // Control characters are delimiters too.
        assert_eq!(tokenize("a\u{1}b\u{7f}"), ["a", "b\u{7f}"]);
        // Blank inputs.
        assert_eq!(tokenize(""), Vec::<String>::new());
        assert_eq!(tokenize(" "), Vec::<String>::new());
        assert_eq!(tokenize("  "), [""]);
        assert_eq!(tokenize("\t\r\n"), [""]);
        assert_eq!(tokenize("a   "), ["a"]);
        assert_eq!(tokenize("   a"), ["a"]);
    }

    #[test]
    fn parse_pending_key_rules() {
        let p = parse_filter("hostname: host:22");
        assert_eq!(p.include, map(&[("hostname", "host:22")]));
        let p = parse_filter("tags:");
        assert_eq!(p, ParsedFilter::default());
        let p = parse_filter("!tags: a !tags: b tags: c");
        assert_eq!(p.exclude, map(&[("tags", "a,b")]));
        assert_eq!(p.include, map(&[("tags", "c")]));
        let p = parse_filter("name: !x");
        assert_eq!(p.include, map(&[("name", "!x")]));
        // The blank-only input yields one empty bare token.
        assert_eq!(parse_filter("  ").include, map(&[("name", "")]));
    }

    #[test]
    fn tags_comma_space_gotcha() {
        let p = parse_filter("tags: a, b");
        assert_eq!(p.include, map(&[("tags", "a,"), ("name", "b")]));
        // And it selects nodes tagged `a` named `b`: "a," splits to the one term "a".
        let f = Filter::parse("tags: a, b", None).unwrap();
        assert!(f.matches(&Node::new("b").with_tags(["a"]), true));
        assert!(!f.matches(&Node::new("c").with_tags(["a"]), true));
    }

    #[test]
    fn exclude_filter_overwrites_per_key() {
        let f = combined("tags: a !tags: b name: n", Some("tags: x !name: y"));
        assert_eq!(f.include, map(&[("tags", "a"), ("name", "y")]));
        assert_eq!(f.exclude, map(&[("tags", "x")]));
        assert!(combined(".*", Some("")).exclude.is_empty());
    }

    #[test]
    fn special_keys_and_attributes() {
        let node = Node::new("web1")
            .with("osFamily", "unix")
            .with("hostname", "web1.local")
            .with("ssh-port", "22");
        for (filter, selected) in [
            ("os-family: unix", true),
            ("osFamily: unix", true),
            ("nodename: web1", true),
            ("name: web1", true),
            ("ssh-port: 22", true),
            ("hostname: .*local", true),
            ("os-family: UNIX", false),
            ("os-arch: .*", false),
            ("osArch: .*", false),
            ("name: web.*,db.*", false),
            ("name: web.*|db.*", true),
            ("name: db1,web1", true),
            ("ssh-port: ''", false),
            ("os-arch: ''", false),
        ] {
            let f = Filter::parse(filter, None).unwrap();
            assert_eq!(f.matches(&node, true), selected, "{filter}");
        }
    }

    #[test]
    fn blank_selectors() {
        // A blank special key is ignored: the whole side is blank, so nothing is selected.
        let f = Filter::parse("name: ''", None).unwrap();
        assert!(!f.matches(&Node::new("x"), true));
        // A blank exclude side with a positive include side.
        let f = Filter::parse("!name: '' name: x", None).unwrap();
        assert!(f.matches(&Node::new("x"), true));
        // Exclude only: everything but the excluded.
        let f = Filter::parse("!name: x", None).unwrap();
        assert!(!f.matches(&Node::new("x"), true));
        assert!(f.matches(&Node::new("y"), true));
    }

    #[test]
    fn slash_regex_error_is_reported_at_parse() {
        let err = Filter::parse("hostname: /web[/", None).unwrap_err();
        assert!(err.to_string().contains("hostname"), "{err}");
        assert!(Filter::parse("tags: a+/b[/", None).is_err());
        assert!(Filter::parse("!rack: /x(/", None).is_err());
        // Without slashes an invalid regex is just compared for equality.
        let f = Filter::parse("hostname: web[", None).unwrap();
        assert!(f.matches(&Node::new("n").with("hostname", "web["), true));
    }

    #[test]
    fn primitives_evaluate_lazily_like_java() {
        assert!(!matches_input("/x[/", None).unwrap());
        assert!(matches_input("/x[/", Some("x")).is_err());
        assert!(!matches_input_set("/x[/", []).unwrap());
        assert!(matches_input_set("/x[/", ["a"]).is_err());
        // The trimmed term is found before the broken regex is tried.
        assert!(matches_input_set("a+/x[/", ["a", "/x[/"]).unwrap());
    }

    #[test]
    fn java_regex_features_sortie_lacks_are_errors_and_non_patterns_compare_as_text() {
        // Java compiles these: comparing them as text would select what Java does not.
        assert!(match_regex_or_equals("(a)\\1", "aa").is_err());
        assert!(match_regex_or_equals("a(?=b)", "a(?=b)").is_err());
        // A pattern that is invalid alone stays invalid when anchored.
        assert!(!match_regex_or_equals("a)(b", "ab").unwrap());
        assert!(match_regex_or_equals("a)(b", "a)(b").unwrap());
        // Whole-string matching with alternation.
        assert!(match_regex_or_equals("a|ab", "ab").unwrap());
        assert!(!match_regex_or_equals("b", "ab").unwrap());
        // Case-sensitive; selector trimmed.
        assert!(!match_regex_or_equals("web", "WEB").unwrap());
        assert!(match_regex_or_equals("  web ", "web").unwrap());
        // The inside of /…/ is trimmed too.
        assert!(match_regex_or_equals("/ w.b /", "web").unwrap());
    }

    #[test]
    fn tag_selectors() {
        let tags = ["web", "prod", "eu-west"];
        for (selector, expected) in [
            ("web+prod", true),
            ("web + prod", true),
            ("web+dev,eu-.*", true),
            ("web+dev", false),
            ("eu-.*", true),
            ("eu", false),
            ("a,", false),
            ("web,", true),
            (",", false),
        ] {
            assert_eq!(
                matches_input_set(selector, tags).unwrap(),
                expected,
                "{selector}"
            );
        }
        // An empty tag (possible from XML "a,,b") is matched by an empty alternative.
        assert!(matches_input_set(",x", ["", "y"]).unwrap());
    }
}
