//! Running a job: its steps on its nodes, error handlers, keepgoing, result data.
//!
//! The runner selects the job's nodes (`dispatch`), walks the steps by the
//! job's strategy — node-first, step-first, or parallel over `threadcount`
//! nodes — has each step built (`command`), run locally or through the node's
//! SSH connection (`nodes::ssh`), supervised (`exec`) and captured (`capture`),
//! and applies the status rules (`status`) per node. A node's connection opens
//! while the nodes before it run: over many nodes, the job waits for one
//! handshake per thread, not one per node. Workflow steps
//! (`node_step: false`) run once, on the runner, between the node steps around
//! them. It knows nothing of where the log goes or of the control plane: the
//! shot and `exec` give it an [`EventLog`] and read its [`Report`]. A log that
//! cannot be written (a full disk) stops the job at once: it is reported
//! failed, with the reason, and the caller learns of it from
//! [`Report::log_failure`].

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sortie_protocol::{JobStatus, StepResult, StepStatus};

use crate::exec::sandbox::Policy;
use crate::exec::{self, Confinement, StopReason, Supervision};
use crate::jobs::ansible_step;
use crate::jobs::capture::{KeyValue, LogBudget, StepOutput};
use crate::jobs::command::{self, Builder};
use crate::jobs::dispatch::{self, Data, Nodes};
use crate::jobs::expand::{self, Context, Mode};
use crate::jobs::options;
use crate::jobs::result_data::{self, DataSet};
use crate::jobs::spec::{plain_options, JobSpec, Step, StepKind, Strategy};
use crate::jobs::status::{self, AfterFailure, Ran};
use crate::nodes::ssh::{self, Address, Connection, Credentials};
use crate::nodes::Node;
use crate::output::{Event, EventLog, Level, SharedLog};
use crate::secret::Secret;
use crate::secrets::mask::{self, Masker};
use crate::secrets::own;
use crate::secrets::{self, Delivery, Providers, Reference, Wanted};
use crate::state::files;

/// The largest CA file an HTTP step may name.
const MAX_CA_FILE: usize = 1 << 20;

/// Where and how a job runs.
pub struct Runtime<'a> {
    /// The job's private working directory.
    pub workspace: &'a Path,
    /// The job's timeout runs out then: it is stopped and reported `timed_out`.
    pub deadline: Option<Instant>,
    /// The shot's time runs out then: the job is stopped and reported `interrupted`.
    pub interrupt_at: Option<Instant>,
    /// Polled while steps run: `Some` stops the job (cancellation, a signal).
    pub stop: &'a (dyn Fn() -> Option<StopReason> + Sync),
    /// Time between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Where the job's secrets come from.
    pub providers: &'a Providers,
    /// How its steps are confined.
    pub policy: &'a Policy,
    /// The nodes the runner knows and how it reaches them.
    pub nodes: &'a Nodes,
    /// `${globals.x}`: the runner's globals (`--globals`).
    pub globals: &'a BTreeMap<String, String>,
    /// Fetches a `scripturl` step's script, before the instant given.
    pub fetch: &'a command::Fetch<'a>,
    /// Sends an HTTP step's requests.
    pub http: &'a crate::jobs::http_step::Send<'a>,
    /// Where plugin steps' executables are looked for, in order.
    pub plugins: &'a [PathBuf],
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
    /// An ansible step's result on each node its play ran on.
    per_node: Vec<StepResult>,
    ran: Ran,
}

/// How the job (or one node's part of it) stands.
#[derive(Debug, Clone)]
struct Verdict {
    status: JobStatus,
    exit_code: Option<i32>,
    error: Option<String>,
}

impl Verdict {
    fn ok() -> Verdict {
        Verdict {
            status: JobStatus::Succeeded,
            exit_code: Some(0),
            error: None,
        }
    }

    fn failed(&self) -> bool {
        self.status != JobStatus::Succeeded
    }

    /// A stop for the job's sake (cancelled, interrupted, out of time).
    fn stopped(&self) -> bool {
        matches!(
            self.status,
            JobStatus::Cancelled | JobStatus::Interrupted | JobStatus::TimedOut
        )
    }
}

/// How a node is reached for one job.
enum Link {
    Local,
    Remote(Box<Connection>),
    /// The node cannot be reached: why (every step on it fails with this).
    Broken(String),
}

/// A node, and how many processes its server killed as it ended (left
/// running by the job's steps outside their process groups).
type Swept = (String, usize);

impl Link {
    /// Close it: a remote node's [`Swept`].
    fn close(self) -> Option<Swept> {
        match self {
            Link::Remote(connection) => {
                let node = connection.node().to_string();
                Some((node, connection.close()))
            }
            _ => None,
        }
    }
}

/// What opening a node's connection takes, owned: it may open on a thread of
/// its own.
struct Opening {
    settings: ssh::Settings,
    node: String,
    address: Address,
    /// The node's key, and the private directory it is written to.
    key: Option<(PathBuf, Secret)>,
    known_hosts: Option<PathBuf>,
}

impl Opening {
    /// The connection, or why the node cannot be reached. The key is on disk
    /// only while ssh reads it: a runner killed mid-job leaves the keys of the
    /// nodes being connected to (at most one for each of the job's threads),
    /// which the next shot (or `sortie exec`) removes, and none of the others.
    fn open(self, unwanted: &dyn Fn() -> bool) -> Link {
        let key = self.key.as_ref().map(|(dir, key)| {
            write_key(dir, &self.node, key)
                .map_err(|e| format!("writing the key of node {}: {e:#}", self.node))
        });
        let key = match key.transpose() {
            Ok(key) => key,
            Err(e) => return Link::Broken(e),
        };
        let credentials = Credentials {
            key: key.as_deref(),
            known_hosts: self.known_hosts.as_deref(),
        };
        let opened = Connection::open(
            &self.settings,
            &self.node,
            &self.address,
            &credentials,
            unwanted,
        );
        if let Some(key) = &key {
            let _ = std::fs::remove_file(key);
        }
        match opened {
            Ok(connection) => Link::Remote(Box::new(connection)),
            Err(e) => Link::Broken(e),
        }
    }
}

/// A connection that waited unused (opened ahead, or kept between a node's
/// steps), if it still stands; one that the node or the network closed
/// meanwhile is ended.
fn standing(connection: Connection) -> Option<Link> {
    if connection.stands() {
        Some(Link::Remote(Box::new(connection)))
    } else {
        connection.abandon();
        None
    }
}

/// The job's open links, by node name (a node is used by one thread at a time),
/// and the links being closed.
#[derive(Default)]
struct Links {
    open: Mutex<BTreeMap<String, Link>>,
    /// Connections opened ahead of their node's turn, by node (the handshake
    /// of a node that comes next runs while the nodes before it run their
    /// steps), each with whether it took the whole connect timeout.
    ahead: Mutex<BTreeMap<String, std::thread::JoinHandle<(Link, bool)>>>,
    /// Set as the job ends: a connection still opening ahead is given up.
    unwanted: Arc<AtomicBool>,
    /// A node done with closes on a thread of its own (its server cleans up, its
    /// connection ends) while the job goes on; the job ends once they are closed.
    closing: Mutex<Vec<std::thread::JoinHandle<Option<Swept>>>>,
}

impl Links {
    fn take(&self, node: &str) -> Option<Link> {
        locked(&self.open).remove(node)
    }

    fn put(&self, node: &str, link: Link) {
        locked(&self.open).insert(node.to_string(), link);
    }

    /// The node's connection opened ahead, once it is open, if it still
    /// stands. One that failed quickly (a node still down then), or that the
    /// node closed while it waited, is not the node's answer at its turn: the
    /// caller connects again. One that failed after the whole connect
    /// timeout is: the node had its time.
    fn opened_ahead(&self, node: &str) -> Option<Link> {
        let opening = locked(&self.ahead).remove(node)?;
        match opening.join() {
            Ok((Link::Remote(connection), _)) => standing(*connection),
            Ok((link @ Link::Broken(_), true)) => Some(link),
            _ => None,
        }
    }

    /// Close a node's link without waiting for it.
    fn retire(&self, link: Link) {
        if let Link::Remote(_) = link {
            let closer = std::thread::spawn(move || link.close());
            locked(&self.closing).push(closer);
        }
    }

    /// Close every link; the nodes whose servers killed processes as they
    /// ended, and how many.
    fn close_all(self) -> Vec<Swept> {
        // Those opened ahead for nodes that did not run (the job stopped
        // first) are given up, or ended at once: nothing ran through them.
        self.unwanted.store(true, Ordering::Relaxed);
        let unused = self.ahead.into_inner().unwrap_or_else(|e| e.into_inner());
        for opening in unused.into_values() {
            if let Ok((Link::Remote(connection), _)) = opening.join() {
                connection.abandon();
            }
        }
        let mut swept: Vec<Swept> = self
            .open
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .into_values()
            .filter_map(Link::close)
            .collect();
        for closer in self.closing.into_inner().unwrap_or_else(|e| e.into_inner()) {
            swept.extend(closer.join().ok().flatten());
        }
        swept.retain(|(_, n)| *n > 0);
        swept.sort();
        swept
    }
}

