//! The control-plane interface, and its two implementations.
//!
//! The shot drives a [`ControlPlane`] and knows nothing of HTTP or files; the
//! HTTPS client (`http`) and the embedded spool (`spool`) know nothing of
//! processes. Errors are typed because the shot branches on them: a fenced call
//! means "stop working on this job", rejected credentials stop the shot with
//! their own exit code, an unreachable control plane leaves results for later.

pub mod http;
#[cfg(test)]
pub mod memory;
pub mod retry;
pub mod spool;
pub mod upload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sortie_protocol::{
    Action, ClaimRequest, ClaimedJob, Completion, InventoryRequest, Lease, LogTail,
};

use crate::net::tls::{Identity, Roots};
use crate::secret::Secret;

use crate::exit::Cause;

/// Where the work comes from.
#[derive(Debug, Clone)]
pub enum Target {
    /// A protocol v1 control plane; the base URL ends with `/`.
    Http { base: String },
    /// The embedded spool directory.
    Spool { root: PathBuf },
}

impl Target {
    /// The control plane as the user named it (recorded with each job in flight).
    pub fn name(&self) -> String {
        match self {
            Target::Http { base } => base.clone(),
            Target::Spool { root } => format!("dir:{}", root.display()),
        }
    }
}

/// How to reach a control plane: checked settings, built by the face.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub target: Target,
    pub token: Option<Secret>,
    pub roots: Option<Roots>,
    pub identity: Option<Identity>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

/// The client for an endpoint. `deadline` bounds every retry loop; `stopping`
/// tells it that the runner was asked to stop (then each call is tried once).
pub fn open(
    endpoint: &Endpoint,
    deadline: Option<Instant>,
    stopping: fn() -> bool,
) -> Result<Arc<dyn ControlPlane>> {
    Ok(match &endpoint.target {
        Target::Http { base } => Arc::new(
            http::HttpControl::new(endpoint, base, deadline, stopping)
                .map_err(ControlError::Config)?,
        ),
        Target::Spool { root } => Arc::new(spool::SpoolControl::open(root)?),
    })
}

/// A claimed job and the fence every later call about it carries.
#[derive(Debug, Clone)]
pub struct JobRef {
    pub id: String,
    pub attempt: u64,
    pub lease_token: String,
    /// How many of the log's last bytes its completion may carry (0: none;
    /// the claim answer says, a later shot sends the log by `put_log`).
    pub log_tail_bytes: u64,
    /// Whether `put_log` bodies go as one Zstandard frame each (the claim
    /// answer offered it; a later shot sends them as they are).
    pub zstd_log: bool,
}

impl From<&ClaimedJob> for JobRef {
    fn from(job: &ClaimedJob) -> Self {
        JobRef {
            id: job.id.clone(),
            attempt: job.attempt,
            lease_token: job.lease.token.clone(),
            log_tail_bytes: job.log_tail_bytes,
            zstd_log: job
                .log_encodings
                .iter()
                .any(|e| e == sortie_protocol::LOG_ENCODING_ZSTD),
        }
    }
}

#[derive(Debug)]
pub enum ControlError {
    /// Network errors or transient statuses outlasted the retries.
    Unreachable(anyhow::Error),
    /// 401/403: the credentials were rejected.
    Rejected(String),
    /// TLS refused: the server's certificate is not trusted, or the handshake failed.
    Tls(anyhow::Error),
    /// 409/410: this attempt no longer holds the job's lease.
    Fenced(String),
    /// 416 or 412: the control plane holds this many log bytes; resend from there.
    Resend(u64),
    /// Any other refusal, final for this call.
    Refused(String),
    /// The client cannot be built from its settings (a bad certificate or key).
    Config(anyhow::Error),
    /// Files could not be read or written: the spool's, or the outbox log a
    /// delivery reads.
    Io(anyhow::Error),
}

impl ControlError {
    /// Why this error ends a shot.
    pub fn cause(&self) -> Cause {
        match self {
            ControlError::Unreachable(_) => Cause::Unreachable,
            ControlError::Rejected(_) => Cause::Rejected,
            ControlError::Tls(_) | ControlError::Config(_) => Cause::Config,
            ControlError::Io(_) => Cause::Io,
            ControlError::Fenced(_) | ControlError::Resend(_) | ControlError::Refused(_) => {
                Cause::Protocol
            }
        }
    }
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControlError::Unreachable(e) => write!(f, "control plane unreachable: {e:#}"),
            ControlError::Rejected(why) => write!(f, "credentials rejected: {why}"),
            ControlError::Tls(e) => write!(f, "TLS: {e:#}"),
            ControlError::Fenced(why) => write!(f, "lease lost: {why}"),
            ControlError::Resend(k) => write!(f, "the control plane holds {k} log bytes"),
            ControlError::Refused(why) => write!(f, "refused: {why}"),
            ControlError::Config(e) => write!(f, "{e:#}"),
            ControlError::Io(e) => write!(f, "{e:#}"),
        }
    }
}

impl std::error::Error for ControlError {}

pub type Result<T> = std::result::Result<T, ControlError>;

/// The answer to a heartbeat.
#[derive(Debug, Clone)]
pub struct Beat {
    pub lease: Lease,
    pub action: Action,
}

/// What a shot needs from a control plane (PROTOCOL.md, "Endpoints").
pub trait ControlPlane: Send + Sync {
    /// Ask for up to `max_jobs` jobs; an empty answer means no work.
    fn claim(&self, request: &ClaimRequest) -> Result<Vec<ClaimedJob>>;
    /// Acknowledge a claimed job; its first step runs only after this succeeded.
    fn start(&self, job: &JobRef) -> Result<Lease>;
    /// Keep the lease, report progress, learn of cancellation.
    fn heartbeat(&self, job: &JobRef, log_length: u64) -> Result<Beat>;
    /// Store log bytes starting at `offset`; answers how many bytes are committed.
    fn put_log(&self, job: &JobRef, offset: u64, bytes: &[u8]) -> Result<u64>;
    /// Where the log is stored, when the control plane is a local file (the spool):
    /// the runner then writes it there directly, and `put_log` only confirms what the
    /// file holds, instead of copying every byte from an outbox.
    fn log_in_place(&self, _job: &JobRef) -> Option<PathBuf> {
        None
    }
    /// Whether its specs were written by hand (the spool): then a field the
    /// runner does not know is refused, where a control plane's is ignored.
    fn hand_written(&self) -> bool {
        false
    }
    /// Report the job's outcome, with the log's last bytes when the control
    /// plane offered to take them (`JobRef::log_tail_bytes`).
    fn complete(&self, job: &JobRef, completion: &Completion, tail: Option<&LogTail>)
        -> Result<()>;
    /// Fail a claimed job that never started.
    fn fail(&self, job: &JobRef, reason: &str) -> Result<()>;
    /// Report the nodes this runner sees; `false`: this control plane takes
    /// no inventory (the spool).
    fn put_inventory(&self, _inventory: &InventoryRequest) -> Result<bool> {
        Ok(false)
    }
    /// Give back a claimed job this runner will not start (no time left, told to stop).
    /// Protocol v1 has no call for it: its ack window returns the job to the queue.
    fn release(&self, _job: &JobRef) -> Result<()> {
        Ok(())
    }
}
