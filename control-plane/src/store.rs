//! The control plane's state: jobs, leases, logs, inventory — and their durability.
//!
//! Every state change happens under one mutex, which is what makes claims atomic:
//! two runners asking at once can never be handed the same job. Each change to a
//! job is appended to `journal.ndjson` as the job's whole new record and fsynced
//! before the answer leaves; at start the journal is replayed (last record wins)
//! and compacted. A plain append-only file was chosen over an embedded database
//! because it is all the durability this needs, costs one write per change and
//! can be read with `jq`. Logs live in `logs/<id>.ndjson`, one file per job,
//! appended and fsynced per upload; their length is the file's length.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sortie_protocol::{
    ClaimRequest, ClaimedJob, CompleteRequest, Completion, Fence, HeartbeatRequest, JobStatus,
    Lease, LogSummary,
};

/// Lease and ack-window durations.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// A claimed job not started within this returns to the queue with `attempt + 1`.
    pub ack_window: Duration,
    /// How long a lease lasts without a heartbeat.
    pub lease: Duration,
    /// How often runners are asked to heartbeat.
    pub heartbeat_seconds: u64,
    /// Longest long poll the server grants.
    pub max_wait: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            ack_window: Duration::from_secs(30),
            lease: Duration::from_secs(60),
            heartbeat_seconds: 10,
            max_wait: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Queued,
    Claimed,
    Running,
    /// Terminal: `completion` holds the outcome.
    Done,
    /// Terminal: failed before it started (`fail`), `reason` says why.
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaseState {
    pub token: String,
    pub claim_id: String,
    pub runner: String,
    /// Milliseconds since the epoch.
    pub claimed_at_ms: u64,
    pub expires_at_ms: u64,
}

/// One job as the control plane knows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub seq: u64,
    pub spec: serde_json::Value,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub runner_id: Option<String>,
    /// The runner that claimed it last (kept after its lease ends).
    #[serde(default)]
    pub ran_by: Option<String>,
    pub phase: Phase,
    pub attempt: u64,
    #[serde(default)]
    pub lease: Option<LeaseState>,
    #[serde(default)]
    pub cancel_requested: bool,
    #[serde(default)]
    pub completion: Option<Completion>,
    #[serde(default)]
    pub reason: Option<String>,
    /// Bytes of log stored (derived from the log file, not journaled).
    #[serde(skip)]
    pub log_length: u64,
}

/// Why a runner's call was refused; the API maps each to a status code.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown job (410).
    Gone,
    /// Stale attempt, wrong token, or a different completion already recorded (409).
    Conflict(String),
    /// The log offset is past what is stored (416).
    OffsetPastEnd(u64),
    /// The completion's log length or checksum disagrees with the stored log (412).
    LogMismatch(u64),
    /// The request is wrong in itself (400).
    Invalid(String),
}

struct State {
    jobs: BTreeMap<String, Job>,
    inventory: BTreeMap<String, serde_json::Value>,
    next_seq: u64,
}

