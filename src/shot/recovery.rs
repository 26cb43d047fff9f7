//! Recovery: finish what earlier shots left, before claiming anything new.
//!
//! A shot can die anywhere (a Lambda timeout, an eviction, `kill -9`). Each job it
//! started has a journal entry in the state dir, written durably before the job
//! started. A job with a completion on disk is delivered: its log from wherever
//! the control plane's copy ends, then the completion. A job whose start was
//! never confirmed ran no step: it is failed with the reason (or, if the control
//! plane did take the start, completed as `interrupted`). A job that started but
//! has no completion was running when its shot died: its log is cut back to its
//! last whole line, a `system` event says what happened, and it is completed as
//! `lost` — that completion is recorded before it is sent, so a later shot never
//! adds the event twice. A fenced answer (the lease moved on) clears the entry
//! without completing it.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{Context, Result};
use sortie_protocol::{Completion, JobStatus};

use crate::control::{upload, ControlError, ControlPlane, JobRef};
use crate::exit::{Cause, Failure};
use crate::output::{encode, Event, Level};
use crate::shot::delivery::{self, fail, JobEnd};
use crate::state::files::PRIVATE_FILE;
use crate::state::outbox::{JobDir, Journal};
use crate::state::StateDir;

/// What recovery did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub delivered: usize,
    /// Jobs still in the state dir (undeliverable now, or for another control plane).
    pub left: usize,
    /// Jobs whose delivery the control plane refused for good.
    pub given_up: usize,
}

/// Deliver every job earlier shots left for `server`. One job's trouble (an
/// unreadable log, a full disk) leaves that job for a later shot and does not
/// stop the others, nor the shot: only rejected credentials do.
pub fn run(cp: &dyn ControlPlane, state: &StateDir, server: &str) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    for dir in state.pending_jobs() {
        let path = dir.path().to_path_buf();
        if let Err(e) = recover(cp, dir, server, &mut outcome) {
            if e.downcast_ref::<Failure>()
                .is_some_and(|f| f.cause == Cause::Rejected)
            {
                return Err(e);
            }
            tracing::error!("{e:#}; {} is left for a later shot", path.display());
            outcome.left += 1;
        }
    }
    Ok(outcome)
}

