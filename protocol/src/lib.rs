//! Wire types of sortie protocol v1.
//!
//! The runner and the reference control plane both speak through these types, so
//! the contract in `sortie-protocol(7)` is written down once. Unknown fields are
//! ignored on input (serde's default) and optional fields are left out of the
//! output when empty, so peers of different minor versions interoperate.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod json;
pub mod log;
pub mod schema;

/// Value of the `Sortie-Protocol` header on every request.
pub const PROTOCOL_VERSION: &str = "1";
/// Header naming the protocol version a runner speaks.
pub const HEADER_PROTOCOL: &str = "Sortie-Protocol";
/// Header carrying a fresh UUID per request, for correlating logs on both sides.
pub const HEADER_REQUEST_ID: &str = "Sortie-Request-Id";
/// Header carrying the lease token on log uploads.
pub const HEADER_LEASE_TOKEN: &str = "Sortie-Lease-Token";

/// The exit codes of `sortie` (sysexits style), for wrappers, tests and control
/// planes that start runners. sortie(1), "EXIT STATUS", says when each is used.
pub mod exit {
    /// The shot did its work, or there was nothing to do.
    pub const OK: u8 = 0;
    /// A job failed (`exec`, or `poll --fail-on-job-failure`).
    pub const JOB_FAILED: u8 = 1;
    /// Bad command line or event (EX_USAGE).
    pub const USAGE: u8 = 64;
    /// The control plane could not be reached (EX_UNAVAILABLE).
    pub const UNREACHABLE: u8 = 69;
    /// A bug in sortie (EX_SOFTWARE).
    pub const SOFTWARE: u8 = 70;
    /// Another shot holds the state dir's lock (EX_CANTCREAT).
    pub const BUSY: u8 = 73;
    /// The state dir could not be read or written: a full disk, an I/O error (EX_IOERR).
    pub const IO: u8 = 74;
    /// Output or results are left in the state dir for a later shot (EX_TEMPFAIL).
    pub const LEFT_FOR_LATER: u8 = 75;
    /// The control plane answered outside the protocol: a redirect, an unexpected
    /// status, a body that is not valid (EX_PROTOCOL).
    pub const PROTOCOL: u8 = 76;
    /// The control plane rejected the credentials (EX_NOPERM).
    pub const REJECTED: u8 = 77;
    /// Configuration error: a bad flag value, file, certificate or key (EX_CONFIG).
    pub const CONFIG: u8 = 78;
    /// Interrupted by a signal or by the deadline (128 + SIGINT).
    pub const INTERRUPTED: u8 = 130;
}

/// Who is asking for work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerInfo {
    pub id: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub arch: String,
    #[serde(default)]
    pub capabilities: Vec<String>,
}

/// `POST v1/claim`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimRequest {
    /// Idempotency key: a retry of the same claim reuses it and gets the same jobs.
    pub claim_id: String,
    pub runner: RunnerInfo,
    pub max_jobs: u32,
    #[serde(default)]
    pub wait_seconds: u64,
    /// RFC 3339 time by which the runner must be done; jobs that cannot fit are not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
}

/// 200 answer to a claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimResponse {
    pub jobs: Vec<ClaimedJob>,
}

/// One job handed to a runner, with the lease that fences every later call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimedJob {
    pub id: String,
    pub attempt: u64,
    pub lease: Lease,
    /// The job spec, parsed by the runner (a malformed spec is failed, not crashed on;
    /// a key given twice makes the whole answer invalid).
    #[serde(deserialize_with = "json::strict")]
    pub spec: serde_json::Value,
    /// An extension: the most log bytes this job's `complete` may carry as its
    /// `log_tail`. Absent (0): every byte goes by `PUT log`, as v1 says.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub log_tail_bytes: u64,
    /// An extension: the `Content-Encoding`s this job's `PUT log` bodies may
    /// use ([`LOG_ENCODING_ZSTD`]). Absent: bodies are sent as they are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_encodings: Vec<String>,
    /// An extension: this job's `output` events may hold several consecutive
    /// lines of one stream (at most [`MULTILINE_TEXT_BYTES`] of them) rather
    /// than one. Absent (false): one line, or a piece of one, per event, as v1 says.
    #[serde(default, skip_serializing_if = "is_false")]
    pub log_multiline: bool,
}

/// The most bytes one `output` event carries where `log_multiline` was offered:
/// the lines of one read of the step's output, up to this many.
pub const MULTILINE_TEXT_BYTES: usize = 64 * 1024;

fn is_false(b: &bool) -> bool {
    !*b
}

/// The log upload encoding a control plane may offer (RFC 8878's
/// `Content-Encoding: zstd`): one Zstandard frame per `PUT log` body, which
/// decodes to the bytes from `offset`.
pub const LOG_ENCODING_ZSTD: &str = "zstd";

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The part of a job spec every peer reads: its id, and its timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecHeader {
    pub id: String,
    /// A humantime duration (`"30m"`), as written.
    pub timeout: Option<String>,
}

