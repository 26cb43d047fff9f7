//! Nodes from an OpenSSH client config: each host a `Host` line names
//! outright (no wildcard, no negation), with the `HostName`, `User` and
//! `Port` ssh would use for it.
//!
//! As ssh_config(5) says: keywords are case-insensitive and take `Keyword
//! value` or `Keyword=value`, a value may be quoted, `#` starts a comment;
//! for each keyword the first value from a block whose patterns match the
//! host wins (so a `Host *` block at the top gives defaults, and one at the
//! end fills what is left); `%h` in `HostName` is the host, `%%` a `%`.
//! `Match` blocks and `Include` are not followed: name an included file as
//! another source.

use std::collections::{BTreeMap, HashSet};
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

/// A line's words: whitespace-separated, `"…"` one word, a `#` word ends it.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        match chars.peek() {
            None | Some('#') => return out,
            Some('"') => {
                chars.next();
                out.push(chars.by_ref().take_while(|c| *c != '"').collect());
            }
            Some(_) => {
                let mut word = String::new();
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    word.push(c);
                }
                out.push(word);
            }
        }
    }
}

/// Whether `host` matches a `Host` line's patterns: one matches, and no
/// negated one (`!pattern`) does.
fn matches(patterns: &[String], host: &str) -> bool {
    let mut hit = false;
    for pattern in patterns {
        match pattern.strip_prefix('!') {
            Some(negated) if glob(negated, host) => return false,
            Some(_) => {}
            None => hit |= glob(pattern, host),
        }
    }
    hit
}

/// `*` and `?` glob matching, case-insensitive as ssh's host patterns.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (
        pattern.to_lowercase().chars().collect(),
        text.to_lowercase().chars().collect(),
    );
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// A `Host` block: its patterns, and its (keyword, value) lines.
type Block = (Vec<String>, Vec<(String, String)>);

/// The hosts of `text`, in the order they are first named.
pub fn parse(text: &str) -> Vec<Node> {
    // (patterns, settings) of each Host block; a Match block's are skipped.
    let mut blocks: Vec<Block> = Vec::new();
    let mut in_match = false;
    let mut names: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for line in text.lines() {
        let line = line.trim();
        // `Keyword=value`: the first `=` (before any space) separates.
        let line = match line.find(|c: char| c.is_whitespace() || c == '=') {
            Some(at) if line[at..].trim_start().starts_with('=') => {
                format!(
                    "{} {}",
                    &line[..at],
                    line[at..].trim_start()[1..].trim_start()
                )
            }
            _ => line.to_string(),
        };
        let mut w = words(&line);
        if w.is_empty() {
            continue;
        }
        let keyword = w.remove(0).to_ascii_lowercase();
        match keyword.as_str() {
            "host" => {
                in_match = false;
                for name in w.iter().filter(|n| !n.contains(['*', '?', '!'])) {
                    if seen.insert(name.to_lowercase()) {
                        names.push(name.clone());
                    }
                }
                blocks.push((w, Vec::new()));
            }
            "match" => in_match = true,
            _ if in_match => {}
            _ => {
                let Some(value) = w.first().filter(|v| !v.is_empty()) else {
                    continue;
                };
                match blocks.last_mut() {
                    Some((_, settings)) => settings.push((keyword, value.clone())),
                    // Before any Host line: for every host.
                    None => blocks.push((vec!["*".into()], vec![(keyword, value.clone())])),
                }
            }
        }
    }
    // Blocks that name hosts outright, by host; the others (patterns) are
    // tried on every host.
    let literal = |p: &[String]| p.iter().all(|n| !n.contains(['*', '?', '!']));
    let mut by_name: std::collections::HashMap<String, Vec<usize>> = Default::default();
    let mut patterned: Vec<usize> = Vec::new();
    for (i, (patterns, _)) in blocks.iter().enumerate() {
        if literal(patterns) {
            for name in patterns {
                by_name.entry(name.to_lowercase()).or_default().push(i);
            }
        } else {
            patterned.push(i);
        }
    }
    names
        .into_iter()
        .map(|name| {
            let mut candidates: Vec<usize> = patterned
                .iter()
                .copied()
                .filter(|&i| matches(&blocks[i].0, &name))
                .chain(
                    by_name
                        .get(&name.to_lowercase())
                        .into_iter()
                        .flatten()
                        .copied(),
                )
                .collect();
            candidates.sort_unstable();
            candidates.dedup();
            let mut set: BTreeMap<&str, String> = BTreeMap::new();
            for (_, settings) in candidates.iter().map(|&i| &blocks[i]) {
                for (keyword, value) in settings {
                    let attr = match keyword.as_str() {
                        "hostname" => "hostname",
                        "user" => "username",
                        "port" => "ssh-port",
                        _ => continue,
                    };
                    set.entry(attr).or_insert_with(|| value.clone());
                }
            }
            let hostname = set
                .remove("hostname")
                .map(|h| h.replace("%h", &name).replace("%%", "%"))
                .unwrap_or_else(|| name.clone());
            let mut node = Node::new(name)
                .with("hostname", hostname)
                .with("source", "ssh_config");
            for (attr, value) in set {
                node = node.with(attr, value);
            }
            node
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_get_what_ssh_would_use_and_patterns_are_not_hosts() {
        let nodes = parse(
            "Port 2200\n\
             Host bastion jump\n  HostName 203.0.113.7\n  User=ops\n  HostName other\n\
             Host *.internal !x\n  User x\n\
             Match host db\n  User db\n\
             host db \"quoted name\"\n  hostname \"%h.example\"  # comment\n  Port 22 # comment\n\
             Host *\n  User nobody\n  HostName=\n",
        );
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["bastion", "jump", "db", "quoted name"]);
        let b = &nodes[0].attributes;
        assert_eq!(
            (
                b["hostname"].as_str(),
                b["username"].as_str(),
                b["ssh-port"].as_str()
            ),
            ("203.0.113.7", "ops", "2200")
        );
        let db = &nodes[2].attributes;
        assert_eq!(db["hostname"], "db.example");
        // The first value wins: the top's Port; User from `Host *` at the end.
        assert_eq!(
            (db["ssh-port"].as_str(), db["username"].as_str()),
            ("2200", "nobody")
        );
        assert!(glob("*.internal", "a.INTERNAL") && !glob("a?c", "abbc") && glob("a*c", "abbc"));
        assert!(!matches(&["*".into(), "!db".into()], "db"));
    }
}
