//! The embedded spool: `--server dir:PATH`.

use std::fs;
use std::path::Path;

use crate::support::*;

fn put(spool: &Path, spec: &serde_json::Value) {
    let pending = spool.join("pending");
    fs::create_dir_all(&pending).unwrap();
    let id = spec["id"].as_str().unwrap();
    fs::write(pending.join(format!("{id}.json")), spec.to_string()).unwrap();
}

fn result(spool: &Path, id: &str) -> serde_json::Value {
    serde_json::from_slice(&fs::read(spool.join("done").join(id).join("result.json")).unwrap())
        .unwrap()
}

#[test]
fn one_shot_drains_up_to_max_jobs_and_the_next_takes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    for name in ["hello.json", "multi-step.json", "failing.json"] {
        put(&spool, &fixture_json(name));
    }
    run(
        spool_poll(&spool, &dir.path().join("state")).args(["--max-jobs", "2"]),
        code::OK,
    );
    assert_eq!(fs::read_dir(spool.join("pending")).unwrap().count(), 1);
    run(&mut spool_poll(&spool, &dir.path().join("state")), code::OK);
    assert_eq!(fs::read_dir(spool.join("pending")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(spool.join("claimed")).unwrap().count(), 0);
    assert_eq!(result(&spool, "hello")["status"], "succeeded");
    assert_eq!(result(&spool, "multi-step")["data"]["count"], "3");
    assert_eq!(result(&spool, "failing")["status"], "failed");
    for id in ["hello", "multi-step", "failing"] {
        let log = fs::read(spool.join("done").join(id).join("log.ndjson")).unwrap();
        let r = result(&spool, id);
        assert_eq!(r["log"]["length"], log.len() as u64);
        assert_eq!(r["log"]["sha256"], sha256_hex(&log));
        events(&log);
        assert!(r.get("attempt").is_none() && r.get("lease_token").is_none());
    }
}

/// A spool made with `--log-multiline` gets output events of several lines;
/// one made without gets one line per event, as log format v1 says.
#[test]
fn a_spool_offering_multiline_events_gets_them_and_only_it() {
    for offered in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        let mut init = sortie();
        init.args(["spool", "init"]).arg(&spool);
        if offered {
            init.arg("--log-multiline");
        }
        run(&mut init, code::OK);
        assert_eq!(spool.join("log-multiline").exists(), offered);
        put(
            &spool,
            &serde_json::json!({ "id": "seq", "steps": [{ "shell": "seq 1 20000" }] }),
        );
        run(&mut spool_poll(&spool, &dir.path().join("state")), code::OK);
        let log = fs::read(spool.join("done/seq/log.ndjson")).unwrap();
        let events = events(&log);
        let want: String = (1..=20000).map(|i| format!("{i}\n")).collect();
        assert_eq!(output_text(&events, "stdout"), want);
        let outputs = events.iter().filter(|e| e["kind"] == "output").count();
        if offered {
            assert!(outputs < 200, "{outputs} events");
        } else {
            assert_eq!(outputs, 20000);
        }
        assert_eq!(result(&spool, "seq")["log"]["sha256"], sha256_hex(&log));
    }
}

#[test]
fn concurrent_shots_never_run_the_same_job() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    // The ledger the steps write, apart from the state dirs and the spool, which
    // steps may not touch (sortie(1), SANDBOX).
    let outside = tempfile::tempdir().unwrap();
    let ledger = outside.path().join("ledger");
    let states = tempfile::tempdir().unwrap();
    let jobs = 24;
    for i in 0..jobs {
        put(
            &spool,
            &serde_json::json!({
                "id": format!("job-{i:02}"),
                "options": { "ledger": ledger.display().to_string() },
                "steps": [{ "shell": "echo ${job.execid} >> ${option.ledger}" }]
            }),
        );
    }
    let children: Vec<_> = (0..4)
        .map(|i| {
            spool_poll(&spool, &states.path().join(format!("state-{i}")))
                .args(["--max-jobs", "100"])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let mut ran: Vec<String> = fs::read_to_string(&ledger)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    ran.sort();
    let expected: Vec<String> = (0..jobs).map(|i| format!("job-{i:02}")).collect();
    assert_eq!(ran, expected, "every job ran exactly once");
    assert_eq!(fs::read_dir(spool.join("done")).unwrap().count(), jobs);
}

#[test]
fn a_malformed_job_file_goes_to_failed_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let pending = spool.join("pending");
    fs::create_dir_all(&pending).unwrap();
    fs::write(pending.join("broken.json"), "{ not json").unwrap();
    fs::write(
        pending.join("mismatch.json"),
        r#"{"id":"other","steps":[{"shell":"true"}]}"#,
    )
    .unwrap();
    fs::write(
        pending.join("nosteps.json"),
        r#"{"id":"nosteps","steps":[]}"#,
    )
    .unwrap();
    put(&spool, &fixture_json("hello.json"));
    run(
        spool_poll(&spool, &dir.path().join("state")).args(["--max-jobs", "10"]),
        code::OK,
    );
    let failed = spool.join("failed");
    let reason = |name: &str| fs::read_to_string(failed.join(format!("{name}.error"))).unwrap();
    assert!(
        reason("broken.json").contains("not valid JSON"),
        "{}",
        reason("broken.json")
    );
    assert!(
        reason("mismatch.json").contains("file name"),
        "{}",
        reason("mismatch.json")
    );
    assert!(
        reason("nosteps.json").contains("at least one step"),
        "{}",
        reason("nosteps.json")
    );
    for name in ["broken.json", "mismatch.json", "nosteps.json"] {
        assert!(failed.join(name).exists(), "{name} kept in failed/");
    }
    assert_eq!(result(&spool, "hello")["status"], "succeeded");
}

