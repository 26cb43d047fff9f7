//! Exit codes, in one place (sysexits style, documented in sortie(1)).
//!
//! A shot's exit code tells its trigger (cron, systemd, a CI step, a Lambda
//! wrapper) what happened without parsing logs. A job's own failure is the
//! control plane's business and does not fail the shot, unless asked.

use std::fmt;

/// Exit status of a `sortie` invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code(pub u8);

impl Code {
    /// The shot did its work (or there was nothing to do); the job succeeded for `exec`.
    pub const OK: Code = Code(0);
    /// A job failed (`exec`, or `poll --fail-on-job-failure`).
    pub const JOB_FAILED: Code = Code(1);
    /// Bad command line (EX_USAGE).
    pub const USAGE: Code = Code(64);
    /// The control plane could not be reached (EX_UNAVAILABLE).
    pub const UNREACHABLE: Code = Code(69);
    /// Internal error (EX_SOFTWARE).
    pub const SOFTWARE: Code = Code(70);
    /// Another shot holds the state dir's lock (EX_CANTCREAT).
    pub const BUSY: Code = Code(73);
    /// Output or results are left in the outbox for a later shot (EX_TEMPFAIL).
    pub const LEFT_FOR_LATER: Code = Code(75);
    /// The control plane rejected the credentials (EX_NOPERM).
    pub const REJECTED: Code = Code(77);
    /// Configuration error: a bad file, certificate, key or value (EX_CONFIG).
    pub const CONFIG: Code = Code(78);
    /// Interrupted by a signal or by the deadline.
    pub const INTERRUPTED: Code = Code(crate::os::INTERRUPTED_STATUS as u8);
}

/// An error that knows the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub code: Code,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn new(code: Code, error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code,
            error: error.into(),
        }
    }

    pub fn config(error: impl Into<anyhow::Error>) -> Failure {
        Failure::new(Code::CONFIG, error)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for Failure {}

/// The exit code an error maps to: its own when it carries one, else EX_SOFTWARE.
pub fn code_of(error: &anyhow::Error) -> Code {
    error
        .chain()
        .find_map(|e| e.downcast_ref::<Failure>())
        .map_or(Code::SOFTWARE, |f| f.code)
}
