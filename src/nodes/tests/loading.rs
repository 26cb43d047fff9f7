//! `load`: files and directories, merging between sources, per-file errors.

use super::util::{find, names, TempDir};

#[test]
fn directory_good_files_survive_a_bad_one() {
    let dir = TempDir::new("dir");
    dir.write(
        "a.yaml",
        "web1:\n  hostname: a\n  tags: from-a\n  only-a: x\ndb1:\n  hostname: db\n",
    );
    dir.write("b.json", r#"{"web1": {"hostname": "b", "tags": "from-b"}}"#);
    dir.write("c.yml", "web1: not a map\n");
    dir.write(
        "d.xml",
        r#"<project><node name="app1" hostname="app"/></project>"#,
    );
    dir.write("notes.txt", "ignored: {}\n");
    dir.write("sub/e.yaml", "ignored: {}\n");
    let loaded = crate::nodes::resource::load(&[&dir.0]);
    assert_eq!(names(&loaded.nodes), ["app1", "db1", "web1"]);
    // Within a directory a later file replaces the node whole.
    let web1 = find(&loaded.nodes, "web1");
    assert_eq!(web1.hostname(), Some("b"));
    assert_eq!(web1.sorted_tags(), ["from-b"]);
    assert!(!web1.attributes.contains_key("only-a"));
    assert_eq!(loaded.errors.len(), 1);
    let error = format!("{:#}", loaded.errors[0]);
    assert!(
        error.contains("c.yml") && error.contains("\"web1\""),
        "{error}"
    );
}

#[test]
fn sources_merge_attributes_by_default() {
    let dir = TempDir::new("merge");
    let first = dir.write("first.yaml", "web1:\n  hostname: a\n  tags: x\n  keep: 1\n");
    let second = dir.write(
        "second.xml",
        r#"<project><node name="web1" hostname="b" tags="y"/></project>"#,
    );
    let loaded = crate::nodes::resource::load(&[&first, &second]);
    assert!(loaded.errors.is_empty());
    let web1 = find(&loaded.nodes, "web1");
    assert_eq!(web1.hostname(), Some("b"));
    assert_eq!(web1.attributes["keep"], "1");
    assert_eq!(web1.sorted_tags(), ["x", "y"]);
}

#[test]
fn missing_files_are_reported_not_fatal() {
    let dir = TempDir::new("missing");
    let good = dir.write("good.json", r#"[{"nodename": "n1"}]"#);
    let missing = dir.0.join("missing.yaml");
    let loaded = crate::nodes::resource::load(&[&missing, &good]);
    assert_eq!(names(&loaded.nodes), ["n1"]);
    assert_eq!(loaded.errors.len(), 1);
    let error = format!("{:#}", loaded.errors[0]);
    assert!(
        error.contains("missing.yaml") && error.contains("cannot read"),
        "{error}"
    );
}

#[test]
fn a_file_without_known_extension_is_sniffed() {
    let dir = TempDir::new("sniff");
    let file = dir.write(
        "inventory",
        "<project><node name=\"x\" hostname=\"h\"/></project>",
    );
    let loaded = crate::nodes::resource::load(&[&file]);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert_eq!(find(&loaded.nodes, "x").hostname(), Some("h"));
}
