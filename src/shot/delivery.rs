//! Delivering a finished job: its completion, after every byte of its log.
//!
//! Shared by the shot (a job that just ran) and recovery (a job an earlier shot
//! left). The completion is already recorded in the job's outbox when delivery
//! starts. A 412 sends the missing log bytes and completes again; a fenced
//! answer lets the job go; rejected credentials end the shot; a refusal that is
//! final (any other 4xx) moves the outbox aside with its reason, so it is never
//! retried forever; anything else leaves the job for a later shot.

use std::path::Path;

use anyhow::Result;
use sortie_protocol::{Completion, JobStatus, LogTail};

use crate::control::{upload, ControlError, ControlPlane, JobRef};
use crate::exit::Failure;
use crate::state::files;
use crate::state::outbox::JobDir;

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
    /// The control plane refused its delivery for good; kept in `given-up/`.
    GivenUp,
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
    dir: JobDir,
    log_path: &Path,
    completion: &Completion,
) -> Result<JobEnd> {
    let summed;
    let completion = if upload::summed(&completion.log) {
        completion
    } else {
        // Recorded when its log could not be read back: sum it now.
        let mut whole = completion.clone();
        whole.log = match upload::summarize(log_path, completion.log.length) {
            Ok(summary) => summary,
            Err(e) => {
                tracing::error!(job = %job.id, "its log cannot be read ({e}); kept in {} for a later shot", dir.path().display());
                return Ok(JobEnd::LeftForLater);
            }
        };
        dir.record_completion(&whole)?;
        summed = whole;
        &summed
    };
    let length = completion.log.length;
    let sent = match cp.put_log(job, length, &[]) {
        Ok(k) | Err(ControlError::Resend(k)) => send_log(cp, job, log_path, k, length),
        Err(e) => Err(e),
    };
    after_log(cp, job, dir, log_path, completion, sent.map(|()| None))
}

/// Complete once the log is sent (but the tail that goes with the
/// completion), or when the control plane refused the log for good: the
/// completion still tells it how the job ended (it may answer 412, and the job
/// is then given up). Any other failure leaves the job for later.
pub fn after_log(
    cp: &dyn ControlPlane,
    job: &JobRef,
    dir: JobDir,
    log_path: &Path,
    completion: &Completion,
    sent: Result<Option<LogTail>, ControlError>,
) -> Result<JobEnd> {
    match sent {
        Ok(tail) => complete(cp, job, dir, log_path, completion, tail),
        Err(ControlError::Refused(why)) => {
            tracing::warn!(job = %job.id, "the log was refused ({why}); sending the completion anyway");
            complete(cp, job, dir, log_path, completion, None)
        }
        Err(e) => undelivered(e, "log", job, dir),
    }
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
    let file = files::open_regular(log_path).map_err(|e| {
        ControlError::Unreachable(anyhow::anyhow!("reading {}: {e}", log_path.display()))
    })?;
    upload::send_range(cp, job, &file, from, length, &mut |_, _| {}).map(drop)
}

