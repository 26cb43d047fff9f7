//! The normalized job model: one shape for jobs read from YAML and from XML.
//!
//! Every field holds what Rundeck itself would store after importing the
//! file (defaults applied, legacy forms rebuilt, string/boolean quirks
//! resolved as Rundeck resolves them), so a later conversion needs no
//! knowledge of either file format. What the parser saw but could not place
//! is listed in [`Job::unknown`]; what it placed but where Rundeck's reading
//! is surprising or lossy is listed in [`Job::warnings`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Which of Rundeck's two job formats a job was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    Yaml,
    Xml,
}

/// One Rundeck job definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Format of the file the job came from.
    pub format: SourceFormat,
    /// Position of the job in its file, from 0.
    pub index: usize,
    /// `uuid`; `None` when missing or empty (Rundeck then assigns one).
    pub uuid: Option<String>,
    /// `id` as exported; Rundeck ignores it on import (the uuid is the identity).
    pub id: Option<String>,
    pub name: String,
    /// Group path with leading and trailing `/` removed; `None` when empty.
    pub group: Option<String>,
    pub description: String,
    /// Project named in the file (YAML `project`, XML `<context><project>`).
    /// Rundeck ignores it: the import names the project.
    pub project: Option<String>,
    /// Log level; `INFO` when missing.
    pub loglevel: String,
    pub timeout: Option<Timeout>,
    pub retry: Option<Retry>,
    /// Options in the order Rundeck shows and evaluates them.
    pub options: Vec<OptionDef>,
    /// Node dispatch; `None` means the job runs once, on the Rundeck server itself.
    pub nodes: Option<NodeDispatch>,
    /// `nodeFilterEditable` (default true): may a user change the filter at run time.
    pub node_filter_editable: bool,
    /// `nodesSelectedByDefault` (default true).
    pub nodes_selected_by_default: bool,
    /// Node orchestrator plugin (`orchestrator: {type, configuration}`).
    pub orchestrator: Option<Orchestrator>,
    pub workflow: Workflow,
    /// `loglimit` (XML `<logging limit=…>`).
    pub loglimit: Option<String>,
    /// `loglimitAction`; `halt` when a limit is set without one.
    pub loglimit_action: Option<String>,
    /// `loglimitStatus`; `failed` when a limit is set without one.
    pub loglimit_status: Option<String>,
    pub schedule: Option<Schedule>,
    pub schedule_enabled: bool,
    pub execution_enabled: bool,
    pub multiple_executions: bool,
    pub max_multiple_executions: Option<String>,
    /// True when the job defines any notification.
    pub notifications: bool,
    /// The notification triggers present (`onsuccess`, `onfailure`, …).
    pub notification_triggers: Vec<String>,
    /// Job-scoped plugins by service, then provider: `plugins.ExecutionLifecycle.<type>`.
    pub plugins: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    pub default_tab: Option<String>,
    pub time_zone: Option<String>,
    /// Job tags (`tags: 'a,b'`), split on commas.
    pub tags: Vec<String>,
    /// Paths of fields present in the file that this parser does not understand,
    /// e.g. `jobs[2].sequence.commands[1].foo`.
    pub unknown: Vec<String>,
    /// Fields understood but read by Rundeck in a way worth knowing
    /// (ignored, overridden, or coerced against the author's likely intent).
    pub warnings: Vec<String>,
}

/// A job or retry-delay duration: `'48h'`, `'6h 30m'`, `'10800'`, `120`, or
/// a string with `${option.x}` resolved only at run time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeout {
    /// The value as written (numbers as their decimal text).
    pub raw: String,
    /// Seconds, computed as Rundeck's `Sizes.parseTimeDuration` does; `None`
    /// when `raw` holds a `${…}` reference. Rundeck enforces a timeout only
    /// when this is above 0.
    pub seconds: Option<u64>,
}

/// Job retry: how many times, and how long to wait in between.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retry {
    pub count: RetryCount,
    pub delay: Option<Timeout>,
}

/// The retry count: a number, or a `${…}` expression resolved at run time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetryCount {
    Fixed(u32),
    Dynamic(String),
}

