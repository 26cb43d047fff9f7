//! What an operator meets: configuration mistakes that fail at once with a
//! hint, quiet shots, one line per job, the local history, readable output.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

use crate::support::*;

/// A network namespace whose resolver is a local server answering NXDOMAIN to
/// every question, so a name that does not exist can be tried without a query
/// leaving the machine (`ip netns exec` puts `/etc/netns/NAME/resolv.conf`
/// over `/etc/resolv.conf`).
struct NxdomainNs {
    name: String,
}

const NXDOMAIN_SERVER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
open(sys.argv[1], "w").close()
while True:
    q, peer = s.recvfrom(4096)
    if len(q) < 12:
        continue
    # The same id and question; QR, RD and RA set, RCODE 3 (NXDOMAIN), no records.
    s.sendto(q[:2] + bytes([0x81, 0x83]) + q[4:6] + bytes(6) + q[12:], peer)
"#;

impl NxdomainNs {
    fn new() -> NxdomainNs {
        let name = format!("sortie-dns-{}", std::process::id());
        let etc = Path::new("/etc/netns").join(&name);
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("resolv.conf"), "nameserver 127.0.0.1\n").unwrap();
        let status = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(status.success(), "ip netns add");
        NxdomainNs { name }
    }

    /// `sortie ARGS` in the namespace, once the NXDOMAIN server listens.
    fn sortie(&self, args: &[&str], ready: &Path) -> Command {
        let program = sortie().get_program().to_owned();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, "sh", "-c"]);
        cmd.arg(
            "ip link set lo up; python3 -c \"$1\" \"$2\" & server=$!; i=0; \
             while [ ! -e \"$2\" ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i+1)); done; \
             shift 2; \"$@\"; rc=$?; kill $server; exit $rc",
        );
        cmd.arg("sh")
            .arg(NXDOMAIN_SERVER)
            .arg(ready)
            .arg(program)
            .args(args);
        cmd.env_clear();
        for (k, v) in sortie().get_envs() {
            if let Some(v) = v {
                cmd.env(k, v);
            }
        }
        cmd
    }
}

impl Drop for NxdomainNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = std::fs::remove_dir_all(Path::new("/etc/netns").join(&self.name));
    }
}

#[test]
fn a_host_name_that_does_not_resolve_fails_at_once_with_exit_78() {
    let ns = NxdomainNs::new();
    let dir = TempDir::new().unwrap();
    let state = dir.path().join("state");
    let out = run(
        &mut ns.sortie(
            &[
                "poll",
                "--server",
                "https://control-plane.example.invalid/",
                "--state-dir",
                state.to_str().unwrap(),
            ],
            &dir.path().join("dns-ready"),
        ),
        code::CONFIG,
    );
    let err = stderr(&out);
    assert!(err.contains("does not resolve"), "{err}");
    assert!(
        !err.contains("retrying"),
        "a lasting error is not retried: {err}"
    );
}

#[test]
fn plain_http_to_a_tls_port_says_use_https() {
    let cp = ControlPlane::start();
    let dir = TempDir::new().unwrap();
    let url = cp.url().replacen("https://", "http://", 1);
    let out = run(
        sortie()
            .args(["poll", "--server", &url, "--state-dir"])
            .arg(dir.path().join("state")),
        code::CONFIG,
    );
    let err = stderr(&out);
    assert!(err.contains("use https://"), "{err}");
    assert!(!err.contains("retrying"), "{err}");
}

#[test]
fn https_to_a_plain_http_port_says_the_server_does_not_speak_tls() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let dir = TempDir::new().unwrap();
    let out = run(
        sortie()
            .args(["poll", "--server"])
            .arg(format!("https://127.0.0.1:{port}/"))
            .arg("--state-dir")
            .arg(dir.path().join("state")),
        code::CONFIG,
    );
    let err = stderr(&out);
    assert!(err.contains("does not speak TLS"), "{err}");
    assert!(!err.contains("retrying"), "{err}");
}

fn started_and_finished(cp: &ControlPlane, id: &str) -> (String, String, u64) {
    let job = cp.job(id);
    let completion = job.completion.expect("completed");
    assert_eq!(completion.status.as_str(), "succeeded", "{id}");
    (completion.started_at, completion.finished_at, job.attempt)
}

