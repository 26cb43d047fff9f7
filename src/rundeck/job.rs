//! A canonical job map → [`Job`], as `ScheduledExecution.fromMap` builds a job
//! (plus the checks Rundeck makes before it saves one: a name without `/`, a
//! retry that is a number or a `${…}` reference, at least one step).
//!
//! Both formats arrive here as the same map; see [`crate::rundeck::xml_codec`] for the
//! XML rewrites that come first.

use std::collections::BTreeMap;

use crate::rundeck::context::Ctx;
use crate::rundeck::error::{FieldError, FieldResult};
use crate::rundeck::model::{
    Job, Orchestrator, Retry, RetryCount, Schedule, SourceFormat, Timeout,
};
use crate::rundeck::nodes::read_nodes;
use crate::rundeck::options::read_options;
use crate::rundeck::value::{Node, Value};
use crate::rundeck::workflow::read_workflow;

/// Top-level keys Rundeck reads, or knows and ignores for running a job.
const KNOWN: &[&str] = &[
    "name",
    "description",
    "group",
    "uuid",
    "id",
    "project",
    "loglevel",
    "loglimit",
    "loglimitAction",
    "loglimitStatus",
    "timeout",
    "retry",
    "retryDelay",
    "options",
    "sequence",
    "schedule",
    "schedules",
    "nodefilters",
    "nodesSelectedByDefault",
    "nodeFilterEditable",
    "excludeFilterUncheck",
    "scheduleEnabled",
    "executionEnabled",
    "multipleExecutions",
    "maxMultipleExecutions",
    "notification",
    "notifyAvgDurationThreshold",
    "plugins",
    "orchestrator",
    "timeZone",
    "defaultTab",
    "user",
    "context",
    "tags",
    "runnerSelector",
    "jobQueueEnabled",
    "jobQueueSizeLimit",
];

