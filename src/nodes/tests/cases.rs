//! Every case of `nodefilter_cases.json` (transcribed from Rundeck's `TestNodeSet.java`).
//!
//! Each test checks all cases of one kind and reports every failing case at once, with the
//! case itself, so one run shows the whole picture.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use crate::nodes::filter::{self, Filter};
use crate::nodes::Node;
use serde_json::Value;

use super::util::{data_dir, names};

fn cases() -> Value {
    let path = data_dir().join("nodefilter_cases.json");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn list<'a>(cases: &'a Value, key: &str) -> &'a Vec<Value> {
    cases[key]
        .as_array()
        .unwrap_or_else(|| panic!("no list {key:?} in the cases file"))
}

/// The three fixture nodes of `TestNodeSet.setUp()`, read as inline resource JSON.
fn fixture_nodes(cases: &Value) -> Vec<Node> {
    crate::nodes::resource::parse_json_value(&cases["nodes"]).unwrap()
}

fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn report(kind: &str, failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} failing {kind} case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn case_counts() {
    let cases = cases();
    let counts = [
        ("parse_cases", 12),
        ("selection_cases", 35),
        ("edge_cases_from_code", 3),
        ("matchesInput_cases_TestNodeSet", 10),
        (
            "matchesInputSet_cases_TestNodeSet (tags {test1,test2,test3})",
            10,
        ),
        ("matchRegexOrEquals_cases_TestNodeSet", 7),
    ];
    for (key, count) in counts {
        assert_eq!(list(&cases, key).len(), count, "{key}");
    }
    assert_eq!(fixture_nodes(&cases).len(), 3);
}

#[test]
fn parse_cases() {
    let cases = cases();
    let mut failures = Vec::new();
    for case in list(&cases, "parse_cases") {
        let text = case["filter"].as_str().unwrap();
        let expected = (string_map(&case["include"]), string_map(&case["exclude"]));
        let parsed = filter::parse_filter(text);
        let combined = filter::combined(text, None);
        for (how, got) in [
            (
                "parse_filter",
                (parsed.include.clone(), parsed.exclude.clone()),
            ),
            (
                "combined",
                (combined.include.clone(), combined.exclude.clone()),
            ),
        ] {
            if got != expected {
                failures.push(format!("{how}({text:?}) = {got:?}, want {expected:?}"));
            }
        }
    }
    report("parse", failures);
}

fn check_selection(case: &Value, nodes: &[Node], failures: &mut Vec<String>) {
    let text = case["filter"].as_str().unwrap();
    let exclude_filter = case["filterExclude"].as_str();
    let precedence = case["excludePrecedence"].as_bool().unwrap();
    let filter = match Filter::parse(text, exclude_filter) {
        Ok(filter) => filter,
        Err(e) => return failures.push(format!("{text:?}: {e:#}")),
    };
    let got = names(filter.select(nodes, precedence));
    let want = strings(&case["expected_selected_all3"]);
    if got != want {
        failures.push(format!(
            "{text:?} (exclude filter {exclude_filter:?}, excludePrecedence {precedence}): selected {got:?}, want {want:?}"
        ));
    }
    if let Some(asserted) = case["asserted_in_test"].as_object() {
        for (name, verdict) in asserted {
            let node = nodes.iter().find(|n| &n.name == name).unwrap();
            let selected = filter.matches(node, precedence);
            if selected != (verdict == "selected") {
                failures.push(format!("{text:?}: {name} should be {verdict}"));
            }
        }
    }
}

#[test]
fn selection_cases() {
    let cases = cases();
    let nodes = fixture_nodes(&cases);
    let mut failures = Vec::new();
    for case in list(&cases, "selection_cases") {
        check_selection(case, &nodes, &mut failures);
    }
    report("selection", failures);
}

#[test]
fn edge_cases_from_code() {
    let cases = cases();
    let nodes = fixture_nodes(&cases);
    let mut failures = Vec::new();
    for case in list(&cases, "edge_cases_from_code") {
        if case.get("expected_selected_all3").is_some() {
            check_selection(case, &nodes, &mut failures);
        }
        if let Some(parsed) = case.get("parsed") {
            let text = case["filter"].as_str().unwrap();
            let got = filter::parse_filter(text);
            let want = (
                string_map(&parsed["include"]),
                string_map(&parsed["exclude"]),
            );
            if (got.include.clone(), got.exclude.clone()) != want {
                failures.push(format!("parse_filter({text:?}) = {got:?}, want {want:?}"));
            }
        }
    }
    report("edge", failures);
}

#[test]
fn matches_input_cases() {
    let cases = cases();
    let mut failures = Vec::new();
    for case in list(&cases, "matchesInput_cases_TestNodeSet") {
        let (selector, value) = (case[0].as_str().unwrap(), case[1].as_str().unwrap());
        let want = case[2].as_bool().unwrap();
        let got = filter::matches_input(selector, Some(value)).unwrap();
        if got != want {
            failures.push(format!(
                "matches_input({selector:?}, {value:?}) = {got}, want {want}"
            ));
        }
    }
    report("matchesInput", failures);
}

