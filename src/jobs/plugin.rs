//! Plugin steps: a team's own step kinds, as executables beside sortie, with
//! no rebuild (sortie-plugins(7) is the contract).
//!
//! A step `{"plugin": "NAME", "config": {…}}` runs the executable `NAME` from
//! the first plugin directory that has it, on the runner, confined like any
//! step. Beside it, `NAME.json` is its manifest: its name, version and the
//! JSON Schema its configuration must meet, checked after the configuration's
//! references are expanded and before anything runs, so a typo in a job is an
//! error naming the field, not a plugin guessing. The plugin reads one JSON
//! document on stdin (the configuration, the job's plain options, the node,
//! and the values of only those secrets the configuration names) and writes
//! its output as any step does, its result data to `$SORTIE_OUTPUT`.
//!
//! Whoever can change a plugin runs code as the runner: a plugin directory,
//! executable or manifest that another user could write is refused.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// Where plugins are looked for when `--plugin-dir` names none.
pub const SYSTEM_DIR: &str = "/usr/lib/sortie/plugins";

/// The version of the document a plugin reads (`sortie_plugin` in it).
pub const CONTRACT: u32 = 1;

/// The largest manifest read.
const MAX_MANIFEST: u64 = 1 << 20;

/// A plugin found and its manifest checked.
#[derive(Debug)]
pub struct Plugin {
    pub program: PathBuf,
    pub manifest: Manifest,
}

/// `NAME.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    /// For people; sortie does not read it.
    #[serde(default, rename = "description")]
    _description: Option<String>,
    /// A JSON Schema for the step's `config` (the keywords [`check`] knows).
    #[serde(default)]
    pub config: Option<Value>,
}

/// Whether `name` can name a plugin: a file name, never a path.
pub fn valid_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// The plugin `name` from the first of `dirs` that has it.
pub fn find(dirs: &[PathBuf], name: &str) -> Result<Plugin, String> {
    if !valid_name(name) {
        return Err(format!("{name:?} is not a plugin name"));
    }
    let Some(dir) = dirs.iter().find(|d| d.join(name).exists()) else {
        let looked: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        return Err(format!(
            "no plugin {name:?} in {}",
            if looked.is_empty() {
                "any plugin directory".to_string()
            } else {
                looked.join(", ")
            }
        ));
    };
    let program = dir.join(name);
    let manifest_path = dir.join(format!("{name}.json"));
    trusted(dir).map_err(|why| format!("plugin {name:?}: its directory {why}"))?;
    // What runs is the checked file itself, not a link that could change.
    let program =
        trusted(&program).map_err(|why| format!("plugin {name:?}: its executable {why}"))?;
    let meta = std::fs::metadata(&program).map_err(|e| format!("plugin {name:?}: {e}"))?;
    if !meta.is_file() || meta.mode() & 0o111 == 0 {
        return Err(format!(
            "plugin {name:?}: {} is not an executable file",
            program.display()
        ));
    }
    trusted(&manifest_path).map_err(|why| format!("plugin {name:?}: its manifest {why}"))?;
    let text = crate::state::files::read_regular(&manifest_path, MAX_MANIFEST).map_err(|e| {
        format!(
            "plugin {name:?}: its manifest {}: {e}",
            manifest_path.display()
        )
    })?;
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| {
        format!(
            "plugin {name:?}: its manifest {}: {e}",
            manifest_path.display()
        )
    })?;
    if manifest.name != name {
        return Err(format!(
            "plugin {name:?}: its manifest names {:?}",
            manifest.name
        ));
    }
    if manifest.version.trim().is_empty() {
        return Err(format!("plugin {name:?}: its manifest has no version"));
    }
    if let Some(schema) = &manifest.config {
        known_keywords(schema, "config")
            .map_err(|why| format!("plugin {name:?}: its manifest's {why}"))?;
    }
    Ok(Plugin { program, manifest })
}

/// A path only root or the runner's own user can change, and the real
/// file it names (its links followed): that file and every directory from
/// it up to `/` belong to root or to the runner's user, and none is writable
/// by group or others (a directory with the sticky bit may be: no one else
/// can rename or replace what is in it). Checked whole, nothing on the way
/// can be swapped between the check and the run.
fn trusted(path: &Path) -> Result<PathBuf, String> {
    let me = crate::os::uid();
    let real = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut at = Some(real.as_path());
    while let Some(p) = at {
        let meta = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if meta.uid() != 0 && meta.uid() != me {
            return Err(format!(
                "{} belongs to another user (uid {})",
                p.display(),
                meta.uid()
            ));
        }
        let sticky_dir = meta.is_dir() && meta.mode() & 0o1000 != 0;
        if meta.mode() & 0o022 != 0 && !sticky_dir {
            return Err(format!("{} is writable by other users", p.display()));
        }
        at = p.parent();
    }
    Ok(real)
}

const KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "description",
    "title",
    "default",
    "examples",
    "$schema",
    "$comment",
];