/// Builds one job from its canonical map. `unknown` holds paths already
/// found unknown by the format's own reader.
pub(crate) fn build_job(
    map: &Node,
    index: usize,
    format: SourceFormat,
    unknown: Vec<String>,
) -> FieldResult<Job> {
    let base = format!("jobs[{index}]");
    if map.map().is_none() {
        return Err(FieldError::new(
            &base,
            map.line,
            format!("a job must be a map, found {}", map.v.kind()),
        ));
    }
    let mut ctx = Ctx::new(unknown);
    ctx.unknown_keys(map, &base, KNOWN);
    if let Some(c) = map.get("context").filter(|c| c.map().is_some()) {
        let cpath = format!("{base}.context");
        for (k, v) in c.map().into_iter().flatten() {
            if k != "options" || v.truthy() {
                ctx.unknown.push(format!("{cpath}.{k}"));
            }
        }
    }
    let text = |key: &str| {
        map.get(key)
            .filter(|v| v.truthy())
            .and_then(Node::to_jstring)
    };

    let name = map
        .get("name")
        .and_then(Node::to_jstring)
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| FieldError::new(format!("{base}.name"), map.line, "the job has no name"))?;
    if name.contains('/') {
        return Err(FieldError::new(
            format!("{base}.name"),
            map.get("name").map_or(map.line, |n| n.line),
            "a job name may not contain '/' (Rundeck refuses it; use group for the path)",
        ));
    }
    let group = text("group").and_then(|g| {
        let g = g.trim_matches('/').to_string();
        (!g.is_empty()).then_some(g)
    });
    let description = map
        .get("description")
        .and_then(Node::to_jstring)
        .unwrap_or_default();

    let timeout = text("timeout").map(Timeout::from_raw);
    let retry = read_retry(map, &base, &mut ctx)?;

    let loglimit = text("loglimit");
    let (loglimit_action, loglimit_status) = if loglimit.is_some() {
        (
            Some(text("loglimitAction").unwrap_or_else(|| "halt".into())),
            Some(text("loglimitStatus").unwrap_or_else(|| "failed".into())),
        )
    } else {
        (None, None)
    };

    let options = match map.get("options") {
        Some(o) => read_options(o, &format!("{base}.options"), &mut ctx)?,
        None => Vec::new(),
    };
    let nodes = read_nodes(map, &base, &mut ctx)?;
    let nodes_selected_by_default = match map.get("nodesSelectedByDefault") {
        Some(v) if !v.is_null() && nodes.is_some() => {
            ctx.groovy_bool(v, &format!("{base}.nodesSelectedByDefault"))
        }
        _ => true,
    };
    let bool_default_true = |ctx: &mut Ctx, key: &str| match map.get(key) {
        Some(v) if !v.is_null() => ctx.groovy_bool(v, &format!("{base}.{key}")),
        _ => true,
    };
    let node_filter_editable = bool_default_true(&mut ctx, "nodeFilterEditable");
    let schedule_enabled = bool_default_true(&mut ctx, "scheduleEnabled");
    let execution_enabled = bool_default_true(&mut ctx, "executionEnabled");
    let multiple_executions = map
        .get("multipleExecutions")
        .is_some_and(|v| ctx.groovy_bool(v, &format!("{base}.multipleExecutions")));

    let workflow = match map.get("sequence").filter(|s| s.truthy()) {
        Some(seq) => read_workflow(seq, &format!("{base}.sequence"), &mut ctx)?,
        None => {
            return Err(FieldError::new(
                format!("{base}.sequence"),
                map.line,
                "the job has no sequence (workflow)",
            ))
        }
    };

    let orchestrator = read_orchestrator(map, &base, &mut ctx);
    let schedule = read_schedule(map, &base, &mut ctx);
    if let Some(s) = map.get("schedules") {
        if s.truthy() {
            ctx.warn(format!(
                "{base}.schedules: schedule definitions are not modelled; only `schedule` is kept"
            ));
        }
    }
    let (notifications, notification_triggers) = read_notifications(map, &base, &mut ctx);
    let plugins = read_plugins(map, &base, &mut ctx);
    read_enterprise(map, &base, &mut ctx);
    let tags = text("tags")
        .map(|t| {
            t.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();

    let mut unknown = ctx.unknown;
    unknown.sort();
    unknown.dedup();
    Ok(Job {
        format,
        index,
        uuid: text("uuid"),
        id: text("id"),
        name,
        group,
        description,
        project: text("project"),
        loglevel: text("loglevel").unwrap_or_else(|| "INFO".into()),
        timeout,
        retry,
        options,
        nodes,
        node_filter_editable,
        nodes_selected_by_default,
        orchestrator,
        workflow,
        loglimit,
        loglimit_action,
        loglimit_status,
        schedule,
        schedule_enabled,
        execution_enabled,
        multiple_executions,
        max_multiple_executions: text("maxMultipleExecutions"),
        notifications,
        notification_triggers,
        plugins,
        default_tab: text("defaultTab"),
        time_zone: text("timeZone"),
        tags,
        unknown,
        warnings: ctx.warnings,
    })
}

/// `retry` as a scalar or `{retry, delay}`; XML's `<retry delay=…>` arrives
/// as `retry` + `retryDelay`.
fn read_retry(map: &Node, base: &str, ctx: &mut Ctx) -> FieldResult<Option<Retry>> {
    let Some(r) = map.get("retry") else {
        return Ok(None);
    };
    let path = format!("{base}.retry");
    let (count, delay) = match &r.v {
        Value::Map(_) => {
            ctx.unknown_keys(r, &path, &["retry", "delay"]);
            (
                r.get("retry").and_then(Node::to_jstring),
                r.get("delay").and_then(Node::to_jstring),
            )
        }
        Value::List(_) => {
            return Err(FieldError::new(
                path,
                r.line,
                "retry must be a number, a ${…} reference or a {retry, delay} map",
            ))
        }
        _ => (
            r.to_jstring(),
            map.get("retryDelay").and_then(Node::to_jstring),
        ),
    };
    let Some(count) = count.filter(|c| !c.is_empty()) else {
        if delay.is_some() {
            ctx.warn(format!(
                "{path}: a retry delay without a retry count has no effect"
            ));
        }
        return Ok(None);
    };
    let count = if count.contains("${") {
        RetryCount::Dynamic(count)
    } else {
        match count.parse::<i32>() {
            Ok(n) if n >= 0 => RetryCount::Fixed(n as u32),
            _ => {
                return Err(FieldError::new(
                    path,
                    r.line,
                    format!("retry {count:?} is neither a whole number ≥ 0 nor a ${{…}} reference"),
                ))
            }
        }
    };
    Ok(Some(Retry {
        count,
        delay: delay.filter(|d| !d.is_empty()).map(Timeout::from_raw),
    }))
}

fn read_orchestrator(map: &Node, base: &str, ctx: &mut Ctx) -> Option<Orchestrator> {
    let o = map.get("orchestrator").filter(|o| o.truthy())?;
    let path = format!("{base}.orchestrator");
    if o.map().is_none() {
        ctx.unknown.push(path);
        return None;
    }
    ctx.unknown_keys(o, &path, &["type", "configuration"]);
    let plugin_type = o.get("type").and_then(Node::to_jstring).unwrap_or_default();
    let config = o
        .get("configuration")
        .and_then(Node::map)
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let val = match &v.v {
                Value::List(_) | Value::Map(_) | Value::Null => {
                    crate::rundeck::model::ConfigValue::Json(v.to_json())
                }
                _ => crate::rundeck::model::ConfigValue::String(v.to_jstring().unwrap_or_default()),
            };
            (k.clone(), val)
        })
        .collect();
    Some(Orchestrator {
        plugin_type,
        config,
    })
}

