//! One shot: claim once, run what was claimed, report it, exit.
//!
//! The shot drives a [`ControlPlane`] through the protocol's order — claim,
//! start (no step runs before it succeeded), log and heartbeat while the job
//! runs, complete with the log's length and checksum — and turns what happened
//! into the exit code. A job's own failure is reported, not fatal; rejected
//! credentials stop the shot; anything undelivered stays in the state dir.

pub mod delivery;
pub mod heartbeat;
pub mod http;
pub mod inventory;
pub mod recovery;

use std::collections::VecDeque;
use std::path::Path;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use sortie_protocol::{
    ClaimRequest, ClaimedJob, Completion, JobStatus, LogTail, RunnerInfo, StepStatus,
};

use crate::control::upload::{self, Uploader};
use crate::control::{self, ControlError, ControlPlane, Endpoint, JobRef};
use crate::exec::sandbox::{Mode, Policy};
use crate::exec::StopReason;
use crate::exit::{Cause, Code, Failure};
use crate::jobs::dispatch::Nodes;
use crate::jobs::runner::{self, Runtime};
use crate::jobs::spec as jobspec;
use crate::jobs::workspace::Workspace;
use crate::os::landlock;
use crate::output::EventLog;
use crate::secrets::Providers;
use crate::shot::heartbeat::{Heartbeat, JobFlags};
use crate::state::outbox::{JobDir, JobLog, Journal, JOURNAL_FORMAT};
use crate::state::StateDir;
use crate::state::{files, history};
use crate::{clock, ids, os, signals};
use delivery::{fail, JobEnd};

/// Step kinds this build runs (sent with every claim).
pub const CAPABILITIES: &[&str] = &[
    "exec",
    "shell",
    "script",
    "scriptfile",
    "scripturl",
    "nodes",
    "rundeck",
];

