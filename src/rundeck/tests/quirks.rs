//! Legacy forms and typing quirks, each in both formats where both exist.

use crate::rundeck::{RankOrder, RetryCount, StepKind};

use super::{cfg, kinds, plugin, xml, yaml};

/// A minimal XML job around `inner` (which must not hold name/description/sequence).
fn xml_job(inner: &str, sequence: &str) -> String {
    format!(
        "<joblist><job><name>j</name><description></description>{inner}\
         <sequence keepgoing='false' strategy='node-first'>{sequence}</sequence></job></joblist>"
    )
}

const EXEC: &str = "<command><exec>echo hi</exec></command>";

// ---- node dispatch ----------------------------------------------------------

#[test]
fn xml_job_level_dispatch_moves_into_nodefilters() {
    let j = &xml(&xml_job(
        "<dispatch><threadcount>${option.threads}</threadcount><keepgoing>TRUE</keepgoing>\
         <excludePrecedence>false</excludePrecedence><rankAttribute>rank</rankAttribute>\
         <rankOrder>descending</rankOrder><successOnEmptyNodeFilter>true</successOnEmptyNodeFilter>\
         </dispatch><nodefilters><filter>tags: web</filter><filterExclude>name: web2</filterExclude></nodefilters>",
        EXEC,
    ))[0];
    let n = j.nodes.as_ref().unwrap();
    assert_eq!(n.filter, "tags: web");
    assert_eq!(n.exclude_filter.as_deref(), Some("name: web2"));
    assert_eq!(n.threadcount, "${option.threads}");
    assert!(n.keepgoing, "XML booleans are parsed case-insensitively");
    assert!(!n.exclude_precedence);
    assert!(n.success_on_empty);
    assert_eq!(n.rank_attribute.as_deref(), Some("rank"));
    assert_eq!(n.rank_order, RankOrder::Descending);
}

#[test]
fn dispatch_without_filter_runs_on_server() {
    let j = &xml(&xml_job(
        "<dispatch><threadcount>4</threadcount></dispatch>",
        EXEC,
    ))[0];
    assert!(j.nodes.is_none());
    let j = &yaml("- name: j\n  nodefilters:\n    dispatch:\n      threadcount: 4\n  sequence:\n    commands:\n    - exec: x\n")[0];
    assert!(j.nodes.is_none());
}

#[test]
fn empty_filter_still_dispatches() {
    let j = &xml(&xml_job(
        "<nodefilters><filter></filter></nodefilters>",
        EXEC,
    ))[0];
    assert_eq!(j.nodes.as_ref().unwrap().filter, "");
}

#[test]
fn xml_legacy_include_tags_with_plus() {
    let j = &xml(&xml_job(
        "<nodefilters excludeprecedence='false'><include><tags>a+b</tags><type>x</type>\
         <hostname>h1</hostname></include><exclude><os-family>windows</os-family></exclude></nodefilters>\
         <dispatch><threadcount>2</threadcount><keepgoing>true</keepgoing></dispatch>",
        EXEC,
    ))[0];
    let n = j.nodes.as_ref().unwrap();
    assert_eq!(n.filter, "tags: a+b hostname: h1 !os-family: windows");
    assert!(n.filter_from_legacy);
    assert!(
        !n.exclude_precedence,
        "excludeprecedence attribute moves into dispatch"
    );
    assert_eq!(n.threadcount, "2");
    assert!(
        j.warnings.iter().any(|w| w.contains("include.type")),
        "{:?}",
        j.warnings
    );
}

#[test]
fn legacy_excludeprecedence_without_dispatch_is_ignored() {
    let j = &xml(&xml_job(
        "<nodefilters excludeprecedence='false'><include><name>n1</name></include></nodefilters>",
        EXEC,
    ))[0];
    let n = j.nodes.as_ref().unwrap();
    assert_eq!(n.filter, "name: n1");
    assert!(n.exclude_precedence);
    assert!(j.warnings.iter().any(|w| w.contains("excludeprecedence")));
}

