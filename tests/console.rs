//! The control plane's web console with the real runner: a job started from
//! its page in a real browser (Debian's Chromium, Playwright), its log
//! watched while the runner runs it.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::support::*;

#[test]
fn a_job_started_in_the_console_shows_its_log_live_while_a_runner_runs_it() {
    // Heartbeats every second: a runner learns of a cancel within one.
    let cp = ControlPlane::with(Options {
        timing: Some(sortie_control_plane::Timing {
            heartbeat_seconds: 1,
            ..Default::default()
        }),
        ..Options::default()
    });
    let long = serde_json::from_value(json!({
        "name": "long",
        "spec": {"steps": [{"shell": "echo started; exec sleep 600"}]},
    }))
    .unwrap();
    cp.server.store().load("admin:test", long).unwrap();
    let definition = serde_json::from_value(json!({
        "name": "greet",
        "description": "Greets someone, slowly.",
        "options": [{"name": "who", "required": true}],
        "spec": {"steps": [{"shell":
            "echo \"hello ${option.who}\"; printf '\\033[31mred\\033[0m\\n'; \
             for i in 1 2 3 4; do echo line $i; sleep 0.7; done"}]},
    }))
    .unwrap();
    cp.server.store().load("admin:test", definition).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ready = dir.path().join("ready");
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    let browser = Command::new(peer("python"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/live.py"))
        .arg(cp.server.url())
        .arg(ADMIN_TOKEN)
        .arg(&ready)
        .arg(&shots)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(
        "the console to start the job",
        Duration::from_secs(60),
        || ready.exists(),
    );
    let id = std::fs::read_to_string(&ready).unwrap();
    run(&mut cp.poll(&dir.path().join("state")), code::OK);
    // The second job runs until the browser cancels it.
    let second = dir.path().join("ready.2");
    wait_for(
        "the console to start `long`",
        Duration::from_secs(60),
        || second.exists(),
    );
    let long_id = std::fs::read_to_string(&second).unwrap();
    run(&mut cp.poll(&dir.path().join("state")), code::OK);
    assert_done(&cp.job(&long_id), "cancelled");
    let out = browser.wait_with_output().unwrap();
    let text = stdout(&out) + &stderr(&out);
    println!("{text}");
    assert!(out.status.success(), "{text}");
    let job = cp.job(&id);
    assert_done(&job, "succeeded");
    assert!(shots.join("execution-live.png").exists());
}
