//! Step kinds beyond a process: data (result data from text), log_data (what
//! the job gathered, in its log), flow (stop the
//! job here), http (a request sortie makes), copy (a file put on a node whole),
//! plugins (a team's own executables) and ansible (a playbook against the
//! selected nodes), through `sortie exec` and the control plane.

use std::process::Command;

use serde_json::json;

use crate::support::*;

#[test]
fn a_data_step_sets_data_and_a_flow_step_stops_the_job() {
    let out = run(
        sortie()
            .arg("exec")
            .arg(fixture("steps/data-and-flow.yaml")),
        code::OK,
    );
    let text = stdout(&out) + &stderr(&out);
    assert!(text.contains("tagging v2.1"), "{text}");
    assert!(text.contains(r#"global {"data":{"tag":"v2.1"},"#), "{text}");
    assert!(text.contains("tagged v2.1, nothing else to do"), "{text}");
    assert!(!text.contains("does not run"), "{text}");
    // The other examples check (their secrets known by name, not read).
    for example in ["http", "copy", "ansible"] {
        run(
            sortie()
                .args(["exec", "--check"])
                .arg(fixture(&format!("steps/{example}.yaml"))),
            code::OK,
        );
    }

    // Through the control plane: the data in the completion, a failing flow
    // step ending the job with its message even with keepgoing, later steps
    // not run on any node, and a value never run as code.
    let cp = ControlPlane::start();
    cp.enqueue(json!({
        "id": "flow-fails", "keepgoing": true,
        "options": {"who": "$(touch /tmp/sortie-flow-injected)"},
        "steps": [
            {"data": {"who": "${option.who}", "state": "degraded"}},
            {"shell": "echo state ${data.state}"},
            {"fail": "state is ${data.state}"},
            {"shell": "echo never"},
        ]
    }));
    let state = tempfile::tempdir().unwrap();
    run(&mut cp.poll(state.path()), code::OK);
    let job = cp.job("flow-fails");
    assert_done(&job, "failed");
    let completion = job.completion.unwrap();
    assert_eq!(completion.data["who"], "$(touch /tmp/sortie-flow-injected)");
    assert_eq!(completion.data["state"], "degraded");
    assert!(
        completion
            .error
            .as_deref()
            .unwrap_or("")
            .contains("state is degraded"),
        "{:?}",
        completion.error
    );
    let statuses: Vec<&str> = completion.steps.iter().map(|s| s.status.as_str()).collect();
    assert_eq!(
        statuses,
        ["succeeded", "succeeded", "failed", "skipped"],
        "the step after the flow step never ran"
    );
    let log = output_text(&events(&cp.log("flow-fails")), "stdout");
    assert_eq!(log, "state degraded\n");
    assert!(!std::path::Path::new("/tmp/sortie-flow-injected").exists());
}

/// A stand-in API over TLS: `/status` answers JSON with an ETag, `/echo`
/// answers what it was sent, `/flaky` fails once with 503, `/missing` is 404.
/// Every request is kept. Its URL, the CA file that trusts it, and the requests.
fn api(
    dir: &std::path::Path,
) -> (
    String,
    std::path::PathBuf,
    std::sync::Arc<std::sync::Mutex<Vec<crate::wire::Request>>>,
) {
    use crate::wire::{serve, Reply, Response};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let ca = sortie_control_plane::pki::Authority::generate("api CA").unwrap();
    let tls = server_tls(&ca.server(&["127.0.0.1"]).unwrap());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<crate::wire::Request>>> = Arc::default();
    let flaky = Arc::new(AtomicUsize::new(0));
    let kept = seen.clone();
    let handler: Arc<crate::wire::Handler> = Arc::new(move |req: crate::wire::Request| {
        let answer = match req.path.as_str() {
            "/status" => {
                let mut r =
                    Response::json(200, &json!({"state": "green", "nodes": [{"name": "w1"}]}));
                r.headers.push(("ETag".into(), "\"v42\"".into()));
                r
            }
            "/echo" => Response::json(
                201,
                &json!({
                    "method": req.method,
                    "query": req.query,
                    "body": serde_json::from_slice::<serde_json::Value>(&req.body).unwrap_or_default(),
                    // The secret comes back: the log must mask it.
                    "token": req.header("x-token"),
                }),
            ),
            "/flaky" if flaky.fetch_add(1, Ordering::SeqCst) == 0 => {
                Response::problem(503, "unavailable", "try again")
            }
            "/flaky" => Response::json(200, &json!({"ok": true})),
            "/stall" => {
                kept.lock().unwrap().push(req);
                return Reply::Stall(std::time::Duration::from_secs(20));
            }
            _ => Response::problem(404, "not found", "no such thing"),
        };
        kept.lock().unwrap().push(req);
        Reply::Respond(answer)
    });
    let stop = Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || serve(listener, Arc::new(tls), handler, stop));
    let ca_file = dir.join("api-ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    (url, ca_file, seen)
}

/// HTTP steps against a real TLS server: a GET whose JSON and headers are
/// captured, a POST of JSON with a secret header (never in anything the
/// control plane receives), a 503 tried again, an unexpected 404 failing the
/// job with the reason.
#[test]
fn http_steps_call_apis_capture_answers_and_keep_secrets_out() {
    const TOKEN: &str = "tok-8c1f6e2d9a7b4c30";
    let dir = tempfile::tempdir().unwrap();
    let (url, ca_file, seen) = api(dir.path());
    let ca = ca_file.to_str().unwrap();
    let cp = ControlPlane::start();
    cp.enqueue(json!({
        "id": "http", "keepgoing": true,
        "options": {"who": "$(touch /tmp/sortie-http-injected) & web"},
        "secrets": {"TOKEN": "env:TOKEN"},
        "steps": [
            {"http": {"url": format!("{url}/status"), "ca_file": ca,
                      "capture": {"state": "/state", "first": "/nodes/0/name",
                                  "etag": "header:ETag", "code": "status"}}},
            {"http": {"url": format!("{url}/echo"), "method": "POST", "ca_file": ca,
                      "query": {"who": "${option.who}"},
                      "headers": {"x-token": "${secret.TOKEN}"},
                      "json": {"who": "${option.who}", "n": 3},
                      "expect": [201], "capture": {"sent": "/body/who", "echoed": "/token"}}},
            {"http": {"url": format!("{url}/flaky"), "ca_file": ca, "retries": 2}},
            {"http": {"url": format!("{url}/missing"), "ca_file": ca}},
        ]
    }));
    let state = tempfile::tempdir().unwrap();
    run(
        cp.poll(state.path()).env("SORTIE_SECRET_TOKEN", TOKEN),
        code::OK,
    );
    let job = cp.job("http");
    assert_done(&job, "failed");
    let completion = job.completion.unwrap();
    let data = &completion.data;
    assert_eq!(
        (
            data["state"].as_str(),
            data["first"].as_str(),
            data["etag"].as_str(),
            data["code"].as_str()
        ),
        ("green", "w1", "\"v42\"", "200")
    );
    assert_eq!(data["sent"], "$(touch /tmp/sortie-http-injected) & web");
    assert!(
        !data["echoed"].contains(TOKEN),
        "a secret in the result data"
    );
    let statuses: Vec<&str> = completion.steps.iter().map(|s| s.status.as_str()).collect();
    assert_eq!(statuses, ["succeeded", "succeeded", "succeeded", "failed"]);
    assert!(
        completion.error.as_deref().unwrap_or("").contains("step 3"),
        "{:?}",
        completion.error
    );
    let requests = seen.lock().unwrap();
    let echo = requests.iter().find(|r| r.path == "/echo").unwrap();
    assert_eq!(echo.header("x-token"), Some(TOKEN), "the secret was sent");
    assert_eq!(echo.header("content-type"), Some("application/json"));
    assert_eq!(
        echo.query,
        "who=%24%28touch%20%2Ftmp%2Fsortie-http-injected%29%20%26%20web"
    );
    assert_eq!(
        requests.iter().filter(|r| r.path == "/flaky").count(),
        2,
        "tried again"
    );
    let log = String::from_utf8_lossy(&cp.log("http")).into_owned();
    assert!(log.contains("HTTP 404, expected 2xx"), "{log}");
    assert!(
        log.contains("\\\"state\\\":\\\"green\\\""),
        "the answer's body is in the log: {log}"
    );
    let received = cp.received();
    assert!(
        !received.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
        "the secret reached the control plane"
    );
    assert!(!std::path::Path::new("/tmp/sortie-http-injected").exists());
}

/// What a hostile or unlucky setting cannot do to an HTTP step: a proxy in
/// the environment is not used for this machine (it would see the request in
/// clear), a server that never answers is stopped by the step's timeout and
/// reported timed out, a CA "file" that is a device is refused at once.
#[test]
fn http_steps_go_direct_to_loopback_time_out_and_refuse_odd_ca_files() {
    let dir = tempfile::tempdir().unwrap();
    let (url, ca_file, _seen) = api(dir.path());
    let spec = dir.path().join("odd.json");
    let job = json!({"id": "odd", "keepgoing": true, "steps": [
        {"http": {"url": format!("{url}/status"), "ca_file": ca_file, "capture": {"s": "/state"}}},
        {"http": {"url": format!("{url}/stall"), "ca_file": ca_file}, "timeout": "1s"},
        {"http": {"url": format!("{url}/status"), "ca_file": "/dev/zero"}},
    ]});
    std::fs::write(&spec, job.to_string()).unwrap();
    let out = run(
        sortie()
            .arg("exec")
            .arg(&spec)
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("ALL_PROXY", "http://127.0.0.1:9"),
        code::JOB_FAILED,
    );
    let text = stdout(&out) + &stderr(&out);
    assert!(text.contains("HTTP 200"), "not through the proxy: {text}");
    assert!(text.contains("timed out after 1s"), "{text}");
    // Read as a step would read it: the device gives more than a CA file may hold.
    assert!(
        text.contains("cannot read /dev/zero: it is over 1 MiB"),
        "{text}"
    );
}

#[test]
fn a_copy_puts_a_file_whole_on_a_node_and_on_the_runner_and_takes_nothing_protected() {
    use crate::nodes::{node_output, Lab};
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let lab = Lab::new(1);
    lab.inventory(&[("n1", lab.node(0))]);
    let dest = lab.path("dest");
    std::fs::create_dir(&dest).unwrap();
    let source = lab.path("app.conf");
    std::fs::write(&source, "port=8080\n").unwrap();
    let secret = "copy-secret-7f3a9";
    let spec = json!({
        "id": "copy", "nodes": {"filter": "n1 local"},
        "secrets": {"PASS": "env:PASS"},
        "options": {"name": "it's $(echo INJECTED >&2) 'x'"},
        "steps": [
            {"copy": {"dest": format!("{}/${{node.name}}-${{option.name}}", dest.display()),
                      "content": "pass=${secret.PASS}\n"}},
            {"copy": {"dest": format!("{}/", dest.display()), "source": source.display().to_string(),
                      "mode": "0640"}},
        ],
    });
    let out = run(
        lab.command(spec).env("SORTIE_SECRET_PASS", secret),
        code::OK,
    );
    let events = events(&out.stdout);
    let log = stdout(&out) + &stderr(&out);
    assert!(!log.contains(secret), "{log}");
    assert!(node_output(&events, "n1").contains("copied"), "{log}");
    for node in ["n1", "local"] {
        let file = dest.join(format!("{node}-it's $(echo INJECTED >&2) 'x'"));
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            format!("pass={secret}\n")
        );
        // Content with a secret is private unless the step says otherwise.
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{node}");
    }
    let copied = dest.join("app.conf");
    assert_eq!(std::fs::read_to_string(&copied).unwrap(), "port=8080\n");
    assert_eq!(
        std::fs::metadata(&copied).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert!(
        !events.iter().any(|e| e["text"] == "INJECTED\n"),
        "a value ran as code: {log}"
    );
    // Nothing half-written is left beside the destination.
    let names: Vec<String> = std::fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with(".sortie-copy")),
        "{names:?}"
    );

    let fifo = lab.path("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    // A file steps cannot read (the runner's secrets directory) is not copied
    // to a node either, and a directory is not replaced by a file.
    let spec = json!({
        "id": "copy-refused", "nodes": {"filter": "n1"}, "keepgoing": true,
        "steps": [
            {"copy": {"dest": format!("{}/stolen", dest.display()),
                      "source": lab.path("secrets/node_key").display().to_string()}},
            {"copy": {"dest": dest.display().to_string(), "content": "x"}},
            {"copy": {"dest": fifo.display().to_string(), "content": "x"}},
        ],
    });
    let out = run(&mut lab.command(spec), code::JOB_FAILED);
    let log = stdout(&out) + &stderr(&out);
    assert!(!dest.join("stolen").exists(), "{log}");
    assert!(log.contains("cannot read"), "{log}");
    assert!(log.contains("exists and is not a regular file"), "{log}");
    assert!(dest.is_dir());
    // A FIFO (or a device) is never replaced by a file.
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());

    // A path that cannot be used is refused before any step runs; one from
    // an option when the copy runs, a line break in it too (it would start a
    // data line in the copy's output).
    let spec = json!({"id": "copy-paths", "steps": [
        {"shell": "echo first"},
        {"copy": {"dest": "relative/", "source": "/etc/hostname"}},
    ]});
    let out = run(&mut lab.command(spec), code::JOB_FAILED);
    let log = stdout(&out) + &stderr(&out);
    assert!(log.contains("is not an absolute path"), "{log}");
    assert!(!log.contains("first"), "{log}");
    let spec = json!({"id": "copy-line", "options": {"to": format!("{}/x\nRUNDECK:DATA:v=6", dest.display())},
        "steps": [{"copy": {"dest": "${option.to}", "content": "x"}}]});
    let out = run(&mut lab.command(spec), code::JOB_FAILED);
    let log = stdout(&out) + &stderr(&out);
    assert!(log.contains("holds a control character"), "{log}");
    assert!(!summary_has_data(&out), "{log}");
}