/// `--max-jobs 2` with one job at a time claims the second only when the first
/// is done, so its start window never runs out behind the first (an ack
/// window shorter than the first job: before, the second came back as
/// attempt 2); `--parallel 2` runs both at once.
#[test]
fn a_job_is_claimed_only_when_it_can_start_and_parallel_jobs_overlap() {
    use sortie_control_plane::Timing;
    let spec = |id: &str| serde_json::json!({"id": id, "steps": [{"shell": "sleep 1.5"}]});
    let timing = Timing {
        ack_window: std::time::Duration::from_secs(1),
        ..Timing::default()
    };
    let cp = ControlPlane::with(Options {
        timing: Some(timing),
        ..Options::default()
    });
    let (a, b) = (cp.enqueue(spec("one-a")), cp.enqueue(spec("one-b")));
    let dir = TempDir::new().unwrap();
    let out = run(
        cp.poll(&dir.path().join("state")).args(["--max-jobs", "2"]),
        code::OK,
    );
    let (_, a_end, a_attempt) = started_and_finished(&cp, &a);
    let (b_start, _, b_attempt) = started_and_finished(&cp, &b);
    assert_eq!((a_attempt, b_attempt), (1, 1), "{}", stderr(&out));
    assert!(a_end <= b_start, "one at a time: {a_end} then {b_start}");

    let cp = ControlPlane::with(Options {
        timing: Some(timing),
        ..Options::default()
    });
    let (a, b) = (cp.enqueue(spec("two-a")), cp.enqueue(spec("two-b")));
    run(
        cp.poll(&dir.path().join("state2"))
            .args(["--max-jobs", "2", "--parallel", "2"]),
        code::OK,
    );
    let (a_start, a_end, _) = started_and_finished(&cp, &a);
    let (b_start, b_end, _) = started_and_finished(&cp, &b);
    assert!(
        a_start < b_end && b_start < a_end,
        "at once: {a_start}..{a_end} and {b_start}..{b_end}"
    );
}

/// Cron mails what a shot prints: nothing when there is no work; one line
/// per job, an error for a failed one that `-q` still shows.
#[test]
fn an_idle_shot_is_silent_and_a_job_ends_in_one_line() {
    let dir = TempDir::new().unwrap();
    let spool = dir.path().join("spool");
    run(sortie().args(["spool", "init"]).arg(&spool), code::OK);
    let state = dir.path().join("state");
    let out = run(&mut spool_poll(&spool, &state), code::OK);
    assert_eq!(stderr(&out), "", "an idle shot prints nothing");
    assert_eq!(stdout(&out), "");
    std::fs::write(
        spool.join("pending/bad.json"),
        r#"{"id": "bad", "steps": [{"name": "ok", "shell": "true"}, {"name": "no", "shell": "exit 3"}, {"shell": "true"}]}"#,
    )
    .unwrap();
    let out = run(spool_poll(&spool, &state).arg("-q"), code::OK);
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("ERROR failed (exit 3)")
            && err.contains("2 step(s) ran, 1 failed, 1 skipped")
            && err.contains("job=bad"),
        "{err}"
    );
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(spool.join("done/bad/result.json")).unwrap())
            .unwrap();
    assert_eq!(result["steps"][2]["status"], "skipped", "{result}");
}

/// `sortie status` answers "what ran last night" from the state dir alone.
#[test]
fn status_shows_the_last_shot_and_the_last_jobs() {
    let dir = TempDir::new().unwrap();
    let spool = dir.path().join("spool");
    run(sortie().args(["spool", "init"]).arg(&spool), code::OK);
    let state = dir.path().join("state");
    for (id, shell) in [("nightly-ok", "true"), ("nightly-bad", "exit 4")] {
        std::fs::write(
            spool.join(format!("pending/{id}.json")),
            serde_json::json!({"id": id, "steps": [{"shell": shell}]}).to_string(),
        )
        .unwrap();
    }
    run(
        spool_poll(&spool, &state).args(["--max-jobs", "2"]),
        code::OK,
    );
    run(&mut spool_poll(&spool, &state), code::OK);
    let out = run(
        sortie().args(["status", "--state-dir"]).arg(&state),
        code::OK,
    );
    let table = stdout(&out);
    assert!(table.contains("exit 0 (ok), no work"), "{table}");
    let row = |id: &str| {
        table
            .lines()
            .find(|l| l.contains(id))
            .unwrap_or("")
            .to_string()
    };
    assert!(row("nightly-ok").contains("succeeded"), "{table}");
    assert!(
        row("nightly-bad").split_whitespace().collect::<Vec<_>>()[3..5] == ["failed", "4"],
        "{table}"
    );
    let out = run(
        sortie()
            .args(["status", "--json", "--state-dir"])
            .arg(&state),
        code::OK,
    );
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["jobs"].as_array().unwrap().len(), 2, "{json}");
    assert_eq!(json["last_shot"]["jobs"], 0);
    let bad = json["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == "nightly-bad")
        .unwrap();
    assert_eq!(bad["steps_failed"], 1, "{json}");
}

