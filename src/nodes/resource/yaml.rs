//! The `resourceyaml` format, as Rundeck's `NodesYamlParser` and `NodeEntryFactory` read it —
//! including how SnakeYAML, a YAML 1.1 library, types plain scalars.
//!
//! Why it is shaped so: Rundeck loads the file with SnakeYAML's safe constructor and then calls
//! `toString()` on every value, so an attribute's string is whatever Java prints for the YAML 1.1
//! type of the scalar: `yes`/`on` become `true`, `0755` (octal) becomes `493`, `1:30`
//! (base 60) becomes `90`, `10.10` becomes `10.1`, `1e3` becomes `1000.0`. `saphyr` is a YAML 1.2
//! parser, so each scalar is re-typed here from its source text (recovered through the node's
//! span) with SnakeYAML's resolver rules; quoted and block scalars stay strings.
//!
//! The document rules (`NodesYamlParser`):
//! - several documents are allowed; each is a map `name → attributes` or a list of attribute
//!   maps; an empty or `null` document is skipped;
//! - in the map form the key overwrites any `nodename` attribute; a `null` value is an error
//!   ("empty node entry") and so is a value that is not a map;
//! - in the list form every entry must be a map with a non-null `nodename`;
//! - `tags` may be a comma string (split, trimmed, empty items dropped), a list (items
//!   trimmed, empty and null ones dropped) or another scalar (one tag);
//! - `attributes`, `frameworkProject` and `class` are dropped, and so is `name` (it is a known
//!   property with no setter); `null` values are dropped; other values become strings, lists
//!   and maps in Java's `[a, b]` / `{k=v}` form;
//! - merge keys (`<<: *defaults`) are applied, explicit keys winning, and duplicate keys are
//!   allowed by SnakeYAML (last wins) but rejected here by `saphyr` — see below.
//!
//! Deliberate differences, each stricter than Rundeck and reported with file and line:
//! a duplicate key in one mapping; a document that is a plain scalar (Rundeck ignores it); a
//! well-known field (`hostname`, `username`, …) or `tags` given as a map or a nested list
//! (Rundeck stores a Java `toString` or the first element); tags other than the YAML core
//! ones. More lenient: non-string map keys are used as their string (Rundeck fails with a
//! `ClassCastException`). Not reproduced: a timestamp-looking scalar (`2024-01-31`) keeps its
//! text, where Rundeck prints a `java.util.Date` in the server's time zone.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context as _, Result};
use regex_lite::Regex;
use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use crate::nodes::java;
use crate::nodes::node::{attr, Node};

/// The nodes of a YAML resource file, in definition order.
pub(super) fn parse(label: &str, text: &str) -> Result<Vec<Node>> {
    let docs = MarkedYaml::load_from_str(text).map_err(|e| {
        anyhow!(
            "{label}: invalid YAML at line {}, column {}: {}",
            e.marker().line(),
            e.marker().col() + 1,
            e.info()
        )
    })?;
    let mut reader = Reader::new(text);
    let mut nodes = Vec::new();
    for (index, doc) in docs.iter().enumerate() {
        if matches!(doc.data, YamlData::BadValue) {
            continue; // an empty document
        }
        let doc = reader.convert(doc).map_err(|e| anyhow!("{label}: {e}"))?;
        match doc.value {
            Value::Null => {}
            Value::Map(entries) => {
                for (key, value) in entries {
                    let name = match key.value {
                        Value::Null => bail!("{label}: node with an empty name (line {})", key.line),
                        ref k => k.java_string(),
                    };
                    match value.value {
                        Value::Map(attrs) => nodes.push(node(label, attrs, Some(name), value.line)?),
                        Value::Null => bail!("{label}: node {name:?}: empty node entry (line {})", key.line),
                        other => bail!(
                            "{label}: node {name:?}: expected a map of attributes, found {} (line {})",
                            other.describe(),
                            value.line
                        ),
                    }
                }
            }
            Value::Seq(items) => {
                for (position, item) in items.into_iter().enumerate() {
                    match item.value {
                        Value::Map(attrs) => nodes.push(node(label, attrs, None, item.line)?),
                        other => bail!(
                            "{label}: node #{}: expected a map of attributes, found {} (line {})",
                            position + 1,
                            other.describe(),
                            item.line
                        ),
                    }
                }
            }
            Value::Scalar(ref scalar) => bail!(
                "{label}: document {}: expected a map of node names or a list of nodes, found {} (line {})",
                index + 1,
                scalar.describe(),
                doc.line
            ),
        }
    }
    Ok(nodes)
}