/// The settings of a shot, checked and built by the face.
#[derive(Debug, Clone)]
pub struct Settings {
    pub endpoint: Endpoint,
    pub nodes: Nodes,
    /// `${globals.x}` for jobs.
    pub globals: std::collections::BTreeMap<String, String>,
    /// Where plugin steps are looked for, in order.
    pub plugins: Vec<PathBuf>,
    /// `--inventory-every`: the inventory reported at most this often.
    pub inventory: Option<inventory::Reporting>,
    /// Fetches `scripturl` steps' scripts.
    pub fetcher: crate::net::Fetcher,
    pub runner_id: String,
    pub tags: Vec<String>,
    pub state_dir: PathBuf,
    pub providers: Providers,
    pub policy: Policy,
    pub kill_grace: Duration,
    pub keep_workspace: bool,
    pub max_jobs: u32,
    /// Jobs run at once (at most `max_jobs`).
    pub parallel: u32,
    /// Jobs kept in the state dir's history.
    pub history: usize,
    /// `--echo-output`: job output copied to stderr (`true`: as JSON lines).
    pub echo_output: Option<bool>,
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

/// Run one shot; how it ended is recorded for `sortie status`, a shot that
/// failed before its jobs too (an unreachable control plane, a rejected token).
pub fn run(cfg: &Settings) -> Result<Summary> {
    let started = Instant::now();
    let result = shot(cfg, started);
    if let Err(e) = &result {
        let failed = history::Shot {
            at: clock::rfc3339(SystemTime::now() - started.elapsed()),
            duration_ms: started.elapsed().as_millis() as u64,
            exit_code: crate::exit::code_of(e).0,
            jobs: 0,
            recovered: 0,
        };
        // Only into a state dir that exists and is sortie's (never made here).
        if cfg.state_dir.join("lock").exists() {
            let _ = history::record_shot(&cfg.state_dir, &failed);
        }
    }
    result
}

fn shot(cfg: &Settings, started: Instant) -> Result<Summary> {
    let deadline = cfg.max_runtime.map(|d| started + d);
    // Jobs must be over by then, leaving the reserve for delivery.
    let work_until = deadline.map(|d| d.checked_sub(cfg.deadline_reserve).unwrap_or(started));
    let state = StateDir::open(&cfg.state_dir, cfg.lock_wait)?;
    if cfg.policy.mode == Mode::Auto && landlock::abi() == 0 && state.first_time("no-landlock") {
        tracing::warn!("{}: steps run with no_new_privs but are not kept out of the runner's files (said once per state dir; see sortie(1), SANDBOX)", landlock::missing());
    }
    let server = cfg.endpoint.target.name();
    // What a shot that died left running goes first: a job it ran is
    // reported lost below, and may be given out again.
    let left = crate::exec::ledger::stop_left(&state.groups_dir(), cfg.kill_grace);
    if left > 0 {
        tracing::warn!("stopped {left} step process group(s) that a shot which died left running");
    }
    // And the node keys it was connecting with, in its jobs' directories
    // there: no job runs yet to need any. (The directory itself stays: it
    // may be a mount, a tmpfs that keeps keys off disk.)
    let keys = &cfg.nodes.ssh.private_dir;
    // Not followed when it is a symlink.
    let real = std::fs::symlink_metadata(keys).is_ok_and(|m| m.is_dir());
    let entries = if real {
        std::fs::read_dir(keys).ok()
    } else {
        None
    };
    for left in entries.into_iter().flatten().flatten() {
        if let Err(e) = std::fs::remove_dir_all(left.path()) {
            tracing::warn!(
                "cannot remove {}, which a shot that died left: {e}",
                left.path().display()
            );
        }
    }

    // Recovery gets a client of its own, bounded by the delivery budget, and only when
    // an earlier shot left something: a clean state dir costs the shot nothing.
    let recovered = if state.pending_jobs().is_empty() {
        recovery::Outcome::default()
    } else {
        // A shot killed while a job was being started left its entry, and
        // maybe its workspace, still empty; one killed while a job ran left
        // its workspace as its steps made it.
        state.remove_empty_workspaces();
        if !cfg.keep_workspace {
            // Only those whose shot died mid-run: a job left for later by a
            // shot that ended had its workspace removed, or kept on purpose.
            let died: Vec<_> = state
                .pending_jobs()
                .into_iter()
                .filter(|d| matches!(d.completion(), Ok(None)))
                .collect();
            state.remove_workspaces_of(&died);
        }
        let budget = started + cfg.delivery_budget;
        let until = deadline.map_or(budget, |d| d.min(budget));
        recovery::run(
            &*control_plane(&cfg.endpoint, Some(until))?,
            &state,
            &server,
        )?
    };

    let cp = control_plane(&cfg.endpoint, deadline)?;
    let claims = Claims::new(cfg, work_until);
    state.check_room()?;
    let request = claims.request(cfg.parallel.min(cfg.max_jobs), cfg.wait);
    // --max-runtime no longer than --deadline-reserve (a Lambda function's
    // short timeout): a job claimed now would be stopped at once.
    let claimed = if work_until.is_some_and(|w| w <= Instant::now()) {
        tracing::warn!(
            "--max-runtime leaves no time for a job once --deadline-reserve ({}) is kept for delivery: not claiming work",
            humantime::format_duration(cfg.deadline_reserve)
        );
        Vec::new()
    } else {
        cp.claim(&request).map_err(fail)?
    };
    let mut trouble = Trouble::default();
    let claimed = valid_jobs(claimed, &mut trouble);
    prepare_sandboxes(cfg, &claimed);
    let jobs = record(&cp, &state, &server, claimed)?;
    if jobs.is_empty() && !trouble.protocol {
        tracing::debug!("no work");
    } else if let Err(e) = crate::exec::ledger::keep_in(&state.groups_dir()) {
        tracing::warn!(
            "{}: {e}; a step left running if this shot dies will not be stopped by the next",
            state.groups_dir().display()
        );
    }
    claims
        .taken
        .store(jobs.len() as u32, std::sync::atomic::Ordering::Relaxed);
    locked(&claims.ids).extend(jobs.iter().map(|(job, _)| job.id.clone()));
    let ctx = JobContext {
        settings: cfg,
        cp: &cp,
        state: &state,
        server: &server,
        work_until,
        trouble: Mutex::new(trouble),
        run_as_work: (!jobs.is_empty())
            .then(|| run_as_work(cfg, &state))
            .flatten(),
    };
    // A worker per job that can run at once; each claims the next job only
    // when it is free to start it, so no claimed job waits behind another.
    let workers = jobs.len().min(cfg.parallel as usize);
    let pool = Pool {
        queue: Mutex::new(jobs.into()),
        ended: Mutex::new(Vec::new()),
        fatal: Mutex::new(None),
    };
    // This thread is one of them: a shot of one job starts no thread for it.
    std::thread::scope(|scope| {
        for _ in 1..workers {
            scope.spawn(|| worker(&ctx, &claims, &pool));
        }
        if workers > 0 {
            worker(&ctx, &claims, &pool);
        }
    });
    let trouble = ctx.trouble.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Some(e) = pool.fatal.into_inner().unwrap_or_else(|e| e.into_inner()) {
        for (rest, dir) in locked(&pool.queue).drain(..) {
            give_back(&*cp, &rest, dir);
        }
        return Err(e);
    }
    let ended = pool.ended.into_inner().unwrap_or_else(|e| e.into_inner());
    if let (Some(reporting), false) = (&cfg.inventory, signals::interrupted()) {
        inventory::report_if_due(
            reporting,
            &cfg.endpoint,
            state.root(),
            &cfg.runner_id,
            deadline,
        );
    }
    let failed = ended
        .iter()
        .any(|(_, end)| matches!(end, JobEnd::Reported(status) if *status != JobStatus::Succeeded));
    let left = recovered.left > 0 || ended.iter().any(|(_, end)| *end == JobEnd::LeftForLater);
    let given_up = ended.iter().any(|(_, end)| *end == JobEnd::GivenUp);
    // A job stopped by the deadline was reported as designed: only a signal makes 130.
    let code = if signals::interrupted() {
        Cause::Interrupted.code()
    } else if trouble.io {
        Cause::Io.code()
    } else if left {
        Cause::LeftForLater.code()
    } else if trouble.protocol || given_up || recovered.given_up > 0 {
        Cause::Protocol.code()
    } else if failed && cfg.fail_on_job_failure {
        Code::JOB_FAILED
    } else {
        Code::OK
    };
    let shot = history::Shot {
        at: clock::rfc3339(SystemTime::now() - started.elapsed()),
        duration_ms: started.elapsed().as_millis() as u64,
        exit_code: code.0,
        jobs: ended.len(),
        recovered: recovered.delivered,
    };
    if let Err(e) = history::record_shot(state.root(), &shot) {
        tracing::debug!("cannot record the shot in the history: {e}");
    }
    Ok(Summary {
        exit_code: code,
        jobs: ended.into_iter().map(|(summary, _)| summary).collect(),
        recovered: recovered.delivered,
    })
}

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the workers of a shot share.
struct Pool {
    /// Claimed and recorded, not yet taken by a worker.
    queue: Mutex<VecDeque<(ClaimedJob, JobDir)>>,
    /// Each job taken, and how it ended.
    ended: Mutex<Vec<(JobSummary, JobEnd)>>,
    /// What ended the shot early (the first such error).
    fatal: Mutex<Option<anyhow::Error>>,
}

/// The shot's claims: how many it has made room for, and when to stop.
struct Claims<'a> {
    settings: &'a Settings,
    work_until: Option<Instant>,
    /// Jobs claimed so far (at most `max_jobs`).
    taken: AtomicU32,
    /// The queue had no more work, or the shot stopped claiming.
    drained: AtomicBool,
    /// The jobs this shot has taken: one handed out again is refused.
    ids: Mutex<std::collections::BTreeSet<String>>,
}

