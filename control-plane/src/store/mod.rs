//! The control plane's state: jobs, leases, logs, inventory — and the protocol's
//! rules over them.
//!
//! The rules (who may claim what, the ack window, fencing, offset-addressed logs,
//! idempotent completion) are written once, here, over [`Rows`]: the handful of
//! row operations a database gives inside one transaction. Each backend
//! ([`sqlite`], the embedded default; [`postgres`], for several replicas)
//! implements only those, so every backend behaves the same and every store
//! test runs against each. A change is
//! committed durably before its answer leaves; a database that cannot commit
//! makes the call fail with [`Refusal::Unavailable`] (503, retried by runners),
//! never a false acknowledgement.

mod admins;
mod checksum;
pub mod chunk;
pub mod definition;
pub mod journal;
pub mod postgres;
mod runs;
pub mod sqlite;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use admins::ADMIN_TOKEN_PREFIX;
pub use chunk::{Chunk, LogBody, Upload};
pub use definition::{Definition, DefinitionInput};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sortie_protocol::{
    ClaimRequest, ClaimedJob, CompleteRequest, Completion, Fence, HeartbeatRequest, JobStatus,
    Lease, LogSummary, LOG_ENCODING_ZSTD,
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
    /// Finished jobs and their logs are removed this long after they end.
    pub retain: Duration,
    /// A registered runner not seen for this long is shown as stale.
    pub stale_after: Duration,
    /// A schedule's fire time missed by more than this is a misfire.
    pub misfire_grace: Duration,
    /// Audit log entries are removed this long after they were written.
    pub retain_audit: Duration,
}

impl Timing {
    /// Settings under which jobs can run at all: an ack window a runner can
    /// start within, heartbeats well inside the lease, nothing so long that
    /// times overflow.
    pub fn check(&self) -> Result<(), String> {
        const DAY: Duration = Duration::from_secs(24 * 3600);
        let heartbeat = Duration::from_secs(self.heartbeat_seconds);
        if self.ack_window < Duration::from_secs(1) || self.ack_window > DAY {
            return Err("--ack-window must be between 1s and 1day".into());
        }
        if self.heartbeat_seconds == 0 || heartbeat > DAY {
            return Err("--heartbeat-seconds must be between 1 and 86400".into());
        }
        if self.lease < 2 * heartbeat || self.lease > 7 * DAY {
            return Err(format!(
                "--lease must be at least twice --heartbeat-seconds ({}s) and at most 7days",
                2 * self.heartbeat_seconds
            ));
        }
        if self.max_wait > Duration::from_secs(600) {
            return Err("--max-wait must be at most 10m".into());
        }
        if self.retain > 3650 * DAY {
            return Err("--retain must be at most 3650days".into());
        }
        if self.misfire_grace > DAY {
            return Err("--misfire-grace must be at most 1day".into());
        }
        if self.retain_audit < DAY || self.retain_audit > 3650 * DAY {
            return Err("--retain-audit must be between 1day and 3650days".into());
        }
        Ok(())
    }
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            ack_window: Duration::from_secs(30),
            lease: Duration::from_secs(60),
            heartbeat_seconds: 10,
            max_wait: Duration::from_secs(60),
            retain: Duration::from_secs(30 * 24 * 3600),
            stale_after: Duration::from_secs(15 * 60),
            misfire_grace: Duration::from_secs(60),
            retain_audit: Duration::from_secs(365 * 24 * 3600),
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

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Queued => "queued",
            Phase::Claimed => "claimed",
            Phase::Running => "running",
            Phase::Done => "done",
            Phase::Failed => "failed",
        }
    }
}

/// Every value `GET admin/jobs?status=` accepts: a phase, or a completion's status.
pub const STATUSES: &[&str] = &[
    "queued",
    "claimed",
    "running",
    "done",
    "failed",
    "succeeded",
    "timed_out",
    "cancelled",
    "interrupted",
    "lost",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseState {
    pub token: String,
    pub claim_id: String,
    pub runner: String,
    /// Milliseconds since the epoch.
    pub claimed_at_ms: u64,
    pub expires_at_ms: u64,
}

/// One job as the control plane knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Bytes of log stored.
    #[serde(default)]
    pub log_length: u64,
    /// The SHA-256 state of the log stored (`checksum`); none when not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_hash: Option<String>,
    /// When it reached a terminal phase (milliseconds since the epoch).
    #[serde(default)]
    pub finished_at_ms: Option<u64>,
    /// When it was queued (none for jobs queued before this was kept).
    #[serde(default)]
    pub created_at_ms: Option<u64>,
    /// The definition and version it runs; none for an ad-hoc spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<DefinitionRef>,
    /// Who or what started it: `admin:NAME`, `schedule`, `follow-up`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    /// The execution whose end started it (a follow-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// How many follow-ups deep it is (0: started by an admin or a schedule).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub depth: u32,
    /// How many executions its follow-ups may still start, all told.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub chain_budget: u32,
    /// Its options whose values are secure: never shown in an answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secure_options: Vec<String>,
    /// What its end started: the follow-ups' execution ids, or why one was not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub follow_ups: Vec<String>,
    /// Recorded lost because its lease ran out while it ran: its runner (the
    /// same attempt and lease token) may still deliver its log and its
    /// completion, which replaces that verdict.
    #[serde(default, skip_serializing_if = "is_false")]
    pub lapsed: bool,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The definition version an execution runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinitionRef {
    pub name: String,
    pub version: u64,
}

/// What `GET admin/jobs` selects; every field given must hold.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// A phase or a completion's status (see [`Job::status`]).
    pub status: Option<String>,
    /// The definition it runs.
    pub job: Option<String>,
    /// The runner that claimed it last.
    pub runner: Option<String>,
    /// Queued at or after (milliseconds since the epoch).
    pub since_ms: Option<u64>,
}

/// An admin token of its own, with the name the audit log records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admin {
    pub name: String,
    /// HMAC-SHA-256 of the token under the store's key (hex).
    pub token_hash: String,
    pub created_at_ms: u64,
    pub created_by: String,
}

/// The name the token given by `--admin-token-file` acts under.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// One change, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at_ms: u64,
    /// `admin:NAME`, `schedule`, `follow-up`.
    pub by: String,
    /// What was done, such as `job.run` or `runner.revoke`.
    pub action: String,
    /// What it was done to: an execution id, a job, a runner, an admin.
    pub target: String,
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

