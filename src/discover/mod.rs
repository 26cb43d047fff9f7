//! Inventory discovery: the nodes this runner can see, from every source it is
//! told to ask, merged into one Rundeck resource model.
//!
//! The control plane cannot see inside the network a runner lives in, so the
//! runner tells it (`PUT v1/inventory`), and `sortie discover` shows an
//! operator the same. Each source runs in a thread of its own with its own
//! timeout, so one slow cloud API does not hold up the others; a source that
//! fails or runs out of time is named in the report with its one-line error,
//! and the nodes of the others are still reported. Sources are listed in
//! priority order: a node two sources know keeps the first one's attributes,
//! and a later source's different value of the same attribute is kept beside
//! it under `SOURCE.attribute`. Every value is masked like output, so a
//! secret the runner knows never leaves in an inventory.

pub mod ansible;
pub mod command;
pub mod ec2;
pub mod host;
pub mod kubernetes;
pub mod ssh_config;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::nodes::Node;

/// Where nodes come from, in priority order.
#[derive(Debug, Clone)]
pub struct Config {
    pub sources: Vec<Source>,
    /// A source's time when it says none of its own.
    pub timeout: Duration,
}

/// One source and its own time limit.
#[derive(Debug, Clone)]
pub struct Source {
    pub kind: Kind,
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone)]
pub enum Kind {
    /// The runner's host itself.
    Host(host::Host),
    /// Rundeck resource files (YAML, XML, JSON; a directory of them).
    Files(Vec<PathBuf>),
    /// `Host` entries of an OpenSSH client config.
    SshConfig(PathBuf),
    /// `ansible-inventory --list` of these inventories.
    Ansible(Vec<String>),
    /// EC2 instances of these regions, matching these filters.
    Ec2(ec2::Ec2),
    /// The cluster's nodes and the namespace's pods.
    Kubernetes(kubernetes::Kubernetes),
    /// A program that prints resource JSON.
    Command(Vec<String>),
}

impl Kind {
    /// The source's name in reports and namespaced attributes.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Host(_) => "host",
            Kind::Files(_) => "files",
            Kind::SshConfig(_) => "ssh_config",
            Kind::Ansible(_) => "ansible",
            Kind::Ec2(_) => "ec2",
            Kind::Kubernetes(_) => "kubernetes",
            Kind::Command(_) => "command",
        }
    }

    /// Ask the source, within `until`.
    fn nodes(&self, until: Instant) -> Result<Vec<Node>, String> {
        match self {
            Kind::Host(host) => Ok(vec![host.node()]),
            Kind::Files(paths) => {
                let loaded = crate::nodes::resource::load(paths);
                match loaded.errors.first() {
                    Some(e) => Err(format!("{e:#}")),
                    None => Ok(loaded.nodes),
                }
            }
            Kind::SshConfig(path) => ssh_config::nodes(path),
            Kind::Ansible(inventories) => ansible::nodes(inventories, until),
            Kind::Ec2(ec2) => ec2.nodes(until),
            Kind::Kubernetes(k8s) => k8s.nodes(until),
            Kind::Command(argv) => command::nodes(argv, until),
        }
    }
}

/// How one source went.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub name: String,
    pub nodes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// What discovery found.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// By node name.
    pub nodes: BTreeMap<String, Node>,
    /// Each source, in priority order.
    pub sources: Vec<Report>,
}

/// What a source answered, and how long it took.
type Answer = (Result<Vec<Node>, String>, Duration);

/// Ask every source at once, each within its own time, and merge what they
/// found. `mask` hides what must not leave (secrets) in every value.
pub fn discover(config: &Config, mask: &dyn Fn(&str) -> String) -> Inventory {
    let started = Instant::now();
    let (tx, rx) = mpsc::channel();
    let mut deadlines = Vec::new();
    for (i, source) in config.sources.iter().enumerate() {
        let limit = source.timeout.unwrap_or(config.timeout);
        let until = started + limit;
        deadlines.push((until, limit));
        let (tx, kind) = (tx.clone(), source.kind.clone());
        // A source past its time is stopped by itself (a program is killed
        // at `until`, a request times out); one that still hangs is left
        // behind once the wait below ends.
        std::thread::spawn(move || {
            let found = kind.nodes(until);
            let _ = tx.send((i, found, started.elapsed()));
        });
    }
    drop(tx);
    let mut answers: Vec<Option<Answer>> = vec![None; config.sources.len()];
    // The last deadline, and time for a program stopped then to be killed
    // and reaped (its TERM, its grace, its KILL), so none outlives sortie.
    let last = deadlines
        .iter()
        .map(|(u, _)| *u)
        .max()
        .map(|u| u + STOP_GRACE);
    while answers.iter().any(Option::is_none) {
        let Some(last) = last else { break };
        let wait = last.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok((i, found, took)) => {
                let found = match found {
                    Ok(_) if Instant::now() > deadlines[i].0 + Duration::from_millis(500) => {
                        Err(timed_out(deadlines[i].1))
                    }
                    other => other,
                };
                answers[i] = Some((found, took));
            }
            Err(_) => break,
        }
    }
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    let mut inventory = Inventory::default();
    for (source, answer) in config.sources.iter().zip(answers) {
        let base = source.kind.name();
        let count = names.entry(base).or_default();
        *count += 1;
        let name = match *count {
            1 => base.to_string(),
            n => format!("{base}#{n}"),
        };
        let limit = source.timeout.unwrap_or(config.timeout);
        let (found, took) = answer.unwrap_or((Err(timed_out(limit)), limit));
        let report = Report {
            name: name.clone(),
            nodes: found.as_ref().map_or(0, Vec::len),
            error: found.as_ref().err().map(|e| mask(&one_line(e))),
            duration_ms: took.as_millis() as u64,
        };
        if let Ok(nodes) = found {
            for node in nodes {
                merge(&mut inventory.nodes, masked(node, mask), &name);
            }
        }
        inventory.sources.push(report);
    }
    inventory
}

