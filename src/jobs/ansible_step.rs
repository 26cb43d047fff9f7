//! An ansible step: `ansible-playbook` on the runner, against the nodes the job
//! selected, with a team's own playbook.
//!
//! sortie writes what the run needs into a private directory of the step, in
//! the job's workspace: the inventory (each node's address, port, user, its key
//! as a 0600 file, and the host keys it must present: ansible's ssh checks them
//! as strictly as sortie's does, and reads no ~/.ssh/config), the extra vars
//! (the job's plain options and the step's `vars`) and the vault password, each
//! a file, never the command line. Every value from outside goes into those
//! files tagged `!unsafe`, so Ansible never templates it: an option holding
//! `{{ lookup('pipe', …) }}` stays text. A small callback plugin writes the play
//! recap as JSON, which becomes a result per node in the completion.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde::Deserialize;

/// An ansible step as a job spec writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ansible {
    /// A playbook file on the runner.
    #[serde(default)]
    pub playbook: Option<String>,
    /// A playbook's text (YAML), kept as written: it is code, no reference in
    /// it expands (values reach it as vars).
    #[serde(default)]
    pub play: Option<String>,
    /// Extra vars, references expanded, on top of the job's options.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// The vault password, usually `${secret.NAME}`.
    #[serde(default)]
    pub vault_password: Option<String>,
    /// More `ansible-playbook` arguments (`--tags`, `--check`…), as written.
    #[serde(default)]
    pub args: Vec<String>,
}

impl Ansible {
    pub fn check(&self) -> Result<()> {
        match (&self.playbook, &self.play) {
            (Some(_), Some(_)) => bail!("an ansible step has either playbook or play, not both"),
            (None, None) => bail!("an ansible step needs playbook or play"),
            (Some(p), None) if p.is_empty() => bail!("playbook: empty path"),
            _ => {}
        }
        if let Some(bad) = self.vars.keys().find(|k| !var_name(k)) {
            bail!("vars: {bad:?} is not a variable name ([A-Za-z_][A-Za-z0-9_]*)");
        }
        // Some of Ansible's own variables reach a shell line unquoted
        // (`ansible_become_flags`): none takes a value from outside the runner.
        if let Some((name, _)) = self.vars.iter().find(|(k, v)| {
            k.to_ascii_lowercase().starts_with("ansible_")
                && v.match_indices("${")
                    .any(|(i, _)| !v[i..].starts_with("${secret."))
        }) {
            bail!(
                "vars: {name}: Ansible's own variable from a value (only ${{secret.…}} may \
                 give one): some reach a shell unquoted"
            );
        }
        if let Some(bad) = self
            .args
            .iter()
            .find(|a| crate::jobs::expand::has_reference(a))
        {
            bail!("args: {bad:?} holds a reference: pass values as vars");
        }
        if let Some(bad) = self.args.iter().find(|a| sortie_s(a)) {
            bail!(
                "args: {bad} is sortie's to give (the inventory is the job's nodes; the vault \
                 password is vault_password; nothing may prompt)"
            );
        }
        Ok(())
    }
}

/// The `ansible-playbook` options sortie gives or that would wait for a
/// terminal: the inventory, vault passwords, prompts.
const SORTIES_LONG: &[&str] = &[
    "--inventory",
    "--inventory-file",
    "--vault-id",
    "--vault-password-file",
    "--vault-pass-file",
    "--ask-vault-password",
    "--ask-vault-pass",
    "--ask-pass",
    "--ask-become-pass",
];
/// Their one-letter forms.
const SORTIES_SHORT: &[char] = &['i', 'J', 'k', 'K'];

/// Whether `arg` is (or abbreviates, as Python's argparse allows, or holds
/// in a cluster of one-letter flags) an option that is sortie's.
fn sortie_s(arg: &str) -> bool {
    match arg.strip_prefix("--") {
        Some(long) => {
            let name = long.split('=').next().unwrap_or("");
            name.len() >= 2
                && SORTIES_LONG
                    .iter()
                    .any(|o| o.trim_start_matches("--").starts_with(name))
        }
        None => arg
            .strip_prefix('-')
            .is_some_and(|flags| flags.chars().any(|c| SORTIES_SHORT.contains(&c))),
    }
}