/// `sortie exec ARGS` on a pseudo-terminal (util-linux `script`), its output.
fn on_terminal(dir: &Path, args: &str, no_color: bool) -> std::process::Child {
    let program = sortie().get_program().to_owned();
    let mut cmd = Command::new("script");
    cmd.args([
        "-qec",
        &format!("{} exec {args}", program.to_string_lossy()),
        "/dev/null",
    ])
    .current_dir(dir)
    .env("TERM", "xterm")
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    if no_color {
        cmd.env("NO_COLOR", "1");
    } else {
        cmd.env_remove("NO_COLOR");
    }
    cmd.spawn().unwrap()
}

/// A failing multi-step job on a terminal: coloured by outcome (and plain
/// with NO_COLOR), durations a person reads, the handler's ending named as
/// the handler's, the steps it skipped, the job's duration.
#[test]
fn a_failing_job_on_a_terminal_reads_well() {
    let dir = TempDir::new().unwrap();
    std::fs::write(
        dir.path().join("job.json"),
        serde_json::json!({"id": "tty", "steps": [
            {"name": "hello", "shell": "echo hi; echo warn >&2"},
            {"name": "bad", "shell": "exit 3", "errorhandler": {"shell": "echo handling"}},
            {"name": "after", "shell": "echo never"}]})
        .to_string(),
    )
    .unwrap();
    let out = on_terminal(dir.path(), "job.json", false)
        .wait_with_output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(
        text.contains("\x1b[31m--- step 1 failed (exit 3, "),
        "{text:?}"
    );
    assert!(
        text.contains("\x1b[32m--- error handler of step 1 succeeded (exit 0, "),
        "{text:?}"
    );
    assert!(text.contains("skipped: step 2 (after)"), "{text:?}");
    assert!(text.contains("\x1b[33mwarn"), "stderr stands out: {text:?}");
    assert!(text.contains("--- job tty failed in "), "{text:?}");
    assert!(!text.contains("never"), "{text:?}");
    let plain = on_terminal(dir.path(), "job.json", true)
        .wait_with_output()
        .unwrap();
    let plain = String::from_utf8_lossy(&plain.stdout);
    assert!(!plain.contains('\x1b'), "NO_COLOR: {plain:?}");
    assert!(plain.contains(" ms)"), "{plain:?}");
}

/// The first Ctrl-C on a terminal says what happens next.
#[test]
fn the_first_interrupt_on_a_terminal_says_stopping() {
    use std::io::BufRead;
    let dir = TempDir::new().unwrap();
    std::fs::write(
        dir.path().join("job.json"),
        serde_json::json!({"id": "long", "steps": [
            {"shell": "echo pid:$PPID; sleep 30"}]})
        .to_string(),
    )
    .unwrap();
    let mut child = on_terminal(dir.path(), "job.json", true);
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let pid = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.trim().strip_prefix("pid:").map(str::to_string))
        .expect("the step printed sortie's pid");
    let pid: i32 = pid.parse().unwrap();
    // SAFETY: kill(2) with a pid and a signal number.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let rest = rest.join("\n");
    assert!(
        rest.contains("sortie: stopping… (Ctrl-C again to kill)"),
        "{rest:?}"
    );
    assert!(rest.contains("--- job long interrupted"), "{rest:?}");
    child.wait().unwrap();
}

/// Every example spec is one `exec --check` accepts (an example per step
/// kind, in YAML), and the ones that need nothing of the host run.
#[test]
fn every_fixture_passes_check_and_the_examples_run() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut checked = 0;
    for dir in [fixtures.clone(), fixtures.join("steps")] {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if !path.is_file() {
                continue;
            }
            let out = run(sortie().args(["exec", "--check"]).arg(&path), code::OK);
            assert!(stdout(&out).contains(": ok: job "), "{}", stdout(&out));
            checked += 1;
        }
    }
    assert!(checked >= 9, "{checked}");
    let out = run(
        sortie()
            .args(["exec"])
            .arg(fixtures.join("steps/script.yaml")),
        code::OK,
    );
    assert!(stdout(&out).contains("option n is 5"), "{}", stdout(&out));
    let out = run(
        sortie()
            .args(["exec"])
            .arg(fixtures.join("steps/shell.yaml")),
        code::OK,
    );
    assert!(stdout(&out).contains("hello world"), "{}", stdout(&out));
}

