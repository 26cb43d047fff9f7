//! The control plane as users run it: the `sortie-control-plane` binary over
//! real TLS, stopped by signals, killed, restarted, and under many long polls.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::Digest;

#[path = "support/postgres.rs"]
#[allow(dead_code)] // shared with tests/store.rs, which uses the rest of it
mod postgres;

const ADMIN: &str = "admin-token-for-server-tests";
const RUNNER: &str = "runner-token-for-server-tests";

/// A `sortie-control-plane` process with its state in `dir`.
struct Cp {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl Cp {
    fn start(dir: &Path, listen: &str, extra: &[&str]) -> Cp {
        std::fs::write(dir.join("admin-token"), ADMIN).unwrap();
        // A test may have written a runner token of its own.
        if !dir.join("runner-token").exists() {
            std::fs::write(dir.join("runner-token"), RUNNER).unwrap();
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_sortie-control-plane"))
            .arg("--listen")
            .arg(listen)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .arg("--admin-token-file")
            .arg(dir.join("admin-token"))
            .arg("--runner-token-file")
            .arg(dir.join("runner-token"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                let err = std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
                panic!("no address in {line:?}: {err}")
            })
            .trim()
            .to_string();
        Cp {
            child,
            url,
            dir: dir.to_path_buf(),
        }
    }

    fn port(&self) -> u16 {
        self.url
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    fn ca(&self) -> PathBuf {
        self.dir.join("state/tls/ca.pem")
    }

    fn agent(&self) -> ureq::Agent {
        use ureq::tls::{Certificate, RootCerts, TlsConfig};
        let pem = std::fs::read(self.ca()).unwrap();
        let roots = RootCerts::Specific(Arc::new(vec![Certificate::from_pem(&pem)
            .unwrap()
            .to_owned()]));
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build()
            .into()
    }

    /// curl, trusting the server's CA, discarding the body; `args` say the rest.
    fn curl(&self, args: &[&str]) -> std::process::Output {
        Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "--cacert"])
            .arg(self.ca())
            .args(args)
            .output()
            .unwrap()
    }

