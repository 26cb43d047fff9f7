//! Job spec v1's JSON Schema, and the fields of a spec it does not have.
//!
//! A spec someone wrote (`sortie exec`, a spool file, a control plane's
//! enqueue) with `timout:` instead of `timeout:` would otherwise run without
//! its timeout. The field names come from the schema, so it is the one list:
//! each object's `properties`, following `$ref`, array `items` and
//! `additionalProperties`. A runner checks a spec in a claim the same way,
//! but only to log what it does not know (a newer control plane's optional
//! fields).

use std::sync::OnceLock;

use serde_json::Value;

/// JSON Schema (2020-12) of job spec v1: the fields a spec may have.
pub const JOB_SPEC_SCHEMA: &str = include_str!("../schema/job-spec-v1.json");

fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| serde_json::from_str(JOB_SPEC_SCHEMA).expect("the schema is JSON"))
}

/// `{"$ref": "#/$defs/x"}` resolved (one level; the schema has no chains).
fn resolve(node: &Value) -> &Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/$defs/")
            .and_then(|name| schema()["$defs"].get(name))
            .unwrap_or(node),
        None => node,
    }
}

/// Each field of `spec` the schema does not have, as `path: field "x" is not
/// a job spec field (did you mean "y"?)`.
pub fn unknown(spec: &Value) -> Vec<String> {
    let mut found = Vec::new();
    walk(spec, schema(), "", &mut found);
    // A few are enough to act on; a huge spec must not make a huge error.
    if found.len() > MAX_REPORTED {
        let more = found.len() - MAX_REPORTED;
        found.truncate(MAX_REPORTED);
        found.push(format!("and {more} more"));
    }
    found
}

/// Most unknown fields named in one answer.
const MAX_REPORTED: usize = 20;

fn walk(value: &Value, node: &Value, path: &str, found: &mut Vec<String>) {
    let node = resolve(node);
    match value {
        Value::Object(map) => {
            if let Some(properties) = node.get("properties").and_then(Value::as_object) {
                for (key, inner) in map {
                    let here = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    match properties.get(key) {
                        Some(schema) => walk(inner, schema, &here, found),
                        None => found.push(match closest(key, properties.keys()) {
                            Some(near) => {
                                format!("{here}: not a field here (did you mean {near:?}?)")
                            }
                            None => format!("{here}: not a field here"),
                        }),
                    }
                }
            } else if let Some(values) = node.get("additionalProperties").filter(|v| v.is_object())
            {
                for (key, inner) in map {
                    walk(inner, values, &format!("{path}.{key}"), found);
                }
            }
        }
        Value::Array(items) => {
            if let Some(schema) = node.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(item, schema, &format!("{path}[{i}]"), found);
                }
            }
        }
        _ => {}
    }
}

/// The known name nearest to `key`, if it is near enough to be a slip.
fn closest<'a>(key: &str, known: impl Iterator<Item = &'a String>) -> Option<&'a str> {
    known
        .map(|k| (strsim::damerau_levenshtein(key, k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4) && *d < k.len())
        .min()
        .map(|(_, k)| k.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misspelt_fields_are_found_with_what_was_meant() {
        let spec = serde_json::json!({
            "id": "x", "timout": "5m",
            "nodes": {"filter": "a"},
            "options": {"any.name": "options are free"},
            "steps": [{"shell": "true", "errorhandler": {"shel": "false"}},
                      {"exec": ["true"], "timeout": "1s", "colour": "red"}]});
        assert_eq!(
            unknown(&spec),
            vec![
                "steps[0].errorhandler.shel: not a field here (did you mean \"shell\"?)",
                "steps[1].colour: not a field here",
                "timout: not a field here (did you mean \"timeout\"?)",
            ]
        );
    }

    #[test]
    fn the_fixtures_and_every_field_of_the_schema_are_known() {
        for name in ["hello.json", "multi-step.json", "failing.json"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../fixtures")
                .join(name);
            let spec: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            assert!(unknown(&spec).is_empty(), "{name}: {:?}", unknown(&spec));
        }
    }
}
