//! Job spec v1: parsing and validation.
//!
//! A spec comes from outside (a control plane, a spool file), so it is checked
//! whole before anything runs: a malformed spec is reported with the path of the
//! offending field (`steps[2].timeout: …`) and the job is failed, never half-run.
//! Unknown fields are ignored, as the protocol asks.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

use sortie_protocol::SpecHeader;

use crate::jobs::expand;
use crate::secrets::{Delivery, Reference, Wanted};

#[derive(Debug, Clone, Default)]
pub struct JobInfo {
    pub id: Option<String>,
    pub group: Option<String>,
    pub project: Option<String>,
}

#[derive(Debug, Clone)]
pub struct JobSpec {
    pub id: String,
    pub name: Option<String>,
    pub job: JobInfo,
    pub options: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, Wanted>,
    pub env: BTreeMap<String, String>,
    pub timeout: Option<Duration>,
    pub keepgoing: bool,
    pub steps: Vec<Step>,
    /// Where node steps run; `None`: on the runner only (node `local`).
    pub nodes: Option<Dispatch>,
    pub strategy: Strategy,
    /// The SSH key for nodes that name none: a secret reference.
    pub ssh_key: Option<Wanted>,
}

/// How a job's node steps are dispatched (Rundeck's `nodefilters` and `dispatch`).
#[derive(Debug, Clone)]
pub struct Dispatch {
    /// Rundeck's filter language; `${option.x}` expands before it is parsed.
    pub filter: String,
    pub exclude_filter: Option<String>,
    pub exclude_precedence: bool,
    /// How many nodes at once with the parallel strategy (may be `${option.x}`).
    pub threadcount: String,
    /// Go on with the other nodes after one failed.
    pub keepgoing: bool,
    pub rank_attribute: Option<String>,
    pub rank_descending: bool,
    /// A filter that selects no node succeeds (instead of failing the job).
    pub success_on_empty: bool,
    /// Nodes sent with the job (resource JSON), beside the runner's own inventory.
    pub inventory: Vec<crate::nodes::Node>,
}

/// The order in which node steps meet nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Each node runs all its steps before the next node.
    NodeFirst,
    /// Each step runs on every node before the next step.
    StepFirst,
    /// Up to `threadcount` nodes at once, each running all its steps.
    Parallel,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub name: Option<String>,
    pub kind: StepKind,
    pub timeout: Option<Duration>,
    pub env: BTreeMap<String, String>,
    pub errorhandler: Option<Box<Step>>,
    pub keepgoing_on_success: bool,
    /// Runs on each selected node (`true`, the default) or once on the runner.
    pub node_step: bool,
}

#[derive(Debug, Clone)]
pub enum StepKind {
    /// argv, no shell.
    Exec(Vec<String>),
    /// A string for `/bin/sh -c`.
    Shell(String),
    /// An inline script body.
    Script {
        body: String,
        interpreter: Option<Vec<String>>,
        args: Vec<String>,
        extension: Option<String>,
    },
    /// A script file on the runner host.
    ScriptFile {
        path: String,
        interpreter: Option<Vec<String>>,
        args: Vec<String>,
    },
}

