//! Reading resource files (Rundeck's node inventories) and merging several sources.
//!
//! Why it exists: teams keep their nodes in Rundeck resource files — YAML (`resourceyaml`), XML
//! (`resourcexml`) and JSON (`resourcejson`) — often a directory of them, and a job spec may carry
//! nodes inline as JSON. Each format has its own Rundeck parser with its own quirks (which key
//! wins for the name, how tags are split, what is silently dropped); the submodules reproduce
//! them one format per file, and this file chooses the format, turns a parse into a node set and
//! merges sources.
//!
//! How it is shaped: every parse returns a node set — one node per name, the later definition
//! winning, in name order — as Rundeck's `NodeSetImpl` does. Errors are plain messages that name
//! the file, the node and the field (`nodes.yaml: node "web1": tags: expected a string or a
//! list, found a map (line 4)`). [`load`] never stops at a bad file: it returns the nodes of the
//! good files together with one error per bad file, like Rundeck's directory source.

mod json;
mod xml;
mod yaml;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};

use crate::nodes::java;
use crate::nodes::node::Node;
use crate::nodes::rank;

/// A resource file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `resourceyaml`: `.yaml`, `.yml`.
    Yaml,
    /// `resourcexml`: `.xml`.
    Xml,
    /// `resourcejson`: `.json`.
    Json,
}

impl Format {
    /// The format for a file name, by its extension (case-insensitive), as Rundeck chooses a
    /// parser.
    pub fn from_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "xml" => Some(Format::Xml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// Guess the format of a text with no telling extension: `<` starts XML, `{` or `[` starts
    /// JSON if the whole text is valid JSON, and anything else is YAML.
    pub fn sniff(text: &str) -> Format {
        let start = text.trim_start();
        if start.starts_with('<') {
            Format::Xml
        } else if (start.starts_with('{') || start.starts_with('['))
            && serde_json::from_str::<serde_json::Value>(text).is_ok()
        {
            Format::Json
        } else {
            Format::Yaml
        }
    }
}

/// Parse one resource file's bytes into a node set (one node per name, later definitions
/// winning, sorted by name in Java order).
///
/// The format comes from the extension of `path` (`.yaml`/`.yml`, `.xml`, `.json`) or, when the
/// extension says nothing, from the content ([`Format::sniff`]). `path` is also used in error
/// messages. The text must be UTF-8 (a byte-order mark is allowed).
///
/// # Errors
/// When the bytes are not UTF-8, the text is not valid in its format, or a node breaks the
/// format's rules; the message names the file and, where known, the node and the field.
pub fn parse(path: impl AsRef<Path>, bytes: &[u8]) -> Result<Vec<Node>> {
    let path = path.as_ref();
    let label = path.display().to_string();
    let text = decode(&label, bytes)?;
    let format = Format::from_path(path).unwrap_or_else(|| Format::sniff(text));
    parse_str(format, &label, text)
}

/// Parse a text in a known format; `label` prefixes error messages (usually the file name).
///
/// # Errors
/// As [`parse`].
pub fn parse_str(format: Format, label: &str, text: &str) -> Result<Vec<Node>> {
    let nodes = match format {
        Format::Yaml => yaml::parse(label, text)?,
        Format::Xml => xml::parse(label, text)?,
        Format::Json => {
            let value: serde_json::Value =
                serde_json::from_str(text).map_err(|e| anyhow!("{label}: invalid JSON: {e}"))?;
            json::nodes(&format!("{label}: "), &value)?
        }
    };
    Ok(node_set(nodes))
}

/// Nodes given inline as JSON (for example in a job spec), read with the same rules as a
/// resource-json file: a map of name to attributes or a list of attribute maps with
/// `nodename`. Returns a node set like [`parse`].
///
/// # Errors
/// When the value is neither a map nor a list, or a list entry's `nodename` is null or not a
/// scalar.
pub fn parse_json_value(value: &serde_json::Value) -> Result<Vec<Node>> {
    Ok(node_set(json::nodes("", value)?))
}

/// Nodes in Rundeck's resource-json map form (`{name: {attributes}}`), as Rundeck's JSON
/// generator writes them; [`parse_json_value`] reads it back.
pub fn to_resource_json(nodes: &[Node]) -> serde_json::Value {
    let map = nodes
        .iter()
        .map(|node| (node.name.clone(), node.to_resource_json()))
        .collect();
    serde_json::Value::Object(map)
}

/// What [`load`] read: the merged nodes and one error per source that failed.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The node set, sorted by name in Java order.
    pub nodes: Vec<Node>,
    /// One entry per file (or unreadable directory) that could not be read or parsed.
    pub errors: Vec<anyhow::Error>,
}

