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
