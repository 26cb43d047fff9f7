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
    report(spec, false)
}

/// Everything the schema says is wrong with `spec`: unknown fields, and values
/// of the wrong type, required fields missing, a step with no kind or two, too
/// few items, a value outside its `enum` (the subset of JSON Schema the job
/// spec schema uses). A control plane checks what an admin enqueues with it.
pub fn problems(spec: &Value) -> Vec<String> {
    report(spec, true)
}

fn report(spec: &Value, strict: bool) -> Vec<String> {
    let mut found = Vec::new();
    walk(spec, schema(), "", strict, &mut found);
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

/// The JSON type names `value` has (an integer is a number too).
fn is_type(value: &Value, name: &str) -> bool {
    match name {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "null" => value.is_null(),
        _ => true,
    }
}

/// What is wrong with `value` itself under `node` (not its fields or items).
fn check(value: &Value, node: &Value, path: &str, found: &mut Vec<String>) {
    let at = if path.is_empty() { "the spec" } else { path };
    let types: Vec<&str> = match node.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() && !types.iter().any(|t| is_type(value, t)) {
        found.push(format!("{at}: must be {}", types.join(" or ")));
        return;
    }
    if let Some(allowed) = node.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            found.push(format!(
                "{at}: must be one of {}",
                Value::from(allowed.clone())
            ));
        }
    }
    if let Some(fixed) = node.get("const").filter(|c| *c != value) {
        found.push(format!("{at}: must be {fixed}"));
    }
    if let Some(n) = value.as_f64() {
        let bound = |key| node.get(key).and_then(Value::as_f64);
        if bound("minimum").is_some_and(|min| n < min)
            || bound("maximum").is_some_and(|max| n > max)
        {
            found.push(format!(
                "{at}: must be from {} to {}",
                node["minimum"], node["maximum"]
            ));
        }
    }
    if let Some(forms) = node.get("anyOf").and_then(Value::as_array) {
        let fits = forms.iter().any(|form| {
            let mut wrong = Vec::new();
            check(value, resolve(form), path, &mut wrong);
            wrong.is_empty()
        });
        if !fits {
            found.push(format!("{at}: {value} is none of the forms allowed here"));
        }
    }
    if let (Some(map), Some(required)) = (value.as_object(), node.get("required")) {
        for name in required
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !map.contains_key(name) {
                found.push(format!("{at}: {name} is required"));
            }
        }
    }
    if let (Some(map), Some(choices)) = (value.as_object(), node.get("oneOf")) {
        // oneOf here is always "exactly one of these fields".
        let names: Vec<&str> = choices
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["required"][0].as_str())
            .collect();
        let given = names.iter().filter(|n| map.contains_key(**n)).count();
        if given != 1 {
            found.push(format!("{at}: needs exactly one of {}", names.join(", ")));
        }
    }
    if let Some(items) = value.as_array() {
        let bound = |key| node.get(key).and_then(Value::as_u64);
        if bound("minItems").is_some_and(|min| (items.len() as u64) < min) {
            found.push(format!(
                "{at}: needs at least {} item(s)",
                bound("minItems").unwrap_or(0)
            ));
        }
        if bound("maxItems").is_some_and(|max| items.len() as u64 > max) {
            found.push(format!(
                "{at}: at most {} items",
                bound("maxItems").unwrap_or(0)
            ));
        }
    }
}

fn walk(value: &Value, node: &Value, path: &str, strict: bool, found: &mut Vec<String>) {
    let node = resolve(node);
    if strict {
        check(value, node, path, found);
    }
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
                        Some(schema) => walk(inner, schema, &here, strict, found),
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
                    walk(inner, values, &format!("{path}.{key}"), strict, found);
                }
            }
        }
        Value::Array(items) => {
            if let Some(schema) = node.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(item, schema, &format!("{path}[{i}]"), strict, found);
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
    fn wrong_types_missing_fields_and_stepless_steps_are_problems() {
        let spec = serde_json::json!({
            "id": "x", "options": {"a": 1}, "keepgoing": "yes",
            "steps": [{}, {"shell": "true", "exec": ["true"]}, {"shell": 3}]});
        assert_eq!(
            problems(&spec),
            vec![
                "keepgoing: must be boolean",
                "options.a: must be string",
                "steps[0]: needs exactly one of exec, shell, script, scriptfile, scripturl, data, log_data, flow, fail, http, copy, plugin, ansible",
                "steps[1]: needs exactly one of exec, shell, script, scriptfile, scripturl, data, log_data, flow, fail, http, copy, plugin, ansible",
                "steps[2].shell: must be string",
            ]
        );
        assert_eq!(
            problems(&serde_json::json!({"id": "x", "steps": "x"})),
            vec!["steps: must be array"]
        );
        assert_eq!(
            problems(&serde_json::json!({"id": "x"})),
            vec!["the spec: steps is required"]
        );
        assert!(unknown(&spec).is_empty(), "unknown() reports fields only");
    }

    /// The statuses an http step expects: numbers from 100 to 599 or
    /// classes, as the runner reads them.
    #[test]
    fn an_http_step_s_expected_statuses_are_checked_as_the_runner_checks_them() {
        let spec = |expect: Value| serde_json::json!({"id": "x", "steps": [{"http": {"url": "https://h/", "expect": expect}}]});
        assert!(problems(&spec(serde_json::json!([204, "3xx"]))).is_empty());
        for bad in [
            serde_json::json!([99]),
            serde_json::json!([600]),
            serde_json::json!(["3XX"]),
            serde_json::json!(["39x"]),
            serde_json::json!(["6xx"]),
        ] {
            assert_eq!(
                problems(&spec(bad.clone())),
                vec![format!(
                    "steps[0].http.expect[0]: {} is none of the forms allowed here",
                    bad[0]
                )]
            );
        }
    }

    #[test]
    fn the_fixtures_and_every_field_of_the_schema_are_known() {
        for name in ["hello.json", "multi-step.json", "failing.json"] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../fixtures")
                .join(name);
            let spec: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            assert!(problems(&spec).is_empty(), "{name}: {:?}", problems(&spec));
        }
    }
}