#[test]
fn yaml_legacy_include_exclude_maps() {
    let j = &yaml(
        "- name: j\n  nodefilters:\n    include:\n      tags: web\n      name: web-.*\n    exclude:\n      os-family: windows\n      name: 'web 3'\n  sequence:\n    commands:\n    - exec: x\n",
    )[0];
    assert_eq!(
        j.nodes.as_ref().unwrap().filter,
        "tags: web name: web-.* !os-family: windows !name: \"web 3\""
    );
}

#[test]
fn exclude_filter_uncheck() {
    let j = &yaml(
        "- name: j\n  excludeFilterUncheck: true\n  nodefilters:\n    filter: '.*'\n    filterExclude: 'tags: slow'\n  sequence:\n    commands:\n    - exec: x\n",
    )[0];
    let n = j.nodes.as_ref().unwrap();
    assert!(n.exclude_filter_uncheck);
    assert_eq!(n.exclude_filter.as_deref(), Some("tags: slow"));
}

#[test]
fn yaml_dispatch_typing() {
    let doc = |tc: &str, kg: &str| {
        yaml(&format!(
            "- name: j\n  nodefilters:\n    filter: x\n    dispatch:\n      threadcount: {tc}\n      keepgoing: {kg}\n      rankOrder: Ascending\n  sequence:\n    commands:\n    - exec: x\n"
        ))
        .remove(0)
    };
    let a = doc("1", "true");
    let b = doc("'1'", "'true'");
    assert_eq!(a.nodes.as_ref().unwrap().threadcount, "1");
    assert_eq!(b.nodes.as_ref().unwrap().threadcount, "1");
    assert!(a.nodes.as_ref().unwrap().keepgoing && b.nodes.as_ref().unwrap().keepgoing);
    // Only the exact string 'ascending' is ascending.
    assert_eq!(a.nodes.as_ref().unwrap().rank_order, RankOrder::Descending);
    // Groovy truth: the quoted string 'false' is true.
    let c = doc("0", "'false'");
    assert!(c.nodes.as_ref().unwrap().keepgoing);
    assert_eq!(
        c.nodes.as_ref().unwrap().threadcount,
        "1",
        "0 falls back to 1"
    );
    assert!(c.warnings.iter().any(|w| w.contains("dispatch.keepgoing")));
}

// ---- options ----------------------------------------------------------------

#[test]
fn xml_options_enforcedvalues_and_delimiter() {
    let j = &xml(&xml_job(
        "<context><project>proj1</project><options>\
         <option name='zeta' value='b' values='a|b|c' valuesListDelimiter='|' enforcedvalues='true' required='false'/>\
         <option name='alpha' secure='true' valueExposed='true' storagePath='keys/p' multivalued='true' delimiter=' '>\
         <description>multi\nline</description></option>\
         </options></context>",
        EXEC,
    ))[0];
    assert_eq!(j.project.as_deref(), Some("proj1"));
    let names: Vec<_> = j.options.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(
        names,
        ["alpha", "zeta"],
        "without preserveOrder options are sorted by name"
    );
    let zeta = &j.options[1];
    assert_eq!(zeta.values, ["a", "b", "c"]);
    assert_eq!(zeta.values_list_delimiter.as_deref(), Some("|"));
    assert!(zeta.enforced && !zeta.required);
    let alpha = &j.options[0];
    assert!(alpha.secure && alpha.value_exposed && alpha.multivalued);
    assert_eq!(alpha.delimiter.as_deref(), Some(" "));
    assert_eq!(alpha.storage_path.as_deref(), Some("keys/p"));
    assert_eq!(alpha.description.as_deref(), Some("multi\nline"));
    assert!(j.unknown.is_empty(), "{:?}", j.unknown);
}

#[test]
fn xml_preserve_order() {
    let j = &xml(&xml_job(
        "<context><options preserveOrder='true'><option name='b'/><option name='a'/></options></context>",
        EXEC,
    ))[0];
    let names: Vec<_> = j.options.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["b", "a"]);
}

