//! Job YAML → canonical job map, typed as Rundeck's SnakeYAML loader types it.
//!
//! Rundeck loads job YAML with SnakeYAML (`Yaml.load`, SafeConstructor), which
//! implements YAML **1.1** implicit typing: plain `yes`/`no`/`on`/`off` are
//! booleans, `0777` is octal, `1_000` is 1000, `08` is the float 8.0. `saphyr`
//! implements YAML 1.2, so plain scalars are re-resolved here with SnakeYAML's
//! rules; quoted and block scalars stay strings. `<<` merge keys are applied as
//! SafeConstructor does. A file must hold exactly one document (`Yaml.load`
//! rejects a stream of several) whose root is a list of maps.
//!
//! Known differences from SnakeYAML, all reported as errors or kept as text:
//! a key repeated in one mapping is an error here (SnakeYAML keeps the last);
//! a plain timestamp stays a string (SnakeYAML builds a `java.util.Date`).

use std::borrow::Cow;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use crate::rundeck::value::{Node, Value};

/// Why a YAML file could not be read into a job list.
#[derive(Debug)]
pub(crate) struct YamlError {
    pub message: String,
    pub line: usize,
}

/// Most YAML nodes a job file may hold (a job is a few hundred; a whole
/// project's export a few hundred jobs). The tree costs some hundreds of bytes
/// a node, so the count is taken on the parser's events first, in constant
/// memory, and a file past it is refused before any tree is built.
const MAX_NODES: usize = 200_000;

fn check_size(text: &str) -> Result<(), YamlError> {
    let mut nodes = 0usize;
    for event in saphyr_parser::Parser::new_from_str(text) {
        let Ok((event, span)) = event else {
            // The loader reports the error with its position.
            return Ok(());
        };
        use saphyr_parser::Event as E;
        if matches!(
            event,
            E::Scalar(..) | E::SequenceStart(..) | E::MappingStart(..) | E::Alias(..)
        ) {
            nodes += 1;
            if nodes > MAX_NODES {
                return Err(YamlError {
                    message: format!(
                        "the file holds more than {MAX_NODES} YAML nodes; a job file is far smaller: split it"
                    ),
                    line: span.start.line(),
                });
            }
        }
    }
    Ok(())
}

/// Loads the single document of `text` into the canonical tree.
pub(crate) fn load(text: &str) -> Result<Node, YamlError> {
    check_size(text)?;
    let docs = MarkedYaml::load_from_str(text).map_err(|e| YamlError {
        message: format!("invalid YAML: {}", e.info()),
        line: e.marker().line(),
    })?;
    match docs.len() {
        0 => Err(YamlError {
            message: "the file holds no YAML document; Rundeck expects a list of jobs".into(),
            line: 0,
        }),
        1 => {
            let src: Vec<char> = text.chars().collect();
            let conv = Converter { src: &src };
            conv.node(&docs[0])
        }
        n => Err(YamlError {
            message: format!(
                "the file holds {n} YAML documents; Rundeck reads exactly one (a list of jobs)"
            ),
            line: docs[1].span.start.line(),
        }),
    }
}

