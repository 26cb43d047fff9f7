//! `sortie poll` against the reference control plane over TLS.

use std::time::Duration;

use crate::support::*;

#[test]
fn a_multi_step_job_succeeds_and_the_control_plane_holds_its_whole_log() {
    let cp = ControlPlane::start();
    cp.enqueue(fixture_json("multi-step.json"));
    let state = tempfile::tempdir().unwrap();
    run(&mut cp.poll(state.path()), code::OK);

    let job = cp.job("multi-step");
    assert_done(&job, "succeeded");
    let completion = job.completion.unwrap();
    let log = cp.log("multi-step");
    assert_eq!(completion.log.length, log.len() as u64);
    assert_eq!(completion.log.sha256, sha256_hex(&log));
    assert_eq!(completion.data["state"], "degraded");
    assert_eq!(completion.data["count"], "3");
    assert_eq!(completion.data["recovered"], "yes");
    // Four steps, one error handler.
    assert_eq!(completion.steps.len(), 5);
    assert!(completion.steps[3].errorhandler);

    let events = events(&log);
    let stdout = output_text(&events, "stdout");
    assert!(
        stdout.contains("checking web; echo not-injected\n"),
        "{stdout}"
    );
    assert!(stdout.contains("greeting: it's \"quoted\"\n"), "{stdout}");
    assert!(
        !stdout.contains("\nnot-injected"),
        "an option value was executed: {stdout}"
    );
    assert_eq!(
        events.iter().filter(|e| e["kind"] == "step_start").count(),
        5
    );
    // Nothing is left in the state dir once the control plane has everything.
    assert!(std::fs::read_dir(state.path().join("jobs"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn a_failing_step_fails_the_job_and_only_the_flag_fails_the_shot() {
    let cp = ControlPlane::start();
    cp.enqueue(fixture_json("failing.json"));
    let state = tempfile::tempdir().unwrap();
    run(&mut cp.poll(state.path()), code::OK);
    let job = cp.job("failing");
    assert_done(&job, "failed");
    let completion = job.completion.unwrap();
    assert_eq!(completion.exit_code, Some(3));
    let events = events(&cp.log("failing"));
    assert!(output_text(&events, "stderr").contains("about to fail"));
    assert!(!output_text(&events, "stdout").contains("must not run"));

    let mut spec = fixture_json("failing.json");
    spec["id"] = "failing-ci".into();
    cp.enqueue(spec);
    run(
        cp.poll(state.path()).arg("--fail-on-job-failure"),
        code::JOB_FAILED,
    );
    assert_done(&cp.job("failing-ci"), "failed");
}

/// A shot with no work is silent (cron mails only on trouble), and says so at -v.
#[test]
fn no_work_exits_zero_and_prints_nothing() {
    let cp = ControlPlane::start();
    let state = tempfile::tempdir().unwrap();
    let out = run(&mut cp.poll(state.path()), code::OK);
    assert_eq!(stderr(&out), "", "a shot with no work prints nothing");
    assert_eq!(stdout(&out), "");
    let out = run(cp.poll(state.path()).arg("-v"), code::OK);
    assert!(stderr(&out).contains("no work"), "{}", stderr(&out));
}

#[test]
fn output_reaches_the_control_plane_while_the_step_still_runs() {
    let cp = ControlPlane::start();
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    cp.enqueue(serde_json::json!({
        "id": "streaming",
        "options": { "gate": gate.display().to_string() },
        "steps": [{ "shell": "echo first; while [ ! -e ${option.gate} ]; do sleep 0.05; done; echo second" }]
    }));
    let mut child = cp
        .poll(&dir.path().join("state"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The step cannot end before the gate exists, and the gate opens only once
    // "first" is at the control plane: the log is streamed, not sent at the end.
    wait_for(
        "the first line at the control plane",
        Duration::from_secs(20),
        || String::from_utf8_lossy(&cp.log("streaming")).contains("first\\n"),
    );
    assert!(cp.job("streaming").completion.is_none());
    std::fs::write(&gate, "").unwrap();
    assert!(child.wait().unwrap().success());
    assert_done(&cp.job("streaming"), "succeeded");
    let events = events(&cp.log("streaming"));
    assert_eq!(output_text(&events, "stdout"), "first\nsecond\n");
}

#[test]
fn an_unknown_ca_is_refused_with_a_clear_message() {
    let cp = ControlPlane::start();
    cp.enqueue(fixture_json("hello.json"));
    let dir = tempfile::tempdir().unwrap();
    let other = Pki::new(dir.path(), "other");
    let out = run(
        cp.poll(&dir.path().join("state"))
            .arg("--ca-file")
            .arg(&other.ca_file),
        code::CONFIG,
    );
    let err = stderr(&out);
    assert!(
        err.contains("certificate") && err.contains("--ca-file"),
        "{err}"
    );
    assert_eq!(cp.job("hello").phase, sortie_control_plane::Phase::Queued);
}

#[test]
fn a_wrong_token_is_rejected() {
    let cp = ControlPlane::start();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("wrong");
    std::fs::write(&token, "not-the-token").unwrap();
    let out = run(
        cp.poll(&dir.path().join("state"))
            .arg("--token-file")
            .arg(&token),
        code::REJECTED,
    );
    assert!(
        stderr(&out).contains("credentials rejected"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("not-the-token"),
        "the token is never printed"
    );
}

/// A token too long for every request to hold is refused at start, by its
/// length, before anything is claimed (a job claimed with it could never be
/// reported).
#[test]
fn a_token_too_long_to_send_is_refused_before_any_claim() {
    let cp = ControlPlane::start();
    cp.enqueue(fixture_json("hello.json"));
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("long");
    std::fs::write(&token, "t".repeat(40 * 1024)).unwrap();
    let out = run(
        cp.poll(&dir.path().join("state"))
            .arg("--token-file")
            .arg(&token),
        code::CONFIG,
    );
    assert!(
        stderr(&out).contains("more than the 32768"),
        "{}",
        stderr(&out)
    );
    assert_eq!(cp.job("hello").phase, sortie_control_plane::Phase::Queued);
}

#[test]
fn the_token_can_come_from_the_environment_but_never_from_a_flag() {
    let cp = ControlPlane::start();
    cp.enqueue(fixture_json("hello.json"));
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = sortie();
    cmd.args(["poll", "--server", &cp.url(), "--runner-id", "r"])
        .arg("--ca-file")
        .arg(&cp.pki.ca_file)
        .arg("--state-dir")
        .arg(dir.path())
        .env("SORTIE_TOKEN", RUNNER_TOKEN);
    run(&mut cmd, code::OK);
    assert_done(&cp.job("hello"), "succeeded");
    let out = run(sortie().args(["poll", "--token", "x"]), code::USAGE);
    assert!(stderr(&out).contains("--token"), "{}", stderr(&out));
}

#[test]
fn mutual_tls_works_with_a_client_certificate_and_refuses_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let clients = Pki::new(dir.path(), "clients");
    let cp = ControlPlane::with(Options {
        client_ca: Some(clients.ca_file.clone()),
        ..Options::default()
    });
    cp.enqueue(fixture_json("hello.json"));

    let out = run(&mut cp.poll(&dir.path().join("s1")), code::REJECTED);
    assert!(
        stderr(&out).contains("client certificate"),
        "{}",
        stderr(&out)
    );
    assert_eq!(cp.job("hello").phase, sortie_control_plane::Phase::Queued);

    let (cert, key) = clients.client_files(dir.path(), "runner");
    run(
        cp.poll(&dir.path().join("s2"))
            .arg("--client-cert")
            .arg(&cert)
            .arg("--client-key")
            .arg(&key),
        code::OK,
    );
    assert_done(&cp.job("hello"), "succeeded");
}

#[test]
fn bad_certificate_material_is_a_configuration_error_before_any_connection() {
    let cp = ControlPlane::start();
    let dir = tempfile::tempdir().unwrap();
    let (cert, _) = cp.pki.client_files(dir.path(), "a");
    let (_, other_key) = cp.pki.client_files(dir.path(), "b");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let garbage = dir.path().join("garbage.key");
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();

    let out = run(
        cp.poll(&dir.path().join("s"))
            .arg("--client-cert")
            .arg(&cert)
            .arg("--client-key")
            .arg(&other_key),
        code::CONFIG,
    );
    assert!(stderr(&out).contains("does not match"), "{}", stderr(&out));
    // `check` maps the same problem to the same code as `poll` (#11).
    let out = run(
        sortie()
            .args(["check", "--runner-id", "r", "--server", &cp.url()])
            .arg("--ca-file")
            .arg(&cp.pki.ca_file)
            .arg("--client-cert")
            .arg(&cert)
            .arg("--client-key")
            .arg(&other_key),
        code::CONFIG,
    );
    assert!(stderr(&out).contains("does not match"), "{}", stderr(&out));

    let out = run(
        cp.poll(&dir.path().join("s")).arg("--ca-file").arg(&empty),
        code::CONFIG,
    );
    assert!(
        stderr(&out).contains("holds no certificate"),
        "{}",
        stderr(&out)
    );

    let out = run(
        cp.poll(&dir.path().join("s"))
            .arg("--client-cert")
            .arg(&cert)
            .arg("--client-key")
            .arg(&garbage),
        code::CONFIG,
    );
    assert!(stderr(&out).contains("client key"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn plain_http_is_refused_beyond_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        sortie()
            .args([
                "poll",
                "--server",
                "http://cp.example.invalid/",
                "--runner-id",
                "r",
            ])
            .arg("--state-dir")
            .arg(dir.path()),
        code::CONFIG,
    );
    assert!(stderr(&out).contains("loopback"), "{}", stderr(&out));
}

#[test]
fn check_reports_readiness_and_each_problem_on_its_own_line() {
    let cp = ControlPlane::start();
    cp.enqueue(fixture_json("hello.json"));
    let dir = tempfile::tempdir().unwrap();
    let cmd = cp.poll(&dir.path().join("state"));
    // `check` takes the same connection flags as `poll`.
    let args: Vec<_> = cmd.get_args().skip(1).map(|a| a.to_owned()).collect();
    let out = run(sortie().arg("check").args(&args), code::OK);
    assert!(
        stdout(&out).contains("credentials accepted"),
        "{}",
        stdout(&out)
    );
    // It claims nothing.
    assert_eq!(cp.job("hello").phase, sortie_control_plane::Phase::Queued);

    let missing = dir.path().join("missing.pem");
    let out = run(
        sortie()
            .args(["check", "--server", "ftp://x/", "--runner-id", "r"])
            .arg("--ca-file")
            .arg(&missing)
            .arg("--token-file")
            .arg(&missing),
        code::CONFIG,
    );
    let err = stderr(&out);
    let problems = err
        .lines()
        .filter(|l| l.starts_with("sortie: check:"))
        .count();
    assert_eq!(problems, 3, "{err}");
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "nope").unwrap();
    let out = run(
        sortie()
            .arg("check")
            .args(&args)
            .arg("--token-file")
            .arg(&wrong),
        code::REJECTED,
    );
    assert!(stderr(&out).contains("rejected"), "{}", stderr(&out));
}

#[test]
fn bulk_output_arrives_whole_over_tls() {
    let cp = ControlPlane::start();
    let line = "0123456789012345678901234567890123456789\n";
    let size = line.len() * 400_000;
    cp.enqueue(serde_json::json!({
        "id": "bulk",
        "steps": [{ "shell": format!("yes 0123456789012345678901234567890123456789 | head -c {size}") }]
    }));
    let state = tempfile::tempdir().unwrap();
    run(&mut cp.poll(state.path()), code::OK);
    let job = cp.job("bulk");
    assert_done(&job, "succeeded");
    let log = cp.log("bulk");
    assert_eq!(job.completion.unwrap().log.sha256, sha256_hex(&log));
    let events = events(&log);
    let text = output_text(&events, "stdout");
    assert_eq!(text.len(), size);
    assert!(text.split_inclusive('\n').all(|l| l == line));
}

/// A real job's spec, log and completion validate against the JSON Schemas in
/// protocol/schema/ (job spec v1, log events v1, the OpenAPI document's
/// Completion), so the documents describe what runners really send.
#[test]
fn the_spec_log_and_completion_match_their_published_schemas() {
    let cp = ControlPlane::start();
    let spec = fixture_json("multi-step.json");
    cp.enqueue(spec.clone());
    let state = tempfile::tempdir().unwrap();
    run(&mut cp.poll(state.path()), code::OK);
    let completion = serde_json::to_value(cp.job("multi-step").completion.unwrap()).unwrap();
    let log = String::from_utf8(cp.log("multi-step")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let instances = serde_json::json!({
        "spec": spec,
        "events": log.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).collect::<Vec<_>>(),
        "completion": completion,
    });
    std::fs::write(dir.path().join("instances.json"), instances.to_string()).unwrap();
    let schemas = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol/schema");
    let check = r##"
import json, sys
from jsonschema import Draft202012Validator as V
d = sys.argv[1]
data = json.load(open(sys.argv[2]))
spec = json.load(open(d + "/job-spec-v1.json"))
events = json.load(open(d + "/log-events-v1.json"))
api = json.load(open(d + "/openapi.json"))
completion = {"$ref": "#/components/schemas/Completion", "components": api["components"]}
errors = [e.message for e in V(spec).iter_errors(data["spec"])]
for event in data["events"]:
    errors += ["%s: %s" % (event["seq"], e.message) for e in V(events).iter_errors(event)]
errors += [e.message for e in V(completion).iter_errors(data["completion"])]
print("\n".join(errors))
print("checked %d events" % len(data["events"]), file=sys.stderr)
sys.exit(1 if errors else 0)
"##;
    let out = std::process::Command::new(peer("python"))
        .args(["-c", check])
        .arg(&schemas)
        .arg(dir.path().join("instances.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains("checked"), "{}", stderr(&out));
}
