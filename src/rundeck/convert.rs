//! A Rundeck job carried over into a sortie job spec (JSON), with the same
//! meaning, or refused with the reasons.
//!
//! What a runner can do is carried over: the steps that run commands and
//! scripts (`exec` becomes a `shell` step, as Rundeck runs it through a shell),
//! error handlers, keepgoing, the strategy and the node dispatch, options with
//! their rules, the timeout, retry, the log filters that feed data or mask
//! values, the log limit. The spec says `"dialect": "rundeck"`, so that its
//! tokens mean what Rundeck means (`${unquotedoption.x}`, `@option.x@` in
//! scripts, a missing option blank, any other unknown reference left as
//! written). What belongs to a Rundeck server (schedules, notifications,
//! lifecycle plugins, orchestrators) is not carried over and said so in the
//! notes. A step a runner cannot run (a job reference, a plugin sortie does not
//! have) refuses the whole job — never a half-run job — with one line per step.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::nodes::filter::tokenize;
use crate::rundeck::model::{
    ConfigValue, Job, LogFilter, NodeDispatch, OptionDef, RankOrder, RetryCount, Step, StepKind,
    Timeout,
};

/// A job carried over: its spec, and what was not carried over.
#[derive(Debug)]
pub struct Converted {
    pub spec: Value,
    pub notes: Vec<String>,
}

/// Log filters sortie applies; the others are noted.
const FILTERS: &[&str] = &[
    "key-value-data",
    "mask-passwords",
    "highlight-output",
    "quiet-output",
];

/// Carry `job` over, or say why it cannot be.
pub fn convert(job: &Job) -> Result<Converted, Vec<String>> {
    let mut notes = Vec::new();
    let mut refused = Vec::new();
    let label = job.full_name();
    let mut spec = Map::new();
    let id = job
        .uuid
        .clone()
        .unwrap_or_else(|| slug(&label).unwrap_or_else(|| "rundeck-job".into()));
    spec.insert("id".into(), id.into());
    spec.insert("name".into(), label.clone().into());
    let mut about = Map::new();
    if let Some(uuid) = &job.uuid {
        about.insert("id".into(), uuid.clone().into());
    }
    if let Some(group) = &job.group {
        about.insert("group".into(), group.clone().into());
    }
    if let Some(project) = &job.project {
        about.insert("project".into(), project.clone().into());
    }
    if !about.is_empty() {
        spec.insert("job".into(), Value::Object(about));
    }
    spec.insert("dialect".into(), "rundeck".into());
    if !job.description.is_empty() {
        spec.insert("description".into(), job.description.clone().into());
    }
    options(job, &mut spec, &mut notes);
    if let Some(timeout) = &job.timeout {
        if let Some(text) = duration(timeout) {
            spec.insert("timeout".into(), text.into());
        }
    }
    if let Some(retry) = &job.retry {
        let count = match &retry.count {
            RetryCount::Fixed(n) => json!(n),
            RetryCount::Dynamic(text) => json!(text),
        };
        let mut r = Map::new();
        r.insert("count".into(), count);
        if let Some(delay) = retry.delay.as_ref().and_then(duration) {
            r.insert("delay".into(), delay.into());
        }
        spec.insert("retry".into(), Value::Object(r));
    }
    spec.insert("keepgoing".into(), job.workflow.keepgoing.into());
    match job.workflow.strategy_provider() {
        "node-first" => {}
        "sequential" => {
            spec.insert("strategy".into(), "step-first".into());
        }
        "parallel" => {
            spec.insert("strategy".into(), "parallel".into());
        }
        other => refused.push(format!(
            "strategy {other:?}: sortie runs node-first, step-first (sequential) and parallel"
        )),
    }
    if let Some(nodes) = &job.nodes {
        spec.insert("nodes".into(), dispatch(nodes, &mut notes));
        if !job.node_filter_editable {
            notes.push(
                "nodeFilterEditable: the filter is the job's; a runner has no UI to change it"
                    .into(),
            );
        }
    }
    if let Some(orchestrator) = &job.orchestrator {
        notes.push(format!(
            "orchestrator {:?}: not carried over; nodes run in dispatch order",
            orchestrator.plugin_type
        ));
    }
    let filters = log_filters(&job.workflow.log_filters, "the job", &mut notes);
    if !filters.is_empty() {
        spec.insert("log_filters".into(), Value::Array(filters));
    }
    if let Some(limit) = &job.loglimit {
        spec.insert(
            "log_limit".into(),
            json!({
                "limit": limit,
                "action": job.loglimit_action.as_deref().unwrap_or("halt"),
                "status": job.loglimit_status.as_deref().unwrap_or("failed"),
            }),
        );
    }
    let mut steps = Vec::new();
    let mut secrets = BTreeMap::new();
    for (i, step) in job.workflow.steps.iter().enumerate() {
        match convert_step(step, &format!("step {i}"), &mut notes, &mut secrets) {
            Ok(s) => steps.push(s),
            Err(why) => refused.push(why),
        }
    }
    spec.insert("steps".into(), Value::Array(steps));
    if !secrets.is_empty() {
        spec.insert("secrets".into(), json!(secrets));
    }
    server_only(job, &mut notes);
    if !refused.is_empty() {
        return Err(refused
            .into_iter()
            .map(|why| format!("{label}: {why}"))
            .collect());
    }
    Ok(Converted {
        spec: Value::Object(spec),
        notes: notes.into_iter().map(|n| format!("{label}: {n}")).collect(),
    })
}

