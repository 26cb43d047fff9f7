//! `sortie nodes`: the nodes a filter selects, as a job would see them.
//!
//! The same inventory (`--nodes`), the same runner node and the same
//! selection and order as a job's dispatch, so that a filter can be tried
//! before a job depends on it. A source that does not load is reported, the
//! nodes of the others shown, and the exit code is 78.

use std::collections::BTreeMap;

use anyhow::Result;

use crate::exit::{Cause, Code, Failure};
use crate::face::cli::NodesArgs;
use crate::face::config;
use crate::jobs::dispatch;
use crate::jobs::spec::Dispatch;
use crate::nodes::resource;
use crate::output::printable;

pub fn run(args: &NodesArgs) -> Result<Code> {
    // No connection is made: the private directory is never created.
    let mut nodes = config::nodes(&args.nodes, std::env::temp_dir()).map_err(Failure::config)?;
    // Each problem was logged; show what did load, and say so in the exit code.
    let broken = !std::mem::take(&mut nodes.problems).is_empty();
    let wanted = Dispatch {
        filter: args.filter.clone(),
        exclude_filter: args.exclude_filter.clone(),
        exclude_precedence: args.exclude_precedence,
        threadcount: String::new(),
        keepgoing: false,
        rank_attribute: None,
        rank_descending: false,
        success_on_empty: false,
        inventory: Vec::new(),
    };
    let selected = dispatch::select(&wanted, &BTreeMap::new(), &nodes)
        .map_err(|e| Failure::new(Cause::Usage, anyhow::anyhow!(e)))?;
    for node in &selected {
        if node
            .attribute("ssh-authentication")
            .is_some_and(|a| a.eq_ignore_ascii_case("password"))
        {
            tracing::warn!(
                "node {}: ssh-authentication is password, and sortie logs in with keys only: \
                 give it an ssh-key-storage-path (or the job an ssh_key)",
                printable(&node.name)
            );
        }
    }
    if args.json {
        super::print(format_args!(
            "{}\n",
            serde_json::to_string_pretty(&resource::to_resource_json(&selected))?
        ))?;
        return Ok(if broken { Code::CONFIG } else { Code::OK });
    }
    table(&selected)?;
    Ok(if broken { Code::CONFIG } else { Code::OK })
}

/// Nodes as a table: name, hostname, tags.
pub fn table(selected: &[crate::nodes::Node]) -> anyhow::Result<()> {
    let rows: Vec<[String; 3]> = selected
        .iter()
        .map(|node| {
            [
                node.name.clone(),
                node.hostname().unwrap_or("").to_string(),
                node.sorted_tags().join(","),
            ]
        })
        .map(|row| row.map(|cell| printable(&cell).into_owned()))
        .collect();
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .max()
            .unwrap_or(0)
            .max(8)
    };
    let (w0, w1) = (width(0), width(1));
    let mut text = format!("{:w0$}  {:w1$}  TAGS\n", "NAME", "HOSTNAME");
    for [name, host, tags] in &rows {
        text += &format!("{name:w0$}  {host:w1$}  {tags}\n");
    }
    super::print(text)?;
    eprintln!("{} node(s)", rows.len());
    Ok(())
}
