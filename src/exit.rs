//! Exit codes, and the one mapping from an error's cause to its code.
//!
//! A shot's exit code tells its trigger (cron, systemd, a CI step, a Lambda
//! wrapper) what happened without parsing logs. Code that fails says *why*, as a
//! [`Cause`]; which number each cause exits with is decided here and nowhere
//! else, and the numbers themselves are published in `sortie_protocol::exit` for
//! wrappers and tests. A job's own failure is the control plane's business and
//! does not fail the shot, unless asked.

use std::fmt;

use sortie_protocol::exit as codes;

/// Exit status of a `sortie` invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Code(pub u8);

impl Code {
    pub const OK: Code = Code(codes::OK);
    pub const JOB_FAILED: Code = Code(codes::JOB_FAILED);
    pub const USAGE: Code = Code(codes::USAGE);
    pub const SOFTWARE: Code = Code(codes::SOFTWARE);
    pub const CONFIG: Code = Code(codes::CONFIG);
}

/// Why an invocation could not do its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// A bad command line or Lambda event.
    Usage,
    /// A bad flag value, file, certificate, key or directory.
    Config,
    /// The control plane could not be reached (network, 5xx, timeouts).
    Unreachable,
    /// The control plane rejected the credentials.
    Rejected,
    /// The control plane answered outside the protocol.
    Protocol,
    /// Another shot holds the state dir.
    Busy,
    /// The state dir (or a job's workspace) could not be written or read.
    Io,
    /// Results were left in the state dir for a later shot.
    LeftForLater,
    /// A signal or the deadline stopped the work.
    Interrupted,
}

impl Cause {
    /// The exit code of each cause: the one mapping.
    pub fn code(self) -> Code {
        Code(match self {
            Cause::Usage => codes::USAGE,
            Cause::Config => codes::CONFIG,
            Cause::Unreachable => codes::UNREACHABLE,
            Cause::Rejected => codes::REJECTED,
            Cause::Protocol => codes::PROTOCOL,
            Cause::Busy => codes::BUSY,
            Cause::Io => codes::IO,
            Cause::LeftForLater => codes::LEFT_FOR_LATER,
            Cause::Interrupted => codes::INTERRUPTED,
        })
    }
}

/// An error that knows its cause.
#[derive(Debug)]
pub struct Failure {
    pub cause: Cause,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn new(cause: Cause, error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            cause,
            error: error.into(),
        }
    }

    pub fn config(error: impl Into<anyhow::Error>) -> Failure {
        Failure::new(Cause::Config, error)
    }

    /// `error` as a configuration error, unless it already knows its cause.
    pub fn or_config(error: anyhow::Error) -> anyhow::Error {
        if error.chain().any(|e| e.is::<Failure>()) {
            error
        } else {
            Failure::config(error).into()
        }
    }

    pub fn io(error: impl Into<anyhow::Error>) -> Failure {
        Failure::new(Cause::Io, error)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl std::error::Error for Failure {}

/// The exit code an error maps to: its cause's when it carries one, else
/// EX_SOFTWARE (a bug: every failure sortie foresees has a cause).
pub fn code_of(error: &anyhow::Error) -> Code {
    error
        .chain()
        .find_map(|e| e.downcast_ref::<Failure>())
        .map_or(Code::SOFTWARE, |f| f.cause.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_has_its_own_code_and_unknown_errors_are_bugs() {
        let causes = [
            Cause::Usage,
            Cause::Config,
            Cause::Unreachable,
            Cause::Rejected,
            Cause::Protocol,
            Cause::Busy,
            Cause::Io,
            Cause::LeftForLater,
            Cause::Interrupted,
        ];
        let mut seen: Vec<u8> = causes.iter().map(|c| c.code().0).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), causes.len());
        let wrapped = anyhow::Error::new(Failure::new(Cause::Rejected, anyhow::anyhow!("no")))
            .context("claiming");
        assert_eq!(code_of(&wrapped), Code(77));
        assert_eq!(code_of(&anyhow::anyhow!("?")), Code::SOFTWARE);
    }
}
