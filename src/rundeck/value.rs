//! The untyped tree both formats are read into before the job model is built.
//!
//! Rundeck itself works this way: the YAML loader and the XML codec each
//! produce a "canonical job map" of Java values, and one function
//! (`ScheduledExecution.fromMap`) turns that map into a job. Keeping the same
//! two stages here means the format-specific quirks (XML strings, YAML native
//! booleans) meet exactly the same interpretation code, and the typing rules
//! below can mirror the Groovy expressions Rundeck applies to each field.

use std::fmt::Write as _;

/// A value of the canonical job map, with the source line it came from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub v: Value,
    /// 1-based line in the source file; 0 when unknown.
    pub line: usize,
}

/// The Java types a Rundeck job map can hold.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    /// An integer of any width (SnakeYAML builds Integer, Long or BigInteger).
    Int(i128),
    Float(f64),
    Str(String),
    List(Vec<Node>),
    /// Insertion-ordered map, as Groovy's LinkedHashMap.
    Map(Vec<(String, Node)>),
}

impl Node {
    pub fn new(v: Value, line: usize) -> Self {
        Node { v, line }
    }

    pub fn str(s: impl Into<String>, line: usize) -> Self {
        Node::new(Value::Str(s.into()), line)
    }

    pub fn map(&self) -> Option<&Vec<(String, Node)>> {
        match &self.v {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn map_mut(&mut self) -> Option<&mut Vec<(String, Node)>> {
        match &mut self.v {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    #[cfg(test)]
    pub fn list(&self) -> Option<&Vec<Node>> {
        match &self.v {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.v {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.v, Value::Null)
    }

    /// Map lookup by key (first match; maps never hold duplicate keys).
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.map()?.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Groovy `map.key != null`.
    pub fn has_non_null(&self, key: &str) -> bool {
        self.get(key).is_some_and(|n| !n.is_null())
    }

    /// Groovy `map.containsKey(key)`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn remove(&mut self, key: &str) -> Option<Node> {
        let m = self.map_mut()?;
        let pos = m.iter().position(|(k, _)| k == key)?;
        Some(m.remove(pos).1)
    }

    /// Put, replacing an existing key in place (LinkedHashMap keeps the old slot).
    pub fn put(&mut self, key: &str, val: Node) {
        if let Some(m) = self.map_mut() {
            if let Some(slot) = m.iter_mut().find(|(k, _)| k == key) {
                slot.1 = val;
            } else {
                m.push((key.to_string(), val));
            }
        }
    }

    /// Groovy truth: `if (value)`.
    pub fn truthy(&self) -> bool {
        self.v.truthy()
    }

    /// Java `String.valueOf(value)`, or `None` for null (`value?.toString()`).
    pub fn to_jstring(&self) -> Option<String> {
        self.v.to_jstring()
    }

    /// Groovy's cast of any value to a `Boolean` property: the value's truth.
    /// So the string `'false'` becomes `true`, as Rundeck reads it.
    pub fn cast_bool(&self) -> bool {
        self.truthy()
    }

    /// Groovy `value in ['true', true]`: exactly the string `true` or boolean true.
    pub fn is_true_literal(&self) -> bool {
        matches!(&self.v, Value::Bool(true)) || matches!(&self.v, Value::Str(s) if s == "true")
    }

    /// `XmlParserUtil.stringToBool(value, default)`.
    pub fn string_to_bool(&self, default: bool) -> bool {
        match &self.v {
            Value::Bool(b) => *b,
            Value::Str(s) if !s.trim().is_empty() => s.eq_ignore_ascii_case("true"),
            _ => default,
        }
    }

    /// `Boolean.parseBoolean(String.valueOf(value))`, `false` for null.
    pub fn parse_boolean(&self) -> bool {
        match &self.v {
            Value::Bool(b) => *b,
            Value::Null => false,
            other => other
                .to_jstring()
                .is_some_and(|s| s.eq_ignore_ascii_case("true")),
        }
    }

    /// Converts to JSON, keeping YAML's native types.
    pub fn to_json(&self) -> serde_json::Value {
        self.v.to_json()
    }
}

impl Value {
    pub fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
        }
    }

    pub fn to_jstring(&self) -> Option<String> {
        match self {
            Value::Null => None,
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(java_double_to_string(*f)),
            Value::Str(s) => Some(s.clone()),
            Value::List(l) => {
                let items: Vec<String> = l
                    .iter()
                    .map(|n| n.to_jstring().unwrap_or_else(|| "null".into()))
                    .collect();
                Some(format!("[{}]", items.join(", ")))
            }
            Value::Map(m) => {
                if m.is_empty() {
                    return Some("[:]".into());
                }
                let items: Vec<String> = m
                    .iter()
                    .map(|(k, n)| {
                        format!("{k}:{}", n.to_jstring().unwrap_or_else(|| "null".into()))
                    })
                    .collect();
                Some(format!("[{}]", items.join(", ")))
            }
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => i64::try_from(*i)
                .map(J::from)
                .unwrap_or_else(|_| J::String(i.to_string())),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or_else(|| J::String(java_double_to_string(*f))),
            Value::Str(s) => J::String(s.clone()),
            Value::List(l) => J::Array(l.iter().map(Node::to_json).collect()),
            Value::Map(m) => J::Object(m.iter().map(|(k, n)| (k.clone(), n.to_json())).collect()),
        }
    }

    /// A short name of the type, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "a number",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::List(_) => "a list",
            Value::Map(_) => "a map",
        }
    }
}

