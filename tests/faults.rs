//! Lost answers, resets, stalls and transient statuses on every call of a shot: the
//! job still ends terminal, with its log stored exactly once.

use crate::fault_proxy::{Endpoint, Fault, FaultKind};
use sortie_control_plane::Timing;

use crate::support::*;

fn kinds() -> Vec<(&'static str, FaultKind)> {
    vec![
        ("refused before the work", FaultKind::DropBefore),
        ("answer lost after commit", FaultKind::DropAfterCommit),
        ("reset mid-answer", FaultKind::ResetAfterCommit),
        ("stall", FaultKind::Stall { millis: 3000 }),
        (
            "503 Retry-After 1",
            FaultKind::Status {
                status: 503,
                retry_after: Some(1),
            },
        ),
        (
            "500",
            FaultKind::Status {
                status: 500,
                retry_after: None,
            },
        ),
        (
            "502",
            FaultKind::Status {
                status: 502,
                retry_after: None,
            },
        ),
        (
            "429",
            FaultKind::Status {
                status: 429,
                retry_after: None,
            },
        ),
    ]
}

const LINES: usize = 120;

/// One job through one fault; panics with the combination's name on any loss.
fn one(endpoint: Endpoint, name: &str, kind: FaultKind) {
    let cp = ControlPlane::with(Options {
        timing: Some(Timing {
            heartbeat_seconds: 1,
            ..Timing::default()
        }),
        ..Options::default()
    });
    cp.enqueue(serde_json::json!({
        "id": "faulty",
        "steps": [{ "shell": format!("i=0; while [ $i -lt {LINES} ]; do echo line $i; i=$((i+1)); sleep 0.01; done") }]
    }));
    cp.inject(Fault {
        endpoint,
        nth: 1,
        times: 2,
        kind,
    });
    let state = tempfile::tempdir().unwrap();
    let out = cp
        .poll(state.path())
        .args(["--request-timeout", "1s"])
        .output()
        .unwrap();
    let context = format!("{endpoint:?} × {name}: {}", stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{context}");
    let job = cp.job("faulty");
    assert_done(&job, "succeeded");
    assert_eq!(job.attempt, 1, "{context}");
    let log = cp.log("faulty");
    let completion = job.completion.unwrap();
    assert_eq!(completion.log.sha256, sha256_hex(&log), "{context}");
    // seq without gaps (checked by events) and every line once: no byte stored twice.
    let expected: String = (0..LINES).map(|i| format!("line {i}\n")).collect();
    assert_eq!(output_text(&events(&log), "stdout"), expected, "{context}");
}

#[test]
fn every_call_survives_every_fault_without_losing_or_duplicating_a_byte() {
    let endpoints = [
        Endpoint::Claim,
        Endpoint::Start,
        Endpoint::Heartbeat,
        Endpoint::Log,
        Endpoint::Complete,
    ];
    let combos: Vec<(Endpoint, &'static str, FaultKind)> = endpoints
        .iter()
        .flat_map(|e| kinds().into_iter().map(move |(n, k)| (*e, n, k)))
        .collect();
    let total = combos.len();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(combos));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let queue = queue.clone();
            std::thread::spawn(move || loop {
                let Some((endpoint, name, kind)) = queue.lock().unwrap().pop() else {
                    return;
                };
                one(endpoint, name, kind);
            })
        })
        .collect();
    for w in workers {
        w.join()
            .expect("a fault combination lost or duplicated something");
    }
    eprintln!("fault matrix: {total} combinations (5 endpoints x 8 faults), 0 jobs lost, 0 bytes duplicated");
}

