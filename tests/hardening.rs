//! The hardening issue (#10): hostile answers, lost results, hostile files, full
//! disks, inherited descriptors. Each test failed before its fix.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::fault_proxy::{Endpoint, Fault, FaultKind};
use serde_json::json;
use sortie_control_plane::Phase;

use crate::support::*;

/// A control plane that answers every request with what `answer(method, path)`
/// says, over plain HTTP on loopback, and records the requests it got.
struct Canned {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

type Answer = (u16, &'static str, String);

impl Canned {
    fn start(answer: impl Fn(&str, &str) -> Answer + Send + 'static) -> Canned {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let (method, path) = (
                    parts.next().unwrap_or("").to_string(),
                    parts.next().unwrap_or("").to_string(),
                );
                let mut length = 0;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                    if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                seen.lock().unwrap().push(format!("{method} {path}"));
                let (status, kind, body) = answer(&method, &path);
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Canned { url, requests }
    }

    fn poll(&self, state: &Path) -> std::process::Command {
        let mut cmd = sortie();
        cmd.args(["poll", "--server", &self.url, "--runner-id", "r"])
            .arg("--state-dir")
            .arg(state)
            .args(["--request-timeout", "2s"]);
        cmd
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn claim_of(jobs: serde_json::Value) -> Answer {
    (200, "application/json", json!({ "jobs": jobs }).to_string())
}

fn claimed(id: &str, token: &str) -> serde_json::Value {
    json!({ "id": id, "attempt": 1,
            "lease": { "token": token, "expires_at": "2099-01-01T00:00:00Z", "heartbeat_seconds": 0 },
            "spec": { "id": id, "steps": [{ "shell": "touch RAN" }] } })
}

/// #10.4: ids that are not file names or URL segments, lease tokens with CR/LF or
/// too long: nothing about such a job is run, recorded or sent back.
#[test]
fn claimed_jobs_outside_the_protocol_are_not_touched_and_the_shot_says_so() {
    let hostile = json!([
        claimed("../escape", "t0k3n"),
        claimed("..", "t0k3n"),
        claimed("crlf", "a\r\nX-Injected: 1"),
        claimed("long", &"x".repeat(100_000)),
        claimed("nul", "a\u{0}b"),
    ]);
    let cp = Canned::start(move |_, path| {
        if path.ends_with("v1/claim") {
            claim_of(hostile.clone())
        } else {
            (500, "text/plain", "unexpected".into())
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        cp.poll(&dir.path().join("state"))
            .args(["--max-jobs", "5", "--parallel", "5"])
            .current_dir(dir.path()),
        76,
    );
    assert_eq!(
        cp.requests(),
        vec!["POST /v1/claim".to_string()],
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("RAN").exists());
    let jobs = dir.path().join("state/jobs");
    assert!(fs::read_dir(&jobs).map_or(true, |mut d| d.next().is_none()));
    assert!(stderr(&out).contains("not valid"), "{}", stderr(&out));
    // And a later shot has nothing stuck to deliver.
    let out = run(&mut cp.poll(&dir.path().join("state")), 76);
    assert!(!stderr(&out).contains("left for"), "{}", stderr(&out));
}

/// #10.8: a control plane that answers outside the protocol is not an internal
/// error: redirects, unexpected statuses and invalid JSON exit 76, with the
/// answer's detail escaped so it cannot forge lines or colours.
#[test]
fn answers_outside_the_protocol_exit_76_with_their_detail_escaped() {
    for (status, kind, body) in [
        (302, "text/plain", String::new()),
        (
            400,
            "application/problem+json",
            json!({ "title": "bad", "detail": "\u{1b}[31mred\nsortie: forged line" }).to_string(),
        ),
        (200, "application/json", "{ not json".to_string()),
    ] {
        let b = body.clone();
        let cp = Canned::start(move |_, _| (status, kind, b.clone()));
        let dir = tempfile::tempdir().unwrap();
        let out = run(&mut cp.poll(dir.path()), 76);
        let err = stderr(&out);
        assert!(
            !err.contains('\u{1b}'),
            "an escape sequence reached stderr: {err:?}"
        );
        assert!(
            !err.lines().any(|l| l.starts_with("sortie: forged")),
            "a forged line: {err}"
        );
    }
}

/// #10.3: the control plane stalls while a job runs and past --max-runtime: the
/// completion is recorded when the job ends, so the next shot delivers the real
/// result (status, steps, data), never `lost`, and adds nothing to the log.
#[test]
fn a_finished_job_is_delivered_by_the_next_shot_never_reported_lost() {
    let cp = ControlPlane::with(Options {
        ..Options::default()
    });
    cp.enqueue(json!({ "id": "finished", "steps": [
        { "shell": "echo one; echo SORTIE:DATA:answer=42" },
        { "shell": "echo two" } ] }));
    for endpoint in [Endpoint::Log, Endpoint::Complete, Endpoint::Heartbeat] {
        cp.inject(Fault {
            endpoint,
            nth: 1,
            times: 10_000,
            kind: FaultKind::Stall { millis: 5000 },
        });
    }
    let state = tempfile::tempdir().unwrap();
    let out = run(
        cp.poll(state.path()).args([
            "--max-runtime",
            "8s",
            "--deadline-reserve",
            "5s",
            "--request-timeout",
            "1s",
        ]),
        75,
    );
    let recorded = state.path().join("jobs/finished/completion.json");
    assert!(
        recorded.exists(),
        "the completion is recorded: {}",
        stderr(&out)
    );
    cp.clear_faults();
    run(&mut cp.poll(state.path()), code::OK);
    let job = cp.job("finished");
    assert_done(&job, "succeeded");
    let completion = job.completion.unwrap();
    assert_eq!(completion.steps.len(), 2);
    assert_eq!(completion.data["answer"], "42");
    let log = cp.log("finished");
    assert_eq!(completion.log.sha256, sha256_hex(&log));
    assert!(!String::from_utf8_lossy(&log).contains("runner stopped"));
    // A third shot finds nothing left and changes nothing.
    run(&mut cp.poll(state.path()), code::OK);
    assert_eq!(cp.log("finished"), log);
}

/// #10.3: when `start` cannot be confirmed, no step ran: the next shot fails the
/// job with the real reason instead of reporting it lost.
#[test]
fn a_job_whose_start_was_never_confirmed_is_failed_with_the_reason() {
    let cp = ControlPlane::with(Options {
        ..Options::default()
    });
    cp.enqueue(json!({ "id": "unstarted", "steps": [{ "shell": "echo should not run" }] }));
    cp.inject(Fault {
        endpoint: Endpoint::Start,
        nth: 1,
        times: 10_000,
        kind: FaultKind::Status {
            status: 503,
            retry_after: None,
        },
    });
    let state = tempfile::tempdir().unwrap();
    run(
        cp.poll(state.path())
            .args(["--max-runtime", "3s", "--deadline-reserve", "1s"]),
        69,
    );
    cp.clear_faults();
    run(&mut cp.poll(state.path()), code::OK);
    let job = cp.job("unstarted");
    assert_eq!(job.phase, Phase::Failed, "{job:?}");
    let reason = job.reason.unwrap_or_default();
    assert!(
        reason.contains("not run") && reason.contains("503"),
        "{reason}"
    );
    assert!(!String::from_utf8_lossy(&cp.log("unstarted")).contains("should not run"));
}

/// #10.5: a FIFO, a symlink to /dev/zero, a directory and a huge file in
/// `pending/` go to `failed/` with their reason; the shot neither hangs nor
/// grows without bound, and the good job beside them runs.
#[test]
fn spool_entries_that_are_not_small_regular_files_go_to_failed() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    run(sortie().args(["spool", "init"]).arg(&spool), code::OK);
    let pending = spool.join("pending");
    assert!(std::process::Command::new("mkfifo")
        .arg(pending.join("fifo.json"))
        .status()
        .unwrap()
        .success());
    std::os::unix::fs::symlink("/dev/zero", pending.join("zero.json")).unwrap();
    fs::create_dir(pending.join("dir.json")).unwrap();
    let huge = fs::File::create(pending.join("huge.json")).unwrap();
    huge.set_len(64 * 1024 * 1024).unwrap();
    fs::write(
        pending.join("good.json"),
        json!({ "id": "good", "steps": [{ "shell": "echo fine" }] }).to_string(),
    )
    .unwrap();
    let started = Instant::now();
    let out = run(
        spool_poll(&spool, &dir.path().join("state")).args(["--max-jobs", "10"]),
        code::OK,
    );
    assert!(started.elapsed() < Duration::from_secs(60), "the shot hung");
    for name in ["fifo.json", "zero.json", "dir.json", "huge.json"] {
        let note = spool.join("failed").join(format!("{name}.error"));
        let reason =
            fs::read_to_string(&note).unwrap_or_else(|e| panic!("{name}: {e}\n{}", stderr(&out)));
        assert!(!reason.is_empty());
        assert!(fs::symlink_metadata(spool.join("failed").join(name)).is_ok());
    }
    assert!(spool.join("done/good/result.json").exists());
    assert!(fs::read_dir(spool.join("claimed"))
        .unwrap()
        .next()
        .is_none());
}

/// #10.6: with umask 000, what sortie creates is still private (the spool's
/// results group-readable at most), and a symlink planted where sortie writes
/// is not followed.
#[test]
fn files_are_created_private_whatever_the_umask_and_symlinks_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    run(sortie().args(["spool", "init"]).arg(&spool), code::OK);
    fs::write(spool.join("pending/bad.json"), "not json").unwrap();
    let victim = dir.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, spool.join("failed/bad.json.error")).unwrap();
    fs::write(
        spool.join("pending/mode.json"),
        json!({ "id": "mode", "steps": [{ "shell": "stat -c %a \"$SORTIE_WORKSPACE\"" }] })
            .to_string(),
    )
    .unwrap();
    let state = dir.path().join("state");
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("umask 000; exec \"$@\"")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_sortie"))
        .args(
            spool_poll(&spool, &state)
                .args(["--max-jobs", "10"])
                .get_args(),
        );
    run(&mut cmd, code::OK);
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("work")), 0o700);
    assert_eq!(mode(&spool.join("done/mode/log.ndjson")), 0o640);
    assert_eq!(mode(&spool.join("done/mode/result.json")), 0o640);
    // The planted name is left alone; the note goes under a name of its own.
    let notes: Vec<_> = fs::read_dir(spool.join("failed"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".error") && !p.is_symlink())
        .collect();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(mode(&notes[0]), 0o640);
    let log = fs::read(spool.join("done/mode/log.ndjson")).unwrap();
    assert_eq!(output_text(&events(&log), "stdout"), "700\n");
}