/// The Quartz fields `fromMap` stores from `schedule` (crontab or parts).
fn read_schedule(map: &Node, base: &str, ctx: &mut Ctx) -> Option<Schedule> {
    let s = map.get("schedule").filter(|s| s.truthy())?;
    let path = format!("{base}.schedule");
    if s.map().is_none() {
        ctx.unknown.push(path);
        return None;
    }
    ctx.unknown_keys(
        s,
        &path,
        &["crontab", "time", "month", "year", "dayofmonth", "weekday"],
    );
    let t = |n: Option<&Node>| n.filter(|v| !v.is_null()).and_then(Node::to_jstring);
    if let Some(c) = s
        .get("crontab")
        .filter(|c| c.truthy())
        .and_then(Node::to_jstring)
    {
        let parts: Vec<&str> = c.split_whitespace().collect();
        let part = |i: usize, d: &str| parts.get(i).map_or(d.to_string(), |p| p.to_string());
        return Some(Schedule {
            crontab: Some(c.clone()),
            seconds: part(0, "0"),
            minute: part(1, "0"),
            hour: part(2, "0"),
            day_of_month: part(3, "?"),
            month: part(4, "*"),
            day_of_week: part(5, "*"),
            year: part(6, "*"),
        });
    }
    let time = s.get("time").filter(|t| t.map().is_some());
    let field =
        |k: &str, d: &str| t(time.and_then(|tm| tm.get(k))).unwrap_or_else(|| d.to_string());
    let dom = s
        .get("dayofmonth")
        .filter(|d| d.map().is_some())
        .and_then(|d| t(d.get("day")))
        .filter(|d| d != "?");
    let dow = s
        .get("weekday")
        .filter(|w| w.map().is_some())
        .and_then(|w| t(w.get("day")));
    let (day_of_month, day_of_week) = match (dom, dow) {
        (Some(d), _) => (d, "?".to_string()),
        (None, Some(w)) => ("?".to_string(), w),
        (None, None) => ("?".to_string(), "*".to_string()),
    };
    Some(Schedule {
        crontab: None,
        seconds: field("seconds", "0"),
        minute: field("minute", "0"),
        hour: field("hour", "0"),
        day_of_month,
        month: t(s.get("month")).unwrap_or_else(|| "*".into()),
        day_of_week,
        year: t(s.get("year")).unwrap_or_else(|| "*".into()),
    })
}