/// `text` as a map of names to text, each plain scalar as written (YAML's
/// `~`, `null` and nothing as empty text): for a plugin that hands the text
/// to a program that types its values itself, so no reading of ours may
/// change one (`5e80` stays `5e80`).
pub(crate) fn text_map(text: &str) -> Result<Vec<(String, String)>, YamlError> {
    check_size(text)?;
    let docs = MarkedYaml::load_from_str(text).map_err(|e| YamlError {
        message: format!("invalid YAML: {}", e.info()),
        line: e.marker().line(),
    })?;
    let src: Vec<char> = text.chars().collect();
    let conv = Converter { src: &src };
    let map = match docs.as_slice() {
        [] => return Ok(Vec::new()),
        [doc] => match &doc.data {
            YamlData::Mapping(m) => m,
            _ => {
                return Err(YamlError {
                    message: "not a map of names to values".into(),
                    line: doc.span.start.line(),
                })
            }
        },
        [_, second, ..] => {
            return Err(YamlError {
                message: "more than one YAML document".into(),
                line: second.span.start.line(),
            })
        }
    };
    let mut out = Vec::new();
    for (k, v) in map.iter() {
        let key = conv.node(k)?.to_jstring().unwrap_or_default();
        let line = v.span.start.line();
        let value = match (&v.data, conv.style(v)) {
            (YamlData::Value(Scalar::String(t)), Style::Plain) => t.to_string(),
            (YamlData::Value(_) | YamlData::Representation(..), Style::Plain) => {
                conv.slice(v).trim().to_string()
            }
            (YamlData::Value(_), Style::Other) => conv.node(v)?.to_jstring().unwrap_or_default(),
            (YamlData::Tagged(tag, _), _) => {
                return Err(YamlError {
                    message: format!(
                        "{key}: a value tagged {}{} (a vaulted one, say) is not text",
                        tag.handle, tag.suffix
                    ),
                    line,
                })
            }
            _ => {
                return Err(YamlError {
                    message: format!("{key}: a list or map is not text"),
                    line,
                })
            }
        };
        let value = match value.as_str() {
            "~" | "null" | "Null" | "NULL" => String::new(),
            _ => value,
        };
        out.push((key, value));
    }
    Ok(out)
}

struct Converter<'a> {
    src: &'a [char],
}

impl Converter<'_> {
    fn node(&self, n: &MarkedYaml) -> Result<Node, YamlError> {
        let line = n.span.start.line();
        let v = match &n.data {
            YamlData::Value(s) => self.scalar(n, s)?,
            YamlData::Representation(raw, _, _) => resolve_plain(raw),
            YamlData::Sequence(items) => Value::List(
                items
                    .iter()
                    .map(|i| self.node(i))
                    .collect::<Result<_, _>>()?,
            ),
            YamlData::Mapping(m) => {
                let mut out = Node::new(Value::Map(Vec::new()), line);
                let mut merges = Vec::new();
                for (k, v) in m.iter() {
                    let key = self.node(k)?;
                    let val = self.node(v)?;
                    if self.is_merge_key(k) {
                        merges.push(val);
                        continue;
                    }
                    let key = key.to_jstring().unwrap_or_else(|| "null".into());
                    out.put(&key, val);
                }
                apply_merges(&mut out, merges, line)?;
                return Ok(out);
            }
            YamlData::Tagged(tag, inner) => {
                if tag.is_yaml_core_schema() {
                    return self.node(inner);
                }
                return Err(YamlError {
                    message: format!(
                        "custom tag {}{} cannot be loaded (Rundeck's safe YAML loader rejects it)",
                        tag.handle, tag.suffix
                    ),
                    line,
                });
            }
            YamlData::Alias(_) => {
                return Err(YamlError {
                    message: "unresolved YAML alias".into(),
                    line,
                })
            }
            YamlData::BadValue => {
                return Err(YamlError {
                    message: "a scalar does not match its explicit tag".into(),
                    line,
                })
            }
        };
        Ok(Node::new(v, line))
    }

    /// Re-types a scalar: plain scalars by YAML 1.1 rules, others as saphyr read them.
    fn scalar(&self, n: &MarkedYaml, s: &Scalar) -> Result<Value, YamlError> {
        let style = self.style(n);
        let resolved = match style {
            Style::Plain => {
                let text: Cow<str> = match s {
                    Scalar::String(t) => Cow::Borrowed(t.as_ref()),
                    _ => Cow::Owned(self.slice(n).trim().to_string()),
                };
                resolve_plain(&text)
            }
            Style::Other => match s {
                Scalar::Null => Value::Null,
                Scalar::Boolean(b) => Value::Bool(*b),
                Scalar::Integer(i) => Value::Int(i128::from(*i)),
                Scalar::FloatingPoint(f) => Value::Float(f.into_inner()),
                Scalar::String(t) => Value::Str(t.to_string()),
            },
        };
        Ok(resolved)
    }

    fn slice(&self, n: &MarkedYaml) -> String {
        let s = n.span.start.index().min(self.src.len());
        let e = n.span.end.index().min(self.src.len()).max(s);
        self.src[s..e].iter().collect()
    }

    fn is_merge_key(&self, k: &MarkedYaml) -> bool {
        matches!(&k.data, YamlData::Value(Scalar::String(s)) if s == "<<")
            && matches!(self.style(k), Style::Plain)
    }

    /// Tells plain scalars from quoted, block and explicitly tagged ones by
    /// looking at the source around the node's span.
    fn style(&self, n: &MarkedYaml) -> Style {
        let start = n.span.start.index();
        if n.span.end.index() <= start || start >= self.src.len() {
            return Style::Plain; // empty scalar: null
        }
        match self.src[start] {
            '\'' | '"' | '!' => return Style::Other,
            _ => {}
        }
        if self.follows_block_indicator(start) {
            return Style::Other;
        }
        Style::Plain
    }

    /// True when the text before `start`, across at least one line break,
    /// ends with a block scalar header such as `|`, `|-`, `>+2`.
    fn follows_block_indicator(&self, start: usize) -> bool {
        let mut i = start;
        let mut crossed_newline = false;
        while i > 0 {
            let c = self.src[i - 1];
            if c == '\n' || c == '\r' {
                crossed_newline = true;
            } else if c != ' ' && c != '\t' {
                break;
            }
            i -= 1;
        }
        if !crossed_newline || i == 0 {
            return false;
        }
        let end = i;
        let mut begin = end;
        while begin > 0 && self.src[begin - 1] != '\n' && self.src[begin - 1] != '\r' {
            begin -= 1;
        }
        let line: String = self.src[begin..end].iter().collect();
        let code = strip_comment(&line);
        let last = code.split_whitespace().last().unwrap_or("");
        let mut chars = last.chars();
        matches!(chars.next(), Some('|') | Some('>'))
            && chars.all(|c| c == '-' || c == '+' || c.is_ascii_digit())
    }
}