#[test]
fn yaml_options_map_form_and_typing() {
    let j = &yaml(
        "- name: j\n  options:\n    zed:\n      value: 0777\n      required: 'false'\n    able:\n      value: 08\n      values: a,b\n      enforced: yes\n    mid:\n      sortIndex: 0\n      value: ''\n  sequence:\n    commands:\n    - exec: x\n",
    )[0];
    let names: Vec<_> = j.options.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(
        names,
        ["mid", "able", "zed"],
        "sortIndex first, then by name"
    );
    let zed = &j.options[2];
    assert_eq!(
        zed.value.as_deref(),
        Some("511"),
        "YAML 1.1 octal, as SnakeYAML reads it"
    );
    assert!(zed.required, "Groovy truth of the string 'false'");
    let able = &j.options[1];
    assert_eq!(able.value.as_deref(), Some("8.0"));
    assert_eq!(able.values, ["a,b"], "a scalar values is one value");
    assert!(able.enforced);
    assert_eq!(j.options[0].value, None, "an empty default is no default");
}

// ---- retry and timeout ------------------------------------------------------

#[test]
fn retry_scalar_and_map() {
    let y = |r: &str| {
        yaml(&format!(
            "- name: j\n  retry: {r}\n  sequence:\n    commands:\n    - exec: x\n"
        ))
        .remove(0)
    };
    let a = y("3");
    assert_eq!(a.retry.as_ref().unwrap().count, RetryCount::Fixed(3));
    assert!(a.retry.as_ref().unwrap().delay.is_none());
    let b = y("'${option.retry}'");
    assert_eq!(
        b.retry.as_ref().unwrap().count,
        RetryCount::Dynamic("${option.retry}".into())
    );
    let c = y("{retry: '2', delay: 1h1m1s}");
    let r = c.retry.as_ref().unwrap();
    assert_eq!(r.count, RetryCount::Fixed(2));
    assert_eq!(r.delay.as_ref().unwrap().seconds, Some(3661));

    let x = &xml(&xml_job("<retry delay='30s'>4</retry>", EXEC))[0];
    let r = x.retry.as_ref().unwrap();
    assert_eq!(r.count, RetryCount::Fixed(4));
    assert_eq!(r.delay.as_ref().unwrap().raw, "30s");
    let x = &xml(&xml_job("<retry>${option.n}</retry>", EXEC))[0];
    assert_eq!(
        x.retry.as_ref().unwrap().count,
        RetryCount::Dynamic("${option.n}".into())
    );
}

#[test]
fn timeout_forms() {
    let y = |t: &str| {
        yaml(&format!(
            "- name: j\n  timeout: {t}\n  sequence:\n    commands:\n    - exec: x\n"
        ))
        .remove(0)
        .timeout
        .unwrap()
    };
    assert_eq!(y("'48h'").seconds, Some(48 * 3600));
    assert_eq!(y("'10800'").seconds, Some(10800));
    let native = y("120");
    assert_eq!((native.raw.as_str(), native.seconds), ("120", Some(120)));
    assert_eq!(y("6h 30m").seconds, Some(23400));
    let dynamic = y("'${option.timeout}'");
    assert_eq!(
        (dynamic.raw.as_str(), dynamic.seconds),
        ("${option.timeout}", None)
    );
    let x = &xml(&xml_job("<timeout>1d 6h</timeout>", EXEC))[0];
    assert_eq!(x.timeout.as_ref().unwrap().seconds, Some(86400 + 6 * 3600));
}

// ---- identity and context ---------------------------------------------------

#[test]
fn empty_uuid_and_group_slashes() {
    let j = &xml(&xml_job(
        "<uuid></uuid><id/><group>/sysadm/users/</group>",
        EXEC,
    ))[0];
    assert_eq!(j.uuid, None);
    assert_eq!(j.id, None);
    assert_eq!(j.group.as_deref(), Some("sysadm/users"));
    let j =
        &yaml("- name: j\n  uuid: ''\n  group: ''\n  sequence:\n    commands:\n    - exec: x\n")[0];
    assert_eq!((j.uuid.as_deref(), j.group.as_deref()), (None, None));
}

