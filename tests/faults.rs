//! Lost answers, resets and transient statuses on every call of a shot: the job
//! still ends terminal, with its log stored exactly once.

use sortie_control_plane::{Endpoint, Fault, FaultKind};

use crate::support::*;

fn kinds() -> Vec<(&'static str, FaultKind)> {
    vec![
        ("drop before", FaultKind::DropBefore),
        ("drop after commit", FaultKind::DropAfterCommit),
        ("reset after commit", FaultKind::ResetAfterCommit),
        (
            "503 retry-after 0",
            FaultKind::Status {
                status: 503,
                retry_after: Some(0),
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
            "429",
            FaultKind::Status {
                status: 429,
                retry_after: None,
            },
        ),
    ]
}

#[test]
fn every_call_survives_every_fault_without_losing_or_duplicating_a_byte() {
    let endpoints = [
        Endpoint::Claim,
        Endpoint::Start,
        Endpoint::Log,
        Endpoint::Complete,
    ];
    for endpoint in endpoints {
        for (name, kind) in kinds() {
            let cp = ControlPlane::with(Options {
                faults: true,
                ..Options::default()
            });
            cp.enqueue(serde_json::json!({
                "id": "faulty",
                "steps": [{ "shell": "i=0; while [ $i -lt 200 ]; do echo line $i; i=$((i+1)); done" }]
            }));
            cp.server.inject(Fault {
                endpoint,
                nth: 1,
                times: 2,
                kind,
            });
            let state = tempfile::tempdir().unwrap();
            let out = cp.poll(state.path()).output().unwrap();
            let context = format!("{endpoint:?} × {name}: {}", stderr(&out));
            assert_eq!(out.status.code(), Some(0), "{context}");
            let job = cp.job("faulty");
            assert_done(&job, "succeeded");
            assert_eq!(job.attempt, 1, "{context}");
            let log = cp.log("faulty");
            let completion = job.completion.unwrap();
            assert_eq!(completion.log.sha256, sha256_hex(&log), "{context}");
            let expected: String = (0..200).map(|i| format!("line {i}\n")).collect();
            assert_eq!(output_text(&events(&log), "stdout"), expected, "{context}");
        }
    }
}