pub struct Store {
    dir: PathBuf,
    timing: Timing,
    state: Mutex<State>,
    journal: Mutex<File>,
    /// Signalled when work is enqueued or returns to the queue (wakes long polls).
    work: Condvar,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// Open (or create) the store in `dir`, replaying and compacting its journal.
    pub fn open(dir: &Path, timing: Timing) -> Result<Store> {
        fs::create_dir_all(dir.join("logs"))
            .with_context(|| format!("creating {}", dir.join("logs").display()))?;
        let journal_path = dir.join("journal.ndjson");
        let mut jobs = BTreeMap::new();
        let mut inventory = BTreeMap::new();
        if let Ok(file) = File::open(&journal_path) {
            for line in BufReader::new(file).lines() {
                let line = line.with_context(|| format!("reading {}", journal_path.display()))?;
                // A torn last line (crash mid-append) is skipped; fsync makes earlier ones whole.
                match serde_json::from_str::<Record>(&line) {
                    Ok(Record::Job(job)) => {
                        jobs.insert(job.id.clone(), *job);
                    }
                    Ok(Record::Inventory { runner_id, nodes }) => {
                        inventory.insert(runner_id, nodes);
                    }
                    Err(_) => continue,
                }
            }
        }
        for job in jobs.values_mut() {
            job.log_length = fs::metadata(log_path(dir, &job.id)).map_or(0, |m| m.len());
        }
        let next_seq = jobs.values().map(|j| j.seq + 1).max().unwrap_or(0);
        // Compact: rewrite the journal with one record per job.
        let tmp = dir.join("journal.ndjson.tmp");
        {
            let mut out = File::create(&tmp)?;
            for job in jobs.values() {
                out.write_all(&record_line(&Record::Job(Box::new(job.clone()))))?;
            }
            for (runner_id, nodes) in &inventory {
                let rec = Record::Inventory {
                    runner_id: runner_id.clone(),
                    nodes: nodes.clone(),
                };
                out.write_all(&record_line(&rec))?;
            }
            out.sync_all()?;
        }
        fs::rename(&tmp, &journal_path)?;
        File::open(dir)?.sync_all()?;
        let journal = OpenOptions::new().append(true).open(&journal_path)?;
        Ok(Store {
            dir: dir.to_path_buf(),
            timing,
            state: Mutex::new(State {
                jobs,
                inventory,
                next_seq,
            }),
            journal: Mutex::new(journal),
            work: Condvar::new(),
        })
    }