/// `exec --check` refuses a script URL the run would refuse to fetch (plain
/// http to another host), and passes one the run would fetch.
#[test]
fn a_check_refuses_the_script_urls_the_run_refuses() {
    let dir = TempDir::new().unwrap();
    let job = |url: &str| {
        let path = dir.path().join("url.json");
        let spec = serde_json::json!({"id": "url", "steps": [{"scripturl": url}]});
        std::fs::write(&path, spec.to_string()).unwrap();
        path
    };
    let plain = job("http://192.0.2.1/deploy.sh");
    let out = run(sortie().args(["exec", "--check"]).arg(&plain), code::CONFIG);
    assert!(
        stderr(&out).contains("step 0: the script URL") && stderr(&out).contains("plain http"),
        "{}",
        stderr(&out)
    );
    run(
        sortie()
            .args(["exec", "--check", "--allow-insecure-http"])
            .arg(&plain),
        code::OK,
    );
    for url in [
        "https://192.0.2.1/deploy.sh",
        "http://127.0.0.1:9/deploy.sh",
    ] {
        run(sortie().args(["exec", "--check"]).arg(job(url)), code::OK);
    }
}

/// A spec written by hand is held to job spec v1's fields, with the field
/// probably meant; a control plane's unknown fields are ignored and said once;
/// an option given to a job that does not use it is a warning.
#[test]
fn hand_written_specs_refuse_unknown_fields_and_claims_log_them() {
    let dir = TempDir::new().unwrap();
    let typo = dir.path().join("typo.json");
    std::fs::write(
        &typo,
        r#"{"id": "typo", "timout": "5s", "steps": [{"shell": "true"}]}"#,
    )
    .unwrap();
    for args in [vec!["exec"], vec!["exec", "--check"]] {
        let out = run(sortie().args(&args).arg(&typo), code::CONFIG);
        assert!(
            stderr(&out).contains(r#"timout: not a field here (did you mean "timeout"?)"#),
            "{}",
            stderr(&out)
        );
    }
    let spool = dir.path().join("spool");
    run(sortie().args(["spool", "init"]).arg(&spool), code::OK);
    std::fs::copy(&typo, spool.join("pending/typo.json")).unwrap();
    run(&mut spool_poll(&spool, &dir.path().join("state")), code::OK);
    let why = std::fs::read_to_string(spool.join("failed/typo.json.error")).unwrap();
    assert!(why.contains("did you mean"), "{why}");

    let cp = ControlPlane::start();
    let id = cp.enqueue(serde_json::json!({"id": "newer", "colour": "red",
        "steps": [{"shell": "true", "colour": "blue"}]}));
    let out = run(&mut cp.poll(&dir.path().join("state2")), code::OK);
    assert_done(&cp.job(&id), "succeeded");
    let err = stderr(&out);
    assert!(
        err.contains("ignored: colour") && err.contains("ignored: steps[0].colour"),
        "{err}"
    );

    let used = dir.path().join("used.json");
    std::fs::write(
        &used,
        r#"{"id": "used", "steps": [{"shell": "echo ${option.who}"}]}"#,
    )
    .unwrap();
    let out = run(
        sortie()
            .args(["exec", "-o", "who=a", "-o", "wh=b"])
            .arg(&used),
        code::OK,
    );
    let err = stderr(&out);
    assert!(
        err.contains("-o wh: the job does not use") && !err.contains("-o who:"),
        "{err}"
    );
}

/// The control plane's enqueue refuses a spec with a field job spec v1 does
/// not have, naming it and the field probably meant.
#[test]
fn the_control_plane_refuses_an_enqueued_spec_with_an_unknown_field() {
    let cp = ControlPlane::start();
    let post = |spec: serde_json::Value| admin_post(&cp, serde_json::json!({ "spec": spec }));
    let (status, body) = post(serde_json::json!({"id": "a", "steps": [{"shel": "true"}]}));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains(r#"did you mean \"shell\""#), "{body}");
    let (status, body) = post(serde_json::json!({"id": "b", "steps": [{"shell": "true"}]}));
    assert_eq!(status, 201, "{body}");
}

/// `--echo-output` copies a job's output to stderr, each line labelled and
/// masked; with `--log-format json` every line of stderr is a JSON object,
/// a usage error too.
#[test]
fn echoed_output_is_labelled_masked_and_json_when_asked() {
    let dir = TempDir::new().unwrap();
    let spool = dir.path().join("spool");
    run(sortie().args(["spool", "init"]).arg(&spool), code::OK);
    let spec = serde_json::json!({"id": "echo", "secrets": {"PW": "env:PW"},
        "steps": [{"shell": "echo hello; echo \"pw=$PW\"; printf partial"}]});
    for (n, json) in [(0, false), (1, true)] {
        let id = format!("echo{n}");
        let mut spec = spec.clone();
        spec["id"] = id.clone().into();
        std::fs::write(spool.join(format!("pending/{id}.json")), spec.to_string()).unwrap();
        let mut cmd = spool_poll(&spool, &dir.path().join("state"));
        cmd.arg("--echo-output")
            .env("SORTIE_SECRET_PW", "hunter2-secret");
        if json {
            cmd.env("SORTIE_LOG_FORMAT", "json");
        }
        let err = stderr(&run(&mut cmd, code::OK));
        assert!(!err.contains("hunter2-secret"), "{err}");
        if json {
            let lines: Vec<serde_json::Value> = err
                .lines()
                .map(|l| serde_json::from_str(l).expect("every line is JSON"))
                .collect();
            assert!(lines
                .iter()
                .any(|l| l["fields"]["message"] == "hello" && l["fields"]["job"] == id.as_str()));
        } else {
            assert!(
                err.contains(&format!("[job {id} step 0 stdout] hello\n")),
                "{err}"
            );
            assert!(
                err.contains(&format!("[job {id} step 0 stdout] partial\n")),
                "{err}"
            );
            assert!(
                err.contains(&format!("[job {id} step 0 stdout] pw=")),
                "{err}"
            );
        }
    }
    let out = run(
        sortie().args(["--log-format", "json", "no-such-command"]),
        code::USAGE,
    );
    let line: serde_json::Value = serde_json::from_str(stderr(&out).trim()).unwrap();
    assert_eq!(line["level"], "ERROR");
}

/// systemd's `StateDirectory=` with `DynamicUser=` makes the state dir a
/// symlink (`/var/lib/sortie -> private/sortie`): a link root or this user
/// made is followed; one another user made is still refused.
#[test]
fn a_state_dir_behind_a_trusted_symlink_is_used_and_a_planted_one_refused() {
    let dir = TempDir::new().unwrap();
    let spool = dir.path().join("spool");
    run(sortie().args(["spool", "init"]).arg(&spool), code::OK);
    let target = dir.path().join("private-state");
    std::fs::create_dir(&target).unwrap();
    let link = dir.path().join("state");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    run(&mut spool_poll(&spool, &link), code::OK);
    assert!(target.join("last-shot.json").exists());
    std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
    run(&mut spool_poll(&spool, &link), code::CONFIG);
}

/// The reference control plane: `--tls-san` names in the generated
/// certificate (a runner reaches it by another name), `?status=` filters and
/// pages the job list, the runner that ran a job stays on it, times are
/// RFC 3339.
#[test]
fn the_control_plane_names_filters_and_remembers_who_ran_a_job() {
    use sortie_control_plane::{Config, Server, Tls};
    let dir = TempDir::new().unwrap();
    let state = dir.path().join("cp");
    let server = Server::start(Config {
        listen: "127.0.0.2:0".parse().unwrap(),
        state_dir: state.clone(),
        database: Default::default(),
        tls: Tls::Generate {
            names: vec!["127.0.0.2".into()],
        },
        client_ca: None,
        runner_token: Some(RUNNER_TOKEN.into()),
        admin_token: ADMIN_TOKEN.into(),
        log_multiline: true,
        timing: Default::default(),
    })
    .unwrap();
    let port = server
        .url()
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let url = format!("https://127.0.0.2:{port}/");
    for id in ["ok-1", "ok-2", "bad-1"] {
        let shell = if id.starts_with("bad") {
            "false"
        } else {
            "true"
        };
        server
            .store()
            .enqueue(
                "admin:test",
                serde_json::json!({"id": id, "steps": [{"shell": shell}]}),
                vec![],
                None,
            )
            .unwrap();
    }
    let token = dir.path().join("token");
    std::fs::write(&token, RUNNER_TOKEN).unwrap();
    let ca = state.join("tls/ca.pem");
    run(
        sortie()
            .args([
                "poll",
                "--server",
                &url,
                "--max-jobs",
                "3",
                "--runner-id",
                "east-1",
            ])
            .arg("--ca-file")
            .arg(&ca)
            .arg("--token-file")
            .arg(&token)
            .arg("--state-dir")
            .arg(dir.path().join("state")),
        code::OK,
    );
    let agent = trusting(&ca);
    let list = |query: &str| -> serde_json::Value {
        agent
            .get(format!("{url}admin/jobs{query}"))
            .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap()
    };
    assert_eq!(list("?status=succeeded")["total"], 2);
    assert_eq!(list("?status=failed")["total"], 1);
    assert_eq!(list("?status=queued")["total"], 0);
    let page = list("?status=done&limit=1&offset=1");
    assert_eq!(
        (
            page["total"].as_u64(),
            page["jobs"].as_array().unwrap().len()
        ),
        (Some(3), 1)
    );
    let job = &page["jobs"][0];
    assert_eq!(job["ran_by"], "east-1", "{job}");
    let done = job["completion"]["finished_at"].as_str().unwrap();
    assert!(humantime::parse_rfc3339(done).is_ok(), "{done}");

    // Another --tls-san later keeps the CA: runners holding ca.pem still trust it.
    let ca_before = std::fs::read(&ca).unwrap();
    drop(server);
    let server = Server::start(Config {
        listen: "127.0.0.2:0".parse().unwrap(),
        state_dir: state.clone(),
        database: Default::default(),
        tls: Tls::Generate {
            names: vec!["127.0.0.2".into(), "runners.example.internal".into()],
        },
        client_ca: None,
        runner_token: Some(RUNNER_TOKEN.into()),
        admin_token: ADMIN_TOKEN.into(),
        log_multiline: true,
        timing: Default::default(),
    })
    .unwrap();
    assert_eq!(std::fs::read(&ca).unwrap(), ca_before, "the CA is kept");
    let port = server
        .url()
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    run(
        sortie()
            .args(["poll", "--server", &format!("https://127.0.0.2:{port}/")])
            .arg("--ca-file")
            .arg(&ca)
            .arg("--token-file")
            .arg(&token)
            .arg("--state-dir")
            .arg(dir.path().join("state")),
        code::OK,
    );
}

/// With `--run-as`, a script step's file, `$TMPDIR` and `$SORTIE_OUTPUT` are
/// the run-as user's to use (its workspace is in the state dir, which sortie
/// makes passable for it).
#[test]
fn a_script_step_run_as_another_user_has_a_workspace_it_can_use() {
    let dir = TempDir::new().unwrap();
    let spool = dir.path().join("spool");
    run(sortie().args(["spool", "init"]).arg(&spool), code::OK);
    std::fs::write(
        spool.join("pending/ra.json"),
        serde_json::json!({"id": "ra", "steps": [{"script":
            "#!/bin/sh\nid -un\necho x > \"$TMPDIR/f\"\necho who=$(id -un) > \"$SORTIE_OUTPUT\""}]})
        .to_string(),
    )
    .unwrap();
    run(
        spool_poll(&spool, &dir.path().join("state")).args(["--run-as", "nobody"]),
        code::OK,
    );
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(spool.join("done/ra/result.json")).unwrap()).unwrap();
    assert_eq!(result["status"], "succeeded", "{result}");
    assert_eq!(result["data"]["who"], "nobody", "{result}");
}

/// A step silent for a few seconds gets a line counting its time, on a
/// terminal only, cleared before its next output.
#[test]
fn a_silent_step_shows_its_elapsed_time_on_a_terminal_only() {
    let dir = TempDir::new().unwrap();
    std::fs::write(
        dir.path().join("job.json"),
        serde_json::json!({"id": "quiet", "steps": [{"shell": "sleep 4.5; echo done"}]})
            .to_string(),
    )
    .unwrap();
    let out = on_terminal(dir.path(), "job.json", true)
        .wait_with_output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("… step 0 running for "), "{text:?}");
    assert!(
        text.contains("\r\x1b[Kdone"),
        "cleared before the output: {text:?}"
    );
    let piped = run(
        sortie().arg("exec").arg(dir.path().join("job.json")),
        code::OK,
    );
    assert!(
        !stdout(&piped).contains("running for"),
        "{}",
        stdout(&piped)
    );
}

