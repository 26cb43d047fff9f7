//! Running a job: its steps in order, error handlers, keepgoing, result data.
//!
//! The runner walks the steps, has each one built (`command`), supervised
//! (`exec`) and captured (`capture`), and applies the status rules (`status`).
//! It knows nothing of where the log goes or of the control plane: the shot and
//! `exec` give it an [`EventLog`] and read its [`Report`]. A log that cannot be
//! written (a full disk) stops the job at once: it is reported failed, with the
//! reason, and the caller learns of it from [`Report::log_failure`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sortie_protocol::{JobStatus, StepResult};

use crate::exec::sandbox::Policy;
use crate::exec::{self, Confinement, StopReason, Supervision};
use crate::jobs::capture::StepOutput;
use crate::jobs::command::{self, Builder};
use crate::jobs::expand::Context;
use crate::jobs::result_data::{self, DataSet};
use crate::jobs::spec::{JobSpec, Step};
use crate::jobs::status::{self, AfterFailure, Ran};
use crate::output::{Event, EventLog, Level};
use crate::secret::Secret;
use crate::secrets::mask::{self, Masker};
use crate::secrets::own;
use crate::secrets::{self, Delivery, Providers};
use crate::state::files;

/// The node every local step runs on.
const LOCAL: &str = "local";

/// Where and how a job runs.
pub struct Runtime<'a> {
    /// The job's private working directory.
    pub workspace: &'a Path,
    pub hostname: String,
    /// The job's timeout runs out then: it is stopped and reported `timed_out`.
    pub deadline: Option<Instant>,
    /// The shot's time runs out then: the job is stopped and reported `interrupted`.
    pub interrupt_at: Option<Instant>,
    /// Polled while steps run: `Some` stops the job (cancellation, a signal).
    pub stop: &'a dyn Fn() -> Option<StopReason>,
    /// Time between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Where the job's secrets come from.
    pub providers: &'a Providers,
    /// How its steps are confined.
    pub policy: &'a Policy,
}

/// The outcome of a job, everything of `complete` but the log summary.
#[derive(Debug, Clone)]
pub struct Report {
    pub status: JobStatus,
    pub exit_code: Option<i32>,
    pub steps: Vec<StepResult>,
    pub data: BTreeMap<String, String>,
    pub error: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    /// The job's log could not be written (the job was stopped for it).
    pub log_failure: Option<String>,
}

/// One run of a step or of its handler.
struct StepRun {
    result: StepResult,
    ran: Ran,
}

struct JobRun<'a, 'l> {
    spec: &'a JobSpec,
    rt: &'a Runtime<'a>,
    log: &'a mut EventLog<'l>,
    ctx: Context,
    confinement: Confinement,
    base_env: Vec<(String, String)>,
    data: DataSet,
    /// Secret variables for the steps' environment (values, or paths of secret files).
    secret_env: Vec<(String, Secret)>,
}

/// How the job stands while its steps run.
struct Verdict {
    status: JobStatus,
    exit_code: Option<i32>,
    error: Option<String>,
}