/// #10.7: the state dir fills up while a job prints: the job is stopped and
/// reported failed with the path, and the shot exits 74 (not 70).
#[test]
fn a_full_state_dir_stops_the_job_and_reports_it_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    let _unmount = Unmount::tmpfs(&small, "size=24m");
    let cp = ControlPlane::start();
    cp.enqueue(json!({ "id": "noisy", "steps": [
        { "shell": "yes 0123456789012345678901234567890123456789 | head -c 200000000" },
        { "shell": "echo never" } ] }));
    let started = Instant::now();
    let out = run(&mut cp.poll(&small.join("state")), 74);
    assert!(started.elapsed() < Duration::from_secs(120));
    let job = cp.job("noisy");
    assert_done(&job, "failed");
    let completion = job.completion.unwrap();
    let error = completion.error.unwrap_or_default();
    assert!(error.contains("log.ndjson"), "the path is named: {error}");
    let ran = completion
        .steps
        .iter()
        .filter(|s| s.status.as_str() != "skipped");
    assert_eq!(ran.count(), 1, "the second step did not run");
    assert_eq!(completion.log.sha256, sha256_hex(&cp.log("noisy")));
    assert!(stderr(&out).contains(&small.display().to_string()));
}

/// A tmpfs at `dir` (made) with mount `options`, unmounted on drop.
struct Unmount(std::path::PathBuf);

