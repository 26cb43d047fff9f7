//! Job options, read as `Option.fromMap` reads them.
//!
//! Options come as a list (the order is kept: each gets its list position as
//! `sortIndex`) or, in older YAML and in XML, as a map from name to
//! definition. Rundeck keeps them in a sorted set: options with a
//! `sortIndex` first, in that order, then the rest by name; a repeated name
//! is refused. The boolean fields are not all read alike: `enforced`,
//! `required` and `isDate` take the value's truth (so `'false'` is true),
//! `multivalued` must be exactly `true`, `secure` and `valueExposed` go
//! through `Boolean.valueOf`. A scalar `values` is one value, not a list.

use crate::rundeck::context::Ctx;
use crate::rundeck::error::{FieldError, FieldResult};
use crate::rundeck::model::OptionDef;
use crate::rundeck::value::{Node, Value};

const KNOWN: &[&str] = &[
    "name",
    "label",
    "description",
    "value",
    "values",
    "valuesListDelimiter",
    "valuesUrl",
    "enforced",
    "regex",
    "required",
    "multivalued",
    "delimiter",
    "multivalueAllSelected",
    "multivaluedAllSelected",
    "secure",
    "valueExposed",
    "storagePath",
    "isDate",
    "dateFormat",
    "hidden",
    "sortValues",
    "sortIndex",
    "type",
    "config",
    "configRemoteUrl",
    "remoteUrlAuthenticationType",
    "optionValuesPluginType",
];

/// Reads `options` (a list or a name → definition map).
pub(crate) fn read_options(node: &Node, path: &str, ctx: &mut Ctx) -> FieldResult<Vec<OptionDef>> {
    if !node.truthy() {
        return Ok(Vec::new());
    }
    let mut out: Vec<OptionDef> = Vec::new();
    match &node.v {
        Value::Map(entries) => {
            for (name, def) in entries {
                let opath = format!("{path}.{name}");
                if def.map().is_none() {
                    return Err(FieldError::new(
                        opath,
                        def.line,
                        format!("option definition must be a map, found {}", def.v.kind()),
                    ));
                }
                let mut opt = read_option(name.clone(), def, &opath, ctx)?;
                opt.sort_index = def.get("sortIndex").and_then(sort_index);
                out.push(opt);
            }
        }
        Value::List(items) => {
            for (i, def) in items.iter().enumerate() {
                let opath = format!("{path}[{i}]");
                if def.map().is_none() {
                    return Err(FieldError::new(
                        opath,
                        def.line,
                        format!("option must be a map, found {}", def.v.kind()),
                    ));
                }
                let name = def
                    .get("name")
                    .filter(|n| n.truthy())
                    .and_then(Node::to_jstring)
                    .ok_or_else(|| {
                        FieldError::new(format!("{opath}.name"), def.line, "option has no name")
                    })?;
                let mut opt = read_option(name, def, &opath, ctx)?;
                opt.sort_index = Some(i as i64);
                out.push(opt);
            }
        }
        other => {
            return Err(FieldError::new(
                path,
                node.line,
                format!("options must be a list or a map, found {}", other.kind()),
            ))
        }
    }
    for (i, a) in out.iter().enumerate() {
        if out[..i].iter().any(|b| b.name == a.name) {
            return Err(FieldError::new(
                path,
                node.line,
                format!("option {:?} is defined twice", a.name),
            ));
        }
    }
    out.sort_by(|a, b| match (a.sort_index, b.sort_index) {
        (Some(x), Some(y)) => x.cmp(&y),
        (None, None) => a.name.cmp(&b.name),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
    });
    Ok(out)
}

fn sort_index(n: &Node) -> Option<i64> {
    match &n.v {
        Value::Int(i) => i64::try_from(*i).ok(),
        Value::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `Boolean.valueOf(x)`: a boolean as is, anything else by its text.
fn boolean_value_of(n: &Node) -> bool {
    n.parse_boolean()
}

fn text(n: Option<&Node>) -> Option<String> {
    n.filter(|v| v.truthy()).and_then(Node::to_jstring)
}

fn read_option(name: String, d: &Node, path: &str, ctx: &mut Ctx) -> FieldResult<OptionDef> {
    ctx.unknown_keys(d, path, KNOWN);
    let truth = |ctx: &mut Ctx, key: &str| {
        d.get(key)
            .is_some_and(|v| ctx.groovy_bool(v, &format!("{path}.{key}")))
    };
    let enforced = truth(ctx, "enforced");
    let required = truth(ctx, "required");
    let is_date = truth(ctx, "isDate");

    let values_node = d.get("values").filter(|v| v.truthy());
    let values: Vec<String> = match values_node.map(|v| &v.v) {
        Some(Value::List(items)) => items
            .iter()
            .map(|i| i.to_jstring().unwrap_or_else(|| "null".into()))
            .collect(),
        Some(_) => values_node.and_then(Node::to_jstring).into_iter().collect(),
        None => Vec::new(),
    };
    let values_list_delimiter = text(d.get("valuesListDelimiter"))
        .or_else(|| (!values.is_empty()).then(|| ",".to_string()));

    let multivalued = d
        .get("multivalued")
        .is_some_and(|m| ctx.true_literal(m, &format!("{path}.multivalued")));
    let (delimiter, multivalue_all_selected) = if multivalued {
        (
            Some(text(d.get("delimiter")).unwrap_or_else(|| ",".into())),
            d.get("multivalueAllSelected").is_some_and(boolean_value_of),
        )
    } else {
        (None, false)
    };
    let secure = d
        .get("secure")
        .filter(|s| s.truthy())
        .is_some_and(boolean_value_of);
    let value_exposed = secure
        && d.get("valueExposed")
            .filter(|s| s.truthy())
            .is_some_and(boolean_value_of);
    let data_bool = |key: &str| d.get(key).is_some_and(Node::parse_boolean);

    let value = text(d.get("value"));
    if value.is_none() && d.get("value").is_some_and(|v| !v.is_null() && !v.truthy()) {
        ctx.warn(format!(
            "{path}.value: {} is dropped by Rundeck (a false-y default is no default)",
            d.get("value")
                .and_then(Node::to_jstring)
                .unwrap_or_default()
        ));
    }
    let option_type = text(d.get("type"));
    if multivalued && secure {
        ctx.warn(format!(
            "{path}: multivalued and secure together are not supported by Rundeck"
        ));
    }
    Ok(OptionDef {
        name,
        label: text(d.get("label")),
        description: text(d.get("description")),
        value,
        values,
        values_list_delimiter,
        values_url: text(d.get("valuesUrl")),
        enforced,
        regex: text(d.get("regex")),
        required,
        multivalued,
        delimiter,
        multivalue_all_selected,
        secure,
        value_exposed,
        storage_path: text(d.get("storagePath")),
        is_date,
        date_format: if is_date {
            text(d.get("dateFormat"))
        } else {
            None
        },
        hidden: data_bool("hidden"),
        sort_values: data_bool("sortValues"),
        option_type,
        sort_index: None,
    })
}