/// Run every step of `spec` and report how it went.
pub fn run(spec: &JobSpec, rt: &Runtime<'_>, log: &mut EventLog<'_>) -> Report {
    let started_at = crate::clock::now_rfc3339();
    // The spec's JSON is gone by now: its memory goes back before steps are forked.
    crate::os::release_free_memory();
    let mut job = JobRun {
        spec,
        rt,
        ctx: context(spec, &rt.hostname),
        confinement: Confinement::default(),
        base_env: Vec::new(),
        log,
        data: DataSet::default(),
        secret_env: Vec::new(),
    };
    let mut steps = Vec::new();
    let mut verdict = Verdict {
        status: JobStatus::Succeeded,
        exit_code: Some(0),
        error: None,
    };
    match job.prepare().and_then(|_| job.prepare_secrets()) {
        Ok(()) => job.steps(&mut steps, &mut verdict),
        Err(e) => {
            // Before any step: the job fails, naming the reference, never a value.
            let text = format!("{e:#}");
            job.log.system(Level::Error, &text);
            verdict = Verdict {
                status: JobStatus::Failed,
                exit_code: None,
                error: Some(text),
            };
        }
    }
    let log_failure = job.log.failed().map(|e| e.to_string());
    if let Some(why) = &log_failure {
        verdict.status = JobStatus::Failed;
        verdict.error = Some(format!("the job's log could not be written: {why}"));
    }
    // Data and error text leave the runner in the completion: masked like the log.
    let masker = job.log.masker().clone();
    let data = job
        .data
        .into_map()
        .into_iter()
        .map(|(k, v)| (k, masker.mask_str(&v).into_owned()))
        .collect();
    Report {
        exit_code: if verdict.status == JobStatus::Succeeded {
            Some(0)
        } else {
            verdict.exit_code
        },
        status: verdict.status,
        steps,
        data,
        error: verdict.error.map(|e| masker.mask_str(&e).into_owned()),
        started_at,
        finished_at: crate::clock::now_rfc3339(),
        log_failure,
    }
}

fn step_label(index: usize, step: &Step) -> String {
    match &step.name {
        Some(name) => format!("step {index} ({name})"),
        None => format!("step {index}"),
    }
}

fn context(spec: &JobSpec, hostname: &str) -> Context {
    let mut job = BTreeMap::new();
    job.insert("execid".to_string(), spec.id.clone());
    job.insert(
        "id".to_string(),
        spec.job.id.clone().unwrap_or_else(|| spec.id.clone()),
    );
    for (k, v) in [
        ("name", &spec.name),
        ("group", &spec.job.group),
        ("project", &spec.job.project),
    ] {
        job.insert(k.to_string(), v.clone().unwrap_or_default());
    }
    Context {
        options: spec.options.clone(),
        job,
        node: BTreeMap::from([
            ("name".to_string(), LOCAL.to_string()),
            ("hostname".to_string(), hostname.to_string()),
        ]),
        ..Context::default()
    }
}

impl JobRun<'_, '_> {
    /// The job's confinement and the places its steps may use: its workspace
    /// (given to `--run-as`'s user) and a `tmp` directory in it.
    fn prepare(&mut self) -> anyhow::Result<()> {
        let workspace = self.rt.workspace;
        self.confinement = self
            .rt
            .policy
            .confinement(&[workspace.to_path_buf()])
            .map_err(|e| anyhow::anyhow!("cannot confine the job's steps: {e}"))?;
        if let Some(sandbox) = &self.confinement.sandbox {
            tracing::debug!(
                abi = sandbox.abi,
                rules = sandbox.rules,
                "steps confined with Landlock"
            );
        }
        let tmp = workspace.join("tmp");
        files::ensure_dir(&tmp, files::PRIVATE_DIR)
            .and_then(|_| command::give(workspace, &self.confinement))
            .and_then(|_| command::give(&tmp, &self.confinement))
            .map_err(|e| anyhow::anyhow!("preparing the workspace {}: {e}", workspace.display()))?;
        self.base_env = command::base_env(workspace, &self.confinement);
        Ok(())
    }

