//! The XML-only conversions Rundeck applies before building a job.
//!
//! `JobsXMLCodec.convertXMapToJobMap` rewrites the flattened XML map into the
//! same canonical map the YAML format holds directly: `<context><options>`
//! becomes `options`, job-level `<dispatch>` moves into `nodefilters.dispatch`,
//! `<scriptargs>` becomes `args`, `<scriptinterpreter argsquoted=…>` becomes
//! `scriptInterpreter` + `interpreterArgsQuoted`, plugin `<entry key value>`
//! lists become maps, and a few strings become booleans. Everything else is
//! passed through as strings, which is why XML `'false'` and YAML `false` can
//! end differently in [`crate::rundeck::job`]. The order of the rewrites follows the
//! codec, including its errors for missing `name`, `description` and
//! `sequence` elements.

use crate::rundeck::error::{FieldError, FieldResult};
use crate::rundeck::value::{java_split, Node, Value};
use crate::rundeck::xml::TEXT_KEY;

/// Converts one flattened `<job>` into the canonical job map.
pub(crate) fn to_job_map(
    mut map: Node,
    base: &str,
    unknown: &mut Vec<String>,
) -> FieldResult<Node> {
    let line = map.line;
    if map.map().is_none() {
        return Err(FieldError::new(base, line, "empty <job> element"));
    }
    for (key, default) in [
        ("scheduleEnabled", true),
        ("executionEnabled", true),
        ("nodeFilterEditable", true),
        ("multipleExecutions", false),
    ] {
        if let Some(v) = map.get(key) {
            let b = v.string_to_bool(default);
            let l = v.line;
            map.put(key, Node::new(Value::Bool(b), l));
        }
    }

    if let Some(ctx) = map.get("context").filter(|c| c.map().is_some()) {
        if let Some(p) = ctx.get("project").cloned() {
            let mut ctx = ctx.clone();
            ctx.remove("project");
            map.put("context", ctx);
            map.put("project", p);
        }
    }
    if !map.get("name").is_some_and(Node::truthy) {
        return Err(FieldError::new(
            format!("{base}.name"),
            line,
            "'name' element not found",
        ));
    }
    if !map.has_non_null("description") {
        return Err(FieldError::new(
            format!("{base}.description"),
            line,
            "'description' element not found (Rundeck requires it, even empty)",
        ));
    }

    if let Some(logging) = map.remove("logging") {
        if logging.map().is_some() {
            let l = logging.line;
            if let Some(limit) = logging.get("limit") {
                map.put("loglimit", limit.clone());
            }
            let action = logging
                .get("limitAction")
                .filter(|a| a.truthy())
                .cloned()
                .unwrap_or_else(|| Node::str("halt", l));
            map.put("loglimitAction", action);
            if let Some(status) = logging.get("status").filter(|s| s.truthy()) {
                map.put("loglimitStatus", status.clone());
            }
        } else if logging.truthy() {
            map.put("logging", logging);
        }
    }

    convert_options(&mut map, base)?;
    convert_dispatch(&mut map, base)?;
    convert_schedule(&mut map);

    match map.get("sequence").cloned() {
        Some(seq) if seq.truthy() => {
            let seq = convert_workflow(seq, &format!("{base}.sequence"), unknown)?;
            map.put("sequence", seq);
        }
        _ => {
            return Err(FieldError::new(
                format!("{base}.sequence"),
                line,
                "'sequence' element not found",
            ))
        }
    }

    check_notification(&map, base)?;

    if let Some(retry) = map.get("retry").cloned() {
        if retry.map().is_some() {
            if let Some(d) = retry.get("delay").filter(|d| d.truthy()) {
                map.put("retryDelay", d.clone());
            }
            let text = retry
                .get(TEXT_KEY)
                .cloned()
                .unwrap_or_else(|| Node::new(Value::Null, retry.line));
            map.put("retry", text);
        }
    }

    if let Some(plugins) = map.get("plugins").cloned() {
        if plugins.truthy() {
            map.put(
                "plugins",
                decode_plugins(&plugins, &format!("{base}.plugins"))?,
            );
        }
    }
    Ok(map)
}

