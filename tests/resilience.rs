//! Losing nothing: crashes, deadlines, an unreachable control plane, overlapping shots.

use std::process::Stdio;
use std::time::Duration;

use crate::fault_proxy::{Endpoint, Fault, FaultKind};
use serde_json::{json, Value};
use sortie_control_plane::{Phase, Timing};

use crate::support::*;

/// A job that prints `n` numbered lines, one every `pause` seconds.
fn steady(id: &str, n: usize, pause: &str) -> Value {
    json!({ "id": id, "steps": [{ "shell": format!("i=0; while [ $i -lt {n} ]; do echo line $i; i=$((i+1)); sleep {pause}; done") }] })
}

/// The stdout lines of a log are "line 0", "line 1", … without a gap or a repeat.
fn assert_numbered_prefix(stdout: &str, n: usize) -> usize {
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() <= n, "{stdout}");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(*line, format!("line {i}"), "in {stdout:?}");
    }
    lines.len()
}

fn quick_timing() -> Timing {
    Timing {
        ack_window: Duration::from_secs(1),
        ..Timing::default()
    }
}

/// Run shots until the job is terminal and the runner holds nothing more of it
/// (a job claimed by a killed shot comes back after the ack window; a shot that
/// ran out of time with a delivery unanswered leaves it to the next one).
fn drive_to_the_end(cp: &ControlPlane, state: &std::path::Path, id: &str) {
    let mut last = String::new();
    // Shots on a loaded machine may time out and leave a delivery for the next
    // one (exit 75): enough of them for that, few enough to catch an entry that
    // never settles.
    for _ in 0..30 {
        let job = cp.job(id);
        let settled =
            std::fs::read_dir(state.join("jobs")).map_or(true, |mut d| d.next().is_none());
        if matches!(job.phase, Phase::Done | Phase::Failed) && settled {
            return;
        }
        let out = cp.poll(state).args(["--wait", "3s"]).output().unwrap();
        last = stderr(&out);
        assert!(matches!(out.status.code(), Some(0) | Some(75)), "{last}");
    }
    let left: Vec<String> = walk(&state.join("jobs"));
    panic!(
        "job {id} is still {:?}; the runner holds {left:?}; the last shot said:\n{last}",
        cp.job(id).phase
    );
}

/// Every path under `dir`, for a failure message.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        out.push(path.display().to_string());
        if path.is_dir() {
            out.extend(walk(&path));
        }
    }
    out
}

#[test]
fn kill_9_at_random_moments_loses_nothing_and_reports_nothing_twice() {
    let kills = 50;
    let workers = 5;
    let handles: Vec<_> = (0..workers)
        .map(|w| {
            std::thread::spawn(move || {
                let cp = ControlPlane::with(Options {
                    timing: Some(quick_timing()),
                    ..Options::default()
                });
                let mut seed = 0x9e37_79b9_u64 ^ (w as u64 * 0x1234_5678_9abc);
                let mut outcomes = Vec::new();
                for k in 0..kills / workers {
                    let id = format!("crash-{w}-{k}");
                    cp.enqueue(steady(&id, 30, "0.03"));
                    let state = tempfile::tempdir().unwrap();
                    let mut child = cp.poll(state.path()).stderr(Stdio::null()).spawn().unwrap();
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    std::thread::sleep(Duration::from_millis(seed % 1500));
                    // SAFETY: killing a child process this test started.
                    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
                    let _ = child.wait();
                    drive_to_the_end(&cp, state.path(), &id);
                    let job = cp.job(&id);
                    let log = cp.log(&id);
                    let left: Vec<_> = std::fs::read_dir(state.path().join("jobs"))
                        .into_iter()
                        .flatten()
                        .flatten()
                        .map(|e| e.file_name())
                        .collect();
                    assert!(left.is_empty(), "{id}: {left:?} left, job {job:?}");
                    let Some(completion) = job.completion.clone() else {
                        // Killed before the control plane took the start: the
                        // next shot reports it failed, not run, with no log.
                        assert_eq!(job.phase, Phase::Failed, "{id}: {job:?}");
                        let reason = job.reason.as_deref().unwrap_or("");
                        assert!(reason.starts_with("not run:"), "{id}: {job:?}");
                        assert!(log.is_empty(), "{id}");
                        outcomes.push("not run".to_string());
                        continue;
                    };
                    assert_eq!(completion.log.sha256, sha256_hex(&log), "{id}");
                    let events = events(&log);
                    let printed = assert_numbered_prefix(&output_text(&events, "stdout"), 30);
                    match completion.status.as_str() {
                        "succeeded" => assert_eq!(printed, 30, "{id}"),
                        "lost" => {
                            let last = events.last().unwrap();
                            assert_eq!(last["kind"], "system", "{id}");
                            assert!(last["text"].as_str().unwrap().contains("runner stopped"));
                        }
                        // Killed after the control plane took the start, before the
                        // first step: never run, so never reported lost (#10).
                        "interrupted" => {
                            assert_eq!(printed, 0, "{id}");
                            let last = events.last().unwrap();
                            assert!(last["text"].as_str().unwrap().contains("not run"), "{id}");
                        }
                        other => panic!("{id} ended {other}"),
                    }
                    outcomes.push(completion.status.as_str().to_string());
                }
                outcomes
            })
        })
        .collect();
    let outcomes: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(outcomes.len(), kills);
    let count = |status: &str| outcomes.iter().filter(|o| *o == status).count();
    eprintln!(
        "crash test: {kills} kills, {} lost, {} succeeded, {} interrupted before a step ran, \
         {} not run (killed before the start was taken)",
        count("lost"),
        count("succeeded"),
        count("interrupted"),
        count("not run")
    );
}

