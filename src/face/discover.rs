//! `sortie discover`, and the inventory's sources from `--inventory-config`.
//!
//! The config file (YAML or JSON) lists the sources in priority order, each a
//! mapping with one kind and an optional `timeout`:
//!
//! ```yaml
//! timeout: 20s
//! sources:
//!   - host: {}
//!   - files: [/etc/sortie/nodes.yaml]
//!   - ssh_config: /home/ops/.ssh/config
//!   - ansible: [/etc/ansible/hosts]
//!   - ec2: {regions: [eu-west-1], filters: {"tag:env": [prod]}}
//!     timeout: 30s
//!   - kubernetes: {namespace: apps}
//!   - command: [/usr/local/bin/cmdb-export, --json]
//! ```
//!
//! Without one, the sources are the runner's own node and the `--nodes` files.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

use crate::discover::{self, ec2::Ec2, host::Host, kubernetes::Kubernetes, Config, Kind, Source};
use crate::exit::{Code, Failure};
use crate::face::cli::{DiscoverArgs, DiscoverFormat, InventoryArgs, NodeArgs};
use crate::output::printable;

/// The most sources a config lists (each runs in a thread of its own).
const MAX_SOURCES: usize = 64;

/// A source's time when neither it nor the file says.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    timeout: Option<String>,
    sources: Vec<RawSource>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSource {
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    host: Option<serde_json::Value>,
    #[serde(default)]
    files: Option<Vec<PathBuf>>,
    #[serde(default)]
    ssh_config: Option<PathBuf>,
    #[serde(default)]
    ansible: Option<Vec<String>>,
    #[serde(default)]
    ec2: Option<RawEc2>,
    #[serde(default)]
    kubernetes: Option<RawKubernetes>,
    #[serde(default)]
    command: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEc2 {
    #[serde(default)]
    regions: Vec<String>,
    #[serde(default)]
    filters: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawKubernetes {
    #[serde(default)]
    api: Option<String>,
    #[serde(default)]
    token_file: Option<PathBuf>,
    #[serde(default)]
    ca_file: Option<PathBuf>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default = "yes")]
    nodes: bool,
    #[serde(default = "yes")]
    pods: bool,
}

fn yes() -> bool {
    true
}

fn duration(text: Option<&str>, what: &str) -> Result<Option<Duration>> {
    text.map(|t| {
        humantime::parse_duration(t)
            .ok()
            .filter(|d| !d.is_zero() && *d <= Duration::from_secs(3600))
            .ok_or_else(|| anyhow!("{what}: {t:?} is not a duration from 1ms to 1h"))
    })
    .transpose()
}