#[test]
fn xml_logging_limit() {
    let j = &xml(&xml_job("<logging limit='100MB'/>", EXEC))[0];
    assert_eq!(j.loglimit.as_deref(), Some("100MB"));
    assert_eq!(j.loglimit_action.as_deref(), Some("halt"));
    assert_eq!(j.loglimit_status.as_deref(), Some("failed"));
    let j = &yaml("- name: j\n  loglimit: 10/node\n  loglimitAction: truncate\n  sequence:\n    commands:\n    - exec: x\n")[0];
    assert_eq!(j.loglimit_action.as_deref(), Some("truncate"));
}

#[test]
fn schedule_crontab_and_parts() {
    let j = &yaml("- name: j\n  schedule:\n    crontab: '0 30 */6 ? Jan Mon *'\n  sequence:\n    commands:\n    - exec: x\n")[0];
    let s = j.schedule.as_ref().unwrap();
    assert_eq!(s.crontab.as_deref(), Some("0 30 */6 ? Jan Mon *"));
    assert_eq!((s.hour.as_str(), s.day_of_week.as_str()), ("*/6", "Mon"));
    let x = &xml(&xml_job(
        "<schedule><time hour='06' minute='00'/><month month='*' day='15'/><year year='2030'/></schedule>",
        EXEC,
    ))[0];
    let s = x.schedule.as_ref().unwrap();
    assert_eq!(
        (s.day_of_month.as_str(), s.day_of_week.as_str()),
        ("15", "?")
    );
    assert_eq!(
        (s.month.as_str(), s.year.as_str(), s.seconds.as_str()),
        ("*", "2030", "0")
    );
}

// ---- steps --------------------------------------------------------------------

#[test]
fn errorhandler_keepgoing_on_success_both_formats() {
    let x = &xml(&xml_job(
        "",
        "<command><errorhandler keepgoingOnSuccess='true'><exec>fix</exec></errorhandler>\
         <exec>try</exec></command>\
         <command><errorhandler><jobref name='cleanup'/></errorhandler><script>a</script></command>",
    ))[0];
    let eh = x.workflow.steps[0].errorhandler.as_ref().unwrap();
    assert!(eh.keepgoing_on_success);
    assert_eq!(
        eh.kind,
        StepKind::Exec {
            command: "fix".into()
        }
    );
    let eh2 = x.workflow.steps[1].errorhandler.as_ref().unwrap();
    assert!(!eh2.keepgoing_on_success);
    assert_eq!(eh2.kind_name(), "jobref");

    let y = &yaml(
        "- name: j\n  sequence:\n    commands:\n    - exec: try\n      errorhandler:\n        script: fix\n        keepgoingOnSuccess: true\n",
    )[0];
    let eh = y.workflow.steps[0].errorhandler.as_ref().unwrap();
    assert!(eh.keepgoing_on_success);
    assert_eq!(eh.kind_name(), "script");
}

#[test]
fn step_plugin_vs_node_step_plugin() {
    let x = &xml(&xml_job(
        "",
        "<command><step-plugin type='wf'><configuration><entry key='a' value='1'/></configuration></step-plugin></command>\
         <command><node-step-plugin type='ns'/></command>",
    ))[0];
    let (t, n, c) = plugin(&x.workflow.steps[0]);
    assert_eq!((t, n, cfg(c, "a").as_str()), ("wf", false, "1"));
    let (t, n, c) = plugin(&x.workflow.steps[1]);
    assert_eq!((t, n, c.len()), ("ns", true, 0));
    assert_eq!(x.workflow.steps[1].node_step(), Some(true));

    let y = &yaml(
        "- name: j\n  sequence:\n    commands:\n    - type: wf\n      nodeStep: false\n      configuration: {a: 1, b: [x, y], c: true}\n    - type: ns\n      nodeStep: 'true'\n",
    )[0];
    let (t, n, c) = plugin(&y.workflow.steps[0]);
    assert_eq!((t, n), ("wf", false));
    assert_eq!(cfg(c, "a"), "1");
    assert_eq!(cfg(c, "b"), "[\"x\",\"y\"]");
    assert_eq!(cfg(c, "c"), "true");
    assert!(plugin(&y.workflow.steps[1]).1);
}

