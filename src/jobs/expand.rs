//! `${namespace.key}` expansion without injection.
//!
//! Values come from users (options), from earlier steps (data) and from node
//! inventories, so they are never made part of a command's code. In `exec` argv
//! each element stays one argument whatever the value holds (`Mode::Raw`). In a
//! shell script (`Mode::Shell`) a reference becomes a reference to the
//! environment variable that holds the value (`SORTIE_OPTION_X`, …), written
//! for the quoting context the token sits in (see [`super::shell`]), so the
//! shell expands it without ever parsing it; in arithmetic only an integer is
//! inserted. bash still evaluates a variable's *value* as a number wherever a
//! script moves it into arithmetic, by flows no reading of the script can
//! follow to the end; so a value with a shape that runs there is put into no
//! script at all ([`runs_as_a_number`]). A reference is `${ns.key}` — shell
//! variables (`${HOME}`) have no dot and are left alone. An unknown reference
//! is an error before the step runs, never an empty string.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Result};

use super::shell::{self, Ctx, Quote};
use super::spec::Dialect;

/// The values a step's strings may refer to.
#[derive(Debug, Default, Clone)]
pub struct Context {
    pub options: BTreeMap<String, String>,
    /// `job.id`, `job.name`, `job.group`, `job.project`, `job.execid`.
    pub job: BTreeMap<String, String>,
    pub data: BTreeMap<String, String>,
    /// Secret key → the environment variable that holds it (never the value).
    pub secrets: BTreeMap<String, String>,
    /// `node.name`, `node.hostname`, and the node's other attributes.
    pub node: BTreeMap<String, String>,
    /// Inside an error handler: `result.exit_code`, `result.step`.
    pub result: BTreeMap<String, String>,
    /// The runner's globals (`--globals`): `${globals.x}`.
    pub globals: BTreeMap<String, String>,
    /// Options whose values are secrets: never put into a command line.
    pub secure: BTreeSet<String>,
    /// Checking a job before it runs: result data not captured yet reads as
    /// `0` (a value valid in every context), so only what the text itself
    /// and the known values decide is refused.
    pub data_unknown: bool,
    /// `sortie exec --check`: options not given read as `0` too.
    pub options_unknown: bool,
    pub dialect: Dialect,
}

/// The namespaces and the prefix of their variables in a step's environment.
pub const NAMESPACES: &[(&str, &str)] = &[
    ("option", "SORTIE_OPTION_"),
    ("job", "SORTIE_JOB_"),
    ("data", "SORTIE_DATA_"),
    ("node", "SORTIE_NODE_"),
    ("result", "SORTIE_RESULT_"),
    ("globals", "SORTIE_GLOBALS_"),
];

/// The namespaces a step's environment also holds under Rundeck's names.
pub const RUNDECK_NAMESPACES: &[(&str, &str)] = &[
    ("option", "RD_OPTION_"),
    ("job", "RD_JOB_"),
    ("data", "RD_DATA_"),
    ("node", "RD_NODE_"),
    ("globals", "RD_GLOBALS_"),
];

/// A reference's namespace as looked up: Rundeck's `unquotedoption` and
/// `secureOption` are options.
fn canonical(namespace: &str) -> &str {
    match namespace {
        "unquotedoption" | "secureOption" => "option",
        // Rundeck's export-var writes ${export.NAME}; sortie has one data namespace.
        "export" => "data",
        ns => ns,
    }
}

impl Context {
    /// The values of `namespace` (`option`, `data`, …).
    pub fn map(&self, namespace: &str) -> Option<&BTreeMap<String, String>> {
        Some(match canonical(namespace) {
            "option" => &self.options,
            "job" => &self.job,
            "data" => &self.data,
            "secret" => &self.secrets,
            "node" => &self.node,
            "result" => &self.result,
            "globals" => &self.globals,
            _ => return None,
        })
    }

    /// The value of `${namespace.key}`; `None`: a Rundeck job's unknown
    /// reference, left as written.
    fn lookup(&self, namespace: &str, key: &str) -> Result<Option<&str>> {
        let rundeck = self.dialect == Dialect::Rundeck;
        let Some(map) = self.map(namespace) else {
            if rundeck {
                return Ok(None);
            }
            bail!("${{{namespace}.{key}}}: unknown namespace {namespace:?} (option, job, data, secret, node, result, globals)")
        };
        match map.get(key) {
            Some(v) => Ok(Some(v)),
            None if self.data_unknown && canonical(namespace) == "data" => Ok(Some("0")),
            None if self.options_unknown && canonical(namespace) == "option" => Ok(Some("0")),
            // Rundeck: a missing option is blank, any other reference stays.
            None if rundeck && canonical(namespace) == "option" => Ok(Some("")),
            None if rundeck => Ok(None),
            None if namespace == "result" => {
                bail!("${{result.{key}}}: only error handlers see result.exit_code and result.step")
            }
            None => bail!("${{{namespace}.{key}}}: no such {namespace}"),
        }
    }

    /// The step environment's variable (`SORTIE_OPTION_M`) of a value that
    /// has a shape [`runs_as_a_number`] refuses, if any value has one. It
    /// reads every value: one expansion asks once ([`Shaped`]).
    fn shaped_variable(&self) -> Option<String> {
        NAMESPACES.iter().find_map(|(namespace, prefix)| {
            self.map(namespace)?
                .iter()
                .find(|(_, value)| runs_in_a_subscript(value) || array_list(value))
                .map(|(key, _)| format!("{prefix}{}", env_name(key)))
        })
    }

    /// The environment variable that holds `${namespace.key}` in a step.
    fn variable(&self, namespace: &str, key: &str, value: &str) -> Result<String> {
        let namespace = canonical(namespace);
        if namespace == "secret" {
            return Ok(value.to_string());
        }
        let prefix = NAMESPACES
            .iter()
            .find(|(ns, _)| *ns == namespace)
            .map(|(_, p)| *p)
            .expect("every namespace but secret has a prefix");
        let name = env_name(key);
        let map = self.map(namespace).expect("known namespace");
        if let Some((other, _)) = map
            .iter()
            .find(|(k, v)| k.as_str() != key && env_name(k) == name && v.as_str() != value)
        {
            bail!(
                "${{{namespace}.{key}}} and ${{{namespace}.{other}}} would share the variable \
                 {prefix}{name}: rename one"
            );
        }
        Ok(format!("{prefix}{name}"))
    }
}

