//! One shot: claim once, run what was claimed, report it, exit.
//!
//! The shot drives a [`ControlPlane`] through the protocol's order — claim,
//! start (no step runs before it succeeded), log and heartbeat while the job
//! runs, complete with the log's length and checksum — and turns what happened
//! into the exit code. A job's own failure is reported, not fatal; rejected
//! credentials stop the shot; anything undelivered stays in the state dir.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result};
use sortie_protocol::{ClaimRequest, ClaimedJob, Completion, JobStatus, RunnerInfo};

use crate::config::{self, Poll, Target};
use crate::control::http::HttpControl;
use crate::control::spool::SpoolControl;
use crate::control::{ControlError, ControlPlane, JobRef};
use crate::executor::StopReason;
use crate::exit::{Code, Failure};
use crate::heartbeat::{Heartbeat, JobFlags};
use crate::output::EventLog;
use crate::runner::{self, Runtime};
use crate::state::{self, StateDir};
use crate::upload::{self, JobLog, Uploader};
use crate::workspace::Workspace;
use crate::{clock, ids, jobspec, os};

/// Step kinds this build runs (sent with every claim).
pub const CAPABILITIES: &[&str] = &["exec", "shell", "script", "scriptfile"];
/// Times a completion is retried after the control plane asked for missing log bytes.
const COMPLETE_TRIES: usize = 3;

/// How one claimed job ended, from the shot's point of view.
enum JobEnd {
    /// The control plane has its outcome.
    Reported(JobStatus),
    /// The lease moved on; another attempt owns the job.
    Abandoned,
    /// Its log or completion is left in the state dir for a later shot.
    LeftForLater,
}

fn fail(e: ControlError) -> anyhow::Error {
    Failure::new(e.code(), e).into()
}

/// The control-plane client for the configured target.
pub fn control_plane(
    connect: &config::Connect,
    deadline: Option<Instant>,
) -> Result<Arc<dyn ControlPlane>> {
    Ok(match &connect.target {
        Target::Http { base } => {
            Arc::new(HttpControl::new(connect, base, deadline).map_err(Failure::config)?)
        }
        Target::Spool { root } => Arc::new(SpoolControl::open(root).map_err(fail)?),
    })
}

/// Run one shot.
pub fn run(cfg: &Poll) -> Result<Code> {
    let started = Instant::now();
    let deadline = cfg.max_runtime.map(|d| started + d);
    let state = StateDir::open(&cfg.connect.state_dir)?;
    let cp = control_plane(&cfg.connect, deadline)?;
    let hostname = config::hostname().unwrap_or_default();
    let request = ClaimRequest {
        claim_id: ids::uuid(),
        runner: RunnerInfo {
            id: cfg.connect.runner_id.clone(),
            tags: cfg.connect.tags.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            hostname: hostname.clone(),
            os: std::env::consts::OS.to_string(),
            arch: std::env::consts::ARCH.to_string(),
            capabilities: CAPABILITIES.iter().map(|c| c.to_string()).collect(),
        },
        max_jobs: cfg.max_jobs,
        wait_seconds: cfg.wait.as_secs(),
        deadline: cfg
            .max_runtime
            .map(|d| clock::rfc3339(SystemTime::now() + d)),
    };
    let jobs = cp.claim(&request).map_err(fail)?;
    if jobs.is_empty() {
        tracing::info!("no work");
        return Ok(Code::OK);
    }
    let mut failed = false;
    let mut left = false;
    for job in jobs {
        tracing::info!(job = %job.id, attempt = job.attempt, "claimed");
        if os::interrupted() {
            // Not started: the control plane's ack window gives it to another runner.
            tracing::warn!(job = %job.id, "interrupted before the job started; not starting it");
            continue;
        }
        match run_job(cfg, &cp, &state, &job, deadline, &hostname)? {
            JobEnd::Reported(status) => {
                tracing::info!(job = %job.id, %status, "reported");
                failed |= status != JobStatus::Succeeded;
            }
            JobEnd::Abandoned => {}
            JobEnd::LeftForLater => left = true,
        }
    }
    Ok(if os::interrupted() {
        Code::INTERRUPTED
    } else if left {
        Code::LEFT_FOR_LATER
    } else if failed && cfg.fail_on_job_failure {
        Code::JOB_FAILED
    } else {
        Code::OK
    })
}

