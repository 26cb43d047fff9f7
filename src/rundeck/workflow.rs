//! The workflow (`sequence`) and its steps, read as `WorkflowDataImpl.fromMap`,
//! `PluginStep.updateFromMap` and `JobExec.updateFromMap` read them.
//!
//! How Rundeck decides a step's kind, in order:
//! 1. `conditionGroups` → a conditional step (Rundeck 5; not modelled here,
//!    kept as [`StepKind::Unknown`] and listed as unknown);
//! 2. `jobref` present (even null-valued keys count only when not null) → job reference;
//! 3. no true-ish `type` and one of `exec`, `script`, `scriptfile`,
//!    `scripturl` → the built-in command/script step, taking the first of
//!    those four that is present; the others are ignored;
//! 4. otherwise a plugin step of `type` (`nodeStep` decides node step or
//!    workflow step). A step with none of these is [`StepKind::Unknown`].
//!
//! `scriptfile` and `scripturl` are one built-in step: whether the path is
//! fetched or read from disk depends only on whether it starts with
//! `http:`, `https:` or `file:` (case-insensitive), not on the key used.
//! Step log filters (`plugins.LogFilter`) are kept for command, script and
//! plugin steps; Rundeck does not read them on job reference steps.

use std::collections::BTreeMap;

use crate::rundeck::context::Ctx;
use crate::rundeck::error::{FieldError, FieldResult};
use crate::rundeck::model::{
    ConfigValue, JobRef, JobRefNodes, LogFilter, RankOrder, SecureInput, Step, StepKind, Workflow,
};
use crate::rundeck::value::{Node, Value};

/// Keys every step may carry, whatever its kind.
const COMMON: &[&str] = &[
    "description",
    "keepgoingOnSuccess",
    "plugins",
    "errorhandler",
];
/// Settings of the script plugins that the legacy step form passes through.
const SECURE_INPUT: &[&str] = &["passSecureInput", "autoSecureInput", "secureFormat"];
const LEGACY: &[&str] = &[
    "exec",
    "script",
    "scriptfile",
    "scripturl",
    "args",
    "scriptInterpreter",
    "interpreterArgsQuoted",
    "fileExtension",
    "expandTokenInScriptFile",
];
/// The plugin types Rundeck 5 uses for the built-in steps.
const EXEC_TYPE: &str = "exec-command";
const SCRIPT_TYPE: &str = "script-inline";
const SCRIPT_FILE_TYPE: &str = "script-file-url";

/// Reads `sequence`.
pub(crate) fn read_workflow(seq: &Node, path: &str, ctx: &mut Ctx) -> FieldResult<Workflow> {
    if seq.map().is_none() {
        return Err(FieldError::new(
            path,
            seq.line,
            format!("sequence must be a map, found {}", seq.v.kind()),
        ));
    }
    ctx.unknown_keys(
        seq,
        path,
        &[
            "keepgoing",
            "strategy",
            "commands",
            "pluginConfig",
            "threadcount",
        ],
    );
    let keepgoing = seq
        .get("keepgoing")
        .is_some_and(|k| ctx.groovy_bool(k, &format!("{path}.keepgoing")));
    let strategy = seq
        .get("strategy")
        .filter(|s| s.truthy())
        .and_then(Node::to_jstring)
        .unwrap_or_else(|| "node-first".into());

    let mut log_filters = Vec::new();
    let mut strategy_config = None;
    let mut plugin_config = BTreeMap::new();
    if let Some(pc) = seq.get("pluginConfig").filter(|p| p.truthy()) {
        let ppath = format!("{path}.pluginConfig");
        let entries = map_of(pc, &ppath, "pluginConfig")?;
        for (k, v) in entries {
            match k.as_str() {
                "LogFilter" => {
                    log_filters = read_log_filters(v, &format!("{ppath}.LogFilter"), ctx)?
                }
                "WorkflowStrategy" => strategy_config = Some(v.to_json()),
                _ => {
                    ctx.unknown.push(format!("{ppath}.{k}"));
                    plugin_config.insert(k.clone(), v.to_json());
                }
            }
        }
    }

    let cpath = format!("{path}.commands");
    let commands = match seq.get("commands") {
        None => Vec::new(),
        Some(c) if c.is_null() => Vec::new(),
        Some(c) => match &c.v {
            Value::List(items) => items.clone(),
            other => {
                return Err(FieldError::new(
                    cpath,
                    c.line,
                    format!("commands must be a list of steps, found {}", other.kind()),
                ))
            }
        },
    };
    if commands.is_empty() {
        return Err(FieldError::new(
            cpath,
            seq.line,
            "the workflow has no steps (Rundeck refuses an empty workflow)",
        ));
    }
    let steps = commands
        .iter()
        .enumerate()
        .map(|(i, c)| read_step(c, &format!("{cpath}[{i}]"), false, ctx))
        .collect::<FieldResult<Vec<_>>>()?;
    Ok(Workflow {
        strategy,
        keepgoing,
        steps,
        log_filters,
        strategy_config,
        plugin_config,
    })
}