#[test]
fn a_fenced_log_upload_stops_the_job_and_sends_no_completion() {
    let cp = ControlPlane::with(Options {
        ..Options::default()
    });
    let dir = tempfile::tempdir().unwrap();
    cp.enqueue(serde_json::json!({ "id": "fenced", "steps": [{ "shell": "echo one; sleep 2; echo two" }] }));
    cp.inject(Fault {
        endpoint: Endpoint::Log,
        nth: 1,
        times: 100,
        kind: FaultKind::Status {
            status: 409,
            retry_after: None,
        },
    });
    let out = run(&mut cp.poll(&dir.path().join("s")), code::OK);
    assert!(stderr(&out).contains("refused"), "{}", stderr(&out));
    let job = cp.job("fenced");
    assert!(
        job.completion.is_none(),
        "no completion after the lease moved on"
    );
    assert!(std::fs::read_dir(dir.path().join("s/jobs"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn a_control_plane_that_claims_to_have_lost_log_bytes_gets_them_again_once() {
    for (endpoint, status) in [(Endpoint::Log, 416), (Endpoint::Complete, 412)] {
        let cp = ControlPlane::with(Options {
            ..Options::default()
        });
        cp.enqueue(serde_json::json!({
            "id": "rewound",
            "steps": [{ "shell": format!("i=0; while [ $i -lt {LINES} ]; do echo line $i; i=$((i+1)); done") }]
        }));
        // The first answer says the server holds nothing: sortie sends from offset 0
        // again, and the bytes the server does hold are not stored twice.
        cp.inject(Fault {
            endpoint,
            nth: 1,
            times: 1,
            kind: FaultKind::Committed {
                status,
                committed: 0,
            },
        });
        let state = tempfile::tempdir().unwrap();
        run(&mut cp.poll(state.path()), code::OK);
        let job = cp.job("rewound");
        assert_done(&job, "succeeded");
        let log = cp.log("rewound");
        assert_eq!(
            job.completion.unwrap().log.sha256,
            sha256_hex(&log),
            "{status}"
        );
        let expected: String = (0..LINES).map(|i| format!("line {i}\n")).collect();
        assert_eq!(output_text(&events(&log), "stdout"), expected, "{status}");
    }
}

/// Job `id` ran `seq 1 N`, succeeded, and its whole log reached the control
/// plane, checked by its completion.
fn assert_whole_seq_log(cp: &ControlPlane, id: &str, n: u32) {
    let job = cp.job(id);
    assert_done(&job, "succeeded");
    let log = cp.log(id);
    assert_eq!(job.completion.unwrap().log.sha256, sha256_hex(&log));
    let want: String = (1..=n).map(|i| format!("{i}\n")).collect();
    assert_eq!(output_text(&events(&log), "stdout"), want);
}

/// Log bodies go compressed where the claim offered it, and as they are
/// (with no tail on the completion) to a control plane that predates the
/// extensions; a rewind after a compressed body loses and doubles nothing.
#[test]
fn log_uploads_are_compressed_only_where_the_claim_offered_it() {
    for offered in [true, false] {
        let cp = ControlPlane::with(Options::default());
        if !offered {
            cp.hide_extensions();
        }
        // The second upload is answered 416 as if the server held less: the
        // runner sends again from there, a body that overlaps what is held.
        cp.inject(Fault {
            endpoint: Endpoint::Log,
            nth: 2,
            times: 1,
            kind: FaultKind::Committed {
                status: 416,
                committed: 1000,
            },
        });
        cp.enqueue(serde_json::json!({ "id": "big", "steps": [{ "shell": "seq 1 300000" }] }));
        let state = tempfile::tempdir().unwrap();
        run(&mut cp.poll(state.path()), code::OK);
        let received = String::from_utf8_lossy(&cp.received()).into_owned();
        let puts = received.matches("PUT /v1/jobs/big/log").count();
        let compressed = received.matches("content-encoding: zstd").count();
        assert!(puts >= 3, "{puts} uploads");
        assert_eq!(compressed, if offered { puts } else { 0 });
        if !offered {
            assert!(
                !received.contains(r#""log_tail""#),
                "a tail only where offered"
            );
        }
        assert_whole_seq_log(&cp, "big", 300_000);
    }
}

/// Output events hold the lines of a read each where the claim offered
/// `log_multiline`, and one line each for a control plane that predates it
/// or was told not to offer it; either way the stream's bytes arrive whole,
/// in order, once.
#[test]
fn output_events_hold_several_lines_only_where_the_claim_offered_it() {
    for (offered, old) in [(true, false), (false, true), (false, false)] {
        let cp = ControlPlane::with(Options {
            one_line_events: !offered && !old,
            ..Options::default()
        });
        if old {
            cp.hide_extensions();
        }
        cp.enqueue(serde_json::json!({ "id": "big", "steps": [{ "shell": "seq 1 100000" }] }));
        let state = tempfile::tempdir().unwrap();
        run(&mut cp.poll(state.path()), code::OK);
        assert_whole_seq_log(&cp, "big", 100_000);
        let log = cp.log("big");
        let outputs: Vec<String> = events(&log)
            .iter()
            .filter(|e| e["kind"] == "output")
            .map(|e| e["text"].as_str().unwrap().to_owned())
            .collect();
        if offered {
            assert!(outputs.len() < 1000, "{} events", outputs.len());
            assert!(outputs
                .iter()
                .all(|t| t.len() <= 64 * 1024 && t.ends_with('\n')));
        } else {
            assert_eq!(outputs.len(), 100_000);
        }
    }
}

/// A control plane (or a proxy before it) that offered zstd but refuses a
/// compressed body gets the same bytes as they are, and every later body so.
#[test]
fn a_refused_compressed_upload_is_sent_again_as_it_is() {
    for status in [415, 400] {
        let cp = ControlPlane::with(Options::default());
        cp.inject(Fault {
            endpoint: Endpoint::Log,
            nth: 1,
            times: 1,
            kind: FaultKind::Status {
                status,
                retry_after: None,
            },
        });
        cp.enqueue(serde_json::json!({ "id": "big", "steps": [{ "shell": "seq 1 300000" }] }));
        let state = tempfile::tempdir().unwrap();
        run(&mut cp.poll(state.path()), code::OK);
        let received = String::from_utf8_lossy(&cp.received()).into_owned();
        let puts: Vec<&str> = received.split("PUT /v1/jobs/big/log").skip(1).collect();
        assert!(puts.len() >= 3, "{} uploads", puts.len());
        assert!(
            puts[0].contains("content-encoding: zstd"),
            "the first went compressed"
        );
        for put in &puts[1..] {
            let headers = put.split("\n\n").next().unwrap_or(put);
            assert!(!headers.contains("content-encoding"), "{status}: {headers}");
        }
        assert_whole_seq_log(&cp, "big", 300_000);
    }
}

#[test]
fn a_short_job_s_log_goes_with_its_completion_in_one_request() {
    let cp = ControlPlane::with(Options::default());
    cp.enqueue(serde_json::json!({ "id": "short", "steps": [{ "shell": "echo one; echo two" }] }));
    let state = tempfile::tempdir().unwrap();
    run(&mut cp.poll(state.path()), code::OK);
    let received = String::from_utf8_lossy(&cp.received()).into_owned();
    let calls: Vec<&str> = received
        .lines()
        .filter(|l| l.starts_with("POST /v1/") || l.starts_with("PUT /v1/"))
        .filter_map(|l| l.split('?').next())
        .filter(|l| !l.ends_with("/heartbeat"))
        .collect();
    assert_eq!(
        calls,
        [
            "POST /v1/claim",
            "POST /v1/jobs/short/start",
            "POST /v1/jobs/short/complete"
        ]
    );
    assert!(
        received.contains(r#""log_tail":{"offset":0,"data":"#),
        "{received}"
    );
    let job = cp.job("short");
    assert_done(&job, "succeeded");
    let log = cp.log("short");
    assert_eq!(job.completion.unwrap().log.sha256, sha256_hex(&log));
    assert_eq!(output_text(&events(&log), "stdout"), "one\ntwo\n");
}

/// A control plane whose leases last 2 s, renewed every second.
fn short_leases() -> ControlPlane {
    ControlPlane::with(Options {
        timing: Some(Timing {
            lease: std::time::Duration::from_secs(2),
            heartbeat_seconds: 1,
            ..Timing::default()
        }),
        ..Options::default()
    })
}

/// A job that ended while the control plane could not take its completion is
/// delivered by a later shot, however late: the control plane recorded it
/// lost when its lease ran out, and the runner's log and completion replace
/// that verdict.
#[test]
fn a_completion_left_for_later_is_delivered_after_the_lease_ran_out() {
    let cp = short_leases();
    cp.enqueue(serde_json::json!({ "id": "late", "steps": [{ "shell": "seq 1 500" }] }));
    cp.inject(Fault {
        endpoint: Endpoint::Complete,
        nth: 1,
        times: 1000,
        kind: FaultKind::DropBefore,
    });
    let state = tempfile::tempdir().unwrap();
    let first = run(
        cp.poll(state.path())
            .args(["--request-timeout", "1s", "--max-runtime", "6s"]),
        code::LEFT_FOR_LATER,
    );
    assert!(
        stderr(&first).contains("kept for the next shot"),
        "{}",
        stderr(&first)
    );
    cp.clear_faults();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    cp.server.store().sweep().unwrap();
    assert_eq!(cp.job("late").completion.unwrap().status.as_str(), "lost");
    run(&mut cp.poll(state.path()), code::OK);
    let job = cp.job("late");
    assert_done(&job, "succeeded");
    let log = cp.log("late");
    assert_eq!(job.completion.unwrap().log.sha256, sha256_hex(&log));
    let expected: String = (1..=500).map(|i| format!("{i}\n")).collect();
    assert_eq!(output_text(&events(&log), "stdout"), expected);
}

/// A reverse proxy that takes smaller bodies than the control plane (413):
/// the log goes in pieces it takes, the completion without the log's tail,
/// and nothing is lost or stored twice.
#[test]
fn a_proxy_s_body_limit_is_met_with_smaller_uploads() {
    let cp = ControlPlane::start();
    cp.limit_bodies(16 * 1024);
    cp.enqueue(serde_json::json!({ "id": "big",
        "steps": [{ "shell": "head -c 300000 /dev/urandom | base64 -w 100; echo end" }] }));
    let state = tempfile::tempdir().unwrap();
    run(&mut cp.poll(state.path()), code::OK);
    let job = cp.job("big");
    assert_done(&job, "succeeded");
    let log = cp.log("big");
    assert_eq!(job.completion.unwrap().log.sha256, sha256_hex(&log));
    let text = output_text(&events(&log), "stdout");
    assert_eq!(text.lines().count(), 4001, "every line once");
    assert!(text.ends_with("end\n"));
}

/// A control plane out of reach for longer than a running job's lease
/// records the job lost; heard again, it asks the runner to stop (cancel),
/// and takes the job's log and its completion, which replaces that verdict.
#[test]
fn a_job_whose_lease_ran_out_unheard_is_cancelled_and_delivered() {
    let cp = short_leases();
    cp.enqueue(serde_json::json!({ "id": "unheard",
        "steps": [{ "shell": "echo begin; sleep 20; echo end" }] }));
    cp.inject(Fault {
        endpoint: Endpoint::Heartbeat,
        nth: 1,
        times: 100_000,
        kind: FaultKind::DropBefore,
    });
    let state = tempfile::tempdir().unwrap();
    let shot = cp
        .poll(state.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(3000));
    cp.clear_faults();
    let out = shot.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let job = cp.job("unheard");
    assert_done(&job, "cancelled");
    let log = cp.log("unheard");
    assert_eq!(job.completion.unwrap().log.sha256, sha256_hex(&log));
    assert_eq!(output_text(&events(&log), "stdout"), "begin\n");
}
