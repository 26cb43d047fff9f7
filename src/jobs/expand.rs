//! `${namespace.key}` expansion without injection.
//!
//! Values come from users (options) and from earlier steps (data), so they are
//! never spliced into a shell command as text: in `exec` argv each element stays
//! one argument whatever the value holds, and in `shell` strings a value is
//! inserted single-quoted. A reference is `${ns.key}` — shell variables
//! (`${HOME}`) have no dot and are left alone. An unknown reference is an error
//! before the step runs, never an empty string.

use std::collections::BTreeMap;

use anyhow::{bail, Result};

/// The values a step's strings may refer to.
#[derive(Debug, Default, Clone)]
pub struct Context {
    pub options: BTreeMap<String, String>,
    /// `job.id`, `job.name`, `job.group`, `job.project`, `job.execid`.
    pub job: BTreeMap<String, String>,
    pub data: BTreeMap<String, String>,
    /// Secret key → the environment variable that holds it (never the value).
    pub secrets: BTreeMap<String, String>,
    /// `node.name`, `node.hostname`.
    pub node: BTreeMap<String, String>,
    /// Inside an error handler: `result.exit_code`, `result.step`.
    pub result: BTreeMap<String, String>,
}

impl Context {
    fn lookup(&self, namespace: &str, key: &str) -> Result<&str> {
        let map = match namespace {
            "option" => &self.options,
            "job" => &self.job,
            "data" => &self.data,
            "secret" => &self.secrets,
            "node" => &self.node,
            "result" => &self.result,
            _ => bail!("${{{namespace}.{key}}}: unknown namespace {namespace:?} (option, job, data, secret, node, result)"),
        };
        match map.get(key) {
            Some(v) => Ok(v),
            None if namespace == "result" => {
                bail!("${{result.{key}}}: only error handlers see result.exit_code and result.step")
            }
            None => bail!("${{{namespace}.{key}}}: no such {namespace}"),
        }
    }
}

/// How a value is inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// As it is (argv elements, file names).
    Raw,
    /// Single-quoted for `/bin/sh`.
    Shell,
}

/// Expand every `${ns.key}` in `text`.
pub fn expand(text: &str, ctx: &Context, mode: Mode) -> Result<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let inner = &after[..end];
        match inner.split_once('.') {
            Some(("secret", key)) => {
                // The value stays in the environment: the shell expands it itself, so it
                // never lands in an argv, which every user of the host can read.
                let var = ctx.lookup("secret", key)?;
                match mode {
                    Mode::Shell => out.push_str(&format!("\"${{{var}}}\"")),
                    Mode::Raw => bail!(
                        "${{secret.{key}}}: a secret cannot be put into a command's arguments \
                         (they are visible to every user of the host); read ${var} from the \
                         environment, or use it in a shell step"
                    ),
                }
            }
            Some((ns, key)) if is_word(ns) && !key.is_empty() => {
                let value = ctx.lookup(ns, key)?;
                match mode {
                    Mode::Raw => out.push_str(value),
                    Mode::Shell => out.push_str(&shell_quote(value)),
                }
            }
            // Not a reference: a shell parameter expansion such as ${HOME} or ${x:-y}.
            _ => out.push_str(&rest[start..start + 2 + end + 1]),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn is_word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Quote a value for `/bin/sh`: `'…'`, with each `'` written as `'\''`.
pub fn shell_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
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
        c.options.insert(
            "evil".into(),
            "$(rm -rf ~); `id` 'q' \"d\" | x\nnext".into(),
        );
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
            "is 'nginx'"
        );
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
    }

    #[test]
    fn shell_quoting_survives_a_real_shell() {
        let c = ctx();
        let cmd = expand("printf %s ${option.evil}", &c, Mode::Shell).unwrap();
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&cmd)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), c.options["evil"]);
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
    }

    #[test]
    fn env_names_are_sanitized() {
        assert_eq!(env_name("db.pass-word"), "DB_PASS_WORD");
        assert_eq!(env_name("Ünï"), "_N_");
    }
}