/// Finish the job `dir` holds, counting how it ended in `outcome`.
fn recover(cp: &dyn ControlPlane, dir: JobDir, server: &str, outcome: &mut Outcome) -> Result<()> {
    let mut journal = match dir.journal() {
        Ok(Some(journal)) => journal,
        Ok(None) if matches!(dir.completion(), Ok(None)) => {
            // The shot died before it wrote the entry, so before the job started.
            dir.clear();
            return Ok(());
        }
        Ok(None) => {
            // An earlier version's interrupted clean-up: nothing to deliver it with.
            let kept = dir.give_up("a completion without its journal entry (its removal was interrupted): it cannot be delivered");
            tracing::error!(
                "{} had a completion but no journal entry: moved aside",
                kept.display()
            );
            outcome.given_up += 1;
            return Ok(());
        }
        Err(e) if e.downcast_ref::<serde_json::Error>().is_some() => {
            // Not a journal entry (damaged, or not sortie's): reading it
            // again will not make it one.
            let why = format!("{e:#}: it cannot be delivered");
            let kept = dir.give_up(&why);
            tracing::error!("{why}; moved to {}", kept.display());
            outcome.given_up += 1;
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if journal.server != server {
        tracing::warn!(job = %journal.id, "left for {}, not {server}", journal.server);
        outcome.left += 1;
        return Ok(());
    }
    let job = JobRef {
        id: journal.id.clone(),
        attempt: journal.attempt,
        lease_token: journal.lease_token.clone(),
        log_tail_bytes: 0,
        zstd_log: false,
    };
    // The log is where this state dir (or the spool) keeps a job's log, as
    // the shot that ran it chose: never another path the entry names (a
    // state dir moved since, or an entry not sortie's), which recovery would
    // cut, append to and send.
    let log = cp.log_in_place(&job).unwrap_or_else(|| dir.log_path());
    if journal.log != log {
        tracing::warn!(
            job = %job.id,
            "its journal entry names its log {}; {} is used, where this state dir keeps it",
            journal.log.display(),
            log.display()
        );
        journal.log = log;
    }
    let completion = match dir.completion() {
        Ok(Some(completion)) => completion,
        Ok(None) if !dir.starting() && dir.preparing() => {
            // The shot died while reading this job's spec: handing it out
            // again would kill the next shot the same way.
            let end = never_started(
                cp,
                &job,
                dir,
                &journal,
                "the runner stopped while reading the job's spec (it crashed or ran out of memory); not handed out again",
                false,
            )?;
            outcome.count(end);
            return Ok(());
        }
        Ok(None) if !dir.starting() => {
            // Claimed with others in a shot that died before reaching it.
            tracing::info!(job = %job.id, "claimed by a shot that stopped before starting it; giving it back");
            if let Err(e) = cp.release(&job) {
                tracing::warn!(job = %job.id, "giving it back: {e}");
            }
            dir.clear();
            return Ok(());
        }
        Ok(None) if !dir.started() => {
            let end = never_started(
                cp,
                &job,
                dir,
                &journal,
                "the runner stopped before the job started",
                true,
            )?;
            outcome.count(end);
            return Ok(());
        }
        Ok(None) => {
            tracing::warn!(job = %job.id, "the shot running it died; reporting it lost");
            let text =
                "the runner stopped while this job ran; the log above is what it had written";
            let completion = closing(
                &journal,
                JobStatus::Lost,
                text,
                "the runner stopped while the job ran",
            )?;
            dir.record_completion(&completion)?;
            completion
        }
        Err(e) => return Err(e),
    };
    let end = delivery::resume(cp, &job, dir, &journal.log, &completion)?;
    if let JobEnd::Reported(status) = end {
        tracing::info!(job = %job.id, %status, "reported for an earlier shot");
    }
    outcome.count(end);
    Ok(())
}

impl Outcome {
    fn count(&mut self, end: JobEnd) {
        match end {
            JobEnd::Reported(_) => self.delivered += 1,
            JobEnd::Abandoned => {}
            JobEnd::LeftForLater => self.left += 1,
            JobEnd::GivenUp => self.given_up += 1,
        }
    }
}

/// A job whose start was never confirmed ran no step: fail it with the reason.
/// When the control plane had taken the start after all, it is completed as
/// `interrupted` (the control plane may run it again), never `lost`.
fn never_started(
    cp: &dyn ControlPlane,
    job: &JobRef,
    dir: JobDir,
    journal: &Journal,
    otherwise: &str,
    start_sent: bool,
) -> Result<JobEnd> {
    let why = dir.start_failure().unwrap_or_else(|| otherwise.into());
    let reason = format!("not run: {why}");
    tracing::warn!(job = %job.id, "{reason}");
    match cp.fail(job, &reason) {
        Ok(()) => {
            dir.clear();
            Ok(JobEnd::Reported(JobStatus::Failed))
        }
        // Its start was never sent: the control plane has taken the claim back.
        Err(ControlError::Fenced(_)) if !start_sent => {
            dir.clear();
            Ok(JobEnd::Abandoned)
        }
        Err(ControlError::Fenced(_)) => {
            let completion = closing(journal, JobStatus::Interrupted, &reason, &reason)?;
            dir.record_completion(&completion)?;
            delivery::resume(cp, job, dir, &journal.log, &completion)
        }
        Err(ControlError::Rejected(why)) => Err(fail(ControlError::Rejected(why))),
        Err(e) => delivery::undelivered(e, "failure report", job, dir),
    }
}

/// Close the log of a job an earlier shot left (its last whole line kept, a
/// `system` event added) and build its completion.
fn closing(journal: &Journal, status: JobStatus, text: &str, error: &str) -> Result<Completion> {
    let path = &journal.log;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE_FILE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let (whole, last) = last_line(&mut file)?;
    // A line cut short by the crash is dropped: the log stays NDJSON.
    file.set_len(whole)?;
    // A recovery that died after writing this line, before its completion,
    // wrote it already.
    let written = last
        .as_ref()
        .is_some_and(|e| e["kind"] == "system" && e["text"] == text);
    let mut line = Vec::new();
    if !written {
        let seq = last.and_then(|e| e["seq"].as_u64()).map_or(0, |s| s + 1);
        encode::event(
            &mut line,
            seq,
            &crate::clock::now_rfc3339(),
            &Event::System {
                level: Level::Error,
                text,
            },
        );
        file.seek(SeekFrom::End(0))?;
        file.write_all(&line)?;
    }
    file.sync_all()?;
    let length = whole + line.len() as u64;
    Ok(Completion {
        status,
        exit_code: None,
        started_at: journal.started_at.clone(),
        finished_at: crate::clock::now_rfc3339(),
        steps: Vec::new(),
        data: BTreeMap::new(),
        log: upload::summarize(path, length)
            .with_context(|| format!("reading {}", path.display()))?,
        error: Some(error.to_string()),
    })
}

/// The length of the log's whole lines and the last one, parsed.
fn last_line(file: &mut File) -> Result<(u64, Option<serde_json::Value>)> {
    let length = file.metadata()?.len();
    // A line is at most a few hundred KiB (64 KiB of text, escaped); read enough tail.
    let tail_len = length.min(4 * 1024 * 1024);
    file.seek(SeekFrom::Start(length - tail_len))?;
    let mut tail = Vec::with_capacity(tail_len as usize);
    file.take(tail_len).read_to_end(&mut tail)?;
    let Some(end) = tail.iter().rposition(|b| *b == b'\n') else {
        return Ok((length - tail_len, None));
    };
    let whole = length - tail_len + end as u64 + 1;
    let start = tail[..end]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    let last = serde_json::from_slice::<serde_json::Value>(&tail[start..end]).ok();
    Ok((whole, last))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::memory::Memory;
    use crate::state::outbox::JOURNAL_FORMAT;

    const SERVER: &str = "https://cp/";

    fn journal(dir: &JobDir) -> Journal {
        let journal = Journal {
            format: JOURNAL_FORMAT,
            id: "j".into(),
            attempt: 1,
            lease_token: "t".into(),
            server: SERVER.into(),
            log: dir.log_path(),
            started_at: "2026-11-28T00:00:00Z".into(),
        };
        dir.record(&journal).unwrap();
        journal
    }

    fn state() -> (tempfile::TempDir, StateDir) {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path(), std::time::Duration::ZERO).unwrap();
        (tmp, state)
    }

    #[test]
    fn an_entry_that_is_not_a_journal_is_moved_aside_not_tried_forever() {
        let (_tmp, state) = state();
        let dir = state.job_dir("j").unwrap();
        journal(&dir);
        std::fs::write(dir.path().join("journal.json"), b"{\"format\": 2, \"id\"").unwrap();
        let outcome = run(&Memory::default(), &state, SERVER).unwrap();
        assert_eq!((outcome.given_up, outcome.left), (1, 0));
        assert!(state.pending_jobs().is_empty());
        let given: Vec<_> = std::fs::read_dir(state.root().join("given-up"))
            .unwrap()
            .flatten()
            .collect();
        let reason = std::fs::read_to_string(given[0].path().join("reason")).unwrap();
        assert!(reason.contains("is not a journal entry"), "{reason}");
    }

    #[test]
    fn a_log_the_entry_names_elsewhere_is_neither_touched_nor_sent() {
        let (tmp, state) = state();
        let dir = state.job_dir("j").unwrap();
        let mut entry = journal(&dir);
        let foreign = tmp.path().join("precious.txt");
        std::fs::write(&foreign, b"precious line 1\nprecious line 2").unwrap();
        // As a moved state dir, or a hand-edited entry, would have it.
        entry.log = foreign.clone();
        std::fs::remove_file(dir.path().join("journal.json")).unwrap();
        dir.record(&entry).unwrap();
        dir.mark_starting().unwrap();
        dir.mark_started().unwrap();
        std::fs::write(
            dir.log_path(),
            b"{\"seq\":0,\"ts\":\"t\",\"kind\":\"system\",\"level\":\"info\",\"text\":\"a\"}\n",
        )
        .unwrap();
        let cp = Memory::default();
        assert_eq!(run(&cp, &state, SERVER).unwrap().delivered, 1);
        let sent = String::from_utf8(cp.state().log.clone()).unwrap();
        assert!(!sent.contains("precious"), "{sent}");
        assert_eq!(sent.lines().count(), 2, "{sent}");
        assert_eq!(
            std::fs::read(&foreign).unwrap(),
            b"precious line 1\nprecious line 2"
        );
    }

    #[test]
    fn a_job_whose_shot_died_is_reported_lost_once_with_its_whole_lines() {
        let (_tmp, state) = state();
        let dir = state.job_dir("j").unwrap();
        journal(&dir);
        dir.mark_starting().unwrap();
        dir.mark_started().unwrap();
        std::fs::write(
            dir.log_path(),
            b"{\"seq\":0,\"ts\":\"t\",\"kind\":\"system\",\"level\":\"info\",\"text\":\"a\"}\n{\"seq\":1,\"ts\":\"t\",\"kin",
        )
        .unwrap();
        // The first recovery cannot deliver: it records the completion and keeps it.
        let down = Memory::with(|s| {
            s.log_error = Some(crate::control::ControlError::Unreachable(anyhow::anyhow!(
                "down"
            )))
        });
        let first = run(&down, &state, SERVER).unwrap();
        assert_eq!((first.delivered, first.left), (0, 1));
        let cp = Memory::default();
        let second = run(&cp, &state, SERVER).unwrap();
        assert_eq!(second.delivered, 1);
        let s = cp.state();
        let completion = s.completion.as_ref().unwrap();
        assert_eq!(completion.status, JobStatus::Lost);
        let log = String::from_utf8(s.log.clone()).unwrap();
        assert_eq!(
            log.lines().count(),
            2,
            "the torn line is cut, one event added: {log}"
        );
        assert_eq!(
            log.matches("runner stopped").count(),
            1,
            "added once: {log}"
        );
        assert!(log.lines().nth(1).unwrap().contains("\"seq\":1"));
    }

    /// A job whose outbox cannot be read is left for a later shot; the jobs
    /// after it are still delivered, and the shot goes on.
    #[test]
    fn one_job_that_cannot_be_recovered_does_not_stop_the_others() {
        let (_tmp, state) = state();
        let broken = state.job_dir("a").unwrap();
        journal(&broken);
        broken.mark_starting().unwrap();
        broken.mark_started().unwrap();
        // Its log is a directory: it can be neither cut back nor read.
        std::fs::create_dir(broken.log_path()).unwrap();
        let fine = state.job_dir("b").unwrap();
        let journal = journal(&fine);
        std::fs::write(&journal.log, b"").unwrap();
        fine.record_completion(&delivery::succeeded(upload::empty_summary()))
            .unwrap();
        let cp = Memory::default();
        let outcome = run(&cp, &state, SERVER).unwrap();
        assert_eq!((outcome.delivered, outcome.left), (1, 1));
        assert_eq!(
            cp.state().completion.as_ref().unwrap().status,
            JobStatus::Succeeded
        );
        assert_eq!(state.pending_jobs().len(), 1, "the broken one is kept");
    }

    /// A recovery killed after it closed the log, before it recorded the
    /// completion, leaves the closing line for the next one, not a second.
    #[test]
    fn a_log_closed_by_a_recovery_that_died_is_not_closed_twice() {
        let (_tmp, state) = state();
        let dir = state.job_dir("j").unwrap();
        let journal = journal(&dir);
        std::fs::write(
            dir.log_path(),
            b"{\"seq\":0,\"ts\":\"t\",\"kind\":\"system\",\"level\":\"info\",\"text\":\"a\"}\n",
        )
        .unwrap();
        let first = closing(&journal, JobStatus::Lost, "stopped", "e").unwrap();
        let second = closing(&journal, JobStatus::Lost, "stopped", "e").unwrap();
        assert_eq!(first.log, second.log);
        let log = std::fs::read_to_string(dir.log_path()).unwrap();
        assert_eq!(log.matches("stopped").count(), 1, "{log}");
        assert_eq!(log.lines().count(), 2, "{log}");
    }

    #[test]
    fn a_cleared_entry_leaves_nothing_and_a_half_removed_one_is_moved_aside() {
        let (tmp, state) = state();
        let cleared = tmp.path().join("cleared");
        let dir = state.job_dir("done").unwrap();
        journal(&dir);
        dir.clear();
        assert!(state.pending_jobs().is_empty());
        assert_eq!(std::fs::read_dir(&cleared).unwrap().count(), 0);
        // What a killed shot was removing is removed by the next.
        std::fs::create_dir_all(cleared.join("x-1")).unwrap();
        std::fs::write(cleared.join("x-1/completion.json"), b"{}").unwrap();
        assert!(state.pending_jobs().is_empty());
        assert_eq!(std::fs::read_dir(&cleared).unwrap().count(), 0);
        // An older version's interrupted removal: a completion, no journal.
        let half = state.job_dir("half").unwrap();
        half.record_completion(&delivery::succeeded(upload::empty_summary()))
            .unwrap();
        let outcome = run(&Memory::default(), &state, SERVER).unwrap();
        assert_eq!((outcome.given_up, outcome.left), (1, 0));
        assert!(state.pending_jobs().is_empty());
        let kept: Vec<_> = std::fs::read_dir(tmp.path().join("given-up"))
            .unwrap()
            .flatten()
            .collect();
        assert_eq!(kept.len(), 1);
        assert!(kept[0].path().join("completion.json").exists());
    }

    #[test]
    fn a_job_never_started_is_failed_with_its_reason() {
        let (_tmp, state) = state();
        let dir = state.job_dir("j").unwrap();
        journal(&dir);
        dir.mark_starting().unwrap();
        dir.record_start_failure("503 from start").unwrap();
        let cp = Memory::default();
        let outcome = run(&cp, &state, SERVER).unwrap();
        assert_eq!(outcome.delivered, 1);
        let reason = cp.state().failed.clone().unwrap();
        assert!(
            reason.contains("not run") && reason.contains("503"),
            "{reason}"
        );
        assert!(cp.state().completion.is_none());
        assert!(state.pending_jobs().is_empty());
    }

    #[test]
    fn a_job_whose_start_was_taken_after_all_is_completed_as_interrupted() {
        let (_tmp, state) = state();
        let dir = state.job_dir("j").unwrap();
        journal(&dir);
        dir.mark_starting().unwrap();
        let cp = Memory::with(|s| {
            s.fail_error = Some(crate::control::ControlError::Fenced("409: running".into()))
        });
        let outcome = run(&cp, &state, SERVER).unwrap();
        assert_eq!(outcome.delivered, 1);
        let s = cp.state();
        assert_eq!(
            s.completion.as_ref().unwrap().status,
            JobStatus::Interrupted
        );
        assert!(String::from_utf8_lossy(&s.log).contains("not run"));
    }

    #[test]
    fn a_job_claimed_but_never_reached_is_given_back() {
        let (_tmp, state) = state();
        let dir = state.job_dir("j").unwrap();
        journal(&dir);
        let cp = Memory::default();
        let outcome = run(&cp, &state, SERVER).unwrap();
        assert_eq!((outcome.delivered, outcome.left), (0, 0));
        assert_eq!(cp.state().released, 1);
        assert!(cp.state().failed.is_none() && cp.state().completion.is_none());
        assert!(state.pending_jobs().is_empty());
    }

    #[test]
    fn a_job_whose_spec_killed_the_shot_is_failed_not_handed_out_again() {
        let (_tmp, state) = state();
        let dir = state.job_dir("j").unwrap();
        journal(&dir);
        dir.mark_preparing().unwrap();
        let cp = Memory::default();
        run(&cp, &state, SERVER).unwrap();
        assert_eq!(cp.state().released, 0, "a poison job goes round no more");
        let reason = cp.state().failed.clone().unwrap();
        assert!(reason.contains("reading the job's spec"), "{reason}");
        assert!(state.pending_jobs().is_empty());
        // The control plane took the claim back meanwhile: nothing is left.
        let dir = state.job_dir("k").unwrap();
        journal(&dir);
        dir.mark_preparing().unwrap();
        let cp = Memory::with(|s| {
            s.fail_error = Some(crate::control::ControlError::Fenced("409".into()))
        });
        run(&cp, &state, SERVER).unwrap();
        assert!(cp.state().completion.is_none());
        assert!(state.pending_jobs().is_empty(), "the entry is gone");
    }

    #[test]
    fn entries_for_another_control_plane_or_without_a_journal_are_handled() {
        let (_tmp, state) = state();
        let dir = state.job_dir("j").unwrap();
        journal(&dir);
        let cp = Memory::default();
        let outcome = run(&cp, &state, "https://other/").unwrap();
        assert_eq!(outcome.left, 1, "kept for the control plane it came from");
        assert!(cp.state().uploads.is_empty());
        let (_tmp, state) = self::state();
        state.job_dir("orphan").unwrap();
        let outcome = run(&cp, &state, SERVER).unwrap();
        assert_eq!(outcome.left, 0);
        assert!(
            state.pending_jobs().is_empty(),
            "died before its journal: cleared"
        );
    }
}