#[test]
fn an_undelivered_completion_is_kept_and_delivered_by_the_next_shot() {
    let cp = ControlPlane::with(Options {
        ..Options::default()
    });
    cp.enqueue(steady("kept", 5, "0"));
    cp.inject(Fault {
        endpoint: Endpoint::Complete,
        nth: 1,
        times: 1000,
        kind: FaultKind::Status {
            status: 503,
            retry_after: None,
        },
    });
    let state = tempfile::tempdir().unwrap();
    let out = run(
        cp.poll(state.path())
            .args(["--max-runtime", "4s", "--deadline-reserve", "1s"]),
        75,
    );
    assert!(stderr(&out).contains("kept in"), "{}", stderr(&out));
    assert!(state.path().join("jobs/kept/completion.json").exists());
    assert_eq!(cp.job("kept").phase, Phase::Running);

    cp.clear_faults();
    let out = run(&mut cp.poll(state.path()), code::OK);
    assert!(
        stderr(&out).contains("reported for an earlier shot"),
        "{}",
        stderr(&out)
    );
    let job = cp.job("kept");
    assert_done(&job, "succeeded");
    let log = cp.log("kept");
    assert_eq!(job.completion.unwrap().log.sha256, sha256_hex(&log));
    assert_eq!(
        assert_numbered_prefix(&output_text(&events(&log), "stdout"), 5),
        5
    );
}