/// How long after its deadline a source's program takes to be stopped.
const STOP_GRACE: Duration = Duration::from_secs(3);

fn timed_out(limit: Duration) -> String {
    // Whole milliseconds: a limit clamped to a shot's time is not to the nanosecond.
    let limit = Duration::from_millis(limit.as_millis() as u64);
    format!("timed out after {}", humantime::format_duration(limit))
}

/// The first line of an error, at most 300 characters.
fn one_line(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    line.trim().chars().take(300).collect()
}

fn masked(node: Node, mask: &dyn Fn(&str) -> String) -> Node {
    Node {
        name: mask(&node.name),
        attributes: node
            .attributes
            .into_iter()
            .map(|(k, v)| (mask(&k), mask(&v)))
            .collect(),
        tags: node.tags.into_iter().map(|t| mask(&t)).collect(),
    }
}

/// Add `node` from `source`: a new name is taken whole; a known one keeps
/// what it has, gains what it lacks, and a different value goes beside
/// its own as `SOURCE.attribute`.
fn merge(nodes: &mut BTreeMap<String, Node>, node: Node, source: &str) {
    match nodes.get_mut(&node.name) {
        None => {
            nodes.insert(node.name.clone(), node);
        }
        Some(known) => {
            for (k, v) in node.attributes {
                match known.attributes.get(&k) {
                    None => {
                        known.attributes.insert(k, v);
                    }
                    Some(have) if *have == v => {}
                    // Never over an attribute the node has (even one that
                    // happens to be named so).
                    Some(_) => {
                        known.attributes.entry(format!("{source}.{k}")).or_insert(v);
                    }
                }
            }
            known.tags.extend(node.tags);
        }
    }
}

/// The inventory as Rundeck resource JSON: name → attributes.
pub fn resource_json(inventory: &Inventory) -> serde_json::Value {
    let nodes: Vec<Node> = inventory.nodes.values().cloned().collect();
    crate::nodes::resource::to_resource_json(&nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_source_wins_a_node_and_a_later_value_is_kept_beside_it() {
        let mut nodes = BTreeMap::new();
        merge(
            &mut nodes,
            Node::new("web")
                .with("hostname", "10.0.0.5")
                .with("osName", "Linux"),
            "files",
        );
        merge(
            &mut nodes,
            Node::new("web")
                .with("hostname", "ip-10-0-0-5.internal")
                .with("osName", "Linux")
                .with("instanceId", "i-1"),
            "ec2",
        );
        let web = &nodes["web"];
        assert_eq!(web.attributes["hostname"], "10.0.0.5");
        assert_eq!(web.attributes["ec2.hostname"], "ip-10-0-0-5.internal");
        assert_eq!(web.attributes["instanceId"], "i-1");
        assert!(!web.attributes.contains_key("ec2.osName"));
        // A later source never writes over an attribute, even one so named.
        merge(
            &mut nodes,
            Node::new("web")
                .with("hostname", "third")
                .with("ec2.hostname", "planted"),
            "files",
        );
        merge(
            &mut nodes,
            Node::new("web").with("hostname", "fourth"),
            "ec2",
        );
        assert_eq!(
            nodes["web"].attributes["ec2.hostname"],
            "ip-10-0-0-5.internal"
        );
    }

    #[test]
    fn a_failing_source_is_reported_and_the_others_are_kept_masked() {
        // (A source that hangs is the integration suite's: processes here
        // would share this test binary with every other test's.)
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nodes.json");
        std::fs::write(
            &file,
            r#"{"db": {"hostname": "db.internal", "password": "hunter2", "tag:hunter2": "x"}}"#,
        )
        .unwrap();
        let source = |paths: Vec<PathBuf>| Source {
            kind: Kind::Files(paths),
            timeout: None,
        };
        let config = Config {
            sources: vec![
                source(vec![PathBuf::from("/nonexistent/nodes.yaml")]),
                source(vec![file]),
            ],
            timeout: Duration::from_secs(10),
        };
        let found = discover(&config, &|v: &str| v.replace("hunter2", "[SECRET]"));
        let names: Vec<&str> = found.sources.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["files", "files#2"]);
        assert!(found.sources[0]
            .error
            .as_deref()
            .unwrap()
            .contains("/nonexistent"));
        assert_eq!(found.sources[1].nodes, 1);
        assert_eq!(found.nodes["db"].attributes["password"], "[SECRET]");
        // A key may hold a secret too (a tag's name is the API's to choose).
        assert_eq!(found.nodes["db"].attributes["tag:[SECRET]"], "x");
    }
}
