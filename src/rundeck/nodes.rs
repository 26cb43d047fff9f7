//! Node dispatch: `nodefilters` (and XML's job-level `<dispatch>`, already
//! moved there by the codec), read as `ScheduledExecution.fromMap` reads it.
//!
//! A job dispatches to nodes only when `nodefilters` holds a `filter` key
//! (even an empty one) or a legacy `include`/`exclude` map; `dispatch`
//! settings alone do not make it so, and such a job runs on the Rundeck
//! server. The legacy maps are rebuilt into a filter string the way Rundeck
//! rebuilds them (`BaseNodeFilters.asFilter`): only the keys hostname, tags,
//! os-name, os-family, os-arch, os-version and name survive, in the order
//! written, include clauses before `!`-prefixed exclude clauses, each value
//! double-quoted when it holds a space, a quote or a line break.

use crate::rundeck::context::Ctx;
use crate::rundeck::error::{FieldError, FieldResult};
use crate::rundeck::model::{NodeDispatch, RankOrder};
use crate::rundeck::value::Node;

const FILTER_KEYS: &[&str] = &[
    "hostname",
    "tags",
    "os-name",
    "os-family",
    "os-arch",
    "os-version",
    "name",
];

/// Reads the job's node dispatch; `None` when the job runs on the server only.
pub(crate) fn read_nodes(
    job: &Node,
    base: &str,
    ctx: &mut Ctx,
) -> FieldResult<Option<NodeDispatch>> {
    let Some(nf) = job.get("nodefilters").filter(|n| n.truthy()) else {
        return Ok(None);
    };
    let path = format!("{base}.nodefilters");
    if nf.map().is_none() {
        return Err(FieldError::new(
            path,
            nf.line,
            format!("nodefilters must be a map, found {}", nf.v.kind()),
        ));
    }
    ctx.unknown_keys(
        nf,
        &path,
        &[
            "filter",
            "filterExclude",
            "include",
            "exclude",
            "dispatch",
            "excludeprecedence",
        ],
    );
    if nf.contains_key("excludeprecedence") {
        ctx.warn(format!(
            "{path}.excludeprecedence: ignored by Rundeck without a job-level <dispatch> element"
        ));
    }

    let mut threadcount = "1".to_string();
    let mut keepgoing = false;
    let mut exclude_precedence = true;
    let mut rank_attribute = None;
    let mut rank_order = RankOrder::Ascending;
    let mut success_on_empty = false;
    if let Some(d) = nf.get("dispatch").filter(|d| d.truthy()) {
        let dpath = format!("{path}.dispatch");
        if d.map().is_none() {
            return Err(FieldError::new(
                dpath,
                d.line,
                format!("dispatch must be a map, found {}", d.v.kind()),
            ));
        }
        ctx.unknown_keys(
            d,
            &dpath,
            &[
                "threadcount",
                "keepgoing",
                "excludePrecedence",
                "rankAttribute",
                "rankOrder",
                "successOnEmptyNodeFilter",
            ],
        );
        if let Some(t) = d.get("threadcount").filter(|t| t.truthy()) {
            threadcount = t.to_jstring().unwrap_or_else(|| "1".into());
        }
        if let Some(k) = d.get("keepgoing") {
            keepgoing = ctx.groovy_bool(k, &format!("{dpath}.keepgoing"));
        }
        if let Some(e) = d.get("excludePrecedence").filter(|e| !e.is_null()) {
            exclude_precedence = ctx.groovy_bool(e, &format!("{dpath}.excludePrecedence"));
        }
        if let Some(r) = d.get("rankAttribute") {
            rank_attribute = r.to_jstring().filter(|s| !s.is_empty());
        }
        if let Some(r) = d.get("rankOrder") {
            rank_order = if r.as_str() == Some("ascending") {
                RankOrder::Ascending
            } else {
                if r.as_str() != Some("descending") {
                    ctx.warn(format!(
                        "{dpath}.rankOrder: {} is read as descending by Rundeck (only 'ascending' is ascending)",
                        r.to_jstring().unwrap_or_else(|| "null".into())
                    ));
                }
                RankOrder::Descending
            };
        }
        if let Some(s) = d.get("successOnEmptyNodeFilter") {
            success_on_empty = ctx.groovy_bool(s, &format!("{dpath}.successOnEmptyNodeFilter"));
        }
    }

    let (filter, legacy) = if nf.contains_key("filter") {
        let f = nf
            .get("filter")
            .and_then(|f| f.to_jstring().filter(|_| f.truthy()));
        (Some(f.unwrap_or_default()), false)
    } else {
        let include = legacy_map(nf.get("include"), &format!("{path}.include"), ctx)?;
        let exclude = legacy_map(nf.get("exclude"), &format!("{path}.exclude"), ctx)?;
        match (include, exclude) {
            (None, None) => (None, false),
            (inc, exc) => (
                Some(rebuild_filter(
                    &inc.unwrap_or_default(),
                    &exc.unwrap_or_default(),
                )),
                true,
            ),
        }
    };
    let exclude_filter = nf
        .get("filterExclude")
        .filter(|f| f.truthy())
        .and_then(Node::to_jstring);
    let exclude_filter_uncheck = job
        .get("excludeFilterUncheck")
        .is_some_and(|u| ctx.groovy_bool(u, &format!("{base}.excludeFilterUncheck")));

    let Some(filter) = filter else {
        if exclude_filter.is_some() {
            ctx.warn(format!(
                "{path}.filterExclude: without a filter the job runs on the Rundeck server only; the exclude filter is not used"
            ));
        }
        return Ok(None);
    };
    Ok(Some(NodeDispatch {
        filter,
        filter_from_legacy: legacy,
        exclude_filter,
        exclude_filter_uncheck,
        exclude_precedence,
        threadcount,
        keepgoing,
        rank_attribute,
        rank_order,
        success_on_empty,
    }))
}