/// How a value is inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// As it is (argv elements, file names).
    Raw,
    /// As a variable reference in a shell script.
    Shell,
    /// As it is, secrets included: for what sortie sends itself (an HTTP
    /// step's request), never a process's arguments.
    Value,
}

/// A reference's `N:` (Rundeck's step number, from 1) taken off its front.
fn without_step(inner: &str) -> (Option<usize>, &str) {
    match inner.split_once(':') {
        Some((n, rest)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            (n.parse().ok().filter(|n| *n > 0), rest)
        }
        _ => (None, inner),
    }
}

/// Whether `inner` (a token without its `${`/`}` or `@`s) is a reference:
/// `ns.key`, or Rundeck's `N:ns.key` for what step N set.
fn is_reference(inner: &str) -> bool {
    let (step, rest) = without_step(inner);
    if step.is_none() && rest.len() != inner.len() {
        return false;
    }
    rest.split_once('.')
        .is_some_and(|(ns, key)| is_word(ns) && !key.is_empty())
}

/// The length of the `${ns.key}` reference that starts `rest`, if one does.
fn reference_at(rest: &str) -> Option<usize> {
    let inner = rest.strip_prefix("${")?;
    let end = inner.find('}')?;
    let inner = &inner[..end];
    (is_reference(inner) && !inner.contains(char::is_whitespace)).then_some(end + 3)
}

/// The length of the `@ns.key@` token (Rundeck's script form, `@data.k/node@`
/// for a node's value) that starts `rest`, if one does.
fn at_token_at(rest: &str) -> Option<usize> {
    let inner = rest.strip_prefix('@')?;
    let end = inner.find(|c: char| c == '@' || c.is_whitespace())?;
    if !inner[end..].starts_with('@') {
        return None;
    }
    is_reference(&inner[..end]).then_some(end + 2)
}

/// The steps (numbered from 1) whose own values `text` refers to as Rundeck's
/// `${N:ns.key}` or `@N:ns.key@`, and whether it refers to `exec.*` (a
/// step's exit code) at all: only these are kept as a job runs.
pub fn context_references(text: &str) -> (BTreeSet<usize>, bool) {
    let mut steps = BTreeSet::new();
    let mut exec = false;
    let mut look = |inner: &str| {
        let (step, rest) = without_step(inner);
        steps.extend(step);
        exec |= rest.starts_with("exec.");
    };
    for (i, _) in text.match_indices("${") {
        if let Some(len) = reference_at(&text[i..]) {
            look(&text[i + 2..i + len - 1]);
        }
    }
    for (i, _) in text.match_indices('@') {
        if let Some(len) = at_token_at(&text[i..]) {
            look(&text[i + 1..i + len - 1]);
        }
    }
    (steps, exec)
}

/// Whether `text` holds a `${ns.key}` reference.
pub fn has_reference(text: &str) -> bool {
    text.match_indices("${")
        .any(|(i, _)| reference_at(&text[i..]).is_some())
}

/// The first `@ns.key@` token of `text`, and the variable Rundeck gives its
/// value in (`@option.db-host@`: `RD_OPTION_DB_HOST`).
pub fn first_at_token(text: &str) -> Option<(&str, String)> {
    let (i, len) = text
        .match_indices('@')
        .find_map(|(i, _)| Some((i, at_token_at(&text[i..])?)))?;
    let token = &text[i..i + len];
    let (ns, key) = split(token);
    let key = key.split('@').next().unwrap_or_default();
    Some((token, format!("RD_{}_{}", env_name(ns), env_name(key))))
}

/// Whether `text` holds a `@ns.key@` token.
pub fn has_at_token(text: &str) -> bool {
    text.match_indices('@')
        .any(|(i, _)| at_token_at(&text[i..]).is_some())
}

/// Expand every `${ns.key}` in `text`.
pub fn expand(text: &str, ctx: &Context, mode: Mode) -> Result<String> {
    match mode {
        Mode::Raw => expand_raw(text, ctx, false),
        Mode::Value => expand_raw(text, ctx, true),
        Mode::Shell => expand_shell(text, ctx, &reference_at),
    }
}

/// Expand every `@ns.key@` of a shell script's text (Rundeck's script tokens),
/// each as a variable reference for its quoting context.
pub fn expand_tokens(text: &str, ctx: &Context) -> Result<String> {
    expand_shell(text, ctx, &at_token_at)
}

/// The namespace and key of a token, `${ns.key}` or `@ns.key@` (whose
/// `/node` is `@node`). Rundeck's `exec.K` (a step's exit code) is the data
/// key `exec.K`, and its `N:` goes with the key: the data a job keeps has
/// both, under those names.
fn split(token: &str) -> (&str, std::borrow::Cow<'_, str>) {
    let (inner, at) = match token.strip_prefix("${") {
        Some(rest) => (&rest[..rest.len() - 1], false),
        None => (&token[1..token.len() - 1], true),
    };
    let (step, rest) = without_step(inner);
    let (ns, key) = rest.split_once('.').expect("a reference has a dot");
    let key = if at && key.contains('/') {
        key.replacen('/', "@", 1).into()
    } else {
        std::borrow::Cow::Borrowed(key)
    };
    let (ns, key) = match ns {
        "exec" => ("data", format!("exec.{key}").into()),
        _ => (ns, key),
    };
    match step {
        Some(n) => (ns, format!("{n}:{key}").into()),
        None => (ns, key),
    }
}

