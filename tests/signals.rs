//! Signals to sortie: a graceful stop, reported as `interrupted`.

use std::time::Duration;

use crate::support::*;

/// A state dir of its own, apart from the files a step writes: a step cannot
/// create entries in a directory on the way to the state dir (sortie(1), SANDBOX).
fn state_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn sigterm_stops_the_running_step_and_reports_the_job_interrupted() {
    let cp = ControlPlane::start();
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("step.pid");
    let state = state_dir();
    cp.enqueue(serde_json::json!({
        "id": "long",
        "options": { "pidfile": pidfile.display().to_string() },
        "steps": [{ "shell": "echo $$ > ${option.pidfile}; echo started; exec sleep 600" }]
    }));
    let child = cp
        .poll(&state.path().join("state"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the step to start", Duration::from_secs(20), || {
        String::from_utf8_lossy(&cp.log("long")).contains("started")
    });
    let step_pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: sending a signal to a child process this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let job = cp.job("long");
    assert_done(&job, "interrupted");
    assert_eq!(
        job.completion.unwrap().steps[0].status.as_str(),
        "interrupted"
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{step_pid}")).exists(),
        "the step is gone"
    );
}

#[test]
fn a_cancel_in_the_heartbeat_answer_stops_the_job() {
    let cp = ControlPlane::with(Options {
        timing: Some(sortie_control_plane::Timing {
            heartbeat_seconds: 1,
            ..Default::default()
        }),
        ..Options::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("step.pid");
    let state = state_dir();
    cp.enqueue(serde_json::json!({
        "id": "to-cancel",
        "options": { "pidfile": pidfile.display().to_string() },
        "steps": [
            { "shell": "echo $$ > ${option.pidfile}; echo started; exec sleep 600" },
            { "shell": "echo must not run" }
        ]
    }));
    let child = cp.poll(&state.path().join("state")).spawn().unwrap();
    wait_for("the step to start", Duration::from_secs(20), || {
        String::from_utf8_lossy(&cp.log("to-cancel")).contains("started")
    });
    let step_pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    cp.server.store().cancel("admin:test", "to-cancel").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "a cancelled job is reported, not a failed shot"
    );
    let job = cp.job("to-cancel");
    assert_done(&job, "cancelled");
    let steps = job.completion.unwrap().steps;
    let ran = steps.iter().filter(|s| s.status.as_str() != "skipped");
    assert_eq!(ran.count(), 1, "{steps:?}");
    assert!(!output_text(&events(&cp.log("to-cancel")), "stdout").contains("must not run"));
    assert!(
        !std::path::Path::new(&format!("/proc/{step_pid}")).exists(),
        "the step is gone"
    );
}

/// Started with SIGCHLD ignored (a parent's disposition is inherited), sortie
/// still reads each step's exit code and every byte it printed: ignored, the
/// kernel would reap the steps itself.
#[test]
fn an_inherited_ignored_sigchld_loses_no_exit_code_and_no_output() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    std::fs::create_dir_all(spool.join("pending")).unwrap();
    let job = serde_json::json!({
        "id": "sigchld",
        "steps": [{ "shell": "seq 1 200000; exit 3" }],
    });
    std::fs::write(spool.join("pending/sigchld.json"), job.to_string()).unwrap();
    let mut cmd = spool_poll(&spool, &dir.path().join("state"));
    // SAFETY: the closure only sets a signal's disposition, which is
    // async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGCHLD, libc::SIG_IGN);
            Ok(())
        });
    }
    run(&mut cmd, 0);
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(spool.join("done/sigchld/result.json")).unwrap())
            .unwrap();
    assert_eq!(result["steps"][0]["exit_code"], 3, "{result}");
    let log = std::fs::read(spool.join("done/sigchld/log.ndjson")).unwrap();
    let want: String = (1..=200_000).map(|i| format!("{i}\n")).collect();
    assert!(
        output_text(&events(&log), "stdout") == want,
        "every line, in order"
    );
}
