//! One test binary, one module per area: the real exports of the corpus,
//! legacy forms and typing quirks, and refused files.

mod convert;
mod corpus;
mod errors;
mod quirks;

use crate::rundeck::{ConfigValue, Job, Step, StepKind};

/// Reads a file of `tests/data/jobs` and parses it.
pub fn load(file: &str) -> Vec<Job> {
    let path = format!(
        "{}/tests/data/rundeck/jobs/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    crate::rundeck::parse(file, &bytes).unwrap_or_else(|e| panic!("parse {file}: {e:#}"))
}

/// Reads a file that must hold exactly one job.
pub fn only_job(file: &str) -> Job {
    let mut jobs = load(file);
    assert_eq!(jobs.len(), 1, "{file}: job count");
    jobs.remove(0)
}

pub fn yaml(text: &str) -> Vec<Job> {
    crate::rundeck::parse_yaml("test.yaml", text.as_bytes()).unwrap_or_else(|e| panic!("{e:#}"))
}

pub fn xml(text: &str) -> Vec<Job> {
    crate::rundeck::parse_xml("test.xml", text.as_bytes()).unwrap_or_else(|e| panic!("{e:#}"))
}

pub fn kinds(job: &Job) -> Vec<&'static str> {
    job.workflow.steps.iter().map(Step::kind_name).collect()
}

pub fn plugin(step: &Step) -> (&str, bool, &std::collections::BTreeMap<String, ConfigValue>) {
    match &step.kind {
        StepKind::Plugin {
            plugin_type,
            node_step,
            config,
        } => (plugin_type, *node_step, config),
        other => panic!("expected a plugin step, got {other:?}"),
    }
}

pub fn cfg(config: &std::collections::BTreeMap<String, ConfigValue>, key: &str) -> String {
    config
        .get(key)
        .unwrap_or_else(|| panic!("config key {key} missing"))
        .as_text()
}