/// Load nodes from files and directories, merging them as Rundeck merges a
/// project's sources by default (`project.resources.mergeNodeAttributes`,
/// `MergedAttributesNodeSet`): for a node several sources define, the later
/// source's attributes override and the tags are the union.
///
/// Each path is one source, in order. A directory source reads every `*.yaml`, `*.yml`,
/// `*.xml` and `*.json` file directly in it (not in subdirectories), sorted by file name, and
/// within the directory a later file's node replaces an earlier one whole, as Rundeck's
/// directory source does. Between sources nodes are merged by name, the later source winning.
/// A file that fails is reported in [`Loaded::errors`] and does not hide the others.
pub fn load<P: AsRef<Path>>(paths: &[P]) -> Loaded {
    let mut loaded = Loaded::default();
    let mut all: HashMap<String, Node> = HashMap::new();
    let mut budget = MAX_FILE;
    for path in paths {
        let path = path.as_ref();
        let source = if path.is_dir() {
            load_directory(path, &mut budget, &mut loaded.errors)
        } else {
            match load_file(path, &mut budget) {
                Ok(nodes) => by_name(nodes),
                Err(error) => {
                    loaded.errors.push(error);
                    continue;
                }
            }
        };
        for (name, node) in source {
            match all.get_mut(&name) {
                Some(existing) => {
                    existing.attributes.extend(node.attributes);
                    existing.tags.extend(node.tags);
                }
                None => {
                    all.insert(name, node);
                }
            }
        }
    }
    loaded.nodes = all.into_values().collect();
    rank::sort_by_name(&mut loaded.nodes);
    loaded
}

/// The largest resource file read, and the most read from all sources
/// together (Rundeck's own exports of thousands of nodes are a few MiB; in
/// memory, a node set takes several times its text).
pub const MAX_FILE: u64 = 64 << 20;

/// Read and parse `path`, taking its size from what `budget` has left of
/// [`MAX_FILE`] for all the sources together.
fn load_file(path: &Path, budget: &mut u64) -> Result<Vec<Node>> {
    let bytes = read_bounded(path).map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?;
    *budget = budget.checked_sub(bytes.len() as u64).ok_or_else(|| {
        anyhow!(
            "{}: not read: the node sources before it and this file hold more than {} MiB together",
            path.display(),
            MAX_FILE >> 20
        )
    })?;
    parse(path, &bytes)
}

/// A regular file's bytes, at most [`MAX_FILE`]: a FIFO or a device is refused
/// (opening does not wait for a writer), a larger file too.
fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_FILE {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            MAX_FILE >> 20
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            MAX_FILE >> 20
        )));
    }
    Ok(bytes)
}

fn load_directory(
    dir: &Path,
    budget: &mut u64,
    errors: &mut Vec<anyhow::Error>,
) -> HashMap<String, Node> {
    let mut nodes = HashMap::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(anyhow!("{}: cannot read directory: {e}", dir.display()));
            return nodes;
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file() && Format::from_path(path).is_some())
        .collect();
    files.sort_by(|a, b| {
        let name = |p: &PathBuf| p.file_name().map(|n| n.to_string_lossy().into_owned());
        java::compare_strings(&name(a).unwrap_or_default(), &name(b).unwrap_or_default())
    });
    for file in files {
        match load_file(&file, budget) {
            Ok(parsed) => nodes.extend(by_name(parsed)),
            Err(error) => errors.push(error),
        }
    }
    nodes
}