/// Java's `Double.toString`: plain notation with at least one fraction digit
/// for magnitudes in [1e-3, 1e7), computerized scientific notation otherwise.
pub(crate) fn java_double_to_string(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let a = f.abs();
    if (1e-3..1e7).contains(&a) {
        let s = format!("{f:?}");
        if s.contains('.') || s.contains('e') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mut out = String::new();
        out.push_str(mant);
        if !mant.contains('.') {
            out.push_str(".0");
        }
        let _ = write!(out, "E{exp}");
        out
    }
}

/// Java `String.trim()`: strips every char at or below U+0020.
pub(crate) fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// Java `String.split(Pattern.quote(delim))`: trailing empty strings are dropped,
/// an input without the delimiter gives itself.
pub(crate) fn java_split(s: &str, delim: &str) -> Vec<String> {
    if delim.is_empty() {
        // Pattern.quote("") splits between every char; Rundeck never writes it.
        return s.chars().map(|c| c.to_string()).collect();
    }
    let mut parts: Vec<String> = s.split(delim).map(str::to_string).collect();
    if parts.len() > 1 {
        while parts.last().is_some_and(String::is_empty) {
            parts.pop();
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_double_formatting() {
        assert_eq!(java_double_to_string(1.1), "1.1");
        assert_eq!(java_double_to_string(8.0), "8.0");
        assert_eq!(java_double_to_string(1e7), "1.0E7");
        assert_eq!(java_double_to_string(1.5e-5), "1.5E-5");
        assert_eq!(java_double_to_string(1000.0), "1000.0");
    }

    #[test]
    fn java_split_drops_trailing_empties() {
        assert_eq!(java_split("a,b,", ","), vec!["a", "b"]);
        assert_eq!(java_split(",a", ","), vec!["", "a"]);
        assert_eq!(java_split("a", ","), vec!["a"]);
        assert_eq!(java_split("a||b", "||"), vec!["a", "b"]);
    }

    #[test]
    fn groovy_truth_of_strings() {
        let f = Node::str("false", 0);
        assert!(f.cast_bool());
        assert!(!f.parse_boolean());
        assert!(!f.is_true_literal());
        assert!(Node::str("TRUE", 0).string_to_bool(false));
        assert!(!Node::str("TRUE", 0).is_true_literal());
        assert!(Node::str("  ", 0).string_to_bool(true));
    }
}
