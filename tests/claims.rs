//! Claims: idempotent retries and atomicity under concurrent runners.

use crate::fault_proxy::{Endpoint, Fault, FaultKind};

use crate::support::*;

#[test]
fn a_claim_whose_answer_is_lost_is_retried_and_gets_the_same_job() {
    let cp = ControlPlane::with(Options {
        ..Options::default()
    });
    cp.enqueue(fixture_json("hello.json"));
    // The server commits the claim, then drops the connection without answering.
    cp.inject(Fault {
        endpoint: Endpoint::Claim,
        nth: 1,
        times: 1,
        kind: FaultKind::DropAfterCommit,
    });
    let state = tempfile::tempdir().unwrap();
    let out = run(&mut cp.poll(state.path()), code::OK);
    // A retry with a new claim id would have found the job taken and got no work;
    // with the same claim id it gets the same job, same attempt, and runs it.
    let job = cp.job("hello");
    assert_done(&job, "succeeded");
    assert_eq!(job.attempt, 1);
    assert!(stderr(&out).contains("retrying"), "{}", stderr(&out));
}

#[test]
fn two_runners_polling_one_job_at_once_never_both_get_it() {
    for round in 0..5 {
        let cp = ControlPlane::start();
        let id = format!("only-{round}");
        let mut spec = fixture_json("hello.json");
        spec["id"] = id.clone().into();
        cp.enqueue(spec);
        let dir = tempfile::tempdir().unwrap();
        let children: Vec<_> = (0..2)
            .map(|i| {
                cp.poll(&dir.path().join(format!("s{i}")))
                    .arg("--runner-id")
                    .arg(format!("runner-{i}"))
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outputs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        assert!(outputs.iter().all(|o| o.status.success()));
        let claimed = outputs
            .iter()
            .filter(|o| stderr(o).contains("job=only-"))
            .count();
        assert_eq!(claimed, 1, "exactly one runner claims the job");
        assert_eq!(
            outputs
                .iter()
                .filter(|o| stderr(o).trim().is_empty())
                .count(),
            1
        );
        let job = cp.job(&id);
        assert_done(&job, "succeeded");
        assert_eq!(job.attempt, 1);
        // The log holds the job's events once.
        let events = events(&cp.log(&id));
        assert_eq!(output_text(&events, "stdout"), "hello from sortie\n");
    }
}

/// The key test of registered runners, with the real runner: one registered
/// with tag `a` that claims with `--tag b` gets the `a` job and never the `b`
/// one; once revoked, its next shot is refused.
#[test]
fn a_registered_runner_gets_only_the_work_its_assigned_tags_allow() {
    let cp = ControlPlane::start();
    let store = cp.server.store();
    let (_, token) = store
        .register("admin:test", "edge-a", vec!["a".into()], None)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("edge-a.token");
    std::fs::write(&token_file, &token).unwrap();
    for (id, tag) in [("for-b", "b"), ("for-a", "a")] {
        let spec = serde_json::json!({ "id": id, "steps": [{ "shell": "true" }] });
        store
            .enqueue("admin:test", spec, vec![tag.into()], None)
            .unwrap();
    }
    let shot = |state: &str| {
        let mut cmd = sortie();
        cmd.arg("poll")
            .arg("--server")
            .arg(cp.url())
            .arg("--ca-file")
            .arg(&cp.pki.ca_file)
            .arg("--token-file")
            .arg(&token_file)
            .arg("--state-dir")
            .arg(dir.path().join(state))
            .args(["--runner-id", "not-its-name", "--tag", "b", "--tag", "a"]);
        cmd
    };
    run(&mut shot("s1"), code::OK);
    run(&mut shot("s2"), code::OK);
    assert_done(&cp.job("for-a"), "succeeded");
    assert_eq!(cp.job("for-a").ran_by.as_deref(), Some("edge-a"));
    assert_eq!(cp.job("for-b").phase, sortie_control_plane::Phase::Queued);
    store.revoke("admin:test", "edge-a").unwrap();
    let out = run(&mut shot("s3"), code::REJECTED);
    assert!(
        stderr(&out).contains("credentials rejected"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains(&token), "the token is never printed");
}