impl Unmount {
    fn tmpfs(dir: &Path, options: &str) -> Unmount {
        fs::create_dir(dir).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(
            mounted.success(),
            "mounting a small tmpfs (the suite runs as root)"
        );
        Unmount(dir.to_path_buf())
    }
}

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A job that fills the state dir's filesystem to the last byte, then ends,
/// still has room for its completion (kept for it since the job was
/// recorded): when it cannot be sent, a later shot delivers the job's own
/// outcome, not `lost`.
#[test]
fn a_job_that_fills_the_disk_keeps_room_for_its_own_outcome() {
    use crate::fault_proxy::{Endpoint, Fault, FaultKind};
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    let _unmount = Unmount::tmpfs(&small, "size=24m");
    let filler = small.join("filler");
    let cp = ControlPlane::start();
    cp.enqueue(json!({ "id": "filler", "options": { "filler": filler.display().to_string() },
        "steps": [{ "shell": "echo before; cat /dev/zero > ${option.filler}; echo full; exit 3" }] }));
    cp.inject(Fault {
        endpoint: Endpoint::Complete,
        nth: 1,
        times: 1000,
        kind: FaultKind::DropBefore,
    });
    let state = small.join("state");
    let out = run(
        cp.poll(&state).args([
            "--request-timeout",
            "1s",
            "--max-runtime",
            "8s",
            "--sandbox",
            "off",
        ]),
        code::LEFT_FOR_LATER,
    );
    assert!(
        stderr(&out).contains("kept for the next shot"),
        "{}",
        stderr(&out)
    );
    fs::remove_file(&filler).unwrap();
    cp.clear_faults();
    run(&mut cp.poll(&state), code::OK);
    let job = cp.job("filler");
    assert_done(&job, "failed");
    let completion = job.completion.unwrap();
    assert_eq!(completion.exit_code, Some(3));
    assert_eq!(
        output_text(&events(&cp.log("filler")), "stdout"),
        "before\nfull\n"
    );
}