enum Style {
    Plain,
    Other,
}

fn strip_comment(line: &str) -> &str {
    let bytes: Vec<char> = line.chars().collect();
    for (i, c) in bytes.iter().enumerate() {
        if *c == '#' && (i == 0 || bytes[i - 1] == ' ' || bytes[i - 1] == '\t') {
            let byte_idx = line
                .char_indices()
                .nth(i)
                .map(|(b, _)| b)
                .unwrap_or(line.len());
            return &line[..byte_idx];
        }
    }
    line
}

/// SafeConstructor's merge: explicit keys win, then earlier merge sources.
fn apply_merges(out: &mut Node, merges: Vec<Node>, line: usize) -> Result<(), YamlError> {
    for m in merges {
        let sources: Vec<Node> = match m.v {
            Value::Map(_) => vec![m],
            Value::List(items) => items,
            _ => {
                return Err(YamlError {
                    message: "a merge key (<<) must name a mapping or a list of mappings".into(),
                    line,
                })
            }
        };
        for src in sources {
            let Value::Map(entries) = src.v else {
                return Err(YamlError {
                    message: "a merge key (<<) list may only hold mappings".into(),
                    line,
                });
            };
            for (k, v) in entries {
                if !out.contains_key(&k) {
                    out.put(&k, v);
                }
            }
        }
    }
    Ok(())
}

/// SnakeYAML's implicit resolver (YAML 1.1) applied to a plain scalar.
pub(crate) fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true)
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false)
        }
        _ => {}
    }
    if is_yaml11_int(text) {
        if let Some(i) = construct_int(text) {
            return Value::Int(i);
        }
        return Value::Str(text.to_string());
    }
    if is_yaml11_float(text) {
        if let Some(f) = construct_float(text) {
            return Value::Float(f);
        }
    }
    Value::Str(text.to_string())
}