/// A job id from its name: `[A-Za-z0-9._-]`, the rest `-`.
fn slug(name: &str) -> Option<String> {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('-').to_string();
    (!s.is_empty()).then_some(s)
}

/// A Rundeck duration as sortie reads one: bare seconds get their unit, a
/// `${option.x}` stays (expanded when the job runs); 0 is no timeout.
fn duration(timeout: &Timeout) -> Option<String> {
    match timeout.seconds {
        Some(0) => None,
        Some(seconds) => Some(format!("{seconds}s")),
        None => Some(timeout.raw.clone()),
    }
}

fn options(job: &Job, spec: &mut Map<String, Value>, notes: &mut Vec<String>) {
    let mut values = Map::new();
    let mut defs = Vec::new();
    for option in &job.options {
        if let Some(value) = &option.value {
            if !option.secure {
                values.insert(option.name.clone(), value.clone().into());
            }
        } else if option.multivalued
            && option.multivalue_all_selected
            && !option.secure
            && !option.values.is_empty()
        {
            // Rundeck's default for it is every listed value.
            let delimiter = option.delimiter.as_deref().unwrap_or(",");
            values.insert(option.name.clone(), option.values.join(delimiter).into());
        }
        defs.push(option_def(option, notes));
    }
    if !values.is_empty() {
        spec.insert("options".into(), Value::Object(values));
    }
    if !defs.is_empty() {
        spec.insert("option_defs".into(), Value::Array(defs));
    }
}

fn option_def(option: &OptionDef, notes: &mut Vec<String>) -> Value {
    let mut def = Map::new();
    def.insert("name".into(), option.name.clone().into());
    let flags = [
        ("required", option.required),
        ("enforced", option.enforced),
        ("multivalued", option.multivalued),
        ("secure", option.secure),
        ("value_exposed", option.value_exposed),
    ];
    for (key, set) in flags {
        if set {
            def.insert(key.into(), true.into());
        }
    }
    if !option.values.is_empty() {
        def.insert("values".into(), json!(option.values));
    }
    if let Some(regex) = &option.regex {
        def.insert("regex".into(), regex.clone().into());
    }
    if option.multivalued {
        let delimiter = option.delimiter.as_deref().unwrap_or(",");
        def.insert("delimiter".into(), delimiter.into());
    }
    if option.secure {
        if let Some(path) = &option.storage_path {
            def.insert("secret".into(), storage_secret(path).into());
        } else if let Some(value) = &option.value {
            def.insert("default".into(), value.clone().into());
        }
    }
    if let Some(format) = option.date_format.as_ref().filter(|_| option.is_date) {
        def.insert("date_format".into(), format.clone().into());
    }
    if option.option_type.as_deref() == Some("file") {
        notes.push(format!(
            "option {:?}: a file option (a file uploaded to Rundeck) is not carried over: it \
             is a text option here, and ${{file.{}...}} has no value",
            option.name, option.name
        ));
    }
    if option.values_url.is_some() {
        notes.push(format!(
            "option {:?}: valuesUrl is for Rundeck's UI; not fetched",
            option.name
        ));
    }
    Value::Object(def)
}

