//! The real exports of `tests/data/jobs`, one test per file. The expected
//! values were read from the files, not from the parser.

use crate::rundeck::{RankOrder, SourceFormat, StepKind};

use super::{cfg, kinds, load, only_job, plugin};

#[test]
fn every_corpus_file_parses() {
    let dir = format!("{}/tests/data/rundeck/jobs", env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let jobs = load(&name);
        assert!(!jobs.is_empty(), "{name}");
        let expected = if name.ends_with(".xml") {
            SourceFormat::Xml
        } else {
            SourceFormat::Yaml
        };
        assert!(jobs.iter().all(|j| j.format == expected), "{name}");
        count += 1;
    }
    assert_eq!(count, 23);
}

#[test]
fn http_request_node_step_xml() {
    let j = only_job("Rundeck-Scripts__HttpRequest_NodeStep.xml");
    assert_eq!(j.name, "HttpRequest_NodeStep");
    assert_eq!(j.group.as_deref(), Some("ApiCalls"));
    assert_eq!(
        j.uuid.as_deref(),
        Some("38636d83-97eb-40dc-b4c2-e521bc122acb")
    );
    assert_eq!(j.description, "");
    assert!(j.nodes.is_none(), "no nodefilters: runs on the server");
    let names: Vec<_> = j.options.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["originUrl", "targetUrl"]);
    assert_eq!(j.options[0].value.as_deref(), Some("http://httpbin.org"));
    assert_eq!(kinds(&j), ["script", "plugin", "plugin", "plugin"]);

    let s0 = &j.workflow.steps[0];
    assert_eq!(s0.description.as_deref(), Some("Echo and log origin URL."));
    match &s0.kind {
        StepKind::Script { body, args, .. } => {
            assert_eq!(
                body,
                "#!/bin/env bash\n\necho \"OriginURL=@option.originUrl@\""
            );
            assert_eq!(args.as_deref(), Some(""));
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(s0.log_filters.len(), 1);
    assert_eq!(s0.log_filters[0].plugin_type, "key-value-data");
    assert_eq!(s0.log_filters[0].config["regex"], "(.+)=(.+)");
    assert_eq!(s0.log_filters[0].config["logData"], "true");

    let (ty, node_step, config) = plugin(&j.workflow.steps[1]);
    assert_eq!((ty, node_step), ("log-data-step", false));
    assert_eq!(cfg(config, "debugOnly"), "false");

    let s2 = &j.workflow.steps[2];
    let (ty, node_step, config) = plugin(s2);
    assert_eq!(
        (ty, node_step),
        ("edu.ohio.ais.rundeck.HttpWorkflowStepPlugin", false)
    );
    assert_eq!(
        cfg(config, "remoteUrl"),
        "${data.OriginURL@node01.rundeck.local}/json"
    );
    assert_eq!(cfg(config, "method"), "GET");
    let filters: Vec<_> = s2
        .log_filters
        .iter()
        .map(|f| f.config["prefix"].as_str())
        .collect();
    assert_eq!(filters, ["keys", "data"]);
    assert_eq!(s2.log_filters[0].plugin_type, "json-mapper");
    assert_eq!(s2.log_filters[0].config["filter"], ".slideshow | keys");

    let (_, _, config) = plugin(&j.workflow.steps[3]);
    assert_eq!(cfg(config, "method"), "POST");
    assert_eq!(cfg(config, "remoteUrl"), "${option.targetUrl}/post");
    assert!(cfg(config, "body").starts_with("{\n\"${data.keys.0}\": \"${data.author}\",\n"));
    assert!(j.notifications);
    assert_eq!(j.notification_triggers, ["onfailure", "onsuccess"]);
    assert!(j.unknown.is_empty(), "{:?}", j.unknown);
}

#[test]
fn ansible_playbook_xml() {
    let j = only_job("ansible-plugin__job-ansible-playbook-test.xml");
    assert_eq!(j.name, "ansible-playbook-multi-node-test");
    assert_eq!(
        j.description,
        "Test multi-node authentication using Ansible playbook"
    );
    let n = j.nodes.as_ref().expect("filter .*");
    assert_eq!(n.filter, ".*");
    assert!(n.exclude_precedence);
    assert!(!n.keepgoing);
    assert_eq!(n.rank_order, RankOrder::Ascending);
    assert!(!n.success_on_empty);
    assert_eq!(n.threadcount, "1");
    assert!(!j.node_filter_editable);
    assert!(j.nodes_selected_by_default);
    assert_eq!(j.workflow.strategy, "step-first");
    assert_eq!(j.workflow.strategy_provider(), "sequential");
    assert_eq!(kinds(&j), ["plugin"]);
    let (ty, node_step, config) = plugin(&j.workflow.steps[0]);
    assert_eq!(
        ty,
        "com.batix.rundeck.plugins.AnsiblePlaybookInlineWorkflowStep"
    );
    assert!(!node_step);
    assert_eq!(
        cfg(config, "ansible-inventory"),
        "/home/rundeck/ansible-multi-node-auth/inventory.ini"
    );
    assert!(
        cfg(config, "ansible-playbook-inline").starts_with("- hosts: all\n  gather_facts: yes\n")
    );
}

#[test]
fn guitars_deploy_xml() {
    let j = only_job("guitars-demo__Deploy.xml");
    assert_eq!(j.name, "Deploy");
    assert_eq!(j.group.as_deref(), Some("release"));
    assert_eq!(j.uuid, None);
    assert!(j
        .description
        .starts_with("deploy the guitars app.\n\n<img src="));
    let names: Vec<_> = j.options.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["jira_issue", "version"]);
    let jira = &j.options[0];
    assert!(jira.required);
    assert_eq!(
        jira.values_url.as_deref(),
        Some("http://localhost/guitars/options/issues.json")
    );
    let version = &j.options[1];
    assert_eq!(version.values, ["1.0", "1.1", "2.0", "2.1"]);
    assert!(version.enforced && version.required);
    assert_eq!(version.description.as_deref(), Some("the package version"));
    assert_eq!(version.value, None);

    let n = j.nodes.as_ref().unwrap();
    assert_eq!(n.filter, "tags: www");
    assert_eq!(n.threadcount, "1");
    assert!(!n.keepgoing && n.exclude_precedence);

    assert_eq!(kinds(&j), ["plugin", "jobref", "jobref", "jobref"]);
    let first = &j.workflow.steps[0];
    let (ty, node_step, config) = plugin(first);
    assert_eq!((ty, node_step), ("JIRA-Issue-Exists", false));
    assert_eq!(cfg(config, "issue-key"), "${option.jira_issue}");
    let eh = first.errorhandler.as_ref().expect("error handler");
    assert!(eh.keepgoing_on_success);
    assert_eq!(
        eh.kind,
        StepKind::Exec {
            command: "echo >&2 \"Ignore the ticket check if it fails\"".into()
        }
    );
    let refs: Vec<_> = j.workflow.steps[1..]
        .iter()
        .map(|s| match &s.kind {
            StepKind::JobRef(r) => (
                r.group.as_deref(),
                r.name.as_deref(),
                r.args.as_deref(),
                r.use_name,
                r.node_step,
            ),
            k => panic!("{k:?}"),
        })
        .collect();
    assert_eq!(
        refs,
        [
            (
                Some("web"),
                Some("install"),
                Some("-version ${option.version}"),
                true,
                false
            ),
            (Some("web"), Some("stop"), None, true, false),
            (Some("web"), Some("start"), None, true, false),
        ]
    );
    assert_eq!(j.notification_triggers, ["onfailure", "onsuccess"]);
}

