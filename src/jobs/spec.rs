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

use crate::jobs::{expand, result_data};
use crate::rundeck;
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
    /// What `${…}` and `@…@` mean (a Rundeck job's tokens mean what they mean there).
    pub dialect: Dialect,
    /// The options' rules, checked before any step.
    pub option_defs: Vec<OptionDef>,
    /// Run the job again when it fails.
    pub retry: Option<Retry>,
    /// Filters over every step's output.
    pub log_filters: Vec<LogFilter>,
    pub log_limit: Option<LogLimit>,
    /// What a Rundeck job had that was not carried over (said in its log).
    pub notes: Vec<String>,
}

/// How a job's tokens read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// An unknown reference fails the step.
    #[default]
    Sortie,
    /// Rundeck's: a missing `${option.x}` is blank, any other unknown
    /// reference stays as written; `${unquotedoption.x}`, `${globals.x}`,
    /// `${secureOption.x}`; `@option.x@` in inline scripts.
    Rundeck,
}

/// A Rundeck option's rules (Rundeck validates them before a run starts).
#[derive(Debug, Clone, Default)]
pub struct OptionDef {
    pub name: String,
    pub required: bool,
    /// The value must be one of `values`.
    pub enforced: bool,
    pub values: Vec<String>,
    /// The whole value (each value of a multivalued option) must match.
    pub regex: Option<String>,
    pub multivalued: bool,
    pub delimiter: String,
    /// Its value is a secret: masked, never in a command line.
    pub secure: bool,
    /// A secure option steps may see (else only sortie does).
    pub value_exposed: bool,
    /// Where a secure option's value comes from when none is given.
    pub secret: Option<Wanted>,
    pub default: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Retry {
    /// How many more times the job runs after a failure.
    pub count: u32,
    pub delay: Option<Duration>,
}

/// A log filter (Rundeck's `key-value-data`, `mask-passwords`, …) and its config.
#[derive(Debug, Clone)]
pub struct LogFilter {
    pub kind: String,
    pub config: BTreeMap<String, String>,
}

/// Rundeck's `loglimit`: a number of lines, a size (`100MB`), or lines per
/// node (`100/node`); then halt the job or truncate the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLimit {
    pub limit: Limit,
    pub truncate: bool,
    /// The status a halted job gets (`failed`, …).
    pub status: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Lines(u64),
    Bytes(u64),
    LinesPerNode(u64),
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
    /// Runs on each selected node (`true`, the default for what runs on the
    /// node) or once on the runner.
    pub node_step: bool,
    /// A script's path and args become one argument of the interpreter
    /// (Rundeck's `interpreterArgsQuoted`), each word shell-quoted.
    pub args_quoted: bool,
    /// `@option.x@` tokens are expanded in the script's text.
    pub expand_tokens: bool,
    pub log_filters: Vec<LogFilter>,
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
    /// A script fetched over HTTPS when the step runs.
    ScriptUrl {
        url: String,
        interpreter: Option<Vec<String>>,
        args: Vec<String>,
    },
    /// Result data set from expansions, in sortie itself (Rundeck's
    /// export-var step).
    Data(BTreeMap<String, String>),
    /// Log the data the step can see, one line per view (Rundeck's
    /// log-data step).
    LogData,
    /// Stop the job here, succeeded or failed, with a message (Rundeck's
    /// flow-control step): no later step runs on any node.
    Flow {
        succeed: bool,
        message: Option<String>,
    },
    /// A request the runner makes itself.
    Http(Box<crate::jobs::http_step::Http>),
    /// A file or content put on the node.
    Copy(Box<crate::jobs::copy_step::Copy>),
    /// `ansible-playbook` on the runner, for the job's selected nodes.
    Ansible(Box<crate::jobs::ansible_step::Ansible>),
    /// A plugin's executable, on the runner (sortie-plugins(7)).
    Plugin {
        name: String,
        config: serde_json::Value,
    },
}

impl StepKind {
    /// Whether sortie does the step itself, with no process.
    pub fn in_process(&self) -> bool {
        matches!(
            self,
            StepKind::Data(_) | StepKind::LogData | StepKind::Flow { .. } | StepKind::Http(_)
        )
    }