fn by_name(nodes: Vec<Node>) -> HashMap<String, Node> {
    nodes.into_iter().map(|n| (n.name.clone(), n)).collect()
}

/// Nodes in definition order → node set: the last definition of a name wins, sorted by name.
fn node_set(nodes: Vec<Node>) -> Vec<Node> {
    let mut set: Vec<Node> = by_name(nodes).into_values().collect();
    rank::sort_by_name(&mut set);
    set
}

fn decode<'a>(label: &str, bytes: &'a [u8]) -> Result<&'a str> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        anyhow!(
            "{label}: not UTF-8 text (invalid byte at offset {})",
            e.valid_up_to()
        )
    })
}

/// How a parsed value is named in error messages.
fn describe_json(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_by_extension_and_content() {
        assert_eq!(
            Format::from_path(Path::new("a/nodes.YML")),
            Some(Format::Yaml)
        );
        assert_eq!(Format::from_path(Path::new("nodes.xml")), Some(Format::Xml));
        assert_eq!(
            Format::from_path(Path::new("nodes.json")),
            Some(Format::Json)
        );
        assert_eq!(Format::from_path(Path::new("nodes")), None);
        assert_eq!(Format::sniff("  <project/>"), Format::Xml);
        assert_eq!(Format::sniff("\n{\"a\": {}}"), Format::Json);
        assert_eq!(Format::sniff("{a: {hostname: h}}"), Format::Yaml);
        assert_eq!(Format::sniff("a:\n  hostname: h\n"), Format::Yaml);
    }

    #[test]
    fn parse_chooses_format_by_content_when_extension_is_unknown() {
        let nodes = parse("inventory", b"<project><node name=\"x\"/></project>").unwrap();
        assert_eq!(nodes[0].name, "x");
        let nodes = parse("inventory.txt", b"[{\"nodename\": \"y\"}]").unwrap();
        assert_eq!(nodes[0].name, "y");
        let nodes = parse("inventory", b"\xEF\xBB\xBFz:\n  hostname: h\n").unwrap();
        assert_eq!(nodes[0].name, "z");
    }

    #[test]
    fn all_the_sources_together_are_bounded_as_one_file_is() {
        let dir = tempfile::tempdir().unwrap();
        // Three files of 30 MiB each (one node and padding): the third is over.
        let pad = "x".repeat(30 << 20);
        for name in ["a", "b", "c"] {
            let text = format!("{{\"{name}\": {{\"hostname\": \"h\", \"pad\": \"{pad}\"}}}}");
            std::fs::write(dir.path().join(format!("{name}.json")), text).unwrap();
        }
        let loaded = load(&[dir.path()]);
        let names: Vec<&str> = loaded.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(loaded.errors.len(), 1);
        let error = loaded.errors[0].to_string();
        assert!(
            error.contains("c.json") && error.contains("64 MiB together"),
            "{error}"
        );
    }

    #[test]
    fn not_utf8_names_the_file() {
        let err = parse("bad.yaml", b"a: \xff").unwrap_err().to_string();
        assert!(err.starts_with("bad.yaml: not UTF-8"), "{err}");
    }

    #[test]
    fn node_set_last_definition_wins_and_sorted() {
        let text = "---\nb:\n  hostname: first\n---\nb:\n  hostname: second\na: {}\n";
        let nodes = parse("n.yaml", text.as_bytes()).unwrap();
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(nodes[1].hostname(), Some("second"));
    }

    #[test]
    fn resource_json_document_round_trips() {
        let text = "web:\n  hostname: h\n  port: 22\n  tags: b, a\ndb: {}\n";
        let nodes = parse("n.yaml", text.as_bytes()).unwrap();
        let json = to_resource_json(&nodes);
        assert_eq!(json["web"]["tags"], "a, b");
        assert_eq!(json["web"]["port"], "22");
        assert_eq!(parse_json_value(&json).unwrap(), nodes);
    }
}
