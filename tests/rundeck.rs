//! Rundeck jobs, as Rundeck exports them, run by `sortie exec`, the spool and
//! the control plane: the corpus of real exports, tokens that stay inert,
//! option rules, secure options, log filters, the log limit, retry, scripts
//! fetched over HTTP.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{json, Value};

use crate::nodes::{summary, Lab};
use crate::support::*;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rundeck/jobs")
}

/// Commands the corpus would run on real infrastructure, made harmless: each
/// says what it was asked and succeeds (`sudo` runs what follows it).
fn fake_commands(bin: &Path) {
    for name in ["curl", "wget", "apt-get", "java", "rd", "mtl", "systemctl"] {
        let path = bin.join(name);
        // A download (`-o FILE`) leaves a script that says it ran.
        let text = format!(
            "#!/bin/sh\necho \"[{name}] $*\"\nwhile [ $# -gt 0 ]; do\n  [ \"$1\" = -o ] && echo 'echo \"[downloaded script] $*\"' >\"$2\"\n  shift\ndone\n"
        );
        std::fs::write(&path, text).unwrap();
        make_executable(&path);
    }
    let sudo = bin.join("sudo");
    std::fs::write(&sudo, "#!/bin/sh\nexec \"$@\"\n").unwrap();
    make_executable(&sudo);
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// PATH with the fake commands first.
fn fake_path(bin: &Path) -> String {
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// `sortie --log-format json exec FILE` in `dir`, with these flags.
fn exec_file(file: &Path, dir: &Path, extra: &[&str]) -> Output {
    sortie()
        .current_dir(dir)
        .env("USER", "runner")
        .args(["--log-format", "json", "exec"])
        .arg(file)
        .args(extra)
        .output()
        .unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn every_corpus_job_is_carried_over_and_runs_or_is_refused_with_its_reasons() {
    let lab = Lab::new(1);
    let bin = lab.fake_bin();
    fake_commands(&bin);
    let mut inventory: Vec<(&str, Value)> = Vec::new();
    for (name, tags) in [
        ("db1", "db"),
        ("www1", "www"),
        ("ssh-node", "ssh"),
        ("password-node", "ssh"),
        ("node00", "demo"),
        ("node01", "demo"),
        ("node02", "demo"),
    ] {
        let mut node = lab.node(0);
        node["tags"] = json!(tags);
        node["osFamily"] = json!("unix");
        inventory.push((name, node));
    }
    lab.inventory(&inventory);
    let work = lab.path("work");
    std::fs::create_dir_all(work.join("mock-scripts")).unwrap();
    write(
        &work,
        "mock-scripts/helloWorld.sh",
        "echo hello from a script file\n",
    );
    let flags = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "--nodes",
            &lab.path("nodes.yaml").display().to_string(),
            "--known-hosts",
            &lab.path("known_hosts").display().to_string(),
            "--secrets-dir",
            &lab.path("secrets").display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let mut rows = Vec::new();
    let mut outcome = BTreeMap::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let converted = sortie().arg("convert").arg(file).output().unwrap();
        let err = stderr(&converted);
        if converted.status.code() == Some(78) {
            // Refused whole, one line per step that cannot run.
            let reasons: Vec<&str> = err.lines().filter(|l| l.contains(": step ")).collect();
            assert!(!reasons.is_empty(), "{name}: {err}");
            assert!(
                !stdout(&converted).contains('{'),
                "{name}: nothing is half converted"
            );
            let why: Vec<String> = reasons
                .iter()
                .map(|l| l.split_once(": step ").map_or(*l, |(_, r)| r).to_string())
                .collect();
            rows.push(format!(
                "| {name} | refused | step {} |",
                why.join("; step ")
            ));
            outcome.insert(name, "refused".to_string());
            continue;
        }
        assert_eq!(converted.status.code(), Some(0), "{name}: {err}");
        let spec: Value = serde_json::from_slice(&converted.stdout).expect("a job spec");
        assert_eq!(spec["dialect"], "rundeck", "{name}");
        let mut extra: Vec<&str> = Vec::new();
        if name.contains("Data_Passing_Example") && !name.contains("Basic") {
            extra.extend(["-o", "windows_node=node00"]);
        }
        let fake = fake_path(&bin);
        let out = sortie()
            .current_dir(&work)
            .env("USER", "runner")
            .env("SHELL", "/bin/sh")
            .env("PATH", &fake)
            .args(["--log-format", "json", "exec"])
            .arg(file)
            .args(flags(&extra))
            .output()
            .unwrap();
        let code = out.status.code();
        assert!(
            matches!(code, Some(0) | Some(1)),
            "{name}: a job runs to its end, succeeded or failed: {code:?}\n{}",
            stderr(&out)
        );
        let s = summary(&out);
        let status = s["status"].as_str().unwrap().to_string();
        let why = s["error"].as_str().unwrap_or("").replace('|', "\\|");
        let notes = events(&out.stdout)
            .iter()
            .filter(|e| {
                e["kind"] == "system"
                    && e["text"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("not carried over"))
            })
            .count();
        rows.push(format!(
            "| {name} | ran: {status} | {why}{} |",
            if notes > 0 {
                format!(" ({notes} note(s) on what was not carried over)")
            } else {
                String::new()
            }
        ));
        outcome.insert(name, status);
    }
    let table = format!(
        "| file | result | why |\n|---|---|---|\n{}\n",
        rows.join("\n")
    );
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/rundeck-corpus.md");
    std::fs::write(&target, &table).unwrap();
    eprintln!("{table}");
    let expect = |needle: &str, status: &str| {
        let (name, got) = outcome
            .iter()
            .find(|(n, _)| n.contains(needle))
            .unwrap_or_else(|| panic!("no corpus file {needle}"));
        assert_eq!(got, status, "{name}");
    };
    for runs in [
        "Cron_Scheduled_Job",
        "Multi-Node_Example",
        "Using_Input_Options",
        "job-213b0213",
        "Basic_Data_Passing",
        "Global_Log_Filter",
        "nightly_catalog_rebuild",
        "fbf165bd",
        "Exclude_Filter",
        "Install_Rundeck_CLI",
        "Ramdom_Subset",
    ] {
        expect(runs, "succeeded");
    }
    for refused in ["Parent_Job", "Deploy.xml"] {
        expect(refused, "refused");
    }
    // A script at an unreachable http URL fails its step, never the runner.
    expect("c14c992d", "failed");
    // Carried over whole, and failing here as they would anywhere but their
    // authors' sites: a request to a node this inventory does not have, a
    // copy to nodes it does not have.
    expect("HttpRequest_NodeStep", "failed");
    expect("job-a5fbe8c2", "failed");
    // Its play checks a login on every node with a file in their /tmp: not
    // run here (ansible-playbook is not on this PATH); the Ansible plugin's
    // steps run in their own test.
    expect("ansible-playbook-test", "failed");
}

#[test]
fn option_values_stay_inert_through_every_rundeck_token_form() {
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("PWNED");
    let job = write(
        dir.path(),
        "job.yaml",
        r#"- name: tokens
  options:
  - name: v
  sequence:
    commands:
    - exec: echo "a ${option.v}" b ${option.v} c ${unquotedoption.v} done
    - script: |
        echo "d @option.v@"
        echo 'e @option.v@'
        echo f @option.v@
        cat <<EOF
        g @option.v@
        EOF
    - script: printf '%s|' "$@"; echo
      args: ${option.v} ${unquotedoption.v}
    - script: echo "h $1"
      scriptInterpreter: sh -c
      interpreterArgsQuoted: true
      args: ${option.v}
"#,
    );
    for hostile in [
        format!("$(touch {})", canary.display()),
        format!("`touch {}`", canary.display()),
        format!("'; touch {}; '", canary.display()),
        format!("\"; touch {}; \"", canary.display()),
        format!("x\ntouch {}", canary.display()),
    ] {
        let option = format!("v={hostile}");
        let out = exec_file(&job, dir.path(), &["-o", &option]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(!canary.exists(), "{hostile:?} ran");
        let printed = output_text(&events(&out.stdout), "stdout");
        // Quoted forms keep the value whole.
        for quoted in ["a ", "d ", "e ", "h "] {
            assert!(
                printed.contains(&format!("{quoted}{hostile}")),
                "{quoted}: {printed}"
            );
        }
    }
}

#[test]
fn options_are_checked_before_any_step_and_secure_ones_stay_secret() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("dbpass"), "s3cret-from-storage").unwrap();
    let job = write(
        dir.path(),
        "job.xml",
        r#"<joblist><job>
  <name>checked</name>
  <description/>
  <context><options preserveOrder="true">
    <option name="env" required="true" enforcedvalues="true" values="dev,prod" />
    <option name="port" regex="[0-9]+" value="8080" />
    <option name="pw" secure="true" valueExposed="true" storagePath="keys/app/dbpass" />
  </options></context>
  <sequence>
    <command><exec>echo env=${option.env} port=${option.port} pw=${option.pw} $RD_SECUREOPTION_PW</exec></command>
  </sequence>
</job></joblist>"#,
    );
    let secrets_dir = secrets.display().to_string();
    let run = |opts: &[&str]| {
        let mut args = vec!["--secrets-dir", secrets_dir.as_str()];
        args.extend_from_slice(opts);
        exec_file(&job, dir.path(), &args)
    };
    for (opts, why) in [
        (vec![], "option env is required"),
        (
            vec!["-o", "env=test"],
            "\"test\" is not one of its allowed values",
        ),
        (vec!["-o", "env=dev", "-o", "port=80;id"], "does not match"),
    ] {
        let out = run(&opts);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let events = events(&out.stdout);
        assert!(
            !events.iter().any(|e| e["kind"] == "step_start"),
            "no step ran"
        );
        assert!(
            summary(&out)["error"].as_str().unwrap().contains(why),
            "{why}"
        );
    }
    let out = run(&["-o", "env=prod"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(!log.contains("s3cret-from-storage"), "{log}");
    let printed = output_text(&events(&out.stdout), "stdout");
    assert_eq!(printed, "env=prod port=8080 pw=[SECRET] [SECRET]\n");
    // A secure option never goes into a command line.
    let argv = write(
        dir.path(),
        "argv.json",
        &json!({"id": "argv", "dialect": "rundeck",
            "option_defs": [{"name": "pw", "secure": true, "value_exposed": true, "secret": "file:dbpass"}],
            "steps": [{"exec": ["echo", "${option.pw}"]}]})
        .to_string(),
    );
    let out = exec_file(&argv, dir.path(), &["--secrets-dir", &secrets_dir]);
    assert_eq!(out.status.code(), Some(1));
    assert!(output_text(&events(&out.stdout), "stdout").is_empty());
}

#[test]
fn log_filters_feed_data_and_the_log_limit_halts_or_truncates() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "job.yaml",
        r#"- name: filters
  sequence:
    commands:
    - exec: 'echo "version: 1.2.3"; echo "host=web 1"; echo RUNDECK:DATA:k=v'
      plugins:
        LogFilter:
        - type: key-value-data
          config:
            regex: '^version: (\S+)$'
            name: version
            logData: 'true'
        - type: key-value-data
          config:
            regex: '^(host)=(.+)$'
        - type: highlight-output
          config: {regex: 'x'}
    - exec: 'echo "got ${data.version} ${data.host} ${data.k}"'
"#,
    );
    let out = exec_file(&job, dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let events = events(&out.stdout);
    assert!(output_text(&events, "stdout").ends_with("got 1.2.3 web 1 v\n"));
    assert!(events.iter().any(|e| e["text"] == "data: version = 1.2.3"));
    assert_eq!(summary(&out)["data"]["version"], "1.2.3");

    let limited = |action: &str| {
        let job = write(
            dir.path(),
            "limited.yaml",
            &format!(
                "- name: limited\n  loglimit: '5'\n  loglimitAction: {action}\n  sequence:\n    commands:\n    - exec: 'seq 1 100'\n    - exec: 'echo after'\n"
            ),
        );
        exec_file(&job, dir.path(), &[])
    };
    let halted = limited("halt");
    assert_eq!(halted.status.code(), Some(1));
    let events = crate::support::events(&halted.stdout);
    assert_eq!(output_text(&events, "stdout"), "1\n2\n3\n4\n5\n");
    assert!(summary(&halted)["error"]
        .as_str()
        .unwrap()
        .contains("log limit"));
    // A step sortie does itself halts the job at the limit as a process does.
    let job = write(
        dir.path(),
        "limited-data.yaml",
        "- name: limited\n  loglimit: '1'\n  loglimitAction: halt\n  sequence:\n    commands:\n    \
         - exec: 'echo one'\n    - type: log-data-step\n      nodeStep: false\n    \
         - type: export-var\n      nodeStep: false\n      configuration: {export: after, value: x}\n    \
         - exec: 'echo after'\n",
    );
    let halted = exec_file(&job, dir.path(), &[]);
    assert_eq!(halted.status.code(), Some(1), "{}", stderr(&halted));
    let events = crate::support::events(&halted.stdout);
    assert_eq!(output_text(&events, "stdout"), "one\n");
    assert_eq!(summary(&halted)["data"].get("after"), None);
    let truncated = limited("truncate");
    assert_eq!(truncated.status.code(), Some(0), "{}", stderr(&truncated));
    let events = crate::support::events(&truncated.stdout);
    assert_eq!(output_text(&events, "stdout"), "1\n2\n3\n4\n5\n");
}

#[test]
fn a_failed_job_is_retried_after_its_delay_and_timeouts_come_from_options() {
    let dir = tempfile::tempdir().unwrap();
    let tries = dir.path().join("tries");
    std::fs::create_dir(&tries).unwrap();
    let job = write(
        dir.path(),
        "job.yaml",
        &format!(
            r#"- name: flaky
  options:
  - name: attempts
    value: '2'
  - name: limit
    value: '30'
  retry:
    retry: ${{option.attempts}}
    delay: 1s
  timeout: ${{option.limit}}
  sequence:
    commands:
    - exec: 'mkdir {t}/$RD_JOB_RETRYATTEMPT; [ "$RD_JOB_RETRYATTEMPT" = 2 ]'
"#,
            t = tries.display()
        ),
    );
    let out = exec_file(&job, dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let names: Vec<String> = std::fs::read_dir(&tries)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "three attempts: {names:?}");
    let events = events(&out.stdout);
    let retries: Vec<&str> = events
        .iter()
        .filter_map(|e| e["text"].as_str())
        .filter(|t| t.contains("retry"))
        .collect();
    assert_eq!(
        retries,
        [
            "the job failed; retry 1 of 2 in 1s",
            "the job failed; retry 2 of 2 in 1s"
        ]
    );
    // The timeout comes from an option: 1 second is too short for this step.
    let job2 = write(
        dir.path(),
        "slow.yaml",
        "- name: slow\n  options:\n  - name: limit\n    value: '1'\n  timeout: ${option.limit}\n  sequence:\n    commands:\n    - exec: sleep 5\n",
    );
    let out = exec_file(&job2, dir.path(), &[]);
    assert_eq!(summary(&out)["status"], "timed_out");
}

/// A one-file HTTP server on loopback: answers every request with `body`.
fn serve(body: &'static str) -> String {
    serve_answer("script.sh", "200 OK", body)
}

/// A loopback HTTP server that answers every request to its URL (with
/// `path`) with `status` and `body`.
fn serve_answer(path: &str, status: &'static str, body: &'static str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/{path}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nLocation: /\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// The rundeck-http-plugin fails an answer only from 400 on, unless the job
/// checks one response code: a form login's 302 is a success.
#[test]
fn a_rundeck_http_step_fails_from_400_on_unless_it_checks_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let job = |name: &str, url: &str, check: &str| {
        write(
            dir.path(),
            &format!("{name}.yaml"),
            &format!(
                "- name: {name}\n  sequence:\n    commands:\n    - type: edu.ohio.ais.rundeck.HttpWorkflowStepPlugin\n      nodeStep: false\n      configuration:\n        remoteUrl: {url}\n        method: POST\n        body: j_username=u\n{check}"
            ),
        )
    };
    let found = serve_answer("j_security_check", "302 Found", "");
    let missing = serve_answer("j_security_check", "404 Not Found", "");
    let checked = "        checkResponseCode: 'true'\n        responseCode: '200'\n";
    for (name, url, check, status) in [
        ("redirected", &found, "", "succeeded"),
        ("not-found", &missing, "", "failed"),
        ("checked", &found, checked, "failed"),
    ] {
        let out = exec_file(&job(name, url, check), dir.path(), &[]);
        assert_eq!(summary(&out)["status"], status, "{name}: {}", stderr(&out));
    }
}

#[test]
fn a_script_url_is_fetched_when_the_step_runs_its_tokens_expanded() {
    let dir = tempfile::tempdir().unwrap();
    let url = serve("#!/bin/sh\necho \"fetched for @option.who@: $1\"\n");
    let job = write(
        dir.path(),
        "job.yaml",
        &format!(
            "- name: fetched\n  options:\n  - name: who\n    value: ops\n  sequence:\n    commands:\n    - scripturl: {url}\n      args: '${{option.who}}'\n      expandTokenInScriptFile: true\n"
        ),
    );
    let out = exec_file(&job, dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        output_text(&events(&out.stdout), "stdout"),
        "fetched for ops: ops\n"
    );
}

#[test]
fn rundeck_jobs_run_from_the_spool_and_from_the_control_plane() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    run(sortie().arg("spool").arg("init").arg(&spool), 0);
    let text = "- name: from spool\n  options:\n  - name: who\n    value: spool\n  sequence:\n    commands:\n    - script: echo hello @option.who@\n";
    std::fs::write(spool.join("pending/rd-1.yaml"), text).unwrap();
    let state = dir.path().join("state");
    run(&mut spool_poll(&spool, &state), 0);
    let result: Value =
        serde_json::from_slice(&std::fs::read(spool.join("done/rd-1/result.json")).unwrap())
            .unwrap();
    assert_eq!(result["status"], "succeeded", "{result}");
    let log = std::fs::read(spool.join("done/rd-1/log.ndjson")).unwrap();
    assert_eq!(output_text(&events(&log), "stdout"), "hello spool\n");

    let cp = ControlPlane::start();
    let id = cp.enqueue(json!({"id": "rd-2", "rundeck": text, "options": {"who": "plane"}}));
    run(&mut cp.poll(&dir.path().join("state2")), 0);
    assert_done(&cp.job(&id), "succeeded");
    assert_eq!(
        output_text(&events(&cp.log(&id)), "stdout"),
        "hello plane\n"
    );
}

/// A value shaped to run where bash evaluates it as a number (`a[$(cmd)]`),
/// or one naming an environment variable that holds such a value, reaches no
/// script: not through a flow the scanner does not follow, not as an
/// argument. The job is refused before its first step; a number runs.
#[test]
fn a_value_that_would_run_as_a_number_reaches_no_script() {
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("PWNED");
    let job = write(
        dir.path(),
        "numbers.yaml",
        r#"- name: numbers
  options:
  - name: n
  - name: m
  sequence:
    commands:
    - exec: echo ran > first
    - script: |
        #!/bin/bash
        ( read -r x; echo "read $((x))" ) <<< "@option.n@"
    - script: |
        #!/bin/bash
        echo "arg $(($1))"
      args: ${option.n}
"#,
    );
    let hostile = format!("a[$(touch {})]", canary.display());
    for (options, names) in [
        (vec![format!("n={hostile}"), "m=1".to_string()], None),
        (
            vec!["n=RD_OPTION_M".to_string(), format!("m={hostile}")],
            Some("OPTION_M"),
        ),
    ] {
        let args: Vec<&str> = options.iter().flat_map(|o| ["-o", o.as_str()]).collect();
        let out = exec_file(&job, dir.path(), &args);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(!canary.exists(), "{options:?} ran");
        assert!(!dir.path().join("first").exists(), "a step ran first");
        let log = String::from_utf8_lossy(&out.stdout);
        assert!(log.contains("substitution inside a subscript"), "{log}");
        if let Some(name) = names {
            assert!(log.contains(name), "{log}");
        }
        assert!(!log.contains(&hostile), "the value stays out: {log}");
    }
    let out = exec_file(&job, dir.path(), &["-o", "n=7", "-o", "m=1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let printed = output_text(&events(&out.stdout), "stdout");
    assert!(
        printed.contains("read 7") && printed.contains("arg 7"),
        "{printed}"
    );
    // The argument alone, pieced together with the job's own brackets.
    let args = write(
        dir.path(),
        "args.yaml",
        "- name: args\n  options:\n  - name: n\n  sequence:\n    commands:\n    - script: |\n        #!/bin/bash\n        echo $(($1))\n      args: a[${option.n}]\n",
    );
    let option = format!("n=$(touch {})", canary.display());
    let out = exec_file(&args, dir.path(), &["-o", &option]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!canary.exists(), "the argument ran");
    assert!(
        stdout(&out).contains("the script's argument a[${option.n}]"),
        "{}",
        stdout(&out)
    );
}

/// Found by trying to break Rundeck jobs: a value in an interpreter's program
/// refuses the whole job before its first step; a deeply nested XML file goes
/// to `failed/` beside a job that runs; a secure option never shows in an
/// error; a timeout too long for the clock is an error, not a crash.
#[test]
fn hostile_jobs_are_refused_whole_and_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("PWNED");
    let job = write(
        dir.path(),
        "half.yaml",
        r#"- name: half
  options:
  - name: v
  sequence:
    commands:
    - exec: echo ran > first
    - exec: python3 -c "print('${option.v}')"
    - script: |
        sh -c 'sh -c "echo @option.v@"'
"#,
    );
    let option = format!("v=');open('{}','w');print('", canary.display());
    let out = exec_file(&job, dir.path(), &["-o", &option]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!canary.exists(), "the value ran as Python");
    assert!(
        !dir.path().join("first").exists(),
        "step 0 ran before the refusal"
    );
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("a Python program"), "{log}");
    assert!(log.contains("nested in a nested shell"), "{log}");

    let secret = write(
        dir.path(),
        "secret.yaml",
        "- name: secret\n  options:\n  - name: pw\n    secure: true\n  timeout: ${option.pw}\n  retry:\n    retry: ${option.pw}\n    delay: ${option.pw}\n  sequence:\n    commands:\n    - exec: echo hi\n",
    );
    let out = exec_file(&secret, dir.path(), &["-o", "pw=S3cr3tXYZ"]);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!all.contains("S3cr3tXYZ"), "{all}");

    let long = write(
        dir.path(),
        "long.yaml",
        "- name: long\n  timeout: '9223372036854775807s'\n  sequence:\n    commands:\n    - exec: echo hi\n",
    );
    let out = exec_file(&long, dir.path(), &[]);
    assert_eq!(
        out.status.code(),
        Some(i32::from(code::CONFIG)),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("longer than ten years"),
        "{}",
        stderr(&out)
    );

    let spool = dir.path().join("spool");
    run(sortie().arg("spool").arg("init").arg(&spool), 0);
    let deep = format!(
        "<joblist><job><name>deep</name>{}{}<sequence><command><exec>echo hi</exec></command></sequence></job></joblist>",
        "<a>".repeat(5000),
        "</a>".repeat(5000)
    );
    std::fs::write(spool.join("pending/a-deep.xml"), deep).unwrap();
    std::fs::write(
        spool.join("pending/b-ok.yaml"),
        "- name: ok\n  sequence:\n    commands:\n    - exec: echo ran-ok\n",
    )
    .unwrap();
    // One job per shot: the deep one fails, the next shot runs the good one.
    for _ in 0..2 {
        run(&mut spool_poll(&spool, &dir.path().join("state")), 0);
    }
    assert!(spool.join("done/b-ok/result.json").exists());
    let why = std::fs::read_to_string(spool.join("failed/a-deep.json.error")).unwrap();
    assert!(why.contains("nest more than 64"), "{why}");
}