/// `<context><options preserveOrder='true'><option …/></options></context>` → `options`.
fn convert_options(map: &mut Node, base: &str) -> FieldResult<()> {
    let Some(ctx) = map.get("context").filter(|c| c.map().is_some()).cloned() else {
        return Ok(());
    };
    let Some(options) = ctx.get("options").filter(|o| o.truthy()) else {
        return Ok(());
    };
    let path = format!("{base}.context.options");
    if options.map().is_none() {
        return Err(FieldError::new(
            path,
            options.line,
            "'context/options' element is not valid",
        ));
    }
    let Some(opts) = options.get("option").filter(|o| o.truthy()) else {
        return Ok(());
    };
    let preserve = options
        .get("preserveOrder")
        .is_some_and(|p| p.string_to_bool(false));
    let list: Vec<Node> = match &opts.v {
        Value::List(l) => l.clone(),
        _ => vec![opts.clone()],
    };
    let mut out = Node::new(Value::Map(Vec::new()), options.line);
    for (i, mut optm) in list.into_iter().enumerate() {
        let opath = format!("{path}.option[{i}]");
        if optm.map().is_none() {
            return Err(FieldError::new(opath, optm.line, "empty <option> element"));
        }
        let name = optm
            .get("name")
            .and_then(Node::to_jstring)
            .ok_or_else(|| FieldError::new(&opath, optm.line, "option has no name"))?;
        let delim = optm
            .get("valuesListDelimiter")
            .filter(|d| d.truthy())
            .and_then(Node::to_jstring)
            .unwrap_or_else(|| ",".into());
        if let Some(values) = optm.get("values").cloned() {
            let l = values.line;
            let list = match &values.v {
                Value::Str(s) => java_split(s, &delim)
                    .into_iter()
                    .map(|v| Node::str(v, l))
                    .collect(),
                _ if values.truthy() => {
                    vec![Node::str(values.to_jstring().unwrap_or_default(), l)]
                }
                _ => Vec::new(),
            };
            if values.truthy() || matches!(values.v, Value::Str(_)) {
                optm.put("values", Node::new(Value::List(list), l));
            }
        }
        if let Some(e) = optm.remove("enforcedvalues") {
            let b = e.string_to_bool(false);
            optm.put("enforced", Node::new(Value::Bool(b), e.line));
        }
        for key in ["sortValues", "required", "multivalued"] {
            if let Some(v) = optm.get(key) {
                let b = v.string_to_bool(false);
                let l = v.line;
                optm.put(key, Node::new(Value::Bool(b), l));
            }
        }
        if optm.get("isDate").is_some_and(Node::truthy) {
            let b = optm.get("isDate").is_some_and(|v| v.string_to_bool(false));
            optm.put("isDate", Node::new(Value::Bool(b), optm.line));
        }
        if preserve {
            optm.put("sortIndex", Node::new(Value::Int(i as i128), optm.line));
        }
        if let Some(cfg) = optm.get("config").filter(|c| c.map().is_some()).cloned() {
            optm.put("config", entries_to_map(&cfg));
        }
        out.put(&name, optm);
    }
    let mut ctx = ctx;
    ctx.remove("options");
    if ctx.map().is_some_and(Vec::is_empty) {
        map.remove("context");
    } else {
        map.put("context", ctx);
    }
    map.put("options", out);
    Ok(())
}

/// Job-level `<dispatch>` → `nodefilters.dispatch`, with booleans converted.
fn convert_dispatch(map: &mut Node, base: &str) -> FieldResult<()> {
    let Some(dispatch) = map.get("dispatch").filter(|d| d.truthy()).cloned() else {
        return Ok(());
    };
    let path = format!("{base}.dispatch");
    if dispatch.map().is_none() {
        return Err(FieldError::new(
            path,
            dispatch.line,
            "<dispatch> must hold elements",
        ));
    }
    let mut nodefilters = match map.get("nodefilters") {
        Some(n) if n.truthy() => n.clone(),
        _ => Node::new(Value::Map(Vec::new()), dispatch.line),
    };
    if nodefilters.map().is_none() {
        return Err(FieldError::new(
            format!("{base}.nodefilters"),
            nodefilters.line,
            "<nodefilters> must hold elements",
        ));
    }
    map.remove("dispatch");
    let mut dispatch = dispatch;
    if let Some(ep) = nodefilters.remove("excludeprecedence") {
        dispatch.put("excludePrecedence", ep);
    }
    for key in ["keepgoing", "excludePrecedence", "successOnEmptyNodeFilter"] {
        if let Some(v) = dispatch.get(key).filter(|v| !v.is_null()) {
            let b = v.string_to_bool(false);
            let l = v.line;
            dispatch.put(key, Node::new(Value::Bool(b), l));
        }
    }
    nodefilters.put("dispatch", dispatch);
    map.put("nodefilters", nodefilters);
    if let Some(v) = map.get("nodesSelectedByDefault").filter(|v| v.truthy()) {
        let b = v.string_to_bool(false);
        let l = v.line;
        map.put("nodesSelectedByDefault", Node::new(Value::Bool(b), l));
    }
    Ok(())
}