/// Whether the run's summary reports any result data.
fn summary_has_data(out: &std::process::Output) -> bool {
    crate::nodes::summary(out)["data"]
        .as_object()
        .is_some_and(|d| !d.is_empty())
}

/// A plugin directory with `probe`: it keeps the document it read and its
/// environment, prints its configuration's `greeting`, and sets data.
fn probe_plugin(dir: &std::path::Path, keep: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let program = dir.join("probe");
    std::fs::write(
        &program,
        format!(
            "#!/bin/sh\ncat >{k}/doc.json\nenv >{k}/env\necho \"$SORTIE_CONFIG_GREETING\"\n\
             echo \"seen=yes\" >>\"$SORTIE_OUTPUT\"\n",
            k = keep.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        dir.join("probe.json"),
        json!({"name": "probe", "version": "2.0", "config": {
            "type": "object", "required": ["greeting"], "additionalProperties": false,
            "properties": {"greeting": {"type": "string"}, "token": {"type": "string"},
                           "count": {"type": "integer", "maximum": 3}}}})
        .to_string(),
    )
    .unwrap();
}

#[test]
fn a_plugin_reads_its_checked_configuration_and_only_the_secrets_it_names() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    let keep = dir.path().join("keep");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::create_dir_all(&keep).unwrap();
    probe_plugin(&plugins, &keep);
    let spec = dir.path().join("job.json");
    let write = |steps: serde_json::Value| {
        std::fs::write(
            &spec,
            json!({"id": "plugin", "options": {"who": "ops"},
                   "secrets": {"NAMED": "env:NAMED", "OTHER": "env:OTHER"},
                   "steps": steps})
            .to_string(),
        )
        .unwrap();
    };
    let exec = |code: u8| {
        run(
            sortie()
                .args(["--log-format", "json", "exec"])
                .arg(&spec)
                .arg("--plugin-dir")
                .arg(&plugins)
                .env("SORTIE_SECRET_NAMED", "named-secret-1")
                .env("SORTIE_SECRET_OTHER", "other-secret-2"),
            code,
        )
    };
    write(json!([
        {"plugin": "probe", "config": {"greeting": "hello ${option.who}", "token": "${secret.NAMED}"}},
        {"shell": "echo plugin said ${data.seen}"},
    ]));
    let out = exec(code::OK);
    let log = stdout(&out);
    assert!(log.contains("hello ops"), "{log}");
    assert!(log.contains("plugin said yes"), "{log}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(keep.join("doc.json")).unwrap()).unwrap();
    assert_eq!(doc["sortie_plugin"], 1);
    assert_eq!(doc["plugin"]["version"], "2.0");
    assert_eq!(doc["config"]["greeting"], "hello ops");
    assert_eq!(doc["config"]["token"], "named-secret-1");
    assert_eq!(doc["secrets"], json!({"NAMED": "named-secret-1"}));
    assert_eq!(doc["options"]["who"], "ops");
    assert_eq!(doc["node"]["name"], "local");
    let env = std::fs::read_to_string(keep.join("env")).unwrap();
    assert!(!env.contains("other-secret-2"), "{env}");
    assert!(env.contains("SORTIE_CONFIG_GREETING=hello ops"), "{env}");

    // A configuration the manifest refuses: named, and the plugin never runs.
    std::fs::remove_file(keep.join("doc.json")).unwrap();
    write(json!([{"plugin": "probe", "config": {"greting": "x", "count": 9}}]));
    let log = stdout(&exec(code::JOB_FAILED));
    for problem in [
        "config.greeting: required",
        "config.greting: not a field",
        "config.count: above",
    ] {
        assert!(log.contains(problem), "{problem}: {log}");
    }
    assert!(!keep.join("doc.json").exists());
    write(json!([{"plugin": "absent", "config": {}}]));
    assert!(stdout(&exec(code::JOB_FAILED)).contains("no plugin \\\"absent\\\""));

    // A plugin another user could change is not run: in a directory anyone
    // may write to (another user could swap it), or itself writable by others.
    let open = dir.path().join("open");
    std::fs::create_dir_all(open.join("plugins")).unwrap();
    probe_plugin(&open.join("plugins"), &keep);
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    write(json!([{"plugin": "probe", "config": {"greeting": "x"}}]));
    let out = run(
        sortie()
            .args(["--log-format", "json", "exec"])
            .arg(&spec)
            .arg("--plugin-dir")
            .arg(open.join("plugins"))
            .env("SORTIE_SECRET_NAMED", "named-secret-1")
            .env("SORTIE_SECRET_OTHER", "other-secret-2"),
        code::JOB_FAILED,
    );
    assert!(
        stdout(&out).contains("writable by other users"),
        "{}",
        stdout(&out)
    );
    assert!(!keep.join("doc.json").exists());
    std::fs::set_permissions(
        plugins.join("probe"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    write(json!([{"plugin": "probe", "config": {"greeting": "x"}}]));
    let log = stdout(&exec(code::JOB_FAILED));
    assert!(log.contains("writable by other users"), "{log}");
    assert!(!keep.join("doc.json").exists());
}

#[test]
fn the_example_plugin_reports_how_full_a_filesystem_is() {
    let out = run(
        sortie()
            .args(["exec", "--plugin-dir"])
            .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/plugins"))
            .arg(fixture("steps/plugin.yaml")),
        code::OK,
    );
    let text = stdout(&out) + &stderr(&out);
    assert!(text.contains("% full"), "{text}");
    assert!(text.contains("data: used_percent="), "{text}");
}

#[test]
fn an_ansible_step_plays_on_the_selected_nodes_and_reports_each_node_s_recap() {
    use crate::nodes::Lab;
    let lab = Lab::new(2);
    // Which python runs modules on a node: its own attribute says.
    // Which python runs modules on a node: its own attribute says.
    lab.inventory(&[("web1", lab.ansible_node(0)), ("web2", lab.ansible_node(1))]);
    let written = lab.path("written");
    std::fs::create_dir(&written).unwrap();
    // A vaulted variable, opened with the password the job's secret holds.
    let indented = lab.vaulted_var("vault-pass-9c1e");
    let play = format!(
        "- hosts: all\n  gather_facts: false\n  vars:\n{indented}  tasks:\n\
         \x20   - copy:\n        dest: \"{dir}/{{{{ inventory_hostname }}}}.txt\"\n\
         \x20       content: \"release {{{{ release }}}} by {{{{ who }}}} {{{{ vaulted }}}}\\n\"\n\
         \x20   - fail: {{msg: broken on purpose}}\n      when: inventory_hostname == 'web2'\n",
        dir = written.display()
    );
    let cp = ControlPlane::start();
    let id = cp.enqueue(json!({
        "id": "ansible", "nodes": {"filter": "name: web.*"},
        "secrets": {"VAULT": "env:VAULT"},
        // An option named as Ansible's own variable is not made one (if it
        // were, the play could not reach the nodes).
        "options": {"release": "{{ lookup('pipe', 'echo INJECTED') }}", "ansible_port": "1"},
        "steps": [{"ansible": {"play": play, "vars": {"who": "${option.release}"},
                               "vault_password": "${secret.VAULT}"}}],
    }));
    let path = format!(
        "{}:{}",
        peer("ansible-playbook").parent().unwrap().display(),
        std::env::var("PATH").unwrap()
    );
    run(
        lab.poll(&cp)
            .env("PATH", path)
            .env("SORTIE_SECRET_VAULT", "vault-pass-9c1e"),
        0,
    );
    let job = cp.job(&id);
    assert_done(&job, "failed");
    let completion = job.completion.unwrap();
    let steps: Vec<(&str, &str)> = completion
        .steps
        .iter()
        .map(|s| (s.node.as_str(), s.status.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("local", "failed"),
            ("web1", "succeeded"),
            ("web2", "failed")
        ],
        "{completion:?}"
    );
    // ansible-playbook's own exit code: a host failed.
    assert_eq!(completion.steps[0].exit_code, Some(2));
    let recap = |i: usize, k: &str| completion.steps[i].recap.as_ref().unwrap()[k];
    assert_eq!((recap(1, "changed"), recap(1, "failures")), (1, 0));
    assert_eq!((recap(2, "changed"), recap(2, "failures")), (1, 1));
    for host in ["web1", "web2"] {
        let text = std::fs::read_to_string(written.join(format!("{host}.txt"))).unwrap();
        // Values stay text (never templated), the vaulted variable opened.
        assert_eq!(
            text,
            "release {{ lookup('pipe', 'echo INJECTED') }} by \
             {{ lookup('pipe', 'echo INJECTED') }} vaulted-value\n"
        );
    }
    let log = String::from_utf8_lossy(&cp.log(&id)).into_owned();
    assert!(log.contains("PLAY RECAP"), "{log}");
    assert!(!log.contains("vault-pass-9c1e"), "{log}");
    // Nothing of the step's private files stays in the state dir.
    let left = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "find {} -name 'key-*' -o -name 'vault-password'",
            lab.path("state").display()
        ))
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&left.stdout)
    );
}