impl<'a> Claims<'a> {
    fn new(settings: &'a Settings, work_until: Option<Instant>) -> Claims<'a> {
        Claims {
            settings,
            work_until,
            taken: AtomicU32::new(0),
            drained: AtomicBool::new(false),
            ids: Mutex::new(Default::default()),
        }
    }

    fn request(&self, max_jobs: u32, wait: Duration) -> ClaimRequest {
        let cfg = self.settings;
        ClaimRequest {
            claim_id: ids::uuid(),
            runner: RunnerInfo {
                id: cfg.runner_id.clone(),
                tags: cfg.tags.clone(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                hostname: os::hostname().unwrap_or_default(),
                os: std::env::consts::OS.to_string(),
                arch: std::env::consts::ARCH.to_string(),
                capabilities: CAPABILITIES.iter().map(|c| c.to_string()).collect(),
            },
            max_jobs,
            wait_seconds: wait.as_secs(),
            deadline: self.work_until.map(|w| {
                clock::rfc3339(SystemTime::now() + w.saturating_duration_since(Instant::now()))
            }),
        }
    }

    /// One more job for a worker that is free, while the shot has room, time
    /// and work left (no long poll: the shot already waited for its first).
    fn next(&self, ctx: &JobContext<'_>) -> Option<(ClaimedJob, JobDir)> {
        let stop = self.drained.load(Ordering::Relaxed)
            || signals::interrupted()
            || self.work_until.is_some_and(|w| Instant::now() >= w);
        if stop {
            return None;
        }
        if self.taken.fetch_add(1, Ordering::Relaxed) >= self.settings.max_jobs {
            self.taken.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        let claimed = ctx
            .state
            .check_room()
            .map_err(|e| format!("{e:#}"))
            .and_then(|_| {
                ctx.cp
                    .claim(&self.request(1, Duration::ZERO))
                    .map_err(|e| e.to_string())
            });
        let claimed = match claimed {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!("not claiming more work: {e}");
                self.drained.store(true, Ordering::Relaxed);
                return None;
            }
        };
        let jobs: Vec<ClaimedJob> = valid_jobs(claimed, &mut locked(&ctx.trouble))
            .into_iter()
            .filter(|job| {
                let new = locked(&self.ids).insert(job.id.clone());
                if !new {
                    tracing::error!(job = %job.id, "the control plane handed out a job this shot is already running; not taking it again");
                    locked(&ctx.trouble).protocol = true;
                }
                new
            })
            .collect();
        prepare_sandboxes(self.settings, &jobs);
        match record(ctx.cp, ctx.state, ctx.server, jobs) {
            Ok(mut jobs) if !jobs.is_empty() => Some(jobs.remove(0)),
            Ok(_) => {
                self.drained.store(true, Ordering::Relaxed);
                None
            }
            Err(e) => {
                tracing::warn!("not claiming more work: {e:#}");
                self.drained.store(true, Ordering::Relaxed);
                None
            }
        }
    }
}

/// Run jobs until there are none left to take.
fn worker(ctx: &JobContext<'_>, claims: &Claims<'_>, pool: &Pool) {
    loop {
        if locked(&pool.fatal).is_some() {
            return;
        }
        let next = locked(&pool.queue).pop_front();
        let Some((mut job, dir)) = next.or_else(|| claims.next(ctx)) else {
            return;
        };
        tracing::debug!(job = %job.id, attempt = job.attempt, "claimed");
        let end = if signals::interrupted() {
            tracing::warn!(job = %job.id, "interrupted before the job started; not starting it");
            give_back(&**ctx.cp, &job, dir);
            JobEnd::Abandoned
        } else {
            match run_job(ctx, &mut job, dir) {
                Ok(end) => end,
                Err(e) => {
                    // The shot ends here: what it claimed and did not start goes back.
                    claims.drained.store(true, Ordering::Relaxed);
                    locked(&pool.fatal).get_or_insert(e);
                    return;
                }
            }
        };
        if end == JobEnd::GivenUp {
            locked(&ctx.trouble).protocol = true;
        }
        let outcome = match end {
            JobEnd::Reported(status) => status.as_str(),
            JobEnd::Abandoned => "abandoned",
            JobEnd::LeftForLater => "left_for_later",
            JobEnd::GivenUp => "given_up",
        };
        let summary = JobSummary {
            id: job.id.clone(),
            attempt: job.attempt,
            outcome: outcome.to_string(),
        };
        locked(&pool.ended).push((summary, end));
    }
}

/// What went wrong in a shot without ending it, for its exit code.
#[derive(Debug, Default)]
struct Trouble {
    /// The state dir could not take a log or a completion.
    io: bool,
    /// The control plane handed over something outside the protocol, or refused
    /// a delivery for good.
    protocol: bool,
    /// Spec fields this runner does not know, already logged.
    noted: std::collections::BTreeSet<String>,
}

/// The claimed jobs that can be worked on: a job whose id, attempt or lease is
/// outside the protocol is not touched at all (its id may not even be usable in
/// a URL or a file name); the control plane's ack window takes it back.
fn valid_jobs(claimed: Vec<ClaimedJob>, trouble: &mut Trouble) -> Vec<ClaimedJob> {
    let mut seen = std::collections::BTreeSet::new();
    claimed
        .into_iter()
        .filter(|job| {
            let problem = job
                .check()
                .err()
                .or_else(|| (!seen.insert(job.id.clone())).then(|| "its id was given twice".into()));
            if let Some(problem) = &problem {
                let id = crate::output::printable(&job.id);
                tracing::error!("the control plane handed over job {id:?} which is not valid: {problem}; not taking it");
                trouble.protocol = true;
            }
            problem.is_none()
        })
        .collect()
}

/// Start building each claimed job's sandbox, to be ready when it starts:
/// it runs beside the journal's sync and the `start` round trip.
fn prepare_sandboxes(cfg: &Settings, jobs: &[ClaimedJob]) {
    for job in jobs {
        cfg.policy.prepare(&job.id);
    }
}

/// Record every claimed job in the journal before any runs, so that a shot
/// that dies leaves none of them unaccounted for (the next shot gives back those
/// it never started). A job that cannot be recorded is given back, with the rest.
fn record(
    cp: &Arc<dyn ControlPlane>,
    state: &StateDir,
    server: &str,
    jobs: Vec<ClaimedJob>,
) -> Result<Vec<(ClaimedJob, JobDir)>> {
    let mut recorded = Vec::new();
    let mut jobs = jobs.into_iter();
    while let Some(job) = jobs.next() {
        let jref = JobRef::from(&job);
        let entry = state.job_dir(&job.id).and_then(|dir| {
            let log = cp.log_in_place(&jref).unwrap_or_else(|| dir.log_path());
            dir.record(&Journal {
                format: JOURNAL_FORMAT,
                id: job.id.clone(),
                attempt: job.attempt,
                lease_token: job.lease.token.clone(),
                server: server.to_string(),
                log,
                started_at: clock::now_rfc3339(),
            })?;
            Ok(dir)
        });
        match entry {
            Ok(dir) => recorded.push((job, dir)),
            Err(e) => {
                let _ = cp.release(&jref);
                for (job, dir) in recorded {
                    give_back(&**cp, &job, dir);
                }
                for job in jobs {
                    let _ = cp.release(&JobRef::from(&job));
                }
                return Err(e.context(format!("job {}: not started", jref.id)));
            }
        }
    }
    Ok(recorded)
}

/// A claimed job this shot will not start: back to the queue (the spool's
/// `pending/`; a control plane's ack window), and out of the journal.
fn give_back(cp: &dyn ControlPlane, job: &ClaimedJob, dir: JobDir) {
    if let Err(e) = cp.release(&JobRef::from(job)) {
        tracing::warn!(job = %job.id, "giving it back: {e}");
    }
    dir.clear();
}

/// What every job of a shot shares.
struct JobContext<'a> {
    settings: &'a Settings,
    cp: &'a Arc<dyn ControlPlane>,
    state: &'a StateDir,
    /// The control plane's name, for the journal.
    server: &'a str,
    /// Jobs are stopped (interrupted) at this instant: the deadline less the reserve.
    work_until: Option<Instant>,
    trouble: Mutex<Trouble>,
    /// Where the workspaces of steps run as another user (`--run-as`) are
    /// made: the state dir's `work/` where that user can pass, else (`None`)
    /// the system's temporary directory.
    run_as_work: Option<PathBuf>,
}

/// [`JobContext::run_as_work`], worked out once a shot; a state dir that the
/// steps' user cannot reach is said each time.
fn run_as_work(settings: &Settings, state: &StateDir) -> Option<PathBuf> {
    let Some(user) = settings.policy.user.as_ref() else {
        state.close_passage();
        return None;
    };
    let why = match state.work_dir_for(user) {
        Ok(dir) => return Some(dir),
        Err(why) => why,
    };
    tracing::warn!(
        "the workspaces of --run-as jobs cannot be in the state dir {} ({why}): they are made in \
         the system's temporary directory, where the steps of jobs running at once as {} can \
         reach each other's",
        state.root().display(),
        user.name
    );
    None
}

/// Fail a claimed job that cannot start (a malformed spec); a fenced answer is fine.
fn refuse(cp: &dyn ControlPlane, job: &JobRef, dir: JobDir, reason: &str) -> Result<JobEnd> {
    tracing::warn!(job = %job.id, "{reason}");
    let end = match cp.fail(job, reason) {
        Ok(()) => JobEnd::Reported(JobStatus::Failed),
        Err(ControlError::Fenced(_)) => JobEnd::Abandoned,
        Err(e) => return Err(fail(e)),
    };
    dir.clear();
    Ok(end)
}

fn run_job(ctx: &JobContext<'_>, job: &mut ClaimedJob, dir: JobDir) -> Result<JobEnd> {
    let (cp, settings) = (ctx.cp, ctx.settings);
    let jref = JobRef::from(&*job);
    dir.mark_preparing()?;
    // The parsed spec is all that is needed from here: the JSON tree goes (a
    // step's process starts by copying sortie's memory, so less is faster).
    let spec_json = std::mem::take(&mut job.spec);
    let parsed = if cp.hand_written() {
        jobspec::parse_strict(&spec_json)
    } else {
        // A newer control plane's optional fields: said once per shot.
        for field in sortie_protocol::schema::unknown(&spec_json) {
            if locked(&ctx.trouble).noted.insert(field.clone()) {
                tracing::info!(job = %job.id, "ignored: {field}");
            }
        }
        jobspec::parse(&spec_json)
    };
    drop(spec_json);
    let spec = match parsed {
        Ok(spec) if spec.id == job.id => spec,
        Ok(spec) => {
            let reason = format!(
                "the spec's id {:?} differs from the job's id {:?}",
                spec.id, job.id
            );
            return refuse(&**cp, &jref, dir, &reason);
        }
        Err(e) => return refuse(&**cp, &jref, dir, &format!("malformed job spec: {e:#}")),
    };
    if let (Some(timeout), Some(until)) = (spec.timeout, ctx.work_until) {
        if Instant::now() + timeout > until {
            tracing::warn!(job = %job.id, "its timeout does not fit in what is left of --max-runtime; not starting it");
            give_back(&**cp, job, dir);
            return Ok(JobEnd::Abandoned);
        }
    }
    let log_path = cp.log_in_place(&jref).unwrap_or_else(|| dir.log_path());
    // The workspace is made now, while its steps' sandbox is built on the
    // side (since the claim); what goes wrong is dealt with once it has
    // started, as if made then.
    let workspace = match &settings.policy.user {
        Some(_) => Ok(ctx.run_as_work.clone()),
        None => ctx.state.work_dir().map(Some),
    }
    .and_then(|base| Workspace::create(base.as_deref(), &job.id, settings.keep_workspace));
    // From here a later shot treats the job as possibly started.
    dir.mark_starting()?;
    let lease = match cp.start(&jref) {
        Ok(lease) => lease,
        Err(ControlError::Fenced(why)) => {
            tracing::warn!(job = %job.id, "not started: {why}");
            dir.clear();
            return Ok(JobEnd::Abandoned);
        }
        Err(e) => {
            // Whether the control plane took the start is unknown; no step ran. The
            // next shot fails the job with this reason (or finds it was taken back).
            let _ = dir.record_start_failure(&format!("{e}"));
            return Err(fail(e));
        }
    };
    if let Err(e) = dir.mark_started() {
        tracing::warn!(job = %job.id, "{e:#}");
    }
    let mut joblog = match JobLog::create(&log_path) {
        Ok(joblog) => joblog,
        Err(e) => {
            let why = format!("cannot create the job's log {}: {e}", log_path.display());
            return Ok(not_run(ctx, &jref, dir, &log_path, why));
        }
    };
    let progress = joblog.progress();
    let uploader = Uploader::spawn(cp.clone(), jref.clone(), log_path.clone(), progress.clone())
        .map_err(|e| Failure::io(anyhow::anyhow!("opening {}: {e}", log_path.display())))?;
    let flags = Arc::new(JobFlags::default());
    let heartbeat = Heartbeat::spawn(cp.clone(), jref.clone(), &lease, progress, flags.clone());
    let workspace = match workspace {
        Ok(workspace) => workspace,
        Err(e) => {
            heartbeat.stop();
            drop(joblog);
            let _ = uploader.join();
            return Ok(not_run(ctx, &jref, dir, &log_path, format!("{e:#}")));
        }
    };
    let stop = || {
        if signals::interrupted() || flags.lease_lost.load(std::sync::atomic::Ordering::Relaxed) {
            Some(StopReason::Interrupted)
        } else {
            flags.should_stop().then_some(StopReason::Cancelled)
        }
    };
    let rt = Runtime {
        workspace: workspace.path(),
        deadline: spec.timeout.map(|t| Instant::now() + t),
        interrupt_at: ctx.work_until,
        stop: &stop,
        // Under --max-runtime a stopped step's grace fits in the reserve, so the
        // shot still ends in time to deliver (half of it; the rest is for that).
        grace: match settings.max_runtime {
            Some(_) => settings.kill_grace.min(settings.deadline_reserve / 2),
            None => settings.kill_grace,
        },
        providers: &settings.providers,
        policy: &settings.policy,
        nodes: &settings.nodes,
        globals: &settings.globals,
        fetch: &|url, until| settings.fetcher.get(url, until),
        http: &http::send,
        plugins: &settings.plugins,
    };
    let run = |log: &mut EventLog<'_>| {
        log.set_multiline(job.log_multiline);
        runner::run(&spec, &rt, log)
    };
    let began = Instant::now();
    let report = match settings.echo_output {
        Some(json) => {
            let mut echo = crate::output::echo::Echo::new(&mut joblog, &job.id, json);
            run(&mut EventLog::new(&mut echo))
        }
        None => run(&mut EventLog::new(&mut joblog)),
    };
    heartbeat.stop();
    workspace.finish();
    let (length, write_error) = joblog.finish();
    if let Some(e) = write_error
        .as_ref()
        .map(|e| e.to_string())
        .or(report.log_failure.clone())
    {
        tracing::error!(job = %job.id, "the job's log could not be written: {e}");
        locked(&ctx.trouble).io = true;
    }
    if let Some(keep) = &settings.keep_logs {
        keep_copy(keep, &job.id, &log_path);
    }
    if flags.fenced.load(std::sync::atomic::Ordering::Relaxed) {
        dir.clear();
        return Ok(JobEnd::Abandoned);
    }
    let (log, uploaded) = match uploader.join() {
        Ok(done) => (done.summary, Ok(done.tail)),
        Err(e) => match upload::summarize(&log_path, length) {
            Ok(summary) => (summary, Err(e)),
            Err(read) => {
                // The job's outcome is kept all the same: a later shot sums
                // the log and delivers both.
                tracing::error!(job = %job.id, "reading {} back: {read}", log_path.display());
                locked(&ctx.trouble).io = true;
                (upload::unsummed(length), Err(e))
            }
        },
    };
    let completion = Completion {
        status: report.status,
        exit_code: report.exit_code,
        started_at: report.started_at,
        finished_at: report.finished_at,
        steps: report.steps,
        data: report.data,
        log,
        error: report.error,
    };
    let ran = Ran {
        elapsed: began.elapsed(),
        uploaded,
    };
    Ok(finish(ctx, &jref, dir, &log_path, &completion, ran))
}

