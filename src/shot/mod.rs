//! One shot: claim once, run what was claimed, report it, exit.
//!
//! The shot drives a [`ControlPlane`] through the protocol's order — claim,
//! start (no step runs before it succeeded), log and heartbeat while the job
//! runs, complete with the log's length and checksum — and turns what happened
//! into the exit code. A job's own failure is reported, not fatal; rejected
//! credentials stop the shot; anything undelivered stays in the state dir.

pub mod delivery;
pub mod heartbeat;
pub mod recovery;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use sortie_protocol::{ClaimRequest, ClaimedJob, Completion, JobStatus, RunnerInfo};

use crate::control::upload::{JobLog, Uploader};
use crate::control::{self, ControlError, ControlPlane, Endpoint, JobRef};
use crate::exec::StopReason;
use crate::exit::{Cause, Code};
use crate::jobs::runner::{self, Runtime};
use crate::jobs::spec as jobspec;
use crate::jobs::workspace::Workspace;
use crate::output::EventLog;
use crate::secrets::Providers;
use crate::shot::heartbeat::{Heartbeat, JobFlags};
use crate::state::{Journal, StateDir};
use crate::{clock, ids, os, signals};
use delivery::{fail, JobEnd};

/// Step kinds this build runs (sent with every claim).
pub const CAPABILITIES: &[&str] = &["exec", "shell", "script", "scriptfile"];

/// The settings of a shot, checked and built by the face.
#[derive(Debug, Clone)]
pub struct Settings {
    pub endpoint: Endpoint,
    pub runner_id: String,
    pub tags: Vec<String>,
    pub state_dir: PathBuf,
    pub providers: Providers,
    pub kill_grace: Duration,
    pub keep_workspace: bool,
    pub max_jobs: u32,
    pub wait: Duration,
    pub max_runtime: Option<Duration>,
    pub fail_on_job_failure: bool,
    pub deadline_reserve: Duration,
    pub lock_wait: Duration,
    pub delivery_budget: Duration,
    pub keep_logs: Option<PathBuf>,
}

/// The control-plane client for the configured target.
pub fn control_plane(
    endpoint: &Endpoint,
    deadline: Option<Instant>,
) -> Result<Arc<dyn ControlPlane>> {
    control::open(endpoint, deadline, signals::interrupted).map_err(fail)
}

/// What a shot did: its exit code, and each job it claimed with how it ended.
#[derive(Debug, serde::Serialize)]
pub struct Summary {
    pub exit_code: Code,
    pub jobs: Vec<JobSummary>,
    /// Jobs of earlier shots delivered by this one.
    pub recovered: usize,
}

#[derive(Debug, serde::Serialize)]
pub struct JobSummary {
    pub id: String,
    pub attempt: u64,
    /// `succeeded`, `failed`, …, or `abandoned` (the lease moved on, or not started),
    /// or `left_for_later` (kept in the state dir).
    pub outcome: String,
}

/// Run one shot.
pub fn run(cfg: &Settings) -> Result<Summary> {
    let started = Instant::now();
    let deadline = cfg.max_runtime.map(|d| started + d);
    // Jobs must be over by then, leaving the reserve for delivery.
    let work_until = deadline.map(|d| d.checked_sub(cfg.deadline_reserve).unwrap_or(started));
    let state = StateDir::open(&cfg.state_dir, cfg.lock_wait)?;
    let server = cfg.endpoint.target.name();

    // Recovery gets a client of its own, bounded by the delivery budget, and only when
    // an earlier shot left something: a clean state dir costs the shot nothing.
    let recovered = if state.pending_jobs().is_empty() {
        recovery::Outcome::default()
    } else {
        let budget = started + cfg.delivery_budget;
        let until = deadline.map_or(budget, |d| d.min(budget));
        recovery::run(
            &*control_plane(&cfg.endpoint, Some(until))?,
            &state,
            &server,
        )?
    };

    let cp = control_plane(&cfg.endpoint, deadline)?;
    let hostname = os::hostname().unwrap_or_default();
    let request = ClaimRequest {
        claim_id: ids::uuid(),
        runner: RunnerInfo {
            id: cfg.runner_id.clone(),
            tags: cfg.tags.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            hostname: hostname.clone(),
            os: std::env::consts::OS.to_string(),
            arch: std::env::consts::ARCH.to_string(),
            capabilities: CAPABILITIES.iter().map(|c| c.to_string()).collect(),
        },
        max_jobs: cfg.max_jobs,
        wait_seconds: cfg.wait.as_secs(),
        deadline: work_until.map(|w| {
            clock::rfc3339(SystemTime::now() + w.saturating_duration_since(Instant::now()))
        }),
    };
    let jobs = cp.claim(&request).map_err(fail)?;
    if jobs.is_empty() {
        tracing::info!("no work");
    }
    let mut failed = false;
    let mut interrupted = false;
    let mut left = recovered.left > 0;
    let mut summaries = Vec::new();
    for job in jobs {
        tracing::info!(job = %job.id, attempt = job.attempt, "claimed");
        if signals::interrupted() {
            tracing::warn!(job = %job.id, "interrupted before the job started; not starting it");
            cp.release(&JobRef::from(&job)).map_err(fail)?;
            summaries.push(JobSummary {
                id: job.id.clone(),
                attempt: job.attempt,
                outcome: "abandoned".into(),
            });
            continue;
        }
        let ctx = JobContext {
            settings: cfg,
            cp: &cp,
            state: &state,
            server: &server,
            work_until,
            hostname: &hostname,
        };
        let end = run_job(&ctx, &job)?;
        let outcome = match end {
            JobEnd::Reported(status) => {
                tracing::info!(job = %job.id, %status, "reported");
                failed |= status != JobStatus::Succeeded;
                interrupted |= status == JobStatus::Interrupted;
                status.as_str()
            }
            JobEnd::Abandoned => "abandoned",
            JobEnd::LeftForLater => {
                left = true;
                "left_for_later"
            }
        };
        summaries.push(JobSummary {
            id: job.id.clone(),
            attempt: job.attempt,
            outcome: outcome.to_string(),
        });
    }
    let code = if signals::interrupted() || interrupted {
        Cause::Interrupted.code()
    } else if left {
        Cause::LeftForLater.code()
    } else if failed && cfg.fail_on_job_failure {
        Code::JOB_FAILED
    } else {
        Code::OK
    };
    Ok(Summary {
        exit_code: code,
        jobs: summaries,
        recovered: recovered.delivered,
    })
}

