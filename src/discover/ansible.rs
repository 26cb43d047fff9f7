//! Nodes from Ansible inventories, as `ansible-inventory --list` gives them:
//! each host with its `ansible_host`, `ansible_user` and `ansible_port`, its
//! groups as tags. Other host variables stay out (they may hold passwords).

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;

use crate::nodes::Node;

pub fn nodes(inventories: &[String], until: Instant) -> Result<Vec<Node>, String> {
    let program = which::which("ansible-inventory")
        .map_err(|_| "ansible-inventory was not found on PATH: install ansible-core".to_string())?;
    let mut argv = vec![program.display().to_string()];
    for inventory in inventories {
        argv.extend(["-i".to_string(), inventory.clone()]);
    }
    argv.push("--list".into());
    // An inventory that is missing or does not parse is an error, not an
    // empty inventory (by default ansible-inventory only warns).
    let strict = [("ANSIBLE_INVENTORY_UNPARSED_FAILED", "True")];
    let printed = super::command::output(&argv, &strict, until)?;
    let list: Value = serde_json::from_slice(&printed)
        .map_err(|e| format!("ansible-inventory --list printed no JSON: {e}"))?;
    Ok(parse(&list))
}

/// The hosts of an `ansible-inventory --list` document.
pub fn parse(list: &Value) -> Vec<Node> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut hosts: Vec<String> = Vec::new();
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    for (group, body) in list.as_object().into_iter().flatten() {
        if group == "_meta" {
            continue;
        }
        for host in body["hosts"].as_array().into_iter().flatten() {
            if let Some(host) = host.as_str() {
                if seen.insert(host.to_string()) {
                    hosts.push(host.to_string());
                }
                if group != "all" && group != "ungrouped" {
                    groups
                        .entry(host.to_string())
                        .or_default()
                        .push(group.clone());
                }
            }
        }
    }
    for host in list["_meta"]["hostvars"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(h, _)| h)
    {
        if seen.insert(host.clone()) {
            hosts.push(host.clone());
        }
    }
    hosts
        .into_iter()
        .map(|host| {
            let vars = &list["_meta"]["hostvars"][&host];
            let mut node = Node::new(host.clone()).with(
                "hostname",
                vars.get("ansible_host")
                    .and_then(text)
                    .unwrap_or_else(|| host.clone()),
            );
            for (var, attr) in [("ansible_user", "username"), ("ansible_port", "ssh-port")] {
                if let Some(value) = vars.get(var).and_then(text) {
                    node = node.with(attr, value);
                }
            }
            node.tags.extend(groups.remove(&host).unwrap_or_default());
            node
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hosts_keep_their_address_user_port_and_groups_and_no_other_variable() {
        let nodes = parse(&json!({
            "_meta": {"hostvars": {
                "web1": {"ansible_host": "10.0.0.1", "ansible_port": 2222, "ansible_password": "pw"},
                "db1": {"ansible_user": "postgres"}}},
            "all": {"children": ["ungrouped", "web"]},
            "web": {"hosts": ["web1"]},
            "ungrouped": {"hosts": ["db1"]}
        }));
        let web = nodes.iter().find(|n| n.name == "web1").unwrap();
        assert_eq!(web.attributes["hostname"], "10.0.0.1");
        assert_eq!(web.attributes["ssh-port"], "2222");
        assert!(web.tags.contains("web"));
        assert!(!web.attributes.values().any(|v| v == "pw"));
        let db = nodes.iter().find(|n| n.name == "db1").unwrap();
        assert_eq!(
            (
                db.attributes["hostname"].as_str(),
                db.attributes["username"].as_str()
            ),
            ("db1", "postgres")
        );
        assert!(db.tags.is_empty());
    }
}