fn read_step(map: &Node, path: &str, is_handler: bool, ctx: &mut Ctx) -> FieldResult<Step> {
    if map.map().is_none() {
        return Err(FieldError::new(
            path,
            map.line,
            format!("a step must be a map, found {}", map.v.kind()),
        ));
    }
    let description = map
        .get("description")
        .and_then(Node::to_jstring)
        .filter(|d| !d.is_empty());
    let keepgoing_on_success = map
        .get("keepgoingOnSuccess")
        .is_some_and(|k| ctx.groovy_bool(k, &format!("{path}.keepgoingOnSuccess")));

    let (kind, reads_log_filters) = if !is_handler && map.contains_key("conditionGroups") {
        ctx.unknown.push(format!("{path}.conditionGroups"));
        (unknown_kind(map), true)
    } else if map.has_non_null("jobref") {
        (read_jobref(map, path, ctx)?, false)
    } else {
        (read_plugin_or_command(map, path, ctx)?, true)
    };

    let mut log_filters = Vec::new();
    if let Some(p) = map.get("plugins").filter(|p| p.truthy()) {
        let ppath = format!("{path}.plugins");
        let entries = map_of(p, &ppath, "step plugins")?;
        for (k, v) in entries {
            if k != "LogFilter" {
                ctx.unknown.push(format!("{ppath}.{k}"));
                continue;
            }
            let filters = read_log_filters(v, &format!("{ppath}.LogFilter"), ctx)?;
            if reads_log_filters {
                log_filters = filters;
            } else if !filters.is_empty() {
                ctx.warn(format!(
                    "{ppath}.LogFilter: Rundeck does not read log filters on this kind of step; ignored"
                ));
            }
        }
    }

    let errorhandler = match map.get("errorhandler").filter(|e| e.truthy()) {
        Some(eh) if is_handler => {
            ctx.warn(format!(
                "{path}.errorhandler: an error handler cannot have its own error handler; Rundeck ignores it"
            ));
            let _ = eh;
            None
        }
        Some(eh) => Some(Box::new(read_step(
            eh,
            &format!("{path}.errorhandler"),
            true,
            ctx,
        )?)),
        None => None,
    };

    Ok(Step {
        description,
        kind,
        errorhandler,
        keepgoing_on_success,
        log_filters,
    })
}

fn unknown_kind(map: &Node) -> StepKind {
    let fields = map
        .map()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !COMMON.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.to_json()))
        .collect();
    StepKind::Unknown { fields }
}