/// Copy the tree at `from` to `to`, `{ROOT}` in each file replaced by `root`,
/// directories 0700 and files 0600 (as sortie makes them).
fn instantiate(from: &Path, to: &Path, root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o700)).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            instantiate(&entry.path(), &target, root);
        } else {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            std::fs::write(&target, text.replace("{ROOT}", root.to_str().unwrap())).unwrap();
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
}

/// Upgrades: the journal is versioned (`"format": 1`), and a state dir that
/// sortie 0.1.0 left when its shot was killed mid-job (fixtures/state-format-1:
/// no `preparing` marker, which 0.1.0 did not write) is finished by this
/// version: the job is reported `lost`, with the log it had written.
#[test]
fn a_state_dir_left_by_the_previous_release_is_recovered() {
    let dir = TempDir::new().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/state-format-1");
    instantiate(&fixture, dir.path(), dir.path());
    let spool = dir.path().join("spool");
    let out = run(&mut spool_poll(&spool, &dir.path().join("state")), code::OK);
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(spool.join("done/upgrade-1/result.json")).unwrap())
            .unwrap();
    assert_eq!(result["status"], "lost", "{result} {}", stderr(&out));
    let log = std::fs::read(spool.join("done/upgrade-1/log.ndjson")).unwrap();
    assert!(output_text(&events(&log), "stdout").contains("before"));
    assert!(
        !dir.path().join("state/jobs/upgrade-1").exists(),
        "finished"
    );
}