#[test]
fn guitars_nightly_catalog_rebuild_xml() {
    let j = only_job("guitars-demo__nightly_catalog_rebuild.xml");
    assert_eq!(j.name, "nightly_catalog_rebuild");
    assert_eq!(j.group.as_deref(), Some("db"));
    let s = j.schedule.as_ref().expect("schedule");
    assert_eq!(
        (s.seconds.as_str(), s.minute.as_str(), s.hour.as_str()),
        ("0", "00", "00")
    );
    assert_eq!(
        (s.day_of_week.as_str(), s.day_of_month.as_str()),
        ("*", "?")
    );
    assert_eq!((s.month.as_str(), s.year.as_str()), ("*", "*"));
    let opt = &j.options[0];
    assert_eq!(opt.name, "catalog");
    assert_eq!(opt.values, ["inventory", "partner", "shipping-rates"]);
    assert_eq!(opt.value.as_deref(), Some("inventory"));
    assert!(opt.enforced && opt.required);
    assert_eq!(opt.description.as_deref(), Some("catalog name"));
    let n = j.nodes.as_ref().unwrap();
    assert_eq!(n.filter, "tags: db");
    assert!(n.keepgoing);
    match &j.workflow.steps[0].kind {
        StepKind::Script {
            body,
            args,
            interpreter,
            ..
        } => {
            assert_eq!(body.lines().next(), Some("#!/bin/bash"));
            assert!(body.ends_with("exit $?"));
            assert_eq!(args.as_deref(), Some("${option.catalog}"));
            assert_eq!(interpreter, &None);
        }
        k => panic!("{k:?}"),
    }
}

