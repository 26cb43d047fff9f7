//! Every external command the suite runs is in tests/peers/commands.tsv, the list
//! tests/peers/install.sh installs from (README's test command), and is there.

use std::collections::BTreeMap;
use std::path::Path;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// command → source, from the list.
fn listed() -> BTreeMap<String, String> {
    std::fs::read_to_string(repo().join("tests/peers/commands.tsv"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut fields = l.split('\t');
            let command = fields.next().unwrap().to_string();
            let source = fields.next().expect("command<TAB>source<TAB>what for");
            (command, source.to_string())
        })
        .collect()
}

/// The string after each `marker` in `text`, up to the closing quote.
fn quoted_after<'a>(text: &'a str, marker: &str) -> Vec<&'a str> {
    text.match_indices(marker)
        .filter_map(|(i, _)| {
            let rest = &text[i + marker.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

#[test]
fn every_command_a_test_runs_is_listed_and_installed() {
    let listed = listed();
    let mut unlisted = Vec::new();
    for dir in ["tests", "control-plane/tests"] {
        for entry in std::fs::read_dir(repo().join(dir)).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let found = ["Command::new(\"", "peer(\"", "\"/usr/bin/"]
                .into_iter()
                .flat_map(|m| quoted_after(&text, m));
            for command in found {
                let name = command.rsplit('/').next().unwrap();
                // sortie itself: its own binaries (and the unit file's path to it).
                let ours = name.starts_with("sortie");
                if !ours && !listed.contains_key(name) && !name.is_empty() {
                    unlisted.push(format!("{}: {name}", path.display()));
                }
            }
        }
    }
    assert!(
        unlisted.is_empty(),
        "commands run by tests but missing from tests/peers/commands.tsv:\n{}",
        unlisted.join("\n")
    );
    let peers = repo().join("target/test-peers");
    for (command, source) in &listed {
        let present = match source.split(':').next().unwrap() {
            "pip" => peers.join("venv/bin").join(command).exists(),
            "wheel" => peers.join(command).exists(),
            "npm" => peers.join("node_modules").join(command).exists(),
            "cargo" => peers.join("cargo/bin").join(command).exists(),
            "pgbin" => std::fs::read_dir("/usr/lib/postgresql")
                .into_iter()
                .flatten()
                .flatten()
                .any(|v| v.path().join("bin").join(command).exists()),
            _ => std::process::Command::new("sh")
                .args(["-c", &format!("command -v {command}")])
                .output()
                .unwrap()
                .status
                .success(),
        };
        assert!(
            present,
            "{command} ({source}) is not installed: run sh tests/peers/install.sh"
        );
    }
}