#[test]
fn yaml_plugin_node_step_string_false_is_true() {
    let y =
        &yaml("- name: j\n  sequence:\n    commands:\n    - type: p\n      nodeStep: 'false'\n")[0];
    assert!(
        plugin(&y.workflow.steps[0]).1,
        "Rundeck casts the string 'false' to true"
    );
    assert!(y.warnings.iter().any(|w| w.contains("nodeStep")));
}

#[test]
fn step_level_and_workflow_level_log_filters() {
    let x = &xml(&xml_job(
        "",
        "<command><exec>env</exec><plugins><LogFilter type='mask-passwords'><config><color>red</color></config></LogFilter></plugins></command>\
         <pluginConfig><LogFilter type='key-value-data'><config><regex>^(A)=(.*)$</regex><logData>true</logData></config></LogFilter>\
         <LogFilter type='quiet-output'/></pluginConfig>",
    ))[0];
    let step_filters = &x.workflow.steps[0].log_filters;
    assert_eq!(step_filters[0].plugin_type, "mask-passwords");
    assert_eq!(step_filters[0].config["color"], "red");
    let wf = &x.workflow.log_filters;
    assert_eq!(wf.len(), 2);
    assert_eq!(wf[0].config["regex"], "^(A)=(.*)$");
    assert!(wf[0].has_config);
    assert!(
        !wf[1].has_config,
        "a filter without config is skipped by Rundeck"
    );
    assert!(x.warnings.iter().any(|w| w.contains("quiet-output")));

    let y = &yaml(
        "- name: j\n  plugins:\n    LogFilter:\n    - type: mask-passwords\n      config: {}\n  sequence:\n    pluginConfig:\n      LogFilter:\n        type: highlight-output\n        config: {regex: x}\n    commands:\n    - exec: env\n      plugins:\n        LogFilter:\n        - type: key-value-data\n          config:\n            logData: true\n",
    )[0];
    assert_eq!(y.workflow.log_filters[0].plugin_type, "highlight-output");
    assert_eq!(y.workflow.steps[0].log_filters[0].config["logData"], "true");
    assert!(y.plugins.contains_key("LogFilter"));
    assert!(
        y.warnings.iter().any(|w| w.contains("plugins.LogFilter")),
        "{:?}",
        y.warnings
    );
}

#[test]
fn jobref_without_uuid_and_with_node_override() {
    let x = &xml(&xml_job(
        "",
        "<command><jobref name='child' group='g' nodeStep='TRUE' project='other'><arg line='-a 1'/>\
         <dispatch><threadcount>3</threadcount><keepgoing>true</keepgoing><rankOrder>descending</rankOrder></dispatch>\
         <nodefilters><filter>tags: db</filter></nodefilters></jobref></command>",
    ))[0];
    match &x.workflow.steps[0].kind {
        StepKind::JobRef(r) => {
            assert_eq!(
                (r.name.as_deref(), r.group.as_deref(), r.uuid.as_deref()),
                (Some("child"), Some("g"), None)
            );
            assert!(r.use_name);
            assert!(r.node_step, "XML nodeStep is parsed case-insensitively");
            assert_eq!(r.project.as_deref(), Some("other"));
            assert_eq!(r.args.as_deref(), Some("-a 1"));
            let n = r.nodes.as_ref().unwrap();
            assert_eq!(n.filter, "tags: db");
            assert_eq!(n.threadcount, Some(3));
            assert_eq!(n.keepgoing, Some(true));
            assert_eq!(n.rank_order, Some(RankOrder::Descending));
        }
        k => panic!("{k:?}"),
    }
    let y = &yaml("- name: j\n  sequence:\n    commands:\n    - jobref:\n        name: child\n        nodeStep: 'True'\n")[0];
    match &y.workflow.steps[0].kind {
        StepKind::JobRef(r) => {
            assert!(r.use_name);
            assert!(
                !r.node_step,
                "YAML jobref nodeStep must be exactly true or 'true'"
            );
        }
        k => panic!("{k:?}"),
    }
    assert!(y.warnings.iter().any(|w| w.contains("jobref.nodeStep")));
}