/// A `scripturl` fetch does not outlast the job: a server that sends a byte a
/// second is given up on when the job's timeout comes, not after the fetch's
/// own minute.
#[test]
fn a_slow_script_url_is_bounded_by_the_job_s_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/slow.sh", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
            while stream.write_all(b"#").is_ok() {
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "slow.yaml",
        &format!(
            "- name: slow\n  timeout: 2s\n  sequence:\n    commands:\n    - scripturl: '{url}'\n"
        ),
    );
    let out = exec_file(&job, dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        log.contains("the job's time ran out while its script was fetched"),
        "{log}"
    );
}

/// What `sortie convert` prints is a job spec `sortie exec` takes: no field
/// of it is refused, for any job of the corpus that converts.
#[test]
fn every_converted_corpus_job_is_a_spec_exec_takes() {
    let dir = tempfile::tempdir().unwrap();
    let mut converted = 0;
    for entry in std::fs::read_dir(corpus()).unwrap() {
        let path = entry.unwrap().path();
        let out = sortie().arg("convert").arg(&path).output().unwrap();
        if out.status.code() != Some(i32::from(code::OK)) {
            continue;
        }
        let spec: Value = serde_json::from_slice(&out.stdout).unwrap();
        let specs = match spec {
            Value::Array(specs) => specs,
            one => vec![one],
        };
        for (i, spec) in specs.iter().enumerate() {
            let file = write(
                dir.path(),
                &format!("spec-{converted}-{i}.json"),
                &spec.to_string(),
            );
            let check = exec_file(&file, dir.path(), &["--check"]);
            assert!(
                !stderr(&check).contains("not a field here"),
                "{}: {}",
                path.display(),
                stderr(&check)
            );
        }
        converted += 1;
    }
    assert!(converted >= 12, "{converted} corpus jobs converted");
}

