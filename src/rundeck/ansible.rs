//! Rundeck's Ansible plugin steps (`com.batix.rundeck.plugins.*`) as sortie's
//! `ansible` step: the playbook (a path or inline), its extra vars and
//! parameters, become, and the vault password, against the job's nodes.
//!
//! The plugin's inventory is Rundeck's node set for the job, and so is sortie's
//! (the job's selected nodes, with their addresses, users, keys and host
//! keys). What differs is said in a note or refuses the step:
//! - the extra vars are read as YAML first and their values expanded after,
//!   where the plugin expands `${option.x}` into the text and then reads it
//!   (an option holding `a: b` or a newline could add vars there; not here);
//! - a node step runs once for every selected node, not once per node;
//! - logging in by password, a key's passphrase and a module step have no
//!   counterpart, and refuse the step;
//! - a password from Rundeck's key storage (vault, become) is the runner's
//!   secret `file:NAME` (its last part), as a secure option's is.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::nodes::filter::tokenize;
use crate::rundeck::convert::{config_text, config_true, storage_secret};
use crate::rundeck::model::ConfigValue;

/// The plugin's step types that map, and whether each is a node step.
const PLAYBOOK_STEPS: &[&str] = &[
    "com.batix.rundeck.plugins.AnsiblePlaybookWorkflowStep",
    "com.batix.rundeck.plugins.AnsiblePlaybookInlineWorkflowStep",
    "com.batix.rundeck.plugins.AnsiblePlaybookWorflowNodeStep",
    "com.batix.rundeck.plugins.AnsiblePlaybookInlineWorkflowNodeStep",
];

/// Configuration keys that change nothing here, with why.
const NOT_NEEDED: &[(&str, &str)] = &[
    (
        "ansible-encrypt-extra-vars",
        "the vars are a private file of the step already",
    ),
    (
        "ansible-ssh-key-storage-path",
        "each node's key is its ssh-key (or the job's ssh_key)",
    ),
    (
        "ansible-inventory",
        "the inventory is the job's selected nodes",
    ),
    (
        "ansible-ssh-use-agent",
        "the runner's --ssh-agent gives ssh an agent",
    ),
    (
        "ansible-base-dir-path",
        "ansible runs in the job's workspace",
    ),
    (
        "ansible-disable-limit",
        "the inventory is the job's selected nodes",
    ),
];

/// Whether `plugin_type` is one of the Ansible plugin's steps.
pub fn is_ansible(plugin_type: &str) -> bool {
    plugin_type.starts_with("com.batix.rundeck.plugins.Ansible")
}