/// A run of consecutive node steps, and the nodes that take part.
struct Segment<'s, 'n> {
    steps: &'s [(usize, &'s Step)],
    nodes: &'n [&'n Node],
    links: &'n Links,
    /// No node step comes after these: each node's connection closes after them.
    last: bool,
    /// The dispatch's keepgoing: other nodes go on after one failed.
    keepgoing: bool,
}

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// What every step of the job shares, read-only while steps run.
struct Job<'a, 'l, 's> {
    spec: &'a JobSpec,
    rt: &'a Runtime<'a>,
    log: &'a SharedLog<'l, 's>,
    template: Context,
    confinement: Confinement,
    base_env: Vec<(String, String)>,
    /// Secret variables for local steps (values, or paths of secret files).
    secret_env: Vec<(String, Secret)>,
    /// The secrets' values, for nodes.
    secret_values: Vec<(String, Secret)>,
    /// Where the job's node keys and host keys are: out of
    /// the steps' reach, removed with the job.
    private: Option<PathBuf>,
    /// The nodes the job selected (an ansible step's inventory).
    selected: Vec<Node>,
    /// Each remote node's key, written to a file of the private directory
    /// only while its connection opens.
    keys: BTreeMap<String, Secret>,
    /// Each remote node's known_hosts file (from its `ssh-host-key`).
    host_keys: BTreeMap<String, PathBuf>,
    /// Nodes whose credentials could not be had, and why.
    broken: BTreeMap<String, String>,
    /// The job's log limit, counted.
    budget: Option<LogBudget>,
    /// The steps (from 1) whose own values the job refers to (`${N:ns.key}`),
    /// and whether it refers to a step's `exec.exitCode`: kept as it runs.
    context: (std::collections::BTreeSet<usize>, bool),
}

/// Run every step of `spec` and report how it went.
pub fn run(spec: &JobSpec, rt: &Runtime<'_>, log: &mut EventLog<'_>) -> Report {
    let started_at = crate::clock::now_rfc3339();
    // The spec's JSON is gone by now: its memory goes back before steps are forked.
    crate::os::release_free_memory();
    let log = SharedLog::new(log);
    for note in &spec.notes {
        log.system(Level::Info, &format!("not carried over: {note}"));
    }
    let retries = spec.retry.as_ref().map_or(0, |r| r.count);
    let mut attempt = 0;
    let (steps, data, mut verdict) = loop {
        let (steps, data, verdict) = attempt_once(spec, rt, &log, attempt);
        let stopped = verdict.stopped() || log.failed();
        if !verdict.failed() || stopped || attempt >= retries {
            break (steps, data, verdict);
        }
        attempt += 1;
        let delay = spec.retry.as_ref().and_then(|r| r.delay);
        let text = match delay {
            Some(d) => format!(
                "the job failed; retry {attempt} of {retries} in {}",
                humantime::format_duration(d)
            ),
            None => format!("the job failed; retry {attempt} of {retries}"),
        };
        log.system(Level::Warn, &text);
        if let Some(reason) = delay.and_then(|d| wait(d, rt)) {
            let status = stopped_as(reason);
            let error = format!(
                "stopped before its retry: the job {}",
                status::stop_words(status, spec.timeout)
            );
            break (
                steps,
                data,
                Verdict {
                    status,
                    exit_code: None,
                    error: Some(error),
                },
            );
        }
    };
    let log = log.lock();
    let log_failure = log.failed().map(|e| e.to_string());
    if let Some(why) = &log_failure {
        verdict.status = JobStatus::Failed;
        verdict.error = Some(format!("the job's log could not be written: {why}"));
    }
    // Data, step names and error text leave the runner in the completion:
    // masked like the log.
    let masker = log.masker().clone();
    let mut steps = steps;
    for step in &mut steps {
        if let Some(name) = &step.name {
            step.name = Some(masker.mask_str(name).into_owned());
        }
    }
    let data = data
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

/// One run of the job's steps (`attempt` counts retries from 0).
fn attempt_once(
    spec: &JobSpec,
    rt: &Runtime<'_>,
    log: &SharedLog<'_, '_>,
    attempt: u32,
) -> (Vec<StepResult>, Data, Verdict) {
    let mut steps = Vec::new();
    let mut data = Data {
        local_only: spec.nodes.is_none().then(|| rt.nodes.local.name.clone()),
        ..Data::default()
    };
    let mut verdict = Verdict::ok();
    let selected = match &spec.nodes {
        None => Ok(vec![rt.nodes.local.clone()]),
        Some(dispatch) => dispatch::select(
            dispatch,
            &plain_options(&spec.options, &spec.option_defs),
            rt.nodes,
        ),
    };
    let prepared = selected
        .map_err(anyhow::Error::msg)
        .and_then(|nodes| Job::prepare(spec, rt, log, &nodes, attempt).map(|job| (job, nodes)));
    match prepared {
        Ok((job, nodes)) => {
            job.run(&nodes, &mut steps, &mut data, &mut verdict);
            skipped(spec, &nodes, &rt.nodes.local.name, &mut steps, log);
            if let Some(budget) = job
                .budget
                .as_ref()
                .filter(|b| b.reached.load(Ordering::Relaxed) && !b.limit().truncate)
            {
                verdict.status = match budget.limit().status.as_str() {
                    "aborted" => JobStatus::Cancelled,
                    _ => JobStatus::Failed,
                };
                verdict.error = Some("the job's log limit was reached".into());
            }
        }
        Err(e) => {
            // Before any step: the job fails, naming the reference, never a
            // value; or it was stopped meanwhile (a signal while its sandbox
            // was built), and is reported so.
            let text = format!("{e:#}");
            log.system(Level::Error, &text);
            let status = stop_now(rt).map_or(JobStatus::Failed, stopped_as);
            verdict = Verdict {
                status,
                exit_code: None,
                error: Some(text),
            };
        }
    }
    (steps, data, verdict)
}

/// How a job stopped for `reason` ends.
fn stopped_as(reason: StopReason) -> JobStatus {
    match reason {
        StopReason::Cancelled => JobStatus::Cancelled,
        StopReason::TimedOut => JobStatus::TimedOut,
        _ => JobStatus::Interrupted,
    }
}

/// The context steps are checked in before any runs: result data not yet
/// captured (and options not given, for `exec --check`) read as `0`, and an
/// error handler's `result.*` is there.
fn check_context(template: &Context, node: &Node, local: &str) -> Context {
    let mut ctx = template.clone();
    ctx.node = node_context(node, local);
    ctx.data_unknown = true;
    ctx.result = BTreeMap::from([
        ("exit_code".to_string(), "1".to_string()),
        ("step".to_string(), "0".to_string()),
    ]);
    ctx
}

/// What each step and error handler would refuse, one line each.
fn refusals(spec: &JobSpec, builder: &Builder<'_>, node: &str) -> Result<(), Vec<String>> {
    let mut refusals = Vec::new();
    for (index, step) in spec.steps.iter().enumerate() {
        let label = step_label(index, step, node, 1);
        if let Err(why) = builder.check(step) {
            refusals.push(format!("{label}: {why}"));
        }
        if let Some(Err(why)) = step.errorhandler.as_deref().map(|h| builder.check(h)) {
            refusals.push(format!("the error handler of {label}: {why}"));
        }
    }
    if refusals.is_empty() {
        Ok(())
    } else {
        Err(refusals)
    }
}

/// `sortie exec --check`: what running the job would refuse before its first
/// step, found without running, resolving secrets or touching a node. Options
/// the job is not given read as `0`; secure ones are treated as secrets.
pub fn check(
    spec: &JobSpec,
    globals: &BTreeMap<String, String>,
    local: &Node,
) -> Result<(), Vec<String>> {
    let mut template = context(spec, globals);
    template.options_unknown = true;
    // The job's secrets are known by name (their values are not read to check).
    for key in spec.secrets.keys() {
        template.secrets.insert(key.clone(), key.clone());
    }
    template.secure.extend(
        spec.option_defs
            .iter()
            .filter(|d| d.secure)
            .map(|d| d.name.clone()),
    );
    let ctx = check_context(&template, local, &local.name);
    let confinement = crate::exec::Confinement::default();
    let builder = Builder {
        spec,
        ctx: &ctx,
        base_env: &[],
        secret_env: &[],
        secret_values: &[],
        workspace: Path::new("/nonexistent"),
        confinement: &confinement,
        fetch: &|url, _| Err(format!("{url}: not fetched by a check")),
        until: None,
        plugins: &[],
        stop: &|| None,
    };
    refusals(spec, &builder, &local.name)
}

/// The steps that did not run on a node they were for: listed in the log, and
/// in the result as `skipped`, so that a failed job shows what it left undone.
fn skipped(
    spec: &JobSpec,
    nodes: &[Node],
    local: &str,
    steps: &mut Vec<StepResult>,
    log: &SharedLog<'_, '_>,
) {
    let mut names = Vec::new();
    for (index, step) in spec.steps.iter().enumerate() {
        let targets: Vec<&str> = if step.node_step && spec.nodes.is_some() {
            nodes.iter().map(|n| n.name.as_str()).collect()
        } else {
            vec![local]
        };
        let mut missed = false;
        for node in targets {
            if steps.iter().any(|r| r.index == index && r.node == node) {
                continue;
            }
            missed = true;
            steps.push(StepResult {
                index,
                name: step.name.clone(),
                node: node.to_string(),
                status: StepStatus::Skipped,
                exit_code: None,
                signal: None,
                duration_ms: 0,
                errorhandler: false,
                recap: None,
            });
        }
        if missed {
            names.push(match &step.name {
                Some(name) => format!("{index} ({name})"),
                None => index.to_string(),
            });
        }
    }
    if !names.is_empty() {
        log.system(
            Level::Info,
            &format!("skipped: step {}", names.join(", step ")),
        );
    }
}

/// Wait `delay`, unless the job is stopped first (then: why).
fn wait(delay: Duration, rt: &Runtime<'_>) -> Option<StopReason> {
    let until = Instant::now() + delay;
    loop {
        if let Some(reason) = stop_now(rt) {
            return Some(reason);
        }
        let now = Instant::now();
        if now >= until {
            return None;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(100)));
    }
}