/// A state dir where `work/` cannot be made (a file in its place): the job
/// is reported failed, with the reason, once; the shot says the state dir
/// could not be written; the next shot has nothing left of it.
#[test]
fn a_job_whose_workspace_cannot_be_made_is_reported_failed_with_why() {
    let dir = tempfile::tempdir().unwrap();
    let (spool, state) = (dir.path().join("spool"), dir.path().join("state"));
    fs::create_dir_all(&state).unwrap();
    fs::write(state.join("work"), "in the way").unwrap();
    put(&spool, &fixture_json("hello.json"));
    let out = run(&mut spool_poll(&spool, &state), code::IO);
    let r = result(&spool, "hello");
    assert_eq!(r["status"], "failed");
    let error = r["error"].as_str().unwrap();
    assert!(
        error.contains("work") && error.contains("not a directory"),
        "{error}"
    );
    assert!(stderr(&out).contains("not a directory"), "{}", stderr(&out));
    fs::remove_file(state.join("work")).unwrap();
    run(&mut spool_poll(&spool, &state), code::OK);
    assert_eq!(result(&spool, "hello")["status"], "failed");
    assert_eq!(fs::read_dir(state.join("jobs")).unwrap().count(), 0);
}

/// A state dir whose path runs through a link of another user's: refused at
/// start, naming the link, and nothing is claimed or made where it leads.
#[test]
fn a_state_dir_another_user_could_move_is_refused() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    if dir.path().metadata().unwrap().uid() != 0 {
        return; // only root may make another user's link
    }
    let spool = dir.path().join("spool");
    let (elsewhere, link) = (dir.path().join("elsewhere"), dir.path().join("link"));
    fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(54321), Some(54321)).unwrap();
    put(&spool, &fixture_json("hello.json"));
    let out = run(&mut spool_poll(&spool, &link.join("state")), code::CONFIG);
    let err = stderr(&out);
    assert!(
        err.contains(&link.display().to_string()) && err.contains("54321"),
        "{err}"
    );
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    assert_eq!(fs::read_dir(spool.join("pending")).unwrap().count(), 1);
}

/// With `--parallel`, a step that ends kills what it left running, never
/// what a step of another job still running started (here a daemon that
/// left its step's group and was reparented to sortie).
#[test]
fn a_step_s_end_leaves_another_job_s_processes_alone() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let outside = tempfile::tempdir().unwrap();
    let pid = outside.path().join("daemon.pid");
    put(
        &spool,
        &serde_json::json!({
            "id": "keeps-a-daemon",
            "options": { "pid": pid.display().to_string() },
            "steps": [{ "shell": "(setsid sleep 60 </dev/null >/dev/null 2>&1 & echo $! > ${option.pid}); sleep 3; if kill -0 $(cat ${option.pid}); then echo daemon alive; fi" }]
        }),
    );
    put(
        &spool,
        &serde_json::json!({ "id": "quick", "steps": [{ "shell": "sleep 1" }] }),
    );
    let out = run(
        spool_poll(&spool, &dir.path().join("state")).args(["--max-jobs", "2", "--parallel", "2"]),
        code::OK,
    );
    let log = fs::read(spool.join("done/keeps-a-daemon/log.ndjson")).unwrap();
    assert_eq!(
        output_text(&events(&log), "stdout"),
        "daemon alive\n",
        "{}",
        stderr(&out)
    );
    let quick = fs::read(spool.join("done/quick/log.ndjson")).unwrap();
    assert!(
        !String::from_utf8_lossy(&quick).contains("left running"),
        "the other job's daemon is not the quick job's leftover"
    );
    assert_eq!(result(&spool, "keeps-a-daemon")["status"], "succeeded");
}