    /// Resolve the job's secrets, register them with the masker (the log's and
    /// sortie's own diagnostics), write the file-delivered ones into the workspace.
    fn prepare_secrets(&mut self) -> anyhow::Result<()> {
        if self.spec.secrets.is_empty() {
            return Ok(());
        }
        let resolved = secrets::resolve(&self.spec.secrets, self.rt.providers)?;
        // The runner's own credentials too (a Bao login may just have added one).
        let min = self.rt.providers.min_length;
        let own = own::values();
        let masker = Arc::new(Masker::new(
            resolved.iter().map(|r| (r.key.as_str(), &r.value)).chain(
                own.iter()
                    .filter(|v| v.expose().len() >= min)
                    .map(|v| ("sortie", v)),
            ),
            min,
        )?);
        self.log.set_masker(masker.clone());
        mask::register_for_diagnostics(masker);
        for secret in resolved {
            let value = match secret.delivery {
                Delivery::Env => secret.value,
                Delivery::File => {
                    let path =
                        command::write_secret_file(self.rt.workspace, &secret.key, &secret.value)?;
                    command::give(&path, &self.confinement)?;
                    command::give(&self.rt.workspace.join(".secrets"), &self.confinement)?;
                    Secret::new(path.display().to_string())
                }
            };
            self.ctx
                .secrets
                .insert(secret.key.clone(), secret.key.clone());
            self.secret_env.push((secret.key, value));
        }
        Ok(())
    }

    fn job_deadline_passed(&self) -> bool {
        self.rt.deadline.is_some_and(|t| Instant::now() >= t)
    }

    /// The steps in order, with their handlers, until the rules say stop.
    fn steps(&mut self, steps: &mut Vec<StepResult>, verdict: &mut Verdict) {
        let spec = self.spec;
        for (index, step) in spec.steps.iter().enumerate() {
            let run = self.step(index, step, false);
            let label = step_label(index, step);
            let exit_code = run.result.exit_code;
            steps.push(run.result);
            if run.ran.succeeded() {
                continue;
            }
            if let Some(stop) = run.ran.stops_job(self.job_deadline_passed()) {
                *verdict = Verdict {
                    status: stop,
                    exit_code,
                    error: Some(format!(
                        "{label} was stopped: the job {}",
                        status::stop_words(stop)
                    )),
                };
                return;
            }
            let mut handler_ok = None;
            if let Some(handler) = &step.errorhandler {
                self.ctx.result = BTreeMap::from([
                    (
                        "exit_code".to_string(),
                        exit_code.map_or(String::new(), |c| c.to_string()),
                    ),
                    (
                        "step".to_string(),
                        step.name.clone().unwrap_or_else(|| index.to_string()),
                    ),
                ]);
                let handled = self.step(index, handler, true);
                self.ctx.result.clear();
                steps.push(handled.result);
                if let Some(stop) = handled.ran.stops_job(self.job_deadline_passed()) {
                    *verdict = Verdict {
                        status: stop,
                        exit_code,
                        error: Some(format!(
                            "{label}'s error handler was stopped: the job {}",
                            status::stop_words(stop)
                        )),
                    };
                    return;
                }
                handler_ok = Some(handled.ran.succeeded());
            }
            match status::after_failure(handler_ok, spec.keepgoing, step.keepgoing_on_success) {
                AfterFailure::Recovered => {
                    let text = format!("{label} failed; its error handler recovered it");
                    self.log.system(Level::Info, &text);
                }
                AfterFailure::Fails { go_on } => {
                    verdict.status = JobStatus::Failed;
                    verdict.exit_code = exit_code;
                    verdict
                        .error
                        .get_or_insert_with(|| format!("{label} failed"));
                    if !go_on {
                        return;
                    }
                }
            }
        }
    }

