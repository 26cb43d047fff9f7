//! Carrying jobs over: what maps to what, and what refuses a job.

use serde_json::json;

use super::yaml;
use crate::rundeck::convert::{convert, storage_secret};

fn spec(text: &str) -> serde_json::Value {
    convert(&yaml(text)[0])
        .unwrap_or_else(|e| panic!("{e:?}"))
        .spec
}

#[test]
fn steps_options_and_dispatch_map_onto_a_job_spec() {
    let s = spec(
        r#"- name: deploy
  group: web
  uuid: 0f0e
  timeout: '120'
  retry: {retry: '2', delay: 30s}
  nodefilters:
    filter: 'tags: web'
    dispatch: {threadcount: 4, keepgoing: true, rankOrder: descending}
  options:
  - name: version
    value: '1.0'
    regex: '[0-9.]+'
  - name: pw
    secure: true
    storagePath: keys/app/db
  sequence:
    strategy: parallel
    keepgoing: true
    commands:
    - exec: deploy ${option.version}
      description: deploy it
    - script: echo @option.version@
      args: -v '${option.version} x'
      scriptInterpreter: bash -x
      fileExtension: sh
      errorhandler: {exec: rollback, keepgoingOnSuccess: true}
    - type: localexec
      nodeStep: false
      configuration: {command: echo local}
"#,
    );
    assert_eq!(s["id"], "0f0e");
    assert_eq!(s["name"], "web/deploy");
    assert_eq!(s["dialect"], "rundeck");
    assert_eq!(s["timeout"], "120s");
    assert_eq!(s["retry"], json!({"count": 2, "delay": "30s"}));
    assert_eq!(s["strategy"], "parallel");
    assert_eq!(s["keepgoing"], true);
    assert_eq!(s["nodes"]["filter"], "tags: web");
    assert_eq!(s["nodes"]["threadcount"], "4");
    assert_eq!(s["nodes"]["rank_order"], "descending");
    assert_eq!(s["options"], json!({"version": "1.0"}));
    assert_eq!(s["option_defs"][1]["secret"], "file:db");
    assert_eq!(
        s["steps"][0],
        json!({"name": "deploy it", "shell": "deploy ${option.version}"})
    );
    assert_eq!(s["steps"][1]["args"], json!(["-v", "${option.version} x"]));
    assert_eq!(s["steps"][1]["interpreter"], "bash -x");
    assert_eq!(s["steps"][1]["extension"], ".sh");
    assert_eq!(s["steps"][1]["errorhandler"], json!({"shell": "rollback"}));
    assert_eq!(s["steps"][1]["keepgoing_on_success"], true);
    assert_eq!(
        s["steps"][2],
        json!({"shell": "echo local", "node_step": false})
    );
    assert_eq!(storage_secret("keys/app/db/"), "file:db");
}

#[test]
fn what_a_runner_cannot_run_refuses_the_whole_job_one_line_per_step() {
    let jobs = yaml(
        r#"- name: parent
  sequence:
    commands:
    - exec: echo fine
    - jobref: {name: child, group: g}
    - type: http-workflow-step
      nodeStep: false
      configuration: {remoteUrl: 'https://x'}
"#,
    );
    let lines = convert(&jobs[0]).unwrap_err();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("parent: step 1: a job reference (g/child)"),
        "{lines:?}"
    );
    assert!(lines[1].contains("step 2: the workflow step plugin \"http-workflow-step\""));
}

#[test]
fn server_features_are_noted_not_carried_over() {
    let c = convert(
        &yaml(
            r#"- name: nightly
  schedule: {time: {hour: '2', minute: '0'}, month: '*', dayofmonth: {day: '*'}, year: '*'}
  scheduleEnabled: true
  notification: {onfailure: {email: {recipients: a@b.c}}}
  sequence:
    commands:
    - exec: run
"#,
        )[0],
    )
    .unwrap();
    let notes = c.notes.join("\n");
    assert!(notes.contains("schedule: not carried over"), "{notes}");
    assert!(notes.contains("notifications (onfailure)"), "{notes}");
}

#[test]
fn export_var_and_flow_control_map_onto_data_and_flow_steps() {
    let s = spec(
        r#"- name: package
  sequence:
    commands:
    - exec: echo SORTIE:DATA:url=https://example.invalid/p.deb
    - type: export-var
      nodeStep: false
      configuration:
        export: DOWNLOAD_URL
        group: export
        value: ${data.url}
    - type: flow-control
      nodeStep: false
      configuration:
        halt: 'true'
        fail: 'true'
    - exec: echo never
"#,
    );
    assert_eq!(
        s["steps"][1],
        json!({"data": {"DOWNLOAD_URL": "${data.url}"}, "node_step": false})
    );
    assert_eq!(s["steps"][2]["flow"]["status"], "failed");
    assert_eq!(s["steps"][2]["node_step"], false);
}

