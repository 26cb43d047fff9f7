//! The `resourcejson` format, as Rundeck's `ResourceJsonFormatParser` reads it.
//!
//! Why it is shaped so: the Java parser is lenient in specific ways that inventories rely on,
//! and strict in none, so this keeps its rules rather than validating:
//! - the top level is a map `name → attributes` or a list of attribute maps;
//! - in the map form, entries whose value is not a map are skipped, and a `nodename` attribute
//!   (when it is a scalar) *overrides* the map key (`putAll` writes over the name);
//! - in the list form, entries that are not maps or have no `nodename` key are skipped;
//! - scalar values become strings the way Java prints them (`22`, `true`, `1.0`); `null`
//!   values, nested maps and lists are dropped, except `tags`;
//! - a non-blank `tags` string is split on `, *` (a comma and any spaces after it) with no
//!   other trimming, so `"a ,b"` gives the tags `a ` and `b`; otherwise a `tags` list gives its
//!   non-null items as strings, untrimmed.
//!
//! Deliberate difference: a list entry whose `nodename` is `null` (a `NullPointerException` in
//! Rundeck) or is a map or list is an error naming the entry.

use std::sync::OnceLock;

use anyhow::{bail, Result};
use regex_lite::Regex;
use serde_json::{Map, Value};

use super::describe_json;
use crate::nodes::java;
use crate::nodes::node::{attr, Node};

/// The nodes in definition order. `prefix` starts every error message (`"file.json: "`).
pub(super) fn nodes(prefix: &str, value: &Value) -> Result<Vec<Node>> {
    let mut nodes = Vec::new();
    match value {
        Value::Object(map) => {
            for (key, entry) in map {
                if let Value::Object(attrs) = entry {
                    nodes.push(node(key, attrs));
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let Value::Object(attrs) = item else { continue };
                let Some(name) = attrs.get(attr::NODENAME) else {
                    continue;
                };
                let name = match name {
                    Value::Null => bail!("{prefix}node #{}: nodename is null", index + 1),
                    Value::Array(_) | Value::Object(_) => bail!(
                        "{prefix}node #{}: nodename: expected a string, found {}",
                        index + 1,
                        describe_json(name)
                    ),
                    scalar => java::json_to_string(scalar),
                };
                nodes.push(node(&name, attrs));
            }
        }
        other => bail!(
            "{prefix}expected a map of node names or a list of nodes, found {}",
            describe_json(other)
        ),
    }
    Ok(nodes)
}

fn node(name: &str, attrs: &Map<String, Value>) -> Node {
    let scalars: Vec<(&String, String)> = attrs
        .iter()
        .filter(|(_, v)| !matches!(v, Value::Null | Value::Array(_) | Value::Object(_)))
        .map(|(k, v)| (k, java::json_to_string(v)))
        .collect();
    let name = scalars
        .iter()
        .find(|(k, _)| k.as_str() == attr::NODENAME)
        .map_or(name, |(_, v)| v.as_str());
    let mut node = Node::new(name);
    let mut tags_string = None;
    for (key, value) in &scalars {
        match key.as_str() {
            attr::NODENAME => {}
            attr::TAGS => tags_string = Some(value.as_str()),
            _ => {
                node.attributes.insert((*key).clone(), value.clone());
            }
        }
    }
    match (tags_string, attrs.get(attr::TAGS)) {
        (Some(tags), _) if !java::trim(tags).is_empty() => {
            static COMMA: OnceLock<Regex> = OnceLock::new();
            let comma = COMMA.get_or_init(|| Regex::new(", *").expect("valid regex"));
            node.tags = java::split_regex(tags, comma)
                .into_iter()
                .map(str::to_string)
                .collect();
        }
        (_, Some(Value::Array(items))) => {
            node.tags = items
                .iter()
                .filter(|v| !v.is_null())
                .map(java::json_to_string)
                .collect();
        }
        _ => {}
    }
    node
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Vec<Node> {
        nodes("t.json: ", &value).unwrap()
    }

    /// ResourceJsonFormatParserSpec "parse basic": the map key `use-nodename-attribute` is
    /// overridden by the `nodename` attribute; `null` attributes are dropped.
    #[test]
    fn nodename_attribute_overrides_map_key() {
        let nodes = parse(json!({
            "test1": {"tags": "aluminum, beans", "rank": "1", "doodad": "false"},
            "use-nodename-attribute": {"nodename": "test2", "rank": 2, "doodad": true, "meddlesome": null}
        }));
        assert_eq!(nodes[0].name, "test1");
        assert_eq!(nodes[1].name, "test2");
        assert_eq!(nodes[1].attributes["rank"], "2");
        assert_eq!(nodes[1].attributes["doodad"], "true");
        assert!(!nodes[1].attributes.contains_key("meddlesome"));
        assert!(!nodes[1].attributes.contains_key("nodename"));
        assert_eq!(nodes[0].sorted_tags(), ["aluminum", "beans"]);
    }

    #[test]
    fn tags_string_split_on_comma_spaces_only() {
        let nodes = parse(json!({"n": {"tags": "a, b,c ,  d,,e,"}}));
        let tags: Vec<&str> = nodes[0].tags.iter().map(String::as_str).collect();
        assert_eq!(tags, ["", "a", "b", "c ", "d", "e"]);
        let nodes = parse(json!({"n": {"tags": "   "}}));
        assert!(nodes[0].tags.is_empty());
    }

    #[test]
    fn tags_list_items_untrimmed_nulls_dropped() {
        let nodes = parse(json!({"n": {"tags": [" a", "b", null, 3, 1.5]}}));
        let tags: Vec<&str> = nodes[0].tags.iter().map(String::as_str).collect();
        assert_eq!(tags, [" a", "1.5", "3", "b"]);
    }

    #[test]
    fn list_entries_without_nodename_are_skipped() {
        let nodes = parse(json!([
            {"hostname": "orphan"},
            "not a map",
            {"nodename": "kept", "hostname": "h"},
            {"nodename": 42}
        ]));
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["kept", "42"]);
    }

    #[test]
    fn map_entries_that_are_not_maps_are_skipped() {
        let nodes = parse(json!({"a": "scalar", "b": [1], "c": {}}));
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].name, "c");
    }

    #[test]
    fn nested_values_dropped_scalars_stringified_as_java() {
        let nodes = parse(
            json!({"n": {"nested": {"a": 1}, "list": [1], "port": 22, "ratio": 1.0, "big": 1e21, "ok": false}}),
        );
        let attrs = &nodes[0].attributes;
        assert!(!attrs.contains_key("nested"));
        assert!(!attrs.contains_key("list"));
        assert_eq!(attrs["port"], "22");
        assert_eq!(attrs["ratio"], "1.0");
        assert_eq!(attrs["big"], "1.0E21");
        assert_eq!(attrs["ok"], "false");
    }

    #[test]
    fn errors_name_the_entry() {
        let err = nodes("t.json: ", &json!([{"nodename": null}]))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "t.json: node #1: nodename is null");
        let err = nodes("t.json: ", &json!([{}, {"nodename": {"a": 1}}]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "t.json: node #2: nodename: expected a string, found a map"
        );
        let err = nodes("t.json: ", &json!("x")).unwrap_err().to_string();
        assert_eq!(
            err,
            "t.json: expected a map of node names or a list of nodes, found a string"
        );
    }
}