/// `NodeEntryFactory.createFromMap` for one node's attribute map.
fn node(
    label: &str,
    entries: Vec<(Item, Item)>,
    map_key: Option<String>,
    line: usize,
) -> Result<Node> {
    let mut props: BTreeMap<String, Item> = BTreeMap::new();
    for (key, value) in entries {
        props.insert(key.value.java_string(), value);
    }
    let name = match map_key {
        Some(name) => name,
        None => match props.get(attr::NODENAME).map(|item| &item.value) {
            None | Some(Value::Null) => {
                bail!("{label}: node at line {line}: missing required \"nodename\"")
            }
            Some(Value::Scalar(scalar)) => scalar.java_string(),
            Some(other) => bail!(
                "{label}: node at line {line}: nodename: expected a string, found {}",
                other.describe()
            ),
        },
    };
    let mut node = Node::new(name.clone());
    for (key, item) in props {
        let context = || format!("{label}: node {name:?}: {key}");
        match key.as_str() {
            attr::NODENAME | "name" | "attributes" | "frameworkProject" | "class" => {}
            attr::TAGS => {
                node.tags = tags(&item).map_err(|e| anyhow!("{}: {e}", context()))?;
            }
            attr::HOSTNAME
            | attr::USERNAME
            | attr::OS_ARCH
            | attr::OS_FAMILY
            | attr::OS_NAME
            | attr::OS_VERSION
            | attr::DESCRIPTION => match &item.value {
                Value::Null => {}
                Value::Scalar(scalar) => {
                    node.attributes.insert(key, scalar.java_string());
                }
                other => bail!(
                    "{}: expected a string, found {} (line {})",
                    context(),
                    other.describe(),
                    item.line
                ),
            },
            _ => {
                if !matches!(item.value, Value::Null) {
                    node.attributes.insert(key, item.value.java_string());
                }
            }
        }
    }
    Ok(node)
}

fn tags(item: &Item) -> Result<BTreeSet<String>> {
    let mut tags = BTreeSet::new();
    let mut add = |tag: String| {
        let tag = java::trim(&tag).to_string();
        if !tag.is_empty() {
            tags.insert(tag);
        }
    };
    match &item.value {
        Value::Null => {}
        Value::Scalar(Scalar11::Str(s)) => java::split(s, ',')
            .into_iter()
            .for_each(|t| add(t.to_string())),
        Value::Scalar(scalar) => add(scalar.java_string()),
        Value::Seq(items) => {
            for tag in items {
                match &tag.value {
                    Value::Null => {}
                    Value::Scalar(scalar) => add(scalar.java_string()),
                    other => bail!(
                        "expected a string or a list of strings, found a list containing {} (line {})",
                        other.describe(),
                        tag.line
                    ),
                }
            }
        }
        Value::Map(_) => bail!(
            "expected a string or a list, found a map (line {})",
            item.line
        ),
    }
    Ok(tags)
}

/// A YAML value typed as SnakeYAML types it, with the line it starts on.
#[derive(Debug, Clone)]
struct Item {
    line: usize,
    value: Value,
}

#[derive(Debug, Clone)]
enum Value {
    Null,
    Scalar(Scalar11),
    Seq(Vec<Item>),
    /// Entries in document order, merge keys already applied.
    Map(Vec<(Item, Item)>),
}