#[test]
fn guitars_stop_xml() {
    let j = only_job("guitars-demo__stop.xml");
    assert_eq!(j.description, "stop the web servers");
    let names: Vec<_> = j.options.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["dir", "method"]);
    assert_eq!(j.options[0].value.as_deref(), Some("$HOME/guitars"));
    assert_eq!(j.options[1].value.as_deref(), Some("web:stop"));
    assert!(j.options.iter().all(|o| o.enforced && o.required));
    let step = &j.workflow.steps[0];
    assert_eq!(step.description.as_deref(), Some("stop web service"));
    match &step.kind {
        StepKind::Script { body, args, .. } => {
            let mut lines = body.lines();
            assert_eq!(lines.next(), Some("#!/bin/bash"));
            assert_eq!(lines.next(), Some("#/ usage: stop.sh ?dir? ?method? "));
            assert_eq!(args.as_deref(), Some("${option.dir} ${option.method}"));
        }
        k => panic!("{k:?}"),
    }
    let eh = step.errorhandler.as_ref().unwrap();
    assert!(eh.keepgoing_on_success);
    match &eh.kind {
        StepKind::Script { body, args, .. } => {
            assert!(body.starts_with("#!/bin/bash\n#/ usage: kill.sh ?dir?\n"));
            assert!(body.ends_with("echo 'Web killed!'"));
            assert_eq!(args.as_deref(), Some("${option.dir}"));
        }
        k => panic!("{k:?}"),
    }
    let n = j.nodes.as_ref().unwrap();
    assert_eq!((n.filter.as_str(), n.keepgoing), ("tags: www", true));
}

#[test]
fn cron_scheduled_job_yaml() {
    let j = only_job("rundeck-automation__Cron_Scheduled_Job.yaml");
    assert_eq!(j.name, "Cron Scheduled Job");
    assert_eq!(j.group.as_deref(), Some("Basic Examples/Schedule"));
    assert_eq!(
        j.uuid.as_deref(),
        Some("ac8fed4d-7a29-4120-a3a6-ebb9aa89b2ff")
    );
    assert!(j
        .description
        .starts_with("Cron scheduled job example.\n\nMore info"));
    assert!(!j.schedule_enabled);
    let s = j.schedule.as_ref().unwrap();
    assert_eq!(
        (
            s.seconds.as_str(),
            s.minute.as_str(),
            s.hour.as_str(),
            s.day_of_week.as_str()
        ),
        ("0/30", "*", "*", "*")
    );
    assert!(j.nodes.is_none());
    assert!(
        j.plugins.is_empty(),
        "ExecutionLifecycle: null is no plugin"
    );
    let step = &j.workflow.steps[0];
    assert_eq!(step.description.as_deref(), Some("Just a echo command"));
    assert_eq!(
        step.kind,
        StepKind::Exec {
            command: "echo \"hello world!\"".into()
        }
    );
}