    /// Whether the step runs once, on the runner, unless it says `node_step:
    /// true`: what sortie does itself, and a plugin (the node is in what it
    /// reads; it runs on the runner either way).
    pub fn once_by_default(&self) -> bool {
        self.in_process() || matches!(self, StepKind::Plugin { .. } | StepKind::Ansible(_))
    }
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
    #[serde(default)]
    dialect: Option<String>,
    #[serde(default)]
    option_defs: Vec<RawOptionDef>,
    #[serde(default)]
    retry: Option<RawRetry>,
    #[serde(default)]
    log_filters: Vec<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    log_limit: Option<RawLogLimit>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOptionDef {
    name: String,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    enforced: bool,
    #[serde(default)]
    values: Vec<String>,
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    multivalued: bool,
    #[serde(default)]
    delimiter: Option<String>,
    #[serde(default)]
    secure: bool,
    #[serde(default)]
    value_exposed: bool,
    #[serde(default)]
    secret: Option<serde_json::Value>,
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    date_format: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    count: serde_json::Value,
    #[serde(default)]
    delay: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLogLimit {
    limit: String,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    status: Option<String>,
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
    scripturl: Option<String>,
    #[serde(default)]
    args_quoted: bool,
    #[serde(default)]
    expand_tokens: bool,
    #[serde(default)]
    log_filters: Vec<BTreeMap<String, serde_json::Value>>,
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
    /// A node step by default; a data or flow step runs once on the runner.
    #[serde(default)]
    node_step: Option<bool>,
    #[serde(default)]
    data: Option<BTreeMap<String, String>>,
    #[serde(default)]
    log_data: Option<bool>,
    #[serde(default)]
    flow: Option<RawFlow>,
    #[serde(default)]
    fail: Option<String>,
    #[serde(default)]
    http: Option<serde_json::Value>,
    #[serde(default)]
    copy: Option<serde_json::Value>,
    #[serde(default)]
    plugin: Option<String>,
    #[serde(default)]
    ansible: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlow {
    status: String,
    #[serde(default)]
    message: Option<String>,
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

/// Parse and validate a job spec. A spec whose `rundeck` holds a Rundeck job
/// (YAML or XML) is that job carried over (`rundeck_job` chooses one of a
/// file's jobs), the spec's own `id` and `options` taking precedence.
pub fn parse(value: &serde_json::Value) -> Result<JobSpec> {
    if let Some(text) = value.get("rundeck") {
        return parse_text(value, text);
    }
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
    let dialect = match raw.dialect.as_deref() {
        None | Some("sortie") => Dialect::Sortie,
        Some("rundeck") => Dialect::Rundeck,
        Some(other) => bail!("dialect: {other:?} is neither \"sortie\" nor \"rundeck\""),
    };
    let option_defs = raw
        .option_defs
        .into_iter()
        .map(option_def)
        .collect::<Result<Vec<_>>>()
        .context("option_defs")?;
    // A Rundeck timeout or retry may come from an option: `${option.x}` (never a
    // secure one, which Rundeck keeps out of these fields and errors must not show).
    let plain = plain_options(&options, &option_defs);
    let from_options = |text: &str| crate::jobs::dispatch::expand_filter(text, &plain);
    let timeout = header
        .timeout
        .as_deref()
        .map(|t| from_options(t).trim().to_string());
    let timeout = match timeout.as_deref() {
        // Rundeck: a bare number is seconds, and 0 or blank is no timeout.
        Some(t) if t.is_empty() || t == "0" => None,
        Some(t) if t.bytes().all(|b| b.is_ascii_digit()) => duration(Some(&format!("{t}s")))?,
        t => duration(t).context("timeout")?,
    };
    let retry = raw
        .retry
        .map(|r| retry(r, &from_options))
        .transpose()
        .context("retry")?
        .filter(|r| r.count > 0);
    let log_filters = raw
        .log_filters
        .iter()
        .map(log_filter)
        .collect::<Result<Vec<_>>>()
        .context("log_filters")?;
    let log_limit = raw
        .log_limit
        .map(log_limit)
        .transpose()
        .context("log_limit")?;
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
        timeout,
        keepgoing: raw.keepgoing,
        steps,
        nodes,
        strategy,
        ssh_key,
        dialect,
        option_defs,
        retry,
        log_filters,
        log_limit,
        notes: Vec::new(),
    })
}

/// Parse a spec someone wrote by hand (`sortie exec`, a spool file): a field
/// job spec v1 does not have is refused with its path and the field probably
/// meant, and a job needs a step. A spec in a claim goes through [`parse`],
/// which ignores what it does not know.
pub fn parse_strict(value: &serde_json::Value) -> Result<JobSpec> {
    if value.get("rundeck").is_none() {
        check_fields(value)?;
    }
    parse(value)
}

/// Refuse the fields of a hand-written spec that job spec v1 does not have.
fn check_fields(spec: &serde_json::Value) -> Result<()> {
    let unknown = sortie_protocol::schema::unknown(spec);
    if !unknown.is_empty() {
        bail!("{}", unknown.join("; "));
    }
    if spec
        .get("steps")
        .and_then(|s| s.as_array())
        .is_some_and(|s| s.is_empty())
    {
        bail!("steps: a job needs at least one step");
    }
    Ok(())
}

/// A job file's text (`rundeck` of a wrapper): sortie's own spec in YAML (a
/// mapping; always written by hand, so held to its fields), or Rundeck's
/// jobs (a list, or XML).
fn parse_text(value: &serde_json::Value, text: &serde_json::Value) -> Result<JobSpec> {
    let text = text
        .as_str()
        .ok_or_else(|| anyhow!("rundeck: the text of a Rundeck job file (YAML or XML)"))?;
    let file = value
        .get("rundeck_file")
        .and_then(|f| f.as_str())
        .unwrap_or("the job file");
    if super::spec_yaml::is_spec(text) {
        let mut spec = super::spec_yaml::to_json(text).with_context(|| file.to_string())?;
        let object = spec.as_object_mut().expect("a YAML spec is a mapping");
        if let Some(id) = value.get("id") {
            object.entry("id").or_insert_with(|| id.clone());
        }
        merge_options(object, value);
        check_fields(&spec).with_context(|| file.to_string())?;
        return parse(&spec);
    }
    let wanted = value.get("rundeck_job").and_then(|j| j.as_str());
    let job =
        rundeck::parse(file, text.as_bytes()).and_then(|jobs| rundeck::select(jobs, wanted))?;
    let converted = rundeck::convert::convert(&job)
        .map_err(|lines| anyhow!("this Rundeck job cannot run here:\n{}", lines.join("\n")))?;
    let mut spec = converted.spec;
    let object = spec.as_object_mut().expect("a converted job is an object");
    if let Some(id) = value.get("id") {
        object.insert("id".into(), id.clone());
    }
    merge_options(object, value);
    let mut parsed = parse(&spec)?;
    parsed.notes = converted.notes;
    Ok(parsed)
}

/// The options given with the run (`options` beside the text) over the job's.
fn merge_options(
    object: &mut serde_json::Map<String, serde_json::Value>,
    value: &serde_json::Value,
) {
    if let Some(given) = value.get("options").and_then(|o| o.as_object()) {
        let options = object
            .entry("options")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(options) = options.as_object_mut() {
            options.extend(given.clone());
        }
    }
}

/// The options whose values may appear in a job's fields (timeout, retry, node
/// filter, threadcount) and in errors about them: all but the secure ones.
pub fn plain_options(
    options: &BTreeMap<String, String>,
    defs: &[OptionDef],
) -> BTreeMap<String, String> {
    let mut plain = options.clone();
    for def in defs.iter().filter(|d| d.secure) {
        plain.remove(&def.name);
    }
    plain
}

fn retry(raw: RawRetry, from_options: &dyn Fn(&str) -> String) -> Result<Retry> {
    let count = match raw.count {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => from_options(&s),
        _ => bail!("count: a number, or a string such as \"${{option.retries}}\""),
    };
    let count = match count.trim() {
        "" => 0,
        n => n
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= 100)
            .ok_or_else(|| anyhow!("count: {n:?} is not a number of retries (0 to 100)"))?,
    };
    let delay = match raw
        .delay
        .as_deref()
        .map(|d| from_options(d).trim().to_string())
    {
        None => None,
        Some(d) if d.is_empty() || d == "0" => None,
        Some(d) if d.bytes().all(|b| b.is_ascii_digit()) => duration(Some(&format!("{d}s")))?,
        Some(d) => duration(Some(&d)).context("delay")?,
    };
    Ok(Retry { count, delay })
}

fn option_def(raw: RawOptionDef) -> Result<OptionDef> {
    if !valid_name(&raw.name) {
        bail!("{:?} is not an option name", raw.name);
    }
    let name = raw.name;
    if let Some(regex) = &raw.regex {
        crate::nodes::java::whole_regex(regex).with_context(|| format!("{name}: regex"))?;
    }
    let secret = raw
        .secret
        .as_ref()
        .map(secret)
        .transpose()
        .with_context(|| format!("{name}: secret"))?;
    if secret.is_some() && !raw.secure {
        bail!("{name}: only a secure option takes its value from a secret");
    }
    // Dates are checked by Rundeck's UI, not by its runs: the format is kept for reading.
    let _ = raw.date_format;
    Ok(OptionDef {
        name,
        required: raw.required,
        enforced: raw.enforced,
        values: raw.values,
        regex: raw.regex,
        multivalued: raw.multivalued,
        delimiter: raw.delimiter.unwrap_or_else(|| ",".into()),
        secure: raw.secure,
        value_exposed: raw.value_exposed,
        secret,
        default: raw.default,
    })
}

fn log_filter(raw: &BTreeMap<String, serde_json::Value>) -> Result<LogFilter> {
    let kind = raw
        .get("type")
        .and_then(|t| t.as_str())
        .ok_or_else(|| anyhow!("a log filter needs a \"type\""))?
        .to_string();
    let mut config = BTreeMap::new();
    for (k, v) in raw.iter().filter(|(k, _)| k.as_str() != "type") {
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => bail!("{kind}.{k}: a string"),
        };
        config.insert(k.clone(), text);
    }
    let filter = LogFilter { kind, config };
    // Compiled as the step will compile it, so that a filter that cannot run
    // fails the job here, named, and not silently at run time.
    crate::jobs::capture::KeyValue::of(&filter)?;
    Ok(filter)
}

