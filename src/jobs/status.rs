//! The job status rules (sortie(1), "JOB STATUS"), as plain functions.
//!
//! How a step's run becomes a step status, when a stop ends the whole job, and
//! what the job does after a failed step (its error handler, `keepgoing`,
//! `keepgoing_on_success`): decided here, apart from the processes and the log,
//! so the rules can be read in one place and tested as a table.

use sortie_protocol::{JobStatus, StepStatus};

use crate::exec::{Outcome, StopReason};

/// How one run of a step (or of its error handler) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    Exited(i32),
    Signaled(i32),
    Stopped(StopReason),
    /// It never started: a reference that cannot expand, a script that cannot be
    /// written, a program that cannot be spawned.
    NotStarted(String),
    /// It exited 0, but the result data it wrote is invalid.
    BadData(String),
    /// A flow step stopped the job here: succeeded or failed, and why.
    Halted {
        succeed: bool,
        message: String,
    },
}

impl From<Outcome> for Ran {
    fn from(outcome: Outcome) -> Ran {
        match outcome {
            Outcome::Exited(code) => Ran::Exited(code),
            Outcome::Signaled(signal) => Ran::Signaled(signal),
            Outcome::Stopped(reason) => Ran::Stopped(reason),
            Outcome::SpawnFailed(why) => Ran::NotStarted(why),
        }
    }
}

impl Ran {
    /// The step's status, exit code and signal, as the completion reports them.
    pub fn step_status(&self) -> (StepStatus, Option<i32>, Option<i32>) {
        match self {
            Ran::Exited(0) => (StepStatus::Succeeded, Some(0), None),
            Ran::Exited(code) => (StepStatus::Failed, Some(*code), None),
            Ran::Signaled(signal) => (StepStatus::Failed, None, Some(*signal)),
            Ran::Stopped(StopReason::TimedOut) => (StepStatus::TimedOut, None, None),
            Ran::Stopped(StopReason::Cancelled) => (StepStatus::Cancelled, None, None),
            Ran::Stopped(StopReason::Interrupted) => (StepStatus::Interrupted, None, None),
            Ran::Stopped(StopReason::Aborted) => (StepStatus::Failed, None, None),
            Ran::NotStarted(_) => (StepStatus::Failed, None, None),
            Ran::BadData(_) => (StepStatus::Failed, Some(0), None),
            Ran::Halted { succeed: true, .. } => (StepStatus::Succeeded, Some(0), None),
            Ran::Halted { succeed: false, .. } => (StepStatus::Failed, None, None),
        }
    }

    pub fn succeeded(&self) -> bool {
        *self == Ran::Exited(0)
    }

    /// The job status this run ends the job with, when it was stopped for the
    /// job's sake (cancelled, interrupted, the job's own timeout, a log that could
    /// not be written). A step's own timeout is only that step's failure.
    pub fn stops_job(&self, job_deadline_passed: bool) -> Option<JobStatus> {
        match self {
            Ran::Stopped(StopReason::Cancelled) => Some(JobStatus::Cancelled),
            Ran::Stopped(StopReason::Interrupted) => Some(JobStatus::Interrupted),
            Ran::Stopped(StopReason::TimedOut) if job_deadline_passed => Some(JobStatus::TimedOut),
            Ran::Stopped(StopReason::Aborted) => Some(JobStatus::Failed),
            _ => None,
        }
    }
}

/// What the job does after a step failed (and was not stopped for the job's sake).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Its error handler succeeded and the job may go on: the step does not fail it.
    Recovered,
    /// The job fails; `go_on` says whether the next steps still run (`keepgoing`).
    Fails { go_on: bool },
}

/// The rule for a failed step: `handler` is whether its error handler succeeded
/// (`None`: it has none).
pub fn after_failure(
    handler: Option<bool>,
    keepgoing: bool,
    keepgoing_on_success: bool,
) -> AfterFailure {
    if handler == Some(true) && (keepgoing_on_success || keepgoing) {
        AfterFailure::Recovered
    } else {
        AfterFailure::Fails { go_on: keepgoing }
    }
}

