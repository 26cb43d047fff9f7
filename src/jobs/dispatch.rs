//! Which nodes a job's node steps run on, in which order, and the data each
//! node has captured.
//!
//! Rundeck's rules (SEMANTICS.md §3–5, from its source): a job without a node
//! filter runs on the runner's own node; with one, the filter — its
//! `${option.x}` expanded first, a missing option blank and any other unknown
//! reference left as written — selects among the runner's inventory, the nodes
//! the job brought and the runner's own node, which are then ordered by the rank
//! attribute. Data a node step captures belongs to that node: a later node step
//! sees `${data.k}` as its own node's value (else the global one), any step sees
//! `${data.k@node}` and `${data.k*}` (every node's value, joined).

use std::collections::BTreeMap;

use crate::jobs::result_data::DataSet;
use crate::jobs::spec::Dispatch;
use crate::nodes::ssh;
use crate::nodes::{rank_ordered, Filter, Node, RankOrder};

/// The nodes a runner knows, and how it reaches them.
#[derive(Debug, Clone)]
pub struct Nodes {
    /// From `--nodes` files.
    pub inventory: Vec<Node>,
    /// The runner's own node (`local`, or `--node-name`).
    pub local: Node,
    /// How remote nodes are reached (without `ssh` on PATH, they fail with that reason).
    pub ssh: ssh::Settings,
    /// Why inventory sources did not load: a job with a node filter then
    /// fails with them (its selection would be wrong); other jobs run.
    pub problems: Vec<String>,
}

/// The nodes a dispatch selects, in dispatch order.
pub fn select(
    dispatch: &Dispatch,
    options: &BTreeMap<String, String>,
    nodes: &Nodes,
) -> Result<Vec<Node>, String> {
    if !nodes.problems.is_empty() {
        return Err(format!(
            "the node inventory did not load: {}",
            nodes.problems.join("; ")
        ));
    }
    let filter = expand_filter(&dispatch.filter, options);
    let exclude = dispatch
        .exclude_filter
        .as_deref()
        .map(|f| expand_filter(f, options));
    let parsed = Filter::parse(&filter, exclude.as_deref())
        .map_err(|e| format!("node filter {filter:?}: {e:#}"))?;
    let mut all: BTreeMap<String, Node> = BTreeMap::new();
    all.insert(nodes.local.name.clone(), nodes.local.clone());
    for node in nodes.inventory.iter().chain(&dispatch.inventory) {
        all.insert(node.name.clone(), node.clone());
    }
    let all: Vec<Node> = all.into_values().collect();
    let selected = parsed.select(&all, dispatch.exclude_precedence);
    let order = if dispatch.rank_descending {
        RankOrder::Descending
    } else {
        RankOrder::Ascending
    };
    Ok(
        rank_ordered(selected, dispatch.rank_attribute.as_deref(), order)
            .into_iter()
            .cloned()
            .collect(),
    )
}

