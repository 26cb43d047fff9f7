//! Running a job: its steps in order, error handlers, keepgoing, result data.
//!
//! The runner turns a parsed spec into processes for the executor and their
//! output into log events, and decides the job's status (the rules are in
//! sortie(1), "JOB STATUS"). It knows nothing of where the log goes or of the
//! control plane: the shot and `exec` give it an [`EventLog`] and read its report.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sortie_protocol::{JobStatus, StepResult, StepStatus};

use crate::exec::{self, Outcome, StopReason, Supervision};
use crate::jobs::expand::{self, env_name, Context, Mode};
use crate::jobs::result_data::{self, DataSet};
use crate::jobs::spec::{JobSpec, Step, StepKind};
use crate::output::lines::LineSplitter;
use crate::output::{Event, EventLog, Level, Stream};
use crate::secrets::mask::{self, MaskStream, Masker};
use crate::secrets::secret::Secret;
use crate::secrets::{self, Delivery, Providers};

/// Longest line in one output event; longer lines are sent in pieces.
const LINE_LIMIT: usize = 64 * 1024;
/// A partial line waits this long before it is sent anyway.
const PARTIAL_FLUSH: Duration = Duration::from_secs(1);
/// The node every local step runs on.
const LOCAL: &str = "local";

/// Variables of the runner's own environment that steps inherit; nothing else is.
const INHERITED: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "TZ",
    "USER",
    "LOGNAME",
    "SHELL",
    "TMPDIR",
];

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
}

/// The variables of the runner's environment that steps inherit.
pub fn inherited_env() -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = INHERITED
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()));
    }
    env
}

struct StepRun {
    result: StepResult,
    stopped: Option<StopReason>,
}

struct JobRun<'a, 'l> {
    spec: &'a JobSpec,
    rt: &'a Runtime<'a>,
    log: &'a mut EventLog<'l>,
    ctx: Context,
    base_env: Vec<(String, String)>,
    data: DataSet,
    /// Secret variables for the steps' environment (values, or paths of secret files).
    secret_env: Vec<(String, Secret)>,
}

/// Run every step of `spec` and report how it went.
pub fn run(spec: &JobSpec, rt: &Runtime<'_>, log: &mut EventLog<'_>) -> io::Result<Report> {
    let started_at = crate::clock::now_rfc3339();
    let mut job = JobRun {
        spec,
        rt,
        ctx: context(spec, &rt.hostname),
        base_env: inherited_env(),
        log,
        data: DataSet::default(),
        secret_env: Vec::new(),
    };
    if let Err(e) = job.prepare_secrets() {
        // Before any step: the job fails, naming the reference, never a value.
        let text = format!("{e:#}");
        job.log.system(Level::Error, &text)?;
        return Ok(Report {
            status: JobStatus::Failed,
            exit_code: None,
            steps: Vec::new(),
            data: BTreeMap::new(),
            error: Some(job.log.masker().mask_str(&text).into_owned()),
            started_at,
            finished_at: crate::clock::now_rfc3339(),
        });
    }
    let mut steps = Vec::new();
    let mut status = JobStatus::Succeeded;
    let mut exit_code = Some(0);
    let mut error = None;
    for (index, step) in spec.steps.iter().enumerate() {
        let run = job.step(index, step, false)?;
        let failed = run.result.status != StepStatus::Succeeded;
        let (run_exit, run_stopped) = (run.result.exit_code, run.stopped);
        let label = step_label(index, step);
        steps.push(run.result);
        if !failed {
            continue;
        }
        if let Some(stop) = job.stop_status(run_stopped) {
            status = stop;
            exit_code = run_exit;
            error = Some(format!("{label} was stopped: the job {}", stop_words(stop)));
            break;
        }
        let mut recovered = false;
        if let Some(handler) = &step.errorhandler {
            job.ctx.result = BTreeMap::from([
                (
                    "exit_code".to_string(),
                    run_exit.map_or(String::new(), |c| c.to_string()),
                ),
                (
                    "step".to_string(),
                    step.name.clone().unwrap_or_else(|| index.to_string()),
                ),
            ]);
            let handled = job.step(index, handler, true)?;
            job.ctx.result.clear();
            let handler_ok = handled.result.status == StepStatus::Succeeded;
            let handler_stopped = handled.stopped;
            steps.push(handled.result);
            if let Some(stop) = job.stop_status(handler_stopped) {
                status = stop;
                exit_code = run_exit;
                error = Some(format!(
                    "{label}'s error handler was stopped: the job {}",
                    stop_words(stop)
                ));
                break;
            }
            recovered = handler_ok && (step.keepgoing_on_success || spec.keepgoing);
        }
        if recovered {
            job.log.system(
                Level::Info,
                &format!("{label} failed; its error handler recovered it"),
            )?;
            continue;
        }
        status = JobStatus::Failed;
        exit_code = run_exit;
        error.get_or_insert_with(|| format!("{label} failed"));
        if !spec.keepgoing {
            break;
        }
    }
    // Data and error text leave the runner in the completion: masked like the log.
    let masker = job.log.masker().clone();
    let data = job
        .data
        .into_map()
        .into_iter()
        .map(|(k, v)| (k, masker.mask_str(&v).into_owned()))
        .collect();
    Ok(Report {
        status,
        exit_code: if status == JobStatus::Succeeded {
            Some(0)
        } else {
            exit_code
        },
        steps,
        data,
        error: error.map(|e| masker.mask_str(&e).into_owned()),
        started_at,
        finished_at: crate::clock::now_rfc3339(),
    })
}