/// `!data.type && (exec|script|scriptfile|scripturl != null)` → built-in step;
/// otherwise a plugin step (or unknown without a type).
fn read_plugin_or_command(map: &Node, path: &str, ctx: &mut Ctx) -> FieldResult<StepKind> {
    let has_type = map.get("type").is_some_and(Node::truthy);
    let legacy = !has_type
        && ["exec", "script", "scriptfile", "scripturl"]
            .iter()
            .any(|k| map.has_non_null(k));
    if legacy {
        return Ok(read_command(map, path, ctx));
    }
    let mut known: Vec<&str> = COMMON.to_vec();
    known.extend(["type", "nodeStep", "configuration"]);
    if !has_type {
        ctx.unknown.push(path.to_string());
        ctx.unknown_keys(map, path, &known);
        return Ok(unknown_kind(map));
    }
    known.extend(LEGACY.iter().copied());
    ctx.unknown_keys(map, path, &known);
    for k in LEGACY.iter().filter(|k| map.has_non_null(k)) {
        ctx.warn(format!(
            "{path}.{k}: ignored by Rundeck because the step has a plugin type"
        ));
    }
    let plugin_type = map
        .get("type")
        .and_then(Node::to_jstring)
        .unwrap_or_default();
    let node_step = map
        .get("nodeStep")
        .is_some_and(|n| ctx.groovy_bool(n, &format!("{path}.nodeStep")));
    let config = match map.get("configuration") {
        None => BTreeMap::new(),
        Some(c) if c.is_null() => BTreeMap::new(),
        Some(c) => match c.map() {
            Some(entries) => entries
                .iter()
                .map(|(k, v)| (k.clone(), config_value(v)))
                .collect(),
            None => {
                return Err(FieldError::new(
                    format!("{path}.configuration"),
                    c.line,
                    format!("plugin configuration must be a map, found {}", c.v.kind()),
                ))
            }
        },
    };
    if node_step {
        if let Some(kind) = builtin_from_plugin(&plugin_type, &config, path, ctx) {
            return Ok(kind);
        }
    }
    Ok(StepKind::Plugin {
        node_step,
        plugin_type,
        config,
    })
}

/// A plugin configuration value: scalars as text, structures as JSON.
fn config_value(v: &Node) -> ConfigValue {
    match &v.v {
        Value::List(_) | Value::Map(_) | Value::Null => ConfigValue::Json(v.to_json()),
        _ => ConfigValue::String(v.to_jstring().unwrap_or_default()),
    }
}

/// `CommandExec.setConfigurationFromMap` for the legacy `exec`/`script*` keys.
fn read_command(map: &Node, path: &str, ctx: &mut Ctx) -> StepKind {
    let mut known: Vec<&str> = COMMON.to_vec();
    known.extend(LEGACY.iter().copied());
    known.extend(["type", "nodeStep", "configuration"]);
    if !map.has_non_null("exec") {
        known.extend(SECURE_INPUT.iter().copied());
    }
    ctx.unknown_keys(map, path, &known);
    if map
        .get("nodeStep")
        .is_some_and(|n| !n.is_null() && !n.truthy())
    {
        ctx.warn(format!(
            "{path}.nodeStep: ignored; command and script steps always run per node"
        ));
    }
    if map.get("configuration").is_some_and(Node::truthy) {
        ctx.warn(format!(
            "{path}.configuration: ignored by Rundeck for a command or script step"
        ));
    }
    let s = |k: &str| map.get(k).and_then(Node::to_jstring);
    let order = ["exec", "script", "scriptfile", "scripturl"];
    let chosen = order
        .iter()
        .copied()
        .find(|k| map.has_non_null(k))
        .expect("caller checked one is present");
    for k in order
        .iter()
        .filter(|k| **k != chosen && map.has_non_null(k))
    {
        ctx.warn(format!(
            "{path}.{k}: ignored by Rundeck because the step also has {chosen}"
        ));
    }
    if chosen == "exec" {
        let command = s("exec").unwrap_or_default();
        if !command.is_empty() {
            for k in [
                "scriptInterpreter",
                "interpreterArgsQuoted",
                "fileExtension",
                "expandTokenInScriptFile",
            ] {
                if map.has_non_null(k) {
                    ctx.warn(format!("{path}.{k}: ignored by Rundeck for an exec step"));
                }
            }
            if s("args").is_some_and(|a| !a.is_empty()) {
                ctx.warn(format!("{path}.args: ignored by Rundeck for an exec step"));
            }
        }
        return StepKind::Exec { command };
    }
    let args = s("args");
    let interpreter = s("scriptInterpreter");
    let args_quoted = interpreter.is_some()
        && map
            .get("interpreterArgsQuoted")
            .is_some_and(Node::parse_boolean);
    let interpreter = interpreter.filter(|i| !i.is_empty());
    let file_extension = s("fileExtension").filter(|e| !e.is_empty());
    let secure_input = secure_input(
        map.get("passSecureInput").map(Node::parse_boolean),
        map.get("autoSecureInput").map(Node::parse_boolean),
        s("secureFormat"),
    );
    if chosen == "script" {
        if map.has_non_null("expandTokenInScriptFile") {
            ctx.warn(format!(
                "{path}.expandTokenInScriptFile: ignored for an inline script (its @tokens@ are always expanded)"
            ));
        }
        return StepKind::Script {
            body: s("script").unwrap_or_default(),
            args,
            interpreter,
            args_quoted,
            file_extension,
            secure_input,
        };
    }
    let parts = ScriptFileParts {
        path_value: s(chosen).unwrap_or_default(),
        args,
        interpreter,
        args_quoted,
        file_extension,
        expand_tokens: map
            .get("expandTokenInScriptFile")
            .is_some_and(Node::parse_boolean),
        secure_input,
    };
    script_file_kind(parts, chosen, path, ctx)
}

