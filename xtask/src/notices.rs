//! The third-party notices shipped with each binary: every crate linked into it
//! (its normal dependencies on x86_64 Linux, from `cargo metadata`), its license
//! expression, and the license and notice texts the crate itself ships — the
//! copyright lines MIT, BSD and ISC ask to be carried with a binary. Identical
//! texts are printed once, with the crates that ship them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// A linked crate.
struct Crate {
    name: String,
    version: String,
    license: String,
    texts: Vec<(String, String)>,
}

/// The notices of workspace package `root`'s binary.
pub fn notices(workspace: &Path, root: &str) -> Vec<u8> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace)
        .args(["metadata", "--format-version", "1", "--locked"])
        .args(["--filter-platform", "x86_64-unknown-linux-gnu"])
        .output()
        .expect("running cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages: HashMap<&str, &Value> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p))
        .collect();
    let nodes: HashMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let start = packages
        .values()
        .find(|p| p["name"] == root && p["source"].is_null())
        .unwrap_or_else(|| panic!("no workspace package {root}"))["id"]
        .as_str()
        .unwrap();
    // Normal dependencies only: build scripts and dev-dependencies are not linked.
    let mut seen = BTreeSet::new();
    let mut todo = vec![start];
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let normal = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null());
            if normal {
                todo.push(dep["pkg"].as_str().unwrap());
            }
        }
    }
    let crates: Vec<Crate> = seen
        .iter()
        .map(|id| packages[id])
        .filter(|p| !p["source"].is_null())
        .map(|p| {
            let dir = PathBuf::from(p["manifest_path"].as_str().unwrap())
                .parent()
                .unwrap()
                .to_path_buf();
            Crate {
                name: p["name"].as_str().unwrap().to_owned(),
                version: p["version"].as_str().unwrap().to_owned(),
                license: p["license"].as_str().unwrap_or("(none given)").to_owned(),
                texts: license_texts(&dir),
            }
        })
        .collect();
    render(root, &crates)
}

/// The license and notice files at the top of a crate's source.
fn license_texts(dir: &Path) -> Vec<(String, String)> {
    let mut texts: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let upper = name.to_ascii_uppercase();
            let wanted = ["LICENSE", "LICENCE", "COPYING", "NOTICE", "COPYRIGHT"]
                .iter()
                .any(|p| upper.starts_with(p));
            let text = std::fs::read_to_string(e.path()).ok()?;
            wanted.then(|| (name, text.trim_end().replace('\r', "")))
        })
        .collect();
    texts.sort();
    texts
}

fn render(root: &str, crates: &[Crate]) -> Vec<u8> {
    let mut out = format!(
        "Third-party software in {root}\n\n\
         The {root} binary links the crates below, each under the license it names,\n\
         and the Rust standard library (MIT OR Apache-2.0, https://github.com/rust-lang/rust).\n\
         The texts the crates ship follow the list, each once, with the crates that ship it.\n\n"
    );
    for c in crates {
        out.push_str(&format!("{} {}: {}\n", c.name, c.version, c.license));
    }
    // Text (compared without regard to white space) → the text as first shipped,
    // and the crates (and their file names) that ship it.
    let mut by_text: BTreeMap<String, (&str, Vec<String>)> = BTreeMap::new();
    let mut without = Vec::new();
    for c in crates {
        if c.texts.is_empty() {
            without.push(format!("{} {} ({})", c.name, c.version, c.license));
        }
        for (file, text) in &c.texts {
            let key = text.split_whitespace().collect::<Vec<_>>().join(" ");
            by_text
                .entry(key)
                .or_insert_with(|| (text, Vec::new()))
                .1
                .push(format!("{} {} ({file})", c.name, c.version));
        }
    }
    if !without.is_empty() {
        out.push_str(&format!(
            "\nThese crates ship no license file; their license is the standard text of\n\
             the SPDX identifier named: {}\n",
            without.join(", ")
        ));
    }
    let mut texts: Vec<(&str, Vec<String>)> = by_text.into_values().collect();
    texts.sort_by(|a, b| a.1.cmp(&b.1));
    for (text, users) in texts {
        out.push_str(&format!(
            "\n{}\nShipped by: {}\n{}\n\n{text}\n",
            "=".repeat(78),
            users.join(", "),
            "-".repeat(78)
        ));
    }
    out.into_bytes()
}