/// A state dir on a read-only filesystem is an I/O failure (74), not a
/// configuration error.
#[test]
fn a_read_only_state_dir_is_an_io_failure() {
    let dir = tempfile::tempdir().unwrap();
    let frozen = dir.path().join("frozen");
    let _unmount = Unmount::tmpfs(&frozen, "ro,size=1m");
    let cp = ControlPlane::start();
    let out = run(&mut cp.poll(&frozen.join("state")), code::IO);
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
}

/// #10.11: descriptors sortie inherited without close-on-exec do not reach steps.
#[test]
fn inherited_descriptors_do_not_reach_steps() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("fds.json");
    fs::write(
        &spec,
        json!({ "id": "fds", "steps": [{ "shell": "ls /proc/self/fd | sort -n | tr '\\n' ' '" }] })
            .to_string(),
    )
    .unwrap();
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("exec 7</etc/hostname 8</etc/hostname; exec \"$@\"")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_sortie"))
        .args(["--log-format", "json", "exec"])
        .arg(&spec);
    let out = run(&mut cmd, code::OK);
    let fds = output_text(&events(&out.stdout), "stdout");
    // ls sees its own 0, 1, 2 and the directory it reads (3); nothing at 7 or 8.
    assert_eq!(fds.trim(), "0 1 2 3", "{fds}");
}