/// Rundeck's key storage path (`keys/app/db`) as a runner secret: the last
/// part, from the secrets directory (`file:db`).
pub fn storage_secret(path: &str) -> String {
    let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    format!("file:{name}")
}

fn dispatch(nodes: &NodeDispatch, notes: &mut Vec<String>) -> Value {
    let mut d = Map::new();
    d.insert("filter".into(), nodes.filter.clone().into());
    if let Some(exclude) = nodes.exclude_filter.as_ref().filter(|f| !f.is_empty()) {
        if nodes.exclude_filter_uncheck {
            notes.push(
                "excludeFilterUncheck: the exclude filter only unticked nodes in Rundeck's UI; not applied"
                    .into(),
            );
        } else {
            d.insert("exclude_filter".into(), exclude.clone().into());
        }
    }
    if !nodes.exclude_precedence {
        d.insert("exclude_precedence".into(), false.into());
    }
    d.insert("threadcount".into(), nodes.threadcount.clone().into());
    if nodes.keepgoing {
        d.insert("keepgoing".into(), true.into());
    }
    if let Some(rank) = &nodes.rank_attribute {
        d.insert("rank_attribute".into(), rank.clone().into());
    }
    if nodes.rank_order == RankOrder::Descending {
        d.insert("rank_order".into(), "descending".into());
    }
    if nodes.success_on_empty {
        d.insert("success_on_empty".into(), true.into());
    }
    Value::Object(d)
}

fn log_filters(filters: &[LogFilter], whose: &str, notes: &mut Vec<String>) -> Vec<Value> {
    let mut out = Vec::new();
    for filter in filters {
        if !filter.has_config {
            notes.push(format!(
                "{whose}: log filter {:?} has no config; Rundeck skips it",
                filter.plugin_type
            ));
            continue;
        }
        if !FILTERS.contains(&filter.plugin_type.as_str()) {
            notes.push(format!(
                "{whose}: log filter {:?} is not available on a runner; not applied",
                filter.plugin_type
            ));
            continue;
        }
        let mut f = Map::new();
        f.insert("type".into(), filter.plugin_type.clone().into());
        for (k, v) in &filter.config {
            f.insert(k.clone(), v.clone().into());
        }
        out.push(Value::Object(f));
    }
    out
}

/// A plugin property as text; a null one is not set.
pub(super) fn config_text(
    config: &std::collections::BTreeMap<String, ConfigValue>,
    key: &str,
) -> Option<String> {
    match config.get(key)? {
        ConfigValue::Json(Value::Null) => None,
        value => Some(value.as_text()),
    }
}

/// A boolean plugin property as Rundeck reads one (`Boolean.parseBoolean`:
/// `true` in any case; anything else, or nothing, is false).
pub(super) fn config_true(
    config: &std::collections::BTreeMap<String, ConfigValue>,
    key: &str,
) -> bool {
    config_text(config, key).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The rundeck-http-plugin's configuration as an `http` step: URL, method,
/// headers (`Name: value` lines, or JSON), body, the expected status, and
/// sslVerify; authentication other than none is the job's to put in a header.
fn http_plugin(
    config: &std::collections::BTreeMap<String, ConfigValue>,
    label: &str,
    notes: &mut Vec<String>,
) -> Result<Value, String> {
    let Some(url) = config_text(config, "remoteUrl") else {
        return Err(format!("{label}: an HTTP step without remoteUrl"));
    };
    let mut http = serde_json::json!({ "url": url });
    if let Some(method) = config_text(config, "method") {
        http["method"] = method.into();
    }
    if let Some(body) = config_text(config, "body").filter(|b| !b.is_empty()) {
        http["body"] = body.into();
    }
    let auth = config_text(config, "authentication").unwrap_or_default();
    if !auth.is_empty() && !auth.eq_ignore_ascii_case("none") {
        return Err(format!(
            "{label}: the HTTP step's {auth} authentication: give its Authorization header \
             from a secret instead"
        ));
    }
    if let Some(text) = config_text(config, "headers").filter(|h| !h.trim().is_empty()) {
        let headers: serde_json::Map<String, Value> = match serde_json::from_str(&text) {
            Ok(Value::Object(map)) => map
                .into_iter()
                .map(|(k, v)| (k, v.as_str().map_or(v.to_string(), str::to_string).into()))
                .collect(),
            _ => text
                .lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().into()))
                .collect(),
        };
        http["headers"] = Value::Object(headers);
    }
    let yes = |key| config_true(config, key);
    let code = config_text(config, "responseCode").and_then(|c| c.parse::<u16>().ok());
    http["expect"] = match code.filter(|_| yes("checkResponseCode")) {
        Some(code) => serde_json::json!([code]),
        // The plugin fails an answer only from 400 on, and follows no
        // redirect of a POST: a login's 302 is its success.
        None => serde_json::json!(["1xx", "2xx", "3xx"]),
    };
    if config_text(config, "sslVerify").is_some_and(|v| v.eq_ignore_ascii_case("false")) {
        http["insecure"] = true.into();
        notes.push(format!(
            "{label}: sslVerify false: the server's certificate is not checked"
        ));
    }
    if yes("proxySettings") {
        notes.push(format!(
            "{label}: the HTTP step's own proxy settings are not carried over: the runner's \
             HTTPS_PROXY applies"
        ));
    }
    Ok(http)
}