fn expand_raw(text: &str, ctx: &Context, secrets: bool) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    while let Some(start) = text[pos..].find("${").map(|s| s + pos) {
        out.push_str(&text[pos..start]);
        match reference_at(&text[start..]) {
            Some(len) => {
                let token = &text[start..start + len];
                let (ns, key) = split(token);
                let value = ctx.lookup(ns, &key)?;
                let secret =
                    ns == "secret" || (canonical(ns) == "option" && ctx.secure.contains(&*key));
                if secret && !secrets {
                    bail!(
                        "${{{ns}.{key}}}: a secret cannot be put into a command's arguments \
                         (they are visible to every user of the host); read it from the \
                         environment, or use it in a shell step"
                    );
                }
                out.push_str(value.unwrap_or(token));
                pos = start + len;
            }
            None => {
                out.push_str("${");
                pos = start + 2;
            }
        }
    }
    out.push_str(&text[pos..]);
    Ok(out)
}

fn expand_shell(
    text: &str,
    ctx: &Context,
    token_at: &dyn Fn(&str) -> Option<usize>,
) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    let shaped = Shaped::new();
    for site in shell::sites(text, token_at) {
        out.push_str(&text[pos..site.range.start]);
        let token = &text[site.range.clone()];
        let (ns, key) = split(token);
        let placed = insert(ctx, &shaped, ns, &key, site.ctx)?;
        out.push_str(&placed.unwrap_or_else(|| token.to_string()));
        pos = site.range.end;
    }
    out.push_str(&text[pos..]);
    Ok(out)
}

/// What replaces `${ns.key}` (or Rundeck's `@ns.key@`) in a script, in
/// context `at` (`None`: leave the token).
fn insert(ctx: &Context, shaped: &Shaped, ns: &str, key: &str, at: Ctx) -> Result<Option<String>> {
    if at == Ctx::Inert {
        return Ok(None);
    }
    let Some(value) = ctx.lookup(ns, key)? else {
        return Ok(None);
    };
    if matches!(at, Ctx::Arithmetic | Ctx::Name) {
        let place = if at == Ctx::Name {
            "where bash takes a variable's name"
        } else {
            "in shell arithmetic"
        };
        if ns == "secret" || (canonical(ns) == "option" && ctx.secure.contains(key)) {
            bail!("${{{ns}.{key}}} cannot be used {place}");
        }
        if !is_integer(value) {
            let var = ctx.variable(ns, key, value)?;
            bail!(
                "${{{ns}.{key}}} is used {place}, where only an integer is safe, \
                 and its value is not one (a variable assigned it, or computed from it, \
                 holds it: where the script computes a number from the value, read the \
                 value from the environment (${var}) there instead; sortie(1), JOB SPEC)"
            );
        }
        return Ok(Some(value.to_string()));
    }
    let var = ctx.variable(ns, key, value)?;
    let refused = |why: String| anyhow::anyhow!("${{{ns}.{key}}} {why}");
    let placed = match at {
        Ctx::Remote => {
            return Err(refused(
                "is in a command for a remote shell (ssh), which would parse the value and \
                 does not have the variable: pass the value another way"
                    .into(),
            ))
        }
        Ctx::Code(what) => {
            return Err(refused(format!(
                "is in {what}, where a value would be code: read it from the environment \
                 (${var}) instead"
            )))
        }
        Ctx::Cleared(behind) => {
            return Err(refused(format!(
                "is in a command line for a shell behind {behind}: the variable {var} that \
                 holds the value does not reach it; pass the value another way"
            )))
        }
        // Nothing in a quoted here-document is expanded: a Rundeck job meant
        // the value there, which sortie cannot give; a sortie job gets the
        // text `${V}` (for a script it writes, which expands it itself).
        Ctx::Heredoc {
            literal: true,
            shell: None,
        } if ctx.dialect == Dialect::Rundeck => {
            return Err(refused(
                "is in a here-document whose delimiter is quoted (<<'EOF'), where nothing is \
                 expanded: unquote the delimiter to have the value there"
                    .into(),
            ))
        }
        // Rundeck's unquoted option: split into words, never parsed as code.
        Ctx::Unquoted if ns == "unquotedoption" => format!("${{{var}}}"),
        Ctx::Unquoted => format!("\"${{{var}}}\""),
        // The value was put into quoted text that a command takes as data:
        // end the quotes, add the variable as one quoted word, reopen them.
        Ctx::Single => format!("'\"${{{var}}}\"'"),
        Ctx::DollarSingle => format!("'\"${{{var}}}\"$'"),
        Ctx::Double | Ctx::Heredoc { shell: None, .. } => format!("${{{var}}}"),
        // A nested shell gets a reference for its own quotes: `"${V}"`, `${V}`
        // inside its `"…"`, `'"${V}"'` inside its `'…'` — escaped for the
        // quotes it is written in here (an unquoted here-document's `\$`
        // and `"` included).
        Ctx::Nested { quote, inner } => {
            let nested = for_nested_shell(&var, inner);
            match quote {
                Quote::Single => nested,
                Quote::None | Quote::Double => nested.replace('"', "\\\"").replace('$', "\\$"),
            }
        }
        Ctx::Heredoc {
            literal,
            shell: Some(inner),
        } => {
            let nested = for_nested_shell(&var, inner);
            if literal {
                nested
            } else {
                nested.replace('$', "\\$")
            }
        }
        Ctx::Arithmetic | Ctx::Name | Ctx::Inert => unreachable!("handled above"),
    };
    if ns != "secret" {
        if let Some(through) = runs_as_a_number(ctx, shaped, value) {
            let how = match through {
                None => format!("has a value with {RUNS_AS_A_NUMBER}"),
                Some(name) => format!("{} ({name})", names_such_a_value()),
            };
            return Err(refused(format!(
                "{how}; sortie cannot see every way a script's variable reaches such a place, \
                 so it puts no such value into a shell script: a script that needs it can read \
                 it from the environment (${var})"
            )));
        }
    }
    Ok(Some(placed))
}

/// An argument of a script, `value` once its references are expanded: the
/// script may evaluate `$1` as a number as it may a token's variable, so
/// what [`insert`] refuses there is refused here (a value pieced together
/// by the job's own brackets, `a[${option.x}]`, included).
pub fn check_argument(ctx: &Context, shaped: &Shaped, value: &str) -> Result<()> {
    if let Some(through) = runs_as_a_number(ctx, shaped, value) {
        let how = match through {
            None => format!("it has {RUNS_AS_A_NUMBER}"),
            Some(name) => format!("it {} ({name})", names_such_a_value()),
        };
        bail!("{how}; sortie gives no script such an argument");
    }
    Ok(())
}