/// A non-null scalar after YAML 1.1 resolution.
#[derive(Debug, Clone)]
enum Scalar11 {
    Str(String),
    Bool(bool),
    /// The decimal digits Java prints for the `Integer`/`Long`/`BigInteger`.
    Int(String),
    Float(f64),
    /// A timestamp-looking scalar, kept as written.
    Timestamp(String),
    /// The merge key `<<`.
    Merge,
}

impl Value {
    /// `toString()` of the Java object SnakeYAML builds.
    fn java_string(&self) -> String {
        match self {
            Value::Null => "null".to_string(),
            Value::Scalar(scalar) => scalar.java_string(),
            Value::Seq(items) => java::list_to_string(items.iter().map(|i| i.value.java_string())),
            Value::Map(entries) => java::map_to_string(
                entries
                    .iter()
                    .map(|(k, v)| (k.value.java_string(), v.value.java_string())),
            ),
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Scalar(scalar) => scalar.describe(),
            Value::Seq(_) => "a list",
            Value::Map(_) => "a map",
        }
    }
}

impl Scalar11 {
    fn java_string(&self) -> String {
        match self {
            Scalar11::Str(s) | Scalar11::Int(s) | Scalar11::Timestamp(s) => s.clone(),
            Scalar11::Bool(b) => b.to_string(),
            Scalar11::Float(f) => java::double_to_string(*f),
            Scalar11::Merge => "<<".to_string(),
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Scalar11::Str(_) | Scalar11::Timestamp(_) | Scalar11::Merge => "a string",
            Scalar11::Bool(_) => "a boolean",
            Scalar11::Int(_) | Scalar11::Float(_) => "a number",
        }
    }
}

/// Converts `saphyr` nodes to [`Item`]s, re-typing scalars from their source text.
struct Reader<'a> {
    text: &'a str,
    /// Byte offset of each character (saphyr positions count characters), plus the end.
    offsets: Vec<usize>,
    /// Values of anchored scalars, for aliases (an alias node carries only its own span).
    anchors: HashMap<String, Value>,
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Reader<'a> {
        let mut offsets: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        offsets.push(text.len());
        Reader {
            text,
            offsets,
            anchors: HashMap::new(),
        }
    }

    fn source(&self, node: &MarkedYaml) -> &'a str {
        let at = |index: usize| self.offsets[index.min(self.offsets.len() - 1)];
        let (start, end) = (at(node.span.start.index()), at(node.span.end.index()));
        self.text.get(start..end.max(start)).unwrap_or_default()
    }

    fn convert(&mut self, node: &MarkedYaml) -> Result<Item> {
        let line = node.span.start.line();
        let value = match &node.data {
            YamlData::Sequence(items) => Value::Seq(
                items
                    .iter()
                    .map(|i| self.convert(i))
                    .collect::<Result<_>>()?,
            ),
            YamlData::Mapping(mapping) => {
                let mut entries = Vec::with_capacity(mapping.len());
                for (key, value) in mapping {
                    entries.push((self.convert(key)?, self.convert(value)?));
                }
                Value::Map(apply_merge_keys(entries)?)
            }
            YamlData::Tagged(tag, _) => bail!("unsupported YAML tag {tag} (line {line})"),
            _ => self.scalar(node, line)?,
        };
        Ok(Item { line, value })
    }

    fn scalar(&mut self, node: &MarkedYaml, line: usize) -> Result<Value> {
        let (anchor, tag, rest) = split_properties(self.source(node));
        let parsed = match &node.data {
            YamlData::Value(Scalar::String(s)) => Some(s.as_ref()),
            _ => None,
        };
        let value = if let Some(alias) = rest.strip_prefix('*') {
            let alias = alias.trim();
            match self.anchors.get(alias) {
                Some(value) => value.clone(),
                None => yaml12_value(&node.data),
            }
        } else if matches!(node.data, YamlData::Value(Scalar::Null)) {
            // saphyr's nulls (`~`, `null`, `Null`, `NULL`, empty) are SnakeYAML's too. An empty
            // scalar's span points at the next token, so its source text is not consulted.
            Value::Null
        } else if let Some(tag) = tag {
            tagged(tag, parsed.unwrap_or(rest.trim())).map_err(|e| anyhow!("{e} (line {line})"))?
        } else if rest.starts_with(['\'', '"', '|', '>']) {
            Value::Scalar(Scalar11::Str(parsed.unwrap_or(rest).to_string()))
        } else if matches!(node.data, YamlData::BadValue) {
            bail!("invalid value {rest:?} (line {line})")
        } else {
            resolve(parsed.unwrap_or(rest.trim())).map_err(|e| anyhow!("{e} (line {line})"))?
        };
        if let Some(anchor) = anchor {
            self.anchors.insert(anchor.to_string(), value.clone());
        }
        Ok(value)
    }
}