/// A schema uses only the keywords [`check`] enforces (or annotations): a
/// rule sortie would not check is refused rather than silently ignored.
fn known_keywords(schema: &Value, at: &str) -> Result<(), String> {
    let Value::Object(map) = schema else {
        return match schema {
            Value::Bool(_) => Ok(()),
            _ => Err(format!("{at} is not a schema (an object)")),
        };
    };
    if let Some(bad) = map.keys().find(|k| !KEYWORDS.contains(&k.as_str())) {
        return Err(format!(
            "{at}: the keyword {bad:?} is not one sortie checks"
        ));
    }
    // Each keyword's value of the type it must have: a rule of the wrong
    // type would otherwise check nothing.
    const TYPES: &[&str] = &[
        "string", "number", "integer", "boolean", "object", "array", "null",
    ];
    let known_type = |v: &Value| v.as_str().is_some_and(|t| TYPES.contains(&t));
    for (key, value) in map {
        let ok = match key.as_str() {
            "type" => match value {
                Value::Array(list) => !list.is_empty() && list.iter().all(known_type),
                v => known_type(v),
            },
            "properties" => value.is_object(),
            "required" => value
                .as_array()
                .is_some_and(|l| l.iter().all(Value::is_string)),
            "additionalProperties" | "items" => value.is_object() || value.is_boolean(),
            "enum" => value.is_array(),
            "minimum" | "maximum" => value.is_number(),
            "minLength" | "maxLength" => value.is_u64(),
            "pattern" => value.is_string(),
            _ => true,
        };
        if !ok {
            return Err(format!("{at}.{key}: not a value this keyword takes"));
        }
    }
    if let Some(Value::Object(props)) = map.get("properties") {
        for (k, v) in props {
            known_keywords(v, &format!("{at}.{k}"))?;
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(v) = map.get(key) {
            known_keywords(v, &format!("{at}.{key}"))?;
        }
    }
    if let Some(Value::String(p)) = map.get("pattern") {
        regex_lite::Regex::new(p).map_err(|e| format!("{at}.pattern: {e}"))?;
    }
    Ok(())
}

/// Every way `value` does not meet `schema`, each naming where, never the
/// value (it may hold a secret).
pub fn check(schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    let Value::Object(rules) = schema else {
        if schema == &Value::Bool(false) {
            problems.push(format!("{at}: not allowed"));
        }
        return;
    };
    if let Some(want) = rules.get("type") {
        let types: Vec<&str> = match want {
            Value::String(t) => vec![t.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !types.iter().any(|t| is_type(value, t)) {
            problems.push(format!("{at}: must be {}", types.join(" or ")));
            return;
        }
    }
    if let Some(Value::Array(allowed)) = rules.get("enum") {
        if !allowed.contains(value) {
            problems.push(format!("{at}: not one of the allowed values"));
        }
    }
    if let Some(n) = value.as_f64() {
        if rules
            .get("minimum")
            .and_then(Value::as_f64)
            .is_some_and(|m| n < m)
        {
            problems.push(format!("{at}: below its minimum"));
        }
        if rules
            .get("maximum")
            .and_then(Value::as_f64)
            .is_some_and(|m| n > m)
        {
            problems.push(format!("{at}: above its maximum"));
        }
    }
    if let Value::String(s) = value {
        let len = s.chars().count() as u64;
        if rules
            .get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| len < m)
        {
            problems.push(format!(
                "{at}: shorter than {} characters",
                rules["minLength"]
            ));
        }
        if rules
            .get("maxLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| len > m)
        {
            problems.push(format!(
                "{at}: longer than {} characters",
                rules["maxLength"]
            ));
        }
        if let Some(Value::String(p)) = rules.get("pattern") {
            if regex_lite::Regex::new(p).is_ok_and(|re| !re.is_match(s)) {
                problems.push(format!("{at}: does not match {p:?}"));
            }
        }
    }
    if let Value::Array(items) = value {
        if let Some(item) = rules.get("items") {
            for (i, v) in items.iter().enumerate() {
                check(item, v, &format!("{at}[{i}]"), problems);
            }
        }
    }
    if let Value::Object(map) = value {
        if let Some(Value::Array(required)) = rules.get("required") {
            for key in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(key) {
                    problems.push(format!("{at}.{key}: required"));
                }
            }
        }
        let props = rules.get("properties").and_then(Value::as_object);
        for (k, v) in map {
            match props.and_then(|p| p.get(k)) {
                Some(schema) => check(schema, v, &format!("{at}.{k}"), problems),
                None => match rules.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        problems.push(format!("{at}.{k}: not a field of this plugin"))
                    }
                    Some(schema) => check(schema, v, &format!("{at}.{k}"), problems),
                    None => {}
                },
            }
        }
    }
}

fn is_type(value: &Value, name: &str) -> bool {
    match name {
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.as_f64().is_some_and(|n| n.fract() == 0.0),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "null" => value.is_null(),
        _ => false,
    }
}

