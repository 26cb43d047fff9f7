//! Delivering a finished job: its completion, after every byte of its log.
//!
//! Shared by the shot (a job that just ran) and recovery (a job an earlier shot
//! left): the completion is written durably before it is sent; a 412 sends the
//! missing log bytes and completes again; a fenced answer lets the job go; rejected
//! credentials end the shot; anything else leaves the job in the state dir.

use std::fs::File;
use std::path::Path;

use anyhow::Result;
use sortie_protocol::{Completion, JobStatus};

use crate::control::upload;
use crate::control::{ControlError, ControlPlane, JobRef};
use crate::exit::Failure;
use crate::state;

/// Times a completion is retried after the control plane asked for missing log bytes.
const COMPLETE_TRIES: usize = 3;

/// How one job ended, from the shot's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEnd {
    /// The control plane has its outcome.
    Reported(JobStatus),
    /// The lease moved on; another attempt owns the job.
    Abandoned,
    /// Its log or completion is left in the state dir for a later shot.
    LeftForLater,
}

/// The shot-ending error for a control-plane error.
pub fn fail(e: ControlError) -> anyhow::Error {
    Failure::new(e.cause(), e).into()
}

/// Send the log from wherever the control plane's copy ends (an empty upload at the
/// log's end answers how much it holds), then the completion.
pub fn resume(
    cp: &dyn ControlPlane,
    job: &JobRef,
    dir: &Path,
    log_path: &Path,
    completion: &Completion,
) -> Result<JobEnd> {
    let length = completion.log.length;
    let held = match cp.put_log(job, length, &[]) {
        Ok(k) | Err(ControlError::Resend(k)) => k,
        Err(e) => return undelivered(e, "log", job, dir),
    };
    if let Err(e) = send_log(cp, job, log_path, held, length) {
        return undelivered(e, "log", job, dir);
    }
    complete(cp, job, dir, log_path, completion)
}

/// Send `log[from..length]` (nothing when the control plane has it all).
fn send_log(
    cp: &dyn ControlPlane,
    job: &JobRef,
    log_path: &Path,
    from: u64,
    length: u64,
) -> Result<(), ControlError> {
    if from >= length {
        return Ok(());
    }
    let file = File::open(log_path).map_err(|e| {
        ControlError::Unreachable(anyhow::anyhow!("reading {}: {e}", log_path.display()))
    })?;
    upload::send_range(cp, job, &file, from, length, &mut |_, _| {}).map(drop)
}

/// Record the completion durably, send it, and clear the job's state once it is in.
pub fn complete(
    cp: &dyn ControlPlane,
    job: &JobRef,
    dir: &Path,
    log_path: &Path,
    completion: &Completion,
) -> Result<JobEnd> {
    let body = serde_json::to_vec(completion).expect("completion serializes");
    state::write_durably(&dir.join("completion.json"), &body)?;
    for _ in 0..COMPLETE_TRIES {
        match cp.complete(job, completion) {
            Ok(()) => {
                let _ = std::fs::remove_dir_all(dir);
                return Ok(JobEnd::Reported(completion.status));
            }
            Err(ControlError::Resend(from)) => {
                tracing::warn!(job = %job.id, "the control plane holds {from} log bytes; resending");
                if let Err(e) = send_log(cp, job, log_path, from, completion.log.length) {
                    return undelivered(e, "log", job, dir);
                }
            }
            Err(e) => return undelivered(e, "completion", job, dir),
        }
    }
    let e = ControlError::Refused("the control plane keeps asking for the log again".into());
    undelivered(e, "completion", job, dir)
}

/// What a failed delivery means: a fenced job is let go, rejected credentials end the
/// shot, anything else leaves the job's files in the state dir for a later shot.
pub fn undelivered(e: ControlError, what: &str, job: &JobRef, dir: &Path) -> Result<JobEnd> {
    match e {
        ControlError::Fenced(why) => {
            tracing::warn!(job = %job.id, "{what} refused: {why}");
            let _ = std::fs::remove_dir_all(dir);
            Ok(JobEnd::Abandoned)
        }
        ControlError::Rejected(_) => Err(fail(e)),
        e => {
            tracing::error!(job = %job.id, "{what} not delivered, kept in {}: {e}", dir.display());
            Ok(JobEnd::LeftForLater)
        }
    }
}