#[test]
fn multi_node_example_yaml() {
    let j = only_job("rundeck-automation__Multi-Node_Example.yaml");
    let n = j.nodes.as_ref().unwrap();
    assert_eq!(n.filter, ".*");
    assert_eq!(n.threadcount, "1");
    assert!(!n.keepgoing && n.exclude_precedence && !n.success_on_empty);
    assert_eq!(kinds(&j), ["exec", "exec", "script"]);
    let s0 = &j.workflow.steps[0];
    assert_eq!(
        s0.kind,
        StepKind::Exec {
            command: "hostname".into()
        }
    );
    let f = &s0.log_filters[0];
    assert_eq!(f.plugin_type, "key-value-data");
    assert_eq!(f.config["name"], "MyKeyName");
    assert_eq!(f.config["regex"], "^(.*)$");
    assert_eq!(f.config["invalidKeyPattern"], "\\s|\\$|\\{|\\}|\\\\");
    assert_eq!(
        j.workflow.steps[1].kind,
        StepKind::Exec {
            command: "echo NODE COMMAND STEP INPUT EXAMPLE ${data.MyKeyName}".into()
        }
    );
    match &j.workflow.steps[2].kind {
        StepKind::Script { body, .. } => assert_eq!(
            body,
            "echo \"NODE SCRIPT STEP USE EXAMPLE: @data.MyKeyName@\""
        ),
        k => panic!("{k:?}"),
    }
    assert_eq!(
        j.workflow.steps[2].log_filters[0].config["regex"],
        "^RUNDECK:DATA:\\s*([^\\s]+?)\\s*=\\s*(.+)$"
    );
}

#[test]
fn using_input_options_yaml() {
    let j = only_job("rundeck-automation__Using_Input_Options_in_command_and_scripts.yaml");
    let o = &j.options[0];
    assert_eq!(o.name, "input_key");
    assert_eq!(o.label.as_deref(), Some("My Input"));
    assert_eq!(o.value.as_deref(), Some("One"));
    assert_eq!(o.values, ["Five", "Four", "One", "Three", "Two"]);
    assert_eq!(o.values_list_delimiter.as_deref(), Some(","));
    assert!(!o.enforced && !o.required);
    assert!(j.nodes.is_none());
    assert_eq!(
        j.workflow.steps[0].kind,
        StepKind::Exec {
            command: "echo This is the option value: ${option.input_key} ".into()
        }
    );
    assert_eq!(kinds(&j), ["exec", "script"]);
}

#[test]
fn playground_install_deb_yaml() {
    let j = only_job("rundeck-playground__InstallDeb.yaml");
    assert_eq!(j.uuid.as_deref(), Some("InstallDeb"));
    assert_eq!(j.group.as_deref(), Some("Install Package"));
    assert_eq!(j.nodes.as_ref().unwrap().filter, "web_.*");
    assert_eq!(j.workflow.strategy, "node-first");
    assert!(!j.workflow.keepgoing);
    let types: Vec<_> = j
        .workflow
        .log_filters
        .iter()
        .map(|f| f.plugin_type.as_str())
        .collect();
    assert_eq!(
        types,
        ["key-value-data", "highlight-output", "quiet-output"]
    );
    assert_eq!(j.workflow.log_filters[0].config["logData"], "false");
    assert_eq!(j.workflow.log_filters[1].config["bgcolor"], "yellow");
    assert_eq!(
        j.workflow.log_filters[2].config["regex"],
        "AWS_SECRET_ACCESS_KEY"
    );
    match &j.workflow.steps[0].kind {
        StepKind::JobRef(r) => {
            assert_eq!(r.uuid.as_deref(), Some("PackageDeb"));
            assert_eq!(r.name, None);
            assert!(!r.use_name && !r.node_step);
        }
        k => panic!("{k:?}"),
    }
    match &j.workflow.steps[1].kind {
        StepKind::Script { body, args, .. } => {
            assert_eq!(
                args.as_deref(),
                Some("${export.DOWNLOAD_URL} ${export.DEB_FILE}")
            );
            assert_eq!(body.lines().next(), Some("#!/bin/bash -xe"));
            assert!(
                body.ends_with("dpkg -i \"$2\"\n"),
                "literal block keeps its final newline"
            );
        }
        k => panic!("{k:?}"),
    }
}