/// One step, or why it cannot run on a runner; `secrets` gathers the job's
/// secrets the step reads (key → reference).
fn convert_step(
    step: &Step,
    label: &str,
    notes: &mut Vec<String>,
    secrets: &mut BTreeMap<String, String>,
) -> Result<Value, String> {
    let label = match &step.description {
        Some(d) if !d.is_empty() => format!("{label} ({d})"),
        _ => label.to_string(),
    };
    let mut s = Map::new();
    if let Some(d) = step.description.as_ref().filter(|d| !d.is_empty()) {
        s.insert("name".into(), d.clone().into());
    }
    let script = |s: &mut Map<String, Value>,
                  args: &Option<String>,
                  interpreter: &Option<String>,
                  quoted: bool| {
        if let Some(words) = interpreter.as_ref().filter(|i| !i.trim().is_empty()) {
            s.insert("interpreter".into(), words.clone().into());
        }
        let args: Vec<String> = args.as_deref().map(tokenize).unwrap_or_default();
        if !args.is_empty() {
            s.insert("args".into(), json!(args));
        }
        if quoted {
            s.insert("args_quoted".into(), true.into());
        }
    };
    match &step.kind {
        StepKind::Exec { command } => {
            s.insert("shell".into(), command.clone().into());
        }
        StepKind::Script {
            body,
            args,
            interpreter,
            args_quoted,
            file_extension,
            secure_input,
        } => {
            s.insert("script".into(), body.clone().into());
            script(&mut s, args, interpreter, *args_quoted);
            if let Some(ext) = file_extension.as_ref().filter(|e| !e.is_empty()) {
                let ext = if ext.starts_with('.') {
                    ext.clone()
                } else {
                    format!(".{ext}")
                };
                s.insert("extension".into(), ext.into());
            }
            if secure_input.as_ref().is_some_and(|i| i.pass) {
                notes.push(format!(
                    "{label}: secure options are not written to the script's input; it reads them from RD_SECUREOPTION_*"
                ));
            }
        }
        StepKind::ScriptFile {
            path,
            args,
            interpreter,
            args_quoted,
            expand_tokens,
            ..
        } => {
            s.insert("scriptfile".into(), path.clone().into());
            script(&mut s, args, interpreter, *args_quoted);
            if *expand_tokens {
                s.insert("expand_tokens".into(), true.into());
            }
        }
        StepKind::ScriptUrl {
            url,
            args,
            interpreter,
            args_quoted,
            expand_tokens,
            ..
        } => {
            s.insert("scripturl".into(), url.clone().into());
            script(&mut s, args, interpreter, *args_quoted);
            if *expand_tokens {
                s.insert("expand_tokens".into(), true.into());
            }
        }
        StepKind::JobRef(r) => {
            let target = match (&r.group, &r.name, &r.uuid) {
                (_, _, Some(uuid)) if !r.use_name => uuid.clone(),
                (Some(g), Some(n), _) => format!("{g}/{n}"),
                (None, Some(n), _) => n.clone(),
                _ => "another job".into(),
            };
            return Err(format!(
                "{label}: a job reference ({target}): a runner has no job store to look it up in; \
                 give the control plane the referenced job's steps instead"
            ));
        }
        StepKind::Plugin {
            plugin_type,
            config,
            node_step,
        } => match plugin_type.as_str() {
            "localexec" => {
                let Some(command) = config_text(config, "command") else {
                    return Err(format!("{label}: localexec without a command"));
                };
                s.insert("shell".into(), command.into());
                s.insert("node_step".into(), false.into());
            }
            // The rundeck-http-plugin's steps (workflow and node).
            "edu.ohio.ais.rundeck.HttpWorkflowStepPlugin"
            | "edu.ohio.ais.rundeck.HttpWorkflowNodeStepPlugin" => {
                let http = http_plugin(config, &label, notes)?;
                s.insert("http".into(), http);
                s.insert("node_step".into(), (*node_step).into());
                if let Some(ms) = config_text(config, "timeout").and_then(|t| t.parse::<u64>().ok())
                {
                    s.insert("timeout".into(), format!("{ms}ms").into());
                }
            }
            // Result data from a value: read back as ${export.NAME} (or
            // ${data.NAME}), which sortie keeps in one namespace.
            "export-var" => {
                let (Some(name), Some(value)) =
                    (config_text(config, "export"), config_text(config, "value"))
                else {
                    return Err(format!("{label}: export-var needs export and value"));
                };
                let group = config_text(config, "group").unwrap_or_else(|| "export".into());
                if group != "export" && group != "data" {
                    notes.push(format!(
                        "{label}: export-var's group {group:?} is read as ${{data.{name}}} or \
                         ${{export.{name}}} here"
                    ));
                }
                s.insert("data".into(), serde_json::json!({ name: value }));
                s.insert("node_step".into(), (*node_step).into());
            }
            ansible if crate::rundeck::ansible::is_ansible(ansible) => {
                let (step, wanted) = crate::rundeck::ansible::step(ansible, config, &label, notes)?;
                s.insert("ansible".into(), step);
                s.insert("node_step".into(), false.into());
                for (key, reference) in wanted {
                    match secrets.get(&key) {
                        Some(other) if *other != reference => {
                            return Err(format!(
                                "{label}: two Ansible steps read different {key} passwords \
                                 ({other} and {reference}); give the job one"
                            ))
                        }
                        _ => secrets.insert(key, reference),
                    };
                }
            }
            // The nixy plugins' local script, once for the workflow: a script
            // step on the runner.
            "nixy-local-workflow-step" => {
                let Some(body) = config_text(config, "script") else {
                    return Err(format!(
                        "{label}: nixy-local-workflow-step without a script"
                    ));
                };
                let tokens = references_as_tokens(&body);
                if tokens != body {
                    notes.push(format!(
                        "{label}: the ${{…}} references in its script are read as @…@ tokens: \
                         each value is put in as text, quoted for the shell, where the plugin \
                         pasted it into the code"
                    ));
                }
                s.insert("script".into(), tokens.into());
                // The plugin runs the file from bash: no #! line, bash reads it.
                let bash = (!body.starts_with("#!")).then(|| "bash".to_string());
                script(&mut s, &config_text(config, "arguments"), &bash, false);
                s.insert("node_step".into(), false.into());
            }
            // Rundeck's copy of one file from its server to each node: a copy
            // step (the runner is the server here).
            "copyfile" => copy_file(&mut s, config, &label, notes)?,
            // Rundeck's log of the data context (a workflow step).
            "log-data-step" => {
                if config_true(config, "debugOnly") {
                    notes.push(format!(
                        "{label}: log-data-step's debugOnly: sortie's log has no debug level; \
                         the data is logged"
                    ));
                }
                s.insert("log_data".into(), true.into());
            }
            // Rundeck's flow control: halt, failing or not; without halt it
            // does nothing.
            "flow-control" => {
                let yes = |key| config_true(config, key);
                if !yes("halt") {
                    return Err(format!(
                        "{label}: flow-control without halt does nothing: remove the step"
                    ));
                }
                let status = if yes("fail") { "failed" } else { "succeeded" };
                if let Some(custom) = config_text(config, "status").filter(|s| !s.is_empty()) {
                    notes.push(format!(
                        "{label}: flow-control's custom status {custom:?} ends the job {status}"
                    ));
                }
                s.insert(
                    "flow".into(),
                    serde_json::json!({ "status": status, "message": format!("{label}: flow control") }),
                );
                s.insert("node_step".into(), false.into());
            }
            other => {
                let kind = if *node_step {
                    "node step"
                } else {
                    "workflow step"
                };
                return Err(format!(
                    "{label}: the {kind} plugin {other:?} is not available on this runner"
                ));
            }
        },
        StepKind::Unknown { fields } => {
            let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
            return Err(format!(
                "{label}: a step of unknown kind (fields: {})",
                keys.join(", ")
            ));
        }
    }
    if !matches!(step.kind, StepKind::Plugin { .. }) && step.node_step() == Some(false) {
        s.insert("node_step".into(), false.into());
    }
    let filters = log_filters(&step.log_filters, &label, notes);
    if !filters.is_empty() {
        s.insert("log_filters".into(), Value::Array(filters));
    }
    if let Some(handler) = &step.errorhandler {
        let h = convert_step(handler, &format!("{label}'s error handler"), notes, secrets)?;
        s.insert("errorhandler".into(), h);
        if handler.keepgoing_on_success {
            s.insert("keepgoing_on_success".into(), true.into());
        }
    }
    Ok(Value::Object(s))
}