/// A legacy `include`/`exclude` map: `Some` when present and non-empty,
/// holding only the keys Rundeck keeps.
fn legacy_map(
    n: Option<&Node>,
    path: &str,
    ctx: &mut Ctx,
) -> FieldResult<Option<Vec<(String, String)>>> {
    let Some(n) = n.filter(|n| n.truthy()) else {
        return Ok(None);
    };
    let Some(entries) = n.map() else {
        return Err(FieldError::new(
            path,
            n.line,
            format!("legacy node filter must be a map, found {}", n.v.kind()),
        ));
    };
    let mut kept = Vec::new();
    for (k, v) in entries {
        if FILTER_KEYS.contains(&k.as_str()) {
            if v.truthy() {
                kept.push((k.clone(), v.to_jstring().unwrap_or_default()));
            }
        } else {
            ctx.warn(format!(
                "{path}.{k}: not a legacy filter key Rundeck keeps; ignored"
            ));
        }
    }
    Ok(Some(kept))
}

/// `BaseNodeFilters.asFilter`: `key: value` include clauses, then `!key: value`.
pub(crate) fn rebuild_filter(include: &[(String, String)], exclude: &[(String, String)]) -> String {
    let mut tokens: Vec<String> = Vec::new();
    for (k, v) in include {
        tokens.push(escape(&format!("{k}:")));
        tokens.push(escape(v));
    }
    for (k, v) in exclude {
        tokens.push(escape(&format!("!{k}:")));
        tokens.push(escape(v));
    }
    tokens.join(" ")
}

/// `OptsUtil.escapeChars`: double-quote a token holding a space, a quote or
/// a line break (or an empty one), doubling inner double quotes.
fn escape(s: &str) -> String {
    if !s.is_empty() && !s.contains([' ', '"', '\'', '\r', '\n']) {
        return s.to_string();
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_filter_rebuild() {
        let inc = vec![
            ("hostname".to_string(), "centos5".to_string()),
            ("tags".to_string(), "a+b,c".to_string()),
        ];
        let exc = vec![("os-family".to_string(), "windows".to_string())];
        assert_eq!(
            rebuild_filter(&inc, &exc),
            "hostname: centos5 tags: a+b,c !os-family: windows"
        );
        let spaced = vec![("name".to_string(), "my node".to_string())];
        assert_eq!(rebuild_filter(&spaced, &[]), "name: \"my node\"");
    }
}
