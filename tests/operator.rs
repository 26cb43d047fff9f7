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
