//! Files Rundeck would refuse: each error names the file, the job and the field.

use crate::rundeck::ParseError;

fn yaml_err(text: &str) -> ParseError {
    let e = crate::rundeck::parse_yaml("bad.yaml", text.as_bytes()).expect_err("should fail");
    e.downcast::<ParseError>().expect("a ParseError")
}

fn xml_err(text: &str) -> ParseError {
    let e = crate::rundeck::parse_xml("bad.xml", text.as_bytes()).expect_err("should fail");
    e.downcast::<ParseError>().expect("a ParseError")
}

#[test]
fn yaml_top_level_must_be_a_list() {
    let e = yaml_err("name: j\nsequence: {}\n");
    assert_eq!(e.file, "bad.yaml");
    assert!(e.message.contains("list of jobs"), "{e}");
    let e = yaml_err("");
    assert!(e.message.contains("no YAML document"), "{e}");
}

#[test]
fn yaml_several_documents_are_refused() {
    let e = yaml_err("- name: a\n  sequence: {commands: [{exec: x}]}\n---\n- name: b\n");
    assert!(e.message.contains("2 YAML documents"), "{e}");
    assert_eq!(e.line, Some(4));
}

#[test]
fn yaml_syntax_error_has_line() {
    let e = yaml_err("- name: j\n  sequence: [unclosed\n");
    assert!(e.message.starts_with("invalid YAML"), "{e}");
    assert!(e.line.is_some());
    let e = yaml_err("- name: j\n  name: k\n");
    assert!(e.message.contains("duplicated key"), "{e}");
}

#[test]
fn job_without_name() {
    let e = yaml_err("- name: ok\n  sequence:\n    commands:\n    - exec: x\n- description: nameless\n  sequence:\n    commands:\n    - exec: x\n");
    assert_eq!(e.job_index, Some(1));
    assert_eq!(e.job_name, None);
    assert_eq!(e.path.as_deref(), Some("jobs[1].name"));
    assert_eq!(
        e.to_string(),
        "bad.yaml:5: job 1: jobs[1].name: the job has no name"
    );
}

#[test]
fn job_name_with_slash() {
    let e = yaml_err("- name: a/b\n  sequence:\n    commands:\n    - exec: x\n");
    assert_eq!(e.path.as_deref(), Some("jobs[0].name"));
    assert_eq!(e.job_name.as_deref(), Some("a/b"));
}

#[test]
fn bad_retry_names_the_field() {
    let e = yaml_err("- name: deploy\n  retry: often\n  sequence:\n    commands:\n    - exec: x\n");
    assert_eq!(e.path.as_deref(), Some("jobs[0].retry"));
    assert_eq!(e.job_name.as_deref(), Some("deploy"));
    let shown = e.to_string();
    assert!(
        shown.starts_with("bad.yaml:2: job 0 (\"deploy\"): jobs[0].retry: "),
        "{shown}"
    );
}

#[test]
fn empty_or_missing_workflow() {
    let e = yaml_err("- name: j\n  sequence:\n    commands: []\n");
    assert_eq!(e.path.as_deref(), Some("jobs[0].sequence.commands"));
    let e = yaml_err("- name: j\n");
    assert_eq!(e.path.as_deref(), Some("jobs[0].sequence"));
}

#[test]
fn malformed_steps() {
    let e = yaml_err("- name: j\n  sequence:\n    commands:\n    - exec: x\n    - echo hi\n");
    assert_eq!(e.path.as_deref(), Some("jobs[0].sequence.commands[1]"));
    assert_eq!(e.line, Some(5));
    let e = yaml_err("- name: j\n  sequence:\n    commands:\n    - jobref: other-job\n");
    assert_eq!(
        e.path.as_deref(),
        Some("jobs[0].sequence.commands[0].jobref")
    );
    let e = yaml_err(
        "- name: j\n  sequence:\n    commands:\n    - type: p\n      configuration: [a]\n",
    );
    assert_eq!(
        e.path.as_deref(),
        Some("jobs[0].sequence.commands[0].configuration")
    );
    let e = yaml_err("- name: j\n  sequence:\n    commands:\n    - jobref:\n        name: c\n        nodefilters:\n          filter: x\n          dispatch:\n            threadcount: ${option.t}\n");
    assert_eq!(
        e.path.as_deref(),
        Some("jobs[0].sequence.commands[0].jobref.nodefilters.dispatch.threadcount")
    );
}

#[test]
fn duplicate_option() {
    let e = yaml_err("- name: j\n  options:\n  - name: a\n  - name: a\n  sequence:\n    commands:\n    - exec: x\n");
    assert_eq!(e.path.as_deref(), Some("jobs[0].options"));
    assert!(e.message.contains("\"a\""));
}

#[test]
fn xml_required_elements() {
    let e = xml_err("<joblist><job><name>n</name><sequence><command><exec>x</exec></command></sequence></job></joblist>");
    assert_eq!(e.path.as_deref(), Some("jobs[0].description"));
    assert_eq!(e.job_name.as_deref(), Some("n"));
    let e = xml_err("<joblist><job><description/><sequence><command><exec>x</exec></command></sequence></job></joblist>");
    assert_eq!(e.path.as_deref(), Some("jobs[0].name"));
    let e = xml_err("<joblist><job><name>n</name><description/></job></joblist>");
    assert_eq!(e.path.as_deref(), Some("jobs[0].sequence"));
}

#[test]
fn xml_structure_errors() {
    let e = xml_err("<joblist><job><name>n</name>\n<description/><sequence><command>echo hi</command></sequence></job></joblist>");
    assert_eq!(e.path.as_deref(), Some("jobs[0].sequence.commands[0]"));
    assert_eq!(e.line, Some(2));
    let e = xml_err("<joblist><job><name>n</name><description/><sequence><command><jobref/></command></sequence></job></joblist>");
    assert_eq!(
        e.path.as_deref(),
        Some("jobs[0].sequence.commands[0].jobref")
    );
    let e = xml_err("<joblist><job><name>n</name><description/><notification/><sequence><command><exec>x</exec></command></sequence></job></joblist>");
    assert_eq!(e.path.as_deref(), Some("jobs[0].notification"));
    let e = xml_err("<joblist><job><name>n</name><description/><notification><onsuccess><email/></onsuccess></notification><sequence><command><exec>x</exec></command></sequence></job></joblist>");
    assert_eq!(
        e.path.as_deref(),
        Some("jobs[0].notification.onsuccess.email")
    );
}

#[test]
fn xml_document_errors() {
    let e = xml_err("<joblist><job>\n<name>n</name>\n</jobb></joblist>");
    assert!(e.message.starts_with("invalid XML"), "{e}");
    assert_eq!(e.line, Some(3));
    assert_eq!(e.job_index, None);
    let e = xml_err("<jobs><job/></jobs>");
    assert!(e.message.contains("'joblist'"), "{e}");
    let e = xml_err("<joblist/>");
    assert!(e.message.contains("no 'job' element"), "{e}");
}

#[test]
fn not_utf8() {
    let e = crate::rundeck::parse("latin1.yaml", b"- name: caf\xe9\n").expect_err("should fail");
    let e = e.downcast::<ParseError>().unwrap();
    assert_eq!(e.file, "latin1.yaml");
    assert!(e.message.contains("UTF-8"));
}