    fn step(&mut self, index: usize, step: &Step, errorhandler: bool) -> StepRun {
        self.log.emit(Event::StepStart {
            step: index,
            name: step.name.as_deref(),
            node: LOCAL,
            errorhandler,
        });
        let started = Instant::now();
        // Data captured so far is visible to this step as ${data.K}.
        self.ctx.data = self.data.map().clone();
        let suffix = if errorhandler { "-handler" } else { "" };
        let output_file = self.rt.workspace.join(format!(".output-{index}{suffix}"));
        let builder = Builder {
            spec: self.spec,
            ctx: &self.ctx,
            base_env: &self.base_env,
            secret_env: &self.secret_env,
            workspace: self.rt.workspace,
            confinement: &self.confinement,
        };
        let prepared = command::fresh_output_file(&output_file)
            .and_then(|_| command::give(&output_file, &self.confinement))
            .map_err(|e| format!("cannot create the result data file: {e}"))
            .and_then(|_| builder.command(index, step, errorhandler, &output_file));
        let label = step_label(index, step);
        let mut ran = match prepared {
            Err(why) => Ran::NotStarted(why),
            Ok(cmd) => self.supervise(index, step.timeout, &cmd, &label),
        };
        if ran.succeeded() {
            if let Err(why) = self.take_data_file(&output_file) {
                ran = Ran::BadData(why);
            }
        }
        command::remove(&output_file);
        match &ran {
            Ran::NotStarted(why) => self.log.system(Level::Error, &format!("{label}: {why}")),
            Ran::BadData(why) => {
                let text = format!("{label}: its result data is invalid: {why}");
                self.log.system(Level::Error, &text)
            }
            Ran::Stopped(StopReason::TimedOut) => {
                let text = match (self.job_deadline_passed(), step.timeout) {
                    (false, Some(limit)) => format!(
                        "{label} timed out after {}",
                        humantime::format_duration(limit)
                    ),
                    _ => format!("{label} was stopped: the job ran out of time"),
                };
                self.log.system(Level::Warn, &text);
            }
            _ => {}
        }
        let (status, exit_code, signal) = ran.step_status();
        let duration_ms = started.elapsed().as_millis() as u64;
        self.log.emit(Event::StepEnd {
            step: index,
            node: LOCAL,
            status,
            exit_code,
            signal,
            duration_ms,
        });
        StepRun {
            result: StepResult {
                index,
                name: step.name.clone(),
                node: LOCAL.to_string(),
                status,
                exit_code,
                signal,
                duration_ms,
                errorhandler,
            },
            ran,
        }
    }

    /// Read `$SORTIE_OUTPUT` into the job's data (a regular file, bounded; a step
    /// that made it a symlink gets nothing read through it).
    fn take_data_file(&mut self, path: &Path) -> Result<(), String> {
        let limit = result_data::MAX_TOTAL as u64 * 2;
        let bytes = files::read_regular(path, limit).map_err(|e| e.to_string())?;
        let pairs = result_data::parse_file(&bytes).map_err(|e| format!("{e:#}"))?;
        pairs
            .into_iter()
            .try_for_each(|(k, v)| self.data.insert(k, v))
            .map_err(|e| format!("{e:#}"))
    }

    /// Run the prepared command, streaming its output into the log.
    fn supervise(
        &mut self,
        index: usize,
        timeout: Option<Duration>,
        cmd: &exec::Command,
        label: &str,
    ) -> Ran {
        let step_until = timeout.map(|t| Instant::now() + t);
        let until = [self.rt.deadline, self.rt.interrupt_at, step_until]
            .into_iter()
            .flatten()
            .min();
        let supervision = Supervision {
            until,
            stop: self.rt.stop,
            grace: self.rt.grace,
        };
        let mut output = StepOutput::new(index, LOCAL, self.log, &mut self.data);
        let finished = exec::run(cmd, &supervision, &mut output);
        output.finish();
        if finished.leaked {
            let text =
                format!("{label}: a process it started kept its output open after it exited");
            self.log.system(Level::Warn, &text);
        }
        if finished.leftovers > 0 {
            let n = finished.leftovers;
            let text = format!("{label}: killed {n} process(es) it left running");
            self.log.system(Level::Warn, &text);
        }
        let ran = Ran::from(finished.outcome);
        if ran == Ran::Stopped(StopReason::TimedOut)
            && self.rt.interrupt_at.is_some_and(|t| Instant::now() >= t)
        {
            // The shot's time, not the job's or the step's, ran out.
            return Ran::Stopped(StopReason::Interrupted);
        }
        ran
    }
}