/// `<month month= day=>` and `<year year=>` → `month`, `dayofmonth.day`, `year`.
fn convert_schedule(map: &mut Node) {
    let Some(mut sched) = map.get("schedule").filter(|s| s.map().is_some()).cloned() else {
        return;
    };
    let l = sched.line;
    let month = sched.get("month").cloned();
    if let Some(m) = month.as_ref().filter(|m| m.map().is_some()) {
        if let Some(day) = m.get("day").filter(|d| d.truthy()) {
            let mut dom = Node::new(Value::Map(Vec::new()), l);
            dom.put("day", day.clone());
            sched.put("dayofmonth", dom);
        }
    }
    match month
        .as_ref()
        .filter(|m| m.map().is_some())
        .and_then(|m| m.get("month"))
        .filter(|m| m.truthy())
    {
        Some(mm) => sched.put("month", mm.clone()),
        None => sched.put("month", Node::new(Value::Null, l)),
    }
    match sched
        .get("year")
        .filter(|y| y.map().is_some())
        .and_then(|y| y.get("year"))
        .filter(|y| y.truthy())
        .cloned()
    {
        Some(y) => sched.put("year", y),
        None => sched.put("year", Node::new(Value::Null, l)),
    }
    map.put("schedule", sched);
}

/// `convertXmlWorkflowToMap`: `<command>` → `commands`, step conversions.
fn convert_workflow(mut data: Node, path: &str, unknown: &mut Vec<String>) -> FieldResult<Node> {
    if data.map().is_none() {
        return Err(FieldError::new(
            path,
            data.line,
            "<sequence> must hold <command> elements",
        ));
    }
    if let Some(cmds) = data.remove("command").filter(|c| c.truthy()) {
        let list = match cmds.v {
            Value::List(l) => l,
            other => vec![Node::new(other, cmds.line)],
        };
        let mut out = Vec::new();
        for (i, cmd) in list.into_iter().enumerate() {
            let cpath = format!("{path}.commands[{i}]");
            let mut cmd = fixup_step(cmd, &cpath, unknown)?;
            if let Some(eh) = cmd.get("errorhandler").filter(|e| e.truthy()).cloned() {
                let eh = fixup_step(eh, &format!("{cpath}.errorhandler"), unknown)?;
                cmd.put("errorhandler", eh);
            }
            out.push(cmd);
        }
        data.put("commands", Node::new(Value::List(out), data.line));
    }
    if let Some(k) = data
        .get("keepgoing")
        .filter(|k| matches!(k.v, Value::Str(_)))
    {
        let b = k.string_to_bool(false);
        let l = k.line;
        data.put("keepgoing", Node::new(Value::Bool(b), l));
    }
    if let Some(mut pc) = data
        .get("pluginConfig")
        .filter(|p| p.map().is_some())
        .cloned()
    {
        if let Some(lf) = pc.get("LogFilter").filter(|l| l.truthy()).cloned() {
            pc.put("LogFilter", log_filter_list(lf));
            data.put("pluginConfig", pc);
        }
    }
    Ok(data)
}