#[test]
fn the_deadline_interrupts_a_running_job_before_the_shot_runs_out() {
    let cp = ControlPlane::start();
    cp.enqueue(json!({ "id": "long", "steps": [{ "shell": "echo started; exec sleep 600" }] }));
    let state = tempfile::tempdir().unwrap();
    let out = run(
        cp.poll(state.path()).args([
            "--max-runtime",
            "3s",
            "--deadline-reserve",
            "1s",
            "--kill-grace",
            "1s",
        ]),
        // Reported interrupted as designed: the shot did its work (only a signal makes 130).
        code::OK,
    );
    let job = cp.job("long");
    assert_done(&job, "interrupted");
    assert_eq!(
        job.completion.unwrap().steps[0].status.as_str(),
        "interrupted"
    );
    assert!(
        output_text(&events(&cp.log("long")), "stdout").contains("started"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_job_whose_timeout_cannot_fit_is_not_started_and_goes_back() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    std::fs::create_dir_all(spool.join("pending")).unwrap();
    std::fs::write(
        spool.join("pending/big.json"),
        json!({ "id": "big", "timeout": "1h", "steps": [{ "shell": "echo ran" }] }).to_string(),
    )
    .unwrap();
    let out = run(
        sortie()
            .args(["poll", "--runner-id", "r", "--max-runtime", "1m"])
            .arg("--server")
            .arg(format!("dir:{}", spool.display()))
            .arg("--state-dir")
            .arg(dir.path().join("state")),
        code::OK,
    );
    assert!(stderr(&out).contains("does not fit"), "{}", stderr(&out));
    assert!(spool.join("pending/big.json").exists(), "back in pending/");
    assert!(!spool.join("done/big").exists());
}

#[test]
fn an_overlapping_shot_stops_at_once_or_waits_with_lock_wait() {
    let cp = ControlPlane::start();
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("gate");
    cp.enqueue(json!({ "id": "holder", "options": { "gate": gate.display().to_string() },
        "steps": [{ "shell": "echo holding; while [ ! -e ${option.gate} ]; do sleep 0.02; done" }] }));
    let state = dir.path().join("state");
    let mut first = cp.poll(&state).stderr(Stdio::null()).spawn().unwrap();
    wait_for(
        "the first shot to run its job",
        Duration::from_secs(20),
        || String::from_utf8_lossy(&cp.log("holder")).contains("holding"),
    );
    let out = run(&mut cp.poll(&state), 73);
    assert!(
        stderr(&out).contains("another shot is running"),
        "{}",
        stderr(&out)
    );
    // Its lock file removed (an age-based cleaner): the state dir is still held.
    std::fs::remove_file(state.join("lock")).unwrap();
    let out = run(&mut cp.poll(&state), 73);
    assert!(
        stderr(&out).contains("another shot is running"),
        "{}",
        stderr(&out)
    );
    let waiting = cp
        .poll(&state)
        .args(["--lock-wait", "30s"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::fs::write(&gate, "").unwrap();
    assert!(first.wait().unwrap().success());
    let out = waiting.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_done(&cp.job("holder"), "succeeded");
}

#[test]
fn steps_are_the_oom_killers_first_choice() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("spec.json");
    std::fs::write(
        &file,
        json!({ "id": "oom", "steps": [{ "shell": "cat /proc/self/oom_score_adj" }] }).to_string(),
    )
    .unwrap();
    let out = run(
        sortie().args(["--log-format", "json", "exec"]).arg(&file),
        code::OK,
    );
    assert_eq!(output_text(&events(&out.stdout), "stdout"), "500\n");
}

/// A shot killed while its job's start is pending leaves the job's entry and
/// its workspace, empty (it is made before the start, so that the sandbox is
/// built meanwhile); the next shot removes that workspace.
#[test]
fn a_shot_killed_during_the_start_leaves_no_workspace_for_good() {
    let cp = ControlPlane::start();
    cp.inject(Fault {
        endpoint: Endpoint::Start,
        nth: 1,
        times: 1,
        kind: FaultKind::Stall { millis: 60_000 },
    });
    cp.enqueue(json!({ "id": "stalled", "steps": [{ "exec": ["true"] }] }));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let work = state.join("work");
    let workspaces = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(&work)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    let mut child = cp.poll(&state).stderr(Stdio::null()).spawn().unwrap();
    wait_for(
        "the workspace, made before the start",
        Duration::from_secs(20),
        || !workspaces().is_empty(),
    );
    // SAFETY: a signal to a child process this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    assert_eq!(workspaces().len(), 1, "left by the killed shot");
    cp.clear_faults();
    cp.poll(&state).output().unwrap();
    assert!(workspaces().is_empty(), "{:?}", workspaces());
}

/// A shot killed while its step runs leaves the step's processes behind
/// (here a shell and the `sleep` it started); the next shot stops them
/// before it reports the job lost, so they cannot go on beside the job's
/// next attempt.
#[test]
fn a_shot_killed_mid_step_has_its_steps_stopped_by_the_next() {
    let cp = ControlPlane::start();
    cp.enqueue(json!({ "id": "orphaned", "steps": [{
        "shell": "sleep 600 & echo $$ $! > p && mv p pids; wait"
    }] }));
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let pids = || -> Vec<i32> {
        std::fs::read_dir(state.join("work"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path().join("pids")).ok())
            .flat_map(|s| {
                s.split_whitespace()
                    .map(|p| p.parse().unwrap())
                    .collect::<Vec<i32>>()
            })
            .collect()
    };
    // Running, not a zombie waiting for its parent.
    let running = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            !stat
                .rsplit_once(')')
                .unwrap()
                .1
                .trim_start()
                .starts_with('Z')
        })
    };
    let mut child = cp.poll(&state).stderr(Stdio::null()).spawn().unwrap();
    wait_for("the step's pids", Duration::from_secs(20), || {
        pids().len() == 2
    });
    let left = pids();
    // SAFETY: a signal to a child process this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        left.iter().all(|p| running(*p)),
        "left running by the killed shot"
    );
    let out = cp.poll(&state).output().unwrap();
    assert!(
        stderr(&out).contains("stopped 1 step process group"),
        "{}",
        stderr(&out)
    );
    wait_for(
        "the step's processes to end",
        Duration::from_secs(20),
        || !left.iter().any(|p| running(*p)),
    );
    assert_done(&cp.job("orphaned"), "lost");
    assert_eq!(std::fs::read_dir(state.join("groups")).unwrap().count(), 0);
    // Its workspace, with what the step wrote there, went with it.
    assert_eq!(std::fs::read_dir(state.join("work")).unwrap().count(), 0);
}