impl Job {
    /// A job new in the queue, its first attempt, started by `by` at `now`.
    pub fn queued(id: &str, spec: serde_json::Value, by: &str, now: u64) -> Job {
        Job {
            id: id.to_string(),
            seq: 0,
            spec,
            tags: Vec::new(),
            runner_id: None,
            ran_by: None,
            phase: Phase::Queued,
            attempt: 1,
            lease: None,
            cancel_requested: false,
            completion: None,
            reason: None,
            log_length: 0,
            log_hash: None,
            finished_at_ms: None,
            created_at_ms: Some(now),
            definition: None,
            started_by: Some(by.to_string()),
            parent: None,
            depth: 0,
            chain_budget: 0,
            secure_options: Vec::new(),
            follow_ups: Vec::new(),
            lapsed: false,
        }
    }

    /// What `?status=` matches: the completion's status when done, else the phase.
    pub fn status(&self) -> &'static str {
        match (&self.completion, self.phase) {
            (Some(c), Phase::Done) => c.status.as_str(),
            (_, phase) => phase.as_str(),
        }
    }

    fn finish(&mut self, phase: Phase, now: u64) {
        self.phase = phase;
        self.finished_at_ms = Some(now);
    }
}

/// A runner registered by an admin: its own token (kept only as a keyed hash)
/// and the tags the control plane assigns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runner {
    pub name: String,
    pub tags: Vec<String>,
    /// HMAC-SHA-256 of the current token under the store's key (hex).
    pub token_hash: String,
    /// The token before the last rotation, accepted until `previous_until_ms`.
    #[serde(default)]
    pub previous_hash: Option<String>,
    #[serde(default)]
    pub previous_until_ms: Option<u64>,
    #[serde(default)]
    pub expires_at_ms: Option<u64>,
    pub created_at_ms: u64,
    #[serde(default)]
    pub last_seen_ms: Option<u64>,
    #[serde(default)]
    pub version: Option<String>,
    /// The last execution it ended, and how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_result: Option<LastResult>,
    /// When it last reported its inventory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory_at_ms: Option<u64>,
}

/// The last execution a registered runner ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastResult {
    pub job: String,
    pub status: String,
    pub at_ms: u64,
}

impl Runner {
    /// Whether a token with this hash is good at `now`: the current one, or
    /// the previous one within its grace, and the runner not expired.
    fn accepts(&self, hash: &str, now: u64) -> bool {
        let current = self.token_hash == hash
            || (self.previous_hash.as_deref() == Some(hash)
                && self.previous_until_ms.is_some_and(|until| now < until));
        current && self.expires_at_ms.is_none_or(|at| now < at)
    }
}

/// A registered runner as a request presented it: the runner, and the hash of
/// the token it presented (checked again when it claims, so a revocation or a
/// rotation reaches a long poll already waiting).
#[derive(Debug, Clone)]
pub struct Caller {
    pub runner: Runner,
    token_hash: String,
}

/// A name of a runner, an admin or a job definition: what a job id may be,
/// shorter (an execution's id is a definition's name and a suffix), not
/// starting with a dot.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Why a call was refused; the API maps each to a status code.
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
    /// What the request names does not exist (404).
    NotFound(String),
    /// The caller may not do this (403): a revoked token, another runner's name.
    Forbidden(String),
    /// The database could not read or commit (503): nothing was acknowledged.
    Unavailable(String),
    /// The request's body is larger than the control plane takes (413).
    TooLarge(String),
}

impl Refusal {
    /// A database error, with what was being done.
    pub fn unavailable(doing: &str, e: impl std::fmt::Display) -> Refusal {
        Refusal::Unavailable(format!("{doing}: {e}"))
    }
}

pub type Outcome<T> = Result<T, Refusal>;

/// What [`Rows::read_log`] feeds: each chunk's offset and plain bytes; it
/// answers whether it wants more.
pub type LogSink<'a> = dyn FnMut(u64, &[u8]) -> bool + 'a;

/// One page of `GET admin/jobs`.
pub struct Page {
    pub jobs: Vec<Job>,
    pub total: u64,
}