/// Fail a claimed job that cannot start (a malformed spec); a fenced answer is fine.
fn refuse(cp: &dyn ControlPlane, job: &JobRef, reason: &str) -> Result<JobEnd> {
    tracing::warn!(job = %job.id, "{reason}");
    match cp.fail(job, reason) {
        Ok(()) => Ok(JobEnd::Reported(JobStatus::Failed)),
        Err(ControlError::Fenced(_)) => Ok(JobEnd::Abandoned),
        Err(e) => Err(fail(e)),
    }
}

fn run_job(
    settings: &Poll,
    cp: &Arc<dyn ControlPlane>,
    state: &StateDir,
    job: &ClaimedJob,
    shot_deadline: Option<Instant>,
    hostname: &str,
) -> Result<JobEnd> {
    let jref = JobRef::from(job);
    let spec = match jobspec::parse(&job.spec) {
        Ok(spec) if spec.id == job.id => spec,
        Ok(spec) => {
            let reason = format!(
                "the spec's id {:?} differs from the job's id {:?}",
                spec.id, job.id
            );
            return refuse(&**cp, &jref, &reason);
        }
        Err(e) => return refuse(&**cp, &jref, &format!("malformed job spec: {e:#}")),
    };
    let lease = match cp.start(&jref) {
        Ok(lease) => lease,
        Err(ControlError::Fenced(why)) => {
            tracing::warn!(job = %job.id, "not started: {why}");
            return Ok(JobEnd::Abandoned);
        }
        Err(e) => return Err(fail(e)),
    };
    let dir = state.job_dir(&job.id)?;
    let log_path = cp
        .log_in_place(&jref)
        .unwrap_or_else(|| dir.join("log.ndjson"));
    let mut joblog =
        JobLog::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let shared = joblog.shared();
    let uploader = Uploader::spawn(cp.clone(), jref.clone(), log_path.clone(), shared.clone())?;
    let flags = Arc::new(JobFlags::default());
    let heartbeat = Heartbeat::spawn(
        cp.clone(),
        jref.clone(),
        lease.heartbeat_seconds,
        shared,
        flags.clone(),
    );
    let workspace = Workspace::create(Some(&state.work_dir()?), &job.id, settings.keep_workspace)?;
    let job_deadline = spec.timeout.map(|t| Instant::now() + t);
    let deadline = match (job_deadline, shot_deadline) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let stop = || {
        if os::interrupted() {
            Some(StopReason::Interrupted)
        } else {
            flags.should_stop().then_some(StopReason::Cancelled)
        }
    };
    let rt = Runtime {
        workspace: workspace.path(),
        hostname: hostname.to_string(),
        deadline,
        stop: &stop,
        grace: settings.kill_grace,
        providers: &settings.providers,
    };
    let report = runner::run(&spec, &rt, &mut EventLog::new(&mut joblog));
    heartbeat.stop();
    workspace.finish();
    let report = report.context("writing the job log")?;
    let length = joblog.finish().context("writing the job log")?;
    if flags.lease_lost.load(std::sync::atomic::Ordering::Relaxed) {
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(JobEnd::Abandoned);
    }
    let summary = match uploader.join() {
        Ok(summary) => summary,
        Err(e) => return undelivered(e, "log", &jref, &dir),
    };
    debug_assert_eq!(summary.length, length);
    let completion = Completion {
        status: report.status,
        exit_code: report.exit_code,
        started_at: report.started_at,
        finished_at: report.finished_at,
        steps: report.steps,
        data: report.data,
        log: summary,
        error: report.error,
    };
    let body = serde_json::to_vec(&completion).expect("completion serializes");
    state::write_durably(&dir.join("completion.json"), &body)?;
    let log_file = File::open(&log_path)?;
    for _ in 0..COMPLETE_TRIES {
        match cp.complete(&jref, &completion) {
            Ok(()) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Ok(JobEnd::Reported(completion.status));
            }
            Err(ControlError::Resend(from)) => {
                tracing::warn!(job = %jref.id, "the control plane holds {from} log bytes; resending");
                let length = completion.log.length;
                if let Err(e) =
                    upload::send_range(&**cp, &jref, &log_file, from, length, &mut |_, _| {})
                {
                    return undelivered(e, "log", &jref, &dir);
                }
            }
            Err(e) => return undelivered(e, "completion", &jref, &dir),
        }
    }
    let e = ControlError::Refused("the control plane keeps asking for the log again".into());
    undelivered(e, "completion", &jref, &dir)
}

/// What a failed delivery means: a fenced job is let go, rejected credentials end the
/// shot, anything else leaves the job's files in the state dir for a later shot.
fn undelivered(e: ControlError, what: &str, job: &JobRef, dir: &Path) -> Result<JobEnd> {
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