#[test]
fn matches_input_set_cases() {
    let cases = cases();
    let tags: BTreeSet<&str> = ["test1", "test2", "test3"].into();
    let mut failures = Vec::new();
    for case in list(
        &cases,
        "matchesInputSet_cases_TestNodeSet (tags {test1,test2,test3})",
    ) {
        let selector = case[0].as_str().unwrap();
        let want = case[1].as_bool().unwrap();
        let got = filter::matches_input_set(selector, tags.iter().copied()).unwrap();
        if got != want {
            failures.push(format!(
                "matches_input_set({selector:?}) = {got}, want {want}"
            ));
        }
    }
    report("matchesInputSet", failures);
}

#[test]
fn match_regex_or_equals_cases() {
    let cases = cases();
    let mut failures = Vec::new();
    for case in list(&cases, "matchRegexOrEquals_cases_TestNodeSet") {
        let (selector, item) = (case[0].as_str().unwrap(), case[1].as_str().unwrap());
        let got = filter::match_regex_or_equals(selector, item);
        let ok = match &case[2] {
            Value::Bool(want) => matches!(got, Ok(g) if g == *want),
            Value::String(s) if s == "PatternSyntaxException" => got.is_err(),
            other => panic!("unexpected expectation {other}"),
        };
        if !ok {
            failures.push(format!(
                "match_regex_or_equals({selector:?}, {item:?}) = {got:?}, want {}",
                case[2]
            ));
        }
    }
    report("matchRegexOrEquals", failures);
}

/// The `PatternSyntaxException` case also fails a whole filter, up front.
#[test]
fn broken_slash_regex_fails_the_filter() {
    let err = Filter::parse("hostname: /test[zyx/", None).unwrap_err();
    assert!(format!("{err:#}").contains("invalid regex"), "{err:#}");
}

/// A value Java compiles but sortie would read differently is an error too, even where a value
/// that is no pattern at all compares as text: else `!name: \p{L}+1` would exclude nothing.
#[test]
fn a_java_pattern_sortie_cannot_compile_fails_the_filter() {
    for text in [
        r"name: .* !name: \p{L}+1",
        "name: [a-z&&[^d]]+",
        "tags: a(?=b)",
    ] {
        let err = Filter::parse(text, None).unwrap_err();
        assert!(
            format!("{err:#}").contains("not supported by sortie"),
            "{err:#}"
        );
    }
    // Too many groups, and (without a group) too deep for regex-lite: an
    // exclusion must not turn into a text comparison that excludes nothing.
    let deep = |n: usize| format!("{}n1{}", "(?:".repeat(n), ")".repeat(n));
    for big in [
        format!("name: {}", "()".repeat(40)),
        format!("name: n1 !name: {}", deep(50)),
    ] {
        let err = Filter::parse(&big, None).unwrap_err();
        assert!(
            format!("{err:#}").contains("over sortie's limit"),
            "{err:#}"
        );
    }
    let nodes = [Node::new("n0"), Node::new("n1")];
    let filter = Filter::parse(&format!("name: n.* !name: {}", deep(40)), None).unwrap();
    assert_eq!(names(filter.select(&nodes, true)), ["n0"]);
    let nodes = [Node::new("web1"), Node::new("a(b")];
    let filter = Filter::parse("name: a(b", None).unwrap();
    assert_eq!(names(filter.select(&nodes, true)), ["a(b"]);
}

/// `${…}` is not expanded here: Rundeck expands option references before parsing a filter, so
/// the caller must too. An unexpanded reference is just a literal selector.
#[test]
fn option_references_are_not_expanded() {
    let text = "name: ${option.nodes} tags: ${option.tag}";
    let filter = Filter::parse(text, None).unwrap();
    let maps = filter::combined(text, None);
    assert_eq!(maps.include["name"], "${option.nodes}");
    assert_eq!(maps.include["tags"], "${option.tag}");
    let nodes = [
        Node::new("web1").with_tags(["web"]),
        Node::new("${option.nodes}").with_tags(["${option.tag}"]),
    ];
    assert_eq!(names(filter.select(&nodes, true)), ["${option.nodes}"]);
}

/// Filters over a real inventory (jsch-node.yaml).
#[test]
fn filters_over_a_real_inventory() {
    let nodes = crate::nodes::tests::util::corpus("rundeck__jsch-node.yaml");
    let select = |text: &str| names(Filter::parse(text, None).unwrap().select(&nodes, true));
    assert_eq!(select("name: ssh-node "), ["ssh-node"]);
    assert_eq!(select("tags: auth-method-key+envvars"), ["ssh-node"]);
    assert_eq!(
        select("!tags: executor-test"),
        [
            "ssh-node-file-option-passphrase",
            "ssh-node-option-passphrase"
        ]
    );
    assert_eq!(select("ssh-authentication: password"), ["password-node"]);
    assert_eq!(select("local-ssh-agent: true"), ["ssh-agent-node"]);
    assert_eq!(select("osFamily: unix").len(), 8);
    assert_eq!(select("os-family: unix").len(), 8);
    assert_eq!(select(".*").len(), 8);
    assert!(select("").is_empty());
}