/// `${option.x}` in a filter, as Rundeck expands it before parsing: a missing
/// option is blank, any other reference stays as written.
pub fn expand_filter(filter: &str, options: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(filter.len());
    let mut rest = filter;
    while let Some(start) = rest.find("${option.") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "${option.".len()..];
        match after.find('}') {
            Some(end) => {
                out.push_str(options.get(&after[..end]).map_or("", String::as_str));
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// How many nodes at once: the dispatch's threadcount, its `${option.x}` expanded.
pub fn threadcount(
    dispatch: &Dispatch,
    options: &BTreeMap<String, String>,
) -> Result<usize, String> {
    let text = expand_filter(&dispatch.threadcount, options);
    match text.trim().parse::<usize>() {
        Ok(0) | Err(_) if text.trim().is_empty() => Ok(1),
        Ok(n) if n > 0 => Ok(n.min(256)),
        _ => Err(format!("threadcount {text:?} is not a number of nodes")),
    }
}

/// The data of a job: global, and per node, within one job-wide total.
#[derive(Debug, Default)]
pub struct Data {
    pub global: DataSet,
    pub nodes: BTreeMap<String, DataSet>,
    /// A job that dispatches to no node runs its steps on the runner's own
    /// node (this name), as Rundeck runs them on its server's, with the
    /// global data: the steps' context there (`N:k`, `exec.exitCode`) is then
    /// this node's too (`N:k@local`, `N:k*`). Only the context: every form
    /// of every value would triple the steps' environment.
    pub local_only: Option<String>,
}

/// The longest `${data.k*}` (every node's value joined): a step gets it in a
/// variable, and Linux refuses a variable over 128 KiB.
const MAX_JOINED: usize = 120 << 10;

impl Data {
    /// The data of `node` so far (a copy, counting against the job's total).
    pub fn of(&self, node: &str) -> DataSet {
        self.nodes
            .get(node)
            .cloned()
            .unwrap_or_else(|| self.global.sibling())
    }

    /// What a step sees as `${data.*}`: on `node` its own values, else the
    /// global ones; `k@node` for every node's value, `k*` for all of them
    /// joined. `own` is the data of the node (or, with no node, the global
    /// data) as the running sequence has it, newer than what `self` holds.
    pub fn view(&self, node: Option<&str>, own: &DataSet) -> BTreeMap<String, String> {
        let mut view = match node {
            None => own.map().clone(),
            Some(_) => self.global.map().clone(),
        };
        let mut sets: BTreeMap<&str, &DataSet> = self
            .nodes
            .iter()
            .map(|(n, set)| (n.as_str(), set))
            .collect();
        if let Some(node) = node {
            view.extend(own.map().clone());
            sets.insert(node, own);
        }
        let local = self.local_only.as_deref().filter(|_| node.is_none());
        let mut joined: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let context = own.map().iter().filter(|(k, _)| own.is_context(k));
        let local_context = local
            .into_iter()
            .flat_map(|name| context.clone().map(move |kv| (name, kv)));
        let every = sets
            .into_iter()
            .flat_map(|(name, set)| set.map().iter().map(move |kv| (name, kv)))
            .chain(local_context);
        for (name, (k, v)) in every {
            view.insert(format!("{k}@{name}"), v.clone());
            joined.entry(k).or_default().push(v);
        }
        for (k, values) in joined {
            let all = values.join(",");
            if all.len() <= MAX_JOINED {
                view.insert(format!("{k}*"), all);
            }
        }
        view
    }

    /// All data for the completion: global values, and each node's under `k@node`.
    pub fn into_map(self) -> BTreeMap<String, String> {
        let mut out = self.global.into_map();
        for (name, set) in self.nodes {
            for (k, v) in set.into_map() {
                out.insert(format!("{k}@{name}"), v);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_s_options_expand_as_rundeck_does() {
        let options = BTreeMap::from([("env".to_string(), "prod".to_string())]);
        assert_eq!(expand_filter("tags: ${option.env}", &options), "tags: prod");
        assert_eq!(
            expand_filter("name: ${option.missing}x", &options),
            "name: x"
        );
        assert_eq!(
            expand_filter("${job.name} ${option.env", &options),
            "${job.name} ${option.env"
        );
    }

    #[test]
    fn node_data_is_seen_per_node_by_name_and_joined() {
        let mut data = Data::default();
        data.global.insert("k".into(), "global".into()).unwrap();
        for (node, v) in [("n1", "one"), ("n2", "two")] {
            let mut set = DataSet::default();
            set.insert("k".into(), v.into()).unwrap();
            data.nodes.insert(node.into(), set);
        }
        let mut newer = data.nodes["n1"].clone();
        newer.insert("k".into(), "newer".into()).unwrap();
        let on_n1 = data.view(Some("n1"), &newer);
        assert_eq!(on_n1["k"], "newer");
        assert_eq!(on_n1["k@n1"], "newer");
        assert_eq!(data.view(None, &data.global)["k"], "global");
        assert_eq!(on_n1["k@n2"], "two");
        assert_eq!(on_n1["k*"], "newer,two");
    }
}
