//! The parts of src/ and the rules between them (README, "Layout"), read from
//! the `crate::` paths of every file: a lower part never reaches a higher one,
//! and the parts form no cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each part, and the parts it must not use.
const RULES: &[(&str, &[&str])] = &[
    ("face", &[]),
    ("shot", &["face"]),
    ("jobs", &["face", "shot", "control", "net"]),
    (
        "control",
        &["face", "shot", "jobs", "exec", "output", "nodes", "rundeck"],
    ),
    (
        "state",
        &[
            "face", "shot", "jobs", "control", "exec", "secrets", "net", "nodes", "rundeck",
        ],
    ),
    (
        "output",
        &[
            "face", "shot", "jobs", "control", "state", "net", "nodes", "rundeck",
        ],
    ),
    (
        "secrets",
        &[
            "face", "shot", "jobs", "control", "exec", "state", "output", "nodes", "rundeck",
        ],
    ),
    (
        "exec",
        &[
            "face", "shot", "jobs", "control", "state", "output", "secrets", "net", "nodes",
            "rundeck",
        ],
    ),
    (
        "net",
        &[
            "face", "shot", "jobs", "control", "state", "output", "secrets", "exec", "os", "nodes",
            "rundeck",
        ],
    ),
    (
        "rundeck",
        &[
            "face", "shot", "jobs", "control", "state", "output", "secrets", "exec", "net", "os",
        ],
    ),
    (
        "discover",
        &["face", "shot", "jobs", "control", "output", "rundeck"],
    ),
    (
        "nodes",
        &[
            "face", "shot", "jobs", "control", "state", "output", "secrets", "net", "rundeck",
        ],
    ),
    (
        "os",
        &[
            "face", "shot", "jobs", "control", "state", "output", "secrets", "exec", "net",
            "nodes", "rundeck",
        ],
    ),
];

/// Modules of one file that everything may use and that use nothing of the crate.
const LEAVES: &[&str] = &["clock", "exit", "ids", "secret", "signals", "testing"];

/// part → the parts its files name through `crate::`.
fn uses() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap();
            let part = match rel.components().count() {
                1 => rel.file_stem().unwrap().to_string_lossy().into_owned(),
                _ => rel.iter().next().unwrap().to_string_lossy().into_owned(),
            };
            if part == "lib" || part == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let named = graph.entry(part.clone()).or_default();
            for (i, _) in text.match_indices("crate::") {
                let rest = &text[i + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != part {
                    named.insert(name);
                }
            }
        }
    }
    graph
}

#[test]
fn no_part_uses_a_part_above_it() {
    let graph = uses();
    let mut broken = Vec::new();
    for (part, forbidden) in RULES {
        for used in graph.get(*part).into_iter().flatten() {
            if forbidden.contains(&used.as_str()) {
                broken.push(format!("{part} uses {used}"));
            }
        }
    }
    for leaf in LEAVES {
        for used in graph.get(*leaf).into_iter().flatten() {
            broken.push(format!("the leaf module {leaf} uses {used}"));
        }
    }
    let known: BTreeSet<&str> = RULES
        .iter()
        .map(|(p, _)| *p)
        .chain(LEAVES.iter().copied())
        .collect();
    for part in graph.keys() {
        if !known.contains(part.as_str()) {
            broken.push(format!(
                "{part} is a part with no rule: add it to RULES or LEAVES"
            ));
        }
    }
    assert!(
        broken.is_empty(),
        "layering rules broken:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_parts_form_no_cycle() {
    let graph = uses();
    // Depth-first search with colours; a grey node met again closes a cycle.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        colour: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match colour.get(node) {
            Some(1) => {
                let start = path.iter().position(|p| p == node).unwrap();
                let mut cycle = path[start..].to_vec();
                cycle.push(node.to_string());
                return Some(cycle);
            }
            Some(2) => return None,
            _ => {}
        }
        colour.insert(node.to_string(), 1);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, colour, path) {
                return Some(cycle);
            }
        }
        path.pop();
        colour.insert(node.to_string(), 2);
        None
    }
    let mut colour = BTreeMap::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, &graph, &mut colour, &mut Vec::new()) {
            panic!("the parts form a cycle: {}", cycle.join(" → "));
        }
    }
}

/// The runner stays synchronous: the control plane's async stack and database
/// (tokio, hyper, axum, SQLite) never reach the `sortie` binary's dependencies.
#[test]
fn the_runner_binary_has_no_async_runtime_or_database() {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "sortie",
            "-e",
            "normal,build",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(crates.contains(&"ureq"), "the tree was read: {tree}");
    for forbidden in ["tokio", "hyper", "axum", "rusqlite", "sortie-control-plane"] {
        assert!(
            !crates.contains(&forbidden),
            "{forbidden} is in the runner's dependencies"
        );
    }
}