/// Split `&anchor` and `!tag` properties (in either order) off a node's source text.
fn split_properties(mut source: &str) -> (Option<&str>, Option<&str>, &str) {
    let (mut anchor, mut tag) = (None, None);
    loop {
        let property = if source.starts_with('&') {
            &mut anchor
        } else if source.starts_with('!') {
            &mut tag
        } else {
            return (anchor, tag, source);
        };
        let end = source.find(char::is_whitespace).unwrap_or(source.len());
        let (token, after) = source.split_at(end);
        *property = Some(token.strip_prefix('&').unwrap_or(token));
        source = after.trim_start();
    }
}

/// The value of a scalar whose source text could not be recovered (an alias of an unknown
/// anchor), from saphyr's YAML 1.2 typing.
fn yaml12_value<'a>(data: &YamlData<'a, MarkedYaml<'a>>) -> Value {
    match data {
        YamlData::Value(Scalar::Null) | YamlData::BadValue => Value::Null,
        YamlData::Value(Scalar::Boolean(b)) => Value::Scalar(Scalar11::Bool(*b)),
        YamlData::Value(Scalar::Integer(i)) => Value::Scalar(Scalar11::Int(i.to_string())),
        YamlData::Value(Scalar::FloatingPoint(f)) => Value::Scalar(Scalar11::Float(f.into_inner())),
        YamlData::Value(Scalar::String(s)) => Value::Scalar(Scalar11::Str(s.to_string())),
        _ => Value::Null,
    }
}

/// A scalar with an explicit core tag (`!!str 0755`, `!!int "12"`).
fn tagged(tag: &str, text: &str) -> Result<Value> {
    let suffix = tag.strip_prefix("!!").or_else(|| {
        tag.strip_prefix("!<tag:yaml.org,2002:")
            .and_then(|t| t.strip_suffix('>'))
    });
    let scalar = match suffix {
        Some("str") => Scalar11::Str(text.to_string()),
        Some("null") => return Ok(Value::Null),
        Some("bool") => match text.to_lowercase().as_str() {
            "yes" | "true" | "on" => Scalar11::Bool(true),
            "no" | "false" | "off" => Scalar11::Bool(false),
            _ => return Ok(Value::Null),
        },
        Some("int") if patterns().int.is_match(text) => Scalar11::Int(construct_int(text)?),
        Some("float") if patterns().float.is_match(text) || patterns().int.is_match(text) => {
            Scalar11::Float(construct_float(text)?)
        }
        Some("timestamp") => Scalar11::Timestamp(text.to_string()),
        Some(kind @ ("int" | "float")) => bail!("cannot read {text:?} as !!{kind}"),
        _ => bail!("unsupported YAML tag {tag}"),
    };
    Ok(Value::Scalar(scalar))
}

struct Patterns {
    boolean: Regex,
    int: Regex,
    float: Regex,
    null: Regex,
    timestamp: Regex,
}