#[test]
fn xml_scriptinterpreter_argsquoted_and_extension() {
    let x = &xml(&xml_job(
        "",
        "<command><scriptinterpreter argsquoted='true'>sudo -u bob sh -c</scriptinterpreter>\
         <scriptfile>/opt/run.sh</scriptfile><scriptargs>-x 1</scriptargs><fileExtension>sh</fileExtension>\
         <expandTokenInScriptFile>true</expandTokenInScriptFile></command>",
    ))[0];
    assert_eq!(
        x.workflow.steps[0].kind,
        StepKind::ScriptFile {
            path: "/opt/run.sh".into(),
            args: Some("-x 1".into()),
            interpreter: Some("sudo -u bob sh -c".into()),
            args_quoted: true,
            file_extension: Some("sh".into()),
            expand_tokens: true,
            secure_input: None,
        }
    );
}

#[test]
fn script_secure_input_settings() {
    let y = &yaml(
        "- name: j\n  sequence:\n    commands:\n    - script: 'eval $(</dev/stdin)'\n      passSecureInput: 'true'\n      autoSecureInput: \"false\"\n      secureFormat: shell\n    - exec: x\n      passSecureInput: true\n",
    )[0];
    match &y.workflow.steps[0].kind {
        StepKind::Script { secure_input, .. } => assert_eq!(
            secure_input
                .as_ref()
                .map(|s| (s.pass, s.auto, s.format.as_deref())),
            Some((true, false, Some("shell")))
        ),
        k => panic!("{k:?}"),
    }
    assert_eq!(
        y.unknown,
        ["jobs[0].sequence.commands[1].passSecureInput"],
        "exec steps have no secure input"
    );
}

#[test]
fn enterprise_fields_and_tags() {
    let doc = |mode: &str| {
        yaml(&format!(
            "- name: j\n  tags: 'demo, linux,'\n  runnerSelector:\n    runnerFilterMode: {mode}\n  sequence:\n    commands:\n    - exec: x\n"
        ))
        .remove(0)
    };
    let local = doc("LOCAL");
    assert_eq!(local.tags, ["demo", "linux"]);
    assert!(local.unknown.is_empty());
    let tagged = doc("TAGS");
    assert_eq!(tagged.unknown, ["jobs[0].runnerSelector"]);
    let x = &xml(&xml_job(
        "<context><project>p</project><options /></context>",
        EXEC,
    ))[0];
    assert!(x.unknown.is_empty(), "{:?}", x.unknown);
}

#[test]
fn script_path_decides_file_or_url() {
    let y = &yaml(
        "- name: j\n  sequence:\n    commands:\n    - scriptfile: HTTPS://example.com/a.sh\n    - scripturl: /srv/a.sh\n",
    )[0];
    assert_eq!(kinds(y), ["scripturl", "scriptfile"]);
    assert_eq!(y.warnings.len(), 2);
}

#[test]
fn exec_wins_over_script() {
    let y = &yaml("- name: j\n  sequence:\n    commands:\n    - exec: a\n      script: b\n")[0];
    assert_eq!(
        y.workflow.steps[0].kind,
        StepKind::Exec {
            command: "a".into()
        }
    );
    assert!(y
        .warnings
        .iter()
        .any(|w| w.ends_with("because the step also has exec")));
}

#[test]
fn rundeck5_builtin_plugin_types() {
    let y = &yaml(
        "- name: j\n  sequence:\n    commands:\n    - type: exec-command\n      nodeStep: true\n      configuration: {adhocRemoteString: 'echo 5'}\n    - type: script-inline\n      nodeStep: true\n      configuration: {adhocLocalString: 'echo s', argString: '-a', scriptInterpreter: bash, interpreterArgsQuoted: 'true'}\n",
    )[0];
    assert_eq!(
        y.workflow.steps[0].kind,
        StepKind::Exec {
            command: "echo 5".into()
        }
    );
    match &y.workflow.steps[1].kind {
        StepKind::Script {
            body,
            args,
            interpreter,
            args_quoted,
            ..
        } => {
            assert_eq!(
                (
                    body.as_str(),
                    args.as_deref(),
                    interpreter.as_deref(),
                    *args_quoted
                ),
                ("echo s", Some("-a"), Some("bash"), true)
            );
        }
        k => panic!("{k:?}"),
    }
}

