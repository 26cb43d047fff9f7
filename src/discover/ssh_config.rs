//! Nodes from an OpenSSH client config: each `Host` entry that names one host
//! (no wildcard, no negation), with its `HostName`, `User` and `Port`.
//!
//! Keywords are case-insensitive and take `Keyword value` or `Keyword=value`,
//! as ssh_config(5) says; the first value of a keyword in an entry wins, as in
//! ssh. `Include` is not followed: name the included file as another source.

use std::path::Path;

use crate::nodes::Node;

/// The largest config read.
const MAX_CONFIG: u64 = 4 << 20;

pub fn nodes(path: &Path) -> Result<Vec<Node>, String> {
    let bytes = crate::state::files::read_regular(path, MAX_CONFIG)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    Ok(parse(&text))
}

/// The hosts of `text`, in the order they are written.
pub fn parse(text: &str) -> Vec<Node> {
    let mut out: Vec<Node> = Vec::new();
    // The entries the current `Host` line opened (indices into `out`).
    let mut current: Vec<usize> = Vec::new();
    let mut in_match = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (keyword, value) = match line.find(|c: char| c.is_whitespace() || c == '=') {
            Some(at) => (
                &line[..at],
                line[at..]
                    .trim_start_matches(|c: char| c.is_whitespace() || c == '=')
                    .trim(),
            ),
            None => (line, ""),
        };
        let value = value.trim_matches('"');
        match keyword.to_ascii_lowercase().as_str() {
            "host" => {
                in_match = false;
                current.clear();
                for name in value.split_whitespace() {
                    let plain = !name.contains(['*', '?', '!']);
                    if plain && !out.iter().any(|n| n.name == name) {
                        current.push(out.len());
                        out.push(
                            Node::new(name)
                                .with("hostname", name)
                                .with("source", "ssh_config"),
                        );
                    }
                }
            }
            "match" => {
                in_match = true;
                current.clear();
            }
            _ if in_match => {}
            key @ ("hostname" | "user" | "port") => {
                let attr = match key {
                    "hostname" => "hostname",
                    "user" => "username",
                    _ => "ssh-port",
                };
                for &i in &current {
                    let node = &mut out[i];
                    let set_already = node.attributes.contains_key(attr)
                        && !(attr == "hostname" && node.attributes["hostname"] == node.name);
                    if !set_already {
                        node.attributes.insert(attr.to_string(), value.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_entries_become_nodes_and_patterns_do_not() {
        let nodes = parse(
            "Host *\n  User nobody\n\
             Host bastion jump\n  HostName 203.0.113.7\n  User=ops\n  Port 2222\n  HostName other\n\
             Host *.internal !x\n  User x\n\
             Match host db\n  User db\n\
             host db\n  hostname \"db.example\"\n",
        );
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["bastion", "jump", "db"]);
        let b = &nodes[0].attributes;
        assert_eq!(
            (
                b["hostname"].as_str(),
                b["username"].as_str(),
                b["ssh-port"].as_str()
            ),
            ("203.0.113.7", "ops", "2222")
        );
        assert_eq!(nodes[2].attributes["hostname"], "db.example");
        assert!(!nodes[2].attributes.contains_key("username"));
    }
}
