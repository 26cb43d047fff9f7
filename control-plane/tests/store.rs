//! The reference control plane's store: the protocol rules a runner relies on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sortie_control_plane::store::{Refusal, Upload};
use sortie_control_plane::{Phase, Store, Timing};

#[path = "support/postgres.rs"]
mod postgres;
use sortie_protocol::{
    ClaimRequest, CompleteRequest, Completion, Fence, HeartbeatRequest, JobStatus, LogSummary,
    LogTail, RunnerInfo,
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

fn plain(bytes: &[u8]) -> Upload {
    Upload::Plain(bytes.to_vec())
}

fn zstd(bytes: &[u8]) -> Upload {
    Upload::Zstd {
        frame: zstd::bulk::compress(bytes, 1).unwrap(),
        limit: 1 << 20,
    }
}

fn spec(id: &str) -> serde_json::Value {
    json!({ "id": id, "steps": [{ "shell": "true" }] })
}

/// An ack window short enough to pass within a test.
const SHORT_ACK: Timing = Timing {
    ack_window: Duration::from_millis(100),
    lease: Duration::from_secs(60),
    heartbeat_seconds: 10,
    max_wait: Duration::from_secs(60),
    retain: Duration::from_secs(30 * 24 * 3600),
    stale_after: Duration::from_secs(15 * 60),
    misfire_grace: Duration::from_secs(60),
    retain_audit: Duration::from_secs(365 * 24 * 3600),
};

/// A backend every store test runs against.
#[derive(Clone, Copy)]
enum Kind {
    Sqlite,
    Postgres,
}

/// Where one test's store lives: opening it again gives the same state.
struct Place {
    kind: Kind,
    dir: tempfile::TempDir,
    url: Option<String>,
}

impl Place {
    fn new(kind: Kind) -> Place {
        Place {
            kind,
            dir: tempfile::tempdir().unwrap(),
            url: matches!(kind, Kind::Postgres).then(|| postgres::cluster().database()),
        }
    }

    fn try_open(&self, timing: Timing) -> anyhow::Result<Store> {
        match self.kind {
            Kind::Sqlite => Store::open(self.dir.path(), timing),
            Kind::Postgres => Store::postgres(self.url.as_ref().unwrap(), None, None, timing),
        }
    }

    fn open(&self, timing: Timing) -> Store {
        self.try_open(timing).unwrap()
    }

    /// Whether `text` appears anywhere the store keeps its runners (the SQLite
    /// files, byte for byte; the PostgreSQL tables' rows).
    fn holds(&self, text: &str) -> bool {
        match self.kind {
            Kind::Sqlite => ["control-plane.db", "control-plane.db-wal"]
                .iter()
                .any(|f| {
                    let bytes = std::fs::read(self.dir.path().join(f)).unwrap_or_default();
                    bytes.windows(text.len()).any(|w| w == text.as_bytes())
                }),
            Kind::Postgres => {
                let rows = postgres::cluster().query(
                    self.url.as_ref().unwrap(),
                    "SELECT string_agg(r::text, ' ') FROM runners r \
                     UNION ALL SELECT string_agg(s::text, ' ') FROM settings s \
                     UNION ALL SELECT string_agg(a::text, ' ') FROM admins a",
                );
                rows.iter().any(|r| {
                    r.get::<_, Option<String>>(0)
                        .is_some_and(|t| t.contains(text))
                })
            }
        }
    }

    /// Run `sql` on the database, as the owner, outside the store.
    fn execute(&self, sql: &str) {
        match self.kind {
            Kind::Sqlite => {
                let db =
                    rusqlite::Connection::open(self.dir.path().join("control-plane.db")).unwrap();
                db.execute_batch(sql).unwrap();
            }
            Kind::Postgres => {
                postgres::cluster().query(self.url.as_ref().unwrap(), sql);
            }
        }
    }

    /// How many chunks job `id`'s log is stored in.
    fn chunks(&self, id: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM log_chunks WHERE job_id = '{id}'");
        match self.kind {
            Kind::Sqlite => {
                let db =
                    rusqlite::Connection::open(self.dir.path().join("control-plane.db")).unwrap();
                db.query_row(&sql, [], |row| row.get(0)).unwrap()
            }
            Kind::Postgres => postgres::cluster().query(self.url.as_ref().unwrap(), &sql)[0].get(0),
        }
    }

    /// Set the schema version the database says it is at.
    fn set_schema_version(&self, version: i64) {
        match self.kind {
            Kind::Sqlite => {
                let db =
                    rusqlite::Connection::open(self.dir.path().join("control-plane.db")).unwrap();
                db.pragma_update(None, "user_version", version).unwrap();
            }
            Kind::Postgres => {
                postgres::cluster().query(
                    self.url.as_ref().unwrap(),
                    &format!("UPDATE schema_version SET version = {version} RETURNING version"),
                );
            }
        }
    }
}

/// Job `id`'s whole stored log.
fn stored_log(store: &Store, id: &str) -> Result<Vec<u8>, Refusal> {
    stored_log_from(store, id, 0)
}

/// Job `id`'s stored log from byte `from` on (empty past its end).
fn stored_log_from(store: &Store, id: &str, from: u64) -> Result<Vec<u8>, Refusal> {
    store.log_window(id, from, usize::MAX)
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

fn concurrent_claims_hand_each_job_to_exactly_one_runner(kind: Kind) {
    let place = Place::new(kind);
    claim_all_at_once(&[Arc::new(place.open(Timing::default()))], 200, 8, 3);
}

/// Queue `jobs` jobs through `stores` in turn, then claim them from `runners`
/// threads at once (`per_claim` at a time), spread over the stores: each job is
/// handed out exactly once.
fn claim_all_at_once(stores: &[Arc<Store>], jobs: usize, runners: usize, per_claim: u32) {
    for i in 0..jobs {
        stores[i % stores.len()]
            .enqueue("admin:test", spec(&format!("j{i}")), vec![], None)
            .unwrap();
    }
    let threads: Vec<_> = (0..runners)
        .map(|t| {
            let store = stores[t % stores.len()].clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                for n in 0.. {
                    let jobs = store
                        .claim(&claim(&format!("c{t}-{n}"), &format!("r{t}"), per_claim))
                        .unwrap();
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
    assert_eq!(all.len(), jobs);
}

fn the_same_claim_id_gets_the_same_answer(kind: Kind) {
    let place = Place::new(kind);
    let store = place.open(Timing::default());
    store
        .enqueue("admin:test", spec("a"), vec![], None)
        .unwrap();
    store
        .enqueue("admin:test", spec("b"), vec![], None)
        .unwrap();
    let first = store.claim(&claim("same", "r", 1)).unwrap();
    let again = store.claim(&claim("same", "r", 1)).unwrap();
    assert_eq!(first, again);
    assert_eq!(first.len(), 1);
    let other = store.claim(&claim("other", "r", 1)).unwrap();
    assert_ne!(other[0].id, first[0].id);
}

fn tags_and_runner_ids_select_who_gets_a_job(kind: Kind) {
    let place = Place::new(kind);
    let store = place.open(Timing::default());
    store
        .enqueue(
            "admin:test",
            spec("eu"),
            vec!["linux".into(), "eu".into()],
            None,
        )
        .unwrap();
    store
        .enqueue("admin:test", spec("pinned"), vec![], Some("edge-2".into()))
        .unwrap();
    let mut req = claim("1", "edge-1", 5);
    req.runner.tags = vec!["linux".into()];
    assert!(store.claim(&req).unwrap().is_empty());
    req.claim_id = "2".into();
    req.runner.tags = vec!["linux".into(), "eu".into(), "x".into()];
    let got: Vec<String> = store
        .claim(&req)
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(got, vec!["eu"]);
    let got: Vec<String> = store
        .claim(&claim("3", "edge-2", 5))
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(got, vec!["pinned"]);
}

fn a_job_whose_timeout_cannot_fit_the_deadline_is_not_given(kind: Kind) {
    let place = Place::new(kind);
    let store = place.open(Timing::default());
    store
        .enqueue(
            "admin:test",
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
    assert!(store.claim(&req).unwrap().is_empty());
    req.claim_id = "2".into();
    req.deadline = None;
    assert_eq!(store.claim(&req).unwrap().len(), 1);
}

fn an_unstarted_claim_returns_to_the_queue_with_the_next_attempt(kind: Kind) {
    let place = Place::new(kind);
    let store = place.open(SHORT_ACK);
    store
        .enqueue("admin:test", spec("a"), vec![], None)
        .unwrap();
    let first = store.claim(&claim("1", "r1", 1)).unwrap().remove(0);
    assert_eq!(first.attempt, 1);
    std::thread::sleep(Duration::from_millis(150));
    let second = store.claim(&claim("2", "r2", 1)).unwrap().remove(0);
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

/// Job `id` queued, claimed by runner `r` with `claim_id`, and started.
fn started(store: &Store, id: &str, claim_id: &str) -> sortie_protocol::ClaimedJob {
    store.enqueue("admin:test", spec(id), vec![], None).unwrap();
    let job = store.claim(&claim(claim_id, "r", 1)).unwrap().remove(0);
    let fence = Fence {
        attempt: job.attempt,
        lease_token: job.lease.token.clone(),
    };
    store.start(id, &fence).unwrap();
    job
}

fn logs_are_offset_addressed_and_completion_checks_them(kind: Kind) {
    let place = Place::new(kind);
    let store = place.open(Timing::default());
    let token = started(&store, "a", "1").lease.token;
    assert_eq!(
        store.append_log("a", 1, &token, 0, &plain(b"hello ")),
        Ok(6)
    );
    // A retried chunk is harmless; an overlapping one stores only what is new.
    assert_eq!(
        store.append_log("a", 1, &token, 0, &plain(b"hello ")),
        Ok(6)
    );
    assert_eq!(
        store.append_log("a", 1, &token, 3, &plain(b"lo world")),
        Ok(11)
    );
    // A gap is refused with what is held.
    assert_eq!(
        store.append_log("a", 1, &token, 20, &plain(b"x")),
        Err(Refusal::OffsetPastEnd(11))
    );
    assert!(matches!(
        store.append_log("a", 1, "wrong", 11, &plain(b"x")),
        Err(Refusal::Conflict(_))
    ));
    assert_eq!(stored_log(&store, "a").unwrap(), b"hello world");
    // Read from an offset (what a client following the log asks for): inside
    // a chunk, at a chunk's start, at the end and past it.
    for (from, rest) in [
        (0, "hello world"),
        (2, "llo world"),
        (6, "world"),
        (8, "rld"),
    ] {
        assert_eq!(
            stored_log_from(&store, "a", from).unwrap(),
            rest.as_bytes(),
            "{from}"
        );
    }
    assert!(stored_log_from(&store, "a", 11).unwrap().is_empty());
    assert!(stored_log_from(&store, "a", 99).unwrap().is_empty());
    // A window: at least so many bytes, up to the end of the line in
    // progress there, never the rest of a long log.
    store
        .enqueue("admin:test", spec("b"), vec![], None)
        .unwrap();
    let b = store.claim(&claim("2", "r", 1)).unwrap().remove(0);
    let b_token = b.lease.token.clone();
    let fence = Fence {
        attempt: 1,
        lease_token: b_token.clone(),
    };
    store.start("b", &fence).unwrap();
    assert_eq!(
        store.append_log("b", 1, &b_token, 0, &plain(b"one\n")),
        Ok(4)
    );
    assert_eq!(
        store.append_log("b", 1, &b_token, 4, &plain(b"two\nthree\n")),
        Ok(14)
    );
    assert_eq!(store.log_window("b", 0, 2).unwrap(), b"one\n");
    assert_eq!(store.log_window("b", 2, 3).unwrap(), b"e\ntwo\n");
    assert_eq!(store.log_window("b", 8, 100).unwrap(), b"three\n");
    // A line without an end is cut LINE_SLACK past the page.
    let slack = sortie_control_plane::store::LINE_SLACK;
    let endless = vec![b'x'; slack + 3000];
    assert_eq!(
        store.append_log("b", 1, &b_token, 14, &plain(&endless)),
        Ok(14 + endless.len() as u64)
    );
    assert_eq!(store.log_window("b", 14, 10).unwrap().len(), 10 + slack);
    // One that ends within it is read to its end.
    assert_eq!(
        store.log_window("b", 14 + 20, 3000).unwrap().len(),
        endless.len() - 20
    );

    let hb = HeartbeatRequest {
        attempt: 1,
        lease_token: token.clone(),
        log_length: 11,
    };
    let (_, cancel) = store.heartbeat("a", &hb).unwrap();
    assert!(!cancel);
    store.cancel("admin:test", "a").unwrap();
    assert!(
        store.heartbeat("a", &hb).unwrap().1,
        "cancellation rides on the heartbeat"
    );

    let short = CompleteRequest {
        attempt: 1,
        lease_token: token.clone(),
        completion: completion(b"hello world!"),
        log_tail: None,
    };
    assert_eq!(store.complete("a", &short), Err(Refusal::LogMismatch(11)));
    let right = CompleteRequest {
        attempt: 1,
        lease_token: token.clone(),
        completion: completion(b"hello world"),
        log_tail: None,
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

/// Compressed bodies are stored as they came when all of them is new, and
/// read back, checked and paged as the plain log they stand for.
fn compressed_log_bodies_read_back_as_the_plain_log(kind: Kind) {
    let place = Place::new(kind);
    let store = place.open(Timing::default());
    let job = started(&store, "a", "1");
    assert_eq!(job.log_encodings, ["zstd"], "the claim offers zstd");
    let token = job.lease.token;
    let line = |i: usize| format!("{{\"line\":\"{i:04} {}\"}}\n", "x".repeat(80));
    let log: String = (0..2000).map(line).collect();
    let log = log.as_bytes();
    let (a, b) = (log.len() / 3, 2 * log.len() / 3);
    assert_eq!(
        store.append_log("a", 1, &token, 0, &zstd(&log[..a])),
        Ok(a as u64)
    );
    // Sent again from an offset inside what is held: only the new part is
    // stored, then a plain body, then a compressed one again.
    let again = zstd(&log[a / 2..b]);
    assert_eq!(
        store.append_log("a", 1, &token, a as u64 / 2, &again),
        Ok(b as u64)
    );
    assert_eq!(
        store.append_log("a", 1, &token, b as u64, &plain(&log[b..b + 7])),
        Ok(b as u64 + 7)
    );
    let end = store.append_log("a", 1, &token, b as u64 + 7, &zstd(&log[b + 7..]));
    assert_eq!(end, Ok(log.len() as u64));
    assert_eq!(stored_log(&store, "a").unwrap(), log);
    // A body is decoded only for the lease's holder: without it, what the
    // body is does not matter.
    let junk = Upload::Zstd {
        frame: b"not zstd".to_vec(),
        limit: 1 << 20,
    };
    assert!(matches!(
        store.append_log("a", 1, "wrong", log.len() as u64, &junk),
        Err(Refusal::Conflict(_))
    ));
    for from in [
        1,
        a as u64 - 1,
        a as u64 + 5,
        b as u64 + 3,
        log.len() as u64 - 1,
    ] {
        assert_eq!(
            stored_log_from(&store, "a", from).unwrap(),
            &log[from as usize..],
            "{from}"
        );
    }
    assert_eq!(
        store.log_window("a", 10, 50).unwrap(),
        &log[10..line(0).len()]
    );
    let done = CompleteRequest {
        attempt: 1,
        lease_token: token.clone(),
        completion: completion(log),
        log_tail: None,
    };
    store.complete("a", &done).unwrap();
}

/// A completion that carries the log's last bytes stores them as `PUT log`
/// would, in the same transaction that checks the log, and keeps them when the
/// check fails (they are log bytes all the same).
fn a_completion_s_log_tail_is_stored_before_the_log_is_checked(kind: Kind) {
    let place = Place::new(kind);
    let store = place.open(Timing::default());
    let job = started(&store, "a", "1");
    assert_eq!(
        job.log_tail_bytes,
        sortie_control_plane::store::LOG_TAIL_BYTES
    );
    let token = job.lease.token;
    assert_eq!(
        store.append_log("a", 1, &token, 0, &plain(b"hello ")),
        Ok(6)
    );
    let tail = |offset: u64, data: &str| CompleteRequest {
        attempt: 1,
        lease_token: token.clone(),
        completion: completion(b"hello world"),
        log_tail: Some(LogTail {
            offset,
            data: data.into(),
        }),
    };
    // Past what is held: nothing stored, and the answer says what is.
    assert_eq!(
        store.complete("a", &tail(8, "rld")),
        Err(Refusal::LogMismatch(6))
    );
    // Bytes that do not make the log the completion describes are kept, and
    // the completion is refused with the new length.
    assert_eq!(
        store.complete("a", &tail(6, "wor")),
        Err(Refusal::LogMismatch(9))
    );
    assert_eq!(stored_log(&store, "a").unwrap(), b"hello wor");
    // Overlapping what is held: only what is new is stored.
    let right = tail(3, "lo world");
    store.complete("a", &right).unwrap();
    assert_eq!(stored_log(&store, "a").unwrap(), b"hello world");
    assert_eq!(store.job("a").unwrap().unwrap().phase, Phase::Done);
    // The same completion again (its answer was lost) is fine, and stores nothing.
    store.complete("a", &right).unwrap();
    assert_eq!(stored_log(&store, "a").unwrap(), b"hello world");
    // A tail larger than offered is refused whole.
    let job = started(&store, "b", "2");
    let big = "x".repeat(sortie_control_plane::store::LOG_TAIL_BYTES as usize + 1);
    let mut over = tail(0, &big);
    over.lease_token = job.lease.token.clone();
    over.completion = completion(big.as_bytes());
    assert!(matches!(
        store.complete("b", &over),
        Err(Refusal::Invalid(_))
    ));
    assert_eq!(stored_log(&store, "b").unwrap(), b"");
}

fn state_survives_a_restart(kind: Kind) {
    let place = Place::new(kind);
    let token;
    {
        let store = place.open(Timing::default());
        store
            .enqueue("admin:test", spec("a"), vec![], None)
            .unwrap();
        store
            .enqueue("admin:test", spec("b"), vec![], None)
            .unwrap();
        let job = store.claim(&claim("1", "r", 1)).unwrap().remove(0);
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
        store.append_log("a", 1, &token, 0, &plain(b"abc")).unwrap();
    }
    let store = place.open(Timing::default());
    assert_eq!(store.job("a").unwrap().unwrap().phase, Phase::Running);
    assert_eq!(store.job("a").unwrap().unwrap().log_length, 3);
    assert_eq!(store.job("b").unwrap().unwrap().phase, Phase::Queued);
    // The same claim id still answers with the same job after the restart.
    assert_eq!(
        store.claim(&claim("1", "r", 1)).unwrap()[0].lease.token,
        token
    );
    store.append_log("a", 1, &token, 3, &plain(b"def")).unwrap();
    let done = CompleteRequest {
        attempt: 1,
        lease_token: token,
        completion: completion(b"abcdef"),
        log_tail: None,
    };
    store.complete("a", &done).unwrap();
    drop(store);
    let store = place.open(Timing::default());
    assert_eq!(store.job("a").unwrap().unwrap().phase, Phase::Done);
    assert!(
        store
            .enqueue("admin:test", spec("a"), vec![], None)
            .is_err(),
        "ids stay unique"
    );
}

/// A running job whose lease runs out is recorded lost; its runner (that
/// attempt, that lease token) may still deliver its log and completion, which
/// replace the verdict, and nobody else may.
fn a_silent_running_job_is_marked_lost(kind: Kind) {
    let place = Place::new(kind);
    let timing = Timing {
        lease: Duration::from_millis(100),
        ..Timing::default()
    };
    let store = place.open(timing);
    store
        .enqueue("admin:test", spec("a"), vec![], None)
        .unwrap();
    let job = store.claim(&claim("1", "r", 1)).unwrap().remove(0);
    let token = job.lease.token;
    store
        .start(
            "a",
            &Fence {
                attempt: 1,
                lease_token: token.clone(),
            },
        )
        .unwrap();
    store
        .append_log("a", 1, &token, 0, &plain(b"hello "))
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    store.sweep().unwrap();
    let job = store.job("a").unwrap().unwrap();
    assert_eq!(job.phase, Phase::Done);
    assert_eq!(job.completion.unwrap().status, JobStatus::Lost);
    let hb = HeartbeatRequest {
        attempt: 1,
        lease_token: token.clone(),
        log_length: 6,
    };
    // Its runner, heard again, is asked to stop (and may deliver).
    assert!(store.heartbeat("a", &hb).unwrap().1, "cancel");
    // Another token is fenced off, heartbeat, log and completion alike.
    let other = HeartbeatRequest {
        lease_token: "other".into(),
        ..hb.clone()
    };
    assert!(matches!(
        store.heartbeat("a", &other),
        Err(Refusal::Conflict(_))
    ));
    let late = |token: &str, log: &[u8]| CompleteRequest {
        attempt: 1,
        lease_token: token.to_string(),
        completion: completion(log),
        log_tail: None,
    };
    assert!(matches!(
        store.append_log("a", 1, "other", 6, &plain(b"world")),
        Err(Refusal::Conflict(_))
    ));
    assert!(matches!(
        store.complete("a", &late("other", b"hello ")),
        Err(Refusal::Conflict(_))
    ));
    // The holder's rest of the log, and its completion, arrive late.
    assert_eq!(
        store.append_log("a", 1, &token, 6, &plain(b"world")),
        Ok(11)
    );
    let job = store.job("a").unwrap().unwrap();
    assert_eq!(
        job.completion.unwrap().log.length,
        11,
        "the verdict's log follows"
    );
    assert_eq!(
        store.complete("a", &late(&token, b"hello world!")),
        Err(Refusal::LogMismatch(11))
    );
    store.complete("a", &late(&token, b"hello world")).unwrap();
    store.complete("a", &late(&token, b"hello world")).unwrap();
    let job = store.job("a").unwrap().unwrap();
    assert_eq!((job.phase, job.lapsed), (Phase::Done, false));
    assert_eq!(job.completion.unwrap().status, JobStatus::Succeeded);
    assert!(job.reason.unwrap().contains("recorded lost until"));
    // Delivered, it is complete like any other job.
    let mut different = late(&token, b"hello world");
    different.completion.status = JobStatus::Failed;
    assert!(matches!(
        store.complete("a", &different),
        Err(Refusal::Conflict(_))
    ));
    assert!(matches!(
        store.append_log("a", 1, &token, 11, &plain(b"!")),
        Err(Refusal::Conflict(_))
    ));
    // What it holds already, sent again by a runner that missed the answer
    // to its completion, is taken as nothing new.
    assert_eq!(store.append_log("a", 1, &token, 11, &plain(b"")), Ok(11));
    assert_eq!(
        store.append_log("a", 1, &token, 6, &plain(b"world")),
        Ok(11)
    );
    assert!(matches!(
        store.append_log("a", 1, "other", 11, &plain(b"")),
        Err(Refusal::Conflict(_))
    ));
}

fn finished_jobs_are_pruned_after_the_retention_with_their_logs(kind: Kind) {
    let place = Place::new(kind);
    let timing = Timing {
        retain: Duration::from_millis(200),
        retain_audit: Duration::from_millis(600),
        ..Timing::default()
    };
    let store = place.open(timing);
    store
        .enqueue("admin:test", spec("old"), vec![], None)
        .unwrap();
    store
        .enqueue("admin:test", spec("waiting"), vec![], None)
        .unwrap();
    let job = store.claim(&claim("1", "r", 1)).unwrap().remove(0);
    let token = job.lease.token.clone();
    let fence = Fence {
        attempt: 1,
        lease_token: token.clone(),
    };
    store.start("old", &fence).unwrap();
    store
        .append_log("old", 1, &token, 0, &plain(b"abc"))
        .unwrap();
    let done = CompleteRequest {
        attempt: 1,
        lease_token: token,
        completion: completion(b"abc"),
        log_tail: None,
    };
    store.complete("old", &done).unwrap();
    store.sweep().unwrap();
    assert!(
        store.job("old").unwrap().is_some(),
        "kept within the retention"
    );
    std::thread::sleep(Duration::from_millis(300));
    store.sweep().unwrap();
    assert!(store.job("old").unwrap().is_none(), "pruned after it");
    assert!(
        stored_log(&store, "old").unwrap().is_empty(),
        "with its log"
    );
    assert!(
        store.job("waiting").unwrap().is_some(),
        "a job that has not finished is never pruned"
    );
    // The audit log has its own, longer retention.
    assert_eq!(store.audit_log(10).unwrap().len(), 2, "the two enqueues");
    std::thread::sleep(Duration::from_millis(400));
    store.sweep().unwrap();
    assert!(
        store.audit_log(10).unwrap().is_empty(),
        "pruned after its own"
    );
}

fn a_database_from_a_newer_version_is_refused(kind: Kind) {
    let place = Place::new(kind);
    drop(place.open(Timing::default()));
    place.set_schema_version(99);
    let err = place
        .try_open(Timing::default())
        .err()
        .expect("a newer schema is refused");
    assert!(format!("{err:#}").contains("schema version 99"), "{err:#}");
}

/// State written by the journal-based control plane (0.1) comes over whole:
/// the last record of each job wins, a torn last line is ignored, logs and
/// leases keep working, and a second run adds nothing.
fn a_journal_is_migrated_with_its_jobs_leases_and_logs(kind: Kind) {
    use sortie_control_plane::store::journal;
    let old = tempfile::tempdir().unwrap();
    std::fs::create_dir(old.path().join("logs")).unwrap();
    let queued = json!({"record": "job", "id": "q", "seq": 0, "spec": spec("q"),
        "phase": "queued", "attempt": 1});
    let claimed = json!({"record": "job", "id": "r", "seq": 1, "spec": spec("r"),
        "phase": "claimed", "attempt": 1, "ran_by": "edge",
        "lease": {"token": "t0k3n", "claim_id": "c1", "runner": "edge",
                  "claimed_at_ms": 1, "expires_at_ms": 4_000_000_000_000u64}});
    let mut running = claimed.clone();
    running["phase"] = "running".into();
    let done = json!({"record": "job", "id": "d", "seq": 2, "spec": spec("d"),
        "phase": "done", "attempt": 2, "completion": completion(b"xyz")});
    let inventory = json!({"record": "inventory", "runner_id": "edge", "nodes": {"web1": {}}});
    let mut journal_text = String::new();
    for record in [&queued, &claimed, &running, &done, &inventory] {
        journal_text.push_str(&format!("{record}\n"));
    }
    journal_text.push_str("{\"record\": \"job\", \"id\": \"torn"); // a crash mid-append
    std::fs::write(old.path().join("journal.ndjson"), journal_text).unwrap();
    // A log of 2.5 MiB: stored in chunks of 1 MiB, so that a page of it
    // reads no more than that.
    let mut long = b"0123456789abcdef".repeat(5 << 15);
    long.extend_from_slice(b"\nabc");
    std::fs::write(old.path().join("logs/r.ndjson"), &long).unwrap();
    std::fs::write(old.path().join("logs/d.ndjson"), b"xyz").unwrap();

    let place = Place::new(kind);
    let store = place.open(Timing::default());
    let migrated = journal::import(&store, old.path()).unwrap();
    assert_eq!(
        migrated,
        journal::Migrated {
            jobs: 3,
            skipped: 0,
            log_bytes: long.len() as u64 + 3,
            inventories: 1
        }
    );
    assert_eq!(store.job("q").unwrap().unwrap().phase, Phase::Queued);
    assert_eq!(stored_log(&store, "d").unwrap(), b"xyz");
    assert_eq!(
        store
            .job("d")
            .unwrap()
            .unwrap()
            .completion
            .unwrap()
            .log
            .length,
        3
    );
    assert!(store.inventory().unwrap().contains_key("edge"));
    assert_eq!(place.chunks("r"), 3);
    // A page inside the long line stops 1 MiB past its end; one near the
    // line's end stops there.
    let slack = sortie_control_plane::store::LINE_SLACK;
    assert_eq!(
        store.log_window("r", 100, 10).unwrap(),
        &long[100..110 + slack]
    );
    let near = long.len() - 20;
    assert_eq!(
        store.log_window("r", near as u64, 5).unwrap(),
        &long[near..long.len() - 3]
    );
    // The running job's lease holds: its runner carries on where the log
    // ended, and its completion is checked against the checksum kept.
    let running = store.job("r").unwrap().unwrap();
    assert_eq!(running.phase, Phase::Running);
    assert!(running.log_hash.is_some());
    let end = long.len() as u64;
    assert_eq!(
        store.append_log("r", 1, "t0k3n", end, &plain(b"def")),
        Ok(end + 3)
    );
    long.extend_from_slice(b"def");
    let finish = CompleteRequest {
        attempt: 1,
        lease_token: "t0k3n".into(),
        completion: completion(&long),
        log_tail: None,
    };
    store.complete("r", &finish).unwrap();
    // New jobs come after the migrated ones.
    store
        .enqueue("admin:test", spec("new"), vec![], None)
        .unwrap();
    assert!(store.job("new").unwrap().unwrap().seq > 2);
    let again = journal::import(&store, old.path()).unwrap();
    assert_eq!((again.jobs, again.skipped), (0, 3));
}

/// A journal's log that would block (a FIFO) or never end (a device) is
/// refused, naming it, before the store is touched.
fn a_journal_log_that_is_not_a_regular_file_is_refused(kind: Kind) {
    use sortie_control_plane::store::journal;
    let old = tempfile::tempdir().unwrap();
    std::fs::create_dir(old.path().join("logs")).unwrap();
    let job = json!({"record": "job", "id": "f", "seq": 0, "spec": spec("f"),
        "phase": "queued", "attempt": 1});
    std::fs::write(old.path().join("journal.ndjson"), format!("{job}\n")).unwrap();
    let place = Place::new(kind);
    let store = place.open(Timing::default());
    let log = old.path().join("logs/f.ndjson");
    let mkfifo = std::process::Command::new("mkfifo").arg(&log).status();
    assert!(mkfifo.is_ok_and(|status| status.success()));
    let err = format!("{:#}", journal::import(&store, old.path()).unwrap_err());
    assert!(
        err.contains("not a regular file") && err.contains("f.ndjson"),
        "{err}"
    );
    std::fs::remove_file(&log).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &log).unwrap();
    let err = format!("{:#}", journal::import(&store, old.path()).unwrap_err());
    assert!(err.contains("not a regular file"), "{err}");
    assert!(store.job("f").unwrap().is_none(), "nothing stored");
    // Moved aside, the journal migrates.
    std::fs::remove_file(&log).unwrap();
    assert_eq!(journal::import(&store, old.path()).unwrap().jobs, 1);
}

/// A log stored before running checksums were kept has its checksum state
/// rebuilt when a store opens on it, or at its next append: its completions
/// are then checked without reading the log back.
fn a_log_stored_without_a_checksum_state_gets_one_at_its_next_append(kind: Kind) {
    let place = Place::new(kind);
    let store = place.open(Timing::default());
    let token = started(&store, "a", "1").lease.token;
    assert_eq!(store.append_log("a", 1, &token, 0, &plain(b"one\n")), Ok(4));
    let forget = || {
        place.execute("UPDATE jobs SET record = replace(record, '\"log_hash\"', '\"stale_field\"')")
    };
    // A store that was open before: the next append rebuilds it.
    forget();
    assert_eq!(store.job("a").unwrap().unwrap().log_hash, None);
    assert_eq!(store.append_log("a", 1, &token, 4, &zstd(b"two\n")), Ok(8));
    let kept = store.job("a").unwrap().unwrap().log_hash;
    assert!(kept.is_some());
    drop(store);
    forget();
    // A log that cannot be read back keeps no store from opening: it is
    // that job's trouble.
    place.execute("UPDATE log_chunks SET encoding = 'zstd' WHERE job_id = 'a'");
    let store = place.open(Timing::default());
    assert_eq!(store.job("a").unwrap().unwrap().log_hash, None);
    drop(store);
    place.execute("UPDATE log_chunks SET encoding = 'identity' WHERE job_id = 'a'");
    // A store opened on a readable one rebuilds it at once, the same.
    let store = place.open(Timing::default());
    assert_eq!(store.job("a").unwrap().unwrap().log_hash, kept);
    // Kept from here on: with the stored log taken away behind the store's
    // back, completions, refused or not, are checked against what was
    // appended, never against the log read back.
    place.execute("DELETE FROM log_chunks WHERE job_id = 'a'");
    let wrong = CompleteRequest {
        attempt: 1,
        lease_token: token.clone(),
        completion: completion(b"one\ntwo\nthree\n"),
        log_tail: None,
    };
    assert!(store.complete("a", &wrong).is_err());
    let right = CompleteRequest {
        completion: completion(b"one\ntwo\n"),
        ..wrong
    };
    store.complete("a", &right).unwrap();
}

/// Three stores on one database, as three replicas are: 300 jobs claimed by
/// twelve runners at once, each job handed out exactly once.
fn replicas_sharing_a_database_never_hand_out_the_same_job(kind: Kind) {
    let place = Place::new(kind);
    let replicas: Vec<Arc<Store>> = (0..3)
        .map(|_| Arc::new(place.open(Timing::default())))
        .collect();
    claim_all_at_once(&replicas, 300, 12, 2);
}

/// A cancelled job that was claimed but not started never runs: its start is
/// refused and it ends failed; a lapsed claim of one is not handed out again.
fn a_cancelled_claim_is_never_started_nor_handed_out_again(kind: Kind) {
    let place = Place::new(kind);
    let store = place.open(SHORT_ACK);
    store
        .enqueue("admin:test", spec("a"), vec![], None)
        .unwrap();
    let job = store.claim(&claim("1", "r", 1)).unwrap().remove(0);
    store.cancel("admin:test", "a").unwrap();
    let fence = Fence {
        attempt: 1,
        lease_token: job.lease.token,
    };
    assert!(matches!(
        store.start("a", &fence),
        Err(Refusal::Conflict(_))
    ));
    assert_eq!(store.job("a").unwrap().unwrap().phase, Phase::Failed);

    store
        .enqueue("admin:test", spec("b"), vec![], None)
        .unwrap();
    store.claim(&claim("2", "ghost", 1)).unwrap();
    store.cancel("admin:test", "b").unwrap();
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(store.sweep().unwrap().cancelled, 1);
    let b = store.job("b").unwrap().unwrap();
    assert_eq!((b.phase, b.attempt), (Phase::Failed, 1));
    assert!(store.claim(&claim("3", "r9", 1)).unwrap().is_empty());
}

/// The fence holds on every call: a failed job's `fail` replayed with another
/// token is refused, and a deadline that is not a time is a bad request.
fn fences_and_deadlines_are_checked(kind: Kind) {
    let place = Place::new(kind);
    let store = place.open(Timing::default());
    store
        .enqueue("admin:test", spec("a"), vec![], None)
        .unwrap();
    let job = store.claim(&claim("1", "r", 1)).unwrap().remove(0);
    let fence = Fence {
        attempt: 1,
        lease_token: job.lease.token.clone(),
    };
    store.fail("a", &fence, "no room").unwrap();
    store.fail("a", &fence, "no room").unwrap();
    let forged = Fence {
        attempt: 1,
        lease_token: "forged".into(),
    };
    assert!(matches!(
        store.fail("a", &forged, "x"),
        Err(Refusal::Conflict(_))
    ));
    store.cancel("admin:test", "a").unwrap();
    let mut req = claim("2", "r", 1);
    req.deadline = Some("garbage".into());
    assert!(matches!(store.claim(&req), Err(Refusal::Invalid(_))));
    req.deadline = Some("2999-01-01t00:00:00z".into());
    store.claim(&req).unwrap();
}

/// A journal that is not what the old server wrote (a wrong line in the
/// middle, an id runners refuse, a path for an id, a time past year 9999) is
/// refused whole, naming the lines; nothing is imported.
fn a_journal_with_foreign_records_is_refused_whole(kind: Kind) {
    use sortie_control_plane::store::journal;
    let old = tempfile::tempdir().unwrap();
    std::fs::create_dir(old.path().join("logs")).unwrap();
    let job = |id: &str| {
        json!({"record": "job", "id": id, "seq": 0, "spec": spec("x"), "phase": "queued",
               "attempt": 1})
    };
    let mut wrong_type = job("t");
    wrong_type["attempt"] = "1".into();
    let mut far = job("far");
    far["finished_at_ms"] = u64::MAX.into();
    let lines = [
        job("fine"),
        wrong_type,
        job("../../etc/passwd"),
        job("sp ace"),
        far,
        job("fine-too"),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(old.path().join("journal.ndjson"), text).unwrap();
    let place = Place::new(kind);
    let store = place.open(Timing::default());
    let err = journal::import(&store, old.path()).unwrap_err().to_string();
    for line in ["line 2:", "line 3:", "line 4:", "line 5:"] {
        assert!(err.contains(line), "{line} in {err}");
    }
    assert!(
        !err.contains("line 1:") && !err.contains("line 6:"),
        "{err}"
    );
    assert!(store.job("fine").unwrap().is_none(), "nothing was imported");
}

/// SQLite: the database and its WAL are private to the server's user whatever
/// the umask, and a database removed under a running server makes writes fail
/// (503) instead of being acknowledged into a file that is gone.
#[test]
fn the_sqlite_database_is_private_and_its_removal_is_noticed() {
    use std::os::unix::fs::PermissionsExt;
    let place = Place::new(Kind::Sqlite);
    let store = place.open(Timing::default());
    store
        .enqueue("admin:test", spec("a"), vec![], None)
        .unwrap();
    for name in ["control-plane.db", "control-plane.db-wal"] {
        let mode = std::fs::metadata(place.dir.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    for name in [
        "control-plane.db",
        "control-plane.db-wal",
        "control-plane.db-shm",
    ] {
        let _ = std::fs::remove_file(place.dir.path().join(name));
    }
    assert!(matches!(
        store.enqueue("admin:test", spec("b"), vec![], None),
        Err(Refusal::Unavailable(_))
    ));
}

/// PostgreSQL over TCP: with --database-ca-file the connection is TLS (the
/// server says so), a certificate from another CA is refused, and a server on
/// another host without a CA is refused before any connection.
#[test]
fn postgresql_over_tcp_is_tls_checked_against_the_ca() {
    let cluster = postgres::cluster();
    let socket = cluster.database();
    let tcp = cluster.tcp_url(&socket);
    let store = Store::postgres(&tcp, None, Some(&cluster.ca_file()), Timing::default()).unwrap();
    store
        .enqueue("admin:test", spec("over-tls"), vec![], None)
        .unwrap();
    let rows = cluster.query(
        &socket,
        "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = 'sortie-control-plane' AND a.datname = current_database()",
    );
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(|r| r.get::<_, bool>(0)),
        "every connection is TLS"
    );

    let other = tempfile::tempdir().unwrap();
    let stranger = sortie_control_plane::pki::Authority::generate("another CA").unwrap();
    std::fs::write(other.path().join("ca.pem"), stranger.cert_pem()).unwrap();
    let refused = Store::postgres(
        &tcp,
        None,
        Some(&other.path().join("ca.pem")),
        Timing::default(),
    );
    assert!(refused.is_err(), "a certificate from another CA is refused");

    let remote = "host=db.example.invalid port=5432 user=sortie dbname=sortie";
    let err = Store::postgres(remote, None, None, Timing::default())
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("--database-ca-file"), "{err:#}");
}

/// Registered runners: the control plane assigns the tags (a claim may narrow
/// them, never widen them, whatever id it gives), tokens are kept only as keyed
/// hashes, a rotated token keeps working for its grace only, a revoked or
/// expired one not at all.
fn registered_runners_claim_only_what_their_tags_allow(kind: Kind) {
    let place = Place::new(kind);
    let store = place.open(Timing::default());
    let (_, token) = store
        .register("admin:test", "r1", vec!["a".into()], None)
        .unwrap();
    let r1 = store.authenticate(&token).unwrap().expect("its own token");
    assert_eq!(r1.runner.name, "r1");
    store
        .enqueue("admin:test", spec("needs-b"), vec!["b".into()], None)
        .unwrap();
    let mut req = claim("1", "pretends-to-be-r9", 1);
    req.runner.tags = vec!["b".into()];
    assert!(
        store.claim_as(&req, Some(&r1)).unwrap().is_empty(),
        "a runner registered with {{a}} never gets work needing {{b}}"
    );
    store
        .enqueue("admin:test", spec("needs-a"), vec!["a".into()], None)
        .unwrap();
    req.claim_id = "2".into();
    req.runner.tags = Vec::new();
    let got = store.claim_as(&req, Some(&r1)).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, "needs-a");
    let job = store.job("needs-a").unwrap().unwrap();
    assert_eq!(
        job.ran_by.as_deref(),
        Some("r1"),
        "the registered name, not the claimed id"
    );
    assert!(store.runners().unwrap()[0].last_seen_ms.is_some());
    let fence = Fence {
        attempt: 1,
        lease_token: got[0].lease.token.clone(),
    };
    store.start("needs-a", &fence).unwrap();
    let done = CompleteRequest {
        attempt: 1,
        lease_token: fence.lease_token.clone(),
        completion: completion(b""),
        log_tail: None,
    };
    store.complete("needs-a", &done).unwrap();
    let last = store.runners().unwrap()[0].last_result.clone().unwrap();
    assert_eq!(
        (last.job.as_str(), last.status.as_str()),
        ("needs-a", "succeeded")
    );
    // Its inventory: reported with its own token, never by another under its name.
    assert!(matches!(
        store.put_inventory("r1", false, json!([]), json!([])),
        Err(Refusal::Forbidden(_))
    ));
    assert!(store.runners().unwrap()[0].inventory_at_ms.is_none());
    store
        .put_inventory("r1", true, json!([]), json!([]))
        .unwrap();
    assert!(store.runners().unwrap()[0].inventory_at_ms.is_some());
    // The shared token may not claim under a registered runner's name.
    assert!(matches!(
        store.claim_as(&claim("5", "r1", 1), None),
        Err(Refusal::Forbidden(_))
    ));

    // Narrowing: registered {a, b}, asking for {a} only.
    let (_, token3) = store
        .register("admin:test", "r3", vec!["a".into(), "b".into()], None)
        .unwrap();
    let r3 = store.authenticate(&token3).unwrap().unwrap();
    let mut narrow = claim("3", "r3", 1);
    narrow.runner.tags = vec!["a".into()];
    assert!(store.claim_as(&narrow, Some(&r3)).unwrap().is_empty());
    narrow.claim_id = "4".into();
    narrow.runner.tags = vec!["a".into(), "b".into()];
    assert_eq!(store.claim_as(&narrow, Some(&r3)).unwrap()[0].id, "needs-b");

    let (_, new) = store
        .rotate("admin:test", "r1", Duration::from_millis(300))
        .unwrap();
    assert!(
        matches!(
            store.rotate("admin:test", "r1", Duration::ZERO),
            Err(Refusal::Conflict(_))
        ),
        "no second rotation while the first one's grace runs"
    );
    assert!(store.authenticate(&new).unwrap().is_some());
    assert!(
        store.authenticate(&token).unwrap().is_some(),
        "the old token, within the grace"
    );
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        store.authenticate(&token).unwrap().is_none(),
        "not after it"
    );
    let still = store.authenticate(&new).unwrap().unwrap();
    store.revoke("admin:test", "r1").unwrap();
    assert!(store.authenticate(&new).unwrap().is_none(), "revoked");
    assert!(
        matches!(
            store.claim_as(&claim("6", "r1", 1), Some(&still)),
            Err(Refusal::Forbidden(_))
        ),
        "a claim authenticated before the revocation (a long poll) is refused after it"
    );
    assert_eq!(store.revoke("admin:test", "r1"), Err(Refusal::Gone));
    let past = sortie_control_plane::store::now_ms() - 1;
    assert!(matches!(
        store.register("admin:test", "r2", Vec::new(), Some(past)),
        Err(Refusal::Invalid(_))
    ));
    let soon = sortie_control_plane::store::now_ms() + 200;
    let (_, expired) = store
        .register("admin:test", "r2", Vec::new(), Some(soon))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(store.authenticate(&expired).unwrap().is_none(), "expired");
    assert!(store.authenticate("srt_made_up").unwrap().is_none());
    for bad in ["no way", ".hidden", "a/b", ""] {
        assert!(
            matches!(
                store.register("admin:test", bad, Vec::new(), None),
                Err(Refusal::Invalid(_))
            ),
            "{bad}"
        );
    }
    assert!(matches!(
        store.register("admin:test", "r2", Vec::new(), None),
        Err(Refusal::Conflict(_))
    ));
    for t in [&token, &new, &token3, &expired] {
        assert!(!place.holds(t), "a token is stored in clear");
    }
}

/// A definition from JSON.
fn definition(value: serde_json::Value) -> sortie_control_plane::store::DefinitionInput {
    serde_json::from_value(value).unwrap()
}

/// Claim the next queued job as runner `r`, start it and complete it with
/// this status and result data; its id.
fn run_next(store: &Store, status: JobStatus, data: &[(&str, &str)]) -> String {
    run_next_after(store, status, data, Duration::ZERO)
}

/// [`run_next`], its completion sent `pause` after it started (past a short
/// lease, once the sweep has recorded it lost).
fn run_next_after(
    store: &Store,
    status: JobStatus,
    data: &[(&str, &str)],
    pause: Duration,
) -> String {
    let claim_id = sortie_control_plane::store::random_token();
    let mut req = claim(&claim_id, "r", 1);
    req.runner.tags = vec!["a".into()];
    let got = store.claim(&req).unwrap();
    let job = got.first().expect("a queued job");
    let fence = Fence {
        attempt: job.attempt,
        lease_token: job.lease.token.clone(),
    };
    store.start(&job.id, &fence).unwrap();
    if !pause.is_zero() {
        std::thread::sleep(pause);
        store.sweep().unwrap();
    }
    let mut done = completion(b"");
    done.status = status;
    done.data = data
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let req = CompleteRequest {
        attempt: job.attempt,
        lease_token: job.lease.token.clone(),
        completion: done,
        log_tail: None,
    };
    store.complete(&job.id, &req).unwrap();
    job.id.clone()
}

fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Job definitions: loading a changed one makes a new version, the same one
/// changes nothing; a run's options are checked against the definition
/// before anything is queued; an execution keeps the version it ran; every
/// change is in the audit log with who made it.
fn definitions_are_versioned_and_runs_keep_their_version(kind: Kind) {
    use sortie_control_plane::store::Filter;
    let place = Place::new(kind);
    let store = place.open(Timing::default());
    let v1 = json!({
        "name": "deploy",
        "group": "web",
        "spec": {"steps": [{"shell": "deploy ${option.env} ${option.version}"}]},
        "options": [
            {"name": "env", "required": true, "enforced": true, "values": ["prod", "stage"]},
            {"name": "version", "default": "1.0", "regex": "[0-9.]+"},
        ],
        "tags": ["a"],
    });
    let (first, new) = store.load("admin:alice", definition(v1.clone())).unwrap();
    assert_eq!((first.version, new), (1, true));
    let (same, new) = store.load("admin:alice", definition(v1.clone())).unwrap();
    assert_eq!((same.version, new), (1, false), "the same definition again");
    let mut v2 = v1.clone();
    v2["description"] = "with a description".into();
    assert_eq!(
        store.load("admin:bob", definition(v2)).unwrap().0.version,
        2
    );

    for (given, why) in [
        (options(&[]), "env is required"),
        (options(&[("env", "dev")]), "allowed values"),
        (
            options(&[("env", "prod"), ("version", "1; reboot")]),
            "does not match",
        ),
        (
            options(&[("env", "prod"), ("colour", "red")]),
            "not defined",
        ),
    ] {
        match store.run("admin:alice", "deploy", &given) {
            Err(Refusal::Invalid(e)) => assert!(e.contains(why), "{e}"),
            other => panic!("{given:?}: {other:?}"),
        }
    }
    assert!(matches!(
        store.run("admin:alice", "no-such-job", &options(&[])),
        Err(Refusal::NotFound(_))
    ));
    assert_eq!(
        store.page(&Filter::default(), 100, 0).unwrap().total,
        0,
        "nothing queued by a refused run"
    );

    let id = store
        .run("admin:alice", "deploy", &options(&[("env", "prod")]))
        .unwrap();
    assert!(id.starts_with("deploy."), "{id}");
    let v3 = json!({"name": "deploy", "spec": {"steps": [{"shell": "true"}]}});
    assert_eq!(
        store.load("admin:bob", definition(v3)).unwrap().0.version,
        3
    );
    let job = store.job(&id).unwrap().unwrap();
    let ran = job.definition.as_ref().unwrap();
    assert_eq!(
        (ran.name.as_str(), ran.version),
        ("deploy", 2),
        "the version it ran"
    );
    assert_eq!(job.spec["id"], id.as_str());
    assert_eq!(
        job.spec["options"],
        json!({"env": "prod", "version": "1.0"})
    );
    assert_eq!(job.spec["job"]["group"], "web");
    assert_eq!(job.tags, vec!["a".to_string()]);
    assert_eq!(job.started_by.as_deref(), Some("admin:alice"));
    assert!(
        store
            .definition("deploy", Some(2))
            .unwrap()
            .unwrap()
            .input
            .options
            .len()
            == 2,
        "an old version is kept"
    );

    // Listing by job, runner and time.
    store
        .enqueue("admin:test", spec("ad-hoc"), vec![], None)
        .unwrap();
    let by_job = Filter {
        job: Some("deploy".into()),
        ..Filter::default()
    };
    let page = store.page(&by_job, 100, 0).unwrap();
    assert_eq!((page.total, page.jobs[0].id.as_str()), (1, id.as_str()));
    run_next(&store, JobStatus::Succeeded, &[]);
    let by_runner = Filter {
        runner: Some("r".into()),
        ..Filter::default()
    };
    assert_eq!(store.page(&by_runner, 100, 0).unwrap().total, 1);
    let later = Filter {
        since_ms: Some(sortie_control_plane::store::now_ms() + 60_000),
        ..Filter::default()
    };
    assert_eq!(store.page(&later, 100, 0).unwrap().total, 0);

    let log = store.audit_log(100).unwrap();
    let seen: Vec<(&str, &str, &str)> = log
        .iter()
        .rev()
        .map(|e| (e.by.as_str(), e.action.as_str(), e.target.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("admin:alice", "job.load", "deploy"),
            ("admin:bob", "job.load", "deploy"),
            ("admin:alice", "job.run", id.as_str()),
            ("admin:bob", "job.load", "deploy"),
            ("admin:test", "job.enqueue", "ad-hoc"),
        ]
    );
}

/// Follow-ups: a result's data starts the next job with options from it; a
/// failure takes the failure path; a condition that does not hold starts
/// nothing; a loop stops at the chain depth limit, each execution recording
/// its parent.
/// A lapsed execution's `lost` started the follow-ups it triggers; its real
/// end, delivered late, starts only those `lost` did not.
fn a_lapsed_execution_starts_each_follow_up_once(kind: Kind) {
    let place = Place::new(kind);
    let store = place.open(Timing {
        lease: Duration::from_millis(100),
        ..Timing::default()
    });
    let step = json!({"steps": [{"shell": "true"}]});
    let page = json!({"name": "page", "spec": step, "tags": ["a"],
        "options": [{"name": "why", "required": true}]});
    store.load("admin:test", definition(page)).unwrap();
    let check = json!({"name": "check", "spec": step, "tags": ["a"], "follow_ups": [
        {"on": "failed", "run": "page", "options": {"why": "failed:${execution.status}"}},
        {"on": "any", "run": "page", "options": {"why": "any:${execution.status}"}},
        {"on": "succeeded", "run": "page", "options": {"why": "ok:${execution.status}"}},
    ]});
    store.load("admin:test", definition(check)).unwrap();
    for (late, again) in [
        (JobStatus::Failed, vec![]),
        (JobStatus::Succeeded, vec!["ok:succeeded"]),
    ] {
        let id = store.run("admin:test", "check", &options(&[])).unwrap();
        assert_eq!(
            run_next_after(&store, late, &[], Duration::from_millis(150)),
            id
        );
        let job = store.job(&id).unwrap().unwrap();
        assert_eq!(job.status(), late.as_str());
        let started: Vec<String> = job
            .follow_ups
            .iter()
            .filter_map(|f| store.job(f).ok().flatten())
            .map(|j| j.spec["options"]["why"].as_str().unwrap().to_string())
            .collect();
        let mut expected = vec!["failed:lost", "any:lost"];
        expected.extend(&again);
        assert_eq!(started, expected, "{:?}", job.follow_ups);
        // The page runs themselves, out of the way of the next round.
        for _ in 0..expected.len() {
            run_next(&store, JobStatus::Succeeded, &[]);
        }
    }
}

fn follow_ups_start_on_results_and_stop_at_the_depth_limit(kind: Kind) {
    use sortie_control_plane::store::definition::MAX_CHAIN_DEPTH;
    let place = Place::new(kind);
    let store = place.open(Timing::default());
    let step = json!({"steps": [{"shell": "true"}]});
    for (name, opts) in [
        ("repair", vec!["state", "from"]),
        ("page-oncall", vec!["why"]),
    ] {
        let defs: Vec<_> = opts
            .iter()
            .map(|o| json!({"name": o, "required": true}))
            .collect();
        let d = json!({"name": name, "spec": step, "options": defs, "tags": ["a"]});
        store.load("admin:test", definition(d)).unwrap();
    }
    let check = json!({
        "name": "check",
        "spec": step,
        "tags": ["a"],
        "follow_ups": [
            {"on": "succeeded", "if": "data.state == \"degraded\"", "run": "repair",
             "options": {"state": "${data.state}", "from": "${execution.id}"}},
            {"on": "failed", "run": "page-oncall", "options": {"why": "${execution.status}"}},
        ],
    });
    store.load("admin:test", definition(check)).unwrap();

    let a = store.run("admin:test", "check", &options(&[])).unwrap();
    assert_eq!(
        run_next(&store, JobStatus::Succeeded, &[("state", "degraded")]),
        a
    );
    let parent = store.job(&a).unwrap().unwrap();
    assert_eq!(parent.follow_ups.len(), 1, "{:?}", parent.follow_ups);
    let child = store.job(&parent.follow_ups[0]).unwrap().unwrap();
    assert_eq!(child.definition.as_ref().unwrap().name, "repair");
    assert_eq!(child.parent.as_deref(), Some(a.as_str()));
    assert_eq!(
        (child.depth, child.started_by.as_deref()),
        (1, Some("follow-up"))
    );
    assert_eq!(
        child.spec["options"],
        json!({"state": "degraded", "from": a})
    );
    assert_eq!(run_next(&store, JobStatus::Succeeded, &[]), child.id);

    let healthy = store.run("admin:test", "check", &options(&[])).unwrap();
    run_next(&store, JobStatus::Succeeded, &[("state", "ok")]);
    assert!(store.job(&healthy).unwrap().unwrap().follow_ups.is_empty());

    let broken = store.run("admin:test", "check", &options(&[])).unwrap();
    run_next(&store, JobStatus::TimedOut, &[]);
    let paged = &store.job(&broken).unwrap().unwrap().follow_ups[0];
    assert_eq!(
        store.job(paged).unwrap().unwrap().spec["options"],
        json!({"why": "timed_out"})
    );
    run_next(&store, JobStatus::Succeeded, &[]);

    // A follow-up whose options break its job's rules is not started, and says why.
    let strict = json!({"name": "strict", "spec": step, "tags": ["a"],
        "follow_ups": [{"run": "repair", "options": {"state": "${data.missing}"}}]});
    store.load("admin:test", definition(strict)).unwrap();
    let s = store.run("admin:test", "strict", &options(&[])).unwrap();
    run_next(&store, JobStatus::Succeeded, &[]);
    let note = &store.job(&s).unwrap().unwrap().follow_ups[0];
    assert!(
        note.contains("not started") && note.contains("required"),
        "{note}"
    );

    // A job that starts itself: the chain stops at the limit.
    let looping = json!({"name": "again", "spec": step, "tags": ["a"],
        "follow_ups": [{"on": "any", "run": "again"}]});
    store.load("admin:test", definition(looping)).unwrap();
    let mut id = store.run("admin:test", "again", &options(&[])).unwrap();
    let mut runs = 0;
    loop {
        assert_eq!(run_next(&store, JobStatus::Failed, &[]), id);
        runs += 1;
        let job = store.job(&id).unwrap().unwrap();
        match job.follow_ups[0].contains("not started") {
            true => {
                assert!(job.follow_ups[0].contains("deep"), "{:?}", job.follow_ups);
                assert_eq!(job.depth, MAX_CHAIN_DEPTH);
                break;
            }
            false => id = job.follow_ups[0].clone(),
        }
        assert!(runs <= MAX_CHAIN_DEPTH, "the chain did not stop");
    }
    assert_eq!(runs, MAX_CHAIN_DEPTH + 1);

    // A job that starts itself 16 times over: the chain's budget bounds the
    // whole tree, not only its depth.
    use sortie_control_plane::store::definition::{MAX_CHAIN_EXECUTIONS, MAX_FOLLOW_UPS};
    let fan: Vec<_> = (0..MAX_FOLLOW_UPS)
        .map(|_| json!({"on": "any", "run": "fan"}))
        .collect();
    let fan = json!({"name": "fan", "spec": step, "tags": ["a"], "follow_ups": fan});
    store.load("admin:test", definition(fan)).unwrap();
    store.run("admin:test", "fan", &options(&[])).unwrap();
    let mut ran = 0;
    while store.page(&queued(), 1, 0).unwrap().total > 0 {
        run_next(&store, JobStatus::Succeeded, &[]);
        ran += 1;
    }
    assert!(
        ran > MAX_FOLLOW_UPS && ran <= 1 + MAX_CHAIN_EXECUTIONS as usize,
        "{ran} executions from one run"
    );
}

fn queued() -> sortie_control_plane::store::Filter {
    sortie_control_plane::store::Filter {
        status: Some("queued".into()),
        ..Default::default()
    }
}

/// Schedules: several schedulers on one database (replicas) queue one
/// execution per fire time, every fire time once; without overlap a fire
/// time is skipped while the last execution runs; a misfire is skipped or
/// run once as the definition says.
fn schedules_fire_once_per_fire_time_across_replicas(kind: Kind) {
    use sortie_control_plane::store::{now_ms, Filter};
    let place = Place::new(kind);
    let timing = Timing {
        misfire_grace: Duration::from_millis(300),
        ..Timing::default()
    };
    let replicas: Vec<Arc<Store>> = (0..3).map(|_| Arc::new(place.open(timing))).collect();
    let every_second = |name: &str, overlap: bool, misfire: &str| {
        json!({"name": name, "spec": {"steps": [{"shell": "true"}]}, "schedule": {
            "cron": "* * * * * *", "timezone": "Europe/Paris", "overlap": overlap,
            "misfire": misfire}})
    };
    let began = now_ms();
    replicas[0]
        .load("admin:test", definition(every_second("tick", true, "skip")))
        .unwrap();
    replicas[0]
        .load(
            "admin:test",
            definition(every_second("single", false, "skip")),
        )
        .unwrap();
    let ticking: Vec<_> = replicas
        .iter()
        .map(|store| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut queued = Vec::new();
                while now_ms() < began + 3_500 {
                    queued.extend(store.fire_schedules().unwrap());
                    std::thread::sleep(Duration::from_millis(20));
                }
                queued
            })
        })
        .collect();
    let mut queued: Vec<String> = ticking
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let ended = now_ms();
    queued.sort();
    let ticks: Vec<u64> = queued
        .iter()
        .filter_map(|id| id.strip_prefix("tick.s"))
        .map(|ms| ms.parse().unwrap())
        .collect();
    let mut distinct = ticks.clone();
    distinct.dedup();
    assert_eq!(ticks, distinct, "a fire time queued twice: {queued:?}");
    // Every whole second after the load and before the end fired once.
    let expected: Vec<u64> = (began / 1000 + 1..=ended / 1000 - 1)
        .map(|s| s * 1000)
        .collect();
    assert!(
        expected.iter().all(|s| ticks.contains(s)) && ticks.len() <= expected.len() + 1,
        "fired {ticks:?}, expected {expected:?}"
    );
    let all = replicas[1].page(&Filter::default(), 1000, 0).unwrap();
    assert_eq!(
        all.total as usize,
        queued.len(),
        "the store holds what was queued"
    );
    let single = Filter {
        job: Some("single".into()),
        ..Filter::default()
    };
    assert_eq!(
        replicas[2].page(&single, 10, 0).unwrap().total,
        1,
        "no overlap: later fire times skipped while the first is queued"
    );
    let skips = replicas[0]
        .audit_log(1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "schedule.skip" && e.target == "single")
        .count();
    assert_eq!(
        skips, 1,
        "a run of skipped fire times is in the audit log once"
    );

    // Ticks further apart than the cron's period (within the default grace):
    // every fire time still runs.
    let sparse = &place.open(Timing::default());
    sparse
        .load(
            "admin:test",
            definition(every_second("sparse", true, "skip")),
        )
        .unwrap();
    let from = now_ms();
    let mut sparse_ids = Vec::new();
    while now_ms() < from + 5_000 {
        std::thread::sleep(Duration::from_millis(1_700));
        sparse_ids.extend(sparse.fire_schedules().unwrap());
    }
    let to = now_ms();
    for second in from / 1000 + 1..to / 1000 {
        let id = format!("sparse.s{}", second * 1000);
        assert!(
            sparse_ids.contains(&id) || to - second * 1000 < 1_700,
            "{id} in {sparse_ids:?}"
        );
    }

    // A new version fires for no time before it was loaded, even with
    // run_once and the mark an older version left.
    let store = &replicas[0];
    let yearly = json!({"name": "changed", "spec": {"steps": [{"shell": "true"}]},
        "schedule": {"cron": "0 0 1 1 *"}});
    store.load("admin:test", definition(yearly)).unwrap();
    store.fire_schedules().unwrap();
    std::thread::sleep(Duration::from_millis(1000 - now_ms() % 1000 + 1100));
    store
        .load(
            "admin:test",
            definition(every_second("changed", true, "run_once")),
        )
        .unwrap();
    let fired = store.fire_schedules().unwrap();
    assert!(
        !fired.iter().any(|id| id.starts_with("changed.")),
        "fired for a time before its version: {fired:?}"
    );

    // Misfires: a fire time found 0.5 s late (beyond the 0.3 s grace).
    for (name, policy, runs) in [("late-skip", "skip", 0), ("late-once", "run_once", 1)] {
        let store = &replicas[0];
        store
            .load("admin:test", definition(every_second(name, true, policy)))
            .unwrap();
        let now = now_ms();
        std::thread::sleep(Duration::from_millis(1000 - now % 1000 + 500));
        let fired: Vec<_> = store
            .fire_schedules()
            .unwrap()
            .into_iter()
            .filter(|id| id.starts_with(&format!("{name}.")))
            .collect();
        assert_eq!(fired.len(), runs, "{name}: {fired:?}");
    }
}

/// Named admins: each token its own (kept only as a keyed hash), revoked
/// alone; what they do is recorded under their name.
fn admins_have_their_own_revocable_tokens(kind: Kind) {
    let place = Place::new(kind);
    let store = place.open(Timing::default());
    let (alice, token) = store.add_admin("admin:admin", "alice").unwrap();
    assert!(token.starts_with("sat_"));
    assert_eq!(alice.created_by, "admin:admin");
    let found = store.authenticate_admin(&token).unwrap().unwrap();
    assert_eq!(found.name, "alice");
    assert!(matches!(
        store.add_admin("admin:admin", "alice"),
        Err(Refusal::Conflict(_))
    ));
    for bad in ["admin", "", "no way"] {
        assert!(
            matches!(
                store.add_admin("admin:admin", bad),
                Err(Refusal::Invalid(_))
            ),
            "{bad}"
        );
    }
    let (_, bob) = store.add_admin("admin:alice", "bob").unwrap();
    assert!(
        !place.holds(&token) && !place.holds(&bob),
        "an admin token in clear"
    );
    store.revoke_admin("admin:bob", "alice").unwrap();
    assert!(
        store.authenticate_admin(&token).unwrap().is_none(),
        "revoked"
    );
    assert!(
        store.authenticate_admin(&bob).unwrap().is_some(),
        "the other one works"
    );
    assert!(matches!(
        store.revoke_admin("admin:bob", "alice"),
        Err(Refusal::NotFound(_))
    ));
    let log = store.audit_log(10).unwrap();
    assert_eq!(
        (
            log[0].by.as_str(),
            log[0].action.as_str(),
            log[0].target.as_str()
        ),
        ("admin:bob", "admin.revoke", "alice")
    );
}

/// Every test above, once per backend.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() { super::$name(super::Kind::Sqlite) })*
        }
        mod postgresql {
            $(#[test] fn $name() { super::$name(super::Kind::Postgres) })*
        }
    };
}

on_every_backend!(
    concurrent_claims_hand_each_job_to_exactly_one_runner,
    the_same_claim_id_gets_the_same_answer,
    tags_and_runner_ids_select_who_gets_a_job,
    a_job_whose_timeout_cannot_fit_the_deadline_is_not_given,
    an_unstarted_claim_returns_to_the_queue_with_the_next_attempt,
    logs_are_offset_addressed_and_completion_checks_them,
    compressed_log_bodies_read_back_as_the_plain_log,
    a_completion_s_log_tail_is_stored_before_the_log_is_checked,
    state_survives_a_restart,
    a_silent_running_job_is_marked_lost,
    finished_jobs_are_pruned_after_the_retention_with_their_logs,
    a_database_from_a_newer_version_is_refused,
    a_journal_is_migrated_with_its_jobs_leases_and_logs,
    a_log_stored_without_a_checksum_state_gets_one_at_its_next_append,
    a_journal_log_that_is_not_a_regular_file_is_refused,
    replicas_sharing_a_database_never_hand_out_the_same_job,
    a_cancelled_claim_is_never_started_nor_handed_out_again,
    fences_and_deadlines_are_checked,
    a_journal_with_foreign_records_is_refused_whole,
    registered_runners_claim_only_what_their_tags_allow,
    definitions_are_versioned_and_runs_keep_their_version,
    follow_ups_start_on_results_and_stop_at_the_depth_limit,
    a_lapsed_execution_starts_each_follow_up_once,
    schedules_fire_once_per_fire_time_across_replicas,
    admins_have_their_own_revocable_tokens,
);