/// What every job of a shot shares.
struct JobContext<'a> {
    settings: &'a Settings,
    cp: &'a Arc<dyn ControlPlane>,
    state: &'a StateDir,
    /// The control plane's name, recorded in the journal.
    server: &'a str,
    /// Jobs are stopped (interrupted) at this instant: the deadline less the reserve.
    work_until: Option<Instant>,
    hostname: &'a str,
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

fn run_job(ctx: &JobContext<'_>, job: &ClaimedJob) -> Result<JobEnd> {
    let (cp, settings) = (ctx.cp, ctx.settings);
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
    if let (Some(timeout), Some(until)) = (spec.timeout, ctx.work_until) {
        if Instant::now() + timeout > until {
            tracing::warn!(job = %job.id, "its timeout does not fit in what is left of --max-runtime; not starting it");
            cp.release(&jref).map_err(fail)?;
            return Ok(JobEnd::Abandoned);
        }
    }
    let dir = ctx.state.job_dir(&job.id)?;
    let log_path = cp
        .log_in_place(&jref)
        .unwrap_or_else(|| dir.join("log.ndjson"));
    // Written durably before the start: a later shot can finish what this one leaves.
    Journal {
        id: job.id.clone(),
        attempt: job.attempt,
        lease_token: job.lease.token.clone(),
        server: ctx.server.to_string(),
        log: log_path.clone(),
        started_at: clock::now_rfc3339(),
    }
    .write(&dir)?;
    let lease = match cp.start(&jref) {
        Ok(lease) => lease,
        Err(ControlError::Fenced(why)) => {
            tracing::warn!(job = %job.id, "not started: {why}");
            let _ = std::fs::remove_dir_all(&dir);
            return Ok(JobEnd::Abandoned);
        }
        Err(e) => return Err(fail(e)),
    };
    let mut joblog =
        JobLog::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let shared = joblog.shared();
    let uploader = Uploader::spawn(cp.clone(), jref.clone(), log_path.clone(), shared.clone())?;
    let flags = Arc::new(JobFlags::default());
    let heartbeat = Heartbeat::spawn(cp.clone(), jref.clone(), &lease, shared, flags.clone());
    let workspace = Workspace::create(
        Some(&ctx.state.work_dir()?),
        &job.id,
        settings.keep_workspace,
    )?;
    let stop = || {
        if signals::interrupted() {
            Some(StopReason::Interrupted)
        } else {
            flags.should_stop().then_some(StopReason::Cancelled)
        }
    };
    let rt = Runtime {
        workspace: workspace.path(),
        hostname: ctx.hostname.to_string(),
        deadline: spec.timeout.map(|t| Instant::now() + t),
        interrupt_at: ctx.work_until,
        stop: &stop,
        grace: settings.kill_grace,
        providers: &settings.providers,
    };
    let report = runner::run(&spec, &rt, &mut EventLog::new(&mut joblog));
    heartbeat.stop();
    workspace.finish();
    let report = report.context("writing the job log")?;
    let length = joblog.finish().context("writing the job log")?;
    if let Some(keep) = &settings.keep_logs {
        let copy = keep.join(format!("{}.ndjson", job.id));
        std::fs::create_dir_all(keep)
            .and_then(|_| std::fs::copy(&log_path, &copy))
            .with_context(|| format!("keeping a copy of the log in {}", copy.display()))?;
    }
    if flags.lease_lost.load(std::sync::atomic::Ordering::Relaxed) {
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(JobEnd::Abandoned);
    }
    let summary = match uploader.join() {
        Ok(summary) => summary,
        Err(e) => return delivery::undelivered(e, "log", &jref, &dir),
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
    delivery::complete(&**cp, &jref, &dir, &log_path, &completion)
}
