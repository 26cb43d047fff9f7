//! Malformed input: every error names the file and, where there is one, the node and field.

fn error(path: &str, text: &str) -> String {
    format!(
        "{:#}",
        crate::nodes::resource::parse(path, text.as_bytes()).unwrap_err()
    )
}

#[test]
fn yaml_node_that_is_a_scalar() {
    let e = error("nodes.yaml", "web1:\n  hostname: h\nweb2: oops\n");
    assert_eq!(
        e,
        "nodes.yaml: node \"web2\": expected a map of attributes, found a string (line 3)"
    );
}

#[test]
fn yaml_bad_field() {
    let e = error("nodes.yaml", "web1:\n  tags:\n    a: b\n");
    assert_eq!(
        e,
        "nodes.yaml: node \"web1\": tags: expected a string or a list, found a map (line 3)"
    );
    let e = error("nodes.yaml", "web1:\n  username: {a: b}\n");
    assert_eq!(
        e,
        "nodes.yaml: node \"web1\": username: expected a string, found a map (line 2)"
    );
}

#[test]
fn yaml_list_entry_without_nodename_is_an_error() {
    let e = error("nodes.yaml", "- nodename: a\n- hostname: orphan\n");
    assert_eq!(
        e,
        "nodes.yaml: node at line 2: missing required \"nodename\""
    );
}

#[test]
fn json_list_entry_without_nodename_is_skipped() {
    let nodes = crate::nodes::resource::parse(
        "nodes.json",
        br#"[{"nodename": "a"}, {"hostname": "orphan"}]"#,
    )
    .unwrap();
    assert_eq!(nodes.len(), 1);
}

#[test]
fn yaml_syntax_error() {
    let e = error("nodes.yaml", "web1:\n  hostname: [a\n");
    assert!(e.starts_with("nodes.yaml: invalid YAML at line"), "{e}");
}

#[test]
fn xml_node_without_name() {
    let e = error(
        "nodes.xml",
        "<project>\n  <node hostname=\"h\"/>\n</project>\n",
    );
    assert_eq!(
        e,
        "nodes.xml: node #1 (line 2): missing required attribute \"name\""
    );
}

#[test]
fn xml_not_well_formed() {
    let e = error("nodes.xml", "<project><node name=\"a\"></project>");
    assert!(e.starts_with("nodes.xml: invalid XML: "), "{e}");
}

#[test]
fn invalid_json() {
    let e = error("nodes.json", "{\"web1\": {\"hostname\": }}");
    assert!(e.starts_with("nodes.json: invalid JSON: "), "{e}");
    assert!(e.contains("line 1"), "{e}");
}

#[test]
fn json_wrong_top_level_and_bad_nodename() {
    let e = error("nodes.json", "\"just a string\"");
    assert_eq!(
        e,
        "nodes.json: expected a map of node names or a list of nodes, found a string"
    );
    let e = error("nodes.json", r#"[{"nodename": ["a"]}]"#);
    assert_eq!(
        e,
        "nodes.json: node #1: nodename: expected a string, found a list"
    );
}

#[test]
fn inline_json_errors_have_no_file() {
    let e = crate::nodes::resource::parse_json_value(&serde_json::json!(42))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "expected a map of node names or a list of nodes, found a number"
    );
}