#[test]
fn unknown_step_and_fields_are_listed() {
    let y = &yaml(
        "- name: a\n  sequence:\n    commands:\n    - exec: x\n- name: b\n  sequence:\n    commands:\n    - exec: x\n- name: c\n  frobnicate: 1\n  sequence:\n    mystery: true\n    commands:\n    - exec: x\n    - exec: y\n      foo: bar\n    - description: no kind here\n      wibble: 3\n",
    );
    let c = &y[2];
    assert_eq!(kinds(c), ["exec", "exec", "unknown"]);
    for path in [
        "jobs[2].frobnicate",
        "jobs[2].sequence.mystery",
        "jobs[2].sequence.commands[1].foo",
        "jobs[2].sequence.commands[2]",
        "jobs[2].sequence.commands[2].wibble",
    ] {
        assert!(
            c.unknown.iter().any(|u| u == path),
            "{path} not in {:?}",
            c.unknown
        );
    }
    match &c.workflow.steps[2].kind {
        StepKind::Unknown { fields } => assert_eq!(fields["wibble"], serde_json::json!(3)),
        k => panic!("{k:?}"),
    }
    assert_eq!(
        c.workflow.steps[2].description.as_deref(),
        Some("no kind here")
    );
    assert_eq!(c.workflow.steps[2].node_step(), None);
    assert!(y[0].unknown.is_empty());
}

#[test]
fn xml_unknown_elements_are_listed() {
    let x = &xml(&xml_job(
        "<shiny>1</shiny>",
        "<command><exec>x</exec><scriptargs>ignored</scriptargs></command>\
         <command><step-plugin type='p' extra='1'/></command>",
    ))[0];
    assert!(
        x.unknown.contains(&"jobs[0].shiny".to_string()),
        "{:?}",
        x.unknown
    );
    assert!(x
        .unknown
        .contains(&"jobs[0].sequence.commands[0].scriptargs".to_string()));
    assert!(x
        .unknown
        .contains(&"jobs[0].sequence.commands[1].step-plugin.extra".to_string()));
}

#[test]
fn conditional_steps_are_unknown() {
    let y = &yaml("- name: j\n  sequence:\n    commands:\n    - conditionGroups: [[{key: a, operator: '==', value: b}]]\n      substeps: [{exec: x}]\n")[0];
    assert_eq!(kinds(y), ["unknown"]);
    assert!(y
        .unknown
        .contains(&"jobs[0].sequence.commands[0].conditionGroups".to_string()));
}

// ---- typing -----------------------------------------------------------------

#[test]
fn yaml_workflow_keepgoing_typing() {
    let k = |v: &str| {
        yaml(&format!(
            "- name: j\n  sequence:\n    keepgoing: {v}\n    commands:\n    - exec: x\n"
        ))
        .remove(0)
        .workflow
        .keepgoing
    };
    assert!(k("true"));
    assert!(!k("false"));
    assert!(k("yes"), "YAML 1.1 boolean");
    assert!(!k("off"));
    assert!(k("'false'"), "a non-empty string is true for Rundeck");
    assert!(!k("''"));
    let x = &xml(&xml_job("", EXEC).replace("keepgoing='false'", "keepgoing='False'"))[0];
    assert!(!x.workflow.keepgoing, "XML strings go through parseBoolean");
}

#[test]
fn xml_string_booleans_at_job_level() {
    let x = &xml(&xml_job(
        "<scheduleEnabled>false</scheduleEnabled><executionEnabled>TRUE</executionEnabled>\
         <multipleExecutions>true</multipleExecutions><nodeFilterEditable>false</nodeFilterEditable>",
        EXEC,
    ))[0];
    assert!(
        !x.schedule_enabled
            && x.execution_enabled
            && x.multiple_executions
            && !x.node_filter_editable
    );
}