/// Why a value with a name in it is refused while another has the shape.
fn names_such_a_value() -> String {
    format!(
        "has a value that may name a variable, while a value of the step's environment has \
         {RUNS_AS_A_NUMBER}: bash looks names up where it evaluates a value as a number, and \
         any of the script's variables may hold a copy of that value"
    )
}

/// What a value [`runs_as_a_number`] finds has, and why it is refused.
const RUNS_AS_A_NUMBER: &str = "a substitution inside a subscript (as in a[$(…)]) or an array \
     list (\"($(…))\"), which bash runs as code wherever it evaluates the value as a number or \
     assigns it to an array";

/// Whether `value` runs code where bash evaluates it as a number: it has the
/// shape of [`runs_in_a_subscript`] or [`array_list`] (`Some(None)`), or it
/// has a name in it (a letter or `_`) while a value of the step's
/// environment has that shape (`Some(Some(variable))`). bash looks a name up
/// where it evaluates a value as a number, and the variable it names may
/// hold a copy of that value, made in more ways than can be followed
/// (`note="$RD_OPTION_NOTE"`, `read`, `$_`, `$REPLY`, `${BASH_REMATCH[1]}`).
fn runs_as_a_number(ctx: &Context, shaped: &Shaped, value: &str) -> Option<Option<String>> {
    if runs_in_a_subscript(value) || array_list(value) {
        return Some(None);
    }
    if !value.contains(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return None;
    }
    shaped
        .get_or_init(|| ctx.shaped_variable())
        .clone()
        .map(Some)
}

/// [`Context::shaped_variable`], found once for all the values one
/// expansion places (a script's tokens, a step's arguments).
pub type Shaped = OnceCell<Option<String>>;

/// Whether `value` has a subscript, `name[` (a `[` right after a name) up
/// to its `]`, with a `$`, a backquote, `<(` or `>(` in it: the shape whose
/// evaluation as a number in bash runs code (`a[$(cmd)]`,
/// `a["b[$""(cmd)]"]`, `a["]"$(cmd)]`, `a[${v@P}]`). bash evaluates a
/// variable's value as an expression wherever the variable is named in
/// arithmetic or as a name (`read`, `printf -v`), and expands only the
/// subscripts in it, which follow a name with no space and end at the `]`
/// that closes the `[`, past quoted and escaped ones (a `$` counts inside
/// quotes too). A value without this shape cannot run anything there,
/// however the script moves it (positional parameters, here-strings, files),
/// which is why this holds where the flows [`super::shell`] follows end.
/// Where this reading and bash's might part, any `]` after the substitution
/// counts as its end. Text such as `[${LEVEL}] …`, a Markdown `` [`x`](url) ``
/// or a jq filter `.items[] | select(.id == $id)` has none.
fn runs_in_a_subscript(value: &str) -> bool {
    let b = value.as_bytes();
    let name = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let substitution = |j: usize| {
        matches!(b[j], b'$' | b'`') || (matches!(b[j], b'<' | b'>') && b.get(j + 1) == Some(&b'('))
    };
    for open in (1..b.len()).filter(|&i| b[i] == b'[' && name(b[i - 1])) {
        let mut depth = 1;
        let mut j = open + 1;
        let mut found = None;
        while j < b.len() && depth > 0 {
            match b[j] {
                // An escaped `$` is one again once the subscript is
                // expanded, and a nested subscript may then expand it.
                b'\\' => {
                    j += 1;
                    if j < b.len() && substitution(j) {
                        found = found.or(Some(j));
                    }
                }
                quote @ (b'\'' | b'"') => {
                    j += 1;
                    while j < b.len() && b[j] != quote {
                        if b[j] == b'\\' && quote == b'"' {
                            j += 1;
                        }
                        if j < b.len() && substitution(j) {
                            found = found.or(Some(j));
                        }
                        j += 1;
                    }
                }
                b'[' => depth += 1,
                b']' => depth -= 1,
                _ if substitution(j) => found = found.or(Some(j)),
                _ => {}
            }
            j += 1;
        }
        if let Some(at) = found {
            if value[at..].contains(']') {
                return true;
            }
        }
    }
    false
}

/// Whether `value` is an array list with a substitution: `($(cmd))`, or
/// `y=($(cmd))`. `declare -a a="$v"` (also `local -a`, `declare -A`, and
/// `declare a=…` of an array) parses a value that starts with `(` and ends
/// with `)` again as the array's list, and `declare -a "$v"` a whole
/// assignment, and runs what is in it; a plain `$NAME` there is only
/// expanded (so `(about $120 a month)` is none).
fn array_list(value: &str) -> bool {
    let list = (value.starts_with('(') && value.ends_with(')')) || value.contains("=(");
    list && ["$(", "${", "`", "<(", ">("]
        .iter()
        .any(|s| value.contains(s))
}

/// The reference a nested shell expands itself, inside its quotes `inner`.
fn for_nested_shell(var: &str, inner: Quote) -> String {
    match inner {
        Quote::None => format!("\"${{{var}}}\""),
        Quote::Double => format!("${{{var}}}"),
        Quote::Single => format!("'\"${{{var}}}\"'"),
    }
}

/// `-?[0-9]+` (at most 18 digits): a value bash's arithmetic cannot turn into code.
fn is_integer(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    (1..=18).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
}