#[test]
fn playground_package_deb_yaml() {
    let j = only_job("rundeck-playground__PackageDeb.yaml");
    assert_eq!(j.nodes.as_ref().unwrap().filter, "fpm");
    assert_eq!(kinds(&j), ["plugin"; 4]);
    let steps: Vec<_> = j
        .workflow
        .steps
        .iter()
        .map(|s| {
            let (t, n, _) = plugin(s);
            (t.to_string(), n)
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("BuildDeb".to_string(), true),
            ("log-data-step".to_string(), false),
            ("export-var".to_string(), false),
            ("export-var".to_string(), false)
        ]
    );
    let (_, _, c) = plugin(&j.workflow.steps[0]);
    assert_eq!(
        cfg(c, "aws_access_key_id"),
        "keys/projects/hello-project/aws/access-key-id"
    );
    let (_, _, c) = plugin(&j.workflow.steps[2]);
    assert_eq!(cfg(c, "value"), "${data.DOWNLOAD_URL@fpm}");
    assert_eq!(cfg(c, "export"), "DOWNLOAD_URL");
    let (_, _, c) = plugin(&j.workflow.steps[3]);
    assert_eq!(cfg(c, "value"), "${data.DEB_FILE@fpm}");
    assert_eq!(j.workflow.log_filters[0].config["logData"], "true");
}

#[test]
fn playground_rotate_db_credentials_yaml() {
    let j = only_job("rundeck-playground__RotateDbCredentials.yaml");
    let opts: Vec<_> = j
        .options
        .iter()
        .map(|o| (o.name.as_str(), o.required, o.value.as_deref()))
        .collect();
    assert_eq!(
        opts,
        [
            ("master_user_version", false, Some("1")),
            ("web_user_version", true, None),
            ("prev_web_user_version", true, None)
        ]
    );
    assert!(j.nodes.is_none());
    assert_eq!(j.workflow.strategy, "sequential");
    let refs: Vec<_> = j
        .workflow
        .steps
        .iter()
        .map(|s| match &s.kind {
            StepKind::JobRef(r) => r.clone(),
            k => panic!("{k:?}"),
        })
        .collect();
    assert_eq!(refs.len(), 4);
    assert!(refs.iter().all(|r| r.node_step && !r.use_name));
    assert_eq!(refs[0].name.as_deref(), Some("CreateDbUser"));
    assert!(refs[0].import_options);
    assert_eq!(
        refs[1].args.as_deref(),
        Some("-dbuser web${option.web_user_version}")
    );
    assert_eq!(refs[2].uuid.as_deref(), Some("RestartApp"));
    assert_eq!(
        refs[3].args.as_deref(),
        Some("-master_user_version ${option.master_user_version} -web_user_version ${option.prev_web_user_version}")
    );
}

#[test]
fn rundeck_options_select_all_xml() {
    let j = only_job("rundeck__job-213b0213-cb72-417e-9707-1371eb44dfe3.xml");
    assert_eq!(j.name, "jobOptionsSelectAllTest");
    let o = &j.options[0];
    assert_eq!(o.name, "test");
    assert_eq!(o.values, ["var1", "var2", "var3", "var4"]);
    assert!(o.enforced && o.multivalued && o.multivalue_all_selected);
    assert_eq!(o.delimiter.as_deref(), Some(","));
    assert_eq!(o.option_type.as_deref(), Some("text"));
    assert!(j.nodes.is_none());
    assert_eq!(
        j.workflow.steps[0].kind,
        StepKind::Exec {
            command: "echo ${option.test}".into()
        }
    );
    assert!(
        j.unknown.is_empty(),
        "a LOCAL runner selector is the default: {:?}",
        j.unknown
    );
}