    pub fn timing(&self) -> Timing {
        self.timing
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn persist(&self, record: &Record) {
        let line = record_line(record);
        let mut journal = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        // A control plane that cannot persist must not acknowledge: fail loudly.
        journal
            .write_all(&line)
            .and_then(|_| journal.sync_data())
            .expect("writing the journal");
    }

    fn persist_job(&self, job: &Job) {
        self.persist(&Record::Job(Box::new(job.clone())));
    }

    /// Add a job to the queue.
    pub fn enqueue(
        &self,
        spec: serde_json::Value,
        tags: Vec<String>,
        runner_id: Option<String>,
    ) -> Result<String, Refusal> {
        let id = sortie_protocol::SpecHeader::of(&spec)
            .map_err(Refusal::Invalid)?
            .id;
        if !sortie_protocol::valid_job_id(&id) {
            return Err(Refusal::Invalid(format!(
                "job id {id:?} is not [A-Za-z0-9._-]{{1,128}}"
            )));
        }
        let mut state = self.lock();
        if state.jobs.contains_key(&id) {
            return Err(Refusal::Conflict(format!("job {id} exists already")));
        }
        let job = Job {
            id: id.clone(),
            seq: state.next_seq,
            spec,
            tags,
            runner_id,
            ran_by: None,
            phase: Phase::Queued,
            attempt: 1,
            lease: None,
            cancel_requested: false,
            completion: None,
            reason: None,
            log_length: 0,
        };
        state.next_seq += 1;
        self.persist_job(&job);
        state.jobs.insert(id.clone(), job);
        drop(state);
        self.work.notify_all();
        Ok(id)
    }

    /// Claim up to `max_jobs` jobs, waiting up to `wait_seconds` (capped) for work.
    pub fn claim(&self, req: &ClaimRequest) -> Vec<ClaimedJob> {
        let wait = Duration::from_secs(req.wait_seconds).min(self.timing.max_wait);
        let until = Instant::now() + wait;
        let deadline_ms = req
            .deadline
            .as_deref()
            .and_then(|d| humantime::parse_rfc3339_weak(d).ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as u64);
        let mut state = self.lock();
        loop {
            self.expire(&mut state);
            // Idempotency: a claim already answered gets the same answer.
            let previous: Vec<ClaimedJob> = state
                .jobs
                .values()
                .filter(|j| {
                    matches!(j.phase, Phase::Claimed | Phase::Running)
                        && j.lease.as_ref().is_some_and(|l| {
                            l.claim_id == req.claim_id && l.runner == req.runner.id
                        })
                })
                .map(|j| claimed(j, self.timing.heartbeat_seconds))
                .collect();
            if !previous.is_empty() {
                return previous;
            }
            let now = now_ms();
            let mut eligible: Vec<&Job> = state
                .jobs
                .values()
                .filter(|j| j.phase == Phase::Queued && matches(j, req, now, deadline_ms))
                .collect();
            eligible.sort_by_key(|j| j.seq);
            let ids: Vec<String> = eligible
                .iter()
                .take(req.max_jobs as usize)
                .map(|j| j.id.clone())
                .collect();
            if !ids.is_empty() {
                let mut out = Vec::new();
                for id in ids {
                    let job = state.jobs.get_mut(&id).expect("job just listed");
                    job.phase = Phase::Claimed;
                    job.ran_by = Some(req.runner.id.clone());
                    job.lease = Some(LeaseState {
                        token: random_token(),
                        claim_id: req.claim_id.clone(),
                        runner: req.runner.id.clone(),
                        claimed_at_ms: now,
                        expires_at_ms: now + self.timing.ack_window.as_millis() as u64,
                    });
                    self.persist_job(job);
                    out.push(claimed(job, self.timing.heartbeat_seconds));
                }
                return out;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Vec::new();
            }
            // Wake at least every second to expire leases that return jobs to the queue.
            let nap = left.min(Duration::from_secs(1));
            state = self
                .work
                .wait_timeout(state, nap)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Return unstarted claims past the ack window to the queue; mark silent running jobs lost.
    fn expire(&self, state: &mut State) {
        let now = now_ms();
        let mut requeued = false;
        for job in state.jobs.values_mut() {
            let Some(lease) = &job.lease else { continue };
            if lease.expires_at_ms > now {
                continue;
            }
            match job.phase {
                Phase::Claimed => {
                    job.phase = Phase::Queued;
                    job.attempt += 1;
                    job.lease = None;
                    requeued = true;
                }
                Phase::Running => {
                    let log = log_summary(&self.dir, &job.id);
                    job.phase = Phase::Done;
                    job.completion = Some(Completion {
                        status: JobStatus::Lost,
                        exit_code: None,
                        started_at: rfc3339(lease.claimed_at_ms),
                        finished_at: rfc3339(now),
                        steps: Vec::new(),
                        data: BTreeMap::new(),
                        log,
                        error: Some("the runner's lease expired without a heartbeat".into()),
                    });
                }
                _ => continue,
            }
            self.persist_job(job);
        }
        if requeued {
            self.work.notify_all();
        }
    }

    /// Expire leases now (called by a ticker so status reads stay current).
    pub fn sweep(&self) {
        let mut state = self.lock();
        self.expire(&mut state);
    }

    fn fenced<'a>(
        state: &'a mut State,
        id: &str,
        attempt: u64,
        token: &str,
    ) -> Result<&'a mut Job, Refusal> {
        let job = state.jobs.get_mut(id).ok_or(Refusal::Gone)?;
        let current = job.lease.as_ref().map(|l| l.token.as_str());
        if job.attempt != attempt || current != Some(token) {
            return Err(Refusal::Conflict(format!(
                "attempt {attempt} of job {id} no longer holds its lease"
            )));
        }
        Ok(job)
    }

    pub fn start(&self, id: &str, fence: &Fence) -> Result<Lease, Refusal> {
        let mut state = self.lock();
        self.expire(&mut state);
        let lease_ms = self.timing.lease.as_millis() as u64;
        let heartbeat = self.timing.heartbeat_seconds;
        let job = Self::fenced(&mut state, id, fence.attempt, &fence.lease_token)?;
        match job.phase {
            Phase::Claimed | Phase::Running => {}
            _ => return Err(Refusal::Conflict(format!("job {id} is not startable"))),
        }
        let lease = job.lease.as_mut().expect("fenced job has a lease");
        lease.expires_at_ms = now_ms() + lease_ms;
        let answer = wire_lease(lease, heartbeat);
        if job.phase == Phase::Claimed {
            job.phase = Phase::Running;
            // A fresh start begins a fresh log.
            let _ = fs::remove_file(log_path(&self.dir, id));
            job.log_length = 0;
        }
        self.persist_job(job);
        Ok(answer)
    }

    pub fn heartbeat(&self, id: &str, req: &HeartbeatRequest) -> Result<(Lease, bool), Refusal> {
        let mut state = self.lock();
        self.expire(&mut state);
        let lease_ms = self.timing.lease.as_millis() as u64;
        let heartbeat = self.timing.heartbeat_seconds;
        let job = Self::fenced(&mut state, id, req.attempt, &req.lease_token)?;
        if job.phase != Phase::Running {
            return Err(Refusal::Conflict(format!("job {id} is not running")));
        }
        let lease = job.lease.as_mut().expect("fenced job has a lease");
        lease.expires_at_ms = now_ms() + lease_ms;
        let answer = wire_lease(lease, heartbeat);
        let cancel = job.cancel_requested;
        self.persist_job(job);
        Ok((answer, cancel))
    }

    /// Store log bytes that start at `offset`; bytes already held are not stored again.
    pub fn append_log(
        &self,
        id: &str,
        attempt: u64,
        token: &str,
        offset: u64,
        bytes: &[u8],
    ) -> Result<u64, Refusal> {
        let mut state = self.lock();
        self.expire(&mut state);
        let job = Self::fenced(&mut state, id, attempt, token)?;
        if job.phase != Phase::Running {
            return Err(Refusal::Conflict(format!("job {id} is not running")));
        }
        let have = job.log_length;
        if offset > have {
            return Err(Refusal::OffsetPastEnd(have));
        }
        let skip = (have - offset) as usize;
        if skip < bytes.len() {
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(log_path(&self.dir, id))
                .expect("opening a job log");
            file.write_all(&bytes[skip..])
                .and_then(|_| file.sync_data())
                .expect("writing a job log");
            job.log_length = have + (bytes.len() - skip) as u64;
        }
        Ok(job.log_length)
    }

    pub fn complete(&self, id: &str, req: &CompleteRequest) -> Result<(), Refusal> {
        let mut state = self.lock();
        self.expire(&mut state);
        let job = state.jobs.get_mut(id).ok_or(Refusal::Gone)?;
        if job.phase == Phase::Done {
            // Idempotent: the same completion again is fine, another one is a conflict.
            let same_fence = job.attempt == req.attempt
                && job.lease.as_ref().map(|l| l.token.as_str()) == Some(req.lease_token.as_str());
            return if same_fence && job.completion.as_ref() == Some(&req.completion) {
                Ok(())
            } else {
                Err(Refusal::Conflict(format!("job {id} is already complete")))
            };
        }
        let job = Self::fenced(&mut state, id, req.attempt, &req.lease_token)?;
        if job.phase != Phase::Running {
            return Err(Refusal::Conflict(format!("job {id} was never started")));
        }
        let stored = log_summary(&self.dir, id);
        if stored != req.completion.log {
            return Err(Refusal::LogMismatch(stored.length));
        }
        job.phase = Phase::Done;
        job.completion = Some(req.completion.clone());
        self.persist_job(job);
        Ok(())
    }

    pub fn fail(&self, id: &str, fence: &Fence, reason: &str) -> Result<(), Refusal> {
        let mut state = self.lock();
        let job = state.jobs.get_mut(id).ok_or(Refusal::Gone)?;
        if job.phase == Phase::Failed && job.attempt == fence.attempt {
            return Ok(());
        }
        let job = Self::fenced(&mut state, id, fence.attempt, &fence.lease_token)?;
        if job.phase != Phase::Claimed {
            return Err(Refusal::Conflict(format!(
                "job {id} has started; complete it"
            )));
        }
        job.phase = Phase::Failed;
        job.reason = Some(reason.to_string());
        self.persist_job(job);
        Ok(())
    }

    pub fn cancel(&self, id: &str) -> Result<(), Refusal> {
        let mut state = self.lock();
        let job = state.jobs.get_mut(id).ok_or(Refusal::Gone)?;
        match job.phase {
            Phase::Queued => {
                job.phase = Phase::Failed;
                job.reason = Some("cancelled before it was claimed".into());
            }
            Phase::Claimed | Phase::Running => job.cancel_requested = true,
            Phase::Done | Phase::Failed => return Ok(()),
        }
        self.persist_job(job);
        Ok(())
    }

    pub fn put_inventory(&self, runner_id: &str, nodes: serde_json::Value) {
        let mut state = self.lock();
        self.persist(&Record::Inventory {
            runner_id: runner_id.to_string(),
            nodes: nodes.clone(),
        });
        state.inventory.insert(runner_id.to_string(), nodes);
    }

    pub fn inventory(&self) -> BTreeMap<String, serde_json::Value> {
        self.lock().inventory.clone()
    }

    pub fn job(&self, id: &str) -> Option<Job> {
        self.lock().jobs.get(id).cloned()
    }

    pub fn jobs(&self) -> Vec<Job> {
        let mut jobs: Vec<Job> = self.lock().jobs.values().cloned().collect();
        jobs.sort_by_key(|j| j.seq);
        jobs
    }

    /// The stored log of a job (empty when none).
    pub fn log(&self, id: &str) -> Vec<u8> {
        let _state = self.lock();
        fs::read(log_path(&self.dir, id)).unwrap_or_default()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
enum Record {
    Job(Box<Job>),
    Inventory {
        runner_id: String,
        nodes: serde_json::Value,
    },
}

fn record_line(record: &Record) -> Vec<u8> {
    let mut line = serde_json::to_vec(record).expect("serializable record");
    line.push(b'\n');
    line
}

fn log_path(dir: &Path, id: &str) -> PathBuf {
    dir.join("logs").join(format!("{id}.ndjson"))
}

fn log_summary(dir: &Path, id: &str) -> LogSummary {
    let mut hasher = Sha256::new();
    let mut length = 0u64;
    if let Ok(mut file) = File::open(log_path(dir, id)) {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = file.read(&mut buf) {
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            length += n as u64;
        }
    }
    LogSummary {
        length,
        sha256: hex(&hasher.finalize()),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn matches(job: &Job, req: &ClaimRequest, now_ms: u64, deadline_ms: Option<u64>) -> bool {
    if job.runner_id.as_ref().is_some_and(|r| *r != req.runner.id) {
        return false;
    }
    if !job.tags.iter().all(|t| req.runner.tags.contains(t)) {
        return false;
    }
    match (deadline_ms, job_timeout_ms(&job.spec)) {
        (Some(deadline), Some(timeout)) => now_ms + timeout <= deadline,
        _ => true,
    }
}

fn job_timeout_ms(spec: &serde_json::Value) -> Option<u64> {
    let text = sortie_protocol::SpecHeader::of(spec).ok()?.timeout?;
    humantime::parse_duration(&text)
        .ok()
        .map(|d| d.as_millis() as u64)
}

fn wire_lease(lease: &LeaseState, heartbeat_seconds: u64) -> Lease {
    Lease {
        token: lease.token.clone(),
        expires_at: rfc3339(lease.expires_at_ms),
        heartbeat_seconds,
    }
}

fn claimed(job: &Job, heartbeat_seconds: u64) -> ClaimedJob {
    let lease = job.lease.as_ref().expect("claimed job has a lease");
    ClaimedJob {
        id: job.id.clone(),
        attempt: job.attempt,
        lease: wire_lease(lease, heartbeat_seconds),
        spec: job.spec.clone(),
    }
}