fn log_limit(raw: RawLogLimit) -> Result<LogLimit> {
    let text = raw.limit.trim();
    let number = |t: &str| {
        t.trim().parse::<u64>().map_err(|_| {
            anyhow!("limit: {text:?} is not N (lines), N/node or a size such as 100MB")
        })
    };
    let limit = if let Some(n) = text.strip_suffix("/node") {
        Limit::LinesPerNode(number(n)?)
    } else if let Some(size) = ["GB", "MB", "KB", "B"]
        .iter()
        .zip([1u64 << 30, 1 << 20, 1 << 10, 1])
        .find_map(|(unit, scale)| text.strip_suffix(unit).map(|n| (n, scale)))
    {
        Limit::Bytes(number(size.0)?.saturating_mul(size.1))
    } else {
        Limit::Lines(number(text)?)
    };
    let truncate = match raw.action.as_deref() {
        None | Some("halt") => false,
        Some("truncate") => true,
        Some(other) => bail!("action: {other:?} is neither halt nor truncate"),
    };
    Ok(LogLimit {
        limit,
        truncate,
        status: raw.status.unwrap_or_else(|| "failed".into()),
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

/// The longest timeout or delay a job may ask for: any instant it sets stays
/// representable (and no job waits that long on purpose).
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

fn duration(text: Option<&str>) -> Result<Option<Duration>> {
    let Some(text) = text else { return Ok(None) };
    let d = humantime::parse_duration(text)
        .map_err(|e| anyhow!("{text:?} is not a duration such as \"90s\" or \"1h 30m\": {e}"))?;
    if d.is_zero() {
        bail!("must be longer than zero");
    }
    if d > MAX_DURATION {
        bail!("{text:?} is longer than ten years");
    }
    Ok(Some(d))
}

fn parse_step(value: &serde_json::Value, handler_allowed: bool) -> Result<Step> {
    let mut raw = RawStep::deserialize(value).context("not a step")?;
    let kinds = [
        raw.exec.is_some(),
        raw.shell.is_some(),
        raw.script.is_some(),
        raw.scriptfile.is_some(),
        raw.scripturl.is_some(),
        raw.data.is_some(),
        raw.log_data.is_some(),
        raw.flow.is_some(),
        raw.fail.is_some(),
        raw.http.is_some(),
        raw.copy.is_some(),
        raw.plugin.is_some(),
        raw.ansible.is_some(),
    ];
    const KINDS: &str =
        "exec, shell, script, scriptfile, scripturl, data, log_data, flow, fail, http, copy, plugin, \
         ansible";
    match kinds.iter().filter(|k| **k).count() {
        0 => bail!("a step needs one of {KINDS}"),
        1 => {}
        _ => bail!("a step has exactly one of {KINDS}"),
    }
    let interpreter = match raw.interpreter.as_deref().map(str::trim) {
        None => None,
        Some("") => bail!("interpreter: empty"),
        Some(words) => Some(words.split_whitespace().map(str::to_string).collect()),
    };
    let script_only = raw.extension.is_some() || interpreter.is_some() || !raw.args.is_empty();
    let kind = if let Some(values) = raw.data {
        if values.is_empty() {
            bail!("data: at least one key");
        }
        if let Some(bad) = values.keys().find(|k| !result_data::valid_key(k)) {
            bail!("data: {bad:?} is not a data key ([A-Za-z0-9_.-])");
        }
        StepKind::Data(values)
    } else if let Some(on) = raw.log_data {
        if !on {
            bail!("log_data: true, or no log_data (a step that logs nothing is no step)");
        }
        StepKind::LogData
    } else if let Some(flow) = raw.flow {
        let succeed = match flow.status.as_str() {
            "succeeded" => true,
            "failed" => false,
            other => bail!("flow.status: {other:?} is neither succeeded nor failed"),
        };
        StepKind::Flow {
            succeed,
            message: flow.message,
        }
    } else if let Some(http) = raw.http {
        let http: crate::jobs::http_step::Http = serde_json::from_value(http).context("http")?;
        http.check().context("http")?;
        StepKind::Http(Box::new(http))
    } else if let Some(copy) = raw.copy {
        let copy: crate::jobs::copy_step::Copy = serde_json::from_value(copy).context("copy")?;
        copy.check().context("copy")?;
        StepKind::Copy(Box::new(copy))
    } else if let Some(name) = raw.plugin {
        if !crate::jobs::plugin::valid_name(&name) {
            bail!("plugin: {name:?} is not a plugin name ([A-Za-z0-9_.-], not a path)");
        }
        let config = raw.config.take().unwrap_or_else(|| serde_json::json!({}));
        if !config.is_object() {
            bail!("config: must be an object");
        }
        StepKind::Plugin { name, config }
    } else if let Some(ansible) = raw.ansible {
        let ansible: crate::jobs::ansible_step::Ansible =
            serde_json::from_value(ansible).context("ansible")?;
        ansible.check().context("ansible")?;
        StepKind::Ansible(Box::new(ansible))
    } else if let Some(message) = raw.fail {
        StepKind::Flow {
            succeed: false,
            message: Some(message),
        }
    } else if let Some(argv) = raw.exec {
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
    } else if let Some(url) = raw.scripturl {
        if !url.starts_with("https://") && !url.starts_with("http://") {
            bail!("scripturl: {url:?} is not an http(s) URL");
        }
        StepKind::ScriptUrl {
            url,
            interpreter,
            args: raw.args,
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
    let script_kind = matches!(
        kind,
        StepKind::Script { .. } | StepKind::ScriptFile { .. } | StepKind::ScriptUrl { .. }
    );
    if raw.config.is_some() {
        bail!("config: only for a plugin step");
    }
    if script_only && !script_kind {
        bail!("interpreter, args and extension are for script and scriptfile steps");
    }
    if !handler_allowed && matches!(kind, StepKind::Flow { .. }) {
        bail!(
            "a flow step cannot be an error handler: it stops the job, it does not recover a step"
        );
    }
    let node_step = raw.node_step.unwrap_or(!kind.once_by_default());
    if node_step && matches!(kind, StepKind::Flow { .. }) {
        bail!("node_step: a flow step stops the whole job: it runs once, on the runner");
    }
    if node_step && matches!(kind, StepKind::LogData) {
        bail!("node_step: a log_data step runs once, on the runner, and logs every node's data");
    }
    if node_step && matches!(kind, StepKind::Ansible(_)) {
        bail!("node_step: an ansible step runs once, on the runner, for every selected node");
    }
    let errorhandler = match raw.errorhandler {
        None => None,
        Some(_) if matches!(kind, StepKind::Flow { .. }) => {
            bail!("errorhandler: a flow step does not fail, it stops the job")
        }
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
        node_step,
        args_quoted: raw.args_quoted,
        expand_tokens: raw.expand_tokens,
        log_filters: raw
            .log_filters
            .iter()
            .map(log_filter)
            .collect::<Result<Vec<_>>>()
            .context("log_filters")?,
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
    fn a_key_value_filter_that_cannot_run_fails_the_job_named() {
        let job = |config: serde_json::Value| {
            let mut filter = json!({"type": "key-value-data"});
            filter
                .as_object_mut()
                .unwrap()
                .extend(config.as_object().unwrap().clone());
            json!({"id": "j", "log_filters": [filter], "steps": [{"exec": ["true"]}]})
        };
        // Compiled as the step compiles it: the whole line unless matchSubstrings,
        // and the key's pattern too.
        let big = format!("({})", "[a-z]?".repeat(1200));
        for (config, why) in [
            (
                json!({"regex": "(a)\\1"}),
                "key-value-data: regex: a backreference",
            ),
            (
                json!({"regex": big}),
                "key-value-data: regex: a pattern larger than",
            ),
            (
                json!({"invalidKeyPattern": "("}),
                "key-value-data: invalidKeyPattern",
            ),
        ] {
            let e = err(job(config.clone()));
            assert!(e.contains(why), "{config}: {e}");
        }
        assert!(parse(&job(
            json!({"regex": "^(k)=(.*)$", "matchSubstrings": "true"})
        ))
        .is_ok());
    }

    #[test]
    fn data_and_flow_steps_run_in_sortie_once_on_the_runner() {
        let spec = parse(&json!({"id": "j", "steps": [
            {"data": {"k": "${option.x}"}},
            {"data": {"n": "${node.name}"}, "node_step": true},
            {"flow": {"status": "succeeded", "message": "done"}},
            {"fail": "broken"},
            {"log_data": true},
        ]}))
        .unwrap();
        let kinds: Vec<(bool, bool)> = spec
            .steps
            .iter()
            .map(|s| (s.kind.in_process(), s.node_step))
            .collect();
        assert_eq!(
            kinds,
            [
                (true, false),
                (true, true),
                (true, false),
                (true, false),
                (true, false)
            ]
        );
        assert!(matches!(
            spec.steps[3].kind,
            StepKind::Flow { succeed: false, .. }
        ));
        for (step, why) in [
            (
                json!({"flow": {"status": "done"}}),
                "neither succeeded nor failed",
            ),
            (
                json!({"fail": "x", "node_step": true}),
                "runs once, on the runner",
            ),
            (
                json!({"fail": "x", "errorhandler": {"shell": "true"}}),
                "does not fail",
            ),
            (
                json!({"shell": "false", "errorhandler": {"fail": "x"}}),
                "cannot be an error handler",
            ),
            (json!({"data": {}}), "at least one key"),
            (json!({"data": {"a b": "x"}}), "not a data key"),
            (json!({"log_data": false}), "no log_data"),
            (
                json!({"log_data": true, "node_step": true}),
                "logs every node's data",
            ),
            (
                json!({"data": {"k": "v"}, "shell": "true"}),
                "exactly one of",
            ),
        ] {
            let e = err(json!({"id": "j", "steps": [step]}));
            assert!(e.contains(why), "{e}");
        }
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