/// Why the job must stop now, if it must: asked to, or out of time.
fn stop_now(rt: &Runtime<'_>) -> Option<StopReason> {
    let now = Instant::now();
    (rt.stop)().or_else(|| {
        if rt.deadline.is_some_and(|d| now >= d) {
            Some(StopReason::TimedOut)
        } else if rt.interrupt_at.is_some_and(|d| now >= d) {
            Some(StopReason::Interrupted)
        } else {
            None
        }
    })
}

fn step_label(index: usize, step: &Step, node: &str, nodes: usize) -> String {
    let base = match &step.name {
        Some(name) => format!("step {index} ({name})"),
        None => format!("step {index}"),
    };
    if nodes > 1 || node != "local" {
        format!("{base} on {node}")
    } else {
        base
    }
}

fn context(spec: &JobSpec, globals: &BTreeMap<String, String>) -> Context {
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
    // A Rundeck job's name is shown as `group/name`; `${job.name}` is the name.
    if let (Some(group), Some(name)) = (&spec.job.group, &spec.name) {
        if let Some(short) = name.strip_prefix(&format!("{group}/")) {
            job.insert("name".into(), short.to_string());
        }
    }
    // Who started it: on a runner, the user sortie runs as.
    let user = crate::os::user_name().unwrap_or_default();
    job.insert("username".into(), user.clone());
    job.insert("user.name".into(), user);
    if let Some(d) = &spec.nodes {
        job.insert("filter".into(), d.filter.clone());
        job.insert("threadcount".into(), d.threadcount.clone());
        job.insert(
            "successOnEmptyNodeFilter".into(),
            d.success_on_empty.to_string(),
        );
    }
    job.insert("loglevel".into(), "INFO".into());
    job.insert("executionType".into(), "user".into());
    // An option the job declares but was not given is blank, as in Rundeck;
    // a reference to one it does not declare stays an error.
    let mut options = spec.options.clone();
    for def in spec.option_defs.iter().filter(|d| !d.secure) {
        options.entry(def.name.clone()).or_default();
    }
    Context {
        options,
        job,
        globals: globals.clone(),
        dialect: spec.dialect,
        ..Context::default()
    }
}