fn is_word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// An environment variable name for `name`: uppercased, `[^A-Z0-9_]` → `_`.
pub fn env_name(name: &str) -> String {
    name.chars()
        .map(|c| match c.to_ascii_uppercase() {
            u @ ('A'..='Z' | '0'..='9' | '_') => u,
            _ => '_',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        let mut c = Context::default();
        c.options.insert("service".into(), "nginx".into());
        c.data.insert("status".into(), "active".into());
        c
    }

    #[test]
    fn references_expand_and_shell_variables_stay() {
        let c = ctx();
        assert_eq!(
            expand("restart ${option.service}", &c, Mode::Raw).unwrap(),
            "restart nginx"
        );
        assert_eq!(
            expand("${HOME}/${data.status}", &c, Mode::Raw).unwrap(),
            "${HOME}/active"
        );
        assert_eq!(expand("${x:-y} ${", &c, Mode::Raw).unwrap(), "${x:-y} ${");
        assert_eq!(
            expand("is ${option.service}", &c, Mode::Shell).unwrap(),
            "is \"${SORTIE_OPTION_SERVICE}\""
        );
        assert_eq!(
            expand("echo '${data.status}' \\${option.service}", &c, Mode::Shell).unwrap(),
            "echo ''\"${SORTIE_DATA_STATUS}\"'' \\${option.service}"
        );
        assert_eq!(
            expand("sh -c \"echo ${data.status}\"", &c, Mode::Shell).unwrap(),
            "sh -c \"echo \\\"\\${SORTIE_DATA_STATUS}\\\"\""
        );
        assert!(expand("ssh host \"echo ${data.status}\"", &c, Mode::Shell).is_err());
    }

    #[test]
    fn unknown_references_are_errors() {
        let c = ctx();
        let e = expand("${option.nope}", &c, Mode::Raw)
            .unwrap_err()
            .to_string();
        assert!(e.contains("option.nope"), "{e}");
        assert!(expand("${bogus.x}", &c, Mode::Raw).is_err());
        assert!(expand("${result.exit_code}", &c, Mode::Raw).is_err());
        assert!(expand("echo ${option.nope}", &c, Mode::Shell).is_err());
    }

    #[test]
    fn names_that_would_share_a_variable_are_refused() {
        let mut c = ctx();
        c.options.insert("a-b".into(), "1".into());
        c.options.insert("a_b".into(), "2".into());
        let e = expand("echo ${option.a-b}", &c, Mode::Shell).unwrap_err();
        assert!(e.to_string().contains("SORTIE_OPTION_A_B"), "{e}");
    }

    #[test]
    fn arithmetic_takes_integers_only() {
        let mut c = ctx();
        c.options.insert("n".into(), "42".into());
        c.options.insert("bad".into(), "a[$(id)]".into());
        assert_eq!(
            expand("echo $((${option.n} + 1))", &c, Mode::Shell).unwrap(),
            "echo $((42 + 1))"
        );
        let e = expand("echo $((${option.bad}))", &c, Mode::Shell).unwrap_err();
        assert!(e.to_string().contains("integer"), "{e}");
        assert!(!e.to_string().contains("$(id)"), "the value stays out: {e}");
    }

    #[test]
    fn secrets_expand_to_their_variable_never_their_value() {
        let mut c = ctx();
        c.secrets.insert("DB_PASS".into(), "DB_PASS".into());
        assert_eq!(
            expand("psql -W ${secret.DB_PASS}", &c, Mode::Shell).unwrap(),
            "psql -W \"${DB_PASS}\""
        );
        let e = expand("${secret.DB_PASS}", &c, Mode::Raw)
            .unwrap_err()
            .to_string();
        assert!(e.contains("arguments"), "{e}");
        assert!(expand("${secret.NOPE}", &c, Mode::Shell).is_err());
        assert!(expand("$((${secret.DB_PASS}))", &c, Mode::Shell).is_err());
    }

    /// Rundeck's `N:` step qualifier and `exec.K` group (ArgumentVarExpanderSpec's
    /// parse cases), read from the data a job keeps under `N:key` and `exec.K`.
    #[test]
    fn step_qualified_references_read_what_that_step_set() {
        let mut c = ctx();
        c.dialect = Dialect::Rundeck;
        c.data.insert("2:status".into(), "step2".into());
        c.data.insert("1:exec.exitCode*".into(), "0".into());
        c.data.insert("exec.exitCode".into(), "99".into());
        assert_eq!(
            expand(
                "${2:data.status} ${1:exec.exitCode*} ${exec.exitCode} ${1:data.status}",
                &c,
                Mode::Raw
            )
            .unwrap(),
            "step2 0 99 ${1:data.status}"
        );
        assert_eq!(
            expand("echo ${2:data.status}", &c, Mode::Shell).unwrap(),
            "echo \"${SORTIE_DATA_2_STATUS}\""
        );
        assert_eq!(
            expand_tokens("echo @2:data.status@", &c).unwrap(),
            "echo \"${SORTIE_DATA_2_STATUS}\""
        );
        // Not references: no step 0, a space after the colon, shell's own forms.
        for text in [
            "${0:data.status}",
            "${2: data.status}",
            "${1:-x.y}",
            "${a:b.c}",
        ] {
            assert_eq!(expand(text, &c, Mode::Raw).unwrap(), text);
        }
        assert_eq!(
            context_references("${2:data.k} @3:data.k@ ${exec.exitCode} ${1:-a.b} ${0:x.y}"),
            (BTreeSet::from([2, 3]), true)
        );
        assert_eq!(
            context_references("${data.k} @option.x@"),
            (BTreeSet::new(), false)
        );
    }

    #[test]
    fn rundeck_references_read_as_rundeck_reads_them() {
        let mut c = ctx();
        c.dialect = Dialect::Rundeck;
        c.globals.insert("region".into(), "eu".into());
        // A missing option is blank; any other unknown reference stays.
        assert_eq!(
            expand(
                "[${option.nope}] ${job.nope} ${x.y} ${globals.region}",
                &c,
                Mode::Raw
            )
            .unwrap(),
            "[] ${job.nope} ${x.y} eu"
        );
        assert_eq!(
            expand(
                "echo ${unquotedoption.service} ${option.service}",
                &c,
                Mode::Shell
            )
            .unwrap(),
            "echo ${SORTIE_OPTION_SERVICE} \"${SORTIE_OPTION_SERVICE}\""
        );
        assert_eq!(
            expand("echo ${job.nope}", &c, Mode::Shell).unwrap(),
            "echo ${job.nope}"
        );
    }

    #[test]
    fn script_tokens_become_variables_for_their_quoting_context() {
        let mut c = ctx();
        c.dialect = Dialect::Rundeck;
        let script = "echo @option.service@ \"@option.service@\" 'x @option.service@'\nmail a@b.c@d user@example.com";
        assert_eq!(
            expand_tokens(script, &c).unwrap(),
            "echo \"${SORTIE_OPTION_SERVICE}\" \"${SORTIE_OPTION_SERVICE}\" 'x '\"${SORTIE_OPTION_SERVICE}\"''\n\
             mail a@b.c@d user@example.com"
        );
        assert!(expand_tokens("awk '{print \"@option.service@\"}'", &c).is_err());
        c.data.insert("k@web1".into(), "v".into());
        assert_eq!(
            expand_tokens("x=@data.k/web1@", &c).unwrap(),
            "x=\"${SORTIE_DATA_K_WEB1}\""
        );
        assert!(has_at_token("@option.x@") && !has_at_token("a@b c@d"));
    }

    #[test]
    fn env_names_are_sanitized() {
        assert_eq!(env_name("db.pass-word"), "DB_PASS_WORD");
        assert_eq!(env_name("Ünï"), "_N_");
    }

    /// Values that would run code if a shell parsed them.
    const HOSTILE: &[&str] = &[
        "$(touch PWNED)",
        "`touch PWNED`",
        "'; touch PWNED; '",
        "\"; touch PWNED; \"",
        "x\ntouch PWNED",
        "\\\"$(touch PWNED)\\",
        "* ? [a-z] ~",
        "a'b\"c\\d$e`f",
        "${IFS}$(touch${IFS}PWNED)",
        "'\"'$(touch PWNED)'\"'",
        "EOF\ntouch PWNED\nEOF",
        "-n",
        "",
        "  spaced  out  ",
    ];

    /// Scripts that print the option once, in every quoting context an author
    /// writes; `printf '[%s]'` shows that the value arrived as one word, whole.
    const CONTEXTS: &[&str] = &[
        "printf '[%s]' ${option.v}",
        "printf '[%s]' \"${option.v}\"",
        "printf '[%s]' \"${option.v}\"\"\"",
        "printf '[%s]' \"é${option.v}\"",
        "printf '[%s]' \"$(printf %s ${option.v})\"",
        "sh -c \"printf '[%s]' ${option.v}\"",
        "sh -c 'printf \"[%s]\" \"${option.v}\"'",
        "eval printf \"'[%s]'\" ${option.v}",
        "trap 'printf \"[%s]\" \"${option.v}\"' EXIT",
        "printf '[%s]' \"$(printf %s \"${option.v}\")\"",
        "printf '[%s]' \"`printf %s ${option.v}`\"",
        "x=${option.v}; printf '[%s]' \"$x\"",
        "printf '[%s]' \"${UNSET:-${option.v}}\"",
        "printf '%s' \"$(cat <<EOF\n[${option.v}]\nEOF\n)\"",
        "cat <<'EOF' | sh\nprintf '[%s]' \"${option.v}\"\nEOF",
        "case ${option.v} in *) printf '[%s]' ${option.v};; esac",
        "printf '[%s]' '${option.v}'",
        "sh -c \"printf '[%s]' '${option.v}'\"",
        "sh <<EOS\nprintf '[%s]' ${option.v}\nEOS",
        "sh <<EOS\nprintf '[%s]' \"${option.v}\"\nEOS",
        "sh <<'EOS'\nprintf '[%s]' \"${option.v}\"\nEOS",
        "timeout 5 sh -c 'printf \"[%s]\" ${option.v}'",
        "env X=1 sh -c \"printf '[%s]' \\\"${option.v}\\\"\"",
        "{ sh -c \"printf '[%s]' ${option.v}\"; }",
        "sh -c \\\n  \"printf '[%s]' ${option.v}\"",
        "x=\"$(case a in a) echo b ;; esac)\"; printf '[%s]' \"${option.v}\"",
        "if true; then sh -c 'printf \"[%s]\" \"${option.v}\"'; fi",
    ];

    /// Contexts that are bash's own ([[ ]], $'…').
    const BASH_CONTEXTS: &[&str] = &[
        "[[ ${option.v} == ${option.v} ]] && printf '[%s]' ${option.v}",
        "[[ \"${option.v}\" = \"${option.v}\" ]] && printf '[%s]' \"${option.v}\"",
        "bash -c $'printf \"[%s]\" \"${option.v}\"'",
        "bash <<< 'printf \"[%s]\" \"${option.v}\"'",
    ];

    /// Run `script` (expanded) with `shell`, the option's variable in the environment.
    fn run(shell: &str, script: &str, value: &str) -> (String, bool) {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Context::default();
        c.options.insert("v".into(), value.into());
        let expanded = expand(script, &c, Mode::Shell).unwrap();
        let out = std::process::Command::new(shell)
            .arg("-c")
            .arg(&expanded)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("SORTIE_OPTION_V", value)
            .output()
            .unwrap();
        let pwned = dir.path().join("PWNED").exists();
        (String::from_utf8_lossy(&out.stdout).into_owned(), pwned)
    }

    #[test]
    fn hostile_values_stay_inert_and_whole_in_every_quoting_context() {
        for value in HOSTILE {
            for (shell, contexts) in [
                ("/bin/sh", CONTEXTS),
                ("bash", CONTEXTS),
                ("bash", BASH_CONTEXTS),
            ] {
                for script in contexts {
                    let (out, pwned) = run(shell, script, value);
                    assert!(!pwned, "{shell}: {script:?} with {value:?} ran code");
                    let expected = if script.contains("é$") {
                        format!("[é{value}]")
                    } else {
                        format!("[{value}]")
                    };
                    assert_eq!(out, expected, "{shell}: {script:?} with {value:?}");
                }
            }
        }
    }

    #[test]
    fn inside_single_quotes_a_value_is_data_and_never_a_program_s_code() {
        let (out, pwned) = run("/bin/sh", "printf '[%s]' '${option.v}'", "$(touch PWNED)");
        assert!(!pwned);
        assert_eq!(out, "[$(touch PWNED)]");
        refused_as_code(
            "x",
            &[
                "awk 'BEGIN { print \"${option.v}\" }'",
                "python3 -c 'print(\"${option.v}\")'",
                "sed 's/a/${option.v}/'",
            ],
        );
    }

    /// A value that bash's arithmetic would run (`a[$(…)]`) is refused in
    /// every context, including the flows the scanner does not follow into
    /// arithmetic; values like it that cannot run there are placed.
    #[test]
    fn a_value_that_runs_as_a_subscript_is_refused_wherever_it_goes() {
        for value in [
            "a[$(touch PWNED)]",
            "x[`touch PWNED`]",
            "a[${v@P}]$(touch PWNED)",
            "x=a['$(touch PWNED)']",
            "a[\"b[$\"\"(touch PWNED)]\"]",
            "($(touch PWNED))",
            "a[\"]\"$(touch PWNED)]",
            "a[\\]$(touch PWNED)]",
            "a[']'`touch PWNED`]",
            "(<(touch PWNED))",
            "y=($(touch PWNED))",
        ] {
            let mut c = Context::default();
            c.options.insert("v".into(), value.into());
            for script in CONTEXTS.iter().chain(BASH_CONTEXTS).chain(&[
                "set -- \"${option.v}\"; for x; do echo $((x)); done",
                "f() { for x in \"$@\"; do echo $((x)); done; }; f \"${option.v}\"",
                "( read -r x; echo $((x)) ) <<< \"${option.v}\"",
                "function f { for x in \"${option.v}\"; do echo $((x)); done; }; f",
                "echo \"${option.v}\" > f; read -r x < f; echo $((x))",
                "a=(); a[${#a[@]}]=\"${option.v}\"; echo $((a))",
                "declare -a arr=\"${option.v}\"",
            ]) {
                let e = expand(script, &c, Mode::Shell).unwrap_err().to_string();
                assert!(
                    e.contains("runs as code wherever it evaluates the value as a number")
                        || e.contains("would be code")
                        || e.contains("only an integer is safe"),
                    "{script:?} with {value:?}: {e}"
                );
                assert!(!e.contains("PWNED"), "the value stays out: {e}");
            }
        }
        for value in [
            "^[a-z]+$",
            "$(date) [x]",
            "a[1]",
            "[${x}",
            "[WIP] run `make test` [skip ci]",
            "(see the manual)",
            "(a b)",
            "See [the `--force` flag](https://example.com/docs)",
            "{\"hosts\": [\"${HOST}\", \"db1\"]}",
            "[${LEVEL}] ${MESSAGE}",
            "*Deploy* [`v1.2.3`] to prod",
            "a [$(date)]",
            "a[$(date)",
            "(about $120 a month)",
            "Price[USD]: $5",
            ".items[] | select(.name == \"${NAME}\") | .tags[0]",
            "a[0]>(b[1])",
        ] {
            let (out, pwned) = run("bash", "printf '[%s]' \"${option.v}\"", value);
            assert!(!pwned);
            assert_eq!(out, format!("[{value}]"));
        }
    }

    /// What the shape check relies on, in bash itself: each value refused
    /// runs a command where bash evaluates it as a number, a name or an
    /// array list; each value placed runs nothing there.
    #[test]
    fn the_shapes_refused_are_those_bash_runs() {
        let runs = |value: &str| {
            let dir = tempfile::tempdir().unwrap();
            let value = value.replace("CMD", "touch PWNED");
            for place in [
                "echo $((v))",
                "[[ v -eq 0 ]]",
                "read -r \"$v\" <<< x",
                "printf -v \"$v\" x",
                "declare -a a=\"$v\"",
                "declare -a \"$v\"",
            ] {
                let _ = std::process::Command::new("bash")
                    .args(["-c", &format!("v=$1; {place}"), "_", &value])
                    .current_dir(dir.path())
                    .output()
                    .unwrap();
            }
            let ran = dir.path().join("PWNED").exists();
            (ran, runs_in_a_subscript(&value) || array_list(&value))
        };
        // What bash runs is refused.
        for value in [
            "a[$(CMD)]",
            "a[`CMD`]",
            "a[\"b[$\"\"(CMD)]\"]",
            "a['$(CMD)']",
            "a[1]+b[$(CMD)]",
            "a-b[${x:-$(CMD)}]",
            "($(CMD))",
            "( `CMD` )",
            "a[\"]\"$(CMD)]",
            "a[\\]$(CMD)]",
            "(<(CMD))",
            "y=($(CMD))",
            "a[']'`CMD`]",
            "a['$(CMD)']",
            "a[\"b[\\$(touch PW\"\"NED)]\"]",
            "a[\"b[\\`touch PW\"\"NED\\`]\"]",
        ] {
            assert_eq!(runs(value), (true, true), "{value:?}");
        }
        // What bash runs nothing of is placed.
        for value in [
            "a [$(CMD)]",
            "[$(CMD)]",
            "See [the `CMD` flag](https://example.com)",
            "[\"$(CMD)/build\"]",
            "a[$(CMD)",
            " ($(CMD))",
            "(a $HOME)",
            ".items[] | select(.id == $(CMD))",
        ] {
            assert_eq!(runs(value), (false, false), "{value:?}");
        }
        // Where this reading and bash's may part, an escaped `$` in a
        // subscript is refused though bash runs nothing.
        assert_eq!(runs("1+a[b[\\$(CMD)]]"), (false, true));
    }

    /// bash's arithmetic looks up the names in a value, and any variable may
    /// hold a copy of another value: while a value of the step's environment
    /// would run (an option the script never uses, data), a value with a name
    /// in it is refused, however it names it (directly, through a copy the
    /// script made, `$_`); a number is not.
    #[test]
    fn a_value_naming_a_variable_that_would_run_is_refused() {
        // A flow the scanner does not follow into arithmetic.
        let script = "( read -r x; echo $((x)) ) <<< \"${option.n}\"";
        for (n, chain) in [
            ("RD_OPTION_M", vec![("m", "a[$(touch PWNED)]")]),
            ("1+a[SORTIE_OPTION_M]", vec![("m", "a[$(touch PWNED)]")]),
            ("RD_OPTION_A", vec![("a", "RD_DATA_B * 2")]),
            // Two keys, one variable: the environment holds one of them.
            (
                "SORTIE_OPTION_ZZ",
                vec![("ZZ", "1"), ("zz", "a[$(touch PWNED)]")],
            ),
        ] {
            let mut c = Context::default();
            c.options.insert("n".into(), n.into());
            for (k, v) in &chain {
                c.options.insert(k.to_string(), v.to_string());
            }
            c.data.insert("b".into(), "x[`touch PWNED`]".into());
            let e = expand(script, &c, Mode::Shell).unwrap_err().to_string();
            assert!(
                e.contains("has a value that may name a variable"),
                "{n:?}: {e}"
            );
            assert!(!e.contains("PWNED"), "the value stays out: {e}");
        }
        // A variable of the script that copies one from the environment.
        let copied = format!("note=\"$RD_OPTION_NOTE\"; printf '%s' \"$note\"\n{script}");
        let mut c = Context::default();
        c.options.insert("n".into(), "note".into());
        c.options.insert("note".into(), "a[$(touch PWNED)]".into());
        let e = expand(&copied, &c, Mode::Shell).unwrap_err().to_string();
        assert!(e.contains("(SORTIE_OPTION_NOTE)"), "{e}");
        // Or `$_`, whatever the script did with the value.
        c.options.insert("n".into(), "_".into());
        assert!(expand(script, &c, Mode::Shell).is_err());
        // A number names nothing.
        c.options.insert("n".into(), "-42".into());
        expand(script, &c, Mode::Shell).unwrap();
        c.options.insert("n".into(), "note".into());
        c.options.insert("note".into(), "hello".into());
        expand(&copied, &c, Mode::Shell).unwrap();
        let mut c = Context::default();
        c.options.insert("n".into(), "RD_OPTION_M".into());
        c.options.insert("m".into(), "5".into());
        let expanded = expand(script, &c, Mode::Shell).unwrap();
        let out = std::process::Command::new("bash")
            .args(["-c", &expanded])
            .env_clear()
            .env("SORTIE_OPTION_N", "RD_OPTION_M")
            .env("RD_OPTION_M", "5")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "5\n");
    }

    /// Each script, with `value` for option v, is refused as code.
    fn refused_as_code(value: &str, scripts: &[&str]) {
        let mut c = Context::default();
        c.options.insert("v".into(), value.into());
        for script in scripts {
            let e = expand(script, &c, Mode::Shell).unwrap_err().to_string();
            assert!(e.contains("would be code"), "{script:?}: {e}");
        }
    }

    #[test]
    fn hostile_values_cannot_reach_arithmetic() {
        for value in HOSTILE {
            let mut c = Context::default();
            c.options.insert("v".into(), value.to_string());
            for script in [
                "echo $((${option.v}))",
                "(( x = ${option.v} ))",
                "for((i=0;i<${option.v};i++)); do :; done",
                "let x=${option.v}",
                "[[ ${option.v} -eq 1 ]]",
                "[[ \"${option.v}\" -lt 1 ]]",
                "[[ 1 -eq 0+${option.v} ]]",
                "echo $[${option.v}]",
                "a=(1 2); echo ${a[${option.v}]}",
                "a[${option.v}]=1",
                "s=abc; echo ${s:${option.v}}",
                "declare -i x=${option.v}",
                "bash -c \"echo \\$((${option.v}))\"",
                "bash -c 'echo $((${option.v}))'",
                "if((1<<2)); then :; fi\necho $(( ${option.v} ))",
                "n=${option.v}; echo $((n + 1))",
                "n=\"${option.v}\"; for ((i = 0; i < n; i++)); do :; done",
                "n=${option.v}; m=$n; let k=m*2",
                "n=${option.v}; a=(1 2); echo \"${a[n]}\"",
                "n=${option.v}; [[ n -eq 1 ]]",
                "n=${option.v}; echo \"${!n}\"",
            ] {
                assert!(
                    expand(script, &c, Mode::Shell).is_err(),
                    "{script:?} with {value:?} was expanded"
                );
            }
        }
    }

    /// What a script feeds to a program that runs it, or keeps in a
    /// variable that a prompt expansion or a word list expands, is refused.
    #[test]
    fn a_value_never_reaches_a_program_that_runs_its_input() {
        refused_as_code(
            "$(touch PWNED)",
            &[
                "echo \"${option.v}\" | sed 's/^/echo /e'",
                "echo \"${option.v}\" | awk '{ system($0) }'",
                "printf '%s\\n' \"${option.v}\" | awk '{ print | \"sh\" }'",
                "echo \"!${option.v}\" | ed -s f",
                "p=\"${option.v}\"; echo \"${p@P}\"",
                "compgen -W \"${option.v}\" x",
                "for c in \"${option.v}\"; do eval \"$c\"; done",
                "a=(\"${option.v}\"); eval \"${a[0]}\"",
                "mapfile -t a <<< \"${option.v}\"; eval \"${a[0]}\"",
            ],
        );
    }

    /// An alias's text is parsed again where the alias is used: a value in
    /// it is a reference there, expanded then, never parsed.
    #[test]
    fn a_value_in_an_alias_stays_data() {
        for value in HOSTILE {
            let script = "shopt -s expand_aliases\nalias show=\"printf '[%s]' ${option.v}\"\nshow";
            let (out, pwned) = run("bash", script, value);
            assert!(!pwned, "{value:?} ran code");
            assert_eq!(out, format!("[{value}]"), "{value:?}");
        }
    }

    /// A variable holding a value that the script only evaluates as
    /// arithmetic (named bare in `$((…))`, say) takes an integer, as a
    /// token there does: bash runs such a script as it was written.
    #[test]
    fn a_variable_only_counted_with_takes_an_integer() {
        let mut c = Context::default();
        c.options.insert("v".into(), "3".into());
        let script =
            "n=${option.v}\nfor ((i = 0; i < n; i++)); do printf .; done\necho $((n + 1)) \"$n\"";
        let expanded = expand(script, &c, Mode::Shell).unwrap();
        let out = std::process::Command::new("bash")
            .args(["-c", &expanded])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "...4 3\n");
        c.options.insert("v".into(), "a[$(touch PWNED)]".into());
        let e = expand(script, &c, Mode::Shell).unwrap_err().to_string();
        assert!(
            e.contains("in shell arithmetic, where only an integer is safe"),
            "{e}"
        );
    }
}