/// #10.11: specs whose meaning is ambiguous are refused; a byte order mark is
/// accepted; a step name cannot forge lines on the terminal; an over-long
/// `SORTIE:DATA` line is refused, not cut.
#[test]
fn ambiguous_specs_are_refused_and_hostile_text_is_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("spec.json");
    fs::write(
        &file,
        r#"{"id": "dup", "timeout": "1s", "timeout": "9h", "steps": [{"shell": "true"}]}"#,
    )
    .unwrap();
    let out = run(sortie().arg("exec").arg(&file), code::CONFIG);
    assert!(stderr(&out).contains("given twice"), "{}", stderr(&out));
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(
        json!({ "id": "bom", "steps": [{ "name": "a\nsortie: forged", "shell": "true" }] })
            .to_string()
            .as_bytes(),
    );
    fs::write(&file, bom).unwrap();
    let out = run(sortie().arg("exec").arg(&file), code::OK);
    assert!(
        !stdout(&out)
            .lines()
            .any(|l| l.starts_with("sortie: forged")),
        "{}",
        stdout(&out)
    );
    fs::write(
        &file,
        json!({ "id": "data", "steps": [{ "shell":
            "printf 'SORTIE:DATA:big=%070000d\\nSORTIE:DATA:small=ok\\n' 0" }] })
        .to_string(),
    )
    .unwrap();
    let out = run(
        sortie().args(["--log-format", "json", "exec"]).arg(&file),
        code::OK,
    );
    let summary: serde_json::Value =
        serde_json::from_str(stderr(&out).lines().last().unwrap()).unwrap();
    assert_eq!(summary["data"]["small"], "ok");
    assert!(summary["data"].get("big").is_none(), "{summary}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("was refused"));
}

/// #10.1: a hostile option value runs nothing, whatever the job author wrote:
/// nested shells, wrappers before a shell, bash arithmetic, code for other
/// interpreters, remote commands. Each step either runs with the value inert or
/// is refused before it starts.
#[test]
fn hostile_values_run_nothing_in_nested_shells_arithmetic_or_other_interpreters() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("PWNED");
    let value = format!("a[$(touch {0})]`touch {0}`$(touch {0})", marker.display());
    let steps = json!([
        { "exec": ["sh", "-o", "errexit", "-c", "echo ${option.v}"] },
        { "exec": ["env", "A=1", "sh", "-c", "echo ${option.v}"] },
        { "exec": ["bash", "-c", "--", "echo ${option.v}"] },
        { "exec": ["bash", "-c", "for((i=0;i<${option.v};i++)); do :; done"] },
        { "exec": ["python3", "-c", "print('${option.v}')"] },
        { "exec": ["ssh", "host", "echo ${option.v}"] },
        { "shell": "sh -c 'echo ${option.v}'" },
        { "shell": "sh -c \"echo ${option.v}\"" },
        { "shell": "eval \"echo ${option.v}\"" },
        { "shell": "trap 'echo ${option.v}' EXIT" },
        { "shell": "a=(1 2); echo ${a[${option.v}]}" },
        { "shell": "if((1<<2)); then :; fi\necho $(( ${option.v} ))" },
        { "shell": "cat <<$'EOF'\nx ${option.v}\nEOF\necho $(( ${option.v} ))" },
        { "shell": "find . -maxdepth 0 -exec bash -c \"echo ${option.v}\" \\;" },
        { "shell": "echo $(echo)#x ${option.v}" }
    ]);
    // One job per step: each runs with the value inert, or is refused before
    // anything ran; a job with one refused step runs none of its steps.
    let mut refused = 0;
    for (i, step) in steps.as_array().unwrap().iter().enumerate() {
        let file = dir.path().join(format!("spec-{i}.json"));
        let spec = json!({ "id": "inert", "options": { "v": value },
                           "steps": [{ "shell": "echo first > first" }, step] });
        fs::write(&file, spec.to_string()).unwrap();
        let _ = fs::remove_file(dir.path().join("first"));
        let out = sortie()
            .args(["--log-format", "json", "exec"])
            .arg(&file)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            !marker.exists(),
            "{step}: a value ran as code: {}",
            stdout(&out)
        );
        let events = events(&out.stdout);
        let ends = events.iter().filter(|e| e["kind"] == "step_end").count();
        let refusal = events
            .iter()
            .any(|e| e["kind"] == "system" && e["level"] == "error");
        if refusal {
            refused += 1;
            assert_eq!(ends, 0, "{step}: refused, yet a step ran");
            assert!(!dir.path().join("first").exists(), "{step}: a half-run");
        } else {
            assert_eq!(ends, 2, "{step}: {}", stdout(&out));
        }
    }
    assert!(
        refused >= 5,
        "python -c, ssh and arithmetic are refused: {refused}"
    );
}

