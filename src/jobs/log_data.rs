//! A `log_data` step: what a job has gathered so far, written to its log
//! (Rundeck's log-data step), so an operator sees what later steps will read.
//!
//! Rundeck logs one JSON object per view of its data context, namespace →
//! key → value, titled `global` or `@NODE`; sortie writes the same objects,
//! one line each, after their title. Secure options and secrets are never
//! among them (their values would be masked, but a key the job never meant
//! to show has no business in a log), and a node's name is written escaped,
//! so no name can start a line of its own (a `SORTIE:DATA:` line, say).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::jobs::expand::Context;

/// The lines the step logs, each ending in a newline: the `global` view
/// (data of the runner and the job, options, job, globals), then one view
/// per node that has data of its own.
pub fn lines(ctx: &Context) -> Vec<String> {
    let mut global = Map::new();
    let mut nodes: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for (key, value) in &ctx.data {
        // A data key has no `@`: what follows the first is a node's name.
        match key.split_once('@') {
            Some((key, node)) => {
                nodes
                    .entry(node)
                    .or_default()
                    .insert(key.to_string(), value.clone().into());
            }
            // `k*` is every node's `k` joined: a reading of the views below.
            None if key.ends_with('*') => {}
            None => {
                global.insert(key.clone(), value.clone().into());
            }
        }
    }
    let options: Map<String, Value> = ctx
        .options
        .iter()
        .filter(|(name, _)| !ctx.secure.contains(*name))
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect();
    let mut view = Map::new();
    for (namespace, values) in [
        ("data", global),
        ("globals", to_map(&ctx.globals)),
        ("job", to_map(&ctx.job)),
        ("option", options),
    ] {
        if !values.is_empty() {
            view.insert(namespace.into(), Value::Object(values));
        }
    }
    let mut out = vec![format!("global {}\n", Value::Object(view))];
    for (node, data) in nodes {
        let view = serde_json::json!({ "data": data });
        out.push(format!("@{} {view}\n", node.escape_debug()));
    }
    out
}

fn to_map(values: &BTreeMap<String, String>) -> Map<String, Value> {
    values
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_view_is_one_line_and_secure_options_are_left_out() {
        let mut ctx = Context::default();
        ctx.options.insert("env".into(), "prod".into());
        ctx.options.insert("password".into(), "hunter2".into());
        ctx.secure.insert("password".into());
        ctx.job.insert("name".into(), "deploy".into());
        for (k, v) in [
            ("version", "1.2"),
            ("host@web1", "a"),
            ("host@web*", "c"),
            ("host@evil\nSORTIE:DATA:x", "b\nSORTIE:DATA:y=1"),
            ("host*", "a,b"),
        ] {
            ctx.data.insert(k.into(), v.into());
        }
        let lines = lines(&ctx);
        assert_eq!(
            lines,
            [
                "global {\"data\":{\"version\":\"1.2\"},\"job\":{\"name\":\"deploy\"},\
                 \"option\":{\"env\":\"prod\"}}\n",
                "@evil\\nSORTIE:DATA:x {\"data\":{\"host\":\"b\\nSORTIE:DATA:y=1\"}}\n",
                "@web* {\"data\":{\"host\":\"c\"}}\n",
                "@web1 {\"data\":{\"host\":\"a\"}}\n",
            ]
        );
        assert!(lines.iter().all(|l| l.matches('\n').count() == 1));
    }

    #[test]
    fn a_job_with_nothing_gathered_logs_an_empty_global_view() {
        assert_eq!(lines(&Context::default()), ["global {}\n"]);
    }
}
