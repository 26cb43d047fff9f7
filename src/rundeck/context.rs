//! Where the notes about one job are collected while it is built.
//!
//! Building a job never stops at a field it does not know: the field's path
//! goes to `unknown` so that a converter can refuse or report it, and a
//! reading that would surprise the job's author (a quoted `'false'` that
//! Rundeck takes as true, a key Rundeck ignores) goes to `warnings`. Both
//! lists end up on [`crate::rundeck::Job`].

use crate::rundeck::value::{Node, Value};

pub(crate) struct Ctx {
    pub unknown: Vec<String>,
    pub warnings: Vec<String>,
}

impl Ctx {
    pub fn new(unknown: Vec<String>) -> Self {
        Ctx {
            unknown,
            warnings: Vec::new(),
        }
    }

    pub fn warn(&mut self, msg: impl Into<String>) {
        self.warnings.push(msg.into());
    }

    /// Records every key of `node` not in `known` as `path.key`.
    pub fn unknown_keys(&mut self, node: &Node, path: &str, known: &[&str]) {
        if let Some(m) = node.map() {
            for (k, _) in m {
                if !known.contains(&k.as_str()) {
                    self.unknown.push(format!("{path}.{k}"));
                }
            }
        }
    }

    /// Groovy's cast of a value to a `Boolean` field (its truth), with a
    /// warning when a string other than `true` is read as true.
    pub fn groovy_bool(&mut self, node: &Node, path: &str) -> bool {
        let b = node.cast_bool();
        if let Value::Str(s) = &node.v {
            if b && !s.eq_ignore_ascii_case("true") {
                self.warn(format!(
                    "{path}: the string {s:?} is read as true by Rundeck (any non-empty string is)"
                ));
            }
        }
        b
    }

    /// Groovy `value in ['true', true]`, with a warning when a string that
    /// looks true (`'True'`, `'yes'`) is read as false.
    pub fn true_literal(&mut self, node: &Node, path: &str) -> bool {
        let b = node.is_true_literal();
        if !b {
            let looks_true = match &node.v {
                Value::Str(s) => {
                    matches!(s.to_ascii_lowercase().as_str(), "true" | "yes" | "on" | "1")
                }
                Value::Int(1) => true,
                _ => false,
            };
            if looks_true {
                self.warn(format!(
                    "{path}: {} is read as false by Rundeck (only true or 'true' count)",
                    node.to_jstring().unwrap_or_default()
                ));
            }
        }
        b
    }
}