/// The per-step `fixup` closure of `convertXmlWorkflowToMap`.
fn fixup_step(mut cmd: Node, path: &str, unknown: &mut Vec<String>) -> FieldResult<Node> {
    if cmd.map().is_none() {
        return Err(FieldError::new(
            path,
            cmd.line,
            "a <command> element must hold a step (exec, script, scriptfile, scripturl, jobref or a plugin)",
        ));
    }
    if cmd.has_non_null("scriptfile") || cmd.has_non_null("script") || cmd.has_non_null("scripturl")
    {
        let args = cmd
            .remove("scriptargs")
            .map(|a| match a.to_jstring() {
                Some(s) => Node::str(s, a.line),
                None => Node::new(Value::Null, a.line),
            })
            .unwrap_or_else(|| Node::new(Value::Null, cmd.line));
        cmd.put("args", args);
        if let Some(si) = cmd.remove("scriptinterpreter") {
            match &si.v {
                Value::Map(_) => {
                    let quoted = si
                        .get("argsquoted")
                        .is_some_and(|q| q.string_to_bool(false));
                    cmd.put(
                        "interpreterArgsQuoted",
                        Node::new(Value::Bool(quoted), si.line),
                    );
                    let text = si
                        .get(TEXT_KEY)
                        .cloned()
                        .unwrap_or_else(|| Node::new(Value::Null, si.line));
                    cmd.put("scriptInterpreter", text);
                }
                Value::Str(_) => cmd.put("scriptInterpreter", si),
                _ => {
                    return Err(FieldError::new(
                        format!("{path}.scriptinterpreter"),
                        si.line,
                        "'command/scriptinterpreter' value incorrect, expected a string or map",
                    ))
                }
            }
        }
    } else if let Some(jobref) = cmd.get("jobref").cloned() {
        let jpath = format!("{path}.jobref");
        if jobref.map().is_none() {
            return Err(FieldError::new(
                jpath,
                jobref.line,
                "'jobref' value incorrect, expected elements: arg, group, name",
            ));
        }
        let mut jobref = jobref;
        if let Some(arg) = jobref.remove("arg") {
            if arg.map().is_none() {
                return Err(FieldError::new(
                    format!("{jpath}.arg"),
                    arg.line,
                    "'jobref/arg' value incorrect, expected attribute: line",
                ));
            }
            let line = arg
                .get("line")
                .and_then(Node::to_jstring)
                .map(|s| Node::str(s, arg.line))
                .unwrap_or_else(|| Node::new(Value::Null, arg.line));
            jobref.put("args", line);
            for (k, _) in arg.map().into_iter().flatten().filter(|(k, _)| k != "line") {
                unknown.push(format!("{jpath}.arg.{k}"));
            }
        }
        if let Some(ns) = jobref.get("nodeStep").filter(|n| !n.is_null()) {
            let b = ns.string_to_bool(false);
            let l = ns.line;
            jobref.put("nodeStep", Node::new(Value::Bool(b), l));
        }
        if let Some(d) = jobref.remove("dispatch").filter(|d| !d.is_null()) {
            match jobref
                .get("nodefilters")
                .filter(|n| n.map().is_some())
                .cloned()
            {
                Some(mut nf) => {
                    nf.put("dispatch", d);
                    jobref.put("nodefilters", nf);
                }
                None => {
                    let mut nf = Node::new(Value::Map(Vec::new()), d.line);
                    nf.put("dispatch", d);
                    jobref.put("nodefilters", nf);
                }
            }
        }
        if let Some(p) = cmd.remove("project").filter(|p| p.truthy()) {
            jobref.put("project", p);
        }
        cmd.put("jobref", jobref);
    } else {
        let plugin = cmd
            .get("node-step-plugin")
            .filter(|p| p.truthy())
            .map(|p| (true, "node-step-plugin", p.clone()))
            .or_else(|| {
                cmd.get("step-plugin")
                    .filter(|p| p.truthy())
                    .map(|p| (false, "step-plugin", p.clone()))
            });
        if let Some((node_step, key, plugin)) = plugin {
            cmd.remove(key);
            let l = plugin.line;
            cmd.put("nodeStep", Node::new(Value::Bool(node_step), l));
            let ty = plugin
                .get("type")
                .cloned()
                .unwrap_or_else(|| Node::new(Value::Null, l));
            cmd.put("type", ty);
            let conf = plugin
                .get("configuration")
                .filter(|c| c.truthy())
                .map(entries_to_map)
                .unwrap_or_else(|| Node::new(Value::Null, l));
            cmd.put("configuration", conf);
            for (k, _) in plugin.map().into_iter().flatten() {
                if k != "type" && k != "configuration" {
                    unknown.push(format!("{path}.{key}.{k}"));
                }
            }
        }
    }
    if let Some(k) = cmd.get("keepgoingOnSuccess").filter(|k| !k.is_null()) {
        let b = k.string_to_bool(false);
        let l = k.line;
        cmd.put("keepgoingOnSuccess", Node::new(Value::Bool(b), l));
    }
    if let Some(mut plugins) = cmd.get("plugins").filter(|p| p.map().is_some()).cloned() {
        if let Some(lf) = plugins.get("LogFilter").filter(|l| l.truthy()).cloned() {
            plugins.put("LogFilter", log_filter_list(lf));
            cmd.put("plugins", plugins);
        }
    }
    Ok(cmd)
}