/// A Rundeck job that would be refused when it runs is said so by
/// `convert`, naming the variable that holds the value it wanted.
#[test]
fn convert_says_what_a_job_would_refuse_when_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "py.yaml",
        "- name: py\n  options:\n  - name: db-host\n  sequence:\n    commands:\n    - script: |\n        print('@option.db-host@')\n      scriptInterpreter: python3\n",
    );
    let out = sortie().arg("convert").arg(&job).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(i32::from(code::OK)),
        "{}",
        stderr(&out)
    );
    let said = stderr(&out);
    assert!(said.contains("py: refused when it runs"), "{said}");
    assert!(
        said.contains("(@option.db-host@)") && said.contains("$RD_OPTION_DB_HOST"),
        "{said}"
    );
}

/// Rundeck's own functional test of a step's exit code in later steps
/// (step-execution-context, job 1266c6ed): `${N:exec.exitCode*}` is what
/// step N exited with, and `${N:data.k}` what step N captured; neither is
/// result data of the job.
#[test]
fn later_steps_read_an_earlier_step_s_exit_code_and_data() {
    let dir = tempfile::tempdir().unwrap();
    let job = write(
        dir.path(),
        "exit-codes.xml",
        r#"<joblist>
  <job>
    <description>Test script failure correctly sets exit code context variable</description>
    <id>1266c6ed-5cb7-4736-9e64-7f902f1090fa</id>
    <name>Script Fails with exitCode</name>
    <sequence keepgoing='true' strategy='node-first'>
      <command>
        <script><![CDATA[echo "STEP 1: will succeed"
echo RUNDECK:DATA:who=first
]]></script>
      </command>
      <command>
        <script><![CDATA[ echo "STEP 2: will fail with code 99"
        echo RUNDECK:DATA:who=second
        exit 99]]></script>
        <scriptargs />
      </command>
      <command>
        <exec><![CDATA[echo "STEP 3: ExitCode from Step1: ${1:exec.exitCode*}"]]></exec>
      </command>
      <command>
        <exec><![CDATA[echo "STEP 4: ExitCode from Step2: ${2:exec.exitCode*} by ${1:data.who} then ${data.who}"]]></exec>
      </command>
    </sequence>
    <uuid>1266c6ed-5cb7-4736-9e64-7f902f1090fa</uuid>
  </job>
</joblist>"#,
    );
    let out = exec_file(&job, dir.path(), &[]);
    let said = output_text(&events(&out.stdout), "stdout");
    assert!(said.contains("STEP 3: ExitCode from Step1: 0\n"), "{said}");
    assert!(
        said.contains("STEP 4: ExitCode from Step2: 99 by first then second\n"),
        "{said}"
    );
    let summary = summary(&out);
    assert_eq!(summary["status"], "failed");
    assert_eq!(summary["data"], json!({"who": "second"}), "{summary}");
}