/// The inventory's sources: the config file's, or the runner's node and `--nodes`.
pub fn config(inventory: &InventoryArgs, nodes: &NodeArgs, tags: &[String]) -> Result<Config> {
    let host = Host {
        name: nodes.node_name.trim().to_string(),
        tags: tags.to_vec(),
    };
    let Some(path) = &inventory.inventory_config else {
        let mut sources = vec![Source {
            kind: Kind::Host(host),
            timeout: None,
        }];
        if !nodes.nodes.is_empty() {
            sources.push(Source {
                kind: Kind::Files(nodes.nodes.clone()),
                timeout: None,
            });
        }
        return Ok(Config {
            sources,
            timeout: DEFAULT_TIMEOUT,
        });
    };
    let read = || -> Result<Config> {
        let bytes = crate::state::files::read_regular(path, 1 << 20)?;
        let text = String::from_utf8(bytes).map_err(|_| anyhow!("not UTF-8"))?;
        let mut value = crate::jobs::spec_yaml::to_json(&text)?;
        // `- host:` (no value) is the host source, as `- host: {}`.
        for source in value["sources"].as_array_mut().into_iter().flatten() {
            if source.get("host").is_some_and(|h| h.is_null()) {
                source["host"] = serde_json::json!({});
            }
        }
        let raw: RawConfig = serde_json::from_value(value)?;
        if raw.sources.is_empty() {
            bail!("sources: none listed");
        }
        if raw.sources.len() > MAX_SOURCES {
            bail!("sources: at most {MAX_SOURCES}");
        }
        let timeout = duration(raw.timeout.as_deref(), "timeout")?.unwrap_or(DEFAULT_TIMEOUT);
        let mut sources = Vec::new();
        for (i, s) in raw.sources.into_iter().enumerate() {
            let at = format!("sources[{i}]");
            let timeout = duration(s.timeout.as_deref(), &format!("{at}.timeout"))?;
            let kinds = [
                s.host.is_some(),
                s.files.is_some(),
                s.ssh_config.is_some(),
                s.ansible.is_some(),
                s.ec2.is_some(),
                s.kubernetes.is_some(),
                s.command.is_some(),
            ];
            if kinds.iter().filter(|k| **k).count() != 1 {
                bail!("{at}: exactly one of host, files, ssh_config, ansible, ec2, kubernetes, command");
            }
            let kind = if s.host.is_some() {
                Kind::Host(host.clone())
            } else if let Some(files) = s.files {
                Kind::Files(files)
            } else if let Some(path) = s.ssh_config {
                Kind::SshConfig(path)
            } else if let Some(inventories) = s.ansible {
                Kind::Ansible(inventories)
            } else if let Some(ec2) = s.ec2 {
                Kind::Ec2(Ec2 {
                    regions: ec2.regions,
                    filters: ec2.filters,
                })
            } else if let Some(k) = s.kubernetes {
                Kind::Kubernetes(Kubernetes {
                    api: k.api,
                    token_file: k.token_file,
                    ca_file: k.ca_file,
                    namespace: k.namespace,
                    no_nodes: !k.nodes,
                    no_pods: !k.pods,
                })
            } else {
                let argv = s.command.unwrap_or_default();
                if argv.first().is_none_or(|p| p.is_empty()) {
                    bail!("{at}.command: needs a program");
                }
                Kind::Command(argv)
            };
            sources.push(Source { kind, timeout });
        }
        Ok(Config { sources, timeout })
    };
    read().with_context(|| format!("--inventory-config {}", path.display()))
}

pub fn run(args: &DiscoverArgs) -> Result<Code> {
    let config = config(&args.inventory, &args.nodes, &args.tags).map_err(Failure::config)?;
    let found = discover::discover(&config, &crate::shot::inventory::mask);
    let mut failed = false;
    for source in &found.sources {
        match &source.error {
            Some(why) => {
                failed = true;
                eprintln!("source {}: failed: {}", source.name, printable(why));
            }
            None => eprintln!(
                "source {}: {} node(s) in {} ms",
                source.name, source.nodes, source.duration_ms
            ),
        }
    }
    let json = discover::resource_json(&found);
    match args.format {
        DiscoverFormat::Json => {
            super::print(format_args!("{}\n", serde_json::to_string_pretty(&json)?))?
        }
        DiscoverFormat::Yaml => super::print(resource_yaml(&json))?,
        DiscoverFormat::Table => {
            let nodes: Vec<_> = found.nodes.values().cloned().collect();
            crate::face::nodes::table(&nodes)?;
        }
    }
    // As `sortie nodes`: what did load is shown; a source that did not says so.
    Ok(if failed { Code::CONFIG } else { Code::OK })
}

/// Rundeck resource YAML: each node a mapping of its attributes, every
/// value a quoted string.
fn resource_yaml(json: &serde_json::Value) -> String {
    let quote = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    let mut out = String::new();
    for (name, attrs) in json.as_object().into_iter().flatten() {
        out.push_str(&format!("{}:\n", quote(name)));
        for (k, v) in attrs.as_object().into_iter().flatten() {
            out.push_str(&format!(
                "  {}: {}\n",
                quote(k),
                quote(v.as_str().unwrap_or(""))
            ));
        }
    }
    out
}