/// `sortie check` proves the credentials a shot would use, `--token-from` included.
#[test]
fn check_resolves_the_token_from_its_provider() {
    let cp = ControlPlane::start();
    let dir = TempDir::new().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("runner-token"), RUNNER_TOKEN).unwrap();
    let check = |reference: &str| {
        let mut cmd = sortie();
        cmd.args(["check", "--server", &cp.url(), "--token-from", reference])
            .arg("--ca-file")
            .arg(&cp.pki.ca_file)
            .arg("--secrets-dir")
            .arg(&secrets)
            .arg("--state-dir")
            .arg(dir.path().join("state"));
        cmd
    };
    let out = run(&mut check("file:runner-token"), code::OK);
    assert!(
        stdout(&out).contains("credentials accepted"),
        "{}",
        stdout(&out)
    );
    let out = run(&mut check("file:missing"), code::CONFIG);
    assert!(stderr(&out).contains("--token-from"), "{}", stderr(&out));
}

/// A secure option given to `exec` with `-o` is overwritten in sortie's
/// command line (what `ps` and /proc/PID/cmdline show) before any step runs.
#[test]
fn a_secure_option_given_with_dash_o_leaves_the_command_line() {
    use std::io::BufRead;
    let dir = TempDir::new().unwrap();
    let job = dir.path().join("job.yaml");
    std::fs::write(
        &job,
        "- name: sec\n  options:\n  - name: pw\n    secure: true\n  sequence:\n    commands:\n    - exec: echo started; sleep 2\n",
    )
    .unwrap();
    let mut child = sortie()
        .arg("exec")
        .arg(&job)
        .args(["-o", "pw=Sup3rS3cret-value"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.is_ok_and(|l| l.contains("started"))));
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(!cmdline.contains("Sup3rS3cret-value"), "{cmdline}");
    assert!(cmdline.contains("pw=*"), "{cmdline}");
    assert!(child.wait().unwrap().success());
}