/// A single `<LogFilter>` becomes a one-item list; an empty `config` is removed.
fn log_filter_list(lf: Node) -> Node {
    let l = lf.line;
    let items = match lf.v {
        Value::List(items) => items,
        other => vec![Node::new(other, l)],
    };
    let items = items
        .into_iter()
        .map(|mut it| {
            if it.map().is_some() && !it.get("config").is_some_and(Node::truthy) {
                it.remove("config");
            }
            it
        })
        .collect();
    Node::new(Value::List(items), l)
}

/// `<configuration><entry key='k' value='v'/>…</configuration>` → `{k: v}`.
fn entries_to_map(conf: &Node) -> Node {
    let mut out = Node::new(Value::Map(Vec::new()), conf.line);
    let entries: Vec<&Node> = match conf.get("entry").map(|e| &e.v) {
        Some(Value::List(l)) => l.iter().collect(),
        Some(Value::Map(_)) => conf.get("entry").into_iter().collect(),
        _ => Vec::new(),
    };
    for e in entries {
        if let Some(k) = e
            .get("key")
            .filter(|k| k.truthy())
            .and_then(Node::to_jstring)
        {
            let v = e
                .get("value")
                .cloned()
                .unwrap_or_else(|| Node::new(Value::Null, e.line));
            out.put(&k, v);
        }
    }
    out
}

/// `JobsXMLCodec.decodePlugins`: `<plugins><Service type='p'><configuration …>`
/// → `{Service: {p: {config}}}`, dropping empty and `_`-prefixed settings.
fn decode_plugins(plugins: &Node, path: &str) -> FieldResult<Node> {
    let Some(services) = plugins.map() else {
        return Err(FieldError::new(
            path,
            plugins.line,
            "<plugins> must hold plugin elements",
        ));
    };
    let mut out = Node::new(Value::Map(Vec::new()), plugins.line);
    for (svc, providers) in services {
        let mut by_type = Node::new(Value::Map(Vec::new()), providers.line);
        let list: Vec<&Node> = match &providers.v {
            Value::List(l) => l.iter().collect(),
            Value::Map(_) => vec![providers],
            _ => Vec::new(),
        };
        for prov in list {
            let ty = prov
                .get("type")
                .and_then(Node::to_jstring)
                .unwrap_or_default();
            let mut conf = Node::new(Value::Map(Vec::new()), prov.line);
            if let Some(entries) = prov.get("configuration").and_then(Node::map) {
                for (k, v) in entries {
                    let empty = v.is_null() || matches!(&v.v, Value::Str(s) if s.is_empty());
                    if !empty && !k.starts_with('_') {
                        conf.put(k, v.clone());
                    }
                }
            }
            by_type.put(&ty, conf);
        }
        out.put(svc, by_type);
    }
    Ok(out)
}

/// The notification checks of the codec: each trigger must hold `email`
/// (with `recipients`), `webhook` (with `urls`) or `plugin` (with `type`).
fn check_notification(map: &Node, base: &str) -> FieldResult<()> {
    let Some(n) = map.get("notification") else {
        return Ok(());
    };
    let path = format!("{base}.notification");
    let Some(triggers) = n.map().filter(|t| !t.is_empty()) else {
        return Err(FieldError::new(
            path,
            n.line,
            "notification section had no trigger elements",
        ));
    };
    for (trigger, content) in triggers {
        let tpath = format!("{path}.{trigger}");
        let Some(entries) = content.map().filter(|e| !e.is_empty()) else {
            return Err(FieldError::new(
                tpath,
                content.line,
                format!("notification '{trigger}' element had missing 'email' or 'webhook' or 'plugin' element"),
            ));
        };
        for (kind, val) in entries {
            let items: Vec<&Node> = match &val.v {
                Value::List(l) => l.iter().collect(),
                _ => vec![val],
            };
            for item in items {
                let bad = match kind.as_str() {
                    "email" => !item.get("recipients").is_some_and(Node::truthy),
                    "webhook" => item.get("urls").is_none_or(Node::is_null),
                    "plugin" => item.get("type").is_none_or(Node::is_null),
                    "format" | "httpMethod" => false,
                    other => {
                        return Err(FieldError::new(
                            format!("{tpath}.{other}"),
                            val.line,
                            format!("invalid notification type '{other}'"),
                        ))
                    }
                };
                if bad {
                    let need = match kind.as_str() {
                        "email" => "recipients",
                        "webhook" => "urls",
                        _ => "type",
                    };
                    return Err(FieldError::new(
                        format!("{tpath}.{kind}"),
                        item.line,
                        format!("{trigger} {kind} had blank or missing '{need}' attribute"),
                    ));
                }
            }
        }
    }
    Ok(())
}