/// Record a finished job's completion, then deliver it (its log first, unless the
/// upload failed: then it is left for a later shot), with the log's tail if
/// the uploader left one for it.
/// How a job's run went, beside its completion.
struct Ran {
    /// Its time, by the monotonic clock (a clock step during the job moves
    /// the completion's times, not this).
    elapsed: Duration,
    /// Its log's upload: the tail left for the completion, or why it failed.
    uploaded: Result<Option<LogTail>, ControlError>,
}

fn finish(
    ctx: &JobContext<'_>,
    jref: &JobRef,
    dir: JobDir,
    log_path: &Path,
    completion: &Completion,
    ran: Ran,
) -> JobEnd {
    // Durable the moment the job ends, whatever the network does next.
    let recorded = dir.record_completion(completion);
    if let Err(e) = &recorded {
        tracing::error!(job = %jref.id, "{e:#}; sending the completion from memory");
        locked(&ctx.trouble).io = true;
    }
    let end = if upload::summed(&completion.log) {
        delivery::after_log(&**ctx.cp, jref, dir, log_path, completion, ran.uploaded)
    } else {
        tracing::error!(job = %jref.id, "its log could not be read back; kept in {} for a later shot", dir.path().display());
        Ok(JobEnd::LeftForLater)
    };
    let end = match end {
        Ok(end) => end,
        Err(e) => {
            tracing::error!(job = %jref.id, "{e:#}");
            JobEnd::LeftForLater
        }
    };
    let entry = ended_line(jref, completion, ran.elapsed, end);
    if let Err(e) = history::record_job(ctx.state.root(), &entry, ctx.settings.history) {
        tracing::debug!(job = %jref.id, "cannot record the job in the history: {e}");
    }
    if end == JobEnd::LeftForLater && recorded.is_err() {
        tracing::error!(
            job = %jref.id,
            "its completion could be neither written nor sent and is lost: {}",
            serde_json::to_string(completion).expect("a completion serializes")
        );
    }
    end
}