/// What the second probe of this work found, each now held: a shot whose
/// stderr cannot be written still runs its jobs; `sortie status` shows a shot
/// that failed before its jobs; --max-runtime within --deadline-reserve
/// claims nothing; a misspelt enqueue field is refused and the documented
/// Rundeck form accepted.
#[test]
fn an_unlucky_operator_s_mistakes_are_caught() {
    let dir = TempDir::new().unwrap();
    let spool = dir.path().join("spool");
    run(sortie().args(["spool", "init"]).arg(&spool), code::OK);
    let state = dir.path().join("state");
    for id in ["full-1", "full-2"] {
        std::fs::write(
            spool.join(format!("pending/{id}.json")),
            serde_json::json!({"id": id, "steps": [{"shell": "echo hi"}]}).to_string(),
        )
        .unwrap();
    }
    let devfull = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = spool_poll(&spool, &state)
        .args(["--max-jobs", "2", "-v"])
        .stderr(devfull)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "an unwritable stderr stops nothing"
    );
    assert!(spool.join("done/full-2/result.json").exists());

    let out = run(
        sortie()
            .args(["poll", "--server", "https://127.0.0.1:1/", "--state-dir"])
            .arg(&state)
            .args(["--connect-timeout", "1s", "--request-timeout", "1s"])
            .args(["--max-runtime", "3s", "--deadline-reserve", "1s"]),
        code::UNREACHABLE,
    );
    let status = stdout(&run(
        sortie().args(["status", "--state-dir"]).arg(&state),
        code::OK,
    ));
    assert!(
        status.contains("exit 69 (control plane unreachable)"),
        "{status}\n{}",
        stderr(&out)
    );

    std::fs::write(
        spool.join("pending/late.json"),
        serde_json::json!({"id": "late", "steps": [{"shell": "true"}]}).to_string(),
    )
    .unwrap();
    let out = run(
        spool_poll(&spool, &state).args(["--max-runtime", "2s", "--deadline-reserve", "5s"]),
        code::OK,
    );
    assert!(
        stderr(&out).contains("not claiming work"),
        "{}",
        stderr(&out)
    );
    assert!(
        spool.join("pending/late.json").exists(),
        "left for a shot with time"
    );

    let cp = ControlPlane::start();
    let (status, body) = admin_post(
        &cp,
        serde_json::json!({
        "spec": {"id": "a", "steps": [{"shell": "true"}]}, "runer_id": "east-1"}),
    );
    assert_eq!(status, 400, "{body}");
    let rundeck = "- name: r\n  sequence:\n    commands:\n    - exec: echo hi\n";
    let (status, body) = admin_post(
        &cp,
        serde_json::json!({
        "spec": {"id": "r", "rundeck": rundeck}}),
    );
    assert_eq!(status, 201, "{body}");
}