/// Of a file of several jobs, `convert` prints those a runner can run and
/// fails naming the others, as Rundeck imports each job on its own.
#[test]
fn convert_prints_the_jobs_of_a_file_that_can_run_and_names_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "two.yaml",
        "- name: runs\n  sequence:\n    commands:\n    - exec: echo hi\n- name: calls-another\n  sequence:\n    commands:\n    - jobref:\n        name: other\n",
    );
    let out = sortie().arg("convert").arg(&file).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(i32::from(code::CONFIG)),
        "{}",
        stderr(&out)
    );
    let specs: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(specs.as_array().unwrap().len(), 1, "{specs}");
    assert_eq!(specs[0]["name"], "runs");
    assert!(stderr(&out).contains("calls-another"), "{}", stderr(&out));
}

/// Rundeck's copyfile puts the file on the node, and log-data-step logs what
/// the job gathered, its secure options left out.
#[test]
fn copyfile_and_log_data_steps_run_as_rundeck_s_do() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    std::fs::create_dir(dir.path().join("out")).unwrap();
    write(dir.path(), "app-v7.txt", "the build\n");
    let job = write(
        dir.path(),
        "ship.yaml",
        &format!(
            r#"- name: ship
  options:
  - name: build
    value: v7
  - name: pw
    secure: true
  sequence:
    commands:
    - type: copyfile
      nodeStep: true
      configuration:
        sourcePath: {root}/app-${{option.build}}.txt
        destinationPath: {root}/out/
        echo: 'true'
        recursive: 'false'
    - type: export-var
      nodeStep: false
      configuration: {{export: shipped, group: export, value: '${{option.build}}'}}
    - type: log-data-step
      nodeStep: false
      configuration: {{debugOnly: 'false'}}
"#
        ),
    );
    let out = exec_file(&job, dir.path(), &["-o", "pw=hunter2-secret"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out/app-v7.txt")).unwrap(),
        "the build\n"
    );
    let log = events(&out.stdout);
    let logged: Vec<&str> = log
        .iter()
        .filter(|e| e["kind"] == "output" && e["step"] == 2)
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert_eq!(logged.len(), 1, "{logged:?}");
    let view = logged[0].strip_prefix("global ").expect("the global view");
    let view: Value = serde_json::from_str(view).unwrap();
    assert_eq!(view["data"], json!({"shipped": "v7"}));
    assert_eq!(view["option"], json!({"build": "v7"}));
    assert_eq!(view["job"]["name"], "ship");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("hunter2"), "{text}");
}