/// The one line a shot prints per job it ran: how it ended, in how long, what
/// failed or was skipped, how much log it made, and whether it was delivered.
/// A failed job's line is an error, which `-q` still shows.
fn ended_line(
    jref: &JobRef,
    completion: &Completion,
    elapsed: Duration,
    end: JobEnd,
) -> history::Job {
    let mut line = format!("{}", completion.status);
    if let Some(code) = completion.exit_code.filter(|c| *c != 0) {
        line.push_str(&format!(" (exit {code})"));
    }
    line.push_str(&format!(" in {}", clock::human(elapsed)));
    let count = |status: StepStatus| {
        completion
            .steps
            .iter()
            .filter(|s| s.status == status && !s.errorhandler)
            .count()
    };
    let ran = completion
        .steps
        .iter()
        .filter(|s| s.status != StepStatus::Skipped && !s.errorhandler)
        .count();
    line.push_str(&format!(", {ran} step(s) ran"));
    let failed = ran - count(StepStatus::Succeeded);
    if failed > 0 {
        line.push_str(&format!(", {failed} failed"));
    }
    if count(StepStatus::Skipped) > 0 {
        line.push_str(&format!(", {} skipped", count(StepStatus::Skipped)));
    }
    line.push_str(&format!(", {} bytes of log", completion.log.length));
    match end {
        JobEnd::LeftForLater => line.push_str("; its result is kept for the next shot"),
        JobEnd::GivenUp => line.push_str("; the control plane refused its result for good"),
        JobEnd::Abandoned => line.push_str("; not delivered: another attempt owns the job"),
        JobEnd::Reported(_) => {}
    }
    if let Some(error) = &completion.error {
        line.push_str(&format!(": {}", crate::output::printable(error)));
    }
    if completion.status == JobStatus::Succeeded
        && matches!(end, JobEnd::Reported(_) | JobEnd::LeftForLater)
    {
        tracing::info!(job = %jref.id, attempt = jref.attempt, "{line}");
    } else {
        tracing::error!(job = %jref.id, attempt = jref.attempt, "{line}");
    }
    history::Job {
        at: completion.finished_at.clone(),
        id: jref.id.clone(),
        attempt: jref.attempt,
        status: completion.status.as_str().to_string(),
        exit_code: completion.exit_code,
        duration_ms: elapsed.as_millis() as u64,
        steps_ran: ran,
        steps_failed: failed,
        log_bytes: completion.log.length,
        delivered: end != JobEnd::LeftForLater,
        error: completion.error.clone(),
    }
}