/// `^(?i:https?|file):.*$`: the test Rundeck uses to fetch rather than read a script.
fn is_url(p: &str) -> bool {
    let lower = p.to_ascii_lowercase();
    (lower.starts_with("http:") || lower.starts_with("https:") || lower.starts_with("file:"))
        && !p.contains(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}'])
}

/// The settings shared by the script-file and script-URL steps.
struct ScriptFileParts {
    path_value: String,
    args: Option<String>,
    interpreter: Option<String>,
    args_quoted: bool,
    file_extension: Option<String>,
    expand_tokens: bool,
    secure_input: Option<SecureInput>,
}

/// `passSecureInput` / `autoSecureInput` / `secureFormat`, when any is set.
fn secure_input(
    pass: Option<bool>,
    auto: Option<bool>,
    format: Option<String>,
) -> Option<SecureInput> {
    if pass.is_none() && auto.is_none() && format.is_none() {
        return None;
    }
    Some(SecureInput {
        pass: pass.unwrap_or(false),
        auto: auto.unwrap_or(false),
        format,
    })
}

fn script_file_kind(p: ScriptFileParts, key: &str, path: &str, ctx: &mut Ctx) -> StepKind {
    let url = is_url(&p.path_value);
    if url && key == "scriptfile" {
        ctx.warn(format!(
            "{path}.scriptfile: the path is a URL, so Rundeck fetches it as a script URL"
        ));
    } else if !url && key == "scripturl" {
        ctx.warn(format!(
            "{path}.scripturl: the value is not an http(s) or file URL, so Rundeck reads it as a file on the server"
        ));
    }
    if url {
        StepKind::ScriptUrl {
            url: p.path_value,
            args: p.args,
            interpreter: p.interpreter,
            args_quoted: p.args_quoted,
            file_extension: p.file_extension,
            expand_tokens: p.expand_tokens,
            secure_input: p.secure_input,
        }
    } else {
        StepKind::ScriptFile {
            path: p.path_value,
            args: p.args,
            interpreter: p.interpreter,
            args_quoted: p.args_quoted,
            file_extension: p.file_extension,
            expand_tokens: p.expand_tokens,
            secure_input: p.secure_input,
        }
    }
}

