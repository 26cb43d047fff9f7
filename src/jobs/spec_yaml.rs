//! A job spec written in YAML: the same fields as JSON, for specs people write.
//!
//! The YAML is read as YAML 1.2's core schema reads it (`yes` is a string,
//! `true` a boolean) from the parser's events, straight into the JSON value the
//! spec parser takes, so one set of rules validates both. What JSON cannot say
//! is refused rather than guessed: anchors and aliases (a way to make a small
//! file very large), non-string keys, tags, duplicate keys, several documents.
//! A Rundeck job file is a YAML *list*; a spec is a *mapping*: [`is_spec`] tells
//! them apart.

use anyhow::{anyhow, bail, Result};
use saphyr_parser::{Event, Parser, ScalarStyle};
use serde_json::{Map, Value};

/// Most values in one spec (a job of 10,000 steps stays well under it).
const MAX_NODES: usize = 1_000_000;

/// Whether `text` is YAML whose document is a mapping (a spec), not a list
/// (Rundeck's jobs) or XML.
pub fn is_spec(text: &str) -> bool {
    Parser::new_from_str(text)
        .map_while(Result::ok)
        .map(|(event, _)| event)
        .find(|e| !matches!(e, Event::StreamStart | Event::DocumentStart(_)))
        .is_some_and(|e| matches!(e, Event::MappingStart(..)))
}

enum Open {
    List(Vec<Value>),
    /// The map so far, and the key waiting for its value.
    Map(Map<String, Value>, Option<String>),
}

/// The JSON value of a YAML spec.
pub fn to_json(text: &str) -> Result<Value> {
    let mut stack: Vec<Open> = Vec::new();
    let mut done: Option<Value> = None;
    let mut nodes = 0usize;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| anyhow!("invalid YAML: {e}"))?;
        let line = span.start.line();
        let value = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => continue,
            Event::DocumentStart(_) if done.is_some() => {
                bail!("line {line}: a job spec is one YAML document")
            }
            Event::DocumentStart(_) => continue,
            Event::Alias(_) => {
                bail!("line {line}: anchors and aliases are not allowed in a job spec")
            }
            Event::Scalar(_, _, anchor, _)
            | Event::SequenceStart(anchor, _)
            | Event::MappingStart(anchor, _)
                if anchor != 0 =>
            {
                bail!("line {line}: anchors and aliases are not allowed in a job spec")
            }
            Event::Scalar(_, _, _, Some(_))
            | Event::SequenceStart(_, Some(_))
            | Event::MappingStart(_, Some(_)) => {
                bail!("line {line}: YAML tags are not allowed in a job spec")
            }
            Event::SequenceStart(..) => {
                stack.push(Open::List(Vec::new()));
                continue;
            }
            Event::MappingStart(..) => {
                stack.push(Open::Map(Map::new(), None));
                continue;
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Open::List(items)) => Value::Array(items),
                _ => bail!("line {line}: unbalanced YAML"),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Open::Map(map, None)) => Value::Object(map),
                _ => bail!("line {line}: unbalanced YAML"),
            },
            Event::Scalar(text, style, _, None) => scalar(&text, style),
        };
        nodes += 1;
        if nodes > MAX_NODES {
            bail!("line {line}: more than {MAX_NODES} values: too big for a job spec");
        }
        match stack.last_mut() {
            None => done = Some(value),
            Some(Open::List(items)) => items.push(value),
            Some(Open::Map(map, key @ None)) => match value {
                Value::String(k) if map.contains_key(&k) => {
                    bail!("line {line}: the key {k:?} is given twice")
                }
                Value::String(k) => *key = Some(k),
                other => bail!("line {line}: a key must be a string, not {other}"),
            },
            Some(Open::Map(map, key)) => {
                map.insert(key.take().expect("a key"), value);
            }
        }
    }
    done.ok_or_else(|| anyhow!("the file holds no YAML document"))
}

/// A scalar as YAML 1.2's core schema types it; quoted and block scalars are
/// strings.
fn scalar(text: &str, style: ScalarStyle) -> Value {
    if style != ScalarStyle::Plain {
        return Value::String(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    let integer = text
        .strip_prefix(['-', '+'])
        .unwrap_or(text)
        .bytes()
        .all(|b| b.is_ascii_digit());
    if integer {
        if let Ok(n) = text.parse::<i64>() {
            return Value::from(n);
        }
    }
    let float = text.contains(['.', 'e', 'E'])
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    match text.parse::<f64>().ok().filter(|_| float) {
        Some(f) => {
            serde_json::Number::from_f64(f).map_or(Value::String(text.into()), Value::Number)
        }
        None => Value::String(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_yaml_spec_is_the_json_it_says() {
        let yaml = "id: nightly\ntimeout: 30m\nkeepgoing: true\noptions:\n  n: '5'\nsteps:\n  - name: hello\n    shell: |\n      echo hi\n  - exec: [echo, 'yes', no]\n";
        assert!(is_spec(yaml));
        assert_eq!(
            to_json(yaml).unwrap(),
            serde_json::json!({"id": "nightly", "timeout": "30m", "keepgoing": true,
                "options": {"n": "5"},
                "steps": [{"name": "hello", "shell": "echo hi\n"},
                          {"exec": ["echo", "yes", "no"]}]})
        );
        assert!(!is_spec("- name: a rundeck job\n"));
        assert!(!is_spec("<joblist/>"));
    }

    #[test]
    fn what_json_cannot_say_is_refused() {
        for (yaml, why) in [
            ("a: &x 1\nb: *x\n", "anchors"),
            ("a: 1\na: 2\n", "twice"),
            ("? [1]\n: 2\n", "key must be a string"),
            ("a: !!str 1\n", "tags"),
            ("a: 1\n---\nb: 2\n", "one YAML document"),
            ("a: [1\n", "invalid YAML"),
        ] {
            let e = to_json(yaml).unwrap_err().to_string();
            assert!(e.contains(why), "{yaml:?}: {e}");
        }
    }
}