/// Send the (recorded) completion, and clear the job's outbox once it is in.
/// The log's `tail` goes with the first try only: a 412 means the control
/// plane lacks bytes before it, or did not take it (an old one ignores it), and
/// what it lacks is then sent by `put_log`.
pub fn complete(
    cp: &dyn ControlPlane,
    job: &JobRef,
    dir: JobDir,
    log_path: &Path,
    completion: &Completion,
    mut tail: Option<LogTail>,
) -> Result<JobEnd> {
    for _ in 0..COMPLETE_TRIES {
        match cp.complete(job, completion, tail.take().as_ref()) {
            Ok(()) => {
                dir.clear();
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

/// What a failed delivery means: a fenced job is let go, rejected credentials end
/// the shot, a final refusal is given up (kept aside), anything else leaves the
/// job's files in the state dir for a later shot.
pub fn undelivered(e: ControlError, what: &str, job: &JobRef, dir: JobDir) -> Result<JobEnd> {
    match e {
        ControlError::Fenced(why) => {
            tracing::warn!(job = %job.id, "{what} refused: {why}");
            dir.clear();
            Ok(JobEnd::Abandoned)
        }
        ControlError::Rejected(_) => Err(fail(e)),
        ControlError::Refused(why) => {
            let reason = format!("the control plane refused the {what} for good: {why}");
            let kept = dir.give_up(&reason);
            tracing::error!(job = %job.id, "{reason}; giving it up (kept in {})", kept.display());
            Ok(JobEnd::GivenUp)
        }
        e => {
            tracing::error!(job = %job.id, "{what} not delivered, kept in {}: {e}", dir.path().display());
            Ok(JobEnd::LeftForLater)
        }
    }
}

/// A succeeded job's completion with this log, for tests.
#[cfg(test)]
pub(crate) fn succeeded(log: sortie_protocol::LogSummary) -> Completion {
    Completion {
        status: JobStatus::Succeeded,
        exit_code: Some(0),
        started_at: "a".into(),
        finished_at: "b".into(),
        steps: Vec::new(),
        data: Default::default(),
        log,
        error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::memory::{job, Memory};
    use crate::state::StateDir;
    use sha2::{Digest, Sha256};
    use sortie_protocol::LogSummary;

    fn state() -> (tempfile::TempDir, StateDir) {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path(), std::time::Duration::ZERO).unwrap();
        (tmp, state)
    }

    /// A job's outbox with a log of `log` and a completion that describes it.
    fn outbox(state: &StateDir, log: &[u8]) -> (JobDir, std::path::PathBuf, Completion) {
        let dir = state.job_dir("j").unwrap();
        let path = dir.log_path();
        std::fs::write(&path, log).unwrap();
        let completion = succeeded(LogSummary {
            length: log.len() as u64,
            sha256: hex::encode(Sha256::digest(log)),
        });
        dir.record_completion(&completion).unwrap();
        (dir, path, completion)
    }

    #[test]
    fn a_resumed_delivery_sends_only_what_the_control_plane_lacks() {
        let (_tmp, state) = state();
        let log = b"0123456789".repeat(1000);
        let (dir, path, completion) = outbox(&state, &log);
        let cp = Memory::with(|s| s.log = log[..4000].to_vec());
        let end = resume(&cp, &job(), dir, &path, &completion).unwrap();
        assert_eq!(end, JobEnd::Reported(JobStatus::Succeeded));
        let s = cp.state();
        assert_eq!(s.log, log);
        assert_eq!(s.uploads[0], (10_000, 0), "first: ask how much it holds");
        assert_eq!(s.uploads[1].0, 4000, "then only the rest");
        assert!(state.pending_jobs().is_empty(), "the outbox is cleared");
    }

    /// A completion recorded while its log could not be read back is summed
    /// once the log reads again, recorded so, and only then sent.
    #[test]
    fn a_completion_recorded_without_its_log_s_checksum_is_summed_before_it_is_sent() {
        let (_tmp, state) = state();
        let log = b"line\n".repeat(300);
        let (dir, path, whole) = outbox(&state, &log);
        let mut kept = whole.clone();
        kept.log = upload::unsummed(log.len() as u64);
        dir.record_completion(&kept).unwrap();
        // While the log cannot be read, nothing is sent and the job stays.
        std::fs::rename(&path, path.with_extension("away")).unwrap();
        let cp = Memory::default();
        let dir = state.job_dir("j").unwrap();
        assert_eq!(
            resume(&cp, &job(), dir, &path, &kept).unwrap(),
            JobEnd::LeftForLater
        );
        assert!(cp.state().completion.is_none() && cp.state().uploads.is_empty());
        assert_eq!(state.pending_jobs().len(), 1);
        std::fs::rename(path.with_extension("away"), &path).unwrap();
        let dir = state.job_dir("j").unwrap();
        assert_eq!(
            resume(&cp, &job(), dir, &path, &kept).unwrap(),
            JobEnd::Reported(JobStatus::Succeeded)
        );
        let s = cp.state();
        assert_eq!(s.log, log);
        assert_eq!(s.completion.as_ref().unwrap().log, whole.log);
    }

    #[test]
    fn a_412_sends_the_missing_bytes_and_completes_again() {
        let (_tmp, state) = state();
        let log = b"line\n".repeat(100);
        let (dir, path, completion) = outbox(&state, &log);
        let cp = Memory::with(|s| s.log = log[..123].to_vec());
        let end = complete(&cp, &job(), dir, &path, &completion, None).unwrap();
        assert_eq!(end, JobEnd::Reported(JobStatus::Succeeded));
        assert_eq!(cp.state().log, log);
        assert!(cp.state().completion.is_some());
    }

    #[test]
    fn a_log_tail_goes_with_the_completion_and_by_put_log_when_it_did_not_fit() {
        let log = b"line\n".repeat(100);
        let tail = |from: usize| LogTail {
            offset: from as u64,
            data: String::from_utf8(log[from..].to_vec()).unwrap(),
        };
        // The control plane holds all but the tail: one request.
        let (_tmp, first) = state();
        let (dir, path, completion) = outbox(&first, &log);
        let cp = Memory::with(|s| s.log = log[..400].to_vec());
        let end = complete(&cp, &job(), dir, &path, &completion, Some(tail(400))).unwrap();
        assert_eq!(end, JobEnd::Reported(JobStatus::Succeeded));
        let s = cp.state();
        assert_eq!(
            (s.log.as_slice(), s.tails.as_slice()),
            (&log[..], &[(400, 100)][..])
        );
        assert!(s.uploads.is_empty() && s.completion.is_some());
        drop(s);
        // It lost bytes before the tail (or ignored it): they and the tail are
        // sent by `put_log`, and the completion again, without a tail.
        let (_tmp2, second) = state();
        let (dir, path, completion) = outbox(&second, &log);
        let cp = Memory::with(|s| s.log = log[..123].to_vec());
        let end = complete(&cp, &job(), dir, &path, &completion, Some(tail(400))).unwrap();
        assert_eq!(end, JobEnd::Reported(JobStatus::Succeeded));
        let s = cp.state();
        assert_eq!(s.log, log);
        assert_eq!((s.tails.len(), s.uploads[0].0), (1, 123));
        assert!(s.completion.is_some());
    }

    #[test]
    fn a_log_refused_for_good_still_sends_the_completion() {
        let (_tmp, state) = state();
        let log = b"line\n".repeat(10);
        let (dir, path, completion) = outbox(&state, &log);
        let cp = Memory::with(|s| {
            s.log = log.clone();
            s.log_error = Some(ControlError::Refused("400 from log upload".into()));
        });
        let end = resume(&cp, &job(), dir, &path, &completion).unwrap();
        assert_eq!(end, JobEnd::Reported(JobStatus::Succeeded));
        assert!(cp.state().completion.is_some());
    }

    #[test]
    fn what_a_failed_delivery_means_depends_on_the_answer() {
        let (tmp, state) = state();
        let cases = [
            (
                ControlError::Fenced("409".into()),
                JobEnd::Abandoned,
                false,
                false,
            ),
            (
                ControlError::Unreachable(anyhow::anyhow!("down")),
                JobEnd::LeftForLater,
                true,
                false,
            ),
            (
                ControlError::Refused("400 bad".into()),
                JobEnd::GivenUp,
                false,
                true,
            ),
        ];
        for (error, expected, kept, given_up) in cases {
            let (dir, path, completion) = outbox(&state, b"x\n");
            let cp = Memory::with(|s| s.complete_error = Some(error));
            let end = complete(&cp, &job(), dir, &path, &completion, None).unwrap();
            assert_eq!(end, expected);
            assert_eq!(!state.pending_jobs().is_empty(), kept, "{expected:?}");
            let reasons: Vec<_> = std::fs::read_dir(tmp.path().join("given-up"))
                .map(|d| d.flatten().map(|e| e.path().join("reason")).collect())
                .unwrap_or_default();
            assert_eq!(reasons.iter().any(|r| r.exists()), given_up, "{expected:?}");
            for dir in state.pending_jobs() {
                dir.clear();
            }
        }
        let cp = Memory::with(|s| s.complete_error = Some(ControlError::Rejected("401".into())));
        let (dir, path, completion) = outbox(&state, b"x\n");
        assert!(
            complete(&cp, &job(), dir, &path, &completion, None).is_err(),
            "rejected ends the shot"
        );
    }
}