/// SnakeYAML 2.x `Resolver` patterns.
fn patterns() -> &'static Patterns {
    static PATTERNS: OnceLock<Patterns> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        let re = |p: &str| Regex::new(&format!(r"\A(?:{p})\z")).expect("valid resolver regex");
        Patterns {
            boolean: re("yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF"),
            int: re(concat!(
                r"[-+]?0b_*[0-1][0-1_]*",
                r"|[-+]?0_*[0-7][0-7_]*",
                r"|[-+]?(?:0|[1-9][0-9_]*)",
                r"|[-+]?0x_*[0-9a-fA-F][0-9a-fA-F_]*",
                r"|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+",
            )),
            float: re(concat!(
                r"[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?",
                r"|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)",
                r"|[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?",
                r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*",
                r"|[-+]?\.(?:inf|Inf|INF)",
                r"|\.(?:nan|NaN|NAN)",
            )),
            null: re("~|null|Null|NULL| "),
            timestamp: re(concat!(
                r"[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]",
                r"|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9]",
                r"(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?",
            )),
        }
    })
}

/// Type a plain scalar as SnakeYAML's `Resolver.resolve` does: candidates are chosen by the
/// first character and tried in registration order (each with its length limit), then the
/// null patterns are tried for every value.
fn resolve(text: &str) -> Result<Value> {
    #[derive(Clone, Copy)]
    enum Kind {
        Bool,
        Int,
        Float,
        Merge,
        Null,
        Timestamp,
    }
    let p = patterns();
    let length = text.encode_utf16().count();
    let first = text.chars().next();
    let candidates: &[Kind] = match first {
        Some('n' | 'N') => &[Kind::Bool, Kind::Null],
        Some('y' | 'Y' | 't' | 'T' | 'f' | 'F' | 'o' | 'O') => &[Kind::Bool],
        Some('-' | '+') => &[Kind::Int, Kind::Float],
        Some('0'..='9') => &[Kind::Int, Kind::Float, Kind::Timestamp],
        Some('.') => &[Kind::Float],
        Some('<') => &[Kind::Merge],
        Some('~') => &[Kind::Null],
        _ => &[],
    };
    for kind in candidates.iter().chain(&[Kind::Null]) {
        let (pattern_matches, limit) = match kind {
            Kind::Bool => (p.boolean.is_match(text), 10),
            Kind::Int => (p.int.is_match(text), 1024),
            Kind::Float => (p.float.is_match(text), 1024),
            Kind::Merge => (text == "<<", 10),
            Kind::Null => (p.null.is_match(text) || text.is_empty(), 10),
            Kind::Timestamp => (p.timestamp.is_match(text), 50),
        };
        if length <= limit && pattern_matches {
            let scalar = match kind {
                Kind::Bool => Scalar11::Bool(matches!(
                    text,
                    "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON"
                )),
                Kind::Int => Scalar11::Int(construct_int(text)?),
                Kind::Float => Scalar11::Float(construct_float(text)?),
                Kind::Merge => Scalar11::Merge,
                Kind::Null => return Ok(Value::Null),
                Kind::Timestamp => Scalar11::Timestamp(text.to_string()),
            };
            return Ok(Value::Scalar(scalar));
        }
    }
    Ok(Value::Scalar(Scalar11::Str(text.to_string())))
}

/// `SafeConstructor.ConstructYamlInt`, printed as Java prints the resulting number.
fn construct_int(text: &str) -> Result<String> {
    let value = text.replace('_', "");
    let (negative, value) = match value.strip_prefix('-') {
        Some(rest) => (true, rest.to_string()),
        None => (false, value.strip_prefix('+').unwrap_or(&value).to_string()),
    };
    if value == "0" {
        return Ok("0".to_string());
    }
    let (digits, radix) = if let Some(bits) = value.strip_prefix("0b") {
        (bits, 2)
    } else if let Some(hex) = value.strip_prefix("0x") {
        (hex, 16)
    } else if let Some(octal) = value.strip_prefix('0') {
        (octal, 8)
    } else if value.contains(':') {
        // Java accumulates in an `int`, so large values wrap; a wrapped negative value with a
        // minus sign becomes "--n", which Java then fails to parse.
        let mut total: i32 = 0;
        let mut weight: i32 = 1;
        for part in java::split(&value, ':').into_iter().rev() {
            let part: i64 = part
                .parse()
                .with_context(|| format!("invalid integer {text:?}"))?;
            total = (i64::from(total).wrapping_add(part.wrapping_mul(i64::from(weight)))) as i32;
            weight = weight.wrapping_mul(60);
        }
        if negative && total < 0 {
            bail!("invalid integer {text:?}");
        }
        let total = if negative {
            -i64::from(total)
        } else {
            i64::from(total)
        };
        return Ok(total.to_string());
    } else {
        (value.as_str(), 10)
    };
    let magnitude =
        radix_to_decimal(digits, radix).with_context(|| format!("invalid integer {text:?}"))?;
    Ok(if negative && magnitude != "0" {
        format!("-{magnitude}")
    } else {
        magnitude
    })
}