/// A play owns its directory in the workspace: one that leaves a symlink in
/// its place gets no recap read from the link's target (a directory the
/// steps cannot read), only a warning.
#[test]
fn a_play_that_swaps_its_directory_gets_no_recap_from_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("protected");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(
        target.join("recap.json"),
        r#"{"elsewhere-host": {"ok": 7}}"#,
    )
    .unwrap();
    let play = format!(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - shell: >-\n        \
         d=$(dirname \"$SORTIE_ANSIBLE_RECAP\"); mv \"$d\" \"$d.old\" && ln -s {} \"$d\"\n",
        target.display()
    );
    let spec = dir.path().join("spec.json");
    let job = json!({"id": "swap", "steps": [{"ansible": {"play": play}}]});
    std::fs::write(&spec, job.to_string()).unwrap();
    let path = format!(
        "{}:{}",
        peer("ansible-playbook").parent().unwrap().display(),
        std::env::var("PATH").unwrap()
    );
    let out = sortie()
        .args(["--log-format", "json", "exec"])
        .arg(&spec)
        .arg("--protect")
        .arg(&target)
        .env("PATH", path)
        .output()
        .unwrap();
    let log = stdout(&out);
    assert!(log.contains("not the directory sortie made"), "{log}");
    assert!(!log.contains("elsewhere-host"), "{log}");
}