impl<'a, 'l, 's> Job<'a, 'l, 's> {
    /// The job's confinement, workspace, secrets and node keys, before any step.
    fn prepare(
        spec: &'a JobSpec,
        rt: &'a Runtime<'a>,
        log: &'a SharedLog<'l, 's>,
        nodes: &[Node],
        attempt: u32,
    ) -> anyhow::Result<Job<'a, 'l, 's>> {
        let workspace = rt.workspace;
        // Under --run-as a step owns its workspace, so (in the system's
        // temporary directory) it can rename it and leave a symlink in its
        // place: a later attempt makes, hands over and confines nothing
        // through one.
        if !std::fs::symlink_metadata(workspace).is_ok_and(|m| m.is_dir()) {
            anyhow::bail!(
                "the job's workspace {} is no longer the directory sortie made",
                workspace.display()
            );
        }
        let confinement = rt
            .policy
            .confinement(&spec.id, &[workspace.to_path_buf()])
            .map_err(|e| anyhow::anyhow!("cannot confine the job's steps: {e}"))?;
        if let Some(sandbox) = &confinement.sandbox {
            tracing::debug!(
                abi = sandbox.abi,
                rules = sandbox.rules,
                "steps confined with Landlock"
            );
        }
        let tmp = workspace.join("tmp");
        command::give(workspace, &confinement)
            .and_then(|_| command::as_step_user(&confinement))
            .and_then(|_as_user| files::ensure_dir(&tmp, files::PRIVATE_DIR))
            .map_err(|e| anyhow::anyhow!("preparing the workspace {}: {e}", workspace.display()))?;
        let mut template = context(spec, rt.globals);
        template
            .job
            .insert("retryAttempt".into(), attempt.to_string());
        template
            .job
            .insert("wasRetry".into(), (attempt > 0).to_string());
        let mut job = Job {
            spec,
            rt,
            log,
            template,
            base_env: command::base_env(workspace, &confinement),
            confinement,
            secret_env: Vec::new(),
            secret_values: Vec::new(),
            private: None,
            selected: nodes.to_vec(),
            keys: BTreeMap::new(),
            host_keys: BTreeMap::new(),
            broken: BTreeMap::new(),
            budget: spec.log_limit.clone().map(LogBudget::new),
            // Every text of the steps is in their Debug form, as written.
            context: crate::jobs::expand::context_references(&format!("{:?}", spec.steps)),
        };
        job.prepare_secrets(nodes)?;
        Ok(job)
    }

    /// Resolve the job's secrets and its remote nodes' keys, register them with
    /// the masker (the log's and sortie's own diagnostics), write the
    /// file-delivered ones and the keys into the workspace.
    fn prepare_secrets(&mut self, nodes: &[Node]) -> anyhow::Result<()> {
        let local = &self.rt.nodes.local.name;
        let remote: Vec<&Node> = nodes.iter().filter(|n| &n.name != local).collect();
        let ssh = &self.rt.nodes.ssh;
        if !remote.is_empty() && ssh.program.found().is_some() {
            self.private = Some(private_dir(&ssh.private_dir, &self.spec.id)?);
        }
        let node_keys = self.node_credentials(&remote);
        let secure = self.secure_options()?;
        let options = {
            let mut all = self.spec.options.clone();
            all.extend(
                secure
                    .iter()
                    .map(|(k, v)| (k.clone(), v.expose().to_string())),
            );
            all
        };
        // Rundeck's option rules, before any step (a secure value never shown).
        options::check(&self.spec.option_defs, &options).map_err(anyhow::Error::msg)?;
        // Steps see a secure option only with valueExposed, and never as plain.
        for def in self.spec.option_defs.iter().filter(|d| d.secure) {
            self.template.options.remove(&def.name);
            if let (true, Some(value)) = (def.value_exposed, secure.get(&def.name)) {
                self.template
                    .options
                    .insert(def.name.clone(), value.expose().to_string());
                self.template.secure.insert(def.name.clone());
            }
        }
        if self.spec.secrets.is_empty() && node_keys.is_empty() && secure.is_empty() {
            return Ok(());
        }
        let resolved = secrets::resolve(&self.spec.secrets, self.rt.providers)?;
        let min = self.rt.providers.min_length;
        let values: Vec<(&str, &Secret)> = resolved
            .iter()
            .map(|r| (r.key.as_str(), &r.value))
            .chain(node_keys.iter().map(|(_, key)| ("ssh-key", key)))
            .chain(secure.iter().map(|(name, v)| (name.as_str(), v)))
            .collect();
        // A job whose secrets are all the runner's own credentials (the env
        // provider serves those) is masked by the runner's masker, which holds
        // them already: the same automaton again would cost milliseconds and,
        // with a thousand secrets, megabytes.
        let reused = values.iter().all(|(_, v)| own::masks(v));
        let masker = if reused {
            for (name, value) in &values {
                mask::check_length(name, value, min)?;
            }
            own::masker()
        } else {
            // The runner's own credentials too (a Bao login may just have added one).
            let own = own::values();
            Arc::new(Masker::new(
                values.iter().copied().chain(
                    own.iter()
                        .filter(|v| v.expose().len() >= min)
                        .map(|v| ("sortie", v)),
                ),
                min,
            )?)
        };
        self.log.lock().set_masker(masker.clone());
        if !reused {
            mask::register_for_diagnostics(masker);
        }
        if self.private.is_some() {
            self.keys.extend(node_keys);
        }
        let workspace = self.rt.workspace;
        for secret in resolved {
            self.secret_values
                .push((secret.key.clone(), secret.value.clone()));
            let value = match secret.delivery {
                Delivery::Env => secret.value,
                Delivery::File => {
                    let _as_user = command::as_step_user(&self.confinement)?;
                    let path = command::write_secret_file(workspace, &secret.key, &secret.value)?;
                    Secret::new(path.display().to_string())
                }
            };
            self.template
                .secrets
                .insert(secret.key.clone(), secret.key.clone());
            self.secret_env.push((secret.key, value));
        }
        Ok(())
    }

    /// The values of the secure options: given with the run, else from their
    /// secret (Rundeck's key storage path), else their default.
    fn secure_options(&self) -> anyhow::Result<BTreeMap<String, Secret>> {
        let mut values = BTreeMap::new();
        for def in self.spec.option_defs.iter().filter(|d| d.secure) {
            let value = match (self.spec.options.get(&def.name), &def.secret, &def.default) {
                (Some(given), _, _) => Some(Secret::new(given.clone())),
                (None, Some(want), _) => {
                    let one = BTreeMap::from([(def.name.clone(), want.clone())]);
                    let mut got = secrets::resolve(&one, self.rt.providers)
                        .map_err(|e| anyhow::anyhow!("option {}: {e:#}", def.name))?;
                    Some(got.remove(0).value)
                }
                (None, None, Some(default)) => Some(Secret::new(default.clone())),
                (None, None, None) => None,
            };
            if let Some(value) = value.filter(|v| !v.expose().is_empty()) {
                values.insert(def.name.clone(), value);
            }
        }
        Ok(values)
    }

    /// Each remote node's key (its `ssh-key`, its `ssh-key-storage-path`, else
    /// the job's `ssh_key`), each reference resolved once, and its host key
    /// file. A node whose credentials fail is broken, with the reason; the
    /// other nodes go on.
    fn node_credentials(&mut self, remote: &[&Node]) -> Vec<(String, Secret)> {
        let mut keys = Vec::new();
        let mut resolved: BTreeMap<String, Result<Secret, String>> = BTreeMap::new();
        for node in remote {
            let wanted = node_key(node).map(|own| own.or_else(|| self.spec.ssh_key.clone()));
            let key = match wanted {
                Err(why) => Err(why),
                Ok(None) => Ok(None),
                Ok(Some(want)) => resolved
                    .entry(want.text.clone())
                    .or_insert_with(|| {
                        let one = BTreeMap::from([("ssh-key".to_string(), want.clone())]);
                        secrets::resolve(&one, self.rt.providers)
                            .map(|mut r| r.remove(0).value)
                            .map_err(|e| format!("ssh key {}: {e:#}", want.text))
                    })
                    .clone()
                    .map(Some),
            };
            let host_key = match (&self.private, node.attributes.get("ssh-host-key")) {
                (Some(dir), Some(host_key)) => known_hosts_file(dir, node, host_key)
                    .map(Some)
                    .map_err(|e| format!("{e:#}")),
                _ => Ok(None),
            };
            match (key, host_key) {
                (Err(why), _) | (_, Err(why)) => {
                    self.broken.insert(node.name.clone(), why);
                }
                (Ok(key), Ok(host_key)) => {
                    keys.extend(key.map(|k| (node.name.clone(), k)));
                    if let Some(path) = host_key {
                        self.host_keys.insert(node.name.clone(), path);
                    }
                }
            }
        }
        keys
    }

    fn job_deadline_passed(&self) -> bool {
        self.rt.deadline.is_some_and(|t| Instant::now() >= t)
    }

    /// The steps, node steps on `nodes` by the strategy, workflow steps once in
    /// between, until the rules say stop.
    fn run(
        &self,
        nodes: &[Node],
        steps: &mut Vec<StepResult>,
        data: &mut Data,
        verdict: &mut Verdict,
    ) {
        let dispatch = self.spec.nodes.as_ref();
        if nodes.is_empty() {
            let success = dispatch.is_some_and(|d| d.success_on_empty);
            let text = "no node matches the job's node filter";
            self.log
                .system(if success { Level::Info } else { Level::Error }, text);
            if !success {
                *verdict = Verdict {
                    status: JobStatus::Failed,
                    exit_code: None,
                    error: Some(text.into()),
                };
            }
            return;
        }
        let threads = match dispatch.map(|d| {
            dispatch::threadcount(
                d,
                &plain_options(&self.spec.options, &self.spec.option_defs),
            )
        }) {
            Some(Err(e)) => {
                self.log.system(Level::Error, &e);
                *verdict = Verdict {
                    status: JobStatus::Failed,
                    exit_code: None,
                    error: Some(e),
                };
                return;
            }
            Some(Ok(n)) => n,
            None => 1,
        };
        if let Err(refusals) = self.check(&nodes[0]) {
            for line in &refusals {
                self.log.system(Level::Error, line);
            }
            *verdict = Verdict {
                status: JobStatus::Failed,
                exit_code: None,
                error: Some(format!("not run: {}", refusals.join("; "))),
            };
            return;
        }
        let node_keepgoing = dispatch.is_some_and(|d| d.keepgoing);
        let indexed: Vec<(usize, &Step)> = self.spec.steps.iter().enumerate().collect();
        let segments: Vec<&[(usize, &Step)]> = indexed
            .chunk_by(|a, b| a.1.node_step == b.1.node_step)
            .collect();
        let last_node_segment = segments.iter().rposition(|s| s[0].1.node_step);
        let links = Links::default();
        // Nodes that failed: they take no further part.
        let mut failed_nodes: Vec<String> = Vec::new();
        for (number, segment) in segments.iter().enumerate() {
            if verdict.stopped() || (verdict.failed() && !self.spec.keepgoing && !node_keepgoing) {
                break;
            }
            if !segment[0].1.node_step || dispatch.is_none() {
                // Workflow steps, and a job that dispatches to no node: once,
                // on the runner, with the job's global data.
                let local = &self.rt.nodes.local;
                let mut global = data.global.clone();
                let outcome = self.sequence(segment, local, &Link::Local, data, &mut global, 1);
                data.global = global;
                let halted = outcome.halted;
                merge(steps, verdict, outcome);
                if halted {
                    break;
                }
                continue;
            }
            let alive: Vec<&Node> = nodes
                .iter()
                .filter(|n| !failed_nodes.contains(&n.name))
                .collect();
            let on = Segment {
                steps: segment,
                nodes: &alive,
                links: &links,
                last: Some(number) == last_node_segment,
                keepgoing: node_keepgoing,
            };
            let outcomes = match self.spec.strategy {
                Strategy::NodeFirst => self.node_first(&on, data),
                Strategy::Parallel => self.parallel(&on, data, threads),
                Strategy::StepFirst => self.step_first(&on, data),
            };
            for (node, outcome) in outcomes {
                if outcome.verdict.failed() && !failed_nodes.contains(&node) {
                    failed_nodes.push(node.clone());
                }
                merge(steps, verdict, outcome);
            }
            if !node_keepgoing && !failed_nodes.is_empty() {
                break;
            }
        }
        if !failed_nodes.is_empty() && nodes.len() > 1 && !verdict.stopped() {
            verdict.error = Some(format!(
                "{} (failed on node(s): {})",
                verdict.error.as_deref().unwrap_or("the job failed"),
                failed_nodes.join(", ")
            ));
        }
        for (node, n) in links.close_all() {
            let text = format!(
                "node {node}: killed {n} process(es) the job's steps left running outside their \
                 process groups"
            );
            self.log.system(Level::Warn, &text);
        }
        if let Some(dir) = &self.private {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// Builds the steps' commands with the job's environment and `ctx`.
    fn builder<'b>(&'b self, ctx: &'b Context) -> Builder<'b> {
        Builder {
            spec: self.spec,
            ctx,
            base_env: &self.base_env,
            secret_env: &self.secret_env,
            secret_values: &self.secret_values,
            workspace: self.rt.workspace,
            confinement: &self.confinement,
            fetch: self.rt.fetch,
            until: [self.rt.deadline, self.rt.interrupt_at]
                .into_iter()
                .flatten()
                .min(),
            plugins: self.rt.plugins,
            stop: self.rt.stop,
        }
    }

    /// Every step and error handler checked before the first runs, so that
    /// what the job's text and values refuse (a value where it would be code,
    /// a secret in arguments) stops the job before it has done anything: one
    /// line per refused step.
    fn check(&self, node: &Node) -> Result<(), Vec<String>> {
        let ctx = check_context(&self.template, node, &self.rt.nodes.local.name);
        refusals(self.spec, &self.builder(&ctx), &node.name)
    }

    /// How the job reaches `node`: its own node, or a new SSH connection (an
    /// unreachable node's reason is logged once), perhaps opened ahead.
    fn connect(&self, links: &Links, node: &Node) -> Link {
        let link = match links.opened_ahead(&node.name) {
            Some(link) => link,
            // A job stopped meanwhile (its timeout, a signal) waits for no handshake.
            None => self
                .route(node)
                .map_or_else(|link| link, |o| o.open(&|| stop_now(self.rt).is_some())),
        };
        if let Link::Broken(why) = &link {
            self.log
                .system(Level::Error, &format!("node {}: {why}", node.name));
        }
        link
    }

    /// What reaching `node` takes: a connection to open, or the link it has
    /// without one (its own node, or why it cannot be reached).
    fn route(&self, node: &Node) -> Result<Opening, Link> {
        if node.name == self.rt.nodes.local.name {
            return Err(Link::Local);
        }
        match (&self.private, Address::of(node)) {
            _ if self.broken.contains_key(&node.name) => {
                Err(Link::Broken(self.broken[&node.name].clone()))
            }
            (None, _) => Err(Link::Broken(ssh::NO_SSH.into())),
            (_, Err(e)) => Err(Link::Broken(e)),
            (Some(private), Ok(address)) => Ok(Opening {
                settings: self.rt.nodes.ssh.clone(),
                node: node.name.clone(),
                address,
                key: self
                    .keys
                    .get(&node.name)
                    .map(|key| (private.clone(), key.clone())),
                known_hosts: self.host_keys.get(&node.name).cloned(),
            }),
        }
    }

    /// Start opening the connection of the first of `next` that needs one and
    /// has none, while fewer than `limit` are open or opening ahead, so that
    /// its handshake runs beside the steps running now. Called with a link in
    /// hand: at most one handshake at a time for each thread of the job's.
    fn open_ahead<'n>(
        &self,
        links: &Links,
        next: impl IntoIterator<Item = &'n Node>,
        limit: usize,
    ) {
        let mut ahead = locked(&links.ahead);
        if ahead.len() >= limit {
            return;
        }
        let open = locked(&links.open);
        let mut next = next
            .into_iter()
            .filter(|n| !open.contains_key(&n.name) && !ahead.contains_key(&n.name));
        if let Some((node, opening)) = next.find_map(|n| Some((n, self.route(n).ok()?))) {
            let unwanted = Arc::clone(&links.unwanted);
            let opening = std::thread::spawn(move || {
                let (began, timeout) = (Instant::now(), opening.settings.connect_timeout);
                let unwanted = || unwanted.load(Ordering::Relaxed);
                (opening.open(&unwanted), began.elapsed() >= timeout)
            });
            ahead.insert(node.name.clone(), opening);
        }
    }

    /// Run `f` with the node's link: the connection opened on first use, kept
    /// for the node's later steps, closed after its `last`.
    /// `ahead` runs once the link is in hand (see [`Job::open_ahead`]).
    /// A node that cannot be reached ends the job without keepgoing: then
    /// no other node is connected to.
    fn on_node<R>(
        &self,
        on: &Segment<'_, '_>,
        node: &Node,
        last: bool,
        ahead: impl FnOnce(),
        f: impl FnOnce(&Link) -> R,
    ) -> R {
        let links = on.links;
        let taken = links.take(&node.name).and_then(|link| match link {
            Link::Remote(connection) => standing(*connection).or_else(|| {
                let text = format!(
                    "node {}: its connection was closed after its last step: connecting again",
                    node.name
                );
                self.log.system(Level::Warn, &text);
                None
            }),
            link => Some(link),
        });
        let link = taken.unwrap_or_else(|| self.connect(links, node));
        if on.keepgoing || !matches!(link, Link::Broken(_)) {
            ahead();
        }
        let out = f(&link);
        if last {
            links.retire(link);
        } else {
            links.put(&node.name, link);
        }
        out
    }

    /// Node-first: each node runs the segment's steps before the next node.
    fn node_first(&self, on: &Segment<'_, '_>, data: &mut Data) -> Vec<(String, Sequence)> {
        let mut out = Vec::new();
        for (i, node) in on.nodes.iter().enumerate() {
            let mut own = data.of(&node.name);
            let ahead = || self.open_ahead(on.links, on.nodes[i + 1..].iter().copied(), 1);
            let outcome = self.on_node(on, node, on.last, ahead, |link| {
                self.sequence(on.steps, node, link, data, &mut own, on.nodes.len())
            });
            data.nodes.insert(node.name.clone(), own);
            let stop = outcome.verdict.stopped() || (outcome.verdict.failed() && !on.keepgoing);
            out.push((node.name.clone(), outcome));
            if stop {
                break;
            }
        }
        out
    }

    /// Step-first: each step runs on every node before the next step.
    fn step_first(&self, on: &Segment<'_, '_>, data: &mut Data) -> Vec<(String, Sequence)> {
        let mut per_node: BTreeMap<String, Sequence> = BTreeMap::new();
        let mut order = Vec::new();
        let count = on.steps.len();
        'steps: for (i, one) in on.steps.chunks(1).enumerate() {
            for (j, node) in on.nodes.iter().enumerate() {
                if per_node
                    .get(&node.name)
                    .is_some_and(|o| o.verdict.failed() && !self.spec.keepgoing)
                {
                    continue;
                }
                let mut own = data.of(&node.name);
                let last = on.last && i + 1 == count;
                let ahead = || self.open_ahead(on.links, on.nodes[j + 1..].iter().copied(), 1);
                let outcome = self.on_node(on, node, last, ahead, |link| {
                    self.sequence(one, node, link, data, &mut own, on.nodes.len())
                });
                data.nodes.insert(node.name.clone(), own);
                let stop = outcome.verdict.stopped() || (outcome.verdict.failed() && !on.keepgoing);
                if !per_node.contains_key(&node.name) {
                    order.push(node.name.clone());
                }
                per_node
                    .entry(node.name.clone())
                    .or_insert_with(Sequence::empty)
                    .append(outcome);
                if stop {
                    break 'steps;
                }
            }
        }
        order
            .into_iter()
            .filter_map(|n| per_node.remove(&n).map(|o| (n, o)))
            .collect()
    }

    /// Parallel: up to `threads` nodes at once, each running the segment's
    /// steps. A node that fails without keepgoing (or a stopped job) starts
    /// no further node; those running finish, as Rundeck's parallel
    /// dispatcher (Ant's `Parallel` with `failOnAny`) lets them.
    fn parallel(
        &self,
        on: &Segment<'_, '_>,
        data: &mut Data,
        threads: usize,
    ) -> Vec<(String, Sequence)> {
        let queue: Mutex<VecDeque<&Node>> = Mutex::new(on.nodes.iter().copied().collect());
        let done: Mutex<Vec<(String, Sequence, DataSet)>> = Mutex::new(Vec::new());
        let shared = &*data;
        std::thread::scope(|scope| {
            for _ in 0..threads.min(on.nodes.len()) {
                scope.spawn(|| loop {
                    let Some(node) = locked(&queue).pop_front() else {
                        return;
                    };
                    let mut own = shared.of(&node.name);
                    // The queue held while the next is chosen: a node is
                    // taken from it, or opened ahead, not both.
                    let ahead = || {
                        let queue = locked(&queue);
                        self.open_ahead(on.links, queue.iter().copied(), threads);
                    };
                    let outcome = self.on_node(on, node, on.last, ahead, |link| {
                        self.sequence(on.steps, node, link, shared, &mut own, on.nodes.len())
                    });
                    let verdict = &outcome.verdict;
                    if verdict.stopped() || (verdict.failed() && !on.keepgoing) {
                        locked(&queue).clear();
                    }
                    locked(&done).push((node.name.clone(), outcome, own));
                });
            }
        });
        let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
        // Reported in dispatch order, whatever order they finished in.
        done.sort_by_key(|(n, _, _)| on.nodes.iter().position(|m| &m.name == n));
        let mut out = Vec::new();
        for (node, outcome, own) in done {
            data.nodes.insert(node.clone(), own);
            out.push((node, outcome));
        }
        out
    }

    /// `steps` on one node, with their handlers, by the status rules. Data the
    /// steps capture goes to `own` (the node's, or the global data for workflow
    /// steps); `data` is what they see of everything captured before.
    fn sequence(
        &self,
        steps: &[(usize, &Step)],
        node: &Node,
        link: &Link,
        data: &Data,
        own: &mut DataSet,
        nodes: usize,
    ) -> Sequence {
        let mut seq = Sequence::empty();
        let local = &self.rt.nodes.local.name;
        let view_node = (&node.name != local).then_some(node.name.as_str());
        for (index, step) in steps {
            let (index, step) = (*index, *step);
            let label = step_label(index, step, &node.name, nodes);
            // One stopped while it was reached is stopped, as the job.
            if let (Link::Broken(why), None) = (link, stop_now(self.rt)) {
                seq.push_unreachable(index, step, &node.name, why);
                return seq;
            }
            let mut ctx = self.template.clone();
            ctx.node = node_context(node, local);
            let before = self.context.0.contains(&(index + 1)).then(|| own.clone());
            let run = self.step(
                index, step, false, node, link, &mut ctx, data, view_node, own, nodes,
            );
            let exit_code = run.result.exit_code;
            self.keep_context(index, exit_code, before.as_ref(), own);
            seq.results.push(run.result);
            seq.results.extend(run.per_node);
            if run.ran.succeeded() {
                continue;
            }
            if let Ran::Halted { succeed, message } = run.ran {
                seq.halted = true;
                if !succeed {
                    seq.verdict = Verdict {
                        status: JobStatus::Failed,
                        exit_code,
                        error: Some(message),
                    };
                }
                return seq;
            }
            if let Some(stop) = run.ran.stops_job(self.job_deadline_passed()) {
                seq.verdict = Verdict {
                    status: stop,
                    exit_code,
                    error: Some(format!(
                        "{label} was stopped: the job {}",
                        status::stop_words(stop, self.spec.timeout)
                    )),
                };
                return seq;
            }
            let mut handler_ok = None;
            if let Some(handler) = &step.errorhandler {
                ctx.result = BTreeMap::from([
                    (
                        "exit_code".to_string(),
                        exit_code.map_or(String::new(), |c| c.to_string()),
                    ),
                    (
                        "step".to_string(),
                        step.name.clone().unwrap_or_else(|| index.to_string()),
                    ),
                ]);
                let handled = self.step(
                    index, handler, true, node, link, &mut ctx, data, view_node, own, nodes,
                );
                seq.results.push(handled.result);
                seq.results.extend(handled.per_node);
                if let Some(stop) = handled.ran.stops_job(self.job_deadline_passed()) {
                    seq.verdict = Verdict {
                        status: stop,
                        exit_code,
                        error: Some(format!(
                            "{label}'s error handler was stopped: the job {}",
                            status::stop_words(stop, self.spec.timeout)
                        )),
                    };
                    return seq;
                }
                handler_ok = Some(handled.ran.succeeded());
            }
            match status::after_failure(handler_ok, self.spec.keepgoing, step.keepgoing_on_success)
            {
                AfterFailure::Recovered => {
                    let text = format!("{label} failed; its error handler recovered it");
                    self.log.system(Level::Info, &text);
                }
                AfterFailure::Fails { go_on } => {
                    seq.verdict.status = JobStatus::Failed;
                    seq.verdict.exit_code = exit_code;
                    seq.verdict
                        .error
                        .get_or_insert_with(|| format!("{label} failed"));
                    if !go_on {
                        return seq;
                    }
                }
            }
        }
        seq
    }

    /// What later steps may refer to of step `index` (from 0) that just ran:
    /// its exit code as Rundeck's `exec.exitCode`, and what it set as
    /// `N:key` (N from 1), when the job refers to them. `before` is the data
    /// as the step found it.
    fn keep_context(
        &self,
        index: usize,
        exit_code: Option<i32>,
        before: Option<&DataSet>,
        own: &mut DataSet,
    ) {
        let (steps, exec) = &self.context;
        let number = index + 1;
        let mut kept = Vec::new();
        if let Some(code) = exit_code.filter(|_| *exec) {
            kept.push(("exec.exitCode".to_string(), code.to_string()));
            if steps.contains(&number) {
                kept.push((format!("{number}:exec.exitCode"), code.to_string()));
            }
        }
        if let Some(before) = before {
            for (key, value) in own.map() {
                let set = !key.contains(':')
                    && key != "exec.exitCode"
                    && before.map().get(key) != Some(value);
                if set {
                    kept.push((format!("{number}:{key}"), value.clone()));
                }
            }
        }
        for (key, value) in kept {
            if let Err(e) = own.insert_context(key, value) {
                self.log.system(Level::Warn, &format!("{e:#}"));
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        index: usize,
        step: &Step,
        errorhandler: bool,
        node: &Node,
        link: &Link,
        ctx: &mut Context,
        data: &Data,
        view_node: Option<&str>,
        own: &mut DataSet,
        nodes: usize,
    ) -> StepRun {
        self.log.emit(Event::StepStart {
            step: index,
            name: step.name.as_deref(),
            node: &node.name,
            errorhandler,
        });
        let started = Instant::now();
        // Data captured so far is visible to this step as ${data.K}.
        ctx.data = data.view(view_node, own);
        let label = step_label(index, step, &node.name, nodes);
        let builder = self.builder(ctx);
        let mut recap = None;
        let ran = match (&step.kind, link) {
            (StepKind::Ansible(ansible), _) => {
                let (ran, counts) =
                    self.ansible(index, step, ansible, errorhandler, &builder, &label, own);
                recap = counts;
                ran
            }
            (StepKind::Data(values), _) => set_data(&builder, values, own),
            (StepKind::LogData, _) => self.log_data(index, &node.name, builder.ctx, own),
            (StepKind::Http(http), _) => self.http(index, step, http, &builder, &node.name, own),
            (StepKind::Flow { succeed, message }, _) => {
                let words = if *succeed {
                    "stopped the job: succeeded"
                } else {
                    "failed the job"
                };
                let message = match message.as_deref().map(|m| builder.text(m)) {
                    Some(Ok(m)) => format!("{label} {words}: {m}"),
                    Some(Err(why)) => format!("{label} {words} (its message: {why})"),
                    None => format!("{label} {words}"),
                };
                let level = if *succeed { Level::Info } else { Level::Error };
                self.log.system(level, &message);
                Ran::Halted {
                    succeed: *succeed,
                    message,
                }
            }
            // A plugin runs on the runner, whichever node it is for.
            (StepKind::Plugin { .. }, _) | (_, Link::Local) => {
                self.local(index, step, errorhandler, &label, &node.name, own, &|out| {
                    builder.command(index, step, errorhandler, out)
                })
            }
            (_, Link::Remote(connection)) => match builder.remote(step, self.rt.grace) {
                Err(why) => Ran::NotStarted(why),
                Ok(remote) => self.supervise(index, step, &label, &node.name, own, |s, o| {
                    connection.run(&remote, s, o)
                }),
            },
            (_, Link::Broken(why)) => match stop_now(self.rt) {
                Some(reason) => Ran::Stopped(reason),
                None => Ran::NotStarted(why.clone()),
            },
        };
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
                    _ => format!(
                        "{label} was stopped: the job {}",
                        status::stop_words(JobStatus::TimedOut, self.spec.timeout)
                    ),
                };
                self.log.system(Level::Warn, &text);
            }
            _ => {}
        }
        let (status, exit_code, signal) = ran.step_status();
        let duration_ms = started.elapsed().as_millis() as u64;
        self.log.emit(Event::StepEnd {
            step: index,
            node: &node.name,
            status,
            exit_code,
            signal,
            duration_ms,
        });
        let mut recap = recap.unwrap_or_default();
        // The play's other hosts: a result each, by its recap.
        let per_node = self
            .selected
            .iter()
            .filter(|n| n.name != node.name)
            .filter_map(|n| Some((n, recap.remove(&n.name)?)))
            .map(|(n, counts)| StepResult {
                index,
                name: step.name.clone(),
                node: n.name.clone(),
                status: if ansible_step::host_failed(&counts) {
                    StepStatus::Failed
                } else {
                    StepStatus::Succeeded
                },
                exit_code: None,
                signal: None,
                duration_ms,
                errorhandler,
                recap: Some(counts),
            })
            .collect();
        StepRun {
            result: StepResult {
                index,
                name: step.name.clone(),
                node: node.name.clone(),
                status,
                exit_code,
                signal,
                duration_ms,
                errorhandler,
                recap: recap.remove(&node.name),
            },
            per_node,
            ran,
        }
    }

    /// An ansible step: its private directory (inventory, vars, keys, host
    /// keys, vault password, the recap callback), `ansible-playbook` run as
    /// any step on the runner, and the recap it wrote.
    #[allow(clippy::too_many_arguments)]
    fn ansible(
        &self,
        index: usize,
        step: &Step,
        ansible: &ansible_step::Ansible,
        errorhandler: bool,
        builder: &Builder<'_>,
        label: &str,
        own: &mut DataSet,
    ) -> (Ran, Option<BTreeMap<String, ansible_step::Counts>>) {
        let suffix = if errorhandler { "-handler" } else { "" };
        let dir = self.rt.workspace.join(format!(".ansible-{index}{suffix}"));
        let recap_file = dir.join("recap.json");
        let local = &self.rt.nodes.local.name;
        let ran = self.local(index, step, errorhandler, label, local, own, &|out| {
            self.ansible_command(step, ansible, builder, &dir, out)
        });
        // The play may have put a symlink where its directory was: the recap
        // is read, and the directory removed, only as the steps' user could,
        // and never through a link.
        let read = command::as_step_user(&self.confinement)
            .map_err(|e| format!("cannot read the recap: {e}"))
            .and_then(|_as_user| match std::fs::symlink_metadata(&dir) {
                Ok(meta) if meta.is_dir() => ansible_step::read_recap(&recap_file),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                _ => Err(format!(
                    "{} is not the directory sortie made",
                    dir.display()
                )),
            });
        let recap = match read {
            Ok(recap) => recap,
            Err(why) => {
                self.log.system(Level::Warn, &format!("{label}: {why}"));
                None
            }
        };
        for (host, counts) in recap.iter().flatten() {
            let line: Vec<String> = counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
            self.log
                .system(Level::Info, &format!("{label}: {host}: {}", line.join(" ")));
        }
        if let Ok(_as_user) = command::as_step_user(&self.confinement) {
            let _ = std::fs::remove_dir_all(&dir);
        }
        (ran, recap)
    }

    /// The files of an ansible step in `dir`, and its `ansible-playbook`.
    fn ansible_command(
        &self,
        step: &Step,
        ansible: &ansible_step::Ansible,
        builder: &Builder<'_>,
        dir: &Path,
        output_file: &Path,
    ) -> Result<exec::Command, String> {
        use ansible_step::Host;
        let program = which::which("ansible-playbook").map_err(|_| {
            "ansible-playbook was not found on PATH: install ansible-core".to_string()
        })?;
        let as_user = || command::as_step_user(&self.confinement).map_err(|e| e.to_string());
        let write = |name: &str, text: &[u8]| -> Result<PathBuf, String> {
            let path = dir.join(name);
            let _as_user = as_user()?;
            files::replace(&path, files::PRIVATE_FILE)
                .and_then(|mut f| std::io::Write::write_all(&mut f, text))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(path)
        };
        {
            let _as_user = as_user()?;
            let _ = std::fs::remove_dir_all(dir);
            for sub in [dir.to_path_buf(), dir.join("home"), dir.join("callbacks")] {
                files::ensure_dir(&sub, files::PRIVATE_DIR)
                    .map_err(|e| format!("cannot create {}: {e}", sub.display()))?;
            }
        }
        // Host keys: the runner's known_hosts and the nodes' own.
        let mut known = Vec::new();
        for path in self
            .rt
            .nodes
            .ssh
            .known_hosts
            .iter()
            .chain(self.host_keys.values())
        {
            let text = files::read_regular(path, 16 << 20)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            known.extend_from_slice(&text);
            known.push(b'\n');
        }
        let known_hosts = write("known_hosts", &known)?;
        let local = &self.rt.nodes.local.name;
        let mut hosts = Vec::new();
        for node in &self.selected {
            if !ansible_step::host_name_ok(&node.name) {
                return Err(format!(
                    "node {:?} cannot be an Ansible host: Ansible reads more than a name into \
                     it (a name is letters, digits and ._-/@+)",
                    node.name
                ));
            }
            if &node.name == local {
                hosts.push((node.name.clone(), Host::Local));
                continue;
            }
            if let Some(why) = self.broken.get(&node.name) {
                return Err(format!("node {}: {why}", node.name));
            }
            let address = Address::of(node)?;
            let key = match self.keys.get(&node.name) {
                Some(key) => Some(write(
                    &format!("key-{}", safe_name(&node.name)),
                    key_text(key).as_bytes(),
                )?),
                None => None,
            };
            hosts.push((
                node.name.clone(),
                Host::Remote {
                    host: address.host,
                    port: address.port,
                    user: address.user,
                    key,
                    python: node.attributes.get("ansible_python_interpreter").cloned(),
                },
            ));
        }
        let ssh_args = ansible_step::ssh_args(
            &known_hosts,
            self.rt.nodes.ssh.config.as_deref(),
            self.rt.nodes.ssh.connect_timeout.as_secs().max(1),
        );
        let inventory = write(
            "inventory.yml",
            ansible_step::inventory(&hosts, &ssh_args).as_bytes(),
        )?;
        // The job's plain options, then the step's vars. Rundeck's Ansible
        // plugin gives a play only the extra vars its step names (options
        // reach it as RD_OPTION_* in its environment): extra vars beat the
        // play's own, so an option the job's author never meant as one must
        // not become one.
        let rundeck = self.spec.dialect == crate::jobs::spec::Dialect::Rundeck;
        let mut vars: BTreeMap<String, String> = builder
            .ctx
            .options
            .iter()
            .filter(|_| !rundeck)
            .filter(|(k, _)| !builder.ctx.secure.contains(*k) && ansible_step::option_var(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in &ansible.vars {
            vars.insert(k.clone(), builder.value(v)?);
        }
        let vars = write("vars.yml", ansible_step::vars_file(&vars).as_bytes())?;
        write(
            "callbacks/sortie_recap.py",
            ansible_step::RECAP_CALLBACK.as_bytes(),
        )?;
        let playbook = match (&ansible.play, &ansible.playbook) {
            (Some(play), _) => write("playbook.yml", play.as_bytes())?,
            (None, Some(path)) => {
                let path = builder.text(path)?;
                std::path::absolute(&path).map_err(|e| format!("playbook {path}: {e}"))?
            }
            (None, None) => unreachable!("checked when the spec was read"),
        };
        let mut args: Vec<std::ffi::OsString> = vec![
            "-i".into(),
            inventory.into(),
            "-e".into(),
            format!("@{}", vars.display()).into(),
        ];
        if let Some(password) = &ansible.vault_password {
            let file = write("vault-password", builder.value(password)?.as_bytes())?;
            args.extend(["--vault-password-file".into(), file.into()]);
        }
        args.extend(ansible.args.iter().map(Into::into));
        args.push(playbook.into());
        let mut env = builder.environment(step, Some(output_file));
        let d = |p: &str| dir.join(p).display().to_string();
        env.extend([
            ("ANSIBLE_HOME".to_string(), d("home")),
            ("ANSIBLE_LOCAL_TEMP".to_string(), d("home/tmp")),
            ("ANSIBLE_CALLBACK_PLUGINS".to_string(), d("callbacks")),
            (
                "ANSIBLE_CALLBACKS_ENABLED".to_string(),
                "sortie_recap".into(),
            ),
            ("SORTIE_ANSIBLE_RECAP".to_string(), d("recap.json")),
            ("ANSIBLE_HOST_KEY_CHECKING".to_string(), "True".into()),
            // No master left behind when the play ends.
            ("ANSIBLE_SSH_ARGS".to_string(), "-o ControlMaster=no".into()),
            ("ANSIBLE_RETRY_FILES_ENABLED".to_string(), "False".into()),
            ("ANSIBLE_NOCOLOR".to_string(), "1".into()),
        ]);
        Ok(exec::Command {
            program: program.into_os_string(),
            args,
            env,
            cwd: self.rt.workspace.to_path_buf(),
            confinement: self.confinement.clone(),
            stdin: exec::Input::Empty,
            owner: Some(("SORTIE_EXECID".into(), self.spec.id.clone())),
        })
    }

    /// A step's process on the runner, made by `make` with its result data file.
    #[allow(clippy::too_many_arguments)]
    fn local(
        &self,
        index: usize,
        step: &Step,
        errorhandler: bool,
        label: &str,
        node: &str,
        own: &mut DataSet,
        make: &dyn Fn(&Path) -> Result<exec::Command, String>,
    ) -> Ran {
        let suffix = if errorhandler { "-handler" } else { "" };
        let output_file = self
            .rt
            .workspace
            .join(format!(".output-{index}{suffix}-{}", safe_name(node)));
        let prepared = command::as_step_user(&self.confinement)
            .and_then(|_as_user| command::fresh_output_file(&output_file))
            .map_err(|e| format!("cannot create the result data file: {e}"))
            .and_then(|_| make(&output_file));
        let mut ran = match prepared {
            Err(why) => Ran::NotStarted(why),
            Ok(cmd) => self.supervise(index, step, label, node, own, |s, o| exec::run(&cmd, s, o)),
        };
        match command::as_step_user(&self.confinement) {
            Ok(_as_user) => {
                if ran.succeeded() {
                    if let Err(why) = take_data_file(&output_file, own) {
                        ran = Ran::BadData(why);
                    }
                }
                command::remove(&output_file);
            }
            Err(e) => ran = Ran::BadData(format!("cannot read the result data file: {e}")),
        }
        ran
    }

    /// An HTTP step: the request, its answer in the step's output (masked as
    /// any output), its captures in the data.
    fn http(
        &self,
        index: usize,
        step: &Step,
        http: &crate::jobs::http_step::Http,
        builder: &Builder<'_>,
        node: &str,
        data: &mut DataSet,
    ) -> Ran {
        use crate::jobs::http_step::{self, Done};
        struct Out<'o, 'a, 'b, 'l> {
            output: StepOutput<'o, 'b, 'l>,
            log: &'a SharedLog<'b, 'l>,
        }
        impl http_step::Sink for Out<'_, '_, '_, '_> {
            fn output(&mut self, text: &str) {
                use exec::Observer;
                self.output
                    .output(exec::Stream::Stdout, format!("{text}\n").as_bytes());
            }
            fn note(&mut self, text: &str) {
                self.log.system(Level::Warn, text);
            }
            fn data(&mut self, key: &str, value: String) -> Result<(), String> {
                self.output
                    .data()
                    .insert(key.to_string(), value)
                    .map_err(|e| format!("{e:#}"))
            }
        }
        let filters: Vec<KeyValue> = Vec::new();
        let output = StepOutput::new(index, node, self.log, data, &filters, self.budget.as_ref());
        let mut out = Out {
            output,
            log: self.log,
        };
        let until = [
            self.rt.deadline,
            self.rt.interrupt_at,
            step.timeout.map(|t| Instant::now() + t),
        ]
        .into_iter()
        .flatten()
        .min();
        // The CA file is read as a step would read it: sortie's own reach is wider.
        let ca = match &http.ca_file {
            Some(path) => match builder.read_confined(path, MAX_CA_FILE, until) {
                Ok(pem) => Some(pem),
                Err(why) => {
                    out.output.finish();
                    return Ran::NotStarted(format!("ca_file: {why}"));
                }
            },
            None => None,
        };
        let sending = builder.sending();
        let done = http_step::run(
            http,
            ca.as_deref(),
            &|v| expand::expand(v, &sending, Mode::Value).map_err(|e| format!("{e:#}")),
            self.rt.http,
            until,
            self.rt.stop,
            &mut out,
        );
        out.output.finish();
        if let Some(stopped) = stopped_by_log(&out.output) {
            return stopped;
        }
        match done {
            Done::Succeeded => Ran::Exited(0),
            Done::Failed(why) => Ran::NotStarted(why),
            // The shot's time, not the job's or the step's, may be what ran out.
            Done::Stopped(StopReason::TimedOut)
                if self.rt.interrupt_at.is_some_and(|t| Instant::now() >= t) =>
            {
                Ran::Stopped(StopReason::Interrupted)
            }
            Done::Stopped(reason) => Ran::Stopped(reason),
        }
    }

    /// A `log_data` step: the data this step can see, as its own output.
    fn log_data(&self, index: usize, node: &str, ctx: &Context, data: &mut DataSet) -> Ran {
        use exec::Observer;
        let mut output = StepOutput::new(index, node, self.log, data, &[], self.budget.as_ref());
        for line in crate::jobs::log_data::lines(ctx) {
            output.output(exec::Stream::Stdout, line.as_bytes());
        }
        output.finish();
        stopped_by_log(&output).unwrap_or(Ran::Exited(0))
    }

    /// Run a step (`run` starts it under the supervision given), streaming its
    /// output into the log.
    fn supervise(
        &self,
        index: usize,
        step: &Step,
        label: &str,
        node: &str,
        data: &mut DataSet,
        run: impl FnOnce(&Supervision<'_>, &mut dyn exec::Observer) -> exec::Finished,
    ) -> Ran {
        let timeout = step.timeout;
        // The job's log filters, then the step's own.
        let filters: Vec<KeyValue> = self
            .spec
            .log_filters
            .iter()
            .chain(&step.log_filters)
            .filter_map(|f| KeyValue::of(f).ok().flatten())
            .collect();
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
        let mut output =
            StepOutput::new(index, node, self.log, data, &filters, self.budget.as_ref())
                .filters_until(until, self.rt.stop);
        let finished = run(&supervision, &mut output);
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

/// The steps one node ran, and how it stands.
struct Sequence {
    results: Vec<StepResult>,
    verdict: Verdict,
    /// A flow step stopped the job: no later step runs.
    halted: bool,
}

impl Sequence {
    fn empty() -> Sequence {
        Sequence {
            results: Vec::new(),
            verdict: Verdict::ok(),
            halted: false,
        }
    }

    /// The outcome of a later part (step-first runs a node's steps one by one).
    fn append(&mut self, later: Sequence) {
        self.halted |= later.halted;
        self.results.extend(later.results);
        if later.verdict.failed() && !self.verdict.failed() {
            self.verdict = later.verdict;
        }
    }

    /// A node that cannot be reached: its first step fails with the reason.
    fn push_unreachable(&mut self, index: usize, step: &Step, node: &str, why: &str) {
        self.results.push(StepResult {
            index,
            name: step.name.clone(),
            node: node.to_string(),
            status: StepStatus::Failed,
            exit_code: None,
            signal: None,
            duration_ms: 0,
            errorhandler: false,
            recap: None,
        });
        self.verdict = Verdict {
            status: JobStatus::Failed,
            exit_code: None,
            error: Some(format!("node {node}: {why}")),
        };
    }
}

/// Fold one node's outcome into the job's.
fn merge(steps: &mut Vec<StepResult>, verdict: &mut Verdict, outcome: Sequence) {
    steps.extend(outcome.results);
    if outcome.verdict.stopped() || (outcome.verdict.failed() && !verdict.failed()) {
        *verdict = outcome.verdict;
    }
}

/// `${node.*}` for a node: Rundeck's data context (name, hostname, os-*,
/// username, description, tags, every other attribute).
fn node_context(node: &Node, local: &str) -> BTreeMap<String, String> {
    let mut context = node.data_context();
    if node.name == local && context.get("hostname").is_none_or(|h| h.is_empty()) {
        context.insert("hostname".into(), crate::os::hostname().unwrap_or_default());
    }
    context
}

/// Read `$SORTIE_OUTPUT` into the data (a regular file, bounded; a step that
/// made it a symlink gets nothing read through it).
/// A data step: each value's references replaced, the results set as data.
/// A step sortie does itself whose output the log limit halted (or that the
/// log could not take): stopped, as a process step's would be.
fn stopped_by_log(output: &StepOutput<'_, '_, '_>) -> Option<Ran> {
    use exec::Observer;
    output
        .aborted()
        .then_some(Ran::Stopped(StopReason::Aborted))
}

fn set_data(builder: &Builder<'_>, values: &BTreeMap<String, String>, data: &mut DataSet) -> Ran {
    for (key, value) in values {
        match builder.text(value) {
            Ok(value) => {
                if let Err(e) = data.insert(key.clone(), value) {
                    return Ran::BadData(format!("{e:#}"));
                }
            }
            Err(why) => return Ran::NotStarted(format!("data {key}: {why}")),
        }
    }
    Ran::Exited(0)
}

fn take_data_file(path: &Path, data: &mut DataSet) -> Result<(), String> {
    let limit = result_data::MAX_TOTAL as u64 * 2;
    let bytes = files::read_regular(path, limit).map_err(|e| e.to_string())?;
    let pairs = result_data::parse_file(&bytes).map_err(|e| format!("{e:#}"))?;
    pairs
        .into_iter()
        .try_for_each(|(k, v)| data.insert(k, v))
        .map_err(|e| format!("{e:#}"))
}

/// A node's name as a file name part: readable, and distinct for distinct
/// names (a hash of the whole name follows what is kept of it).
fn safe_name(name: &str) -> String {
    let kept: String = name
        .chars()
        .take(48)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "{kept}-{:08x}",
        crate::ids::short_hash(name.as_bytes()) as u32
    )
}

/// The job's private directory under `base` (0700), named by a hash of its id.
fn private_dir(base: &Path, id: &str) -> anyhow::Result<PathBuf> {
    files::ensure_dir(base, files::PRIVATE_DIR)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", base.display()))?;
    let dir = base.join(format!("{:08x}", crate::ids::short_hash(id.as_bytes())));
    let _ = std::fs::remove_dir_all(&dir);
    files::ensure_dir(&dir, files::PRIVATE_DIR)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Write a node's SSH key (0600) into the job's private directory, in place
/// of what an earlier connection to it may have left there.
fn write_key(dir: &Path, node: &str, key: &Secret) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    let path = dir.join(format!("key-{}", safe_name(node)));
    files::replace(&path, files::PRIVATE_FILE)?.write_all(key_text(key).as_bytes())?;
    Ok(path)
}

/// A key as ssh reads it: ending with a line break.
fn key_text(key: &Secret) -> String {
    let mut text = key.expose().to_string();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// A known_hosts file holding the node's `ssh-host-key` for its address.
fn known_hosts_file(dir: &Path, node: &Node, host_key: &str) -> anyhow::Result<PathBuf> {
    let address = Address::of(node).map_err(anyhow::Error::msg)?;
    let name = match address.port {
        Some(port) if port != 22 => format!("[{}]:{port}", address.host),
        _ => address.host.clone(),
    };
    if host_key.contains(['\n', '\r']) {
        anyhow::bail!("node {:?}: ssh-host-key holds a line break", node.name);
    }
    let path = dir.join(format!("known_hosts-{}", safe_name(&node.name)));
    use std::io::Write;
    files::replace(&path, files::PRIVATE_FILE)?
        .write_all(format!("{name} {}\n", host_key.trim()).as_bytes())?;
    Ok(path)
}

/// A node's own key reference: its `ssh-key` attribute, else its
/// `ssh-key-storage-path` (Rundeck's key storage, `keys/a/b`), which maps to
/// the secrets directory: `file:b`.
fn node_key(node: &Node) -> Result<Option<Wanted>, String> {
    let text = match (
        node.attributes.get("ssh-key"),
        node.attributes.get("ssh-key-storage-path"),
    ) {
        (Some(text), _) => text.clone(),
        (None, Some(path)) => {
            let name = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
            format!("file:{name}")
        }
        (None, None) => return Ok(None),
    };
    let reference = Reference::parse(&text).map_err(|e| format!("ssh key {text:?}: {e:#}"))?;
    Ok(Some(Wanted {
        text,
        reference,
        delivery: Delivery::File,
    }))
}