#[test]
fn rundeck_simple_script_step_xml() {
    let j = only_job("rundeck__job-a5fbe8c2-1a8b-4a6f-ae34-92e5b3d4f8a9.xml");
    assert_eq!(j.description, "Simple script step");
    assert_eq!(j.nodes.as_ref().unwrap().filter, "tags: executor-test ");
    assert_eq!(kinds(&j), ["plugin", "exec", "exec"]);
    let (ty, node_step, c) = plugin(&j.workflow.steps[0]);
    assert_eq!((ty, node_step), ("copyfile", true));
    assert_eq!(cfg(c, "sourcePath"), "/home/rundeck/executor/helloWorld.sh");
    assert_eq!(cfg(c, "destinationPath"), "/tmp/");
    assert_eq!(cfg(c, "recursive"), "false");
    assert_eq!(
        j.workflow.steps[2].kind,
        StepKind::Exec {
            command: "sh /tmp/helloWorld.sh".into()
        }
    );
}

#[test]
fn rundeck_script_url_and_file_xml() {
    let j = only_job("rundeck__job-c14c992d-4738-44b8-945e-9349ae487b77.xml");
    assert_eq!(j.nodes.as_ref().unwrap().filter, "name: ssh-node");
    assert_eq!(kinds(&j), ["scripturl", "scriptfile"]);
    match &j.workflow.steps[0].kind {
        StepKind::ScriptUrl { url, args, .. } => {
            assert_eq!(url, "http://mock-server/helloWorld.sh");
            assert_eq!(args.as_deref(), Some(""));
        }
        k => panic!("{k:?}"),
    }
    match &j.workflow.steps[1].kind {
        StepKind::ScriptFile { path, .. } => assert_eq!(path, "mock-scripts/helloWorld.sh"),
        k => panic!("{k:?}"),
    }
}

#[test]
fn rundeck_j1_timeout_and_interpreter_xml() {
    let j = only_job("rundeck__job-fbf165bd-b5d9-44a7-98b9-fb8aa273ff9d.xml");
    assert_eq!(j.name, "j1");
    let t = j.timeout.as_ref().unwrap();
    assert_eq!((t.raw.as_str(), t.seconds), ("10s", Some(10)));
    assert_eq!(j.nodes.as_ref().unwrap().filter, "name: password-node ");
    assert_eq!(kinds(&j), ["exec", "exec", "script"]);
    assert_eq!(
        j.workflow.steps[1].kind,
        StepKind::Exec {
            command: "sudo echo example".into()
        }
    );
    assert_eq!(
        j.workflow.steps[2].kind,
        StepKind::Script {
            body: "whoami".into(),
            args: Some(String::new()),
            interpreter: Some("sudo su - root".into()),
            args_quoted: false,
            file_extension: Some(".sh".into()),
            secure_input: None,
        }
    );
}

#[test]
fn welcome_basic_data_passing_yaml() {
    let j = only_job("welcome-project-community__Basic_Data_Passing_Example.yaml");
    assert_eq!(kinds(&j), ["exec"; 4]);
    assert!(j.nodes.is_none());
    let s0 = &j.workflow.steps[0];
    assert_eq!(
        s0.kind,
        StepKind::Exec {
            command: "env".into()
        }
    );
    assert_eq!(
        s0.log_filters[0].config["regex"],
        "^(SHELL|USER|PWD)\\s*=\\s*(.+)$"
    );
    assert_eq!(
        j.workflow.steps[1].kind,
        StepKind::Exec {
            command: "echo \"Shell is: ${data.SHELL}\"".into()
        }
    );
}