/// A started job that could not run a step (its log or workspace could not be
/// made): completed as failed with the reason and an empty log.
fn not_run(
    ctx: &JobContext<'_>,
    jref: &JobRef,
    dir: JobDir,
    log_path: &Path,
    why: String,
) -> JobEnd {
    tracing::error!(job = %jref.id, "{why}");
    locked(&ctx.trouble).io = true;
    let _ = std::fs::File::create(log_path);
    let now = clock::now_rfc3339();
    let completion = Completion {
        status: JobStatus::Failed,
        exit_code: None,
        started_at: now.clone(),
        finished_at: now,
        steps: Vec::new(),
        data: Default::default(),
        log: upload::summarize(log_path, 0).unwrap_or_else(|_| upload::empty_summary()),
        error: Some(why),
    };
    let ran = Ran {
        elapsed: Duration::ZERO,
        uploaded: Ok(None),
    };
    finish(ctx, jref, dir, log_path, &completion, ran)
}

/// `--keep-logs`: a copy of the job's log, for CI artifacts (a failure is only a warning).
fn keep_copy(keep: &Path, id: &str, log_path: &Path) {
    let copy = keep.join(format!("{id}.ndjson"));
    let copied = std::fs::create_dir_all(keep)
        .and_then(|_| files::replace(&copy, 0o644))
        .and_then(|mut to| std::io::copy(&mut files::open_regular(log_path)?, &mut to));
    if let Err(e) = copied {
        tracing::warn!(job = %id, "cannot keep a copy of the log in {}: {e}", copy.display());
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::control::memory::{job, Memory};
    use crate::control::upload::Uploaded;
    use crate::output::{Event, Level, Sink};

    /// A job's log written as `lines` 100-byte lines (`each` is called after
    /// each one); `(the bytes, the length, what the uploader did)`.
    fn upload(
        cp: &Arc<Memory>,
        job: JobRef,
        lines: usize,
        mut each: impl FnMut(usize),
    ) -> (Vec<u8>, u64, Uploaded) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.ndjson");
        let mut log = JobLog::create(&path).unwrap();
        let uploader = Uploader::spawn(cp.clone(), job, path.clone(), log.progress()).unwrap();
        let mut all = Vec::new();
        for i in 0..lines {
            let line = format!("{{\"seq\":{i:>91}}}\n");
            let event = Event::System {
                level: Level::Info,
                text: "",
            };
            log.write_event(line.as_bytes(), &event).unwrap();
            all.extend_from_slice(line.as_bytes());
            each(i);
        }
        let (length, error) = log.finish();
        assert!(error.is_none());
        (all, length, uploader.join().unwrap())
    }

    #[test]
    fn a_short_log_is_left_whole_for_the_completion_when_the_control_plane_takes_a_tail() {
        let cp: Arc<Memory> = Arc::new(Memory::default());
        let mut job = job();
        job.log_tail_bytes = 10_000;
        let (lines, length, done) = upload(&cp, job.clone(), 100, |_| {});
        assert_eq!(length, 10_000);
        assert!(cp.state().uploads.is_empty(), "nothing uploaded");
        let tail = done.tail.expect("a tail");
        assert_eq!((tail.offset, tail.data.as_bytes()), (0, &lines[..]));
        assert_eq!(done.summary.sha256, hex::encode(Sha256::digest(&lines)));
        // One byte more than it takes: uploaded, no tail.
        let (lines, _, done) = upload(&cp, job, 101, |_| {});
        assert!(done.tail.is_none());
        assert_eq!(cp.state().log, lines);
        assert_eq!(done.summary.sha256, hex::encode(Sha256::digest(&lines)));
    }

    #[test]
    fn the_uploader_delivers_what_the_writer_writes_with_its_checksum() {
        let cp: Arc<Memory> = Arc::new(Memory::default());
        // Halfway, the control plane loses all but 100 bytes: they are sent again.
        let forget = |i| {
            if i == 10_000 {
                cp.state().forget_to = Some(100);
            }
        };
        let (lines, length, done) = upload(&cp, job(), 20_000, forget);
        assert!(done.tail.is_none(), "no tail unless offered");
        assert_eq!(length, lines.len() as u64);
        assert_eq!(done.summary.length, length);
        assert_eq!(done.summary.sha256, hex::encode(Sha256::digest(&lines)));
        assert_eq!(cp.state().log, lines);
    }
}