impl SpecHeader {
    /// Read the header of a spec: `id` a valid job id, `timeout` a string if present.
    pub fn of(spec: &serde_json::Value) -> Result<SpecHeader, String> {
        let id = match spec.get("id") {
            Some(serde_json::Value::String(id)) => id.clone(),
            Some(_) => return Err("id: must be a string".into()),
            None => return Err("the spec has no \"id\"".into()),
        };
        if !valid_job_id(&id) {
            return Err(format!("id: {id:?} is not [A-Za-z0-9._-]{{1,128}}"));
        }
        let timeout = match spec.get("timeout") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(t)) => Some(t.clone()),
            Some(_) => return Err("timeout: must be a duration such as \"90s\"".into()),
        };
        Ok(SpecHeader { id, timeout })
    }
}

/// Longest lease token a runner accepts.
pub const MAX_LEASE_TOKEN: usize = 1024;

impl ClaimedJob {
    /// Whether the job can be worked on safely: its id usable as a file name and a
    /// URL segment, an attempt from 1, a lease token that fits in a header.
    pub fn check(&self) -> Result<(), String> {
        if !valid_job_id(&self.id) {
            return Err("its id is not [A-Za-z0-9._-]{1,128}".into());
        }
        if self.attempt == 0 {
            return Err("its attempt is 0 (attempts count from 1)".into());
        }
        let token = &self.lease.token;
        if token.is_empty()
            || token.len() > MAX_LEASE_TOKEN
            || !token.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(format!(
                "its lease token is not 1 to {MAX_LEASE_TOKEN} visible ASCII characters"
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub token: String,
    pub expires_at: String,
    pub heartbeat_seconds: u64,
}

/// `POST v1/jobs/{id}/start` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fence {
    pub attempt: u64,
    pub lease_token: String,
}

/// Answer to `start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseResponse {
    pub lease: Lease,
}

/// `POST v1/jobs/{id}/heartbeat` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatRequest {
    pub attempt: u64,
    pub lease_token: String,
    pub log_length: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Continue,
    Cancel,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    pub lease: Lease,
    pub action: Action,
}

/// Answer to a log upload, and body of 416 and 412 refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    pub committed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
    Interrupted,
    Lost,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::TimedOut => "timed_out",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Interrupted => "interrupted",
            JobStatus::Lost => "lost",
        }
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
    Interrupted,
    /// Not run: an earlier step failed and the job did not keep going (an
    /// optional value of sortie's; a step that ran is never skipped).
    Skipped,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::TimedOut => "timed_out",
            StepStatus::Cancelled => "cancelled",
            StepStatus::Interrupted => "interrupted",
            StepStatus::Skipped => "skipped",
        }
    }
}

/// One entry of `complete.steps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepResult {
    pub index: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub node: String,
    pub status: StepStatus,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub duration_ms: u64,
    /// True for the run of a step's error handler (an optional field of sortie's).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub errorhandler: bool,
    /// An ansible step's play recap for this node: `ok`, `changed`,
    /// `unreachable`, `failures`, `skipped`, `rescued`, `ignored` (an optional
    /// field of sortie's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recap: Option<std::collections::BTreeMap<String, u64>>,
}

/// Length and checksum of the whole log, so the control plane can prove it has every byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSummary {
    pub length: u64,
    pub sha256: String,
}

/// The outcome of a job: `complete` without the fence, and the spool's `result.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    pub status: JobStatus,
    pub exit_code: Option<i32>,
    pub started_at: String,
    pub finished_at: String,
    #[serde(default)]
    pub steps: Vec<StepResult>,
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    pub log: LogSummary,
    #[serde(default)]
    pub error: Option<String>,
}

/// `POST v1/jobs/{id}/complete` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompleteRequest {
    pub attempt: u64,
    pub lease_token: String,
    #[serde(flatten)]
    pub completion: Completion,
    /// An extension, sent only to a control plane whose claim answer offered
    /// `log_tail_bytes`: the log's last bytes, which it stores as `PUT log`
    /// would before it checks `log`. An old control plane ignores the field
    /// and answers 412 with what it holds, and the runner sends the rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<LogTail>,
}

/// The last bytes of a job's log, folded into its `complete`: the log from
/// `offset` (NDJSON, so UTF-8 text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogTail {
    pub offset: u64,
    pub data: String,
}

/// `POST v1/jobs/{id}/fail` body: a claimed job that never started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailRequest {
    pub attempt: u64,
    pub lease_token: String,
    pub reason: String,
}

/// `PUT v1/inventory` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InventoryRequest {
    pub runner_id: String,
    pub nodes: BTreeMap<String, serde_json::Value>,
    /// How each source of the inventory went: `{"name", "nodes", "error"?,
    /// "duration_ms"}` (an optional field of sortie's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<serde_json::Value>,
}