/// The row operations one transaction offers; everything else is [`Store`]'s.
pub trait Rows {
    /// The job, locked for the rest of the transaction.
    fn job(&mut self, id: &str) -> Outcome<Option<Job>>;
    /// Insert a new job, giving it the next sequence number; `false` if the id exists.
    fn insert(&mut self, job: &mut Job) -> Outcome<bool>;
    fn update(&mut self, job: &Job) -> Outcome<()>;
    /// Queued jobs in sequence order after `after_seq`, up to `limit`, that no other
    /// transaction holds.
    fn queued(&mut self, after_seq: Option<u64>, limit: usize) -> Outcome<Vec<Job>>;
    /// Claimed or running jobs holding this claim id for this runner.
    fn claimed_by(&mut self, claim_id: &str, runner: &str) -> Outcome<Vec<Job>>;
    /// Claimed or running jobs whose lease ended at or before `now_ms`, up to `limit`.
    fn expired(&mut self, now_ms: u64, limit: usize) -> Outcome<Vec<Job>>;
    /// Store `bytes` as the job's log from `at`.
    fn append_log(&mut self, id: &str, at: u64, chunk: Chunk<'_>) -> Outcome<()>;
    fn clear_log(&mut self, id: &str) -> Outcome<()>;
    /// Feed the job's log from the chunk holding byte `from` on, in order and
    /// decoded, to `sink` with each chunk's offset, until `sink` answers false.
    fn read_log(&mut self, id: &str, from: u64, sink: &mut LogSink<'_>) -> Outcome<()>;
    fn put_inventory(&mut self, runner_id: &str, reported: &Reported) -> Outcome<()>;
    fn inventory(&mut self) -> Outcome<BTreeMap<String, Reported>>;
    /// Jobs in sequence order that pass `filter`.
    fn page(&mut self, filter: &Filter, limit: u64, offset: u64) -> Outcome<Page>;
    /// Remove up to `limit` jobs (and their logs) that finished before `before_ms`.
    fn prune(&mut self, before_ms: u64, limit: usize) -> Outcome<usize>;
    /// How many jobs there are of each (phase, status).
    fn counts(&mut self) -> Outcome<Vec<(String, String, u64)>>;
    /// The registered runner, locked for the rest of the transaction.
    fn runner(&mut self, name: &str) -> Outcome<Option<Runner>>;
    /// The runner whose current or previous token hash is `hash`.
    fn runner_by_hash(&mut self, hash: &str) -> Outcome<Option<Runner>>;
    /// Insert or replace a runner.
    fn put_runner(&mut self, runner: &Runner) -> Outcome<()>;
    /// Remove a runner; `false` if there was none.
    fn delete_runner(&mut self, name: &str) -> Outcome<bool>;
    fn runners(&mut self) -> Outcome<Vec<Runner>>;
    /// The value of setting `key`, set to `value` first if it has none.
    fn setting_or(&mut self, key: &str, value: &str) -> Outcome<String>;
    fn set_setting(&mut self, key: &str, value: &str) -> Outcome<()>;
    /// A definition's version (the latest when none is given).
    fn definition(&mut self, name: &str, version: Option<u64>) -> Outcome<Option<Definition>>;
    /// Insert a definition version; `false` if that version exists.
    fn put_definition(&mut self, definition: &Definition) -> Outcome<bool>;
    /// The latest version of every definition, by name.
    fn definitions(&mut self) -> Outcome<Vec<Definition>>;
    /// The name and version of each definition whose latest version has a schedule.
    fn scheduled(&mut self) -> Outcome<Vec<(String, u64)>>;
    /// The last fire time a definition's schedule was evaluated for, and
    /// whether its fire times are being skipped, locked for the rest of the
    /// transaction (the time set to `initial` first if it has none).
    fn schedule_mark(&mut self, name: &str, initial: u64) -> Outcome<(u64, bool)>;
    fn set_schedule_mark(&mut self, name: &str, fired_ms: u64, skipping: bool) -> Outcome<()>;
    /// Remove up to `limit` audit entries older than `before_ms`.
    fn prune_audit(&mut self, before_ms: u64, limit: usize) -> Outcome<usize>;
    /// Whether an execution of the definition is queued, claimed or running.
    fn active(&mut self, definition: &str) -> Outcome<bool>;
    fn admin_by_hash(&mut self, hash: &str) -> Outcome<Option<Admin>>;
    /// Insert an admin; `false` if the name is taken.
    fn put_admin(&mut self, admin: &Admin) -> Outcome<bool>;
    fn delete_admin(&mut self, name: &str) -> Outcome<bool>;
    fn admins(&mut self) -> Outcome<Vec<Admin>>;
    fn audit(&mut self, entry: &AuditEntry) -> Outcome<()>;
    /// The newest `limit` entries, newest first.
    fn audit_log(&mut self, limit: u64) -> Outcome<Vec<AuditEntry>>;
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Unstarted claims past the ack window, back in the queue.
    pub requeued: usize,
    /// Running jobs whose lease ended without a heartbeat, now lost.
    pub lost: usize,
    /// Claims of cancelled jobs that lapsed: the jobs end failed.
    pub cancelled: usize,
    /// Finished jobs removed after the retention.
    pub pruned: usize,
    /// Audit log entries removed after theirs.
    pub audit_pruned: usize,
}

/// A database: runs a closure in one transaction, committed when it returns `Ok`.
pub trait Backend: Send + Sync {
    fn transaction(&self, work: &mut dyn FnMut(&mut dyn Rows) -> Outcome<()>) -> Outcome<()>;
}

pub struct Store {
    backend: Box<dyn Backend>,
    timing: Timing,
    /// The key runner tokens are hashed with, kept in the database so every
    /// replica has it (made once, at first start).
    token_key: std::sync::OnceLock<Vec<u8>>,
    /// Each scheduled definition's version and when it is next due, so a
    /// tick computes nothing and opens no transaction for what is not due.
    schedules: std::sync::Mutex<runs::Schedules>,
    /// Claims offer runners output events of several lines (`log_multiline`).
    multiline: bool,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The last millisecond RFC 3339 can write (9999-12-31T23:59:59.999Z).
pub const LATEST_MS: u64 = 253_402_300_799_999;

pub fn rfc3339(ms: u64) -> String {
    let ms = ms.min(LATEST_MS);
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// An RFC 3339 time in UTC (`Z`; a lower-case `t` and `z` allowed) in
/// milliseconds since the epoch; none for anything else (a time without its
/// zone is not guessed), or a time before 1970.
pub fn parse_rfc3339_ms(text: &str) -> Option<u64> {
    humantime::parse_rfc3339(&text.to_ascii_uppercase())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as u64)
}

pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source");
    hex(&bytes)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Schema version 2 on every backend (the SQL is the same): registered runners
/// and the settings that hold the key their tokens are hashed with.
const RUNNERS_SCHEMA: &str = r#"
CREATE TABLE runners (
    name TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    previous_hash TEXT,
    record TEXT NOT NULL
);
CREATE INDEX runners_previous ON runners (previous_hash) WHERE previous_hash IS NOT NULL;
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#;

/// Schema version 4 on every backend: how each source of a runner's
/// inventory went.
const INVENTORY_SOURCES_SCHEMA: &str = r#"
ALTER TABLE inventory ADD COLUMN sources TEXT NOT NULL DEFAULT '[]';
"#;

/// How far past a page's end [`Store::log_window`] follows a line to its end.
/// A runner's event lines are far shorter (a line of output is cut at 64 KiB).
pub const LINE_SLACK: usize = 1024 * 1024;

/// Log chunks may be stored compressed (`chunk`): each says how.
const LOG_ENCODING_SCHEMA: &str = r#"
ALTER TABLE log_chunks ADD COLUMN encoding TEXT NOT NULL DEFAULT 'identity';
"#;

/// A runner's last inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct Reported {
    /// Rundeck resource JSON: node name → attributes.
    pub nodes: serde_json::Value,
    /// How each source went (`name`, `nodes`, `error`, `duration_ms`).
    pub sources: serde_json::Value,
    pub at_ms: u64,
}

/// An inventory row read back.
fn reported(nodes: &str, sources: &str, at_ms: i64) -> Outcome<Reported> {
    let parse = |text: &str| {
        serde_json::from_str(text).map_err(|e| Refusal::unavailable("reading an inventory", e))
    };
    Ok(Reported {
        nodes: parse(nodes)?,
        sources: parse(sources)?,
        at_ms: at_ms.max(0) as u64,
    })
}

/// Schema version 3 on every backend: job definitions and their schedules'
/// marks, named admin tokens, the audit log, and the columns executions are
/// listed by.
const DEFINITIONS_SCHEMA: &str = r#"
ALTER TABLE jobs ADD COLUMN definition TEXT;
ALTER TABLE jobs ADD COLUMN ran_by TEXT;
ALTER TABLE jobs ADD COLUMN created_at_ms BIGINT;
CREATE INDEX jobs_definition ON jobs (definition, seq) WHERE definition IS NOT NULL;
CREATE TABLE definitions (
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    scheduled BOOLEAN NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE schedule_marks (
    name TEXT PRIMARY KEY,
    fired_ms BIGINT NOT NULL,
    skipping BOOLEAN NOT NULL
);
CREATE TABLE admins (
    name TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    record TEXT NOT NULL
);
CREATE TABLE audit (
    id TEXT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX audit_at ON audit (at_ms);
"#;

/// How many rows one sweep or prune touches at most (the rest wait for the next).
const BATCH: usize = 500;
/// The most log bytes a `complete` may carry as its `log_tail` (offered in
/// every claim answer): the last chunk of a short job's log, folded into its
/// completion, so such a job costs one request less.
pub const LOG_TAIL_BYTES: u64 = 256 * 1024;

impl Store {
    pub fn new(backend: Box<dyn Backend>, timing: Timing) -> Store {
        Store {
            backend,
            timing,
            token_key: std::sync::OnceLock::new(),
            schedules: Default::default(),
            multiline: true,
        }
    }

    /// Whether claims offer runners output events of several lines (they do
    /// unless told not to: logs then hold one line per event, as log format
    /// v1 says, for tools that read them and expect that).
    pub fn offer_multiline(mut self, offer: bool) -> Store {
        self.multiline = offer;
        self
    }

    /// The embedded default: SQLite in `dir/control-plane.db`.
    pub fn open(dir: &std::path::Path, timing: Timing) -> anyhow::Result<Store> {
        Store::new(Box::new(sqlite::Sqlite::open(dir)?), timing).opened()
    }

    /// PostgreSQL at `url`, with its password given apart from the URL, over TLS
    /// checked against `ca_file` (required unless the server is local).
    pub fn postgres(
        url: &str,
        password: Option<&str>,
        ca_file: Option<&std::path::Path>,
        timing: Timing,
    ) -> anyhow::Result<Store> {
        Store::new(
            Box::new(postgres::Postgres::open(url, password, ca_file)?),
            timing,
        )
        .opened()
    }

    /// The store, once every running job whose log has no checksum state
    /// (stored before states were kept) has one, read from its log this
    /// once: a completion, refused or not, then never reads the log.
    fn opened(self) -> anyhow::Result<Store> {
        let lacking = |job: &Job| {
            job.log_length > 0 && job.log_hash.as_deref().and_then(checksum::load).is_none()
        };
        let ids: Vec<String> = self
            .tx(|rows| {
                // Every claimed or running job: all leases end before this.
                let running = rows.expired(i64::MAX as u64, i64::MAX as usize)?;
                Ok(running.into_iter().filter(lacking).map(|j| j.id).collect())
            })
            .map_err(|r| anyhow::anyhow!("listing the running jobs: {r:?}"))?;
        for id in &ids {
            let kept = self.tx(|rows| {
                let Some(mut job) = rows.job(id)? else {
                    return Ok(());
                };
                if !lacking(&job) {
                    return Ok(()); // another replica's start did it
                }
                let (hasher, length) = stored_hasher(rows, id)?;
                if length == job.log_length {
                    job.log_hash = Some(checksum::save(&hasher));
                    rows.update(&job)?;
                }
                Ok(())
            });
            // One damaged log is that job's trouble (its completion will say
            // so), not a reason to keep the control plane down.
            if let Err(r) = kept {
                tracing::error!(job = %id, "cannot keep the log's checksum: {r:?}");
            }
        }
        if !ids.is_empty() {
            tracing::info!(
                jobs = ids.len(),
                "kept the log checksums of running jobs stored without one"
            );
        }
        Ok(self)
    }

    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// Run `work` in one transaction and return what it returned.
    fn tx<T>(&self, work: impl FnOnce(&mut dyn Rows) -> Outcome<T>) -> Outcome<T> {
        let mut work = Some(work);
        let mut out = None;
        self.backend.transaction(&mut |rows| {
            let work = work.take().expect("a transaction runs its work once");
            out = Some(work(rows)?);
            Ok(())
        })?;
        Ok(out.expect("a committed transaction ran its work"))
    }

    /// Add a job to the queue: an ad-hoc spec, queued `by` an admin.
    pub fn enqueue(
        &self,
        by: &str,
        spec: serde_json::Value,
        tags: Vec<String>,
        runner_id: Option<String>,
    ) -> Outcome<String> {
        let id = sortie_protocol::SpecHeader::of(&spec)
            .map_err(Refusal::Invalid)?
            .id;
        if !sortie_protocol::valid_job_id(&id) {
            return Err(Refusal::Invalid(format!(
                "job id {id:?} is not [A-Za-z0-9._-]{{1,128}}"
            )));
        }
        let mut job = Job::queued(&id, spec, by, now_ms());
        job.tags = tags;
        job.runner_id = runner_id;
        self.tx(|rows| {
            // NAME.sTIME is the id a schedule gives NAME's fire time.
            let scheduled = id
                .rsplit_once(".s")
                .filter(|(_, time)| !time.is_empty() && time.bytes().all(|b| b.is_ascii_digit()));
            if let Some((name, _)) = scheduled {
                if rows.definition(name, None)?.is_some() {
                    return Err(Refusal::Invalid(format!(
                        "job id {id}: ids {name}.sTIME are the schedule of job {name}"
                    )));
                }
            }
            match rows.insert(&mut job)? {
                true => {
                    let detail = serde_json::json!({"tags": job.tags});
                    audit(rows, by, "job.enqueue", &id, detail)
                }
                false => Err(Refusal::Conflict(format!("job {id} exists already"))),
            }
        })?;
        Ok(id)
    }

    /// Claim up to `max_jobs` queued jobs for the runner, now (waiting is the caller's).
    pub fn claim(&self, req: &ClaimRequest) -> Outcome<Vec<ClaimedJob>> {
        self.claim_as(req, None)
    }

    /// A claim by `caller` (a runner that presented its own token) or by the
    /// shared token (none), in one transaction; see [`Store::as_caller`].
    pub fn claim_as(
        &self,
        req: &ClaimRequest,
        caller: Option<&Caller>,
    ) -> Outcome<Vec<ClaimedJob>> {
        let heartbeat = self.timing.heartbeat_seconds;
        let ack_ms = self.timing.ack_window.as_millis() as u64;
        let deadline_ms = match req.deadline.as_deref() {
            None => None,
            // RFC 3339 allows a lower-case `t` and `z`.
            Some(d) => Some(parse_rfc3339_ms(d).ok_or_else(|| {
                Refusal::Invalid(format!("deadline {d:?} is not an RFC 3339 time"))
            })?),
        };
        self.tx(|rows| {
            let req = &Self::as_caller(rows, req, caller, now_ms())?;
            // Idempotency: a claim already answered gets the same answer.
            let previous = rows.claimed_by(&req.claim_id, &req.runner.id)?;
            if !previous.is_empty() {
                return Ok(previous
                    .iter()
                    .map(|j| claimed(j, heartbeat, self.multiline))
                    .collect());
            }
            let now = now_ms();
            // Ended leases first, so a job whose claim lapsed can be handed out now.
            for mut job in rows.expired(now, BATCH)? {
                Self::expire(rows, &mut job, now)?;
            }
            let want = req.max_jobs as usize;
            let mut out = Vec::new();
            let mut after = None;
            while out.len() < want {
                // Only as many rows as are still wanted: each one taken is locked
                // (and, on PostgreSQL, written) until the transaction ends.
                let page = rows.queued(after, want - out.len())?;
                let Some(last) = page.last() else { break };
                after = Some(last.seq);
                for mut job in page {
                    if out.len() == want || !matches(&job, req, now, deadline_ms) {
                        continue;
                    }
                    job.phase = Phase::Claimed;
                    job.ran_by = Some(req.runner.id.clone());
                    job.lease = Some(LeaseState {
                        token: random_token(),
                        claim_id: req.claim_id.clone(),
                        runner: req.runner.id.clone(),
                        claimed_at_ms: now,
                        expires_at_ms: now + ack_ms,
                    });
                    rows.update(&job)?;
                    out.push(claimed(&job, heartbeat, self.multiline));
                }
            }
            Ok(out)
        })
    }

    /// The claim as it counts: from `caller` (a registered runner) it is that
    /// runner whatever id the request gives, with the tags the control plane
    /// assigned — the request may narrow them, never widen them — and its token
    /// is checked again (a long poll outlives a revocation) and its last-seen
    /// time and version kept. Without a caller (the shared token), a registered
    /// runner's name may not be used.
    fn as_caller(
        rows: &mut dyn Rows,
        req: &ClaimRequest,
        caller: Option<&Caller>,
        now: u64,
    ) -> Outcome<ClaimRequest> {
        let Some(caller) = caller else {
            return match rows.runner(&req.runner.id)? {
                Some(_) => Err(Refusal::Forbidden(format!(
                    "runner {} is registered: it claims with its own token",
                    req.runner.id
                ))),
                None => Ok(req.clone()),
            };
        };
        let mut runner = rows
            .runner(&caller.runner.name)?
            .filter(|r| r.accepts(&caller.token_hash, now))
            .ok_or_else(|| Refusal::Forbidden("the runner's token was revoked".into()))?;
        runner.last_seen_ms = Some(now);
        let version: String = req.runner.version.chars().take(64).collect();
        runner.version = Some(version).filter(|v| !v.is_empty());
        rows.put_runner(&runner)?;
        let mut req = req.clone();
        req.runner.tags = if req.runner.tags.is_empty() {
            runner.tags
        } else {
            req.runner
                .tags
                .iter()
                .filter(|t| runner.tags.contains(t))
                .cloned()
                .collect()
        };
        req.runner.id = runner.name;
        Ok(req)
    }

    /// Apply the end of an ended lease to `job`: an unstarted claim returns to the
    /// queue with the next attempt, a silent running job is lost (until its
    /// runner delivers after all: see [`Job::lapsed`]). `true` if changed.
    fn expire(rows: &mut dyn Rows, job: &mut Job, now: u64) -> Outcome<bool> {
        let Some(lease) = job.lease.clone() else {
            return Ok(false);
        };
        if lease.expires_at_ms > now {
            return Ok(false);
        }
        match job.phase {
            Phase::Claimed if job.cancel_requested => {
                // Cancelled while claimed: it ends here, never handed out again.
                job.reason = Some("cancelled: its claim lapsed before it started".into());
                job.finish(Phase::Failed, now);
            }
            Phase::Claimed => {
                job.phase = Phase::Queued;
                job.attempt += 1;
                job.lease = None;
            }
            Phase::Running => {
                let log = summary(rows, job)?;
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
                job.lapsed = true;
                job.finish(Phase::Done, now);
            }
            _ => return Ok(false),
        }
        if matches!(job.phase, Phase::Done | Phase::Failed) {
            Self::ended(rows, job, now)?;
        }
        rows.update(job)?;
        Ok(true)
    }

    /// Expire ended leases and prune what is past retention.
    pub fn sweep(&self) -> Outcome<Swept> {
        let now = now_ms();
        let mut swept = self.tx(|rows| {
            let mut swept = Swept::default();
            for mut job in rows.expired(now, BATCH)? {
                if Self::expire(rows, &mut job, now)? {
                    match job.phase {
                        Phase::Queued => swept.requeued += 1,
                        Phase::Failed => swept.cancelled += 1,
                        _ => swept.lost += 1,
                    }
                }
            }
            Ok(swept)
        })?;
        let retain_ms = self.timing.retain.as_millis() as u64;
        swept.pruned = self.tx(|rows| rows.prune(now.saturating_sub(retain_ms), BATCH))?;
        let audit_ms = self.timing.retain_audit.as_millis() as u64;
        swept.audit_pruned =
            self.tx(|rows| rows.prune_audit(now.saturating_sub(audit_ms), BATCH))?;
        Ok(swept)
    }

    /// How many jobs there are of each (phase, status).
    pub fn counts(&self) -> Outcome<Vec<(String, String, u64)>> {
        self.tx(|rows| rows.counts())
    }

    /// The job, with its lease checked against this fence (an ended lease is
    /// expired first, so a late call is refused even between sweeps).
    fn fenced(rows: &mut dyn Rows, id: &str, attempt: u64, token: &str) -> Outcome<Job> {
        let mut job = rows.job(id)?.ok_or(Refusal::Gone)?;
        Self::expire(rows, &mut job, now_ms())?;
        let current = job.lease.as_ref().map(|l| l.token.as_str());
        if job.attempt != attempt || current != Some(token) {
            return Err(Refusal::Conflict(format!(
                "attempt {attempt} of job {id} no longer holds its lease"
            )));
        }
        Ok(job)
    }

    pub fn start(&self, id: &str, fence: &Fence) -> Outcome<Lease> {
        let lease_ms = self.timing.lease.as_millis() as u64;
        let heartbeat = self.timing.heartbeat_seconds;
        self.tx(|rows| {
            let mut job = Self::fenced(rows, id, fence.attempt, &fence.lease_token)?;
            match job.phase {
                Phase::Claimed if job.cancel_requested => {
                    // Cancelled before it started: it ends now, and does not run.
                    job.reason = Some("cancelled before it started".into());
                    job.finish(Phase::Failed, now_ms());
                    Self::ended(rows, &mut job, now_ms())?;
                    rows.update(&job)?;
                    return Ok(Err(Refusal::Conflict(format!("job {id} was cancelled"))));
                }
                Phase::Claimed | Phase::Running => {}
                _ => return Err(Refusal::Conflict(format!("job {id} is not startable"))),
            }
            let lease = job.lease.as_mut().expect("a fenced job has a lease");
            lease.expires_at_ms = now_ms() + lease_ms;
            let answer = wire_lease(lease, heartbeat);
            if job.phase == Phase::Claimed {
                job.phase = Phase::Running;
                // A fresh start begins a fresh log.
                rows.clear_log(id)?;
                job.log_length = 0;
                job.log_hash = None;
            }
            rows.update(&job)?;
            Ok(Ok(answer))
        })?
    }

    pub fn heartbeat(&self, id: &str, req: &HeartbeatRequest) -> Outcome<(Lease, bool)> {
        let lease_ms = self.timing.lease.as_millis() as u64;
        let heartbeat = self.timing.heartbeat_seconds;
        self.tx(|rows| {
            let mut job = Self::fenced(rows, id, req.attempt, &req.lease_token)?;
            if job.lapsed {
                // Recorded lost while its runner was out of reach: it is
                // asked to stop, and may still deliver (see `Job::lapsed`).
                let mut lease = job.lease.clone().expect("a fenced job has a lease");
                lease.expires_at_ms = now_ms() + lease_ms;
                return Ok((wire_lease(&lease, heartbeat), true));
            }
            if job.phase != Phase::Running {
                return Err(Refusal::Conflict(format!("job {id} is not running")));
            }
            let lease = job.lease.as_mut().expect("a fenced job has a lease");
            lease.expires_at_ms = now_ms() + lease_ms;
            let answer = wire_lease(lease, heartbeat);
            rows.update(&job)?;
            Ok((answer, job.cancel_requested))
        })
    }

    /// Store log bytes that start at `offset`; bytes already held are not stored again.
    pub fn append_log(
        &self,
        id: &str,
        attempt: u64,
        token: &str,
        offset: u64,
        upload: &Upload,
    ) -> Outcome<u64> {
        self.tx(|rows| {
            let mut job = Self::fenced(rows, id, attempt, token)?;
            let body = upload.decode()?;
            if job.phase == Phase::Done && offset + body.bytes().len() as u64 <= job.log_length {
                // Its runner delivering again what it did not know was taken
                // (the answer to its completion was lost): nothing new.
                return Ok(job.log_length);
            }
            if job.phase != Phase::Running && !job.lapsed {
                return Err(Refusal::Conflict(format!("job {id} is not running")));
            }
            if !Self::append(rows, &mut job, offset, &body)? {
                return Err(Refusal::OffsetPastEnd(job.log_length));
            }
            if job.lapsed {
                // The verdict recorded meanwhile says what log it has.
                let log = summary(rows, &job)?;
                if let Some(completion) = job.completion.as_mut() {
                    completion.log = log;
                }
                rows.update(&job)?;
            }
            Ok(job.log_length)
        })
    }

    /// Append what `body` (the log from `offset`) adds to the running job's
    /// log; `false` when `offset` is past its end.
    fn append(
        rows: &mut dyn Rows,
        job: &mut Job,
        offset: u64,
        body: &LogBody<'_>,
    ) -> Outcome<bool> {
        let have = job.log_length;
        if offset > have {
            return Ok(false);
        }
        let skip = (have - offset) as usize;
        let length = body.bytes().len();
        if skip < length {
            let mut hasher = match job.log_hash.as_deref().and_then(checksum::load) {
                Some(hasher) => hasher,
                None if have == 0 => Sha256::new(),
                // A log stored before states were kept (or a damaged state):
                // read back this once, and kept from here on.
                None => stored_hasher(rows, &job.id)?.0,
            };
            rows.append_log(&job.id, have, body.chunk(skip))?;
            hasher.update(&body.bytes()[skip..]);
            job.log_hash = Some(checksum::save(&hasher));
            job.log_length = have + (length - skip) as u64;
            rows.update(job)?;
        }
        Ok(true)
    }

    pub fn complete(&self, id: &str, req: &CompleteRequest) -> Outcome<()> {
        self.tx(|rows| {
            let job = rows.job(id)?.ok_or(Refusal::Gone)?;
            let same_fence = job.attempt == req.attempt
                && job.lease.as_ref().map(|l| l.token.as_str()) == Some(req.lease_token.as_str());
            if job.phase == Phase::Done && !(job.lapsed && same_fence) {
                // Idempotent: the same completion again is fine, another one is a conflict.
                return if same_fence && job.completion.as_ref() == Some(&req.completion) {
                    Ok(Ok(()))
                } else {
                    Err(Refusal::Conflict(format!("job {id} is already complete")))
                };
            }
            let mut job = Self::fenced(rows, id, req.attempt, &req.lease_token)?;
            if job.phase != Phase::Running && !job.lapsed {
                return Err(Refusal::Conflict(format!("job {id} was never started")));
            }
            // The log's last bytes, stored as `PUT log` would store them, and
            // kept even when the completion is refused below.
            if let Some(tail) = &req.log_tail {
                if tail.data.len() as u64 > LOG_TAIL_BYTES {
                    return Err(Refusal::Invalid(format!(
                        "log_tail holds {} bytes, more than the {LOG_TAIL_BYTES} offered",
                        tail.data.len()
                    )));
                }
                let body = LogBody::plain(tail.data.as_bytes());
                Self::append(rows, &mut job, tail.offset, &body)?;
            }
            let stored = summary(rows, &job)?;
            if stored != req.completion.log {
                return Ok(Err(Refusal::LogMismatch(stored.length)));
            }
            job.completion = Some(req.completion.clone());
            job.finish(Phase::Done, now_ms());
            // A lapsed job's end started the follow-ups of `lost`; its real
            // end starts its own, and both are noted.
            let before = std::mem::take(&mut job.follow_ups);
            let fired_for = std::mem::take(&mut job.lapsed).then_some("lost");
            if fired_for.is_some() {
                job.reason = Some(
                    "its lease ran out while it ran, and it was recorded lost until its \
                     runner delivered this completion"
                        .into(),
                );
            }
            Self::ended_again(rows, &mut job, now_ms(), fired_for)?;
            job.follow_ups.splice(0..0, before);
            rows.update(&job)?;
            Self::note_result(rows, &job).map(Ok)
        })?
    }

    pub fn fail(&self, id: &str, fence: &Fence, reason: &str) -> Outcome<()> {
        self.tx(|rows| {
            let job = rows.job(id)?.ok_or(Refusal::Gone)?;
            let same_fence = job.attempt == fence.attempt
                && job.lease.as_ref().map(|l| l.token.as_str()) == Some(fence.lease_token.as_str());
            if job.phase == Phase::Failed && same_fence {
                return Ok(());
            }
            let mut job = Self::fenced(rows, id, fence.attempt, &fence.lease_token)?;
            if job.phase != Phase::Claimed {
                return Err(Refusal::Conflict(format!(
                    "job {id} has started; complete it"
                )));
            }
            job.reason = Some(reason.to_string());
            job.finish(Phase::Failed, now_ms());
            Self::ended(rows, &mut job, now_ms())?;
            rows.update(&job)
        })
    }

    pub fn cancel(&self, by: &str, id: &str) -> Outcome<()> {
        self.tx(|rows| {
            let mut job = rows.job(id)?.ok_or(Refusal::Gone)?;
            match job.phase {
                Phase::Queued => {
                    job.reason = Some("cancelled before it was claimed".into());
                    job.finish(Phase::Failed, now_ms());
                    Self::ended(rows, &mut job, now_ms())?;
                }
                Phase::Claimed | Phase::Running => job.cancel_requested = true,
                Phase::Done | Phase::Failed => return Ok(()),
            }
            rows.update(&job)?;
            audit(rows, by, "job.cancel", id, serde_json::Value::Null)
        })
    }

    /// Store a runner's inventory. `proven`: the caller is that runner (its
    /// own token) or an admin; a shared-token caller may not report for a
    /// registered runner's name.
    pub fn put_inventory(
        &self,
        runner_id: &str,
        proven: bool,
        nodes: serde_json::Value,
        sources: serde_json::Value,
    ) -> Outcome<()> {
        let now = now_ms();
        let reported = Reported {
            nodes,
            sources,
            at_ms: now,
        };
        self.tx(|rows| {
            let runner = rows.runner(runner_id)?;
            if runner.is_some() && !proven {
                return Err(Refusal::Forbidden(format!(
                    "runner {runner_id} is registered: it reports with its own token"
                )));
            }
            rows.put_inventory(runner_id, &reported)?;
            match runner {
                Some(mut runner) => {
                    runner.inventory_at_ms = Some(now);
                    rows.put_runner(&runner)
                }
                None => Ok(()),
            }
        })
    }

    pub fn inventory(&self) -> Outcome<BTreeMap<String, Reported>> {
        self.tx(|rows| rows.inventory())
    }

    pub fn job(&self, id: &str) -> Outcome<Option<Job>> {
        self.tx(|rows| rows.job(id))
    }

    /// Jobs in the order they were queued, filtered, one page of them.
    pub fn page(&self, filter: &Filter, limit: u64, offset: u64) -> Outcome<Page> {
        self.tx(|rows| rows.page(filter, limit, offset))
    }

    /// The stored log of a job from byte `from`: at least `max` bytes (all
    /// there are, if fewer), and no more than it takes to end the line in
    /// progress at `max` — what a page of it needs, not the rest of a long log.
    /// A line that runs on [`LINE_SLACK`] past `max` is cut there: a log that
    /// is one endless line is not read whole either.
    pub fn log_window(&self, id: &str, from: u64, max: usize) -> Outcome<Vec<u8>> {
        let limit = max.saturating_add(LINE_SLACK);
        self.tx(|rows| {
            let mut out = Vec::new();
            rows.read_log(id, from, &mut |at, chunk| {
                let skip = from.saturating_sub(at).min(chunk.len() as u64) as usize;
                let rest = &chunk[skip..];
                out.extend_from_slice(&rest[..rest.len().min(limit - out.len())]);
                if out.len() > max {
                    if let Some(end) = out[max..].iter().position(|b| *b == b'\n') {
                        out.truncate((max + end + 1).min(limit));
                        return false;
                    }
                    if out.len() >= limit {
                        out.truncate(limit);
                        return false;
                    }
                }
                true
            })?;
            Ok(out)
        })
    }
}

impl Store {
    /// The key runner tokens are hashed with.
    fn token_key(&self) -> Outcome<&[u8]> {
        if let Some(key) = self.token_key.get() {
            return Ok(key);
        }
        let fresh = random_token() + &random_token();
        let key = self.tx(|rows| rows.setting_or("runner_token_key", &fresh))?;
        Ok(self.token_key.get_or_init(|| key.into_bytes()))
    }

    /// HMAC-SHA-256 of a token under the store's key: what is stored, so a copy of
    /// the database holds no usable token.
    fn token_hash(&self, token: &str) -> Outcome<String> {
        use hmac::{KeyInit, Mac};
        let mut mac = hmac::Hmac::<Sha256>::new_from_slice(self.token_key()?)
            .expect("HMAC takes a key of any length");
        mac.update(token.as_bytes());
        Ok(hex(&mac.finalize().into_bytes()))
    }

    /// Register a runner with the tags it may claim; its token, shown only now.
    pub fn register(
        &self,
        by: &str,
        name: &str,
        tags: Vec<String>,
        expires_at_ms: Option<u64>,
    ) -> Outcome<(Runner, String)> {
        if !valid_name(name) {
            return Err(Refusal::Invalid(format!(
                "runner name {name:?} is not [A-Za-z0-9._-]{{1,64}} starting with no dot"
            )));
        }
        if let Some(tag) = tags
            .iter()
            .find(|t| t.is_empty() || t.chars().count() > 128)
        {
            return Err(Refusal::Invalid(format!(
                "tag {tag:?}: 1 to 128 characters"
            )));
        }
        if expires_at_ms.is_some_and(|at| at <= now_ms()) {
            return Err(Refusal::Invalid("expires: a time in the future".into()));
        }
        let token = format!("srt_{}{}", random_token(), random_token());
        let runner = Runner {
            name: name.to_string(),
            tags,
            token_hash: self.token_hash(&token)?,
            previous_hash: None,
            previous_until_ms: None,
            expires_at_ms: expires_at_ms.map(|t| t.min(LATEST_MS)),
            created_at_ms: now_ms(),
            last_seen_ms: None,
            last_result: None,
            inventory_at_ms: None,
            version: None,
        };
        self.tx(|rows| {
            if rows.runner(name)?.is_some() {
                return Err(Refusal::Conflict(format!("runner {name} exists already")));
            }
            rows.put_runner(&runner)?;
            let detail = serde_json::json!({"tags": runner.tags});
            audit(rows, by, "runner.add", name, detail)
        })?;
        Ok((runner, token))
    }

    /// A new token for a runner; the old one keeps working for `grace`.
    pub fn rotate(&self, by: &str, name: &str, grace: Duration) -> Outcome<(Runner, String)> {
        let token = format!("srt_{}{}", random_token(), random_token());
        let hash = self.token_hash(&token)?;
        let until = now_ms()
            .saturating_add(grace.as_millis() as u64)
            .min(LATEST_MS);
        let now = now_ms();
        let runner = self.tx(|rows| {
            let mut runner = rows.runner(name)?.ok_or(Refusal::Gone)?;
            if let Some(until) = runner.previous_until_ms.filter(|until| *until > now) {
                // One previous token at a time: another rotation now would cut
                // short the grace the last one promised.
                return Err(Refusal::Conflict(format!(
                    "runner {name}'s previous token works until {}: rotate again after that",
                    rfc3339(until)
                )));
            }
            runner.previous_hash = Some(std::mem::replace(&mut runner.token_hash, hash));
            runner.previous_until_ms = Some(until);
            rows.put_runner(&runner)?;
            audit(rows, by, "runner.rotate", name, serde_json::Value::Null)?;
            Ok(runner)
        })?;
        Ok((runner, token))
    }

    /// Revoke a runner: its token stops working with the next request.
    pub fn revoke(&self, by: &str, name: &str) -> Outcome<()> {
        self.tx(|rows| match rows.delete_runner(name)? {
            true => audit(rows, by, "runner.revoke", name, serde_json::Value::Null),
            false => Err(Refusal::Gone),
        })
    }

    pub fn runners(&self) -> Outcome<Vec<Runner>> {
        self.tx(|rows| rows.runners())
    }

    /// The registered runner this token belongs to, if it is current (or the
    /// previous one within its grace) and not expired.
    pub fn authenticate(&self, token: &str) -> Outcome<Option<Caller>> {
        if !token.starts_with("srt_") {
            return Ok(None);
        }
        let hash = self.token_hash(token)?;
        let now = now_ms();
        let found = self.tx(|rows| rows.runner_by_hash(&hash))?;
        Ok(found
            .filter(|r| r.accepts(&hash, now))
            .map(|runner| Caller {
                runner,
                token_hash: hash,
            }))
    }
}

impl Store {
    /// Keep on a registered runner the last execution it completed.
    fn note_result(rows: &mut dyn Rows, job: &Job) -> Outcome<()> {
        let Some(mut runner) = job
            .ran_by
            .as_deref()
            .map(|r| rows.runner(r))
            .transpose()?
            .flatten()
        else {
            return Ok(());
        };
        runner.last_result = Some(LastResult {
            job: job.id.clone(),
            status: job.status().to_string(),
            at_ms: job.finished_at_ms.unwrap_or_else(now_ms),
        });
        rows.put_runner(&runner)
    }
}

/// An audit entry's id: its time, then the order this process wrote entries
/// in (so entries of one millisecond keep their order), then randomness (so
/// replicas never collide).
fn audit_id(entry: &AuditEntry) -> String {
    static WRITTEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITTEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{:016}-{n:020}-{}", entry.at_ms, &random_token()[..8])
}

/// Record a change in the audit log, in the transaction that makes it.
fn audit(
    rows: &mut dyn Rows,
    by: &str,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> Outcome<()> {
    rows.audit(&AuditEntry {
        at_ms: now_ms(),
        by: by.to_string(),
        action: action.to_string(),
        target: target.to_string(),
        detail,
    })
}

/// The length and SHA-256 of `job`'s stored log: from its running checksum,
/// or, for a log stored before those were kept, read back.
fn summary(rows: &mut dyn Rows, job: &Job) -> Outcome<LogSummary> {
    if let Some(kept) = job
        .log_hash
        .as_deref()
        .and_then(|state| checksum::summary(state, job.log_length))
    {
        return Ok(kept);
    }
    let (hasher, length) = stored_hasher(rows, &job.id)?;
    Ok(LogSummary {
        length,
        sha256: hex(&hasher.finalize()),
    })
}

/// A hasher fed the whole of job `id`'s stored log, read back, and the log's
/// length.
fn stored_hasher(rows: &mut dyn Rows, id: &str) -> Outcome<(Sha256, u64)> {
    let mut hasher = Sha256::new();
    let mut length = 0u64;
    rows.read_log(id, 0, &mut |_, chunk| {
        hasher.update(chunk);
        length += chunk.len() as u64;
        true
    })?;
    Ok((hasher, length))
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

fn claimed(job: &Job, heartbeat_seconds: u64, multiline: bool) -> ClaimedJob {
    let lease = job.lease.as_ref().expect("a claimed job has a lease");
    ClaimedJob {
        id: job.id.clone(),
        attempt: job.attempt,
        lease: wire_lease(lease, heartbeat_seconds),
        spec: job.spec.clone(),
        log_tail_bytes: LOG_TAIL_BYTES,
        log_encodings: vec![LOG_ENCODING_ZSTD.to_string()],
        log_multiline: multiline,
    }
}