/// The step's `ansible` value, and the secrets it reads (key → reference),
/// or why it cannot run here.
pub fn step(
    plugin_type: &str,
    config: &BTreeMap<String, ConfigValue>,
    label: &str,
    notes: &mut Vec<String>,
) -> Result<(Value, BTreeMap<String, String>), String> {
    if !PLAYBOOK_STEPS.contains(&plugin_type) {
        return Err(format!(
            "{label}: the Ansible plugin's {plugin_type:?} has no counterpart: put the module \
             in a play (an inline playbook)"
        ));
    }
    let text = |key: &str| config_text(config, key).filter(|v| !v.trim().is_empty());
    if text("ansible-ssh-auth-type").as_deref() == Some("password") {
        return Err(format!(
            "{label}: the Ansible step logs in by password; sortie logs in with keys only"
        ));
    }
    if text("ansible-ssh-passphrase-storage-path").is_some() {
        return Err(format!(
            "{label}: ansible-ssh-passphrase-storage-path: a key with a passphrase; sortie's node \
             keys have none"
        ));
    }
    let mut ansible = Map::new();
    let mut secrets = BTreeMap::new();
    match (text("ansible-playbook"), text("ansible-playbook-inline")) {
        (Some(path), _) => {
            let path = match text("ansible-base-dir-path") {
                Some(base) if !path.starts_with('/') => {
                    format!("{}/{path}", base.trim_end_matches('/'))
                }
                _ => path,
            };
            if !path.starts_with('/') && !path.starts_with("${") {
                return Err(format!(
                    "{label}: the playbook {path:?} is relative: give an absolute path \
                     (or ansible-base-dir-path)"
                ));
            }
            ansible.insert("playbook".into(), path.into());
        }
        (None, Some(play)) => {
            ansible.insert("play".into(), play.into());
        }
        (None, None) => return Err(format!("{label}: an Ansible step without a playbook")),
    }
    if let Some(vars) = text("ansible-extra-vars") {
        ansible.insert("vars".into(), extra_vars(&vars, label)?);
    }
    let mut args: Vec<String> = Vec::new();
    if config_true(config, "ansible-become") {
        args.push("--become".into());
    }
    for (key, flag) in [
        ("ansible-become-method", "--become-method"),
        ("ansible-become-user", "--become-user"),
        ("ansible-ssh-user", "--user"),
        ("ansible-limit", "--limit"),
    ] {
        if let Some(value) = text(key) {
            if value.contains("${") {
                return Err(format!(
                    "{label}: {key} from a value ({value}): an option never becomes one of \
                     ansible-playbook's arguments; write it as text"
                ));
            }
            args.push(format!("{flag}={value}"));
        }
    }
    if text("ansible-ssh-user").is_some() {
        notes.push(format!(
            "{label}: ansible-ssh-user: a node's own username, where it has one, comes first"
        ));
    }
    if let Some(extra) = text("ansible-extra-param") {
        args.extend(tokenize(&extra));
    }
    if !args.is_empty() {
        ansible.insert("args".into(), json!(args));
    }
    if let Some(path) = text("ansible-vault-storage-path") {
        secrets.insert("RD_ANSIBLE_VAULT".to_string(), storage_secret(&path));
        ansible.insert("vault_password".into(), "${secret.RD_ANSIBLE_VAULT}".into());
    }
    if let Some(path) = text("ansible-become-password-storage-path") {
        secrets.insert("RD_ANSIBLE_BECOME".to_string(), storage_secret(&path));
        let vars = ansible
            .entry("vars")
            .or_insert_with(|| Value::Object(Map::new()));
        vars["ansible_become_password"] = "${secret.RD_ANSIBLE_BECOME}".into();
    }
    if plugin_type.ends_with("NodeStep") {
        notes.push(format!(
            "{label}: an Ansible node step runs once, for every selected node (Rundeck runs \
             it once per node)"
        ));
    }
    for (key, why) in NOT_NEEDED {
        let set = text(key).is_some_and(|v| !v.eq_ignore_ascii_case("false"));
        if set && !(*key == "ansible-base-dir-path" && ansible.contains_key("playbook")) {
            notes.push(format!("{label}: {key}: not carried over; {why}"));
        }
    }
    let known = |key: &str| {
        NOT_NEEDED.iter().any(|(k, _)| *k == key)
            || [
                "ansible-playbook",
                "ansible-playbook-inline",
                "ansible-extra-vars",
                "ansible-extra-param",
                "ansible-become",
                "ansible-become-method",
                "ansible-become-user",
                "ansible-become-password-storage-path",
                "ansible-ssh-user",
                "ansible-limit",
                "ansible-vault-storage-path",
                // privateKey (password refuses the step), and the option
                // that would hold a key's passphrase: the key is the node's.
                "ansible-ssh-auth-type",
                "ansible-ssh-passphrase-option",
                "ansible-ssh-passphrase-storage-path",
                "ansible-ssh-password-storage-path",
            ]
            .contains(&key)
    };
    for key in config.keys().filter(|k| !known(k)) {
        if text(key).is_some() {
            notes.push(format!("{label}: {key}: not carried over"));
        }
    }
    Ok((Value::Object(ansible), secrets))
}

/// `ansible-extra-vars`: a YAML (or JSON) map of names to values, each as
/// written: Ansible types them itself, sortie gives them as text. A var of
/// Ansible's own (`ansible_*`) may not take a value from a reference: some of
/// them reach a shell line unquoted (`ansible_become_flags`).
fn extra_vars(text: &str, label: &str) -> Result<Value, String> {
    let bad = |why: String| format!("{label}: ansible-extra-vars: {why}");
    let pairs = crate::rundeck::yaml::text_map(text).map_err(|e| {
        bad(format!(
            "{} (sortie's vars are text: put a vaulted value in the play's own vars)",
            e.message
        ))
    })?;
    let mut vars = Map::new();
    for (name, value) in pairs {
        if name.to_ascii_lowercase().starts_with("ansible_") && value.contains("${") {
            return Err(bad(format!(
                "{name}: Ansible's own variable from a value: some reach a shell unquoted; \
                 write it as text"
            )));
        }
        vars.insert(name, value.into());
    }
    Ok(Value::Object(vars))
}