/// `application/problem+json` error body (RFC 9457).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Whether a job id is acceptable: `[A-Za-z0-9._-]{1,128}`, and not `.` or `..`
/// (ids become file names in the spool and the state dir).
pub fn valid_job_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_that_could_escape_a_directory_are_refused() {
        assert!(valid_job_id("exec-42"));
        assert!(valid_job_id("a.b_c-D"));
        for bad in ["", ".", "..", "a/b", "../x", "a b", &"x".repeat(129)] {
            assert!(!valid_job_id(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn claimed_jobs_outside_the_protocol_are_refused() {
        let job = |id: &str, attempt: u64, token: &str| ClaimedJob {
            id: id.into(),
            attempt,
            lease: Lease {
                token: token.into(),
                expires_at: String::new(),
                heartbeat_seconds: 10,
            },
            spec: serde_json::Value::Null,
            log_tail_bytes: 0,
            log_encodings: Vec::new(),
            log_multiline: false,
        };
        assert!(job("a", 1, "t0k3n").check().is_ok());
        for bad in [
            job("..", 1, "t"),
            job("a/b", 1, "t"),
            job("a", 0, "t"),
            job("a", 1, ""),
            job("a", 1, "t\r\nX-Evil: 1"),
            job("a", 1, "t\0"),
            job("a", 1, "a b"),
            job("a", 1, &"x".repeat(MAX_LEASE_TOKEN + 1)),
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_multiline_offer_is_read_and_left_out_when_not_made() {
        let answer = r#"{"jobs":[{"id":"a","attempt":1,"spec":{},"log_multiline":true,
            "lease":{"token":"t","expires_at":"","heartbeat_seconds":10}}]}"#;
        let mut claim: ClaimResponse = serde_json::from_str(answer).unwrap();
        assert!(claim.jobs[0].log_multiline);
        claim.jobs[0].log_multiline = false;
        // A control plane that does not offer it answers v1 as it was.
        let back = serde_json::to_value(&claim).unwrap();
        assert!(back["jobs"][0].get("log_multiline").is_none());
        let old = r#"{"jobs":[{"id":"a","attempt":1,"spec":{},
            "lease":{"token":"t","expires_at":"","heartbeat_seconds":10}}]}"#;
        let claim: ClaimResponse = serde_json::from_str(old).unwrap();
        assert!(!claim.jobs[0].log_multiline);
    }

    #[test]
    fn complete_request_is_flat_and_ignores_unknown_fields() {
        let json = r#"{"attempt":2,"lease_token":"t","status":"timed_out","exit_code":null,
            "started_at":"a","finished_at":"b","steps":[],"data":{},
            "log":{"length":3,"sha256":"x"},"error":null,"future":1}"#;
        let req: CompleteRequest = serde_json::from_str(json).unwrap();
        assert_eq!(req.attempt, 2);
        assert_eq!(req.completion.status, JobStatus::TimedOut);
        let back = serde_json::to_value(&req).unwrap();
        assert_eq!(back["status"], "timed_out");
        assert_eq!(back["log"]["length"], 3);
        // Without a tail, none is sent: an old control plane sees v1 as it was.
        assert_eq!(req.log_tail, None);
        assert!(back.get("log_tail").is_none());
    }

    #[test]
    fn the_log_tail_and_encoding_extensions_are_optional_on_both_sides() {
        let claimed = r#"{"id":"a","attempt":1,"spec":{},
            "lease":{"token":"t","expires_at":"x","heartbeat_seconds":10}}"#;
        let job: ClaimedJob = serde_json::from_str(claimed).unwrap();
        assert_eq!(job.log_tail_bytes, 0);
        assert!(serde_json::to_value(&job)
            .unwrap()
            .get("log_tail_bytes")
            .is_none());
        assert!(job.log_encodings.is_empty());
        let offered = claimed.replace(
            r#""attempt""#,
            r#""log_tail_bytes":65536,"log_encodings":["zstd","br"],"attempt""#,
        );
        let job: ClaimedJob = serde_json::from_str(&offered).unwrap();
        assert_eq!(job.log_tail_bytes, 65536);
        assert_eq!(job.log_encodings, [LOG_ENCODING_ZSTD, "br"]);
        let json = r#"{"attempt":1,"lease_token":"t","status":"succeeded","exit_code":0,
            "started_at":"a","finished_at":"b","log":{"length":9,"sha256":"x"},
            "log_tail":{"offset":4,"data":"{\"a\":1}\n"}}"#;
        let req: CompleteRequest = serde_json::from_str(json).unwrap();
        let tail = req.log_tail.clone().unwrap();
        assert_eq!((tail.offset, tail.data.as_str()), (4, "{\"a\":1}\n"));
        let back = serde_json::to_value(&req).unwrap();
        assert_eq!(back["log_tail"]["offset"], 4);
    }
}