    /// The admin command line against this server, with the admin token in
    /// `token_file` (in the test's dir); its exit code, stdout and stderr.
    fn cli(&self, token_file: &str, args: &[&str]) -> (Option<i32>, String, String) {
        let out = self.admin_command(token_file, args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let token = std::fs::read_to_string(self.dir.join(token_file)).unwrap();
        assert!(
            !text.contains(token.trim()) && !err.contains(token.trim()),
            "the admin token is printed"
        );
        (out.status.code(), text, err)
    }

    fn admin_command(&self, token_file: &str, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sortie-control-plane"));
        command
            .args(args)
            .arg("--server")
            .arg(&self.url)
            .arg("--ca-file")
            .arg(self.ca())
            .arg("--admin-token-file")
            .arg(self.dir.join(token_file));
        command
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Wait for the process to exit; its exit code.
    fn exit_code(&mut self, limit: Duration) -> Option<i32> {
        let until = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < until, "the control plane did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Cp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Call `path` with a JSON body (or none); the status and the parsed answer.
fn call(
    agent: &ureq::Agent,
    base: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Result<(u16, Value), ureq::Error> {
    let request = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json");
    let mut answer = match body {
        Some(body) => agent.run(request.body(body.to_string()).unwrap())?,
        None => agent.run(request.body(()).unwrap())?,
    };
    let status = answer.status().as_u16();
    let text = answer.body_mut().read_to_string()?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// An error answer to a request with a body, perhaps sent before the body
/// was read, ends an HTTP/1.1 connection, and says so: the client sends its
/// next request on a new one instead of into a closing one (which it would
/// see as "peer disconnected").
#[test]
fn an_error_answer_to_a_request_with_a_body_says_the_connection_closes() {
    let dir = tempfile::tempdir().unwrap();
    let cp = Cp::start(dir.path(), "127.0.0.1:0", &[]);
    let agent = cp.agent();
    for (path, token, status) in [
        ("v1/claim", "wrong", 401),
        ("v1/claim", "srt_unknown", 401),
        ("admin/jobs", "wrong", 401),
        ("v1/nowhere", RUNNER, 404),
    ] {
        let request = ureq::http::Request::builder()
            .method("POST")
            .uri(format!("{}{path}", cp.url))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(claim_body("r", "c1", 0).to_string())
            .unwrap();
        let answer = agent.run(request).unwrap();
        assert_eq!(answer.status(), status, "{path} {token}");
        let connection = answer
            .headers()
            .get("connection")
            .map(|v| v.to_str().unwrap());
        assert_eq!(connection, Some("close"), "{path} {token}");
        let (status, _) = claim(&agent, &cp, "c2");
        assert_eq!(status, 204, "the next request, on a new connection");
    }
    // An accepted request keeps its connection, and so does a refused one
    // without a body.
    for (token, status) in [(ADMIN, 200), ("wrong", 401)] {
        let request = ureq::http::Request::builder()
            .method("GET")
            .uri(format!("{}admin/jobs", cp.url))
            .header("authorization", format!("Bearer {token}"))
            .body(())
            .unwrap();
        let answer = agent.run(request).unwrap();
        assert_eq!(answer.status(), status);
        assert_eq!(answer.headers().get("connection"), None, "{status}");
    }
}

/// Runner `r`'s claim `claim_id`, with the shared runner token, not waiting.
fn claim(agent: &ureq::Agent, cp: &Cp, claim_id: &str) -> (u16, Value) {
    let body = claim_body("r", claim_id, 0);
    call(agent, &cp.url, "POST", "v1/claim", RUNNER, Some(body)).unwrap()
}

fn claim_body(runner: &str, claim_id: &str, wait: u64) -> Value {
    json!({ "claim_id": claim_id, "runner": { "id": runner }, "max_jobs": 1, "wait_seconds": wait })
}

fn enqueue(cp: &Cp, agent: &ureq::Agent, id: &str) {
    let spec = json!({ "spec": { "id": id, "steps": [{ "shell": "true" }] } });
    let (status, body) = call(agent, &cp.url, "POST", "admin/jobs", ADMIN, Some(spec)).unwrap();
    assert_eq!(status, 201, "{body}");
}

/// Established TCP connections to `port` on loopback, from /proc/net/tcp.
fn connections_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let local = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[1].ends_with(&local) && f[3] == "01"
        })
        .count()
}

fn threads_of(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM: a long poll in flight is answered (204), not cut, and the process exits 0.
#[test]
fn sigterm_answers_the_requests_in_flight_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut cp = Cp::start(dir.path(), "127.0.0.1:0", &[]);
    let agent = cp.agent();
    let url = cp.url.clone();
    let poll = std::thread::spawn(move || {
        call(
            &agent,
            &url,
            "POST",
            "v1/claim",
            RUNNER,
            Some(claim_body("r", "c", 50)),
        )
    });
    wait_for(
        "the long poll's connection",
        Duration::from_secs(10),
        || connections_to(cp.port()) >= 1,
    );
    std::thread::sleep(Duration::from_millis(300));
    cp.signal("TERM");
    let (status, _) = poll.join().unwrap().expect("the long poll is answered");
    assert_eq!(status, 204);
    assert_eq!(cp.exit_code(Duration::from_secs(20)), Some(0));
    let log = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert!(log.contains("stopping"), "{log}");
}

/// 300 runners wait in long polls on one process without a thread each; when
/// 300 jobs arrive each runner gets one, and no job goes to two runners.
#[test]
fn hundreds_of_long_polls_wait_without_a_thread_each() {
    const RUNNERS: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let cp = Cp::start(dir.path(), "127.0.0.1:0", &[]);
    let pollers: Vec<_> = (0..RUNNERS)
        .map(|i| {
            let agent = cp.agent();
            let url = cp.url.clone();
            std::thread::spawn(move || {
                let body = claim_body(&format!("r{i}"), &format!("c{i}"), 60);
                let (status, answer) = call(&agent, &url, "POST", "v1/claim", RUNNER, Some(body))
                    .expect("the claim is answered");
                assert_eq!(status, 200, "{answer}");
                answer["jobs"][0]["id"].as_str().unwrap().to_string()
            })
        })
        .collect();
    wait_for("every runner's connection", Duration::from_secs(60), || {
        connections_to(cp.port()) >= RUNNERS
    });
    let threads = threads_of(cp.child.id());
    assert!(
        threads < 40,
        "{threads} threads for {RUNNERS} waiting runners"
    );
    let agent = cp.agent();
    for i in 0..RUNNERS {
        enqueue(&cp, &agent, &format!("job-{i}"));
    }
    let mut got: Vec<String> = pollers.into_iter().map(|p| p.join().unwrap()).collect();
    got.sort();
    got.dedup();
    assert_eq!(got.len(), RUNNERS, "every job went to exactly one runner");
    eprintln!("{RUNNERS} long polls held by {threads} threads");
}

/// HTTP/2 by ALPN for clients that offer it, HTTP/1.1 for the rest.
#[test]
fn http2_and_http1_are_both_served() {
    let dir = tempfile::tempdir().unwrap();
    let cp = Cp::start(dir.path(), "127.0.0.1:0", &[]);
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let out = cp.curl(&[
            "-w",
            "%{http_version} %{http_code}",
            flag,
            "-H",
            &format!("authorization: Bearer {ADMIN}"),
            &format!("{}admin/jobs", cp.url),
        ]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{version} 200"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `GET /metrics` (admin token): jobs by phase and status, jobs handed out,
/// leases the sweeper ended, request latency by route (not by raw path).
#[test]
fn metrics_count_jobs_claims_expiries_and_request_latency() {
    let dir = tempfile::tempdir().unwrap();
    let cp = Cp::start(dir.path(), "127.0.0.1:0", &["--ack-window", "1s"]);
    let agent = cp.agent();
    for id in ["m1", "m2", "m3"] {
        enqueue(&cp, &agent, id);
    }
    let (status, _) = call(
        &agent,
        &cp.url,
        "POST",
        "v1/claim",
        RUNNER,
        Some(claim_body("r", "c", 0)),
    )
    .unwrap();
    assert_eq!(status, 200);
    let scrape = || {
        let mut answer = agent
            .get(format!("{}metrics", cp.url))
            .header("authorization", format!("Bearer {ADMIN}"))
            .call()
            .unwrap();
        assert_eq!(answer.status(), 200);
        answer.body_mut().read_to_string().unwrap()
    };
    // The claim was never started: after the ack window the sweeper requeues it.
    wait_for("the requeue", Duration::from_secs(10), || {
        scrape().contains("sortie_cp_lease_expiries_total{outcome=\"requeued\"} 1")
    });
    let text = scrape();
    for expected in [
        "sortie_cp_jobs_claimed_total 1\n",
        "sortie_cp_jobs{phase=\"queued\",status=\"queued\"} 3\n",
        "sortie_cp_request_duration_seconds_count{method=\"POST\",route=\"/v1/claim\",status=\"200\"} 1\n",
        "sortie_cp_request_duration_seconds_count{method=\"POST\",route=\"/admin/jobs\",status=\"201\"} 3\n",
    ] {
        assert!(text.contains(expected), "{expected} in:\n{text}");
    }
    let (status, _) = call(&agent, &cp.url, "GET", "metrics", RUNNER, None).unwrap();
    assert_eq!(status, 401, "a runner's token does not read the metrics");
    // Made-up methods and paths, without a token, do not grow the metrics.
    for i in 0..20 {
        let out = cp.curl(&[
            "-w",
            "%{http_code}",
            "-X",
            &format!("M{i}XYZ"),
            &format!("{}nope/{i}", cp.url),
        ]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "404");
    }
    let text = scrape();
    assert!(!text.contains("M1XYZ") && !text.contains("nope/"), "{text}");
    assert!(
        text.contains("method=\"other\",route=\"unmatched\",status=\"404\"} 20\n"),
        "{text}"
    );
}

/// Settings that would let anyone in, or under which no job could run, stop
/// the server before it listens, each with a message that names the setting.
#[test]
fn unsafe_or_unworkable_settings_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty"), " \n").unwrap();
    std::fs::write(dir.path().join("token"), "t0ken").unwrap();
    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["--admin-token-file", "empty"], "is empty"),
        (&["--runner-token-file", "empty"], "is empty"),
        (&["--ack-window", "0s"], "--ack-window"),
        (&["--lease", "3s"], "--lease"),
        (&["--state-dir", "shared"], "writable by every user"),
        (
            &[
                "--database",
                "host=db.example.invalid user=sortie dbname=sortie",
            ],
            "--database-ca-file",
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        if !args.contains(&"--admin-token-file") {
            all.extend(["--admin-token-file", "token"]);
        }
        if !args.contains(&"--state-dir") {
            all.extend(["--state-dir", "state"]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_sortie-control-plane"))
            .args(&all)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
    }
}

/// What an admin enqueues is checked against job spec v1 now, not when it
/// runs: each problem is named; a lower-case `bearer` scheme is a bearer token.
#[test]
fn malformed_specs_are_refused_at_enqueue_naming_each_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cp = Cp::start(dir.path(), "127.0.0.1:0", &[]);
    let agent = cp.agent();
    let cases = [
        (json!({ "id": "a" }), "steps is required"),
        (json!({ "id": "a", "steps": "x" }), "steps: must be array"),
        (json!({ "id": "a", "steps": [{}] }), "needs exactly one of"),
        (
            json!({ "id": "a", "steps": [{ "shell": "x", "exec": ["y"] }] }),
            "needs exactly one of",
        ),
        (
            json!({ "id": "a", "timeout": "forever", "steps": [{ "shell": "x" }] }),
            "timeout",
        ),
        (
            json!({ "id": "a", "options": { "n": 1 }, "steps": [{ "shell": "x" }] }),
            "options.n: must be string",
        ),
    ];
    for (spec, expected) in cases {
        let (status, answer) = call(
            &agent,
            &cp.url,
            "POST",
            "admin/jobs",
            ADMIN,
            Some(json!({ "spec": spec })),
        )
        .unwrap();
        assert_eq!(status, 400, "{spec}: {answer}");
        assert!(
            answer["detail"].as_str().unwrap().contains(expected),
            "{answer}"
        );
    }
    let request = ureq::http::Request::builder()
        .method("GET")
        .uri(format!("{}admin/jobs", cp.url))
        .header("authorization", format!("bearer {ADMIN}"))
        .body(())
        .unwrap();
    assert_eq!(agent.run(request).unwrap().status(), 200);
}

/// Registered runners over the admin API: the token is shown once, the list
/// never shows it, the runner claims only what its assigned tags allow, a
/// rotation without grace and a revocation take effect on the next request.
#[test]
fn runners_are_registered_rotated_and_revoked_over_the_admin_api() {
    let dir = tempfile::tempdir().unwrap();
    let cp = Cp::start(dir.path(), "127.0.0.1:0", &["--stale-after", "1s"]);
    let agent = cp.agent();
    let (status, made) = call(
        &agent,
        &cp.url,
        "POST",
        "admin/runners",
        ADMIN,
        Some(json!({ "name": "edge-1", "tags": ["eu"] })),
    )
    .unwrap();
    assert_eq!(status, 201, "{made}");
    let token = made["token"].as_str().unwrap().to_string();
    let (_, list) = call(&agent, &cp.url, "GET", "admin/runners", ADMIN, None).unwrap();
    assert_eq!(list["runners"][0]["name"], "edge-1");
    assert_eq!(list["runners"][0]["stale"], false, "just registered");
    let stale = || {
        let (_, list) = call(&agent, &cp.url, "GET", "admin/runners", ADMIN, None).unwrap();
        list["runners"][0]["stale"] == true
    };
    wait_for("the runner to go stale", Duration::from_secs(10), stale);
    assert!(
        !list.to_string().contains(&token) && !list.to_string().contains("hash"),
        "{list}"
    );

    for (id, tags) in [("us-job", json!(["us"])), ("eu-job", json!(["eu"]))] {
        let spec = json!({ "spec": { "id": id, "steps": [{ "shell": "true" }] }, "tags": tags });
        let (status, _) = call(&agent, &cp.url, "POST", "admin/jobs", ADMIN, Some(spec)).unwrap();
        assert_eq!(status, 201);
    }
    let claim_with = |token: &str, ask: &Value| {
        call(
            &agent,
            &cp.url,
            "POST",
            "v1/claim",
            token,
            Some(ask.clone()),
        )
        .unwrap()
    };
    let mut ask = claim_body("someone-else", "c1", 0);
    ask["runner"]["tags"] = json!(["us", "eu"]);
    let (status, got) = claim_with(&token, &ask);
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["jobs"].as_array().unwrap().len(), 1, "{got}");
    assert_eq!(got["jobs"][0]["id"], "eu-job");
    assert!(!stale(), "a claim is a sign of life");
    ask["claim_id"] = "c2".into();
    let (status, _) = claim_with(&token, &ask);
    assert_eq!(
        status, 204,
        "the us job is not for edge-1, whatever it asks"
    );

    let (status, rotated) = call(
        &agent,
        &cp.url,
        "POST",
        "admin/runners/edge-1/rotate",
        ADMIN,
        Some(json!({ "grace": "0s" })),
    )
    .unwrap();
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["token"].as_str().unwrap().to_string();
    ask["claim_id"] = "c3".into();
    let (status, _) = claim_with(&token, &ask);
    assert_eq!(status, 401, "the old token, without grace");
    let (status, _) = claim_with(&new, &ask);
    assert_eq!(status, 204);
    let revoke = || {
        call(
            &agent,
            &cp.url,
            "DELETE",
            "admin/runners/edge-1",
            ADMIN,
            None,
        )
        .unwrap()
        .0
    };
    assert_eq!(revoke(), 200);
    let (status, _) = claim_with(&new, &ask);
    assert_eq!(status, 401, "revoked, on the next request");
    assert_eq!(revoke(), 404);
}

/// The admin command line against a running server: a runner added (its
/// token printed once), listed, revoked; executions listed, shown, their log
/// rendered and raw; a refusal said with its reason, the admin token never
/// printed.
#[test]
fn the_admin_command_line_manages_runners_and_executions() {
    let dir = tempfile::tempdir().unwrap();
    let cp = Cp::start(dir.path(), "127.0.0.1:0", &[]);
    let cli = |args: &[&str]| cp.cli("admin-token", args);
    let (code, made, err) = cli(&["runner", "add", "edge-1", "--tags", "a,b", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let made: Value = serde_json::from_str(&made).unwrap();
    assert!(made["token"].as_str().unwrap().starts_with("srt_"));
    let (_, list, _) = cli(&["runner", "list"]);
    assert!(list.starts_with("NAME"), "{list}");
    assert!(list.contains("edge-1") && list.contains("a,b"), "{list}");
    assert!(!list.contains("srt_"), "{list}");

    let agent = cp.agent();
    enqueue(&cp, &agent, "cli-job");
    let done = drain_one(&agent, &cp.url, "r", 0);
    assert_eq!(done.as_deref(), Some("cli-job"));
    let (_, execs, _) = cli(&["exec", "list"]);
    assert!(
        execs.contains("cli-job") && execs.contains("succeeded"),
        "{execs}"
    );
    let (_, log, _) = cli(&["exec", "log", "cli-job"]);
    assert_eq!(log, "cli-job attempt 1 first\ncli-job second\n");
    let (_, raw, _) = cli(&["exec", "log", "cli-job", "--json"]);
    assert_eq!(raw.lines().count(), 2);
    assert!(
        raw.lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "{raw}"
    );
    let (_, shown, _) = cli(&["exec", "show", "cli-job"]);
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["completion"]["status"], "succeeded");

    let (code, _, err) = cli(&["exec", "cancel", "no-such-job"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("404") && err.contains("no such job"), "{err}");
    let (code, _, _) = cli(&["runner", "revoke", "edge-1"]);
    assert_eq!(code, Some(0));
    let (_, empty, _) = cli(&["runner", "list", "--json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&empty).unwrap()["runners"],
        json!([])
    );
    std::fs::write(dir.path().join("admin-token"), "wrong-token").unwrap();
    let (code, _, err) = cli(&["runner", "list"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("401") && !err.contains("wrong-token"), "{err}");
}

/// A team's first day with the command line (README): an admin of its own, a
/// registered runner, job definitions loaded (one a Rundeck job file named by
/// `spec_file`), a run whose log `run --follow` prints while the job runs and
/// whose result is its exit code, the audit log of it all; refusals exit 2
/// with the reason.
#[test]
fn a_first_day_with_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let cp = Cp::start(dir.path(), "127.0.0.1:0", &[]);
    let (code, made, err) = cp.cli("admin-token", &["admin", "add", "alice", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let alice: Value = serde_json::from_str(&made).unwrap();
    std::fs::write(dir.path().join("alice"), alice["token"].as_str().unwrap()).unwrap();
    let cli = |args: &[&str]| cp.cli("alice", args);
    let (_, made, _) = cli(&["runner", "add", "edge-1", "--tags", "linux", "--json"]);
    let edge: Value = serde_json::from_str(&made).unwrap();
    let edge_token = edge["token"].as_str().unwrap().to_string();

    // The README's definitions: `hello`, whose failure starts `restart`, a
    // Rundeck job named by spec_file.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/definitions");
    let hello_file = fixtures.join("hello.json");
    let restart_file = fixtures.join("restart.json");
    let rundeck = std::fs::read_to_string(fixtures.join("restart.yaml")).unwrap();
    let (code, loaded, err) = cli(&[
        "job",
        "load",
        hello_file.to_str().unwrap(),
        restart_file.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        loaded.contains("hello version 1") && loaded.contains("restart version 1"),
        "{loaded}"
    );
    let (_, list, _) = cli(&["job", "list"]);
    assert!(
        list.starts_with("NAME") && list.contains("0 9 * * 1-5"),
        "{list}"
    );
    let (_, shown, _) = cli(&["job", "show", "restart"]);
    let shown: Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(
        shown["spec"]["rundeck"], rundeck,
        "the Rundeck job, unchanged"
    );

    // A definition may not carry the operator's other files to the server.
    let outside = dir.path().join("outside.json");
    let escape = json!({"name": "x", "spec_file": "../../etc/hostname"});
    std::fs::write(&outside, escape.to_string()).unwrap();
    let (code, _, err) = cli(&["job", "load", outside.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(err.contains("below the definition's directory"), "{err}");
    std::os::unix::fs::symlink("/etc", dir.path().join("etc")).unwrap();
    let escape = json!({"name": "x", "spec_file": "etc/hostname"});
    std::fs::write(&outside, escape.to_string()).unwrap();
    let (code, _, err) = cli(&["job", "load", outside.to_str().unwrap()]);
    assert_eq!(code, Some(2), "a directory link out of it");
    assert!(err.contains("leads out"), "{err}");
    // The ids a schedule gives are its own; the bootstrap name is taken.
    let agent = cp.agent();
    let squat = json!({"spec": {"id": "hello.s1893456000000", "steps": [{"shell": "true"}]}});
    let (status, _) = call(&agent, &cp.url, "POST", "admin/jobs", ADMIN, Some(squat)).unwrap();
    assert_eq!(status, 400, "a schedule's id taken by an ad-hoc job");
    let (code, _, _) = cli(&["admin", "add", "Admin"]);
    assert_eq!(
        code,
        Some(2),
        "a name to be taken for the bootstrap admin's"
    );

    let (code, _, err) = cli(&["run", "hello", "-o", "who=$(reboot)"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("does not match"), "{err}");

    // run --follow, while a runner (edge-1, by its own token) runs the job.
    let mut follow = cp
        .admin_command("alice", &["run", "hello", "-o", "who=world", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, seen) = std::sync::mpsc::channel();
    let stdout = follow.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            lines.send(line.unwrap()).unwrap();
        }
    });
    let agent = cp.agent();
    let ask =
        json!({"claim_id": "c1", "runner": {"id": "edge-1"}, "max_jobs": 1, "wait_seconds": 20});
    let (status, claimed) =
        call(&agent, &cp.url, "POST", "v1/claim", &edge_token, Some(ask)).unwrap();
    assert_eq!(status, 200, "{claimed}");
    let job = &claimed["jobs"][0];
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(job["spec"]["options"]["who"], "world");
    let lease = job["lease"]["token"].as_str().unwrap().to_string();
    let fence = json!({"attempt": 1, "lease_token": lease});
    let path = format!("v1/jobs/{id}/start");
    assert_eq!(
        call(&agent, &cp.url, "POST", &path, &edge_token, Some(fence))
            .unwrap()
            .0,
        200
    );
    let event = |seq: u32, text: &str| {
        json!({"seq": seq, "ts": "2026-11-28T00:00:00Z", "kind": "output", "step": 0,
               "node": "local", "stream": "stdout", "text": text})
        .to_string()
            + "\n"
    };
    let mut log = String::new();
    // A body as it is, or in an encoding: the status it got.
    let send = |offset: usize, body: Vec<u8>, encoding: Option<&str>| {
        let mut request = ureq::http::Request::builder()
            .method("PUT")
            .uri(format!(
                "{}v1/jobs/{id}/log?offset={offset}&attempt=1",
                cp.url
            ))
            .header("authorization", format!("Bearer {edge_token}"))
            .header(sortie_protocol::HEADER_LEASE_TOKEN, &lease);
        if let Some(encoding) = encoding {
            request = request.header("content-encoding", encoding);
        }
        agent.run(request.body(body).unwrap()).unwrap().status()
    };
    let plain = event(0, "hello world\n");
    assert_eq!(send(0, plain.clone().into_bytes(), None), 200);
    log += &plain;
    let first = seen.recv_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(first, "hello world", "printed while the job runs");
    assert!(follow.try_wait().unwrap().is_none(), "still following");
    // The claim offered zstd: a compressed body is stored as its plain bytes.
    assert_eq!(job["log_encodings"], json!(["zstd"]));
    let compressed = event(1, "and goodbye\n");
    let frame = zstd::bulk::compress(compressed.as_bytes(), 1).unwrap();
    // What the control plane cannot or will not decode is refused, and
    // nothing of it is stored: an unknown encoding, a body that is not what
    // it says, a small body that decodes to more than a body may hold.
    assert_eq!(send(log.len(), frame.clone(), Some("br")), 415);
    assert_eq!(
        send(log.len(), compressed.clone().into_bytes(), Some("zstd")),
        400
    );
    let bomb = zstd::bulk::compress(&vec![b'\n'; 64 << 20], 1).unwrap();
    assert!(bomb.len() < 4096, "{}", bomb.len());
    assert_eq!(send(log.len(), bomb, Some("zstd")), 413);
    assert_eq!(send(log.len(), frame, Some("zstd")), 200);
    log += &compressed;
    let sha: String = sha2::Sha256::digest(log.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let completion = json!({
        "attempt": 1, "lease_token": lease, "status": "failed", "exit_code": 3,
        "started_at": "2026-11-28T00:00:00Z", "finished_at": "2026-11-28T00:00:01Z",
        "log": {"length": log.len(), "sha256": sha}
    });
    let path = format!("v1/jobs/{id}/complete");
    assert_eq!(
        call(
            &agent,
            &cp.url,
            "POST",
            &path,
            &edge_token,
            Some(completion)
        )
        .unwrap()
        .0,
        200
    );
    let status = follow.wait().unwrap();
    reader.join().unwrap();
    let rest: Vec<String> = seen.try_iter().collect();
    assert_eq!(rest, ["and goodbye"]);
    assert_eq!(status.code(), Some(1), "the job failed");

    let (_, execs, _) = cli(&["exec", "list", "--job", "restart", "--json"]);
    let execs: Value = serde_json::from_str(&execs).unwrap();
    let restart = &execs["jobs"][0];
    assert_eq!(
        restart["parent"],
        id.as_str(),
        "the failure started restart"
    );
    assert_eq!(
        restart["spec"]["options"],
        json!({"service": "hello", "why": "failed"})
    );
    assert_eq!(restart["spec"]["rundeck"], rundeck.as_str());
    let (_, execs, _) = cli(&["exec", "list", "--job", "hello"]);
    let row = execs
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_default();
    assert!(
        row.contains("failed") && row.contains("admin:alice") && row.contains("edge-1"),
        "{execs}"
    );
    let (_, audit, _) = cli(&["audit"]);
    for line in [
        "admin:admin  admin.add",
        "admin:alice  runner.add",
        "admin:alice  job.load",
        "admin:alice  job.run",
    ] {
        assert!(audit.contains(line), "{line} in {audit}");
    }
    assert!(!audit.contains(&edge_token), "a token in the audit log");

    let (code, _, _) = cp.cli("admin-token", &["admin", "revoke", "alice"]);
    assert_eq!(code, Some(0));
    let (code, _, err) = cli(&["job", "list"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("401"), "{err}");
}

/// A log longer than a page is answered a page at a time, each ending at a
/// line's end, and the command line reads it all.
#[test]
fn a_long_log_is_read_page_by_page() {
    let dir = tempfile::tempdir().unwrap();
    let cp = Cp::start(dir.path(), "127.0.0.1:0", &[]);
    let agent = cp.agent();
    enqueue(&cp, &agent, "long");
    let (status, claimed) = claim(&agent, &cp, "c1");
    assert_eq!(status, 200, "{claimed}");
    let lease = claimed["jobs"][0]["lease"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let fence = json!({"attempt": 1, "lease_token": lease});
    let (status, _) = call(
        &agent,
        &cp.url,
        "POST",
        "v1/jobs/long/start",
        RUNNER,
        Some(fence),
    )
    .unwrap();
    assert_eq!(status, 200);
    let page = sortie_control_plane::api::LOG_PAGE;
    let log: String = (0..(page * 3 / 2) / 100)
        .map(|seq| {
            json!({"seq": seq, "ts": "2026-11-29T00:00:00Z", "kind": "output", "step": 0,
                   "node": "local", "stream": "stdout", "text": format!("line {seq}\n")})
            .to_string()
                + "\n"
        })
        .collect();
    for (i, piece) in log.as_bytes().chunks(1 << 20).enumerate() {
        let request = ureq::http::Request::builder()
            .method("PUT")
            .uri(format!(
                "{}v1/jobs/long/log?offset={}&attempt=1",
                cp.url,
                i << 20
            ))
            .header("authorization", format!("Bearer {RUNNER}"))
            .header(sortie_protocol::HEADER_LEASE_TOKEN, &lease)
            .header("content-encoding", "zstd")
            .body(zstd::bulk::compress(piece, 1).unwrap())
            .unwrap();
        assert_eq!(agent.run(request).unwrap().status(), 200);
    }
    let mut answer = agent
        .get(format!("{}admin/jobs/long/log", cp.url))
        .header("authorization", format!("Bearer {ADMIN}"))
        .call()
        .unwrap();
    let first = answer
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .unwrap();
    assert!(
        first.len() >= page && first.len() < page + 200,
        "{}",
        first.len()
    );
    assert!(first.ends_with(b"\n"));
    assert_eq!(first, log.as_bytes()[..first.len()]);
    let (code, out, err) = cp.cli("admin-token", &["exec", "log", "long", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out == log, "{} bytes printed of {}", out.len(), log.len());
}

/// A program of the test peers installed by tests/peers/install.sh.
fn peer(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/test-peers/venv/bin")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run `sh tests/peers/install.sh` first",
        path.display()
    );
    path
}

/// Schemathesis generates requests from the OpenAPI document the server serves
/// and checks every answer: no 5xx, and status, content type, headers and body
/// as documented.
#[test]
fn schemathesis_finds_every_answer_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    // One token for both sides, so one header reaches every operation; long
    // polls cut short so generated waits do not time out.
    std::fs::write(dir.path().join("runner-token"), ADMIN).unwrap();
    let cp = Cp::start(
        dir.path(),
        "127.0.0.1:0",
        &["--max-wait", "1s", "--ack-window", "2s"],
    );
    let hooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let out = Command::new(peer("st"))
        .arg("run")
        .arg(format!("{}openapi.json", cp.url))
        .arg("--tls-verify")
        .arg(cp.ca())
        .args(["-H", &format!("Authorization: Bearer {ADMIN}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance,response_headers_conformance",
            "--max-examples",
            "40",
            "--seed",
            "20261128",
            // A connection lost on a loaded machine is not what this checks;
            // the retried request's answer is checked like any other.
            "--request-retries",
            "2",
        ])
        .env("SCHEMATHESIS_HOOKS", "schemathesis_hooks")
        .env("PYTHONPATH", hooks)
        .env("NO_COLOR", "1")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cases = report
        .lines()
        .find_map(|l| {
            l.trim()
                .split_once(" generated,")
                .map(|(n, _)| n.to_string())
        })
        .unwrap_or_default();
    let cases: u64 = cases.trim().parse().unwrap_or(0);
    assert!(cases > 500, "{report}");
    eprintln!("schemathesis: {cases} generated cases, all as documented");
}

/// One simulated runner's pass at a job: claim, start, two log chunks, complete.
/// Transport errors retry the same call (a runner's outbox does the same); a
/// refusal abandons the job to its lease.
/// The id of the job it completed, if it did.
fn drain_one(agent: &ureq::Agent, url: &str, runner: &str, n: usize) -> Option<String> {
    let retry = |method: &str, path: &str, body: Value| -> Option<(u16, Value)> {
        for _ in 0..200 {
            match call(agent, url, method, path, RUNNER, Some(body.clone())) {
                // 5xx: a replica (or the proxy in front of it) passing trouble.
                Ok(answer) if answer.0 < 500 => return Some(answer),
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        None
    };
    let (status, answer) = retry(
        "POST",
        "v1/claim",
        claim_body(runner, &format!("{runner}-{n}"), 0),
    )?;
    if status != 200 {
        return None;
    }
    let job = &answer["jobs"][0];
    let id = job["id"].as_str()?.to_string();
    let attempt = job["attempt"].as_u64()?;
    let token = job["lease"]["token"].as_str()?.to_string();
    let fence = json!({ "attempt": attempt, "lease_token": token });
    let (status, _) = retry("POST", &format!("v1/jobs/{id}/start"), fence)?;
    if status != 200 {
        return None;
    }
    let event = |seq: u32, text: String| {
        json!({ "seq": seq, "ts": "2026-11-28T00:00:00Z", "kind": "output", "step": 0,
                "node": "local", "stream": "stdout", "text": text })
        .to_string()
            + "\n"
    };
    let log =
        event(0, format!("{id} attempt {attempt} first\n")) + &event(1, format!("{id} second\n"));
    let half = log.len() / 2;
    for (at, chunk) in [(0, &log[..half]), (half, &log[half..])] {
        let path = format!("v1/jobs/{id}/log?offset={at}&attempt={attempt}");
        let mut stored = false;
        for _ in 0..200 {
            let request = ureq::http::Request::builder()
                .method("PUT")
                .uri(format!("{url}{path}"))
                .header("authorization", format!("Bearer {RUNNER}"))
                .header(sortie_protocol::HEADER_LEASE_TOKEN, &token)
                .body(chunk.to_string())
                .unwrap();
            match agent.run(request) {
                Ok(a) if a.status() == 200 => {
                    stored = true;
                    break;
                }
                Ok(a) if a.status().as_u16() < 500 => return None,
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        if !stored {
            return None;
        }
    }
    let sha: String = sha2::Sha256::digest(log.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let completion = json!({
        "attempt": attempt, "lease_token": token, "status": "succeeded", "exit_code": 0,
        "started_at": "2026-11-28T00:00:00Z", "finished_at": "2026-11-28T00:00:01Z",
        "log": { "length": log.len(), "sha256": sha }
    });
    let (status, _) = retry("POST", &format!("v1/jobs/{id}/complete"), completion)?;
    (status == 200).then_some(id)
}

/// kill -9 at random moments of a drain, restart on the same state: every job
/// ends done with a log whose checksum is its completion's, or is claimable again.
#[test]
fn a_control_plane_killed_mid_drain_loses_nothing_it_acknowledged() {
    const JOBS: usize = 400;
    let dir = tempfile::tempdir().unwrap();
    let timing = [
        "--ack-window",
        "1s",
        "--lease",
        "2s",
        "--heartbeat-seconds",
        "1",
    ];
    let mut cp = Cp::start(dir.path(), "127.0.0.1:0", &timing);
    let port = cp.port();
    let listen = format!("127.0.0.1:{port}");
    let url = cp.url.clone();
    let agent = cp.agent();
    for i in 0..JOBS {
        enqueue(&cp, &agent, &format!("j{i}"));
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let agent = cp.agent();
            let url = url.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += 1;
                    if drain_one(&agent, &url, &format!("w{w}"), n).is_none() {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            })
        })
        .collect();
    // Kill at moments spread over the drain (pseudo-random, from the clock).
    let mut kills = 0;
    let mut mid_drain = 0;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    for k in 0..5u64 {
        let pause = 100 + (seed.wrapping_mul(k + 7) % 500);
        std::thread::sleep(Duration::from_millis(pause));
        let done = succeeded(&agent, &url);
        mid_drain += usize::from(done.is_some_and(|d| d > 0 && d < JOBS as u64));
        cp.child.kill().unwrap();
        cp.child.wait().unwrap();
        kills += 1;
        cp = Cp::start(dir.path(), &listen, &timing);
    }
    // Let the workers finish what is left.
    assert!(mid_drain >= 2, "only {mid_drain} kills fell mid-drain");
    wait_for("the drain", Duration::from_secs(120), || {
        succeeded(&agent, &url) == Some(JOBS as u64)
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let (_, page) = call(&agent, &url, "GET", "admin/jobs", ADMIN, None).unwrap();
    let jobs = page["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), JOBS);
    for job in jobs {
        let id = job["id"].as_str().unwrap();
        let completion = &job["completion"];
        let log = agent
            .get(format!("{url}admin/jobs/{id}/log"))
            .header("authorization", format!("Bearer {ADMIN}"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_vec()
            .unwrap();
        let sha: String = sha2::Sha256::digest(&log)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(completion["log"]["sha256"], sha, "{job}");
        assert_eq!(completion["log"]["length"], log.len(), "{job}");
    }
    eprintln!(
        "{JOBS} jobs drained through {kills} kill -9s ({mid_drain} mid-drain): \
         all done, every log intact"
    );
}

/// How many jobs have succeeded (none when the server does not answer).
fn succeeded(agent: &ureq::Agent, url: &str) -> Option<u64> {
    let (_, page) = call(
        agent,
        url,
        "GET",
        "admin/jobs?status=succeeded&limit=0",
        ADMIN,
        None,
    )
    .ok()?;
    page["total"].as_u64()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx on loopback, terminating TLS with `front`'s certificate and passing
/// requests round robin to the replicas (over TLS, checked against its CA).
fn nginx(dir: &Path, front: &Cp, replicas: &[u16]) -> (Child, String) {
    let port = free_port();
    let d = dir.display();
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    let servers: String = replicas
        .iter()
        .map(|p| format!("server 127.0.0.1:{p} max_fails=1 fail_timeout=1s;\n    "))
        .collect();
    let tls = front.dir.join("state/tls");
    let conf = format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
  uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
  upstream replicas {{
    {servers}keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {tls}/server.pem;
    ssl_certificate_key {tls}/server.key;
    client_max_body_size 64m;
    location / {{
      proxy_pass https://replicas;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate {ca};
      proxy_ssl_name localhost;
      proxy_ssl_session_reuse on;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout;
      proxy_read_timeout 120s;
    }}
  }}
}}
"#,
        tls = tls.display(),
        ca = front.ca().display()
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new("nginx")
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("nginx", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    (child, format!("https://127.0.0.1:{port}/"))
}

/// Three replicas behind nginx on one PostgreSQL database: 64 runners drain
/// 20,000 jobs while one replica is killed with SIGKILL and restarted; no job
/// is handed out twice, none is lost, every log's checksum is its completion's.
/// Meanwhile a schedule fires every second: each second once, whichever
/// replicas are up.
#[test]
fn three_replicas_on_postgresql_drain_20000_jobs_through_a_sigkill() {
    const JOBS: usize = 20_000;
    const RUNNERS: usize = 64;
    let url = postgres::cluster().database();
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    // The replicas serve one certificate (the first one's), as replicas behind
    // one name do.
    let first = Cp::start(dirs[0].path(), "127.0.0.1:0", &["--database", url.as_str()]);
    let tls = dirs[0].path().join("state/tls");
    let (cert, key) = (tls.join("server.pem"), tls.join("server.key"));
    let db = [
        "--database",
        url.as_str(),
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let mut replicas = vec![first];
    for d in &dirs[1..3] {
        replicas.push(Cp::start(d.path(), "127.0.0.1:0", &db));
    }
    let ports: Vec<u16> = replicas.iter().map(Cp::port).collect();
    let (mut nginx, front) = nginx(dirs[3].path(), &replicas[0], &ports);

    // Queue the jobs straight into the database (the admin API is not what is measured).
    let store =
        sortie_control_plane::Store::postgres(&url, None, None, Default::default()).unwrap();
    for i in 0..JOBS {
        store
            .enqueue(
                "admin:test",
                json!({ "id": format!("j{i}"), "steps": [{ "shell": "true" }] }),
                vec![],
                None,
            )
            .unwrap();
    }
    // Its executions need a tag no runner here has: they stay queued, counted.
    let tick = json!({"name": "tick", "spec": {"steps": [{"shell": "true"}]}, "tags": ["elsewhere"],
        "schedule": {"cron": "* * * * * *", "overlap": true}});
    let loaded_ms = sortie_control_plane::store::now_ms();
    store
        .load("admin:test", serde_json::from_value(tick).unwrap())
        .unwrap();
    let began = Instant::now();
    let runners: Vec<_> = (0..RUNNERS)
        .map(|r| {
            let agent = replicas[0].agent();
            let front = front.clone();
            std::thread::spawn(move || {
                let mut done = Vec::new();
                let mut idle = 0;
                for n in 0.. {
                    match drain_one(&agent, &front, &format!("r{r}"), n) {
                        Some(id) => {
                            done.push(id);
                            idle = 0;
                        }
                        None if idle > 20 => break,
                        None => {
                            idle += 1;
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
                done
            })
        })
        .collect();
    // SIGKILL one replica a third of the way through, and bring it back.
    let total = |status: &str| -> i64 {
        postgres::cluster().query(
            &url,
            &format!("SELECT COUNT(*) FROM jobs WHERE status = '{status}'"),
        )[0]
        .get(0)
    };
    wait_for("a third of the drain", Duration::from_secs(300), || {
        total("succeeded") >= (JOBS / 3) as i64
    });
    replicas[1].child.kill().unwrap();
    replicas[1].child.wait().unwrap();
    let killed_at = total("succeeded");
    std::thread::sleep(Duration::from_millis(500));
    replicas[1] = Cp::start(dirs[1].path(), &format!("127.0.0.1:{}", ports[1]), &db);
    let mut completed: Vec<String> = runners
        .into_iter()
        .flat_map(|r| r.join().unwrap())
        .collect();
    let took = began.elapsed();
    let checked_ms = sortie_control_plane::store::now_ms();
    let fired: Vec<u64> = postgres::cluster()
        .query(
            &url,
            "SELECT id FROM jobs WHERE definition = 'tick' ORDER BY id",
        )
        .iter()
        .map(|row| row.get::<_, String>(0)["tick.s".len()..].parse().unwrap())
        .collect();
    let seconds: Vec<u64> = (loaded_ms / 1000 + 1..checked_ms / 1000)
        .map(|s| s * 1000)
        .collect();
    let missing: Vec<&u64> = seconds.iter().filter(|s| !fired.contains(s)).collect();
    assert!(missing.is_empty(), "fire times never fired: {missing:?}");
    let _ = nginx.kill();
    let _ = nginx.wait();
    completed.sort();
    let before = completed.len();
    completed.dedup();
    assert_eq!(before, completed.len(), "no job was completed twice");
    assert_eq!(completed.len(), JOBS, "every job was completed");
    assert_eq!(total("succeeded"), JOBS as i64);
    let reclaimed: i64 = postgres::cluster().query(
        &url,
        "SELECT COUNT(*) FROM jobs WHERE record::jsonb->>'attempt' <> '1'",
    )[0]
    .get(0);
    let mut offset = 0;
    loop {
        let page = store.page(&Default::default(), 1000, offset).unwrap();
        if page.jobs.is_empty() {
            break;
        }
        for job in page.jobs.iter().filter(|j| j.definition.is_none()) {
            let log = store.log_window(&job.id, 0, usize::MAX).unwrap();
            let summary = &job.completion.as_ref().unwrap().log;
            let sha: String = sha2::Sha256::digest(&log)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            assert_eq!(
                (summary.length, summary.sha256.as_str()),
                (log.len() as u64, sha.as_str())
            );
        }
        offset += page.jobs.len() as u64;
    }
    eprintln!(
        "{JOBS} jobs, {RUNNERS} runners, 3 replicas (one SIGKILLed at {killed_at} done): \
         0 duplicates, 0 lost, {reclaimed} claimed again after a lease ended, all logs intact, \
         {:.0} jobs/s; a schedule fired {} times in {} seconds, each second once",
        JOBS as f64 / took.as_secs_f64(),
        fired.len(),
        seconds.len()
    );
}

/// A console request (redirects not followed): status, headers, body.
fn page(
    cp: &Cp,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<&str>,
) -> (u16, ureq::http::HeaderMap, String) {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let pem = std::fs::read(cp.ca()).unwrap();
    let roots = RootCerts::Specific(Arc::new(vec![Certificate::from_pem(&pem)
        .unwrap()
        .to_owned()]));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .build()
        .into();
    let mut request = ureq::http::Request::builder().method(method).uri(format!(
        "{}{}",
        cp.url,
        path.trim_start_matches('/')
    ));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let mut answer = match form {
        Some(body) => agent
            .run(
                request
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body.to_string())
                    .unwrap(),
            )
            .unwrap(),
        None => agent.run(request.body(()).unwrap()).unwrap(),
    };
    let status = answer.status().as_u16();
    let headers = answer.headers().clone();
    (
        status,
        headers,
        answer.body_mut().read_to_string().unwrap_or_default(),
    )
}

#[test]
fn the_console_logs_in_with_a_cookie_shows_executions_and_refuses_a_mutation_without_csrf() {
    let dir = tempfile::tempdir().unwrap();
    let cp = Cp::start(dir.path(), "127.0.0.1:0", &[]);
    let agent = cp.agent();
    enqueue(&cp, &agent, "console-job");
    // Not logged in: to the login page.
    let (status, headers, _) = page(&cp, "GET", "/console/", None, None);
    assert_eq!(status, 303);
    assert_eq!(headers["location"], "/console/login");
    // A wrong token is refused and sets no cookie.
    let (status, headers, body) = page(&cp, "POST", "/console/login", None, Some("token=wrong"));
    assert_eq!(status, 401);
    assert!(body.contains("not accepted") && headers.get("set-cookie").is_none());
    // The admin token: a Secure, HttpOnly, SameSite=Strict cookie.
    let (status, headers, _) = page(
        &cp,
        "POST",
        "/console/login",
        None,
        Some(&format!("token={ADMIN}")),
    );
    assert_eq!(status, 303);
    let set = headers["set-cookie"].to_str().unwrap().to_string();
    for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(set.contains(flag), "{set}");
    }
    let cookie = set.split(';').next().unwrap().to_string();
    let (status, headers, body) = page(&cp, "GET", "/console/", Some(&cookie), None);
    assert_eq!(status, 200, "{body}");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(body.contains("/console/executions/console-job"), "{body}");
    let path = "/console/executions/console-job";
    let (status, _, body) = page(&cp, "GET", path, Some(&cookie), None);
    assert_eq!(status, 200, "{body}");
    let csrf = body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    // A mutation without the form's CSRF token (or with another) is refused.
    let job_now = || {
        let path = "admin/jobs/console-job";
        call(&agent, &cp.url, "GET", path, ADMIN, None).unwrap().1
    };
    let cancel = format!("{path}/cancel");
    for form in ["", "csrf=0000"] {
        let (status, _, _) = page(&cp, "POST", &cancel, Some(&cookie), Some(form));
        assert_eq!(status, 403, "{form:?}");
    }
    let job = job_now();
    assert_eq!(job["phase"], "queued", "{job}");
    let (status, _, _) = page(
        &cp,
        "POST",
        &cancel,
        Some(&cookie),
        Some(&format!("csrf={csrf}")),
    );
    assert_eq!(status, 303);
    let job = job_now();
    assert!(
        job["reason"].as_str().unwrap_or("").contains("cancelled"),
        "{job}"
    );
    // The runners page, the assets; a cookie that is not a token is no session.
    let (status, _, body) = page(&cp, "GET", "/console/runners", Some(&cookie), None);
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = page(&cp, "GET", "/console/static/console.js", None, None);
    assert_eq!(status, 200);
    let (status, _, _) = page(&cp, "GET", "/console/", Some("sortie_console=forged"), None);
    assert_eq!(status, 303);
}

#[test]
fn the_console_works_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let cp = Cp::start(dir.path(), "127.0.0.1:0", &["--stale-after", "10s"]);
    enqueue(&cp, &cp.agent(), "nightly-backup");
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
    let out = Command::new(peer("python"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/console.py"))
        .arg(&cp.url)
        .arg(ADMIN)
        .arg("nightly-backup")
        .arg(&shots)
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/test-peers/node_modules/axe-core/axe.min.js"),
        )
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    println!("{text}");
    assert!(out.status.success(), "{text}");
    for page in ["login", "executions", "execution", "runners", "jobs"] {
        assert!(shots.join(format!("{page}.png")).exists(), "{page}");
    }
}