/// `cmd` under strace, its reads of `file` at an offset (the outbox log's
/// reads for upload and checksum) failing with EIO from the `when`-th on
/// (`"2"`: that one only; `"2+"`: it and every one after).
fn with_read_errors(
    cmd: &std::process::Command,
    file: &std::path::Path,
    when: &str,
) -> std::process::Command {
    let mut traced = std::process::Command::new("strace");
    traced
        .args(["-f", "-qq", "-o", "/dev/null", "-P"])
        .arg(file)
        .args(["-e", "trace=pread64", "-e"])
        .arg(format!("inject=pread64:error=EIO:when={when}"))
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .env_clear();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            traced.env(key, value);
        }
    }
    traced
}

#[test]
fn a_log_that_cannot_be_read_back_loses_neither_the_log_nor_the_job_s_outcome() {
    let cp = ControlPlane::start();
    let job = json!({ "id": "unreadable", "steps": [{ "exec": ["seq", "1", "60000"] }] });
    let expected: String = (1..=60000).map(|i| format!("{i}\n")).collect();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let log_of = |id: &str| state.join("jobs").join(id).join("log.ndjson");

    // One failed read is tried again: the shot delivers everything itself.
    cp.enqueue(job.clone());
    let once = run(
        &mut with_read_errors(&cp.poll(&state), &log_of("unreadable"), "2"),
        code::OK,
    );
    assert!(stderr(&once).contains("trying again"), "{}", stderr(&once));
    assert_done(&cp.job("unreadable"), "succeeded");
    assert_eq!(
        output_text(&events(&cp.log("unreadable")), "stdout"),
        expected
    );

    // Reads that keep failing: the outcome is recorded all the same, and the
    // next shot sends the log and the job's real status, not `lost`.
    let job = json!({ "id": "unreadable-2", "steps": job["steps"] });
    cp.enqueue(job);
    let failing = run(
        &mut with_read_errors(&cp.poll(&state), &log_of("unreadable-2"), "2+"),
        code::IO,
    );
    assert!(
        stderr(&failing).contains("kept in") && stderr(&failing).contains("for a later shot"),
        "{}",
        stderr(&failing)
    );
    assert_ne!(cp.job("unreadable-2").phase, Phase::Done);
    let later = run(&mut cp.poll(&state), code::OK);
    assert!(
        stderr(&later).contains("reported for an earlier shot"),
        "{}",
        stderr(&later)
    );
    assert_done(&cp.job("unreadable-2"), "succeeded");
    let log = cp.log("unreadable-2");
    assert_eq!(output_text(&events(&log), "stdout"), expected);
    assert_eq!(
        cp.job("unreadable-2").completion.unwrap().log.sha256,
        sha256_hex(&log)
    );
}