/// Words for why a stopped job stopped, for its error line.
pub fn stop_words(status: JobStatus, timeout: Option<std::time::Duration>) -> String {
    match (status, timeout) {
        (JobStatus::Cancelled, _) => "was cancelled".into(),
        (JobStatus::Interrupted, _) => {
            "was interrupted by the runner (a signal, the end of its run time, or a lease it \
             could not renew)"
                .into()
        }
        (JobStatus::Failed, _) => "was stopped because its log could not be written".into(),
        // The limit it reached, so that nobody has to look it up.
        (_, Some(limit)) => format!(
            "reached its timeout of {}",
            humantime::format_duration(limit)
        ),
        _ => "ran out of time".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_map_to_step_statuses() {
        let table = [
            (Ran::Exited(0), StepStatus::Succeeded, Some(0), None),
            (Ran::Exited(3), StepStatus::Failed, Some(3), None),
            (Ran::Signaled(9), StepStatus::Failed, None, Some(9)),
            (
                Ran::Stopped(StopReason::TimedOut),
                StepStatus::TimedOut,
                None,
                None,
            ),
            (
                Ran::Stopped(StopReason::Cancelled),
                StepStatus::Cancelled,
                None,
                None,
            ),
            (
                Ran::Stopped(StopReason::Interrupted),
                StepStatus::Interrupted,
                None,
                None,
            ),
            (
                Ran::Stopped(StopReason::Aborted),
                StepStatus::Failed,
                None,
                None,
            ),
            (Ran::NotStarted("x".into()), StepStatus::Failed, None, None),
            (Ran::BadData("x".into()), StepStatus::Failed, Some(0), None),
        ];
        for (ran, status, code, signal) in table {
            assert_eq!(ran.step_status(), (status, code, signal), "{ran:?}");
            assert_eq!(ran.succeeded(), status == StepStatus::Succeeded, "{ran:?}");
        }
    }

    #[test]
    fn only_stops_for_the_job_s_sake_end_the_job() {
        use JobStatus as J;
        let table = [
            (
                Ran::Stopped(StopReason::Cancelled),
                false,
                Some(J::Cancelled),
            ),
            (
                Ran::Stopped(StopReason::Interrupted),
                false,
                Some(J::Interrupted),
            ),
            (Ran::Stopped(StopReason::TimedOut), true, Some(J::TimedOut)),
            // The step's own timeout, the job's deadline not reached.
            (Ran::Stopped(StopReason::TimedOut), false, None),
            (Ran::Stopped(StopReason::Aborted), false, Some(J::Failed)),
            (Ran::Exited(1), true, None),
            (Ran::NotStarted("x".into()), false, None),
        ];
        for (ran, deadline_passed, expected) in table {
            assert_eq!(ran.stops_job(deadline_passed), expected, "{ran:?}");
        }
    }

    #[test]
    fn a_failed_step_is_recovered_only_by_a_successful_handler_allowed_to_go_on() {
        use AfterFailure::*;
        // (handler, keepgoing, keepgoing_on_success) → next
        let table = [
            (None, false, false, Fails { go_on: false }),
            (None, true, false, Fails { go_on: true }),
            (None, false, true, Fails { go_on: false }),
            (Some(false), false, false, Fails { go_on: false }),
            (Some(false), true, true, Fails { go_on: true }),
            (Some(true), false, false, Fails { go_on: false }),
            (Some(true), false, true, Recovered),
            (Some(true), true, false, Recovered),
            (Some(true), true, true, Recovered),
        ];
        for (handler, keepgoing, kos, expected) in table {
            assert_eq!(
                after_failure(handler, keepgoing, kos),
                expected,
                "handler {handler:?} keepgoing {keepgoing} keepgoing_on_success {kos}"
            );
        }
    }
}