/// Digits in `radix` to decimal digits, for any length (Java falls back to `BigInteger`).
fn radix_to_decimal(digits: &str, radix: u32) -> Option<String> {
    const BASE: u64 = 1_000_000_000;
    if digits.is_empty() {
        return None;
    }
    let mut limbs: Vec<u64> = vec![0]; // little-endian, base 10^9
    for c in digits.chars() {
        let mut carry = u64::from(c.to_digit(radix)?);
        for limb in &mut limbs {
            let value = *limb * u64::from(radix) + carry;
            *limb = value % BASE;
            carry = value / BASE;
        }
        while carry > 0 {
            limbs.push(carry % BASE);
            carry /= BASE;
        }
    }
    let mut out = limbs.last().copied().unwrap_or(0).to_string();
    for limb in limbs.iter().rev().skip(1) {
        out.push_str(&format!("{limb:09}"));
    }
    Some(out)
}

/// `SafeConstructor.ConstructYamlFloat`.
fn construct_float(text: &str) -> Result<f64> {
    let value = text.replace('_', "");
    let (sign, value) = match value.strip_prefix('-') {
        Some(rest) => (-1.0, rest.to_string()),
        None => (1.0, value.strip_prefix('+').unwrap_or(&value).to_string()),
    };
    let invalid = || anyhow!("invalid number {text:?}");
    match value.to_lowercase().as_str() {
        ".inf" => return Ok(sign * f64::INFINITY),
        ".nan" => return Ok(f64::NAN),
        _ => {}
    }
    if value.contains(':') {
        let mut total = 0.0;
        let mut weight: i32 = 1;
        for part in java::split(&value, ':').into_iter().rev() {
            total += part.parse::<f64>().map_err(|_| invalid())? * f64::from(weight);
            weight = weight.wrapping_mul(60);
        }
        return Ok(sign * total);
    }
    Ok(sign * value.parse::<f64>().map_err(|_| invalid())?)
}