/// Ansible's own variables: an option of one of these names is not made an
/// extra var (extra vars win over everything, the connection's settings too).
const RESERVED: &[&str] = &[
    "environment",
    "group_names",
    "groups",
    "hostvars",
    "inventory_dir",
    "inventory_file",
    "inventory_hostname",
    "inventory_hostname_short",
    "omit",
    "play_hosts",
    "playbook_dir",
    "role_name",
    "role_names",
    "role_path",
    "vars",
];

/// Whether an option of this name may be an extra var: a variable name, not
/// Ansible's (`ansible_*`, its magic variables) nor sortie's (`sortie_*`).
pub fn option_var(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    var_name(name)
        && !lower.starts_with("ansible_")
        && !lower.starts_with("sortie_")
        && !RESERVED.contains(&lower.as_str())
}

/// Whether `name` can be an Ansible variable.
fn var_name(name: &str) -> bool {
    crate::nodes::ssh::is_name(name)
}

/// Writes the play recap to `$SORTIE_ANSIBLE_RECAP`: one JSON object, each
/// host's counts.
pub const RECAP_CALLBACK: &str = r#"import json, os
from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "sortie_recap"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_stats(self, stats):
        recap = dict((host, stats.summarize(host)) for host in stats.processed)
        path = os.environ["SORTIE_ANSIBLE_RECAP"]
        with open(path + ".part", "w") as out:
            json.dump(recap, out)
        os.replace(path + ".part", path)
"#;

/// How ansible reaches one node.
pub enum Host {
    /// The runner's own node: no SSH.
    Local,
    Remote {
        host: String,
        port: Option<u16>,
        user: Option<String>,
        key: Option<PathBuf>,
        /// The node's `ansible_python_interpreter` attribute (else found).
        python: Option<String>,
    },
}

/// A string Ansible takes as it is: a YAML double-quoted scalar (every
/// character outside printable ASCII escaped) tagged `!unsafe`.
pub fn unsafe_text(text: &str) -> String {
    format!("!unsafe {}", quoted(text))
}

/// `text` as a YAML double-quoted scalar that any YAML 1.1 parser reads back.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c if (c as u32) <= 0xFFFF => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Whether a node name can be an inventory host as it is: letters, digits
/// and `._-/@+`, not starting with `-`. Ansible reads more into a host name
/// than a name — `web[1:3]` is three hosts, `web:2222` a port, `{{ }}` a
/// template — and a node so named could stand in for another.
pub fn host_name_ok(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/@+".contains(c))
}

/// The inventory: every host in group `all`, in the job's order.
pub fn inventory(hosts: &[(String, Host)], ssh_args: &str) -> String {
    let mut out = String::from("all:\n  hosts:\n");
    for (name, host) in hosts {
        out.push_str(&format!("    {}:\n", quoted(name)));
        match host {
            Host::Local => {
                out.push_str("      ansible_connection: local\n");
                out.push_str(
                    "      ansible_python_interpreter: \"{{ ansible_playbook_python }}\"\n",
                );
            }
            Host::Remote {
                host,
                port,
                user,
                key,
                python,
            } => {
                out.push_str("      ansible_connection: ssh\n");
                out.push_str(&format!("      ansible_host: {}\n", unsafe_text(host)));
                if let Some(port) = port {
                    out.push_str(&format!("      ansible_port: {port}\n"));
                }
                if let Some(user) = user {
                    out.push_str(&format!("      ansible_user: {}\n", unsafe_text(user)));
                }
                if let Some(key) = key {
                    let key = key.display().to_string();
                    out.push_str(&format!(
                        "      ansible_ssh_private_key_file: {}\n",
                        unsafe_text(&key)
                    ));
                }
                out.push_str(&format!(
                    "      ansible_ssh_common_args: {}\n",
                    unsafe_text(ssh_args)
                ));
                match python {
                    Some(python) => out.push_str(&format!(
                        "      ansible_python_interpreter: {}\n",
                        unsafe_text(python)
                    )),
                    None => out.push_str("      ansible_python_interpreter: auto_silent\n"),
                }
            }
        }
    }
    out
}