/// `${ns.key}` references of Rundeck's data context in a plugin's script,
/// which Rundeck replaces before the script runs, as `@ns.key@` tokens, which
/// sortie puts in quoted for where they stand. The shell's own `${NAME}` has
/// no dot, so it is left alone.
fn references_as_tokens(body: &str) -> String {
    const NAMESPACES: &[&str] = &[
        "option",
        "secureOption",
        "unquotedoption",
        "job",
        "node",
        "data",
        "export",
        "globals",
    ];
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 2..];
        let reference = tail.find('}').map(|end| &tail[..end]).filter(|r| {
            r.split_once('.').is_some_and(|(ns, key)| {
                NAMESPACES.contains(&ns)
                    && !key.is_empty()
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            })
        });
        match reference {
            Some(r) => {
                out.push('@');
                out.push_str(r);
                out.push('@');
                rest = &tail[r.len() + 1..];
            }
            None => {
                out.push_str("${");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Rundeck's `copyfile` node step as a copy step: one file, its paths
/// absolute (Rundeck reads a relative source from its own working directory
/// and writes a relative destination in the node user's home, neither of
/// which a runner can know).
fn copy_file(
    s: &mut Map<String, Value>,
    config: &std::collections::BTreeMap<String, ConfigValue>,
    label: &str,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    let set = |key| config_text(config, key).filter(|v| !v.is_empty());
    if config_true(config, "recursive") || set("pattern").is_some() {
        return Err(format!(
            "{label}: copyfile of a directory (recursive or pattern): a copy step puts one file; \
             archive the directory and copy that"
        ));
    }
    let (Some(source), Some(dest)) = (set("sourcePath"), set("destinationPath")) else {
        return Err(format!(
            "{label}: copyfile needs sourcePath and destinationPath"
        ));
    };
    for (field, path) in [("sourcePath", &source), ("destinationPath", &dest)] {
        if !path.starts_with('/') && !path.starts_with("${") {
            return Err(format!(
                "{label}: copyfile's {field} {path:?} is relative: give an absolute path"
            ));
        }
    }
    if set("echo").is_some_and(|v| v.eq_ignore_ascii_case("false")) {
        notes.push(format!(
            "{label}: copyfile's echo false: the copy still logs the bytes it copied"
        ));
    }
    s.insert("copy".into(), json!({ "source": source, "dest": dest }));
    Ok(())
}

/// What belongs to a Rundeck server: noted, not carried over.
fn server_only(job: &Job, notes: &mut Vec<String>) {
    if job.schedule.is_some() && job.schedule_enabled {
        notes.push("schedule: not carried over; the control plane schedules jobs".into());
    }
    if job.notifications {
        notes.push(format!(
            "notifications ({}): not carried over; the control plane reports results",
            job.notification_triggers.join(", ")
        ));
    }
    for (service, providers) in &job.plugins {
        if !providers.is_empty() {
            let names: Vec<&str> = providers.keys().map(String::as_str).collect();
            notes.push(format!(
                "{service} plugins ({}): not available on a runner",
                names.join(", ")
            ));
        }
    }
    if job.multiple_executions {
        notes.push("multipleExecutions: the control plane decides what runs at once".into());
    }
    for path in &job.unknown {
        notes.push(format!("{path}: not understood; ignored"));
    }
    for warning in &job.warnings {
        notes.push(warning.clone());
    }
}