#[test]
fn welcome_data_passing_powershell_yaml() {
    let j = only_job("welcome-project-community__Data_Passing_Example.yaml");
    let n = j.nodes.as_ref().unwrap();
    assert_eq!(n.filter, "name: ${option.windows_node}");
    let opts: Vec<_> = j
        .options
        .iter()
        .map(|o| (o.name.as_str(), o.value.as_deref()))
        .collect();
    assert_eq!(
        opts,
        [
            ("windows_node", Some("windows")),
            ("myvalue", Some("world"))
        ]
    );
    assert_eq!(j.options[0].label.as_deref(), Some("Windows node filter"));
    match &j.workflow.steps[0].kind {
        StepKind::Script {
            body,
            interpreter,
            args_quoted,
            file_extension,
            ..
        } => {
            assert_eq!(body, "write-host \"my_data=@option.myvalue@\"");
            assert_eq!(interpreter.as_deref(), Some("powershell.exe"));
            assert!(!args_quoted);
            assert_eq!(file_extension.as_deref(), Some(".ps1"));
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(
        j.workflow.steps[0].log_filters[0].config["regex"],
        "^(my_data)\\s*=\\s*(.+)$"
    );
    assert!(j.workflow.steps[1].log_filters.is_empty());
}

#[test]
fn welcome_dispatch_with_exclude_filter_yaml() {
    let j =
        only_job("welcome-project-community__Dispatch_to_Remote_Nodes_With_Exclude_Filter.yaml");
    let n = j.nodes.as_ref().unwrap();
    assert_eq!(n.filter, "${option.mynodes}");
    assert_eq!(
        n.exclude_filter.as_deref(),
        Some("${option.excluded_nodes}")
    );
    assert!(!n.exclude_filter_uncheck);
    let opts: Vec<_> = j
        .options
        .iter()
        .map(|o| (o.name.as_str(), o.value.as_deref()))
        .collect();
    assert_eq!(
        opts,
        [
            ("mynodes", Some("node.*")),
            ("excluded_nodes", Some("node00"))
        ]
    );
    assert_eq!(
        j.workflow.steps[0].kind,
        StepKind::Exec {
            command: "uname -a".into()
        }
    );
}

#[test]
fn welcome_global_log_filter_yaml() {
    let j = only_job("welcome-project-community__Global_Log_Filter_Usage.yaml");
    assert!(j.nodes.is_none());
    assert_eq!(j.workflow.log_filters.len(), 1);
    assert_eq!(j.workflow.log_filters[0].plugin_type, "key-value-data");
    assert_eq!(
        j.workflow.log_filters[0].config["regex"],
        "^(SHELL|USER|PWD)\\s*=\\s*(.+)$"
    );
    assert!(j.workflow.steps[0].log_filters.is_empty());
}

#[test]
fn welcome_install_rundeck_cli_yaml() {
    let j = only_job("welcome-project-community__Install_Rundeck_CLI.yaml");
    assert_eq!(j.description, "");
    assert_eq!(j.nodes.as_ref().unwrap().filter, "osFamily: unix");
    assert_eq!(kinds(&j), ["exec", "script", "exec", "exec", "exec"]);
    assert_eq!(
        j.workflow.steps[0].kind,
        StepKind::Exec {
            command: "curl -s https://packagecloud.io/install/repositories/pagerduty/rundeck/script.deb.sh -o script.deb.sh".into()
        }
    );
    match &j.workflow.steps[1].kind {
        StepKind::Script {
            body,
            interpreter,
            args_quoted,
            ..
        } => {
            assert_eq!(body, "os=any dist=any bash ./script.deb.sh");
            assert_eq!(interpreter.as_deref(), Some("sudo"));
            assert!(!args_quoted);
        }
        k => panic!("{k:?}"),
    }
    let java = &j.workflow.steps[3];
    assert_eq!(
        java.kind,
        StepKind::Exec {
            command: "java --version".into()
        }
    );
    let eh = java.errorhandler.as_ref().unwrap();
    assert_eq!(
        eh.kind,
        StepKind::Exec {
            command: "sudo apt-get install -y openjdk-11-jre".into()
        }
    );
    assert!(eh.keepgoing_on_success);
    let rd = j.workflow.steps[4].errorhandler.as_ref().unwrap();
    assert_eq!(
        rd.kind,
        StepKind::Exec {
            command: "sudo apt-get install -y rundeck-cli".into()
        }
    );
}

#[test]
fn welcome_java_thread_dump_kubernetes_yaml() {
    let j = only_job("welcome-project-community__Java_Thread_Dump_Kubernetes_Pod.yaml");
    assert_eq!(j.group, None);
    assert!(j.node_filter_editable);
    assert!(j.nodes.is_none());
    assert_eq!(j.notification_triggers, ["onsuccess"]);
    let opts: Vec<_> = j
        .options
        .iter()
        .map(|o| (o.name.as_str(), o.required, o.value.as_deref()))
        .collect();
    assert_eq!(
        opts,
        [
            ("namespace", true, Some("default")),
            ("PodName", true, None),
            ("ContainerName", false, None)
        ]
    );
    assert_eq!(kinds(&j), ["plugin", "plugin", "exec", "plugin"]);
    let (ty, node_step, c) = plugin(&j.workflow.steps[0]);
    assert_eq!((ty, node_step), ("Kubernetes-Execute-Step", true));
    assert_eq!(cfg(c, "command"), "pgrep java");
    assert_eq!(cfg(c, "verify_ssl"), "false");
    let f = &j.workflow.steps[0].log_filters[0];
    assert_eq!(
        (f.plugin_type.as_str(), f.config["name"].as_str()),
        ("key-value-data", "process-id")
    );
    assert_eq!(f.config["replaceFilteredResult"], "false");
    let f = &j.workflow.steps[1].log_filters[0];
    assert_eq!(f.plugin_type, "key-value-data-multilines");
    assert_eq!(f.config["hideOutput"], "true");
    assert_eq!(
        j.workflow.steps[2].kind,
        StepKind::Exec {
            command: "echo ${data.threadDump*} > /tmp/threadDump-${job.id}-${job.execid}.log"
                .into()
        }
    );
    let (ty, node_step, c) = plugin(&j.workflow.steps[3]);
    assert_eq!((ty, node_step), ("filetransfer", true));
    assert_eq!(cfg(c, "destURLString"), "file:///tmp/transfered-file.log");
}

#[test]
fn welcome_parent_job_yaml() {
    let j = only_job("welcome-project-community__Parent_Job.yaml");
    match &j.workflow.steps[0].kind {
        StepKind::JobRef(r) => {
            assert_eq!(r.name.as_deref(), Some("Child Job"));
            assert_eq!(
                r.group.as_deref(),
                Some("Basic Examples/Job Referece/Basic Job Reference Example")
            );
            assert_eq!(
                r.uuid.as_deref(),
                Some("25403be6-c103-472d-aafa-6da70530aaa7")
            );
            assert!(r.node_step, "nodeStep: 'true'");
            assert!(!r.use_name, "uuid wins when both are given");
        }
        k => panic!("{k:?}"),
    }
    assert_eq!(
        j.workflow.steps[0].description.as_deref(),
        Some("Call the child job using Job Reference Step")
    );
}

#[test]
fn welcome_random_subset_orchestrator_yaml() {
    let j = only_job("welcome-project-community__Ramdom_Subset_Orchestrator.yaml");
    assert_eq!(j.nodes.as_ref().unwrap().filter, "node.*");
    let o = j.orchestrator.as_ref().unwrap();
    assert_eq!(o.plugin_type, "subset");
    assert_eq!(o.config["count"].as_text(), "1");
    assert_eq!(
        j.workflow.steps[0].kind,
        StepKind::Exec {
            command: "sleep 3; echo \"done!\"".into()
        }
    );
    assert!(j.retry.is_none() && j.timeout.is_none());
}