#[derive(Deserialize)]
struct RawSpec {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    job: Option<RawJob>,
    #[serde(default)]
    options: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    secrets: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    keepgoing: bool,
    steps: Vec<serde_json::Value>,
    #[serde(default)]
    nodes: Option<RawDispatch>,
    #[serde(default)]
    strategy: Option<String>,
    #[serde(default)]
    ssh_key: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDispatch {
    filter: String,
    #[serde(default)]
    exclude_filter: Option<String>,
    #[serde(default = "yes")]
    exclude_precedence: bool,
    #[serde(default)]
    threadcount: Option<serde_json::Value>,
    #[serde(default)]
    keepgoing: bool,
    #[serde(default)]
    rank_attribute: Option<String>,
    #[serde(default)]
    rank_order: Option<String>,
    #[serde(default)]
    success_on_empty: bool,
    #[serde(default)]
    inventory: Option<serde_json::Value>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct RawJob {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    project: Option<String>,
}

#[derive(Deserialize)]
struct RawStep {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    exec: Option<Vec<String>>,
    #[serde(default)]
    shell: Option<String>,
    #[serde(default)]
    script: Option<String>,
    #[serde(default)]
    scriptfile: Option<String>,
    #[serde(default)]
    interpreter: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    extension: Option<String>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    errorhandler: Option<serde_json::Value>,
    #[serde(default)]
    keepgoing_on_success: bool,
    #[serde(default = "yes")]
    node_step: bool,
}

/// An option's name: what Rundeck allows, `[A-Za-z0-9_.-]{1,128}`.
fn valid_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}

/// Most steps in one job.
pub const MAX_STEPS: usize = 10_000;

/// A job's or step's `env` may not set what sortie sets itself.
fn check_env(env: &BTreeMap<String, String>) -> Result<()> {
    for name in env.keys() {
        if name.starts_with("SORTIE_") || name.starts_with("RD_") {
            bail!("{name}: SORTIE_* and RD_* variables are set by sortie");
        }
        if name.is_empty() || name.contains(['=', '\0']) {
            bail!("{name:?} is not a variable name");
        }
    }
    Ok(())
}

/// Parse and validate a job spec.
pub fn parse(value: &serde_json::Value) -> Result<JobSpec> {
    let header = SpecHeader::of(value).map_err(|e| anyhow!(e))?;
    let raw = RawSpec::deserialize(value).context("not a job spec v1")?;
    let id = header.id;
    let mut options = BTreeMap::new();
    for (k, v) in raw.options {
        if !valid_name(&k) {
            bail!("options: {k:?} is not an option name ([A-Za-z0-9_.-], 1 to 128)");
        }
        match v {
            serde_json::Value::String(s) => {
                options.insert(k, s);
            }
            _ => bail!("options.{k}: values must be strings"),
        }
    }
    let mut secrets = BTreeMap::new();
    for (k, v) in raw.secrets {
        let wanted = secret(&v).with_context(|| format!("secrets.{k}"))?;
        if expand::env_name(&k) != k {
            bail!("secrets.{k}: a secret's key names its environment variable: use [A-Z0-9_]");
        }
        secrets.insert(k, wanted);
    }
    if raw.steps.is_empty() {
        bail!("steps: a job needs at least one step");
    }
    if raw.steps.len() > MAX_STEPS {
        bail!(
            "steps: {} steps, more than the {MAX_STEPS} a job may have",
            raw.steps.len()
        );
    }
    check_env(&raw.env).context("env")?;
    let steps = raw
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| parse_step(s, true).with_context(|| format!("steps[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    let nodes = raw.nodes.map(dispatch).transpose().context("nodes")?;
    let strategy = match raw.strategy.as_deref() {
        None | Some("node-first") => Strategy::NodeFirst,
        Some("step-first" | "sequential") => Strategy::StepFirst,
        Some("parallel") => Strategy::Parallel,
        Some(other) => bail!("strategy: {other:?} is not node-first, step-first or parallel"),
    };
    let ssh_key = raw
        .ssh_key
        .as_ref()
        .map(secret)
        .transpose()
        .context("ssh_key")?;
    let job = raw.job.unwrap_or(RawJob {
        id: None,
        group: None,
        project: None,
    });
    Ok(JobSpec {
        id,
        name: raw.name,
        job: JobInfo {
            id: job.id,
            group: job.group,
            project: job.project,
        },
        options,
        secrets,
        env: raw.env,
        timeout: duration(header.timeout.as_deref()).context("timeout")?,
        keepgoing: raw.keepgoing,
        steps,
        nodes,
        strategy,
        ssh_key,
    })
}

fn dispatch(raw: RawDispatch) -> Result<Dispatch> {
    let threadcount = match raw.threadcount {
        None | Some(serde_json::Value::Null) => "1".to_string(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(serde_json::Value::String(s)) => s,
        Some(_) => bail!("threadcount: a number, or a string such as \"${{option.threads}}\""),
    };
    let rank_descending = match raw.rank_order.as_deref() {
        None | Some("ascending") => false,
        Some("descending") => true,
        Some(other) => bail!("rank_order: {other:?} is not ascending or descending"),
    };
    let inventory = match &raw.inventory {
        None => Vec::new(),
        Some(value) => crate::nodes::resource::parse_json_value(value).context("inventory")?,
    };
    Ok(Dispatch {
        filter: raw.filter,
        exclude_filter: raw.exclude_filter,
        exclude_precedence: raw.exclude_precedence,
        threadcount,
        keepgoing: raw.keepgoing,
        rank_attribute: raw.rank_attribute,
        rank_descending,
        success_on_empty: raw.success_on_empty,
        inventory,
    })
}

/// `"env:NAME"`, or `{"ref": "file:kubeconfig", "as": "file"}`.
fn secret(value: &serde_json::Value) -> Result<Wanted> {
    let (text, delivery) = match value {
        serde_json::Value::String(text) => (text.as_str(), Delivery::Env),
        serde_json::Value::Object(map) => {
            let text = map
                .get("ref")
                .and_then(|v| v.as_str())
                .ok_or_else(|| anyhow!("needs \"ref\": a reference such as \"file:NAME\""))?;
            let delivery = match map.get("as").and_then(|v| v.as_str()) {
                None | Some("env") => Delivery::Env,
                Some("file") => Delivery::File,
                Some(other) => bail!("\"as\": {other:?} is neither \"env\" nor \"file\""),
            };
            (text, delivery)
        }
        _ => bail!("must be a reference such as \"env:NAME\" or {{\"ref\": …, \"as\": \"file\"}}"),
    };
    Ok(Wanted {
        text: text.to_string(),
        reference: Reference::parse(text)?,
        delivery,
    })
}

fn duration(text: Option<&str>) -> Result<Option<Duration>> {
    let Some(text) = text else { return Ok(None) };
    let d = humantime::parse_duration(text)
        .map_err(|e| anyhow!("{text:?} is not a duration such as \"90s\" or \"1h 30m\": {e}"))?;
    if d.is_zero() {
        bail!("must be longer than zero");
    }
    Ok(Some(d))
}

fn parse_step(value: &serde_json::Value, handler_allowed: bool) -> Result<Step> {
    let raw = RawStep::deserialize(value).context("not a step")?;
    let kinds = [
        raw.exec.is_some(),
        raw.shell.is_some(),
        raw.script.is_some(),
        raw.scriptfile.is_some(),
    ];
    match kinds.iter().filter(|k| **k).count() {
        0 => bail!("a step needs one of exec, shell, script, scriptfile"),
        1 => {}
        _ => bail!("a step has exactly one of exec, shell, script, scriptfile"),
    }
    let interpreter = match raw.interpreter.as_deref().map(str::trim) {
        None => None,
        Some("") => bail!("interpreter: empty"),
        Some(words) => Some(words.split_whitespace().map(str::to_string).collect()),
    };
    let script_only = raw.extension.is_some() || interpreter.is_some() || !raw.args.is_empty();
    let kind = if let Some(argv) = raw.exec {
        if argv.is_empty() || argv[0].is_empty() {
            bail!("exec: needs a program as its first element");
        }
        StepKind::Exec(argv)
    } else if let Some(cmd) = raw.shell {
        StepKind::Shell(cmd)
    } else if let Some(body) = raw.script {
        if let Some(ext) = &raw.extension {
            if ext.contains('/') || ext.contains('\0') || ext.len() > 16 {
                bail!("extension: {ext:?} is not a file extension");
            }
        }
        StepKind::Script {
            body,
            interpreter,
            args: raw.args,
            extension: raw.extension,
        }
    } else {
        let path = raw.scriptfile.expect("one kind is set");
        if path.is_empty() {
            bail!("scriptfile: empty path");
        }
        if raw.extension.is_some() {
            bail!("extension: only for inline scripts");
        }
        StepKind::ScriptFile {
            path,
            interpreter,
            args: raw.args,
        }
    };
    if script_only && matches!(kind, StepKind::Exec(_) | StepKind::Shell(_)) {
        bail!("interpreter, args and extension are for script and scriptfile steps");
    }
    let errorhandler = match raw.errorhandler {
        None => None,
        Some(_) if !handler_allowed => bail!("errorhandler: a handler has no handler of its own"),
        Some(h) => Some(Box::new(parse_step(&h, false).context("errorhandler")?)),
    };
    check_env(&raw.env).context("env")?;
    Ok(Step {
        name: raw.name,
        kind,
        timeout: duration(raw.timeout.as_deref()).context("timeout")?,
        env: raw.env,
        errorhandler,
        keepgoing_on_success: raw.keepgoing_on_success,
        node_step: raw.node_step,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: serde_json::Value) -> String {
        format!("{:#}", parse(&v).unwrap_err())
    }

    #[test]
    fn the_protocol_example_parses() {
        let spec = parse(&json!({
            "id": "exec-42", "name": "Restart web",
            "job": {"id": "restart-web", "group": "ops/web", "project": "prod"},
            "options": {"service": "nginx"}, "env": {"LANG": "C.UTF-8"},
            "timeout": "30m", "keepgoing": false,
            "steps": [
                {"name": "restart", "exec": ["systemctl", "restart", "${option.service}"]},
                {"name": "check", "shell": "systemctl is-active ${option.service}",
                 "errorhandler": {"shell": "journalctl -u ${option.service} -n 50"}},
                {"script": "#!/usr/bin/env python3\nprint('hi')", "interpreter": "python3",
                 "args": ["-u"], "extension": ".py", "timeout": "5m", "env": {"X": "1"}},
                {"scriptfile": "/opt/ops/report.sh", "args": ["${data.status}"]}
            ],
            "unknown_field": true
        }))
        .unwrap();
        assert_eq!(spec.steps.len(), 4);
        assert_eq!(spec.timeout, Some(Duration::from_secs(1800)));
        assert!(spec.steps[1].errorhandler.is_some());
        match &spec.steps[2].kind {
            StepKind::Script {
                interpreter,
                extension,
                ..
            } => {
                assert_eq!(interpreter.as_deref(), Some(&["python3".to_string()][..]));
                assert_eq!(extension.as_deref(), Some(".py"));
            }
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn malformed_specs_name_the_field_at_fault() {
        assert!(err(json!({"id": "../x", "steps": [{"shell": "true"}]})).contains("id"));
        assert!(err(json!({"id": "a", "steps": []})).contains("at least one step"));
        assert!(err(json!({"id": "a", "steps": [{"name": "x"}]})).contains("steps[0]"));
        assert!(
            err(json!({"id": "a", "steps": [{"shell": "a", "exec": ["b"]}]}))
                .contains("exactly one")
        );
        assert!(
            err(json!({"id": "a", "timeout": "soon", "steps": [{"shell": "a"}]}))
                .contains("timeout")
        );
        assert!(
            err(json!({"id": "a", "options": {"n": 1}, "steps": [{"shell": "a"}]}))
                .contains("options.n")
        );
        assert!(err(json!({"id": "a", "steps": [{"exec": []}]})).contains("exec"));
        let nested = json!({"id": "a", "steps": [{"shell": "a",
            "errorhandler": {"shell": "b", "errorhandler": {"shell": "c"}}}]});
        assert!(err(nested).contains("errorhandler"));
        assert!(err(json!({"id": 5, "steps": [{"shell": "a"}]})).contains("id"));
        assert!(
            err(json!({"id": "a", "secrets": {"K": "nope:x"}, "steps": [{"shell": "a"}]}))
                .contains("secrets.K")
        );
        assert!(err(
            json!({"id": "a", "secrets": {"db.pass": "env:X"}, "steps": [{"shell": "a"}]})
        )
        .contains("[A-Z0-9_]"));
        let spec = parse(&json!({"id": "a", "secrets": {"DB": "env:DB", "KUBECONFIG": {"ref": "file:kc", "as": "file"}},
            "steps": [{"shell": "a"}]})).unwrap();
        assert_eq!(spec.secrets["KUBECONFIG"].delivery, Delivery::File);
    }
}