fn strip_sign(s: &str) -> (bool, &str) {
    match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    }
}

/// `[-+]?(0b_*[01][01_]* | 0_*[0-7][0-7_]* | 0 | [1-9][0-9_]* | 0x_*[0-9a-fA-F][0-9a-fA-F_]* | [1-9][0-9_]*(:[0-5]?[0-9])+)`
fn is_yaml11_int(text: &str) -> bool {
    let (_, s) = strip_sign(text);
    if s.is_empty() {
        return false;
    }
    if let Some(rest) = s.strip_prefix("0b") {
        let rest = rest.trim_start_matches('_');
        return rest.starts_with(['0', '1']) && rest.chars().all(|c| matches!(c, '0' | '1' | '_'));
    }
    if let Some(rest) = s.strip_prefix("0x") {
        let rest = rest.trim_start_matches('_');
        return rest.starts_with(|c: char| c.is_ascii_hexdigit())
            && rest.chars().all(|c| c.is_ascii_hexdigit() || c == '_');
    }
    if s == "0" {
        return true;
    }
    if let Some(rest) = s.strip_prefix('0') {
        let rest = rest.trim_start_matches('_');
        return rest.starts_with(|c: char| ('0'..='7').contains(&c))
            && rest.chars().all(|c| ('0'..='7').contains(&c) || c == '_');
    }
    if !s.starts_with(|c: char| ('1'..='9').contains(&c)) {
        return false;
    }
    let mut parts = s.split(':');
    let head = parts.next().unwrap_or("");
    if !head.chars().all(|c| c.is_ascii_digit() || c == '_') {
        return false;
    }
    parts.all(is_sexagesimal_part)
}

/// `[0-5]?[0-9]`
fn is_sexagesimal_part(p: &str) -> bool {
    let b = p.as_bytes();
    match b.len() {
        1 => b[0].is_ascii_digit(),
        2 => (b'0'..=b'5').contains(&b[0]) && b[1].is_ascii_digit(),
        _ => false,
    }
}