fn stop_words(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Cancelled => "was cancelled",
        JobStatus::Interrupted => "was interrupted (the runner was told to stop)",
        _ => "ran out of time",
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
    /// Resolve the job's secrets, register them with the masker (the log's and
    /// sortie's own diagnostics), write the file-delivered ones into the workspace.
    fn prepare_secrets(&mut self) -> anyhow::Result<()> {
        if self.spec.secrets.is_empty() {
            return Ok(());
        }
        let resolved = secrets::resolve(&self.spec.secrets, self.rt.providers)?;
        let masker = Arc::new(Masker::new(
            resolved.iter().map(|r| (r.key.as_str(), &r.value)),
            self.rt.providers.min_length,
        )?);
        self.log.set_masker(masker.clone());
        mask::register_for_diagnostics(masker);
        for secret in resolved {
            let value = match secret.delivery {
                Delivery::Env => secret.value,
                Delivery::File => {
                    let path = write_secret_file(self.rt.workspace, &secret.key, &secret.value)?;
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

    /// The job status a stopped step means, if the stop was the job's (not the step's own timeout).
    fn stop_status(&self, stopped: Option<StopReason>) -> Option<JobStatus> {
        let passed = |at: Option<Instant>| at.is_some_and(|t| Instant::now() >= t);
        match stopped? {
            StopReason::Cancelled => Some(JobStatus::Cancelled),
            StopReason::Interrupted => Some(JobStatus::Interrupted),
            StopReason::TimedOut if passed(self.rt.deadline) => Some(JobStatus::TimedOut),
            StopReason::TimedOut => None,
        }
    }

    fn step(&mut self, index: usize, step: &Step, errorhandler: bool) -> io::Result<StepRun> {
        self.log.emit(Event::StepStart {
            step: index,
            name: step.name.as_deref(),
            node: LOCAL,
            errorhandler,
        })?;
        let started = Instant::now();
        // Data captured so far is visible to this step as ${data.K}.
        self.ctx.data = self.data.map().clone();
        let suffix = if errorhandler { "-handler" } else { "" };
        let output_file = self.rt.workspace.join(format!(".output-{index}{suffix}"));
        let prepared = fs::write(&output_file, b"")
            .map_err(|e| format!("cannot create the result data file: {e}"))
            .and_then(|_| self.command(index, step, errorhandler, &output_file));
        let finished = match prepared {
            Err(why) => exec::Finished {
                outcome: Outcome::SpawnFailed(why),
                leaked: false,
                leftovers: 0,
            },
            Ok(cmd) => self.supervise(index, step.timeout, &cmd)?,
        };
        let label = step_label(index, step);
        if finished.leaked {
            let text =
                format!("{label}: a process it started kept its output open after it exited");
            self.log.system(Level::Warn, &text)?;
        }
        if finished.leftovers > 0 {
            let n = finished.leftovers;
            let text = format!("{label}: killed {n} process(es) it left running");
            self.log.system(Level::Warn, &text)?;
        }
        let mut outcome = finished.outcome;
        if outcome == Outcome::Exited(0) {
            if let Err(e) = fs::read(&output_file)
                .map_err(|e| e.to_string())
                .and_then(|bytes| result_data::parse_file(&bytes).map_err(|e| format!("{e:#}")))
                .and_then(|pairs| {
                    pairs
                        .into_iter()
                        .try_for_each(|(k, v)| self.data.insert(k, v))
                        .map_err(|e| format!("{e:#}"))
                })
            {
                outcome = Outcome::SpawnFailed(format!("result data: {e}"));
            }
        }
        let _ = fs::remove_file(&output_file);
        let (status, exit_code, signal) = match &outcome {
            Outcome::Exited(0) => (StepStatus::Succeeded, Some(0), None),
            Outcome::Exited(code) => (StepStatus::Failed, Some(*code), None),
            Outcome::Signaled(sig) => (StepStatus::Failed, None, Some(*sig)),
            Outcome::Stopped(StopReason::TimedOut) => (StepStatus::TimedOut, None, None),
            Outcome::Stopped(StopReason::Cancelled) => (StepStatus::Cancelled, None, None),
            Outcome::Stopped(StopReason::Interrupted) => (StepStatus::Interrupted, None, None),
            Outcome::SpawnFailed(why) => {
                self.log.system(Level::Error, &format!("{label}: {why}"))?;
                (StepStatus::Failed, None, None)
            }
        };
        if let Outcome::Stopped(StopReason::TimedOut) = outcome {
            let limit = step
                .timeout
                .map(|t| humantime::format_duration(t).to_string());
            let text = match (self.stop_status(Some(StopReason::TimedOut)), limit) {
                (None, Some(limit)) => {
                    format!("{} timed out after {limit}", label)
                }
                _ => format!("{} was stopped: the job ran out of time", label),
            };
            self.log.system(Level::Warn, &text)?;
        }
        let duration_ms = started.elapsed().as_millis() as u64;
        self.log.emit(Event::StepEnd {
            step: index,
            node: LOCAL,
            status,
            exit_code,
            signal,
            duration_ms,
        })?;
        let stopped = match outcome {
            Outcome::Stopped(reason) => Some(reason),
            _ => None,
        };
        Ok(StepRun {
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
            stopped,
        })
    }

    /// Run the prepared command, streaming its output into the log.
    fn supervise(
        &mut self,
        index: usize,
        timeout: Option<Duration>,
        cmd: &exec::Command,
    ) -> io::Result<exec::Finished> {
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
        let mut output = StepOutput {
            step: index,
            masks: [self.log.mask_stream(), self.log.mask_stream()],
            log: &mut *self.log,
            data: &mut self.data,
            splitters: [LineSplitter::new(LINE_LIMIT), LineSplitter::new(LINE_LIMIT)],
            failure: None,
        };
        let mut finished = exec::run(cmd, &supervision, &mut output);
        output.finish();
        if finished.outcome == Outcome::Stopped(StopReason::TimedOut)
            && self.rt.interrupt_at.is_some_and(|t| Instant::now() >= t)
        {
            // The shot's time, not the job's or the step's, ran out.
            finished.outcome = Outcome::Stopped(StopReason::Interrupted);
        }
        match output.failure {
            Some(e) => Err(e),
            None => Ok(finished),
        }
    }

    /// Build the process for a step: expand references, write scripts, set the environment.
    fn command(
        &self,
        index: usize,
        step: &Step,
        errorhandler: bool,
        output_file: &Path,
    ) -> Result<exec::Command, String> {
        let expand_raw =
            |s: &str| expand::expand(s, &self.ctx, Mode::Raw).map_err(|e| format!("{e:#}"));
        let expand_args = |args: &[String]| -> Result<Vec<OsString>, String> {
            args.iter()
                .map(|a| expand_raw(a).map(OsString::from))
                .collect()
        };
        let (program, args): (OsString, Vec<OsString>) = match &step.kind {
            StepKind::Exec(argv) => {
                let argv = expand_args(argv)?;
                (argv[0].clone(), argv[1..].to_vec())
            }
            StepKind::Shell(text) => {
                let text =
                    expand::expand(text, &self.ctx, Mode::Shell).map_err(|e| format!("{e:#}"))?;
                ("/bin/sh".into(), vec!["-c".into(), text.into()])
            }
            StepKind::Script {
                body,
                interpreter,
                args,
                extension,
            } => {
                let suffix = if errorhandler { "-handler" } else { "" };
                let ext = extension.as_deref().unwrap_or("");
                let dot = if ext.is_empty() || ext.starts_with('.') {
                    ""
                } else {
                    "."
                };
                let path = self
                    .rt
                    .workspace
                    .join(format!("step-{index}{suffix}{dot}{ext}"));
                write_script(&path, body).map_err(|e| format!("cannot write the script: {e}"))?;
                let has_shebang = body.starts_with("#!");
                script_command(
                    path,
                    interpreter.as_deref(),
                    has_shebang,
                    expand_args(args)?,
                )
            }
            StepKind::ScriptFile {
                path,
                interpreter,
                args,
            } => {
                let path = PathBuf::from(expand_raw(path)?);
                script_command(path, interpreter.as_deref(), true, expand_args(args)?)
            }
        };
        Ok(exec::Command {
            program,
            args,
            env: self.environment(step, output_file),
            cwd: self.rt.workspace.to_path_buf(),
        })
    }

    fn environment(&self, step: &Step, output_file: &Path) -> Vec<(String, String)> {
        let mut env: BTreeMap<String, String> = self.base_env.iter().cloned().collect();
        let spec = self.spec;
        let mut set = |k: String, v: String| {
            env.insert(k, v);
        };
        for (k, v) in &self.ctx.job {
            set(format!("SORTIE_JOB_{}", env_name(k)), v.clone());
            set(format!("RD_JOB_{}", env_name(k)), v.clone());
        }
        set("SORTIE_EXECID".into(), spec.id.clone());
        set(
            "SORTIE_WORKSPACE".into(),
            self.rt.workspace.display().to_string(),
        );
        set("SORTIE_OUTPUT".into(), output_file.display().to_string());
        set("SORTIE_NODE_NAME".into(), LOCAL.into());
        set("RD_NODE_NAME".into(), LOCAL.into());
        set("RD_NODE_HOSTNAME".into(), self.rt.hostname.clone());
        for (k, v) in &self.ctx.options {
            set(format!("SORTIE_OPTION_{}", env_name(k)), v.clone());
            set(format!("RD_OPTION_{}", env_name(k)), v.clone());
        }
        for (k, v) in self.data.map() {
            set(format!("SORTIE_DATA_{}", env_name(k)), v.clone());
            set(format!("RD_DATA_{}", env_name(k)), v.clone());
        }
        for (k, v) in &self.ctx.result {
            set(format!("SORTIE_RESULT_{}", env_name(k)), v.clone());
        }
        for (k, v) in spec.env.iter().chain(&step.env) {
            set(k.clone(), v.clone());
        }
        for (k, v) in &self.secret_env {
            set(k.clone(), v.expose().to_string());
        }
        env.into_iter().collect()
    }
}

/// Turns a step's output bytes into log events and picks up `SORTIE:DATA:` lines:
/// bytes → masking stream → line splitter → event.
struct StepOutput<'a, 'l> {
    step: usize,
    log: &'a mut EventLog<'l>,
    data: &'a mut DataSet,
    /// One per stream: stdout, stderr.
    masks: [MaskStream; 2],
    /// One per stream: stdout, stderr.
    splitters: [LineSplitter; 2],
    /// The first error writing the log; the step's output is not lost silently.
    failure: Option<io::Error>,
}

impl StepOutput<'_, '_> {
    fn line(&mut self, stream: Stream, line: &[u8]) {
        if self.failure.is_some() {
            return;
        }
        let mut result = Ok(());
        if stream == Stream::Stdout {
            if let Some((k, v)) = result_data::parse_line(line) {
                if let Err(e) = self.data.insert(k, v) {
                    result = self
                        .log
                        .system(Level::Warn, &format!("step {}: {e:#}", self.step));
                }
            }
        }
        let event = Event::Output {
            step: self.step,
            node: LOCAL,
            stream,
            bytes: line,
        };
        if let Err(e) = result.and_then(|_| self.log.emit(event)) {
            self.failure = Some(e);
        }
    }

    fn with_lines(
        &mut self,
        stream: Stream,
        f: impl FnOnce(&mut LineSplitter, &mut dyn FnMut(&[u8])),
    ) {
        let slot = stream as usize;
        let mut splitter = std::mem::replace(&mut self.splitters[slot], LineSplitter::new(0));
        f(&mut splitter, &mut |line| self.line(stream, line));
        self.splitters[slot] = splitter;
    }

    /// Masked bytes of one stream, through its masking stream and line splitter.
    fn with_masked(
        &mut self,
        stream: Stream,
        f: impl FnOnce(&mut MaskStream, &mut dyn FnMut(&[u8])),
    ) {
        let slot = stream as usize;
        let mut mask = std::mem::replace(&mut self.masks[slot], self.log.mask_stream());
        f(&mut mask, &mut |masked| {
            self.with_lines(stream, |s, emit| s.push(masked, emit))
        });
        self.masks[slot] = mask;
    }

    fn finish(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            self.with_masked(stream, |m, out| m.finish(out));
            self.with_lines(stream, |s, emit| s.finish(emit));
        }
    }
}

impl exec::Observer for StepOutput<'_, '_> {
    fn output(&mut self, stream: Stream, bytes: &[u8]) {
        self.log.restamp();
        self.with_masked(stream, |m, out| m.push(bytes, out));
    }

    fn tick(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            self.with_lines(stream, |s, emit| s.flush_stale(PARTIAL_FLUSH, emit));
        }
        if let Err(e) = self.log.tick() {
            self.failure.get_or_insert(e);
        }
    }
}

/// The program and arguments that run a script file.
fn script_command(
    path: PathBuf,
    interpreter: Option<&[String]>,
    has_shebang: bool,
    args: Vec<OsString>,
) -> (OsString, Vec<OsString>) {
    match interpreter {
        Some(words) => {
            let mut argv: Vec<OsString> = words[1..].iter().map(OsString::from).collect();
            argv.push(path.into_os_string());
            argv.extend(args);
            (OsString::from(&words[0]), argv)
        }
        // The kernel honours the #! line of an executable file.
        None if has_shebang => (path.into_os_string(), args),
        None => {
            let mut argv = vec![path.into_os_string()];
            argv.extend(args);
            ("/bin/sh".into(), argv)
        }
    }
}

/// Write a secret to `.secrets/KEY` in the workspace, mode 0600; returns its path.
fn write_secret_file(workspace: &Path, key: &str, value: &Secret) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = workspace.join(".secrets");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    let path = dir.join(key);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(value.expose().as_bytes())?;
    Ok(path)
}

/// Write an inline script, mode 0700, with CRLF line endings made LF.
fn write_script(path: &Path, body: &str) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let body = body.replace("\r\n", "\n");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .open(path)?;
    file.write_all(body.as_bytes())?;
    file.sync_all()
}
