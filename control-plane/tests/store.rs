//! The reference control plane's store: the protocol rules a runner relies on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sortie_control_plane::store::Refusal;
use sortie_control_plane::{Phase, Store, Timing};
use sortie_protocol::{
    ClaimRequest, CompleteRequest, Completion, Fence, HeartbeatRequest, JobStatus, LogSummary,
    RunnerInfo,
};

fn runner(id: &str, tags: &[&str]) -> RunnerInfo {
    RunnerInfo {
        id: id.into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        version: "0".into(),
        hostname: "h".into(),
        os: "linux".into(),
        arch: "x86_64".into(),
        capabilities: vec![],
    }
}

fn claim(claim_id: &str, runner_id: &str, max_jobs: u32) -> ClaimRequest {
    ClaimRequest {
        claim_id: claim_id.into(),
        runner: runner(runner_id, &[]),
        max_jobs,
        wait_seconds: 0,
        deadline: None,
    }
}

fn spec(id: &str) -> serde_json::Value {
    json!({ "id": id, "steps": [{ "shell": "true" }] })
}

fn open(dir: &std::path::Path, timing: Timing) -> Store {
    Store::open(dir, timing).unwrap()
}

fn completion(log: &[u8]) -> Completion {
    use sha2::Digest;
    Completion {
        status: JobStatus::Succeeded,
        exit_code: Some(0),
        started_at: "a".into(),
        finished_at: "b".into(),
        steps: vec![],
        data: BTreeMap::new(),
        log: LogSummary {
            length: log.len() as u64,
            sha256: sha2::Sha256::digest(log)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        },
        error: None,
    }
}

#[test]
fn concurrent_claims_hand_each_job_to_exactly_one_runner() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path(), Timing::default()));
    for i in 0..200 {
        store.enqueue(spec(&format!("j{i}")), vec![], None).unwrap();
    }
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                for n in 0.. {
                    let jobs = store.claim(&claim(&format!("c{t}-{n}"), &format!("r{t}"), 3));
                    if jobs.is_empty() {
                        break;
                    }
                    got.extend(jobs.into_iter().map(|j| j.id));
                }
                got
            })
        })
        .collect();
    let mut all: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(before, all.len(), "no job was claimed twice");
    assert_eq!(all.len(), 200);
}

#[test]
fn the_same_claim_id_gets_the_same_answer() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Timing::default());
    store.enqueue(spec("a"), vec![], None).unwrap();
    store.enqueue(spec("b"), vec![], None).unwrap();
    let first = store.claim(&claim("same", "r", 1));
    let again = store.claim(&claim("same", "r", 1));
    assert_eq!(first, again);
    assert_eq!(first.len(), 1);
    let other = store.claim(&claim("other", "r", 1));
    assert_ne!(other[0].id, first[0].id);
}

#[test]
fn tags_and_runner_ids_select_who_gets_a_job() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Timing::default());
    store
        .enqueue(spec("eu"), vec!["linux".into(), "eu".into()], None)
        .unwrap();
    store
        .enqueue(spec("pinned"), vec![], Some("edge-2".into()))
        .unwrap();
    let mut req = claim("1", "edge-1", 5);
    req.runner.tags = vec!["linux".into()];
    assert!(store.claim(&req).is_empty());
    req.claim_id = "2".into();
    req.runner.tags = vec!["linux".into(), "eu".into(), "x".into()];
    let got: Vec<String> = store.claim(&req).into_iter().map(|j| j.id).collect();
    assert_eq!(got, vec!["eu"]);
    let got: Vec<String> = store
        .claim(&claim("3", "edge-2", 5))
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(got, vec!["pinned"]);
}

#[test]
fn a_job_whose_timeout_cannot_fit_the_deadline_is_not_given() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Timing::default());
    store
        .enqueue(
            json!({"id": "long", "timeout": "1h", "steps": [{"shell": "true"}]}),
            vec![],
            None,
        )
        .unwrap();
    let mut req = claim("1", "r", 1);
    req.deadline = Some(
        humantime::format_rfc3339(std::time::SystemTime::now() + Duration::from_secs(60))
            .to_string(),
    );
    assert!(store.claim(&req).is_empty());
    req.claim_id = "2".into();
    req.deadline = None;
    assert_eq!(store.claim(&req).len(), 1);
}

#[test]
fn an_unstarted_claim_returns_to_the_queue_with_the_next_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let timing = Timing {
        ack_window: Duration::from_millis(100),
        ..Timing::default()
    };
    let store = open(dir.path(), timing);
    store.enqueue(spec("a"), vec![], None).unwrap();
    let first = store.claim(&claim("1", "r1", 1)).remove(0);
    assert_eq!(first.attempt, 1);
    std::thread::sleep(Duration::from_millis(150));
    let second = store.claim(&claim("2", "r2", 1)).remove(0);
    assert_eq!(second.attempt, 2);
    // The first attempt is fenced out.
    let stale = Fence {
        attempt: 1,
        lease_token: first.lease.token.clone(),
    };
    assert!(matches!(
        store.start("a", &stale),
        Err(Refusal::Conflict(_))
    ));
    let fresh = Fence {
        attempt: 2,
        lease_token: second.lease.token.clone(),
    };
    store.start("a", &fresh).unwrap();
}