/// A plugin step whose type is one of Rundeck 5's built-in step plugins.
fn builtin_from_plugin(
    ty: &str,
    config: &BTreeMap<String, ConfigValue>,
    path: &str,
    ctx: &mut Ctx,
) -> Option<StepKind> {
    let get = |k: &str| config.get(k).map(ConfigValue::as_text);
    let flag = |k: &str| get(k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let interpreter = get("scriptInterpreter").filter(|i| !i.is_empty());
    let file_extension = get("fileExtension").filter(|e| !e.is_empty());
    let secure = || {
        secure_input(
            config
                .contains_key("passSecureInput")
                .then(|| flag("passSecureInput")),
            config
                .contains_key("autoSecureInput")
                .then(|| flag("autoSecureInput")),
            get("secureFormat"),
        )
    };
    match ty {
        EXEC_TYPE => Some(StepKind::Exec {
            command: get("adhocRemoteString").unwrap_or_default(),
        }),
        SCRIPT_TYPE => Some(StepKind::Script {
            body: get("adhocLocalString").unwrap_or_default(),
            args: get("argString"),
            args_quoted: interpreter.is_some() && flag("interpreterArgsQuoted"),
            interpreter,
            file_extension,
            secure_input: secure(),
        }),
        SCRIPT_FILE_TYPE => Some(script_file_kind(
            ScriptFileParts {
                path_value: get("adhocFilepath").unwrap_or_default(),
                args: get("argString"),
                args_quoted: interpreter.is_some() && flag("interpreterArgsQuoted"),
                interpreter,
                file_extension,
                expand_tokens: flag("expandTokenInScriptFile"),
                secure_input: secure(),
            },
            "adhocFilepath",
            path,
            ctx,
        )),
        _ => None,
    }
}

/// `JobExec.updateFromMap`.
fn read_jobref(map: &Node, path: &str, ctx: &mut Ctx) -> FieldResult<StepKind> {
    let mut known: Vec<&str> = COMMON.to_vec();
    known.extend([
        "jobref",
        "project",
        "failOnDisable",
        "childNodes",
        "importOptions",
    ]);
    ctx.unknown_keys(map, path, &known);
    let jpath = format!("{path}.jobref");
    let j = map.get("jobref").expect("caller checked");
    if j.map().is_none() {
        return Err(FieldError::new(
            jpath,
            j.line,
            format!("jobref must be a map, found {}", j.v.kind()),
        ));
    }
    ctx.unknown_keys(
        j,
        &jpath,
        &[
            "group",
            "name",
            "project",
            "uuid",
            "args",
            "nodeStep",
            "failOnDisable",
            "childNodes",
            "importOptions",
            "ignoreNotifications",
            "nodefilters",
            "useName",
        ],
    );
    let text = |n: Option<&Node>| n.filter(|v| v.truthy()).and_then(Node::to_jstring);
    let name = text(j.get("name"));
    let group = text(j.get("group"));
    let uuid = text(j.get("uuid"));
    let project = text(j.get("project")).or_else(|| text(map.get("project")));
    let args = text(j.get("args"));
    let node_step = j
        .get("nodeStep")
        .is_some_and(|n| ctx.true_literal(n, &format!("{jpath}.nodeStep")));
    let mut flag = |key: &str, step_level: bool| -> bool {
        match j.get(key).filter(|v| v.truthy()) {
            Some(v) => ctx.true_literal(v, &format!("{jpath}.{key}")),
            None if step_level => map
                .get(key)
                .filter(|v| v.truthy())
                .is_some_and(|v| ctx.true_literal(v, &format!("{path}.{key}"))),
            None => false,
        }
    };
    let fail_on_disable = flag("failOnDisable", true);
    let child_nodes = flag("childNodes", true);
    let import_options = flag("importOptions", true);
    let ignore_notifications = flag("ignoreNotifications", false);

    let mut nodes = None;
    let mut node_intersect = None;
    if let Some(nf) = j.get("nodefilters").filter(|n| n.map().is_some()) {
        let npath = format!("{jpath}.nodefilters");
        ctx.unknown_keys(nf, &npath, &["filter", "dispatch"]);
        let dispatch = nf.get("dispatch").filter(|d| d.map().is_some());
        if let Some(d) = dispatch {
            ctx.unknown_keys(
                d,
                &format!("{npath}.dispatch"),
                &[
                    "threadcount",
                    "keepgoing",
                    "rankOrder",
                    "rankAttribute",
                    "nodeIntersect",
                ],
            );
        }
        let filter = nf
            .get("filter")
            .and_then(Node::to_jstring)
            .filter(|f| !f.is_empty());
        if let Some(filter) = filter {
            let dpath = format!("{npath}.dispatch");
            let threadcount = match dispatch
                .and_then(|d| d.get("threadcount"))
                .filter(|t| t.truthy())
            {
                None => None,
                Some(t) => {
                    let parsed = match &t.v {
                        Value::Int(i) => i32::try_from(*i).ok(),
                        _ => t.to_jstring().and_then(|s| s.parse::<i32>().ok()),
                    };
                    let Some(n) = parsed else {
                        return Err(FieldError::new(
                            format!("{dpath}.threadcount"),
                            t.line,
                            "job reference threadcount must be a whole number (Rundeck parses it as an integer)",
                        ));
                    };
                    match n {
                        0 => Some(1),
                        n if n > 0 => Some(n as u32),
                        _ => None,
                    }
                }
            };
            let keepgoing = dispatch
                .and_then(|d| d.get("keepgoing"))
                .filter(|k| !k.is_null())
                .map(|k| ctx.true_literal(k, &format!("{dpath}.keepgoing")));
            let rank_order = dispatch
                .and_then(|d| d.get("rankOrder"))
                .filter(|r| !r.is_null())
                .map(|r| {
                    if r.as_str() == Some("ascending") {
                        RankOrder::Ascending
                    } else {
                        RankOrder::Descending
                    }
                });
            let rank_attribute = dispatch
                .and_then(|d| d.get("rankAttribute"))
                .and_then(Node::to_jstring)
                .filter(|a| !a.is_empty());
            nodes = Some(JobRefNodes {
                filter,
                threadcount,
                keepgoing,
                rank_attribute,
                rank_order,
            });
        }
        if let Some(ni) = dispatch
            .and_then(|d| d.get("nodeIntersect"))
            .filter(|n| !n.is_null())
        {
            node_intersect = Some(ctx.true_literal(ni, &format!("{npath}.dispatch.nodeIntersect")));
        }
    }
    let use_name = match j.get("useName") {
        Some(u) if !u.is_null() => ctx.true_literal(u, &format!("{jpath}.useName")),
        _ => name.is_some() && uuid.is_none(),
    };
    if name.is_none() && uuid.is_none() {
        ctx.warn(format!("{jpath}: names neither a job name nor a uuid"));
    }
    Ok(StepKind::JobRef(JobRef {
        name,
        group,
        uuid,
        project,
        args,
        node_step,
        use_name,
        fail_on_disable,
        child_nodes,
        import_options,
        ignore_notifications,
        nodes,
        node_intersect,
    }))
}

/// A `LogFilter` entry or list of entries (`{type, config}`).
pub(crate) fn read_log_filters(v: &Node, path: &str, ctx: &mut Ctx) -> FieldResult<Vec<LogFilter>> {
    if !v.truthy() {
        return Ok(Vec::new());
    }
    let items: Vec<&Node> = match &v.v {
        Value::List(l) => l.iter().collect(),
        Value::Map(_) => vec![v],
        other => {
            return Err(FieldError::new(
                path,
                v.line,
                format!(
                    "LogFilter must be a list of {{type, config}} maps, found {}",
                    other.kind()
                ),
            ))
        }
    };
    let mut out = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let ipath = format!("{path}[{i}]");
        if !it.truthy() {
            continue;
        }
        if it.map().is_none() {
            return Err(FieldError::new(
                ipath,
                it.line,
                format!(
                    "a log filter must be a map with type and config, found {}",
                    it.v.kind()
                ),
            ));
        }
        ctx.unknown_keys(it, &ipath, &["type", "config"]);
        let plugin_type = it
            .get("type")
            .and_then(Node::to_jstring)
            .unwrap_or_default();
        if plugin_type.is_empty() {
            ctx.unknown.push(format!("{ipath}.type"));
        }
        let cfg = it.get("config").filter(|c| c.map().is_some());
        let config: BTreeMap<String, String> = cfg
            .and_then(Node::map)
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                let text = match &v.v {
                    Value::List(_) | Value::Map(_) => v.to_json().to_string(),
                    _ => v.to_jstring().unwrap_or_default(),
                };
                (k.clone(), text)
            })
            .collect();
        let has_config = cfg.is_some();
        if !has_config {
            ctx.warn(format!(
                "{ipath}: log filter {plugin_type:?} has no config map; Rundeck skips such a filter"
            ));
        }
        out.push(LogFilter {
            plugin_type,
            config,
            has_config,
        });
    }
    Ok(out)
}

/// `node`'s entries, or an error naming `what` at `path`.
fn map_of<'a>(node: &'a Node, path: &str, what: &str) -> FieldResult<&'a Vec<(String, Node)>> {
    node.map().ok_or_else(|| {
        FieldError::new(
            path,
            node.line,
            format!("{what} must be a map, found {}", node.v.kind()),
        )
    })
}