/// Rundeck's Ansible plugin step runs as sortie's ansible step: the play on
/// the job's nodes, its extra vars from options (text, never templated), the
/// vault password from key storage (the runner's secrets directory).
#[test]
fn an_ansible_plugin_step_plays_on_the_job_s_nodes() {
    let lab = Lab::new(2);
    lab.inventory(&[
        ("web1", lab.ansible_node(0)),
        ("web2", lab.ansible_node(1)),
        ("db1", lab.ansible_node(0)),
    ]);
    let written = lab.path("written");
    std::fs::create_dir(&written).unwrap();
    // The play as Rundeck's YAML export writes it: a literal block.
    let play: String = format!(
        "- hosts: all\n  gather_facts: false\n  vars:\n{}  tasks:\n  - copy:\n      dest: \
         \"{}/{{{{ inventory_hostname }}}}.txt\"\n      content: \"{{{{ release }}}} \
         {{{{ vaulted }}}} {{{{ other | default('unset') }}}}\\n\"\n",
        lab.vaulted_var("vault-pass-41d7"),
        written.display()
    );
    let block: String = play.lines().map(|l| format!("          {l}\n")).collect();
    std::fs::write(lab.path("secrets/vault-pw"), "vault-pass-41d7").unwrap();
    let job = write(
        &lab.path(""),
        "play.yaml",
        &format!(
            "- name: play\n  nodefilters:\n    filter: 'name: web.*'\n  options:\n  - name: release\n    \
             value: '1.2'\n  - name: other\n    value: declared\n  sequence:\n    commands:\n    - type: \
             com.batix.rundeck.plugins.AnsiblePlaybookInlineWorkflowStep\n      nodeStep: false\n      \
             configuration:\n        ansible-extra-vars: 'release: ${{option.release}}'\n        \
             ansible-vault-storage-path: keys/project/vault-pw\n        ansible-playbook-inline: |\n{block}"
        ),
    );
    let path = format!(
        "{}:{}",
        peer("ansible-playbook").parent().unwrap().display(),
        std::env::var("PATH").unwrap()
    );
    let mut cmd = sortie();
    cmd.env("PATH", path)
        .args(["--log-format", "json", "exec"])
        .arg(&job)
        .args(["-o", "release={{ 6 * 7 }}"]);
    lab.reach(&mut cmd);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(summary(&out)["status"], "succeeded");
    for host in ["web1", "web2"] {
        let text = std::fs::read_to_string(written.join(format!("{host}.txt"))).unwrap();
        // Only the step's extra vars: the job's other option is not one.
        assert_eq!(text, "{{ 6 * 7 }} vaulted-value unset\n");
    }
    assert!(!written.join("db1.txt").exists());
}

/// The nixy plugins' local script runs on the runner with the references
/// Rundeck pastes into it put in as quoted text: an option cannot become code.
#[test]
fn a_nixy_local_script_runs_with_its_references_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let planted = dir.path().join("planted");
    let job = write(
        dir.path(),
        "local.xml",
        r#"<joblist>
  <job>
    <description></description>
    <name>local</name>
    <context><options><option name='region' value='eu' /></options></context>
    <sequence keepgoing='false' strategy='node-first'>
      <command>
        <step-plugin type='nixy-local-workflow-step'>
          <configuration>
            <entry key='script' value='#!/bin/bash&#10;echo "region ${option.region} in ${job.name}"&#10;echo plain ${option.region}' />
          </configuration>
        </step-plugin>
      </command>
    </sequence>
  </job>
</joblist>"#,
    );
    let hostile = format!(
        "$(touch {})\";touch {};\"",
        planted.display(),
        planted.display()
    );
    let out = exec_file(&job, dir.path(), &["-o", &format!("region={hostile}")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = output_text(&events(&out.stdout), "stdout");
    assert_eq!(
        said,
        format!("region {hostile} in local\nplain {hostile}\n"),
        "{said}"
    );
    assert!(!planted.exists());
}