#[test]
fn logs_are_offset_addressed_and_completion_checks_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Timing::default());
    store.enqueue(spec("a"), vec![], None).unwrap();
    let job = store.claim(&claim("1", "r", 1)).remove(0);
    let token = job.lease.token.clone();
    store
        .start(
            "a",
            &Fence {
                attempt: 1,
                lease_token: token.clone(),
            },
        )
        .unwrap();
    assert_eq!(store.append_log("a", 1, &token, 0, b"hello "), Ok(6));
    // A retried chunk is harmless; an overlapping one stores only what is new.
    assert_eq!(store.append_log("a", 1, &token, 0, b"hello "), Ok(6));
    assert_eq!(store.append_log("a", 1, &token, 3, b"lo world"), Ok(11));
    // A gap is refused with what is held.
    assert_eq!(
        store.append_log("a", 1, &token, 20, b"x"),
        Err(Refusal::OffsetPastEnd(11))
    );
    assert!(matches!(
        store.append_log("a", 1, "wrong", 11, b"x"),
        Err(Refusal::Conflict(_))
    ));
    assert_eq!(store.log("a"), b"hello world");

    let hb = HeartbeatRequest {
        attempt: 1,
        lease_token: token.clone(),
        log_length: 11,
    };
    let (_, cancel) = store.heartbeat("a", &hb).unwrap();
    assert!(!cancel);
    store.cancel("a").unwrap();
    assert!(
        store.heartbeat("a", &hb).unwrap().1,
        "cancellation rides on the heartbeat"
    );

    let short = CompleteRequest {
        attempt: 1,
        lease_token: token.clone(),
        completion: completion(b"hello world!"),
    };
    assert_eq!(store.complete("a", &short), Err(Refusal::LogMismatch(11)));
    let right = CompleteRequest {
        attempt: 1,
        lease_token: token.clone(),
        completion: completion(b"hello world"),
    };
    store.complete("a", &right).unwrap();
    store.complete("a", &right).unwrap();
    let mut different = right.clone();
    different.completion.status = JobStatus::Failed;
    assert!(matches!(
        store.complete("a", &different),
        Err(Refusal::Conflict(_))
    ));
    assert_eq!(store.complete("gone", &right), Err(Refusal::Gone));
}

#[test]
fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let token;
    {
        let store = open(dir.path(), Timing::default());
        store.enqueue(spec("a"), vec![], None).unwrap();
        store.enqueue(spec("b"), vec![], None).unwrap();
        let job = store.claim(&claim("1", "r", 1)).remove(0);
        token = job.lease.token.clone();
        store
            .start(
                "a",
                &Fence {
                    attempt: 1,
                    lease_token: token.clone(),
                },
            )
            .unwrap();
        store.append_log("a", 1, &token, 0, b"abc").unwrap();
    }
    let store = open(dir.path(), Timing::default());
    assert_eq!(store.job("a").unwrap().phase, Phase::Running);
    assert_eq!(store.job("a").unwrap().log_length, 3);
    assert_eq!(store.job("b").unwrap().phase, Phase::Queued);
    // The same claim id still answers with the same job after the restart.
    assert_eq!(store.claim(&claim("1", "r", 1))[0].lease.token, token);
    store.append_log("a", 1, &token, 3, b"def").unwrap();
    let done = CompleteRequest {
        attempt: 1,
        lease_token: token,
        completion: completion(b"abcdef"),
    };
    store.complete("a", &done).unwrap();
    drop(store);
    let store = open(dir.path(), Timing::default());
    assert_eq!(store.job("a").unwrap().phase, Phase::Done);
    assert!(
        store.enqueue(spec("a"), vec![], None).is_err(),
        "ids stay unique"
    );
}

#[test]
fn a_silent_running_job_is_marked_lost() {
    let dir = tempfile::tempdir().unwrap();
    let timing = Timing {
        lease: Duration::from_millis(100),
        ..Timing::default()
    };
    let store = open(dir.path(), timing);
    store.enqueue(spec("a"), vec![], None).unwrap();
    let job = store.claim(&claim("1", "r", 1)).remove(0);
    store
        .start(
            "a",
            &Fence {
                attempt: 1,
                lease_token: job.lease.token,
            },
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    store.sweep();
    let job = store.job("a").unwrap();
    assert_eq!(job.phase, Phase::Done);
    assert_eq!(job.completion.unwrap().status, JobStatus::Lost);
}