/// An HTTPS client that trusts the CA in `ca` (statuses are answers, not errors).
fn trusting(ca: &Path) -> ureq::Agent {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let pem = std::fs::read(ca).unwrap();
    let roots = RootCerts::Specific(std::sync::Arc::new(vec![Certificate::from_pem(&pem)
        .unwrap()
        .to_owned()]));
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .build()
        .into()
}

/// `POST admin/jobs` with `body`, over the control plane's TLS.
fn admin_post(cp: &ControlPlane, body: serde_json::Value) -> (u16, String) {
    let mut answer = trusting(&cp.pki.ca_file)
        .post(format!("{}admin/jobs", cp.url()))
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .send_json(body)
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.body_mut().read_to_string().unwrap())
}

/// While a shot runs, `sortie status` says so instead of calling its job
/// "waiting for delivery".
#[test]
fn status_during_a_shot_says_a_shot_is_running() {
    let dir = TempDir::new().unwrap();
    let spool = dir.path().join("spool");
    run(sortie().args(["spool", "init"]).arg(&spool), code::OK);
    std::fs::write(
        spool.join("pending/long.json"),
        r#"{"id": "long", "steps": [{"shell": "sleep 3"}]}"#,
    )
    .unwrap();
    let state = dir.path().join("state");
    let mut shot = spool_poll(&spool, &state).spawn().unwrap();
    let mut seen = String::new();
    wait_for(
        "status to see the running shot",
        std::time::Duration::from_secs(20),
        || {
            seen = stdout(
                &sortie()
                    .args(["status", "--state-dir"])
                    .arg(&state)
                    .output()
                    .unwrap(),
            );
            seen.contains("a shot is running now, with (or delivering for): long")
        },
    );
    assert!(!seen.contains("waiting for delivery"), "{seen}");
    assert!(shot.wait().unwrap().success());
}

/// A command's answer to a full disk or a closed pipe is an I/O failure it
/// reports (74), not a panic that aborts (134, a core dump where those are kept).
#[test]
fn answers_to_a_full_disk_or_a_closed_pipe_fail_with_a_message() {
    let dir = TempDir::new().unwrap();
    let (spool, state) = (dir.path().join("spool"), dir.path().join("state"));
    run(sortie().args(["spool", "init"]).arg(&spool), code::OK);
    run(&mut spool_poll(&spool, &state), code::OK);
    let nodes = dir.path().join("nodes.json");
    std::fs::write(&nodes, r#"{"web1": {"hostname": "10.0.0.1"}}"#).unwrap();
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    for args in [
        vec!["status", "--state-dir", state.to_str().unwrap()],
        vec!["status", "--json", "--state-dir", state.to_str().unwrap()],
        vec!["nodes", "--nodes", nodes.to_str().unwrap()],
        vec!["nodes", "--json", "--nodes", nodes.to_str().unwrap()],
        vec!["spool", "init", dir.path().join("spool2").to_str().unwrap()],
    ] {
        let out = sortie().args(&args).stdout(full()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code::IO.into()), "{args:?}: {err}");
        assert!(
            err.contains("writing to standard output"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // A reader that has gone: the pipe's read end is closed before sortie starts.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = sortie()
        .args(["status", "--state-dir"])
        .arg(&state)
        .stdout(writer)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code::IO.into()), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