/// A job option (YAML `options`, XML `<context><options><option>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptionDef {
    pub name: String,
    pub label: Option<String>,
    pub description: Option<String>,
    /// Default value (`value`); Rundeck drops an empty or false-y default.
    pub value: Option<String>,
    /// Allowed values (YAML list; XML string split on `valuesListDelimiter`).
    pub values: Vec<String>,
    /// Delimiter Rundeck stores with `values` (`,` unless set).
    pub values_list_delimiter: Option<String>,
    pub values_url: Option<String>,
    /// Input must be one of `values` (YAML `enforced`, XML `enforcedvalues`).
    pub enforced: bool,
    pub regex: Option<String>,
    pub required: bool,
    pub multivalued: bool,
    /// Join delimiter for a multivalued option (`,` when not set).
    pub delimiter: Option<String>,
    pub multivalue_all_selected: bool,
    pub secure: bool,
    /// A secure option whose value is visible to steps; meaningful only when `secure`.
    pub value_exposed: bool,
    /// Key-storage path of a secure option's default.
    pub storage_path: Option<String>,
    pub is_date: bool,
    pub date_format: Option<String>,
    pub hidden: bool,
    pub sort_values: bool,
    /// Option type (`text`, `file`) when given.
    pub option_type: Option<String>,
    /// `sortIndex` as used for ordering (list position when options are a list).
    pub sort_index: Option<i64>,
}

/// Where and how a job's steps are dispatched to nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDispatch {
    /// Node filter string, unexpanded (may be `${option.x}`, may be empty).
    pub filter: String,
    /// True when `filter` was rebuilt from a legacy `include`/`exclude` form.
    pub filter_from_legacy: bool,
    /// `filterExclude`.
    pub exclude_filter: Option<String>,
    /// `excludeFilterUncheck`: the exclude filter only unticks nodes in the
    /// GUI and is not applied to a run started without a node selection.
    pub exclude_filter_uncheck: bool,
    /// `excludePrecedence` (default true).
    pub exclude_precedence: bool,
    /// Thread count, unexpanded (`"1"` when not set; may be `${option.x}`).
    pub threadcount: String,
    /// Continue on other nodes after one fails.
    pub keepgoing: bool,
    pub rank_attribute: Option<String>,
    pub rank_order: RankOrder,
    /// `successOnEmptyNodeFilter`.
    pub success_on_empty: bool,
}

/// Node ordering direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RankOrder {
    Ascending,
    Descending,
}

/// A plugin reference with its configuration (orchestrator).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Orchestrator {
    pub plugin_type: String,
    pub config: BTreeMap<String, ConfigValue>,
}

/// The job's workflow (`sequence`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workflow {
    /// Strategy as written (`node-first` when missing). See [`Workflow::strategy_provider`].
    pub strategy: String,
    /// Continue with later steps after a step fails.
    pub keepgoing: bool,
    pub steps: Vec<Step>,
    /// Job-wide log filters: `sequence.pluginConfig.LogFilter`
    /// (XML `<sequence><pluginConfig><LogFilter type=…><config>`).
    pub log_filters: Vec<LogFilter>,
    /// Strategy plugin settings, `pluginConfig.WorkflowStrategy`.
    pub strategy_config: Option<serde_json::Value>,
    /// Any other `pluginConfig` entries, as written.
    pub plugin_config: BTreeMap<String, serde_json::Value>,
}

/// One workflow step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub description: Option<String>,
    pub kind: StepKind,
    /// Step run when this one fails.
    pub errorhandler: Option<Box<Step>>,
    /// On an error handler: when it succeeds, the workflow continues even if
    /// `keepgoing` is false.
    pub keepgoing_on_success: bool,
    /// Step-level log filters (`plugins.LogFilter`).
    pub log_filters: Vec<LogFilter>,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StepKind {
    /// `exec`: a command line, run on each node.
    Exec { command: String },
    /// `script`: an inline script, run on each node.
    Script {
        body: String,
        args: Option<String>,
        interpreter: Option<String>,
        args_quoted: bool,
        file_extension: Option<String>,
        secure_input: Option<SecureInput>,
    },
    /// `scriptfile` whose path is not a URL: a script file on the server.
    ScriptFile {
        path: String,
        args: Option<String>,
        interpreter: Option<String>,
        args_quoted: bool,
        file_extension: Option<String>,
        expand_tokens: bool,
        secure_input: Option<SecureInput>,
    },
    /// `scripturl`, or any script path starting with `http:`, `https:` or `file:`.
    ScriptUrl {
        url: String,
        args: Option<String>,
        interpreter: Option<String>,
        args_quoted: bool,
        file_extension: Option<String>,
        expand_tokens: bool,
        secure_input: Option<SecureInput>,
    },
    /// `jobref`: run another job.
    JobRef(JobRef),
    /// A step plugin (`type` + `nodeStep` + `configuration`).
    Plugin {
        node_step: bool,
        plugin_type: String,
        config: BTreeMap<String, ConfigValue>,
    },
    /// A step whose kind could not be determined; its fields as written.
    Unknown {
        fields: BTreeMap<String, serde_json::Value>,
    },
}