/// SnakeYAML's `flattenMapping`: entries of `<<` maps are added unless an explicit key (or an
/// earlier map in a `<<` list) defines them.
fn apply_merge_keys(entries: Vec<(Item, Item)>) -> Result<Vec<(Item, Item)>> {
    if !entries
        .iter()
        .any(|(k, _)| matches!(k.value, Value::Scalar(Scalar11::Merge)))
    {
        return Ok(entries);
    }
    let mut sources: Vec<Vec<(Item, Item)>> = Vec::new();
    let mut explicit = Vec::new();
    for (key, value) in entries {
        if !matches!(key.value, Value::Scalar(Scalar11::Merge)) {
            explicit.push((key, value));
            continue;
        }
        match value.value {
            Value::Map(map) => sources.push(map),
            Value::Seq(items) => {
                for item in items {
                    match item.value {
                        Value::Map(map) => sources.push(map),
                        other => bail!(
                            "merge key <<: expected a map, found {} (line {})",
                            other.describe(),
                            item.line
                        ),
                    }
                }
            }
            other => bail!(
                "merge key <<: expected a map or a list of maps, found {} (line {})",
                other.describe(),
                key.line
            ),
        }
    }
    // Later entries win when the node is built, so lowest priority goes first.
    let mut merged: Vec<(Item, Item)> = sources.into_iter().rev().flatten().collect();
    merged.extend(explicit);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(text: &str) -> String {
        resolve(text).unwrap().java_string()
    }

    fn one(text: &str) -> Node {
        let mut nodes = parse("n.yaml", text).unwrap();
        assert_eq!(nodes.len(), 1, "{nodes:?}");
        nodes.remove(0)
    }

    #[test]
    fn snakeyaml_scalar_typing() {
        let cases = [
            ("true", "true"),
            ("True", "true"),
            ("yes", "true"),
            ("ON", "true"),
            ("no", "false"),
            ("Off", "false"),
            ("y", "y"),
            ("22", "22"),
            ("+22", "22"),
            ("-0", "0"),
            ("0755", "493"),
            ("0o17", "0o17"),
            ("0x1F", "31"),
            ("-0x1F", "-31"),
            ("0b101", "5"),
            ("1_000", "1000"),
            ("1:30", "90"),
            ("-1:30", "-90"),
            ("08", "08"),
            ("10.10", "10.1"),
            ("1.0", "1.0"),
            ("1e3", "1000.0"),
            (".5", "0.5"),
            ("1:30.5", "90.5"),
            (".inf", "Infinity"),
            ("-.Inf", "-Infinity"),
            (".NaN", "NaN"),
            ("1.2.3", "1.2.3"),
            ("2024-01-31", "2024-01-31"),
            (
                "123456789012345678901234567890",
                "123456789012345678901234567890",
            ),
            (
                "0x123456789abcdef0123456789",
                "90144042682896311822508713865",
            ),
            ("web", "web"),
        ];
        for (text, expected) in cases {
            assert_eq!(scalar(text), expected, "{text}");
        }
        for null in ["", "~", "null", "Null", "NULL"] {
            assert!(matches!(resolve(null).unwrap(), Value::Null), "{null:?}");
        }
    }

    #[test]
    fn true_and_port_become_strings() {
        let node = one("web:\n  ssh-send-env: true\n  ssh-port: 22\n  legacy: yes\n  ratio: 1.50\n  quoted: 'yes'\n  dq: \"0755\"\n  octal: 0755\n  block: |\n    text\n");
        let attrs = &node.attributes;
        assert_eq!(attrs["ssh-send-env"], "true");
        assert_eq!(attrs["ssh-port"], "22");
        assert_eq!(attrs["legacy"], "true");
        assert_eq!(attrs["ratio"], "1.5");
        assert_eq!(attrs["quoted"], "yes");
        assert_eq!(attrs["dq"], "0755");
        assert_eq!(attrs["octal"], "493");
        assert_eq!(attrs["block"], "text\n");
    }

    #[test]
    fn tags_and_anchors() {
        let text = "base: &b\n  osFamily: unix\n  port: &p 0755\nweb:\n  <<: *b\n  port: *p\n  flag: !!str yes\n  tags: [a, ' b ', '', ~, 5]\n";
        let nodes = parse("n.yaml", text).unwrap();
        let web = &nodes[1];
        assert_eq!(web.name, "web");
        assert_eq!(web.attributes["osFamily"], "unix");
        assert_eq!(web.attributes["port"], "493");
        assert_eq!(web.attributes["flag"], "yes");
        assert_eq!(web.sorted_tags(), ["5", "a", "b"]);
    }

    #[test]
    fn merge_key_precedence() {
        let text = "a: &a {x: a1, y: a2}\nb: &b {x: b1, z: b3}\nn:\n  <<: [*a, *b]\n  y: own\n";
        let nodes = parse("n.yaml", text).unwrap();
        let n = &nodes[2].attributes;
        assert_eq!(
            (n["x"].as_str(), n["y"].as_str(), n["z"].as_str()),
            ("a1", "own", "b3")
        );
    }

    #[test]
    fn map_key_overwrites_nodename() {
        let node = one("web1:\n  nodename: other\n  hostname: h\n");
        assert_eq!(node.name, "web1");
        assert!(!node.attributes.contains_key("nodename"));
    }

    #[test]
    fn list_form_requires_nodename() {
        let nodes = parse("n.yaml", "- nodename: a\n  hostname: h\n- nodename: 12\n").unwrap();
        assert_eq!(
            (nodes[0].name.as_str(), nodes[1].name.as_str()),
            ("a", "12")
        );
        let err = parse("n.yaml", "- nodename: a\n- hostname: h\n")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "n.yaml: node at line 2: missing required \"nodename\"");
    }

    #[test]
    fn dropped_keys_and_nested_values() {
        let node = one("web:\n  name: x\n  class: c\n  attributes: a\n  frameworkProject: p\n  empty:\n  list: [1, two, {k: v}]\n  map: {a: 1, b: [x]}\n");
        let attrs = &node.attributes;
        for dropped in ["name", "class", "attributes", "frameworkProject", "empty"] {
            assert!(!attrs.contains_key(dropped), "{dropped}");
        }
        assert_eq!(attrs["list"], "[1, two, {k=v}]");
        assert_eq!(attrs["map"], "{a=1, b=[x]}");
    }

    #[test]
    fn tag_forms() {
        assert_eq!(one("n:\n  tags: a, b ,,c\n").sorted_tags(), ["a", "b", "c"]);
        assert_eq!(one("n:\n  tags: 42\n").sorted_tags(), ["42"]);
        assert_eq!(one("n:\n  tags: ' '\n").sorted_tags(), Vec::<&str>::new());
        assert!(one("n:\n  tags:\n").tags.is_empty());
    }

    #[test]
    fn documents_and_errors() {
        let nodes = parse("n.yaml", "---\na: {}\n---\n---\n- nodename: b\n...\n").unwrap();
        assert_eq!(nodes.len(), 2);
        let cases = [
            ("web1: just a string\n", "n.yaml: node \"web1\": expected a map of attributes, found a string (line 1)"),
            ("web1:\n", "n.yaml: node \"web1\": empty node entry (line 1)"),
            ("web1:\n  tags: {a: 1}\n", "n.yaml: node \"web1\": tags: expected a string or a list, found a map (line 2)"),
            ("web1:\n  tags: [[a]]\n", "n.yaml: node \"web1\": tags: expected a string or a list of strings, found a list containing a list (line 2)"),
            ("web1:\n  hostname: [a, b]\n", "n.yaml: node \"web1\": hostname: expected a string, found a list (line 2)"),
            ("- a\n", "n.yaml: node #1: expected a map of attributes, found a string (line 1)"),
            ("just text\n", "n.yaml: document 1: expected a map of node names or a list of nodes, found a string (line 1)"),
            ("web1:\n  port: !custom 22\n", "n.yaml: unsupported YAML tag !custom (line 2)"),
            ("web1:\n  port: !!int abc\n", "n.yaml: cannot read \"abc\" as !!int (line 2)"),
            ("a: 1\na: 2\n", "n.yaml: invalid YAML at line 2, column 1: duplicated key in mapping"),
            ("a: [\n", "n.yaml: invalid YAML"),
        ];
        for (text, expected) in cases {
            let err = parse("n.yaml", text).unwrap_err().to_string();
            assert!(
                err.starts_with(expected),
                "{text:?}\n got: {err}\nwant: {expected}"
            );
        }
    }

    #[test]
    fn crlf_line_endings() {
        let node = one("web:\r\n  port: 0755\r\n  flag: yes\r\n  tags: a, b\r\n  name2: 'q'\r\n");
        assert_eq!(node.attributes["port"], "493");
        assert_eq!(node.attributes["flag"], "true");
        assert_eq!(node.attributes["name2"], "q");
        assert_eq!(node.sorted_tags(), ["a", "b"]);
    }

    #[test]
    fn non_ascii_text_keeps_positions() {
        let node = one("é:\n  description: ünï 0755\n  v: 0755\n");
        assert_eq!(node.name, "é");
        assert_eq!(node.attributes["description"], "ünï 0755");
        assert_eq!(node.attributes["v"], "493");
    }
}