/// Jobs a killed shot had claimed but not reached go back to `pending/`; an
/// entry that cannot be claimed does not hold up the others; a spool I/O
/// problem is not "control plane unreachable".
#[test]
fn a_spool_loses_no_claimed_job_and_one_bad_entry_holds_up_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    run(sortie().args(["spool", "init"]).arg(&spool), code::OK);
    let put = |id: &str, shell: &str| {
        fs::write(
            spool.join("pending").join(format!("{id}.json")),
            json!({ "id": id, "steps": [{ "shell": shell }] }).to_string(),
        )
        .unwrap()
    };
    put("a1", "echo started; sleep 30");
    put("a2", "echo second");
    let states = tempfile::tempdir().unwrap();
    let state = states.path().join("state");
    let mut first = spool_poll(&spool, &state)
        .args(["--max-jobs", "2"])
        .spawn()
        .unwrap();
    wait_for("the first job to start", Duration::from_secs(20), || {
        fs::read_to_string(spool.join("done/a1/log.ndjson")).is_ok_and(|l| l.contains("started"))
    });
    // SAFETY: killing a child process this test started.
    unsafe { libc::kill(first.id() as i32, libc::SIGKILL) };
    let _ = first.wait();
    run(
        spool_poll(&spool, &state).args(["--max-jobs", "2"]),
        code::OK,
    );
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(
            &fs::read(spool.join("done/a1/result.json")).unwrap()
        )
        .unwrap()["status"],
        "lost"
    );
    assert!(
        spool.join("done/a2/result.json").exists(),
        "a2 was given back and run"
    );
    assert!(fs::read_dir(spool.join("claimed"))
        .unwrap()
        .next()
        .is_none());
    // A directory where a claim would land: that entry is skipped, the rest runs.
    put("b1", "echo one");
    put("b2", "echo two");
    fs::create_dir_all(spool.join("claimed/b1.json/x")).unwrap();
    let out = run(
        spool_poll(&spool, &state).args(["--max-jobs", "5"]),
        code::OK,
    );
    assert!(
        spool.join("done/b2/result.json").exists(),
        "{}",
        stderr(&out)
    );
    assert!(spool.join("pending/b1.json").exists());
}

/// An answer larger than any answer may be is outside the protocol: exit 76 at
/// once, not 60 seconds of retries and "unreachable".
#[test]
fn an_oversized_answer_is_refused_at_once() {
    let cp = Canned::start(|_, _| (200, "application/json", "x".repeat(17 * 1024 * 1024)));
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = run(&mut cp.poll(dir.path()), 76);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{}",
        stderr(&out)
    );
    assert_eq!(cp.requests().len(), 1, "not retried");
}

/// #10.9: the last request is clipped to the deadline: a control plane that
/// never answers does not hold the shot past --max-runtime.
#[test]
fn a_silent_control_plane_does_not_hold_the_shot_past_its_max_runtime() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let _held = std::thread::spawn(move || {
        let streams: Vec<_> = listener.incoming().take(8).collect();
        std::thread::sleep(Duration::from_secs(60));
        drop(streams);
    });
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut cmd = sortie();
    cmd.args([
        "poll",
        "--server",
        &url,
        "--runner-id",
        "r",
        "--max-runtime",
        "3s",
    ])
    .args(["--request-timeout", "20s", "--deadline-reserve", "1s"])
    .arg("--state-dir")
    .arg(dir.path());
    run(&mut cmd, 69);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "the shot took {took:?}");
}

/// #10.11: `sortie check` creates nothing, not even the state dir.
#[test]
fn check_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let spool = dir.path().join("spool");
    let out = sortie()
        .args(["check", "--runner-id", "r"])
        .arg("--server")
        .arg(format!("dir:{}", spool.display()))
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert!(!state.exists() && !spool.exists(), "{}", stderr(&out));
    assert!(stderr(&out).contains("spool init"), "{}", stderr(&out));
}