/// The ssh options of every remote host: host keys checked against
/// `known_hosts` only, no password prompt, no ~/.ssh/config unless `config`.
pub fn ssh_args(known_hosts: &Path, config: Option<&Path>, connect_timeout: u64) -> String {
    let q = |p: &Path| crate::nodes::ssh::quote(&p.display().to_string());
    format!(
        "-F {} -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null \
         -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes \
         -o ConnectTimeout={connect_timeout}",
        config.map_or_else(|| "none".to_string(), q),
        q(known_hosts),
    )
}

/// Extra vars as YAML, every value `!unsafe`.
pub fn vars_file(vars: &BTreeMap<String, String>) -> String {
    if vars.is_empty() {
        return "{}\n".into();
    }
    vars.iter()
        .map(|(k, v)| format!("{}: {}\n", quoted(k), unsafe_text(v)))
        .collect()
}

/// One host's line of the recap.
pub type Counts = BTreeMap<String, u64>;

/// The recap the callback wrote (no file: the play never got that far).
pub fn read_recap(path: &Path) -> Result<Option<BTreeMap<String, Counts>>, String> {
    match crate::state::files::read_regular(path, 16 << 20) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("the play recap is not readable: {e}")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("the play recap: {e}")),
    }
}

/// Whether a host's part of the play failed.
pub fn host_failed(counts: &Counts) -> bool {
    ["failures", "unreachable"]
        .iter()
        .any(|k| counts.get(*k).copied().unwrap_or(0) > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_ansible_step_has_one_playbook_and_leaves_inventory_and_vault_to_sortie() {
        let step = |v: serde_json::Value| serde_json::from_value::<Ansible>(v).unwrap().check();
        assert!(step(json!({})).is_err());
        assert!(step(json!({"playbook": "a.yml", "play": "- hosts: all"})).is_err());
        assert!(step(json!({"play": "- hosts: all", "vars": {"a-b": "x"}})).is_err());
        assert!(step(json!({"play": "x", "args": ["--tags", "${option.t}"]})).is_err());
        assert!(step(json!({"play": "x", "args": ["-i", "other"]})).is_err());
        assert!(step(json!({"play": "x", "args": ["--inventory=other"]})).is_err());
        for bad in [
            "-iother",
            "--inventory-f",
            "--inv",
            "--vault-id",
            "--vault-pass-file=x",
            "-vi",
            "-K",
        ] {
            assert!(step(json!({"play": "x", "args": [bad]})).is_err(), "{bad}");
        }
        assert!(option_var("release") && !option_var("ansible_host") && !option_var("Hostvars"));
        assert!(!option_var("sortie_x") && !option_var("a-b"));
        step(json!({"playbook": "site.yml", "args": ["--tags", "web"], "vars": {"v_1": "x"}}))
            .unwrap();
        // Ansible's own variables: text, or a secret of the runner's.
        let own = |v: &str| step(json!({"play": "x", "vars": {"ansible_become_flags": v}}));
        assert!(own("-H ${option.f}").is_err());
        assert!(own("${secret.A} ${option.f}").is_err());
        own("-H").unwrap();
        own("${secret.SUDO}").unwrap();
        step(json!({"play": "x", "vars": {"release": "${option.r}"}})).unwrap();
    }

    #[test]
    fn values_are_yaml_strings_ansible_never_templates() {
        assert_eq!(
            unsafe_text("{{ lookup('pipe', 'id') }}\n\"é\u{85}😀"),
            r#"!unsafe "{{ lookup('pipe', 'id') }}\u000A\"\u00E9\u0085\U0001F600""#
        );
        let vars = BTreeMap::from([("who".to_string(), "{% x %}".to_string())]);
        assert_eq!(vars_file(&vars), "\"who\": !unsafe \"{% x %}\"\n");
        for bad in ["web{{ x }}", "web[1:3]", "web:2222", "a b", "-x", ""] {
            assert!(!host_name_ok(bad), "{bad}");
        }
        assert!(host_name_ok("web-1.example") && host_name_ok("apps/web-0"));
    }

    #[test]
    fn a_recap_fails_a_host_with_a_failure_or_unreachable() {
        let c = |f: u64, u: u64| {
            Counts::from([
                ("failures".into(), f),
                ("unreachable".into(), u),
                ("ok".into(), 3),
            ])
        };
        assert!(!host_failed(&c(0, 0)));
        assert!(host_failed(&c(1, 0)));
        assert!(host_failed(&c(0, 1)));
    }
}