#[test]
fn line_endings_follow_the_parsers() {
    let y = yaml("- name: j\r\n  sequence:\r\n    commands:\r\n    - script: |\r\n        a\r\n        b\r\n      args: \"x\\r\\ny\"\r\n");
    match &y[0].workflow.steps[0].kind {
        StepKind::Script { body, args, .. } => {
            assert_eq!(
                body, "a\nb\n",
                "YAML line breaks are normalized, as SnakeYAML does"
            );
            assert_eq!(args.as_deref(), Some("x\r\ny"), "escaped CR stays");
        }
        k => panic!("{k:?}"),
    }
    let x = xml(&xml_job(
        "",
        "<command><script><![CDATA[a\r\nb  ]]></script></command>",
    ));
    match &x[0].workflow.steps[0].kind {
        StepKind::Script { body, .. } => {
            assert_eq!(body, "a\nb  ", "XML normalizes CRLF; trailing spaces stay")
        }
        k => panic!("{k:?}"),
    }
}

#[test]
fn accepted_empty_forms() {
    let y = &yaml(
        "- name: j\n  plugins:\n    ExecutionLifecycle: null\n  schedules: []\n  notifyAvgDurationThreshold: null\n  sequence:\n    commands:\n    - exec: x\n- name: k\n  plugins:\n    ExecutionLifecycle: {}\n  sequence:\n    commands:\n    - exec: x\n",
    );
    assert!(y[0].plugins.is_empty());
    assert!(y[0].unknown.is_empty() && y[1].unknown.is_empty());
    let x = &xml(&xml_job(
        "<plugins/><schedules/><notifyAvgDurationThreshold/>",
        EXEC,
    ))[0];
    assert!(x.plugins.is_empty() && x.unknown.is_empty());
}

#[test]
fn xml_execution_lifecycle_plugins() {
    let x = &xml(&xml_job(
        "<plugins><ExecutionLifecycle type='killhandler'><configuration data='true'><map><value key='killChilds'>true</value></map></configuration></ExecutionLifecycle></plugins>",
        EXEC,
    ))[0];
    assert_eq!(
        x.plugins["ExecutionLifecycle"]["killhandler"],
        serde_json::json!({"killChilds": "true"})
    );
}

#[test]
fn detection_by_content() {
    let y = crate::rundeck::parse(
        "no-extension",
        b"\n- name: j\n  sequence:\n    commands:\n    - exec: x\n",
    )
    .unwrap();
    assert_eq!(y[0].format, crate::rundeck::SourceFormat::Yaml);
    let x = crate::rundeck::parse(
        "job.yaml",
        format!("\u{feff}<?xml version='1.0'?>\n{}", xml_job("", EXEC)).as_bytes(),
    )
    .unwrap();
    assert_eq!(x[0].format, crate::rundeck::SourceFormat::Xml);
    let x = crate::rundeck::parse("job", format!("  \n{}", xml_job("", EXEC)).as_bytes()).unwrap();
    assert_eq!(x[0].format, crate::rundeck::SourceFormat::Xml);
    // A declaration must come first in XML (Rundeck's parser refuses it too).
    assert!(crate::rundeck::parse(
        "job",
        format!(" <?xml version='1.0'?>{}", xml_job("", EXEC)).as_bytes()
    )
    .is_err());
}

#[test]
fn yaml_single_document_with_markers() {
    let y = yaml("---\n- name: j\n  sequence:\n    commands:\n    - exec: x\n...\n");
    assert_eq!(y.len(), 1);
}

#[test]
fn model_serializes() {
    let y = &yaml("- name: j\n  sequence:\n    commands:\n    - exec: x\n")[0];
    let json = serde_json::to_value(y).unwrap();
    assert_eq!(json["workflow"]["steps"][0]["kind"]["Exec"]["command"], "x");
    let back: crate::rundeck::Job = serde_json::from_value(json).unwrap();
    assert_eq!(&back, y);
}