#[test]
fn copyfile_becomes_a_copy_step_and_log_data_step_a_log_data_step() {
    let job = |steps: &str| {
        yaml(&format!(
            "- name: ship\n  sequence:\n    commands:\n{steps}"
        ))
        .remove(0)
    };
    let done = convert(&job(r#"    - type: copyfile
      nodeStep: true
      configuration:
        sourcePath: /srv/app/${option.build}.tar
        destinationPath: /opt/app/
        echo: 'false'
        recursive: 'false'
    - type: log-data-step
      nodeStep: false
      configuration: {debugOnly: 'true'}
"#))
    .unwrap();
    let steps = &done.spec["steps"];
    assert_eq!(
        steps[0],
        json!({"copy": {"source": "/srv/app/${option.build}.tar", "dest": "/opt/app/"}})
    );
    assert_eq!(steps[1], json!({"log_data": true}));
    let notes = done.notes.join("\n");
    assert!(notes.contains("echo false"), "{notes}");
    assert!(notes.contains("debugOnly"), "{notes}");
    for (config, why) in [
        (
            "{sourcePath: /srv/dir, destinationPath: /opt/, recursive: 'true'}",
            "copyfile of a directory",
        ),
        (
            "{sourcePath: /srv/dir, destinationPath: /opt/, pattern: '**/*.txt'}",
            "copyfile of a directory",
        ),
        (
            "{sourcePath: realm.properties, destinationPath: /opt/}",
            "sourcePath \"realm.properties\" is relative",
        ),
        (
            "{sourcePath: /etc/realm.properties, destinationPath: realm.properties}",
            "destinationPath \"realm.properties\" is relative",
        ),
        (
            "{sourcePath: /etc/x}",
            "needs sourcePath and destinationPath",
        ),
        (
            "{sourcePath: /srv/dir, destinationPath: /opt/, recursive: 'TRUE'}",
            "copyfile of a directory",
        ),
        (
            "{sourcePath: /srv/x, destinationPath: null}",
            "needs sourcePath and destinationPath",
        ),
    ] {
        let refused = convert(&job(&format!(
            "    - type: copyfile\n      nodeStep: true\n      configuration: {config}\n"
        )))
        .unwrap_err()
        .join("\n");
        assert!(refused.contains(why), "{config}: {refused}");
    }
}

#[test]
fn the_ansible_plugin_s_playbook_steps_map_onto_an_ansible_step() {
    let job = |ty: &str, config: &str| {
        yaml(&format!(
            "- name: play\n  sequence:\n    commands:\n    - type: com.batix.rundeck.plugins.{ty}\n      \
             nodeStep: true\n      configuration:\n{config}"
        ))
        .remove(0)
    };
    let done = convert(&job(
        "AnsiblePlaybookWorflowNodeStep",
        "        ansible-playbook: site.yml\n        ansible-base-dir-path: /srv/ansible\n        \
         ansible-extra-vars: \"release: ${option.release}\\nport: 8080\\nsha: 5e80\\nnone: ~\"\n        \
         ansible-extra-param: --tags web '--skip-tags=slow one'\n        ansible-become: 'true'\n        \
         ansible-become-user: app\n        ansible-ssh-user: deploy\n        \
         ansible-vault-storage-path: keys/ops/vault-pw\n        \
         ansible-become-password-storage-path: keys/ops/sudo-pw\n        \
         ansible-ssh-auth-type: privateKey\n        ansible-ssh-key-storage-path: keys/ops/id\n",
    ))
    .unwrap();
    assert_eq!(
        done.spec["steps"][0],
        json!({"node_step": false, "ansible": {
            "playbook": "/srv/ansible/site.yml",
            "vars": {"release": "${option.release}", "port": "8080", "sha": "5e80", "none": "",
                     "ansible_become_password": "${secret.RD_ANSIBLE_BECOME}"},
            "args": ["--become", "--become-user=app", "--user=deploy", "--tags", "web",
                     "--skip-tags=slow one"],
            "vault_password": "${secret.RD_ANSIBLE_VAULT}",
        }})
    );
    assert_eq!(
        done.spec["secrets"],
        json!({"RD_ANSIBLE_VAULT": "file:vault-pw", "RD_ANSIBLE_BECOME": "file:sudo-pw"})
    );
    let notes = done.notes.join("\n");
    assert!(
        notes.contains("runs once, for every selected node"),
        "{notes}"
    );
    assert!(notes.contains("ansible-ssh-key-storage-path"), "{notes}");
    assert!(!notes.contains("ansible-ssh-auth-type"), "{notes}");

    for (ty, config, why) in [
        (
            "AnsiblePlaybookInlineWorkflowStep",
            "        ansible-playbook-inline: '- hosts: all'\n        ansible-ssh-auth-type: password\n",
            "logs in by password",
        ),
        (
            "AnsiblePlaybookInlineWorkflowStep",
            "        ansible-playbook-inline: '- hosts: all'\n        \
             ansible-ssh-passphrase-storage-path: keys/p\n",
            "a key with a passphrase",
        ),
        (
            "AnsibleModuleWorkflowStep",
            "        ansible-module: ping\n",
            "has no counterpart",
        ),
        (
            "AnsiblePlaybookWorkflowStep",
            "        ansible-playbook: site.yml\n",
            "is relative",
        ),
        (
            "AnsiblePlaybookWorkflowStep",
            "        ansible-playbook: /site.yml\n        ansible-extra-vars: 'ports: [1, 2]'\n",
            "a list or map",
        ),
        (
            "AnsiblePlaybookWorkflowStep",
            "        ansible-playbook: /site.yml\n        ansible-extra-vars: 'ansible_become_flags: ${option.f}'\n",
            "Ansible's own variable from a value",
        ),
        (
            "AnsiblePlaybookWorkflowStep",
            "        ansible-playbook: /site.yml\n        ansible-limit: '${option.hosts}'\n",
            "never becomes one of ansible-playbook's arguments",
        ),
        (
            "AnsiblePlaybookWorkflowStep",
            "        ansible-playbook: /site.yml\n        ansible-extra-vars: 'x: !vault \"$ANSIBLE_VAULT;1.1\"'\n",
            "tagged !vault",
        ),
    ] {
        let refused = convert(&job(ty, config)).unwrap_err().join("\n");
        assert!(refused.contains(why), "{config}: {refused}");
    }
}

#[test]
fn the_nixy_local_script_runs_once_on_the_runner_its_references_as_tokens() {
    let s = spec(
        r##"- name: local
  sequence:
    commands:
    - type: nixy-local-workflow-step
      nodeStep: false
      configuration:
        script: |
          echo "region ${option.region} home ${HOME} ${data.k@n} ${job.name}"
        arguments: a 'b c'
    - type: nixy-local-workflow-step
      nodeStep: false
      configuration:
        script: "#!/bin/sh\necho ${option.region}\n"
"##,
    );
    assert_eq!(
        s["steps"][0],
        json!({"script": "echo \"region @option.region@ home ${HOME} ${data.k@n} @job.name@\"\n",
               "interpreter": "bash", "args": ["a", "b c"], "node_step": false})
    );
    assert_eq!(
        s["steps"][1],
        json!({"script": "#!/bin/sh\necho @option.region@\n", "node_step": false})
    );
}

#[test]
fn the_http_plugin_maps_onto_an_http_step() {
    let s = spec(
        r#"- name: call
  sequence:
    commands:
    - type: edu.ohio.ais.rundeck.HttpWorkflowStepPlugin
      nodeStep: false
      configuration:
        authentication: None
        checkResponseCode: 'true'
        responseCode: '201'
        headers: 'accept: application/json'
        method: POST
        body: '{"a": "${option.x}"}'
        remoteUrl: ${option.targetUrl}/post
        sslVerify: 'true'
        timeout: '30000'
"#,
    );
    assert_eq!(
        s["steps"][0],
        json!({"http": {"url": "${option.targetUrl}/post", "method": "POST",
                        "body": "{\"a\": \"${option.x}\"}",
                        "headers": {"accept": "application/json"}, "expect": [201]},
               "node_step": false, "timeout": "30000ms"})
    );
}

#[test]
fn a_multivalued_option_with_all_selected_defaults_to_every_value() {
    let s = spec(
        r#"- name: regions
  options:
  - name: regions
    values: [eu, us, ap]
    multivalued: true
    delimiter: '+'
    multivalueAllSelected: true
  - name: chosen
    values: [a, b]
    value: a
    multivalued: true
    multivalueAllSelected: true
  sequence:
    commands:
    - exec: echo ${option.regions}
"#,
    );
    assert_eq!(s["options"], json!({"regions": "eu+us+ap", "chosen": "a"}));
}

#[test]
fn a_file_option_is_noted_as_not_carried_over() {
    let c = convert(
        &yaml(
            r#"- name: upload
  options:
  - name: cfg
    type: file
  sequence:
    commands:
    - exec: cat ${file.cfg}
"#,
        )[0],
    )
    .unwrap();
    let notes = c.notes.join("\n");
    assert!(notes.contains("option \"cfg\": a file option"), "{notes}");
}