/// Secure-option input for a script step (`passSecureInput`,
/// `autoSecureInput`, `secureFormat`). Rundeck honours it only when the
/// server's `nodeExecutorSecureInput` feature is on; then secure option
/// values are written to the script's standard input (format `shell`), and
/// with `auto` the script is changed to read them itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecureInput {
    pub pass: bool,
    pub auto: bool,
    pub format: Option<String>,
}

/// A job reference step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRef {
    pub name: Option<String>,
    pub group: Option<String>,
    pub uuid: Option<String>,
    pub project: Option<String>,
    /// Argument line passed to the referenced job (`-opt value …`).
    pub args: Option<String>,
    /// Run once per node of the parent job rather than once.
    pub node_step: bool,
    /// Look the job up by group/name rather than uuid.
    pub use_name: bool,
    pub fail_on_disable: bool,
    pub child_nodes: bool,
    pub import_options: bool,
    pub ignore_notifications: bool,
    /// Node filter override for the referenced job.
    pub nodes: Option<JobRefNodes>,
    /// `nodeIntersect`: intersect the override with the parent's nodes.
    pub node_intersect: Option<bool>,
}

/// Node filter override of a job reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRefNodes {
    pub filter: String,
    pub threadcount: Option<u32>,
    pub keepgoing: Option<bool>,
    pub rank_attribute: Option<String>,
    pub rank_order: Option<RankOrder>,
}

/// A plugin configuration value: text, or structured data written as such in YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ConfigValue {
    String(String),
    Json(serde_json::Value),
}

impl ConfigValue {
    /// The value as text (JSON for structured values).
    pub fn as_text(&self) -> String {
        match self {
            ConfigValue::String(s) => s.clone(),
            ConfigValue::Json(v) => v.to_string(),
        }
    }
}

/// A log filter plugin (`key-value-data`, `mask-passwords`, `highlight-output`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFilter {
    pub plugin_type: String,
    pub config: BTreeMap<String, String>,
    /// False when the entry had no `config` map. Rundeck then skips the
    /// filter entirely (`ExecutionUtilService.createLogFilterConfigs`).
    pub has_config: bool,
}

/// A job schedule, kept for reporting (the Quartz fields Rundeck stores).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// Full crontab string when the schedule was given as one.
    pub crontab: Option<String>,
    pub seconds: String,
    pub minute: String,
    pub hour: String,
    pub day_of_month: String,
    pub month: String,
    pub day_of_week: String,
    pub year: String,
}

impl Workflow {
    /// The strategy plugin Rundeck runs: `step-first` is a synonym of
    /// `sequential` (`WorkflowStrategyService`); other names are used as written.
    pub fn strategy_provider(&self) -> &str {
        match self.strategy.as_str() {
            "step-first" => "sequential",
            s => s,
        }
    }
}

impl Step {
    /// Whether the step runs once per node (`Some(true)`), once per
    /// workflow (`Some(false)`), or cannot be told (`None`, unknown kind).
    pub fn node_step(&self) -> Option<bool> {
        match &self.kind {
            StepKind::Exec { .. }
            | StepKind::Script { .. }
            | StepKind::ScriptFile { .. }
            | StepKind::ScriptUrl { .. } => Some(true),
            StepKind::JobRef(r) => Some(r.node_step),
            StepKind::Plugin { node_step, .. } => Some(*node_step),
            StepKind::Unknown { .. } => None,
        }
    }

    #[cfg(test)]
    /// A short name of the step kind: `exec`, `script`, `scriptfile`,
    /// `scripturl`, `jobref`, `plugin`, `unknown`.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            StepKind::Exec { .. } => "exec",
            StepKind::Script { .. } => "script",
            StepKind::ScriptFile { .. } => "scriptfile",
            StepKind::ScriptUrl { .. } => "scripturl",
            StepKind::JobRef(_) => "jobref",
            StepKind::Plugin { .. } => "plugin",
            StepKind::Unknown { .. } => "unknown",
        }
    }
}

impl Job {
    /// `group/name`, the name Rundeck shows.
    pub fn full_name(&self) -> String {
        match &self.group {
            Some(g) => format!("{g}/{}", self.name),
            None => self.name.clone(),
        }
    }
}