/// `[-+]?(\.[0-9]+|[0-9_]+(\.[0-9_]*)?)([eE][-+]?[0-9]+)?`
/// `| [-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]* | [-+]?\.(inf|Inf|INF) | \.(nan|NaN|NAN)`
fn is_yaml11_float(text: &str) -> bool {
    if matches!(text, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    let (_, s) = strip_sign(text);
    if matches!(s, ".inf" | ".Inf" | ".INF") {
        return true;
    }
    if s.contains(':') {
        let Some((whole, frac)) = s.rsplit_once('.') else {
            return false;
        };
        if !frac.chars().all(|c| c.is_ascii_digit() || c == '_') {
            return false;
        }
        let mut parts = whole.split(':');
        let head = parts.next().unwrap_or("");
        return head.starts_with(|c: char| c.is_ascii_digit())
            && head.chars().all(|c| c.is_ascii_digit() || c == '_')
            && parts.all(is_sexagesimal_part);
    }
    let (mant, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    if let Some(exp) = exp {
        let (_, digits) = strip_sign(exp);
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    if let Some(frac) = mant.strip_prefix('.') {
        return !frac.is_empty() && frac.chars().all(|c| c.is_ascii_digit());
    }
    let (int, frac) = match mant.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mant, None),
    };
    !int.is_empty()
        && int.chars().all(|c| c.is_ascii_digit() || c == '_')
        && frac.is_none_or(|f| f.chars().all(|c| c.is_ascii_digit() || c == '_'))
}

/// SafeConstructor.ConstructYamlInt.
fn construct_int(text: &str) -> Option<i128> {
    let cleaned: String = text.chars().filter(|c| *c != '_').collect();
    let (neg, s) = strip_sign(&cleaned);
    let magnitude: i128 = if s == "0" {
        0
    } else if let Some(b) = s.strip_prefix("0b") {
        i128::from_str_radix(b, 2).ok()?
    } else if let Some(h) = s.strip_prefix("0x") {
        i128::from_str_radix(h, 16).ok()?
    } else if let Some(o) = s.strip_prefix('0') {
        i128::from_str_radix(o, 8).ok()?
    } else if s.contains(':') {
        let mut val: i128 = 0;
        for part in s.split(':') {
            val = val
                .checked_mul(60)?
                .checked_add(part.parse::<i128>().ok()?)?;
        }
        val
    } else {
        s.parse::<i128>().ok()?
    };
    Some(if neg { -magnitude } else { magnitude })
}

/// SafeConstructor.ConstructYamlFloat.
fn construct_float(text: &str) -> Option<f64> {
    let cleaned: String = text
        .chars()
        .filter(|c| *c != '_')
        .collect::<String>()
        .to_lowercase();
    let (neg, s) = strip_sign(&cleaned);
    let sign = if neg { -1.0 } else { 1.0 };
    if s == ".inf" {
        return Some(sign * f64::INFINITY);
    }
    if s == ".nan" {
        return Some(f64::NAN);
    }
    if s.contains(':') {
        let mut val = 0.0;
        let mut base = 1.0;
        for part in s.split(':').rev() {
            val += part.parse::<f64>().ok()? * base;
            base *= 60.0;
        }
        return Some(sign * val);
    }
    let v: f64 = s.parse().ok()?;
    Some(sign * v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(text: &str) -> Node {
        load(text).unwrap()
    }

    #[test]
    fn yaml11_scalars() {
        assert_eq!(resolve_plain("yes"), Value::Bool(true));
        assert_eq!(resolve_plain("Off"), Value::Bool(false));
        assert_eq!(resolve_plain("0777"), Value::Int(511));
        assert_eq!(resolve_plain("1_000"), Value::Int(1000));
        assert_eq!(resolve_plain("0x1F"), Value::Int(31));
        assert_eq!(resolve_plain("1:30"), Value::Int(90));
        assert_eq!(resolve_plain("08"), Value::Float(8.0));
        assert_eq!(resolve_plain("1.10"), Value::Float(1.1));
        assert_eq!(resolve_plain("0/30"), Value::Str("0/30".into()));
        assert_eq!(resolve_plain("1.2.3"), Value::Str("1.2.3".into()));
        assert_eq!(resolve_plain("~"), Value::Null);
        assert_eq!(resolve_plain("y"), Value::Str("y".into()));
        assert_eq!(resolve_plain("10s"), Value::Str("10s".into()));
    }

    #[test]
    fn quoted_and_block_scalars_stay_strings() {
        let n = first("- a: 'yes'\n  b: \"0777\"\n  c: |-\n    yes\n  d: >-\n    on\n  e: yes\n  f: !!str 12\n");
        let job = &n.list().unwrap()[0];
        assert_eq!(job.get("a").unwrap().v, Value::Str("yes".into()));
        assert_eq!(job.get("b").unwrap().v, Value::Str("0777".into()));
        assert_eq!(job.get("c").unwrap().v, Value::Str("yes".into()));
        assert_eq!(job.get("d").unwrap().v, Value::Str("on".into()));
        assert_eq!(job.get("e").unwrap().v, Value::Bool(true));
        assert_eq!(job.get("f").unwrap().v, Value::Str("12".into()));
    }

    #[test]
    fn merge_keys() {
        let n = first("- base: &b {x: 1, y: 2}\n  other:\n    <<: *b\n    y: 3\n");
        let other = n.list().unwrap()[0].get("other").unwrap();
        assert_eq!(other.get("x").unwrap().v, Value::Int(1));
        assert_eq!(other.get("y").unwrap().v, Value::Int(3));
    }

    #[test]
    fn several_documents_are_refused() {
        let e = load("- a: 1\n---\n- b: 2\n").unwrap_err();
        assert!(e.message.contains("2 YAML documents"), "{}", e.message);
        assert_eq!(e.line, 3, "the line where the second document starts");
    }
}