fn read_notifications(map: &Node, base: &str, ctx: &mut Ctx) -> (bool, Vec<String>) {
    let Some(n) = map.get("notification").filter(|n| n.truthy()) else {
        return (false, Vec::new());
    };
    let Some(triggers) = n.map() else {
        ctx.unknown.push(format!("{base}.notification"));
        return (false, Vec::new());
    };
    const TRIGGERS: &[&str] = &[
        "onsuccess",
        "onfailure",
        "onstart",
        "onavgduration",
        "onretryablefailure",
    ];
    let mut present = Vec::new();
    for (k, v) in triggers {
        if !TRIGGERS.contains(&k.as_str()) {
            ctx.unknown.push(format!("{base}.notification.{k}"));
        }
        if v.truthy() {
            present.push(k.clone());
        }
    }
    (!present.is_empty(), present)
}

/// Job-scoped plugins (`plugins.ExecutionLifecycle.<type>: {config}`).
fn read_plugins(
    map: &Node,
    base: &str,
    ctx: &mut Ctx,
) -> BTreeMap<String, BTreeMap<String, serde_json::Value>> {
    let mut out = BTreeMap::new();
    let Some(p) = map.get("plugins").filter(|p| p.truthy()) else {
        return out;
    };
    let path = format!("{base}.plugins");
    let Some(services) = p.map() else {
        ctx.unknown.push(path);
        return out;
    };
    for (svc, providers) in services {
        if !providers.truthy() {
            continue;
        }
        match svc.as_str() {
            "ExecutionLifecycle" => {}
            "LogFilter" => ctx.warn(format!(
                "{path}.LogFilter: Rundeck does not apply log filters from job-level plugins; \
                 job-wide filters belong in sequence.pluginConfig.LogFilter"
            )),
            _ => ctx.unknown.push(format!("{path}.{svc}")),
        }
        let mut by_type = BTreeMap::new();
        match &providers.v {
            Value::Map(entries) => {
                for (ty, conf) in entries {
                    by_type.insert(ty.clone(), conf.to_json());
                }
            }
            Value::List(items) => {
                for (i, it) in items.iter().enumerate() {
                    let key = it
                        .get("type")
                        .and_then(Node::to_jstring)
                        .unwrap_or_else(|| i.to_string());
                    by_type.insert(key, it.to_json());
                }
            }
            _ => {
                ctx.unknown.push(format!("{path}.{svc}"));
            }
        }
        out.insert(svc.clone(), by_type);
    }
    out
}

/// Rundeck Enterprise fields found in exports. A runner selector other than
/// the local runner moves execution elsewhere, so it is listed as unknown;
/// the job queue only delays runs and is noted.
fn read_enterprise(map: &Node, base: &str, ctx: &mut Ctx) {
    if let Some(r) = map.get("runnerSelector").filter(|r| r.truthy()) {
        let mode = r.get("runnerFilterMode").and_then(Node::to_jstring);
        let ty = r.get("runnerFilterType").and_then(Node::to_jstring);
        let local =
            mode.as_deref() == Some("LOCAL") && ty.as_deref().is_none_or(|t| t == "LOCAL_RUNNER");
        let only_known = r.map().is_some_and(|m| {
            m.iter()
                .all(|(k, _)| k == "runnerFilterMode" || k == "runnerFilterType")
        });
        if !(local && only_known) {
            ctx.unknown.push(format!("{base}.runnerSelector"));
        }
    }
    for key in ["jobQueueEnabled", "jobQueueSizeLimit"] {
        if map.get(key).is_some_and(Node::truthy) {
            ctx.warn(format!(
                "{base}.{key}: the Enterprise job queue is not modelled"
            ));
        }
    }
}