/// The names of the secrets `config`'s strings refer to (`${secret.NAME}`).
pub fn secrets_named(config: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut walk = vec![config];
    while let Some(v) = walk.pop() {
        match v {
            Value::String(s) => {
                for prefix in ["${secret.", "${secrets."] {
                    let mut rest = s.as_str();
                    while let Some(at) = rest.find(prefix) {
                        rest = &rest[at + prefix.len()..];
                        if let Some(end) = rest.find('}') {
                            out.push(rest[..end].to_string());
                        }
                    }
                }
            }
            Value::Array(items) => walk.extend(items),
            Value::Object(map) => walk.extend(map.values()),
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `config` with every string expanded by `expand` (keys stay as written).
pub fn expand_config(
    config: &Value,
    expand: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Value, String> {
    Ok(match config {
        Value::String(s) => Value::String(expand(s)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| expand_config(v, expand))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), expand_config(v, expand)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// The longest value put in a plugin's environment (Linux refuses a
/// variable over 128 KiB); a longer one is in the document only.
const MAX_ENV_VALUE: usize = 32 << 10;

/// Each top-level scalar of `config` as `SORTIE_CONFIG_<NAME>` and, as
/// Rundeck's script plugins read them, `RD_CONFIG_<NAME>`: a shell plugin
/// needs no JSON parser for a flat configuration.
pub fn config_env(config: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in config.as_object().into_iter().flatten() {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => continue,
        };
        if text.len() > MAX_ENV_VALUE {
            continue;
        }
        let name = crate::jobs::expand::env_name(k);
        out.push((format!("SORTIE_CONFIG_{name}"), text.clone()));
        out.push((format!("RD_CONFIG_{name}"), text));
    }
    out
}

/// What the plugin reads on stdin.
pub struct Document<'d> {
    pub plugin: &'d Plugin,
    pub config: Value,
    pub options: BTreeMap<String, String>,
    pub node: &'d BTreeMap<String, String>,
    pub job: &'d BTreeMap<String, String>,
    pub data: &'d BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
    pub step: usize,
}

impl Document<'_> {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::json!({
            "sortie_plugin": CONTRACT,
            "plugin": {"name": self.plugin.manifest.name, "version": self.plugin.manifest.version},
            "step": self.step,
            "config": self.config,
            "options": self.options,
            "node": self.node,
            "job": self.job,
            "data": self.data,
            "secrets": self.secrets,
        })
        .to_string()
        .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(schema: Value, value: Value) -> Vec<String> {
        let mut out = Vec::new();
        check(&schema, &value, "config", &mut out);
        out
    }

    #[test]
    fn a_configuration_is_checked_against_the_manifest_s_schema() {
        let schema = json!({
            "type": "object", "required": ["url"], "additionalProperties": false,
            "properties": {
                "url": {"type": "string", "pattern": "^https://"},
                "count": {"type": "integer", "minimum": 1, "maximum": 5},
                "mode": {"enum": ["fast", "safe"]},
                "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}},
            }
        });
        assert!(problems(schema.clone(), json!({"url": "https://x", "count": 2})).is_empty());
        let found = problems(
            schema,
            json!({"count": 9, "mode": "slow", "tags": ["long!"], "colour": "red",
                   "url": "http://secret-value"}),
        );
        assert_eq!(
            found,
            [
                "config.colour: not a field of this plugin",
                "config.count: above its maximum",
                "config.mode: not one of the allowed values",
                "config.tags[0]: longer than 3 characters",
                "config.url: does not match \"^https://\"",
            ]
        );
        assert!(found.iter().all(|p| !p.contains("secret-value")));
        assert_eq!(
            problems(json!({"type": "object"}), json!("text")),
            ["config: must be object"]
        );
    }

    #[test]
    fn a_manifest_may_use_only_keywords_sortie_checks() {
        assert!(known_keywords(
            &json!({"type": "object", "properties": {"a": {"format": "uri"}}}),
            "config"
        )
        .unwrap_err()
        .contains("\"format\""));
        assert!(known_keywords(&json!({"pattern": "("}), "config").is_err());
        // A rule of the wrong type is refused, not ignored.
        for bad in [
            json!({"required": "must"}),
            json!({"properties": {"n": {"maximum": "5"}}}),
            json!({"type": "strnig"}),
            json!({"minLength": -1}),
        ] {
            assert!(known_keywords(&bad, "config").is_err(), "{bad}");
        }
        known_keywords(
            &json!({"type": "object", "description": "x", "properties": {"a": true}}),
            "config",
        )
        .unwrap();
    }

    #[test]
    fn the_secrets_a_configuration_names_are_found_anywhere_in_it() {
        let config =
            json!({"a": "${secret.one} and ${secrets.two}", "b": [{"c": "${secret.one}"}], "d": 1});
        assert_eq!(secrets_named(&config), ["one", "two"]);
    }

    #[test]
    fn a_plugin_name_is_a_file_name() {
        for bad in ["", "../x", "a/b", ".hidden", "-x", "a b"] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(valid_name("notify-slack_2.1"));
    }
}
